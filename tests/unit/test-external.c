/*
 * test-external.c: the EXTERNAL attach mode (a debugger that is not the
 * ptracer, as lldb) on this very process: the front-end's registers, and
 * memory through the front-end's reader with its block cache.
 *
 * The reader serves this process's own memory by pread of /proc/self/mem
 * (short where a page is not mapped), and counts its calls, so the test
 * knows what the cache asked for.  A 16-page mapping with a 2-page hole
 * in it: every mapped byte reads back exactly, the hole fails, the block
 * that ends in the hole is completed page by page, and a second pass at
 * the same stop asks the reader for nothing.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pmprof-internal.h"
#include "unit.h"

struct fake {
    int fd;
    int calls;
};

static long
fake_read(void *ctx, uint64_t addr, void *buf, size_t len,
          struct pmp_error *err)
{
    struct fake *f = ctx;
    size_t done = 0;

    f->calls++;
    /* like SBProcess.ReadMemory through pmprof's reader: the readable
       pages from addr on, stopping at the first that is not */
    while (done < len) {
        size_t chunk = len - done < 4096 ? len - done : 4096;
        ssize_t n = pread(f->fd, (char *)buf + done, chunk,
                          (off_t)(addr + done));
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    (void)err;
    return (long)done;
}

int
main(void)
{
    struct fake f = {-1, 0};
    struct pmp_target *t = NULL;
    struct pmp_error err = {0};
    struct pmp_thread_regs r;
    struct pmp_target_thread *tt = NULL;
    size_t nt = 0, i;
    unsigned char *map, buf[4096];
    int rc, pass, calls_after_first = 0;
    uint64_t base;

    f.fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (f.fd < 0)
        return UNIT_SKIP;
    /* 16 pages, 32 KiB-aligned start so the blocks are known: pages 5-6
       unmapped (a hole inside the first block) */
    map = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED)
        return unit_summary();
    base = ((uint64_t)(uintptr_t)map + 32767) & ~(uint64_t)32767;
    /* The two blocks in different slots of the reader cache (slot = the
       block number's pmp_hash64 mod 256, target-proc.c): where ASLR put
       them in the same one (1 run in 256), the second evicted the first
       and the counts below doubled. */
    while (pmp_hash64(base >> 15) % 256 == pmp_hash64((base >> 15) + 1) % 256 &&
           base + 24 * 4096 <= (uint64_t)(uintptr_t)map + 64 * 4096)
        base += 32768;
    for (i = 0; i < 16; i++)
        memset((void *)(uintptr_t)(base + i * 4096), (int)(i + 1), 4096);
    CHECK(munmap((void *)(uintptr_t)(base + 5 * 4096), 2 * 4096) == 0);

    rc = pmp_target_proc_new(&t, getpid(), PMP_ATTACH_EXTERNAL, &err);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        return unit_summary();
    rc = pmp_target_proc_set_reader(t, fake_read, &f, 1, &err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(pmp_target_proc_via_reader(t), 1);

    /* registers: what the front-end gave, for the thread it gave */
    memset(&r, 0, sizeof(r));
    r.tid = getpid();
    for (i = 0; i < PMP_NREGS; i++)
        r.regs.r[i] = 0x1000 + i;
    r.regs.orig_rax = (uint64_t)-1;
    r.regs.fs_base = 0x7777;
    CHECK_EQ_INT(pmp_target_proc_set_regs(t, &r, 1, 1, &err), 0);
    CHECK_EQ_INT(t->ops->stop(t, &tt, &nt, &err), 0);
    CHECK_EQ_INT(nt, 1);
    if (nt == 1) {
        CHECK_EQ_INT(tt[0].tid, getpid());
        CHECK_EQ_INT(tt[0].regs_ok, 1);
        CHECK_EQ_U64(tt[0].regs.r[PMP_REG_RIP], 0x1000 + PMP_REG_RIP);
        CHECK_EQ_U64(tt[0].regs.fs_base, 0x7777);
    }
    t->ops->resume(t);

    for (pass = 0; pass < 2; pass++) {
        pmp_target_drop_cache(t);       /* as every snapshot does */
        for (i = 0; i < 16; i++) {
            uint64_t a = base + i * 4096;
            int hole = i == 5 || i == 6;

            memset(buf, 0, sizeof(buf));
            rc = pmp_target_read(t, a, buf, sizeof(buf), &err);
            if (hole) {
                CHECK_MSG(rc != 0, "page %zu (unmapped) read", i);
                continue;
            }
            CHECK_MSG(rc == 0, "page %zu: %s", i, err.msg);
            CHECK_MSG(buf[0] == i + 1 && buf[4095] == i + 1,
                      "page %zu: %u %u", i, buf[0], buf[4095]);
        }
        /* a read across the end of the hole: fails, exactly */
        CHECK(pmp_target_read(t, base + 7 * 4096 - 8, buf, 16, &err) != 0);
        if (pass == 0)
            calls_after_first = f.calls;
    }
    /* first pass: block 0 (short at the hole), pages 5-6 and 7 asked one
       by one, block 1 whole; second pass at the same stop: nothing */
    CHECK_EQ_INT(calls_after_first, 5);
    CHECK_EQ_INT(f.calls, calls_after_first);
    /* a new stop: read again */
    CHECK_EQ_INT(pmp_target_proc_set_regs(t, &r, 1, 2, &err), 0);
    pmp_target_drop_cache(t);
    CHECK_EQ_INT(pmp_target_read(t, base, buf, 8, &err), 0);
    CHECK_EQ_INT(f.calls, calls_after_first + 1);
    /* a thread the front-end gave no registers for fails alone */
    CHECK_EQ_INT(pmp_target_proc_set_regs(t, &r, 0, 3, &err), 0);
    CHECK_EQ_INT(t->ops->stop(t, &tt, &nt, &err), 0);
    CHECK(nt == 1 && !tt[0].regs_ok && strstr(tt[0].error, "no registers"));
    t->ops->resume(t);

    pmp_target_free(t);
    close(f.fd);
    return unit_summary();
}

/*
 * fuzz-mem.c: libFuzzer harness over a memory image on the buffer target
 * (ext/target/target-buf.c): fast (no files, no symbols), for the decoders that
 * walk target memory from known addresses.  Built once per decoder:
 *   FUZZ_MEM_HEAP   pmp_heap_walk_target from main_arena/mp_ (param0,
 *                   param1) with tcache_tpoff param2, every list (heap.c)
 *   FUZZ_MEM_LOCKS  pmp_decode_wait of every thread's registers with the
 *                   glibc 2.36 lock layouts (locks.c)
 *
 * Input (little-endian; tests/fuzz/memimage.py writes seeds from cores):
 *   "PMPM" u32 nthreads (<= 64)
 *   nthreads x { i32 tid, u32 0, u64 regs[27] (user_regs_struct order) }
 *   u64 param0, param1, param2
 *   u32 nsegs (<= 256), nsegs x { u64 addr, u32 len, len bytes }
 * A malformed image is skipped (the harness's own parsing, not a finding).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>

#include "pmprof-internal.h"

#define MAX_THREADS 64
#define MAX_SEGS 256

struct rd {
    const uint8_t *p;
    size_t left;
};

static int
take(struct rd *r, void *out, size_t n)
{
    if (r->left < n)
        return -1;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pmp_target_thread th[MAX_THREADS];
    static struct pmp_buf_segment segs[MAX_SEGS];
    struct rd r = {data, size};
    struct pmp_target *t = NULL;
    uint32_t nth, nsegs, i;
    uint64_t param[3];
    char magic[4];

    if (take(&r, magic, 4) || memcmp(magic, "PMPM", 4) || take(&r, &nth, 4) ||
        nth > MAX_THREADS)
        return 0;
    for (i = 0; i < nth; i++) {
        struct user_regs_struct u;
        int32_t tid;
        uint32_t pad;
        if (take(&r, &tid, 4) || take(&r, &pad, 4) || take(&r, &u, sizeof(u)))
            return 0;
        memset(&th[i], 0, sizeof(th[i]));
        th[i].tid = tid;
        th[i].state = 'C';
        th[i].regs_ok = 1;
        pmp_regs_from_user(&th[i].regs, &u);
    }
    if (take(&r, param, sizeof(param)) || take(&r, &nsegs, 4) || nsegs > MAX_SEGS)
        return 0;
    for (i = 0; i < nsegs; i++) {
        uint32_t len;
        if (take(&r, &segs[i].addr, 8) || take(&r, &len, 4) || len > r.left)
            return 0;
        segs[i].data = r.p;
        segs[i].len = len;
        r.p += len;
        r.left -= len;
    }
    if (pmp_target_buf_new(&t, segs, nsegs, th, nth, NULL) != 0)
        return 0;
#ifdef FUZZ_MEM_HEAP
    {
        struct pmp_heap_opts o = {1, param[0] + 64, 1};
        struct pmp_heap *h = NULL;
        struct pmp_error err = {0};
        if (pmp_heap_walk_target(t, param[0], param[1], (int64_t)param[2], th,
                                 nth, &o, &h, &err) == 0)
            pmp_heap_free(h);
        else if (strchr(err.msg, '\n'))
            abort();
    }
#endif
#ifdef FUZZ_MEM_LOCKS
    {
        static int tids[MAX_THREADS];
        static uint64_t fs[MAX_THREADS];
        struct pmp_wait_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        for (i = 0; i < nth; i++) {
            tids[i] = th[i].tid;
            fs[i] = th[i].regs.fs_base;
        }
        ctx.tids = tids;
        ctx.fs_base = fs;
        ctx.n = nth;
        ctx.nptl = pmp_nptl_layout("2.36");
        for (i = 0; i < nth; i++) {
            struct pmp_wait w;
            pmp_target_drop_cache(t);
            pmp_decode_wait(t, &th[i].regs, &ctx, &w);
        }
    }
#endif
    pmp_target_free(t);
    return 0;
}

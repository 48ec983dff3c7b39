/*
 * test-core.c: tests of the ELF core-file backend (ext/target/target-core.c).
 *
 *   test-core
 *       Start a child (this binary, --child), gcore it, and check the core
 *       against the live child: tids, registers, a global, read-only data
 *       and code read back through NT_FILE; then the error paths, crafted
 *       hostile cores and the truncation/bit-flip robustness loop.
 *   test-core [-g ADDR=VALUE] [-r ADDR] [-p PID] [-x 1] CORE [TID...]
 *       Check an existing core: exactly the threads TID... (any if none),
 *       the u64 VALUE at ADDR, this binary's rodata marker at ADDR (which
 *       also requires NT_FILE to name this binary), pid PID, every rip in
 *       a PROT_EXEC segment (-x 1: kernel cores); then the error paths,
 *       crafted hostile variants and the robustness loop over it.
 *       tests/test_core_backend.py uses this on a kernel core made with
 *       --abort.
 *   test-core --child FD MAGIC      (internal) the child to gcore
 *   test-core --abort MAGIC         (internal) print "tid N" per thread,
 *                                   "pid N", "global ADDR VALUE",
 *                                   "rodata ADDR",
 *                                   then abort() to make a kernel core
 *
 * Exit status: 0 all passed, 1 some check failed, 77 skipped (gcore
 * failed, e.g. ptrace not permitted, or a sanitizer build).  The last line
 * is "N passed, M failed".
 */
#include <dirent.h>
#include <elf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pmprof-internal.h"

#define MAX_TIDS 64
#define SKIP 77
#define MAX_FUZZ_CORE (256u << 20)   /* the robustness loop holds a copy */

/*
 * gcore faults in every page it dumps: on an AddressSanitizer child
 * (terabytes of reserved shadow and allocator space) that got the child
 * OOM-killed after a multi-terabyte sparse core.  Sanitized builds skip
 * the gcore self-test; core files given on the command line still run.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/*
 * The child's known memory: a written global (so its page is dumped) and
 * read-only data (never dumped: it must come from the file NT_FILE names).
 * The only mutable global in this file; it exists to be found in a core.
 */
volatile uint64_t test_magic;
static const char test_rodata[] =
    "pmprof test-core: read-only data that only the file holds";

/* ---- checks ------------------------------------------------------- */

struct unit {
    int passed, failed;
};

static void __attribute__((format(printf, 5, 6)))
check_(struct unit *u, int ok, int line, const char *expr, const char *fmt,
       ...)
{
    va_list ap;

    if (ok) {
        u->passed++;
        return;
    }
    u->failed++;
    fprintf(stderr, "FAIL test-core.c:%d: %s", line, expr);
    if (fmt[1]) {   /* fmt is " " followed by the caller's format */
        fputc(':', stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

/* CHECK(u, cond) or CHECK(u, cond, "fmt", args...) */
#define CHECK(u, cond, ...) \
    check_((u), (cond) ? 1 : 0, __LINE__, #cond, " " __VA_ARGS__)

/* ---- small helpers ----------------------------------------------- */

static uint64_t
rng_next(uint64_t *s)   /* xorshift64*: deterministic fuzzing */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int
write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const unsigned char *p = data;
    ssize_t n;

    if (fd < 0)
        return -1;
    while (len > 0) {
        n = write(fd, p, len);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

static unsigned char *
read_whole(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t done = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0)
        goto out;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto out;
    while (done < (size_t)st.st_size) {
        n = read(fd, buf + done, (size_t)st.st_size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    *len = done;
out:
    if (fd >= 0)
        close(fd);
    return buf;
}

/* Read through ops->read until len bytes or a short read; returns bytes. */
static size_t
core_read_all(struct pmp_target *t, uint64_t addr, void *buf, size_t len)
{
    struct pmp_error err = {0};
    size_t done = 0;
    long n;

    while (done < len) {
        n = t->ops->read(t, addr + done, (char *)buf + done, len - done,
                         &err);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

static const struct pmp_mapping *
mapping_at(const struct pmp_mapping *maps, size_t n, uint64_t addr)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (addr >= maps[i].start && addr < maps[i].end)
            return &maps[i];
    return NULL;
}

static int
cmp_size_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x < y) - (x > y);
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

static size_t
list_tids(int pid, int *tids, size_t max)
{
    char path[64];
    struct dirent *de;
    size_t n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    d = opendir(path);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL && n < max)
        if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
            tids[n++] = atoi(de->d_name);
    closedir(d);
    qsort(tids, n, sizeof(*tids), cmp_int);
    return n;
}

/* 1 once /proc/PID/task/TID/syscall shows syscall nr (waits up to 5 s). */
static int
wait_in_syscall(int pid, int tid, long nr)
{
    char path[96], buf[64];
    struct timespec ts = {0, 10 * 1000 * 1000};
    int i, fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
    for (i = 0; i < 500; i++) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (strtol(buf, NULL, 10) == nr)
                return 1;
        }
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- core layout, as the tests see it ------------------------------ */

struct layout {
    Elf64_Ehdr eh;
    uint64_t phdr_end;       /* end of the program headers */
    uint64_t notes_end;      /* end of the last PT_NOTE */
    uint64_t note_off;       /* first PT_NOTE */
    uint64_t note_size;
    int nloads;
    int first_load;          /* index of the first PT_LOAD */
    int data_load;           /* last PT_LOAD with p_filesz >= 2 pages */
    uint64_t ntfile_desc;    /* file offset of NT_FILE's desc, 0 if none */
    uint64_t ntfile_size;
};

static int
parse_layout(const unsigned char *core, size_t size, struct layout *l)
{
    Elf64_Phdr ph;
    Elf64_Nhdr nh;
    uint64_t off, end;
    int i;

    memset(l, 0, sizeof(*l));
    l->first_load = l->data_load = -1;
    if (size < sizeof(l->eh))
        return -1;
    memcpy(&l->eh, core, sizeof(l->eh));
    l->phdr_end = l->eh.e_phoff + (uint64_t)l->eh.e_phnum * sizeof(ph);
    if (l->eh.e_phnum == PN_XNUM || l->phdr_end > size)
        return -1;
    l->notes_end = l->phdr_end;
    for (i = 0; i < l->eh.e_phnum; i++) {
        memcpy(&ph, core + l->eh.e_phoff + (size_t)i * sizeof(ph),
               sizeof(ph));
        if (ph.p_type == PT_LOAD) {
            l->nloads++;
            if (l->first_load < 0)
                l->first_load = i;
            if (ph.p_filesz >= 8192 && ph.p_offset + ph.p_filesz <= size)
                l->data_load = i;
        } else if (ph.p_type == PT_NOTE) {
            l->notes_end = PMP_MAX(l->notes_end, ph.p_offset + ph.p_filesz);
            if (!l->note_off) {
                l->note_off = ph.p_offset;
                l->note_size = ph.p_filesz;
            }
        }
    }
    if (!l->note_off || l->notes_end > size)
        return -1;
    for (off = l->note_off, end = l->note_off + l->note_size;
         off + sizeof(nh) <= end;) {
        memcpy(&nh, core + off, sizeof(nh));
        off += sizeof(nh) + ((nh.n_namesz + 3) & ~3u);
        if (nh.n_type == NT_FILE && nh.n_namesz == 5 && !l->ntfile_desc) {
            l->ntfile_desc = off;
            l->ntfile_size = nh.n_descsz;
        }
        off += (nh.n_descsz + 3) & ~3u;
    }
    return 0;
}

static void
load_phdr(const unsigned char *core, const struct layout *l, int i,
          Elf64_Phdr *ph)
{
    memcpy(ph, core + l->eh.e_phoff + (size_t)i * sizeof(*ph), sizeof(*ph));
}

static void
store_phdr(unsigned char *core, const struct layout *l, int i,
           const Elf64_Phdr *ph)
{
    memcpy(core + l->eh.e_phoff + (size_t)i * sizeof(*ph), ph, sizeof(*ph));
}

/* ---- checking one core --------------------------------------------- */

struct expect {
    const int *tids;          /* exact thread set; NULL: any */
    size_t ntids;
    int pid;                  /* 0: any */
    const char *comm;         /* NULL: any non-empty */
    const char *exe;          /* NT_FILE must name it; NULL: not checked */
    int have_global;
    uint64_t global_addr, global_val;
    uint64_t rodata_addr;     /* 0: not checked */
    int live_pid;             /* compare code with /proc/PID/mem; 0: no */
    long orig_rax;            /* every thread's; -1: not checked */
    int rip_exec;             /* rip's mapping must be PROT_EXEC (kernel
                                 cores; gcore omits unmodified code, so its
                                 mapping comes from NT_FILE, PROT_READ) */
};

/* Invariants that hold for any core that opens, hostile or not. */
static int
invariants_ok(struct pmp_target *t, char *why, size_t whylen)
{
    const struct pmp_core_file_map *files;
    const struct pmp_mapping *maps;
    struct pmp_target_thread *th;
    size_t nth, nmaps, nfiles, i;
    struct pmp_error err = {0};

    if (t->ops->stop(t, &th, &nth, &err) || nth == 0)
        return snprintf(why, whylen, "no threads"), 0;
    for (i = 1; i < nth; i++)
        if (th[i - 1].tid > th[i].tid)
            return snprintf(why, whylen, "threads not sorted"), 0;
    if (t->ops->mappings(t, &maps, &nmaps, &err))
        return snprintf(why, whylen, "mappings failed"), 0;
    for (i = 0; i < nmaps; i++) {
        if (maps[i].start >= maps[i].end || !maps[i].path)
            return snprintf(why, whylen, "bad mapping %zu", i), 0;
        if (i && maps[i - 1].end > maps[i].start)
            return snprintf(why, whylen, "mappings overlap at %zu", i), 0;
    }
    nfiles = pmp_target_core_files(t, &files);
    for (i = 0; i < nfiles; i++) {
        if (files[i].start >= files[i].end || !files[i].path)
            return snprintf(why, whylen, "bad file entry %zu", i), 0;
        if (i && files[i - 1].start > files[i].start)
            return snprintf(why, whylen, "files not sorted"), 0;
    }
    if (strlen(pmp_target_core_comm(t)) > 16 || !pmp_target_core_elf(t))
        return snprintf(why, whylen, "bad comm or elf"), 0;
    return 1;
}

/* Read around every mapping and thread (bounded); must not crash. */
static void
exercise(struct pmp_target *t)
{
    static const uint64_t probes[] = {0, 1, 4095, 4096, UINT64_MAX - 7,
                                      UINT64_C(0x7fffffffffff)};
    unsigned char buf[8192];
    const struct pmp_mapping *maps;
    struct pmp_target_thread *th;
    struct pmp_error err = {0};
    size_t nmaps, nth, i, j;
    uint64_t len;

    if (!t->ops->mappings(t, &maps, &nmaps, &err)) {
        for (i = 0; i < nmaps && i < 4096; i++) {
            len = maps[i].end - maps[i].start;
            core_read_all(t, maps[i].start, buf, sizeof(buf));
            core_read_all(t, maps[i].start + len / 2, buf, 512);
            core_read_all(t, maps[i].end - PMP_MIN(len, 4096), buf, 4096);
            core_read_all(t, maps[i].end - PMP_MIN(len, 8), buf, 16);
        }
    }
    if (!t->ops->stop(t, &th, &nth, &err)) {
        for (i = 0; i < nth && i < 256; i++) {
            core_read_all(t, th[i].regs.r[PMP_REG_RSP], buf, 256);
            core_read_all(t, th[i].regs.r[PMP_REG_RIP], buf, 64);
            core_read_all(t, th[i].regs.fs_base, buf, 64);
        }
    }
    for (j = 0; j < PMP_ARRAY_SIZE(probes); j++)
        core_read_all(t, probes[j], buf, sizeof(buf));
}

/* Compare n bytes of core memory at addr with /proc/PID/mem. */
static int
same_as_live(struct pmp_target *t, int pid, uint64_t addr, uint64_t n)
{
    unsigned char a[65536], b[65536];
    char path[64];
    uint64_t done = 0;
    size_t chunk;
    int fd, ok = 1;

    snprintf(path, sizeof(path), "/proc/%d/mem", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    while (ok && done < n) {
        chunk = (size_t)PMP_MIN(n - done, (uint64_t)sizeof(a));
        ok = core_read_all(t, addr + done, a, chunk) == chunk &&
             pread(fd, b, chunk, (off_t)(addr + done)) == (ssize_t)chunk &&
             memcmp(a, b, chunk) == 0;
        done += chunk;
    }
    close(fd);
    return ok;
}

static void
check_threads(struct unit *u, struct pmp_target *t, const struct expect *e,
              const struct pmp_mapping *maps, size_t nmaps)
{
    const struct pmp_mapping *m;
    struct pmp_target_thread *th;
    struct pmp_error err = {0};
    unsigned char code[16];
    uint64_t rsp, rip, v;
    size_t nth, i;
    int rc;

    rc = t->ops->stop(t, &th, &nth, &err);
    CHECK(u, rc == 0 && nth > 0, "%s", err.msg);
    if (rc || nth == 0)
        return;
    if (e->tids) {
        CHECK(u, nth == e->ntids, "%zu threads, expected %zu", nth,
              e->ntids);
        for (i = 0; i < nth && i < e->ntids; i++)
            CHECK(u, th[i].tid == e->tids[i], "thread %zu: tid %d, not %d",
                  i, th[i].tid, e->tids[i]);
    }
    for (i = 0; i < nth; i++) {
        rsp = th[i].regs.r[PMP_REG_RSP];
        rip = th[i].regs.r[PMP_REG_RIP];
        CHECK(u, th[i].state == 'C' && th[i].regs_ok && !th[i].name[0] &&
                     !th[i].error[0],
              "tid %d", th[i].tid);
        m = mapping_at(maps, nmaps, rsp);
        CHECK(u, m && (m->prot & PROT_READ) && (m->prot & PROT_WRITE),
              "tid %d: rsp 0x%" PRIx64 " not in a rw mapping", th[i].tid,
              rsp);
        CHECK(u, core_read_all(t, rsp, &v, 8) == 8,
              "tid %d: cannot read the stack", th[i].tid);
        m = mapping_at(maps, nmaps, rip);
        CHECK(u, m && m->path[0] == '/' && (m->prot & PROT_READ) &&
                     !(m->prot & PROT_WRITE) &&
                     (!e->rip_exec || (m->prot & PROT_EXEC)),
              "tid %d: rip 0x%" PRIx64 " not in a file-backed code "
              "mapping",
              th[i].tid, rip);
        CHECK(u, core_read_all(t, rip, code, sizeof(code)) == sizeof(code),
              "tid %d: cannot read code at rip", th[i].tid);
        if (e->live_pid)
            CHECK(u, same_as_live(t, e->live_pid, rip, sizeof(code)),
                  "tid %d: code at rip differs from the live process",
                  th[i].tid);
        /* glibc's TCB starts with a pointer to itself (tcbhead_t.tcb). */
        CHECK(u, core_read_all(t, th[i].regs.fs_base, &v, 8) == 8 &&
                     v == th[i].regs.fs_base,
              "tid %d: fs_base 0x%" PRIx64 " is not a TCB", th[i].tid,
              th[i].regs.fs_base);
        if (e->orig_rax >= 0)
            CHECK(u, th[i].regs.orig_rax == (uint64_t)e->orig_rax,
                  "tid %d: orig_rax %" PRIu64 ", expected %ld", th[i].tid,
                  th[i].regs.orig_rax, e->orig_rax);
    }
}

static void
check_memory(struct unit *u, struct pmp_target *t, const struct expect *e,
             const struct pmp_mapping *maps, size_t nmaps)
{
    char rodata[sizeof(test_rodata)];
    unsigned char buf[16], lo[8], hi[8];
    uint64_t v, addr;
    size_t i, checked = 0;
    int spanned = 0;

    if (e->have_global)
        CHECK(u, core_read_all(t, e->global_addr, &v, 8) == 8 &&
                     v == e->global_val,
              "global at 0x%" PRIx64, e->global_addr);
    if (e->rodata_addr)
        CHECK(u, core_read_all(t, e->rodata_addr, rodata, sizeof(rodata)) ==
                         sizeof(rodata) &&
                     memcmp(rodata, test_rodata, sizeof(rodata)) == 0,
              "read-only data at 0x%" PRIx64 " (must come from the file)",
              e->rodata_addr);
    /* Read-only file mappings (code, rodata) are mostly not in the core:
       they must read back through NT_FILE exactly as the live process
       sees them. */
    for (i = 0; e->live_pid && i < nmaps; i++) {
        if ((maps[i].prot & PROT_WRITE) || maps[i].path[0] != '/' ||
            maps[i].end - maps[i].start > (64u << 20))
            continue;
        CHECK(u, same_as_live(t, e->live_pid, maps[i].start,
                              maps[i].end - maps[i].start),
              "mapping of %s at 0x%" PRIx64 " differs from the live "
              "process",
              maps[i].path, maps[i].start);
        checked++;
    }
    if (e->live_pid)
        CHECK(u, checked >= 6, "only %zu file mappings compared", checked);
    /* A read spanning two adjacent, readable segments. */
    for (i = 0; i + 1 < nmaps && !spanned; i++) {
        addr = maps[i].end;
        if (maps[i + 1].start != addr || addr - maps[i].start < 8 ||
            maps[i + 1].end - addr < 8 ||
            core_read_all(t, addr - 8, lo, 8) != 8 ||
            core_read_all(t, addr, hi, 8) != 8)
            continue;
        spanned = 1;
        CHECK(u, t->ops->read(t, addr - 8, buf, 16, NULL) == 16 &&
                     memcmp(buf, lo, 8) == 0 && memcmp(buf + 8, hi, 8) == 0,
              "read across 0x%" PRIx64, addr);
    }
    /* Nothing is mapped at 0 or at the top; reads there are empty. */
    CHECK(u, t->ops->read(t, 0, buf, 16, NULL) == 0);
    CHECK(u, t->ops->read(t, UINT64_MAX - 3, buf, 16, NULL) == 0);
    CHECK(u, t->ops->read(t, maps[0].start, buf, 0, NULL) == 0);
}

struct modlist {
    const char *exe;
    int n, found_exe;
};

static int
count_module(Dwfl_Module *mod, void **userdata, const char *name,
             Dwarf_Addr start, void *arg)
{
    struct modlist *ml = arg;
    const char *file = NULL;

    (void)userdata;
    (void)start;
    dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &file, NULL);
    ml->n++;
    if (ml->exe && ((file && strcmp(file, ml->exe) == 0) ||
                    strcmp(name, ml->exe) == 0))
        ml->found_exe = 1;
    return DWARF_CB_OK;
}

/* The Elf handle must serve libdwfl's core reader (symbolize.c uses it). */
static void
check_dwfl(struct unit *u, struct pmp_target *t, const struct expect *e)
{
    static const Dwfl_Callbacks cb = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
    };
    struct modlist ml = {e->exe, 0, 0};
    Dwfl *dwfl = dwfl_begin(&cb);
    int rc;

    if (!dwfl)
        return;
    dwfl_report_begin(dwfl);
    rc = dwfl_core_file_report(dwfl, pmp_target_core_elf(t), NULL);
    dwfl_report_end(dwfl, NULL, NULL);
    CHECK(u, rc > 0, "dwfl_core_file_report: %d %s", rc, dwfl_errmsg(-1));
    dwfl_getmodules(dwfl, count_module, &ml, 0);
    CHECK(u, ml.n >= 2, "libdwfl found %d modules", ml.n);
    if (e->exe)
        CHECK(u, ml.found_exe, "libdwfl did not report %s", e->exe);
    dwfl_end(dwfl);
}

static void
check_core(struct unit *u, const char *path, const struct expect *e)
{
    const struct pmp_core_file_map *files;
    const struct pmp_mapping *maps;
    struct pmp_target *t = NULL;
    struct pmp_error err = {0};
    size_t nmaps = 0, nfiles, i;
    char why[128] = "";
    GElf_Ehdr eh;
    Elf *elf;
    int rc, found;

    rc = pmp_target_core_new(&t, path, &err);
    CHECK(u, rc == 0 && t, "opening %s: %s", path, err.msg);
    if (rc)
        return;
    CHECK(u, strcmp(t->ops->kind, "core") == 0 && t->cache == NULL);
    CHECK(u, invariants_ok(t, why, sizeof(why)), "%s", why);
    if (e->pid)
        CHECK(u, t->pid == e->pid, "pid %d, expected %d", t->pid, e->pid);
    if (e->comm)
        CHECK(u, strcmp(pmp_target_core_comm(t), e->comm) == 0,
              "comm '%s', expected '%s'", pmp_target_core_comm(t), e->comm);
    else
        CHECK(u, pmp_target_core_comm(t)[0] != '\0');
    elf = pmp_target_core_elf(t);
    CHECK(u, elf && elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &eh) &&
                 eh.e_type == ET_CORE);
    nfiles = pmp_target_core_files(t, &files);
    CHECK(u, nfiles > 0, "no NT_FILE entries");
    for (i = 0, found = 0; e->exe && i < nfiles; i++)
        found |= strcmp(files[i].path, e->exe) == 0;
    if (e->exe)
        CHECK(u, found, "NT_FILE does not name %s", e->exe);
    rc = t->ops->mappings(t, &maps, &nmaps, &err);
    CHECK(u, rc == 0 && nmaps > 0, "%s", err.msg);
    if (rc == 0 && nmaps > 0) {
        check_threads(u, t, e, maps, nmaps);
        check_memory(u, t, e, maps, nmaps);
    }
    check_dwfl(u, t, e);
    t->ops->resume(t);
    t->ops->free(t);
}

/* ---- error paths and hostile cores --------------------------------- */

/* Open path; check the code and that the message contains want. */
static void
expect_error(struct unit *u, const char *path, int code, const char *want,
             const char *what)
{
    struct pmp_target *t = NULL;
    struct pmp_error err = {0};
    int rc = pmp_target_core_new(&t, path, &err);

    CHECK(u, rc == code && !t && err.code == code &&
                 strstr(err.msg, want) != NULL,
          "%s: got %d '%s', expected %d '...%s...'", what, rc, err.msg, code,
          want);
    if (t)
        t->ops->free(t);
}

/* Write core[0..len) (patched) to path and open it; *out on success. */
static int
open_variant(const char *path, const unsigned char *core, size_t len,
             struct pmp_target **out, struct pmp_error *err)
{
    *out = NULL;
    if (write_file(path, core, len) != 0)
        return PMP_E_SYS;
    return pmp_target_core_new(out, path, err);
}

/*
 * Rename every NT_FILE path equal to from to target, padded with extra
 * slashes to the same length ("/dev" + "//..." + "/zero").  Returns the
 * number of paths renamed (0 if target does not fit).
 */
static int
retarget_files(unsigned char *core, const struct layout *l, const char *from,
               const char *target)
{
    const char *slash = strrchr(target, '/');
    size_t flen = strlen(from), tlen = strlen(target), pos, end, len;
    char padded[PATH_MAX];
    uint64_t count;
    int n = 0;

    if (!l->ntfile_desc || l->ntfile_size < 16 || tlen > flen || !slash ||
        flen >= sizeof(padded))
        return 0;
    len = (size_t)(slash - target);
    memcpy(padded, target, len);
    memset(padded + len, '/', flen - tlen);
    memcpy(padded + len + (flen - tlen), slash, tlen - len + 1);
    memcpy(&count, core + l->ntfile_desc, 8);
    if (count > (l->ntfile_size - 16) / 24)
        return 0;
    end = l->ntfile_desc + l->ntfile_size;
    for (pos = l->ntfile_desc + 16 + count * 24; pos < end; pos += len + 1) {
        len = strnlen((const char *)core + pos, end - pos);
        if (len == flen && memcmp(core + pos, from, flen) == 0) {
            memcpy(core + pos, padded, flen);
            n++;
        }
    }
    return n;
}

/* rodata_addr's bytes come from the file; a non-regular file gives none. */
static void
check_retargeted(struct unit *u, const char *path, unsigned char *core,
                 size_t size, const struct layout *l, const char *exe,
                 const char *target, uint64_t rodata_addr)
{
    char buf[sizeof(test_rodata)];
    struct pmp_target *t;
    struct pmp_error err = {0};
    int rc;

    if (retarget_files(core, l, exe, target) == 0)
        return;
    rc = open_variant(path, core, size, &t, &err);
    CHECK(u, rc == 0, "NT_FILE naming %s: %s", target, err.msg);
    if (rc)
        return;
    CHECK(u, t->ops->read(t, rodata_addr, buf, sizeof(buf), NULL) == 0,
          "bytes read from %s", target);
    t->ops->free(t);
}

static void
check_error_paths(struct unit *u, const char *dir, const char *exe,
                  const unsigned char *orig, size_t size,
                  const struct layout *l, uint64_t rodata_addr)
{
    char fifo[PATH_MAX];
    unsigned char *core = malloc(size);
    char path[PATH_MAX];
    struct pmp_target *t;
    struct pmp_error err = {0};
    Elf64_Phdr ph;
    uint64_t v, cut;
    size_t nth, nmaps, nmaps0 = 0, nfiles0 = 0, i, k;
    struct pmp_target_thread *th;
    const struct pmp_mapping *maps;
    char why[128] = "";
    int rc;

    if (!core)
        return;
    snprintf(path, sizeof(path), "%s/variant", dir);
    if (!open_variant(path, orig, size, &t, &err)) {
        nfiles0 = pmp_target_core_files(t, NULL);
        t->ops->mappings(t, &maps, &nmaps0, &err);
        t->ops->free(t);
    }

    write_file(path, "", 0);
    expect_error(u, path, PMP_E_FORMAT, "is not an ELF file", "empty file");
    write_file(path, "#!/bin/sh\necho not an ELF file\n", 31);
    expect_error(u, path, PMP_E_FORMAT, "is not an ELF file", "text file");
    expect_error(u, exe, PMP_E_FORMAT,
                 "is not a core file (it is an executable or library)",
                 "executable");
    expect_error(u, dir, PMP_E_FORMAT, "not a regular file", "directory");
    snprintf(path, sizeof(path), "%s/no-such-core", dir);
    expect_error(u, path, PMP_E_NOTFOUND, "cannot open", "missing file");
    snprintf(path, sizeof(path), "%s/variant", dir);

    /* Cut inside the ELF header, the program headers, the notes. */
    write_file(path, orig, 40);
    expect_error(u, path, PMP_E_CORRUPT, "is truncated", "cut ELF header");
    write_file(path, orig, (size_t)l->phdr_end - 1);
    expect_error(u, path, PMP_E_CORRUPT, "is truncated", "cut phdrs");
    write_file(path, orig, (size_t)(l->note_off + l->note_size / 2));
    expect_error(u, path, PMP_E_CORRUPT, "is truncated", "cut notes");

    /* Other machines and classes. */
    memcpy(core, orig, size);
    core[EI_CLASS] = ELFCLASS32;
    write_file(path, core, size);
    expect_error(u, path, PMP_E_UNSUPPORTED, "only x86_64", "ELFCLASS32");
    memcpy(core, orig, size);
    core[18] = EM_AARCH64;
    core[19] = 0;
    write_file(path, core, size);
    expect_error(u, path, PMP_E_UNSUPPORTED, "aarch64", "aarch64 core");

    /* PN_XNUM with no section header to hold the count. */
    memcpy(core, orig, size);
    ((Elf64_Ehdr *)core)->e_phnum = PN_XNUM;
    ((Elf64_Ehdr *)core)->e_shoff = size - 8;
    write_file(path, core, size);
    expect_error(u, path, PMP_E_CORRUPT, "is truncated", "PN_XNUM");

    /*
     * A core cut inside a dumped segment still opens; bytes past the cut
     * are lost (short read), bytes before it are there.  Kernel cores
     * have their notes first and are cut for real; gcore writes its notes
     * last, so there the segment is made to run past the end instead.
     */
    if (l->data_load >= 0) {
        load_phdr(orig, l, l->data_load, &ph);
        if (ph.p_offset >= l->notes_end) {
            cut = ph.p_offset + ph.p_filesz / 2;
            rc = open_variant(path, orig, (size_t)cut, &t, &err);
        } else {
            memcpy(core, orig, size);
            ph.p_offset = size - ph.p_filesz / 2;
            store_phdr(core, l, l->data_load, &ph);
            cut = size;
            rc = open_variant(path, core, size, &t, &err);
        }
        CHECK(u, rc == 0, "data cut at %" PRIu64 ": %s", cut, err.msg);
        if (rc == 0) {
            CHECK(u, t->ops->stop(t, &th, &nth, &err) == 0 && nth > 0);
            CHECK(u, core_read_all(t, ph.p_vaddr, &v, 8) == 8);
            CHECK(u, t->ops->read(t, ph.p_vaddr + ph.p_filesz / 2 - 4, &v, 8,
                                  NULL) == 4,
                  "read across the cut must be short");
            CHECK(u, t->ops->read(t, ph.p_vaddr + ph.p_filesz - 8, &v, 8,
                                  NULL) == 0,
                  "bytes past the cut must be unreadable, not zero");
            t->ops->free(t);
        }
    }

    /* Hostile NT_FILE: huge count, zero page size, unterminated name. */
    if (l->ntfile_desc && l->ntfile_size >= 16) {
        memcpy(core, orig, size);
        v = UINT64_MAX;
        memcpy(core + l->ntfile_desc, &v, 8);
        rc = open_variant(path, core, size, &t, &err);
        CHECK(u, rc == 0, "NT_FILE count ~0: %s", err.msg);
        if (!rc) {
            CHECK(u, invariants_ok(t, why, sizeof(why)), "%s", why);
            exercise(t);
            t->ops->free(t);
        }
        memcpy(core, orig, size);
        v = 0;
        memcpy(core + l->ntfile_desc + 8, &v, 8);
        rc = open_variant(path, core, size, &t, &err);
        CHECK(u, rc == 0 && pmp_target_core_files(t, NULL) == 0,
              "NT_FILE page size 0: %s", err.msg);
        if (!rc) {
            t->ops->mappings(t, &maps, &nmaps, &err);
            for (i = 0; i < nmaps; i++)
                CHECK(u, maps[i].path[0] == '\0');
            exercise(t);
            t->ops->free(t);
        }
        memcpy(core, orig, size);
        if (core[l->ntfile_desc + l->ntfile_size - 1] == '\0') {
            core[l->ntfile_desc + l->ntfile_size - 1] = 'x';
            rc = open_variant(path, core, size, &t, &err);
            CHECK(u, rc == 0 && pmp_target_core_files(t, NULL) ==
                                    nfiles0 - 1,
                  "unterminated last NT_FILE name: %s", err.msg);
            if (!rc)
                t->ops->free(t);
        }
    }

    /* NT_FILE naming a device or a FIFO: refused, and without blocking. */
    if (rodata_addr) {
        memcpy(core, orig, size);
        check_retargeted(u, path, core, size, l, exe, "/dev/zero",
                         rodata_addr);
        snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
        memcpy(core, orig, size);
        if (mkfifo(fifo, 0600) == 0)
            check_retargeted(u, path, core, size, l, exe, fifo, rodata_addr);
    }

    /* Hostile PT_LOADs: one wrapping around, one overlapping the next. */
    if (l->first_load >= 0 && l->nloads >= 2) {
        memcpy(core, orig, size);
        load_phdr(core, l, l->first_load, &ph);
        ph.p_memsz = UINT64_MAX;
        store_phdr(core, l, l->first_load, &ph);
        rc = open_variant(path, core, size, &t, &err);
        CHECK(u, rc == 0, "wrapping PT_LOAD: %s", err.msg);
        if (!rc) {
            /* Dropped: what is left of it is what NT_FILE names. */
            t->ops->mappings(t, &maps, &nmaps, &err);
            for (i = 0, k = 0; i < nmaps; i++)
                k += maps[i].end - maps[i].start > (UINT64_C(1) << 47);
            CHECK(u, k == 0 && nmaps <= nmaps0 && nmaps > 0,
                  "%zu mappings (%zu huge), %zu before", nmaps, k, nmaps0);
            CHECK(u, invariants_ok(t, why, sizeof(why)), "%s", why);
            t->ops->free(t);
        }
        memcpy(core, orig, size);
        load_phdr(core, l, l->first_load, &ph);
        ph.p_memsz += UINT64_C(1) << 32;
        ph.p_filesz = UINT64_C(1) << 40;
        store_phdr(core, l, l->first_load, &ph);
        rc = open_variant(path, core, size, &t, &err);
        CHECK(u, rc == 0, "overlapping PT_LOAD: %s", err.msg);
        if (!rc) {
            CHECK(u, invariants_ok(t, why, sizeof(why)), "%s", why);
            exercise(t);
            t->ops->free(t);
        }
    }
    free(core);
}

/*
 * Robustness: truncate the core at many offsets and flip bytes, mostly in
 * the headers and notes.  Each variant must open or fail with a clean
 * error, keep the invariants, and survive reads everywhere.
 */
static void
robustness(struct unit *u, const char *dir, const unsigned char *orig,
           size_t size, const struct layout *l, size_t nthreads)
{
    char path[PATH_MAX], why[128] = "";
    uint64_t cuts[400], rng = UINT64_C(0x9e3779b97f4a7c15), r;
    size_t ncuts = 0, i, j, k, nth, n, pos;
    struct pmp_target_thread *th;
    struct pmp_target *t;
    struct pmp_error err;
    int fd, rc, bad, bad_cut = 0, bad_flip = 0, opened = 0, cut_opened = 0;
    unsigned char saved[8], b;

    snprintf(path, sizeof(path), "%s/fuzz", dir);
    /* Truncations: every offset up to 64, around the headers, the notes
       and the end, and pseudo-random ones; applied shortest last. */
    for (i = 0; i < 64; i++)
        cuts[ncuts++] = i;
    for (i = 0; i < 16; i++) {
        cuts[ncuts++] = l->phdr_end - 8 + i;
        cuts[ncuts++] = l->note_off - 8 + i;
        cuts[ncuts++] = l->notes_end - 8 + i;
        cuts[ncuts++] = size - i * 97;
    }
    while (ncuts < 250)
        cuts[ncuts++] = l->note_off + rng_next(&rng) % (l->note_size + 1);
    while (ncuts < PMP_ARRAY_SIZE(cuts))
        cuts[ncuts++] = rng_next(&rng) % (size + 1);
    for (i = 0; i < ncuts; i++)
        cuts[i] = PMP_MIN(cuts[i], size);
    qsort(cuts, ncuts, sizeof(*cuts), cmp_size_desc);
    if (write_file(path, orig, size) != 0)
        return;
    for (i = 0; i < ncuts; i++) {
        memset(&err, 0, sizeof(err));
        t = NULL;
        why[0] = '\0';
        rc = truncate(path, (off_t)cuts[i]);
        if (rc == 0)
            rc = pmp_target_core_new(&t, path, &err);
        if (cuts[i] < SELFMAG)
            bad = rc != PMP_E_FORMAT;
        else if (cuts[i] < l->notes_end)
            bad = rc != PMP_E_CORRUPT;
        else
            bad = rc != 0 || t->ops->stop(t, &th, &nth, &err) ||
                  nth != nthreads;
        bad |= rc != 0 && !err.msg[0];
        cut_opened += rc == 0;
        if (t) {
            bad |= !invariants_ok(t, why, sizeof(why));
            exercise(t);
            t->ops->free(t);
        }
        if (bad)
            fprintf(stderr, "  cut at %zu: rc %d %s %s\n", cuts[i], rc,
                    err.msg, why);
        bad_cut += bad;
    }
    CHECK(u, bad_cut == 0, "%d of %zu truncation variants", bad_cut, ncuts);

    /* Byte flips, restored after each variant. */
    if (write_file(path, orig, size) != 0)
        return;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    for (i = 0; i < 500; i++) {
        size_t where[8];

        n = 1 + (size_t)(rng_next(&rng) % 8);
        for (j = 0; j < n; j++) {
            /* Mostly the ELF and program headers and the notes. */
            r = rng_next(&rng) % 8;
            pos = (size_t)(r < 3   ? rng_next(&rng) % l->phdr_end
                           : r < 7 ? l->note_off +
                                         rng_next(&rng) % l->note_size
                                   : rng_next(&rng) % size);
            where[j] = pos;
            if (pread(fd, &saved[j], 1, (off_t)pos) != 1)
                break;
            k = rng_next(&rng) % 4;
            b = k == 0 ? (unsigned char)(saved[j] ^ (1u << (rng_next(&rng) % 8)))
              : k == 1 ? 0xff
              : k == 2 ? 0
                       : (unsigned char)rng_next(&rng);
            if (pwrite(fd, &b, 1, (off_t)pos) != 1)
                break;
        }
        n = j;
        memset(&err, 0, sizeof(err));
        t = NULL;
        rc = pmp_target_core_new(&t, path, &err);
        if (rc == 0) {
            opened++;
            if (!invariants_ok(t, why, sizeof(why))) {
                fprintf(stderr, "  flip %zu: %s\n", i, why);
                bad_flip++;
            }
            exercise(t);
            t->ops->free(t);
        } else if ((rc != PMP_E_FORMAT && rc != PMP_E_CORRUPT &&
                    rc != PMP_E_UNSUPPORTED) || !err.msg[0] || t) {
            fprintf(stderr, "  flip %zu: rc %d %s\n", i, rc, err.msg);
            bad_flip++;
        }
        while (n-- > 0)   /* restore in reverse: a byte may repeat */
            if (pwrite(fd, &saved[n], 1, (off_t)where[n]) != 1)
                bad_flip++;
    }
    close(fd);
    CHECK(u, bad_flip == 0, "bit-flip variants (%d of 500 opened)", opened);
    printf("robustness: %zu truncations (%d opened), 500 byte-flip "
           "variants (%d opened)\n",
           ncuts, cut_opened, opened);
    CHECK(u, opened > 0, "no flipped variant opened at all");
}

static void
check_hostile(struct unit *u, const char *dir, const char *exe,
              const char *core_path, uint64_t rodata_addr)
{
    struct pmp_target_thread *th;
    struct pmp_target *t;
    struct pmp_error err = {0};
    unsigned char *core;
    struct layout l;
    size_t size = 0, nth = 0;
    struct stat st;

    if (stat(core_path, &st) != 0 || st.st_size > MAX_FUZZ_CORE) {
        printf("note: %s is over %u MiB: robustness loop skipped\n",
               core_path, MAX_FUZZ_CORE >> 20);
        return;
    }
    core = read_whole(core_path, &size);
    CHECK(u, core && parse_layout(core, size, &l) == 0,
          "cannot read the layout of %s", core_path);
    if (!core || parse_layout(core, size, &l) != 0)
        goto out;
    if (pmp_target_core_new(&t, core_path, &err) == 0) {
        t->ops->stop(t, &th, &nth, &err);
        t->ops->free(t);
    }
    check_error_paths(u, dir, exe, core, size, &l, rodata_addr);
    robustness(u, dir, core, size, &l, nth);
out:
    free(core);
}

/* ---- modes ------------------------------------------------------- */

static void *
idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int
child_main(int fd, uint64_t magic)
{
    pthread_t th;
    char line[128];
    int i, n;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(120);
    test_magic = magic;
    for (i = 0; i < 2; i++)
        if (pthread_create(&th, NULL, idle_thread, NULL) != 0)
            return 1;
    n = snprintf(line, sizeof(line), "%p %p\n", (void *)&test_magic,
                 (const void *)test_rodata);
    if (write(fd, line, (size_t)n) != n)
        return 1;
    close(fd);
    for (;;)
        pause();
}

static int
abort_main(uint64_t magic)
{
    pthread_t th;
    int tids[MAX_TIDS];
    size_t n, i;

    test_magic = magic;
    if (pthread_create(&th, NULL, idle_thread, NULL) != 0)
        return 1;
    n = list_tids(getpid(), tids, MAX_TIDS);
    for (i = 0; i < n; i++) {
        if (tids[i] != getpid() && !wait_in_syscall(getpid(), tids[i],
                                                    SYS_pause))
            return 1;
        printf("tid %d\n", tids[i]);
    }
    printf("pid %d\nglobal %p 0x%" PRIx64 "\nrodata %p\n", (int)getpid(),
           (void *)&test_magic, (uint64_t)test_magic,
           (const void *)test_rodata);
    fflush(stdout);
    abort();
}

static void
read_comm(int pid, char *comm, size_t len)
{
    char path[64];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, comm, len - 1) : -1;

    if (fd >= 0)
        close(fd);
    comm[n > 0 ? n : 0] = '\0';
    comm[strcspn(comm, "\n")] = '\0';
}

static void
remove_dir(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d = opendir(dir);

    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The default mode: gcore a child of ours and check everything. */
static int
self_test(struct unit *u, const char *exe)
{
    char dir[] = "/tmp/pmp-test-core-XXXXXX", core[PATH_MAX], cmd[PATH_MAX];
    char fdarg[16], magicarg[32], line[128] = "", comm[32];
    int pfd[2] = {-1, -1}, tids[MAX_TIDS], status, skip = 0;
    uint64_t magic = UINT64_C(0x706d70726f660000) ^ (uint64_t)getpid() ^
                     ((uint64_t)time(NULL) << 20);
    void *gaddr = NULL, *raddr = NULL;
    struct expect e;
    size_t ntids = 0, i;
    pid_t pid = -1;
    ssize_t n;

    if (SANITIZED) {
        fprintf(stderr, "test-core: SKIP: no gcore self-test in a "
                        "sanitizer build (pass a core file instead)\n");
        return 1;
    }
    if (!mkdtemp(dir) || pipe(pfd) != 0) {
        perror("test-core: setup");
        u->failed++;
        return 0;
    }
    snprintf(magicarg, sizeof(magicarg), "%" PRIu64, magic);
    snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        execl(exe, exe, "--child", fdarg, magicarg, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    n = pid > 0 ? read(pfd[0], line, sizeof(line) - 1) : -1;
    close(pfd[0]);
    if (n <= 0 || sscanf(line, "%p %p", &gaddr, &raddr) != 2) {
        fprintf(stderr, "test-core: the child did not start\n");
        u->failed++;
        goto out;
    }
    ntids = list_tids(pid, tids, MAX_TIDS);
    CHECK(u, ntids == 3, "child has %zu threads", ntids);
    for (i = 0; i < ntids; i++)
        CHECK(u, wait_in_syscall(pid, tids[i], SYS_pause),
              "tid %d never blocked in pause()", tids[i]);
    snprintf(cmd, sizeof(cmd), "gcore -o %s/core %d >%s/gcore.log 2>&1",
             dir, (int)pid, dir);
    status = system(cmd);
    snprintf(core, sizeof(core), "%s/core.%d", dir, (int)pid);
    if (status != 0 || access(core, R_OK) != 0) {
        fprintf(stderr, "test-core: SKIP: gcore failed (status %d); see "
                        "below\n", status);
        snprintf(cmd, sizeof(cmd), "tail -5 %s/gcore.log >&2", dir);
        if (system(cmd)) {}
        skip = 1;
        goto out;
    }
    read_comm(pid, comm, sizeof(comm));
    memset(&e, 0, sizeof(e));
    e.tids = tids;
    e.ntids = ntids;
    e.pid = pid;
    e.comm = comm;
    e.exe = exe;
    e.have_global = 1;
    e.global_addr = (uint64_t)(uintptr_t)gaddr;
    e.global_val = magic;
    e.rodata_addr = (uint64_t)(uintptr_t)raddr;
    e.live_pid = pid;
    e.orig_rax = SYS_pause;
    check_core(u, core, &e);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pid = -1;
    check_hostile(u, dir, exe, core, e.rodata_addr);
out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    remove_dir(dir);
    return skip;
}

/* test-core [-g ADDR=VALUE] [-r ADDR] [-p PID] CORE [TID...] */
static int
core_test(struct unit *u, const char *exe, int argc, char **argv)
{
    char dir[] = "/tmp/pmp-test-core-XXXXXX";
    int tids[MAX_TIDS], i = 1, ntids = 0;
    unsigned long long a, v;
    struct expect e;

    memset(&e, 0, sizeof(e));
    e.orig_rax = -1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-g") == 0 &&
            sscanf(argv[i + 1], "%llx=%llx", &a, &v) == 2) {
            e.have_global = 1;
            e.global_addr = a;
            e.global_val = v;
        } else if (strcmp(argv[i], "-r") == 0 &&
                   sscanf(argv[i + 1], "%llx", &a) == 1) {
            e.rodata_addr = a;
            e.exe = exe;
        } else if (strcmp(argv[i], "-p") == 0) {
            e.pid = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "-x") == 0) {
            e.rip_exec = atoi(argv[i + 1]);
        } else {
            break;
        }
    }
    if (i >= argc || argc - i - 1 > MAX_TIDS) {
        fprintf(stderr, "usage: test-core [-g ADDR=VALUE] [-r ADDR] "
                        "[-p PID] [-x 1] CORE [TID...]\n");
        return 2;
    }
    for (ntids = 0; ntids < argc - i - 1; ntids++)
        tids[ntids] = atoi(argv[i + 1 + ntids]);
    qsort(tids, (size_t)ntids, sizeof(*tids), cmp_int);
    if (ntids) {
        e.tids = tids;
        e.ntids = (size_t)ntids;
    }
    check_core(u, argv[i], &e);
    if (!mkdtemp(dir)) {
        perror("test-core: mkdtemp");
        u->failed++;
        return 0;
    }
    check_hostile(u, dir, exe, argv[i], e.rodata_addr);
    remove_dir(dir);
    return 0;
}

int
main(int argc, char **argv)
{
    struct unit u = {0, 0};
    char exe[PATH_MAX];
    ssize_t n;
    int rc;

    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(atoi(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "--abort") == 0)
        return abort_main(strtoull(argv[2], NULL, 10));
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        perror("test-core: /proc/self/exe");
        return 1;
    }
    exe[n] = '\0';
    elf_version(EV_CURRENT);
    rc = argc > 1 ? core_test(&u, exe, argc, argv) : self_test(&u, exe);
    printf("%d passed, %d failed\n", u.passed, u.failed);
    if (rc)
        return rc == 1 ? SKIP : rc;
    return u.failed ? 1 : 0;
}

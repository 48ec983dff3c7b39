/*
 * target-proc.c: the live-process target backend.
 *
 * Owns: thread discovery (/proc/PID/task), stopping and resuming threads
 * (PTRACE_SEIZE + PTRACE_INTERRUPT + PTRACE_DETACH in SEIZE mode), register
 * reads (PTRACE_GETREGS, from the tracer thread only), memory reads (pread
 * of /proc/PID/mem) and the mapping list (/proc/PID/maps).
 *
 * Safety contract ("never harm the target"):
 *  - SEIZE mode never sends a signal; threads are stopped with
 *    PTRACE_INTERRUPT, so if this process dies the kernel detaches and the
 *    target runs on.  No signal is ever lost, whenever this process
 *    dies: a signal that arrives while a thread is stopped stays pending
 *    in the thread (the interrupt's trap is taken before any signal is
 *    dequeued) and is delivered after the detach; one dequeued between
 *    our seize and our interrupt (a signal-delivery-stop) is looked at
 *    with WNOWAIT, never collected, and handed back at once by a detach
 *    with it, then the thread is seized again (wait_stopped()).  A thread
 *    that was already group-stopped (T) stays group-stopped.
 *  - TRACED mode (inside gdb) only reads: it never stops, resumes or
 *    detaches a thread; the debugger owns their state.
 *  - EXTERNAL mode (inside lldb, whose lldb-server is the ptracer) reads
 *    only too; registers are the ones the front-end handed over for the
 *    stop, memory is read directly or through the front-end's reader
 *    (cached in 32 KiB blocks for as long as the front-end's stop lasts).
 *
 * Must not: interpret target memory.
 */
#define _GNU_SOURCE 1   /* process_vm_readv */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pmprof-internal.h"

#define STOP_TIMEOUT_NS (2000000000ull)
#define BLOCK_SHIFT 15              /* reader cache: 32 KiB blocks */
#define BLOCK_SIZE (1u << BLOCK_SHIFT)
#define BLOCK_SLOTS 256             /* 8 MiB, only when reading through the front-end */
#define MAX_DISCOVERY_ROUNDS 16

struct seized {
    int tid;
    int stopped;       /* in a ptrace-stop we caused/observed */
    int pending_sig;   /* signal to re-inject at detach */
    int reseized;      /* signal-delivery-stops handed back at once */
};

struct proc_target {
    struct pmp_target base;
    enum pmp_attach_mode mode;
    int memfd;
    struct pmp_target_thread *threads;
    size_t nthreads, cap;
    struct seized *seized;
    size_t nseized, seized_cap;
    struct pmp_mapping *maps;
    size_t nmaps, maps_cap;
    int prio_raised;
    int old_policy;
    struct sched_param old_param;
    long clk_tck;
    /* EXTERNAL mode */
    int mem_errno;                  /* why /proc/PID/mem did not open */
    pmp_read_fn reader;             /* NULL: /proc/PID/mem */
    void *reader_ctx;
    struct pmp_thread_regs *ext_regs;   /* sorted by tid */
    size_t next_regs;
    uint64_t ext_stop;              /* the front-end's stop id */
    int ext_listed;                 /* threads listed for these registers */
    uint64_t *blk_addr;             /* BLOCK_SLOTS block addresses */
    uint32_t *blk_known;            /* pages asked for (bit per page) */
    uint32_t *blk_ok;               /* pages read whole */
    unsigned char *blk_data;        /* BLOCK_SLOTS * BLOCK_SIZE */
};

static const struct pmp_target_ops proc_ops;

static struct proc_target *
to_proc(struct pmp_target *t)
{
    return (struct proc_target *)t;
}

static void
drop_blocks(struct proc_target *p)
{
    size_t i;

    if (p->blk_addr)
        for (i = 0; i < BLOCK_SLOTS; i++)
            p->blk_addr[i] = UINT64_MAX;
}

/*
 * Read through the front-end: one call fetches the 32 KiB block around
 * addr (a thread's stack top, a run of heap) and keeps it until the
 * front-end's stop changes.  Pages the block read did not return (it
 * reached an unmapped page) are asked for one by one, once: what a page
 * read gave, data or nothing, is kept too.
 */
static long
reader_read(struct proc_target *p, uint64_t addr, void *buf, size_t len,
            struct pmp_error *err)
{
    uint64_t blk = addr & ~(uint64_t)(BLOCK_SIZE - 1);
    size_t slot = (size_t)(pmp_hash64(blk >> BLOCK_SHIFT) % BLOCK_SLOTS);
    unsigned char *d = p->blk_data + slot * BLOCK_SIZE;
    size_t pg = (size_t)(addr - blk) >> 12, poff = (size_t)(addr & 4095);
    uint32_t bit = 1u << pg;
    long got;

    if (p->blk_addr[slot] != blk) {
        p->blk_addr[slot] = UINT64_MAX;
        got = p->reader(p->reader_ctx, blk, d, BLOCK_SIZE, err);
        if (got < 0)
            return got;
        if (got > (long)BLOCK_SIZE)
            got = 0;
        p->blk_addr[slot] = blk;
        /* whole pages read: known and there; the rest: not asked yet */
        p->blk_ok[slot] = (uint32_t)((1ull << (got >> 12)) - 1);
        p->blk_known[slot] = p->blk_ok[slot];
    }
    if (!(p->blk_known[slot] & bit)) {
        got = p->reader(p->reader_ctx, blk + ((uint64_t)pg << 12),
                        d + (pg << 12), 4096, err);
        if (got < 0)
            return got;
        p->blk_known[slot] |= bit;
        if (got == 4096)
            p->blk_ok[slot] |= bit;
    }
    if (!(p->blk_ok[slot] & bit))
        return 0;
    if (len > 4096 - poff)
        len = 4096 - poff;
    memcpy(buf, d + (pg << 12) + poff, len);
    return (long)len;
}

static long
proc_read(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
          struct pmp_error *err)
{
    struct proc_target *p = to_proc(t);
    ssize_t n;

    if (addr > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - addr)
        return 0;
    if (p->reader) {
        size_t done = 0;

        while (done < len) {
            long got = reader_read(p, addr + done, (char *)buf + done,
                                   len - done, err);
            if (got < 0)
                return done ? (long)done : got;
            if (got == 0)
                break;
            done += (size_t)got;
        }
        return (long)done;
    }
    if (p->memfd < 0) {
        if (err)
            err->addr = addr;
        return pmp_error_errno(err, PMP_E_PERM, p->mem_errno,
                               "cannot read memory of process %d", t->pid);
    }
    /*
     * Bulk reads (heap walks, big stack copies): process_vm_readv pins
     * pages in batches, where /proc/PID/mem looks up the mapping and pins
     * one page at a time (the kernel's copy dominates a 1.2 GB heap walk).
     * It stops at the first unmapped page like pread; on any error the
     * pread path below decides.
     */
    if (len >= 65536) {
        struct iovec lv = {buf, len};
        struct iovec rv = {(void *)(uintptr_t)addr, len};
        n = process_vm_readv(t->pid, &lv, 1, &rv, 1, 0);
        if (n > 0)
            return (long)n;
    }
    do {
        n = pread(p->memfd, buf, len, (off_t)addr);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EIO || errno == EFAULT)
            return 0;   /* not mapped */
        if (err)
            err->addr = addr;
        if (errno == ESRCH)
            return pmp_error_set(err, PMP_E_GONE, "process %d is gone",
                                 t->pid);
        return pmp_error_errno(err, PMP_E_TARGET, errno,
                               "cannot read memory of process %d at 0x%llx",
                               t->pid, (unsigned long long)addr);
    }
    return (long)n;
}

/* ---- /proc parsing ---- */

static int
read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

#define PF_IO_WORKER 0x10   /* include/linux/sched.h: an io_uring worker */

/* Fill name, state, utime, stime, io_worker from /proc/PID/task/TID/stat. */
static int
read_task_stat(struct proc_target *p, struct pmp_target_thread *th)
{
    char path[64], buf[1024];
    char *lp, *rp, *f;
    unsigned long long ut = 0, st = 0;
    int field;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", p->base.pid,
             th->tid);
    if (read_small_file(path, buf, sizeof(buf)) < 0)
        return -1;
    lp = strchr(buf, '(');
    rp = strrchr(buf, ')');
    if (!lp || !rp || rp < lp || rp[1] == '\0')
        return -1;
    *rp = '\0';
    pmp_strlcpy(th->name, lp + 1, sizeof(th->name));
    th->state = rp[2];
    /* Fields after ')': 3 state ... 9 flags ... 14 utime 15 stime. */
    f = rp + 2;
    for (field = 3; f && *f && field < 14; field++) {
        unsigned long fl;
        if (field == 9 && sscanf(f, "%lu", &fl) == 1)
            th->io_worker = (fl & PF_IO_WORKER) != 0;
        f = strchr(f, ' ');
        if (f)
            f++;
    }
    if (f && sscanf(f, "%llu %llu", &ut, &st) == 2 && p->clk_tck > 0) {
        th->utime_ns = ut * (1000000000ull / (unsigned long long)p->clk_tck);
        th->stime_ns = st * (1000000000ull / (unsigned long long)p->clk_tck);
    }
    /* The name between the first '(' and the last ')' is comm itself
       (the same 15 bytes /comm gives; a ')' inside it is kept). */
    return 0;
}

int
pmp_proc_list_tids(int pid, int **out, size_t *n, struct pmp_error *err)
{
    char path[64];
    DIR *d;
    struct dirent *de;
    int *v = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return pmp_error_set(err, PMP_E_GONE, "no process with pid %d",
                                 pid);
        return pmp_error_errno(err, PMP_E_TARGET, errno, "cannot list '%s'",
                               path);
    }
    while ((de = readdir(d)) != NULL && len < PMP_MAX_THREADS) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);

        if (*end || tid <= 0 || tid > INT32_MAX)
            continue;
        if (pmp_grow((void **)&v, &cap, len + 1, sizeof(*v))) {
            closedir(d);
            free(v);
            return pmp_error_set(err, PMP_E_NOMEM,
                                 "out of memory listing threads");
        }
        v[len++] = (int)tid;
    }
    closedir(d);
    *out = v;
    *n = len;
    return 0;
}

int
pmp_proc_attach_error(struct pmp_error *err, int pid, int errnum)
{
    return pmp_error_errno(
        err, errnum == EPERM ? PMP_E_PERM : PMP_E_TARGET, errnum,
        "cannot attach to process %d%s", pid,
        errnum == EPERM ? " (another debugger attached, or not permitted: "
                          "see /proc/sys/kernel/yama/ptrace_scope)"
                        : "");
}

static struct pmp_target_thread *
find_thread(struct proc_target *p, int tid)
{
    size_t i;

    for (i = 0; i < p->nthreads; i++)
        if (p->threads[i].tid == tid)
            return &p->threads[i];
    return NULL;
}

/*
 * Add threads listed in /proc/PID/task that we do not know yet.
 * Returns the number added, or < 0.
 */
static int
discover_threads(struct proc_target *p, struct pmp_error *err)
{
    int *tids = NULL, added = 0, rc;
    size_t n = 0, i;

    rc = pmp_proc_list_tids(p->base.pid, &tids, &n, err);
    if (rc)
        return rc;
    for (i = 0; i < n; i++) {
        struct pmp_target_thread *th;

        if (find_thread(p, tids[i]))
            continue;
        rc = pmp_grow((void **)&p->threads, &p->cap, p->nthreads + 1,
                      sizeof(*p->threads));
        if (rc) {
            pmp_error_set(err, rc, "out of memory listing threads");
            break;
        }
        th = &p->threads[p->nthreads];
        memset(th, 0, sizeof(*th));
        th->tid = tids[i];
        if (read_task_stat(p, th) < 0)
            continue;   /* exited meanwhile */
        p->nthreads++;
        added++;
    }
    free(tids);
    return rc ? rc : added;
}

void
pmp_regs_from_user(struct pmp_regs *r, const struct user_regs_struct *u)
{
    memset(r, 0, sizeof(*r));
    r->r[PMP_REG_RAX] = u->rax;
    r->r[PMP_REG_RDX] = u->rdx;
    r->r[PMP_REG_RCX] = u->rcx;
    r->r[PMP_REG_RBX] = u->rbx;
    r->r[PMP_REG_RSI] = u->rsi;
    r->r[PMP_REG_RDI] = u->rdi;
    r->r[PMP_REG_RBP] = u->rbp;
    r->r[PMP_REG_RSP] = u->rsp;
    r->r[PMP_REG_R8] = u->r8;
    r->r[PMP_REG_R9] = u->r9;
    r->r[PMP_REG_R10] = u->r10;
    r->r[PMP_REG_R11] = u->r11;
    r->r[PMP_REG_R12] = u->r12;
    r->r[PMP_REG_R13] = u->r13;
    r->r[PMP_REG_R14] = u->r14;
    r->r[PMP_REG_R15] = u->r15;
    r->r[PMP_REG_RIP] = u->rip;
    r->orig_rax = u->orig_rax;
    r->eflags = u->eflags;
    r->fs_base = u->fs_base;
}

static int
cmp_regs_tid(const void *a, const void *b)
{
    int x = ((const struct pmp_thread_regs *)a)->tid;
    int y = ((const struct pmp_thread_regs *)b)->tid;

    return (x > y) - (x < y);
}

/* The syscall a stopped thread is in, from /proc/PID/task/TID/syscall
   ("nr a1..a6 sp pc", "running", or "-1 sp pc"); -1 when none/unknown. */
static uint64_t
proc_syscall_nr(int pid, int tid)
{
    char path[64], buf[256];
    long long nr;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
    if (read_small_file(path, buf, sizeof(buf)) <= 0 ||
        sscanf(buf, "%lld", &nr) != 1 || nr < 0)
        return (uint64_t)-1;
    return (uint64_t)nr;
}

/* EXTERNAL mode: the front-end's registers of th for this stop. */
static void
get_ext_regs(struct proc_target *p, struct pmp_target_thread *th)
{
    struct pmp_thread_regs key, *r;

    key.tid = th->tid;
    r = p->ext_regs ? bsearch(&key, p->ext_regs, p->next_regs,
                              sizeof(*p->ext_regs), cmp_regs_tid)
                    : NULL;
    if (!r) {
        th->regs_ok = 0;
        pmp_strlcpy(th->error, "the debugger gave no registers for this thread",
                    sizeof(th->error));
        return;
    }
    th->regs = r->regs;
    if (th->regs.orig_rax == (uint64_t)-1)
        th->regs.orig_rax = proc_syscall_nr(p->base.pid, th->tid);
    th->regs_ok = 1;
}

int
pmp_target_proc_set_regs(struct pmp_target *t,
                         const struct pmp_thread_regs *v, size_t n,
                         uint64_t stop, struct pmp_error *err)
{
    struct proc_target *p;
    struct pmp_thread_regs *copy;

    if (t->ops != &proc_ops || to_proc(t)->mode != PMP_ATTACH_EXTERNAL)
        return pmp_error_set(err, PMP_E_USAGE,
                             "registers are set only on a session opened "
                             "for a debugger that is not the tracer");
    p = to_proc(t);
    if (n > PMP_MAX_THREADS)
        return pmp_error_set(err, PMP_E_USAGE, "too many threads (%zu)", n);
    copy = malloc((n ? n : 1) * sizeof(*copy));
    if (!copy)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    if (n)
        memcpy(copy, v, n * sizeof(*copy));
    qsort(copy, n, sizeof(*copy), cmp_regs_tid);
    free(p->ext_regs);
    p->ext_regs = copy;
    p->next_regs = n;
    if (stop != p->ext_stop)
        drop_blocks(p);
    p->ext_stop = stop;
    p->ext_listed = 0;
    return 0;
}

int
pmp_target_proc_set_reader(struct pmp_target *t, pmp_read_fn fn, void *ctx,
                           int always, struct pmp_error *err)
{
    struct proc_target *p = to_proc(t);

    if (t->ops != &proc_ops || p->mode != PMP_ATTACH_EXTERNAL)
        return pmp_error_set(err, PMP_E_USAGE,
                             "a memory reader is only for a debugger that is "
                             "not the tracer");
    if (!fn && p->memfd < 0)
        return pmp_error_errno(err, PMP_E_PERM, p->mem_errno,
                               "cannot open memory of process %d", t->pid);
    if (!fn || (p->memfd >= 0 && !always))
        return 0;
    p->blk_addr = malloc(BLOCK_SLOTS * sizeof(*p->blk_addr));
    p->blk_known = calloc(BLOCK_SLOTS, sizeof(*p->blk_known));
    p->blk_ok = calloc(BLOCK_SLOTS, sizeof(*p->blk_ok));
    p->blk_data = malloc((size_t)BLOCK_SLOTS * BLOCK_SIZE);
    if (!p->blk_addr || !p->blk_known || !p->blk_ok || !p->blk_data)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    drop_blocks(p);
    p->reader = fn;
    p->reader_ctx = ctx;
    return 0;
}

int
pmp_target_proc_via_reader(struct pmp_target *t)
{
    return t->ops == &proc_ops && to_proc(t)->reader != NULL;
}

static void
get_regs(struct pmp_target_thread *th)
{
    struct user_regs_struct u;

    if (ptrace(PTRACE_GETREGS, th->tid, NULL, &u) == 0) {
        pmp_regs_from_user(&th->regs, &u);
        th->regs_ok = 1;
        return;
    }
    th->regs_ok = 0;
    if (errno == ESRCH)
        pmp_strlcpy(th->error, "thread is not stopped by this tracer",
                    sizeof(th->error));
    else
        snprintf(th->error, sizeof(th->error),
                 "cannot read registers: %s", strerror(errno));
}

/* ---- SEIZE mode ---- */

static void
raise_priority(struct proc_target *p)
{
    struct sched_param sp;

    /*
     * With spinning targets on few cores a normal-priority tracer waits
     * tens of ms for a CPU between ptrace calls (anchors-perf.md: 40 ms
     * vs 0.73 ms for 64 threads).
     */
    p->old_policy = sched_getscheduler(0);
    if (p->old_policy < 0 || sched_getparam(0, &p->old_param) < 0)
        return;
    memset(&sp, 0, sizeof(sp));
    sp.sched_priority = 10;
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
        p->prio_raised = 1;
}

static void
restore_priority(struct proc_target *p)
{
    if (p->prio_raised) {
        sched_setscheduler(0, p->old_policy, &p->old_param);
        p->prio_raised = 0;
    }
}

static struct seized *
find_seized(struct proc_target *p, int tid)
{
    size_t i;

    for (i = 0; i < p->nseized; i++)
        if (p->seized[i].tid == tid)
            return &p->seized[i];
    return NULL;
}

/* Seize and interrupt every known thread not seized yet. */
static int
seize_new(struct proc_target *p, struct pmp_error *err)
{
    size_t i;
    int rc;
    long gap = pmp_test_seize_gap_us();

    for (i = 0; i < p->nthreads; i++) {
        struct pmp_target_thread *th = &p->threads[i];
        struct seized *s;

        if (find_seized(p, th->tid))
            continue;
        if (ptrace(PTRACE_SEIZE, th->tid, NULL, NULL) < 0) {
            if (errno == ESRCH)
                continue;   /* exited */
            if (p->nseized == 0)
                return pmp_proc_attach_error(err, p->base.pid, errno);
            snprintf(th->error, sizeof(th->error), "cannot attach: %s",
                     strerror(errno));
            continue;
        }
        rc = pmp_grow((void **)&p->seized, &p->seized_cap, p->nseized + 1,
                      sizeof(*p->seized));
        if (rc) {
            ptrace(PTRACE_DETACH, th->tid, NULL, NULL);
            return pmp_error_set(err, rc, "out of memory");
        }
        s = &p->seized[p->nseized++];
        memset(s, 0, sizeof(*s));
        s->tid = th->tid;
        pmp_test_sleep_us(gap);
        ptrace(PTRACE_INTERRUPT, th->tid, NULL, NULL);
    }
    return 0;
}

/*
 * Look at tid's ptrace state without taking it (waitid WNOWAIT): 0
 * nothing yet, 1 stopped (*sig, *event set), -1 gone.  An exit is taken
 * (the zombie reaped).  A stop is never collected: the kernel clears a
 * collected signal-delivery-stop's signal, so a tracer that died between
 * collecting it and passing it on would lose the signal; uncollected,
 * the kernel delivers it if this process dies.
 */
static int
peek_stop(int tid, int *sig, int *event)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)tid, &si,
               WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0)
        return -1;
    if (si.si_pid == 0)
        return 0;
    if (si.si_code != CLD_TRAPPED) {
        int st;
        waitpid(tid, &st, __WALL | WNOHANG);
        return -1;
    }
    *sig = si.si_status & 0xff;
    *event = (si.si_status >> 8) & 0xff;
    return 1;
}

#define MAX_RESEIZE 8   /* signal-delivery-stops handed back per thread */

/* Wait until every seized thread is in a ptrace-stop (bounded). */
static void
wait_stopped(struct proc_target *p, uint64_t deadline)
{
    size_t i, left;
    struct timespec nap = {0, 20000};

    for (;;) {
        left = 0;
        for (i = 0; i < p->nseized; i++) {
            struct seized *s = &p->seized[i];
            int sig = 0, event = 0, r;

            if (s->stopped || s->tid < 0)
                continue;
            r = peek_stop(s->tid, &sig, &event);
            if (r == 0) {
                left++;
                continue;
            }
            if (r < 0) {
                s->tid = -s->tid;   /* gone: never detach */
                continue;
            }
            if (event == 0 && s->reseized < MAX_RESEIZE) {
                /*
                 * A signal-delivery-stop: a signal dequeued between our
                 * seize and our interrupt (the interrupt's trap is taken
                 * before any signal).  Hand it back at once, then seize
                 * and interrupt again: no signal waits on us while we
                 * read the threads.
                 */
                s->reseized++;
                if (ptrace(PTRACE_DETACH, s->tid, NULL, (void *)(long)sig) ==
                        0 &&
                    ptrace(PTRACE_SEIZE, s->tid, NULL, NULL) == 0 &&
                    ptrace(PTRACE_INTERRUPT, s->tid, NULL, NULL) == 0) {
                    left++;
                    continue;
                }
                s->tid = -s->tid;   /* exited meanwhile, or not ours now */
                continue;
            }
            s->stopped = 1;
            /* PTRACE_EVENT_STOP is our interrupt (or a group-stop, which
               detach preserves); a signal-delivery-stop (a thread that
               met MAX_RESEIZE signals) is delivered at detach. */
            if (event == 0)
                s->pending_sig = sig;
        }
        if (!left || pmp_now_ns(CLOCK_MONOTONIC) > deadline)
            return;
        nanosleep(&nap, NULL);
    }
}

static void
detach_all(struct proc_target *p)
{
    size_t i;

    for (i = 0; i < p->nseized; i++) {
        struct seized *s = &p->seized[i];

        if (s->tid <= 0)
            continue;
        if (ptrace(PTRACE_DETACH, s->tid, NULL,
                   (void *)(long)s->pending_sig) < 0 &&
            errno == ESRCH && !s->stopped) {
            /* Not in a stop yet (was in D state): give it a moment. */
            uint64_t deadline = pmp_now_ns(CLOCK_MONOTONIC) + 200000000ull;
            struct timespec nap = {0, 100000};

            while (pmp_now_ns(CLOCK_MONOTONIC) < deadline) {
                int sig = 0, event = 0, r = peek_stop(s->tid, &sig, &event);
                if (r != 0) {
                    if (r > 0)
                        ptrace(PTRACE_DETACH, s->tid, NULL,
                               (void *)(long)(event ? 0 : sig));
                    break;
                }
                nanosleep(&nap, NULL);
            }
            /* If it never stops, the kernel detaches when we exit. */
        }
    }
    p->nseized = 0;
}

long
pmp_test_seize_gap_us(void)
{
    const char *v = getenv("PMPROF_TEST_SEIZE_GAP_US");
    long us = v ? strtol(v, NULL, 10) : 0;

    return us > 0 && us <= 100000 ? us : 0;
}

void
pmp_test_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

    if (us > 0)
        nanosleep(&ts, NULL);
}

/*
 * Test hook: PMPROF_TEST_HOLD_MS keeps the target stopped that long, so
 * that tests can kill pmprof while it holds the target and check that
 * the kernel lets the target run on.
 */
static void
test_hold(void)
{
    const char *v = getenv("PMPROF_TEST_HOLD_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    struct timespec ts;

    if (ms <= 0 || ms > 60000)
        return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int
proc_stop(struct pmp_target *t, struct pmp_target_thread **threads,
          size_t *nthreads, struct pmp_error *err)
{
    struct proc_target *p = to_proc(t);
    int rc = 0, round;
    size_t i;
    uint64_t deadline;

    /* EXTERNAL: the debugger's process has not run since the registers
       were handed over: the threads, their stat and syscall are those
       read at the last call. */
    if (p->mode == PMP_ATTACH_EXTERNAL && p->ext_listed) {
        *threads = p->threads;
        *nthreads = p->nthreads;
        return 0;
    }
    p->nthreads = 0;
    rc = discover_threads(p, err);
    if (rc < 0)
        goto out;
    if (p->nthreads == 0) {
        rc = pmp_error_set(err, PMP_E_GONE, "process %d has no threads",
                           t->pid);
        goto out;
    }
    if (p->mode == PMP_ATTACH_SEIZE) {
        deadline = pmp_now_ns(CLOCK_MONOTONIC) + STOP_TIMEOUT_NS;
        for (round = 0; round < MAX_DISCOVERY_ROUNDS; round++) {
            rc = seize_new(p, err);
            if (rc < 0)
                goto out;
            wait_stopped(p, deadline);
            /* Threads created before their creator stopped. */
            rc = discover_threads(p, err);
            if (rc < 0)
                goto out;
            if (rc == 0)
                break;
        }
        rc = 0;
    }
    for (i = 0; i < p->nthreads; i++) {
        struct pmp_target_thread *th = &p->threads[i];

        if (p->mode == PMP_ATTACH_SEIZE) {
            struct seized *s = find_seized(p, th->tid);
            if (!s || s->tid <= 0) {
                if (!th->error[0])
                    pmp_strlcpy(th->error, "thread exited",
                                sizeof(th->error));
                continue;
            }
            if (!s->stopped) {
                pmp_strlcpy(th->error,
                            "thread did not stop within 2 s "
                            "(uninterruptible sleep?)",
                            sizeof(th->error));
                continue;
            }
        }
        if (p->mode == PMP_ATTACH_EXTERNAL)
            get_ext_regs(p, th);
        else
            get_regs(th);
    }
    /* Drop threads that exited before we could see them stopped. */
    {
        size_t j = 0;
        for (i = 0; i < p->nthreads; i++) {
            if (!p->threads[i].regs_ok &&
                strcmp(p->threads[i].error, "thread exited") == 0)
                continue;
            p->threads[j++] = p->threads[i];
        }
        p->nthreads = j;
    }
    if (p->mode == PMP_ATTACH_SEIZE)
        test_hold();
    if (p->mode == PMP_ATTACH_EXTERNAL)
        p->ext_listed = 1;
    *threads = p->threads;
    *nthreads = p->nthreads;
out:
    if (rc < 0 && p->mode == PMP_ATTACH_SEIZE)
        detach_all(p);
    return rc < 0 ? rc : 0;
}

static void
proc_resume(struct pmp_target *t)
{
    struct proc_target *p = to_proc(t);

    if (p->mode != PMP_ATTACH_SEIZE)
        return;
    detach_all(p);
}

static int
proc_mappings(struct pmp_target *t, const struct pmp_mapping **maps,
              size_t *nmaps, struct pmp_error *err)
{
    struct proc_target *p = to_proc(t);
    char path[64], line[4096 + 256];
    FILE *f;
    size_t i;
    int rc = 0;

    for (i = 0; i < p->nmaps; i++)
        free(p->maps[i].path);
    p->nmaps = 0;
    snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
    f = fopen(path, "re");
    if (!f)
        return pmp_error_errno(err, errno == ENOENT ? PMP_E_GONE
                                                    : PMP_E_TARGET,
                               errno, "cannot read '%s'", path);
    while (fgets(line, sizeof(line), f) && p->nmaps < PMP_MAX_MAPPINGS) {
        unsigned long long s, e, off;
        char perms[8] = "";
        int n = 0;
        struct pmp_mapping *m;
        char *name;

        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &s, &e, perms, &off,
                   &n) < 4)
            continue;
        rc = pmp_grow((void **)&p->maps, &p->maps_cap, p->nmaps + 1,
                      sizeof(*p->maps));
        if (rc)
            break;
        name = n > 0 ? line + n : line + strlen(line);
        name[strcspn(name, "\n")] = '\0';
        m = &p->maps[p->nmaps];
        m->start = s;
        m->end = e;
        m->offset = off;
        m->prot = (perms[0] == 'r' ? PROT_READ : 0) |
                  (perms[1] == 'w' ? PROT_WRITE : 0) |
                  (perms[2] == 'x' ? PROT_EXEC : 0);
        m->path = strdup(name);
        if (!m->path) {
            rc = PMP_E_NOMEM;
            break;
        }
        p->nmaps++;
    }
    fclose(f);
    if (rc)
        return pmp_error_set(err, rc, "out of memory reading mappings");
    *maps = p->maps;
    *nmaps = p->nmaps;
    return 0;
}

static void
proc_free(struct pmp_target *t)
{
    struct proc_target *p = to_proc(t);
    size_t i;

    proc_resume(t);
    restore_priority(p);
    if (p->memfd >= 0)
        close(p->memfd);
    for (i = 0; i < p->nmaps; i++)
        free(p->maps[i].path);
    free(p->maps);
    free(p->threads);
    free(p->seized);
    free(p->ext_regs);
    free(p->blk_addr);
    free(p->blk_known);
    free(p->blk_ok);
    free(p->blk_data);
    free(p);
}

/*
 * Without stopping anything: every thread's system call and arguments from
 * /proc/PID/task/TID/syscall ("nr a1 .. a6 sp pc"; "running" or -1 when
 * not blocked in one).  Fills tid and, when blocked, regs.orig_rax, rdi,
 * rsi, rdx, r10, r8, r9, rsp, rip with regs_ok = 1.  *out is malloc'd.
 */
int
pmp_target_proc_syscalls(struct pmp_target *t, struct pmp_target_thread **out,
                         size_t *n, struct pmp_error *err)
{
    char path[64], buf[512];
    struct pmp_target_thread *v = NULL;
    int *tids = NULL, rc;
    size_t len = 0, cap = 0, ntids = 0, k;

    *out = NULL;
    *n = 0;
    if (t->ops != &proc_ops)
        return pmp_error_set(err, PMP_E_USAGE, "not a live process");
    rc = pmp_proc_list_tids(t->pid, &tids, &ntids, err);
    if (rc)
        return rc;
    for (k = 0; k < ntids; k++) {
        long tid = tids[k];
        unsigned long long a[9];
        long long nr;
        struct pmp_target_thread *th;

        if (pmp_grow((void **)&v, &cap, len + 1, sizeof(*v))) {
            free(tids);
            free(v);
            return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        }
        th = &v[len++];
        memset(th, 0, sizeof(*th));
        th->tid = (int)tid;
        snprintf(path, sizeof(path), "/proc/%d/task/%ld/syscall", t->pid, tid);
        if (read_small_file(path, buf, sizeof(buf)) <= 0)
            continue;
        if (sscanf(buf, "%lld %llx %llx %llx %llx %llx %llx %llx %llx", &nr,
                   &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6],
                   &a[7]) != 9 || nr < 0)
            continue;
        th->regs.orig_rax = (uint64_t)nr;
        th->regs.r[PMP_REG_RDI] = a[0];
        th->regs.r[PMP_REG_RSI] = a[1];
        th->regs.r[PMP_REG_RDX] = a[2];
        th->regs.r[PMP_REG_R10] = a[3];
        th->regs.r[PMP_REG_R8] = a[4];
        th->regs.r[PMP_REG_R9] = a[5];
        th->regs.r[PMP_REG_RSP] = a[6];
        th->regs.r[PMP_REG_RIP] = a[7];
        th->regs_ok = 1;
    }
    free(tids);
    *out = v;
    *n = len;
    return 0;
}

int
pmp_target_proc_mode(struct pmp_target *t)
{
    return t->ops == &proc_ops ? (int)to_proc(t)->mode : -1;
}

int
pmp_target_proc_rt(struct pmp_target *t)
{
    return t->ops == &proc_ops ? to_proc(t)->prio_raised : 0;
}

static const struct pmp_target_ops proc_ops = {
    .kind = "live",
    .read = proc_read,
    .stop = proc_stop,
    .resume = proc_resume,
    .mappings = proc_mappings,
    .free = proc_free,
};

int
pmp_target_proc_new(struct pmp_target **out, int pid,
                    enum pmp_attach_mode mode, struct pmp_error *err)
{
    struct proc_target *p = NULL;
    char path[64], buf[512];
    int rc;

    *out = NULL;
    if (pid <= 0)
        return pmp_error_set(err, PMP_E_USAGE, "invalid pid %d", pid);
    if (pid == getpid() && mode == PMP_ATTACH_SEIZE)
        return pmp_error_set(err, PMP_E_USAGE, "cannot trace pmprof itself");
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (read_small_file(path, buf, sizeof(buf)) < 0)
        return pmp_error_set(err, PMP_E_GONE, "no process with pid %d", pid);
    {
        char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
            return pmp_error_set(err, PMP_E_GONE,
                                 "process %d is a zombie (it has exited)",
                                 pid);
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    p->base.ops = &proc_ops;
    p->base.pid = pid;
    p->mode = mode;
    p->clk_tck = sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/mem", pid);
    p->memfd = open(path, O_RDONLY | O_CLOEXEC);
    if (p->memfd < 0 && mode == PMP_ATTACH_EXTERNAL &&
        (errno == EACCES || errno == EPERM)) {
        p->mem_errno = errno;   /* the front-end's reader may stand in */
    } else if (p->memfd < 0) {
        int e = errno;
        rc = pmp_error_errno(err, e == EACCES || e == EPERM ? PMP_E_PERM
                                  : e == ENOENT             ? PMP_E_GONE
                                                            : PMP_E_TARGET,
                             e, "cannot open memory of process %d", pid);
        free(p);
        return rc;
    }
    rc = pmp_target_enable_cache(&p->base);
    if (rc) {
        proc_free(&p->base);
        return pmp_error_set(err, rc, "out of memory");
    }
    /*
     * Standalone sessions run SCHED_FIFO (when permitted) for their whole
     * life: discovery, the stop, and the symbolization after it.  Against
     * spinning targets a normal-priority tracer gets 1/(threads+1) of a
     * CPU: 64 spinning threads made a snapshot take 80 ms stopped and
     * 3.5 s to symbolize, against 4 ms and 0.1 s under SCHED_FIFO.  The
     * work is bounded, and sleeping costs the target nothing.
     */
    if (mode == PMP_ATTACH_SEIZE)
        raise_priority(p);
    *out = &p->base;
    return 0;
}

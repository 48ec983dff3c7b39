/*
 * record.c: the sampling profiler ("pmprof record").
 *
 * Owns: the tracing loop of a live process (per sample: list
 * /proc/PID/task, PTRACE_SEIZE + PTRACE_INTERRUPT each thread to sample
 * -> wait -> registers + a copy of the live stack -> PTRACE_DETACH all;
 * nothing is traced between samples, so no thread birth, exit or signal
 * ever waits on this process there), the bound on any one stop
 * (STOP_BOUND_NS: past it the tick gives up its remaining samples and
 * detaches), unwinding from the stack copies after the detach, and the
 * recording itself:
 * interned stacks, per-thread totals and the time-ordered sample log
 * the writers (writers.c) turn into files.
 *
 * Two methods (docs/record.md): with perf events (record-perf.c) CPU
 * samples come from the kernel and are unwound here from their copied
 * stacks, and only threads that ran and are asleep now are stopped, for
 * their off-CPU stack; with ptrace only, every thread that ran since its
 * last stack is stopped at each tick.  Either way a thread that has not
 * run keeps its last stack (schedstat), and CPU time is charged only to
 * a stack the thread was running in.
 *
 * Safety contract: only PTRACE_SEIZE/INTERRUPT are used, never a signal,
 * so if this process dies the kernel detaches and the target runs on.
 * A signal is never lost, whenever this process dies: the interrupt's
 * trap is taken before any signal is dequeued (kernel/signal.c
 * get_signal()), and a thread detached from that stop dequeues its
 * signals itself; a signal dequeued between the seize and the interrupt
 * (a signal-delivery-stop) is looked at with WNOWAIT, never collected,
 * and handed back by an immediate PTRACE_DETACH (poll_thread()).  Every
 * thread is detached before pmp_session_record() returns.
 *
 * Must not: symbolize while the target is stopped; render output.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gopclntab.h"
#include "pmprof-internal.h"
#include "record.h"

#define DEFAULT_HZ 99.0
#define DEFAULT_STACK_BYTES (64u * 1024)
#define MIN_STACK_BYTES 4096u
#define FIRST_STACK_BYTES (16u * 1024)
#define FLOOR_STACK_BYTES 256u
#define PERF_STACK_BYTES (16u * 1024)   /* user stack per CPU sample */
#define MAX_EVENTS (16u * 1024 * 1024)   /* 640 MiB of events */
#define MODULE_REFRESH_NS 100000000ull   /* at most 10 dlopen checks/s */
/* No thread is held stopped longer than this: a tick waits for its stops
   half of it, reads stacks until 8/10 of it, then gives up the rest of
   its samples and detaches. */
#define STOP_BOUND_NS 10000000ull
#define STOP_WAIT_NS (STOP_BOUND_NS / 2)
#define SWEEP_GAP_NS 200000ull   /* late stops looked at during work */
#define NAMES_NS 1000000000ull   /* thread names read again after */
#define LIST_NS 1000000000ull    /* /proc/PID/task listed at least every */
#define WAKE_SLACK_NS 200000ull   /* lateness of a wake-up not counted as a stall */
#define STOP_READ_NS (STOP_BOUND_NS * 8 / 10)

/* ---- stack interning ---- */

static uint64_t
stack_hash(const uint64_t *pcs, const uint8_t *fl, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    uint32_t i;

    for (i = 0; i < n; i++)
        h = pmp_hash64(h ^ pcs[i] ^ ((uint64_t)fl[i] << 56));
    return h;
}

static int
tab_rehash(struct pmp_recording *r, size_t ncap)
{
    uint32_t *t = calloc(ncap, sizeof(*t));
    size_t i;

    if (!t)
        return PMP_E_NOMEM;
    for (i = 0; i < r->nstacks; i++) {
        size_t j = (size_t)r->stacks[i].hash & (ncap - 1);
        while (t[j])
            j = (j + 1) & (ncap - 1);
        t[j] = (uint32_t)i + 1;
    }
    free(r->tab);
    r->tab = t;
    r->tabcap = ncap;
    return 0;
}

/* Intern a stack; returns its id or a negative PMP_E_*. */
int64_t
pmp_rec_intern(struct pmp_recording *r, const uint64_t *pcs,
               const uint8_t *fl, uint32_t n)
{
    uint64_t h = stack_hash(pcs, fl, n);
    size_t j;
    struct pmp_rec_stack *st;

    if (r->tabcap == 0 || (r->nstacks + 1) * 2 > r->tabcap) {
        if (tab_rehash(r, r->tabcap ? r->tabcap * 2 : 1024))
            return PMP_E_NOMEM;
    }
    j = (size_t)h & (r->tabcap - 1);
    while (r->tab[j]) {
        st = &r->stacks[r->tab[j] - 1];
        if (st->hash == h && st->n == n &&
            memcmp(r->pcs + st->off, pcs, n * sizeof(*pcs)) == 0 &&
            memcmp(r->fl + st->off, fl, n) == 0)
            return (int64_t)(r->tab[j] - 1);
        j = (j + 1) & (r->tabcap - 1);
    }
    if (r->nstacks >= UINT32_MAX - 1)
        return PMP_E_NOMEM;
    if (pmp_grow((void **)&r->stacks, &r->stacks_cap, r->nstacks + 1,
                 sizeof(*r->stacks)) ||
        pmp_grow((void **)&r->pcs, &r->pcs_cap, r->npcs + n,
                 sizeof(*r->pcs)) ||
        pmp_grow((void **)&r->fl, &r->fl_cap, r->npcs + n, 1))
        return PMP_E_NOMEM;
    st = &r->stacks[r->nstacks];
    st->off = r->npcs;
    st->n = n;
    st->hash = h;
    memcpy(r->pcs + r->npcs, pcs, n * sizeof(*pcs));
    memcpy(r->fl + r->npcs, fl, n);
    r->npcs += n;
    r->tab[j] = (uint32_t)r->nstacks + 1;
    return (int64_t)r->nstacks++;
}

/* ---- threads ---- */

static struct rthread *
find_thread(struct pmp_recording *r, int tid)
{
    return pmp_u64map_get(&r->bytid, (uint64_t)(unsigned)tid);
}

static void
read_comm(int pid, struct rthread *th)
{
    char path[64], buf[80];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, th->tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    pmp_strlcpy(th->name, buf, sizeof(th->name));
}

/* schedstat of th: time on CPU, time waiting for a CPU (ns), and the
   number of times it was put on a CPU.  -1 if unreadable. */
static int
read_sched(struct rthread *th, uint64_t *cpu, uint64_t *delay,
           uint64_t *pcount)
{
    char buf[96];
    ssize_t n;
    unsigned long long v[3];

    if (th->schedfd < 0)
        return -1;
    n = pread(th->schedfd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu %llu", &v[0], &v[1], &v[2]) != 3)
        return -1;
    *cpu = v[0];
    *delay = v[1];
    *pcount = v[2];
    return 0;
}

/* Time on CPU (ns) from /proc/PID/task/TID/schedstat, or the last value. */
static uint64_t
read_cpu(struct rthread *th)
{
    uint64_t c, d, p;

    if (read_sched(th, &c, &d, &p))
        return th->cpu_last;
    return c;
}

/* Is th running or runnable (TASK_RUNNING)?  1 yes, 0 no (asleep,
   stopped, dead), -1 unreadable.  /proc/PID/task/TID/syscall prints
   "running" for such a thread without looking further: a third of the
   cost of /proc/PID/task/TID/stat's state letter, which formats every
   field (at 64 spinning threads and 99 Hz that read was two thirds of
   the sampler's CPU). */
static int
read_running(struct pmp_recording *r, struct rthread *th)
{
    char buf[256];
    ssize_t n;

    if (th->statfd < 0)
        return -1;
    r->stats.state_reads++;
    n = pread(th->statfd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    return n >= 7 && memcmp(buf, "running", 7) == 0;
}

/* In a /proc stat line, from its last ')' (the end of the command
   name, which may hold anything, even ')'): where field `field` starts
   (1-based, as proc(5) numbers them; 3 is the state), or NULL. */
static const char *
after_comm_field(const char *paren, int field)
{
    const char *p = paren;
    int f;

    for (f = 2; p && f < field; f++)
        p = strchr(p + 1, ' ');
    return p ? p + 1 : NULL;
}

/* /proc/PID/task/TID/stat into buf; returns where its fields after the
   command name start (")" then " S ..."), NULL if unreadable.  Opened
   each time: a perf thread's statfd stays its syscall file. */
static const char *
read_task_stat(int pid, int tid, char *buf, size_t size)
{
    char path[64];
    const char *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    p = strrchr(buf, ')');   /* comm may hold anything, even ')' */
    return p && p[1] == ' ' ? p : NULL;
}

/* The state letter in /proc/PID/task/TID/stat, or 0.  Read only for a
   thread found job-control stopped (rare). */
static char
read_state(int pid, int tid)
{
    char buf[512];
    const char *p = read_task_stat(pid, tid, buf, sizeof(buf));

    return p ? p[2] : 0;
}

/* An io_uring worker (PF_IO_WORKER in /proc/PID/task/TID/stat's flags)? */
static int
is_io_worker(int pid, int tid)
{
    char buf[1024];
    const char *f = read_task_stat(pid, tid, buf, sizeof(buf));
    unsigned long fl = 0;

    f = f ? after_comm_field(f, 9) : NULL;   /* 9: flags */
    return f && sscanf(f, "%lu", &fl) == 1 && (fl & 0x10);
}

static void
thread_wanted(struct pmp_recording *r, struct rthread *th)
{
    size_t i;

    /* A kernel worker never runs the application's code: it is not
       sampled, so it counts in no CPU or wall figure. */
    th->wanted = 0;
    if (th->worker)
        return;
    th->wanted = 1;
    if (r->only_tids) {
        th->wanted = 0;
        for (i = 0; i < r->nonly_tids; i++)
            if (r->only_tids[i] == th->tid)
                th->wanted = 1;
    }
    if (th->wanted && r->have_regex)
        th->wanted = regexec(&r->regex, th->name, 0, NULL, 0) == 0;
}

static struct rthread *
add_thread(struct pmp_recording *r, int tid, int traced)
{
    struct rthread *th;
    char path[64];

    if (r->nthreads >= PMP_MAX_THREADS)
        return NULL;
    if (pmp_grow((void **)&r->threads, &r->threads_cap, r->nthreads + 1,
                 sizeof(*r->threads)))
        return NULL;
    th = calloc(1, sizeof(*th));
    if (!th)
        return NULL;
    th->tid = tid;
    th->alive = traced;
    th->need = FIRST_STACK_BYTES;
    th->last_stack = -1;
    th->last_cpu_stack = -1;
    th->statfd = -1;
    read_comm(r->pid, th);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", r->pid, tid);
    th->schedfd = open(path, O_RDONLY | O_CLOEXEC);
    {
        uint64_t c, d, pc;
        if (read_sched(th, &c, &d, &pc) == 0) {
            th->cpu_last = th->cpu0 = c;
            th->delay_last = d;
        }
    }
    if (r->use_perf && traced) {
        struct pmp_perf *pf = malloc(sizeof(*pf));
        int e = pf ? pmp_perf_open(pf, tid, r->period_ns, r->perf_stack,
                                   &r->perf_kernel)
                   : -ENOMEM;
        if (e == 0) {
            /* Its context switches too: who ran is then known without
               a look in /proc.  The first thread decides; a later one
               refused (mlock limit) is looked at in /proc. */
            int se = r->use_switch
                         ? pmp_perf_open_switches(pf, tid, r->switch_pages)
                         : 0;
            th->perf = pf;
            if (se && !r->stats.switch_errno)
                r->stats.switch_errno = -se;
            if (se && r->nthreads == 0)
                r->use_switch = 0;
            snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall",
                     r->pid, tid);
            th->statfd = open(path, O_RDONLY | O_CLOEXEC);
        } else {
            free(pf);
            if (!r->stats.perf_errno)
                r->stats.perf_errno = -e;
            /* The first thread decides the method; a later one that
               cannot have its event (fd limit) is sampled by ptrace. */
            if (r->nthreads == 0)
                r->use_perf = 0;
        }
    }
    if (traced && !(th->perf && th->perf->sw))
        r->list_always = 1;   /* its births are not told */
    th->t_last = th->seen_at = pmp_now_ns(CLOCK_MONOTONIC);
    th->worker = is_io_worker(r->pid, tid);
    thread_wanted(r, th);
    if (pmp_u64map_put(&r->bytid, (uint64_t)(unsigned)tid, th)) {
        if (th->schedfd >= 0)
            close(th->schedfd);
        if (th->statfd >= 0)
            close(th->statfd);
        if (th->perf) {
            pmp_perf_close(th->perf);
            free(th->perf);
        }
        free(th);
        return NULL;
    }
    th->idx = (uint32_t)r->nthreads;
    r->threads[r->nthreads++] = th;
    if (traced)
        r->nalive++;
    return th;
}

static void
thread_gone(struct pmp_recording *r, struct rthread *th)
{
    if (!th->alive)
        return;
    if (th->seized && th->interrupted && !th->stopped && r->npending)
        r->npending--;
    th->alive = 0;
    th->seized = 0;
    th->stopped = 0;
    th->interrupted = 0;
    th->gone_at = pmp_now_ns(CLOCK_MONOTONIC);
    if (th->schedfd >= 0) {
        close(th->schedfd);
        th->schedfd = -1;
    }
    if (th->statfd >= 0) {
        close(th->statfd);
        th->statfd = -1;
    }
    /* Its perf ring is read once more at the next tick, then closed. */
    r->nalive--;
}

/*
 * Sleep in sigtimedwait for SIGCHLD up to ns; returns its result.  The
 * time the sampler woke after the one it asked for is the machine's
 * (stall_ns): see struct pmp_record_stats.
 */
static int
nap(struct pmp_recording *r, uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull),
                          (long)(ns % 1000000000ull)};
    uint64_t t = pmp_now_ns(CLOCK_MONOTONIC), slept;
    int sig = sigtimedwait(&r->chld, NULL, &ts);
    int e = errno;

    /* A wake-up's usual latency (tens of us) stays pmprof's. */
    slept = pmp_now_ns(CLOCK_MONOTONIC) - t;
    if (slept > ns + WAKE_SLACK_NS) {
        uint64_t late = slept - ns - WAKE_SLACK_NS;
        r->stats.stall_ns += late;
        if (late > r->stats.stall_max_ns)
            r->stats.stall_max_ns = late;
    }
    errno = e;
    return sig;
}

/* The sampler's own time waiting for a CPU while runnable (schedstat's
   second field), or 0. */
static uint64_t
sampler_delay(struct pmp_recording *r)
{
    char buf[96];
    unsigned long long c, d;
    ssize_t n;

    if (r->rdfd < 0)
        return 0;
    n = pread(r->rdfd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return sscanf(buf, "%llu %llu", &c, &d) == 2 ? d : 0;
}

/* Keep the longest stops over the bound (stats.over, a few). */
static void
note_over(struct pmp_recording *r, uint64_t at, uint64_t ns, uint64_t stall)
{
    struct pmp_record_stats *st = &r->stats;
    int n = (int)(sizeof(st->over) / sizeof(st->over[0])), i, min = 0;

    if (st->nover < n) {
        i = st->nover++;
    } else {
        for (i = 1; i < n; i++)
            if (st->over[i].ns < st->over[min].ns)
                min = i;
        if (st->over[min].ns >= ns)
            return;
        i = min;
    }
    st->over[i].at_ns = at;
    st->over[i].ns = ns;
    st->over[i].stall_ns = stall;
}

/*
 * The time th was held: from the last time it was seen not stopped
 * (its stop began after that) to now, its detach.  Its own part (the
 * bound's business) leaves out the sampler's late wake-ups meanwhile.
 */
static void
stop_done(struct pmp_recording *r, struct rthread *th, uint64_t now,
          uint64_t extra)
{
    uint64_t ns = now > th->t_unstopped ? now - th->t_unstopped : 0;
    uint64_t raw = ns, stall, own, c, d, pc;

    /* Long (the thread waited for a CPU to reach its stop, or slept
       uninterruptibly before it): the time it spent on a CPU or waiting
       for one since its schedstat was read before the seize was not
       stopped (read now, still stopped, those figures are final). */
    if (ns > 1000000 && th->t_sched && th->t_sched <= th->t_unstopped &&
        th->cur_ok && read_sched(th, &c, &d, &pc) == 0 &&
        c >= th->cur_cpu && d >= th->cur_delay) {
        uint64_t ran = (c - th->cur_cpu) + (d - th->cur_delay);
        uint64_t span = now - th->t_sched;
        ns = PMP_MIN(ns, span > ran ? span - ran : 0);
    }
    /* The machine's part: the sampler's late wake-ups since, or (over
       the bound only: one more read) its time waiting for a CPU while
       runnable, e.g. preempted by higher real-time work; counted from
       the last reading before the stop began, less the time between
       that reading and the stop's start (it may all have been there).
       The larger of the two, never both: they may be the same time;
       and never both it and the thread's own run-queue time above. */
    stall = r->stats.stall_ns - th->stall_at;
    if (raw > STOP_BOUND_NS && r->rdfd >= 0) {
        uint64_t rd = sampler_delay(r), gap = th->t_unstopped - th->rd_when;
        if (rd > th->rd_at + gap)
            stall = PMP_MAX(stall, rd - th->rd_at - gap);
    }
    own = raw - PMP_MIN(raw, PMP_MAX(raw - ns, stall)) + extra;
    ns += extra;

    if (ns > r->stats.max_stop_ns)
        r->stats.max_stop_ns = ns;
    if (own > r->stats.max_stop_own_ns)
        r->stats.max_stop_own_ns = own;
    if (ns > STOP_BOUND_NS) {
        r->stats.stops_over++;
        note_over(r, th->t_unstopped, ns, PMP_MIN(stall, ns));
    }
    if (own > STOP_BOUND_NS)
        r->stats.stops_over_own++;
}

/*
 * Detach th from the ptrace-stop we hold it in: it runs on by itself,
 * and nothing of it waits on this process until the next tick's seize.
 * A group-stopped thread stays stopped (the kernel keeps the group
 * stop); a signal it was stopped for is delivered.
 */
static void
release_thread(struct pmp_recording *r, struct rthread *th)
{
    uint64_t t;
    long rc;

    if (!th->seized || !th->stopped)
        return;
    t = pmp_now_ns(CLOCK_MONOTONIC);
    rc = ptrace(PTRACE_DETACH, th->tid, NULL, (void *)(long)th->pending_sig);
    if (rc == 0 || errno == ESRCH) {
        /* Measured to the end of the detach call. */
        stop_done(r, th, t, pmp_now_ns(CLOCK_MONOTONIC) - t);
        th->seized = 0;
        th->stopped = 0;
        th->interrupted = 0;
        th->pending_sig = 0;
    }
}

static int
is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
           sig == SIGTTOU;
}

/*
 * Look at th's ptrace state without taking it (waitid WNOWAIT): a
 * signal-delivery-stop that this process collected and then died
 * before passing on would lose the signal (the kernel clears the stop's
 * signal when the tracer waits for it); left uncollected and detached
 * with it, the signal is delivered whatever happens to this process.
 * Only an exit is collected (the zombie is reaped).
 */
static void
poll_thread(struct pmp_recording *r, struct rthread *th)
{
    siginfo_t si;
    int sig, event;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)th->tid, &si,
               WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0) {
        if (errno == ECHILD)
            thread_gone(r, th);
        return;
    }
    if (si.si_pid == 0) {
        th->t_unstopped = pmp_now_ns(CLOCK_MONOTONIC);
        th->stall_at = r->stats.stall_ns;
        th->rd_at = r->rd;
        th->rd_when = r->rd_when;
        return;
    }
    if (si.si_code != CLD_TRAPPED) {
        int st;
        if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED ||
            si.si_code == CLD_DUMPED) {
            waitpid(th->tid, &st, __WALL | WNOHANG);
            thread_gone(r, th);
        }
        return;
    }
    sig = si.si_status & 0xff;
    event = (si.si_status >> 8) & 0xff;
    if (th->interrupted && r->npending)
        r->npending--;
    th->stopped = 1;
    switch (event) {
    case PTRACE_EVENT_STOP:
        /* Our interrupt, or a group-stop. */
        th->group_stop = is_stop_signal(sig);
        th->interrupted = 0;
        break;
    case PTRACE_EVENT_EXEC:
        r->stats.exec = 1;
        break;
    case 0:
        /* A signal-delivery-stop: dequeued after the seize, before our
           interrupt took (the interrupt's trap is taken before any
           signal).  Handed back by the detach at once; this thread's
           sample is given up. */
        th->pending_sig = sig;
        th->lost = 1;
        r->stats.sig_passed++;
        release_thread(r, th);
        break;
    default:
        break;
    }
}

/* Stops that came after their tick gave up waiting: detach each at once. */
static void
sweep(struct pmp_recording *r)
{
    size_t i;

    if (!r->npending)
        return;
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];

        if (!th->alive || !th->seized || th->stopped)
            continue;
        poll_thread(r, th);
        if (th->stopped) {
            r->stats.late_stops++;
            release_thread(r, th);
        }
    }
}

/* sweep() between two pieces of the sampler's own work (unwinds, CPU
   samples, modules): at most every SWEEP_GAP_NS while a stop is late (a
   thread waiting long for a CPU to enter its stop made ~5700 waitid
   calls a second at every sample). */
static void
sweep_soon(struct pmp_recording *r)
{
    uint64_t now;

    if (!r->npending)
        return;
    now = pmp_now_ns(CLOCK_MONOTONIC);
    if (now - r->last_sweep < SWEEP_GAP_NS)
        return;
    r->last_sweep = now;
    sweep(r);
}

static void
sweep_cb(void *r)
{
    sweep_soon(r);
}

/*
 * Sleep up to ns, waking for ptrace events (SIGCHLD, blocked in this
 * thread and taken with sigtimedwait) and for any other signal (EINTR:
 * Ctrl-C), which sets r->poke so the caller asks progress() at once.
 */
static void
wait_events(struct pmp_recording *r, uint64_t ns)
{
    int sig = nap(r, ns);

    if (sig == SIGCHLD)
        sweep(r);
    else if (sig < 0 && errno == EINTR)
        r->poke = 1;
}

/* ---- attach / detach ---- */

/*
 * Seize th and interrupt it at once: nothing else is done to a thread
 * that is seized, and the only signal that can meet us is one dequeued
 * between these two calls (see poll_thread).  -1 with errno if the
 * seize failed.
 */
static int
seize_thread(struct pmp_recording *r, struct rthread *th)
{
    if (ptrace(PTRACE_SEIZE, (pid_t)th->tid, NULL,
               (void *)(long)PTRACE_O_TRACEEXEC) < 0)
        return -1;
    th->seized = 1;
    th->stopped = 0;
    th->pending_sig = 0;
    th->group_stop = 0;
    th->t_unstopped = pmp_now_ns(CLOCK_MONOTONIC);
    th->stall_at = r->stats.stall_ns;
    th->rd_at = r->rd;
    th->rd_when = r->rd_when;
    pmp_test_sleep_us(r->seize_gap_us);
    if (ptrace(PTRACE_INTERRUPT, th->tid, NULL, NULL) == 0) {
        th->interrupted = 1;
        r->npending++;
    }
    return 0;
}

/* Field `field` (1-based, as proc(5) numbers them) of /proc/PID/stat
   read into buf, or NULL. */
static const char *
stat_field(int fd, char *buf, size_t size, int field)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    const char *p;

    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    p = strrchr(buf, ')');   /* comm may hold anything, even ')' */
    return p ? after_comm_field(p, field) : NULL;
}

/* startcode, endcode and startstack of /proc/PID/stat (fields 26-28):
   an execve maps a new image and a new stack. */
static int
read_exe_id(int fd, unsigned long long v[3])
{
    char buf[1024];
    const char *p = stat_field(fd, buf, sizeof(buf), 26);

    if (!p || sscanf(p, "%llu %llu %llu", &v[0], &v[1], &v[2]) != 3)
        return -1;
    return 0;
}

/* num_threads of /proc/PID/stat (field 20), or -1. */
static long
read_nthreads(int fd)
{
    char buf[1024], *end;
    const char *p = stat_field(fd, buf, sizeof(buf), 20);
    long n;

    if (!p)
        return -1;
    n = strtol(p, &end, 10);
    return end != p && *end == ' ' ? n : -1;
}

/*
 * The process's threads from /proc/PID/task (kept open: one getdents
 * per listing; list_wanted() says when).  New ones are added (not
 * traced: they are seized only to be sampled), missing ones are gone.
 * Between ticks nothing is traced, so a thread is born and dies without
 * any stop of ours.
 */
static int
list_tasks(struct pmp_recording *r, int young, struct pmp_error *err)
{
    uint64_t words[1024];   /* getdents64 records are 8-byte aligned */
    char *buf = (char *)words;
    long n;
    size_t i;
    int added = 0;

    r->stats.task_lists++;
    r->listed_at = pmp_now_ns(CLOCK_MONOTONIC);
    for (i = 0; i < r->nthreads; i++)
        r->threads[i]->listed = 0;
    if (lseek(r->taskfd, 0, SEEK_SET) < 0)
        return pmp_error_errno(err, PMP_E_GONE, errno,
                               "cannot list the threads of process %d",
                               r->pid);
    while ((n = syscall(SYS_getdents64, r->taskfd, buf, sizeof(words))) > 0) {
        long off = 0;
        while (off + 20 <= n) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *de = (void *)(buf + off);
            char *end;
            long tid;
            struct rthread *th;

            /* A record is its 19-byte header and a NUL-ended name. */
            if (de->reclen < 20 || off + de->reclen > n ||
                !memchr(de->name, '\0', de->reclen - 19))
                break;
            off += de->reclen;
            tid = strtol(de->name, &end, 10);
            if (*end || tid <= 0 || tid > INT32_MAX)
                continue;
            th = find_thread(r, (int)tid);
            if (!th || !th->alive) {
                /* New, or a dead thread's tid reused: a new thread. */
                th = add_thread(r, (int)tid, 1);
                if (!th)
                    continue;   /* at the thread cap, or out of memory */
                th->young = young;
                th->rename = young;
                added++;
            }
            th->listed = 1;
        }
        /* Room left for more names: the directory's end (proc fills the
           buffer while entries remain), without one more getdents. */
        if ((size_t)n + 512 <= sizeof(words))
            break;
    }
    if (n < 0)
        return pmp_error_errno(err, PMP_E_GONE, errno,
                               "cannot list the threads of process %d",
                               r->pid);
    /* A listing made while threads come and go can skip a live one
       (proc_task_readdir walks the list by position): gone is when its
       schedstat can no longer be read. */
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        uint64_t c, d, pc;
        if (th->alive && !th->listed && !th->seized &&
            read_sched(th, &c, &d, &pc) != 0)
            thread_gone(r, th);
    }
    /* The new ones may have started threads before their events were
       open: no record tells of those. */
    r->list_due = added > 0;
    return added;
}

/*
 * Whether this tick lists /proc/PID/task.  A listing costs the kernel a
 * dentry lookup per thread: ~100 us at 64 threads, a sixth of the
 * sampler's CPU at 99 Hz when done at every tick.  With context switch
 * records a birth is a FORK record in the parent's ring (list_due), and
 * an end shows in the process's thread count (one read of
 * /proc/PID/stat, ~5 us); a birth and an end in one tick are the FORK's.
 * Every tick without the records, or once a thread had none (a refused
 * event: its births are not told); at least once a second.
 */
static int
list_wanted(struct pmp_recording *r, uint64_t now)
{
    long n;

    if (!r->use_switch || r->list_always || r->list_due ||
        now - r->listed_at >= LIST_NS)
        return 1;
    n = read_nthreads(r->statfd);
    return n < 0 || (size_t)n != r->nalive;
}

/* The process exited (its pidfd is readable), or called execve (its
   code and stack moved). */
static void
check_process(struct pmp_recording *r, int exec_too)
{
    struct pollfd pfd = {r->pidfd, POLLIN, 0};
    unsigned long long v[3];

    if (r->pidfd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
        /* Every thread has exited (a zombie leader stays listed until
           its parent reaps it: it is not a thread to sample). */
        size_t i;
        r->gone = 1;
        for (i = 0; i < r->nthreads; i++)
            if (!r->threads[i]->seized)
                thread_gone(r, r->threads[i]);
    }
    if (exec_too && r->statfd >= 0 && read_exe_id(r->statfd, v) == 0 &&
        memcmp(v, r->exe_id, sizeof(v)) != 0)
        r->stats.exec = 1;
}

/*
 * The process's files kept open for the recording, its threads, and one
 * seize of its first thread (stopped and detached at once): an attach
 * that is not allowed fails here, with the reason.
 */
static int
open_process(struct pmp_recording *r, struct pmp_error *err)
{
    char path[64];
    struct rthread *th;
    uint64_t deadline;
    int rc;

    snprintf(path, sizeof(path), "/proc/%d/task", r->pid);
    r->taskfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->taskfd < 0)
        return errno == ENOENT
                   ? pmp_error_set(err, PMP_E_GONE, "no process with pid %d",
                                   r->pid)
                   : pmp_error_errno(err, PMP_E_TARGET, errno,
                                     "cannot list '%s'", path);
    snprintf(path, sizeof(path), "/proc/%d/stat", r->pid);
    r->statfd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->statfd >= 0 && read_exe_id(r->statfd, r->exe_id)) {
        close(r->statfd);
        r->statfd = -1;
    }
    r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
    rc = list_tasks(r, 0, err);
    if (rc < 0)
        return rc;
    if (r->nalive == 0)
        return pmp_error_set(err, PMP_E_GONE, "process %d has no threads",
                             r->pid);
    th = find_thread(r, r->pid);
    if (!th)
        th = r->threads[0];
    if (seize_thread(r, th) < 0)
        return pmp_proc_attach_error(err, r->pid, errno);
    deadline = pmp_now_ns(CLOCK_MONOTONIC) + 2000000000ull;
    while (th->alive && th->seized && !th->stopped &&
           pmp_now_ns(CLOCK_MONOTONIC) < deadline) {
        poll_thread(r, th);
        if (th->seized && !th->stopped)
            nap(r, 200000);
    }
    release_thread(r, th);
    th->lost = 0;
    {
        /* The recording's figures start after this probe. */
        struct pmp_record_stats *st = &r->stats;
        st->max_stop_ns = st->max_stop_own_ns = 0;
        st->stops_over = st->stops_over_own = 0;
        st->stall_ns = st->stall_max_ns = 0;
        st->nover = 0;
    }
    return 0;
}

static void
detach_all(struct pmp_recording *r)
{
    size_t i;
    uint64_t deadline;

    for (i = 0; i < r->nthreads; i++)
        release_thread(r, r->threads[i]);
    /* A thread interrupted in uninterruptible sleep stops late: wait for
       it a while.  One that never stops is detached by the kernel when
       this process exits. */
    deadline = pmp_now_ns(CLOCK_MONOTONIC) + 2000000000ull;
    while (r->npending && pmp_now_ns(CLOCK_MONOTONIC) < deadline) {
        sweep(r);
        if (r->npending)
            nap(r, 200000);
    }
}


/* ---- one sample ---- */

static int
sample_state(const struct pmp_regs *rg, int *sys)
{
    int64_t orig = (int64_t)rg->orig_rax, ax = (int64_t)rg->r[PMP_REG_RAX];

    *sys = -1;
    /* Stopped inside a blocking call: the kernel set up a restart
       (-ERESTARTSYS ... -ERESTART_RESTARTBLOCK) or it failed with EINTR. */
    if (orig >= 0 && orig < 1024 &&
        ((ax <= -512 && ax >= -516) || ax == -4)) {
        *sys = (int)orig;
        return PMP_SAMPLE_SLEEPING;
    }
    return PMP_SAMPLE_RUNNING;
}

static void
pause_add(struct pmp_recording *r, uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t b = us < 1000 ? (size_t)us
                         : PMP_MIN(1000 + (size_t)((us - 1000) / 100),
                                   (size_t)PAUSE_BUCKETS - 1);

    r->pause_hist[b]++;
    r->npauses++;
    if (ns > r->stats.pause_max_ns)
        r->stats.pause_max_ns = ns;
}

static uint64_t
pause_pct(const struct pmp_recording *r, double q)
{
    uint64_t want, acc = 0;
    size_t b;

    if (!r->npauses)
        return 0;
    want = (uint64_t)(q * (double)(r->npauses - 1)) + 1;
    for (b = 0; b < PAUSE_BUCKETS; b++) {
        acc += r->pause_hist[b];
        if (acc >= want)
            return b < 1000 ? (uint64_t)b * 1000 + 500
                            : (1000 + (uint64_t)(b - 1000) * 100 + 50) * 1000;
    }
    return r->stats.pause_max_ns;
}

static int
push_event(struct pmp_recording *r, struct rthread *th, int64_t stack,
           int state, int sys, uint64_t t, int64_t wall, int64_t cpu)
{
    struct pmp_rec_event *ev;

    if (stack < 0)
        return (int)stack;
    if (r->nevents >= MAX_EVENTS)
        return PMP_E_NOMEM;
    if (pmp_grow((void **)&r->events, &r->events_cap, r->nevents + 1,
                 sizeof(*r->events)))
        return PMP_E_NOMEM;
    ev = &r->events[r->nevents++];
    ev->t_ns = t - r->t0_mono;
    ev->stack = (uint32_t)stack;
    ev->thread = th->idx;
    ev->wall_ns = wall;
    ev->cpu_ns = cpu;
    ev->state = (uint8_t)state;
    ev->sys = (int16_t)sys;
    ev->gset = r->cur_gset;
    th->t_ev = t;
    th->samples++;
    th->cpu_ns += cpu;
    th->wall_ns += wall;
    return 0;
}

/*
 * Log th's sample taken at `now`: it stands for the time since the
 * thread's previous sample.  When ticks were missed in between (a cycle
 * overran, the sampler was starved), the time beyond one period is not
 * what this stack did: it is charged to a [lost] sample, so that the
 * totals stay whole and honest.  CPU time is charged only to a stack the
 * thread is found running in (charge_cpu), all it used since its last
 * such sample.
 */
static int
add_event(struct pmp_recording *r, struct rthread *th, int64_t stack,
          int state, int sys, uint64_t now, int charge_cpu)
{
    uint64_t cpu = th->alive ? read_cpu(th) : th->cpu_last;
    /* A thread born during this cycle was first seen after its start. */
    int64_t wall = now > th->t_last ? (int64_t)(now - th->t_last) : 0;
    int64_t dcpu = cpu >= th->cpu_last ? (int64_t)(cpu - th->cpu_last) : 0;
    int64_t period = (int64_t)r->period_ns;
    int rc;

    th->t_last = PMP_MAX(now, th->t_last);
    /* CPU time is charged only to a stack the thread was found running
       in; found asleep, it keeps its CPU time for its next running
       sample (the blocking call did not use it). */
    if (charge_cpu)
        th->cpu_last = cpu;
    else
        dcpu = 0;
    if (stack != r->lost_stack && th->samples > 0 &&
        wall > period + period / 2) {
        int64_t excess = wall - period;
        /* Its CPU time stays with the running sample it is found in
           (the rule above): a stack is known only there. */
        int64_t ecpu = 0;
        uint32_t gset = r->cur_gset;

        r->cur_gset = 0;   /* the lost time ran no goroutine we know of */
        rc = push_event(r, th, r->lost_stack, PMP_SAMPLE_LOST, -1,
                        now - (uint64_t)period, excess, ecpu);
        r->cur_gset = gset;
        if (rc)
            return rc;
        th->lost_count++;
        r->stats.lost++;
        wall -= excess;
        dcpu -= ecpu;
    }
    return push_event(r, th, stack, state, sys, now, wall, dcpu);
}

static int64_t
synth_stack(struct pmp_recording *r, enum pmp_synth kind)
{
    uint64_t pc = PMP_PC_SYNTH(kind);
    uint8_t f = PMP_FRAME_ACTIVATION;

    return pmp_rec_intern(r, &pc, &f, 1);
}

static void
copy_stack(struct pmp_recording *r, struct rthread *th)
{
    struct pmp_target *t = r->s->target;
    size_t want = r->floor ? FLOOR_STACK_BYTES : th->need;
    long got;

    th->stk_len = 0;
    if (want > th->stk_cap) {
        unsigned char *nb = realloc(th->stk, want);
        if (!nb)
            return;
        th->stk = nb;
        th->stk_cap = want;
    }
    got = t->ops->read(t, th->regs.r[PMP_REG_RSP], th->stk, want, NULL);
    if (got > 0)
        th->stk_len = (size_t)got;
}

/*
 * Go: the goroutine th ran when stopped (its g from R14 or TLS, checked
 * through g.m.procid: read during the stop, see cycle()) and its pprof
 * labels, as a label set shared by the samples of the same (goroutine,
 * labels pointer).  The labels map is read after the resume: a
 * goroutine's labels change only by pprof.Do/SetGoroutineLabels, which
 * install a new map (a new pointer) rather than edit the old one.
 */
static uint32_t
go_gset(struct pmp_recording *r, struct rthread *th)
{
    struct pmp_target *t = r->s->target;
    uint64_t lp = th->go_labels, key;
    int64_t goid = th->goid;
    uintptr_t v;
    struct pmp_go_label tmp[32];
    struct pmp_rec_gset *gs;
    size_t n;

    if (!th->go_ok)
        return 0;
    key = pmp_hash64((uint64_t)goid) ^ lp;
    if (key == UINT64_MAX)
        key = 0;
    v = (uintptr_t)pmp_u64map_get(&r->gset_by, key);
    if (v && r->gsets[v - 1].goid == goid && r->gsets[v - 1].labels_ptr == lp)
        return (uint32_t)v;
    n = pmp_go_labels(t, r->go_layout, lp, &r->names, tmp,
                      PMP_ARRAY_SIZE(tmp));
    if (pmp_grow((void **)&r->gsets, &r->gsets_cap, r->ngsets + 1,
                 sizeof(*r->gsets)) ||
        pmp_grow((void **)&r->glabels, &r->glabels_cap, r->nglabels + n + 1,
                 sizeof(*r->glabels)))
        return 0;
    gs = &r->gsets[r->ngsets++];
    gs->goid = goid;
    gs->labels_ptr = lp;
    gs->first = r->nglabels;
    gs->n = n;
    memcpy(r->glabels + r->nglabels, tmp, n * sizeof(*tmp));
    r->nglabels += n;
    if (!v)
        pmp_u64map_put(&r->gset_by, key, (void *)(uintptr_t)r->ngsets);
    return (uint32_t)r->ngsets;
}

/*
 * A Go thread on its system stack (g0) working for a goroutine: the
 * goroutine's saved context and the top of its stack, copied while
 * stopped, so the unwind after the resume can cross runtime.systemstack
 * (or a cgo call) into frames that are gone by then.
 */
#define GO_STACK_COPY 8192

static void
copy_go_stack(struct pmp_recording *r, struct rthread *th)
{
    struct pmp_target *t = r->s->target;
    uint64_t sp;
    long got;
    int rc;

    th->go_ctx_ok = 0;
    th->gstk_len = 0;
    rc = pmp_go_curg_context(t, r->go_minor, &th->regs,
                             th->regs.r[PMP_REG_RSP], &th->go_ctx);
    if (rc == PMP_E_UNSUPPORTED)
        th->go_ctx_ok = -1;   /* the unwinder marks the stack */
    if (rc)
        return;
    th->go_ctx_ok = 1;
    sp = th->go_ctx.syscall_sp ? th->go_ctx.syscall_sp : th->go_ctx.sched_sp;
    if (!sp)
        return;
    if (!th->gstk) {
        th->gstk = malloc(GO_STACK_COPY);
        if (!th->gstk)
            return;
    }
    got = t->ops->read(t, sp, th->gstk, GO_STACK_COPY, NULL);
    if (got > 0) {
        th->gstk_addr = sp;
        th->gstk_len = (size_t)got;
    }
}

/* Unwind from rg with the target's reads served by ov first; the
   interned stack (negative: PMP_E_*). */
static int64_t
unwind_stack(struct pmp_recording *r, const struct pmp_regs *rg,
             struct pmp_overlay *ov)
{
    struct pmp_target *t = r->s->target;
    unsigned flags = 0;
    struct pmp_error uerr = {0};
    uint64_t t0 = pmp_now_ns(CLOCK_MONOTONIC);
    int n;

    pmp_target_drop_cache(t);
    t->overlay = ov;
    n = pmp_unwind(r->s->unw, rg, r->pcbuf, r->flbuf, r->max_frames,
                   &flags, &uerr);
    t->overlay = NULL;
    pmp_unwinder_set_go_ctx(r->s->unw, NULL);
    r->stats.unwind_ns += pmp_now_ns(CLOCK_MONOTONIC) - t0;
    if (n < 1) {
        r->pcbuf[0] = rg->r[PMP_REG_RIP];
        r->flbuf[0] = PMP_FRAME_ACTIVATION;
        n = 1;
    }
    if (flags & PMP_STACK_UNWIND_ERR) {
        r->pcbuf[n] = PMP_PC_SYNTH(PMP_SYNTH_UNWIND_ERR);
        r->flbuf[n++] = PMP_FRAME_ACTIVATION;
    } else if (flags & PMP_STACK_GO) {
        r->pcbuf[n] = PMP_PC_SYNTH(PMP_SYNTH_GO);
        r->flbuf[n++] = PMP_FRAME_ACTIVATION;
    }
    if (flags & PMP_STACK_TRUNCATED) {
        r->pcbuf[n] = PMP_PC_SYNTH(PMP_SYNTH_TRUNCATED);
        r->flbuf[n++] = PMP_FRAME_ACTIVATION;
    }
    r->stats.frames += (uint64_t)n;
    return pmp_rec_intern(r, r->pcbuf, r->flbuf, (uint32_t)n);
}

/*
 * Perf method: the thread's CPU time that no CPU sample saw, from the
 * totals since it was first read (schedstat's cpu, read last, against
 * its samples' time and what was charged here before), when over two
 * periods: as CPU and wall at a frame that says so.  With user-mode
 * samples only that is about its time in system calls (the kernel skips
 * the ticks in kernel mode); with kernel-mode ticks what the timer
 * missed (threads running in bursts of microseconds on a busy machine).
 * Off-CPU samples weigh wall time less schedstat's CPU, so without this
 * the wall total would fall short by as much.  room: wall time left to
 * charge when nothing follows that could take back an excess.
 */
static int
unsampled_event(struct pmp_recording *r, struct rthread *th, uint64_t cpu,
                int64_t room, uint64_t now)
{
    int64_t miss;
    int rc;

    if (!th->perf || cpu < th->cpu0)
        return 0;
    miss = (int64_t)(cpu - th->cpu0) - th->sampled_ns - th->unsampled_ns;
    miss = PMP_MIN(miss, room);
    if (miss <= 2 * (int64_t)r->period_ns)
        return 0;
    rc = push_event(r, th, r->unsampled_stack, PMP_SAMPLE_RUNNING, -1,
                    PMP_MAX(now, th->t_ev), miss, miss);
    if (rc == 0) {
        th->unsampled_ns += miss;
        r->stats.thread_samples++;   /* one more sample in the files */
    }
    return rc;
}

/* unsampled_event at the end of th's recording (the end of the whole
   one, or its own end): room is its recorded time to `end` less the
   wall time charged to it. */
static int
unsampled_until(struct pmp_recording *r, struct rthread *th, uint64_t cpu,
                uint64_t end, uint64_t now)
{
    uint64_t from = PMP_MAX(th->seen_at, r->t0_mono);

    return unsampled_event(r, th, cpu,
                           (int64_t)(end > from ? end - from : 0) -
                               th->wall_ns,
                           now);
}

/*
 * Perf method: th's off-CPU time since its last accounted event, at the
 * stack it sleeps in: the wall time minus its CPU time (which its CPU
 * samples carry) minus what was already charged as waiting for a CPU.
 */
static int
offcpu_event_as(struct pmp_recording *r, struct rthread *th, int64_t stack,
                int state, int sys, uint64_t now)
{
    int64_t wall = now > th->t_last ? (int64_t)(now - th->t_last) : 0;
    uint64_t cpu = th->cur_cpu;
    int64_t dcpu = cpu >= th->cpu_last ? (int64_t)(cpu - th->cpu_last) : 0;
    int64_t off = wall - dcpu - th->wall_credit;

    th->t_last = PMP_MAX(now, th->t_last);
    th->cpu_last = PMP_MAX(cpu, th->cpu_last);
    /* Waits for a CPU not charged yet (no CPU sample to add them to)
       are in this window's wall time. */
    th->delay_last = PMP_MAX(th->cur_delay, th->delay_last);
    /* schedstat adds a wait for a CPU when the wait ends, and CPU time
       at scheduler ticks: a window can see more than its own share.
       What it over-counted is taken from the next window, so the totals
       stay whole. */
    th->wall_credit = off < 0 ? -off : 0;
    if (off < 0)
        off = 0;
    if (dcpu > 0) {
        int rc = unsampled_event(r, th, th->cpu_last, INT64_MAX, now);
        if (rc)
            return rc;
    }
    return push_event(r, th, stack, state, sys, PMP_MAX(now, th->t_ev), off,
                      0);
}

static int
offcpu_event(struct pmp_recording *r, struct rthread *th, int64_t stack,
             int sys, uint64_t now)
{
    return offcpu_event_as(r, th, stack, PMP_SAMPLE_SLEEPING, sys, now);
}

/* Perf method: time th waited for a CPU since its last event, added
   (wall only) to its last CPU sample, the stack it was preempted in. */
static int
runnable_event(struct pmp_recording *r, struct rthread *th, uint64_t now)
{
    int64_t d = th->cur_delay > th->delay_last
                    ? (int64_t)(th->cur_delay - th->delay_last)
                    : 0;
    struct pmp_rec_event *ev;

    if (!d || !th->last_cpu_ev || th->last_cpu_ev > r->nevents)
        return 0;   /* no CPU stack yet: the wait stays in the window */
    th->delay_last = th->cur_delay;
    ev = &r->events[th->last_cpu_ev - 1];
    th->wall_credit += d;
    ev->wall_ns += d;
    th->wall_ns += d;
    return 0;
}

/* After the resume: unwind th from its copied stack and log the sample. */
static int
unwind_sampled(struct pmp_recording *r, struct rthread *th, uint64_t now)
{
    struct pmp_overlay ov;
    int n, sys, state = sample_state(&th->regs, &sys);
    uint64_t sp = th->regs.r[PMP_REG_RSP];
    int64_t stack;

    if (th->perf && state != PMP_SAMPLE_SLEEPING &&
        (th->last_cpu_ev || !th->young)) {
        /* Woke up before the stop came: its CPU samples have it. */
        th->last_stack = -1;
        th->ss_ok = 0;
        return 0;
    }
    if (r->floor) {
        r->pcbuf[0] = th->regs.r[PMP_REG_RIP];
        r->flbuf[0] = PMP_FRAME_ACTIVATION;
        return add_event(r, th, pmp_rec_intern(r, r->pcbuf, r->flbuf, 1),
                         state, sys, now, 1);
    }
    memset(&ov, 0, sizeof(ov));
    ov.addr = sp;
    ov.len = th->stk_len;
    ov.data = th->stk;
    if (r->go_stacks && th->go_ctx_ok == 1) {
        ov.addr2 = th->gstk_addr;
        ov.len2 = th->gstk_len;
        ov.data2 = th->gstk;
        pmp_unwinder_set_go_ctx(r->s->unw, &th->go_ctx);
    } else if (r->go_stacks && th->go_ctx_ok == 0) {
        static const struct pmp_go_ctx none;   /* no goroutine: no jump */
        pmp_unwinder_set_go_ctx(r->s->unw, &none);
    }
    stack = unwind_stack(r, &th->regs, &ov);
    /* Size the next copy from what this unwind touched. */
    {
        uint64_t hi = ov.hi;
        if (ov.miss_hi > sp && ov.miss_hi - sp <= r->stack_bytes)
            hi = PMP_MAX(hi, ov.miss_hi + (ov.miss_hi - sp));
        if (hi > sp) {
            size_t need = (size_t)(hi - sp) + 4096;
            need = (need + 4095) & ~(size_t)4095;
            th->need = PMP_MAX(PMP_MIN(need, r->stack_bytes),
                               (size_t)MIN_STACK_BYTES);
        }
    }
    if (stack < 0)
        return (int)stack;
    if (state == PMP_SAMPLE_SLEEPING) {
        /* Kept: while the thread does not run, this is still its stack. */
        th->last_stack = stack;
        th->last_sys = sys;
    } else {
        th->last_stack = -1;
        th->ss_ok = 0;
    }
    r->cur_gset = r->is_go ? go_gset(r, th) : 0;
    if (th->perf && state != PMP_SAMPLE_SLEEPING) {
        /* No CPU sample of its own yet: its wall time, at this stack;
           its CPU time is what its CPU samples will say. */
        int64_t wall = now > th->t_last ? (int64_t)(now - th->t_last) : 0;
        th->t_last = PMP_MAX(now, th->t_last);
        th->cpu_last = PMP_MAX(th->cur_cpu, th->cpu_last);
        th->delay_last = PMP_MAX(th->cur_delay, th->delay_last);
        wall -= th->wall_credit;
        th->wall_credit = wall < 0 ? -wall : 0;
        n = push_event(r, th, stack, state, sys, PMP_MAX(now, th->t_ev),
                       wall > 0 ? wall : 0, 0);
    } else if (th->perf)
        n = offcpu_event(r, th, stack, sys, now);
    else
        n = add_event(r, th, stack, state, sys, now,
                      state != PMP_SAMPLE_SLEEPING);
    r->cur_gset = 0;
    return n;
}

/*
 * The recording done and the target gone on: the frames of functions
 * that left by a tail call (tailcall.c) into every interned stack.  Stack
 * ids stay; their pcs move to new arrays.
 */
static int
expand_tailcalls(struct pmp_recording *r)
{
    struct pmp_tailcalls *tc = pmp_session_tailcalls(r->s);
    uint64_t *pcs = NULL, *ep;
    uint8_t *fl = NULL, *ef;
    size_t *off = NULL, npcs = 0, cap = 0, flcap = 0, i, en;
    uint32_t *len = NULL;

    if (!tc)
        return PMP_E_NOMEM;
    off = pmp_calloc(r->nstacks ? r->nstacks : 1, sizeof(*off));
    len = pmp_calloc(r->nstacks ? r->nstacks : 1, sizeof(*len));
    if (!off || !len)
        goto oom;
    for (i = 0; i < r->nstacks; i++) {
        const struct pmp_rec_stack *st = &r->stacks[i];
        const uint64_t *sp = r->pcs + st->off;
        const uint8_t *sf = r->fl + st->off;
        if (pmp_tailcalls_expand_stack(tc, sp, sf, st->n, &ep, &ef, &en))
            goto oom;
        if (en > UINT32_MAX ||
            pmp_grow((void **)&pcs, &cap, npcs + en, sizeof(*pcs)) ||
            pmp_grow((void **)&fl, &flcap, npcs + en, 1)) {
            free(ep);
            free(ef);
            goto oom;
        }
        memcpy(pcs + npcs, ep ? ep : sp, en * sizeof(*pcs));
        memcpy(fl + npcs, ef ? ef : sf, en);
        free(ep);
        free(ef);
        off[i] = npcs;
        len[i] = (uint32_t)en;
        npcs += en;
    }
    /* Every stack expanded: only now do the stacks move. */
    for (i = 0; i < r->nstacks; i++) {
        struct pmp_rec_stack *st = &r->stacks[i];
        st->off = off[i];
        st->n = len[i];
        st->hash = stack_hash(pcs + off[i], fl + off[i], len[i]);
    }
    free(r->pcs);
    free(r->fl);
    r->pcs = pcs;
    r->fl = fl;
    r->npcs = npcs;
    r->pcs_cap = cap;
    r->fl_cap = flcap;
    free(off);
    free(len);
    /* The intern table hashed the old stacks: rebuild it. */
    return tab_rehash(r, r->tabcap ? r->tabcap : 1024) ? PMP_E_NOMEM : 0;
oom:
    free(pcs);
    free(fl);
    free(off);
    free(len);
    return PMP_E_NOMEM;
}

/*
 * Perf method: one CPU sample of r->draining, taken by the kernel while
 * the thread ran.  The unwind reads the stack range from the sample's
 * copy and everything else (code, unwind tables) from the process.
 */
static int
on_perf_sample(void *ctx, const struct pmp_perf_sample *ps)
{
    struct pmp_recording *r = ctx;
    struct rthread *th = r->draining;
    struct pmp_regs rg = ps->regs;
    struct pmp_overlay ov;
    int64_t stack;
    uint64_t t = ps->time;
    int rc;

    /* A stop that came late is detached between two samples' unwinds. */
    sweep_soon(r);
    if (ps->tid != th->tid || !th->wanted)
        return 0;
    if (t < r->t0_mono)
        return 0;   /* before the recording started */
    rg.fs_base = th->fs_base;
    memset(&ov, 0, sizeof(ov));
    ov.addr = rg.r[PMP_REG_RSP];
    ov.len = (size_t)ps->stack_len;
    ov.data = ps->stack;
    if (r->go_stacks && !r->go_ctx_unsup) {
        /* No goroutine context was captured with the sample: on a
           system stack the unwind ends there instead of guessing.  (A
           release without a g layout: the unwinder marks it, as for a
           stopped thread.) */
        static const struct pmp_go_ctx none;
        pmp_unwinder_set_go_ctx(r->s->unw, &none);
    }
    stack = unwind_stack(r, &rg, &ov);
    if (stack < 0)
        return (int)stack;
    r->cur_gset = 0;
    if (r->is_go) {
        /* The g in the sampled registers (R14 in Go code, checked by
           its stack holding the sampled sp); else (C code, the system
           stack) the goroutine this thread's M runs now, right while it
           still runs it (checked by g.m.procid). */
        uint64_t g;
        th->go_ok = pmp_go_sampled(r->s->target, r->go_layout, &rg, &g,
                                   &th->goid, &th->go_labels) == 0 ||
                    pmp_go_current(r->s->target, r->go_layout, &rg, th->tid, &g,
                                   &th->goid, &th->go_labels) == 0;
        r->cur_gset = go_gset(r, th);
        th->go_ok = 0;
    }
    th->last_cpu_stack = stack;
    th->had_cpu = 1;
    r->stats.cpu_samples++;
    r->stats.thread_samples++;
    rc = push_event(r, th, stack, PMP_SAMPLE_RUNNING, -1,
                    PMP_MAX(t, th->t_ev), (int64_t)r->period_ns,
                    (int64_t)r->period_ns);
    if (rc == 0) {
        th->last_cpu_ev = r->nevents;
        th->sampled_ns += (int64_t)r->period_ns;
    }
    r->cur_gset = 0;
    return rc;
}

/*
 * Perf method, a context switch of the thread being drained: its state
 * after it (switched in, or out while still runnable: it runs or waits
 * for a CPU; switched out otherwise: it blocked), and one more switch in
 * since its stack reference.
 */
static int
on_switch(void *ctx, const struct pmp_perf_switch *sw)
{
    struct pmp_recording *r = ctx;
    struct rthread *th = r->draining;

    if (sw->tid != th->tid)
        return 0;
    r->stats.switch_records++;
    th->sw_state = sw->out && !sw->preempt ? SW_BLOCKED : SW_RUN;
    if (!sw->out && th->sw_ref && sw->time > th->sw_ref_t &&
        th->sw_ins < UINT32_MAX)
        th->sw_ins++;
    return 0;
}

/* Perf method: th's context switches since the last tick.  Records the
   kernel dropped (its ring full): its state and run count are not known
   until a /proc look or a stop tells them again. */
static int
drain_switches(struct pmp_recording *r, struct rthread *th)
{
    uint64_t lost, tasks;
    int rc;

    if (!th->perf->sw)
        return 0;
    lost = th->perf->sw->lost;
    tasks = th->perf->sw->tasks;
    r->draining = th;
    rc = pmp_perf_drain_switches(th->perf, on_switch, r);
    r->draining = NULL;
    if (th->perf->sw->lost > lost) {
        r->stats.switch_lost += th->perf->sw->lost - lost;
        th->sw_state = SW_NONE;
        th->sw_ref = 0;
        r->list_due = 1;   /* a FORK record may be among them */
    }
    if (th->perf->sw->tasks != tasks)
        r->list_due = 1;   /* it started a thread (or a process) */
    return rc;
}

/* Perf method: every thread's CPU samples since the last tick. */
static int
drain_perf(struct pmp_recording *r, uint64_t now)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < r->nthreads && rc == 0; i++) {
        struct rthread *th = r->threads[i];
        uint64_t lost;

        if (!th->perf)
            continue;
        rc = drain_switches(r, th);
        if (rc)
            break;
        lost = th->perf->lost;
        r->draining = th;
        rc = pmp_perf_drain(th->perf, on_perf_sample, r);
        r->draining = NULL;
        if (rc == 0 && th->perf->lost > lost) {
            /* The kernel dropped samples (ring full): their CPU time. */
            int64_t ns = (int64_t)((th->perf->lost - lost) * r->period_ns);
            r->stats.perf_lost += th->perf->lost - lost;
            rc = push_event(r, th, r->lost_stack, PMP_SAMPLE_LOST, -1,
                            PMP_MAX(now, th->t_ev), ns, ns);
            th->lost_count++;
            r->stats.lost++;
        }
        if (!th->alive) {
            /* Its last samples are in: what none saw, by its last
               schedstat read, within its recorded life. */
            if (rc == 0 && th->samples)
                rc = unsampled_until(r, th, th->cpu_last, th->gone_at, now);
            pmp_perf_close(th->perf);
            free(th->perf);
            th->perf = NULL;
        }
    }
    return rc;
}

/* /proc/PID/task/TID/syscall (read without stopping the thread) shows
   it blocked in the call, stack pointer and pc of its last stop. */
static int
same_call(struct pmp_recording *r, struct rthread *th)
{
    char path[64], buf[256];
    unsigned long long nr, a[6], sp, pc;
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", r->pid,
             th->tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llx %llx %llx %llx %llx %llx %llx %llx", &nr,
               &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &sp, &pc) != 9)
        return 0;
    return (int)nr == th->last_sys && sp == th->regs.r[PMP_REG_RSP] &&
           pc == th->regs.r[PMP_REG_RIP];
}

/*
 * Which threads this tick stops (th->sampled set for the others):
 *  3  asleep since its last stack was taken (schedstat's CPU time and
 *     run count unchanged): that stack is reused, no stop;
 *  4  perf method, running or runnable now: its CPU samples cover it,
 *     no stop;
 *  otherwise it is interrupted and unwound.
 */
static void
take_sched(struct pmp_recording *r, struct rthread *th)
{
    uint64_t c, d, pc;

    r->stats.sched_reads++;
    if (read_sched(th, &c, &d, &pc) == 0) {
        th->cur_cpu = c;
        th->cur_delay = d;
        th->cur_pcount = pc;
        th->cur_ok = 1;
    } else {
        th->cur_cpu = th->cpu_last;
        th->cur_delay = th->delay_last;
        th->cur_pcount = 0;
        th->cur_ok = 0;
    }
}

/* Running or waiting for a CPU: its CPU samples cover it.  schedstat
   only when a CPU sample came since it was last read (its waits for a
   CPU are charged to that sample). */
static void
cpu_covers(struct pmp_recording *r, struct rthread *th)
{
    th->sampled = 4;
    if (th->last_cpu_ev != th->delay_ev) {
        take_sched(r, th);
        th->delay_ev = th->last_cpu_ev;
    } else {
        th->cur_ok = 0;
    }
}

/* A look in /proc (schedstat unchanged since th's stack was taken) or a
   stop found th still in its last stack now: every switch in recorded
   from here on is a run since (the records up to the look are drained:
   the ones after are counted, a little more than needed). */
static void
switch_count_from(struct rthread *th, uint64_t t)
{
    th->sw_ref = 1;
    th->sw_ref_t = t;
    th->sw_ins = 0;
}

static void
switch_ref(struct rthread *th, int state)
{
    if (!th->perf || !th->perf->sw)
        return;
    th->sw_state = state;
    switch_count_from(th, 0);
}

/*
 * Perf method with context switch records: th's state from its last
 * record, no /proc read (docs/record.md).  1 decided (th->sampled 3 or
 * 4), 0 left to the /proc looks (select_thread): no record yet, records
 * lost, a young thread without CPU samples, or a blocked thread that ran
 * since its last stack (it is stopped once, after a schedstat read the
 * off-CPU figures and the stop's bound need).
 */
static int
switch_select(struct pmp_recording *r, struct rthread *th)
{
    if (!th->perf || !th->perf->sw || th->seized || th->stopped ||
        th->interrupted || th->group_stop)
        return 0;
    if (th->sw_state == SW_RUN && (th->last_cpu_ev || !th->young)) {
        /* Running or waiting for a CPU. */
        th->had_cpu = 0;
        th->was_running = 1;
        cpu_covers(r, th);
        return 1;
    }
    if (th->sw_state != SW_BLOCKED)
        return 0;
    /* Blocked: whatever CPU samples it had, it needs its off-CPU stack
       now, unless it has not run since its last one.  Not run: no
       switch in since the reference (the stop that took the stack: the
       switch into that stop counts, as in select_thread's run count,
       so one is allowed while the reference is pending). */
    th->had_cpu = 0;
    th->was_running = 0;
    if (th->sw_ref && th->last_stack >= 0 && !r->floor &&
        ((th->ss_ok && th->sw_ins == 0) ||
         (th->ss_pending && th->sw_ins <= 1))) {
        /* Its CPU time and waits have not moved since they were read. */
        th->cur_cpu = th->cpu_last;
        th->cur_delay = th->delay_last;
        th->cur_ok = 0;
        th->sampled = 3;
        return 1;
    }
    return 0;
}

static void
select_thread(struct pmp_recording *r, struct rthread *th)
{
    uint64_t c = th->cur_cpu, pc = th->cur_pcount;

    if (th->cur_ok) {
        if (th->ss_ok && th->last_stack >= 0 && c == th->ss_cpu &&
            pc == th->ss_pcount && !r->floor) {
            th->sampled = 3;
            switch_ref(th, SW_BLOCKED);
            return;
        }
        /* Stopped asleep last time and run at most once since: that was
           into our stop; resumed, it has not run yet (no user code ran). */
        if (th->ss_pending && th->last_stack >= 0 && !r->floor &&
            pc <= th->ss_pcount + 1) {
            th->sampled = 3;
            return;
        }
        /* Exactly the two runs our stop caused (into the stop, then to
           restart its call) and back in the same call at the same sp and
           pc: still that stack. */
        if (th->ss_pending && th->last_stack >= 0 && !r->floor &&
            pc == th->ss_pcount + 2 && same_call(r, th)) {
            th->ss_pending = 0;
            th->ss_ok = 1;
            th->ss_cpu = c;
            th->ss_pcount = pc;
            th->sampled = 3;
            switch_ref(th, SW_BLOCKED);
            return;
        }
    }
    th->ss_ok = 0;
    th->ss_pending = 0;
    /* Running: its CPU samples cover it.  A thread born while recording
       that has none yet (it may live shorter than a period of CPU) is
       stopped for a wall-clock sample, so short-lived threads show. */
    if (th->perf && (th->last_cpu_ev || !th->young) && read_running(r, th) == 1) {
        th->sampled = 4;
        if (th->sw_state == SW_NONE)
            th->sw_state = SW_RUN;
    }
    th->was_running = th->sampled == 4;
}

/*
 * SCHED_FIFO sessions (target-proc.c): the stop phase of a tick runs one
 * priority above the session's, the unwinding after it at the session's.
 * Another pmprof (or this one's other work) busy at the session priority
 * cannot then delay a detach while threads are held: on a machine where
 * other pmprof sessions symbolized at FIFO 10, a sampler at that same
 * priority waited 11 ms for a CPU with threads stopped.
 */
static void
stop_priority(struct pmp_recording *r, int high)
{
    struct sched_param sp;

    if (!r->prio_base || r->prio_high == high)
        return;
    memset(&sp, 0, sizeof(sp));
    sp.sched_priority = r->prio_base + (high ? 1 : 0);
    if (sched_setparam(0, &sp) == 0)
        r->prio_high = high;
}

static int
cycle(struct pmp_recording *r)
{
    uint64_t t0, t1, deadline, now;
    uint64_t nap_ns = 100000;
    size_t i, nstopped = 0;
    int rc = 0, left_before = -1;
    struct pmp_error lerr = {0};

    /* 0. Perf method: the CPU samples the kernel took since the last
       tick, unwound now (nothing is stopped). */
    now = pmp_now_ns(CLOCK_MONOTONIC);
    if (now - r->last_module_tick >= MODULE_REFRESH_NS) {
        pmp_symbolizer_new_stop(r->s->sym);
        r->last_module_tick = now;
        check_process(r, 1);
        if (r->stats.exec)
            return 0;
    } else {
        check_process(r, 0);
    }
    if (r->use_perf) {
        stop_priority(r, 0);   /* unwinding */
        rc = drain_perf(r, now);
        if (rc)
            return rc;
    }
    /* Threads born and gone since the last tick (nothing is traced in
       between: no clone or exit event stops anyone); after the rings,
       whose FORK records tell of births. */
    if (r->gone ||
        (list_wanted(r, now) && list_tasks(r, 1, &lerr) < 0)) {
        for (i = 0; i < r->nthreads; i++)
            if (!r->threads[i]->seized)
                thread_gone(r, r->threads[i]);
    }
    /* A thread just born has its creator's name until it names itself,
       which it may do only once it gets a CPU: read again 1, 2, 4 ...
       periods after it was seen, until the names of all are read again
       (once a second).  A short life still gets its own name. */
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        if (th->rename && th->alive &&
            now - th->seen_at >= (r->period_ns << (th->rename - 1))) {
            th->rename = (r->period_ns << th->rename) < NAMES_NS
                             ? th->rename + 1 : 0;
            read_comm(r->pid, th);
            thread_wanted(r, th);
        }
    }
    /* The sampler's run-queue wait so far (see stop_done()). */
    r->rd = sampler_delay(r);
    r->rd_when = t0 = pmp_now_ns(CLOCK_MONOTONIC);
    /* 1. Seize and interrupt every thread we sample that needs a new
       stack. */
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        th->sampled = 0;
        th->lost = 0;
        th->go_ok = 0;
        th->go_ctx_ok = 0;
        if (!th->alive || !th->wanted)
            continue;
        if (switch_select(r, th))
            continue;
        if (th->perf && th->had_cpu && !th->seized) {
            /* CPU samples since the last tick: it runs; if it blocked
               since, its off-CPU time waits for the next tick's look (no
               /proc reads here: N busy threads cost the sampler little). */
            th->had_cpu = 0;
            th->cur_ok = 0;
            th->sampled = 4;
            continue;
        }
        if (th->perf && th->was_running && !th->seized && !th->stopped &&
            !th->group_stop && !th->interrupted && read_running(r, th) == 1) {
            /* Running at its last look and still running or runnable
               (one read). */
            cpu_covers(r, th);
            continue;
        }
        th->t_sched = pmp_now_ns(CLOCK_MONOTONIC);
        take_sched(r, th);
        if (th->seized) {
            /* Interrupted at an earlier tick and still not stopped (in
               uninterruptible sleep): its stop is taken when it comes. */
            poll_thread(r, th);
            if (th->alive && th->stopped) {
                r->stats.late_stops++;
                release_thread(r, th);
            }
            th->lost = 1;
            continue;
        }
        if (th->group_stop) {
            /* Job-control stopped at its last stop: while /proc says so
               still, it is not seized again. */
            if (read_state(r->pid, th->tid) == 'T') {
                th->sampled = 2;
                continue;
            }
            th->group_stop = 0;
        }
        select_thread(r, th);
        if (th->sampled)
            continue;
        /* Only a tick that stops someone changes its priority: at 64
           spinning threads most ticks stop nobody. */
        stop_priority(r, 1);
        if (seize_thread(r, th) < 0) {
            if (errno == ESRCH)
                thread_gone(r, th);   /* exited */
            else
                th->lost = 1;         /* exiting, or not allowed */
        }
    }
    /* 2. Wait until they are stopped (bounded: STOP_WAIT_NS).  SIGCHLD wakes us, but
       in a host with threads of its own (gdb) another thread may take
       it: look again after a while, 100 us, doubled up to 1 ms while no
       more thread stopped (a sleeping thread waits for a CPU to enter
       its stop; at 64 spinning threads a fixed 100 us made ~1200
       wake-ups a second of a SCHED_FIFO sampler). */
    deadline = t0 + STOP_WAIT_NS;
    for (;;) {
        int left = 0;
        for (i = 0; i < r->nthreads; i++) {
            struct rthread *th = r->threads[i];
            if (!th->alive || !th->seized || th->stopped || th->lost)
                continue;
            poll_thread(r, th);
            if (th->alive && th->seized && !th->stopped)
                left++;
        }
        if (!left)
            break;
        now = pmp_now_ns(CLOCK_MONOTONIC);
        if (now >= deadline)
            break;
        if (left < left_before)
            nap_ns = 100000;
        else if (left_before >= 0)
            nap_ns = PMP_MIN(nap_ns * 2, 1000000);
        left_before = left;
        nap(r, PMP_MIN(nap_ns, deadline - now));
    }
    /* 3. Registers and the live stack of every stopped thread (Go: the
       cache keeps what the previous cycle read; drop it once per stop),
       until the stop bound is near: the rest of this tick's samples are
       given up. */
    if (r->go_stacks)
        pmp_target_drop_cache(r->s->target);
    deadline = t0 + STOP_READ_NS;
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        struct user_regs_struct u;
        if (!th->alive || !th->wanted || th->sampled || th->lost)
            continue;
        if (!th->seized || !th->stopped) {
            th->lost = 1;
            continue;
        }
        if (th->group_stop) {
            th->sampled = 2;
            continue;
        }
        if (pmp_now_ns(CLOCK_MONOTONIC) >= deadline) {
            r->stats.bound_lost++;
            th->lost = 1;
            continue;
        }
        if (ptrace(PTRACE_GETREGS, th->tid, NULL, &u) != 0) {
            th->lost = 1;
            continue;
        }
        pmp_regs_from_user(&th->regs, &u);
        if (u.rip == 0 && u.rsp == 0) {
            /* The kernel's mark of a worker with no user context (vhost;
               io_uring's are known by their flag): never sampled. */
            th->worker = 1;
            th->wanted = 0;
            continue;
        }
        th->fs_base = th->regs.fs_base;
        copy_stack(r, th);
        if (r->is_go) {
            /* The goroutine it runs, while it runs it (a handful of
               small reads; its labels are read after the resume). */
            uint64_t g;
            th->go_ok = pmp_go_current(r->s->target, r->go_layout, &th->regs,
                                       th->tid, &g,
                                       &th->goid, &th->go_labels) == 0;
        }
        if (r->go_stacks)
            copy_go_stack(r, th);
        th->sampled = 1;
        nstopped++;
    }
    /* 4. Detach everything we hold, including threads whose interrupt
       stop arrived late, during this cycle.  A thread still not stopped
       stays seized until its stop comes (sweep() detaches it then). */
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        if (!th->seized)
            continue;
        if (th->alive && !th->stopped)
            poll_thread(r, th);
        release_thread(r, th);
    }
    t1 = pmp_now_ns(CLOCK_MONOTONIC);
    if (nstopped) {
        pause_add(r, t1 - t0);
        r->stats.stops += nstopped;
        r->stats.stopped_ns += nstopped * (t1 - t0);
    }
    r->stats.samples++;
    /* 5. The target runs again: unwind and log (a late stop is detached
       between two threads' unwinds, at the session's priority). */
    stop_priority(r, 0);
    for (i = 0; i < r->nthreads && rc == 0; i++) {
        struct rthread *th = r->threads[i];
        if (th->perf && th->alive && th->wanted && th->cur_ok) {
            /* First the wait for a CPU, so that whatever is logged next
               does not count it again. */
            rc = runnable_event(r, th, t0);
            if (rc)
                break;
        }
        /* A stop that came late is detached now, not after the
           unwinding of every thread. */
        sweep_soon(r);
        if (th->sampled == 1) {
            size_t before = r->nevents;
            rc = unwind_sampled(r, th, t0);
            if (r->nevents > before)
                r->stats.thread_samples++;
        } else if (th->sampled == 3) {
            r->stats.reused++;
            r->stats.thread_samples++;
            if (th->perf) {
                rc = offcpu_event(r, th, th->last_stack, th->last_sys, t0);
            } else {
                rc = add_event(r, th, th->last_stack, PMP_SAMPLE_SLEEPING,
                               th->last_sys, t0, 0);
            }
        } else if (th->sampled == 2) {
            if (th->perf)
                rc = offcpu_event_as(r, th, r->stopped_stack,
                                     PMP_SAMPLE_STOPPED, -1, t0);
            else
                rc = add_event(r, th, r->stopped_stack, PMP_SAMPLE_STOPPED,
                               -1, t0, 0);
            r->stats.thread_samples++;
        } else if (th->lost && th->alive) {
            /* Perf method: its CPU time is in its CPU samples; only the
               rest of its wall time is unknown. */
            if (th->perf)
                rc = offcpu_event_as(r, th, r->lost_stack, PMP_SAMPLE_LOST,
                                     -1, t0);
            else   /* its CPU time waits for a running sample */
                rc = add_event(r, th, r->lost_stack, PMP_SAMPLE_LOST, -1, t0,
                               0);
            th->lost_count++;
            r->stats.lost++;
        }
    }
    /* 6. A thread found asleep runs a little because of our stop (it
       wakes into the stop and again to restart its call): its schedstat
       is taken as the reference for "has not run since" at the next
       tick, once it is back in the same call (see select_thread). */
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        if (th->sampled == 1 && th->last_stack >= 0 && th->alive) {
            th->ss_pending = 1;
            th->ss_pcount = th->cur_pcount;
            /* Switches in from the tick's start (after its drain), as
               the run count from the read before the stop. */
            if (th->perf && th->perf->sw)
                switch_count_from(th, t0);
        }
    }
    /* Until the next tick: a late stop is detached when it comes. */
    if (r->npending)
        stop_priority(r, 1);
    return rc;
}

/*
 * Perf method, at the end: each live thread's wall time not charged yet
 * (it ran since its last off-CPU sample and never blocked again): its
 * waits for a CPU to its last CPU sample, the rest to the stack it
 * sleeps in, else to its last CPU sample too.
 */
static int
flush_perf(struct pmp_recording *r, uint64_t now)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < r->nthreads && rc == 0; i++) {
        struct rthread *th = r->threads[i];
        int64_t wall, dcpu, rest;
        uint64_t c, d, pc;

        if (!th->perf || !th->alive || !th->wanted || !th->samples ||
            read_sched(th, &c, &d, &pc))
            continue;
        th->cur_cpu = c;
        th->cur_delay = d;
        th->cur_ok = 1;
        rc = runnable_event(r, th, now);
        if (rc)
            break;
        wall = now > th->t_last ? (int64_t)(now - th->t_last) : 0;
        dcpu = c > th->cpu_last ? (int64_t)(c - th->cpu_last) : 0;
        rest = wall - dcpu - th->wall_credit;
        if (rest > 0 && th->last_stack >= 0 && th->ss_ok &&
            c == th->ss_cpu && pc == th->ss_pcount) {
            rc = offcpu_event(r, th, th->last_stack, th->last_sys, now);
            r->stats.thread_samples++;
        } else if (rest > 0 && th->last_cpu_ev &&
                   th->last_cpu_ev <= r->nevents) {
            r->events[th->last_cpu_ev - 1].wall_ns += rest;
            th->wall_ns += rest;
        }
        /* What no sample saw, up to its recorded time. */
        if (rc == 0)
            rc = unsampled_until(r, th, c, now, now);
    }
    return rc;
}

/* ---- the loop ---- */

static void
fill_stats(struct pmp_recording *r, uint64_t now)
{
    size_t i;
    int seen = 0;

    r->stats.elapsed_ns = now - r->t0_mono;
    r->stats.rate_hz = r->stats.elapsed_ns
                           ? (double)r->stats.samples * 1e9 /
                                 (double)r->stats.elapsed_ns
                           : 0.0;
    r->stats.pause_median_ns = pause_pct(r, 0.5);
    r->stats.pause_p99_ns = pause_pct(r, 0.99);
    r->stats.nthreads = (int)r->nalive;
    for (i = 0; i < r->nthreads; i++)
        if (r->threads[i]->samples)
            seen++;
    r->stats.threads_seen = seen;
}

static void
refresh_names(struct pmp_recording *r)
{
    size_t i;

    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        if (th->alive) {
            read_comm(r->pid, th);
            thread_wanted(r, th);
        }
    }
}

int
pmp_session_record(struct pmp_session *s, const struct pmp_record_opts *o,
                   struct pmp_recording **out, struct pmp_error *err)
{
    struct pmp_recording *r;
    sigset_t old;
    uint64_t next, now, last_progress, progress_ns, last_names;
    int rc = 0, stop = 0;
    double hz;

    *out = NULL;
    if (s->is_core || pmp_target_proc_mode(s->target) != PMP_ATTACH_SEIZE)
        return pmp_error_set(err, PMP_E_USAGE,
                             "record needs a live process");
    hz = o && o->hz > 0 ? o->hz : DEFAULT_HZ;
    if (hz > 10000.0)
        return pmp_error_set(err, PMP_E_USAGE,
                             "sampling rate %.0f Hz is above 10000 Hz", hz);
    r = calloc(1, sizeof(*r));
    if (!r)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    r->taskfd = r->pidfd = r->statfd = r->rdfd = -1;
    r->seize_gap_us = pmp_test_seize_gap_us();
    r->s = s;
    r->pid = s->target->pid;
    r->period_ns = (uint64_t)(1e9 / hz);
    r->max_frames = o && o->max_frames > 0 ? o->max_frames
                                           : PMP_DEFAULT_FRAMES;
    if (r->max_frames > PMP_MAX_FRAMES_CAP)
        r->max_frames = PMP_MAX_FRAMES_CAP;
    r->stack_bytes = o && o->stack_bytes ? o->stack_bytes
                                         : DEFAULT_STACK_BYTES;
    r->stack_bytes = PMP_MAX(PMP_MIN(r->stack_bytes, (size_t)8 << 20),
                             (size_t)MIN_STACK_BYTES);
    r->floor = o && o->floor;
    /* goroutine ids and labels need the runtime's layout (is_go) */
    r->go_layout = r->floor ? NULL : pmp_go_layout_sym(s->sym);
    r->is_go = r->go_layout != NULL;
    {
        /* Go stacks need the function table only (any release it
           reads). */
        void *gmod = r->floor ? NULL : pmp_symbolizer_go_module(s->sym);
        struct pmp_gomod *gm = gmod ? pmp_symbolizer_gomod(s->sym, gmod)
                                    : NULL;
        r->go_stacks = gm != NULL;
        if (gm) {
            struct pmp_regs z;
            struct pmp_go_ctx c;
            pmp_gomod_goversion(gm, &r->go_minor);
            memset(&z, 0, sizeof(z));
            r->go_ctx_unsup = pmp_go_curg_context(s->target, r->go_minor, &z,
                                                  0, &c) == PMP_E_UNSUPPORTED;
        }
    }
    pmp_u64map_init(&r->bytid);
    pmp_u64map_init(&r->gset_by);
    r->pcbuf = malloc(((size_t)r->max_frames + 2) * sizeof(*r->pcbuf));
    r->flbuf = malloc((size_t)r->max_frames + 2);
    if (!r->pcbuf || !r->flbuf) {
        pmp_recording_free(r);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    if (o && o->only_tids && o->nonly_tids) {
        r->only_tids = malloc(o->nonly_tids * sizeof(int));
        if (!r->only_tids) {
            pmp_recording_free(r);
            return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        }
        memcpy(r->only_tids, o->only_tids, o->nonly_tids * sizeof(int));
        r->nonly_tids = o->nonly_tids;
    }
    if (o && o->thread_regex && o->thread_regex[0]) {
        int e = regcomp(&r->regex, o->thread_regex,
                        REG_EXTENDED | REG_NOSUB);
        if (e) {
            char msg[128];
            regerror(e, &r->regex, msg, sizeof(msg));
            pmp_recording_free(r);
            return pmp_error_set(err, PMP_E_USAGE,
                                 "bad thread regex '%s': %s",
                                 o->thread_regex, msg);
        }
        r->have_regex = 1;
    }
    r->lost_stack = synth_stack(r, PMP_SYNTH_LOST);
    r->stopped_stack = synth_stack(r, PMP_SYNTH_STOPPED);
    r->unsampled_stack = synth_stack(r, PMP_SYNTH_CPU_UNSAMPLED);
    if (r->lost_stack < 0 || r->stopped_stack < 0 ||
        r->unsampled_stack < 0) {
        pmp_recording_free(r);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    progress_ns = o && o->progress_ns ? o->progress_ns : 200000000ull;
    /* CPU samples from perf events unless refused (then ptrace only). */
    r->use_perf = !r->floor && !(o && o->no_perf);
    /* Test hook: PMPROF_TEST_NO_SWITCHES=1, the /proc looks of kernels
       without context switch records. */
    {
        const char *v = getenv("PMPROF_TEST_NO_SWITCHES");
        r->use_switch = r->use_perf && !(v && strcmp(v, "1") == 0);
        /* PMPROF_TEST_USER_ONLY=1: CPU samples of user mode only, as an
           unprivileged user under perf_event_paranoid 2 gets. */
        v = getenv("PMPROF_TEST_USER_ONLY");
        r->perf_kernel = !(v && strcmp(v, "1") == 0);
        /* PMPROF_TEST_SWITCH_PAGES=1: a one-page ring, so that a thread
           switching often makes the kernel drop records. */
        v = getenv("PMPROF_TEST_SWITCH_PAGES");
        if (v && (strcmp(v, "1") == 0 || strcmp(v, "2") == 0))
            r->switch_pages = (unsigned)(*v - '0');
    }
    r->perf_stack = o && o->stack_bytes
                        ? (uint32_t)PMP_MIN(o->stack_bytes, (size_t)65000)
                        : PERF_STACK_BYTES;
    r->perf_stack &= ~7u;
    r->stats.rt = pmp_target_proc_rt(s->target);
    if (r->stats.rt) {
        struct sched_param sp;
        if (sched_getparam(0, &sp) == 0 && sp.sched_priority > 0 &&
            sp.sched_priority < sched_get_priority_max(SCHED_FIFO))
            r->prio_base = sp.sched_priority;
    }

    r->rdfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    r->rd = sampler_delay(r);
    r->rd_when = pmp_now_ns(CLOCK_MONOTONIC);

    /* SIGCHLD tells us about ptrace stops: take it with sigtimedwait. */
    sigemptyset(&r->chld);
    sigaddset(&r->chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &r->chld, &old);

    r->t0_real = pmp_now_ns(CLOCK_REALTIME);
    r->t0_mono = pmp_now_ns(CLOCK_MONOTONIC);
    rc = open_process(r, err);
    if (rc)
        goto done;
    r->stats.perf = r->use_perf;
    r->stats.perf_kernel = r->use_perf && r->perf_kernel;
    r->stats.switches = r->use_perf && r->use_switch;
    /* The unwind tables of every module now, not in the first ticks'
       unwinds (nothing is held now; a late stop is held while the
       sampler unwinds). */
    if (!r->floor)
        pmp_unwinder_warm(s->unw, sweep_cb, r);
    {
        size_t i;
        for (i = 0; i < r->nthreads; i++)
            if (!r->threads[i]->wanted)
                continue;
            else
                break;
        if (i == r->nthreads) {
            rc = pmp_error_set(err, PMP_E_NOTFOUND,
                               "no thread of process %d matches the "
                               "thread filter",
                               r->pid);
            goto done;
        }
    }
    r->t0_mono = now = pmp_now_ns(CLOCK_MONOTONIC);
    {
        size_t i;
        for (i = 0; i < r->nthreads; i++) {
            struct rthread *th = r->threads[i];
            uint64_t c, d, pc;
            th->t_last = th->t_ev = now;
            if (read_sched(th, &c, &d, &pc) == 0) {
                th->cpu_last = th->cpu0 = c;
                th->delay_last = d;
            }
        }
    }
    last_progress = last_names = now;
    next = now + r->period_ns;   /* each sample stands for the period before it */
    while (!stop) {
        now = pmp_now_ns(CLOCK_MONOTONIC);
        if (o && o->duration_ns && now - r->t0_mono >= o->duration_ns)
            break;
        if (r->poke || now - last_progress >= progress_ns) {
            r->poke = 0;
            last_progress = now;
            /* Names (and the thread filter on them) once a second: an
               open, read and close per thread (at 64 threads and every
               200 ms, a tenth of the sampler's system calls). */
            if (now - last_names >= NAMES_NS) {
                last_names = now;
                refresh_names(r);
            }
            fill_stats(r, now);
            if (o && o->progress && o->progress(o->progress_ctx, &r->stats))
                break;
        }
        if (now < next) {
            uint64_t until = next - now;
            if (o && o->duration_ns &&
                r->t0_mono + o->duration_ns - now < until)
                until = r->t0_mono + o->duration_ns - now;
            if (last_progress + progress_ns - now < until)
                until = last_progress + progress_ns - now;
            wait_events(r, until);
            continue;
        }
        if (now - next >= r->period_ns) {
            uint64_t skip = (now - next) / r->period_ns;
            r->stats.late += skip;
            next += skip * r->period_ns;
        }
        rc = cycle(r);
        next += r->period_ns;
        if (rc) {
            /* Out of memory or the event cap: keep what was recorded. */
            r->stats.full = 1;
            stop = 1;
        }
        if (r->nalive == 0) {
            r->stats.exited = 1;
            stop = 1;
        }
        if (r->stats.exec)
            stop = 1;
    }
    rc = 0;
    refresh_names(r);   /* the names as they are at the end */
    if (r->use_perf) {
        now = pmp_now_ns(CLOCK_MONOTONIC);
        if (drain_perf(r, now) || flush_perf(r, now))
            r->stats.full = 1;
    }
done:
    {
        size_t i;
        for (i = 0; i < r->nthreads; i++) {
            struct rthread *th = r->threads[i];
            if (th->perf) {
                pmp_perf_close(th->perf);
                free(th->perf);
                th->perf = NULL;
            }
        }
    }
    detach_all(r);
    stop_priority(r, 0);
    {
        /* Leave no SIGCHLD of ours pending for the host (gdb). */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&r->chld, NULL, &zero) == SIGCHLD)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    now = pmp_now_ns(CLOCK_MONOTONIC);
    fill_stats(r, now);
    r->stats.nthreads = 0;
    if (rc == 0 && expand_tailcalls(r)) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    if (rc) {
        pmp_recording_free(r);
        return rc;
    }
    if (o && o->progress)
        o->progress(o->progress_ctx, &r->stats);
    *out = r;
    return 0;
}

void
pmp_recording_free(struct pmp_recording *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->nthreads; i++) {
        struct rthread *th = r->threads[i];
        if (th->schedfd >= 0)
            close(th->schedfd);
        if (th->statfd >= 0)
            close(th->statfd);
        if (th->perf) {
            pmp_perf_close(th->perf);
            free(th->perf);
        }
        free(th->stk);
        free(th->gstk);
        free(th);
    }
    free(r->threads);
    if (r->taskfd >= 0)
        close(r->taskfd);
    if (r->pidfd >= 0)
        close(r->pidfd);
    if (r->statfd >= 0)
        close(r->statfd);
    if (r->rdfd >= 0)
        close(r->rdfd);
    pmp_u64map_release(&r->bytid);
    free(r->stacks);
    free(r->pcs);
    free(r->fl);
    free(r->tab);
    free(r->events);
    free(r->pcbuf);
    free(r->flbuf);
    free(r->only_tids);
    free(r->pub);
    if (r->have_regex)
        regfree(&r->regex);
    pmp_strpool_release(&r->names);
    free(r->gsets);
    free(r->glabels);
    pmp_u64map_release(&r->gset_by);
    free(r);
}

void
pmp_recording_stats(const struct pmp_recording *r,
                    struct pmp_record_stats *out)
{
    *out = r->stats;
}

size_t
pmp_recording_threads(const struct pmp_recording *r,
                      const struct pmp_rec_thread **out)
{
    struct pmp_recording *w = (struct pmp_recording *)r;
    size_t i, n = 0;

    free(w->pub);
    w->pub = pmp_calloc(r->nthreads ? r->nthreads : 1, sizeof(*w->pub));
    if (!w->pub) {
        *out = NULL;
        return 0;
    }
    for (i = 0; i < r->nthreads; i++) {
        const struct rthread *th = r->threads[i];
        if (!th->samples)
            continue;
        w->pub[n].tid = th->tid;
        w->pub[n].name = th->name;
        w->pub[n].samples = th->samples;
        w->pub[n].lost = th->lost_count;
        w->pub[n].cpu_ns = th->cpu_ns;
        w->pub[n].wall_ns = th->wall_ns;
        w->pub[n].seen_ns = th->seen_at > r->t0_mono
                                ? (int64_t)(th->seen_at - r->t0_mono) : 0;
        w->pub[n].gone_ns = th->gone_at
                                ? (int64_t)(PMP_MAX(th->gone_at, r->t0_mono) -
                                            r->t0_mono)
                                : -1;
        n++;
    }
    *out = w->pub;
    return n;
}

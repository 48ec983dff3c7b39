/* requests: request-driven threads with known CPU and sleep, for the
 * sampling profiler's attribution (pmprof record; tests/test_record.py).
 *
 *   usage: requests [MS]          (default 4000)
 *
 * Prints READY, waits until a tracer attaches (TracerPid in
 * /proc/self/status) or SIGUSR1 comes (pmprof record is the tracer only
 * while it holds threads stopped: its test sends SIGUSR1 once it
 * records), then for MS milliseconds each worker repeats
 * "a burst of CPU in its own function, then a sleep in its own call":
 *   poller   burn_poll   ~2 ms CPU, then poll(NULL, 0, 8 ms)
 *   reader   burn_read   ~5 ms CPU, then read(2) of a timerfd (5 ms)
 *   futexer  burn_futex  ~8 ms CPU, then FUTEX_WAIT with a 2 ms timeout
 * (bursts of random length, 0.5x..1.5x, so a sampler cannot phase-lock;
 * measured with the thread's own CPU clock).  Then prints one line per
 * worker, its own truth:
 *   TRUTH name tid burn_cpu_ns sleep_ns thread_cpu_ns run_delay_ns life_ns
 * (sleep_ns: CLOCK_MONOTONIC around the blocking calls; thread_cpu_ns,
 * run_delay_ns: the thread's schedstat over its life) and exits 0.
 */
#include "common.h"

#include <linux/futex.h>
#include <poll.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static volatile unsigned long sink;
static volatile int stop;

struct worker {
    const char *name;
    long burst_us;
    int tid;
    long long burn_ns, sleep_ns, cpu_ns, delay_ns, life_ns;
};

static long long
now_ns(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void
schedstat(long long *cpu, long long *delay)
{
    char path[64], buf[128];
    long long a = 0, b = 0;

    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat",
             (int)tgt_gettid());
    if (tgt_read_small(path, buf, sizeof(buf)) > 0)
        sscanf(buf, "%lld %lld", &a, &b);
    *cpu = a;
    *delay = b;
}

/* ~0.5 ms of work per call: the loops the sampler must find (the
   thread CPU clock read between calls is a system call: rare enough
   that a ptrace stop, delivered at a return to user space, seldom
   lands there). */
#define STEPS 1000000ul
#define BURNER(name)                                                    \
    NOINLINE static void name(void)                                     \
    {                                                                   \
        unsigned long x = sink, i;                                      \
        for (i = 0; i < STEPS; i++) {                                   \
            x = x * 6364136223846793005ul + 1442695040888963407ul;      \
            __asm__ __volatile__("" : "+r"(x));                         \
        }                                                               \
        sink = x;                                                       \
    }
BURNER(burn_poll)
BURNER(burn_read)
BURNER(burn_futex)

static long long
burst(void (*fn)(void), long us, unsigned *seed)
{
    long long want = (long long)us * 1000 *
                     (50 + (long long)(rand_r(seed) % 101)) / 100;
    long long t0 = now_ns(CLOCK_THREAD_CPUTIME_ID), t;

    do {
        fn();
        t = now_ns(CLOCK_THREAD_CPUTIME_ID);
    } while (t - t0 < want);
    return t - t0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned seed = (unsigned)tgt_gettid();
    long long c0, d0, c1, d1, l0 = now_ns(CLOCK_MONOTONIC), s;
    int tfd = -1;
    int word = 0;

    pthread_setname_np(pthread_self(), w->name);
    w->tid = (int)tgt_gettid();
    schedstat(&c0, &d0);
    if (w->name[0] == 'r') {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        if (tfd < 0)
            tgt_die("timerfd_create: %s", strerror(errno));
    }
    while (!stop) {
        if (w->name[0] == 'p') {
            w->burn_ns += burst(burn_poll, w->burst_us, &seed);
            s = now_ns(CLOCK_MONOTONIC);
            poll(NULL, 0, 8);
        } else if (w->name[0] == 'r') {
            struct itimerspec its = {{0, 0}, {0, 5000000}};
            uint64_t n;
            w->burn_ns += burst(burn_read, w->burst_us, &seed);
            s = now_ns(CLOCK_MONOTONIC);
            timerfd_settime(tfd, 0, &its, NULL);
            while (read(tfd, &n, sizeof(n)) < 0 && errno == EINTR)
                ;
        } else {
            struct timespec ts = {0, 2000000};
            w->burn_ns += burst(burn_futex, w->burst_us, &seed);
            s = now_ns(CLOCK_MONOTONIC);
            syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
        }
        w->sleep_ns += now_ns(CLOCK_MONOTONIC) - s;
    }
    schedstat(&c1, &d1);
    w->cpu_ns = c1 - c0;
    w->delay_ns = d1 - d0;
    w->life_ns = now_ns(CLOCK_MONOTONIC) - l0;
    if (tfd >= 0)
        close(tfd);
    return NULL;
}

static int
traced(void)
{
    char buf[4096], *p;

    if (tgt_read_small("/proc/self/status", buf, sizeof(buf)) <= 0)
        return 0;
    p = strstr(buf, "TracerPid:");
    return p && atoi(p + 10) != 0;
}

static volatile sig_atomic_t go;

static void
on_go(int sig)
{
    (void)sig;
    go = 1;
}

int
main(int argc, char **argv)
{
    struct worker ws[3];
    pthread_t th[3];
    long ms = argc > 1 ? atol(argv[1]) : 4000;
    int i;

    memset(ws, 0, sizeof(ws));
    ws[0].name = "poller";
    ws[0].burst_us = 2000;
    ws[1].name = "reader";
    ws[1].burst_us = 5000;
    ws[2].name = "futexer";
    ws[2].burst_us = 8000;
    signal(SIGUSR1, on_go);
    printf("READY\n");
    fflush(stdout);
    for (i = 0; i < 30000 && !go && !traced(); i++)
        tgt_sleep_ms(1);
    for (i = 0; i < 3; i++)
        if (pthread_create(&th[i], NULL, worker_main, &ws[i]))
            tgt_die("pthread_create");
    tgt_sleep_ms(ms);
    stop = 1;
    for (i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < 3; i++)
        printf("TRUTH %s %d %lld %lld %lld %lld %lld\n", ws[i].name,
               ws[i].tid, ws[i].burn_ns, ws[i].sleep_ns, ws[i].cpu_ns,
               ws[i].delay_ns, ws[i].life_ns);
    return 0;
}

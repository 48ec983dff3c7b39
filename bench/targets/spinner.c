/* spinner: a throughput-reporting target for bench/record.py.
 *
 *   usage: spinner [--timeout SECONDS] NTHREADS [spin|block|idle [DEPTH]]
 *          idle: worker-0 and worker-1 spin, the others block
 *          defaults: DEPTH 20; exits by itself after --timeout (900 s)
 *
 *   worker-0..N-1  worker_main -> rec_a -> rec_b -> rec_c -> rec_a -> ...
 *                  (DEPTH+1 rec_* frames) -> bottom -> spin_loop -> work_unit
 *                                                   (spin: fixed work units,
 *                                                    counted per thread)
 *                                         -> bottom -> block_wait ->
 *                                            pthread_cond_wait      (block)
 *   (main)         main -> tick_loop -> clock_nanosleep
 *
 * stdout (line-buffered): "READY <nthreads> <mode> <counters> <stride>" once
 * every worker is in place (spin: counting; block: asleep in
 * pthread_cond_wait), where <counters> is the address (hex) of the first
 * per-thread counter (uint64_t, one every <stride> bytes, nthreads of them),
 * so a harness can read the exact total from /proc/PID/mem at any moment,
 * even while the process is stopped or starved; then every 100 ms
 * "TICK <CLOCK_MONOTONIC ns> <total work units>": the time the counters
 * were summed (the sum is retaken until it took less than 0.2 ms, so the
 * pair is exact even when this thread was preempted or stopped meanwhile)
 * and their sum over all workers.  Built with frame pointers
 * (bench/targets/Makefile) so `perf record -g` gets whole stacks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")
#define MAX_THREADS 1024
#define TICK_NS 100000000L
#define UNIT_STEPS 1024
#define SUM_MAX_NS 200000L  /* a TICK's sum is taken within 0.2 ms */

struct counter {
    _Atomic uint64_t n;
    char pad[64 - sizeof(uint64_t)];
};

static struct counter *counters;
static int nthreads, depth = 20, spin_mode;
static atomic_int arrived;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile uint64_t sink;

static void
die(const char *msg)
{
    fprintf(stderr, "spinner: %s\n", msg);
    exit(2);
}

/* One unit of work: UNIT_STEPS xorshift steps. */
NOINLINE static uint64_t
work_unit(uint64_t x)
{
    int i;

    for (i = 0; i < UNIT_STEPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

NOINLINE static void
spin_loop(int index)
{
    uint64_t x = 0x9e3779b97f4a7c15ull + (uint64_t)index, n = 0;

    atomic_fetch_add(&arrived, 1);
    for (;;) {
        x = work_unit(x);
        atomic_store_explicit(&counters[index].n, ++n, memory_order_relaxed);
        if (x == 0)                /* never: keeps x live */
            sink = x;
    }
}

NOINLINE static void
block_wait(void)
{
    pthread_mutex_lock(&mu);
    atomic_fetch_add(&arrived, 1);  /* under mu: main sees it only once we
                                       sleep in pthread_cond_wait */
    for (;;)
        pthread_cond_wait(&cv, &mu);
}

NOINLINE static void
bottom(int index)
{
    if (spin_mode == 1 || (spin_mode == 2 && index < 2))
        spin_loop(index);
    else
        block_wait();
    NO_TAIL();
}

NOINLINE static void rec_b(int index, int d);
NOINLINE static void rec_c(int index, int d);

NOINLINE static void
rec_a(int index, int d)
{
    volatile char pad[16];

    pad[0] = (char)d;
    if (d > 0)
        rec_b(index, d - 1);
    else
        bottom(index);
    NO_TAIL();
    sink += (uint64_t)pad[0];
}

NOINLINE static void
rec_b(int index, int d)
{
    volatile char pad[64];

    pad[0] = (char)d;
    if (d > 0)
        rec_c(index, d - 1);
    else
        bottom(index);
    NO_TAIL();
    sink += (uint64_t)pad[0];
}

NOINLINE static void
rec_c(int index, int d)
{
    volatile char pad[160];

    pad[0] = (char)d;
    if (d > 0)
        rec_a(index, d - 1);
    else
        bottom(index);
    NO_TAIL();
    sink += (uint64_t)pad[0];
}

NOINLINE static void *
worker_main(void *p)
{
    int index = (int)(intptr_t)p;
    char name[16];

    snprintf(name, sizeof(name), "worker-%d", index);
    pthread_setname_np(pthread_self(), name);
    rec_a(index, depth);
    NO_TAIL();
    return NULL;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

NOINLINE static void
tick_loop(void)
{
    struct timespec next;

    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        uint64_t total, t0, t1;
        int i;

        next.tv_nsec += TICK_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL))
            ;
        /* The sum and its time must belong together: this thread can be
           preempted or stopped (ptrace) for a long while anywhere, so
           take both again until nothing came between them. */
        for (;;) {
            t0 = now_ns();
            total = 0;
            for (i = 0; i < nthreads; i++)
                total += atomic_load_explicit(&counters[i].n,
                                              memory_order_relaxed);
            t1 = now_ns();
            if (t1 - t0 < SUM_MAX_NS)
                break;
        }
        printf("TICK %llu %llu\n", (unsigned long long)(t0 + (t1 - t0) / 2),
               (unsigned long long)total);
    }
}

int
main(int argc, char **argv)
{
    unsigned timeout = 900;
    int i;

    if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
        timeout = (unsigned)atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 2 || argc > 4)
        die("usage: spinner [--timeout SECONDS] NTHREADS [spin|block|idle "
            "[DEPTH]]");
    nthreads = atoi(argv[1]);
    if (argc > 2 && strcmp(argv[2], "spin") == 0)
        spin_mode = 1;
    else if (argc > 2 && strcmp(argv[2], "idle") == 0)
        spin_mode = 2;
    else if (argc > 2 && strcmp(argv[2], "block") != 0)
        die("mode must be spin, block or idle");
    if (argc > 3)
        depth = atoi(argv[3]);
    if (nthreads < 1 || nthreads > MAX_THREADS || depth < 0 || depth > 1000)
        die("NTHREADS must be 1..1024 and DEPTH 0..1000");
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(timeout);
    counters = aligned_alloc(64, sizeof(*counters) * (size_t)nthreads);
    if (!counters)
        die("out of memory");
    memset(counters, 0, sizeof(*counters) * (size_t)nthreads);
    for (i = 0; i < nthreads; i++) {
        pthread_t t;
        pthread_attr_t a;

        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024 + (size_t)depth * 512);
        if (pthread_create(&t, &a, worker_main, (void *)(intptr_t)i))
            die("pthread_create failed");
        pthread_attr_destroy(&a);
    }
    for (;;) {
        int n;

        pthread_mutex_lock(&mu);
        n = atomic_load(&arrived);
        pthread_mutex_unlock(&mu);
        if (n == nthreads)
            break;
        usleep(1000);
    }
    printf("READY %d %s %p %zu\n", nthreads,
           spin_mode == 2 ? "idle" : spin_mode ? "spin" : "block",
           (void *)counters, sizeof(*counters));
    tick_loop();
    NO_TAIL();
    return 0;
}

/* workload: known CPU shares for the sampling profiler (pmprof record).
 *
 *   usage: workload [--timeout N] [shares | churn MS | lifetimes MS | pingpong |
 *                    sigloop]
 *
 * shares (default; READY once every thread is in place, runs until killed):
 *   cruncher  cruncher_main -> crunch -> burn_seventy | burn_thirty: busy,
 *             70 % of its CPU time in burn_seventy and 30 % in burn_thirty
 *             (equal loops, step counts 7:3; chunks of random length, so
 *             a sampler cannot phase-lock onto them)
 *   reader    reader_main -> read(2) on a pipe nobody writes: blocked
 *   (main)    main -> main_wait -> pthread_join(cruncher)
 *
 * lifetimes MS (READY at once; exits 0 by itself after MS milliseconds):
 *   spawner   every 500 ms starts six detached "life" threads that live
 *             100, 170, ... 450 ms, asleep in nanosleep (even ones) or
 *             spinning (odd ones), and end, so that most ends come with
 *             no birth near them; the first of each six first
 *             starts a "kid" of its own that sleeps 100 ms (a thread born
 *             of a thread just born).  Each prints
 *             "LIFE <tid> <birth ns> <end ns>" (CLOCK_MONOTONIC; birth: its
 *             creator's pthread_create call) as it ends.
 *
 * pingpong (READY once in place; runs until killed):
 *   ping, pong  pass a byte back and forth over two pipes as fast as they
 *               can: tens of thousands of context switches a second each
 *   reader      as above: blocked in read(2) for good
 *
 * sigloop (READY once in place; runs until killed):
 *   raiser    raiser_main -> raise_loop -> pthread_kill(self, SIGUSR1), over
 *             and over; the handler counts and returns (rt_sigreturn
 *             through glibc's __restore_rt each time)
 *
 * churn MS (READY at once; exits 0 by itself after MS milliseconds):
 *   churner   creates and joins short-lived "child" threads back to back
 *             (each sums 1..100000 and checks the result)
 *   loader    dlopen()s bin/libplugin.so halfway and calls into it
 *   cruncher  as above
 *   main prints "DONE <children> ok" and exits 0 if every child computed
 *   the right sum, "DONE <children> BAD" and exit 1 otherwise.
 *
 * The truth: the cruncher adds each call's thread CPU time to its
 * function's total; SIGUSR2 prints "TRUTH <ns in burn_seventy> <ns in
 * burn_thirty>" (the 7:3 step counts give ~72/28 measured, not exactly
 * 70/30: tests compare against these totals).
 */
#include "common.h"

#include <dlfcn.h>

static volatile unsigned long sink;
static volatile unsigned long long ns_seventy, ns_thirty;

static unsigned long long
clock_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull +
           (unsigned long long)ts.tv_nsec;
}

static unsigned long long
thread_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* SIGUSR2: "TRUTH <seventy ns> <thirty ns>" (async-signal-safe). */
static void
print_truth(int sig)
{
    char buf[80], *p = buf + sizeof(buf);
    unsigned long long v[2];
    int i;

    v[0] = ns_thirty;
    v[1] = ns_seventy;
    *--p = '\n';
    for (i = 0; i < 2; i++) {
        do
            *--p = (char)('0' + v[i] % 10);
        while ((v[i] /= 10) != 0);
        *--p = ' ';
    }
    p -= 5;
    memcpy(p, "TRUTH", 5);
    if (write(1, p, (size_t)(buf + sizeof(buf) - p)) < 0)
        return;
}

/* Both burners run the same instruction mix (one multiply-add per step),
 * so equal step counts take equal CPU time: 70/30 by construction, with
 * no clock read inside the loops. */
NOINLINE static void
burn_seventy(unsigned long steps)
{
    unsigned long x = sink, i;

    for (i = 0; i < steps; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        __asm__ __volatile__("" : "+r"(x));   /* no closed form */
    }
    sink = x;
}

NOINLINE static void
burn_thirty(unsigned long steps)
{
    unsigned long x = sink, i;

    for (i = 0; i < steps; i++) {
        x = x * 2862933555777941757ul + 3037000493ul;
        __asm__ __volatile__("" : "+r"(x));
    }
    sink = x;
}

NOINLINE static void
crunch(void)
{
    unsigned seed = (unsigned)tgt_gettid();

    tgt_arrive(TGT_SPIN);
    for (;;) {
        /* chunks of random length (about 0.5..2 ms of CPU), so a sampler
           cannot phase-lock onto them */
        unsigned long units = 20 + (unsigned long)(rand_r(&seed) % 60);
        unsigned long long t0 = thread_cpu_ns(), t1, t2;
        burn_seventy(units * 7 * 10000);
        t1 = thread_cpu_ns();
        burn_thirty(units * 3 * 10000);
        t2 = thread_cpu_ns();
        ns_seventy += t1 - t0;
        ns_thirty += t2 - t1;
    }
}

static void *
cruncher_main(void *arg)
{
    pthread_setname_np(pthread_self(), "cruncher");
    crunch();
    return NULL;
}

static int pipefd[2];

static void *
reader_main(void *arg)
{
    char c;

    pthread_setname_np(pthread_self(), "reader");
    tgt_arrive(TGT_READ);
    for (;;)
        if (read(pipefd[0], &c, 1) < 0 && errno != EINTR)
            tgt_die("read: %s", strerror(errno));
}

/* ---- churn ---- */

static volatile int churn_stop;
static int churn_bad;
static long churn_children;

static void *
child_main(void *arg)
{
    unsigned long s = 0, i;

    for (i = 1; i <= 100000; i++)
        s += i;
    *(unsigned long *)arg = s;
    return NULL;
}

static void *
churner_main(void *arg)
{
    pthread_setname_np(pthread_self(), "churner");
    while (!churn_stop) {
        unsigned long out = 0;
        pthread_t t = tgt_spawn(child_main, &out, 0);
        pthread_join(t, NULL);
        if (out != 5000050000ul)
            churn_bad++;
        churn_children++;
    }
    return NULL;
}

static long churn_ms;
static char plugin_path[4096];

/* ---- pingpong ---- */

static int ping_fd[2], pong_fd[2];

static void
bounce(int in, int out, int first)
{
    char c = 'x';

    if (first && write(out, &c, 1) != 1)
        tgt_die("write: %s", strerror(errno));
    for (;;) {
        if (read(in, &c, 1) != 1 && errno != EINTR)
            tgt_die("read: %s", strerror(errno));
        if (write(out, &c, 1) != 1 && errno != EINTR)
            tgt_die("write: %s", strerror(errno));
    }
}

static void *
ping_main(void *arg)
{
    bounce(pong_fd[0], ping_fd[1], 1);
    return NULL;
}

static void *
pong_main(void *arg)
{
    bounce(ping_fd[0], pong_fd[1], 0);
    return NULL;
}

/* ---- sigloop ---- */

static volatile sig_atomic_t handled;

static void
on_usr1(int sig)
{
    handled++;
}

static __attribute__((noinline)) void
raise_loop(void)
{
    for (;;)
        pthread_kill(pthread_self(), SIGUSR1);
}

static void *
raiser_main(void *arg)
{
    raise_loop();
    return NULL;
}

/* ---- lifetimes ---- */

static unsigned long long
mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

/* A thread to start: its number and the time its creator called
   pthread_create (its birth: it may wait a while for its first CPU). */
struct life {
    long n;
    unsigned long long born;
};

static pthread_t
spawn_life(void *(*fn)(void *), long n)
{
    struct life *l = malloc(sizeof(*l));

    if (!l)
        tgt_die("out of memory");
    l->n = n;
    l->born = mono_ns();
    return tgt_spawn(fn, l, 0);
}

static void
live(struct life *l, const char *name, long ms, int spin)
{
    unsigned long long born = l->born;
    long left;
    char line[64];

    free(l);
    pthread_setname_np(pthread_self(), name);
    if (spin)
        while (mono_ns() - born < (unsigned long long)ms * 1000000ull)
            sink++;
    else if ((left = ms - (long)((mono_ns() - born) / 1000000ull)) > 0)
        tgt_sleep_ms(left);   /* its life counts from its birth */
    snprintf(line, sizeof(line), "LIFE %d %llu %llu", tgt_gettid(), born,
             mono_ns());
    tgt_say(line);
}

static void *
kid_main(void *arg)
{
    live(arg, "kid", 100, 0);
    return NULL;
}

static void *
life_main(void *arg)
{
    long n = ((struct life *)arg)->n;

    if (n == 0)
        pthread_detach(spawn_life(kid_main, 0));
    live(arg, "life", 100 + 70 * n, n % 2);
    return NULL;
}

static void *
spawner_main(void *arg)
{
    long n;

    pthread_setname_np(pthread_self(), "spawner");
    while (!churn_stop) {
        for (n = 0; n < 6; n++)
            pthread_detach(spawn_life(life_main, n));
        tgt_sleep_ms(500);
    }
    return NULL;
}

static void
loader_arrived(void)
{
}

static void *
plugin_runner(void *fn)
{
    ((void (*)(void (*)(void)))fn)(loader_arrived);
    return NULL;
}

static void *
loader_main(void *arg)
{
    void *h, *fn;

    pthread_setname_np(pthread_self(), "loader");
    tgt_sleep_ms(churn_ms / 2);
    h = dlopen(plugin_path, RTLD_NOW);
    if (!h)
        tgt_die("dlopen %s: %s", plugin_path, dlerror());
    fn = dlsym(h, "plugin_entry");
    if (!fn)
        tgt_die("dlsym plugin_entry: %s", dlerror());
    /* plugin_entry parks for good: run it on a thread of its own. */
    pthread_detach(tgt_spawn(plugin_runner, fn, 0));
    return NULL;
}

int
main(int argc, char **argv)
{
    pthread_t cr;

    tgt_init(&argc, argv, 120);
    if (argc >= 2 && strcmp(argv[1], "pingpong") == 0) {
        if (pipe(ping_fd) < 0 || pipe(pong_fd) < 0 || pipe(pipefd) < 0)
            tgt_die("pipe: %s", strerror(errno));
        tgt_spawn(reader_main, NULL, 0);
        tgt_wait_ready(1);
        /* Named here, before READY (a thread naming itself may not have
           run yet when the harness looks). */
        pthread_setname_np(tgt_spawn(pong_main, NULL, 0), "pong");
        pthread_setname_np(tgt_spawn(ping_main, NULL, 0), "ping");
        tgt_say("READY");
        for (;;)
            pause();
    }
    if (argc >= 2 && strcmp(argv[1], "sigloop") == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGUSR1, &sa, NULL);
        pthread_setname_np(tgt_spawn(raiser_main, NULL, 0), "raiser");
        tgt_say("READY");
        for (;;)
            pause();
    }
    if (argc >= 3 && strcmp(argv[1], "lifetimes") == 0) {
        pthread_t sp;

        sp = tgt_spawn(spawner_main, NULL, 0);
        tgt_say("READY");
        tgt_sleep_ms(atol(argv[2]));
        churn_stop = 1;
        pthread_join(sp, NULL);
        tgt_sleep_ms(600);   /* the last ones end */
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "churn") == 0) {
        pthread_t ch, ld;
        const char *slash = strrchr(argv[0], '/');

        churn_ms = atol(argv[2]);
        snprintf(plugin_path, sizeof(plugin_path), "%.*slibplugin.so",
                 slash ? (int)(slash - argv[0] + 1) : 0, argv[0]);
        pthread_create(&cr, NULL, cruncher_main, NULL);
        ch = tgt_spawn(churner_main, NULL, 0);
        ld = tgt_spawn(loader_main, NULL, 0);
        tgt_wait_ready(1);
        tgt_say("READY");
        tgt_sleep_ms(churn_ms);
        churn_stop = 1;
        pthread_join(ch, NULL);
        pthread_join(ld, NULL);
        printf("DONE %ld %s\n", churn_children, churn_bad ? "BAD" : "ok");
        fflush(stdout);
        return churn_bad ? 1 : 0;
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = print_truth;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGUSR2, &sa, NULL);
    }
    if (pipe(pipefd) < 0)
        tgt_die("pipe: %s", strerror(errno));
    cr = tgt_spawn(cruncher_main, NULL, 0);
    tgt_spawn(reader_main, NULL, 0);
    tgt_wait_ready(2);
    tgt_say("READY");
    pthread_join(cr, NULL);
    return 0;
}

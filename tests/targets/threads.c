/* threads: named threads parked at known call chains, for stack snapshot
 * tests.  Built five ways from this file (see Makefile): threads (-O0
 * PIE), threads-nopie, threads-omitfp (-O2 -fomit-frame-pointer),
 * threads-static, threads-stripped (debug info only by build-id).
 *
 *   thread        chain, outermost first (after start_thread)
 *   blocker-0..2  blocker_main -> block_outer -> block_middle -> block_inner
 *                 -> pthread_cond_wait (never signalled)
 *   sleeper-0..1  sleeper_main -> sleep_outer -> sleep_inner -> nanosleep
 *   spinner-0..1  spinner_main -> spin_a -> spin_b (busy loop, never blocks)
 *   reader        reader_main -> read_pipe -> read (pipe never written)
 *   sorter        sorter_main -> do_sort -> qsort -> (libc msort) ->
 *                 cmp_block -> pthread_cond_wait (first comparison blocks)
 *   sighandler    sig_main -> sig_wait_loop -> pthread_kill(self, SIGUSR1)
 *                 -> <signal handler called> -> on_sigusr1 -> in_handler
 *                 -> read (pipe never written)
 *   (main)        main -> main_wait -> pthread_join(blocker-0)
 *
 * --gencore: once every thread is parked, main prints READY and calls
 * main_abort -> abort(); the other threads stay where they are.
 * --timeout N: alarm(N) instead of alarm(120).
 */
#include "common.h"

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cv = PTHREAD_COND_INITIALIZER;
static int reader_pipe[2];   /* nobody writes: read() blocks forever */
static int handler_pipe[2];  /* same, for the signal handler */

struct role {
    const char *name;
    void *(*main)(void *);
};

static void
name_self(void *arg)
{
    const struct role *r = arg;

    pthread_setname_np(pthread_self(), r->name);
}

/* ---- blocker-N ---------------------------------------------------------- */

NOINLINE static void
block_inner(void)
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
}

NOINLINE static void
block_middle(void)
{
    block_inner();
    NO_TAIL();
}

NOINLINE static void
block_outer(void)
{
    block_middle();
    NO_TAIL();
}

NOINLINE static void *
blocker_main(void *arg)
{
    name_self(arg);
    block_outer();
    NO_TAIL();
    return NULL;
}

/* ---- sleeper-N ---------------------------------------------------------- */

NOINLINE static void
sleep_inner(void)
{
    struct timespec ts = {1000, 0};

    tgt_arrive(TGT_SLEEP);
    for (;;)
        nanosleep(&ts, NULL);
}

NOINLINE static void
sleep_outer(void)
{
    sleep_inner();
    NO_TAIL();
}

NOINLINE static void *
sleeper_main(void *arg)
{
    name_self(arg);
    sleep_outer();
    NO_TAIL();
    return NULL;
}

/* ---- spinner-N ---------------------------------------------------------- */

NOINLINE static void
spin_b(void)
{
    volatile unsigned long counter = 0;

    tgt_arrive(TGT_SPIN);
    for (;;)
        counter++;
}

NOINLINE static void
spin_a(void)
{
    spin_b();
    NO_TAIL();
}

NOINLINE static void *
spinner_main(void *arg)
{
    name_self(arg);
    spin_a();
    NO_TAIL();
    return NULL;
}

/* ---- reader ------------------------------------------------------------- */

NOINLINE static void
read_pipe(void)
{
    char c;

    tgt_arrive(TGT_READ);
    for (;;)
        if (read(reader_pipe[0], &c, 1) < 0 && errno != EINTR)
            tgt_die("read_pipe: %s", strerror(errno));
}

NOINLINE static void *
reader_main(void *arg)
{
    name_self(arg);
    read_pipe();
    NO_TAIL();
    return NULL;
}

/* ---- sorter: a stack through libc (qsort calls back into us) ------------ */

NOINLINE static int
cmp_block(const void *a, const void *b)
{
    /* The first comparison parks for good: qsort never gets further. */
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
    return *(const int *)a - *(const int *)b;
}

NOINLINE static void
do_sort(void)
{
    int v[8] = {7, 3, 5, 1, 6, 2, 4, 0};

    qsort(v, 8, sizeof(v[0]), cmp_block);
    NO_TAIL();
}

NOINLINE static void *
sorter_main(void *arg)
{
    name_self(arg);
    do_sort();
    NO_TAIL();
    return NULL;
}

/* ---- sighandler: parked inside a signal handler ------------------------- */

NOINLINE static void
in_handler(void)
{
    char c;

    tgt_arrive(TGT_READ);
    for (;;)
        if (read(handler_pipe[0], &c, 1) < 0 && errno != EINTR)
            _exit(4);
}

NOINLINE static void
on_sigusr1(int sig)
{
    (void)sig;
    in_handler();
    NO_TAIL();
}

NOINLINE static void
sig_wait_loop(void)
{
    /* pthread_kill on oneself: the kernel delivers SIGUSR1 on return
     * from tgkill, so the handler runs on top of pthread_kill's frame. */
    for (;;) {
        pthread_kill(pthread_self(), SIGUSR1);
        NO_TAIL();
    }
}

NOINLINE static void *
sig_main(void *arg)
{
    name_self(arg);
    sig_wait_loop();
    NO_TAIL();
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

NOINLINE static void
main_wait(pthread_t t)
{
    pthread_join(t, NULL);
    NO_TAIL();
}

NOINLINE static void
main_abort(void)
{
    abort();
}

static struct role roles[] = {
    {"blocker-0", blocker_main}, {"blocker-1", blocker_main},
    {"blocker-2", blocker_main},
    {"sleeper-0", sleeper_main}, {"sleeper-1", sleeper_main},
    {"spinner-0", spinner_main}, {"spinner-1", spinner_main},
    {"reader", reader_main},
    {"sorter", sorter_main},
    {"sighandler", sig_main},
};

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    struct sigaction sa;
    pthread_t first = 0;
    size_t i;

    if (argc != 1)
        tgt_die("usage: %s [--timeout N] [--gencore]", tgt_prog);
    if (pipe(reader_pipe) || pipe(handler_pipe))
        tgt_die("pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL))
        tgt_die("sigaction: %s", strerror(errno));

    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        pthread_t t = tgt_spawn(roles[i].main, &roles[i], 0);

        if (i == 0)
            first = t;
    }
    tgt_wait_ready((int)(sizeof(roles) / sizeof(roles[0])));
    tgt_say("READY");
    if (o.gencore)
        main_abort();
    main_wait(first);
    NO_TAIL();
    return 0;
}

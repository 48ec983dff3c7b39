/* threads: named threads parked at known call chains.
 *   blocker-0..2  blocker_main -> block_outer -> block_middle -> block_inner -> pthread_cond_wait
 *   sleeper-0..1  sleeper_main -> sleep_outer -> sleep_inner -> nanosleep
 *   spinner-0..1  spinner_main -> spin_a -> spin_b (busy loop)
 *   reader        reader_main -> read_pipe -> read
 *   sorter        sorter_main -> do_sort -> qsort -> (libc) -> cmp_block -> pthread_cond_wait
 *   sighandler    sig_main -> sig_wait_loop -> (signal) on_sigusr1 -> in_handler -> read
 *   main          main -> main_wait -> pthread_join
 * --gencore: after READY, the main thread calls abort() from main_abort. */
#include "common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int pipefd[2], sigpipe[2];
static volatile unsigned long spin_counter;

NOINLINE static void block_inner(void)
{
    pthread_mutex_lock(&mu);
    arrived();
    for (;;)
        pthread_cond_wait(&never, &mu);
}
NOINLINE static void block_middle(void) { block_inner(); NO_TAIL(); }
NOINLINE static void block_outer(void) { block_middle(); NO_TAIL(); }
static void *blocker_main(void *a) { block_outer(); NO_TAIL(); return a; }

NOINLINE static void sleep_inner(void)
{
    struct timespec ts = {100000, 0};
    arrived();
    for (;;)
        nanosleep(&ts, NULL);
}
NOINLINE static void sleep_outer(void) { sleep_inner(); NO_TAIL(); }
static void *sleeper_main(void *a) { sleep_outer(); NO_TAIL(); return a; }

NOINLINE static void spin_b(void)
{
    arrived();
    for (;;)
        spin_counter++;
}
NOINLINE static void spin_a(void) { spin_b(); NO_TAIL(); }
static void *spinner_main(void *a) { spin_a(); NO_TAIL(); return a; }

NOINLINE static void read_pipe(void)
{
    char c;
    arrived();
    for (;;)
        if (read(pipefd[0], &c, 1) <= 0)
            pause();
}
static void *reader_main(void *a) { read_pipe(); NO_TAIL(); return a; }

NOINLINE static int cmp_block(const void *x, const void *y)
{
    pthread_mutex_lock(&mu);
    arrived();
    for (;;)
        pthread_cond_wait(&never, &mu);
    return *(const int *)x - *(const int *)y;
}
NOINLINE static void do_sort(void)
{
    int v[4] = {3, 1, 2, 0};
    qsort(v, 4, sizeof(int), cmp_block);
    NO_TAIL();
}
static void *sorter_main(void *a) { do_sort(); NO_TAIL(); return a; }

NOINLINE static void in_handler(void)
{
    char c;
    arrived();
    for (;;)
        if (read(sigpipe[0], &c, 1) <= 0)
            pause();
}
static void on_sigusr1(int sig) { in_handler(); NO_TAIL(); (void)sig; }
NOINLINE static void sig_wait_loop(void)
{
    pthread_kill(pthread_self(), SIGUSR1);
    NO_TAIL();
}
static void *sig_main(void *a) { sig_wait_loop(); NO_TAIL(); return a; }

NOINLINE static void main_abort(void) { abort(); }
NOINLINE static void main_wait(pthread_t t) { pthread_join(t, NULL); NO_TAIL(); }

static pthread_t spawn(void *(*fn)(void *), const char *name)
{
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    pthread_setname_np(t, name);
    return t;
}

int main(int argc, char **argv)
{
    char name[16];
    pthread_t last;
    int i;

    start_alarm(argc, argv);
    if (pipe(pipefd) || pipe(sigpipe))
        return 1;
    signal(SIGUSR1, on_sigusr1);
    ready_expected = 3 + 2 + 2 + 1 + 1 + 1;
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "blocker-%d", i);
        spawn(blocker_main, name);
    }
    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "sleeper-%d", i);
        spawn(sleeper_main, name);
    }
    for (i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "spinner-%d", i);
        spawn(spinner_main, name);
    }
    spawn(reader_main, "reader");
    spawn(sorter_main, "sorter");
    last = spawn(sig_main, "sighandler");
    wait_ready(3 + 2 + 1 + 1 + 1);
    if (has_arg(argc, argv, "--gencore"))
        main_abort();
    main_wait(last);
    return 0;
}

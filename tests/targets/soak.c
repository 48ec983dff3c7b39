/* soak.c: the target of the soak and kill harness (tests/soak.py): a
 * program that notices harm and says so itself.
 *
 *   usage: soak SHM_FILE [WORKERS]      (WORKERS default 8)
 *
 * SHM_FILE (created, 4 KiB, MAP_SHARED) holds live counters the harness
 * reads without stopping the program (struct soak_shm, all uint64, in
 * this order): magic, signals (SIGUSR1 handled), checks, failed,
 * churned, eintr, eintr_bad, pipe_bytes.
 *
 * Threads:
 *   worker0..N-1  self-checking arithmetic, forever: a sum of squares in a
 *                 loop against its closed form, a float sum against the
 *                 exact count, a LCG stepped forward against the same
 *                 steps by repeated squaring.  A wrong result (a register
 *                 or stack a tracer spoiled) counts in `failed`.
 *   churner       creates and joins short-lived threads back to back
 *                 (each checks a small sum; a wrong one counts in failed)
 *   sleeper       nanosleep(2 ms) with the remaining time after an EINTR:
 *                 each 2 ms must have passed in full (else failed)
 *   reader        read(2) of a pipe the writer feeds with a byte sequence:
 *                 every byte in order (else failed), EINTR retried
 *   writer        writes that sequence, 1 byte per 500 us
 *   main          sigwaitinfo(SIGTERM): then stops everything, prints
 *                 "SOAK signals=S checks=C failed=F churned=N eintr=E
 *                 eintr_bad=B bytes=P" and exits 0 if F == 0 and B == 0,
 *                 1 otherwise (2: could not start).
 *
 * SIGUSR1 is handled without SA_RESTART (so read and nanosleep see
 * EINTR); the handler adds 1 to `signals` and to its thread's own count.
 * An EINTR in a thread whose own count did not move (an interrupted call
 * that no handler of ours interrupted: a tracer's stop leaking out)
 * counts in eintr_bad.  Any thread may take a SIGUSR1 (process-directed).
 *
 * Must not: block SIGUSR1 anywhere (a blocked signal is not a lost one,
 * but the harness could not tell).
 */
#include "common.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#define SOAK_MAGIC 0x4b414f53504d5000ull   /* "\0PMPSOAK" */

struct soak_shm {
    uint64_t magic;
    uint64_t signals;
    uint64_t checks;
    uint64_t failed;
    uint64_t churned;
    uint64_t eintr;
    uint64_t eintr_bad;
    uint64_t pipe_bytes;
};

static struct soak_shm *shm;
static volatile int stop;
static __thread uint64_t my_signals;   /* this thread's handler runs */
static int pipefd[2];

static void
add(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_SEQ_CST);
}

static void
on_usr1(int sig)
{
    int e = errno;

    (void)sig;
    my_signals++;
    add(&shm->signals, 1);
    errno = e;
}

/* ---- workers ---- */

#define LCG_A 6364136223846793005ull
#define LCG_C 1442695040888963407ull

/* x stepped n times by x = A x + C, by repeated squaring of the map. */
NOINLINE static uint64_t
lcg_jump(uint64_t x, uint64_t n)
{
    uint64_t a = LCG_A, c = LCG_C, ra = 1, rc = 0;

    while (n) {
        if (n & 1) {
            ra = ra * a;
            rc = rc * a + c;
        }
        c = c * (a + 1);
        a = a * a;
        n >>= 1;
    }
    return ra * x + rc;
}

NOINLINE static int
check_round(uint64_t seed, uint64_t n)
{
    uint64_t s = 0, x = seed, i;
    unsigned __int128 want;
    double f = 0.0;

    for (i = 1; i <= n; i++) {
        s += i * i;
        f += 1.0;
        x = x * LCG_A + LCG_C;
        __asm__ __volatile__("" : "+r"(s), "+r"(x));
    }
    want = (unsigned __int128)n * (n + 1) * (2 * n + 1) / 6;
    return s == (uint64_t)want && f == (double)n && x == lcg_jump(seed, n);
}

static void *
worker_main(void *arg)
{
    char name[16];
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;

    snprintf(name, sizeof(name), "worker%d", (int)(uintptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    while (!stop) {
        uint64_t n = 20000 + (seed >> 50);
        if (!check_round(seed, n))
            add(&shm->failed, 1);
        add(&shm->checks, 1);
        seed = seed * LCG_A + LCG_C;
    }
    return NULL;
}

/* ---- churn ---- */

static void *
child_main(void *arg)
{
    uint64_t s = 0, i;

    for (i = 1; i <= 5000; i++)
        s += i;
    *(uint64_t *)arg = s;
    return NULL;
}

static void *
churner_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "churner");
    while (!stop) {
        uint64_t out = 0;
        pthread_t t;
        int e = pthread_create(&t, NULL, child_main, &out);
        if (e == EAGAIN)
            continue;
        if (e)
            tgt_die("pthread_create: %s", strerror(e));
        pthread_join(t, NULL);
        if (out != 5000ull * 5001 / 2)
            add(&shm->failed, 1);
        add(&shm->churned, 1);
    }
    return NULL;
}

/* ---- EINTR ---- */

/* An EINTR: a handler of ours must have run in this thread since
   `before` was taken. */
static void
saw_eintr(uint64_t before)
{
    add(&shm->eintr, 1);
    if (my_signals == before)
        add(&shm->eintr_bad, 1);
}

static int64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
sleeper_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    while (!stop) {
        struct timespec req = {0, 2000000}, rem;
        int64_t t0 = mono_ns();
        for (;;) {
            uint64_t before = my_signals;
            if (nanosleep(&req, &rem) == 0)
                break;
            if (errno != EINTR)
                tgt_die("nanosleep: %s", strerror(errno));
            saw_eintr(before);
            req = rem;
        }
        if (mono_ns() - t0 < 2000000)
            add(&shm->failed, 1);   /* woke early: the rest was lost */
        add(&shm->checks, 1);
    }
    return NULL;
}

static void *
writer_main(void *arg)
{
    unsigned char b = 0;

    (void)arg;
    pthread_setname_np(pthread_self(), "writer");
    while (!stop) {
        struct timespec ts = {0, 500000};
        ssize_t n = write(pipefd[1], &b, 1);
        if (n == 1)
            b++;
        else if (n < 0 && errno != EINTR)
            tgt_die("write: %s", strerror(errno));
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    close(pipefd[1]);
    return NULL;
}

static void *
reader_main(void *arg)
{
    unsigned char want = 0, buf[64];

    (void)arg;
    pthread_setname_np(pthread_self(), "reader");
    for (;;) {
        uint64_t before = my_signals;
        ssize_t n = read(pipefd[0], buf, sizeof(buf)), i;
        if (n == 0)
            break;   /* writer done */
        if (n < 0) {
            if (errno != EINTR)
                tgt_die("read: %s", strerror(errno));
            saw_eintr(before);
            continue;
        }
        for (i = 0; i < n; i++)
            if (buf[i] != want++)
                add(&shm->failed, 1);
        add(&shm->pipe_bytes, (uint64_t)n);
        add(&shm->checks, 1);
    }
    return NULL;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
    int nworkers = argc > 2 ? atoi(argv[2]) : 8, fd, i, sig;
    pthread_t th[64 + 5];
    int nth = 0;
    struct sigaction sa;
    sigset_t term;

    if (argc < 2 || nworkers < 1 || nworkers > 64) {
        fprintf(stderr, "usage: soak SHM_FILE [WORKERS 1..64]\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) < 0)
        tgt_die("%s: %s", argv[1], strerror(errno));
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm == MAP_FAILED)
        tgt_die("mmap: %s", strerror(errno));
    close(fd);
    if (pipe(pipefd) < 0)
        tgt_die("pipe: %s", strerror(errno));

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;   /* no SA_RESTART: calls see EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        tgt_die("sigaction: %s", strerror(errno));
    /* SIGTERM is taken by main only (every thread inherits the block). */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);

    for (i = 0; i < nworkers; i++)
        if (pthread_create(&th[nth++], NULL, worker_main,
                           (void *)(uintptr_t)i))
            tgt_die("pthread_create");
    if (pthread_create(&th[nth++], NULL, churner_main, NULL) ||
        pthread_create(&th[nth++], NULL, sleeper_main, NULL) ||
        pthread_create(&th[nth++], NULL, writer_main, NULL) ||
        pthread_create(&th[nth++], NULL, reader_main, NULL))
        tgt_die("pthread_create");
    __atomic_store_n(&shm->magic, SOAK_MAGIC, __ATOMIC_SEQ_CST);
    printf("READY\n");
    fflush(stdout);

    do {
        sig = sigwaitinfo(&term, NULL);
    } while (sig < 0 && errno == EINTR);
    stop = 1;
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    printf("SOAK signals=%llu checks=%llu failed=%llu churned=%llu "
           "eintr=%llu eintr_bad=%llu bytes=%llu\n",
           (unsigned long long)shm->signals, (unsigned long long)shm->checks,
           (unsigned long long)shm->failed, (unsigned long long)shm->churned,
           (unsigned long long)shm->eintr,
           (unsigned long long)shm->eintr_bad,
           (unsigned long long)shm->pipe_bytes);
    fflush(stdout);
    return shm->failed == 0 && shm->eintr_bad == 0 ? 0 : 1;
}

/* demo: a small "service" to point pmprof at (make demo, demo/run-demo.sh).
 *
 *   thread       what it does (chain, outermost first)
 *   worker-0/1   hot: worker_main -> process_chunk -> compress_block or
 *                hash_update (busy, never blocks)
 *   flusher      flusher_main -> flush_journal (takes journal_lock) ->
 *                flush_to_disk -> nanosleep: a slow "disk" while holding
 *                the lock
 *   client-0..2  client_main -> handle_request -> append_journal ->
 *                pthread_mutex_lock(journal_lock): stuck behind the flusher
 *   pool-0..3    pool_main -> pool_wait_for_work -> pthread_cond_wait: idle
 *   (main)       main -> serve_forever -> pthread_join
 *
 * Prints READY once every thread is in place (blocked threads asleep in
 * their syscall, checked in /proc), then runs until killed; alarm(600)
 * stops it anyway.  Built -O1 -g -fno-omit-frame-pointer (demo/Makefile).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Keep each named function a real frame: no inlining, cloning or tail
 * calls, even with -O1. */
#define NOINLINE __attribute__((noinline, noclone))
#define NO_TAIL() __asm__ __volatile__("" ::: "memory")

enum { NWORKERS = 2, NCLIENTS = 3, NPOOL = 4, NTHREADS = NWORKERS + 1 + NCLIENTS + NPOOL };
enum { CHUNK = 64 * 1024 };

static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static volatile uint64_t sink;

/* ---- "in place" bookkeeping for READY ---------------------------------- */

static pid_t parked_tid[NTHREADS];
static int nparked;   /* atomic */
static int narrived;  /* atomic */

/* Called right before a thread blocks (blocks=1) or starts its hot loop. */
static void
arrive(int blocks)
{
    int i = __atomic_fetch_add(&nparked, 1, __ATOMIC_RELAXED);

    parked_tid[i] = blocks ? (pid_t)syscall(SYS_gettid) : 0;
    __atomic_fetch_add(&narrived, 1, __ATOMIC_RELEASE);
}

static int
asleep(pid_t tid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static void
wait_in_place(void)
{
    struct timespec ms = {0, 1000000};
    int i, tries = 0;

    while (__atomic_load_n(&narrived, __ATOMIC_ACQUIRE) < NTHREADS) {
        if (++tries > 10000) {
            fprintf(stderr, "demo: threads did not start\n");
            exit(1);
        }
        nanosleep(&ms, NULL);
    }
    for (i = 0, tries = 0; i < NTHREADS;) {
        if (!parked_tid[i] || asleep(parked_tid[i])) {
            i++;
        } else if (++tries > 2000) {
            fprintf(stderr, "demo: thread %d did not block\n", (int)parked_tid[i]);
            exit(1);
        } else {
            nanosleep(&ms, NULL);
        }
    }
}

/* ---- workers: CPU-bound ------------------------------------------------ */

NOINLINE static void
compress_block(unsigned char *buf, size_t len)
{
    /* a toy run-length pass; three sweeps so it dominates the profile */
    uint64_t runs = 0;
    int sweep;
    size_t i;

    for (sweep = 0; sweep < 3; sweep++)
        for (i = 1; i < len; i++) {
            if (buf[i] == buf[i - 1])
                runs++;
            buf[i - 1] = (unsigned char)(buf[i - 1] * 31 + buf[i] + sweep);
        }
    sink += runs;
}

NOINLINE static void
hash_update(const unsigned char *buf, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ buf[i]) * 1099511628211ULL;
    sink ^= h;
}

NOINLINE static void
process_chunk(unsigned char *buf)
{
    compress_block(buf, CHUNK);
    hash_update(buf, CHUNK);
    NO_TAIL();
}

NOINLINE static void *
worker_main(void *arg)
{
    unsigned char *buf = malloc(CHUNK);
    char name[16];

    snprintf(name, sizeof(name), "worker-%d", (int)(intptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    if (!buf)
        abort();
    memset(buf, (int)(intptr_t)arg, CHUNK);
    arrive(0);
    for (;;)
        process_chunk(buf);
    return NULL;
}

/* ---- flusher: holds journal_lock while the "disk" is slow -------------- */

static int flusher_has_lock; /* atomic */

NOINLINE static void
flush_to_disk(void)
{
    struct timespec disk = {3600, 0};

    arrive(1);
    for (;;)
        nanosleep(&disk, NULL);
}

NOINLINE static void
flush_journal(void)
{
    pthread_mutex_lock(&journal_lock);
    __atomic_store_n(&flusher_has_lock, 1, __ATOMIC_RELEASE);
    flush_to_disk();
    pthread_mutex_unlock(&journal_lock);
}

NOINLINE static void *
flusher_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "flusher");
    flush_journal();
    NO_TAIL();
    return NULL;
}

/* ---- clients: stuck on journal_lock ----------------------------------- */

NOINLINE static void
append_journal(const char *entry)
{
    arrive(1);
    pthread_mutex_lock(&journal_lock);
    sink += strlen(entry);
    pthread_mutex_unlock(&journal_lock);
}

NOINLINE static void
handle_request(int id)
{
    char entry[32];

    snprintf(entry, sizeof(entry), "request %d", id);
    append_journal(entry);
    NO_TAIL();
}

NOINLINE static void *
client_main(void *arg)
{
    char name[16];

    snprintf(name, sizeof(name), "client-%d", (int)(intptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    handle_request((int)(intptr_t)arg);
    NO_TAIL();
    return NULL;
}

/* ---- idle pool --------------------------------------------------------- */

NOINLINE static void
pool_wait_for_work(void)
{
    pthread_mutex_lock(&pool_lock);
    arrive(1);
    for (;;)
        pthread_cond_wait(&work_ready, &pool_lock);
}

NOINLINE static void *
pool_main(void *arg)
{
    char name[16];

    snprintf(name, sizeof(name), "pool-%d", (int)(intptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    pool_wait_for_work();
    NO_TAIL();
    return NULL;
}

/* ---- main -------------------------------------------------------------- */

static pthread_t
spawn(void *(*fn)(void *), intptr_t arg)
{
    pthread_t t;
    int err = pthread_create(&t, NULL, fn, (void *)arg);

    if (err) {
        fprintf(stderr, "demo: pthread_create: %s\n", strerror(err));
        exit(1);
    }
    return t;
}

NOINLINE static void
serve_forever(pthread_t t)
{
    pthread_join(t, NULL);
    NO_TAIL();
}

int
main(void)
{
    struct timespec ms = {0, 1000000};
    pthread_t first;
    intptr_t i;

    alarm(600);
    first = spawn(worker_main, 0);
    for (i = 1; i < NWORKERS; i++)
        spawn(worker_main, i);
    spawn(flusher_main, 0);
    /* clients must find the lock taken */
    while (!__atomic_load_n(&flusher_has_lock, __ATOMIC_ACQUIRE))
        nanosleep(&ms, NULL);
    for (i = 0; i < NCLIENTS; i++)
        spawn(client_main, i);
    for (i = 0; i < NPOOL; i++)
        spawn(pool_main, i);
    wait_in_place();
    if (write(1, "READY\n", 6) != 6)
        return 1;
    serve_forever(first);
    return 0;
}

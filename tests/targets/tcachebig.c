/* tcachebig.c: a thread whose tcache_perthread_struct sits in a chunk
 * larger than the struct needs (seen on mariadb: a 0x2a0 chunk holding
 * glibc 2.36's 0x290 struct).
 *
 * Usage: tcachebig SIZE   (SIZE: a chunk size, e.g. 0x2a0)
 *
 * One arena (mallopt(M_ARENA_MAX, 1)): main allocates 100 chunks of SIZE
 * with small chunks between them (nothing coalesces) and frees them: the
 * first few fill main's tcache bin, the rest go to the arena's bins.  The
 * thread "worker" then calls malloc for the first time: glibc's
 * tcache_init asks _int_malloc for its struct, which finds no free chunk
 * of the struct's size and takes the smallest larger one, whole when the
 * rest would be smaller than MINSIZE.  main then prints, from glibc's own
 * malloc_usable_size(), each of those chunks now in use again:
 * "INUSE <user address> <usable bytes>" (usable = chunk size - 8), then
 * READY.  Whether the worker's tcache is one of them is the test's
 * question to pmprof.
 */
#include "common.h"

#include <malloc.h>

#define N 100

static void *chunk[N], *guard[N];
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;

static void *
worker_main(void *arg)
{
    void *p;

    pthread_setname_np(pthread_self(), "worker");
    p = malloc(24);      /* the first malloc of this thread: tcache_init */
    if (!p)
        tgt_die("malloc");
    free(p);             /* into its own tcache */
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&park_cv, &park_mu);
    return arg;
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    unsigned long size;
    char line[96];
    int i, n;

    if (argc != 2 || (size = strtoul(argv[1], NULL, 0)) < 64 || size % 16)
        tgt_die("usage: tcachebig CHUNK_SIZE (a multiple of 16)");
    if (!mallopt(M_ARENA_MAX, 1))
        tgt_die("mallopt");
    for (i = 0; i < N; i++) {
        chunk[i] = malloc(size - 8);     /* request2size: exactly size */
        guard[i] = malloc(24);
        if (!chunk[i] || !guard[i])
            tgt_die("malloc");
        if (malloc_usable_size(chunk[i]) != size - 8)
            tgt_die("chunk of %zu usable bytes, not %lu",
                    malloc_usable_size(chunk[i]), size - 8);
    }
    for (i = 0; i < N; i++)
        free(chunk[i]);
    tgt_spawn(worker_main, NULL, 0);
    tgt_wait_ready(1);
    for (i = n = 0; i < N; i++) {
        size_t u = malloc_usable_size(chunk[i]);
        if (!u)
            continue;
        snprintf(line, sizeof(line), "INUSE 0x%lx %zu",
                 (unsigned long)chunk[i], u);
        tgt_say(line);
        n++;
    }
    tgt_say("READY");
    if (o.gencore)
        abort();
    pthread_mutex_lock(&park_mu);
    for (;;)
        pthread_cond_wait(&park_cv, &park_mu);
}

/* mallocs: a glibc malloc heap in known patterns, with the process's own
 * report of it, for `pmprof heap` (the oracle method).
 *
 *   usage: mallocs [--timeout N] [--gencore] [corrupt | big N]
 *
 *   (main)     main arena: chunks of many sizes in use; tcache bins full;
 *              fastbins (frees past the 7 tcache slots); an unsorted chunk;
 *              small and large bin chunks; 3 mmapped chunks (3 MiB each;
 *              M_MMAP_THRESHOLD is fixed at 2 MiB);
 *              then main -> main_wait -> pthread_join(worker-0)
 *   worker-0..2  each fills its own arena (1500 chunks of 16..4000 bytes,
 *              every 3rd freed) -> park -> pthread_cond_wait
 *   bigheap    its arena grows past one 64 MiB heap (90 chunks of 1 MiB,
 *              every 4th freed) -> park -> pthread_cond_wait
 *
 * Once every thread is parked, main prints (write(2), nothing allocates
 * after the report is taken):
 *   MALLINFO2 arena=N ordblks=N smblks=N hblks=N hblkhd=N usmblks=N
 *             fsmblks=N uordblks=N fordblks=N keepcost=N   (one line;
 *             "MALLINFO ..." from mallinfo() on glibc < 2.33, which has
 *             no mallinfo2: the same fields as int)
 *   <malloc version="1"> ... </malloc>   malloc_info(0, stdout)
 *   LIVE <thread> <chunks> <bytes>   what each worker/bigheap still holds,
 *                                    by its own count (usable size + 8)
 *   FREED <worker> <size> ...        the chunk sizes (usable size + 8) each
 *                                    worker freed, in order: its tcache is
 *                                    the first tcache_count of each small
 *                                    size (nothing allocates after)
 *   READY
 * malloc_stats() goes to stderr as glibc prints it.
 * big N (benchmark): main alone allocates N chunks of 96..160 bytes in the
 * main arena, frees every 7th (tcache, then fastbins/bins), prints
 * READY and parks; no report.
 * corrupt: after the report (and before READY) the heap is damaged on
 * purpose: the head of the 48-byte fastbin points to itself (a loop) and
 * the unsorted chunk's fd to 0x4141414141414140 (unreadable).  Build with
 * -fno-builtin-malloc -fno-builtin-free so gcc keeps every call.
 */
#include "common.h"

#include <malloc.h>
#include <stdint.h>

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static void *volatile keep[8192];
/* what each thread still holds, by its own count (chunk = usable + 8) */
static struct { char name[16]; size_t chunks, bytes; } live[4];
/* the chunk sizes each worker freed, in order */
static unsigned freed[3][500];
static int nkeep;

static void
hold(void *p)
{
    if (!p)
        tgt_die("malloc failed");
    memset(p, 0x5a, 8);
    if (nkeep < (int)(sizeof(keep) / sizeof(keep[0])))
        keep[__atomic_fetch_add(&nkeep, 1, __ATOMIC_RELAXED)] = p;
}

NOINLINE static void
park(void)
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&park_cv, &park_mu);
}

static void *
worker_main(void *arg)
{
    long id = (long)arg;
    char name[16];
    void *mine[1500];
    unsigned seed = (unsigned)id * 7919u + 1u;
    int i;

    snprintf(name, sizeof(name), "worker-%ld", id);
    pthread_setname_np(pthread_self(), name);
    for (i = 0; i < 1500; i++) {
        mine[i] = malloc(16 + rand_r(&seed) % 4000);
        if (!mine[i])
            tgt_die("malloc");
        memset(mine[i], 1, 8);
    }
    for (i = 0; i < 1500; i += 3) {
        freed[id][i / 3] = (unsigned)malloc_usable_size(mine[i]) + 8;
        free(mine[i]);
    }
    for (i = 1; i < 1500; i++)
        if (i % 3) {
            hold(mine[i]);
            live[id].chunks++;
            live[id].bytes += malloc_usable_size(mine[i]) + 8;
        }
    memcpy(live[id].name, name, sizeof(name));
    park();
    return NULL;
}

static void *
bigheap_main(void *arg)
{
    void *mine[90];
    int i;

    pthread_setname_np(pthread_self(), "bigheap");
    for (i = 0; i < 90; i++) {
        mine[i] = malloc(1 << 20);
        if (!mine[i])
            tgt_die("malloc");
        memset(mine[i], 2, 64);
    }
    for (i = 0; i < 90; i += 4)
        free(mine[i]);
    for (i = 1; i < 90; i++)
        if (i % 4) {
            hold(mine[i]);
            live[3].chunks++;
            live[3].bytes += malloc_usable_size(mine[i]) + 8;
        }
    strcpy(live[3].name, "bigheap");
    park();
    return NULL;
}

static void *fast[16];

static void
main_arena_patterns(void)
{
    void *a[64], *big[6], *guard;
    int i;

    /* chunks in use of many sizes */
    for (i = 0; i < 200; i++)
        hold(malloc(8 + (size_t)(i * 37) % 3000));
    /* tcache: 7 of each of a few sizes, plus fastbins beyond them */
    for (i = 0; i < 16; i++)
        fast[i] = malloc(40);
    for (i = 0; i < 64; i++)
        a[i] = malloc(24 + 16 * (size_t)(i % 8));
    hold(malloc(24));   /* keeps the freed ones off top */
    for (i = 0; i < 64; i++)
        free(a[i]);
    /* large and small bin chunks: free big chunks between live ones, then
       a large request sorts the unsorted bin into the bins */
    for (i = 0; i < 6; i++) {
        big[i] = malloc(1100 + 700 * (size_t)i);
        hold(malloc(32));
    }
    for (i = 0; i < 6; i += 2)
        free(big[i]);
    hold(malloc(60000));
    /* one more unsorted chunk: freed last, never sorted */
    guard = malloc(5000);
    hold(malloc(48));
    free(guard);
    /* mmapped chunks (above the 2 MiB threshold set in main) */
    for (i = 0; i < 3; i++)
        hold(malloc(3 << 20));
}

/* Fastbins last: any large request (fopen's buffer while waiting for the
   threads, say) consolidates them. */
static void
free_fast(void)
{
    int i;

    for (i = 0; i < 16; i++)
        free(fast[i]);
}

static char out[4096];
/* stdout's buffer: a static one, so malloc_info(stdout) allocates nothing */
static char stdout_buf[1 << 16];

static void
say_report(void)
{
#if __GLIBC__ > 2 || __GLIBC_MINOR__ >= 33
    struct mallinfo2 m = mallinfo2();
#define MI_NAME "MALLINFO2"
#define MI(x) ((size_t)m.x)
#else
    struct mallinfo m = mallinfo();
#define MI_NAME "MALLINFO"
#define MI(x) ((size_t)(unsigned)m.x)
#endif
    int n, i;

    n = snprintf(out, sizeof(out),
                 MI_NAME " arena=%zu ordblks=%zu smblks=%zu hblks=%zu "
                 "hblkhd=%zu usmblks=%zu fsmblks=%zu uordblks=%zu "
                 "fordblks=%zu keepcost=%zu\n",
                 MI(arena), MI(ordblks), MI(smblks), MI(hblks), MI(hblkhd),
                 MI(usmblks), MI(fsmblks), MI(uordblks), MI(fordblks),
                 MI(keepcost));
    if (write(1, out, (size_t)n) != n)
        tgt_die("write");
    for (i = 0; i < 4; i++) {
        n = snprintf(out, sizeof(out), "LIVE %s %zu %zu\n", live[i].name,
                     live[i].chunks, live[i].bytes);
        if (write(1, out, (size_t)n) != n)
            tgt_die("write");
    }
    for (i = 0; i < 3; i++) {
        int k;
        n = snprintf(out, sizeof(out), "FREED %s", live[i].name);
        for (k = 0; k < 500 && n < (int)sizeof(out) - 16; k++)
            n += snprintf(out + n, sizeof(out) - (size_t)n, " %u",
                          freed[i][k]);
        out[n++] = '\n';
        if (write(1, out, (size_t)n) != n)
            tgt_die("write");
    }
    malloc_stats();
    malloc_info(0, stdout);
    fflush(stdout);
}

static void *to_unsorted;

/* Before the fastbins are filled: a large request would consolidate them. */
static void
corrupt_prepare(void)
{
    to_unsorted = malloc(2000);
    hold(malloc(48));
    if (!to_unsorted)
        tgt_die("malloc");
}

static void
corrupt(void)
{
    uintptr_t *fd = (uintptr_t *)fast[15];          /* the fastbin head */
    uintptr_t self = (uintptr_t)fast[15] - 16;      /* its chunk */

#if __GLIBC__ > 2 || __GLIBC_MINOR__ >= 32
    *fd = ((uintptr_t)fd >> 12) ^ self;             /* safe-linked loop */
#else
    *fd = self;                                     /* a loop */
#endif
    free(to_unsorted);                              /* -> unsorted bin */
    *(volatile uintptr_t *)to_unsorted = 0x4141414141414140ull; /* its fd */
}

NOINLINE static void
main_wait(pthread_t t)
{
    pthread_join(t, NULL);
    NO_TAIL();
}

static void
big(long n)
{
    char **v = malloc((size_t)n * sizeof(*v));
    long i;

    if (!v)
        tgt_die("malloc");
    for (i = 0; i < n; i++) {
        v[i] = malloc(88 + (size_t)(i % 5) * 16);
        if (!v[i])
            tgt_die("malloc %ld", i);
        v[i][0] = 1;
    }
    for (i = 0; i < n; i += 7)
        free(v[i]);
    tgt_say("READY");
    park();
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    pthread_t w[3], b;
    long i;

    if (argc > 2 && strcmp(argv[1], "big") == 0) {
        tgt_arrive(TGT_SPIN);
        big(atol(argv[2]));
    }
    /* A fixed threshold: 1 MiB requests come from the arenas (bigheap's
       grows a second heap), 3 MiB ones are mmapped. */
    setvbuf(stdout, stdout_buf, _IOFBF, sizeof(stdout_buf));
    if (!mallopt(M_MMAP_THRESHOLD, 2 << 20))
        tgt_die("mallopt");
    main_arena_patterns();
    for (i = 0; i < 3; i++)
        w[i] = tgt_spawn(worker_main, (void *)i, 0);
    b = tgt_spawn(bigheap_main, NULL, 0);
    tgt_wait_ready(4);
    if (argc > 1 && strcmp(argv[1], "corrupt") == 0)
        corrupt_prepare();
    free_fast();
    say_report();
    if (argc > 1 && strcmp(argv[1], "corrupt") == 0)
        corrupt();
    tgt_say("READY");
    if (o.gencore)
        abort();
    main_wait(w[0]);
    (void)b;
    return 0;
}

/* deep: many threads with deep stacks, for benchmarks and frame caps.
 *
 *   usage: deep [--timeout N] [--gencore] [NTHREADS [spin|block [DEPTH]]]
 *          defaults: 8 threads, block, DEPTH 24; alarm(600) by default
 *
 *   thread       chain, outermost first (after start_thread)
 *   deep-0..N-1  deep_main -> rec_a -> rec_b -> rec_c -> rec_a -> ... (DEPTH+1
 *                rec_* frames; the innermost is rec_X with X = "abc"[DEPTH%3])
 *                -> bottom -> deep_block -> pthread_cond_wait   (block)
 *                -> bottom -> deep_spin (busy loop)             (spin)
 *   (main)       main -> main_wait -> pthread_join(deep-0)
 *
 * rec_a/rec_b/rec_c have different frame sizes (16/64/160-byte locals), so
 * an unwinder cannot get away with a fixed stride.  With DEPTH 24 gdb's bt
 * shows 35 frames for a blocked thread, 30 for a spinning one.  READY once
 * every thread is at depth (and, in block mode, asleep in futex).  --gencore: main aborts in
 * main_abort after READY.
 */
#include "common.h"

static pthread_mutex_t deep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deep_cv = PTHREAD_COND_INITIALIZER;
static int spin_mode;
static volatile unsigned long sink;

NOINLINE static void
deep_block(void)
{
    pthread_mutex_lock(&deep_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&deep_cv, &deep_mu);
}

NOINLINE static void
deep_spin(void)
{
    volatile unsigned long counter = 0;

    tgt_arrive(TGT_SPIN);
    for (;;)
        counter++;
}

NOINLINE static void
bottom(void)
{
    if (spin_mode)
        deep_spin();
    else
        deep_block();
    NO_TAIL();
}

NOINLINE static void rec_b(int depth);
NOINLINE static void rec_c(int depth);

NOINLINE static void
rec_a(int depth)
{
    volatile char pad[16];

    pad[0] = (char)depth;
    if (depth > 0)
        rec_b(depth - 1);
    else
        bottom();
    NO_TAIL();
    sink += pad[0];
}

NOINLINE static void
rec_b(int depth)
{
    volatile char pad[64];

    pad[0] = (char)depth;
    if (depth > 0)
        rec_c(depth - 1);
    else
        bottom();
    NO_TAIL();
    sink += pad[0];
}

NOINLINE static void
rec_c(int depth)
{
    volatile char pad[160];

    pad[0] = (char)depth;
    if (depth > 0)
        rec_a(depth - 1);
    else
        bottom();
    NO_TAIL();
    sink += pad[0];
}

struct deep_arg {
    int index;
    int depth;
};

NOINLINE static void *
deep_main(void *p)
{
    const struct deep_arg *a = p;
    char name[16];

    snprintf(name, sizeof(name), "deep-%d", a->index);
    pthread_setname_np(pthread_self(), name);
    rec_a(a->depth);
    NO_TAIL();
    return NULL;
}

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

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 600);
    int n = argc > 1 ? atoi(argv[1]) : 8;
    int depth = argc > 3 ? atoi(argv[3]) : 24;
    struct deep_arg *args;
    pthread_t first = 0;
    int i;

    if (argc > 2 && strcmp(argv[2], "spin") == 0)
        spin_mode = 1;
    else if (argc > 2 && strcmp(argv[2], "block") != 0)
        n = -1;
    if (argc > 4 || n < 1 || n > TGT_MAX_THREADS || depth < 0 || depth > 10000)
        tgt_die("usage: %s [--timeout N] [--gencore] [NTHREADS(1..%d) "
                "[spin|block [DEPTH]]]", tgt_prog, TGT_MAX_THREADS);
    args = calloc((size_t)n, sizeof(*args));
    if (!args)
        tgt_die("out of memory");
    for (i = 0; i < n; i++) {
        pthread_t t;

        args[i].index = i;
        args[i].depth = depth;
        /* 256 KiB is plenty for DEPTH 24; deeper runs get more. */
        t = tgt_spawn(deep_main, &args[i],
                      256 * 1024 + (size_t)depth * 512);
        if (i == 0)
            first = t;
    }
    tgt_wait_ready(n);
    tgt_say("READY");
    if (o.gencore)
        main_abort();
    main_wait(first);
    NO_TAIL();
    return 0;
}

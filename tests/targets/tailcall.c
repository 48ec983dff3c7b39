/* tailcall: threads parked behind chains of tail calls, for the tail-call
 * frames gdb rebuilds from DWARF call-site information (DW_TAG_call_site,
 * DW_AT_call_tail_call).  Built -O2 (see Makefile): every `return f(x);`
 * below that is marked TAIL becomes a jump, so the tail-calling function
 * leaves no frame on the stack.
 *
 *   thread    chain, outermost first (after start_thread); (t) = left by
 *             a tail call, rebuilt by gdb
 *   chain-0   chain_main -> chain_a (t) -> chain_b (t) -> chain_c (t) ->
 *             cond_leaf -> pthread_cond_wait
 *   single-0  single_main -> single (t) -> cond_leaf -> pthread_cond_wait
 *   ambig-0   ambig_main -> ambig_top (t) -> {ambig_x | ambig_y} (t) ->
 *             ambig_bottom -> pthread_cond_wait: two tail-call paths lead
 *             from ambig_top to ambig_bottom; gdb shows only the part
 *             every path shares (ambig_top), never a guess between them
 *   indirect  indirect_main -> indirect_jump (t, through a function
 *             pointer: no static target) -> cond_leaf -> pthread_cond_wait
 *   inline-0  inline_main -> inl_outer (t, the jump is in its inlined
 *             inl_helper: gdb names the frame inl_helper) -> cond_leaf ->
 *             pthread_cond_wait
 *   (main)    main -> pthread_join
 *
 * Each thread prints nothing of its own: gdb's `bt` is the truth the tests
 * compare with (the point is what gdb rebuilds).
 * --gencore: once every thread is parked, main prints READY and aborts.
 */
#include "common.h"

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cv = PTHREAD_COND_INITIALIZER;

/* Opaque to the optimizer: keeps branches and arguments real. */
static volatile int sink;

/* TAIL(f(x)): a call in tail position that must stay a jump. */
#define TAIL(call) return call

NOINLINE static int
cond_leaf(int w)
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
    return w;
}

/* ---- chain-0 ------------------------------------------------------------ */

NOINLINE static int
chain_c(int w)
{
    sink = w;
    TAIL(cond_leaf(w + 1));
}

NOINLINE static int
chain_b(int w)
{
    sink = w;
    TAIL(chain_c(w + 1));
}

NOINLINE static int
chain_a(int w)
{
    sink = w;
    TAIL(chain_b(w + 1));
}

NOINLINE static void *
chain_main(void *arg)
{
    pthread_setname_np(pthread_self(), "chain-0");
    sink = chain_a(sink);
    NO_TAIL();
    return arg;
}

/* ---- single-0: one tail call, the leaf() of the issue ------------------- */

NOINLINE static int
single(int w)
{
    sink = w;
    TAIL(cond_leaf(w));
}

NOINLINE static void *
single_main(void *arg)
{
    pthread_setname_np(pthread_self(), "single-0");
    sink = single(sink + 7);
    NO_TAIL();
    return arg;
}

/* ---- ambig-0: two paths ------------------------------------------------- */

NOINLINE static int
ambig_bottom(int w)
{
    return cond_leaf(w) + 1;
}

NOINLINE static int
ambig_x(int w)
{
    sink = w;
    TAIL(ambig_bottom(w + 1));
}

NOINLINE static int
ambig_y(int w)
{
    sink = w + 2;
    TAIL(ambig_bottom(w + 3));
}

NOINLINE static int
ambig_top(int w)
{
    if (sink == 12345)
        TAIL(ambig_y(w));
    TAIL(ambig_x(w));
}

NOINLINE static void *
ambig_main(void *arg)
{
    pthread_setname_np(pthread_self(), "ambig-0");
    sink = ambig_top(sink);
    NO_TAIL();
    return arg;
}

/* ---- inline-0: the tail call is made by an inlined function ------------- */

static inline __attribute__((always_inline)) int
inl_helper(int w)
{
    sink = w;
    TAIL(cond_leaf(w + 5));
}

NOINLINE static int
inl_outer(int w)
{
    sink = w + 1;
    TAIL(inl_helper(w));
}

NOINLINE static void *
inline_main(void *arg)
{
    pthread_setname_np(pthread_self(), "inline-0");
    sink = inl_outer(sink);
    NO_TAIL();
    return arg;
}

/* ---- indirect: a tail call through a pointer ---------------------------- */

static int (*volatile leaf_ptr)(int) = cond_leaf;

NOINLINE static int
indirect_jump(int w)
{
    sink = w;
    TAIL(leaf_ptr(w));
}

NOINLINE static void *
indirect_main(void *arg)
{
    pthread_setname_np(pthread_self(), "indirect");
    sink = indirect_jump(sink);
    NO_TAIL();
    return arg;
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    void *(*mains[])(void *) = {chain_main, single_main, ambig_main,
                                indirect_main, inline_main};
    pthread_t th[5];
    size_t i;

    for (i = 0; i < 5; i++)
        if (pthread_create(&th[i], NULL, mains[i], NULL))
            tgt_die("pthread_create failed");
    tgt_wait_ready(5);
    printf("READY\n");
    fflush(stdout);
    if (o.gencore)
        abort();
    pthread_join(th[0], NULL);
    return 0;
}

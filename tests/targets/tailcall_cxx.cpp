/* tailcall-cxx: C++ functions (a namespace, member functions, a
 * template) that leave by tail calls, for the tail-call frames gdb
 * rebuilds from DWARF call sites.  Built -O2 (see Makefile).
 *
 *   thread    chain, outermost first (after start_thread); (t) = left by
 *             a tail call
 *   member-0  member_main -> tc::Worker::run (t) -> tc::Worker::step (t)
 *             -> tc::park<int> -> pthread_cond_wait
 *   (main)    main -> pthread_join
 *
 * gdb's `bt` is the truth the tests compare with.
 * --gencore: once every thread is parked, main prints READY and aborts.
 */
#include "common.h"

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cv = PTHREAD_COND_INITIALIZER;
static volatile int sink;

namespace tc {

template <typename T>
NOINLINE T
park(T w)
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
    return w;
}

struct Worker {
    int base;
    NOINLINE int step(int w);
    NOINLINE int run(int w);
};

int
Worker::step(int w)
{
    sink = w + base;
    return park<int>(w + 1);
}

int
Worker::run(int w)
{
    sink = w;
    return step(w + 2);
}

}  // namespace tc

static tc::Worker worker = {3};

NOINLINE static void *
member_main(void *arg)
{
    pthread_setname_np(pthread_self(), "member-0");
    sink = worker.run(sink);
    NO_TAIL();
    return arg;
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    pthread_t th;

    if (pthread_create(&th, NULL, member_main, NULL))
        tgt_die("pthread_create failed");
    tgt_wait_ready(1);
    printf("READY\n");
    fflush(stdout);
    if (o.gencore)
        abort();
    pthread_join(th, NULL);
    return 0;
}

// cxx: C++ frames for symbolization tests (-O2 -g): template members, a
// lambda, a function in an anonymous namespace, an always_inline function
// (DW_TAG_inlined_subroutine at the blocking point) and a destructor that
// blocks while an exception is in flight.  Named threads, parked for good.
//
//   thread      chain, outermost first (after start_thread)
//   worker      worker_main -> ns::Worker<int>::run -> its lambda ->
//               inline_caller -> [inlined] inline_leaf -> read
//   worker-str  worker_str_main -> ns::Worker<std::string>::run -> its
//               lambda -> (anonymous namespace)::park_forever ->
//               pthread_cond_wait
//   unwinder    unwinder_main -> catcher -> thrower -> (landing pad)
//               Guard::~Guard -> dtor_block -> pthread_cond_wait
//   (main)      main -> main_wait -> pthread_join(worker)
//
// --gencore: once all are parked, main prints READY and calls
// main_abort -> abort().  --timeout N: alarm(N).
#include "common.h"

#include <stdexcept>
#include <string>
#include <type_traits>

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cv = PTHREAD_COND_INITIALIZER;
static int inline_pipe[2];      // never written: read() blocks forever
static volatile long sink;

namespace {

NOINLINE void
park_forever()
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
}

} // namespace

// Always inlined into inline_caller: the read() call site sits inside a
// DW_TAG_inlined_subroutine of inline_caller.
static inline __attribute__((always_inline)) void
inline_leaf(int fd)
{
    char c;

    tgt_arrive(TGT_READ);
    for (;;) {
        if (read(fd, &c, 1) < 0 && errno != EINTR)
            _exit(4);
        NO_TAIL();
    }
}

NOINLINE void
inline_caller()
{
    inline_leaf(inline_pipe[0]);
    NO_TAIL();
}

namespace ns {

template <typename T> struct Worker {
    T value;

    NOINLINE void
    run()
    {
        auto body = [this]() NOINLINE {
            sink += sizeof(value);
            if constexpr (std::is_same<T, int>::value)
                inline_caller();
            else
                park_forever();
            NO_TAIL();
        };
        body();
        NO_TAIL();
    }
};

} // namespace ns

NOINLINE void *
worker_main(void *)
{
    ns::Worker<int> w{42};

    pthread_setname_np(pthread_self(), "worker");
    w.run();
    NO_TAIL();
    return nullptr;
}

NOINLINE void *
worker_str_main(void *)
{
    ns::Worker<std::string> w{"forty-two"};

    pthread_setname_np(pthread_self(), "worker-str");
    w.run();
    NO_TAIL();
    return nullptr;
}

NOINLINE void
dtor_block()
{
    pthread_mutex_lock(&park_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&never_cv, &park_mu);
}

struct Guard {
    NOINLINE ~Guard()
    {
        dtor_block();
        NO_TAIL();
    }
};

struct Boom : std::runtime_error {
    Boom() : std::runtime_error("in flight") {}
};

NOINLINE void
thrower()
{
    Guard g;

    sink++;
    throw Boom();
}

NOINLINE void
catcher()
{
    try {
        thrower();
    } catch (const std::exception &e) {
        sink += (long)e.what()[0];
    }
    NO_TAIL();
}

NOINLINE void *
unwinder_main(void *)
{
    pthread_setname_np(pthread_self(), "unwinder");
    catcher();
    NO_TAIL();
    return nullptr;
}

NOINLINE void
main_wait(pthread_t t)
{
    pthread_join(t, nullptr);
    NO_TAIL();
}

NOINLINE void
main_abort()
{
    abort();
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    void *(*const mains[])(void *) = {worker_main, worker_str_main,
                                      unwinder_main};
    pthread_t first = 0;

    if (argc != 1)
        tgt_die("usage: %s [--timeout N] [--gencore]", tgt_prog);
    if (pipe(inline_pipe))
        tgt_die("pipe: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(mains) / sizeof(mains[0]); i++) {
        pthread_t t = tgt_spawn(mains[i], nullptr, 0);

        if (i == 0)
            first = t;
    }
    tgt_wait_ready(3);
    tgt_say("READY");
    if (o.gencore)
        main_abort();
    main_wait(first);
    NO_TAIL();
    return 0;
}

// cxx: C++ frames: a template member, a lambda, an always-inline function
// (DW_TAG_inlined_subroutine at the blocking point, -O2) and a destructor
// blocking while an exception is in flight.
//   worker:   ns::Worker<int>::run -> lambda -> inline_caller -> [inlined] inline_leaf -> wait
//   unwinder: catcher -> thrower -> (unwinding) Guard::~Guard -> dtor_block -> wait
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")

static std::mutex mu;
static std::condition_variable cv;
static int arrived_count;


static inline __attribute__((always_inline)) void inline_leaf()
{
    std::unique_lock<std::mutex> lk(mu);
    arrived_count++;
    for (;;)
        cv.wait(lk);
}

NOINLINE void inline_caller() { inline_leaf(); NO_TAIL(); }

namespace ns {
template <typename T> struct Worker {
    T value;
    NOINLINE void run()
    {
        auto body = [this]() __attribute__((noinline)) { if (value >= 0) inline_caller(); NO_TAIL(); };
        body();
        NO_TAIL();
    }
};
} // namespace ns

NOINLINE void dtor_block()
{
    std::unique_lock<std::mutex> lk(mu);
    arrived_count++;
    for (;;)
        cv.wait(lk);
}

struct Guard {
    NOINLINE ~Guard() { dtor_block(); NO_TAIL(); }
};

NOINLINE void thrower()
{
    Guard g;
    throw std::runtime_error("in flight");
}

NOINLINE void catcher()
{
    try {
        thrower();
    } catch (const std::exception &) {
    }
    NO_TAIL();
}

int main(int argc, char **argv)
{
    alarm(120);
    std::thread w([] { ns::Worker<int> wk{1}; wk.run(); });
    pthread_setname_np(w.native_handle(), "worker");
    std::thread u([] { catcher(); });
    pthread_setname_np(u.native_handle(), "unwinder");
    for (int i = 0; i < 2000; i++) {
        {
            std::lock_guard<std::mutex> g(mu);
            if (arrived_count >= 2)
                break;
        }
        usleep(1000);
    }
    usleep(20000);
    std::printf("READY\n");
    std::fflush(stdout);
    if (argc > 1 && std::strcmp(argv[1], "--gencore") == 0)
        abort();
    w.join();
    u.join();
}

// locks-cxx: the C++ standard library's locks parked in known situations,
// for the lock-wait analyzer (-O0 -g).  Same protocol as locks.c: main
// prints GT lines (tgt_say, write(2)), then READY, then blocks.
//
//   usage: locks-cxx [--timeout N] [--gencore] SCENARIO
//
//   GT thread <name> <tid>               every thread, main ("main") first
//   GT obj <symbol> 0x<address>          every lock object (globals)
//   GT edge <waiter> <kind> <symbol> <owner|->   (main's join included)
//
// Threads are std::threads: std::thread's _M_run -> (lambda) -> thr_entry
// (names itself, records its tid) -> a role:
//
//   scenario  thread  role -> blocking call
//   abba      t1      hold_then_lock: lock_guard(A) -> lock_guard(B)
//                     -> std::mutex::lock -> pthread_mutex_lock
//             t2      hold_then_lock: lock_guard(B) -> lock_guard(A)
//             (main)  main -> main_join -> std::thread::join(t1)
//   shared    w1      unique_park: unique_lock<shared_mutex>(SX) ->
//                     park_read -> read (pipe never written)
//             r1      shared_wait: shared_lock(SX) -> lock_shared ->
//                     pthread_rwlock_rdlock
//             w2      unique_wait: unique_lock(SX) -> lock ->
//                     pthread_rwlock_wrlock
//             (main)  main -> main_join -> std::thread::join(w1)
//   cv        c1 c2   cv_wait: unique_lock(CM) -> CV.wait (never notified)
//                     -> pthread_cond_wait
//             (main)  main -> main_join -> std::thread::join(c1)
//
// Waiters start only after the holder holds (its `held` flag, polled 10 s
// at most).  --gencore: main_abort -> abort() right after READY.
// --timeout N: alarm(N) instead of alarm(120).
#include "common.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

// ---- the lock objects (globals: they have symbols) -------------------------

std::mutex A, B;
std::shared_mutex SX;
std::condition_variable CV;
std::mutex CM;

static int park_pipe[2]; // nobody writes: read() blocks forever

struct Thr;
typedef void (*role_fn)(Thr &);

struct Thr {
    const char *name;
    role_fn role;
    std::mutex *hold = nullptr, *want = nullptr;
    Thr *peer = nullptr;
    std::atomic<pid_t> tid{0};
    std::atomic<bool> held{false};
    std::thread th;
};

// Never reallocated: threads keep pointers into it.
static Thr thrs[8];
static int nthr;

struct GtObj {
    const char *sym;
    const void *addr;
};
struct GtEdge {
    const char *waiter, *kind, *sym, *owner;
};
static std::vector<GtObj> gt_objs;
static std::vector<GtEdge> gt_edges;
static Thr *main_joins;

static void
await_held(Thr &t)
{
    for (int waited = 0; !t.held.load(std::memory_order_acquire); waited++) {
        if (waited >= 10000)
            tgt_die("%s did not take its lock within 10 s", t.name);
        tgt_sleep_ms(1);
    }
}

NOINLINE static void
thr_entry(Thr *t)
{
    pthread_setname_np(pthread_self(), t->name);
    t->tid.store(tgt_gettid(), std::memory_order_release);
    t->role(*t);
    NO_TAIL();
}

static Thr &
thr_new(const char *name, role_fn role)
{
    if (nthr >= (int)(sizeof(thrs) / sizeof(thrs[0])))
        tgt_die("too many threads");
    Thr &t = thrs[nthr++];
    t.name = name;
    t.role = role;
    return t;
}

static void
thr_start(Thr &t)
{
    Thr *p = &t;

    t.th = std::thread([p]() { thr_entry(p); });
}

// ---- roles -----------------------------------------------------------------

NOINLINE static void
park_read()
{
    char c;

    tgt_arrive(TGT_READ);
    for (;;)
        if (read(park_pipe[0], &c, 1) < 0 && errno != EINTR)
            tgt_die("park_read: %s", strerror(errno));
}

static void
got_it(Thr &self, const char *what)
{
    tgt_die("%s: %s returned", self.name, what);
}

NOINLINE static void
hold_then_lock(Thr &self)
{
    std::lock_guard<std::mutex> first(*self.hold);

    self.held.store(true, std::memory_order_release);
    await_held(*self.peer);
    tgt_arrive(TGT_FUTEX);
    std::lock_guard<std::mutex> second(*self.want);
    got_it(self, "std::mutex::lock");
}

NOINLINE static void
unique_park(Thr &self)
{
    std::unique_lock<std::shared_mutex> lk(SX);

    self.held.store(true, std::memory_order_release);
    park_read();
    NO_TAIL();
}

NOINLINE static void
shared_wait(Thr &self)
{
    tgt_arrive(TGT_FUTEX);
    std::shared_lock<std::shared_mutex> lk(SX);
    got_it(self, "std::shared_mutex::lock_shared");
}

NOINLINE static void
unique_wait(Thr &self)
{
    tgt_arrive(TGT_FUTEX);
    std::unique_lock<std::shared_mutex> lk(SX);
    got_it(self, "std::shared_mutex::lock");
}

NOINLINE static void
cv_wait(Thr &self)
{
    std::unique_lock<std::mutex> lk(CM);

    tgt_arrive(TGT_FUTEX);
    for (;;)
        CV.wait(lk);
}

// ---- scenarios -------------------------------------------------------------

static void
sc_abba()
{
    Thr &t1 = thr_new("t1", hold_then_lock);
    Thr &t2 = thr_new("t2", hold_then_lock);

    t1.hold = &A, t1.want = &B, t1.peer = &t2;
    t2.hold = &B, t2.want = &A, t2.peer = &t1;
    thr_start(t1);
    thr_start(t2);
    tgt_wait_ready(2);
    gt_objs.push_back({"A", &A});
    gt_objs.push_back({"B", &B});
    gt_edges.push_back({"t1", "mutex", "B", "t2"});
    gt_edges.push_back({"t2", "mutex", "A", "t1"});
    main_joins = &t1;
}

static void
sc_shared()
{
    Thr &w1 = thr_new("w1", unique_park);
    Thr &r1 = thr_new("r1", shared_wait);
    Thr &w2 = thr_new("w2", unique_wait);

    thr_start(w1);
    await_held(w1);
    thr_start(r1);
    thr_start(w2);
    tgt_wait_ready(3);
    gt_objs.push_back({"SX", &SX});
    gt_edges.push_back({"r1", "rwlock", "SX", "w1"});
    gt_edges.push_back({"w2", "rwlock", "SX", "w1"});
    main_joins = &w1;
}

static void
sc_cv()
{
    Thr &c1 = thr_new("c1", cv_wait);
    Thr &c2 = thr_new("c2", cv_wait);

    thr_start(c1);
    thr_start(c2);
    tgt_wait_ready(2);
    gt_objs.push_back({"CV", &CV});
    gt_objs.push_back({"CM", &CM});
    gt_edges.push_back({"c1", "cond", "CV", "-"});
    gt_edges.push_back({"c2", "cond", "CV", "-"});
    main_joins = &c1;
}

// ---- main ------------------------------------------------------------------

static void
say(const char *fmt, ...)
{
    char line[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= 63) // tgt_say cuts lines at 62 characters
        tgt_die("ground truth line too long");
    tgt_say(line);
}

NOINLINE static void
main_join(Thr &t)
{
    t.th.join();
    NO_TAIL();
}

NOINLINE static void
main_abort()
{
    abort();
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    static const struct {
        const char *name;
        void (*run)();
    } scenarios[] = {{"abba", sc_abba}, {"shared", sc_shared}, {"cv", sc_cv}};
    void (*run)() = nullptr;

    if (argc == 2)
        for (const auto &s : scenarios)
            if (strcmp(argv[1], s.name) == 0)
                run = s.run;
    if (!run)
        tgt_die("usage: %s [--timeout N] [--gencore] abba|shared|cv", tgt_prog);
    pthread_setname_np(pthread_self(), "main");
    if (pipe(park_pipe))
        tgt_die("pipe: %s", strerror(errno));

    run();
    say("GT thread main %d", (int)getpid());
    for (int i = 0; i < nthr; i++)
        say("GT thread %s %d", thrs[i].name,
            (int)thrs[i].tid.load(std::memory_order_acquire));
    for (const auto &g : gt_objs)
        say("GT obj %s %p", g.sym, g.addr);
    for (const auto &e : gt_edges)
        say("GT edge %s %s %s %s", e.waiter, e.kind, e.sym, e.owner);
    say("GT edge main join %s %s", main_joins->name, main_joins->name);
    tgt_say("READY");
    if (o.gencore)
        main_abort();
    main_join(*main_joins);
    NO_TAIL();
    return 0;
}

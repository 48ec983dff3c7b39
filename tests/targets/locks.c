/* locks: threads parked in known lock situations, for the lock-wait
 * analyzer (it decodes waits and owners from registers + memory).
 *
 *   usage: locks [--timeout N] [--gencore] SCENARIO
 *
 * Every lock is a global with the symbol named below.  Once the scenario is
 * in place main prints its ground truth on stdout, one line each (tgt_say,
 * write(2): never stdio), then READY, then blocks:
 *
 *   GT thread <name> <tid>               every thread, main ("main") first
 *   GT obj <symbol> 0x<address>          every lock object of the scenario
 *   GT edge <waiter> <kind> <symbol> <owner|->
 *        kind: mutex rwlock cond sem join stdio waitv futex; owner "-" when
 *        glibc records none; for join, symbol = owner = the joined thread.
 *        main's own final join is an edge too ("main join t1 t1").
 *   GT rwmode <waiter> read|write        the access an rwlock waiter asked for
 *
 * A waiter starts waiting only once its holder holds the lock (the holder
 * sets a "held" flag that main or the waiter polls, bounded 10 s).  READY
 * means: every thread arrived and is asleep in the syscall it announced
 * (tgt_wait_ready: futex for waiters, read for parked holders).  A target
 * that cannot get there exits 3 and says why.
 *
 * Threads run start_thread -> thr_entry (names itself, records its tid) ->
 * a role; the roles and their blocking calls:
 *   hold_then_lock   lock(hold) -> held -> [wait for peer's held] ->
 *                    pthread_mutex_lock(want)
 *   hold_park        lock(hold) [twice: recursive] -> held -> park_read ->
 *                    read (pipe never written)
 *   hold_exit        lock(hold) -> held -> returns (the thread exits)
 *   lock_wait        pthread_mutex_lock(want)
 *   timed_wait       pthread_mutex_timedlock(want, now + 1 h)
 *   wr_park/rd_park  pthread_rwlock_wrlock/rdlock(L) -> park_read -> read
 *   wr_wait/rd_wait  pthread_rwlock_wrlock/rdlock(L)
 *   cond_wait        pthread_mutex_lock(mu) -> pthread_cond_wait(cv, mu)
 *   sem_wait_role    sem_wait(SM)
 *   join_wait        pthread_join(peer)
 *   stdio_park       flockfile(stdout) -> park_read -> read
 *   stdio_wait       puts("x") (blocks in stdout's _IO_lock_t)
 *   waitv_wait       syscall(449 futex_waitv, {W1, W2}, 2, 0, NULL, 0)
 *   read_role        park_read -> read
 *   sleep_role       nanosleep (1000 s, forever)
 *   (main)           main -> main_join -> pthread_join, or
 *                    main -> main_read -> read (pipe never written)
 *
 *   scenario    threads (role: lock)                       main
 *   abba        t1 hold_then_lock A->B, t2 B->A             join t1
 *   cycle3      t0 M0->M1, t1 M1->M2, t2 M2->M0             join t0
 *   recursive   o hold_park R (twice), w lock_wait R         join o
 *   errorcheck  o hold_park E, w lock_wait E                 join o
 *   robust      o hold_park RB (robust), w lock_wait RB      join o
 *   adaptive    o hold_park AD (adaptive), w lock_wait AD    join o
 *   robust_pi   o hold_park RPI (robust + PI), w lock_wait   join o
 *   pi          o hold_park PI (prio inherit), w lock_wait   join o
 *   pshared     o hold_park PS (process shared), w lock_wait join o
 *   timedlock   o hold_park T, w timed_wait T                join o
 *   selfdead    t hold_then_lock S->S (normal mutex)         join t
 *   abandoned   gone hold_exit N (joined), w lock_wait N     read
 *   rw_writer   w1 wr_park L; r1 r2 rd_wait; w2 wr_wait      join w1
 *   rw_readers  r1 r2 rd_park L; w wr_wait L                 join r1
 *   rw_pw_writer  rw_writer on LW (PREFER_WRITER_NONRECURSIVE) join w1
 *   rw_pw_readers rw_readers on LW; then r3 rd_wait LW        join r1
 *               (r3 queues behind the waiting writer)
 *   lookalike   o hold_park MX; w waits on MX's word in         join o
 *               lookalike_pthread_rwlock_rdlock (GT: futex, no owner)
 *   cond_relock c cond_wait(CR, MR); o hold_signal MR: c waits  join o
 *               for MR inside pthread_cond_wait
 *   cond        c1 c2 cond_wait(C, M), never signalled       join c1
 *   sem         s1 s2 sem_wait_role (SM = 0)                 join s1
 *   join        t1 read_role; t2 join_wait(t1)               join t2
 *   stdio       o stdio_park; w stdio_wait                   join o
 *   waitv       v waitv_wait (W1 = W2 = 0)                   join v
 *   pileup      holder hold_park M; w00..w39 lock_wait M;    join holder
 *               x0 hold_then_lock N->M; x1 x2 x3 lock_wait N
 *   idle        pool-0..3 cond_wait(Q, QM); io read_role     read
 *   none        reader read_role; sleeper sleep_role         read
 *   net         o holds NET, reads a loopback TCP socket; w     join o
 *               lock_wait NET
 *   many        h00..h49 hold_park MANY[i]; m0000..m0999         read
 *               lock_wait MANY[i % 50] (benchmark; GT: threads only)
 *
 * waitv: tgt_wait_ready cannot check futex_waitv, so v arrives as TGT_SPIN
 * and main polls /proc/self/task/TID/syscall for "449 " (2 s at most).
 * --gencore: main aborts (main_abort) right after READY.
 * --timeout N: alarm(N) instead of alarm(120).
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <stdint.h>

/* ---- the lock objects (globals: they have symbols) ---------------------- */

pthread_mutex_t A = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t B = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t M0 = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t M1 = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t M2 = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t R;  /* recursive, set up in sc_recursive */
pthread_mutex_t E;  /* errorcheck */
pthread_mutex_t RB; /* robust */
pthread_mutex_t PI; /* priority inheritance */
pthread_mutex_t PS; /* process shared */
pthread_mutex_t T = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t S = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t N = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t MX = PTHREAD_MUTEX_INITIALIZER; /* lookalike */
pthread_mutex_t MR = PTHREAD_MUTEX_INITIALIZER; /* cond_relock */
pthread_cond_t CR = PTHREAD_COND_INITIALIZER;
pthread_rwlock_t L = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t LW; /* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP */
pthread_cond_t C = PTHREAD_COND_INITIALIZER;
pthread_cond_t Q = PTHREAD_COND_INITIALIZER;
pthread_mutex_t QM = PTHREAD_MUTEX_INITIALIZER;
sem_t SM;
uint32_t W1, W2;

static int park_pipe[2]; /* nobody writes: read() blocks forever */

/* ---- threads ------------------------------------------------------------ */

struct thr;
typedef void (*role_fn)(struct thr *);

struct thr {
    char name[16];
    role_fn role;
    pthread_t pt;
    pid_t tid;            /* written by the thread itself */
    int held;             /* set once it holds its lock(s) */
    int twice;            /* hold_park: lock `hold` twice (recursive) */
    pthread_mutex_t *hold;
    pthread_mutex_t *want;
    pthread_cond_t *cv;
    pthread_rwlock_t *rw; /* wr_park ... rd_wait: NULL is L */
    struct thr *peer;     /* hold_then_lock: wait for its held; join_wait */
};

#define MAX_THR 1100   /* many: 50 holders + 1000 waiters */
static struct thr thrs[MAX_THR];
static int nthr;

/* The ground truth, printed by main once everything is in place. */
struct gt_obj {
    const char *sym;
    const void *addr;
};
struct gt_edge {
    const char *waiter, *kind, *sym, *owner;
};
static struct gt_obj gt_objs[16];
static int ngt_objs;
static struct gt_edge gt_edges[64];
static int ngt_edges;
/* rwlock waiters: the access each asked for ("read" or "write") */
static struct gt_edge gt_rwmodes[16];
static int ngt_rwmodes;

static struct thr *main_joins; /* NULL: main blocks in main_read */
static struct thr *waitv_thr;  /* waitv: main polls its syscall */

static void
obj(const char *sym, const void *addr)
{
    if (ngt_objs >= (int)(sizeof(gt_objs) / sizeof(gt_objs[0])))
        tgt_die("too many objects");
    gt_objs[ngt_objs].sym = sym;
    gt_objs[ngt_objs].addr = addr;
    ngt_objs++;
}

static void
edge(const char *waiter, const char *kind, const char *sym, const char *owner)
{
    if (ngt_edges >= (int)(sizeof(gt_edges) / sizeof(gt_edges[0])))
        tgt_die("too many edges");
    gt_edges[ngt_edges].waiter = waiter;
    gt_edges[ngt_edges].kind = kind;
    gt_edges[ngt_edges].sym = sym;
    gt_edges[ngt_edges].owner = owner;
    ngt_edges++;
}

/* An rwlock edge, and the access the waiter asked for. */
static void
rwedge(const char *waiter, const char *sym, const char *owner,
       const char *mode)
{
    if (ngt_rwmodes >= (int)(sizeof(gt_rwmodes) / sizeof(gt_rwmodes[0])))
        tgt_die("too many rwlock waiters");
    edge(waiter, "rwlock", sym, owner);
    gt_rwmodes[ngt_rwmodes].waiter = waiter;
    gt_rwmodes[ngt_rwmodes].kind = mode;
    ngt_rwmodes++;
}

static void
mark_held(struct thr *t)
{
    __atomic_store_n(&t->held, 1, __ATOMIC_RELEASE);
}

/* Polls t->held (10 s at most): the holder holds its lock from then on. */
static void
await_held(struct thr *t)
{
    int waited;

    for (waited = 0; !__atomic_load_n(&t->held, __ATOMIC_ACQUIRE); waited++) {
        if (waited >= 10000)
            tgt_die("%s did not take its lock within 10 s", t->name);
        tgt_sleep_ms(1);
    }
}

static void *
thr_entry(void *arg)
{
    struct thr *t = arg;

    pthread_setname_np(pthread_self(), t->name);
    __atomic_store_n(&t->tid, tgt_gettid(), __ATOMIC_RELEASE);
    t->role(t);
    NO_TAIL();
    return NULL;
}

/* A thread slot, not started yet (so peers can point at each other). */
static struct thr *
thr_new(const char *name, role_fn role)
{
    struct thr *t;

    if (nthr >= MAX_THR)
        tgt_die("more than %d threads", MAX_THR);
    if (strlen(name) > 15)
        tgt_die("thread name %s longer than 15", name);
    t = &thrs[nthr++];
    memset(t, 0, sizeof(*t));
    strcpy(t->name, name);
    t->role = role;
    return t;
}

static void
thr_start(struct thr *t)
{
    t->pt = tgt_spawn(thr_entry, t, nthr > 64 ? 256 * 1024 : 0);
}

/* ---- roles -------------------------------------------------------------- */

NOINLINE static void
park_read(void)
{
    char c;

    tgt_arrive(TGT_READ);
    for (;;)
        if (read(park_pipe[0], &c, 1) < 0 && errno != EINTR)
            tgt_die("park_read: %s", strerror(errno));
}

static void
lock_or_die(struct thr *self, pthread_mutex_t *mu)
{
    int err = pthread_mutex_lock(mu);

    if (err)
        tgt_die("%s: pthread_mutex_lock: %s", self->name, strerror(err));
}

/* Called when a blocking call came back: the scenario is broken. */
static void
got_it(struct thr *self, const char *what)
{
    tgt_die("%s: %s returned", self->name, what);
}

NOINLINE static void
hold_then_lock(struct thr *self)
{
    lock_or_die(self, self->hold);
    mark_held(self);
    if (self->peer)
        await_held(self->peer);
    tgt_arrive(TGT_FUTEX);
    pthread_mutex_lock(self->want);
    got_it(self, "pthread_mutex_lock");
}

NOINLINE static void
hold_park(struct thr *self)
{
    lock_or_die(self, self->hold);
    if (self->twice)
        lock_or_die(self, self->hold);
    mark_held(self);
    park_read();
    NO_TAIL();
}

/* net: the TCP connection the holder reads from (nobody writes). */
static int net_fd = -1;

NOINLINE static void
hold_net(struct thr *self)
{
    char c;

    lock_or_die(self, self->hold);
    mark_held(self);
    tgt_arrive(TGT_READ);
    for (;;)
        if (read(net_fd, &c, 1) < 0 && errno != EINTR)
            tgt_die("hold_net: %s", strerror(errno));
    NO_TAIL();
}

NOINLINE static void
hold_exit(struct thr *self)
{
    lock_or_die(self, self->hold);
    mark_held(self);
}

NOINLINE static void
lock_wait(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    pthread_mutex_lock(self->want);
    got_it(self, "pthread_mutex_lock");
}

NOINLINE static void
timed_wait(struct thr *self)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3600;
    tgt_arrive(TGT_FUTEX);
    pthread_mutex_timedlock(self->want, &ts);
    got_it(self, "pthread_mutex_timedlock");
}

#define RWL(self) ((self)->rw ? (self)->rw : &L)

NOINLINE static void
wr_park(struct thr *self)
{
    int err = pthread_rwlock_wrlock(RWL(self));

    if (err)
        tgt_die("%s: wrlock: %s", self->name, strerror(err));
    mark_held(self);
    park_read();
    NO_TAIL();
}

NOINLINE static void
rd_park(struct thr *self)
{
    int err = pthread_rwlock_rdlock(RWL(self));

    if (err)
        tgt_die("%s: rdlock: %s", self->name, strerror(err));
    mark_held(self);
    park_read();
    NO_TAIL();
}

NOINLINE static void
wr_wait(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    pthread_rwlock_wrlock(RWL(self));
    got_it(self, "pthread_rwlock_wrlock");
}

NOINLINE static void
rd_wait(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    pthread_rwlock_rdlock(RWL(self));
    got_it(self, "pthread_rwlock_rdlock");
}

/* cond_relock's o: takes the mutex c waits with, wakes c, keeps it. */
NOINLINE static void
hold_signal(struct thr *self)
{
    lock_or_die(self, self->hold);
    pthread_cond_signal(self->cv);
    mark_held(self);
    park_read();
    NO_TAIL();
}

/* Not glibc's rdlock: a wait on the word of the mutex self->want (held
   by another thread) the way lll_lock waits (2: locked, with waiters),
   from a function whose name says rwlock: memory and stack disagree. */
NOINLINE static void
lookalike_pthread_rwlock_rdlock(struct thr *self)
{
    int *word = &self->want->__data.__lock;
    int one = 1;

    __atomic_compare_exchange_n(word, &one, 2, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        syscall(SYS_futex, word, 128 /* FUTEX_WAIT_PRIVATE */, 2, NULL,
                NULL, 0);
}

NOINLINE static void
lookalike_wait(struct thr *self)
{
    lookalike_pthread_rwlock_rdlock(self);
    NO_TAIL();
}

NOINLINE static void
cond_wait(struct thr *self)
{
    lock_or_die(self, self->hold);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(self->cv, self->hold);
}

NOINLINE static void
sem_wait_role(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    while (sem_wait(&SM) && errno == EINTR)
        ;
    got_it(self, "sem_wait");
}

NOINLINE static void
join_wait(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    pthread_join(self->peer->pt, NULL);
    got_it(self, "pthread_join");
}

NOINLINE static void
stdio_park(struct thr *self)
{
    flockfile(stdout);
    mark_held(self);
    park_read();
    NO_TAIL();
}

NOINLINE static void
stdio_wait(struct thr *self)
{
    tgt_arrive(TGT_FUTEX);
    puts("x");
    got_it(self, "puts");
}

/* struct futex_waitv of <linux/futex.h> (kernel 5.16+). */
struct lk_futex_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};
#define LK_SYS_futex_waitv 449
#define LK_FUTEX_32 2
#define LK_FUTEX_PRIVATE_FLAG 128

NOINLINE static void
waitv_wait(struct thr *self)
{
    struct lk_futex_waitv w[2] = {
        {0, (uint64_t)(uintptr_t)&W1, LK_FUTEX_32 | LK_FUTEX_PRIVATE_FLAG, 0},
        {0, (uint64_t)(uintptr_t)&W2, LK_FUTEX_32 | LK_FUTEX_PRIVATE_FLAG, 0},
    };

    /* Not checkable by tgt_wait_ready: main polls for syscall 449. */
    tgt_arrive(TGT_SPIN);
    for (;;)
        if (syscall(LK_SYS_futex_waitv, w, 2, 0, NULL, 0) < 0 &&
            errno != EINTR && errno != EAGAIN)
            tgt_die("%s: futex_waitv: %s", self->name, strerror(errno));
}

NOINLINE static void
read_role(struct thr *self)
{
    park_read();
    NO_TAIL();
}

NOINLINE static void
sleep_role(struct thr *self)
{
    struct timespec ts = {1000, 0};

    tgt_arrive(TGT_SLEEP);
    for (;;)
        nanosleep(&ts, NULL);
}

/* ---- scenarios: set up, wait until parked, record the ground truth ------ */

static void
init_mutex(pthread_mutex_t *mu, int type, int robust, int proto, int pshared)
{
    pthread_mutexattr_t at;
    int err;

    pthread_mutexattr_init(&at);
    if ((err = pthread_mutexattr_settype(&at, type)) ||
        (err = pthread_mutexattr_setrobust(&at, robust)) ||
        (err = pthread_mutexattr_setprotocol(&at, proto)) ||
        (err = pthread_mutexattr_setpshared(&at, pshared)) ||
        (err = pthread_mutex_init(mu, &at)))
        tgt_die("mutex attributes: %s", strerror(err));
    pthread_mutexattr_destroy(&at);
}

static void
sc_abba(void)
{
    struct thr *t1 = thr_new("t1", hold_then_lock);
    struct thr *t2 = thr_new("t2", hold_then_lock);

    t1->hold = &A, t1->want = &B, t1->peer = t2;
    t2->hold = &B, t2->want = &A, t2->peer = t1;
    thr_start(t1);
    thr_start(t2);
    tgt_wait_ready(2);
    obj("A", &A);
    obj("B", &B);
    edge("t1", "mutex", "B", "t2");
    edge("t2", "mutex", "A", "t1");
    main_joins = t1;
}

static void
sc_cycle3(void)
{
    static const char *const sym[3] = {"M0", "M1", "M2"};
    pthread_mutex_t *mu[3] = {&M0, &M1, &M2};
    struct thr *t[3];
    int i;

    t[0] = thr_new("t0", hold_then_lock);
    t[1] = thr_new("t1", hold_then_lock);
    t[2] = thr_new("t2", hold_then_lock);
    for (i = 0; i < 3; i++) {
        t[i]->hold = mu[i];
        t[i]->want = mu[(i + 1) % 3];
        t[i]->peer = t[(i + 1) % 3];
    }
    for (i = 0; i < 3; i++)
        thr_start(t[i]);
    tgt_wait_ready(3);
    for (i = 0; i < 3; i++)
        obj(sym[i], mu[i]);
    for (i = 0; i < 3; i++)
        edge(t[i]->name, "mutex", sym[(i + 1) % 3], t[(i + 1) % 3]->name);
    main_joins = t[0];
}

/* o holds `mu` (twice when recursive) and parks in read; w waits for it
 * (in `wait_role`). */
static void
owner_waiter(pthread_mutex_t *mu, const char *sym, int twice, role_fn wait_role)
{
    struct thr *o = thr_new("o", hold_park);
    struct thr *w = thr_new("w", wait_role);

    o->hold = mu, o->twice = twice;
    w->want = mu;
    thr_start(o);
    await_held(o);
    thr_start(w);
    tgt_wait_ready(2);
    obj(sym, mu);
    edge("w", "mutex", sym, "o");
    main_joins = o;
}

static void
sc_recursive(void)
{
    init_mutex(&R, PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_STALLED,
               PTHREAD_PRIO_NONE, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&R, "R", 1, lock_wait);
}

static void
sc_errorcheck(void)
{
    init_mutex(&E, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_STALLED,
               PTHREAD_PRIO_NONE, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&E, "E", 0, lock_wait);
}

pthread_mutex_t AD;

static void
sc_adaptive(void)
{
    init_mutex(&AD, PTHREAD_MUTEX_ADAPTIVE_NP, PTHREAD_MUTEX_STALLED,
               PTHREAD_PRIO_NONE, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&AD, "AD", 0, lock_wait);
}

/* robust + PI: the futex word carries the owner, FUTEX_LOCK_PI waits. */
pthread_mutex_t RPI;

static void
sc_robust_pi(void)
{
    init_mutex(&RPI, PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ROBUST,
               PTHREAD_PRIO_INHERIT, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&RPI, "RPI", 0, lock_wait);
}

static void
sc_robust(void)
{
    init_mutex(&RB, PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ROBUST,
               PTHREAD_PRIO_NONE, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&RB, "RB", 0, lock_wait);
}

static void
sc_pi(void)
{
    init_mutex(&PI, PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_STALLED,
               PTHREAD_PRIO_INHERIT, PTHREAD_PROCESS_PRIVATE);
    owner_waiter(&PI, "PI", 0, lock_wait);
}

static void
sc_pshared(void)
{
    init_mutex(&PS, PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_STALLED,
               PTHREAD_PRIO_NONE, PTHREAD_PROCESS_SHARED);
    owner_waiter(&PS, "PS", 0, lock_wait);
}

static void
sc_timedlock(void)
{
    owner_waiter(&T, "T", 0, timed_wait);
}

static void
sc_selfdead(void)
{
    struct thr *t = thr_new("t", hold_then_lock);

    t->hold = &S, t->want = &S;
    thr_start(t);
    tgt_wait_ready(1);
    obj("S", &S);
    edge("t", "mutex", "S", "t");
    main_joins = t;
}

static void
sc_abandoned(void)
{
    struct thr *gone = thr_new("gone", hold_exit);
    struct thr *w = thr_new("w", lock_wait);
    int err;

    gone->hold = &N;
    w->want = &N;
    thr_start(gone);
    if ((err = pthread_join(gone->pt, NULL)))
        tgt_die("join gone: %s", strerror(err));
    if (!__atomic_load_n(&gone->held, __ATOMIC_ACQUIRE))
        tgt_die("gone exited without N");
    thr_start(w);
    tgt_wait_ready(1);
    obj("N", &N);
    edge("w", "mutex", "N", "gone");
    main_joins = NULL;
}

static void
sc_rw_writer(void)
{
    struct thr *w1 = thr_new("w1", wr_park);
    struct thr *r1 = thr_new("r1", rd_wait);
    struct thr *r2 = thr_new("r2", rd_wait);
    struct thr *w2 = thr_new("w2", wr_wait);

    thr_start(w1);
    await_held(w1);
    thr_start(r1);
    thr_start(r2);
    thr_start(w2);
    tgt_wait_ready(4);
    obj("L", &L);
    rwedge("r1", "L", "w1", "read");
    rwedge("r2", "L", "w1", "read");
    rwedge("w2", "L", "w1", "write");
    main_joins = w1;
}

static void
sc_rw_readers(void)
{
    struct thr *r1 = thr_new("r1", rd_park);
    struct thr *r2 = thr_new("r2", rd_park);
    struct thr *w = thr_new("w", wr_wait);

    thr_start(r1);
    thr_start(r2);
    await_held(r1);
    await_held(r2);
    thr_start(w);
    tgt_wait_ready(3);
    obj("L", &L);
    rwedge("w", "L", "-", "write");
    main_joins = r1;
}

static void
init_rw_prefer_writer(void)
{
    pthread_rwlockattr_t at;
    int err;

    pthread_rwlockattr_init(&at);
    if ((err = pthread_rwlockattr_setkind_np(
             &at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP)) ||
        (err = pthread_rwlock_init(&LW, &at)))
        tgt_die("rwlock LW: %s", strerror(err));
    pthread_rwlockattr_destroy(&at);
}

/* rw_writer on LW (writer-preferring): the readers and the second writer
   wait for w1, which holds LW for writing. */
static void
sc_rw_pw_writer(void)
{
    struct thr *w1 = thr_new("w1", wr_park);
    struct thr *r1 = thr_new("r1", rd_wait);
    struct thr *r2 = thr_new("r2", rd_wait);
    struct thr *w2 = thr_new("w2", wr_wait);

    init_rw_prefer_writer();
    w1->rw = r1->rw = r2->rw = w2->rw = &LW;
    thr_start(w1);
    await_held(w1);
    thr_start(r1);
    thr_start(r2);
    thr_start(w2);
    tgt_wait_ready(4);
    obj("LW", &LW);
    rwedge("r1", "LW", "w1", "read");
    rwedge("r2", "LW", "w1", "read");
    rwedge("w2", "LW", "w1", "write");
    main_joins = w1;
}

/* rw_readers on LW: w waits for the readers r1 r2; once w waits, a new
   reader r3 queues behind it (a writer-preferring lock). */
static void
sc_rw_pw_readers(void)
{
    struct thr *r1 = thr_new("r1", rd_park);
    struct thr *r2 = thr_new("r2", rd_park);
    struct thr *w = thr_new("w", wr_wait);
    struct thr *r3 = thr_new("r3", rd_wait);

    init_rw_prefer_writer();
    r1->rw = r2->rw = w->rw = r3->rw = &LW;
    thr_start(r1);
    thr_start(r2);
    await_held(r1);
    await_held(r2);
    thr_start(w);
    tgt_wait_ready(3);
    thr_start(r3);
    tgt_wait_ready(4);
    obj("LW", &LW);
    rwedge("w", "LW", "-", "write");
    rwedge("r3", "LW", "-", "read");
    main_joins = r1;
}

/* w waits on MX's word (o holds MX) in lookalike_pthread_rwlock_rdlock:
   the memory is a held mutex, the stack an rwlock call; the truth pmprof
   must tell is that it cannot say which (an unnamed futex, no owner). */
static void
sc_lookalike(void)
{
    struct thr *o = thr_new("o", hold_park);
    struct thr *w = thr_new("w", lookalike_wait);

    o->hold = &MX;
    w->want = &MX;
    thr_start(o);
    await_held(o);
    thr_start(w);
    tgt_wait_ready(2);
    obj("MX", &MX);
    edge("w", "futex", "MX", "-");
    main_joins = o;
}

/* c, woken from pthread_cond_wait(CR, MR), waits to take MR again (inside
   pthread_cond_wait: a mutex wait under a condvar call); o holds MR. */
static void
sc_cond_relock(void)
{
    struct thr *c = thr_new("c", cond_wait);
    struct thr *o = thr_new("o", hold_signal);
    char path[64], want[40], buf[256];
    int waited;

    c->hold = &MR, c->cv = &CR;
    o->hold = &MR, o->cv = &CR;
    thr_start(c);
    tgt_wait_ready(1);
    thr_start(o);
    tgt_wait_ready(2);
    /* c is asleep on MR's word, not on CR's any more */
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)c->tid);
    snprintf(want, sizeof(want), "202 0x%lx ", (unsigned long)(uintptr_t)&MR);
    for (waited = 0;; waited++) {
        if (tgt_read_small(path, buf, sizeof(buf)) > 0 &&
            strncmp(buf, want, strlen(want)) == 0)
            break;
        if (waited >= 2000)
            tgt_die("c did not block on MR within 2 s");
        tgt_sleep_ms(1);
    }
    obj("MR", &MR);
    obj("CR", &CR);
    edge("c", "mutex", "MR", "o");
    main_joins = o;
}

static void
sc_cond(void)
{
    struct thr *c1 = thr_new("c1", cond_wait);
    struct thr *c2 = thr_new("c2", cond_wait);

    c1->hold = &M, c1->cv = &C;
    c2->hold = &M, c2->cv = &C;
    thr_start(c1);
    thr_start(c2);
    tgt_wait_ready(2);
    obj("C", &C);
    obj("M", &M);
    edge("c1", "cond", "C", "-");
    edge("c2", "cond", "C", "-");
    main_joins = c1;
}

static void
sc_sem(void)
{
    struct thr *s1 = thr_new("s1", sem_wait_role);
    struct thr *s2 = thr_new("s2", sem_wait_role);

    if (sem_init(&SM, 0, 0))
        tgt_die("sem_init: %s", strerror(errno));
    thr_start(s1);
    thr_start(s2);
    tgt_wait_ready(2);
    obj("SM", &SM);
    edge("s1", "sem", "SM", "-");
    edge("s2", "sem", "SM", "-");
    main_joins = s1;
}

static void
sc_join(void)
{
    struct thr *t1 = thr_new("t1", read_role);
    struct thr *t2 = thr_new("t2", join_wait);

    t2->peer = t1;
    thr_start(t1);
    thr_start(t2);
    tgt_wait_ready(2);
    edge("t2", "join", "t1", "t1");
    main_joins = t2;
}

static void
sc_stdio(void)
{
    struct thr *o = thr_new("o", stdio_park);
    struct thr *w = thr_new("w", stdio_wait);

    thr_start(o);
    await_held(o);
    thr_start(w);
    tgt_wait_ready(2);
    obj("stdout", stdout);
    edge("w", "stdio", "stdout", "o");
    main_joins = o;
}

static void
sc_waitv(void)
{
    struct thr *v = thr_new("v", waitv_wait);

    thr_start(v);
    tgt_wait_ready(1);
    waitv_thr = v;
    obj("W1", &W1);
    obj("W2", &W2);
    edge("v", "waitv", "W1", "-");
    edge("v", "waitv", "W2", "-");
    main_joins = v;
}

static void
sc_pileup(void)
{
    struct thr *holder = thr_new("holder", hold_park);
    struct thr *x0 = thr_new("x0", hold_then_lock);
    char name[16];
    int i;

    holder->hold = &M;
    x0->hold = &N, x0->want = &M;
    thr_start(holder);
    await_held(holder);
    thr_start(x0);
    await_held(x0);
    for (i = 0; i < 40; i++) {
        struct thr *w;

        snprintf(name, sizeof(name), "w%02d", i);
        w = thr_new(name, lock_wait);
        w->want = &M;
        thr_start(w);
    }
    for (i = 1; i <= 3; i++) {
        struct thr *x;

        snprintf(name, sizeof(name), "x%d", i);
        x = thr_new(name, lock_wait);
        x->want = &N;
        thr_start(x);
    }
    tgt_wait_ready(45);
    obj("M", &M);
    obj("N", &N);
    for (i = 0; i < nthr; i++) {
        struct thr *t = &thrs[i];

        if (t->want == &M)
            edge(t->name, "mutex", "M", "holder");
        else if (t->want == &N)
            edge(t->name, "mutex", "N", "x0");
    }
    main_joins = holder;
}

/* net: the holder of NET reads a loopback TCP connection that never
   delivers; w waits for NET. */
pthread_mutex_t NET = PTHREAD_MUTEX_INITIALIZER;

static void
sc_net(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int ls = socket(AF_INET, SOCK_STREAM, 0), cs = socket(AF_INET, SOCK_STREAM, 0);
    struct thr *o = thr_new("o", hold_net), *w = thr_new("w", lock_wait);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || cs < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) ||
        listen(ls, 1) || getsockname(ls, (struct sockaddr *)&a, &alen) ||
        connect(cs, (struct sockaddr *)&a, sizeof(a)))
        tgt_die("net: loopback TCP: %s", strerror(errno));
    net_fd = accept(ls, NULL, NULL);
    if (net_fd < 0)
        tgt_die("net: accept: %s", strerror(errno));
    o->hold = &NET;
    w->want = &NET;
    thr_start(o);
    await_held(o);
    thr_start(w);
    tgt_wait_ready(2);
    obj("NET", &NET);
    edge("w", "mutex", "NET", "o");
    main_joins = o;
}

/* many (benchmark): 50 holders parked in read, each holding one of
   MANY[0..49]; 1000 waiters, 20 per mutex.  Ground truth: threads only. */
pthread_mutex_t MANY[50];

static void
sc_many(void)
{
    char name[16];
    int i;

    for (i = 0; i < 50; i++) {
        struct thr *h;

        pthread_mutex_init(&MANY[i], NULL);
        snprintf(name, sizeof(name), "h%02d", i);
        h = thr_new(name, hold_park);
        h->hold = &MANY[i];
        thr_start(h);
        await_held(h);
    }
    for (i = 0; i < 1000; i++) {
        struct thr *w;

        snprintf(name, sizeof(name), "m%04d", i);
        w = thr_new(name, lock_wait);
        w->want = &MANY[i % 50];
        thr_start(w);
    }
    tgt_wait_ready(1050);
    main_joins = NULL;
}

static void
sc_idle(void)
{
    char name[16];
    int i;

    for (i = 0; i < 4; i++) {
        struct thr *p;

        snprintf(name, sizeof(name), "pool-%d", i);
        p = thr_new(name, cond_wait);
        p->hold = &QM, p->cv = &Q;
        thr_start(p);
    }
    thr_start(thr_new("io", read_role));
    tgt_wait_ready(5);
    obj("Q", &Q);
    obj("QM", &QM);
    for (i = 0; i < 4; i++)
        edge(thrs[i].name, "cond", "Q", "-");
    main_joins = NULL;
}

static void
sc_none(void)
{
    thr_start(thr_new("reader", read_role));
    thr_start(thr_new("sleeper", sleep_role));
    tgt_wait_ready(2);
    main_joins = NULL;
}

static const struct scenario {
    const char *name;
    void (*run)(void);
} scenarios[] = {
    {"abba", sc_abba},
    {"cycle3", sc_cycle3},
    {"recursive", sc_recursive},
    {"errorcheck", sc_errorcheck},
    {"robust", sc_robust},
    {"adaptive", sc_adaptive},
    {"robust_pi", sc_robust_pi},
    {"pi", sc_pi},
    {"pshared", sc_pshared},
    {"timedlock", sc_timedlock},
    {"selfdead", sc_selfdead},
    {"abandoned", sc_abandoned},
    {"rw_writer", sc_rw_writer},
    {"rw_readers", sc_rw_readers},
    {"rw_pw_writer", sc_rw_pw_writer},
    {"rw_pw_readers", sc_rw_pw_readers},
    {"lookalike", sc_lookalike},
    {"cond_relock", sc_cond_relock},
    {"cond", sc_cond},
    {"sem", sc_sem},
    {"join", sc_join},
    {"stdio", sc_stdio},
    {"waitv", sc_waitv},
    {"pileup", sc_pileup},
    {"idle", sc_idle},
    {"many", sc_many},
    {"net", sc_net},
    {"none", sc_none},
};

/* ---- main --------------------------------------------------------------- */

/* v must be asleep in futex_waitv: /proc/self/task/TID/syscall starts with
 * "449 " (the number only shows while it is blocked). */
static void
await_waitv(const struct thr *v)
{
    char path[64], buf[256];
    int waited;

    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)v->tid);
    for (waited = 0;; waited++) {
        if (tgt_read_small(path, buf, sizeof(buf)) > 0 &&
            strncmp(buf, "449 ", 4) == 0)
            return;
        if (waited >= 2000)
            tgt_die("%s did not block in futex_waitv within 2 s", v->name);
        tgt_sleep_ms(1);
    }
}

static void
say(const char *fmt, ...)
{
    char line[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= 63) /* tgt_say cuts lines at 62 characters */
        tgt_die("ground truth line too long");
    tgt_say(line);
}

static void
print_ground_truth(void)
{
    int i;

    say("GT thread main %d", (int)getpid());
    for (i = 0; i < nthr; i++)
        say("GT thread %s %d", thrs[i].name,
            (int)__atomic_load_n(&thrs[i].tid, __ATOMIC_ACQUIRE));
    for (i = 0; i < ngt_objs; i++)
        say("GT obj %s %p", gt_objs[i].sym, gt_objs[i].addr);
    for (i = 0; i < ngt_edges; i++)
        say("GT edge %s %s %s %s", gt_edges[i].waiter, gt_edges[i].kind,
            gt_edges[i].sym, gt_edges[i].owner);
    for (i = 0; i < ngt_rwmodes; i++)
        say("GT rwmode %s %s", gt_rwmodes[i].waiter, gt_rwmodes[i].kind);
    if (main_joins)
        say("GT edge main join %s %s", main_joins->name, main_joins->name);
}

NOINLINE static void
main_join(pthread_t t)
{
    pthread_join(t, NULL);
    NO_TAIL();
}

NOINLINE static void
main_read(void)
{
    char c;

    for (;;)
        if (read(park_pipe[0], &c, 1) < 0 && errno != EINTR)
            tgt_die("main_read: %s", strerror(errno));
}

NOINLINE static void
main_abort(void)
{
    abort();
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    const struct scenario *sc = NULL;
    size_t i;

    if (argc == 2)
        for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
            if (strcmp(argv[1], scenarios[i].name) == 0)
                sc = &scenarios[i];
    if (!sc)
        tgt_die("usage: %s [--timeout N] [--gencore] SCENARIO (abba cycle3 "
                "recursive errorcheck robust pi pshared timedlock selfdead "
                "abandoned rw_writer rw_readers rw_pw_writer rw_pw_readers "
                "lookalike cond_relock cond sem join stdio waitv "
                "pileup idle none many net adaptive robust_pi)", tgt_prog);
    pthread_setname_np(pthread_self(), "main");
    if (pipe(park_pipe))
        tgt_die("pipe: %s", strerror(errno));

    sc->run();
    if (waitv_thr)
        await_waitv(waitv_thr);
    print_ground_truth();
    tgt_say("READY");
    if (o.gencore)
        main_abort();
    if (main_joins)
        main_join(main_joins->pt);
    else
        main_read();
    NO_TAIL();
    return 0;
}

/*
 * locks.c: what a blocked thread waits for, from its registers and the
 * lock's memory alone (no libc debug info needed).
 *
 * Owns: decoding futex waits (futex(2), restart_syscall(2) after a ptrace
 * stop, futex_waitv(2)) into a struct pmp_wait: the object kind (mutex,
 * rwlock, condvar, semaphore, join, stdio lock), its address and, where
 * glibc records one, the owner TID and where it was read.  The layouts
 * come from the row of layout-glibc-nptl.h for the target's glibc release
 * (read from its libc); the order of the checks was verified for glibc
 * 2.36 x86_64 (shared/notes/locks-glibc.md, section 2) and holds for
 * every row: FUTEX_LOCK_PI and futex_waitv are what they say; a
 * FUTEX_WAIT or FUTEX_WAIT_BITSET (glibc picks per release and call) is
 * told apart by the expected value and the address offset inside the
 * object, strict signatures before loose ones (a stdio lock looks like a
 * mutex whose __owner is half a pointer).  A release without a row decodes
 * only what the kernel defines (PI futex words, futex_waitv): every
 * other wait is an unnamed futex, never another release's guess.
 *
 * Must not: trust target memory: every read is bounded and may fail; a
 * value that fails its signature means "unknown futex", never a guess.
 * Graph analysis (chains, cycles, root blockers) is the front-end's.
 */
#include <string.h>

#include <elfutils/libdwfl.h>

#include "layout-glibc-nptl.h"
#include "pmprof-internal.h"

#define SYS_FUTEX 202
#define SYS_RESTART 219
#define SYS_FUTEX_WAITV 449

#define FUTEX_CMD_MASK 0x7f
#define FUTEX_PRIVATE 0x80
#define FUTEX_WAIT 0
#define FUTEX_LOCK_PI 6
#define FUTEX_WAIT_BITSET 9
#define FUTEX_LOCK_PI2 13

#define FUTEX_WAITERS 0x80000000u
#define FUTEX_OWNER_DIED 0x40000000u
#define FUTEX_TID_MASK 0x3fffffffu

#define PID_MAX_LIMIT 4194304

/* Buffers for one object; every row's sizes are within (checked at use). */
#define MUTEX_MAX 64
#define RW_MAX 64
#define COND_MAX 64

/* pthread_rwlock_t.__readers bits (every release in the table) */
#define RW_WRPHASE 1u
#define RW_WRLOCKED 2u
#define RW_RWAITING 4u

const struct pmp_nptl_layout *
pmp_nptl_layout(const char *version)
{
    size_t i;

    for (i = 0; version && i < PMP_ARRAY_SIZE(pmp_nptl_layouts); i++)
        if (strcmp(pmp_nptl_layouts[i].version, version) == 0)
            return &pmp_nptl_layouts[i];
    return NULL;
}

const struct pmp_nptl_layout *
pmp_nptl_layout_at(size_t i)
{
    return i < PMP_ARRAY_SIZE(pmp_nptl_layouts) ? &pmp_nptl_layouts[i] : NULL;
}

size_t
pmp_nptl_layout_fields(size_t i, const char **version, const char **names,
                       int *values, size_t max)
{
    const struct pmp_nptl_layout *L = pmp_nptl_layout_at(i);
    size_t n = 0;

    if (!L)
        return 0;
    *version = L->version;
#define X(m)                                                                  \
    if (n < max) {                                                            \
        names[n] = #m;                                                        \
        values[n++] = (int)L->m;                                              \
    }
    PMP_NPTL_FIELDS(X)
#undef X
    return n;
}

int
pmp_session_glibc(struct pmp_session *s, const char **version)
{
    return pmp_session_nptl(s, version) != NULL;
}

const struct pmp_nptl_layout *
pmp_session_nptl(struct pmp_session *s, const char **version)
{
    if (!s->nptl_read) {
        Dwfl *dwfl = (Dwfl *)pmp_symbolizer_dwfl(s->sym);
        Dwfl_Module *libc = pmp_find_libc(dwfl);
        Dwarf_Addr bias = 0;

        if (libc)
            pmp_glibc_release(dwfl_module_getelf(libc, &bias), s->glibc,
                              sizeof(s->glibc));
        s->has_libc = libc != NULL;
        s->nptl = pmp_nptl_layout(s->glibc[0] ? s->glibc : NULL);
        /* libc not found yet (a live process before its modules are
           reported): ask again next time. */
        s->nptl_read = libc != NULL;
    }
    if (version)
        *version = s->has_libc ? s->glibc : NULL;
    return s->nptl;
}

static int
rd(struct pmp_target *t, uint64_t addr, void *buf, size_t len)
{
    if (addr < 4096 || addr > (UINT64_C(1) << 47))
        return 0;
    return pmp_target_read(t, addr, buf, len, NULL) == 0;
}

static int
plausible_tid(int64_t v)
{
    return v > 0 && v <= PID_MAX_LIMIT;
}

/* The thread whose struct pthread (fs_base) is pd, or 0. */
static int
tid_by_pd(const struct pmp_wait_ctx *c, uint64_t pd)
{
    size_t i;

    if (!pd)
        return 0;
    for (i = 0; i < c->n; i++)
        if (c->fs_base[i] == pd)
            return c->tids[i];
    return 0;
}

static int
known_tid(const struct pmp_wait_ctx *c, int tid)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->tids[i] == tid)
            return 1;
    return 0;
}

/* __kind holds only known bits. */
static int
plausible_mutex_kind(uint32_t k)
{
    return (k & ~(uint32_t)(3 | PMP_MUTEX_ROBUST | PMP_MUTEX_PI |
                            PMP_MUTEX_PP | PMP_MUTEX_PSHARED | 256 | 512)) ==
           0;
}

/* No fs_base known (a read without stopping): pd is a struct pthread if
   its first word points at itself (x86_64 TLS ABI: %fs:0 is the thread
   pointer) and its tid is a thread of the process; that tid, or 0. */
static int
tid_of_pd(struct pmp_target *t, const struct pmp_wait_ctx *c,
          const struct pmp_nptl_layout *L, uint64_t pd)
{
    uint64_t self = 0;
    uint32_t tid = 0;

    if (pd < 4096 || (pd & 7) || !rd(t, pd, &self, 8) || self != pd ||
        !rd(t, pd + L->pd_tid, &tid, 4) || !known_tid(c, (int)tid))
        return 0;
    return (int)tid;
}

/* pthread_join: the joined thread's struct pthread is some thread's
   fs_base (or, where fs_base is unknown, holds the TID of a thread of
   the process), and the word waited on holds what it holds while the
   thread runs (its TID, or THREAD_STATE_JOINABLE from 2.43 on). */
static int
decode_join(struct pmp_target *t, const struct pmp_wait_ctx *c,
            const struct pmp_nptl_layout *L, struct pmp_wait *w)
{
    uint64_t pd;
    int joined;

    if (w->futex < L->pd_join)
        return 0;
    pd = w->futex - L->pd_join;
    joined = tid_by_pd(c, pd);
    if (L->join_val < 0) {
        /* the word is the TID itself; a shared word equal to a TID of
           the process is a join too when no fs_base is known */
        if (!(joined && (uint32_t)joined == w->futex_val) &&
            !(!(w->futex_op & FUTEX_PRIVATE) && w->word == w->futex_val &&
              known_tid(c, (int)w->futex_val)))
            return 0;
        joined = (int)w->futex_val;
    } else {
        if (w->futex_val != (uint32_t)L->join_val || w->word != w->futex_val)
            return 0;
        if (!joined)
            joined = tid_of_pd(t, c, L, pd);
        if (!joined)
            return 0;
    }
    w->kind = PMP_WAIT_JOIN;
    w->object = pd;
    w->owner = joined;
    w->owner_source = PMP_OWNER_JOINED_TID;
    return 1;
}

/* stdio _IO_lock_t {int lock; int cnt; void *owner}: the owner is a
   struct pthread, i.e. some thread's fs_base.  lll_lock waits with 2. */
static int
decode_stdio(struct pmp_target *t, const struct pmp_wait_ctx *c,
             const struct pmp_nptl_layout *L, struct pmp_wait *w)
{
    uint64_t ptr = 0;
    uint32_t cnt = 0;
    int owner;

    if (w->futex_val != 2 || !rd(t, w->futex + L->io_owner, &ptr, 8) ||
        !rd(t, w->futex + L->io_cnt, &cnt, 4))
        return 0;
    if (cnt < L->io_cnt_once || cnt > 1000000)
        return 0;
    owner = tid_by_pd(c, ptr);
    if (!owner)
        owner = tid_of_pd(t, c, L, ptr);
    if (!owner)
        return 0;
    w->kind = PMP_WAIT_STDIO;
    w->object = w->futex;
    w->owner = owner;
    w->owner_source = PMP_OWNER_STDIO;
    w->count = (int)(cnt - L->io_cnt_once) + 1;
    return 1;
}

/* A mutex waiter sleeps on __lock: 2 (lll_lock), or owner |
   FUTEX_WAITERS for a robust mutex.  timed: a timedlock/clocklock. */
static int
decode_mutex(struct pmp_target *t, const struct pmp_nptl_layout *L,
             struct pmp_wait *w, int timed)
{
    unsigned char m[MUTEX_MAX];
    uint32_t kind;
    int owner;

    if ((w->futex & 3) || L->mutex_size > sizeof(m) ||
        !rd(t, w->futex, m, L->mutex_size))
        return 0;
    kind = pmp_u32at(m, L->m_kind);
    if (!plausible_mutex_kind(kind))
        return 0;
    /* Robust mutexes wait on the word itself: owner | FUTEX_WAITERS. */
    if ((w->futex_val & FUTEX_WAITERS) &&
        plausible_tid(w->futex_val & FUTEX_TID_MASK) &&
        (kind & PMP_MUTEX_ROBUST)) {
        w->owner = (int)(w->futex_val & FUTEX_TID_MASK);
        w->owner_died = (w->word & FUTEX_OWNER_DIED) != 0;
        w->owner_source = PMP_OWNER_FUTEX_WORD;
    } else {
        owner = (int)pmp_u32at(m, L->m_owner);
        if (w->futex_val != 2 || !plausible_tid(owner))
            return 0;
        w->owner = owner;
        w->owner_source = PMP_OWNER_MUTEX_OWNER;
    }
    w->kind = PMP_WAIT_MUTEX;
    w->object = w->futex;
    w->subkind = kind;
    w->count = (int)pmp_u32at(m, L->m_count);
    if (timed)
        w->timed = 1;
    return 1;
}

/* A pthread_rwlock_t at base: the padding is zero, flags and shared small. */
static int
rwlock_at(struct pmp_target *t, const struct pmp_nptl_layout *L,
          uint64_t base, unsigned char *rw)
{
    if ((base & 7) || L->rw_size > RW_MAX || !rd(t, base, rw, L->rw_size))
        return 0;
    return pmp_u32at(rw, L->rw_pad3) == 0 && pmp_u32at(rw, L->rw_pad4) == 0 &&
           pmp_u64at(rw, L->rw_pad2) == 0 && pmp_u32at(rw, L->rw_flags) <= 2 &&
           pmp_u32at(rw, L->rw_shared) <= 1 && rw[L->rw_elision] <= 1;
}

static int
decode_rwlock(struct pmp_target *t, const struct pmp_nptl_layout *L,
              struct pmp_wait *w)
{
    unsigned char rw[RW_MAX];
    uint32_t readers;
    int writer;

    /* A writer waiting for the writer: __writers_futex. */
    if (w->futex >= L->rw_writers_futex &&
        rwlock_at(t, L, w->futex - L->rw_writers_futex, rw) &&
        (w->futex_val & 1) && (pmp_u32at(rw, 0) & RW_WRLOCKED)) {
        readers = pmp_u32at(rw, 0);
        writer = (int)pmp_u32at(rw, L->rw_cur_writer);
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex - L->rw_writers_futex;
        w->subkind = PMP_RW_WRITER_FOR_WRITER;
        w->readers = (readers & RW_WRPHASE) ? -1 : (int)(readers >> 3);
        if (plausible_tid(writer)) {
            w->owner = writer;
            w->owner_source = PMP_OWNER_CUR_WRITER;
        }
        return 1;
    }
    /* __wrphase_futex: a reader in a write phase waits for the writer;
       a writer in a read phase waits for the readers. */
    if (w->futex >= L->rw_wrphase_futex &&
        rwlock_at(t, L, w->futex - L->rw_wrphase_futex, rw) &&
        (w->futex_val & ~3u) == 0 && (pmp_u32at(rw, 0) & RW_WRLOCKED)) {
        readers = pmp_u32at(rw, 0);
        writer = (int)pmp_u32at(rw, L->rw_cur_writer);
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex - L->rw_wrphase_futex;
        if (readers & RW_WRPHASE) {
            w->subkind = PMP_RW_READER_FOR_WRITER;
            if (plausible_tid(writer)) {
                w->owner = writer;
                w->owner_source = PMP_OWNER_CUR_WRITER;
            }
        } else {
            w->subkind = PMP_RW_WRITER_FOR_READERS;
            w->readers = (int)(readers >> 3);
        }
        return 1;
    }
    /* __readers (+0) with RWAITING: a reader queued behind a waiting
       writer (writer-preferring locks). */
    if (rwlock_at(t, L, w->futex, rw) && (w->futex_val & RW_RWAITING) &&
        w->futex_val == pmp_u32at(rw, 0)) {
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex;
        w->subkind = PMP_RW_READER_QUEUED;
        w->readers = (int)(pmp_u32at(rw, 0) >> 3);
        return 1;
    }
    return 0;
}

/* Condvar waiters sleep on __g_signals[g] expecting 0; the condvar is
   8-byte aligned, which says which g.  __wrefs >> 3 counts the waiters.
   Up to 2.36 a blocked waiter holds a __g_refs[g] reference (>= 2); from
   2.41 on, the two trailing words stay 0 and __wseq (2 per wait) has
   counted at least the current waiters. */
static int
decode_cond(struct pmp_target *t, const struct pmp_nptl_layout *L,
            struct pmp_wait *w)
{
    unsigned char cv[COND_MAX];
    unsigned g = (unsigned)(w->futex & 4) >> 2;
    uint64_t base;
    uint32_t wrefs, waiters;

    if (w->futex_val != 0 || (w->futex & 3) ||
        w->futex < (uint64_t)L->c_g_signals + 4 * g)
        return 0;
    base = w->futex - L->c_g_signals - 4 * g;
    if ((base & 7) || L->cond_size > sizeof(cv) ||
        !rd(t, base, cv, L->cond_size))
        return 0;
    wrefs = pmp_u32at(cv, L->c_wrefs);
    waiters = wrefs >> 3;
    if (waiters < 1 || waiters > PID_MAX_LIMIT)
        return 0;
    if (L->c_g_refs != PMP_NPTL_NONE) {
        if (pmp_u32at(cv, L->c_g_refs + 4 * (size_t)g) < 2)
            return 0;
    } else {
        if (L->c_unused == PMP_NPTL_NONE || pmp_u64at(cv, L->c_unused) != 0 ||
            (pmp_u64at(cv, L->c_wseq) >> 1) < waiters)
            return 0;
    }
    w->kind = PMP_WAIT_COND;
    w->object = base;
    w->waiters = (int)waiters;
    return 1;
}

/* sem_t: value (low 32 bits of data) == expected, nwaiters >= 1. */
static int
decode_sem(struct pmp_target *t, const struct pmp_nptl_layout *L,
           struct pmp_wait *w)
{
    unsigned char s[16];
    uint32_t priv;

    if ((w->futex & 7) || !rd(t, w->futex, s, sizeof(s)))
        return 0;
    priv = pmp_u32at(s, L->sem_private);
    if (pmp_u32at(s, L->sem_value) != w->futex_val ||
        pmp_u32at(s, L->sem_nwaiters) < 1 ||
        pmp_u32at(s, L->sem_nwaiters) > PID_MAX_LIMIT ||
        (priv != 0 && priv != 128))
        return 0;
    w->kind = PMP_WAIT_SEM;
    w->object = w->futex;
    w->count = (int)pmp_u32at(s, L->sem_value);
    w->waiters = (int)pmp_u32at(s, L->sem_nwaiters);
    return 1;
}

/* FUTEX_WAIT and FUTEX_WAIT_BITSET: glibc picks one or the other per
   release and per call (2.31 joins and waits on condvars with
   FUTEX_WAIT, 2.36 with FUTEX_WAIT_BITSET), so both try every kind;
   the op only orders the checks the way each op's common waits need. */
static void
decode_futex_wait(struct pmp_target *t, const struct pmp_wait_ctx *c,
                  const struct pmp_nptl_layout *L, struct pmp_wait *w,
                  unsigned cmd)
{
    if (decode_join(t, c, L, w) || decode_stdio(t, c, L, w))
        return;
    /* Condvars before rwlocks: a rwlock's signature is mostly zeros,
       which the bytes around a condvar can also be. */
    if (cmd == FUTEX_WAIT) {
        if (decode_mutex(t, L, w, 0) || decode_cond(t, L, w) ||
            decode_rwlock(t, L, w) || decode_sem(t, L, w))
            return;
    } else {
        if (decode_cond(t, L, w) || decode_rwlock(t, L, w) ||
            decode_mutex(t, L, w, 1) || decode_sem(t, L, w))
            return;
    }
    /* A glibc-internal lock (malloc arena, a stdio lock without owner
       ...): nothing says who holds it. */
    w->kind = PMP_WAIT_FUTEX;
}

static void
decode_waitv(struct pmp_target *t, const struct pmp_regs *rg,
             struct pmp_wait *w)
{
    uint64_t arr = rg->r[PMP_REG_RDI], n = rg->r[PMP_REG_RSI], i;

    w->kind = PMP_WAIT_WAITV;
    w->syscall = SYS_FUTEX_WAITV;
    w->object = arr;
    if (n > 128)
        n = 0;
    for (i = 0; i < n && w->nwaitv < PMP_WAITV_MAX; i++) {
        unsigned char e[24];
        if (!rd(t, arr + 24 * i, e, sizeof(e)))
            break;
        w->waitv_addr[w->nwaitv] = pmp_u64at(e, 8);
        w->waitv_val[w->nwaitv] = (uint32_t)pmp_u64at(e, 0);
        w->nwaitv++;
    }
    w->waiters = (int)n;
}

void
pmp_decode_wait(struct pmp_target *t, const struct pmp_regs *rg,
                const struct pmp_wait_ctx *c, struct pmp_wait *w)
{
    int64_t nr = (int64_t)rg->orig_rax;
    unsigned cmd;

    memset(w, 0, sizeof(*w));
    w->readers = w->waiters = -1;
    if (nr == SYS_FUTEX_WAITV) {
        decode_waitv(t, rg, w);
        return;
    }
    if (nr != SYS_FUTEX && nr != SYS_RESTART)
        return;
    w->futex = rg->r[PMP_REG_RDI];
    w->futex_op = (uint32_t)rg->r[PMP_REG_RSI];
    w->futex_val = (uint32_t)rg->r[PMP_REG_RDX];
    cmd = w->futex_op & FUTEX_CMD_MASK;
    /* A timed wait that was ptrace-stopped continues as restart_syscall
       with the futex arguments still in rdi/rsi/rdx. */
    if (nr == SYS_RESTART &&
        (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET &&
         cmd != FUTEX_LOCK_PI && cmd != FUTEX_LOCK_PI2)) {
        w->futex = 0;
        return;
    }
    w->syscall = (int)nr;
    if (!rd(t, w->futex, &w->word, 4)) {
        /* restart_syscall may restart anything (nanosleep, poll ...):
           only a readable futex word makes it a futex wait. */
        if (nr == SYS_RESTART)
            memset(w, 0, sizeof(*w));
        else
            w->kind = PMP_WAIT_FUTEX;
        return;
    }
    if (nr == SYS_RESTART && (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) &&
        w->word != w->futex_val) {
        memset(w, 0, sizeof(*w));
        return;
    }
    w->timed = rg->r[PMP_REG_R10] != 0 && cmd != FUTEX_LOCK_PI2 &&
               cmd != FUTEX_LOCK_PI;
    switch (cmd) {
    case FUTEX_LOCK_PI:
    case FUTEX_LOCK_PI2: {
        /* The word is the owner TID: the kernel's rule, any release. */
        uint32_t kind = PMP_MUTEX_PI;
        if (c->nptl)
            rd(t, w->futex + c->nptl->m_kind, &kind, 4);
        w->kind = PMP_WAIT_MUTEX;
        w->object = w->futex;
        w->subkind = plausible_mutex_kind(kind) ? kind : PMP_MUTEX_PI;
        w->timed = rg->r[PMP_REG_R10] != 0;
        if (plausible_tid(w->word & FUTEX_TID_MASK)) {
            w->owner = (int)(w->word & FUTEX_TID_MASK);
            w->owner_source = PMP_OWNER_FUTEX_WORD;
            w->owner_died = (w->word & FUTEX_OWNER_DIED) != 0;
        }
        return;
    }
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
        if (c->nptl)
            decode_futex_wait(t, c, c->nptl, w, cmd);
        else
            w->kind = PMP_WAIT_FUTEX;
        return;
    default:
        w->kind = PMP_WAIT_FUTEX;
        return;
    }
}

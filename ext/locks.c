/*
 * locks.c: what a blocked thread waits for, from its registers and the
 * lock's memory alone (no libc debug info needed).
 *
 * Owns: decoding futex waits (futex(2), restart_syscall(2) after a ptrace
 * stop, futex_waitv(2)) into a struct pmp_wait: the object kind (mutex,
 * rwlock, condvar, semaphore, join, stdio lock), its address and, where
 * glibc records one, the owner TID and where it was read.  The layouts
 * and the order of the checks are those verified for glibc 2.36 x86_64
 * (shared/notes/locks-glibc.md, section 2): the futex op splits the
 * world, the address offset inside the object and the expected value
 * finish the job, and strict signatures come before loose ones (a stdio
 * lock looks like a mutex whose __owner is half a pointer).
 *
 * Must not: trust target memory: every read is bounded and may fail; a
 * value that fails its signature means "unknown futex", never a guess.
 * Graph analysis (chains, cycles, root blockers) is the front-end's.
 */
#include <string.h>

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
#define PTHREAD_TID_OFF 0x2d0   /* struct pthread.tid (glibc 2.36 x86_64) */

/* pthread_mutex_t */
#define MUTEX_SIZE 40
/* pthread_rwlock_t */
#define RW_SIZE 56
#define RW_WRPHASE 1u
#define RW_WRLOCKED 2u
#define RW_RWAITING 4u
/* pthread_cond_t */
#define COND_SIZE 48

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

/* FUTEX_WAIT: mutex, robust mutex, stdio lock, or a low-level lock. */
static void
decode_wait(struct pmp_target *t, const struct pmp_wait_ctx *c,
            struct pmp_wait *w)
{
    unsigned char m[MUTEX_SIZE];
    uint64_t ptr;
    uint32_t kind;
    int owner;

    if (!rd(t, w->futex, m, sizeof(m))) {
        w->kind = PMP_WAIT_FUTEX;
        return;
    }
    /* stdio _IO_lock_t {int lock; int cnt; void *owner}: the owner is a
       struct pthread, i.e. some thread's fs_base. */
    ptr = pmp_u64at(m, 8);
    owner = tid_by_pd(c, ptr);
    if (!owner && pmp_u32at(m, 4) >= 1 && pmp_u32at(m, 4) < 1000000 &&
        ptr >= 4096 && !(ptr & 7)) {
        /* No fs_base known (a read without stopping): the pointer must
           lead to the tid of a thread of the process. */
        uint32_t tid = 0;
        if (rd(t, ptr + PTHREAD_TID_OFF, &tid, 4) &&
            known_tid(c, (int)tid))
            owner = (int)tid;
    }
    if (owner && pmp_u32at(m, 4) >= 1) {
        w->kind = PMP_WAIT_STDIO;
        w->object = w->futex;
        w->owner = owner;
        w->owner_source = PMP_OWNER_STDIO;
        w->count = (int)pmp_u32at(m, 4);
        return;
    }
    kind = pmp_u32at(m, 16);
    /* Robust mutexes wait on the word itself: owner | FUTEX_WAITERS. */
    if ((w->futex_val & FUTEX_WAITERS) &&
        plausible_tid(w->futex_val & FUTEX_TID_MASK) &&
        plausible_mutex_kind(kind) && (kind & PMP_MUTEX_ROBUST)) {
        w->kind = PMP_WAIT_MUTEX;
        w->object = w->futex;
        w->subkind = kind;
        w->owner = (int)(w->futex_val & FUTEX_TID_MASK);
        w->owner_died = (w->word & FUTEX_OWNER_DIED) != 0;
        w->owner_source = PMP_OWNER_FUTEX_WORD;
        w->count = (int)pmp_u32at(m, 4);
        return;
    }
    owner = (int)pmp_u32at(m, 8);
    if (plausible_mutex_kind(kind) && plausible_tid(owner)) {
        w->kind = PMP_WAIT_MUTEX;
        w->object = w->futex;
        w->subkind = kind;
        w->owner = owner;
        w->owner_source = PMP_OWNER_MUTEX_OWNER;
        w->count = (int)pmp_u32at(m, 4);
        return;
    }
    /* A glibc-internal lock (malloc arena, a stdio lock without owner
       ...): nothing says who holds it. */
    w->kind = PMP_WAIT_FUTEX;
}

/* A pthread_rwlock_t at base: the padding is zero, flags and shared small. */
static int
rwlock_at(struct pmp_target *t, uint64_t base, unsigned char *rw)
{
    if (!rd(t, base, rw, RW_SIZE))
        return 0;
    return pmp_u32at(rw, 16) == 0 && pmp_u32at(rw, 20) == 0 && pmp_u64at(rw, 40) == 0 &&
           pmp_u32at(rw, 48) <= 2 && pmp_u32at(rw, 28) <= 1 && rw[32] <= 1;
}

static int
decode_rwlock(struct pmp_target *t, struct pmp_wait *w)
{
    unsigned char rw[RW_SIZE];
    uint32_t readers;
    int writer;

    /* A writer waiting for the writer: __writers_futex (+12). */
    if (w->futex >= 12 && rwlock_at(t, w->futex - 12, rw) &&
        (w->futex_val & 1) && (pmp_u32at(rw, 0) & RW_WRLOCKED)) {
        readers = pmp_u32at(rw, 0);
        writer = (int)pmp_u32at(rw, 24);
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex - 12;
        w->subkind = PMP_RW_WRITER_FOR_WRITER;
        w->readers = (readers & RW_WRPHASE) ? -1 : (int)(readers >> 3);
        if (plausible_tid(writer)) {
            w->owner = writer;
            w->owner_source = PMP_OWNER_CUR_WRITER;
        }
        return 1;
    }
    /* __wrphase_futex (+8): a reader in a write phase waits for the
       writer; a writer in a read phase waits for the readers. */
    if (w->futex >= 8 && rwlock_at(t, w->futex - 8, rw) &&
        (w->futex_val & ~3u) == 0 && (pmp_u32at(rw, 0) & RW_WRLOCKED)) {
        readers = pmp_u32at(rw, 0);
        writer = (int)pmp_u32at(rw, 24);
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex - 8;
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
    if (rwlock_at(t, w->futex, rw) && (w->futex_val & RW_RWAITING) &&
        w->futex_val == pmp_u32at(rw, 0)) {
        w->kind = PMP_WAIT_RWLOCK;
        w->object = w->futex;
        w->subkind = PMP_RW_READER_QUEUED;
        w->readers = (int)(pmp_u32at(rw, 0) >> 3);
        return 1;
    }
    return 0;
}

/* Condvar waiters sleep on __g_signals[g] (+40 or +44). */
static int
decode_cond(struct pmp_target *t, struct pmp_wait *w)
{
    unsigned char cv[COND_SIZE];
    int g;

    for (g = 0; g < 2; g++) {
        uint64_t base = w->futex - 40 - 4 * (uint64_t)g;
        uint32_t wrefs;

        if (w->futex < 44 || !rd(t, base, cv, sizeof(cv)))
            continue;
        wrefs = pmp_u32at(cv, 36);
        if ((wrefs >> 3) < 1 || (wrefs >> 3) > PID_MAX_LIMIT)
            continue;
        if (pmp_u32at(cv, 16 + 4 * (size_t)g) < 2)   /* __g_refs[g] */
            continue;
        w->kind = PMP_WAIT_COND;
        w->object = base;
        w->waiters = (int)(wrefs >> 3);
        return 1;
    }
    return 0;
}

/* sem_t: value (low 32 bits of data) == expected, nwaiters >= 1. */
static int
decode_sem(struct pmp_target *t, struct pmp_wait *w)
{
    unsigned char s[16];
    uint32_t priv;

    if ((w->futex & 7) || !rd(t, w->futex, s, sizeof(s)))
        return 0;
    priv = pmp_u32at(s, 8);
    if (pmp_u32at(s, 0) != w->futex_val || pmp_u32at(s, 4) < 1 ||
        pmp_u32at(s, 4) > PID_MAX_LIMIT || (priv != 0 && priv != 128))
        return 0;
    w->kind = PMP_WAIT_SEM;
    w->object = w->futex;
    w->count = (int)pmp_u32at(s, 0);
    w->waiters = (int)pmp_u32at(s, 4);
    return 1;
}

/* FUTEX_WAIT_BITSET: join, rwlock, condvar, semaphore, timed mutex. */
static void
decode_bitset(struct pmp_target *t, const struct pmp_wait_ctx *c,
              struct pmp_wait *w)
{
    unsigned char m[MUTEX_SIZE];
    int joined = w->futex >= PTHREAD_TID_OFF
                     ? tid_by_pd(c, w->futex - PTHREAD_TID_OFF)
                     : 0;

    /* pthread_join waits on the joined thread's tid word, expecting it. */
    if ((joined && (uint32_t)joined == w->futex_val) ||
        (!(w->futex_op & FUTEX_PRIVATE) && w->word == w->futex_val &&
         known_tid(c, (int)w->futex_val))) {
        w->kind = PMP_WAIT_JOIN;
        w->object = w->futex - PTHREAD_TID_OFF;
        w->owner = (int)w->futex_val;
        w->owner_source = PMP_OWNER_JOINED_TID;
        return;
    }
    /* Condvars before rwlocks: a rwlock's signature is mostly zeros,
       which the bytes around a condvar can also be. */
    if (decode_cond(t, w))
        return;
    if (decode_rwlock(t, w))
        return;
    /* pthread_mutex_timedlock/clocklock: val 2 on __lock. */
    if (w->futex_val == 2 && rd(t, w->futex, m, sizeof(m)) &&
        plausible_mutex_kind(pmp_u32at(m, 16)) && plausible_tid(pmp_u32at(m, 8))) {
        w->kind = PMP_WAIT_MUTEX;
        w->object = w->futex;
        w->subkind = pmp_u32at(m, 16);
        w->owner = (int)pmp_u32at(m, 8);
        w->owner_source = PMP_OWNER_MUTEX_OWNER;
        w->count = (int)pmp_u32at(m, 4);
        w->timed = 1;
        return;
    }
    if (decode_sem(t, w))
        return;
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
        uint32_t kind = PMP_MUTEX_PI;
        rd(t, w->futex + 16, &kind, 4);
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
        decode_wait(t, c, w);
        return;
    case FUTEX_WAIT_BITSET:
        decode_bitset(t, c, w);
        return;
    default:
        w->kind = PMP_WAIT_FUTEX;
        return;
    }
}

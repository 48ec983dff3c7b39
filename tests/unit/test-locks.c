/*
 * test-locks.c: the futex-wait decoder (ext/inspect/locks.c) over crafted memory
 * (a buffer target): every object kind laid out as glibc 2.36 x86_64
 * lays it out, what 2.41 (condvar) and 2.43 (join) changed, a release
 * without a layout row, the ownerless kinds, restart_syscall, and hostile
 * memory (unreadable words, random bytes, every row and none) that must
 * decode to "unknown futex" or nothing, never crash.  Exit status 0 / 1;
 * last line "N passed, M failed".
 */
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "unit.h"

#define BASE UINT64_C(0x555500000000)
#define SIZE 8192
#define PD1 (BASE + 0x1000)     /* a struct pthread (fs_base of tid 101) */

static unsigned char mem[SIZE];
static const int tids[] = {100, 101, 102};
static const uint64_t fsb[] = {BASE + 0x1800, PD1, BASE + 0x1c00};
static struct pmp_wait_ctx ctx = {tids, fsb, 3, NULL};

static void
put32(uint64_t a, uint32_t v)
{
    memcpy(mem + (a - BASE), &v, 4);
}

static void
put64(uint64_t a, uint64_t v)
{
    memcpy(mem + (a - BASE), &v, 8);
}

static struct pmp_wait
decode(struct pmp_target *t, long nr, uint64_t uaddr, uint64_t op,
       uint64_t val)
{
    struct pmp_regs r;
    struct pmp_wait w;

    memset(&r, 0, sizeof(r));
    r.orig_rax = (uint64_t)nr;
    r.r[PMP_REG_RDI] = uaddr;
    r.r[PMP_REG_RSI] = op;
    r.r[PMP_REG_RDX] = val;
    pmp_target_drop_cache(t);
    pmp_decode_wait(t, &r, &ctx, &w);
    return w;
}

int
main(void)
{
    struct pmp_buf_segment seg = {BASE, mem, SIZE};
    struct pmp_target *t = NULL;
    struct pmp_wait w;
    uint64_t a;
    int i;

    CHECK(pmp_target_buf_new(&t, &seg, 1, NULL, 0, NULL) == 0);
    if (!t)
        return unit_summary();
    ctx.nptl = pmp_nptl_layout("2.36");
    CHECK(ctx.nptl != NULL);
    CHECK(pmp_nptl_layout("2.99") == NULL);
    if (!ctx.nptl)
        return unit_summary();

    /* normal mutex at +0x100: __lock 2, __owner 102, __kind 0 */
    a = BASE + 0x100;
    put32(a, 2);
    put32(a + 8, 102);
    w = decode(t, 202, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_MUTEX);
    CHECK_EQ_INT(w.owner, 102);
    CHECK_EQ_INT(w.owner_source, PMP_OWNER_MUTEX_OWNER);
    CHECK_EQ_U64(w.object, a);

    /* the same wait restarted after a ptrace stop (restart_syscall) */
    w = decode(t, 219, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_MUTEX);
    CHECK_EQ_INT(w.owner, 102);
    /* restart_syscall of a nanosleep (rdi 0): not a futex wait at all */
    w = decode(t, 219, 0, 0, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_NONE);

    /* robust mutex: word = owner | FUTEX_WAITERS, __kind robust|pshared */
    a = BASE + 0x200;
    put32(a, 0x80000000u | 101);
    put32(a + 8, 101);
    put32(a + 16, 16 | 128);
    w = decode(t, 202, a, 0x0, 0x80000000u | 101);
    CHECK_EQ_INT(w.kind, PMP_WAIT_MUTEX);
    CHECK_EQ_INT(w.owner, 101);
    CHECK_EQ_INT(w.owner_source, PMP_OWNER_FUTEX_WORD);

    /* PI mutex: FUTEX_LOCK_PI, owner from the word, owner died bit */
    a = BASE + 0x300;
    put32(a, 0x80000000u | 0x40000000u | 100);
    put32(a + 16, 32);
    w = decode(t, 202, a, 0x86, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_MUTEX);
    CHECK_EQ_INT(w.owner, 100);
    CHECK(w.owner_died);

    /* pthread_join: waits on the joined thread's struct pthread + 0x2d0 */
    put32(PD1 + 0x2d0, 101);
    w = decode(t, 202, PD1 + 0x2d0, 0x109, 101);
    CHECK_EQ_INT(w.kind, PMP_WAIT_JOIN);
    CHECK_EQ_INT(w.owner, 101);
    CHECK_EQ_U64(w.object, PD1);

    /* stdio lock: {lock 2, cnt 1, owner = thread 101's struct pthread} */
    a = BASE + 0x400;
    put32(a, 2);
    put32(a + 4, 1);
    put64(a + 8, PD1);
    w = decode(t, 202, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_STDIO);
    CHECK_EQ_INT(w.owner, 101);

    /* condvar: waiter on __g_signals[0] (+40); __wrefs 16, __g_refs[0] 4 */
    a = BASE + 0x500;
    put32(a + 36, 16);
    put32(a + 16, 4);
    w = decode(t, 202, a + 40, 0x189, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_COND);
    CHECK_EQ_U64(w.object, a);
    CHECK_EQ_INT(w.owner, 0);
    CHECK_EQ_INT(w.waiters, 2);

    /* rwlock write-held by 100: a writer waits on __writers_futex (+12) */
    a = BASE + 0x600;
    put32(a, 0x13);
    put32(a + 8, 3);
    put32(a + 12, 3);
    put32(a + 24, 100);
    w = decode(t, 202, a + 12, 0x189, 3);
    CHECK_EQ_INT(w.kind, PMP_WAIT_RWLOCK);
    CHECK_EQ_INT(w.subkind, PMP_RW_WRITER_FOR_WRITER);
    CHECK_EQ_INT(w.owner, 100);
    /* a reader of the same lock waits on __wrphase_futex (+8) */
    w = decode(t, 202, a + 8, 0x189, 3);
    CHECK_EQ_INT(w.subkind, PMP_RW_READER_FOR_WRITER);
    CHECK_EQ_INT(w.owner, 100);

    /* rwlock read-held by 2: a writer waits on +8 with value 2, no owner */
    a = BASE + 0x700;
    put32(a, 0x12);
    put32(a + 8, 2);
    put32(a + 12, 1);
    w = decode(t, 202, a + 8, 0x189, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_RWLOCK);
    CHECK_EQ_INT(w.subkind, PMP_RW_WRITER_FOR_READERS);
    CHECK_EQ_INT(w.readers, 2);
    CHECK_EQ_INT(w.owner, 0);

    /* semaphore: value 0, 2 waiters */
    a = BASE + 0x800;
    put32(a + 4, 2);
    w = decode(t, 202, a, 0x189, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_SEM);
    CHECK_EQ_INT(w.waiters, 2);

    /* 2.41: no __g_refs; __wrefs +28, __g_signals +32, +40/+44 zero,
       __wseq counted the waiters (2 each); g from the address */
    ctx.nptl = pmp_nptl_layout("2.41");
    a = BASE + 0xb00;
    put64(a, 4);
    put32(a + 28, 16);
    w = decode(t, 202, a + 36, 0x189, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_COND);
    CHECK_EQ_U64(w.object, a);
    CHECK_EQ_INT(w.waiters, 2);
    /* the same bytes read with 2.36's layout are no condvar */
    ctx.nptl = pmp_nptl_layout("2.36");
    w = decode(t, 202, a + 36, 0x189, 0);
    CHECK(w.kind != PMP_WAIT_COND);
    /* 2.43: pthread_join waits on joinstate (+0x628) = 2 */
    ctx.nptl = pmp_nptl_layout("2.43");
    put32(PD1 + 0x628, 2);
    w = decode(t, 202, PD1 + 0x628, 0x109, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_JOIN);
    CHECK_EQ_INT(w.owner, 101);
    CHECK_EQ_U64(w.object, PD1);
    /* and its stdio lock holds cnt 0 when held once */
    a = BASE + 0x400;
    put32(a + 4, 0);
    w = decode(t, 202, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_STDIO);
    CHECK_EQ_INT(w.count, 1);

    /* a release without a row: kernel-defined waits only */
    ctx.nptl = NULL;
    w = decode(t, 202, BASE + 0x100, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_FUTEX);
    CHECK_EQ_INT(w.owner, 0);
    w = decode(t, 202, BASE + 0x300, 0x86, 0);
    CHECK_EQ_INT(w.kind, PMP_WAIT_MUTEX);
    CHECK_EQ_INT(w.owner, 100);

    /* futex_waitv: two entries */
    a = BASE + 0x900;
    put64(a, 0);
    put64(a + 8, BASE + 0x980);
    put32(a + 16, 130);
    put64(a + 24, 5);
    put64(a + 32, BASE + 0x990);
    put32(a + 40, 130);
    {
        struct pmp_regs r;
        memset(&r, 0, sizeof(r));
        r.orig_rax = 449;
        r.r[PMP_REG_RDI] = a;
        r.r[PMP_REG_RSI] = 2;
        pmp_decode_wait(t, &r, &ctx, &w);
        CHECK_EQ_INT(w.kind, PMP_WAIT_WAITV);
        CHECK_EQ_INT(w.nwaitv, 2);
        CHECK_EQ_U64(w.waitv_addr[1], BASE + 0x990);
        CHECK_EQ_INT((int)w.waitv_val[1], 5);
    }

    /* an owner that is not a TID: unnamed futex, never a made-up owner */
    a = BASE + 0xa00;
    put32(a, 2);
    put32(a + 8, 0x7fffffff);
    w = decode(t, 202, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_FUTEX);
    CHECK_EQ_INT(w.owner, 0);
    /* unreadable futex word */
    w = decode(t, 202, 0x10, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_FUTEX);
    /* not a futex call */
    w = decode(t, 0, a, 0x80, 2);
    CHECK_EQ_INT(w.kind, PMP_WAIT_NONE);

    /* hostile memory: random bytes, random arguments; only the shape of
       the result is checked (owners, when claimed, are plausible TIDs) */
    srand(42);
    for (i = 0; i < 200000; i++) {
        uint64_t ua = BASE + (uint64_t)(rand() % (SIZE + 256)) - 128;
        uint64_t ops[] = {0x80, 0x0, 0x86, 0x189, 0x109, 0x89, 13,
                          (uint64_t)rand()};
        if (i % 64 == 0) {
            size_t k;
            for (k = 0; k < SIZE; k++)
                mem[k] = (unsigned char)rand();
        }
        ctx.nptl = i % 5 < 4 ? pmp_nptl_layout_at((size_t)(i % 5)) : NULL;
        w = decode(t, i % 3 ? 202 : 219, ua, ops[i % 8],
                   (uint64_t)rand() % 4 == 0 ? (uint64_t)rand() : 2);
        if (w.owner != 0 && (w.owner < 0 || w.owner > 4194304)) {
            CHECK_MSG(0, "implausible owner %d", w.owner);
            break;
        }
        if (w.kind < PMP_WAIT_NONE || w.kind > PMP_WAIT_FUTEX) {
            CHECK_MSG(0, "kind %d", w.kind);
            break;
        }
    }
    CHECK(i == 200000);
    pmp_target_free(t);
    return unit_summary();
}

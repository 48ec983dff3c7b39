/*
 * layout-glibc-nptl.h: where glibc keeps what `pmprof locks` reads, one
 * row per glibc release (x86_64).  Adding a release is adding a row and
 * running tests/test_locks_versions.py, which checks every offset here
 * against that release's own DWARF (libc6-dbg: struct pthread,
 * __pthread_mutex_s, __pthread_rwlock_arch_t, __pthread_cond_s, new_sem,
 * _IO_lock_t) and runs tests/targets/locks.c on it.
 *
 * Data only: included by locks.c (the decoder) and nowhere else.  The
 * release is read from the target's libc ("release version X.Y"), never
 * from this machine; a release without a row gets no lock kinds or
 * owners at all (pmprof says so), never another row's guess.
 *
 * What moved between the releases in the table:
 *  - pthread_join waits on struct pthread.tid (value: the joined TID)
 *    up to 2.41, on struct pthread.joinstate (value: THREAD_STATE_JOINABLE
 *    = 2) from 2.43 on; 2.31 waits with FUTEX_WAIT, later releases with
 *    FUTEX_WAIT_BITSET (the decoder accepts either for every kind);
 *  - pthread_cond_t lost __g_refs in 2.41: __g1_orig_size, __wrefs and
 *    __g_signals moved up by 8, and the last 8 bytes became two words
 *    that stay 0 (__unused_initialized_1/2);
 *  - _IO_lock_t.cnt counts the recursion beyond the first lock from
 *    2.41 on (0 when held once; 1 before);
 *  - pthread_mutex_t, pthread_rwlock_t and sem_t kept their layouts
 *    (2.43 renamed __elision and merged __rwelision into __pad1).
 */
#ifndef PMPROF_LAYOUT_GLIBC_NPTL_H
#define PMPROF_LAYOUT_GLIBC_NPTL_H

#include <stdint.h>

#define PMP_NPTL_NONE 0xffff    /* the member does not exist */

struct pmp_nptl_layout {
    const char *version;        /* glibc release, "2.36" */
    /* struct pthread (a thread's fs_base points at it) */
    uint16_t pd_tid;            /* pid_t tid */
    uint16_t pd_join;           /* the word pthread_join waits on */
    int32_t join_val;           /* its value while the thread runs;
                                   -1: the thread's TID (pd_join = pd_tid) */
    /* pthread_mutex_t (struct __pthread_mutex_s); __lock is at 0 */
    uint16_t mutex_size, m_count, m_owner, m_kind;
    /* pthread_rwlock_t (struct __pthread_rwlock_arch_t); __readers at 0 */
    uint16_t rw_size, rw_wrphase_futex, rw_writers_futex, rw_pad3,
        rw_pad4, rw_cur_writer, rw_shared,
        rw_elision,             /* a byte <= 1: __rwelision, 2.43 __pad1 */
        rw_pad2, rw_flags;
    /* pthread_cond_t (struct __pthread_cond_s) */
    uint16_t cond_size, c_wseq, c_g_refs, c_wrefs, c_g_signals,
        c_unused;               /* __unused_initialized_1, or NONE */
    /* sem_t (struct new_sem): value and nwaiters halves of data */
    uint16_t sem_value, sem_nwaiters, sem_private;
    /* _IO_lock_t */
    uint16_t io_cnt, io_owner;
    uint16_t io_cnt_once;       /* cnt while held once (not recursively) */
};

/* Every member but version, for walking a row (the DWARF check). */
#define PMP_NPTL_FIELDS(X)                                                    \
    X(pd_tid) X(pd_join) X(join_val) X(mutex_size) X(m_count) X(m_owner)     \
    X(m_kind) X(rw_size) X(rw_wrphase_futex) X(rw_writers_futex) X(rw_pad3)  \
    X(rw_pad4) X(rw_cur_writer) X(rw_shared) X(rw_elision) X(rw_pad2)           \
    X(rw_flags) X(cond_size) X(c_wseq) X(c_g_refs) X(c_wrefs) X(c_g_signals) \
    X(c_unused) X(sem_value) X(sem_nwaiters) X(sem_private) X(io_cnt)        \
    X(io_owner) X(io_cnt_once)

/* clang-format off */
static const struct pmp_nptl_layout pmp_nptl_layouts[] = {
    /* Debian 11 bullseye: libpthread.so.0 is a separate library */
    {"2.31", 0x2d0, 0x2d0, -1,
     40, 4, 8, 16,
     56, 8, 12, 16, 20, 24, 28, 32, 40, 48,
     48, 0, 16, 36, 40, PMP_NPTL_NONE,
     0, 4, 8,
     4, 8, 1},
    /* Debian 12 bookworm: libpthread merged into libc.so.6 */
    {"2.36", 0x2d0, 0x2d0, -1,
     40, 4, 8, 16,
     56, 8, 12, 16, 20, 24, 28, 32, 40, 48,
     48, 0, 16, 36, 40, PMP_NPTL_NONE,
     0, 4, 8,
     4, 8, 1},
    /* Debian 13 trixie: the condvar without __g_refs */
    {"2.41", 0x2d0, 0x2d0, -1,
     40, 4, 8, 16,
     56, 8, 12, 16, 20, 24, 28, 32, 40, 48,
     48, 0, PMP_NPTL_NONE, 28, 32, 40,
     0, 4, 8,
     4, 8, 0},
    /* Debian sid: pthread_join waits on joinstate */
    {"2.43", 0x2d0, 0x628, 2,
     40, 4, 8, 16,
     56, 8, 12, 16, 20, 24, 28, 32, 40, 48,
     48, 0, PMP_NPTL_NONE, 28, 32, 40,
     0, 4, 8,
     4, 8, 0},
};
/* clang-format on */

#endif /* PMPROF_LAYOUT_GLIBC_NPTL_H */

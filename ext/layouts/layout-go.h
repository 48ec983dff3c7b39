/*
 * layout-go.h: the Go runtime structures golang.c reads, one row per Go
 * release (amd64): offsets in bytes of the fields, from that release's
 * own DWARF (`ptype /o` of an unstripped build; tests/golayout.py names
 * each field's DWARF member and tests/test_go_versions.py checks every
 * row against it).  Stripped binaries rely on this table alone.
 *
 * Adding a release = adding a row (and running that test).  A field at
 * offset 0 is left out (designated initializers: 0); a member a release
 * lacks is 0 too (g_parentgoid before 1.21: never at offset 0).
 *
 * The rows are in layout-go.c; inspect/golang.c and unwind/gostack.c (the
 * g/m offsets it needs to leave a system stack) look them up there, each
 * checking that a row fits its own buffers.
 */
#ifndef PMPROF_LAYOUT_GO_H
#define PMPROF_LAYOUT_GO_H

#include <stddef.h>
#include <stdint.h>

struct pmp_go_layout {
    int minor;                   /* go1.MINOR */
    /* runtime.g (g.sched is a gobuf: sp, pc, ..., bp) */
    uint16_t g_size, g_m, g_sched_sp, g_sched_pc, g_sched_bp, g_syscallsp,
        g_syscallpc, g_status, g_goid, g_waitsince, g_waitreason, g_lockedm,
        g_gopc, g_startpc, g_waiting, g_labels,
        g_parentgoid;            /* 1.21+: "created by ... in goroutine N" */
    /* the highest g status; _Gdeadextra (1.26+, a dead g kept for cgo
       callbacks: skipped like _Gdead), 0 if none */
    uint8_t status_max, status_deadextra;
    /* runtime.sudog (1.26: elem and c are maybeTraceablePtr{vp, vu}: the
       offsets are vu's, the value of record) */
    uint16_t sudog_g, sudog_next, sudog_prev, sudog_elem, sudog_waitlink,
        sudog_c;
    /* runtime.semtable: semtab_n entries of semtab_entry bytes, each a
       semaRoot {lock, treap *sudog, nwait} and padding */
    uint16_t semtab_n, semtab_entry, semroot_treap, semroot_nwait;
    /* runtime.m, runtime.p */
    uint16_t m_g0, m_procid, m_curg, m_id, m_alllink;
    uint16_t p_id, p_status, p_runqhead, p_runqtail, p_runnext;
    /* runtime.schedt (1.26: the global run queue's length is runq.size) */
    uint16_t sched_goidgen, sched_nmidle, sched_mnext, sched_maxmcount,
        sched_nmfreed, sched_npidle, sched_nmspinning, sched_runqsize;
    /* runtime.mstats (the GC history runtime.ReadMemStats copies) */
    uint16_t ms_last_gc_unix, ms_pause_total, ms_pause_ns, ms_pause_end,
        ms_numgc, ms_numforcedgc, ms_last_gc_nanotime;
    /* runtime.gcControllerState */
    uint16_t gc_percent, gc_memlimit, gc_heapmin, gc_lastgoal, gc_heaplive,
        gc_heapmarked, gc_heapinuse, gc_totalalloc, gc_totalfree,
        gc_mappedready;
    /* g.labels points at runtime/pprof's labelMap: 0 = map[string]string
       (an hmap; up to 1.23), 1 = a struct holding a []{key, value string}
       sorted by key (1.24+; internal/runtime/pprof/label.Set in 1.26) */
    uint8_t labels_slice;
};

/* The row for go1.minor, NULL if the table has none. */
const struct pmp_go_layout *pmp_go_layout_row(int minor);
/* The i-th row (oldest first), NULL past the last. */
const struct pmp_go_layout *pmp_go_layout_nth(size_t i);

#endif

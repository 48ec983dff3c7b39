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
 * Included by inspect/golang.c and unwind/gostack.c (the g/m offsets it
 * needs to leave a system stack).
 */
#ifndef PMPROF_LAYOUT_GO_H
#define PMPROF_LAYOUT_GO_H

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

static const struct pmp_go_layout pmp_go_layouts[] = {
    /* go1.19 (DWARF of a go1.19 build) */
    {.minor = 19, .g_size = 392, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 104, .g_syscallsp = 112,
     .g_syscallpc = 120, .g_status = 144, .g_goid = 152, .g_waitsince = 168,
     .g_waitreason = 176, .g_lockedm = 232, .g_gopc = 296, .g_startpc = 312,
     .g_waiting = 328, .g_labels = 360, .g_parentgoid = 0, .status_max = 9,
     .status_deadextra = 0, .sudog_next = 8, .sudog_prev = 16,
     .sudog_elem = 24, .sudog_waitlink = 64, .sudog_c = 80, .semtab_n = 251,
     .semtab_entry = 64, .semroot_treap = 8, .semroot_nwait = 16,
     .m_procid = 72, .m_curg = 192, .m_id = 232, .m_alllink = 336,
     .p_status = 4, .p_runqhead = 400, .p_runqtail = 404, .p_runnext = 2456,
     .sched_nmidle = 40, .sched_mnext = 48, .sched_maxmcount = 56,
     .sched_nmfreed = 64, .sched_npidle = 88, .sched_nmspinning = 92,
     .sched_runqsize = 112, .ms_last_gc_unix = 3592, .ms_pause_total = 3600,
     .ms_pause_ns = 3608, .ms_pause_end = 5656, .ms_numgc = 7704,
     .ms_numforcedgc = 7708, .ms_last_gc_nanotime = 7720, .gc_memlimit = 8,
     .gc_heapmin = 16, .gc_lastgoal = 128, .gc_heaplive = 136,
     .gc_heapmarked = 184, .gc_heapinuse = 304, .gc_totalalloc = 328,
     .gc_totalfree = 336, .gc_mappedready = 344, .labels_slice = 0},
    /* go1.21 (DWARF of a go1.21 build) */
    {.minor = 21, .g_size = 408, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 104, .g_syscallsp = 112,
     .g_syscallpc = 120, .g_status = 144, .g_goid = 152, .g_waitsince = 168,
     .g_waitreason = 176, .g_lockedm = 208, .g_gopc = 280, .g_startpc = 296,
     .g_waiting = 312, .g_labels = 344, .g_parentgoid = 272, .status_max = 9,
     .status_deadextra = 0, .sudog_next = 8, .sudog_prev = 16,
     .sudog_elem = 24, .sudog_waitlink = 64, .sudog_c = 80, .semtab_n = 251,
     .semtab_entry = 64, .semroot_treap = 8, .semroot_nwait = 16,
     .m_procid = 72, .m_curg = 192, .m_id = 232, .m_alllink = 336,
     .p_status = 4, .p_runqhead = 400, .p_runqtail = 404, .p_runnext = 2456,
     .sched_nmidle = 40, .sched_mnext = 48, .sched_maxmcount = 56,
     .sched_nmfreed = 64, .sched_npidle = 88, .sched_nmspinning = 92,
     .sched_runqsize = 120, .ms_last_gc_unix = 3592, .ms_pause_total = 3600,
     .ms_pause_ns = 3608, .ms_pause_end = 5656, .ms_numgc = 7704,
     .ms_numforcedgc = 7708, .ms_last_gc_nanotime = 7720, .gc_memlimit = 8,
     .gc_heapmin = 16, .gc_lastgoal = 96, .gc_heaplive = 104,
     .gc_heapmarked = 152, .gc_heapinuse = 272, .gc_totalalloc = 296,
     .gc_totalfree = 304, .gc_mappedready = 312, .labels_slice = 0},
    /* go1.22 (DWARF of a go1.22 build) */
    {.minor = 22, .g_size = 424, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 104, .g_syscallsp = 112,
     .g_syscallpc = 120, .g_status = 144, .g_goid = 152, .g_waitsince = 168,
     .g_waitreason = 176, .g_lockedm = 208, .g_gopc = 280, .g_startpc = 296,
     .g_waiting = 312, .g_labels = 344, .g_parentgoid = 272, .status_max = 9,
     .status_deadextra = 0, .sudog_next = 8, .sudog_prev = 16,
     .sudog_elem = 24, .sudog_waitlink = 64, .sudog_c = 80, .semtab_n = 251,
     .semtab_entry = 64, .semroot_treap = 8, .semroot_nwait = 16,
     .m_procid = 72, .m_curg = 192, .m_id = 232, .m_alllink = 328,
     .p_status = 4, .p_runqhead = 400, .p_runqtail = 404, .p_runnext = 2456,
     .sched_nmidle = 40, .sched_mnext = 48, .sched_maxmcount = 56,
     .sched_nmfreed = 64, .sched_npidle = 88, .sched_nmspinning = 92,
     .sched_runqsize = 120, .ms_last_gc_unix = 3592, .ms_pause_total = 3600,
     .ms_pause_ns = 3608, .ms_pause_end = 5656, .ms_numgc = 7704,
     .ms_numforcedgc = 7708, .ms_last_gc_nanotime = 7720, .gc_memlimit = 8,
     .gc_heapmin = 16, .gc_lastgoal = 96, .gc_heaplive = 104,
     .gc_heapmarked = 152, .gc_heapinuse = 272, .gc_totalalloc = 296,
     .gc_totalfree = 304, .gc_mappedready = 312, .labels_slice = 0},
    /* go1.23 (DWARF of a go1.23 build) */
    {.minor = 23, .g_size = 432, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 104, .g_syscallsp = 112,
     .g_syscallpc = 120, .g_status = 152, .g_goid = 160, .g_waitsince = 176,
     .g_waitreason = 184, .g_lockedm = 216, .g_gopc = 288, .g_startpc = 304,
     .g_waiting = 320, .g_labels = 352, .g_parentgoid = 280, .status_max = 9,
     .status_deadextra = 0, .sudog_next = 8, .sudog_prev = 16,
     .sudog_elem = 24, .sudog_waitlink = 64, .sudog_c = 80, .semtab_n = 251,
     .semtab_entry = 64, .semroot_treap = 8, .semroot_nwait = 16,
     .m_procid = 72, .m_curg = 192, .m_id = 232, .m_alllink = 328,
     .p_status = 4, .p_runqhead = 392, .p_runqtail = 396, .p_runnext = 2448,
     .sched_nmidle = 40, .sched_mnext = 48, .sched_maxmcount = 56,
     .sched_nmfreed = 64, .sched_npidle = 88, .sched_nmspinning = 92,
     .sched_runqsize = 120, .ms_last_gc_unix = 3592, .ms_pause_total = 3600,
     .ms_pause_ns = 3608, .ms_pause_end = 5656, .ms_numgc = 7704,
     .ms_numforcedgc = 7708, .ms_last_gc_nanotime = 7720, .gc_memlimit = 8,
     .gc_heapmin = 16, .gc_lastgoal = 96, .gc_heaplive = 104,
     .gc_heapmarked = 152, .gc_heapinuse = 272, .gc_totalalloc = 296,
     .gc_totalfree = 304, .gc_mappedready = 312, .labels_slice = 0},
    /* go1.24 (DWARF of a go1.24 build) */
    {.minor = 24, .g_size = 440, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 104, .g_syscallsp = 112,
     .g_syscallpc = 120, .g_status = 152, .g_goid = 160, .g_waitsince = 176,
     .g_waitreason = 184, .g_lockedm = 216, .g_gopc = 288, .g_startpc = 304,
     .g_waiting = 320, .g_labels = 352, .g_parentgoid = 280, .status_max = 9,
     .status_deadextra = 0, .sudog_next = 8, .sudog_prev = 16,
     .sudog_elem = 24, .sudog_waitlink = 64, .sudog_c = 80, .semtab_n = 251,
     .semtab_entry = 64, .semroot_treap = 8, .semroot_nwait = 16,
     .m_procid = 72, .m_curg = 192, .m_id = 232, .m_alllink = 328,
     .p_status = 4, .p_runqhead = 392, .p_runqtail = 396, .p_runnext = 2448,
     .sched_nmidle = 40, .sched_mnext = 48, .sched_maxmcount = 56,
     .sched_nmfreed = 64, .sched_npidle = 88, .sched_nmspinning = 92,
     .sched_runqsize = 120, .ms_last_gc_unix = 3592, .ms_pause_total = 3600,
     .ms_pause_ns = 3608, .ms_pause_end = 5656, .ms_numgc = 7704,
     .ms_numforcedgc = 7708, .ms_last_gc_nanotime = 7720, .gc_memlimit = 8,
     .gc_heapmin = 16, .gc_lastgoal = 96, .gc_heaplive = 104,
     .gc_heapmarked = 152, .gc_heapinuse = 272, .gc_totalalloc = 296,
     .gc_totalfree = 304, .gc_mappedready = 312, .labels_slice = 1},
    /* go1.26 (DWARF of a go1.26 build) */
    {.minor = 26, .g_size = 456, .g_m = 48, .g_sched_sp = 56,
     .g_sched_pc = 64, .g_sched_bp = 96, .g_syscallsp = 104,
     .g_syscallpc = 112, .g_status = 144, .g_goid = 152, .g_waitsince = 168,
     .g_waitreason = 176, .g_lockedm = 208, .g_gopc = 288, .g_startpc = 304,
     .g_waiting = 320, .g_labels = 352, .g_parentgoid = 280,
     .status_max = 11, .status_deadextra = 11, .sudog_next = 8,
     .sudog_prev = 16, .sudog_elem = 32, .sudog_waitlink = 72, .sudog_c = 96,
     .semtab_n = 251, .semtab_entry = 64, .semroot_treap = 8,
     .semroot_nwait = 16, .m_procid = 64, .m_curg = 184, .m_id = 232,
     .m_alllink = 352, .p_status = 4, .p_runqhead = 400, .p_runqtail = 404,
     .p_runnext = 2456, .sched_nmidle = 64, .sched_mnext = 72,
     .sched_maxmcount = 80, .sched_nmfreed = 88, .sched_npidle = 112,
     .sched_nmspinning = 116, .sched_runqsize = 144, .ms_last_gc_unix = 3568,
     .ms_pause_total = 3576, .ms_pause_ns = 3584, .ms_pause_end = 5632,
     .ms_numgc = 7680, .ms_numforcedgc = 7684, .ms_last_gc_nanotime = 7696,
     .gc_memlimit = 8, .gc_heapmin = 16, .gc_lastgoal = 96,
     .gc_heaplive = 104, .gc_heapmarked = 152, .gc_heapinuse = 272,
     .gc_totalalloc = 296, .gc_totalfree = 304, .gc_mappedready = 312,
     .labels_slice = 1},
};

#endif

/*
 * layout-go.c: the rows of layout-go.h's table (see there) and their
 * lookup.  Data only: calls nothing.
 */
#include "layout-go.h"

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

const struct pmp_go_layout *
pmp_go_layout_row(int minor)
{
    size_t i;

    for (i = 0; i < sizeof(pmp_go_layouts) / sizeof(pmp_go_layouts[0]); i++)
        if (pmp_go_layouts[i].minor == minor)
            return &pmp_go_layouts[i];
    return NULL;
}

const struct pmp_go_layout *
pmp_go_layout_nth(size_t i)
{
    return i < sizeof(pmp_go_layouts) / sizeof(pmp_go_layouts[0])
               ? &pmp_go_layouts[i]
               : NULL;
}

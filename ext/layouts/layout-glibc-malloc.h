/*
 * layout-glibc-malloc.h: glibc malloc's layouts on x86_64, one row per
 * glibc release, as data (heap.c reads nothing else about a version).
 *
 * Owns: the offsets and sizes heap.c uses, and the facts that change the
 * walk: safe-linking, fastbins, tcache bins and how they count, the
 * mmapped chunk header, where the stripped libc gives main_arena (the
 * first RIP-relative lea of an exported function), mp_'s initialiser in
 * .data, tcache's offset in libc's TLS block.  Each row was read from
 * that release's DWARF (`ptype /o`, Debian's libc6-dbg, the package named
 * in the row) and its malloc/malloc.c; heap.c checks a row member by member
 * against libc's DWARF whenever the debug info is there, and the tests
 * (tests/test_heap_versions.py) run every row with and without it.
 * Adding a version = adding a row + a test run.
 *
 * Must not: hold a row that was not checked against that release.  A
 * version without a row is refused by name, even with debug info: the
 * allocator's logic changes between releases (fastbins went in 2.43,
 * tcache counting and large tcache bins in 2.42), not only its structs.
 */
#ifndef PMP_HEAP_GLIBC_LAYOUTS_H
#define PMP_HEAP_GLIBC_LAYOUTS_H

#define PMP_GLIBC_TCACHE_MAX_BINS 76      /* the most bins of any row */

struct pmp_glibc_malloc {
    const char *version;          /* the libc's "release version X.Y" */
    const char *checked;          /* the Debian package it was read from */
    /* struct malloc_state (main_arena; thread arenas at heap + hi_size) */
    int ms_size, ms_flags;
    int ms_fastbins;              /* -1: no fastbins (2.43+) */
    int nfastbins;
    int ms_top, ms_bins, ms_next, ms_next_free, ms_attached;
    int ms_system_mem, ms_max_system_mem;
    /* struct malloc_par mp_ */
    int mp_size, mp_trim_threshold, mp_mmap_threshold, mp_n_mmaps;
    int mp_max_n_mmaps, mp_mmapped_mem, mp_max_mmapped_mem, mp_sbrk_base;
    int mp_tcache_bins, mp_tcache_max_bytes, mp_tcache_count;
    const char *mp_tcache_bins_name;  /* renamed tcache_small_bins in 2.42 */
    /* mp_'s initialiser in .data: the defaults at those three offsets */
    uint64_t def_tcache_bins, def_tcache_max_bytes, def_tcache_count;
    /* heap_info (sizeof: a thread arena's malloc_state follows it) */
    int hi_size, hi_prev, hi_heap_size, hi_mprotect;
    /* tcache_perthread_struct and its TLS pointer */
    int tc_bins;                  /* 64, or 64 small + 12 large (2.42+) */
    int tc_counts, tc_entries;    /* offsets of the uint16_t[] and entries[] */
    const char *tc_counts_name;   /* "counts", or "num_slots" (2.42+) */
    int tc_counts_free_slots;     /* num_slots: free slots left, counted
                                     down from mp_.tcache_count (2.42+) */
    int tc_sizeof;
    uint64_t tc_chunk, tc_chunk_alt;  /* the struct's chunk size(s) from tcache_init;
                                         any in-use chunk >= tc_chunk is accepted */
    int tc_tls;                   /* tcache's offset in libc's TLS block */
    int tc_never_null;            /* tcache points to a dummy in libc
                                     until the thread's first use (2.42+) */
    /* the rest of the logic */
    int safe_linking;             /* fd/next = (pos >> 12) ^ ptr (2.32+) */
    int mmap_hdr_extra;           /* mapping = size field + this (2.43:
                                     mmapped chunks end with a header) */
    const char *anchor_fn;        /* exported; its first lea is main_arena */
};

static const struct pmp_glibc_malloc pmp_glibc_malloc_layouts[] = {
    {
        .version = "2.31", .checked = "2.31-13+deb11u11",
        .ms_size = 2200, .ms_flags = 4, .ms_fastbins = 16, .nfastbins = 10,
        .ms_top = 96, .ms_bins = 112, .ms_next = 2160, .ms_next_free = 2168,
        .ms_attached = 2176, .ms_system_mem = 2184,
        .ms_max_system_mem = 2192,
        .mp_size = 112, .mp_trim_threshold = 0, .mp_mmap_threshold = 16,
        .mp_n_mmaps = 40, .mp_max_n_mmaps = 48, .mp_mmapped_mem = 56,
        .mp_max_mmapped_mem = 64, .mp_sbrk_base = 72, .mp_tcache_bins = 80,
        .mp_tcache_max_bytes = 88, .mp_tcache_count = 96,
        .mp_tcache_bins_name = "tcache_bins",
        .def_tcache_bins = 64, .def_tcache_max_bytes = 1032,
        .def_tcache_count = 7,
        .hi_size = 32, .hi_prev = 8, .hi_heap_size = 16, .hi_mprotect = 24,
        .tc_bins = 64, .tc_counts = 0, .tc_entries = 128,
        .tc_counts_name = "counts", .tc_sizeof = 640,
        .tc_chunk = 0x290, .tc_tls = 0x40,
        .safe_linking = 0, .mmap_hdr_extra = 0, .anchor_fn = "mallinfo",
    },
    {
        .version = "2.36", .checked = "2.36-9+deb12u14",
        .ms_size = 2200, .ms_flags = 4, .ms_fastbins = 16, .nfastbins = 10,
        .ms_top = 96, .ms_bins = 112, .ms_next = 2160, .ms_next_free = 2168,
        .ms_attached = 2176, .ms_system_mem = 2184,
        .ms_max_system_mem = 2192,
        .mp_size = 136, .mp_trim_threshold = 0, .mp_mmap_threshold = 16,
        .mp_n_mmaps = 60, .mp_max_n_mmaps = 68, .mp_mmapped_mem = 80,
        .mp_max_mmapped_mem = 88, .mp_sbrk_base = 96, .mp_tcache_bins = 104,
        .mp_tcache_max_bytes = 112, .mp_tcache_count = 120,
        .mp_tcache_bins_name = "tcache_bins",
        .def_tcache_bins = 64, .def_tcache_max_bytes = 1032,
        .def_tcache_count = 7,
        .hi_size = 48, .hi_prev = 8, .hi_heap_size = 16, .hi_mprotect = 24,
        .tc_bins = 64, .tc_counts = 0, .tc_entries = 128,
        .tc_counts_name = "counts", .tc_sizeof = 640,
        .tc_chunk = 0x290, .tc_tls = 0x48,
        .safe_linking = 1, .mmap_hdr_extra = 0, .anchor_fn = "mallinfo2",
    },
    {
        /* the 2.36 layout; 2.41 frees small chunks straight into their
           small bin (no effect on what is read) */
        .version = "2.41", .checked = "2.41-12+deb13u5",
        .ms_size = 2200, .ms_flags = 4, .ms_fastbins = 16, .nfastbins = 10,
        .ms_top = 96, .ms_bins = 112, .ms_next = 2160, .ms_next_free = 2168,
        .ms_attached = 2176, .ms_system_mem = 2184,
        .ms_max_system_mem = 2192,
        .mp_size = 136, .mp_trim_threshold = 0, .mp_mmap_threshold = 16,
        .mp_n_mmaps = 60, .mp_max_n_mmaps = 68, .mp_mmapped_mem = 80,
        .mp_max_mmapped_mem = 88, .mp_sbrk_base = 96, .mp_tcache_bins = 104,
        .mp_tcache_max_bytes = 112, .mp_tcache_count = 120,
        .mp_tcache_bins_name = "tcache_bins",
        .def_tcache_bins = 64, .def_tcache_max_bytes = 1032,
        .def_tcache_count = 7,
        .hi_size = 48, .hi_prev = 8, .hi_heap_size = 16, .hi_mprotect = 24,
        .tc_bins = 64, .tc_counts = 0, .tc_entries = 128,
        .tc_counts_name = "counts", .tc_sizeof = 640,
        .tc_chunk = 0x290, .tc_tls = 0x48,
        .safe_linking = 1, .mmap_hdr_extra = 0, .anchor_fn = "mallinfo2",
    },
    {
        /* no fastbins; mp_ gained thp_mode; tcache: 64 small + 12 large
           bins, num_slots counts down; tcache_init(av) asks _int_malloc
           for request2size(sizeof), so the struct's chunk is 0x300 or
           0x310; mmapped chunks end with a header (size = mapping - 16) */
        .version = "2.43", .checked = "2.43-7",
        .ms_size = 2112, .ms_flags = 4, .ms_fastbins = -1, .nfastbins = 0,
        .ms_top = 8, .ms_bins = 24, .ms_next = 2072, .ms_next_free = 2080,
        .ms_attached = 2088, .ms_system_mem = 2096,
        .ms_max_system_mem = 2104,
        .mp_size = 144, .mp_trim_threshold = 0, .mp_mmap_threshold = 16,
        .mp_n_mmaps = 68, .mp_max_n_mmaps = 76, .mp_mmapped_mem = 88,
        .mp_max_mmapped_mem = 96, .mp_sbrk_base = 104,
        .mp_tcache_bins = 112, .mp_tcache_max_bytes = 120,
        .mp_tcache_count = 128, .mp_tcache_bins_name = "tcache_small_bins",
        .def_tcache_bins = 64, .def_tcache_max_bytes = 1041,
        .def_tcache_count = 16,
        .hi_size = 48, .hi_prev = 8, .hi_heap_size = 16, .hi_mprotect = 24,
        .tc_bins = 76, .tc_counts = 0, .tc_entries = 152,
        .tc_counts_name = "num_slots", .tc_counts_free_slots = 1,
        .tc_sizeof = 760, .tc_chunk = 0x300, .tc_chunk_alt = 0x310,
        .tc_tls = 0x20, .tc_never_null = 1,
        .safe_linking = 1, .mmap_hdr_extra = 16, .anchor_fn = "mallinfo2",
    },
};

#endif

/*
 * pmprof-internal.h: private structures shared inside ext/.
 *
 * Owns: the target backend interface (struct pmp_target), the bounded
 * read helpers every decoder must use, small containers (u64 hash map,
 * growable arrays) and the session structure.
 *
 * Must not: include Python.h or any debugger header.
 */
#ifndef PMPROF_INTERNAL_H
#define PMPROF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <elfutils/libdwfl.h>
#include <gelf.h>

#include "pmprof.h"

#define PMP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PMP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PMP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hard caps on anything a target can make us iterate over. */
#define PMP_MAX_THREADS 65536
#define PMP_MAX_FRAMES_CAP 4096
#define PMP_DEFAULT_FRAMES 256
#define PMP_MAX_MAPPINGS 1000000

/* ------------------------------------------------------------------ */
/* Small helpers (util.c)                                              */

/* Copy at most size-1 bytes and always NUL-terminate; returns strlen(src). */
size_t pmp_strlcpy(char *dst, const char *src, size_t size);
char *pmp_strdup(const char *s);    /* NULL on OOM or NULL input */
/* calloc/realloc with multiplication overflow checks. */
void *pmp_calloc(size_t n, size_t size);
void *pmp_reallocarray(void *p, size_t n, size_t size);
/* Grow *arr (element size esz) so that it holds at least need elements. */
int pmp_grow(void **arr, size_t *cap, size_t need, size_t esz);
uint64_t pmp_now_ns(int clock_id);
/* The section called name (its header in *sh), or NULL; bounded. */
Elf_Scn *pmp_elf_section(Elf *elf, const char *name, GElf_Shdr *sh);

/* Little-endian words at a byte offset of a buffer read from the target
   (x86_64 is little-endian too; memcpy: no alignment assumed). */
static inline uint32_t
pmp_u32at(const unsigned char *b, size_t off)
{
    uint32_t v;

    memcpy(&v, b + off, 4);
    return v;
}

static inline uint64_t
pmp_u64at(const unsigned char *b, size_t off)
{
    uint64_t v;

    memcpy(&v, b + off, 8);
    return v;
}

/* u64 -> pointer open-addressing hash map (no deletions). */
struct pmp_u64map {
    uint64_t *keys;
    void **vals;
    size_t cap;    /* power of two, or 0 */
    size_t len;
};
void pmp_u64map_init(struct pmp_u64map *m);
void pmp_u64map_release(struct pmp_u64map *m);
void *pmp_u64map_get(const struct pmp_u64map *m, uint64_t key);
/* Insert or replace; key must not be UINT64_MAX (reserved). */
int pmp_u64map_put(struct pmp_u64map *m, uint64_t key, void *val);
static inline uint64_t
pmp_hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* String interning pool: pointers stay valid until release. */
struct pmp_strpool {
    char **strs;
    size_t len, cap;
    uint64_t *hkeys;   /* open-addressing table of indices+1 */
    size_t hcap;
};
void pmp_strpool_init(struct pmp_strpool *p);
void pmp_strpool_release(struct pmp_strpool *p);
/* Returns the interned copy, or NULL on OOM. */
const char *pmp_strpool_intern(struct pmp_strpool *p, const char *s);

/* ------------------------------------------------------------------ */
/* Target backends (target.c, target-proc.c, target-core.c, target-buf.c) */

struct pmp_target;

/* One mapping of the target's address space. */
struct pmp_mapping {
    uint64_t start, end;    /* [start, end) */
    uint64_t offset;        /* file offset */
    unsigned prot;          /* PROT_READ|PROT_WRITE|PROT_EXEC */
    char *path;             /* owned; "" for anonymous, "[stack]" etc. */
};

/* Raw facts about one thread, as the backend knows them. */
struct pmp_target_thread {
    int tid;
    char name[64];
    char state;
    uint64_t utime_ns, stime_ns;
    struct pmp_regs regs;
    int regs_ok;
    char error[160];        /* why regs_ok == 0 */
    int io_worker;          /* PF_IO_WORKER in /proc stat's flags (live):
                               an io_uring worker, no user context */
};

struct pmp_target_ops {
    const char *kind;       /* "live", "core", "buf" */
    /*
     * Read len bytes at addr.  Returns the number of bytes read (may be
     * short, 0 if nothing is mapped there) or a negative PMP_E_*.
     */
    long (*read)(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
                 struct pmp_error *err);
    /*
     * Stop every thread (live) and fill the thread list; the list is
     * owned by the target until resume/the next stop.  Core/buf: just
     * return the recorded threads.
     */
    int (*stop)(struct pmp_target *t, struct pmp_target_thread **threads,
                size_t *nthreads, struct pmp_error *err);
    /* Resume whatever stop() stopped (no-op for cores and TRACED mode). */
    void (*resume)(struct pmp_target *t);
    /*
     * Optional (NULL: not supported): a pointer to len bytes at addr
     * inside the target's own storage (a core's mapping), valid until the
     * target is freed, or NULL if the range is not stored contiguously.
     * Lets bulk walks read a core without copying it.
     */
    const void *(*peek)(struct pmp_target *t, uint64_t addr, size_t len);
    /* Refresh *maps (owned by target). */
    int (*mappings)(struct pmp_target *t, const struct pmp_mapping **maps,
                    size_t *nmaps, struct pmp_error *err);
    void (*free)(struct pmp_target *t);
};

/*
 * A copy of part of the target's memory that reads are served from first
 * (a sampled stack, unwound after the target was resumed).  Reads that
 * leave it go to the target and raise miss_hi.
 */
struct pmp_overlay {
    uint64_t addr;
    size_t len;
    const unsigned char *data;
    uint64_t hi;        /* highest address + 1 read inside the copy */
    uint64_t miss_hi;   /* highest address + 1 read outside it (0: none) */
    /* A second copy (a Go thread's goroutine stack while it ran on the
       system stack), not sized; len2 0: none. */
    uint64_t addr2;
    size_t len2;
    const unsigned char *data2;
};

struct pmp_target {
    const struct pmp_target_ops *ops;
    int pid;
    struct pmp_overlay *overlay;   /* NULL: none */
    /* Memory page cache in front of ops->read (target.c); dropped by
       pmp_target_drop_cache() at every stop. */
    struct pmp_pagecache *cache;
};

/*
 * The one bounds-checked read every decoder uses: reads exactly len bytes
 * or fails with PMP_E_TARGET (addr recorded in err).  Checks addr+len
 * overflow.  Goes through the page cache.
 */
int pmp_target_read(struct pmp_target *t, uint64_t addr, void *buf,
                    size_t len, struct pmp_error *err);
/* Read one little-endian u64. */
int pmp_target_read_u64(struct pmp_target *t, uint64_t addr, uint64_t *out,
                        struct pmp_error *err);
void pmp_target_drop_cache(struct pmp_target *t);
/* Put a page cache in front of ops->read (live targets). */
int pmp_target_enable_cache(struct pmp_target *t);
void pmp_target_free(struct pmp_target *t);

/* Constructors.  On success *out is owned by the caller. */
int pmp_target_proc_new(struct pmp_target **out, int pid,
                        enum pmp_attach_mode mode, struct pmp_error *err);

/* Live targets: the attach mode, or -1 for other targets; whether this
   process runs SCHED_FIFO for the target (record's progress line). */
int pmp_target_proc_mode(struct pmp_target *t);
/* EXTERNAL mode: the front-end's reader (used where /proc/PID/mem was
   refused, or always) and the registers of the current stop. */
int pmp_target_proc_set_reader(struct pmp_target *t, pmp_read_fn fn,
                               void *ctx, int always, struct pmp_error *err);
int pmp_target_proc_set_regs(struct pmp_target *t,
                             const struct pmp_thread_regs *v, size_t n,
                             uint64_t stop, struct pmp_error *err);
int pmp_target_proc_via_reader(struct pmp_target *t);
/* The TIDs listed in /proc/PID/task (*out malloc'd). */
int pmp_proc_list_tids(int pid, int **out, size_t *n, struct pmp_error *err);
/* The one error for a failed PTRACE_SEIZE/ATTACH of process pid. */
int pmp_proc_attach_error(struct pmp_error *err, int pid, int errnum);
/* Test hook: PMPROF_TEST_SEIZE_GAP_US, microseconds to wait between a
   thread's PTRACE_SEIZE and its PTRACE_INTERRUPT (0 unset), so that tests
   can land signals in that window (target-proc.c). */
long pmp_test_seize_gap_us(void);
void pmp_test_sleep_us(long us);
int pmp_target_proc_syscalls(struct pmp_target *t,
                             struct pmp_target_thread **out, size_t *n,
                             struct pmp_error *err);
struct user_regs_struct;
/* PTRACE_GETREGS layout -> struct pmp_regs. */
void pmp_regs_from_user(struct pmp_regs *r, const struct user_regs_struct *u);
int pmp_target_proc_rt(struct pmp_target *t);

struct pmp_core_file_map {   /* one NT_FILE entry */
    uint64_t start, end, offset;   /* offset in bytes */
    const char *path;
};
int pmp_target_core_new(struct pmp_target **out, const char *path,
                        struct pmp_error *err);
/* The core's ELF handle (libelf Elf *) for dwfl_core_file_report. */
void *pmp_target_core_elf(struct pmp_target *t);
/* NT_FILE entries, owned by the target. */
size_t pmp_target_core_files(struct pmp_target *t,
                             const struct pmp_core_file_map **out);
/* When the core was written (its file's mtime, CLOCK_REALTIME ns). */
uint64_t pmp_target_core_mtime_ns(struct pmp_target *t);
/* Process name from NT_PRPSINFO (pr_fname), "" if none. */
const char *pmp_target_core_comm(struct pmp_target *t);
/* core-names.c: refuse (PMP_E_CORRUPT, one line) a core whose link_map
   or NT_FILE names an existing file that is not a regular file (libdwfl
   would open it: a FIFO blocks); 0 otherwise. */
int pmp_core_check_names(struct pmp_target *t, Elf *core,
                         struct pmp_error *err);

/* target-buf: a fake target over in-memory segments (unit tests, fuzz). */
struct pmp_buf_segment {
    uint64_t addr;
    const void *data;   /* not copied: must outlive the target */
    size_t len;
};
int pmp_target_buf_new(struct pmp_target **out,
                       const struct pmp_buf_segment *segs, size_t nsegs,
                       const struct pmp_target_thread *threads,
                       size_t nthreads, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Lock waits (locks.c)                                                */

/* Every thread of the process: joined/stdio owners are found by their
   struct pthread (= fs_base). */
struct pmp_wait_ctx {
    const int *tids;
    const uint64_t *fs_base;
    size_t n;
    /* the target glibc's row of layout-glibc-nptl.h; NULL: a release
       without a row (only kernel-defined waits are decoded) */
    const struct pmp_nptl_layout *nptl;
};

struct pmp_nptl_layout;
/* The row for a glibc release ("2.36"), or NULL. */
const struct pmp_nptl_layout *pmp_nptl_layout(const char *version);
/* Row i of the table, NULL past its end (the DWARF check walks them). */
const struct pmp_nptl_layout *pmp_nptl_layout_at(size_t i);
/* glibc.c: the "release version X.Y" banner of a glibc libc.so ("" if
   none), and the process's libc module (libc.so.6, or libc-2.NN.so before
   2.34), NULL if none is reported. */
void pmp_glibc_release(Elf *elf, char *out, size_t outlen);
Dwfl_Module *pmp_find_libc(Dwfl *dwfl);
/* The session's glibc row, found once libc is among the modules;
   *version (if given): the release read ("" unreadable, NULL no libc). */
const struct pmp_nptl_layout *pmp_session_nptl(struct pmp_session *s,
                                               const char **version);

/* Decode what a thread with registers rg waits for (target stopped). */
void pmp_decode_wait(struct pmp_target *t, const struct pmp_regs *rg,
                     const struct pmp_wait_ctx *c, struct pmp_wait *w);

/* ------------------------------------------------------------------ */
/* Go runtime (golang.c)                                               */

/* The runtime layout (ext/layouts/layout-go.h) of the Go program the symbolizer
   sees, NULL if none or a release without a row. */
struct pmp_go_layout;
struct pmp_symbolizer;
const struct pmp_go_layout *pmp_go_layout_sym(struct pmp_symbolizer *sym);
/* The goroutine that thread tid (registers rg) runs: its g, goid and
   g.labels pointer.  -1 when the thread runs none (or L is NULL). */
int pmp_go_current(struct pmp_target *t, const struct pmp_go_layout *L,
                   const struct pmp_regs *rg, int tid, uint64_t *g,
                   int64_t *goid, uint64_t *labels);
/* The goroutine of a perf-event CPU sample, from its sampled registers
   (R14, checked against the g's stack); -1 if none. */
int pmp_go_sampled(struct pmp_target *t, const struct pmp_go_layout *L,
                   const struct pmp_regs *rg, uint64_t *g_out, int64_t *goid,
                   uint64_t *labels);
/* The Go backend of the unwinder (unwind/gostack.c): the saved context of
   the goroutine whose M's g0 stack holds sp; where a thread's g may be
   (R14, the TLS slot at fs-8: callers check which one is a g). */
struct pmp_go_ctx {
    uint64_t sched_pc, sched_sp, sched_bp, syscall_pc, syscall_sp;
};
int pmp_go_curg_context(struct pmp_target *t, int gominor,
                        const struct pmp_regs *rg, uint64_t sp,
                        struct pmp_go_ctx *out);
void pmp_go_g_candidates(struct pmp_target *t, const struct pmp_regs *rg,
                         uint64_t cand[2]);
struct pmp_unwinder;
/* The unwinder's backends' context for the next unwinds (unwind.c; one
   the caller captured while the thread was stopped); NULL: they read. */
void pmp_unwinder_set_backend_ctx(struct pmp_unwinder *u, const void *ctx);
/* Use c (captured earlier) for the next unwinds' jumps; NULL: read. */
static inline void
pmp_unwinder_set_go_ctx(struct pmp_unwinder *u, const struct pmp_go_ctx *c)
{
    pmp_unwinder_set_backend_ctx(u, c);   /* unwind-go.c reads it */
}
/* The pprof labels map at g.labels (strings interned in pool). */
size_t pmp_go_labels(struct pmp_target *t, const struct pmp_go_layout *L,
                     uint64_t labels,
                     struct pmp_strpool *pool, struct pmp_go_label *out,
                     size_t max);

/* ------------------------------------------------------------------ */
/* Heap (heap.c): the walk from known main_arena and mp_ addresses, for
   unit tests over crafted memory (tcache_tpoff 0: no tcaches), with the
   glibc 2.36 row of layout-glibc-malloc.h.                              */

int pmp_heap_walk_target(struct pmp_target *t, uint64_t main_arena,
                         uint64_t mp, int64_t tcache_tpoff,
                         const struct pmp_target_thread *threads,
                         size_t nthreads, const struct pmp_heap_opts *o,
                         struct pmp_heap **out, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Unwinder (unwind.c) and symbolizer (symbolize.c)                    */

struct pmp_symbolizer;
struct pmp_unwinder;

/* Open the module/debug-info view of the target (libdwfl). */
int pmp_symbolizer_new(struct pmp_symbolizer **out, struct pmp_target *t,
                       const struct pmp_session_opts *opts,
                       struct pmp_error *err);
void pmp_symbolizer_free(struct pmp_symbolizer *sym);
/* Re-read the module list (dlopen); called when a pc is in no module. */
int pmp_symbolizer_refresh(struct pmp_symbolizer *sym, struct pmp_error *err);
/*
 * The module containing pc, as an opaque Dwfl_Module * (NULL if none),
 * refreshing the module list at most once per stop.
 */
void *pmp_symbolizer_module_at(struct pmp_symbolizer *sym, uint64_t pc);
int pmp_symbolizer_lookup(struct pmp_symbolizer *sym, uint64_t pc,
                          int activation, const struct pmp_frameinfo **out,
                          struct pmp_error *err);
/* The libdwfl session (Dwfl *) over the target's modules. */
void *pmp_symbolizer_dwfl(struct pmp_symbolizer *sym);
int pmp_symbolizer_data(struct pmp_symbolizer *sym, uint64_t addr,
                        const char **name, uint64_t *offset);
/* 1 if the module (from pmp_symbolizer_module_at) is a Go binary. */
int pmp_symbolizer_is_go(struct pmp_symbolizer *sym, void *mod);
/* The module's Go function table (opened on first use), NULL if none. */
struct pmp_gomod;
struct pmp_gomod *pmp_symbolizer_gomod(struct pmp_symbolizer *sym,
                                       void *mod);
size_t pmp_symbolizer_cache_todo(struct pmp_symbolizer *sym,
                                 const struct pmp_cache_todo **out);
/* The first module with a Go function table (Dwfl_Module *), or NULL. */
void *pmp_symbolizer_go_module(struct pmp_symbolizer *sym);
size_t pmp_symbolizer_nmodules(struct pmp_symbolizer *sym);
const struct pmp_module_info *pmp_symbolizer_module(
    struct pmp_symbolizer *sym, size_t i);
/* Per-stop hint: allow one more module refresh. */
void pmp_symbolizer_new_stop(struct pmp_symbolizer *sym);
const char *const *pmp_symbolizer_warnings(struct pmp_symbolizer *sym,
                                           size_t *n);

int pmp_unwinder_new(struct pmp_unwinder **out, struct pmp_target *t,
                     struct pmp_symbolizer *sym, struct pmp_error *err);
void pmp_unwinder_free(struct pmp_unwinder *u);
void pmp_unwinder_warm(struct pmp_unwinder *u, void (*between)(void *),
                       void *ctx);
/*
 * Unwind one thread from regs into pcs/flags (capacity max).  Returns the
 * number of frames (>= 1 when regs are valid); sets *stack_flags and, on
 * an error, err->msg (the frames found so far are kept).
 */
int pmp_unwind(struct pmp_unwinder *u, const struct pmp_regs *regs,
               uint64_t *pcs, uint8_t *flags, int max, unsigned *stack_flags,
               struct pmp_error *err);
/* The same from a saved context: activation0 0 when regs' pc is a return
   address (a parked goroutine's gobuf), so that pc-1 is looked up. */
int pmp_unwind_from(struct pmp_unwinder *u, const struct pmp_regs *regs,
                    int activation0, uint64_t *pcs, uint8_t *flags, int max,
                    unsigned *stack_flags, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Session (session.c)                                                 */

/* Called while a snapshot holds the target stopped (after the threads
   were unwound); a nonzero return fails the snapshot. */
typedef int (*pmp_stopped_hook)(void *arg, const struct pmp_target_thread *tt,
                                size_t nt, struct pmp_error *err);
int pmp_session_snapshot_with(struct pmp_session *s,
                              const struct pmp_snapshot_opts *opts,
                              struct pmp_snapshot **out,
                              pmp_stopped_hook hook, void *hook_arg,
                              struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Tail-call frames (tailcall.c)                                       */

struct pmp_tailcalls;
int pmp_tailcalls_new(struct pmp_tailcalls **out, struct pmp_symbolizer *sym);
void pmp_tailcalls_free(struct pmp_tailcalls *tc);
/* Insert the frames of functions that left by a tail call (flag
   PMP_FRAME_TAILCALL) into every stack of snap; fails only on OOM. */
int pmp_tailcalls_expand(struct pmp_tailcalls *tc, struct pmp_snapshot *snap,
                         struct pmp_error *err);
/* The same for one stack: opcs and ofl malloc'd (NULL: no tail-call frame
   there); PMP_E_NOMEM on OOM. */
int pmp_tailcalls_expand_stack(struct pmp_tailcalls *tc, const uint64_t *pcs,
                               const uint8_t *fl, size_t n, uint64_t **opcs,
                               uint8_t **ofl, size_t *on);
/* The session's tail-call cache (made on first use; NULL on OOM). */
struct pmp_tailcalls *pmp_session_tailcalls(struct pmp_session *s);

struct pmp_session {
    struct pmp_target *target;
    struct pmp_symbolizer *sym;
    struct pmp_unwinder *unw;
    struct pmp_tailcalls *tc;       /* tail-call frames, made on first use */
    int is_core;
    struct pmp_session_opts opts;   /* strings owned (strdup'd) */
    /* locks.c: the target's glibc release and its layout row */
    int nptl_read, has_libc;
    char glibc[16];
    const struct pmp_nptl_layout *nptl;
};

#include "banned.h"

#endif /* PMPROF_INTERNAL_H */

/*
 * pmprof.h: the public C API of the pmprof core.
 *
 * The core is debugger-agnostic: it never includes gdb, lldb or Python
 * headers.  module.c wraps it for Python; tests/unit drive it directly.
 *
 * Data flows one way (docs/design.md):
 *   target -> threads -> registers -> unwind (raw PCs) -> resume target
 *          -> aggregate (stackmap) -> symbolize once per PC -> writers
 *
 * Conventions:
 *  - Functions return 0 or a negative PMP_E_* code; details go into a
 *    caller-supplied struct pmp_error (may be NULL).
 *  - _new/_free own heap objects; the header says who owns returned memory.
 *  - There is no global mutable state; everything hangs off a session.
 */
#ifndef PMPROF_H
#define PMPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/* X-macro: name, default message (elfutils model). */
#define PMP_ERRORS(X)                                         \
    X(OK, "success")                                          \
    X(NOMEM, "out of memory")                                 \
    X(SYS, "system call failed")                              \
    X(TARGET, "cannot access the target")                     \
    X(CORRUPT, "corrupt target data")                         \
    X(UNSUPPORTED, "unsupported")                             \
    X(USAGE, "invalid argument")                              \
    X(NOTFOUND, "not found")                                  \
    X(PERM, "permission denied")                              \
    X(GONE, "no such process")                                \
    X(FORMAT, "not a valid file")                             \
    X(INTERRUPTED, "interrupted")

enum pmp_errcode {
#define PMP_ERR_ENUM_(name, msg) PMP_E_##name##_IDX,
    PMP_ERRORS(PMP_ERR_ENUM_)
#undef PMP_ERR_ENUM_
        PMP_E_COUNT_
};

/* Error codes are the negated indices: PMP_E_NOMEM == -1 etc. */
#define PMP_E_OK 0
#define PMP_E_NOMEM (-PMP_E_NOMEM_IDX)
#define PMP_E_SYS (-PMP_E_SYS_IDX)
#define PMP_E_TARGET (-PMP_E_TARGET_IDX)
#define PMP_E_CORRUPT (-PMP_E_CORRUPT_IDX)
#define PMP_E_UNSUPPORTED (-PMP_E_UNSUPPORTED_IDX)
#define PMP_E_USAGE (-PMP_E_USAGE_IDX)
#define PMP_E_NOTFOUND (-PMP_E_NOTFOUND_IDX)
#define PMP_E_PERM (-PMP_E_PERM_IDX)
#define PMP_E_GONE (-PMP_E_GONE_IDX)
#define PMP_E_FORMAT (-PMP_E_FORMAT_IDX)
#define PMP_E_INTERRUPTED (-PMP_E_INTERRUPTED_IDX)

struct pmp_error {
    int code;         /* PMP_E_* (0 when unset) */
    int tid;          /* thread the error concerns, 0 if none */
    uint64_t addr;    /* target address the error concerns, 0 if none */
    char msg[512];    /* one line, lowercase, no trailing period */
};

/* Static text for an error code; never NULL. */
const char *pmp_strerror(int code);

/*
 * Record an error: sets err->code and formats err->msg (printf style).
 * err may be NULL.  Returns code, so callers can `return pmp_error_set(...)`.
 */
int pmp_error_set(struct pmp_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errnum)". */
int pmp_error_errno(struct pmp_error *err, int code, int errnum,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ */
/* Registers (x86_64, indexed by DWARF register number)                */

enum pmp_reg {
    PMP_REG_RAX = 0, PMP_REG_RDX = 1, PMP_REG_RCX = 2, PMP_REG_RBX = 3,
    PMP_REG_RSI = 4, PMP_REG_RDI = 5, PMP_REG_RBP = 6, PMP_REG_RSP = 7,
    PMP_REG_R8 = 8, PMP_REG_R9 = 9, PMP_REG_R10 = 10, PMP_REG_R11 = 11,
    PMP_REG_R12 = 12, PMP_REG_R13 = 13, PMP_REG_R14 = 14, PMP_REG_R15 = 15,
    PMP_REG_RIP = 16,
    PMP_NREGS = 17
};

struct pmp_regs {
    uint64_t r[PMP_NREGS];  /* DWARF numbering */
    uint64_t orig_rax;      /* syscall number, or (uint64_t)-1 */
    uint64_t eflags;
    uint64_t fs_base;
};

/* ------------------------------------------------------------------ */
/* Sessions                                                            */

struct pmp_session;

enum pmp_attach_mode {
    /*
     * The core attaches itself with PTRACE_SEIZE, stops every thread with
     * PTRACE_INTERRUPT for the snapshot and detaches afterwards.  If the
     * process holding the session dies, the kernel detaches and the
     * target runs on (no SIGSTOP is ever sent).
     */
    PMP_ATTACH_SEIZE = 0,
    /*
     * The calling thread is already the ptracer (gdb's main thread) and
     * every thread is stopped.  The core only reads: registers with
     * PTRACE_GETREGS, memory from /proc/PID/mem.  It never resumes,
     * stops or detaches anything.
     */
    PMP_ATTACH_TRACED = 1,
    /*
     * Another process is the ptracer (lldb-server, under lldb) and every
     * thread is stopped.  The core only reads: the registers the front-end
     * handed over for this stop (pmp_session_set_regs), the syscall number
     * from /proc/PID/task/TID/syscall, memory from /proc/PID/mem or, where
     * that is refused (or opts->read_always), through opts->read.  It never
     * resumes, stops or detaches anything.
     */
    PMP_ATTACH_EXTERNAL = 2,
};

/*
 * A front-end's reader of target memory (PMP_ATTACH_EXTERNAL): like a
 * pread of /proc/PID/mem: the bytes read (short, or 0 where nothing is
 * mapped) or a negative PMP_E_* with err set.  Called with len up to 32 KiB
 * at 32 KiB-aligned addresses (then page by page where a block is short);
 * the core caches what it returns until the front-end says the target ran.
 */
typedef long (*pmp_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len,
                            struct pmp_error *err);

struct pmp_session_opts {
    const char *exe;          /* core: the executable (NULL: from the core) */
    const char *solib_path;   /* ':'-separated directories to find libraries */
    const char *debug_path;   /* ':'-separated debug-file directories, the
                                 whole list; NULL: /usr/lib/debug */
    const char *cache_dir;    /* decompressed debug files by build-id
                                 (CACHE/xx/rest.debug), looked up first;
                                 NULL: none */
    pmp_read_fn read;         /* EXTERNAL: memory through the front-end */
    void *read_ctx;
    int read_always;          /* 1: even where /proc/PID/mem is readable */
};

/* A thread's registers as the debugger holding the process sees them. */
struct pmp_thread_regs {
    int tid;
    struct pmp_regs regs;     /* orig_rax (uint64_t)-1: from /proc */
};

/*
 * PMP_ATTACH_EXTERNAL: the registers of the threads at the current stop
 * (copied).  `stop` names the stop (the debugger's stop id): while it is
 * the same, memory read through opts->read stays cached.  A thread
 * missing from v has no registers (one failed thread, not a failed call).
 */
int pmp_session_set_regs(struct pmp_session *s, const struct pmp_thread_regs *v,
                         size_t n, uint64_t stop, struct pmp_error *err);
/* 1 when target memory is read through opts->read, 0 when directly. */
int pmp_session_reads_via_frontend(const struct pmp_session *s);

/*
 * Debug files this session read whose DWARF sections are compressed and
 * that the cache does not hold yet: (build-id, file) pairs the front-end
 * may decompress into opts.cache_dir (the first lookup inflates them at
 * every start: ~40 ms for libc6-dbg).  Owned by the session.
 */
struct pmp_cache_todo {
    const char *build_id;     /* lowercase hex */
    const char *path;         /* the compressed debug file */
    const char *dest;         /* where the decompressed copy belongs */
};
size_t pmp_session_cache_todo(struct pmp_session *s,
                              const struct pmp_cache_todo **out);

/*
 * Open a live process.  In PMP_ATTACH_SEIZE mode nothing is attached yet;
 * each snapshot attaches, stops, reads, resumes and detaches.
 * *out is owned by the caller (pmp_session_free).
 */
int pmp_session_open_pid(struct pmp_session **out, int pid,
                         enum pmp_attach_mode mode,
                         const struct pmp_session_opts *opts,
                         struct pmp_error *err);

/* Open an ELF core file.  *out is owned by the caller. */
int pmp_session_open_core(struct pmp_session **out, const char *core_path,
                          const struct pmp_session_opts *opts,
                          struct pmp_error *err);

void pmp_session_free(struct pmp_session *s);

/* Process id (live) or the core's pid; 0 if unknown. */
int pmp_session_pid(const struct pmp_session *s);
/* 1 for a core file, 0 for a live process. */
int pmp_session_is_core(const struct pmp_session *s);

/*
 * Warnings collected so far (build-id mismatches, missing files, ...),
 * one line each, owned by the session; *n receives the count.
 */
const char *const *pmp_session_warnings(const struct pmp_session *s, size_t *n);

/* ------------------------------------------------------------------ */
/* Snapshots: every thread's registers and raw unwound PCs             */

enum pmp_frame_flags {
    PMP_FRAME_ACTIVATION = 1 << 0,  /* pc is exact (innermost or after a
                                       signal frame); else a return address */
    PMP_FRAME_SIGNAL = 1 << 1,      /* this frame is a signal trampoline */
    PMP_FRAME_FP = 1 << 2,          /* found by the frame-pointer fallback */
    PMP_FRAME_TAILCALL = 1 << 3,    /* a function that left by a tail call,
                                       rebuilt from DWARF call sites (pc:
                                       the call site's return address) */
};

enum pmp_stack_flags {
    PMP_STACK_TRUNCATED = 1 << 0,   /* hit the frame cap */
    PMP_STACK_UNWIND_ERR = 1 << 1,  /* unwinding stopped on an error */
    PMP_STACK_NO_REGS = 1 << 2,     /* registers could not be read */
    PMP_STACK_GO = 1 << 3,          /* stopped at Go code (no Go unwinder yet) */
    PMP_STACK_WORKER = 1 << 4,      /* a kernel worker inside the process
                                       (io_uring's iou-wrk/iou-sqp, vhost):
                                       no user context, nothing to unwind */
};

/*
 * What a thread blocked in a futex-based wait waits for, decoded from its
 * syscall arguments and the lock's memory (locks.c; the layouts of the
 * target's glibc release, ext/layouts/layout-glibc-nptl.h).  Filled by a snapshot
 * taken with decode_waits.
 */
enum pmp_wait_kind {
    PMP_WAIT_NONE = 0,     /* not in a futex wait */
    PMP_WAIT_MUTEX,        /* pthread_mutex_t (and std::mutex) */
    PMP_WAIT_RWLOCK,       /* pthread_rwlock_t (and std::shared_mutex) */
    PMP_WAIT_COND,         /* pthread_cond_t (std::condition_variable) */
    PMP_WAIT_SEM,          /* sem_t */
    PMP_WAIT_JOIN,         /* pthread_join */
    PMP_WAIT_STDIO,        /* a FILE's _IO_lock_t */
    PMP_WAIT_WAITV,        /* futex_waitv on several words */
    PMP_WAIT_FUTEX,        /* a futex word we cannot name */
};

enum pmp_owner_source {
    PMP_OWNER_NONE = 0,       /* glibc records no owner */
    PMP_OWNER_MUTEX_OWNER,    /* pthread_mutex_t.__owner (+8) */
    PMP_OWNER_FUTEX_WORD,     /* robust/PI futex word & 0x3fffffff */
    PMP_OWNER_JOINED_TID,     /* the joined thread's (its struct pthread
                                 holds the join word) */
    PMP_OWNER_CUR_WRITER,     /* pthread_rwlock_t.__cur_writer (+24) */
    PMP_OWNER_STDIO,          /* _IO_lock_t.owner -> struct pthread.tid */
};

/* Mutex subkind bits (pthread_mutex_t.__kind). */
#define PMP_MUTEX_TYPE(k) ((k) & 3)   /* 0 normal 1 recursive 2 errorcheck 3 adaptive */
#define PMP_MUTEX_ROBUST 16
#define PMP_MUTEX_PI 32
#define PMP_MUTEX_PP 64
#define PMP_MUTEX_PSHARED 128

enum pmp_rw_wait {
    PMP_RW_WRITER_FOR_WRITER = 1,   /* wrlock while write-held */
    PMP_RW_READER_FOR_WRITER = 2,   /* rdlock while write-held */
    PMP_RW_WRITER_FOR_READERS = 3,  /* wrlock while read-held */
    PMP_RW_READER_QUEUED = 4,       /* rdlock behind a waiting writer */
};

#define PMP_WAITV_MAX 8

struct pmp_wait {
    int kind;                 /* enum pmp_wait_kind */
    int syscall;              /* 202 futex, 219 restart_syscall, 449 waitv */
    uint64_t object;          /* the lock object's address */
    uint64_t futex;           /* the futex word waited on */
    uint32_t futex_op, futex_val;
    uint32_t word;            /* the futex word's value when read */
    int owner;                /* owner TID, 0 if none recorded */
    int owner_source;         /* enum pmp_owner_source */
    int owner_died;           /* robust: FUTEX_OWNER_DIED set */
    int timed;                /* a timed wait (timedlock, clock*) */
    unsigned subkind;         /* mutex: __kind; rwlock: enum pmp_rw_wait */
    int readers;              /* rwlock: registered readers, -1 unknown */
    int waiters;              /* cond: waiter refs; sem: nwaiters; -1 */
    int count;                /* mutex/stdio recursion count; sem value */
    int nwaitv;               /* futex_waitv: entries (<= PMP_WAITV_MAX) */
    uint64_t waitv_addr[PMP_WAITV_MAX];
    uint32_t waitv_val[PMP_WAITV_MAX];
};

struct pmp_thread {
    int tid;
    char name[64];            /* comm (live) or "" (core) */
    char state;               /* R S D T t Z X, or 'C' for a core */
    uint64_t utime_ns, stime_ns;
    struct pmp_regs regs;
    int regs_ok;
    int nframes;
    uint64_t *pcs;            /* nframes entries, innermost first */
    uint8_t *frame_flags;     /* nframes entries of enum pmp_frame_flags */
    unsigned flags;           /* enum pmp_stack_flags */
    char error[160];          /* why unwinding stopped, if it did */
    struct pmp_wait wait;     /* with decode_waits */
};

struct pmp_snapshot {
    size_t nthreads;
    struct pmp_thread *threads;  /* sorted by tid */
    uint64_t time_ns;            /* CLOCK_REALTIME at the stop */
    uint64_t stopped_ns;         /* how long the target was stopped (live) */
    size_t nframes_total;
    size_t nthreads_failed;      /* threads with NO_REGS or UNWIND_ERR */
    size_t nthreads_cut;         /* other threads whose stack was cut short
                                    (TRUNCATED, or GO: Go code this pmprof
                                    cannot walk) */
};

struct pmp_snapshot_opts {
    int max_frames;              /* 0: default 256 */
    const int *only_tids;        /* NULL: every thread */
    size_t nonly_tids;
    int decode_waits;            /* decode futex waits while stopped */
};

/*
 * Take a snapshot: (live) stop all threads, read registers, unwind,
 * resume; (core) read the notes and unwind.  Per-thread failures are
 * recorded in the thread, not returned: the call fails only if no thread
 * could be read at all.  *out is owned by the caller (pmp_snapshot_free).
 */
int pmp_session_snapshot(struct pmp_session *s,
                         const struct pmp_snapshot_opts *opts,
                         struct pmp_snapshot **out, struct pmp_error *err);

void pmp_snapshot_free(struct pmp_snapshot *snap);

/*
 * Live processes: every thread's futex wait decoded WITHOUT stopping it,
 * from /proc/PID/task/TID/syscall and /proc/PID/mem (racy by nature: a
 * first read to compare a snapshot with).  *out (malloc'd, *n entries)
 * holds tid + wait; threads not in a futex wait have kind NONE.
 */
struct pmp_peek {
    int tid;
    struct pmp_wait wait;
};
/*
 * The target's glibc release, read from its libc.so ("release version
 * X.Y"): 1 when ext/layouts/layout-glibc-nptl.h has its row (locks are decoded),
 * 0 when not.  *version: "X.Y", "" when unreadable, NULL without libc.so.
 */
int pmp_session_glibc(struct pmp_session *s, const char **version);

/*
 * Row i of the lock layout table: its release in *version and up to max
 * (member, offset-or-value) pairs; returns how many, 0 past the last row.
 */
size_t pmp_nptl_layout_fields(size_t i, const char **version,
                              const char **names, int *values, size_t max);

int pmp_session_peek_waits(struct pmp_session *s, struct pmp_peek **out,
                           size_t *n, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Symbolization                                                       */

/*
 * Synthetic PCs stand for frames that are not code: they symbolize to
 * the bracketed names below and have no module.
 */
#define PMP_PC_SYNTH_BASE UINT64_C(0xfffffffffffff000)
enum pmp_synth {
    PMP_SYNTH_TRUNCATED = 1,     /* "[truncated]" */
    PMP_SYNTH_UNWIND_ERR = 2,    /* "[unwind error]" */
    PMP_SYNTH_NO_REGS = 3,       /* "[no registers]" */
    PMP_SYNTH_LOST = 4,          /* "[lost]" */
    PMP_SYNTH_GO = 5,            /* "[go: no go unwinder yet]" */
    PMP_SYNTH_STOPPED = 6,       /* "[stopped]" (job-control stop) */
    PMP_SYNTH_IO_WORKER = 7,     /* "[io_uring worker]" (PF_IO_WORKER) */
    PMP_SYNTH_KERNEL_WORKER = 8, /* "[kernel worker]": pc and sp 0, the
                                    kernel's mark of a thread that never
                                    runs user code (io_uring or vhost;
                                    a core does not say which) */
    PMP_SYNTH_CPU_UNSAMPLED = 9, /* "[CPU not sampled]": record, perf
                                    method: a thread's CPU time (its
                                    schedstat) that no CPU sample saw */
};
#define PMP_PC_SYNTH(kind) (PMP_PC_SYNTH_BASE + (uint64_t)(kind))
#define PMP_PC_IS_SYNTH(pc) ((pc) >= PMP_PC_SYNTH_BASE)

struct pmp_line {
    const char *function;     /* demangled; "" when unknown */
    const char *system_name;  /* mangled (linkage) name, or = function */
    const char *file;         /* "" when unknown */
    int line;                 /* 0 when unknown */
    int column;
};

struct pmp_module_info {
    uint64_t start, end;      /* mapped address range */
    uint64_t file_offset;     /* file offset of start */
    const char *path;         /* as mapped */
    const char *build_id;     /* lowercase hex, "" if none */
    int is_main;              /* the executable */
    int is_go;                /* has .gopclntab */
    /* Honest flags for pprof Mapping.has_*: set once any lookup in the
       module produced that kind of information. */
    int has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct pmp_frameinfo {
    uint64_t pc;              /* as unwound */
    int module;               /* index for pmp_sym_module(), -1 if none */
    uint64_t module_offset;   /* file-relative address (pc - bias) */
    uint64_t func_offset;     /* pc - the physical function's start, 0
                                 when unknown (Go prints it as +0x..) */
    size_t nlines;            /* >= 1 */
    const struct pmp_line *lines;  /* innermost (inlined) first; the last
                                      entry is the physical function */
};

/*
 * Symbolize one PC (pc-1 is looked up for return addresses, i.e. when
 * activation is 0).  The result is cached per (pc, activation) and owned
 * by the session: valid until pmp_session_free().  Never fails for a bad
 * PC: unknown code yields a line whose function is "" (renderers print
 * module+0xoffset).
 */
int pmp_sym_lookup(struct pmp_session *s, uint64_t pc, int activation,
                   const struct pmp_frameinfo **out, struct pmp_error *err);

/*
 * The data symbol covering addr (a global lock's name), demangled: *name
 * "" when there is none.  Owned by the session.
 */
int pmp_sym_data(struct pmp_session *s, uint64_t addr, const char **name,
                 uint64_t *offset);

/* Module table (grown by lookups).  Pointers owned by the session. */
size_t pmp_sym_nmodules(struct pmp_session *s);
const struct pmp_module_info *pmp_sym_module(struct pmp_session *s, size_t i);

/*
 * A symbol source abstracts the symbolizer for writers, so that writers
 * can be tested with synthetic symbols.  pmp_session_symsource() fills
 * one backed by a session.
 */
struct pmp_symsource {
    void *ctx;
    int (*lookup)(void *ctx, uint64_t pc, int activation,
                  const struct pmp_frameinfo **out, struct pmp_error *err);
    size_t (*nmodules)(void *ctx);
    const struct pmp_module_info *(*module)(void *ctx, size_t i);
};

void pmp_session_symsource(struct pmp_session *s, struct pmp_symsource *out);

/* ------------------------------------------------------------------ */
/* Merged stacks as text (render.c)                                    */

struct pmp_render_opts {
    int all;       /* every thread on its own, in snapshot (TID) order */
    int depth;     /* keep the N innermost frames; 0: all */
};

/*
 * The body of `pmprof stacks` (text, without its header line): threads
 * with identical symbolized stacks merged, most frequent first.  *out is
 * malloc'd; *ngroups receives the number of stacks printed.
 */
int pmp_render_stacks(struct pmp_session *s, const struct pmp_snapshot *snap,
                      const struct pmp_render_opts *o, char **out,
                      size_t *ngroups, struct pmp_error *err);

/*
 * `pmprof snapshot`: the snapshot as a gzipped pprof profile at path
 * (sample type threads/count, one sample per thread; labels thread (its
 * name), tid (numeric, unit "tid") and state), with the given comments.
 */
int pmp_snapshot_write_pprof(struct pmp_session *s,
                             const struct pmp_snapshot *snap, const char *path,
                             const char *const *comments, size_t ncomments,
                             struct pmp_error *err);

/* A thread's state as reports show it: R S D T t Z, "core", "?". */
const char *pmp_thread_state_name(char state);

/* ------------------------------------------------------------------ */
/* pprof writer (pprof.c)                                              */

struct pmp_pprof;

struct pmp_value_type {
    const char *type;   /* e.g. "threads", "samples", "cpu" */
    const char *unit;   /* e.g. "count", "nanoseconds" */
};

struct pmp_label {
    const char *key;
    const char *str;    /* string label, or NULL for a numeric one */
    int64_t num;
    const char *unit;   /* numeric unit, e.g. "nanoseconds"; NULL: none */
};

struct pmp_pprof_opts {
    const struct pmp_value_type *sample_types;
    size_t nsample_types;                /* 1..8 */
    struct pmp_value_type period_type;   /* type NULL: none */
    int64_t period;
    int64_t time_nanos;                  /* wall-clock start */
    int64_t duration_nanos;
    const char *default_sample_type;     /* NULL: unset */
    const char *const *comments;
    size_t ncomments;
};

/*
 * Begin a profile.  Strings in opts are copied.  *out owned by the
 * caller (pmp_pprof_free).  syms must outlive the builder.
 */
int pmp_pprof_begin(struct pmp_pprof **out, const struct pmp_symsource *syms,
                    const struct pmp_pprof_opts *opts, struct pmp_error *err);

/* A profile counting one thing (sample type and period type TYPE/count,
   period 1): snapshots' threads, goroutines. */
int pmp_pprof_begin_count(struct pmp_pprof **out,
                          const struct pmp_symsource *syms, const char *type,
                          int64_t time_nanos, const char *const *comments,
                          size_t ncomments, struct pmp_error *err);

/*
 * Add one sample: pcs[0] is the leaf; frame_flags[i] & PMP_FRAME_ACTIVATION
 * selects exact-pc lookup (frame_flags may be NULL: pcs[0] exact, the rest
 * return addresses).  values has nsample_types entries.  Identical
 * (stack, labels) samples are merged by adding values.
 */
int pmp_pprof_add(struct pmp_pprof *p, const uint64_t *pcs,
                  const uint8_t *frame_flags, size_t npcs,
                  const int64_t *values, const struct pmp_label *labels,
                  size_t nlabels, struct pmp_error *err);

/* Symbolize, encode, gzip and write the profile to path. */
int pmp_pprof_write(struct pmp_pprof *p, const char *path,
                    struct pmp_error *err);

void pmp_pprof_free(struct pmp_pprof *p);


/* ------------------------------------------------------------------ */
/* Sampling: record (record.c) and its writers (writers.c)             */

/*
 * One sample = every wanted thread stopped together (PTRACE_INTERRUPT),
 * its registers and the live part of its stack copied, all threads
 * resumed; unwinding from the copy happens after the resume.  Symbols
 * are looked up once per unique pc when a file is written.
 */
enum pmp_sample_state {
    PMP_SAMPLE_RUNNING = 0,   /* on CPU or runnable (user code) */
    PMP_SAMPLE_SLEEPING = 1,  /* blocked in a system call */
    PMP_SAMPLE_STOPPED = 2,   /* job-control stopped (SIGSTOP ...) */
    PMP_SAMPLE_LOST = 3,      /* did not stop in time: stack unknown */
};

struct pmp_record_stats {
    uint64_t samples;          /* sampling cycles taken */
    uint64_t thread_samples;   /* (cycle, thread) stacks recorded */
    uint64_t lost;             /* (cycle, thread) pairs lost */
    uint64_t late;             /* ticks skipped because a cycle overran */
    uint64_t elapsed_ns;       /* since the first sample */
    uint64_t pause_median_ns;  /* time the target was held per cycle */
    uint64_t pause_p99_ns;
    uint64_t pause_max_ns;
    uint64_t unwind_ns;        /* total time spent unwinding (target running) */
    uint64_t frames;           /* frames unwound in total */
    double rate_hz;            /* achieved cycles per second */
    int nthreads;              /* threads traced now */
    int threads_seen;          /* distinct threads sampled */
    int exited;                /* the target exited while recording */
    int exec;                  /* the target called execve (recording ended) */
    int full;                  /* stopped: sample limit or memory exhausted */
    int rt;                    /* the sampler runs SCHED_FIFO */
    int perf;                  /* method: 1 CPU samples from perf events
                                  (no stop), 0 ptrace only */
    int perf_errno;            /* why perf_event_open was refused */
    int perf_kernel;           /* CPU samples count time in the kernel
                                  (system calls) too; 0: user mode only
                                  (refused: perf_event_paranoid) */
    uint64_t stops;            /* thread stops (interrupt and unwind) */
    uint64_t stopped_ns;       /* sum over stops of the time held */
    uint64_t reused;           /* off-CPU samples reusing a stack */
    uint64_t cpu_samples;      /* CPU samples from perf events */
    uint64_t perf_lost;        /* perf samples the kernel dropped */
    uint64_t max_stop_ns;      /* longest time any one thread was held
                                  stopped (an upper bound: from the last
                                  time it was seen running to its detach) */
    uint64_t stops_over;       /* thread stops longer than the bound */
    uint64_t sig_passed;       /* signals met in a signal-delivery-stop
                                  (dequeued between seize and interrupt),
                                  handed back at once by the detach */
    uint64_t late_stops;       /* stops that came after the tick gave up
                                  waiting (detached as soon as seen) */
    uint64_t bound_lost;       /* samples given up: the stop bound came
                                  before their stack was read */
    /* The machine's part: the sampler asked to wake at a time (a timed
       wait for stops, or between ticks) and ran only later.  Running
       SCHED_FIFO, only the machine keeps it off then (a hypervisor
       taking the vCPU, higher real-time work, a kernel section that
       cannot be preempted); a thread held meanwhile waits with it. */
    uint64_t stall_ns;         /* total time the sampler woke late */
    uint64_t stall_max_ns;     /* longest single late wake-up */
    uint64_t max_stop_own_ns;  /* longest stop less the sampler's late
                                  wake-ups during it: what pmprof's own
                                  work held (the bound applies to it) */
    uint64_t stops_over_own;   /* stops whose own part is over the bound */
    /* The longest stops over the bound, for matching with the machine's
       stalls: start (CLOCK_MONOTONIC), length, the sampler's late
       wake-ups during it. */
    struct pmp_stop_over {
        uint64_t at_ns, ns, stall_ns;
    } over[8];
    int nover;
    /* Perf method: how each tick learned who ran (docs/record.md). */
    int switches;              /* context switch records in use */
    int switch_errno;          /* why a thread's switch event was refused */
    uint64_t switch_records;   /* context switch records read */
    uint64_t switch_lost;      /* switch records the kernel dropped */
    uint64_t state_reads;      /* /proc/PID/task/TID/{syscall,stat} reads
                                  to tell running from asleep */
    uint64_t sched_reads;      /* schedstat reads by the ticks */
    uint64_t task_lists;       /* listings of /proc/PID/task (at start,
                                  then when a thread was born or ended) */
};

struct pmp_record_opts {
    double hz;                 /* samples per second; 0: 99 */
    uint64_t duration_ns;      /* 0: until progress() returns nonzero or
                                  the target exits */
    int max_frames;            /* 0: 256 */
    size_t stack_bytes;        /* most stack bytes copied per thread and
                                  sample; 0: 64 KiB */
    const int *only_tids;      /* NULL: every thread */
    size_t nonly_tids;
    const char *thread_regex;  /* POSIX ERE on thread names; NULL: all */
    int no_perf;               /* ptrace method even where perf events
                                  are allowed */
    int floor;                 /* benchmark: no unwinding, 256-byte stack
                                  reads (the bare ptrace floor) */
    uint64_t progress_ns;      /* progress() period; 0: 200 ms */
    /* Called between samples (never while the target is stopped) and
       once at the end; nonzero stops recording. */
    int (*progress)(void *ctx, const struct pmp_record_stats *st);
    void *progress_ctx;
};

struct pmp_recording;

/*
 * Record a live session opened in PMP_ATTACH_SEIZE mode.  Stops when the
 * duration is over, progress() asks, or the target exits; a recording
 * with samples is returned in every one of those cases.  The target is
 * detached and running afterwards.  *out owned by the caller; it refers
 * to the session (for symbols), which must outlive it.
 */
int pmp_session_record(struct pmp_session *s, const struct pmp_record_opts *o,
                       struct pmp_recording **out, struct pmp_error *err);
void pmp_recording_free(struct pmp_recording *r);
void pmp_recording_stats(const struct pmp_recording *r,
                         struct pmp_record_stats *out);

/* Per-thread totals of a recording. */
struct pmp_rec_thread {
    int tid;
    const char *name;
    uint64_t samples, lost;
    int64_t cpu_ns, wall_ns;
    int64_t seen_ns;   /* first seen, from the recording's start (0: then) */
    int64_t gone_ns;   /* its end noticed, from the start; -1: alive */
};
size_t pmp_recording_threads(const struct pmp_recording *r,
                             const struct pmp_rec_thread **out);

enum pmp_rec_format {
    PMP_FMT_PPROF = 0,       /* gzipped profile.proto */
    PMP_FMT_FOLDED = 1,      /* collapsed stacks, one line per stack */
    PMP_FMT_SPEEDSCOPE = 2,  /* speedscope file format, a profile per thread */
    PMP_FMT_CHROME = 3,      /* Chrome Trace Event JSON (Perfetto) */
};

/* Symbolize and write; the file appears complete or not at all. */
int pmp_recording_write(struct pmp_recording *r, enum pmp_rec_format fmt,
                        const char *path, struct pmp_error *err);

struct pmp_top_entry {
    const char *function;    /* leaf function (inline-aware), owned by r */
    uint64_t samples;
    int64_t cpu_ns, wall_ns;
};
/*
 * The functions that were the leaf most often, sorted by cpu (by_wall 0)
 * or wall time (1); at most n entries into out.  Returns the count.
 */
size_t pmp_recording_top(struct pmp_recording *r, int by_wall,
                         struct pmp_top_entry *out, size_t n);

/* ------------------------------------------------------------------ */
/* glibc malloc from outside (heap.c)                                  */

#define PMP_HEAP_MAX_BINS 128
#define PMP_HEAP_MAX_HEAPS 64
#define PMP_HEAP_MAX_ERRORS 256

struct pmp_heap_bin {
    int index;                /* 1 unsorted, 2..63 small, 64..126 large */
    uint64_t count, bytes, min, max;
    /* the same with the size words as stored (flag bits included), as
       malloc_info() prints them */
    uint64_t raw_bytes, raw_min, raw_max;
};

struct pmp_heap_heap {        /* a non-main arena's mmapped heap */
    uint64_t addr, size, mprotect_size;
};

struct pmp_heap_arena {
    uint64_t addr;
    int is_main;
    /* from the chunk walk (walk_chunks) */
    uint64_t app_chunks, app_bytes;       /* in use by the program */
    uint64_t tcache_chunks, tcache_bytes; /* cached in threads' tcaches */
    uint64_t overhead_bytes;              /* headers, fenceposts, tcache
                                             structs */
    uint64_t walked_chunks;
    int walk_complete;
    unsigned flags;
    uint64_t top, top_size;
    uint64_t next_free, attached_threads;
    uint64_t system_mem, max_system_mem;
    uint64_t fast_count, fast_bytes;
    uint64_t fast_by_bin[10];
    uint64_t fast_head[10];           /* chunk addresses */
    uint64_t bin_count, bin_bytes;    /* unsorted + small + large */
    uint64_t largest_free;            /* top included */
    size_t nbins;
    struct pmp_heap_bin bins[PMP_HEAP_MAX_BINS];
    size_t nheaps;                    /* may exceed PMP_HEAP_MAX_HEAPS */
    struct pmp_heap_heap heaps[PMP_HEAP_MAX_HEAPS];
};

#define PMP_HEAP_TCACHE_BINS 76  /* 64 small (+ 12 large from 2.42) */

struct pmp_heap_tcache {       /* one thread's tcache */
    int tid;
    uint64_t addr;                /* tcache_perthread_struct, 0 if none */
    int arena;                    /* index of the arena holding it, -1 */
    int unknown;                  /* its TLS could not be read (listed in
                                     errors); addr 0 */
    uint64_t chunks, bytes;
    uint16_t counts[PMP_HEAP_TCACHE_BINS];  /* chunks held per bin */
    uint64_t bin_bytes[PMP_HEAP_TCACHE_BINS];
};

struct pmp_heap_size {         /* histogram row */
    uint64_t size;                /* chunk size */
    uint64_t used, used_bytes, free, free_bytes, cached, cached_bytes;
};

struct pmp_heap_error {
    uint64_t addr;
    char msg[192];
};

struct pmp_heap {
    char version[32];                 /* "2.36": libc's release banner */
    char build_id[48];                /* libc's, hex */
    char libc_path[256];
    uint64_t libc_base;
    int nfastbins;                    /* the version's: 10, 0 from 2.43 */
    int tcache_bins;                  /* 64, 76 from 2.42 */
    int safe_linking;                 /* 2.32+ */
    uint64_t main_arena, mp;
    char main_arena_method[48], mp_method[48];
    char layout[64];                  /* where the offsets come from */
    uint64_t trim_threshold, mmap_threshold, sbrk_base, tcache_count;
    uint64_t n_mmaps, max_n_mmaps, mmapped_mem, max_mmapped_mem;
    size_t narenas, arenas_cap;
    struct pmp_heap_arena *arenas;    /* [0] is main_arena */
    size_t nthreads;
    int64_t tcache_tpoff;             /* thread-pointer offset of tcache */
    size_t ntcaches;
    struct pmp_heap_tcache *tcaches;
    size_t nsizes;
    struct pmp_heap_size *sizes;      /* sorted by size */
    int walked;                       /* chunk walk done */
    /* mmapped chunks found by scanning anonymous writable mappings
       (glibc keeps no list of them: compare with n_mmaps/mmapped_mem) */
    uint64_t mm_found, mm_bytes;
    size_t nmm;
    struct { uint64_t addr, size; } mm[64];
    /* chunk lookup (opts.find_addr) */
    uint64_t find_addr, found_chunk, found_size;
    int found_arena;                  /* -1 if not in an arena heap */
    char found_state[32];             /* "in use", "free (bin 12)" ... */
    size_t nerrors, errors_dropped;
    struct pmp_heap_error errors[PMP_HEAP_MAX_ERRORS];
    uint64_t elapsed_ns;
};

/*
 * Read glibc malloc's state (live: with the process stopped).  Fails with
 * a clear message for another allocator or glibc version.  Corruption is
 * not a failure: it is listed in errors.  *out owned by the caller.
 */
struct pmp_heap_opts {
    int walk;                 /* walk every chunk: app/tcache/overhead
                                 split, size histogram, checks */
    uint64_t find_addr;       /* with walk: the chunk holding this address */
    int lists;                /* with walk: also follow every bin and
                                 fastbin list (check: each link checked);
                                 else bins come from the walk (one pass) */
};
int pmp_session_heap(struct pmp_session *s, const struct pmp_heap_opts *o,
                     struct pmp_heap **out, struct pmp_error *err);
void pmp_heap_free(struct pmp_heap *h);

/*
 * Another allocator than glibc's malloc in the process (jemalloc, tcmalloc,
 * mimalloc: its library mapped, its API defined in a module, or its own
 * message in the executable): name "jemalloc"..., why one line of
 * evidence; both "" when none.  pmp_session_heap refuses such a process
 * with PMP_E_UNSUPPORTED and this message.
 */
#define PMP_HEAP_OTHER_ALLOCATOR_FMT                                       \
    "the process allocates with %s, not glibc's malloc (%s): pmprof heap "  \
    "reads glibc's malloc only"
int pmp_session_heap_allocator(struct pmp_session *s, char *name, size_t nlen,
                               char *why, size_t wlen, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Go runtime (golang.c): goroutines, GC and scheduler state of a Go 1.19
   program, read from outside (symbols when present, else located by
   their shape: stripped binaries work).                               */

struct pmp_go_label {
    const char *key, *value;     /* owned by the pmp_go */
};

struct pmp_goroutine {
    int64_t goid;
    int64_t parent_goid;         /* g.parentGoid (1.21+); -1: not kept */
    uint32_t status;             /* _Gidle.._Gleaked, scan bit removed */
    int scan;                    /* the _Gscan bit was set */
    const char *status_name;     /* "waiting", "runnable", ... */
    const char *wait_reason;     /* "" when none (from the target's table) */
    int64_t wait_ns;             /* now - g.waitsince; -1: not known */
    int locked;                  /* LockOSThread (g.lockedm != 0) */
    int tid;                     /* the thread running it, 0 if none */
    int system;                  /* Go's isSystemGoroutine */
    uint64_t addr;               /* the g */
    uint64_t startpc, gopc;      /* start function; the go statement */
    uint64_t chan;               /* waiting: the channel (sudog.c), or 0 */
    uint64_t sema;               /* waiting: a semaphore word (sudog.elem) */
    size_t nlabels;
    const struct pmp_go_label *labels;
    int nframes;
    int stack;                   /* index in pmp_go.stacks, -1: none */
    const uint64_t *pcs;         /* innermost first (in the stack store) */
    const uint8_t *frame_flags;
    unsigned flags;              /* enum pmp_stack_flags */
    char error[96];              /* why the stack is missing or short */
};

/* A distinct goroutine stack (goroutines parked alike share one). */
struct pmp_go_stack {
    size_t off;                  /* into stack_pcs / stack_flags */
    int n;
};

/* MemStats/GC figures (runtime.memstats, gcController); -1: not found. */
struct pmp_go_memstats {
    int found;                   /* memstats located */
    uint32_t numgc, numforcedgc;
    uint64_t pause_total_ns, last_gc_unix, last_gc_nanotime;
    uint64_t pause_ns[256], pause_end[256];
    int controller;              /* gcController located */
    int32_t gc_percent;
    int64_t memory_limit, heap_live, heap_marked, heap_inuse, heap_goal,
        total_alloc, total_free;
};

struct pmp_go_sched {
    int found;                   /* allp and sched located */
    int gomaxprocs, idle_ps, spinning_ms, nmidle;
    int ms;                      /* Ms created and not freed (mcount()) */
    int threads;                 /* of those, the ones with an OS thread */
    int64_t global_runq;
    int *runq;                   /* per P: runq length (+1 for runnext) */
    int *p_status;               /* per P */
};

struct pmp_go {
    char version[64];            /* "go1.19.8", "" if unknown */
    uint64_t now_mono;           /* the target's nanotime() at the read */
    size_t ngoroutines;
    struct pmp_goroutine *goroutines;   /* dead ones skipped; by goid */
    size_t nuser, nsystem;
    const struct pmp_go_stack *stacks;  /* distinct stacks */
    size_t nstacks;
    const uint64_t *stack_pcs;
    const uint8_t *stack_flags;
    struct pmp_go_memstats mem;
    struct pmp_go_sched sched;
    void *priv;
};

struct pmp_go_opts {
    int max_frames;              /* 0: 256 */
};

/*
 * Read the Go runtime's state.  Live: the target is stopped while the
 * goroutines are read (one stop, together with the snapshot if snap_out
 * is given).  PMP_E_UNSUPPORTED for a program that is not Go or whose Go
 * version is not supported (the message says which).
 */
int pmp_session_go(struct pmp_session *s, const struct pmp_go_opts *o,
                   const struct pmp_snapshot_opts *sopts,
                   struct pmp_snapshot **snap_out, struct pmp_go **out,
                   struct pmp_error *err);
void pmp_go_free(struct pmp_go *g);

/*
 * A goroutine profile (goroutine/count; one sample per distinct stack and
 * labels; user goroutines) as gzipped pprof, written to path.
 */
int pmp_go_write_profile(struct pmp_session *s, const struct pmp_go *g,
                         const char *path, struct pmp_error *err);

/* ------------------------------------------------------------------ */
/* Misc                                                                */

/* Name of x86_64 syscall nr, or NULL. */
const char *pmp_syscall_name(long nr);

/* Demangle C++/Rust; returns a malloc'd string or NULL if not mangled. */
char *pmp_demangle(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* PMPROF_H */

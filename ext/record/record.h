/*
 * record.h: the recording's private layout, shared by record.c (which
 * fills it) and writers.c (which turns it into files).
 *
 * Must not: be included outside ext/.
 */
#ifndef PMPROF_RECORD_H
#define PMPROF_RECORD_H

#include <regex.h>
#include <signal.h>

#include "pmprof-internal.h"

/* One thread's perf event and its ring (record-perf.c). */
struct pmp_perf {
    int fd;
    void *base;
    size_t map_len;
    unsigned char *data;
    size_t data_size;
    unsigned char *bounce;
    size_t bounce_cap;
    uint64_t lost, bad;
    uint64_t records;             /* records read (switch ring) */
    uint64_t tasks;               /* thread births and ends seen (FORK,
                                     EXIT records, switch ring) */
    struct pmp_perf *sw;          /* its context switches, or NULL */
};

struct pmp_perf_sample {
    int pid, tid;
    uint64_t time;                /* CLOCK_MONOTONIC ns */
    struct pmp_regs regs;         /* user registers (no fs_base) */
    const unsigned char *stack;   /* copy of the user stack from rsp */
    uint64_t stack_len;
};

/* A context switch of the thread (PERF_RECORD_SWITCH). */
struct pmp_perf_switch {
    int pid, tid;
    uint64_t time;                /* CLOCK_MONOTONIC ns */
    int out;                      /* 1 switched out, 0 switched in */
    int preempt;                  /* out while still runnable */
};

/* 0 or -errno (EACCES/EPERM: not allowed, ENOSYS/ENOENT: no perf).
   *kernel: 1 asks for the ticks in kernel mode too; set to 0 when that
   was refused (then user mode only). */
int pmp_perf_open(struct pmp_perf *p, int tid, uint64_t period_ns,
                  uint32_t stack_bytes, int *kernel);
/* Also ask for tid's context switches, in a ring of their own (p->sw):
   0 or -errno (EINVAL: the kernel has no context_switch; ENOSYS: it
   does not say whether a switch out was a preemption, before 4.17). */
int pmp_perf_open_switches(struct pmp_perf *p, int tid, unsigned pages);
void pmp_perf_close(struct pmp_perf *p);
/* Call fn for every sample in the ring, in order; frees their space. */
int pmp_perf_drain(struct pmp_perf *p,
                   int (*fn)(void *ctx, const struct pmp_perf_sample *s),
                   void *ctx);
/* Call fn for every context switch in p->sw's ring, in order. */
int pmp_perf_drain_switches(struct pmp_perf *p,
                            int (*fn)(void *ctx,
                                      const struct pmp_perf_switch *s),
                            void *ctx);

/* A thread's state at its last context switch record (rthread). */
enum { SW_NONE, SW_RUN, SW_BLOCKED };

#define PAUSE_BUCKETS 2000   /* 1 us steps to 1 ms, then 100 us to 100 ms */

struct rthread {
    int tid;
    uint32_t idx;            /* index in recording->threads */
    char name[64];
    int alive;               /* listed in /proc/PID/task */
    int seized;              /* attached: only from a tick's seize to
                                its detach (never between ticks) */
    int stopped;             /* in a ptrace-stop we hold */
    int pending_sig;         /* to deliver when it resumes */
    int group_stop;          /* job-control stopped at its last stop */
    int interrupted;         /* PTRACE_INTERRUPT sent, stop not seen yet */
    int listed;              /* in this tick's /proc/PID/task */
    uint64_t t_sched;        /* when cur_cpu/cur_delay were read */
    uint64_t stall_at;       /* r->stall_ns when its stop began */
    uint64_t rd_at, rd_when; /* r->rd and r->rd_when then */
    uint64_t t_unstopped;    /* last time it was seen not stopped (its
                                stop began later: bounds the stop) */
    int wanted;              /* sampled (thread filters) */
    int worker;              /* a kernel worker (io_uring, vhost): no user
                                context, never sampled */
    int schedfd;             /* /proc/PID/task/TID/schedstat */
    int statfd;              /* /proc/PID/task/TID/syscall (perf method) */
    struct pmp_perf *perf;   /* its CPU sample event (perf method) */
    uint64_t fs_base;        /* from its last ptrace stop (Go TLS) */
    /* schedstat when its last stack was taken, or read after the
       resume that followed: unchanged (no run since) means the thread
       still sits in that (sleeping) stack, which is then reused. */
    uint64_t ss_cpu, ss_pcount;
    int ss_ok;
    int ss_pending;          /* stopped asleep: reference not taken yet */
    int64_t last_stack;      /* its last sleeping stack, -1: none */
    int last_sys;
    int64_t last_cpu_stack;  /* its last CPU sample's stack, -1: none */
    size_t last_cpu_ev;      /* 1 + index of its last CPU sample event */
    uint64_t delay_last;     /* schedstat run_delay at its last event */
    uint64_t t_ev;           /* time of its last event (order) */
    int64_t wall_credit;     /* perf: wall charged since t_last */
    /* perf: its schedstat CPU when first read, its CPU samples' time,
       and the time charged as not sampled (unsampled_event) */
    uint64_t cpu0;
    int64_t sampled_ns, unsampled_ns;
    uint64_t cur_cpu, cur_delay, cur_pcount;   /* schedstat this tick */
    int cur_ok;
    int young;               /* born while recording */
    int had_cpu;             /* CPU samples since the last tick */
    int was_running;         /* perf: running or runnable at its last look */
    size_t delay_ev;         /* perf: last_cpu_ev when schedstat was read */
    /* Perf method with context switch records (th->perf->sw): its state
       at its last record, and the switches in since its stack reference
       (the stop that took its last stack, or the look that found it
       still there); sw_ref 0: no reference, the count means nothing. */
    int sw_state;            /* SW_NONE, SW_RUN, SW_BLOCKED */
    int sw_ref;
    uint64_t sw_ref_t;       /* count switches in after this time */
    uint32_t sw_ins;
    uint64_t cpu_last;       /* schedstat at its previous sample */
    uint64_t t_last;         /* CLOCK_MONOTONIC of its previous sample */
    uint64_t seen_at, gone_at;   /* first seen, its end noticed (or 0) */
    int rename;              /* born while recording: name read again
                                1, 2, 4 ... periods after it was seen */
    size_t need;             /* stack bytes to copy next time */
    /* this cycle */
    int sampled;             /* 1 stack copied, 2 job-control stopped */
    int lost;
    struct pmp_regs regs;
    int go_ok;               /* Go: goid/go_labels read while stopped */
    int64_t goid;
    uint64_t go_labels;      /* its g.labels */
    int go_ctx_ok;           /* on g0 for a goroutine: its context and */
    struct pmp_go_ctx go_ctx;    /* the top of its stack, copied */
    unsigned char *gstk;
    size_t gstk_len;
    uint64_t gstk_addr;
    unsigned char *stk;
    size_t stk_cap, stk_len;
    /* totals */
    uint64_t samples, lost_count;
    int64_t cpu_ns, wall_ns;
};

struct pmp_rec_stack {
    size_t off;              /* into pcs/fl */
    uint32_t n;
    uint64_t hash;
};

/* One (cycle, thread) sample, in time order. */
struct pmp_rec_event {
    uint64_t t_ns;           /* since the recording started */
    int64_t cpu_ns;          /* CPU time since the thread's last sample */
    int64_t wall_ns;         /* time since the thread's last sample */
    uint32_t stack;
    uint32_t thread;         /* index in threads */
    int16_t sys;             /* syscall a sleeping thread is in, or -1 */
    uint8_t state;           /* enum pmp_sample_state */
    uint32_t gset;           /* Go: 1 + index in gsets; 0 none */
};

/* The goroutine a Go thread ran at a sample, with its pprof labels. */
struct pmp_rec_gset {
    int64_t goid;
    uint64_t labels_ptr;     /* g.labels when read (cache key) */
    size_t first, n;         /* into glabels */
};

struct pmp_recording {
    struct pmp_session *s;
    int pid;
    uint64_t period_ns;
    int max_frames;
    size_t stack_bytes;
    int floor;
    int *only_tids;
    size_t nonly_tids;
    regex_t regex;
    int have_regex;

    struct rthread **threads;
    size_t nthreads, threads_cap, nalive;
    struct pmp_u64map bytid;

    struct pmp_rec_stack *stacks;
    size_t nstacks, stacks_cap;
    uint64_t *pcs;
    uint8_t *fl;
    size_t npcs, pcs_cap, fl_cap;
    uint32_t *tab;
    size_t tabcap;
    int64_t lost_stack, stopped_stack, unsampled_stack;

    struct pmp_rec_event *events;
    size_t nevents, events_cap;

    uint64_t *pcbuf;
    uint8_t *flbuf;
    sigset_t chld;
    int poke;
    int rdfd;                   /* this thread's schedstat */
    uint64_t rd, rd_when;       /* its run-queue wait, read at rd_when */
    uint64_t last_sweep;        /* sweep_soon() */
    int taskfd;                 /* /proc/PID/task (list_wanted()) */
    int list_due;               /* list it at the next tick */
    int list_always;            /* at every tick (no birth records) */
    uint64_t listed_at;         /* last listing, CLOCK_MONOTONIC */
    int pidfd;                  /* readable once the process is gone */
    int gone;                   /* it was */
    int statfd;                 /* /proc/PID/stat: an execve changes it */
    unsigned long long exe_id[3];   /* startcode, endcode, startstack */
    size_t npending;            /* seized, interrupted, not stopped yet */
    long seize_gap_us;          /* test hook (pmp_test_seize_gap_us) */
    int prio_base, prio_high;   /* SCHED_FIFO: the session's priority;
                                   one above it now (stop_priority) */
    uint64_t t0_mono, t0_real, last_module_tick;
    uint64_t pause_hist[PAUSE_BUCKETS];
    uint64_t npauses;
    struct pmp_record_stats stats;
    int use_perf;               /* CPU samples by perf events */
    uint32_t perf_stack;        /* user stack bytes per perf sample */
    struct rthread *draining;   /* the thread whose ring is read */
    int use_switch;             /* perf: context switch records wanted */
    unsigned switch_pages;      /* their ring (test hook), 0: default */
    int perf_kernel;            /* CPU samples in kernel mode too */

    struct pmp_rec_thread *pub;
    struct pmp_strpool names;   /* writers' rendered names */

    /* Go programs: goroutine ID and labels of each sample */
    int is_go;          /* the Go runtime is readable: goids, labels */
    const struct pmp_go_layout *go_layout;   /* its layout (layout-go.h) */
    int go_stacks;      /* a Go function table: Go stacks, jumps */
    int go_minor;       /* its Go 1.minor */
    int go_ctx_unsup;   /* no g layout for it: jumps are not read */
    struct pmp_rec_gset *gsets;
    size_t ngsets, gsets_cap;
    struct pmp_go_label *glabels;
    size_t nglabels, glabels_cap;
    struct pmp_u64map gset_by;  /* hash(goid, labels) -> 1 + index */
    uint32_t cur_gset;          /* for the event being logged */
};

int64_t pmp_rec_intern(struct pmp_recording *r, const uint64_t *pcs,
                       const uint8_t *fl, uint32_t n);

#endif /* PMPROF_RECORD_H */

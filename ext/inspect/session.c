/*
 * session.c: a session = one target + its symbolizer + its unwinder.
 *
 * Owns: opening targets, taking snapshots (stop -> registers -> unwind ->
 * resume), and the public symbolization entry points.  The target is
 * resumed before any symbol is looked up.
 *
 * Must not: render output (module.c / Python do).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gopclntab.h"
#include "pmprof-internal.h"

static int
session_finish_open(struct pmp_session *s, const struct pmp_session_opts *o,
                    struct pmp_error *err)
{
    int rc;

    if (o) {
        s->opts.exe = pmp_strdup(o->exe);
        s->opts.solib_path = pmp_strdup(o->solib_path);
        s->opts.debug_path = pmp_strdup(o->debug_path);
        s->opts.cache_dir = pmp_strdup(o->cache_dir);
    }
    rc = pmp_symbolizer_new(&s->sym, s->target, &s->opts, err);
    if (rc)
        return rc;
    return pmp_unwinder_new(&s->unw, s->target, s->sym, err);
}

/*
 * Wrap an opened target (or its opening error rc) into a session.  The
 * target is owned by the session from here on, also on failure.
 */
static int
session_new(struct pmp_session **out, int rc, struct pmp_target *target,
            int is_core, const struct pmp_session_opts *opts,
            struct pmp_error *err)
{
    struct pmp_session *s;

    *out = NULL;
    if (rc)
        return rc;
    s = calloc(1, sizeof(*s));
    if (!s) {
        pmp_target_free(target);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    s->target = target;
    s->is_core = is_core;
    rc = session_finish_open(s, opts, err);
    if (rc) {
        pmp_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int
pmp_session_open_pid(struct pmp_session **out, int pid,
                     enum pmp_attach_mode mode,
                     const struct pmp_session_opts *opts,
                     struct pmp_error *err)
{
    struct pmp_target *t = NULL;
    int rc = pmp_target_proc_new(&t, pid, mode, err);

    if (rc == 0 && mode == PMP_ATTACH_EXTERNAL) {
        rc = pmp_target_proc_set_reader(t, opts ? opts->read : NULL,
                                        opts ? opts->read_ctx : NULL,
                                        opts ? opts->read_always : 0, err);
        if (rc) {
            pmp_target_free(t);
            t = NULL;
        }
    }
    return session_new(out, rc, t, 0, opts, err);
}

int
pmp_session_open_core(struct pmp_session **out, const char *core_path,
                      const struct pmp_session_opts *opts,
                      struct pmp_error *err)
{
    struct pmp_target *t = NULL;
    int rc = pmp_target_core_new(&t, core_path, err);

    return session_new(out, rc, t, 1, opts, err);
}

int
pmp_session_set_regs(struct pmp_session *s, const struct pmp_thread_regs *v,
                     size_t n, uint64_t stop, struct pmp_error *err)
{
    return pmp_target_proc_set_regs(s->target, v, n, stop, err);
}

int
pmp_session_reads_via_frontend(const struct pmp_session *s)
{
    return pmp_target_proc_via_reader(s->target);
}

void
pmp_session_free(struct pmp_session *s)
{
    if (!s)
        return;
    pmp_tailcalls_free(s->tc);
    pmp_unwinder_free(s->unw);
    pmp_symbolizer_free(s->sym);
    if (s->target)
        pmp_target_free(s->target);
    free((char *)s->opts.exe);
    free((char *)s->opts.solib_path);
    free((char *)s->opts.debug_path);
    free((char *)s->opts.cache_dir);
    free(s);
}

int
pmp_session_pid(const struct pmp_session *s)
{
    return s->target ? s->target->pid : 0;
}

int
pmp_session_is_core(const struct pmp_session *s)
{
    return s->is_core;
}

const char *const *
pmp_session_warnings(const struct pmp_session *s, size_t *n)
{
    return pmp_symbolizer_warnings(s->sym, n);
}

void
pmp_snapshot_free(struct pmp_snapshot *snap)
{
    size_t i;

    if (!snap)
        return;
    for (i = 0; i < snap->nthreads; i++) {
        free(snap->threads[i].pcs);
        free(snap->threads[i].frame_flags);
    }
    free(snap->threads);
    free(snap);
}

static int
cmp_thread(const void *a, const void *b)
{
    const struct pmp_thread *x = a, *y = b;

    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int
wanted(const struct pmp_snapshot_opts *o, int tid)
{
    size_t i;

    if (!o || !o->only_tids)
        return 1;
    for (i = 0; i < o->nonly_tids; i++)
        if (o->only_tids[i] == tid)
            return 1;
    return 0;
}

/* Append a synthetic frame (room for 2 extra frames is reserved). */
static void
add_synth(struct pmp_thread *th, enum pmp_synth kind)
{
    th->pcs[th->nframes] = PMP_PC_SYNTH(kind);
    th->frame_flags[th->nframes] = PMP_FRAME_ACTIVATION;
    th->nframes++;
}

/*
 * A thread whose pc is Go code parks in the Go runtime's own futexes
 * (notes, runtime locks), not in glibc's: the lock decoder must not read
 * them as pthread objects.
 */
static int
in_go_code(struct pmp_session *s, uint64_t pc)
{
    void *mod = pmp_symbolizer_module_at(s->sym, pc);
    struct pmp_gomod *gm = mod ? pmp_symbolizer_gomod(s->sym, mod) : NULL;
    struct pmp_gofunc f;

    return gm && pmp_gomod_func(gm, pc, &f) == 0;
}

/*
 * The thread table lock decoding needs (TIDs and struct pthread = fs_base;
 * 0 where registers are missing or carry none, as in a read from /proc).
 */
static int
wait_ctx_init(struct pmp_wait_ctx *c, const struct pmp_target_thread *tt,
              size_t nt)
{
    int *tids = pmp_calloc(nt ? nt : 1, sizeof(*tids));
    uint64_t *fs = pmp_calloc(nt ? nt : 1, sizeof(*fs));
    size_t i;

    if (!tids || !fs) {
        free(tids);
        free(fs);
        return PMP_E_NOMEM;
    }
    for (i = 0; i < nt; i++) {
        tids[i] = tt[i].tid;
        fs[i] = tt[i].regs_ok ? tt[i].regs.fs_base : 0;
    }
    c->tids = tids;
    c->fs_base = fs;
    c->n = nt;
    return 0;
}

static void
wait_ctx_free(struct pmp_wait_ctx *c)
{
    free((void *)c->tids);
    free((void *)c->fs_base);
    c->tids = NULL;
    c->fs_base = NULL;
}

int
pmp_session_snapshot(struct pmp_session *s,
                     const struct pmp_snapshot_opts *opts,
                     struct pmp_snapshot **out, struct pmp_error *err)
{
    return pmp_session_snapshot_with(s, opts, out, NULL, NULL, err);
}

int
pmp_session_snapshot_with(struct pmp_session *s,
                          const struct pmp_snapshot_opts *opts,
                          struct pmp_snapshot **out, pmp_stopped_hook hook,
                          void *hook_arg, struct pmp_error *err)
{
    struct pmp_target_thread *tt = NULL;
    struct pmp_snapshot *snap = NULL;
    size_t nt = 0, i, ok = 0;
    int max = opts && opts->max_frames > 0 ? opts->max_frames
                                           : PMP_DEFAULT_FRAMES;
    uint64_t t0;
    int rc, stopped = 0;
    struct pmp_wait_ctx wctx = {0};

    *out = NULL;
    if (max > PMP_MAX_FRAMES_CAP)
        max = PMP_MAX_FRAMES_CAP;
    snap = calloc(1, sizeof(*snap));
    if (!snap)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    t0 = pmp_now_ns(CLOCK_MONOTONIC);
    snap->time_ns = pmp_now_ns(CLOCK_REALTIME);
    rc = s->target->ops->stop(s->target, &tt, &nt, err);
    if (rc)
        goto out;
    stopped = 1;
    pmp_target_drop_cache(s->target);
    pmp_symbolizer_new_stop(s->sym);
    snap->threads = pmp_calloc(nt ? nt : 1, sizeof(*snap->threads));
    if (!snap->threads) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    if (opts && opts->decode_waits && wait_ctx_init(&wctx, tt, nt)) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    if (wctx.tids)
        wctx.nptl = pmp_session_nptl(s, NULL);
    for (i = 0; i < nt; i++) {
        struct pmp_thread *th;
        struct pmp_error uerr = {0};

        if (!wanted(opts, tt[i].tid))
            continue;
        th = &snap->threads[snap->nthreads++];
        th->tid = tt[i].tid;
        pmp_strlcpy(th->name, tt[i].name, sizeof(th->name));
        th->state = tt[i].state;
        th->utime_ns = tt[i].utime_ns;
        th->stime_ns = tt[i].stime_ns;
        th->regs = tt[i].regs;
        th->regs_ok = tt[i].regs_ok;
        th->pcs = malloc(((size_t)max + 2) * sizeof(*th->pcs));
        th->frame_flags = malloc((size_t)max + 2);
        if (!th->pcs || !th->frame_flags) {
            rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            goto out;
        }
        /*
         * A kernel worker inside the process (io_uring, vhost) never runs
         * user code: its user registers are the parent's at creation, with
         * pc and sp 0 (arch/x86/kernel/process.c: "to indicate that to
         * tools like gdb").  Nothing to unwind, and not a failure.
         */
        if (tt[i].io_worker ||
            (th->regs_ok && th->regs.r[PMP_REG_RIP] == 0 &&
             th->regs.r[PMP_REG_RSP] == 0)) {
            th->flags |= PMP_STACK_WORKER;
            add_synth(th, tt[i].io_worker ? PMP_SYNTH_IO_WORKER
                                          : PMP_SYNTH_KERNEL_WORKER);
            continue;
        }
        if (!th->regs_ok) {
            th->flags |= PMP_STACK_NO_REGS;
            pmp_strlcpy(th->error, tt[i].error[0] ? tt[i].error
                                                  : "no registers",
                        sizeof(th->error));
            add_synth(th, PMP_SYNTH_NO_REGS);
            snap->nthreads_failed++;
            continue;
        }
        if (wctx.tids && !in_go_code(s, th->regs.r[PMP_REG_RIP]))
            pmp_decode_wait(s->target, &th->regs, &wctx, &th->wait);
        th->nframes = pmp_unwind(s->unw, &th->regs, th->pcs, th->frame_flags,
                                 max, &th->flags, &uerr);
        if (th->flags & PMP_STACK_UNWIND_ERR) {
            pmp_strlcpy(th->error, uerr.msg, sizeof(th->error));
            add_synth(th, PMP_SYNTH_UNWIND_ERR);
            snap->nthreads_failed++;
        } else if (th->flags & PMP_STACK_GO) {
            add_synth(th, PMP_SYNTH_GO);
        }
        if (th->flags & PMP_STACK_TRUNCATED)
            add_synth(th, PMP_SYNTH_TRUNCATED);
        /* A stack cut short is a partial result too (exit status 1). */
        if (!(th->flags & PMP_STACK_UNWIND_ERR) &&
            (th->flags & (PMP_STACK_GO | PMP_STACK_TRUNCATED)))
            snap->nthreads_cut++;
        snap->nframes_total += (size_t)th->nframes;
        ok++;
    }
    if (hook) {
        rc = hook(hook_arg, tt, nt, err);
        if (rc)
            goto out;
    }
    s->target->ops->resume(s->target);
    stopped = 0;
    snap->stopped_ns = pmp_now_ns(CLOCK_MONOTONIC) - t0;
    /* Symbolization-time work, the target running again: the frames of
       functions that left by a tail call (tailcall.c). */
    if (!pmp_session_tailcalls(s)) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    rc = pmp_tailcalls_expand(s->tc, snap, err);
    if (rc)
        goto out;
    qsort(snap->threads, snap->nthreads, sizeof(*snap->threads), cmp_thread);
    *out = snap;
    snap = NULL;
out:
    if (stopped)
        s->target->ops->resume(s->target);
    pmp_snapshot_free(snap);
    wait_ctx_free(&wctx);
    return rc;
}

struct pmp_tailcalls *
pmp_session_tailcalls(struct pmp_session *s)
{
    if (!s->tc && pmp_tailcalls_new(&s->tc, s->sym))
        return NULL;
    return s->tc;
}

int
pmp_session_peek_waits(struct pmp_session *s, struct pmp_peek **out,
                       size_t *n, struct pmp_error *err)
{
    struct pmp_target_thread *tt = NULL;
    struct pmp_peek *pk;
    struct pmp_wait_ctx c = {0};
    size_t nt = 0, i;
    int rc;

    *out = NULL;
    *n = 0;
    rc = pmp_target_proc_syscalls(s->target, &tt, &nt, err);
    if (rc)
        return rc;
    pk = pmp_calloc(nt ? nt : 1, sizeof(*pk));
    if (!pk || wait_ctx_init(&c, tt, nt)) {
        free(pk);
        free(tt);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    pmp_target_drop_cache(s->target);
    c.nptl = pmp_session_nptl(s, NULL);
    for (i = 0; i < nt; i++) {
        pk[i].tid = tt[i].tid;
        if (tt[i].regs_ok && !in_go_code(s, tt[i].regs.r[PMP_REG_RIP]))
            pmp_decode_wait(s->target, &tt[i].regs, &c, &pk[i].wait);
    }
    pmp_target_drop_cache(s->target);
    wait_ctx_free(&c);
    free(tt);
    *out = pk;
    *n = nt;
    return 0;
}

size_t
pmp_session_cache_todo(struct pmp_session *s,
                       const struct pmp_cache_todo **out)
{
    return pmp_symbolizer_cache_todo(s->sym, out);
}

int
pmp_sym_lookup(struct pmp_session *s, uint64_t pc, int activation,
               const struct pmp_frameinfo **out, struct pmp_error *err)
{
    return pmp_symbolizer_lookup(s->sym, pc, activation, out, err);
}

int
pmp_sym_data(struct pmp_session *s, uint64_t addr, const char **name,
             uint64_t *offset)
{
    return pmp_symbolizer_data(s->sym, addr, name, offset);
}

size_t
pmp_sym_nmodules(struct pmp_session *s)
{
    return pmp_symbolizer_nmodules(s->sym);
}

const struct pmp_module_info *
pmp_sym_module(struct pmp_session *s, size_t i)
{
    return pmp_symbolizer_module(s->sym, i);
}

static int
src_lookup(void *ctx, uint64_t pc, int activation,
           const struct pmp_frameinfo **out, struct pmp_error *err)
{
    return pmp_sym_lookup(ctx, pc, activation, out, err);
}

static size_t
src_nmodules(void *ctx)
{
    return pmp_sym_nmodules(ctx);
}

static const struct pmp_module_info *
src_module(void *ctx, size_t i)
{
    return pmp_sym_module(ctx, i);
}

void
pmp_session_symsource(struct pmp_session *s, struct pmp_symsource *out)
{
    out->ctx = s;
    out->lookup = src_lookup;
    out->nmodules = src_nmodules;
    out->module = src_module;
}

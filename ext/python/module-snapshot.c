/*
 * module-snapshot.c: the Python type Snapshot: every thread's raw stack
 * at one moment (and the Go runtime's state read with it), symbolized and
 * written after the resume.
 * Part of pmprof._core (module.h).
 */
#include "module.h"

/* ---- Snapshot ---- */

static void
Snapshot_dealloc(SnapshotObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    pmp_snapshot_free(self->snap);
    pmp_go_free(self->go);
    Py_XDECREF(self->session);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
flags_list(unsigned f)
{
    PyObject *l = PyList_New(0);

    if (!l)
        return NULL;
    {
        static const struct { unsigned bit; const char *name; } tab[] = {
            {PMP_STACK_TRUNCATED, "truncated"},
            {PMP_STACK_UNWIND_ERR, "unwind-error"},
            {PMP_STACK_NO_REGS, "no-registers"},
            {PMP_STACK_GO, "go"},
            {PMP_STACK_WORKER, "kernel-worker"},
        };
        size_t i;
        for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
            PyObject *s;
            if (!(f & tab[i].bit))
                continue;
            s = PyUnicode_FromString(tab[i].name);
            if (!s || PyList_Append(l, s) < 0) {
                Py_XDECREF(s);
                goto fail;
            }
            Py_DECREF(s);
        }
    }
    return l;
fail:
    Py_DECREF(l);
    return NULL;
}

static const char *
wait_kind_name(int k)
{
    static const char *const names[] = {"none", "mutex", "rwlock", "cond",
                                        "sem", "join", "stdio", "waitv",
                                        "futex"};
    return k >= 0 && k < (int)(sizeof(names) / sizeof(names[0])) ? names[k]
                                                                  : "futex";
}

static const char *
owner_source_name(int k)
{
    static const char *const names[] = {
        "none", "mutex.__owner", "futex word", "joined TID",
        "rwlock.__cur_writer", "stdio lock owner"};
    return k >= 0 && k < (int)(sizeof(names) / sizeof(names[0])) ? names[k]
                                                                  : "none";
}

/* The decoded wait as a dict, or None when the thread waits on no futex. */
PyObject *
wait_dict(const struct pmp_wait *w)
{
    PyObject *wv, *d;
    int i;

    if (w->kind == PMP_WAIT_NONE)
        Py_RETURN_NONE;
    wv = PyList_New(w->nwaitv);
    if (!wv)
        return NULL;
    for (i = 0; i < w->nwaitv; i++) {
        PyObject *e = Py_BuildValue("(KI)",
                                    (unsigned long long)w->waitv_addr[i],
                                    (unsigned)w->waitv_val[i]);
        if (!e) {
            Py_DECREF(wv);
            return NULL;
        }
        PyList_SET_ITEM(wv, i, e);
    }
    d = Py_BuildValue(
        "{s:s,s:i,s:K,s:K,s:I,s:I,s:I,s:i,s:s,s:O,s:O,s:I,s:i,s:i,s:i,s:N}",
        "kind", wait_kind_name(w->kind), "syscall", w->syscall, "object",
        (unsigned long long)w->object, "futex", (unsigned long long)w->futex,
        "futex_op", (unsigned)w->futex_op, "futex_val",
        (unsigned)w->futex_val, "word", (unsigned)w->word, "owner", w->owner,
        "owner_source", owner_source_name(w->owner_source), "owner_died",
        w->owner_died ? Py_True : Py_False, "timed",
        w->timed ? Py_True : Py_False, "subkind", (unsigned)w->subkind,
        "readers", w->readers, "waiters", w->waiters, "count", w->count,
        "waitv", wv);
    return d;
}

static PyObject *
thread_dict(const struct pmp_thread *th)
{
    PyObject *d, *pcs = NULL, *fl = NULL, *sc = NULL;
    int i;

    pcs = PyTuple_New(th->nframes);
    if (!pcs)
        return NULL;
    for (i = 0; i < th->nframes; i++) {
        PyObject *t = Py_BuildValue(
            "(KOOO)", (unsigned long long)th->pcs[i],
            (th->frame_flags[i] & PMP_FRAME_ACTIVATION) ? Py_True : Py_False,
            (th->frame_flags[i] & PMP_FRAME_SIGNAL) ? Py_True : Py_False,
            (th->frame_flags[i] & PMP_FRAME_TAILCALL) ? Py_True : Py_False);
        if (!t) {
            Py_DECREF(pcs);
            return NULL;
        }
        PyTuple_SET_ITEM(pcs, i, t);
    }
    fl = flags_list(th->flags);
    if (!fl) {
        Py_DECREF(pcs);
        return NULL;
    }
    if (th->regs_ok && (int64_t)th->regs.orig_rax >= 0 &&
        !(th->flags & PMP_STACK_WORKER)) {
        const char *nm = pmp_syscall_name((long)th->regs.orig_rax);
        sc = Py_BuildValue(
            "{s:K,s:s,s:(KKKKKK),s:L}", "nr",
            (unsigned long long)th->regs.orig_rax, "name", nm ? nm : "",
            "args", (unsigned long long)th->regs.r[PMP_REG_RDI],
            (unsigned long long)th->regs.r[PMP_REG_RSI],
            (unsigned long long)th->regs.r[PMP_REG_RDX],
            (unsigned long long)th->regs.r[PMP_REG_R10],
            (unsigned long long)th->regs.r[PMP_REG_R8],
            (unsigned long long)th->regs.r[PMP_REG_R9], "ret",
            (long long)th->regs.r[PMP_REG_RAX]);
    } else {
        sc = Py_NewRef(Py_None);
    }
    if (!sc) {
        Py_DECREF(pcs);
        Py_DECREF(fl);
        return NULL;
    }
    {
        PyObject *w = wait_dict(&th->wait);
        if (!w) {
            Py_DECREF(pcs);
            Py_DECREF(fl);
            Py_DECREF(sc);
            return NULL;
        }
        d = Py_BuildValue(
        "{s:i,s:s,s:s,s:K,s:K,s:O,s:s,s:N,s:N,s:N,s:N,s:{s:K,s:K,s:K,s:K}}",
        "tid",
        th->tid, "name", th->name, "state", pmp_thread_state_name(th->state),
        "utime_ns", (unsigned long long)th->utime_ns, "stime_ns",
        (unsigned long long)th->stime_ns, "regs_ok",
        th->regs_ok ? Py_True : Py_False, "error", th->error, "pcs", pcs,
        "flags", fl, "syscall", sc, "wait", w, "regs", "rip",
        (unsigned long long)th->regs.r[PMP_REG_RIP], "rsp",
        (unsigned long long)th->regs.r[PMP_REG_RSP], "rbp",
        (unsigned long long)th->regs.r[PMP_REG_RBP], "fs_base",
        (unsigned long long)th->regs.fs_base);
    }
    return d;
}

static PyObject *
Snapshot_threads(SnapshotObject *self, PyObject *unused)
{
    size_t i;
    PyObject *l = PyList_New((Py_ssize_t)self->snap->nthreads);

    if (!l)
        return NULL;
    for (i = 0; i < self->snap->nthreads; i++) {
        PyObject *d = thread_dict(&self->snap->threads[i]);
        if (!d) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, d);
    }
    return l;
}

/*
 * symbolize(pcs) -> for each (pc, activation[, signal[, tail call]]) of
 * the sequence (the flags after activation are ignored), the list of
 * its frames, each a tuple (pc, function, system_name, file, line, inlined,
 * module, module_offset, func_offset); inline chains are expanded
 * innermost first.
 */
static PyObject *
Snapshot_symbolize(SnapshotObject *self, PyObject *arg)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    SessionObject *so = (SessionObject *)self->session;
    PyObject *seq, *out = NULL;
    Py_ssize_t n, i;

    if (check_open(st, so))
        return NULL;
    seq = PySequence_Fast(arg, "symbolize() takes a sequence of (pc, act)");
    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    out = PyList_New(0);
    if (!out)
        goto fail;
    for (i = 0; i < n; i++) {
        unsigned long long pc;
        int act, rc;
        const struct pmp_frameinfo *fi = NULL;
        struct pmp_error err = {0};
        const struct pmp_module_info *mi;
        PyObject *inner;
        size_t k;

        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *sigflag = NULL, *tailflag = NULL;

        if (!PyArg_ParseTuple(item, "Kp|OO", &pc, &act, &sigflag, &tailflag))
            goto fail;
        Py_BEGIN_ALLOW_THREADS
        rc = pmp_sym_lookup(so->s, pc, act, &fi, &err);
        Py_END_ALLOW_THREADS
        if (rc) {
            raise_pmp(st, rc, &err);
            goto fail;
        }
        mi = fi->module >= 0 ? pmp_sym_module(so->s, (size_t)fi->module)
                             : NULL;
        inner = PyList_New((Py_ssize_t)fi->nlines);
        if (!inner)
            goto fail;
        for (k = 0; k < fi->nlines; k++) {
            const struct pmp_line *ln = &fi->lines[k];
            PyObject *t = Py_BuildValue(
                "(KsssiOsKK)", pc, ln->function, ln->system_name, ln->file,
                ln->line, k + 1 < fi->nlines ? Py_True : Py_False,
                mi ? mi->path : "", (unsigned long long)fi->module_offset,
                (unsigned long long)fi->func_offset);
            if (!t) {
                Py_DECREF(inner);
                goto fail;
            }
            PyList_SET_ITEM(inner, (Py_ssize_t)k, t);
        }
        if (PyList_Append(out, inner) < 0) {
            Py_DECREF(inner);
            goto fail;
        }
        Py_DECREF(inner);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_XDECREF(out);
    return NULL;
}

/*
 * One goroutine as a tuple (100 000 of them must stay cheap), in the order
 * of pmprof.commands.goroutines' field constants: (goid, status,
 * wait_reason, wait_ns, locked, tid, system, stack, labels or None, gopc,
 * chan, sema, error, parent goid or -1).
 */
static PyObject *
goroutine_tuple(const struct pmp_goroutine *gr)
{
    PyObject *labels = Py_None;
    size_t k;

    if (gr->nlabels) {
        labels = PyDict_New();
        if (!labels)
            return NULL;
        for (k = 0; k < gr->nlabels; k++) {
            PyObject *v = PyUnicode_DecodeUTF8(
                gr->labels[k].value, (Py_ssize_t)strlen(gr->labels[k].value),
                "replace");
            if (!v || PyDict_SetItemString(labels, gr->labels[k].key, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(labels);
                return NULL;
            }
            Py_DECREF(v);
        }
    } else {
        Py_INCREF(labels);
    }
    return Py_BuildValue("(LssLOiOiNKKKsL)", (long long)gr->goid,
                         gr->status_name, gr->wait_reason,
                         (long long)gr->wait_ns,
                         gr->locked ? Py_True : Py_False, gr->tid,
                         gr->system ? Py_True : Py_False, gr->stack, labels,
                         (unsigned long long)gr->gopc,
                         (unsigned long long)gr->chan,
                         (unsigned long long)gr->sema, gr->error,
                         (long long)gr->parent_goid);
}

/* go_stacks() -> the distinct goroutine stacks, each [(pc, activation)]. */
static PyObject *
Snapshot_go_stacks(SnapshotObject *self, PyObject *unused)
{
    const struct pmp_go *g = self->go;
    PyObject *out;
    size_t i;

    if (!g) {
        PyErr_SetString(PyExc_ValueError, "not a goroutine snapshot");
        return NULL;
    }
    out = PyList_New((Py_ssize_t)g->nstacks);
    for (i = 0; out && i < g->nstacks; i++) {
        const struct pmp_go_stack *st = &g->stacks[i];
        PyObject *l = PyList_New(st->n);
        int k;
        for (k = 0; l && k < st->n; k++) {
            PyObject *t = Py_BuildValue(
                "(KO)", (unsigned long long)g->stack_pcs[st->off + (size_t)k],
                g->stack_flags[st->off + (size_t)k] & PMP_FRAME_ACTIVATION
                    ? Py_True
                    : Py_False);
            if (!t) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, k, t);
        }
        if (!l) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, l);
    }
    return out;
}

static PyObject *
u64_list(const uint64_t *v, size_t n)
{
    PyObject *l = PyList_New((Py_ssize_t)n);
    size_t i;

    for (i = 0; l && i < n; i++) {
        PyObject *x = PyLong_FromUnsignedLongLong(v[i]);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, x);
    }
    return l;
}

/* go_info() -> dict: version, goroutines (raw pcs), memstats, sched. */
static PyObject *
Snapshot_go_info(SnapshotObject *self, PyObject *unused)
{
    const struct pmp_go *g = self->go;
    PyObject *gl, *mem, *sched, *runq, *pst;
    size_t i;

    if (!g) {
        PyErr_SetString(PyExc_ValueError, "not a goroutine snapshot");
        return NULL;
    }
    gl = PyList_New((Py_ssize_t)g->ngoroutines);
    if (!gl)
        return NULL;
    for (i = 0; i < g->ngoroutines; i++) {
        PyObject *d = goroutine_tuple(&g->goroutines[i]);
        if (!d) {
            Py_DECREF(gl);
            return NULL;
        }
        PyList_SET_ITEM(gl, (Py_ssize_t)i, d);
    }
    if (g->mem.found || g->mem.controller) {
        const struct pmp_go_memstats *m = &g->mem;
        mem = Py_BuildValue(
            "{s:O,s:I,s:I,s:K,s:K,s:K,s:N,s:N,s:O,s:i,s:L,s:L,s:L,s:L,s:L,"
            "s:L,s:L}",
            "found", m->found ? Py_True : Py_False, "numgc", m->numgc,
            "numforcedgc", m->numforcedgc, "pause_total_ns",
            (unsigned long long)m->pause_total_ns, "last_gc_unix",
            (unsigned long long)m->last_gc_unix, "last_gc_nanotime",
            (unsigned long long)m->last_gc_nanotime, "pause_ns",
            u64_list(m->pause_ns, 256), "pause_end", u64_list(m->pause_end, 256),
            "controller", m->controller ? Py_True : Py_False, "gc_percent",
            m->gc_percent, "memory_limit", (long long)m->memory_limit,
            "heap_live", (long long)m->heap_live, "heap_marked",
            (long long)m->heap_marked, "heap_inuse", (long long)m->heap_inuse,
            "heap_goal", (long long)m->heap_goal, "total_alloc",
            (long long)m->total_alloc, "total_free", (long long)m->total_free);
    } else {
        mem = Py_NewRef(Py_None);
    }
    if (!mem) {
        Py_DECREF(gl);
        return NULL;
    }
    if (g->sched.found) {
        const struct pmp_go_sched *sc = &g->sched;
        int k;
        runq = PyList_New(sc->gomaxprocs);
        pst = PyList_New(sc->gomaxprocs);
        for (k = 0; runq && pst && k < sc->gomaxprocs; k++) {
            PyList_SET_ITEM(runq, k, PyLong_FromLong(sc->runq[k]));
            PyList_SET_ITEM(pst, k, PyLong_FromLong(sc->p_status[k]));
        }
        sched = Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:L,s:N,s:N}",
                              "gomaxprocs", sc->gomaxprocs, "idle_ps",
                              sc->idle_ps, "spinning_ms", sc->spinning_ms,
                              "idle_ms", sc->nmidle, "threads", sc->threads,
                              "ms", sc->ms,
                              "global_runq", (long long)sc->global_runq,
                              "runq", runq, "p_status", pst);
    } else {
        sched = Py_NewRef(Py_None);
    }
    if (!sched) {
        Py_DECREF(gl);
        Py_DECREF(mem);
        return NULL;
    }
    return Py_BuildValue("{s:s,s:K,s:N,s:N,s:N}", "version", g->version,
                         "now_mono", (unsigned long long)g->now_mono,
                         "goroutines", gl, "memstats", mem, "sched", sched);
}

static PyObject *
Snapshot_write_go_profile(SnapshotObject *self, PyObject *arg)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    SessionObject *so = (SessionObject *)self->session;
    struct pmp_error err = {0};
    const char *path;
    int rc;

    if (check_open(st, so))
        return NULL;
    if (!self->go) {
        PyErr_SetString(PyExc_ValueError, "not a goroutine snapshot");
        return NULL;
    }
    path = PyUnicode_AsUTF8(arg);
    if (!path)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_go_write_profile(so->s, self->go, path, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    Py_RETURN_NONE;
}

/* render_stacks(all=False, depth=0) -> (text, ngroups): the merged
   stacks as `pmprof stacks` prints them, built in C (render.c). */
static PyObject *
Snapshot_render_stacks(SnapshotObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"all", "depth", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    SessionObject *so = (SessionObject *)self->session;
    struct pmp_render_opts o = {0};
    struct pmp_error err = {0};
    char *text = NULL;
    size_t ng = 0;
    int rc;
    PyObject *r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$pi", kwlist, &o.all,
                                     &o.depth))
        return NULL;
    if (check_open(st, so))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_render_stacks(so->s, self->snap, &o, &text, &ng, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    r = Py_BuildValue("(s#n)", text, (Py_ssize_t)strlen(text), (Py_ssize_t)ng);
    free(text);
    return r;
}

/* data_symbols(addrs) -> [(name, offset)], "" when no symbol covers it. */
static PyObject *
Snapshot_data_symbols(SnapshotObject *self, PyObject *arg)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    SessionObject *so = (SessionObject *)self->session;
    PyObject *seq, *out;
    Py_ssize_t n, i;

    if (check_open(st, so))
        return NULL;
    seq = PySequence_Fast(arg, "data_symbols() takes a sequence of addresses");
    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    out = PyList_New(n);
    for (i = 0; out && i < n; i++) {
        unsigned long long a =
            PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
        const char *name = "";
        uint64_t off = 0;
        PyObject *t;
        if (a == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        pmp_sym_data(so->s, a, &name, &off);
        t = Py_BuildValue("(sK)", name, (unsigned long long)off);
        if (!t) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, t);
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *
Snapshot_write_pprof(SnapshotObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "comments", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    SessionObject *so = (SessionObject *)self->session;
    const char *path;
    PyObject *comments = NULL;
    struct pmp_error err = {0};
    const char **cv = NULL;
    size_t ncv = 0;
    PyObject *cseq = NULL;
    int rc = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|$O", kwlist, &path,
                                     &comments))
        return NULL;
    if (check_open(st, so))
        return NULL;
    if (comments && comments != Py_None) {
        Py_ssize_t n, k;
        cseq = PySequence_Fast(comments, "comments must be a sequence");
        if (!cseq)
            return NULL;
        n = PySequence_Fast_GET_SIZE(cseq);
        cv = calloc(n ? (size_t)n : 1, sizeof(*cv));
        if (!cv) {
            Py_DECREF(cseq);
            return PyErr_NoMemory();
        }
        for (k = 0; k < n; k++) {
            cv[k] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(cseq, k));
            if (!cv[k]) {
                free(cv);
                Py_DECREF(cseq);
                return NULL;
            }
        }
        ncv = (size_t)n;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_snapshot_write_pprof(so->s, self->snap, path, cv, ncv, &err);
    Py_END_ALLOW_THREADS
    free(cv);
    Py_XDECREF(cseq);
    if (rc)
        return raise_pmp(st, rc, &err);
    Py_RETURN_NONE;
}

static PyObject *
Snapshot_get(SnapshotObject *self, void *closure)
{
    const char *what = closure;

    if (strcmp(what, "time_ns") == 0)
        return PyLong_FromUnsignedLongLong(self->snap->time_ns);
    if (strcmp(what, "stopped_ns") == 0)
        return PyLong_FromUnsignedLongLong(self->snap->stopped_ns);
    if (strcmp(what, "nframes") == 0)
        return PyLong_FromSize_t(self->snap->nframes_total);
    if (strcmp(what, "nthreads") == 0)
        return PyLong_FromSize_t(self->snap->nthreads);
    if (strcmp(what, "ncut") == 0)
        return PyLong_FromSize_t(self->snap->nthreads_cut);
    return PyLong_FromSize_t(self->snap->nthreads_failed);
}

static PyMethodDef Snapshot_methods[] = {
    {"threads", (PyCFunction)Snapshot_threads, METH_NOARGS,
     "threads() -> list of dict (sorted by tid)"},
    {"render_stacks", (PyCFunction)(void (*)(void))Snapshot_render_stacks,
     METH_VARARGS | METH_KEYWORDS,
     "render_stacks(all=False, depth=0) -> (text, ngroups)"},
    {"go_info", (PyCFunction)Snapshot_go_info, METH_NOARGS,
     "go_info() -> the Go runtime's state (goroutines() snapshots)"},
    {"go_stacks", (PyCFunction)Snapshot_go_stacks, METH_NOARGS,
     "go_stacks() -> distinct goroutine stacks, [(pc, activation)] each"},
    {"write_go_profile", (PyCFunction)Snapshot_write_go_profile, METH_O,
     "write_go_profile(path): goroutine profile (gzipped pprof)"},
    {"data_symbols", (PyCFunction)Snapshot_data_symbols, METH_O,
     "data_symbols(seq of addr) -> [(symbol, offset)]"},
    {"symbolize", (PyCFunction)Snapshot_symbolize, METH_O,
     "symbolize(seq of (pc, activation)) -> list of frame tuples"},
    {"write_pprof", (PyCFunction)(void (*)(void))Snapshot_write_pprof,
     METH_VARARGS | METH_KEYWORDS,
     "write_pprof(path, *, comments=None): one sample per thread"},
    {NULL}
};

static PyGetSetDef Snapshot_getset[] = {
    {"time_ns", (getter)Snapshot_get, NULL, "wall clock at the stop",
     "time_ns"},
    {"stopped_ns", (getter)Snapshot_get, NULL, "time the target was stopped",
     "stopped_ns"},
    {"nframes", (getter)Snapshot_get, NULL, "frames unwound", "nframes"},
    {"nthreads", (getter)Snapshot_get, NULL, "threads in the snapshot",
     "nthreads"},
    {"nfailed", (getter)Snapshot_get, NULL, "threads that failed",
     "nfailed"},
    {"ncut", (getter)Snapshot_get, NULL,
     "other threads whose stack was cut short (frame cap, unreadable Go)",
     "ncut"},
    {NULL}
};

static PyType_Slot Snapshot_slots[] = {
    {Py_tp_dealloc, Snapshot_dealloc},
    {Py_tp_methods, Snapshot_methods},
    {Py_tp_getset, Snapshot_getset},
    {Py_tp_doc, "Raw stacks of every thread at one moment."},
    {0, NULL},
};

PyType_Spec Snapshot_spec = {
    .name = "pmprof._core.Snapshot",
    .basicsize = sizeof(SnapshotObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Snapshot_slots,
};

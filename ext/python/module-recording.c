/*
 * module-recording.c: the Python type Recording (Session.record): samples
 * of a live process over time, their stats and writers.
 * Part of pmprof._core (module.h).
 */
#include "module.h"

/* ---- Recording ---- */

struct progress_ctx {
    PyObject *callback;   /* or NULL */
    PyObject *exc_type, *exc_value, *exc_tb;   /* what stopped us */
};

/* The stall figures and the longest stops over the bound (added to d). */
static PyObject *
stats_stalls(PyObject *d, const struct pmp_record_stats *st)
{
    PyObject *v, *l;
    int i;

    if (!d)
        return NULL;
    v = Py_BuildValue("{sKsKsKsK}", "stall_ns",
                      (unsigned long long)st->stall_ns, "stall_max_ns",
                      (unsigned long long)st->stall_max_ns, "max_stop_own_ns",
                      (unsigned long long)st->max_stop_own_ns,
                      "stops_over_own",
                      (unsigned long long)st->stops_over_own);
    l = PyList_New(0);
    if (!v || !l || PyDict_Update(d, v) < 0)
        goto fail;
    for (i = 0; i < st->nover && i < (int)(sizeof(st->over) /
                                           sizeof(st->over[0])); i++) {
        PyObject *o = Py_BuildValue(
            "{sKsKsK}", "at_ns", (unsigned long long)st->over[i].at_ns, "ns",
            (unsigned long long)st->over[i].ns, "stall_ns",
            (unsigned long long)st->over[i].stall_ns);
        if (!o || PyList_Append(l, o) < 0) {
            Py_XDECREF(o);
            goto fail;
        }
        Py_DECREF(o);
    }
    if (PyDict_SetItemString(d, "stops_over_list", l) < 0)
        goto fail;
    Py_DECREF(v);
    Py_DECREF(l);
    return d;
fail:
    Py_XDECREF(v);
    Py_XDECREF(l);
    Py_DECREF(d);
    return NULL;
}

/* How the ticks learned who ran: context switch records or /proc reads
   (added to d). */
static PyObject *
stats_switches(PyObject *d, const struct pmp_record_stats *st)
{
    PyObject *v;

    if (!d)
        return NULL;
    v = Py_BuildValue(
        "{sOsisKsKsKsKsK}", "switches", st->switches ? Py_True : Py_False,
        "switch_errno", st->switch_errno, "switch_records",
        (unsigned long long)st->switch_records, "switch_lost",
        (unsigned long long)st->switch_lost, "state_reads",
        (unsigned long long)st->state_reads, "sched_reads",
        (unsigned long long)st->sched_reads, "task_lists",
        (unsigned long long)st->task_lists);
    if (!v || PyDict_Update(d, v) < 0) {
        Py_XDECREF(v);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(v);
    return d;
}

static PyObject *
stats_dict(const struct pmp_record_stats *st)
{
    return stats_switches(stats_stalls(Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsdsisisOsOsOsOsssisOsKsKsKsKsKsKsKsKsKsK}", "samples",
        (unsigned long long)st->samples, "thread_samples",
        (unsigned long long)st->thread_samples, "lost",
        (unsigned long long)st->lost, "late", (unsigned long long)st->late,
        "elapsed_ns", (unsigned long long)st->elapsed_ns, "pause_median_ns",
        (unsigned long long)st->pause_median_ns, "pause_p99_ns",
        (unsigned long long)st->pause_p99_ns, "pause_max_ns",
        (unsigned long long)st->pause_max_ns, "unwind_ns",
        (unsigned long long)st->unwind_ns, "frames",
        (unsigned long long)st->frames, "rate_hz", st->rate_hz, "nthreads",
        st->nthreads, "threads_seen", st->threads_seen, "exited",
        st->exited ? Py_True : Py_False, "exec",
        st->exec ? Py_True : Py_False, "rt", st->rt ? Py_True : Py_False,
        "full", st->full ? Py_True : Py_False, "method",
        st->perf ? "perf" : "ptrace", "perf_errno", st->perf_errno,
        "perf_kernel", st->perf_kernel ? Py_True : Py_False, "stops",
        (unsigned long long)st->stops, "stopped_ns",
        (unsigned long long)st->stopped_ns, "reused",
        (unsigned long long)st->reused, "cpu_samples",
        (unsigned long long)st->cpu_samples, "perf_lost",
        (unsigned long long)st->perf_lost, "max_stop_ns",
        (unsigned long long)st->max_stop_ns, "stops_over",
        (unsigned long long)st->stops_over, "sig_passed",
        (unsigned long long)st->sig_passed, "late_stops",
        (unsigned long long)st->late_stops, "bound_lost",
        (unsigned long long)st->bound_lost), st), st);
}

/*
 * Called by the core between samples with the GIL released: take the
 * GIL, let Python see pending signals (Ctrl-C), call the callback.
 * Any exception stops the recording and is kept for the caller.
 */
static int
progress_cb(void *vctx, const struct pmp_record_stats *st)
{
    struct progress_ctx *c = vctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = 0;

    if (c->exc_type) {
        PyGILState_Release(g);
        return 1;
    }
    if (PyErr_CheckSignals() < 0) {
        stop = 1;
    } else if (c->callback) {
        PyObject *d = stats_dict(st);
        PyObject *r = d ? PyObject_CallOneArg(c->callback, d) : NULL;
        Py_XDECREF(d);
        if (!r)
            stop = 1;
        else
            stop = PyObject_IsTrue(r) == 1;
        Py_XDECREF(r);
    }
    if (PyErr_Occurred())
        PyErr_Fetch(&c->exc_type, &c->exc_value, &c->exc_tb);
    PyGILState_Release(g);
    return stop;
}

PyObject *
Session_record(SessionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"hz", "duration", "max_frames", "stack_bytes",
                             "tids", "thread_regex", "floor", "progress",
                             "progress_interval", "ptrace_only", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    double hz = 0, duration = 0, interval = 0;
    int max_frames = 0, floor_mode = 0, ptrace_only = 0, rc;
    Py_ssize_t stack_bytes = 0;
    PyObject *tids = Py_None, *progress = Py_None;
    const char *regex = NULL;
    struct pmp_record_opts o = {0};
    struct progress_ctx pc = {0};
    struct pmp_recording *rec = NULL;
    struct pmp_error err = {0};
    int *tidv = NULL;
    RecordingObject *ro;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$ddinOzpOdp", kwlist, &hz,
                                     &duration, &max_frames, &stack_bytes,
                                     &tids, &regex, &floor_mode, &progress,
                                     &interval, &ptrace_only))
        return NULL;
    if (check_open(st, self))
        return NULL;
    if (hz < 0 || duration < 0 || max_frames < 0 || max_frames > 4096 ||
        stack_bytes < 0 || interval < 0) {
        PyErr_SetString(PyExc_ValueError, "record: negative or too large "
                                          "argument");
        return NULL;
    }
    if (tids != Py_None) {
        if (tid_list(tids, &tidv, &o.nonly_tids) < 0)
            return NULL;
        o.only_tids = tidv;
    }
    o.hz = hz;
    o.duration_ns = (uint64_t)(duration * 1e9);
    o.max_frames = max_frames;
    o.stack_bytes = (size_t)stack_bytes;
    o.thread_regex = regex;
    o.floor = floor_mode;
    o.no_perf = ptrace_only;
    o.progress_ns = (uint64_t)(interval * 1e9);
    pc.callback = progress != Py_None ? progress : NULL;
    o.progress = progress_cb;
    o.progress_ctx = &pc;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_record(self->s, &o, &rec, &err);
    Py_END_ALLOW_THREADS
    free(tidv);
    if (rc) {
        if (pc.exc_type)
            PyErr_Restore(pc.exc_type, pc.exc_value, pc.exc_tb);
        else
            raise_pmp(st, rc, &err);
        return NULL;
    }
    ro = PyObject_New(RecordingObject, st->RecordingType);
    if (!ro) {
        pmp_recording_free(rec);
        return NULL;
    }
    ro->rec = rec;
    ro->session = Py_NewRef((PyObject *)self);
    ro->interrupted = 0;
    if (pc.exc_type) {
        /* Ctrl-C ends a recording normally; anything else propagates. */
        if (PyErr_GivenExceptionMatches(pc.exc_type,
                                        PyExc_KeyboardInterrupt)) {
            ro->interrupted = 1;
            Py_XDECREF(pc.exc_type);
            Py_XDECREF(pc.exc_value);
            Py_XDECREF(pc.exc_tb);
        } else {
            Py_DECREF(ro);
            PyErr_Restore(pc.exc_type, pc.exc_value, pc.exc_tb);
            return NULL;
        }
    }
    return (PyObject *)ro;
}

static void
Recording_dealloc(RecordingObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    pmp_recording_free(self->rec);
    Py_XDECREF(self->session);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
recording_usable(pmp_state *st, RecordingObject *self)
{
    return check_open(st, (SessionObject *)self->session);
}

static PyObject *
Recording_stats(RecordingObject *self, PyObject *unused)
{
    struct pmp_record_stats s;

    pmp_recording_stats(self->rec, &s);
    return stats_dict(&s);
}

static PyObject *
Recording_threads(RecordingObject *self, PyObject *unused)
{
    const struct pmp_rec_thread *t;
    size_t n = pmp_recording_threads(self->rec, &t), i;
    PyObject *l = PyList_New((Py_ssize_t)n);

    if (!l)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *gone = t[i].gone_ns < 0
                             ? (Py_INCREF(Py_None), Py_None)
                             : PyLong_FromLongLong(t[i].gone_ns);
        PyObject *d = gone ? Py_BuildValue(
            "{sisNsKsKsLsLsLsN}", "tid", t[i].tid, "name",
            PyUnicode_DecodeUTF8(t[i].name, strlen(t[i].name), "replace"),
            "samples", (unsigned long long)t[i].samples, "lost",
            (unsigned long long)t[i].lost, "cpu_ns", (long long)t[i].cpu_ns,
            "wall_ns", (long long)t[i].wall_ns, "seen_ns",
            (long long)t[i].seen_ns, "gone_ns", gone) : NULL;
        if (!d) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, d);
    }
    return l;
}

static PyObject *
Recording_write(RecordingObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "format", NULL};
    static const char *const names[] = {"pprof", "folded", "speedscope",
                                        "chrome"};
    pmp_state *st = state_from_type(Py_TYPE(self));
    const char *path, *fmt = "pprof";
    struct pmp_error err = {0};
    int rc, f = -1, k;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|s", kwlist, &path, &fmt))
        return NULL;
    if (recording_usable(st, self))
        return NULL;
    for (k = 0; k < 4; k++)
        if (strcmp(fmt, names[k]) == 0)
            f = k;
    if (f < 0) {
        PyErr_Format(PyExc_ValueError, "unknown format '%s'", fmt);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_recording_write(self->rec, (enum pmp_rec_format)f, path, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    Py_RETURN_NONE;
}

static PyObject *
Recording_top(RecordingObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"n", "by", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    Py_ssize_t n = 10, i, got;
    const char *by = "cpu";
    struct pmp_top_entry *e;
    PyObject *l;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ns", kwlist, &n, &by))
        return NULL;
    if (recording_usable(st, self))
        return NULL;
    if (n < 0 || n > 100000 ||
        (strcmp(by, "cpu") != 0 && strcmp(by, "wall") != 0)) {
        PyErr_SetString(PyExc_ValueError, "top(n, by='cpu'|'wall')");
        return NULL;
    }
    e = calloc(n ? (size_t)n : 1, sizeof(*e));
    if (!e)
        return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    got = (Py_ssize_t)pmp_recording_top(self->rec, strcmp(by, "wall") == 0,
                                        e, (size_t)n);
    Py_END_ALLOW_THREADS
    l = PyList_New(got);
    for (i = 0; l && i < got; i++) {
        PyObject *t = Py_BuildValue(
            "(NKLL)",
            PyUnicode_DecodeUTF8(e[i].function, strlen(e[i].function),
                                 "replace"),
            (unsigned long long)e[i].samples, (long long)e[i].cpu_ns,
            (long long)e[i].wall_ns);
        if (!t) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, t);
    }
    free(e);
    return l;
}

static PyObject *
Recording_get_interrupted(RecordingObject *self, void *closure)
{
    return PyBool_FromLong(self->interrupted);
}

static PyMethodDef Recording_methods[] = {
    {"stats", (PyCFunction)Recording_stats, METH_NOARGS,
     "stats() -> dict: samples, lost, late, pauses, rate, ..."},
    {"threads", (PyCFunction)Recording_threads, METH_NOARGS,
     "threads() -> list of dict: tid, name, samples, lost, cpu_ns, wall_ns, "
     "seen_ns, gone_ns (from the recording's start; gone_ns None: alive at "
     "the end)"},
    {"write", (PyCFunction)(void (*)(void))Recording_write,
     METH_VARARGS | METH_KEYWORDS,
     "write(path, format='pprof'|'folded'|'speedscope'|'chrome')"},
    {"top", (PyCFunction)(void (*)(void))Recording_top,
     METH_VARARGS | METH_KEYWORDS,
     "top(n=10, by='cpu'|'wall') -> [(function, samples, cpu_ns, wall_ns)]"},
    {NULL}
};

static PyGetSetDef Recording_getset[] = {
    {"interrupted", (getter)Recording_get_interrupted, NULL,
     "recording was stopped by Ctrl-C", NULL},
    {NULL}
};

static PyType_Slot Recording_slots[] = {
    {Py_tp_dealloc, Recording_dealloc},
    {Py_tp_methods, Recording_methods},
    {Py_tp_getset, Recording_getset},
    {Py_tp_doc, "Samples of a live process, ready to be written."},
    {0, NULL},
};

PyType_Spec Recording_spec = {
    .name = "pmprof._core.Recording",
    .basicsize = sizeof(RecordingObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Recording_slots,
};

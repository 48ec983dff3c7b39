/*
 * module.c: the CPython extension pmprof._core, and the ONLY file of the
 * core that includes Python.h.
 *
 * Owns: the Python types Session and Snapshot, module state (exception
 * types), the one translation point from struct pmp_error to Python
 * exceptions (raise_pmp), and releasing the GIL around C work.
 *
 * Must not: do analysis; it converts arguments, calls the core, and
 * converts results.  While the GIL is released no Py* object is touched.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#include "pmprof.h"

#define PMP_EXPORT __attribute__((visibility("default")))

typedef struct {
    PyObject *Error;
    PyObject *TargetError;
    PyObject *CorruptTarget;
    PyObject *Unsupported;
    PyTypeObject *SessionType;
    PyTypeObject *SnapshotType;
    PyTypeObject *RecordingType;
} pmp_state;

typedef struct {
    PyObject_HEAD
    struct pmp_session *s;
    PyObject *reader;    /* open_pid(read=...): the front-end's reader */
} SessionObject;

typedef struct {
    PyObject_HEAD
    PyObject *session;   /* SessionObject, kept alive for symbolization */
    struct pmp_snapshot *snap;
    struct pmp_go *go;   /* Session.goroutines(): the Go runtime's state */
} SnapshotObject;

typedef struct {
    PyObject_HEAD
    PyObject *session;   /* SessionObject: symbols for the writers */
    struct pmp_recording *rec;
    int interrupted;     /* progress() raised KeyboardInterrupt */
} RecordingObject;

static pmp_state *
get_state(PyObject *module)
{
    return (pmp_state *)PyModule_GetState(module);
}

static pmp_state *
state_from_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModule(tp);
    return m ? get_state(m) : NULL;
}

/* The one place a pmp_error becomes a Python exception. */
static PyObject *
raise_pmp(pmp_state *st, int rc, const struct pmp_error *err)
{
    PyObject *type = st->Error;
    PyObject *exc;
    const char *msg = err && err->msg[0] ? err->msg : pmp_strerror(rc);

    switch (rc) {
    case PMP_E_TARGET:
    case PMP_E_GONE:
    case PMP_E_PERM:
    case PMP_E_SYS:
        type = st->TargetError;
        break;
    case PMP_E_CORRUPT:
    case PMP_E_FORMAT:
        type = st->CorruptTarget;
        break;
    case PMP_E_UNSUPPORTED:
        type = st->Unsupported;
        break;
    case PMP_E_NOMEM:
        return PyErr_NoMemory();
    default:
        break;
    }
    exc = PyObject_CallFunction(type, "s", msg);
    if (!exc)
        return NULL;
    if (PyObject_SetAttrString(exc, "code", PyLong_FromLong(-rc)) < 0)
        PyErr_Clear();
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- Session ---- */

/* Detach and free (idempotent); the GIL is released while detaching. */
static void
close_session(SessionObject *self)
{
    struct pmp_session *s = self->s;

    if (!s)
        return;
    self->s = NULL;
    if (self->reader) {
        pmp_session_free(s);   /* may not call the reader, but keep the GIL */
        Py_CLEAR(self->reader);
        return;
    }
    Py_BEGIN_ALLOW_THREADS
    pmp_session_free(s);
    Py_END_ALLOW_THREADS
}

static void
Session_dealloc(SessionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    close_session(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
new_session(pmp_state *st, struct pmp_session *s)
{
    SessionObject *o = PyObject_New(SessionObject, st->SessionType);

    if (!o) {
        pmp_session_free(s);
        return NULL;
    }
    o->s = s;
    o->reader = NULL;
    return (PyObject *)o;
}

static int check_open(pmp_state *st, SessionObject *self);

/*
 * pmp_read_fn over a Python callable reader(addr, len) -> bytes (short or
 * empty where nothing is mapped) or None.  Called from C code that runs
 * with the GIL released; it takes the GIL for the call.
 */
static long
py_reader(void *ctx, uint64_t addr, void *buf, size_t len,
          struct pmp_error *err)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallFunction((PyObject *)ctx, "KK",
                                        (unsigned long long)addr,
                                        (unsigned long long)len);
    Py_buffer view;
    long got = 0;

    if (!r) {
        PyErr_Clear();
        got = pmp_error_set(err, PMP_E_TARGET,
                            "the debugger could not read memory at 0x%llx",
                            (unsigned long long)addr);
    } else if (r != Py_None) {
        if (PyObject_GetBuffer(r, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            got = pmp_error_set(err, PMP_E_TARGET,
                                "the debugger's reader returned no bytes");
        } else {
            got = view.len < (Py_ssize_t)len ? (long)view.len : (long)len;
            memcpy(buf, view.buf, (size_t)got);
            PyBuffer_Release(&view);
        }
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
    return got;
}

/* Session.set_regs([(tid, r0..r16, orig_rax, eflags, fs_base)], stop) */
static PyObject *
Session_set_regs(SessionObject *self, PyObject *args)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    PyObject *list, *seq;
    unsigned long long stop;
    struct pmp_thread_regs *v = NULL;
    struct pmp_error err = {0};
    Py_ssize_t i, n;
    int rc;

    if (!PyArg_ParseTuple(args, "OK", &list, &stop))
        return NULL;
    if (check_open(st, self))
        return NULL;
    seq = PySequence_Fast(list, "regs must be a sequence");
    if (!seq)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    v = calloc(n ? (size_t)n : 1, sizeof(*v));
    if (!v) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        unsigned long long x[PMP_NREGS + 3];
        int j, tid;

        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != PMP_NREGS + 4) {
            PyErr_Format(PyExc_ValueError,
                         "regs entries are (tid, %d registers, orig_rax, "
                         "eflags, fs_base)", PMP_NREGS);
            goto fail;
        }
        tid = (int)PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
        for (j = 0; j < PMP_NREGS + 3; j++)
            x[j] = PyLong_AsUnsignedLongLongMask(PyTuple_GET_ITEM(t, j + 1));
        if (PyErr_Occurred())
            goto fail;
        v[i].tid = tid;
        for (j = 0; j < PMP_NREGS; j++)
            v[i].regs.r[j] = x[j];
        v[i].regs.orig_rax = x[PMP_NREGS];
        v[i].regs.eflags = x[PMP_NREGS + 1];
        v[i].regs.fs_base = x[PMP_NREGS + 2];
    }
    Py_DECREF(seq);
    rc = pmp_session_set_regs(self->s, v, (size_t)n, stop, &err);
    free(v);
    if (rc)
        return raise_pmp(st, rc, &err);
    Py_RETURN_NONE;
fail:
    Py_DECREF(seq);
    free(v);
    return NULL;
}

static PyObject *
Session_get_via_debugger(SessionObject *self, void *closure)
{
    return PyBool_FromLong(self->s && pmp_session_reads_via_frontend(self->s));
}

static int
check_open(pmp_state *st, SessionObject *self)
{
    if (!self->s) {
        PyErr_SetString(st->Error, "session is closed");
        return -1;
    }
    return 0;
}

/* A Python sequence of TIDs as a malloc'd int array (-1 with an exception). */
static int
tid_list(PyObject *tids, int **out, size_t *n)
{
    Py_ssize_t i, len;
    PyObject *seq = PySequence_Fast(tids, "tids must be a sequence");
    int *v;

    if (!seq)
        return -1;
    len = PySequence_Fast_GET_SIZE(seq);
    v = calloc(len ? (size_t)len : 1, sizeof(int));
    if (!v) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < len; i++) {
        long x = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (x == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            free(v);
            return -1;
        }
        v[i] = (int)x;
    }
    Py_DECREF(seq);
    *out = v;
    *n = (size_t)len;
    return 0;
}

static PyObject *
Session_close(SessionObject *self, PyObject *unused)
{
    close_session(self);
    Py_RETURN_NONE;
}

static PyObject *
Session_snapshot(SessionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max_frames", "tids", "decode_waits", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    int max_frames = 0, rc, decode_waits = 0;
    PyObject *tids = Py_None;
    struct pmp_snapshot_opts o = {0};
    struct pmp_snapshot *snap = NULL;
    struct pmp_error err = {0};
    int *tidv = NULL;
    SnapshotObject *so;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$iOp", kwlist, &max_frames,
                                     &tids, &decode_waits))
        return NULL;
    if (check_open(st, self))
        return NULL;
    if (max_frames < 0 || max_frames > 4096) {
        PyErr_SetString(PyExc_ValueError, "max_frames must be 0..4096");
        return NULL;
    }
    o.max_frames = max_frames;
    o.decode_waits = decode_waits;
    if (tids != Py_None) {
        if (tid_list(tids, &tidv, &o.nonly_tids) < 0)
            return NULL;
        o.only_tids = tidv;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_snapshot(self->s, &o, &snap, &err);
    Py_END_ALLOW_THREADS
    free(tidv);
    if (rc)
        return raise_pmp(st, rc, &err);
    so = PyObject_New(SnapshotObject, st->SnapshotType);
    if (!so) {
        pmp_snapshot_free(snap);
        return NULL;
    }
    so->snap = snap;
    so->go = NULL;
    so->session = Py_NewRef((PyObject *)self);
    return (PyObject *)so;
}

/* goroutines(max_frames=0) -> Snapshot whose go_info() holds the Go
   runtime's state read in the same stop as its threads. */
static PyObject *
Session_goroutines(SessionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"max_frames", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    int max_frames = 0, rc;
    struct pmp_go_opts go = {0};
    struct pmp_snapshot_opts o = {0};
    struct pmp_snapshot *snap = NULL;
    struct pmp_go *g = NULL;
    struct pmp_error err = {0};
    SnapshotObject *so;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$i", kwlist, &max_frames))
        return NULL;
    if (check_open(st, self))
        return NULL;
    if (max_frames < 0 || max_frames > 4096) {
        PyErr_SetString(PyExc_ValueError, "max_frames must be 0..4096");
        return NULL;
    }
    go.max_frames = o.max_frames = max_frames;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_go(self->s, &go, &o, &snap, &g, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    so = PyObject_New(SnapshotObject, st->SnapshotType);
    if (!so) {
        pmp_snapshot_free(snap);
        pmp_go_free(g);
        return NULL;
    }
    so->snap = snap;
    so->go = g;
    so->session = Py_NewRef((PyObject *)self);
    return (PyObject *)so;
}

static PyObject *wait_dict(const struct pmp_wait *w);

static PyObject *
heap_arena_dict(const struct pmp_heap_arena *a)
{
    PyObject *bins = PyList_New((Py_ssize_t)a->nbins), *heaps, *fast;
    size_t i, nh = a->nheaps < PMP_HEAP_MAX_HEAPS ? a->nheaps
                                                  : PMP_HEAP_MAX_HEAPS;

    if (!bins)
        return NULL;
    for (i = 0; i < a->nbins; i++) {
        const struct pmp_heap_bin *b = &a->bins[i];
        PyObject *d = Py_BuildValue(
            "{s:i,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "index", b->index, "count",
            (unsigned long long)b->count, "bytes",
            (unsigned long long)b->bytes, "min", (unsigned long long)b->min,
            "max", (unsigned long long)b->max, "raw_bytes",
            (unsigned long long)b->raw_bytes, "raw_min",
            (unsigned long long)b->raw_min, "raw_max",
            (unsigned long long)b->raw_max);
        if (!d) {
            Py_DECREF(bins);
            return NULL;
        }
        PyList_SET_ITEM(bins, (Py_ssize_t)i, d);
    }
    heaps = PyList_New((Py_ssize_t)(a->is_main ? 0 : nh));
    for (i = 0; heaps && !a->is_main && i < nh; i++) {
        PyObject *d = Py_BuildValue(
            "{s:K,s:K,s:K}", "addr", (unsigned long long)a->heaps[i].addr,
            "size", (unsigned long long)a->heaps[i].size, "mprotect_size",
            (unsigned long long)a->heaps[i].mprotect_size);
        if (!d) {
            Py_CLEAR(heaps);
            break;
        }
        PyList_SET_ITEM(heaps, (Py_ssize_t)i, d);
    }
    fast = PyList_New(10);
    for (i = 0; fast && i < 10; i++)
        PyList_SET_ITEM(fast, (Py_ssize_t)i,
                        PyLong_FromUnsignedLongLong(a->fast_by_bin[i]));
    if (!heaps || !fast) {
        Py_DECREF(bins);
        Py_XDECREF(heaps);
        Py_XDECREF(fast);
        return NULL;
    }
    return Py_BuildValue(
        "{s:K,s:O,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:N,s:K,s:K,s:K,s:N,"
        "s:n,s:N}",
        "addr", (unsigned long long)a->addr, "main",
        a->is_main ? Py_True : Py_False, "flags", a->flags, "top",
        (unsigned long long)a->top, "top_size",
        (unsigned long long)a->top_size, "next_free",
        (unsigned long long)a->next_free, "attached_threads",
        (unsigned long long)a->attached_threads, "system_mem",
        (unsigned long long)a->system_mem, "max_system_mem",
        (unsigned long long)a->max_system_mem, "fast_count",
        (unsigned long long)a->fast_count, "fast_bytes",
        (unsigned long long)a->fast_bytes, "fast_by_bin", fast, "bin_count",
        (unsigned long long)a->bin_count, "bin_bytes",
        (unsigned long long)a->bin_bytes, "largest_free",
        (unsigned long long)a->largest_free, "bins", bins, "nheaps",
        (Py_ssize_t)a->nheaps, "heaps", heaps);
}

static PyObject *
heap_walk_dict(const struct pmp_heap *h)
{
    PyObject *tcs = PyList_New((Py_ssize_t)h->ntcaches), *sizes, *per, *d;
    PyObject *mmd;
    size_t i;
    int b;

    for (i = 0; tcs && i < h->ntcaches; i++) {
        const struct pmp_heap_tcache *tc = &h->tcaches[i];
        PyObject *counts = PyList_New(0), *t;
        for (b = 0; counts && b < PMP_HEAP_TCACHE_BINS; b++)
            if (tc->counts[b]) {
                /* (bin, smallest chunk size of the bin, count, bytes):
                   bins 64+ (2.42+) hold a power-of-two range of sizes */
                unsigned long long lo =
                    b < 64 ? 32 + 16 * (unsigned long long)b
                    : b == 64 ? 1056
                              : 1ull << (b - 64 + 10);
                PyObject *x = Py_BuildValue(
                    "(iKiK)", b, lo, tc->counts[b],
                    (unsigned long long)tc->bin_bytes[b]);
                if (!x || PyList_Append(counts, x) < 0) {
                    Py_XDECREF(x);
                    Py_CLEAR(counts);
                    break;
                }
                Py_DECREF(x);
            }
        if (!counts) {
            Py_CLEAR(tcs);
            break;
        }
        t = Py_BuildValue("{s:i,s:K,s:i,s:O,s:K,s:K,s:N}", "tid", tc->tid,
                          "addr", (unsigned long long)tc->addr, "arena",
                          tc->arena, "unknown",
                          tc->unknown ? Py_True : Py_False,
                          "chunks", (unsigned long long)tc->chunks, "bytes",
                          (unsigned long long)tc->bytes, "counts", counts);
        if (!t) {
            Py_CLEAR(tcs);
            break;
        }
        PyList_SET_ITEM(tcs, (Py_ssize_t)i, t);
    }
    sizes = PyList_New((Py_ssize_t)h->nsizes);
    for (i = 0; sizes && i < h->nsizes; i++) {
        const struct pmp_heap_size *z = &h->sizes[i];
        PyObject *t = Py_BuildValue(
            "(KKKKKKK)", (unsigned long long)z->size,
            (unsigned long long)z->used, (unsigned long long)z->used_bytes,
            (unsigned long long)z->free, (unsigned long long)z->free_bytes,
            (unsigned long long)z->cached,
            (unsigned long long)z->cached_bytes);
        if (!t) {
            Py_CLEAR(sizes);
            break;
        }
        PyList_SET_ITEM(sizes, (Py_ssize_t)i, t);
    }
    per = PyList_New((Py_ssize_t)h->narenas);
    for (i = 0; per && i < h->narenas; i++) {
        const struct pmp_heap_arena *a = &h->arenas[i];
        PyObject *t = Py_BuildValue(
            "{s:K,s:K,s:K,s:K,s:K,s:K,s:O}", "app_chunks",
            (unsigned long long)a->app_chunks, "app_bytes",
            (unsigned long long)a->app_bytes, "tcache_chunks",
            (unsigned long long)a->tcache_chunks, "tcache_bytes",
            (unsigned long long)a->tcache_bytes, "overhead_bytes",
            (unsigned long long)a->overhead_bytes, "walked_chunks",
            (unsigned long long)a->walked_chunks, "complete",
            a->walk_complete ? Py_True : Py_False);
        if (!t) {
            Py_CLEAR(per);
            break;
        }
        PyList_SET_ITEM(per, (Py_ssize_t)i, t);
    }
    if (!tcs || !sizes || !per) {
        Py_XDECREF(tcs);
        Py_XDECREF(sizes);
        Py_XDECREF(per);
        return NULL;
    }
    {
        PyObject *mm = PyList_New((Py_ssize_t)h->nmm);
        for (i = 0; mm && i < h->nmm; i++) {
            PyObject *t = Py_BuildValue("(KK)", (unsigned long long)h->mm[i].addr,
                                        (unsigned long long)h->mm[i].size);
            if (!t) {
                Py_CLEAR(mm);
                break;
            }
            PyList_SET_ITEM(mm, (Py_ssize_t)i, t);
        }
        if (!mm) {
            Py_DECREF(tcs);
            Py_DECREF(sizes);
            Py_DECREF(per);
            return NULL;
        }
        mmd = Py_BuildValue("{s:K,s:K,s:N}", "found",
                            (unsigned long long)h->mm_found, "bytes",
                            (unsigned long long)h->mm_bytes, "chunks", mm);
        if (!mmd) {
            Py_DECREF(tcs);
            Py_DECREF(sizes);
            Py_DECREF(per);
            return NULL;
        }
    }
    d = Py_BuildValue("{s:L,s:N,s:N,s:N,s:K,s:K,s:K,s:i,s:s,s:N}", "tcache_tpoff",
                      (long long)h->tcache_tpoff, "tcaches", tcs, "sizes",
                      sizes, "arenas", per, "find_addr",
                      (unsigned long long)h->find_addr, "found_chunk",
                      (unsigned long long)h->found_chunk, "found_size",
                      (unsigned long long)h->found_size, "found_arena",
                      h->found_arena, "found_state", h->found_state,
                      "mmapped", mmd);
    return d;
}

/* heap(walk=False, find=0) -> dict: glibc malloc's state from outside. */
static PyObject *
Session_heap(SessionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"walk", "find", "lists", NULL};
    pmp_state *st = state_from_type(Py_TYPE(self));
    struct pmp_heap *h = NULL;
    struct pmp_heap_opts o = {0};
    struct pmp_error err = {0};
    PyObject *arenas, *errors, *d, *walk = NULL;
    unsigned long long find = 0;
    size_t i;
    int rc, dowalk = 0, lists = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$pKp", kwlist, &dowalk, &find,
                                     &lists))
        return NULL;
    if (check_open(st, self))
        return NULL;
    o.walk = dowalk || find;
    o.find_addr = find;
    o.lists = lists;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_heap(self->s, &o, &h, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    arenas = PyList_New((Py_ssize_t)h->narenas);
    for (i = 0; arenas && i < h->narenas; i++) {
        PyObject *a = heap_arena_dict(&h->arenas[i]);
        if (!a) {
            Py_CLEAR(arenas);
            break;
        }
        PyList_SET_ITEM(arenas, (Py_ssize_t)i, a);
    }
    errors = PyList_New((Py_ssize_t)h->nerrors);
    for (i = 0; errors && i < h->nerrors; i++) {
        PyObject *e = Py_BuildValue("(Ks)",
                                    (unsigned long long)h->errors[i].addr,
                                    h->errors[i].msg);
        if (!e) {
            Py_CLEAR(errors);
            break;
        }
        PyList_SET_ITEM(errors, (Py_ssize_t)i, e);
    }
    if (h->walked)
        walk = heap_walk_dict(h);
    else
        walk = Py_NewRef(Py_None);
    if (!arenas || !errors || !walk) {
        Py_XDECREF(arenas);
        Py_XDECREF(errors);
        Py_XDECREF(walk);
        pmp_heap_free(h);
        return NULL;
    }
    d = Py_BuildValue(
        "{s:s,s:s,s:s,s:K,s:K,s:K,s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,"
        "s:N,s:N,s:n,s:n,s:K,s:N,s:s,s:i,s:i,s:O}",
        "version", h->version, "build_id", h->build_id, "libc_path",
        h->libc_path, "libc_base", (unsigned long long)h->libc_base,
        "main_arena", (unsigned long long)h->main_arena, "mp",
        (unsigned long long)h->mp, "main_arena_method", h->main_arena_method,
        "mp_method", h->mp_method, "trim_threshold",
        (unsigned long long)h->trim_threshold, "mmap_threshold",
        (unsigned long long)h->mmap_threshold, "sbrk_base",
        (unsigned long long)h->sbrk_base, "tcache_count",
        (unsigned long long)h->tcache_count, "n_mmaps",
        (unsigned long long)h->n_mmaps, "max_n_mmaps",
        (unsigned long long)h->max_n_mmaps, "mmapped_mem",
        (unsigned long long)h->mmapped_mem, "max_mmapped_mem",
        (unsigned long long)h->max_mmapped_mem, "arenas", arenas, "errors",
        errors, "errors_dropped", (Py_ssize_t)h->errors_dropped, "nthreads",
        (Py_ssize_t)h->nthreads, "elapsed_ns",
        (unsigned long long)h->elapsed_ns, "walk", walk, "layout", h->layout,
        "nfastbins", h->nfastbins, "tcache_bins", h->tcache_bins,
        "safe_linking", h->safe_linking ? Py_True : Py_False);
    pmp_heap_free(h);
    return d;
}

/* heap_allocator() -> None, or (name, evidence): another allocator than
   glibc's malloc in the process (jemalloc, tcmalloc, mimalloc). */
static PyObject *
Session_heap_allocator(SessionObject *self, PyObject *unused)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    struct pmp_error err = {0};
    char name[16], why[256];
    int rc;

    if (check_open(st, self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_heap_allocator(self->s, name, sizeof(name), why,
                                    sizeof(why), &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    if (!name[0])
        Py_RETURN_NONE;
    return Py_BuildValue("(ss)", name, why);
}

/* peek_waits() -> [(tid, wait dict or None)] without stopping (live). */
static PyObject *
Session_peek_waits(SessionObject *self, PyObject *unused)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    struct pmp_peek *pk = NULL;
    struct pmp_error err = {0};
    size_t n = 0, i;
    PyObject *l;
    int rc;

    if (check_open(st, self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_peek_waits(self->s, &pk, &n, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    l = PyList_New((Py_ssize_t)n);
    for (i = 0; l && i < n; i++) {
        PyObject *t = Py_BuildValue("(iN)", pk[i].tid, wait_dict(&pk[i].wait));
        if (!t) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    free(pk);
    return l;
}

/* glibc() -> {"version": "2.36" | "" | None, "layout": bool} */
static PyObject *
Session_glibc(SessionObject *self, PyObject *unused)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    const char *v = NULL;
    int known;

    if (check_open(st, self))
        return NULL;
    known = pmp_session_glibc(self->s, &v);
    return Py_BuildValue("{s:z,s:O}", "version", v, "layout",
                         known ? Py_True : Py_False);
}

static PyObject *
Session_warnings(SessionObject *self, PyObject *unused)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    const char *const *w;
    size_t n, i;
    PyObject *l;

    if (check_open(st, self))
        return NULL;
    w = pmp_session_warnings(self->s, &n);
    l = PyList_New((Py_ssize_t)n);
    if (!l)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(w[i], strlen(w[i]), "replace");
        if (!s) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, s);
    }
    return l;
}

static PyObject *
Session_get_pid(SessionObject *self, void *closure)
{
    return PyLong_FromLong(self->s ? pmp_session_pid(self->s) : 0);
}

static PyObject *
Session_get_is_core(SessionObject *self, void *closure)
{
    return PyBool_FromLong(self->s ? pmp_session_is_core(self->s) : 0);
}

/* cache_todo() -> [(build_id, compressed debug file, cache path)] */
static PyObject *
Session_cache_todo(SessionObject *self, PyObject *unused)
{
    pmp_state *st = state_from_type(Py_TYPE(self));
    const struct pmp_cache_todo *t;
    size_t n, i;
    PyObject *l;

    if (check_open(st, self))
        return NULL;
    n = pmp_session_cache_todo(self->s, &t);
    l = PyList_New((Py_ssize_t)n);
    for (i = 0; l && i < n; i++) {
        PyObject *x = Py_BuildValue("(sss)", t[i].build_id, t[i].path,
                                    t[i].dest);
        if (!x) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, x);
    }
    return l;
}

static PyObject *Session_record(SessionObject *self, PyObject *args,
                                PyObject *kw);

static PyMethodDef Session_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Session_record,
     METH_VARARGS | METH_KEYWORDS,
     "record(*, hz=99, duration=0, max_frames=0, stack_bytes=0, tids=None,\n"
     "       thread_regex=None, floor=False, progress=None,\n"
     "       progress_interval=0.2, ptrace_only=False) -> Recording\n\n"
     "Sample a live process (a session opened without traced=True)."},
    {"goroutines", (PyCFunction)(void (*)(void))Session_goroutines,
     METH_VARARGS | METH_KEYWORDS,
     "goroutines(max_frames=0) -> Snapshot with go_info() (Go programs)"},
    {"snapshot", (PyCFunction)(void (*)(void))Session_snapshot,
     METH_VARARGS | METH_KEYWORDS,
     "snapshot(*, max_frames=0, tids=None, decode_waits=False) -> Snapshot\n\n"
     "Stop (live), read registers, unwind every thread, resume."},
    {"heap_allocator", (PyCFunction)Session_heap_allocator, METH_NOARGS,
     "heap_allocator() -> None or (name, evidence): jemalloc, tcmalloc or\n"
     "mimalloc in the process instead of glibc's malloc."},
    {"heap", (PyCFunction)(void (*)(void))Session_heap,
     METH_VARARGS | METH_KEYWORDS,
     "heap(*, walk=False, find=0) -> dict: glibc malloc arenas, bins, top,\n"
     "mmap counters; walk: every chunk (app/tcache/overhead, sizes);\n"
     "find: the chunk holding an address"},
    {"peek_waits", (PyCFunction)Session_peek_waits, METH_NOARGS,
     "peek_waits() -> [(tid, wait)]: futex waits read without stopping "
     "(live)"},
    {"cache_todo", (PyCFunction)Session_cache_todo, METH_NOARGS,
     "cache_todo() -> [(build_id, compressed debug file, cache path)]"},
    {"warnings", (PyCFunction)Session_warnings, METH_NOARGS,
     "warnings() -> list of str"},
    {"glibc", (PyCFunction)Session_glibc, METH_NOARGS,
     "glibc() -> {version, layout}: the target's glibc release (None: no\n"
     "libc.so; '': unreadable) and whether the lock layouts know it"},
    {"close", (PyCFunction)Session_close, METH_NOARGS,
     "close(): detach and free (idempotent)"},
    {"set_regs", (PyCFunction)Session_set_regs, METH_VARARGS,
     "set_regs(regs, stop): external=True sessions: the registers of every\n"
     "thread at this stop, [(tid, r0..r16 (DWARF order), orig_rax (-1:\n"
     "from /proc), eflags, fs_base)]; memory read through read= stays\n"
     "cached while `stop` (the debugger's stop id) is the same"},
    {NULL}
};

static PyGetSetDef Session_getset[] = {
    {"pid", (getter)Session_get_pid, NULL, "target pid", NULL},
    {"is_core", (getter)Session_get_is_core, NULL, "True for a core file",
     NULL},
    {"via_debugger", (getter)Session_get_via_debugger, NULL,
     "True when memory is read through the front-end's reader", NULL},
    {NULL}
};

static PyType_Slot Session_slots[] = {
    {Py_tp_dealloc, Session_dealloc},
    {Py_tp_methods, Session_methods},
    {Py_tp_getset, Session_getset},
    {Py_tp_doc, "A pmprof session on one live process or core file."},
    {0, NULL},
};

static PyType_Spec Session_spec = {
    .name = "pmprof._core.Session",
    .basicsize = sizeof(SessionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Session_slots,
};

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
static PyObject *
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

static PyType_Spec Snapshot_spec = {
    .name = "pmprof._core.Snapshot",
    .basicsize = sizeof(SnapshotObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Snapshot_slots,
};

/* ---- Recording ---- */

struct progress_ctx {
    PyObject *callback;   /* or NULL */
    PyObject *exc_type, *exc_value, *exc_tb;   /* what stopped us */
};

static PyObject *
stats_dict(const struct pmp_record_stats *st)
{
    return Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsdsisisOsOsOsOsssisKsKsKsKsKsKsKsKsKsK}", "samples",
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
        st->perf ? "perf" : "ptrace", "perf_errno", st->perf_errno, "stops",
        (unsigned long long)st->stops, "stopped_ns",
        (unsigned long long)st->stopped_ns, "reused",
        (unsigned long long)st->reused, "cpu_samples",
        (unsigned long long)st->cpu_samples, "perf_lost",
        (unsigned long long)st->perf_lost, "max_stop_ns",
        (unsigned long long)st->max_stop_ns, "stops_over", (unsigned long long)st->stops_over, "sig_passed", (unsigned long long)st->sig_passed, "late_stops", (unsigned long long)st->late_stops, "bound_lost", (unsigned long long)st->bound_lost);
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

static PyObject *
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
        PyObject *d = Py_BuildValue(
            "{sisNsKsKsLsL}", "tid", t[i].tid, "name",
            PyUnicode_DecodeUTF8(t[i].name, strlen(t[i].name), "replace"),
            "samples", (unsigned long long)t[i].samples, "lost",
            (unsigned long long)t[i].lost, "cpu_ns", (long long)t[i].cpu_ns,
            "wall_ns", (long long)t[i].wall_ns);
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
     "threads() -> list of dict: tid, name, samples, lost, cpu_ns, wall_ns"},
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

static PyType_Spec Recording_spec = {
    .name = "pmprof._core.Recording",
    .basicsize = sizeof(RecordingObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Recording_slots,
};

/* ---- module functions ---- */

static PyObject *
core_open_pid(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"pid", "traced", "debug_path", "cache_dir",
                             "external", "read", "read_always", NULL};
    pmp_state *st = get_state(module);
    int pid, traced = 0, external = 0, read_always = 0, rc;
    const char *debug_path = NULL, *cache_dir = NULL;
    PyObject *reader = Py_None, *sess;
    struct pmp_session_opts o = {0};
    struct pmp_session *s = NULL;
    struct pmp_error err = {0};

    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|$pzzpOp", kwlist, &pid,
                                     &traced, &debug_path, &cache_dir,
                                     &external, &reader, &read_always))
        return NULL;
    if (reader != Py_None && (!external || !PyCallable_Check(reader))) {
        PyErr_SetString(PyExc_TypeError,
                        "read= is a callable, with external=True");
        return NULL;
    }
    o.debug_path = debug_path;
    o.cache_dir = cache_dir;
    if (reader != Py_None) {
        o.read = py_reader;
        o.read_ctx = reader;
        o.read_always = read_always;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_open_pid(&s, pid,
                              external ? PMP_ATTACH_EXTERNAL
                              : traced ? PMP_ATTACH_TRACED
                                       : PMP_ATTACH_SEIZE,
                              &o, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    sess = new_session(st, s);
    if (sess && reader != Py_None) {
        Py_INCREF(reader);
        ((SessionObject *)sess)->reader = reader;
    }
    return sess;
}

static PyObject *
core_open_core(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "exe", "solib_path", "debug_path",
                             "cache_dir", NULL};
    pmp_state *st = get_state(module);
    const char *path, *exe = NULL, *solib = NULL, *debug_path = NULL;
    const char *cache_dir = NULL;
    struct pmp_session_opts o = {0};
    struct pmp_session *s = NULL;
    struct pmp_error err = {0};
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|$zzzz", kwlist, &path, &exe,
                                     &solib, &debug_path, &cache_dir))
        return NULL;
    o.exe = exe;
    o.solib_path = solib;
    o.debug_path = debug_path;
    o.cache_dir = cache_dir;
    Py_BEGIN_ALLOW_THREADS
    rc = pmp_session_open_core(&s, path, &o, &err);
    Py_END_ALLOW_THREADS
    if (rc)
        return raise_pmp(st, rc, &err);
    return new_session(st, s);
}

static PyObject *
core_syscall_name(PyObject *module, PyObject *arg)
{
    long nr = PyLong_AsLong(arg);
    const char *n;

    if (nr == -1 && PyErr_Occurred())
        return NULL;
    n = pmp_syscall_name(nr);
    if (!n)
        Py_RETURN_NONE;
    return PyUnicode_FromString(n);
}

/* nptl_layouts() -> [dict]: the rows of ext/layout-glibc-nptl.h. */
static PyObject *
core_nptl_layouts(PyObject *mod, PyObject *unused)
{
    PyObject *l = PyList_New(0);
    const char *names[64], *version;
    int values[64];
    size_t i, k, n;

    for (i = 0; l && (n = pmp_nptl_layout_fields(i, &version, names, values,
                                                 64)) > 0;
         i++) {
        PyObject *d = Py_BuildValue("{s:s}", "version", version);

        for (k = 0; d && k < n; k++) {
            PyObject *v = PyLong_FromLong(values[k]);
            if (!v || PyDict_SetItemString(d, names[k], v) < 0)
                Py_CLEAR(d);
            Py_XDECREF(v);
        }
        if (!d || PyList_Append(l, d) < 0) {
            Py_XDECREF(d);
            Py_CLEAR(l);
            break;
        }
        Py_DECREF(d);
    }
    return l;
}

static PyMethodDef core_methods[] = {
    {"nptl_layouts", (PyCFunction)core_nptl_layouts, METH_NOARGS,
     "nptl_layouts() -> [dict]: the glibc lock layout table, a row per\n"
     "release (offsets; 65535: the member does not exist)"},
    {"open_pid", (PyCFunction)(void (*)(void))core_open_pid,
     METH_VARARGS | METH_KEYWORDS,
     "open_pid(pid, *, traced=False, debug_path=None, cache_dir=None) -> "
     "Session\n\n"
     "traced=True: the calling thread already ptraces every (stopped) "
     "thread, as inside gdb; the core then only reads.\n"
     "external=True: another process ptraces every (stopped) thread, as\n"
     "lldb-server under lldb; registers come from set_regs(), memory from\n"
     "/proc/PID/mem or, where refused (or read_always), from\n"
     "read(addr, len) -> bytes."},
    {"open_core", (PyCFunction)(void (*)(void))core_open_core,
     METH_VARARGS | METH_KEYWORDS,
     "open_core(path, *, exe=None, solib_path=None, debug_path=None, "
     "cache_dir=None) -> "
     "Session"},
    {"syscall_name", (PyCFunction)core_syscall_name, METH_O,
     "syscall_name(nr) -> str or None"},
    {NULL}
};

static int
add_exc(PyObject *m, PyObject **slot, const char *name, PyObject *base,
        const char *doc)
{
    char full[128];

    snprintf(full, sizeof(full), "pmprof._core.%s", name);
    *slot = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (!*slot)
        return -1;
    return PyModule_AddObjectRef(m, name, *slot);
}

static int
core_exec(PyObject *m)
{
    pmp_state *st = get_state(m);

    if (add_exc(m, &st->Error, "Error", NULL, "Base pmprof error.") < 0 ||
        add_exc(m, &st->TargetError, "TargetError", st->Error,
                "The target cannot be accessed.") < 0 ||
        add_exc(m, &st->CorruptTarget, "CorruptTarget", st->Error,
                "Target data is corrupt or not what it should be.") < 0 ||
        add_exc(m, &st->Unsupported, "Unsupported", st->Error,
                "Not supported.") < 0)
        return -1;
    st->SessionType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Session_spec, NULL);
    if (!st->SessionType ||
        PyModule_AddObjectRef(m, "Session", (PyObject *)st->SessionType) < 0)
        return -1;
    st->SnapshotType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Snapshot_spec, NULL);
    if (!st->SnapshotType ||
        PyModule_AddObjectRef(m, "Snapshot", (PyObject *)st->SnapshotType) <
            0)
        return -1;
    st->RecordingType =
        (PyTypeObject *)PyType_FromModuleAndSpec(m, &Recording_spec, NULL);
    if (!st->RecordingType ||
        PyModule_AddObjectRef(m, "Recording", (PyObject *)st->RecordingType) <
            0)
        return -1;
    if (PyModule_AddIntConstant(m, "ABI_VERSION", 1) < 0)
        return -1;
    return 0;
}

static int
core_traverse(PyObject *m, visitproc visit, void *arg)
{
    pmp_state *st = get_state(m);

    Py_VISIT(st->Error);
    Py_VISIT(st->TargetError);
    Py_VISIT(st->CorruptTarget);
    Py_VISIT(st->Unsupported);
    Py_VISIT(st->SessionType);
    Py_VISIT(st->SnapshotType);
    Py_VISIT(st->RecordingType);
    return 0;
}

static int
core_clear(PyObject *m)
{
    pmp_state *st = get_state(m);

    Py_CLEAR(st->Error);
    Py_CLEAR(st->TargetError);
    Py_CLEAR(st->CorruptTarget);
    Py_CLEAR(st->Unsupported);
    Py_CLEAR(st->SessionType);
    Py_CLEAR(st->SnapshotType);
    Py_CLEAR(st->RecordingType);
    return 0;
}

static void
core_free(void *m)
{
    core_clear((PyObject *)m);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pmprof._core",
    .m_doc = "pmprof C core: snapshots, unwinding, symbols, pprof.",
    .m_size = sizeof(pmp_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PMP_EXPORT PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}

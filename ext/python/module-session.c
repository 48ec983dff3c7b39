/*
 * module-session.c: the Python type Session: one live process or core
 * file, its snapshots, heap, lock waits and Go runtime state.
 * Part of pmprof._core (module.h).
 */
#include "module.h"

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

PyObject *
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

/*
 * pmp_read_fn over a Python callable reader(addr, len) -> bytes (short or
 * empty where nothing is mapped) or None.  Called from C code that runs
 * with the GIL released; it takes the GIL for the call.
 */
long
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

int
check_open(pmp_state *st, SessionObject *self)
{
    if (!self->s) {
        PyErr_SetString(st->Error, "session is closed");
        return -1;
    }
    return 0;
}

/* A Python sequence of TIDs as a malloc'd int array (-1 with an exception). */
int
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

PyType_Spec Session_spec = {
    .name = "pmprof._core.Session",
    .basicsize = sizeof(SessionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Session_slots,
};

/*
 * module.c: the CPython extension pmprof._core, and with the other
 * module*.c files of ext/python/ the ONLY code of pmprof that includes
 * Python.h.
 *
 * Owns: module state (exception types), the one translation point from
 * struct pmp_error to Python exceptions (raise_pmp), the module functions,
 * and assembling the types (module-session.c, module-snapshot.c,
 * module-recording.c; module.h).
 *
 * Must not: do analysis; it converts arguments, calls the core, and
 * converts results.  While the GIL is released no Py* object is touched.
 */
#include "module.h"

#define PMP_EXPORT __attribute__((visibility("default")))

/* The one place a pmp_error becomes a Python exception. */
PyObject *
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

/* nptl_layouts() -> [dict]: the rows of ext/layouts/layout-glibc-nptl.h. */
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

/*
 * module.h: what the files of pmprof._core share, private to ext/python/:
 * the module state, the three object structs, and the few functions one
 * type's file calls in another's.
 *
 *   module.c            the module: state, exceptions, raise_pmp (the one
 *                       place a pmp_error becomes a Python exception), the
 *                       module functions (open_pid, open_core, ...)
 *   module-session.c    Session: one live process or core
 *   module-snapshot.c   Snapshot: every thread's raw stack at one moment,
 *                       and the Go runtime's state read with it
 *   module-recording.c  Recording: samples over time (Session.record)
 *
 * Must not: do analysis; these files convert arguments, call the core and
 * convert results.  While the GIL is released no Py* object is touched.
 */
#ifndef PMPROF_MODULE_H
#define PMPROF_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#include "pmprof.h"

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

static inline pmp_state *
get_state(PyObject *module)
{
    return (pmp_state *)PyModule_GetState(module);
}

static inline pmp_state *
state_from_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModule(tp);
    return m ? get_state(m) : NULL;
}

/* module.c */
PyObject *raise_pmp(pmp_state *st, int rc, const struct pmp_error *err);

/* module-session.c */
extern PyType_Spec Session_spec;
PyObject *new_session(pmp_state *st, struct pmp_session *s);
int check_open(pmp_state *st, SessionObject *self);
long py_reader(void *ctx, uint64_t addr, void *buf, size_t len,
               struct pmp_error *err);
int tid_list(PyObject *tids, int **out, size_t *n);

/* module-snapshot.c */
extern PyType_Spec Snapshot_spec;
PyObject *wait_dict(const struct pmp_wait *w);

/* module-recording.c */
extern PyType_Spec Recording_spec;
PyObject *Session_record(SessionObject *self, PyObject *args, PyObject *kw);

#endif /* PMPROF_MODULE_H */

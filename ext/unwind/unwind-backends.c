/*
 * unwind-backends.c: the unwinder's backends (unwind-backend.h), in the
 * order unwind.c asks them whether they own a PC.  A new runtime's
 * unwinder: one line here.
 */
#include "unwind-backend.h"

extern const struct pmp_unwind_backend pmp_unwind_backend_go;

const struct pmp_unwind_backend *const pmp_unwind_backends[] = {
    &pmp_unwind_backend_go,   /* unwind-go.c: .gopclntab */
};
const unsigned pmp_unwind_nbackends = PMP_ARRAY_SIZE(pmp_unwind_backends);

/*
 * unwind-backend.h: the unwinder's per-runtime backends.
 *
 * The generic unwinder (unwind.c: DWARF CFI, frame pointers, signal
 * frames) knows no language runtime.  A runtime whose code has no CFI
 * (Go: its frame sizes are in .gopclntab) is a backend: a row of
 * pmp_unwind_backends[] (unwind-backends.c) with two functions.  For
 * each new PC the unwinder asks each backend whether it owns the PC
 * (`claims`, once per PC: the answer and a small opaque payload are kept
 * in the unwinder's per-PC cache); for a frame a backend owns, the
 * unwinder calls its `step` (one indirect call per frame).  The way
 * libdwfl keeps an architecture behind its backend tables.
 *
 * A new runtime: a file unwind-NAME.c defining a
 * `const struct pmp_unwind_backend pmp_unwind_backend_NAME` and one line
 * in unwind-backends.c.  unwind.c does not change.
 */
#ifndef PMP_UNWIND_BACKEND_H
#define PMP_UNWIND_BACKEND_H

#include <stdint.h>

#include "pmprof-internal.h"

/* Registers of one frame while unwinding; bit k of valid: r[k] known. */
struct pmp_frame_regs {
    uint64_t r[PMP_NREGS];
    uint32_t valid;
};

#define PMP_FRAME_VALID(fr, k) (((fr)->valid >> (k)) & 1u)

/* What a backend keeps per PC (the unwinder's cache stores it). */
union pmp_unwind_payload {
    unsigned char bytes[16];
    uint64_t align;
};

/* claims' answers. */
enum {
    PMP_UNWIND_NOT_MINE = 0,   /* ask the next backend, then CFI */
    PMP_UNWIND_FRAME,          /* the backend's frame: step() unwinds it */
    PMP_UNWIND_MODULE,         /* the backend's module, none of its
                                  functions: CFI; with none, frame 0 by
                                  the frame chain, later ones end the
                                  walk (nofunc_why) */
    PMP_UNWIND_UNREADABLE,     /* the backend's module, which it cannot
                                  read: the walk ends, stack flag
                                  unreadable_flag */
};

/* One walk, as a backend sees it. */
struct pmp_unwind_walk {
    struct pmp_target *target;
    const struct pmp_regs *regs;   /* the registers the walk began with */
    const void *ctx;               /* pmp_unwinder_set_backend_ctx's
                                      (Go: a struct pmp_go_ctx) */
    int innermost;                 /* this frame is the walk's first */
    int switches;                  /* stack switches so far (backend's) */
    uint32_t callee;               /* the backend's word about the callee
                                      frame; 0 if it was not its frame */
    /* Out, per step (the unwinder clears them). */
    uint8_t elide;                 /* hide this frame */
    uint8_t switched;              /* next is on another stack */
};

/* step's answers besides 0 (stepped) and -1 (error, *why says). */
#define PMP_UNWIND_END 1           /* the outermost frame: walk done */

struct pmp_unwind_backend {
    const char *name;
    /* Does this backend own pc, in module mod?  Fills *payload and
       *signal (the frame is a signal handler's: the walk goes on in the
       interrupted code) for PMP_UNWIND_FRAME. */
    int (*claims)(struct pmp_symbolizer *sym, void *mod, uint64_t pc,
                  union pmp_unwind_payload *payload, uint8_t *signal);
    /* cur (callee, may be rewritten by a stack switch) -> next (caller). */
    int (*step)(struct pmp_unwind_walk *w,
                const union pmp_unwind_payload *payload,
                struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
                const char **why);
    unsigned unreadable_flag;      /* PMP_STACK_* for PMP_UNWIND_UNREADABLE */
    const char *nofunc_why;        /* PMP_UNWIND_MODULE, past frame 0 */
};

/* unwind-backends.c: the table, in the order they are asked. */
extern const struct pmp_unwind_backend *const pmp_unwind_backends[];
extern const unsigned pmp_unwind_nbackends;

#endif

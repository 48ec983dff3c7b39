/*
 * gopclntab.h: the Go function-table backend (gopclntab.c) for the
 * unwinder and the symbolizer.  Internal to ext/.
 */
#ifndef PMPROF_GOPCLNTAB_H
#define PMPROF_GOPCLNTAB_H

#include <libelf.h>

#include "pmprof-internal.h"

/*
 * pmprof's own funcID values: Go 1.18/1.19's numbering, plus the ones later
 * releases added.  gopclntab.c translates each release's raw funcID into
 * these (the releases renumbered them: corostart in 1.22, runCleanups in
 * 1.25/1.26), so the unwinder and golang.c see one set.
 */
enum {
    PMP_GOFUNC_NORMAL = 0,
    PMP_GOFUNC_ABORT = 1,
    PMP_GOFUNC_ASMCGOCALL = 2,
    PMP_GOFUNC_ASYNCPREEMPT = 3,
    PMP_GOFUNC_CGOCALLBACK = 4,
    PMP_GOFUNC_DEBUGCALLV2 = 5,
    PMP_GOFUNC_GCBGMARKWORKER = 6,
    PMP_GOFUNC_GOEXIT = 7,
    PMP_GOFUNC_GOGO = 8,
    PMP_GOFUNC_GOPANIC = 9,
    PMP_GOFUNC_HANDLEASYNCEVENT = 10,
    PMP_GOFUNC_MCALL = 11,
    PMP_GOFUNC_MORESTACK = 12,
    PMP_GOFUNC_MSTART = 13,
    PMP_GOFUNC_PANICWRAP = 14,
    PMP_GOFUNC_RT0_GO = 15,
    PMP_GOFUNC_RUNFINQ = 16,       /* runtime.runfinq, runFinalizers (1.25+) */
    PMP_GOFUNC_RUNTIME_MAIN = 17,
    PMP_GOFUNC_SIGPANIC = 18,
    PMP_GOFUNC_SYSTEMSTACK = 19,
    PMP_GOFUNC_SYSTEMSTACK_SWITCH = 20,
    PMP_GOFUNC_WRAPPER = 21,
    PMP_GOFUNC_COROSTART = 22,     /* Go 1.22+ */
    PMP_GOFUNC_RUNCLEANUPS = 23,   /* Go 1.25+ */
    PMP_GOFUNC_COUNT
};
/* funcFlag bits. */
#define PMP_GOFLAG_TOPFRAME 1
#define PMP_GOFLAG_SPWRITE 2

struct pmp_gomod;

struct pmp_gofunc {
    uint64_t entry, end;   /* runtime addresses */
    size_t off;            /* the _func record's offset in the table */
    int32_t nameoff;
    uint32_t npcdata;
    uint8_t funcid, flag, nfuncdata;
};

struct pmp_goline {
    const char *function;  /* points into the table: valid while open */
    const char *file;
    int line;
    uint8_t funcid;
};

/* Open the table of a module loaded at bias (target: optional, for a PIE's
   moduledata).  PMP_E_NOTFOUND without .gopclntab, PMP_E_UNSUPPORTED for
   a table no row of gopclntab.c's layout table reads (the message names
   the magic and the Go version). */
int pmp_gomod_open(struct pmp_gomod **out, Elf *elf, uint64_t bias,
                   struct pmp_target *target, struct pmp_error *err);
void pmp_gomod_free(struct pmp_gomod *g);
/* The function holding pc: 0, or -1 when pc is not Go code. */
int pmp_gomod_func(const struct pmp_gomod *g, uint64_t pc,
                   struct pmp_gofunc *f);
/* Frame size (SP delta from the function's entry) at pc, -1 unknown. */
int32_t pmp_gomod_spdelta(const struct pmp_gomod *g,
                          const struct pmp_gofunc *f, uint64_t pc);
const char *pmp_gomod_name(const struct pmp_gomod *g, int32_t nameoff);
/* file:line of pc in f (no inline expansion). */
void pmp_gomod_line(const struct pmp_gomod *g, const struct pmp_gofunc *f,
                    uint64_t pc, const char **file, int *line);
/* Frames at pc, innermost (inlined) first, the physical function last;
   inlined wrappers elided as Go does.  Returns the count (>= 1). */
size_t pmp_gomod_expand(const struct pmp_gomod *g, const struct pmp_gofunc *f,
                        uint64_t pc, struct pmp_goline *out, size_t max);
/* Go's rule: a wrapper frame is hidden unless it called a panic. */
int pmp_gomod_elide(uint8_t funcid, uint8_t child_funcid);
/* The runtime address of runtime.firstmoduledata, 0 if not found. */
uint64_t pmp_gomod_moduledata(const struct pmp_gomod *g);
/* The Go version the module was built by ("go1.26.0", from .go.buildinfo;
   "" if unknown) and its minor number (26; 0 if unknown). */
const char *pmp_gomod_goversion(const struct pmp_gomod *g, int *minor);

#endif

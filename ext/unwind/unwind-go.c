/*
 * unwind-go.c: the Go backend of the unwinder (unwind-backend.h).
 *
 * Owns: which PCs are Go's (a module with a readable .gopclntab, a PC in
 * one of its functions), Go's own traceback step (frame size from the
 * pcsp table, return address at sp+frame), across Go's signal
 * trampoline, hiding wrappers as Go does, and leaving a system (g0)
 * stack for the goroutine it works for (gostack.c).
 *
 * Defences: frame sizes are bounded, every read is pmp_target_read's,
 * at most two stack switches per walk.
 */
#include <string.h>

#include "gopclntab.h"
#include "unwind-backend.h"

/* Per PC, in the unwinder's cache. */
struct go_rule {
    int64_t frame;       /* frame size from the pcsp table, -1 unknown */
    int32_t minor;       /* the module's Go 1.minor */
    uint8_t funcid, flag;
    uint8_t signal;      /* runtime.sigtramp & co */
};

_Static_assert(sizeof(struct go_rule) <= sizeof(union pmp_unwind_payload),
               "struct go_rule must fit the unwinder's payload");

static int
go_claims(struct pmp_symbolizer *sym, void *mod, uint64_t pc,
          union pmp_unwind_payload *payload, uint8_t *signal)
{
    struct pmp_gomod *gm;
    struct pmp_gofunc gf;
    struct go_rule g;
    const char *nm;

    if (!pmp_symbolizer_is_go(sym, mod))
        return PMP_UNWIND_NOT_MINE;
    gm = pmp_symbolizer_gomod(sym, mod);
    if (!gm)
        return PMP_UNWIND_UNREADABLE;
    if (pmp_gomod_func(gm, pc, &gf) != 0)
        return PMP_UNWIND_MODULE;   /* the C parts of a cgo binary */
    memset(&g, 0, sizeof(g));
    nm = pmp_gomod_name(gm, gf.nameoff);
    g.funcid = gf.funcid;
    g.flag = gf.flag;
    {
        int minor = 0;
        pmp_gomod_goversion(gm, &minor);
        g.minor = minor;
    }
    g.frame = pmp_gomod_spdelta(gm, &gf, pc);
    /* Go's signal entry: the kernel's signal frame is above it. */
    g.signal = strcmp(nm, "runtime.sigtramp") == 0 ||
               strcmp(nm, "runtime.sigprofNonGoWrapper") == 0;
    *signal = g.signal;
    memcpy(payload->bytes, &g, sizeof(g));
    return PMP_UNWIND_FRAME;
}

/* The goroutine context to jump to from the system stack at sp. */
static int
go_jump_ctx(struct pmp_unwind_walk *w, int gominor, uint64_t sp,
            struct pmp_go_ctx *gc)
{
    const struct pmp_go_ctx *c = w->ctx;

    if (c) {
        if (!c->sched_sp && !c->syscall_sp)
            return -1;
        *gc = *c;
        return 0;
    }
    return pmp_go_curg_context(w->target, gominor, w->regs, sp, gc);
}

/*
 * Go step (Go's own traceback method): the frame size f at pc from the
 * pclntab's pcsp table; the return address is at sp+f, the caller's sp is
 * sp+f+8, and a function with a frame saved the caller's rbp at sp+f-8.
 */
static inline __attribute__((always_inline)) int
step_frame(struct pmp_unwind_walk *w, const struct go_rule *g,
           const struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
           const char **why)
{
    uint64_t sp = cur->r[PMP_REG_RSP], ra, bp;
    uint64_t f = (uint64_t)g->frame;

    if (g->frame < 0 || g->frame > (1 << 24)) {
        *why = "no Go frame size";
        return -1;
    }
    if (!PMP_FRAME_VALID(cur, PMP_REG_RSP) ||
        pmp_target_read_u64(w->target, sp + f, &ra, NULL)) {
        *why = "cannot read the Go return address";
        return -1;
    }
    next->valid = 0;
    next->r[PMP_REG_RIP] = ra;
    next->r[PMP_REG_RSP] = sp + f + 8;
    next->valid = (1u << PMP_REG_RIP) | (1u << PMP_REG_RSP);
    if (f >= 8 && pmp_target_read_u64(w->target, sp + f - 8, &bp, NULL) == 0) {
        next->r[PMP_REG_RBP] = bp;
        next->valid |= 1u << PMP_REG_RBP;
    } else if (f < 8 && PMP_FRAME_VALID(cur, PMP_REG_RBP)) {
        next->r[PMP_REG_RBP] = cur->r[PMP_REG_RBP];
        next->valid |= 1u << PMP_REG_RBP;
    }
    return 0;
}

/*
 * Across Go's signal trampoline: its return address (at sp+f) is the
 * restorer, the start of the kernel's rt_sigframe; the interrupted
 * registers are in its ucontext's mcontext (x86_64 struct sigcontext:
 * r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip).
 */
static int
step_signal(struct pmp_unwind_walk *w, const struct go_rule *g,
            const struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
            const char **why)
{
    static const uint8_t order[] = {
        8, 9, 10, 11, 12, 13, 14, 15, PMP_REG_RDI, PMP_REG_RSI, PMP_REG_RBP,
        PMP_REG_RBX, PMP_REG_RDX, PMP_REG_RAX, PMP_REG_RCX, PMP_REG_RSP,
        PMP_REG_RIP,
    };
    uint64_t mc[17];
    size_t k;

    if (g->frame < 0 || !PMP_FRAME_VALID(cur, PMP_REG_RSP) ||
        pmp_target_read(w->target,
                        cur->r[PMP_REG_RSP] + (uint64_t)g->frame + 8 + 40,
                        mc, sizeof(mc), NULL)) {
        *why = "cannot read the signal frame";
        return -1;
    }
    next->valid = 0;
    for (k = 0; k < PMP_ARRAY_SIZE(order); k++) {
        next->r[order[k]] = mc[k];
        next->valid |= 1u << order[k];
    }
    return 0;
}

/*
 * A frame of systemstack, morestack or asmcgocall above frame 0: from the
 * system stack to the goroutine it works for, as Go's traceback does:
 * systemstack returns to curg.sched.sp's frame, morestack resumes at
 * curg.sched, a cgo call at the goroutine's syscall context (cgocall
 * entered a syscall).  Out of go_step's way (rare).
 */
static __attribute__((noinline)) int
step_switch(struct pmp_unwind_walk *w, const struct go_rule *g,
            struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
            const char **why)
{
    struct pmp_go_ctx gc;
    uint8_t fid = g->funcid;
    int jrc, rc;

    jrc = go_jump_ctx(w, g->minor, cur->r[PMP_REG_RSP], &gc);
    if (jrc == PMP_E_UNSUPPORTED) {
        /* A release whose g we do not know: the goroutine above the
           system stack is not shown, and the stack says so. */
        *why = "no layout of this Go release's g to leave the system stack";
        return -1;
    }
    if (jrc != 0) {
        if ((g->flag & PMP_GOFLAG_TOPFRAME) || (g->flag & PMP_GOFLAG_SPWRITE))
            return PMP_UNWIND_END;   /* as go_step: not innermost here */
        return step_frame(w, g, cur, next, why);
    }
    w->switches++;
    w->switched = 1;
    next->valid = 0;
    if (fid == PMP_GOFUNC_SYSTEMSTACK) {
        cur->r[PMP_REG_RSP] = gc.sched_sp;
        rc = step_frame(w, g, cur, next, why);
    } else {
        uint64_t jpc = fid == PMP_GOFUNC_MORESTACK ? gc.sched_pc
                                                   : gc.syscall_pc;
        uint64_t jsp = fid == PMP_GOFUNC_MORESTACK ? gc.sched_sp
                                                   : gc.syscall_sp;
        rc = jpc && jsp ? 0 : -1;
        *why = "no saved goroutine context";
        next->r[PMP_REG_RIP] = jpc;
        next->r[PMP_REG_RSP] = jsp;
        next->r[PMP_REG_RBP] = gc.sched_bp;
        next->valid = (1u << PMP_REG_RIP) | (1u << PMP_REG_RSP) |
                      (1u << PMP_REG_RBP);
    }
    return rc;
}

static int
go_step(struct pmp_unwind_walk *w, const union pmp_unwind_payload *payload,
        struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
        const char **why)
{
    struct go_rule g;
    uint8_t fid;

    memcpy(&g, payload->bytes, sizeof(g));
    fid = g.funcid;
    /* Go hides wrappers (unless they called a panic). */
    if (pmp_gomod_elide(fid, (uint8_t)w->callee))
        w->elide = 1;
    w->callee = fid;
    if (g.signal)   /* a signal handler: go on in the interrupted code */
        return step_signal(w, &g, cur, next, why);
    if (!w->innermost && w->switches < 2 &&
        (fid == PMP_GOFUNC_SYSTEMSTACK || fid == PMP_GOFUNC_MORESTACK ||
         fid == PMP_GOFUNC_ASMCGOCALL))
        return step_switch(w, &g, cur, next, why);
    if ((g.flag & PMP_GOFLAG_TOPFRAME) ||
        ((g.flag & PMP_GOFLAG_SPWRITE) && !w->innermost)) {
        /* The outermost frame of a stack; and past a function that
           writes SP we cannot follow (Go stops there too). */
        return PMP_UNWIND_END;
    }
    return step_frame(w, &g, cur, next, why);
}

const struct pmp_unwind_backend pmp_unwind_backend_go = {
    .name = "go",
    .claims = go_claims,
    .step = go_step,
    .unreadable_flag = PMP_STACK_GO,
    .nofunc_why = "return address outside any Go function",
};

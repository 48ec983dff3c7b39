/*
 * gostack.c: the Go backend of the unwinder, runtime side: leaving a
 * thread's system (g0) stack for the goroutine its M runs, as Go's own
 * traceback does (systemstack, morestack, asmcgocall).
 *
 * Owns: where a stopped thread's g may be (R14 or the TLS slot) and the
 * saved context of m.curg, with the g/m offsets of the module's release
 * from layouts/layout-go.c.  The unwinder (unwind-go.c), the Go runtime
 * reader (inspect/golang.c) and the sampler (record/record.c) call it;
 * it calls only the target's bounded reads.
 *
 * Defences: a candidate g is used only if g.m.g0 == g and sp is inside
 * g's stack; every read is bounds-checked by pmp_target_read.
 */
#include "gopclntab.h"
#include "layout-go.h"
#include "pmprof-internal.h"

/* g.stack {lo, hi} opens every g of every release
   (tests/test_go_versions.py). */
#define G_STACK_LO 0
#define G_STACK_HI 8
#define G_BUF 512                /* >= every g_size of the table */

/* The table's row for Go 1.minor, NULL if none (or one whose g does not
   fit the buffer: never for a row the tests passed). */
static const struct pmp_go_layout *
layout_minor(int minor)
{
    const struct pmp_go_layout *L = pmp_go_layout_row(minor);

    return L && L->g_size <= G_BUF ? L : NULL;
}

/* Where a stopped thread's g may be: R14 in Go code (the register ABI),
   else the TLS slot at fs-8.  Callers check which one is a g. */
void
pmp_go_g_candidates(struct pmp_target *t, const struct pmp_regs *rg,
                    uint64_t cand[2])
{
    cand[0] = rg->r[PMP_REG_R14];
    cand[1] = 0;
    if (rg->fs_base > 8)
        pmp_target_read_u64(t, rg->fs_base - 8, &cand[1], NULL);
}

/*
 * A thread on its g0 (system) stack at sp: the goroutine its M runs
 * (m.curg), and that goroutine's saved context, for unwinding across
 * systemstack/morestack/asmcgocall as Go's traceback does.  The g0 is
 * R14 (Go code) or the TLS slot at fs-8, checked: g.m.g0 == g and sp
 * inside g's stack.  gominor: the module's Go 1.minor (gopclntab.h);
 * PMP_E_UNSUPPORTED for a release layout-go.h has no row for (the
 * unwinder then ends the walk at the system stack, marked).
 */
int
pmp_go_curg_context(struct pmp_target *t, int gominor,
                    const struct pmp_regs *rg, uint64_t sp,
                    struct pmp_go_ctx *out)
{
    uint64_t cand[2], m, g0, curg;
    const struct pmp_go_layout *L = layout_minor(gominor);
    unsigned char g[G_BUF];
    int k;

    if (!L)
        return PMP_E_UNSUPPORTED;
    pmp_go_g_candidates(t, rg, cand);
    for (k = 0; k < 2; k++) {
        uint64_t lo, hi;
        if (!cand[k] || (cand[k] & 7) ||
            pmp_target_read(t, cand[k], g, 56, NULL))
            continue;
        lo = pmp_u64at(g, G_STACK_LO);
        hi = pmp_u64at(g, G_STACK_HI);
        m = pmp_u64at(g, L->g_m);
        if (sp < lo || sp >= hi || !m ||
            pmp_target_read_u64(t, m + L->m_g0, &g0, NULL) || g0 != cand[k] ||
            pmp_target_read_u64(t, m + L->m_curg, &curg, NULL) || !curg ||
            curg == g0 || pmp_target_read(t, curg, g, L->g_size, NULL))
            continue;
        out->sched_pc = pmp_u64at(g, L->g_sched_pc);
        out->sched_sp = pmp_u64at(g, L->g_sched_sp);
        out->sched_bp = pmp_u64at(g, L->g_sched_bp);
        out->syscall_pc = pmp_u64at(g, L->g_syscallpc);
        out->syscall_sp = pmp_u64at(g, L->g_syscallsp);
        return 0;
    }
    return -1;
}

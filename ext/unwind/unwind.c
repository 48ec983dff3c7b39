/*
 * unwind.c: registers + stack memory -> raw PCs.
 *
 * Owns: the per-PC unwind-rule cache and the unwinding loop.  The CFI
 * itself (.eh_frame, then .debug_frame) is parsed by libdw and cached per
 * module by libdwfl; for each distinct PC the rule table that libdw
 * computes is compiled once into a compact `struct pc_rule` (CFA = reg +
 * offset, and where each register is saved), so that a PC seen before
 * costs a hash lookup and a few memory reads.  Expressions (PLT entries,
 * signal trampolines) are kept as DWARF ops and run by a small bounded
 * evaluator.  Where a module has no CFI for a PC, the frame-pointer chain
 * is followed.  Code without CFI whose language runtime describes its
 * frames its own way belongs to a backend (unwind-backend.h): for a
 * new PC each backend is asked whether it owns it, the answer is cached
 * with the PC's rule, and the backend steps its own frames.
 *
 * Defences (target memory is hostile): frame cap, the stack pointer must
 * grow from frame to frame (except across a signal frame), a repeated
 * (pc, sp) stops the walk, every read is bounds-checked by
 * pmp_target_read, expression evaluation is bounded.
 *
 * Must not: symbolize (names are looked up after the target is resumed).
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "unwind-backend.h"

enum rule_kind {
    R_UNDEF = 0,   /* caller's value unknown */
    R_SAME,        /* unchanged */
    R_OFFSET,      /* saved at CFA + off */
    R_VAL_OFFSET,  /* value is CFA + off */
    R_EXPR,        /* saved at the address the expression yields */
    R_VAL_EXPR,    /* value is what the expression yields */
};

enum pc_status {
    PC_CFI = 0,    /* rules from CFI */
    PC_NO_CFI,     /* module known, no CFI here: frame-pointer fallback */
    PC_NO_MODULE,  /* pc in no module */
    PC_UNREADABLE, /* a backend's module it cannot read: the walk ends */
    PC_BACKEND,    /* a backend's frame: its step unwinds it */
    PC_BK_NOFUNC,  /* a backend's module, in none of its functions, no CFI */
};

#define INLINE_OPS 3

struct rule {
    uint8_t kind;
    int64_t off;
    const Dwarf_Op *ops;   /* R_EXPR/R_VAL_EXPR; may point at inline_ops */
    size_t nops;
    Dwarf_Op inline_ops[INLINE_OPS];
};

struct pc_rule {
    uint8_t status;
    uint8_t signal;        /* frame is a signal trampoline */
    uint8_t cfa_is_expr;
    uint8_t cfa_reg;
    int64_t cfa_off;
    const struct pmp_unwind_backend *bk;   /* PC_BACKEND and the two above */
    union pmp_unwind_payload bk_rule;      /* PC_BACKEND: the backend's */
    const Dwarf_Op *cfa_ops;
    size_t cfa_nops;
    struct rule regs[PMP_NREGS];
    Dwarf_Frame *frame;    /* kept alive when cfa_ops points into it */
};

struct pmp_unwinder {
    struct pmp_target *target;
    struct pmp_symbolizer *sym;
    struct pmp_u64map rules;   /* lookup pc -> struct pc_rule */
    /* The backends' context for a thread, captured while it was stopped
       (record unwinds after the resume); NULL: they read the target. */
    const void *bk_ctx;
};

void
pmp_unwinder_set_backend_ctx(struct pmp_unwinder *u, const void *ctx)
{
    u->bk_ctx = ctx;
}

int
pmp_unwinder_new(struct pmp_unwinder **out, struct pmp_target *t,
                 struct pmp_symbolizer *sym, struct pmp_error *err)
{
    struct pmp_unwinder *u = calloc(1, sizeof(*u));

    *out = NULL;
    if (!u)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    u->target = t;
    u->sym = sym;
    pmp_u64map_init(&u->rules);
    *out = u;
    return 0;
}

void
pmp_unwinder_free(struct pmp_unwinder *u)
{
    size_t i;

    if (!u)
        return;
    for (i = 0; i < u->rules.cap; i++) {
        if (u->rules.keys[i] != UINT64_MAX) {
            struct pc_rule *r = u->rules.vals[i];
            if (r) {
                free(r->frame);
                free(r);
            }
        }
    }
    pmp_u64map_release(&u->rules);
    free(u);
}

/*
 * Load now what the first unwind through each known module would: its
 * entry in the symbolizer and its CFI, calling between(ctx) after each
 * module.  record does this before its first tick, so that no early
 * unwind is slow (~60 ms for a first unwind through libc, cold) while a
 * thread interrupted late waits to be released.
 */
struct warm_ctx {
    struct pmp_unwinder *u;
    void (*between)(void *);
    void *ctx;
};

static int
warm_module(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr base,
            void *arg)
{
    struct warm_ctx *w = arg;
    Dwarf_Addr lo = 0, bias;

    if (dwfl_module_info(mod, NULL, &lo, NULL, NULL, NULL, NULL, NULL) &&
        pmp_symbolizer_module_at(w->u->sym, lo) == mod &&
        !dwfl_module_eh_cfi(mod, &bias))
        dwfl_module_dwarf_cfi(mod, &bias);
    if (w->between)
        w->between(w->ctx);
    return DWARF_CB_OK;
}

void
pmp_unwinder_warm(struct pmp_unwinder *u, void (*between)(void *), void *ctx)
{
    struct warm_ctx w = {u, between, ctx};
    Dwfl *dwfl = pmp_symbolizer_dwfl(u->sym);

    if (dwfl)
        dwfl_getmodules(dwfl, warm_module, &w, 0);
}

/* ---- compiling libdw's rules ---- */

static void
compile_reg(struct rule *r, const Dwarf_Op *ops, size_t nops,
            const Dwarf_Op *ops_mem)
{
    int value = nops > 0 && ops[nops - 1].atom == DW_OP_stack_value;
    size_t n = value ? nops - 1 : nops;

    memset(r, 0, sizeof(*r));
    if (nops == 0) {
        r->kind = ops ? R_UNDEF : R_SAME;
        return;
    }
    if (n >= 1 && ops[0].atom == DW_OP_call_frame_cfa &&
        (n == 1 || (n == 2 && ops[1].atom == DW_OP_plus_uconst))) {
        r->kind = value ? R_VAL_OFFSET : R_OFFSET;
        r->off = n == 2 ? (int64_t)ops[1].number : 0;
        return;
    }
    r->kind = value ? R_VAL_EXPR : R_EXPR;
    if (ops == ops_mem && nops <= INLINE_OPS) {
        /* ops_mem is our stack buffer: keep a copy. */
        memcpy(r->inline_ops, ops, nops * sizeof(*ops));
        r->ops = r->inline_ops;
    } else {
        r->ops = ops;   /* owned by the module's Dwarf_CFI */
    }
    r->nops = nops;
}

static struct pc_rule *
compute_rule(struct pmp_unwinder *u, uint64_t pc)
{
    struct pc_rule *r = calloc(1, sizeof(*r));
    Dwfl_Module *mod;
    Dwarf_Frame *frame = NULL;
    Dwarf_Addr bias = 0;
    Dwarf_CFI *cfi;
    Dwarf_Op *ops;
    size_t nops;
    int k;
    unsigned b;
    const struct pmp_unwind_backend *owner = NULL;

    if (!r)
        return NULL;
    mod = pmp_symbolizer_module_at(u->sym, pc);
    if (!mod) {
        r->status = PC_NO_MODULE;
        return r;
    }
    for (b = 0; b < pmp_unwind_nbackends; b++) {
        const struct pmp_unwind_backend *bk = pmp_unwind_backends[b];
        int c = bk->claims(u->sym, mod, pc, &r->bk_rule, &r->signal);

        if (c == PMP_UNWIND_NOT_MINE)
            continue;
        r->bk = bk;
        if (c == PMP_UNWIND_FRAME) {
            r->status = PC_BACKEND;
            return r;
        }
        if (c == PMP_UNWIND_UNREADABLE) {
            r->status = PC_UNREADABLE;
            return r;
        }
        /* Its module, not its code: C code in it has CFI. */
        owner = bk;
        break;
    }
    cfi = dwfl_module_eh_cfi(mod, &bias);
    if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) {
        frame = NULL;
        cfi = dwfl_module_dwarf_cfi(mod, &bias);
        if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0)
            frame = NULL;
    }
    if (!frame) {
        /* Neither a backend's code nor C code of its module (data). */
        r->status = owner ? PC_BK_NOFUNC : PC_NO_CFI;
        return r;
    }
    r->status = PC_CFI;
    {
        bool signalp = false;
        Dwarf_Addr start, end;
        dwarf_frame_info(frame, &start, &end, &signalp);
        r->signal = signalp;
    }
    if (dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops == 0) {
        free(frame);
        r->status = PC_NO_CFI;
        return r;
    }
    if (nops == 1 && ops[0].atom >= DW_OP_breg0 &&
        ops[0].atom <= DW_OP_breg16) {
        r->cfa_reg = ops[0].atom - DW_OP_breg0;
        r->cfa_off = (int64_t)ops[0].number;
    } else if (nops == 1 && ops[0].atom == DW_OP_bregx &&
               ops[0].number < PMP_NREGS) {
        r->cfa_reg = (uint8_t)ops[0].number;
        r->cfa_off = (int64_t)ops[0].number2;
    } else {
        r->cfa_is_expr = 1;
        r->cfa_ops = ops;
        r->cfa_nops = nops;
    }
    for (k = 0; k < PMP_NREGS; k++) {
        Dwarf_Op ops_mem[INLINE_OPS];
        Dwarf_Op *rops = NULL;
        size_t rn = 0;

        if (dwarf_frame_register(frame, k, ops_mem, &rops, &rn) != 0) {
            r->regs[k].kind = R_UNDEF;
            continue;
        }
        compile_reg(&r->regs[k], rops, rn, ops_mem);
    }
    if (r->cfa_is_expr)
        r->frame = frame;   /* cfa_ops lives in the frame */
    else
        free(frame);
    return r;
}

static const struct pc_rule *
get_rule(struct pmp_unwinder *u, uint64_t pc)
{
    struct pc_rule *r = pmp_u64map_get(&u->rules, pc);

    if (r)
        return r;
    r = compute_rule(u, pc);
    if (!r)
        return NULL;
    if (pmp_u64map_put(&u->rules, pc, r)) {
        free(r->frame);
        free(r);
        return NULL;
    }
    return r;
}

/* ---- the walk ---- */

/* struct pmp_frame_regs (unwind-backend.h): bit per register in valid. */
#define VALID(fr, k) PMP_FRAME_VALID(fr, k)

/*
 * Evaluate a DWARF expression for CFI: bounded stack and op count,
 * registers from `cur`, memory through the target.  Returns 0 and *out.
 */
static int
eval_expr(struct pmp_unwinder *u, const Dwarf_Op *ops, size_t nops,
          const struct pmp_frame_regs *cur, uint64_t cfa, int have_cfa,
          uint64_t *out)
{
    uint64_t st[32];
    size_t sp = 0, i;

#define PUSH(v)                                  \
    do {                                         \
        if (sp >= PMP_ARRAY_SIZE(st))            \
            return -1;                           \
        st[sp++] = (v);                          \
    } while (0)
#define NEED(n)          \
    do {                 \
        if (sp < (n))    \
            return -1;   \
    } while (0)

    if (nops > 64)
        return -1;
    for (i = 0; i < nops; i++) {
        const Dwarf_Op *op = &ops[i];
        uint8_t a = op->atom;
        uint64_t x, y;

        if (a >= DW_OP_lit0 && a <= DW_OP_lit31) {
            PUSH((uint64_t)(a - DW_OP_lit0));
        } else if (a >= DW_OP_breg0 && a <= DW_OP_breg31) {
            unsigned reg = a - DW_OP_breg0;
            if (reg >= PMP_NREGS || !VALID(cur, reg))
                return -1;
            PUSH(cur->r[reg] + op->number);
        } else {
            switch (a) {
            case DW_OP_bregx:
                if (op->number >= PMP_NREGS || !VALID(cur, op->number))
                    return -1;
                PUSH(cur->r[op->number] + op->number2);
                break;
            case DW_OP_const1u: case DW_OP_const1s: case DW_OP_const2u:
            case DW_OP_const2s: case DW_OP_const4u: case DW_OP_const4s:
            case DW_OP_const8u: case DW_OP_const8s: case DW_OP_constu:
            case DW_OP_consts: case DW_OP_addr:
                PUSH(op->number);
                break;
            case DW_OP_call_frame_cfa:
                if (!have_cfa)
                    return -1;
                PUSH(cfa);
                break;
            case DW_OP_dup:
                NEED(1);
                x = st[sp - 1];
                PUSH(x);
                break;
            case DW_OP_drop:
                NEED(1);
                sp--;
                break;
            case DW_OP_over:
                NEED(2);
                x = st[sp - 2];
                PUSH(x);
                break;
            case DW_OP_swap:
                NEED(2);
                x = st[sp - 1];
                st[sp - 1] = st[sp - 2];
                st[sp - 2] = x;
                break;
            case DW_OP_deref:
                NEED(1);
                if (pmp_target_read_u64(u->target, st[sp - 1], &x, NULL))
                    return -1;
                st[sp - 1] = x;
                break;
            case DW_OP_plus_uconst:
                NEED(1);
                st[sp - 1] += op->number;
                break;
            case DW_OP_neg:
                NEED(1);
                st[sp - 1] = -st[sp - 1];
                break;
            case DW_OP_not:
                NEED(1);
                st[sp - 1] = ~st[sp - 1];
                break;
            case DW_OP_plus: case DW_OP_minus: case DW_OP_and:
            case DW_OP_or: case DW_OP_xor: case DW_OP_mul: case DW_OP_shl:
            case DW_OP_shr: case DW_OP_shra: case DW_OP_ge: case DW_OP_gt:
            case DW_OP_le: case DW_OP_lt: case DW_OP_eq: case DW_OP_ne:
                NEED(2);
                y = st[--sp];
                x = st[sp - 1];
                switch (a) {
                case DW_OP_plus: x += y; break;
                case DW_OP_minus: x -= y; break;
                case DW_OP_and: x &= y; break;
                case DW_OP_or: x |= y; break;
                case DW_OP_xor: x ^= y; break;
                case DW_OP_mul: x *= y; break;
                case DW_OP_shl: x = y >= 64 ? 0 : x << y; break;
                case DW_OP_shr: x = y >= 64 ? 0 : x >> y; break;
                case DW_OP_shra:
                    x = (uint64_t)((int64_t)x >> (y >= 64 ? 63 : y));
                    break;
                case DW_OP_ge: x = (int64_t)x >= (int64_t)y; break;
                case DW_OP_gt: x = (int64_t)x > (int64_t)y; break;
                case DW_OP_le: x = (int64_t)x <= (int64_t)y; break;
                case DW_OP_lt: x = (int64_t)x < (int64_t)y; break;
                case DW_OP_eq: x = x == y; break;
                case DW_OP_ne: x = x != y; break;
                }
                st[sp - 1] = x;
                break;
            case DW_OP_stack_value:
            case DW_OP_nop:
                break;
            default:
                return -1;   /* not needed for CFI on x86_64 */
            }
        }
    }
    if (sp == 0)
        return -1;
    *out = st[sp - 1];
    return 0;
#undef PUSH
#undef NEED
}

/* One CFI step: cur (callee) -> next (caller).  Returns 0, or -1. */
static int
step_cfi(struct pmp_unwinder *u, const struct pc_rule *r,
         const struct pmp_frame_regs *cur, struct pmp_frame_regs *next,
         const char **why)
{
    uint64_t cfa, addr, v;
    int k;

    if (r->cfa_is_expr) {
        if (eval_expr(u, r->cfa_ops, r->cfa_nops, cur, 0, 0, &cfa)) {
            *why = "cannot evaluate the CFA expression";
            return -1;
        }
    } else {
        if (!VALID(cur, r->cfa_reg)) {
            *why = "the CFA register is unknown";
            return -1;
        }
        cfa = cur->r[r->cfa_reg] + (uint64_t)r->cfa_off;
    }
    next->valid = 0;
    for (k = 0; k < PMP_NREGS; k++) {
        const struct rule *rr = &r->regs[k];

        switch (rr->kind) {
        case R_UNDEF:
            continue;
        case R_SAME:
            if (!VALID(cur, k))
                continue;
            v = cur->r[k];
            break;
        case R_OFFSET:
            if (pmp_target_read_u64(u->target, cfa + (uint64_t)rr->off, &v,
                                    NULL)) {
                if (k == PMP_REG_RIP) {
                    *why = "cannot read the return address";
                    return -1;
                }
                continue;
            }
            break;
        case R_VAL_OFFSET:
            v = cfa + (uint64_t)rr->off;
            break;
        case R_EXPR:
            if (eval_expr(u, rr->ops, rr->nops, cur, cfa, 1, &addr) ||
                pmp_target_read_u64(u->target, addr, &v, NULL))
                continue;
            break;
        case R_VAL_EXPR:
            if (eval_expr(u, rr->ops, rr->nops, cur, cfa, 1, &v))
                continue;
            break;
        default:
            continue;
        }
        next->r[k] = v;
        next->valid |= 1u << k;
    }
    /* x86_64: the caller's stack pointer is the CFA unless CFI says. */
    if (r->regs[PMP_REG_RSP].kind == R_UNDEF ||
        r->regs[PMP_REG_RSP].kind == R_SAME) {
        next->r[PMP_REG_RSP] = cfa;
        next->valid |= 1u << PMP_REG_RSP;
    }
    return 0;
}

/* Frame-pointer step: [rbp] = caller's rbp, [rbp+8] = return address. */
static int
step_fp(struct pmp_unwinder *u, const struct pmp_frame_regs *cur,
        struct pmp_frame_regs *next, const char **why)
{
    uint64_t bp, ra, nbp;

    if (!VALID(cur, PMP_REG_RBP)) {
        *why = "no CFI and no frame pointer";
        return -1;
    }
    bp = cur->r[PMP_REG_RBP];
    if (bp == 0 || (bp & 7) ||
        (VALID(cur, PMP_REG_RSP) && bp < cur->r[PMP_REG_RSP])) {
        *why = "no CFI and the frame pointer is not a frame pointer";
        return -1;
    }
    if (pmp_target_read_u64(u->target, bp, &nbp, NULL) ||
        pmp_target_read_u64(u->target, bp + 8, &ra, NULL)) {
        *why = "cannot read the frame-pointer chain";
        return -1;
    }
    /* Keep callee-saved registers we cannot recover as unknown. */
    next->valid = 0;
    next->r[PMP_REG_RBP] = nbp;
    next->r[PMP_REG_RSP] = bp + 16;
    next->r[PMP_REG_RIP] = ra;
    next->valid = (1u << PMP_REG_RBP) | (1u << PMP_REG_RSP) |
                  (1u << PMP_REG_RIP);
    return 0;
}

int
pmp_unwind(struct pmp_unwinder *u, const struct pmp_regs *regs,
           uint64_t *pcs, uint8_t *flags, int max, unsigned *stack_flags,
           struct pmp_error *err)
{
    return pmp_unwind_from(u, regs, 1, pcs, flags, max, stack_flags, err);
}

int
pmp_unwind_from(struct pmp_unwinder *u, const struct pmp_regs *regs,
                int activation0, uint64_t *pcs, uint8_t *flags, int max,
                unsigned *stack_flags, struct pmp_error *err)
{
    struct pmp_frame_regs cur, next;
    int n = 0, activation = activation0, k;
    struct pmp_unwind_walk w;
    int switched;
    uint64_t prev_sp = 0;
    const char *why = NULL;

    *stack_flags = 0;
    if (max <= 0)
        return 0;
    if (max > PMP_MAX_FRAMES_CAP)
        max = PMP_MAX_FRAMES_CAP;
    memset(&cur, 0, sizeof(cur));
    for (k = 0; k < PMP_NREGS; k++)
        cur.r[k] = regs->r[k];
    cur.valid = (1u << PMP_NREGS) - 1;
    memset(&w, 0, sizeof(w));
    w.target = u->target;
    w.regs = regs;
    w.ctx = u->bk_ctx;

    for (;;) {
        uint64_t pc = cur.r[PMP_REG_RIP];
        uint64_t lookup = activation || pc == 0 ? pc : pc - 1;
        const struct pc_rule *r;
        int rc;

        if (n >= max) {
            *stack_flags |= PMP_STACK_TRUNCATED;
            break;
        }
        pcs[n] = pc;
        flags[n] = activation ? PMP_FRAME_ACTIVATION : 0;
        n++;
        switched = 0;
        r = get_rule(u, lookup);
        if (r && r->status == PC_NO_CFI && n == 1 && activation && pc) {
            /* A thread caught in the kernel during rt_sigreturn (a CPU
               sample with kernel-mode ticks): its user pc is right after
               the signal restorer's `syscall`, its last instruction, one
               past the restorer's FDE (glibc's __restore_rt).  The
               registers there are the restorer's: unwind it as such. */
            const struct pc_rule *r1 = get_rule(u, pc - 1);
            if (r1 && r1->signal)
                r = r1;
        }
        if (!r) {
            pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            *stack_flags |= PMP_STACK_UNWIND_ERR;
            break;
        }
        if (r->status == PC_UNREADABLE) {
            *stack_flags |= r->bk->unreadable_flag;
            break;
        }
        if (r->status == PC_BACKEND) {
            w.innermost = n == 1;
            w.elide = 0;
            w.switched = 0;
            rc = r->bk->step(&w, &r->bk_rule, &cur, &next, &why);
            if (w.elide)
                n--;
            switched = w.switched;
            if (r->signal)
                flags[n - 1] |= PMP_FRAME_SIGNAL;
            if (rc == PMP_UNWIND_END)
                break;
        } else if (r->status == PC_NO_MODULE ||
                   (r->status == PC_BK_NOFUNC && n > 1)) {
            w.callee = 0;
            if (n == 1) {
                /* A JIT or a bad pc in frame 0: try the frame chain. */
                rc = step_fp(u, &cur, &next, &why);
                flags[n - 1] |= PMP_FRAME_FP;
            } else {
                /* A garbage return address ends the walk (seen after
                   a backend's jump to a stack whose saved context was
                   stale). */
                n--;
                why = r->status == PC_NO_MODULE
                          ? "return address outside any module"
                          : r->bk->nofunc_why;
                rc = -1;
            }
        } else if (r->status == PC_NO_CFI || r->status == PC_BK_NOFUNC) {
            w.callee = 0;
            rc = step_fp(u, &cur, &next, &why);
            flags[n - 1] |= PMP_FRAME_FP;
        } else {
            w.callee = 0;
            rc = step_cfi(u, r, &cur, &next, &why);
            if (r->signal)
                flags[n - 1] |= PMP_FRAME_SIGNAL;
        }
        if (rc) {
            *stack_flags |= PMP_STACK_UNWIND_ERR;
            pmp_error_set(err, PMP_E_CORRUPT, "%s at pc 0x%llx", why,
                          (unsigned long long)pc);
            break;
        }
        /* The outermost frame marks its return address undefined. */
        if (!VALID(&next, PMP_REG_RIP) || next.r[PMP_REG_RIP] == 0)
            break;
        if (!VALID(&next, PMP_REG_RSP)) {
            *stack_flags |= PMP_STACK_UNWIND_ERR;
            pmp_error_set(err, PMP_E_CORRUPT,
                          "stack pointer lost at pc 0x%llx",
                          (unsigned long long)pc);
            break;
        }
        /*
         * The stack grows down, so callers' frames are at higher
         * addresses; across a signal frame the interrupted stack may be
         * anywhere (sigaltstack).
         */
        if (!r->signal && !switched &&
            next.r[PMP_REG_RSP] <= cur.r[PMP_REG_RSP]) {
            *stack_flags |= PMP_STACK_UNWIND_ERR;
            pmp_error_set(err, PMP_E_CORRUPT,
                          "stack pointer did not advance at pc 0x%llx",
                          (unsigned long long)pc);
            break;
        }
        if (n > 1 && next.r[PMP_REG_RSP] == prev_sp &&
            next.r[PMP_REG_RIP] == pc) {
            *stack_flags |= PMP_STACK_UNWIND_ERR;
            pmp_error_set(err, PMP_E_CORRUPT, "unwind loop at pc 0x%llx",
                          (unsigned long long)pc);
            break;
        }
        prev_sp = cur.r[PMP_REG_RSP];
        activation = r->signal;
        cur = next;
    }
    return n;
}

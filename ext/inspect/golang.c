/*
 * golang.c: the Go runtime from outside: goroutines (state, wait reason
 * and duration, thread, labels, stack), MemStats/GC figures and scheduler
 * state of a Go program (amd64; the releases of layout-go.h), live or
 * from a core.
 *
 * Owns: finding the runtime's globals (from .symtab when present, else by
 * their shape in the data sections, so that stripped binaries work; see
 * shared/notes/formats-and-go.md section 2), the struct offsets of the
 * target's release (layout-go.h: one row per release, from its DWARF),
 * reading every g while the target is stopped and unwinding its stack
 * with the pclntab unwinder (unwind-go.c).  Leaving a system stack is the
 * unwinder's (unwind/gostack.c); the goroutine profile is written by
 * output/goprofile.c.
 *
 * Defences: allglen, label maps, overflow chains and string lengths are
 * capped; every read is bounds-checked by pmp_target_read; a g that does
 * not look like one (status out of range, stack bounds reversed) is
 * skipped, not followed.
 *
 * Must not: symbolize while the target is stopped (the stacks are raw pcs;
 * the front-end symbolizes after the resume).
 */
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gopclntab.h"
#include "layout-go.h"
#include "pmprof-internal.h"

/* The offsets of the target's release: ext/layouts/layout-go.h.  g.stack
   {lo, hi} opens every g of every release (tests/test_go_versions.py). */
#define G_STACK_LO 0
#define G_STACK_HI 8
#define G_BUF 512                /* >= every g_size of the table */
#define SUDOG_BUF 128            /* >= sudog_waitlink + 8 */
#define SCHED_BUF 256            /* >= sched_need() */
#define GC_BUF 512               /* >= gc_need() */
#define MS_BUF 8192              /* >= ms_need() */
#define MAX_SUDOGS (1u << 22)
#define G_DEAD 6
#define G_LEAKED 10             /* 1.26+ */
#define G_SCAN 0x1000
#define MAX_GOROUTINES (16u << 20)
#define MAX_PS 4096
#define MAX_LABELS 64
#define MAX_STR 4096
#define MAX_WAITREASONS 128

static const char *const status_names[] = {
    "idle", "runnable", "running", "syscall", "waiting",
    "moribund_unused", "dead", "enqueue_unused", "copystack", "preempted",
    "leaked", "deadextra",       /* 1.26+ */
};

struct region {                  /* a data section of the Go module */
    uint64_t addr, len;
    unsigned char *data;         /* read from the target, malloc'd */
};

struct go_priv {
    struct pmp_strpool pool;
    struct pmp_go_label *labels;
    size_t nlabels, labels_cap;
    /* distinct stacks: goroutines share them (parked the same way) */
    uint64_t *pcs;
    uint8_t *fl;
    size_t npcs, pcs_cap, fl_cap;
    struct pmp_go_stack *stacks;
    size_t nstacks, stacks_cap;
    struct pmp_u64map by_hash;   /* hash -> 1 + first stack with it */
    uint32_t *chain;             /* next stack with the same hash, +1 */
    size_t chain_cap;
};

static uint64_t
stack_hash(const uint64_t *pcs, const uint8_t *fl, int n)
{
    uint64_t h = (uint64_t)n * UINT64_C(0x9e3779b97f4a7c15);
    int i;

    for (i = 0; i < n; i++)
        h = pmp_hash64(h ^ pcs[i] ^ ((uint64_t)fl[i] << 56));
    return h == UINT64_MAX ? 0 : h;
}

/* The id of stack (pcs, fl, n), added if new; -1 on OOM. */
static int64_t
intern_stack(struct go_priv *p, const uint64_t *pcs, const uint8_t *fl, int n)
{
    uint64_t h = stack_hash(pcs, fl, n);
    uintptr_t v = (uintptr_t)pmp_u64map_get(&p->by_hash, h);
    size_t id;

    while (v) {
        const struct pmp_go_stack *st = &p->stacks[v - 1];
        if (st->n == n && memcmp(p->pcs + st->off, pcs, (size_t)n * 8) == 0 &&
            memcmp(p->fl + st->off, fl, (size_t)n) == 0)
            return (int64_t)(v - 1);
        v = p->chain[v - 1];
    }
    if (pmp_grow((void **)&p->pcs, &p->pcs_cap, p->npcs + (size_t)n + 1, 8) ||
        pmp_grow((void **)&p->fl, &p->fl_cap, p->npcs + (size_t)n + 1, 1) ||
        pmp_grow((void **)&p->stacks, &p->stacks_cap, p->nstacks + 1,
                 sizeof(*p->stacks)) ||
        pmp_grow((void **)&p->chain, &p->chain_cap, p->nstacks + 1,
                 sizeof(*p->chain)))
        return -1;
    id = p->nstacks++;
    p->stacks[id].off = p->npcs;
    p->stacks[id].n = n;
    memcpy(p->pcs + p->npcs, pcs, (size_t)n * 8);
    memcpy(p->fl + p->npcs, fl, (size_t)n);
    p->npcs += (size_t)n;
    p->chain[id] = (uint32_t)(uintptr_t)pmp_u64map_get(&p->by_hash, h);
    if (pmp_u64map_put(&p->by_hash, h, (void *)(uintptr_t)(id + 1)))
        return -1;
    return (int64_t)id;
}

struct go_ctx {
    struct pmp_session *s;
    struct pmp_target *t;
    struct pmp_gomod *gm;
    Dwfl_Module *mod;
    const struct pmp_go_opts *o;
    struct pmp_go *out;
    struct go_priv *priv;
    const struct pmp_go_layout *L;   /* the target release's offsets */
    /* globals (runtime addresses, 0 = not found) */
    uint64_t allgs, allp, allm, sched, memstats, gcctl, waitreasons, semtable;
    size_t semtable_n;           /* entries to walk (251 with the symbol) */
    struct pmp_u64map sema_of;   /* g -> the semaphore it sleeps on */
    size_t nwaitreasons;
    struct region regs[4];       /* .noptrbss .bss .noptrdata .data */
    const char *wr[MAX_WAITREASONS];
};

/* Bytes of runtime.schedt, mstats and gcController read (up to the last
   field used). */
static size_t
sched_need(const struct pmp_go_layout *L)
{
    return (size_t)PMP_MAX(L->sched_runqsize, L->sched_nmspinning) + 8;
}

static size_t
ms_need(const struct pmp_go_layout *L)
{
    return (size_t)L->ms_last_gc_nanotime + 8;
}

static size_t
gc_need(const struct pmp_go_layout *L)
{
    return (size_t)L->gc_mappedready + 8;
}

static const char *pool_gostring(struct pmp_target *t,
                                 struct pmp_strpool *pool, uint64_t ptr,
                                 uint64_t len);

/* A Go string {ptr, len} at addr, interned; "" when unreadable. */
static const char *
read_gostring(struct go_ctx *c, uint64_t ptr, uint64_t len)
{
    return pool_gostring(c->t, &c->priv->pool, ptr, len);
}

/* ---- locating the runtime's globals ---- */

static void
find_by_symtab(struct go_ctx *c)
{
    int n = dwfl_module_getsymtab(c->mod), i;

    for (i = 1; i < n && i < (1 << 22); i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *nm = dwfl_module_getsym_info(c->mod, i, &sym, &addr,
                                                 NULL, NULL, NULL);

        if (!nm || strncmp(nm, "runtime.", 8) != 0)
            continue;
        nm += 8;
        if (strcmp(nm, "allgs") == 0)
            c->allgs = addr;
        else if (strcmp(nm, "allp") == 0)
            c->allp = addr;
        else if (strcmp(nm, "allm") == 0)
            c->allm = addr;
        else if (strcmp(nm, "semtable") == 0)
            c->semtable = addr;
        else if (strcmp(nm, "sched") == 0)
            c->sched = addr;
        else if (strcmp(nm, "memstats") == 0)
            c->memstats = addr;
        else if (strcmp(nm, "gcController") == 0)
            c->gcctl = addr;
        else if (strcmp(nm, "waitReasonStrings") == 0) {
            c->waitreasons = addr;
            c->nwaitreasons = (size_t)(sym.st_size / 16);
        }
    }
}

static void
load_regions(struct go_ctx *c)
{
    static const char *const names[] = {".noptrbss", ".bss", ".noptrdata",
                                        ".data"};
    GElf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(c->mod, &bias);
    size_t k;

    for (k = 0; elf && k < PMP_ARRAY_SIZE(names); k++) {
        GElf_Shdr sh;

        if (!pmp_elf_section(elf, names[k], &sh) || sh.sh_size == 0 ||
            sh.sh_size > (256u << 20))
            continue;
        c->regs[k].addr = sh.sh_addr + bias;
        c->regs[k].len = sh.sh_size;
        c->regs[k].data = malloc(sh.sh_size);
        if (c->regs[k].data &&
            pmp_target_read(c->t, c->regs[k].addr, c->regs[k].data,
                            sh.sh_size, NULL)) {
            free(c->regs[k].data);
            c->regs[k].data = NULL;
        }
    }
}

static int
looks_like_g(struct go_ctx *c, uint64_t gp, int64_t want_goid)
{
    const struct pmp_go_layout *L = c->L;
    unsigned char g[G_BUF];
    uint64_t lo, hi, sz;
    uint32_t st;

    if (!gp || (gp & 7) || pmp_target_read(c->t, gp, g, L->g_size, NULL))
        return 0;
    lo = pmp_u64at(g, G_STACK_LO);
    hi = pmp_u64at(g, G_STACK_HI);
    st = pmp_u32at(g, L->g_status) & ~(uint32_t)G_SCAN;
    sz = hi - lo;
    if (st > L->status_max)
        return 0;
    if (st == L->status_deadextra && st)
        st = G_DEAD;
    if (st != G_DEAD && (hi <= lo || (sz & (sz - 1)) || sz > (1u << 30)))
        return 0;
    return want_goid < 0 || (int64_t)pmp_u64at(g, L->g_goid) == want_goid;
}

/*
 * Globals of a stripped binary are found by their shape: the first
 * 8-aligned place in the data sections (.noptrbss, .bss, .noptrdata,
 * .data, as read once by load_regions) with at least `need` bytes where
 * fn(p, avail) holds.  0 if none.
 */
typedef int (*shape_fn)(struct go_ctx *c, const unsigned char *p,
                        size_t avail, void *arg);

static uint64_t
find_shape(struct go_ctx *c, size_t need, shape_fn fn, void *arg)
{
    size_t k, off;

    for (k = 0; k < PMP_ARRAY_SIZE(c->regs); k++) {
        const struct region *r = &c->regs[k];
        for (off = 0; r->data && off + need <= r->len; off += 8)
            if (fn(c, r->data + off, r->len - off, arg))
                return r->addr + off;
    }
    return 0;
}

/* allgs: a []*g whose element 0 is goroutine 1. */
static int
is_allgs(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    uint64_t ptr = pmp_u64at(p, 0), len = pmp_u64at(p, 8);
    uint64_t cap = pmp_u64at(p, 16), g0, g1;

    if (!ptr || (ptr & 7) || len == 0 || len > cap || cap > MAX_GOROUTINES)
        return 0;
    if (pmp_target_read_u64(c->t, ptr, &g0, NULL) || !looks_like_g(c, g0, 1))
        return 0;
    return len == 1 || (pmp_target_read_u64(c->t, ptr + 8, &g1, NULL) == 0 &&
                        looks_like_g(c, g1, -1));
}

/* waitReasonStrings: [N]string, entry 0 "", entry 1 "GC assist marking". */
static int
is_waitreasons(struct go_ctx *c, const unsigned char *p, size_t avail,
               void *arg)
{
    static const char want[] = "GC assist marking";
    char buf[sizeof(want)];

    return pmp_u64at(p, 8) == 0 && pmp_u64at(p, 24) == sizeof(want) - 1 &&
           pmp_target_read(c->t, pmp_u64at(p, 16), buf, sizeof(want) - 1,
                           NULL) == 0 &&
           memcmp(buf, want, sizeof(want) - 1) == 0;
}

/* memstats: pause_end[(numgc-1)%256] == last_gc_unix. */
static int
is_memstats(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    uint32_t numgc = pmp_u32at(p, L->ms_numgc);
    uint64_t last = pmp_u64at(p, L->ms_last_gc_unix);

    return numgc > 0 && numgc <= (1u << 30) &&
           last >= UINT64_C(1000000000000000000) &&
           pmp_u64at(p, L->ms_pause_end + ((numgc - 1) % 256) * 8) == last;
}

/* gcController: gcPercent, memoryLimit, heapMinimum consistent; heapInUse
   counts 8 KiB pages and mappedReady covers it. */
static int
is_gcctl(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    int32_t pct = (int32_t)pmp_u32at(p, L->gc_percent);
    uint64_t inuse = pmp_u64at(p, L->gc_heapinuse);

    if (pct < -1 || pct > 1000000 || (int64_t)pmp_u64at(p, L->gc_memlimit) <= 0 ||
        pmp_u32at(p, 4) != 0 || inuse == 0 || (inuse & 8191) ||
        pmp_u64at(p, L->gc_mappedready) < inuse ||
        pmp_u64at(p, L->gc_totalalloc) < pmp_u64at(p, L->gc_totalfree))
        return 0;
    return pct < 0 ||
           pmp_u64at(p, L->gc_heapmin) == (UINT64_C(4) << 20) * (uint64_t)pct / 100;
}

/* allp: a []*p with allp[i].id == i (the first 4 checked). */
static int
is_allp(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    uint64_t ptr = pmp_u64at(p, 0), len = pmp_u64at(p, 8);
    uint64_t cap = pmp_u64at(p, 16), i, pp;
    unsigned char hdr[8];

    if (!ptr || (ptr & 7) || len == 0 || len > cap || cap > MAX_PS)
        return 0;
    for (i = 0; i < len && i < 4; i++)
        if (pmp_target_read_u64(c->t, ptr + i * 8, &pp, NULL) || !pp ||
            pmp_target_read(c->t, pp, hdr, 8, NULL) ||
            pmp_u32at(hdr, L->p_id) != i || pmp_u32at(hdr, L->p_status) > 4)
            return 0;
    return 1;
}

/* sched: maxmcount 10000 and a consistent M count. */
static int
is_sched(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    int64_t mnext = (int64_t)pmp_u64at(p, L->sched_mnext);
    int64_t freed = (int64_t)pmp_u64at(p, L->sched_nmfreed);

    return pmp_u32at(p, L->sched_maxmcount) == 10000 && mnext > 0 &&
           mnext <= 10000 && freed >= 0 && freed <= mnext &&
           pmp_u64at(p, L->sched_goidgen) != 0;
}

/*
 * Walk the M list from *head: the number of Ms, and of those with an OS
 * thread (procid != 0: a cgo binary keeps an "extra M" without one for
 * callbacks from C threads).  -1 if the list is not an M list of mcount
 * Ms with ids below mnext.
 */
static int
walk_allm(struct go_ctx *c, uint64_t m, int64_t mcount, int64_t mnext,
          int *with_thread)
{
    const struct pmp_go_layout *L = c->L;
    int n = 0;

    *with_thread = 0;
    while (m && n <= mcount) {
        uint64_t id, procid, next;
        if ((m & 7) || pmp_target_read_u64(c->t, m + L->m_id, &id, NULL) ||
            pmp_target_read_u64(c->t, m + L->m_procid, &procid, NULL) ||
            pmp_target_read_u64(c->t, m + L->m_alllink, &next, NULL) ||
            (int64_t)id < 0 || (int64_t)id >= mnext)
            return -1;
        n++;
        if (procid)
            (*with_thread)++;
        m = next;
    }
    return n == mcount ? n : -1;
}

/* allm: a pointer to an M list of exactly mcount Ms (needs sched). */
struct allm_want {
    int64_t mcount, mnext;
};

static int
is_allm(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    const struct allm_want *w = arg;
    uint64_t m = pmp_u64at(p, 0), id;
    int wt;

    return m && !(m & 7) && pmp_target_read_u64(c->t, m + L->m_id, &id, NULL) == 0 &&
           (int64_t)id >= 0 && (int64_t)id < w->mnext &&
           walk_allm(c, m, w->mcount, w->mnext, &wt) > 0;
}

/*
 * semtable: 251 cache-line entries {lock, treap *sudog, nwait u32, pad}:
 * every pad byte zero, and some treap holds a sudog of a real g.  Zeroed
 * memory around the table looks the same, so the whole run of such
 * entries is kept (at most 2 x 251, in *arg): the table is inside it.
 */
static int
semtab_entry_ok(const struct pmp_go_layout *L, const unsigned char *e)
{
    uint64_t treap = pmp_u64at(e, L->semroot_treap);
    uint32_t nwait = pmp_u32at(e, L->semroot_nwait);
    size_t k;

    for (k = L->semroot_nwait + 4; k < L->semtab_entry; k++)
        if (e[k])
            return 0;
    return nwait <= MAX_SUDOGS && !(treap & 7) && (treap == 0) == (nwait == 0);
}

static int
is_semtable(struct go_ctx *c, const unsigned char *p, size_t avail, void *arg)
{
    const struct pmp_go_layout *L = c->L;
    size_t *run = arg, i, n;
    int live = 0;

    for (i = 0; i < L->semtab_n; i++) {
        const unsigned char *e = p + i * L->semtab_entry;
        uint64_t treap = pmp_u64at(e, L->semroot_treap), g;
        if (!semtab_entry_ok(L, e))
            return 0;
        if (treap && !live) {
            if (pmp_target_read_u64(c->t, treap + L->sudog_g, &g, NULL) ||
                !looks_like_g(c, g, -1))
                return 0;
            live = 1;
        }
    }
    if (!live)
        return 0;
    for (n = L->semtab_n; n < 2 * L->semtab_n && (n + 1) * L->semtab_entry <= avail &&
                       semtab_entry_ok(L, p + n * L->semtab_entry);
         n++)
        ;
    *run = n;
    return 1;
}

/* Every sudog in the semaphore treaps: which g sleeps on which word
   (g.waiting is not set for semaphores, unlike channels). */
static void
read_semtable(struct go_ctx *c)
{
    const struct pmp_go_layout *L = c->L;
    size_t n = c->semtable_n ? c->semtable_n : L->semtab_n;
    unsigned char *tab = malloc(n * L->semtab_entry);
    uint64_t *stack = NULL;
    size_t cap = 0, i, visited = 0;

    if (!tab || pmp_target_read(c->t, c->semtable, tab, n * L->semtab_entry,
                                NULL)) {
        free(tab);
        return;
    }
    for (i = 0; i < n; i++) {
        size_t sp = 0;
        uint64_t root = pmp_u64at(tab, i * L->semtab_entry + L->semroot_treap);

        if (!root)
            continue;
        if (pmp_grow((void **)&stack, &cap, 1, 8))
            break;
        stack[sp++] = root;
        while (sp > 0 && visited < MAX_SUDOGS) {
            uint64_t s = stack[--sp], w = s;
            unsigned char sg[SUDOG_BUF];
            size_t sgn = (size_t)L->sudog_waitlink + 8;
            int chain = 0;

            if (pmp_target_read(c->t, s, sg, sgn, NULL))
                continue;
            /* the tree's children */
            if (pmp_grow((void **)&stack, &cap, sp + 2, 8))
                break;
            if (pmp_u64at(sg, L->sudog_prev))
                stack[sp++] = pmp_u64at(sg, L->sudog_prev);
            if (pmp_u64at(sg, L->sudog_next))
                stack[sp++] = pmp_u64at(sg, L->sudog_next);
            /* the waiters on this address: s, then its waitlink chain */
            while (w && chain++ < 1000000 && visited++ < MAX_SUDOGS) {
                uint64_t g = pmp_u64at(sg, L->sudog_g);
                uint64_t elem = pmp_u64at(sg, L->sudog_elem);
                if (g && elem && g != UINT64_MAX)
                    pmp_u64map_put(&c->sema_of, g, (void *)(uintptr_t)elem);
                w = pmp_u64at(sg, L->sudog_waitlink);
                if (w && pmp_target_read(c->t, w, sg, sgn, NULL))
                    break;
            }
        }
    }
    free(stack);
    free(tab);
}

/* ---- the Go version, from .go.buildinfo ---- */

/* The Go version string of module mod ("go1.22.3"; "" if unknown). */
static void
module_version(struct pmp_target *t, Dwfl_Module *mod, char *out, size_t n)
{
    GElf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    GElf_Shdr sh;
    Elf_Scn *scn = elf ? pmp_elf_section(elf, ".go.buildinfo", &sh) : NULL;
    Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
    const unsigned char *b;

    out[0] = '\0';
    if (!d || !d->d_buf || d->d_size < 33)
        return;
    b = d->d_buf;
    if (memcmp(b, "\xff Go buildinf:", 14) != 0)
        return;
    if (b[15] & 2) {
        /* Go 1.18+: varint length, then the version inline. */
        size_t len = b[32], pos = 33;
        if (len & 0x80)
            return;
        if (pos + len <= d->d_size && len < n) {
            memcpy(out, b + pos, len);
            out[len] = '\0';
        }
    } else if (b[14] == 8 && t) {
        /* Older: a pointer to a string header. */
        uint64_t hdr = pmp_u64at(b, 16), sp, sl;
        if (pmp_target_read_u64(t, hdr, &sp, NULL) == 0 &&
            pmp_target_read_u64(t, hdr + 8, &sl, NULL) == 0 && sl < n &&
            pmp_target_read(t, sp, out, (size_t)sl, NULL) == 0)
            out[sl] = '\0';
        else
            out[0] = '\0';
    }
}

static void
read_version(struct go_ctx *c)
{
    module_version(c->t, c->mod, c->out->version, sizeof(c->out->version));
}

/* The table's row for version v ("go1.MINOR", "go1.MINOR.PATCH",
   "go1.MINORrcN", "go1.MINOR-..."); NULL for a release without one. */
static const struct pmp_go_layout *layout_minor(int minor);

static const struct pmp_go_layout *
layout_for(const char *v)
{
    char *end;
    long minor;

    if (strncmp(v, "go1.", 4) != 0)
        return NULL;
    minor = strtol(v + 4, &end, 10);
    if (end == v + 4 || (*end && *end != '.' && *end != '-' &&
                         strncmp(end, "rc", 2) != 0 &&
                         strncmp(end, "beta", 4) != 0 && *end != ' '))
        return NULL;
    return layout_minor((int)minor);
}

/* The table's row for Go 1.minor, NULL if none (or a row the buffers
   below cannot hold: never for a row the tests passed). */
static const struct pmp_go_layout *
layout_minor(int minor)
{
    const struct pmp_go_layout *L = pmp_go_layout_row(minor);

    if (L && L->g_size <= G_BUF &&
        (size_t)L->sudog_waitlink + 8 <= SUDOG_BUF &&
        sched_need(L) <= SCHED_BUF && gc_need(L) <= GC_BUF &&
        ms_need(L) <= MS_BUF && L->semroot_nwait + 4 <= L->semtab_entry)
        return L;
    return NULL;
}

/* "1.19, 1.21, ...": the releases of the table, for messages. */
static void
layout_versions(char *out, size_t n)
{
    size_t i, len = 0;
    const struct pmp_go_layout *L;

    out[0] = '\0';
    for (i = 0; (L = pmp_go_layout_nth(i)) != NULL && len < n; i++) {
        int w = snprintf(out + len, n - len, "%s1.%d", i ? ", " : "",
                         L->minor);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

const struct pmp_go_layout *
pmp_go_layout_sym(struct pmp_symbolizer *sym)
{
    Dwfl_Module *mod = sym ? pmp_symbolizer_go_module(sym) : NULL;
    char v[64];

    if (!mod)
        return NULL;
    module_version(NULL, mod, v, sizeof(v));
    return layout_for(v);
}

/* ---- labels: g.labels -> *labelMap -> map[string]string ---- */

static const char *
pool_gostring(struct pmp_target *t, struct pmp_strpool *pool, uint64_t ptr,
              uint64_t len)
{
    char buf[MAX_STR + 1];
    const char *r;

    if (len == 0 || len > MAX_STR || pmp_target_read(t, ptr, buf, (size_t)len,
                                                     NULL))
        return "";
    buf[len] = '\0';
    r = pmp_strpool_intern(pool, buf);
    return r ? r : "";
}

/* 1.24+: g.labels -> {list []{key, value string}} sorted by key. */
static size_t
labels_slice(struct pmp_target *t, uint64_t lp, struct pmp_strpool *pool,
             struct pmp_go_label *out, size_t max)
{
    uint64_t hdr[2], i;
    size_t got = 0;

    if (pmp_target_read(t, lp, hdr, sizeof(hdr), NULL) || !hdr[0] ||
        (hdr[0] & 7))
        return 0;
    for (i = 0; i < hdr[1] && got < max; i++) {
        uint64_t kv[4];
        if (pmp_target_read(t, hdr[0] + i * 32, kv, sizeof(kv), NULL))
            break;
        out[got].key = pool_gostring(t, pool, kv[0], kv[1]);
        out[got].value = pool_gostring(t, pool, kv[2], kv[3]);
        got++;
    }
    return got;
}

/* Up to 1.23, Go's map[string]string (hmap: count 0, B 9, buckets 16; a
   bucket is 8 tophash bytes, 8 keys, 8 values, the overflow pointer: 272
   bytes).  Swiss-table maps (1.24+) are not walked: labels stopped being
   a map in the same release. */
size_t
pmp_go_labels(struct pmp_target *t, const struct pmp_go_layout *L,
              uint64_t lp, struct pmp_strpool *pool,
              struct pmp_go_label *out, size_t max)
{
    uint64_t hmap, buckets, nb, i;
    unsigned char h[32];
    size_t got = 0;

    if (!L || !lp)
        return 0;
    if (L->labels_slice)
        return labels_slice(t, lp, pool, out, max);
    if (pmp_target_read_u64(t, lp, &hmap, NULL) || !hmap ||
        pmp_target_read(t, hmap, h, sizeof(h), NULL))
        return 0;
    buckets = pmp_u64at(h, 16);
    if (h[9] > 10 || !buckets)
        return 0;
    nb = UINT64_C(1) << h[9];
    for (i = 0; i < nb && got < max; i++) {
        uint64_t b = buckets + i * 272;
        int chain = 0;

        while (b && chain++ < 16 && got < max) {
            unsigned char bk[272];
            int slot;

            if (pmp_target_read(t, b, bk, sizeof(bk), NULL))
                break;
            for (slot = 0; slot < 8 && got < max; slot++) {
                if (bk[slot] <= 4)
                    continue;   /* empty or evacuated */
                out[got].key = pool_gostring(t, pool, pmp_u64at(bk, 8 + slot * 16),
                                             pmp_u64at(bk, 16 + slot * 16));
                out[got].value = pool_gostring(t, pool,
                                               pmp_u64at(bk, 136 + slot * 16),
                                               pmp_u64at(bk, 144 + slot * 16));
                got++;
            }
            b = pmp_u64at(bk, 264);
        }
    }
    return got;
}

static void
read_labels(struct go_ctx *c, uint64_t lp, struct pmp_goroutine *gr)
{
    struct pmp_go_label tmp[MAX_LABELS];
    size_t n = pmp_go_labels(c->t, c->L, lp, &c->priv->pool, tmp, MAX_LABELS);

    if (n == 0 || pmp_grow((void **)&c->priv->labels, &c->priv->labels_cap,
                           c->priv->nlabels + n, sizeof(*tmp)))
        return;
    memcpy(c->priv->labels + c->priv->nlabels, tmp, n * sizeof(*tmp));
    c->priv->nlabels += n;
    gr->nlabels = n;
}

/* The goroutine thread tid runs: R14 holds the g in Go code (the register
   ABI), else the TLS slot at fs-8; checked through g.m.procid. */
int
pmp_go_current(struct pmp_target *t, const struct pmp_go_layout *L,
               const struct pmp_regs *rg, int tid, uint64_t *g_out,
               int64_t *goid, uint64_t *labels)
{
    uint64_t cand[2], gp = 0, m, procid, curg, v;
    int k;

    if (!L)
        return -1;

    pmp_go_g_candidates(t, rg, cand);
    for (k = 0; k < 2 && !gp; k++) {
        if (!cand[k] || (cand[k] & 7) ||
            pmp_target_read_u64(t, cand[k] + L->g_m, &m, NULL) || !m ||
            pmp_target_read_u64(t, m + L->m_procid, &procid, NULL) ||
            procid != (uint64_t)tid)
            continue;
        if (pmp_target_read_u64(t, m + L->m_curg, &curg, NULL) || !curg)
            return -1;   /* an M in the scheduler: no goroutine */
        gp = curg;
    }
    if (!gp || pmp_target_read_u64(t, gp + L->g_goid, &v, NULL))
        return -1;
    *g_out = gp;
    *goid = (int64_t)v;
    if (pmp_target_read_u64(t, gp + L->g_labels, labels, NULL))
        *labels = 0;
    return 0;
}

/* The goroutine a CPU sample caught (perf events: the registers are the
   sample's, the memory is read later): the sampled R14, if it is a g
   whose stack holds the sampled sp and that is not one of its M's own
   (g0, gsignal).  That g
   was running at the sample whatever its thread runs now (m.curg, which
   pmp_go_current reads, may have moved on).  -1: not in Go code on a
   goroutine stack. */
int
pmp_go_sampled(struct pmp_target *t, const struct pmp_go_layout *L,
               const struct pmp_regs *rg, uint64_t *g_out, int64_t *goid,
               uint64_t *labels)
{
    uint64_t gp = rg->r[PMP_REG_R14], m, g0, v;
    unsigned char g[G_BUF];

    if (!L || !gp || (gp & 7) || L->g_size > sizeof(g) ||
        pmp_target_read(t, gp, g, L->g_size, NULL))
        return -1;
    if (rg->r[PMP_REG_RSP] < pmp_u64at(g, G_STACK_LO) ||
        rg->r[PMP_REG_RSP] >= pmp_u64at(g, G_STACK_HI))
        return -1;
    m = pmp_u64at(g, L->g_m);
    if (m && (pmp_target_read_u64(t, m + L->m_g0, &g0, NULL) || g0 == gp))
        return -1;
    /* goid 0: an M's own g (g0, or gsignal in a signal handler, which
       also runs on a stack of its own): not a goroutine. */
    v = pmp_u64at(g, L->g_goid);
    if (!v)
        return -1;
    *g_out = gp;
    *goid = (int64_t)v;
    *labels = pmp_u64at(g, L->g_labels);
    return 0;
}

/* ---- goroutines ---- */

/*
 * A running goroutine unwound from its thread's registers while that
 * thread runs a signal handler (Go's, on the M's gsignal stack: a SIGURG
 * preemption, a SIGPROF): the handler's frames are the M's, not the
 * goroutine's.  Its stack starts at the interrupted code, the frame after
 * the first signal frame.  sp: the thread's; lo, hi: the goroutine's
 * stack.  Returns the new frame count.
 */
static int
drop_handler_frames(uint64_t sp, uint64_t lo, uint64_t hi, uint64_t *pcs,
                    uint8_t *fl, int n)
{
    int k;

    if (sp >= lo && sp < hi)
        return n;   /* on its own stack: no handler above it */
    for (k = 0; k + 1 < n; k++) {
        if (fl[k] & PMP_FRAME_SIGNAL) {
            memmove(pcs, pcs + k + 1, (size_t)(n - k - 1) * sizeof(*pcs));
            memmove(fl, fl + k + 1, (size_t)(n - k - 1));
            return n - k - 1;
        }
    }
    return n;
}

/* Go's isSystemGoroutine, by the start function's name (the funcID
   numbering changes between releases; the names do not): runtime.* but
   runtime.main and corostart (1.23+; handleAsyncEvent is wasm's).  The
   finalizer and cleanup goroutines count as system: whether one runs a
   finalizer now is not known from outside. */
static int
is_system(struct go_ctx *c, uint64_t startpc)
{
    struct pmp_gofunc f;
    const char *nm;

    if (!c->gm || pmp_gomod_func(c->gm, startpc, &f))
        return 0;
    nm = pmp_gomod_name(c->gm, f.nameoff);
    if (strcmp(nm, "runtime.main") == 0 ||
        strcmp(nm, "runtime.corostart") == 0 ||
        strcmp(nm, "runtime.handleAsyncEvent") == 0)
        return 0;
    return strncmp(nm, "runtime.", 8) == 0;
}

static int
cmp_goid(const void *a, const void *b)
{
    const struct pmp_goroutine *x = a, *y = b;

    return (x->goid > y->goid) - (x->goid < y->goid);
}

static int
read_goroutines(struct go_ctx *c, const struct pmp_target_thread *tt,
                size_t nt, struct pmp_error *err)
{
    const struct pmp_go_layout *L = c->L;
    uint64_t hdr[2], i, *gptrs;
    int max = c->o && c->o->max_frames > 0 ? c->o->max_frames
                                           : PMP_DEFAULT_FRAMES;
    struct pmp_go *out = c->out;
    size_t *label_first;
    uint64_t *pcbuf;
    uint8_t *flbuf;

    if (max > PMP_MAX_FRAMES_CAP)
        max = PMP_MAX_FRAMES_CAP;
    if (pmp_target_read(c->t, c->allgs, hdr, sizeof(hdr), err))
        return pmp_error_set(err, PMP_E_TARGET, "cannot read runtime.allgs");
    if (hdr[1] > MAX_GOROUTINES)
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "runtime.allgs holds %llu goroutines: corrupt",
                             (unsigned long long)hdr[1]);
    out->goroutines = pmp_calloc(hdr[1] ? hdr[1] : 1, sizeof(*out->goroutines));
    label_first = pmp_calloc(hdr[1] ? hdr[1] : 1, sizeof(*label_first));
    gptrs = pmp_calloc(hdr[1] ? hdr[1] : 1, 8);
    pcbuf = malloc(((size_t)max + 1) * sizeof(*pcbuf));
    flbuf = malloc((size_t)max + 1);
    if (!out->goroutines || !label_first || !gptrs || !pcbuf || !flbuf) {
        free(label_first);
        free(gptrs);
        free(pcbuf);
        free(flbuf);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    /* The whole allgs array in one read. */
    if (hdr[1] && pmp_target_read(c->t, hdr[0], gptrs, hdr[1] * 8, NULL))
        hdr[1] = 0;
    for (i = 0; i < hdr[1]; i++) {
        unsigned char g[G_BUF];
        uint64_t gp, m, sp, pc, bp;
        uint32_t st;
        struct pmp_goroutine *gr;
        struct pmp_regs rg;
        int activation = 0, own_regs = 0;
        size_t k;
        struct pmp_error uerr = {0};

        gp = gptrs[i];
        if (!gp || pmp_target_read(c->t, gp, g, L->g_size, NULL))
            continue;
        st = pmp_u32at(g, L->g_status);
        if ((st & ~(uint32_t)G_SCAN) > L->status_max ||
            (st & ~(uint32_t)G_SCAN) >= PMP_ARRAY_SIZE(status_names) ||
            (st & ~(uint32_t)G_SCAN) == G_DEAD ||
            (L->status_deadextra &&
             (st & ~(uint32_t)G_SCAN) == L->status_deadextra))
            continue;
        gr = &out->goroutines[out->ngoroutines];
        gr->addr = gp;
        gr->status = st & ~(uint32_t)G_SCAN;
        gr->scan = !!(st & G_SCAN);
        gr->status_name = status_names[gr->status];
        gr->goid = (int64_t)pmp_u64at(g, L->g_goid);
        gr->wait_reason = "";
        /* waiting, or (1.26+) leaked: Go prints the wait reason */
        if ((gr->status == 4 || gr->status == G_LEAKED) &&
            g[L->g_waitreason] < c->nwaitreasons)
            gr->wait_reason = c->wr[g[L->g_waitreason]];
        gr->parent_goid = L->g_parentgoid
                              ? (int64_t)pmp_u64at(g, L->g_parentgoid)
                              : -1;
        gr->wait_ns = -1;
        if ((gr->status == 4 || gr->status == 3) &&
            pmp_u64at(g, L->g_waitsince) != 0 && out->now_mono) {
            /* Unsigned: a damaged waitsince must not overflow.  Past
               "now" (clock read a little earlier) is 0; a value no
               monotonic clock gives (negative as int64) stays unknown. */
            uint64_t ws = pmp_u64at(g, L->g_waitsince);
            if ((int64_t)ws > 0 && ws >= out->now_mono)
                gr->wait_ns = 0;
            else if ((int64_t)ws > 0 && out->now_mono - ws <= INT64_MAX)
                gr->wait_ns = (int64_t)(out->now_mono - ws);
        }
        gr->locked = pmp_u64at(g, L->g_lockedm) != 0;
        gr->startpc = pmp_u64at(g, L->g_startpc);
        gr->gopc = pmp_u64at(g, L->g_gopc);
        gr->system = is_system(c, gr->startpc);
        m = pmp_u64at(g, L->g_m);
        if (m) {
            uint64_t procid = 0, curg = 0;
            if (pmp_target_read_u64(c->t, m + L->m_procid, &procid, NULL) == 0 &&
                pmp_target_read_u64(c->t, m + L->m_curg, &curg, NULL) == 0 &&
                curg == gp && procid > 0 && procid < (1u << 30))
                gr->tid = (int)procid;
        }
        if (gr->status == 4 && !pmp_u64at(g, L->g_waiting)) {
            uintptr_t sem = (uintptr_t)pmp_u64map_get(&c->sema_of, gp);
            gr->sema = sem;
        } else if (gr->status == 4) {
            /* The sudog it sleeps on: a channel (for a select, its first). */
            uint64_t sg = pmp_u64at(g, L->g_waiting), ch = 0;
            if (pmp_target_read_u64(c->t, sg + L->sudog_c, &ch, NULL) == 0) {
                gr->chan = ch;
                if (!ch)
                    gr->sema = (uintptr_t)pmp_u64map_get(&c->sema_of, gp);
            }
        }
        label_first[out->ngoroutines] = c->priv->nlabels;
        read_labels(c, pmp_u64at(g, L->g_labels), gr);
        /* Where its stack starts: Go's own rules (gentraceback). */
        memset(&rg, 0, sizeof(rg));
        sp = pmp_u64at(g, L->g_sched_sp);
        pc = pmp_u64at(g, L->g_sched_pc);
        bp = pmp_u64at(g, L->g_sched_bp);
        if (pmp_u64at(g, L->g_syscallsp)) {
            sp = pmp_u64at(g, L->g_syscallsp);
            pc = pmp_u64at(g, L->g_syscallpc);
            bp = 0;
        } else if (gr->status == 2 && gr->tid) {
            /* Running: its thread's registers (all of them: R14 and
               fs_base lead the unwinder from a g0 or signal stack, where
               a preemption signal or a systemstack call may have it,
               back into the goroutine). */
            for (k = 0; k < nt; k++) {
                if (tt[k].tid == gr->tid && tt[k].regs_ok) {
                    rg = tt[k].regs;
                    sp = rg.r[PMP_REG_RSP];
                    pc = rg.r[PMP_REG_RIP];
                    bp = rg.r[PMP_REG_RBP];
                    activation = 1;
                    own_regs = 1;
                }
            }
        }
        gr->stack = -1;
        out->ngoroutines++;
        if (!c->gm) {
            pmp_strlcpy(gr->error, "the binary's function table is not "
                                   "readable: stack unavailable",
                        sizeof(gr->error));
            continue;
        }
        if (!pc || !sp) {
            pmp_strlcpy(gr->error, gr->status == 2
                                       ? "running on another thread: stack "
                                         "unavailable"
                                       : "no saved context",
                        sizeof(gr->error));
            continue;
        }
        if (!own_regs) {
            memset(&rg, 0, sizeof(rg));
            rg.r[PMP_REG_RIP] = pc;
            rg.r[PMP_REG_RSP] = sp;
            rg.r[PMP_REG_RBP] = bp;
        }
        gr->nframes = pmp_unwind_from(c->s->unw, &rg, activation, pcbuf,
                                      flbuf, max, &gr->flags, &uerr);
        if (own_regs && gr->nframes > 0)
            gr->nframes = drop_handler_frames(
                sp, pmp_u64at(g, G_STACK_LO), pmp_u64at(g, G_STACK_HI), pcbuf,
                flbuf, gr->nframes);
        if (gr->flags & PMP_STACK_UNWIND_ERR)
            pmp_strlcpy(gr->error, uerr.msg, sizeof(gr->error));
        if (gr->nframes > 0) {
            int64_t id = intern_stack(c->priv, pcbuf, flbuf, gr->nframes);
            if (id < 0) {
                free(label_first);
                free(gptrs);
                free(pcbuf);
                free(flbuf);
                return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            }
            gr->stack = (int)id;
        }
    }
    free(gptrs);
    free(pcbuf);
    free(flbuf);
    /* The stack store is final now: point every goroutine into it. */
    for (i = 0; i < out->ngoroutines; i++) {
        struct pmp_goroutine *gr = &out->goroutines[i];
        if (gr->stack >= 0) {
            const struct pmp_go_stack *st = &c->priv->stacks[gr->stack];
            gr->pcs = c->priv->pcs + st->off;
            gr->frame_flags = c->priv->fl + st->off;
        } else {
            gr->nframes = 0;
        }
    }
    out->stacks = c->priv->stacks;
    out->nstacks = c->priv->nstacks;
    out->stack_pcs = c->priv->pcs;
    out->stack_flags = c->priv->fl;
    /* Labels were appended to one growable array: point into it now. */
    for (i = 0; i < out->ngoroutines; i++)
        out->goroutines[i].labels =
            c->priv->labels ? c->priv->labels + label_first[i] : NULL;
    free(label_first);
    qsort(out->goroutines, out->ngoroutines, sizeof(*out->goroutines),
          cmp_goid);
    for (i = 0; i < out->ngoroutines; i++) {
        if (out->goroutines[i].system)
            out->nsystem++;
        else
            out->nuser++;
    }
    return 0;
}

static void
read_waitreasons(struct go_ctx *c)
{
    size_t n = c->nwaitreasons ? c->nwaitreasons : MAX_WAITREASONS, i;

    if (n > MAX_WAITREASONS)
        n = MAX_WAITREASONS;
    c->nwaitreasons = 0;
    for (i = 0; i < n && c->waitreasons; i++) {
        uint64_t h[2];
        if (pmp_target_read(c->t, c->waitreasons + i * 16, h, sizeof(h), NULL) ||
            h[1] > 64 || (i > 0 && h[1] == 0))
            break;
        c->wr[i] = read_gostring(c, h[0], h[1]);
        c->nwaitreasons = i + 1;
    }
}

static void
read_memstats(struct go_ctx *c)
{
    const struct pmp_go_layout *L = c->L;
    struct pmp_go_memstats *ms = &c->out->mem;
    unsigned char *b;

    if (c->memstats && (b = malloc(ms_need(L))) != NULL) {
        if (pmp_target_read(c->t, c->memstats, b, ms_need(L), NULL) == 0) {
            ms->found = 1;
            ms->numgc = pmp_u32at(b, L->ms_numgc);
            ms->numforcedgc = pmp_u32at(b, L->ms_numforcedgc);
            ms->pause_total_ns = pmp_u64at(b, L->ms_pause_total);
            ms->last_gc_unix = pmp_u64at(b, L->ms_last_gc_unix);
            ms->last_gc_nanotime = pmp_u64at(b, L->ms_last_gc_nanotime);
            memcpy(ms->pause_ns, b + L->ms_pause_ns, sizeof(ms->pause_ns));
            memcpy(ms->pause_end, b + L->ms_pause_end, sizeof(ms->pause_end));
        }
        free(b);
    }
    if (c->gcctl) {
        unsigned char g[GC_BUF];
        if (pmp_target_read(c->t, c->gcctl, g, gc_need(L), NULL) == 0) {
            ms->controller = 1;
            ms->gc_percent = (int32_t)pmp_u32at(g, L->gc_percent);
            ms->memory_limit = (int64_t)pmp_u64at(g, L->gc_memlimit);
            ms->heap_live = (int64_t)pmp_u64at(g, L->gc_heaplive);
            ms->heap_marked = (int64_t)pmp_u64at(g, L->gc_heapmarked);
            ms->heap_inuse = (int64_t)pmp_u64at(g, L->gc_heapinuse);
            ms->heap_goal = (int64_t)pmp_u64at(g, L->gc_lastgoal);
            ms->total_alloc = (int64_t)pmp_u64at(g, L->gc_totalalloc);
            ms->total_free = (int64_t)pmp_u64at(g, L->gc_totalfree);
        }
    }
}

static void
read_sched(struct go_ctx *c)
{
    const struct pmp_go_layout *L = c->L;
    struct pmp_go_sched *sc = &c->out->sched;
    unsigned char s[SCHED_BUF];
    uint64_t hdr[2], i, pp;

    if (!c->sched || !c->allp ||
        pmp_target_read(c->t, c->sched, s, sched_need(L), NULL) ||
        pmp_target_read(c->t, c->allp, hdr, sizeof(hdr), NULL) ||
        hdr[1] == 0 || hdr[1] > MAX_PS)
        return;
    sc->gomaxprocs = (int)hdr[1];
    sc->runq = pmp_calloc(hdr[1], sizeof(int));
    sc->p_status = pmp_calloc(hdr[1], sizeof(int));
    if (!sc->runq || !sc->p_status)
        return;
    for (i = 0; i < hdr[1]; i++) {
        unsigned char p[8];
        uint32_t head, tail;
        uint64_t next = 0;

        sc->p_status[i] = -1;
        if (pmp_target_read_u64(c->t, hdr[0] + i * 8, &pp, NULL) || !pp ||
            pmp_target_read(c->t, pp, p, sizeof(p), NULL) ||
            pmp_target_read(c->t, pp + L->p_runqhead, &head, 4, NULL) ||
            pmp_target_read(c->t, pp + L->p_runqtail, &tail, 4, NULL))
            continue;
        pmp_target_read_u64(c->t, pp + L->p_runnext, &next, NULL);
        sc->p_status[i] = (int)pmp_u32at(p, L->p_status);
        sc->runq[i] = (int)((tail - head) & 0x1ff) + (next != 0);
    }
    sc->found = 1;
    sc->idle_ps = (int)pmp_u32at(s, L->sched_npidle);
    sc->spinning_ms = (int)pmp_u32at(s, L->sched_nmspinning);
    sc->nmidle = (int)pmp_u32at(s, L->sched_nmidle);
    sc->threads = (int)((int64_t)pmp_u64at(s, L->sched_mnext) -
                        (int64_t)pmp_u64at(s, L->sched_nmfreed));
    sc->global_runq = (int32_t)pmp_u32at(s, L->sched_runqsize);
    {
        /* OS threads: the Ms that have one (mcount() counts the cgo
           extra M too). */
        int64_t mnext = (int64_t)pmp_u64at(s, L->sched_mnext);
        uint64_t head = 0;
        int wt;
        struct allm_want want = {sc->threads, mnext};
        if (!c->allm)
            c->allm = find_shape(c, 8, is_allm, &want);
        if (c->allm && pmp_target_read_u64(c->t, c->allm, &head, NULL) == 0 &&
            walk_allm(c, head, sc->threads, mnext, &wt) > 0) {
            sc->ms = sc->threads;
            sc->threads = wt;
        } else {
            sc->ms = sc->threads;
        }
    }
}

static int
go_stopped(void *arg, const struct pmp_target_thread *tt, size_t nt,
           struct pmp_error *err)
{
    struct go_ctx *c = arg;
    const struct pmp_go_layout *L = c->L;
    int rc;

    pmp_target_drop_cache(c->t);
    load_regions(c);
    if (!c->allgs)
        c->allgs = find_shape(c, 24, is_allgs, NULL);
    if (!c->allgs)
        return pmp_error_set(err, PMP_E_NOTFOUND,
                             "cannot find runtime.allgs: the Go runtime is "
                             "not initialized, or its data is not readable");
    if (!c->waitreasons)
        c->waitreasons = find_shape(c, 32, is_waitreasons, NULL);
    if (!c->memstats)
        c->memstats = find_shape(c, ms_need(L), is_memstats, NULL);
    if (!c->gcctl)
        c->gcctl = find_shape(c, gc_need(L), is_gcctl, NULL);
    if (!c->allp)
        c->allp = find_shape(c, 24, is_allp, NULL);
    if (!c->sched)
        c->sched = find_shape(c, sched_need(L), is_sched, NULL);
    read_memstats(c);
    /* The target's nanotime(): CLOCK_MONOTONIC live; for a core, map the
       core's write time with the pair recorded at the last GC. */
    if (!c->s->is_core) {
        c->out->now_mono = pmp_now_ns(CLOCK_MONOTONIC);
    } else if (c->out->mem.found) {
        uint64_t wall = pmp_target_core_mtime_ns(c->t);
        if (wall > c->out->mem.last_gc_unix)
            c->out->now_mono = c->out->mem.last_gc_nanotime +
                               (wall - c->out->mem.last_gc_unix);
    }
    read_waitreasons(c);
    if (!c->semtable)
        c->semtable = find_shape(c, L->semtab_n * L->semtab_entry, is_semtable,
                                 &c->semtable_n);
    if (c->semtable)
        read_semtable(c);
    rc = read_goroutines(c, tt, nt, err);
    if (rc)
        return rc;
    read_sched(c);
    return 0;
}

void
pmp_go_free(struct pmp_go *g)
{
    struct go_priv *p;

    if (!g)
        return;
    free(g->goroutines);
    free(g->sched.runq);
    free(g->sched.p_status);
    p = g->priv;
    if (p) {
        pmp_strpool_release(&p->pool);
        free(p->labels);
        free(p->pcs);
        free(p->fl);
        free(p->stacks);
        free(p->chain);
        pmp_u64map_release(&p->by_hash);
        free(p);
    }
    free(g);
}

/* Does the file at path have a Go function table? */
static int
exe_is_go(const char *path)
{
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1, go;
    Elf *elf;
    GElf_Shdr sh;

    if (fd < 0)
        return 0;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    go = elf && pmp_elf_section(elf, ".gopclntab", &sh) != NULL;
    if (elf)
        elf_end(elf);
    close(fd);
    return go;
}

int
pmp_session_go(struct pmp_session *s, const struct pmp_go_opts *o,
               const struct pmp_snapshot_opts *sopts,
               struct pmp_snapshot **snap_out, struct pmp_go **out,
               struct pmp_error *err)
{
    struct go_ctx c;
    struct pmp_snapshot *snap = NULL;
    struct pmp_snapshot_opts so = {0};
    size_t k;
    int rc;

    *out = NULL;
    if (snap_out)
        *snap_out = NULL;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.t = s->target;
    c.o = o;
    c.mod = pmp_symbolizer_go_module(s->sym);
    if (!c.mod && s->is_core && exe_is_go(s->opts.exe))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "the core maps no Go module although %s is a Go "
                             "program: the core's file notes are damaged, or "
                             "it is the core of another program",
                             s->opts.exe);
    if (!c.mod)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "not a Go program (no module has a .gopclntab)");
    c.gm = pmp_symbolizer_gomod(s->sym, c.mod);
    c.out = calloc(1, sizeof(*c.out));
    c.priv = calloc(1, sizeof(*c.priv));
    if (!c.out || !c.priv) {
        free(c.out);
        free(c.priv);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    pmp_strpool_init(&c.priv->pool);
    c.out->priv = c.priv;
    read_version(&c);
    c.L = layout_for(c.out->version);
    if (!c.L) {
        char vs[128];
        layout_versions(vs, sizeof(vs));
        rc = pmp_error_set(err, PMP_E_UNSUPPORTED,
                           "unsupported Go version %s: pmprof reads the "
                           "runtime of Go %s",
                           c.out->version[0] ? c.out->version : "(unknown)",
                           vs);
        pmp_go_free(c.out);
        return rc;
    }
    find_by_symtab(&c);
    pmp_u64map_init(&c.sema_of);
    if (sopts)
        so = *sopts;
    rc = pmp_session_snapshot_with(s, &so, &snap, go_stopped, &c, err);
    pmp_u64map_release(&c.sema_of);
    for (k = 0; k < PMP_ARRAY_SIZE(c.regs); k++)
        free(c.regs[k].data);
    if (rc) {
        pmp_go_free(c.out);
        return rc;
    }
    if (snap_out)
        *snap_out = snap;
    else
        pmp_snapshot_free(snap);
    *out = c.out;
    return 0;
}

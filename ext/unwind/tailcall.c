/*
 * tailcall.c: the frames of functions that left by a tail call, rebuilt
 * from DWARF call-site information, as gdb rebuilds them.
 *
 * A function that ends in `return f(x);` compiled to a jump leaves no
 * frame: the unwinder goes from f straight to the function's caller.  The
 * caller's DW_TAG_call_site at its return address names the function it
 * called (DW_AT_call_origin); when that is not the callee found on the
 * stack, the callee was reached through tail calls (DW_TAG_call_site with
 * DW_AT_call_tail_call) of that function, and of the functions those
 * jumped to.  Every path of tail calls from the caller's call target to
 * the callee is searched (a call site at most once per path); the frames
 * shown are the call sites every path shares, counted from the caller's
 * end and from the callee's end, and none when no site is shared (two
 * different routes: never a guess).  As gdb does (dwarf2/loc.c,
 * call_site_find_chain), the search gives up, showing no tail-call frame,
 * when a target on the way cannot be resolved statically (an indirect
 * call), when a function on the way has no DWARF, and when the callee can
 * reach itself through tail calls.  A tail-call frame's pc is its call
 * site's return address (looked up at pc-1, like any return address).
 *
 * Owns: the per-function call-site tables (by entry address), the result
 * per (caller return address, callee function), and expanding a snapshot's
 * stacks with the frames (PMP_FRAME_TAILCALL).
 *
 * Must not: read target memory (only DWARF and symbol tables), or run
 * while the target is stopped (session.c calls it after resuming).
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "symindex.h"

#ifndef DW_TAG_GNU_call_site
#define DW_TAG_GNU_call_site 0x4109
#endif
#ifndef DW_AT_GNU_tail_call
#define DW_AT_GNU_tail_call 0x2115
#endif
#ifndef DW_AT_GNU_call_site_target
#define DW_AT_GNU_call_site_target 0x2113
#endif

#define TC_MAX_DIES 200000     /* DIEs read to find one function */
#define TC_MAX_SITES 8192      /* call sites kept per function */
#define TC_MAX_CHAIN 64        /* tail calls in one path */
#define TC_MAX_STEPS 20000     /* call sites tried per search */
#define TC_MAX_FUNCS 4096      /* functions in the self-tail-call check */
#define TC_MAX_EXTRA 1024      /* frames added to one stack */
#define TC_MAX_SYMS 2000000    /* symbols read per name lookup */

struct tc_site {
    uint64_t pc;               /* return address (DW_AT_call_return_pc) */
    uint64_t target;           /* entry of the called function */
    Dwarf_Off die;             /* the DW_TAG_call_site */
    int resolved;              /* 0 not yet, 1 target known statically,
                                  -1 not known (resolved when needed) */
    int tail;                  /* DW_AT_call_tail_call */
};

struct tc_fn {
    uint64_t entry;
    int ok;                    /* a DWARF function starts at this entry */
    int selfcheck;             /* 0 unchecked, 1 cannot reach itself, 2 can */
    struct tc_site *sites;     /* every call site, in DIE order */
    size_t nsites;
};

/* A module's defined function symbols by name (built once, on the first
   call-site target looked up by name there). */
struct tc_sym {
    const char *name;          /* as in the symbol table (owned by libelf) */
    size_t baselen;            /* the name without an @VERSION suffix */
    uint64_t addr;
    int global;
    uint32_t next;             /* index+1 of the next with the same hash */
};

struct tc_modsyms {
    struct tc_sym *syms;
    size_t n;
    struct pmp_u64map by_name; /* hash of the base name -> index+1 */
};

/* The answer for one (caller return address, callee entry). */
struct tc_chain {
    uint64_t callee;
    uint64_t *pcs;             /* innermost first */
    size_t n;
    struct tc_chain *next;
};

struct tc_name {
    char *name;
    Dwfl_Module *mod;          /* the caller's module */
    uint64_t addr;             /* 0: not found */
    struct tc_name *next;
};

/* A unit's functions: their pc ranges, in DIE order. */
struct tc_cu {
    struct {
        Dwarf_Addr lo, hi;
        Dwarf_Die die;
    } *r;
    size_t n, cap;
    int oom;
};

struct pmp_tailcalls {
    struct pmp_symbolizer *sym;
    unsigned generation;         /* the symbolizer's, when the caches were
                                    filled (a module dropped: start over) */
    struct pmp_u64map units;     /* unit DIE address -> tc_cu */
    struct pmp_u64map modsyms;   /* Dwfl_Module* -> tc_modsyms */
    struct pmp_u64map fns;       /* entry -> tc_fn */
    struct pmp_u64map chains;    /* caller return address -> tc_chain list */
    struct pmp_u64map entries;   /* lookup address -> entry (1: none) */
    struct tc_name *names;
};

/* ---- DWARF walks -------------------------------------------------------- */

/* The function's entry as gdb takes it: DW_AT_low_pc, or the start of
   the first of its DW_AT_ranges. */
static int
die_entry(Dwarf_Die *d, Dwarf_Addr *out)
{
    Dwarf_Addr base, start, end;

    if (dwarf_lowpc(d, out) == 0)
        return 0;
    if (dwarf_ranges(d, 0, &base, &start, &end) > 0) {
        *out = start;
        return 0;
    }
    return -1;
}

/* The concrete DW_TAG_subprogram whose ranges hold addr (unit-relative),
   looking through namespaces and classes; 1 when found. */
static int
find_subprogram(Dwarf_Die *parent, Dwarf_Addr addr, Dwarf_Die *out,
                long *budget, int depth)
{
    Dwarf_Die child;

    if (depth > 32 || dwarf_child(parent, &child) != 0)
        return 0;
    do {
        if (--*budget < 0)
            return 0;
        switch (dwarf_tag(&child)) {
        case DW_TAG_subprogram:
            if (dwarf_haspc(&child, addr) == 1) {
                *out = child;
                return 1;
            }
            break;
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_module:
            if (find_subprogram(&child, addr, out, budget, depth + 1))
                return 1;
            break;
        default:
            break;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

/* Every concrete DW_TAG_subprogram's ranges under parent, in DIE order
   (what find_subprogram would try, read once per unit). */
static void
unit_ranges(Dwarf_Die *parent, struct tc_cu *u, long *budget, int depth)
{
    Dwarf_Die child;

    if (depth > 32 || dwarf_child(parent, &child) != 0)
        return;
    do {
        Dwarf_Addr base, lo, hi;
        ptrdiff_t off = 0;
        int k = 0;

        if (--*budget < 0 || u->oom)
            return;
        switch (dwarf_tag(&child)) {
        case DW_TAG_subprogram:
            while (k++ < 1024 &&
                   (off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
                if (pmp_grow((void **)&u->r, &u->cap, u->n + 1,
                             sizeof(*u->r))) {
                    u->oom = 1;
                    return;
                }
                u->r[u->n].lo = lo;
                u->r[u->n].hi = hi;
                u->r[u->n].die = child;
                u->n++;
            }
            break;
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_module:
            unit_ranges(&child, u, budget, depth + 1);
            break;
        default:
            break;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
}

/* The function holding addr: its DIE, module and bias; 0 when found.  A
   unit's functions are read once (the first answer in DIE order, as
   find_subprogram gives it); without memory, the unit is walked. */
static int
function_at(struct pmp_tailcalls *tc, uint64_t addr, Dwarf_Die *fn,
            Dwfl_Module **mod, Dwarf_Addr *bias)
{
    Dwarf_Die cu_mem, *cu;
    long budget = TC_MAX_DIES;
    struct tc_cu *u;
    uint64_t key;
    size_t i;

    cu = pmp_symbolizer_addrdie(tc->sym, addr, &cu_mem, bias, mod);
    if (!cu || addr < *bias)
        return -1;
    key = (uintptr_t)cu->addr;
    u = key != UINT64_MAX ? pmp_u64map_get(&tc->units, key) : NULL;
    if (!u && key != UINT64_MAX && (u = calloc(1, sizeof(*u))) != NULL) {
        unit_ranges(cu, u, &budget, 0);
        if (u->oom || pmp_u64map_put(&tc->units, key, u)) {
            free(u->r);
            free(u);
            u = NULL;
        }
    }
    if (!u) {
        budget = TC_MAX_DIES;
        return find_subprogram(cu, addr - *bias, fn, &budget, 0) ? 0 : -1;
    }
    for (i = 0; i < u->n; i++)
        if (addr - *bias >= u->r[i].lo && addr - *bias < u->r[i].hi) {
            *fn = u->r[i].die;
            return 0;
        }
    return -1;
}

/*
 * The function a call site's declaration names, found by its symbol.  In
 * the caller's own module first (a call inside the module, or a static
 * program).  Else the caller imports it: its .dynsym and version tables
 * say which version it binds to (libc exports pthread_kill@GLIBC_2.2.5
 * and pthread_kill@@GLIBC_2.34 at different addresses; gdb, going by the
 * bare name, can take the wrong one), and that version is looked up in
 * the other modules; an unversioned import binds to the default version.
 * More than one address left: no answer.
 */
struct name_find {
    struct pmp_tailcalls *tc;
    const char *name;
    const char *version;        /* wanted version, NULL: the default */
    Dwfl_Module *skip;
    uint64_t addr, local;       /* the global, the file-local match */
    int nglobal, nlocal, other; /* matches; other: a second address */
    long budget;
};

/* Does the symbol table's name sym stand for f->name (in f->version)? */
static int
name_matches(const char *sym, const struct name_find *f)
{
    size_t n = strlen(f->name);
    const char *v;

    if (strncmp(sym, f->name, n) != 0)
        return 0;
    v = sym + n;
    if (*v == '\0')
        return 1;
    if (v[0] != '@')
        return 0;
    if (v[1] == '@')
        return !f->version || strcmp(v + 2, f->version) == 0;
    return f->version && strcmp(v + 1, f->version) == 0;
}

static uint64_t
name_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h == UINT64_MAX ? 0 : h;
}

/* The module's name index (NULL on OOM). */
static struct tc_modsyms *
modsyms(struct pmp_tailcalls *tc, Dwfl_Module *mod)
{
    struct tc_modsyms *m = pmp_u64map_get(&tc->modsyms, (uintptr_t)mod);
    int n, i;

    if (m)
        return m;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pmp_u64map_init(&m->by_name);
    n = dwfl_module_getsymtab(mod);
    if (n > 0 && n <= TC_MAX_SYMS)
        m->syms = pmp_calloc((size_t)n, sizeof(*m->syms));
    for (i = 1; m->syms && i < n; i++) {
        GElf_Sym s;
        GElf_Addr addr;
        const char *nm = dwfl_module_getsym_info(mod, i, &s, &addr, NULL,
                                                 NULL, NULL);
        int type = GELF_ST_TYPE(s.st_info);
        struct tc_sym *e;
        uint64_t h;

        if (!nm || !nm[0] || s.st_shndx == SHN_UNDEF ||
            (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        e = &m->syms[m->n];
        e->name = nm;
        e->baselen = strcspn(nm, "@");
        e->addr = addr;
        e->global = GELF_ST_BIND(s.st_info) != STB_LOCAL;
        h = name_hash(nm, e->baselen);
        e->next = (uint32_t)(uintptr_t)pmp_u64map_get(&m->by_name, h);
        if (pmp_u64map_put(&m->by_name, h, (void *)(uintptr_t)(m->n + 1)))
            break;
        m->n++;
    }
    if (pmp_u64map_put(&tc->modsyms, (uintptr_t)mod, m)) {
        pmp_u64map_release(&m->by_name);
        free(m->syms);
        free(m);
        return NULL;
    }
    return m;
}

static void
scan_module(struct pmp_tailcalls *tc, Dwfl_Module *mod, struct name_find *f)
{
    struct tc_modsyms *m = modsyms(tc, mod);
    size_t len = strlen(f->name);
    uint32_t k;

    if (!m)
        return;
    k = (uint32_t)(uintptr_t)pmp_u64map_get(&m->by_name,
                                            name_hash(f->name, len));
    for (; k && k <= m->n && f->budget-- > 0; k = m->syms[k - 1].next) {
        const struct tc_sym *e = &m->syms[k - 1];
        if (e->baselen != len || !name_matches(e->name, f))
            continue;
        if (!e->global) {
            if (f->nlocal++ && f->local != e->addr)
                f->other = 1;
            f->local = e->addr;
            continue;
        }
        if (f->nglobal++ && f->addr != e->addr)
            f->other = 1;
        f->addr = e->addr;
    }
}

/* The sections of mod's main file a dynamic symbol lookup needs. */
struct dyn {
    Elf *elf;
    GElf_Addr bias;
    Elf_Data *syms, *versym, *verdef;
    size_t nsyms, strndx, verstrndx;
};

static int
dyn_open(Dwfl_Module *mod, struct dyn *d)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    size_t k = 0;

    memset(d, 0, sizeof(*d));
    d->elf = dwfl_module_getelf(mod, &d->bias);
    if (!d->elf)
        return -1;
    while ((scn = elf_nextscn(d->elf, scn)) != NULL && k++ < 4096) {
        if (!gelf_getshdr(scn, &sh))
            continue;
        if (sh.sh_type == SHT_DYNSYM && sh.sh_entsize) {
            d->syms = elf_getdata(scn, NULL);
            d->strndx = sh.sh_link;
            d->nsyms = d->syms ? PMP_MIN(d->syms->d_size / sh.sh_entsize,
                                         (size_t)TC_MAX_SYMS)
                               : 0;
        } else if (sh.sh_type == SHT_GNU_versym) {
            d->versym = elf_getdata(scn, NULL);
        } else if (sh.sh_type == SHT_GNU_verdef) {
            d->verdef = elf_getdata(scn, NULL);
            d->verstrndx = sh.sh_link;
        }
    }
    return d->syms ? 0 : -1;
}

/* The name of version index ndx in d's version definitions, or NULL. */
static const char *
dyn_version(const struct dyn *d, unsigned ndx)
{
    size_t off = 0, n = 0;
    GElf_Verdef vd;
    GElf_Verdaux va;

    while (d->verdef && n++ < 4096 && gelf_getverdef(d->verdef, (int)off, &vd)) {
        if (vd.vd_ndx == ndx &&
            gelf_getverdaux(d->verdef, (int)(off + vd.vd_aux), &va))
            return elf_strptr(d->elf, d->verstrndx, va.vda_name);
        if (!vd.vd_next)
            break;
        off += vd.vd_next;
    }
    return NULL;
}

/*
 * Another module's definition of f->name, from its dynamic symbol table
 * (what an import binds to; reading it loads no debug file): the version
 * f->version, or the default one.
 */
static int
scan_dynsym_cb(Dwfl_Module *mod, void **ud, const char *modname,
               Dwarf_Addr start, void *arg)
{
    struct name_find *f = arg;
    struct dyn d;
    size_t i;

    if (mod == f->skip || dyn_open(mod, &d))
        return DWARF_CB_OK;
    for (i = 1; i < d.nsyms && f->budget-- > 0; i++) {
        GElf_Sym sym;
        GElf_Versym ver = 0;
        const char *nm, *vn;
        int type;

        if (!gelf_getsym(d.syms, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
            GELF_ST_BIND(sym.st_info) == STB_LOCAL)
            continue;
        type = GELF_ST_TYPE(sym.st_info);
        if (type != STT_FUNC && type != STT_GNU_IFUNC)
            continue;
        nm = elf_strptr(d.elf, d.strndx, sym.st_name);
        if (!nm || strcmp(nm, f->name) != 0)
            continue;
        if (d.versym && !gelf_getversym(d.versym, (int)i, &ver))
            ver = 0;
        if (f->version) {
            vn = (ver & 0x7fff) > 1 ? dyn_version(&d, ver & 0x7fff) : NULL;
            if (!vn || strcmp(vn, f->version) != 0)
                continue;
        } else if (ver & 0x8000) {
            continue;   /* a hidden (non-default) version */
        }
        if (f->nglobal++ && f->addr != sym.st_value + d.bias)
            f->other = 1;
        f->addr = sym.st_value + d.bias;
    }
    return DWARF_CB_OK;
}

/* The version mod's dynamic symbol table imports name with, into buf
   ("" when unversioned); -1 when mod does not import name. */
static int
import_version(Dwfl_Module *mod, const char *name, char *buf, size_t len)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    Elf_Scn *scn = NULL, *dynsym = NULL, *versym = NULL, *verneed = NULL;
    GElf_Shdr sh, dsh, nsh;
    Elf_Data *dd, *vd, *nd;
    size_t i, nsyms, k = 0, off = 0, nfiles = 0;
    GElf_Versym ver = 0;
    GElf_Verneed vn;
    int found = 0;

    buf[0] = '\0';
    if (!elf)
        return -1;
    while ((scn = elf_nextscn(elf, scn)) != NULL && k++ < 4096) {
        if (!gelf_getshdr(scn, &sh))
            continue;
        if (sh.sh_type == SHT_DYNSYM)
            dynsym = scn;
        else if (sh.sh_type == SHT_GNU_versym)
            versym = scn;
        else if (sh.sh_type == SHT_GNU_verneed)
            verneed = scn;
    }
    if (!dynsym || !gelf_getshdr(dynsym, &dsh) || dsh.sh_entsize == 0 ||
        !(dd = elf_getdata(dynsym, NULL)))
        return -1;
    nsyms = PMP_MIN(dd->d_size / dsh.sh_entsize, (size_t)1000000);
    vd = versym ? elf_getdata(versym, NULL) : NULL;
    for (i = 1; i < nsyms && !found; i++) {
        GElf_Sym s;
        const char *nm;
        if (!gelf_getsym(dd, (int)i, &s) || s.st_shndx != SHN_UNDEF)
            continue;
        nm = elf_strptr(elf, dsh.sh_link, s.st_name);
        if (nm && strcmp(nm, name) == 0) {
            found = 1;
            if (!vd || !gelf_getversym(vd, (int)i, &ver))
                ver = 0;
        }
    }
    if (!found)
        return -1;
    ver &= 0x7fff;
    if (ver <= 1 || !verneed || !gelf_getshdr(verneed, &nsh) ||
        !(nd = elf_getdata(verneed, NULL)))
        return 0;
    while (nfiles++ < 1024 && gelf_getverneed(nd, (int)off, &vn)) {
        size_t aoff = off + vn.vn_aux, naux = 0;
        GElf_Vernaux va;
        while (naux++ < vn.vn_cnt && naux < 1024 &&
               gelf_getvernaux(nd, (int)aoff, &va)) {
            if (va.vna_other == ver) {
                const char *v = elf_strptr(elf, nsh.sh_link, va.vna_name);
                pmp_strlcpy(buf, v ? v : "", len);
                return 0;
            }
            if (!va.vna_next)
                break;
            aoff += va.vna_next;
        }
        if (!vn.vn_next)
            break;
        off += vn.vn_next;
    }
    return 0;
}

static uint64_t
lookup_name(struct pmp_tailcalls *tc, Dwfl_Module *mod, const char *name)
{
    struct tc_name *e;
    struct name_find f;
    char version[128];

    for (e = tc->names; e; e = e->next)
        if (e->mod == mod && strcmp(e->name, name) == 0)
            return e->addr;
    memset(&f, 0, sizeof(f));
    f.tc = tc;
    f.name = name;
    f.budget = TC_MAX_SYMS;
    scan_module(tc, mod, &f);
    if (f.nglobal == 0 && f.nlocal == 0) {
        memset(&f, 0, sizeof(f));
        f.tc = tc;
        f.name = name;
        f.budget = TC_MAX_SYMS;
        f.skip = mod;
        if (import_version(mod, name, version, sizeof(version)) == 0 &&
            version[0])
            f.version = version;
        dwfl_getmodules(pmp_symbolizer_dwfl(tc->sym), scan_dynsym_cb, &f, 0);
        f.nlocal = 0;   /* another module's file-local function: not it */
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return 0;
    e->name = pmp_strdup(name);
    if (!e->name) {
        free(e);
        return 0;
    }
    e->mod = mod;
    /* Globals first (gdb prefers them too); two addresses: no answer. */
    if (f.nglobal)
        e->addr = f.other ? 0 : f.addr;
    else if (f.nlocal)
        e->addr = f.other ? 0 : f.local;
    e->next = tc->names;
    tc->names = e;
    return e->addr;
}

/* Is die in a unit whose language has names with parameter types? */
static int
qualified_names(Dwarf_Die *die)
{
    Dwarf_Die cu;

    if (!dwarf_diecu(die, &cu, NULL, NULL))
        return 0;
    switch (dwarf_srclang(&cu)) {
    case DW_LANG_C_plus_plus:
    case DW_LANG_C_plus_plus_03:
    case DW_LANG_C_plus_plus_11:
    case DW_LANG_C_plus_plus_14:
    case DW_LANG_D:
    case DW_LANG_Rust:
        return 1;
    default:
        return 0;
    }
}

/* The statically known target of a call site DIE; 0 when found. */
static int
site_target(struct pmp_tailcalls *tc, Dwfl_Module *mod, Dwarf_Addr bias,
            Dwarf_Die *site, uint64_t *out)
{
    static const int attrs[] = {DW_AT_call_target, DW_AT_GNU_call_site_target,
                                DW_AT_call_origin, DW_AT_abstract_origin};
    Dwarf_Attribute attr;
    Dwarf_Die t;
    Dwarf_Addr a;
    size_t i;
    bool decl = false;
    const char *name;

    for (i = 0; i < PMP_ARRAY_SIZE(attrs); i++)
        if (dwarf_attr(site, attrs[i], &attr))
            break;
    /* None, or a DWARF expression: only known in a live frame, which a
       frame left by a tail call does not have. */
    if (i == PMP_ARRAY_SIZE(attrs) || dwarf_formref_die(&attr, &t) == NULL)
        return -1;
    if (dwarf_attr(&t, DW_AT_declaration, &attr))
        dwarf_formflag(&attr, &decl);
    if (decl && !dwarf_hasattr(&t, DW_AT_specification)) {
        /* A declaration: the function is found by its symbol. */
        if (dwarf_attr(&t, DW_AT_linkage_name, &attr) ||
            dwarf_attr(&t, DW_AT_MIPS_linkage_name, &attr))
            name = dwarf_formstring(&attr);
        else if (qualified_names(&t))
            /* gdb names it with its parameter types ("f(int)"), which no
               symbol is called (an extern "C" function declared in C++):
               it gives up there, and so do we, to show what it shows. */
            return -1;
        else
            name = dwarf_diename(&t);
        if (!name || !name[0])
            return -1;
        *out = lookup_name(tc, mod, name);
        return *out ? 0 : -1;
    }
    /* A definition (in this module's DWARF: the same bias). */
    if (die_entry(&t, &a) != 0)
        return -1;
    *out = a + bias;
    return 0;
}

struct site_walk {
    struct pmp_tailcalls *tc;
    Dwfl_Module *mod;
    Dwarf_Addr bias;
    struct tc_site *sites;
    size_t n, cap;
    long budget;
    int oom;
};

static int
has_flag(Dwarf_Die *d, int at)
{
    Dwarf_Attribute attr;
    bool f = false;

    return dwarf_attr(d, at, &attr) && dwarf_formflag(&attr, &f) == 0 && f;
}

/* Every call site under parent, not entering nested functions. */
static void
collect_sites(struct site_walk *w, Dwarf_Die *parent, int depth)
{
    Dwarf_Die child;

    if (depth > 64 || dwarf_child(parent, &child) != 0)
        return;
    do {
        int tag = dwarf_tag(&child);
        Dwarf_Attribute attr;
        Dwarf_Addr pc;
        size_t k;

        if (--w->budget < 0 || w->oom)
            return;
        if (tag == DW_TAG_subprogram)
            continue;
        if (tag != DW_TAG_call_site && tag != DW_TAG_GNU_call_site) {
            if (dwarf_haschildren(&child))
                collect_sites(w, &child, depth + 1);
            continue;
        }
        if (!(dwarf_attr(&child, DW_AT_call_return_pc, &attr) ||
              dwarf_attr(&child, DW_AT_low_pc, &attr)) ||
            dwarf_formaddr(&attr, &pc) != 0)
            continue;
        pc += w->bias;
        /* A second site at the same address is ignored (gdb keeps the
           first). */
        for (k = 0; k < w->n; k++)
            if (w->sites[k].pc == pc)
                break;
        if (k < w->n || w->n >= TC_MAX_SITES)
            continue;
        if (pmp_grow((void **)&w->sites, &w->cap, w->n + 1,
                     sizeof(*w->sites))) {
            w->oom = 1;
            return;
        }
        memset(&w->sites[w->n], 0, sizeof(w->sites[w->n]));
        w->sites[w->n].pc = pc;
        w->sites[w->n].tail = has_flag(&child, DW_AT_call_tail_call) ||
                              has_flag(&child, DW_AT_GNU_tail_call);
        w->sites[w->n].die = dwarf_dieoffset(&child);
        w->n++;
    } while (dwarf_siblingof(&child, &child) == 0);
}

/* The function starting at entry (NULL on OOM); ->ok is 0 when no
   DWARF function starts there. */
static struct tc_fn *
fn_get(struct pmp_tailcalls *tc, uint64_t entry)
{
    struct tc_fn *f = pmp_u64map_get(&tc->fns, entry);
    Dwarf_Die die;
    Dwfl_Module *mod = NULL;
    Dwarf_Addr bias = 0, e;
    struct site_walk w;

    if (f)
        return f;
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->entry = entry;
    if (entry != UINT64_MAX &&
        function_at(tc, entry, &die, &mod, &bias) == 0 &&
        die_entry(&die, &e) == 0 && e + bias == entry) {
        memset(&w, 0, sizeof(w));
        w.tc = tc;
        w.mod = mod;
        w.bias = bias;
        w.budget = TC_MAX_DIES;
        collect_sites(&w, &die, 0);
        if (w.oom) {
            free(w.sites);
            free(f);
            return NULL;
        }
        f->ok = 1;
        f->sites = w.sites;
        f->nsites = w.n;
    }
    if (entry == UINT64_MAX || pmp_u64map_put(&tc->fns, entry, f)) {
        free(f->sites);
        free(f);
        return NULL;
    }
    return f;
}

/* The entry of the function holding addr, 0 if it has no DWARF. */
static uint64_t
entry_of(struct pmp_tailcalls *tc, uint64_t addr)
{
    uintptr_t v = (uintptr_t)pmp_u64map_get(&tc->entries, addr);
    Dwarf_Die die;
    Dwfl_Module *mod;
    Dwarf_Addr bias, e;

    if (v)
        return v == 1 ? 0 : (uint64_t)v;
    v = 1;
    if (function_at(tc, addr, &die, &mod, &bias) == 0 &&
        die_entry(&die, &e) == 0 && e + bias > 1)
        v = (uintptr_t)(e + bias);
    if (addr != UINT64_MAX)
        (void)pmp_u64map_put(&tc->entries, addr, (void *)v);
    return v == 1 ? 0 : (uint64_t)v;
}

/* Is the target of site (a call site of the function f) known?  Looked
   up on first need: most call sites are never on a path searched. */
static int
site_resolve(struct pmp_tailcalls *tc, const struct tc_fn *f,
             struct tc_site *site)
{
    Dwarf_Die cu_mem, die;
    Dwarf_Addr bias = 0, b;
    Dwfl_Module *mod = NULL;
    Dwarf *dw;

    if (site->resolved == 0) {
        site->resolved = -1;
        if (pmp_symbolizer_addrdie(tc->sym, f->entry, &cu_mem, &bias, &mod) &&
            mod && (dw = dwfl_module_getdwarf(mod, &b)) != NULL &&
            dwarf_offdie(dw, site->die, &die) &&
            site_target(tc, mod, bias, &die, &site->target) == 0)
            site->resolved = 1;
    }
    return site->resolved == 1;
}

/* ---- the search --------------------------------------------------------- */

/*
 * Can the function at entry reach itself through tail calls?  Also 1
 * when the question cannot be answered (a tail call with no static
 * target, a function on the way without DWARF): gdb gives up then too.
 */
static int
reaches_itself(struct pmp_tailcalls *tc, uint64_t entry)
{
    struct tc_fn *f = fn_get(tc, entry);
    uint64_t *todo = NULL;
    struct pmp_u64map seen;
    size_t ntodo = 0, cap = 0, nseen = 0, k;
    int bad = 0;

    if (!f || !f->ok)
        return 1;
    if (f->selfcheck)
        return f->selfcheck == 2;
    pmp_u64map_init(&seen);
    if (pmp_grow((void **)&todo, &cap, 1, sizeof(*todo)))
        goto done_bad;
    todo[ntodo++] = entry;
    while (ntodo > 0 && !bad) {
        struct tc_fn *g = fn_get(tc, todo[--ntodo]);
        if (!g || !g->ok)
            goto done_bad;
        for (k = 0; k < g->nsites && !bad; k++) {
            struct tc_site *s = &g->sites[k];
            if (!s->tail)
                continue;
            if (!site_resolve(tc, g, s) || s->target == entry ||
                s->target == UINT64_MAX)
                goto done_bad;
            if (pmp_u64map_get(&seen, s->target))
                continue;
            if (++nseen > TC_MAX_FUNCS ||
                pmp_u64map_put(&seen, s->target, (void *)1) ||
                pmp_grow((void **)&todo, &cap, ntodo + 1, sizeof(*todo)))
                goto done_bad;
            todo[ntodo++] = s->target;
        }
    }
    f->selfcheck = 1;
    goto out;
done_bad:
    bad = 1;
    f->selfcheck = 2;
out:
    free(todo);
    pmp_u64map_release(&seen);
    return bad;
}

struct search {
    struct pmp_tailcalls *tc;
    uint64_t callee;
    uint64_t path[TC_MAX_CHAIN];   /* call-site pcs, caller's end first */
    size_t n;
    long steps;
    int fail;
    /* what every path found so far shares */
    int have;
    uint64_t res[TC_MAX_CHAIN];
    size_t nres, callers, callees;
};

static void
candidate(struct search *s)
{
    size_t i, m;

    if (!s->have) {
        s->have = 1;
        memcpy(s->res, s->path, s->n * sizeof(*s->path));
        s->nres = s->callers = s->callees = s->n;
        return;
    }
    m = PMP_MIN(s->callers, s->n);
    for (i = 0; i < m && s->res[i] == s->path[i]; i++)
        ;
    s->callers = i;
    m = PMP_MIN(s->callees, s->n);
    for (i = 0; i < m && s->res[s->nres - 1 - i] == s->path[s->n - 1 - i];
         i++)
        ;
    s->callees = i;
    if (s->callers == 0 && s->callees == 0)
        s->fail = 1;   /* two paths, nothing in common */
}

static void
search_from(struct search *s, const struct tc_fn *of, struct tc_site *site)
{
    struct tc_fn *f;
    size_t k, j;

    if (s->fail)
        return;
    if (--s->steps < 0 || !site_resolve(s->tc, of, site)) {
        s->fail = 1;
        return;
    }
    if (site->target == s->callee) {
        candidate(s);
        return;
    }
    f = fn_get(s->tc, site->target);
    if (!f || !f->ok) {
        s->fail = 1;
        return;
    }
    for (k = 0; k < f->nsites && !s->fail; k++) {
        struct tc_site *t = &f->sites[k];
        if (!t->tail)
            continue;
        for (j = 0; j < s->n && s->path[j] != t->pc; j++)
            ;
        if (j < s->n)
            continue;   /* already on this path */
        if (s->n >= TC_MAX_CHAIN) {
            s->fail = 1;
            return;
        }
        s->path[s->n++] = t->pc;
        search_from(s, f, t);
        s->n--;
    }
}

/*
 * The tail-call frames between a callee (its function holds callee_addr)
 * and its caller (return address caller_pc), innermost first, into a new
 * chain (n 0 when there are none).  NULL on OOM.
 */
static struct tc_chain *
compute(struct pmp_tailcalls *tc, uint64_t caller_pc, uint64_t callee)
{
    struct tc_chain *c = calloc(1, sizeof(*c));
    struct search *s = NULL;
    struct tc_fn *caller;
    uint64_t centry;
    size_t k, n = 0;

    if (!c)
        return NULL;
    c->callee = callee;
    if (!callee || caller_pc < 2)
        return c;
    centry = entry_of(tc, caller_pc - 1);
    caller = centry ? fn_get(tc, centry) : NULL;
    if (!caller || !caller->ok)
        return c;
    for (k = 0; k < caller->nsites; k++)
        if (caller->sites[k].pc == caller_pc)
            break;
    if (k == caller->nsites || reaches_itself(tc, callee))
        return c;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto oom;
    s->tc = tc;
    s->callee = callee;
    s->steps = TC_MAX_STEPS;
    search_from(s, caller, &caller->sites[k]);
    if (s->fail || !s->have || s->nres == 0) {
        free(s);
        return c;
    }
    c->pcs = calloc(s->nres, sizeof(*c->pcs));
    if (!c->pcs)
        goto oom;
    /* The callee's end first (innermost), then the caller's end, as gdb
       orders them; when callees covers the path the two are the same. */
    for (k = 0; k < s->callees; k++)
        c->pcs[n++] = s->res[s->nres - 1 - k];
    if (s->callees != s->nres)
        for (k = 0; k < s->callers; k++)
            c->pcs[n++] = s->res[s->callers - 1 - k];
    c->n = n;
    free(s);
    return c;
oom:
    free(s);
    free(c->pcs);
    free(c);
    return NULL;
}

/* The cached chain for (caller_pc, callee); NULL on OOM. */
static const struct tc_chain *
chain_get(struct pmp_tailcalls *tc, uint64_t caller_pc, uint64_t callee)
{
    struct tc_chain *head = pmp_u64map_get(&tc->chains, caller_pc), *c;

    for (c = head; c; c = c->next)
        if (c->callee == callee)
            return c;
    c = compute(tc, caller_pc, callee);
    if (!c)
        return NULL;
    c->next = head;
    if (pmp_u64map_put(&tc->chains, caller_pc, c)) {
        free(c->pcs);
        free(c);
        return NULL;
    }
    return c;
}

/* ---- the session's side -------------------------------------------------- */

int
pmp_tailcalls_new(struct pmp_tailcalls **out, struct pmp_symbolizer *sym)
{
    struct pmp_tailcalls *tc = calloc(1, sizeof(*tc));

    *out = tc;
    if (!tc)
        return PMP_E_NOMEM;
    tc->sym = sym;
    tc->generation = pmp_symbolizer_generation(sym);
    pmp_u64map_init(&tc->fns);
    pmp_u64map_init(&tc->units);
    pmp_u64map_init(&tc->modsyms);
    pmp_u64map_init(&tc->chains);
    pmp_u64map_init(&tc->entries);
    return 0;
}

/* Forget everything cached (the module list changed). */
static void
tc_flush(struct pmp_tailcalls *tc)
{
    size_t i;

    for (i = 0; i < tc->fns.cap; i++) {
        struct tc_fn *f =
            tc->fns.keys[i] != UINT64_MAX ? tc->fns.vals[i] : NULL;
        if (f) {
            free(f->sites);
            free(f);
        }
    }
    for (i = 0; i < tc->units.cap; i++) {
        struct tc_cu *u =
            tc->units.keys[i] != UINT64_MAX ? tc->units.vals[i] : NULL;
        if (u) {
            free(u->r);
            free(u);
        }
    }
    for (i = 0; i < tc->chains.cap; i++) {
        struct tc_chain *nx, *c = tc->chains.keys[i] != UINT64_MAX
                                      ? tc->chains.vals[i]
                                      : NULL;
        for (; c; c = nx) {
            nx = c->next;
            free(c->pcs);
            free(c);
        }
    }
    for (i = 0; i < tc->modsyms.cap; i++) {
        struct tc_modsyms *m =
            tc->modsyms.keys[i] != UINT64_MAX ? tc->modsyms.vals[i] : NULL;
        if (m) {
            pmp_u64map_release(&m->by_name);
            free(m->syms);
            free(m);
        }
    }
    while (tc->names) {
        struct tc_name *nx = tc->names->next;
        free(tc->names->name);
        free(tc->names);
        tc->names = nx;
    }
    pmp_u64map_release(&tc->fns);
    pmp_u64map_release(&tc->units);
    pmp_u64map_release(&tc->chains);
    pmp_u64map_release(&tc->entries);
    pmp_u64map_release(&tc->modsyms);
}

void
pmp_tailcalls_free(struct pmp_tailcalls *tc)
{
    if (!tc)
        return;
    tc_flush(tc);
    free(tc);
}

/*
 * Insert the tail-call frames into one stack (pcs/fl, n frames,
 * innermost first): opcs, ofl (malloc'd) and on, or opcs NULL when
 * there are none.  Pairs where the callee is a signal trampoline, the
 * caller's pc is exact or synthetic, or the caller was found by frame
 * pointers (the callee had no CFI) are left as they are: gdb only looks
 * from frames it unwound by DWARF.
 */
int
pmp_tailcalls_expand_stack(struct pmp_tailcalls *tc, const uint64_t *in,
                           const uint8_t *infl, size_t nin, uint64_t **opcs,
                           uint8_t **ofl, size_t *on)
{
    uint64_t *pcs = NULL;
    uint8_t *fl = NULL;
    size_t n = 0, cap, extra = 0, k, i;
    int any = 0;

    *opcs = NULL;
    *ofl = NULL;
    *on = nin;
    if (nin < 2)
        return 0;
    if (tc->generation != pmp_symbolizer_generation(tc->sym)) {
        /* A module was dropped (dlclose): its DIEs and names are gone. */
        tc_flush(tc);
        tc->generation = pmp_symbolizer_generation(tc->sym);
    }
    cap = nin + 16;
    pcs = malloc(cap * sizeof(*pcs));
    fl = malloc(cap);
    if (!pcs || !fl)
        goto oom;
    for (i = 0; i < nin; i++) {
        const struct tc_chain *c;
        uint64_t callee_pc, caller = 0;
        uint8_t f = infl[i];

        pcs[n] = in[i];
        fl[n++] = f;
        if (i + 1 >= nin)
            break;
        caller = in[i + 1];
        if ((f & PMP_FRAME_SIGNAL) || PMP_PC_IS_SYNTH(in[i]) ||
            PMP_PC_IS_SYNTH(caller) || caller < 2 ||
            (infl[i + 1] & (PMP_FRAME_ACTIVATION | PMP_FRAME_FP)))
            continue;
        callee_pc = (f & PMP_FRAME_ACTIVATION) || in[i] == 0 ? in[i]
                                                              : in[i] - 1;
        c = chain_get(tc, caller, entry_of(tc, callee_pc));
        if (!c)
            goto oom;
        if (c->n == 0 || extra + c->n > TC_MAX_EXTRA)
            continue;
        if (n + c->n + (nin - i) > cap) {
            size_t ncap = n + c->n + (nin - i) + 16;
            uint64_t *np = realloc(pcs, ncap * sizeof(*pcs));
            uint8_t *nf;
            if (!np)
                goto oom;
            pcs = np;
            nf = realloc(fl, ncap);
            if (!nf)
                goto oom;
            fl = nf;
            cap = ncap;
        }
        for (k = 0; k < c->n; k++) {
            pcs[n] = c->pcs[k];
            fl[n++] = PMP_FRAME_TAILCALL;
        }
        extra += c->n;
        any = 1;
    }
    if (!any) {
        free(pcs);
        free(fl);
        return 0;
    }
    *opcs = pcs;
    *ofl = fl;
    *on = n;
    return 0;
oom:
    free(pcs);
    free(fl);
    return PMP_E_NOMEM;
}

static int
expand_thread(struct pmp_tailcalls *tc, struct pmp_thread *th)
{
    uint64_t *pcs;
    uint8_t *fl;
    size_t n;

    if (th->nframes < 2)
        return 0;
    if (pmp_tailcalls_expand_stack(tc, th->pcs, th->frame_flags,
                                   (size_t)th->nframes, &pcs, &fl, &n))
        return PMP_E_NOMEM;
    if (!pcs)
        return 0;
    free(th->pcs);
    free(th->frame_flags);
    th->pcs = pcs;
    th->frame_flags = fl;
    th->nframes = (int)n;
    return 0;
}

int
pmp_tailcalls_expand(struct pmp_tailcalls *tc, struct pmp_snapshot *snap,
                     struct pmp_error *err)
{
    size_t i;

    for (i = 0; i < snap->nthreads; i++) {
        struct pmp_thread *th = &snap->threads[i];
        int before = th->nframes;

        if (expand_thread(tc, th))
            return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        snap->nframes_total += (size_t)(th->nframes - before);
    }
    return 0;
}

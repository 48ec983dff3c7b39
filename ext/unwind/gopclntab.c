/*
 * gopclntab.c: Go's own function table (.gopclntab) as an unwinder and
 * symbolizer backend for Go modules.
 *
 * Owns: parsing the pclntab of one module (pcHeader, function table, _func
 * records, pc-value tables, file and name tables, inline trees), read from
 * the module's ELF file (never from the stopped target: the file is mapped
 * by libelf, so a lookup costs no target read), for every Go release a row
 * of `layouts` describes; translating the release's funcIDs into pmprof's
 * (gopclntab.h).  Every offset read from the table is bounds-checked
 * against its section; a corrupt table yields "not found", never a wild
 * read.
 *
 * Must not: read target memory except once, for the moduledata's gofunc
 * pointer when the file holds no usable copy (PIE).
 *
 * Format (runtime/symtab.go, internal/abi/symtab.go of each release):
 * pcHeader {magic u32, pad u8 x2, minLC u8, ptrSize u8, nfunc int, nfiles
 * uint, textStart (0 from Go 1.26: moduledata.text instead),
 * funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset}; at
 * pclnOffset nfunc+1 {entryoff u32, funcoff u32}; each _func {entryoff,
 * nameoff, args, deferreturn, pcsp, pcfile, pcln, npcdata, cuOffset u32;
 * [startLine i32, Go 1.20+]; funcID, flag, pad, nfuncdata u8} then npcdata
 * u32 pc-value table offsets and nfuncdata u32 funcdata offsets from
 * moduledata.gofunc.
 */
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gopclntab.h"

#define GO118_MAGIC 0xfffffff0u
#define GO120_MAGIC 0xfffffff1u
#define PCDATA_INLTREE 2
#define FUNCDATA_INLTREE 3
#define MAX_INLINE 64
#define MD_TEXT 176        /* moduledata.text: the same in every release */
#define MD_SCAN_END 512    /* the moduledata words searched for gofunc */

/*
 * The layouts: one row per range of Go releases (amd64).  Sources: each
 * release's runtime/symtab.go, internal/abi/symtab.go (FuncID, _func,
 * inlinedCall) and runtime/symtab.go's moduledata (gofunc's offset),
 * checked against binaries that release built (its DWARF: ptype /o
 * struct runtime.moduledata) by tests/test_go_versions_stacks.py.  A
 * release no row names (1.20, 1.25, newer ones) gets the row of the
 * nearest older release with the same magic, and only if its own table
 * confirms that row's funcIDs (verify_funcids); moduledata.gofunc is then
 * found by its shape, not its offset.
 */
struct go_layout {
    int lo, hi;                /* Go 1.lo .. 1.hi */
    uint32_t magic;
    uint8_t func_size;         /* _func up to pcdata[] */
    uint8_t func_funcid;       /* funcID; flag is +1, nfuncdata +3 */
    uint8_t inl_size, inl_funcid, inl_name, inl_parentpc;  /* inlinedCall */
    uint16_t md_gofunc;        /* moduledata.gofunc (rodata the word before) */
    uint8_t nids;              /* raw funcIDs 0..nids-1, wrapper the last */
    uint8_t ids[PMP_GOFUNC_COUNT];  /* raw funcID -> PMP_GOFUNC_* */
};

#define IDS_119                                                            \
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,    \
     19, 20, 21}
/* 1.22 inserted corostart after cgocallback. */
#define IDS_122                                                            \
    {0, 1, 2, 3, 4, 22, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,    \
     18, 19, 20, 21}
/* 1.26: runfinq became runFinalizers, after runtime_main; runCleanups. */
#define IDS_126                                                            \
    {0, 1, 2, 3, 4, 22, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 16,    \
     23, 18, 19, 20, 21}

static const struct go_layout layouts[] = {
    {18, 19, GO118_MAGIC, 40, 36, 20, 2, 12, 16, 304, 22, IDS_119},
    {21, 21, GO120_MAGIC, 44, 40, 16, 0, 4, 8, 320, 22, IDS_119},
    {22, 24, GO120_MAGIC, 44, 40, 16, 0, 4, 8, 320, 23, IDS_122},
    {26, 26, GO120_MAGIC, 44, 40, 16, 0, 4, 8, 320, 24, IDS_126},
};

/* The functions Go gives a funcID by name (cmd/internal/objabi/funcid.go),
   for verify_funcids. */
static const struct {
    const char *name;
    uint8_t id;
} named_ids[] = {
    {"abort", PMP_GOFUNC_ABORT},
    {"asmcgocall", PMP_GOFUNC_ASMCGOCALL},
    {"asyncPreempt", PMP_GOFUNC_ASYNCPREEMPT},
    {"cgocallback", PMP_GOFUNC_CGOCALLBACK},
    {"corostart", PMP_GOFUNC_COROSTART},
    {"debugCallV2", PMP_GOFUNC_DEBUGCALLV2},
    {"gcBgMarkWorker", PMP_GOFUNC_GCBGMARKWORKER},
    {"goexit", PMP_GOFUNC_GOEXIT},
    {"gogo", PMP_GOFUNC_GOGO},
    {"gopanic", PMP_GOFUNC_GOPANIC},
    {"handleAsyncEvent", PMP_GOFUNC_HANDLEASYNCEVENT},
    {"main", PMP_GOFUNC_RUNTIME_MAIN},
    {"mcall", PMP_GOFUNC_MCALL},
    {"morestack", PMP_GOFUNC_MORESTACK},
    {"mstart", PMP_GOFUNC_MSTART},
    {"panicwrap", PMP_GOFUNC_PANICWRAP},
    {"rt0_go", PMP_GOFUNC_RT0_GO},
    {"runCleanups", PMP_GOFUNC_RUNCLEANUPS},
    {"runFinalizers", PMP_GOFUNC_RUNFINQ},
    {"runfinq", PMP_GOFUNC_RUNFINQ},
    {"sigpanic", PMP_GOFUNC_SIGPANIC},
    {"systemstack", PMP_GOFUNC_SYSTEMSTACK},
    {"systemstack_switch", PMP_GOFUNC_SYSTEMSTACK_SWITCH},
};

struct pmp_gomod {
    const unsigned char *tab;   /* the section's bytes */
    size_t len;
    uint64_t bias;              /* load bias of the module */
    uint64_t text;              /* runtime address of textStart */
    uint32_t nfunc;
    size_t funcname, cu, filetab, pctab, pcln;  /* offsets into tab */
    const unsigned char *ftab;  /* nfunc+1 pairs */
    uint64_t go_end;            /* end of Go text (runtime address) */
    uint64_t gofunc;            /* runtime address of go.func.* (0: none) */
    uint64_t pclntab_addr;      /* link-time address of the section */
    uint64_t moduledata;        /* runtime address, 0 if not found */
    uint64_t md_text;           /* moduledata.text (link-time), 0 unknown */
    const struct go_layout *lay;
    char version[32];           /* from .go.buildinfo, "" if unknown */
    int minor;                  /* Go 1.minor, 0 if unknown */
    struct pmp_target *target;  /* for funcdata not in the file */
    struct {
        uint64_t addr;          /* runtime address */
        const unsigned char *data;
        size_t len;
    } secs[16];                 /* the file's allocated PROGBITS sections */
    size_t nsecs;
};

/* Read runtime address addr from the file's sections, else the target. */
static int
file_read(const struct pmp_gomod *g, uint64_t addr, void *buf, size_t len)
{
    size_t i;

    for (i = 0; i < g->nsecs; i++) {
        if (addr >= g->secs[i].addr && addr - g->secs[i].addr <= g->secs[i].len &&
            g->secs[i].len - (addr - g->secs[i].addr) >= len) {
            memcpy(buf, g->secs[i].data + (addr - g->secs[i].addr), len);
            return 0;
        }
    }
    return g->target ? pmp_target_read(g->target, addr, buf, len, NULL) : -1;
}

static void
collect_sections(struct pmp_gomod *g, Elf *elf)
{
    Elf_Scn *scn = NULL;
    size_t n = 0;

    while ((scn = elf_nextscn(elf, scn)) != NULL && n++ < 65536 &&
           g->nsecs < PMP_ARRAY_SIZE(g->secs)) {
        GElf_Shdr sh;
        Elf_Data *d;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
            !(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & SHF_WRITE))
            continue;
        d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        g->secs[g->nsecs].addr = sh.sh_addr + g->bias;
        g->secs[g->nsecs].data = d->d_buf;
        g->secs[g->nsecs].len = d->d_size;
        g->nsecs++;
    }
}

static const unsigned char *
section_by_name(Elf *elf, const char *want, GElf_Shdr *out, size_t *len)
{
    Elf_Scn *scn = pmp_elf_section(elf, want, out);
    Elf_Data *d;

    if (!scn || out->sh_type == SHT_NOBITS)
        return NULL;
    d = elf_getdata(scn, NULL);
    if (!d || !d->d_buf)
        return NULL;
    *len = d->d_size;
    return d->d_buf;
}

static inline uint32_t
rd32(const struct pmp_gomod *g, size_t off, int *ok)
{
    if (off > g->len || g->len - off < 4) {
        *ok = 0;
        return 0;
    }
    return pmp_u32at(g->tab, off);
}

static const char *
cstr(const struct pmp_gomod *g, size_t base, int64_t off)
{
    const unsigned char *p, *z;

    if (off < 0 || base + (uint64_t)off >= g->len)
        return NULL;
    p = g->tab + base + (size_t)off;
    z = memchr(p, 0, g->len - (size_t)(p - g->tab));
    return z ? (const char *)p : NULL;
}

/* The Go version from .go.buildinfo (Go 1.18+: the version inline after
   the 32-byte header, a varint length first). */
static void
read_goversion(struct pmp_gomod *g, Elf *elf)
{
    GElf_Shdr sh;
    size_t len = 0, n;
    const unsigned char *b = section_by_name(elf, ".go.buildinfo", &sh, &len);
    const char *v;

    if (!b || len < 33 || memcmp(b, "\xff Go buildinf:", 14) != 0 ||
        !(b[15] & 2))
        return;
    n = b[32];
    if ((n & 0x80) || n >= sizeof(g->version) || 33 + n > len)
        return;
    memcpy(g->version, b + 33, n);
    g->version[n] = '\0';
    v = g->version;
    if (strncmp(v, "go1.", 4) == 0 && v[4] >= '0' && v[4] <= '9') {
        g->minor = (int)strtol(v + 4, NULL, 10);
        if (g->minor > 1000)
            g->minor = 0;
    }
}

/*
 * The row for a table of this magic built by Go 1.minor: the row naming
 * the release, else the newest older row of that magic (else the oldest
 * one of that magic, for an unknown version).  *exact: whether a row
 * names the release.
 */
static const struct go_layout *
pick_layout(uint32_t magic, int minor, int *exact)
{
    const struct go_layout *best = NULL;
    size_t i;

    *exact = 0;
    for (i = 0; i < PMP_ARRAY_SIZE(layouts); i++) {
        const struct go_layout *l = &layouts[i];
        if (l->magic != magic)
            continue;
        if (minor >= l->lo && minor <= l->hi) {
            *exact = 1;
            return l;
        }
        if (!best || (l->lo <= minor && l->lo > best->lo) ||
            (minor > 0 && best->lo > minor && l->lo < best->lo) ||
            (minor == 0 && l->lo < best->lo))
            best = l;
    }
    return best;
}

/*
 * The table against the row's funcIDs, every function once: a raw funcID
 * the row does not have, a function Go names special (named_ids) whose
 * funcID is neither the row's for it nor the wrapper's (the linker's ABI
 * wrapper of an assembly function has its name), or a special funcID on a
 * function that is not the one: this row does not describe this table.  0 if it does
 * (and the core functions were all seen).
 */
static int
verify_funcids(const struct pmp_gomod *g, const struct go_layout *l,
               char *why, size_t whylen)
{
    uint32_t i;
    unsigned seen = 0;

    for (i = 0; i < g->nfunc; i++) {
        size_t off = g->pcln + pmp_u32at(g->ftab, (size_t)i * 8 + 4);
        int ok = 1;
        int32_t nameoff;
        const char *nm;
        uint8_t raw, id, want = PMP_GOFUNC_NORMAL;
        size_t k;

        if (off < g->pcln || off + l->func_size > g->len)
            continue;
        nameoff = (int32_t)rd32(g, off + 4, &ok);
        raw = g->tab[off + l->func_funcid];
        if (raw >= l->nids) {
            snprintf(why, whylen, "funcID %u beyond the table's %u", raw,
                     l->nids);
            return -1;
        }
        id = l->ids[raw];
        nm = cstr(g, g->funcname, nameoff);
        if (nm && strncmp(nm, "runtime.", 8) == 0) {
            for (k = 0; k < PMP_ARRAY_SIZE(named_ids); k++)
                if (strcmp(nm + 8, named_ids[k].name) == 0)
                    break;
            if (k < PMP_ARRAY_SIZE(named_ids)) {
                want = named_ids[k].id;
                /* (its ABI wrapper, same name, is a wrapper) */
                if (id != want && id != PMP_GOFUNC_WRAPPER) {
                    snprintf(why, whylen, "%s has funcID %u", nm, raw);
                    return -1;
                }
                if (id == PMP_GOFUNC_SYSTEMSTACK)
                    seen |= 1;
                else if (id == PMP_GOFUNC_MORESTACK)
                    seen |= 2;
                else if (id == PMP_GOFUNC_GOEXIT)
                    seen |= 4;
                else if (id == PMP_GOFUNC_MSTART)
                    seen |= 8;
                continue;
            }
        }
        if (id != PMP_GOFUNC_NORMAL && id != PMP_GOFUNC_WRAPPER) {
            snprintf(why, whylen, "%s has funcID %u", nm ? nm : "?", raw);
            return -1;
        }
    }
    if (seen != 15) {
        snprintf(why, whylen, "runtime.systemstack, morestack, goexit or "
                              "mstart not found");
        return -1;
    }
    return 0;
}

/*
 * The moduledata holds gofunc (the base of funcdata offsets, needed for
 * inline trees) and text.  It starts with a pointer to the pcHeader
 * followed by the funcnametab slice: look for that pair in the data
 * sections (.go.module from Go 1.26).  gofunc is checked by its shape: the word before it is
 * moduledata.rodata, an address inside .rodata (its start, except where
 * an external linker put something first: Debian's prometheus has it 0x20
 * in; the search by shape, with no row, wants the start), and gofunc lies between it and the end of .gopclntab (Go 1.26
 * puts go:func.* inside .gopclntab).  A row
 * that names the release gives gofunc's offset; otherwise (a release
 * newer than every row) the one word of that shape is taken.
 */
static void
find_moduledata(struct pmp_gomod *g, Elf *elf, int exact)
{
    /* Go 1.26+ gives it a section of its own. */
    static const char *const secs[] = {".go.module", ".noptrdata", ".data"};
    uint64_t want = g->pclntab_addr;
    uint64_t rodata = 0, rodata_end = 0, gofunc_end = 0;
    size_t i;

    {
        GElf_Shdr rsh;
        if (pmp_elf_section(elf, ".rodata", &rsh) &&
            rsh.sh_type != SHT_NOBITS) {
            rodata = rsh.sh_addr;
            rodata_end = rsh.sh_addr + rsh.sh_size;
        }
        gofunc_end = g->pclntab_addr + g->len;
    }
    for (i = 0; i < PMP_ARRAY_SIZE(secs) && !g->moduledata; i++) {
        GElf_Shdr sh;
        size_t len = 0, off;
        const unsigned char *d = section_by_name(elf, secs[i], &sh, &len);
        unsigned char *copy = NULL;
        uint64_t rel = 0;   /* bias included in the words read */

        if (!d && g->target && sh.sh_size > 0 && sh.sh_size < (64u << 20)) {
            /* Not in the file (or zero there): read the live copy. */
            copy = malloc(sh.sh_size);
            if (copy && pmp_target_read(g->target, sh.sh_addr + g->bias, copy,
                                        sh.sh_size, NULL) == 0) {
                d = copy;
                len = sh.sh_size;
                want = g->pclntab_addr + g->bias;
                rel = g->bias;
            }
        }
        for (off = 0; d && off + MD_TEXT + 8 <= len; off += 8) {
            size_t w, hit = 0;
            int nhit = 0;

            if (pmp_u64at(d, off) != want ||
                pmp_u64at(d, off + 8) != want + g->funcname)
                continue;
            g->moduledata = sh.sh_addr + off + g->bias;
            g->md_text = pmp_u64at(d, off + MD_TEXT) - rel;
            for (w = MD_TEXT + 8; w + 8 < MD_SCAN_END && off + w + 16 <= len;
                 w += 8) {
                uint64_t r = pmp_u64at(d, off + w) - rel;
                uint64_t f = pmp_u64at(d, off + w + 8) - rel;
                /* A row's own offset takes any .rodata address before
                   gofunc; the search by shape alone wants .rodata's start
                   (more words would pass the looser test). */
                if (!rodata || r < rodata || r >= rodata_end || f < r ||
                    f >= gofunc_end || (!exact && r != rodata))
                    continue;
                if (exact && w + 8 == g->lay->md_gofunc) {
                    hit = w + 8;
                    nhit = 1;
                    break;
                }
                if (!exact) {
                    hit = w + 8;
                    nhit++;
                }
            }
            if (nhit == 1)
                g->gofunc = pmp_u64at(d, off + hit) - rel + g->bias;
            break;
        }
        free(copy);
    }
}

int
pmp_gomod_open(struct pmp_gomod **out, Elf *elf, uint64_t bias,
               struct pmp_target *target, struct pmp_error *err)
{
    struct pmp_gomod *g;
    GElf_Shdr sh;
    size_t len = 0;
    const unsigned char *tab;
    uint64_t textstart, nfunc;
    uint32_t magic;
    int ok = 1, exact = 0;
    char why[160];

    *out = NULL;
    tab = section_by_name(elf, ".gopclntab", &sh, &len);
    if (!tab || len < 72)
        return pmp_error_set(err, PMP_E_NOTFOUND, "no readable .gopclntab");
    magic = pmp_u32at(tab, 0);
    if (tab[6] != 1 || tab[7] != 8)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "Go function table for another architecture");
    g = calloc(1, sizeof(*g));
    if (!g)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    read_goversion(g, elf);
    g->lay = pick_layout(magic, g->minor, &exact);
    if (!g->lay) {
        int rc = pmp_error_set(
            err, PMP_E_UNSUPPORTED,
            "unsupported Go function table (magic 0x%x, %s): pmprof reads "
            "the tables of Go 1.18 to 1.%d",
            magic, g->version[0] ? g->version : "unknown version",
            layouts[PMP_ARRAY_SIZE(layouts) - 1].hi);
        free(g);
        return rc;
    }
    g->tab = tab;
    g->len = len;
    g->bias = bias;
    g->target = target;
    g->pclntab_addr = sh.sh_addr;
    nfunc = pmp_u64at(tab, 8);
    textstart = pmp_u64at(tab, 24);
    g->funcname = (size_t)pmp_u64at(tab, 32);
    g->cu = (size_t)pmp_u64at(tab, 40);
    g->filetab = (size_t)pmp_u64at(tab, 48);
    g->pctab = (size_t)pmp_u64at(tab, 56);
    g->pcln = (size_t)pmp_u64at(tab, 64);
    if (nfunc == 0 || nfunc > (1u << 24) || g->pcln > len ||
        (len - g->pcln) / 8 < nfunc + 1 || g->funcname > len ||
        g->cu > len || g->filetab > len || g->pctab > len) {
        free(g);
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "corrupt Go function table header");
    }
    g->nfunc = (uint32_t)nfunc;
    g->ftab = tab + g->pcln;
    if (verify_funcids(g, g->lay, why, sizeof(why))) {
        int rc = pmp_error_set(
            err, PMP_E_UNSUPPORTED,
            "unsupported Go function table (magic 0x%x, %s): its funcIDs "
            "are not Go 1.%d's (%s)",
            magic, g->version[0] ? g->version : "unknown version",
            g->lay->hi, why);
        free(g);
        return rc;
    }
    find_moduledata(g, elf, exact);
    if (textstart == 0 && g->md_text) {
        /* Go 1.26+: moduledata.text (a file with no .text holding it is
           no Go module). */
        GElf_Shdr tsh;
        size_t tl = 0;
        if (section_by_name(elf, ".text", &tsh, &tl) &&
            g->md_text >= tsh.sh_addr && g->md_text < tsh.sh_addr + tl)
            textstart = g->md_text;
    }
    if (textstart == 0) {
        GElf_Shdr tsh;
        size_t tl;
        section_by_name(elf, ".text", &tsh, &tl);
        textstart = tsh.sh_addr;
    }
    g->text = textstart + bias;
    g->go_end = g->text + rd32(g, g->pcln + (size_t)nfunc * 8, &ok);
    collect_sections(g, elf);
    *out = g;
    return 0;
}

void
pmp_gomod_free(struct pmp_gomod *g)
{
    free(g);
}

uint64_t
pmp_gomod_moduledata(const struct pmp_gomod *g)
{
    return g->moduledata;
}

const char *
pmp_gomod_goversion(const struct pmp_gomod *g, int *minor)
{
    if (minor)
        *minor = g->minor;
    return g->version;
}

/* A raw funcID of the table as pmprof's (verify_funcids saw them all). */
static uint8_t
go_funcid(const struct pmp_gomod *g, uint8_t raw)
{
    return raw < g->lay->nids ? g->lay->ids[raw] : PMP_GOFUNC_NORMAL;
}

int
pmp_gomod_func(const struct pmp_gomod *g, uint64_t pc, struct pmp_gofunc *f)
{
    uint32_t lo = 0, hi = g->nfunc, off, foff;
    int ok = 1;

    if (pc < g->text || pc >= g->go_end)
        return -1;
    off = (uint32_t)(pc - g->text);
    /* Largest i with entryoff(i) <= off. */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pmp_u32at(g->ftab, (size_t)mid * 8) <= off)
            lo = mid;
        else
            hi = mid;
    }
    if (pmp_u32at(g->ftab, (size_t)lo * 8) > off)
        return -1;
    foff = pmp_u32at(g->ftab, (size_t)lo * 8 + 4);
    f->off = g->pcln + foff;
    if (f->off + g->lay->func_size > g->len || f->off < g->pcln)
        return -1;
    f->entry = g->text + rd32(g, f->off, &ok);
    f->end = g->text + pmp_u32at(g->ftab, (size_t)(lo + 1) * 8);
    f->nameoff = (int32_t)rd32(g, f->off + 4, &ok);
    f->funcid = go_funcid(g, g->tab[f->off + g->lay->func_funcid]);
    f->flag = g->tab[f->off + g->lay->func_funcid + 1];
    f->npcdata = rd32(g, f->off + 28, &ok);
    f->nfuncdata = g->tab[f->off + g->lay->func_funcid + 3];
    if (!ok || f->entry > pc || f->npcdata > 64)
        return -1;
    return 0;
}

const char *
pmp_gomod_name(const struct pmp_gomod *g, int32_t nameoff)
{
    const char *s = cstr(g, g->funcname, nameoff);

    return s ? s : "?";
}

static int
read_uvarint(const struct pmp_gomod *g, size_t *pos, uint32_t *out)
{
    uint32_t v = 0;
    unsigned shift = 0;

    while (*pos < g->len && shift < 35) {
        unsigned char b = g->tab[(*pos)++];
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/*
 * The value of pc-value table `tab_off` (an offset into pctab) at pc:
 * Go's pcvalue().  -1 (and *ok = 0) if the table is missing or corrupt.
 */
static int32_t
pcvalue(const struct pmp_gomod *g, const struct pmp_gofunc *f,
        uint32_t tab_off, uint64_t pc, int *ok)
{
    size_t pos;
    uint64_t cur = f->entry;
    int32_t val = -1;
    int first = 1, steps = 0;

    *ok = 0;
    if (tab_off == 0 || g->pctab + (size_t)tab_off >= g->len)
        return -1;
    pos = g->pctab + tab_off;
    while (steps++ < 1000000) {
        uint32_t uv, pcd;

        if (pos >= g->len)
            return -1;
        if (g->tab[pos] == 0 && !first)
            return -1;   /* end of table before pc */
        if (read_uvarint(g, &pos, &uv) || read_uvarint(g, &pos, &pcd))
            return -1;
        first = 0;
        /* zig-zag delta, wrapping like Go's int32 arithmetic */
        val = (int32_t)((uint32_t)val + (-(uv & 1) ^ (uv >> 1)));
        cur += pcd;   /* minLC is 1 on amd64 */
        if (pc < cur) {
            *ok = 1;
            return val;
        }
    }
    return -1;
}

int32_t
pmp_gomod_spdelta(const struct pmp_gomod *g, const struct pmp_gofunc *f,
                  uint64_t pc)
{
    int ok = 1;
    uint32_t t = rd32(g, f->off + 16, &ok);
    int32_t v;

    if (!ok)
        return -1;
    v = pcvalue(g, f, t, pc, &ok);
    return ok ? v : -1;
}

/* file and line of pc inside f (physical or innermost inlined position). */
static void
funcline(const struct pmp_gomod *g, const struct pmp_gofunc *f, uint64_t pc,
         const char **file, int *line)
{
    int ok = 1, ok2;
    uint32_t pcfile = rd32(g, f->off + 20, &ok);
    uint32_t pcln = rd32(g, f->off + 24, &ok);
    uint32_t cuoff = rd32(g, f->off + 32, &ok);
    int32_t fileno, ln;

    *file = "?";
    *line = 0;
    if (!ok)
        return;
    fileno = pcvalue(g, f, pcfile, pc, &ok2);
    if (ok2 && fileno >= 0) {
        uint32_t foff = rd32(g, g->cu + ((size_t)cuoff + (size_t)fileno) * 4,
                             &ok);
        if (ok && foff != UINT32_MAX) {
            const char *s = cstr(g, g->filetab, foff);
            if (s)
                *file = s;
        }
    }
    ln = pcvalue(g, f, pcln, pc, &ok2);
    if (ok2 && ln >= 0)
        *line = ln;
}

static int32_t
pcdata(const struct pmp_gomod *g, const struct pmp_gofunc *f, uint32_t idx,
       uint64_t pc)
{
    int ok = 1;
    uint32_t t;
    int32_t v;

    if (idx >= f->npcdata)
        return -1;
    t = rd32(g, f->off + g->lay->func_size + (size_t)idx * 4, &ok);
    if (!ok)
        return -1;
    v = pcvalue(g, f, t, pc, &ok);
    return ok ? v : -1;
}

static int
elide_wrapper(uint8_t child)
{
    return !(child == PMP_GOFUNC_GOPANIC || child == PMP_GOFUNC_SIGPANIC ||
             child == PMP_GOFUNC_PANICWRAP);
}

size_t
pmp_gomod_expand(const struct pmp_gomod *g, const struct pmp_gofunc *f,
                 uint64_t pc, struct pmp_goline *out, size_t max)
{
    size_t n = 0;
    uint64_t tracepc = pc;
    uint64_t inltree = 0;
    uint8_t child = 0;
    int depth = 0, lost = 0;

    if (max == 0)
        return 0;
    if (f->nfuncdata > FUNCDATA_INLTREE && g->gofunc) {
        int ok = 1;
        uint32_t fd = rd32(g, f->off + g->lay->func_size +
                                  (size_t)f->npcdata * 4 +
                                  FUNCDATA_INLTREE * 4, &ok);
        if (ok && fd != UINT32_MAX)
            inltree = g->gofunc + fd;
    }
    while (inltree && depth++ < MAX_INLINE && n + 1 < max) {
        int32_t ix = pcdata(g, f, PCDATA_INLTREE, tracepc);
        const struct go_layout *l = g->lay;
        unsigned char ic[32];
        int32_t nameoff, parentpc;
        uint8_t fid;

        if (ix < 0)
            break;
        if (ix > (1 << 20) || file_read(g, inltree + (uint64_t)ix *
                                                     l->inl_size,
                                        ic, l->inl_size)) {
            lost = 1;
            break;
        }
        nameoff = (int32_t)pmp_u32at(ic, l->inl_name);
        parentpc = (int32_t)pmp_u32at(ic, l->inl_parentpc);
        fid = go_funcid(g, ic[l->inl_funcid]);
        if (!(fid == PMP_GOFUNC_WRAPPER && elide_wrapper(child))) {
            out[n].function = pmp_gomod_name(g, nameoff);
            out[n].funcid = fid;
            funcline(g, f, tracepc, &out[n].file, &out[n].line);
            n++;
        }
        child = fid;
        if (parentpc < 0 || f->entry + (uint64_t)parentpc >= f->end)
            break;
        tracepc = f->entry + (uint64_t)parentpc;
    }
    /* pc in inlined code whose tree cannot be read (no gofunc): the
       position there is the callee's, not f's; say unknown. */
    if (!inltree && f->nfuncdata > FUNCDATA_INLTREE &&
        pcdata(g, f, PCDATA_INLTREE, tracepc) >= 0)
        lost = 1;
    out[n].function = pmp_gomod_name(g, f->nameoff);
    out[n].funcid = f->funcid;
    if (lost) {
        out[n].file = "?";
        out[n].line = 0;
    } else {
        funcline(g, f, tracepc, &out[n].file, &out[n].line);
    }
    n++;
    return n;
}

int
pmp_gomod_elide(uint8_t funcid, uint8_t child_funcid)
{
    return funcid == PMP_GOFUNC_WRAPPER && elide_wrapper(child_funcid);
}

void
pmp_gomod_line(const struct pmp_gomod *g, const struct pmp_gofunc *f,
               uint64_t pc, const char **file, int *line)
{
    funcline(g, f, pc, file, line);
}

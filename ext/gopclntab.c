/*
 * gopclntab.c: Go's own function table (.gopclntab) as an unwinder and
 * symbolizer backend for Go modules.
 *
 * Owns: parsing the Go 1.18/1.19 pclntab of one module (pcHeader, function
 * table, _func records, pc-value tables, file and name tables, inline
 * trees), read from the module's ELF file (never from the stopped target:
 * the file is mapped by libelf, so a lookup costs no target read).  Every
 * offset read from the table is bounds-checked against its section; a
 * corrupt table yields "not found", never a wild read.
 *
 * Must not: read target memory except once, for the moduledata's gofunc
 * pointer when the file holds no usable copy (PIE).
 *
 * Format (Go 1.19 runtime/symtab.go): pcHeader {magic u32 0xfffffff0, pad
 * u8 x2, minLC u8, ptrSize u8, nfunc int, nfiles uint, textStart,
 * funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset}; at
 * pclnOffset nfunc+1 {entryoff u32, funcoff u32}; each _func (40 bytes)
 * {entryoff, nameoff, args, deferreturn, pcsp, pcfile, pcln, npcdata,
 * cuOffset u32; funcID, flag, pad, nfuncdata u8} then npcdata u32
 * pc-value table offsets and nfuncdata u32 funcdata offsets from gofunc.
 */
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "gopclntab.h"

#define GO118_MAGIC 0xfffffff0u
#define FUNC_SIZE 40
#define PCDATA_INLTREE 2
#define FUNCDATA_INLTREE 3
#define INLCALL_SIZE 20
#define MAX_INLINE 64

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

/*
 * The moduledata holds gofunc (the base of funcdata offsets, needed for
 * inline trees).  It starts with a pointer to the pcHeader followed by the
 * funcnametab slice: look for that pair in the data sections.
 */
static void
find_moduledata(struct pmp_gomod *g, Elf *elf)
{
    static const char *const secs[] = {".noptrdata", ".data"};
    uint64_t want = g->pclntab_addr;
    size_t i;

    for (i = 0; i < PMP_ARRAY_SIZE(secs) && !g->moduledata; i++) {
        GElf_Shdr sh;
        size_t len = 0, off;
        const unsigned char *d = section_by_name(elf, secs[i], &sh, &len);
        unsigned char *copy = NULL;

        if (!d && g->target && sh.sh_size > 0 && sh.sh_size < (64u << 20)) {
            /* Not in the file (or zero there): read the live copy. */
            copy = malloc(sh.sh_size);
            if (copy && pmp_target_read(g->target, sh.sh_addr + g->bias, copy,
                                        sh.sh_size, NULL) == 0) {
                d = copy;
                len = sh.sh_size;
                want = g->pclntab_addr + g->bias;
            }
        }
        for (off = 0; d && off + 312 <= len; off += 8) {
            if (pmp_u64at(d, off) != want ||
                pmp_u64at(d, off + 8) != want + g->funcname)
                continue;
            g->moduledata = sh.sh_addr + off + g->bias;
            g->gofunc = pmp_u64at(d, off + 304);
            if (g->gofunc && want == g->pclntab_addr)
                g->gofunc += g->bias;
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
    int ok = 1;

    *out = NULL;
    tab = section_by_name(elf, ".gopclntab", &sh, &len);
    if (!tab || len < 72)
        return pmp_error_set(err, PMP_E_NOTFOUND, "no readable .gopclntab");
    if (pmp_u32at(tab, 0) != GO118_MAGIC)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "unsupported Go function table (magic 0x%x: "
                             "Go 1.18 and 1.19 are supported)",
                             pmp_u32at(tab, 0));
    if (tab[6] != 1 || tab[7] != 8)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "Go function table for another architecture");
    g = calloc(1, sizeof(*g));
    if (!g)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
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
    if (textstart == 0) {
        GElf_Shdr tsh;
        size_t tl;
        section_by_name(elf, ".text", &tsh, &tl);
        textstart = tsh.sh_addr;
    }
    g->text = textstart + bias;
    g->go_end = g->text + rd32(g, g->pcln + (size_t)nfunc * 8, &ok);
    find_moduledata(g, elf);
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
    if (f->off + FUNC_SIZE > g->len || f->off < g->pcln)
        return -1;
    f->entry = g->text + rd32(g, f->off, &ok);
    f->end = g->text + pmp_u32at(g->ftab, (size_t)(lo + 1) * 8);
    f->nameoff = (int32_t)rd32(g, f->off + 4, &ok);
    f->funcid = g->tab[f->off + 36];
    f->flag = g->tab[f->off + 37];
    f->npcdata = rd32(g, f->off + 28, &ok);
    f->nfuncdata = g->tab[f->off + 39];
    if (!ok || f->entry > pc || f->npcdata > 64)
        return -1;
    return 0;
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
    t = rd32(g, f->off + FUNC_SIZE + (size_t)idx * 4, &ok);
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
    int depth = 0;

    if (max == 0)
        return 0;
    if (f->nfuncdata > FUNCDATA_INLTREE && g->gofunc) {
        int ok = 1;
        uint32_t fd = rd32(g, f->off + FUNC_SIZE + (size_t)f->npcdata * 4 +
                                  FUNCDATA_INLTREE * 4, &ok);
        if (ok && fd != UINT32_MAX)
            inltree = g->gofunc + fd;
    }
    while (inltree && depth++ < MAX_INLINE && n + 1 < max) {
        int32_t ix = pcdata(g, f, PCDATA_INLTREE, tracepc);
        unsigned char ic[INLCALL_SIZE];
        int32_t nameoff, parentpc;

        if (ix < 0 || ix > (1 << 20))
            break;
        if (file_read(g, inltree + (uint64_t)ix * INLCALL_SIZE, ic,
                      sizeof(ic)))
            break;
        nameoff = (int32_t)pmp_u32at(ic, 12);
        parentpc = (int32_t)pmp_u32at(ic, 16);
        if (!(ic[2] == PMP_GOFUNC_WRAPPER && elide_wrapper(child))) {
            out[n].function = pmp_gomod_name(g, nameoff);
            out[n].funcid = ic[2];
            funcline(g, f, tracepc, &out[n].file, &out[n].line);
            n++;
        }
        child = ic[2];
        if (parentpc < 0 || f->entry + (uint64_t)parentpc >= f->end)
            break;
        tracepc = f->entry + (uint64_t)parentpc;
    }
    out[n].function = pmp_gomod_name(g, f->nameoff);
    out[n].funcid = f->funcid;
    funcline(g, f, tracepc, &out[n].file, &out[n].line);
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

/*
 * symindex.c: per-module indexes for the two lookups every new PC needs,
 * address -> ELF symbol and address -> compilation unit.
 *
 * libdwfl answers both, but dwfl_module_addrinfo scans the whole symbol
 * table for every address (libc6-dbg's .symtab: 10 000 symbols, ~1.2 M
 * instructions a lookup), and the first dwfl_module_addrdie reads every
 * CU of .debug_aranges into a search tree (~7 M instructions for libc).
 * At start-up, that was two thirds of a one-thread snapshot.
 *
 * Here: one pass over the raw symbol table into an array sorted by
 * address (plus a running maximum of symbol ends, so that every symbol
 * containing an address is found by walking back from it), and
 * .debug_aranges parsed into a sorted range array.  The answers are
 * libdwfl's own: the symbols that contain the address are ranked by
 * libdwfl's rules (globals before locals; then its order-dependent
 * preference on address, binding and size, applied in table order), and
 * every case those rules leave to assembly labels or to data we do not
 * index (sizeless symbols, auxiliary tables, section-index extensions,
 * CUs missing from .debug_aranges) is handed to libdwfl itself.
 * tests/unit/test-symindex.c compares both lookups with libdwfl on every
 * symbol of libc, libstdc++ and the test programs.
 *
 * Target memory is not involved: everything read here comes from the
 * module's ELF and debug files, which are bounds-checked like any input.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "symindex.h"

#define WALK_LIMIT 4096     /* entries visited back from an address */
#define MAX_CANDIDATES 64   /* symbols containing one address */

/* A symbol's value (biased as libdwfl biases it) and its index in the
   table; size, name and binding are read from the table itself. */
struct sort_key {
    uint64_t key;
    uint32_t idx;
};

struct cu_range {
    uint64_t lo, len;       /* module-relative (DWARF) addresses */
    uint64_t cu_off;        /* .debug_info offset of the unit header */
};

struct pmp_symindex {
    int sym_state;          /* 0 untried, 1 usable, -1 libdwfl only */
    const Elf64_Sym *syms;  /* the raw table (libelf's, lives with mod) */
    const char *strtab;
    struct sort_key *ents;  /* the indexed symbols, by value */
    uint64_t *maxend;       /* max(value + size) over ents[0..i] */
    size_t nents;
    uint32_t first_global;

    int cu_state;           /* 0 untried, 1 usable, -1 libdwfl only */
    Dwarf *dbg;
    Dwarf_Addr dwbias;
    struct cu_range *cus;
    size_t ncus;

    struct pmp_symindex_stats stats;
};

void
pmp_symindex_get_stats(const struct pmp_symindex *ix,
                       struct pmp_symindex_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (ix)
        *out = ix->stats;
}

void
pmp_symindex_free(struct pmp_symindex *ix)
{
    if (!ix)
        return;
    free(ix->ents);
    free(ix->maxend);
    free(ix->cus);
    free(ix);
}

struct pmp_symindex *
pmp_symindex_new(void)
{
    return calloc(1, sizeof(struct pmp_symindex));
}

static int
bind_rank(unsigned char info)
{
    switch (GELF_ST_BIND(info)) {
    case STB_GLOBAL:
        return 3;
    case STB_WEAK:
        return 2;
    case STB_LOCAL:
        return 1;
    default:
        return 0;
    }
}

/*
 * Sort a[0..n) by key, ties in input order: a stable LSD radix sort,
 * 8-bit digits, all histograms in one pass, digits no two keys differ in
 * skipped.  Returns the sorted array (a, or a buffer: the other one is
 * freed), NULL on OOM (a is freed).  glibc's qsort took 5 M instructions
 * for libc's 10 000 symbols, more than the lookups it saves.
 */
static struct sort_key *
radix_sort(struct sort_key *a, size_t n)
{
    struct sort_key *b = malloc((n + 1) * sizeof(*b));
    size_t (*count)[256] = calloc(8, sizeof(*count));
    size_t i, d;
    uint64_t diff = 0;

    if (!b || !count) {
        free(a);
        a = NULL;
        goto out;
    }
    for (i = 0; i < n; i++)
        diff |= a[i].key ^ a[0].key;
    for (i = 0; i < n; i++)
        for (d = 0; d < 8; d++)
            if ((diff >> (8 * d)) & 0xff)
                count[d][(a[i].key >> (8 * d)) & 0xff]++;
    for (d = 0; d < 8; d++) {
        size_t sum = 0;
        struct sort_key *t;

        if (!((diff >> (8 * d)) & 0xff))
            continue;
        for (i = 0; i < 256; i++) {
            size_t c = count[d][i];
            count[d][i] = sum;
            sum += c;
        }
        for (i = 0; i < n; i++)
            b[count[d][(a[i].key >> (8 * d)) & 0xff]++] = a[i];
        t = a;
        a = b;
        b = t;
    }
out:
    free(b);
    free(count);
    return a;
}

/* The number of elements (of size es, sorted by the uint64_t each starts
   with) whose key is <= x: the index just past the last of them. */
static size_t
upper_bound(const void *base, size_t n, size_t es, uint64_t x)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k;

        memcpy(&k, (const unsigned char *)base + mid * es, 8);
        if (k <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The raw table libdwfl reads for mod: the one section of the symbol
   file with exactly its entry count and first global. */
static Elf_Scn *
find_table(Elf *elf, size_t count, size_t first_global, GElf_Shdr *sh)
{
    static const GElf_Word types[] = {SHT_SYMTAB, SHT_DYNSYM};
    size_t t;

    for (t = 0; t < PMP_ARRAY_SIZE(types); t++) {
        Elf_Scn *scn = NULL;
        size_t n = 0;

        while ((scn = elf_nextscn(elf, scn)) != NULL && n++ < 65536) {
            if (!gelf_getshdr(scn, sh) || sh->sh_type != types[t])
                continue;
            if (sh->sh_entsize == sizeof(Elf64_Sym) &&
                sh->sh_size / sizeof(Elf64_Sym) == count &&
                sh->sh_info == first_global)
                return scn;
        }
    }
    return NULL;
}

static int
build_syms(struct pmp_symindex *ix, Dwfl_Module *mod)
{
    int syments = dwfl_module_getsymtab(mod);
    int first_global = dwfl_module_getsymtab_first_global(mod);
    GElf_Sym s0;
    GElf_Addr a0;
    GElf_Word shndx0;
    Elf *elf = NULL;
    Dwarf_Addr bias = 0;
    GElf_Shdr sh, strsh;
    Elf_Scn *scn, *strscn;
    Elf_Data *data, *strdata;
    const Elf64_Sym *syms;
    unsigned char *alloc = NULL;
    size_t shnum, i, n = 0;
    char *ident;

    if (syments <= 1 || first_global < 0 || first_global > syments)
        return -1;
    if (!dwfl_module_getsym_info(mod, 0, &s0, &a0, &shndx0, &elf, &bias) ||
        !elf || gelf_getclass(elf) != ELFCLASS64)
        return -1;
    /* ebl_func_addr_mask and ebl_resolve_sym_value are identities on
       this target only. */
    ident = elf_getident(elf, NULL);
    if (!ident || ident[EI_DATA] != ELFDATA2LSB)
        return -1;
    {
        GElf_Ehdr eh;
        if (!gelf_getehdr(elf, &eh) || eh.e_machine != EM_X86_64 ||
            eh.e_type == ET_REL)
            return -1;
    }
    scn = find_table(elf, (size_t)syments, (size_t)first_global, &sh);
    if (!scn || !(data = elf_getdata(scn, NULL)) || data->d_type != ELF_T_SYM ||
        data->d_size < (size_t)syments * sizeof(Elf64_Sym))
        return -1;
    strscn = elf_getscn(elf, sh.sh_link);
    if (!strscn || !gelf_getshdr(strscn, &strsh) ||
        !(strdata = elf_getdata(strscn, NULL)) || !strdata->d_buf)
        return -1;
    if (elf_getshdrnum(elf, &shnum) != 0 || shnum > 65536)
        return -1;
    alloc = calloc(shnum ? shnum : 1, 1);
    ix->ents = malloc((size_t)syments * sizeof(*ix->ents));
    if (!alloc || !ix->ents)
        goto fail;
    for (i = 0; i < shnum; i++) {
        GElf_Shdr ssh;
        Elf_Scn *sc = elf_getscn(elf, i);
        /* libdwfl counts an unreadable header as allocated. */
        alloc[i] = !sc || !gelf_getshdr(sc, &ssh) || (ssh.sh_flags & SHF_ALLOC);
    }
    syms = data->d_buf;
    for (i = 1; i < (size_t)syments; i++) {
        const Elf64_Sym *s = &syms[i];
        unsigned type = ELF64_ST_TYPE(s->st_info);
        uint64_t value = s->st_value;

        if (s->st_name >= strdata->d_size ||
            ((const char *)strdata->d_buf)[s->st_name] == '\0' ||
            s->st_shndx == SHN_UNDEF || type == STT_SECTION ||
            type == STT_FILE || type == STT_TLS)
            continue;
        if (s->st_shndx == SHN_XINDEX)
            goto fail;  /* > 65 280 sections: leave it to libdwfl */
        /* libdwfl biases values in allocated sections and in reserved
           ones other than SHN_ABS and SHN_COMMON. */
        if (s->st_shndx < SHN_LORESERVE) {
            if (s->st_shndx >= shnum || alloc[s->st_shndx])
                value += bias;
        } else if (s->st_shndx != SHN_ABS && s->st_shndx != SHN_COMMON) {
            value += bias;
        }
        ix->ents[n].key = value;
        ix->ents[n].idx = (uint32_t)i;
        n++;
    }
    free(alloc);
    alloc = NULL;
    /* Input is in table order: ties stay sorted by index. */
    ix->ents = radix_sort(ix->ents, n);
    ix->maxend = malloc((n + 1) * sizeof(*ix->maxend));
    if (!ix->ents || !ix->maxend)
        goto fail;
    for (i = 0; i < n; i++) {
        uint64_t v = ix->ents[i].key, end = v + syms[ix->ents[i].idx].st_size;
        if (end < v)
            end = UINT64_MAX;
        ix->maxend[i] = i && ix->maxend[i - 1] > end ? ix->maxend[i - 1] : end;
    }
    ix->nents = n;
    ix->syms = syms;
    ix->strtab = strdata->d_buf;
    ix->first_global = (uint32_t)first_global;
    return 0;
fail:
    free(alloc);
    free(ix->ents);
    free(ix->maxend);
    ix->ents = NULL;
    ix->maxend = NULL;
    return -1;
}

/* A candidate: a symbol containing the address. */
struct cand {
    uint64_t value, size;
    uint32_t ndx;
    int bind;
};

/* libdwfl's choice among the symbols containing the address, in table
   order (dwfl_module_addrsym.c: try_sym_value on sized symbols). */
static const struct cand *
rank(const struct cand *c, size_t n)
{
    const struct cand *best = NULL;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct cand *s = &c[i];

        if (!best || best->value < s->value || best->bind < s->bind)
            best = s;
        else if (best->value == s->value &&
                 ((best->size > s->size && best->bind <= s->bind) ||
                  (best->size >= s->size && best->bind < s->bind)))
            best = s;
    }
    return best;
}

static int
cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;

    return x->ndx < y->ndx ? -1 : x->ndx > y->ndx;
}

/* 1: answered (*ndx 0: no symbol; else the symbol and *value), 0: ask
   libdwfl. */
static int
lookup_sym(const struct pmp_symindex *ix, uint64_t addr, uint32_t *ndx,
           uint64_t *value)
{
    struct cand cand[MAX_CANDIDATES];
    const struct cand *best;
    size_t lo, ncand = 0, nglob, steps = 0;
    int sizeless_global_here = 0;

    *ndx = 0;
    lo = upper_bound(ix->ents, ix->nents, sizeof(*ix->ents), addr);
    while (lo-- > 0) {
        const struct sort_key *e = &ix->ents[lo];
        const Elf64_Sym *s = &ix->syms[e->idx];

        if (++steps > WALK_LIMIT)
            return 0;
        if (e->key < addr && ix->maxend[lo] <= addr)
            break;
        if (s->st_size == 0) {
            if (e->key == addr && e->idx >= ix->first_global)
                sizeless_global_here = 1;
            continue;
        }
        if (addr - e->key < s->st_size) {
            if (ncand == MAX_CANDIDATES)
                return 0;
            cand[ncand].value = e->key;
            cand[ncand].size = s->st_size;
            cand[ncand].ndx = e->idx;
            cand[ncand].bind = bind_rank(s->st_info);
            ncand++;
        }
    }
    qsort(cand, ncand, sizeof(cand[0]), cand_cmp);
    for (nglob = 0; nglob < ncand && cand[ncand - 1 - nglob].ndx >= ix->first_global;
         nglob++)
        ;
    /* Globals first; then a sized local, unless a global label at this
       very address may stop libdwfl from looking at locals; no sized
       symbol at all: libdwfl's assembly-label rules decide. */
    if (nglob > 0)
        best = rank(cand + (ncand - nglob), nglob);
    else if (ncand == 0 || sizeless_global_here)
        return 0;
    else
        best = rank(cand, ncand);
    *ndx = best->ndx;
    *value = best->value;
    return 1;
}

const char *
pmp_symindex_addrinfo(struct pmp_symindex *ix, Dwfl_Module *mod,
                      uint64_t addr, uint64_t *off)
{
    uint32_t ndx;
    uint64_t value = 0;
    GElf_Off o = 0;
    GElf_Sym sym;
    const char *name;

    if (ix && ix->sym_state == 0)
        ix->sym_state = build_syms(ix, mod) == 0 ? 1 : -1;
    if (ix && ix->sym_state == 1 && lookup_sym(ix, addr, &ndx, &value)) {
        ix->stats.sym_indexed++;
        if (!ndx)
            return NULL;
        *off = addr - value;
        return ix->strtab + ix->syms[ndx].st_name;
    }
    if (ix)
        ix->stats.sym_libdwfl++;
    name = dwfl_module_addrinfo(mod, addr, &o, &sym, NULL, NULL, NULL);
    *off = o;
    return name;
}

/* ------------------------------------------------------------------ */
/* .debug_aranges, read as libdw and libdwfl read it                  */

/* A little-endian word of n = 2, 4 or 8 bytes (the section is checked
   ELFDATA2LSB; x86_64 is too). */
static uint64_t
get_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    memcpy(&v, p, n);
    return v;
}

/* Every set, or nothing: where libdw would reject the section, libdwfl
   (asked instead) gives its own answer. */
static int
build_cus(struct pmp_symindex *ix, Dwfl_Module *mod)
{
    Dwarf_Addr bias = 0;
    Dwarf *dbg = dwfl_module_getdwarf(mod, &bias);
    Elf *elf;
    GElf_Shdr sh;
    Elf_Scn *scn;
    Elf_Data *data;
    const unsigned char *p, *end;
    size_t cap = 0, n = 0;
    char *ident;

    if (!dbg || !(elf = dwarf_getelf(dbg)))
        return -1;
    ident = elf_getident(elf, NULL);
    if (!ident || ident[EI_DATA] != ELFDATA2LSB)
        return -1;
    scn = pmp_elf_section(elf, ".debug_aranges", &sh);
    if (!scn || (sh.sh_flags & SHF_COMPRESSED) ||
        !(data = elf_getdata(scn, NULL)) || !data->d_buf || data->d_size == 0)
        return -1;
    /* At most one range per 16 bytes of the section. */
    cap = data->d_size / 16;
    ix->cus = malloc((cap + 1) * sizeof(*ix->cus));
    if (!ix->cus)
        return -1;
    p = data->d_buf;
    end = p + data->d_size;
    while (p < end) {
        const unsigned char *set = p;
        uint64_t len, cu_off;
        size_t offsz = 4, hdr;

        if (end - p < 4)
            goto bad;
        len = get_le(p, 4);
        p += 4;
        if (len == 0xffffffffu) {
            if (end - p < 8)
                goto bad;
            p += 8;
            offsz = 8;
        } else if (len >= 0xfffffff0u) {
            goto bad;
        }
        if (end - p < (ptrdiff_t)(2 + offsz + 2) || get_le(p, 2) != 2)
            goto bad;
        cu_off = get_le(p + 2, offsz);
        if (p[2 + offsz] != 8 || p[3 + offsz] != 0)
            goto bad;   /* 4-byte addresses, segments: libdw's reading */
        hdr = (size_t)(p + 4 + offsz - set);
        hdr = (hdr + 15) & ~(size_t)15;
        if (hdr > (size_t)(end - set))
            goto bad;
        for (p = set + hdr;; p += 16) {
            uint64_t lo, l;

            if (end - p < 16)
                goto bad;
            lo = get_le(p, 8);
            l = get_le(p + 8, 8);
            if (lo == 0 && l == 0) {
                p += 16;
                break;
            }
            if (n == cap)
                goto bad;
            ix->cus[n].lo = lo;
            ix->cus[n].len = l;
            ix->cus[n].cu_off = cu_off;
            n++;
        }
    }
    if (n == 0)
        goto bad;
    {
        /* Stable: ties keep the section's order, as libdw's sort (glibc's
           merge sort) does. */
        struct sort_key *k = malloc(n * sizeof(*k));
        struct cu_range *sorted = malloc(n * sizeof(*sorted));
        size_t i;

        if (k)
            for (i = 0; i < n; i++) {
                k[i].key = ix->cus[i].lo;
                k[i].idx = (uint32_t)i;
            }
        if (k && n <= UINT32_MAX)
            k = radix_sort(k, n);
        if (!k || !sorted) {
            free(k);
            free(sorted);
            goto bad;
        }
        for (i = 0; i < n; i++)
            sorted[i] = ix->cus[k[i].idx];
        free(k);
        free(ix->cus);
        ix->cus = sorted;
    }
    ix->ncus = n;
    ix->dbg = dbg;
    ix->dwbias = bias;
    return 0;
bad:
    free(ix->cus);
    ix->cus = NULL;
    return -1;
}

static int
cu_die(Dwarf *dbg, uint64_t cu_off, Dwarf_Die *out)
{
    Dwarf_Off next;
    size_t hsize;
    int tag;

    if (dwarf_next_unit(dbg, cu_off, &next, &hsize, NULL, NULL, NULL, NULL,
                        NULL, NULL) != 0 ||
        !dwarf_offdie(dbg, cu_off + hsize, out))
        return -1;
    tag = dwarf_tag(out);
    return tag == DW_TAG_compile_unit || tag == DW_TAG_partial_unit ? 0 : -1;
}

/*
 * libdwfl's rule (cu.c): the unit of the last range that starts at or
 * below the address (gaps between ranges belong to the unit before),
 * except past the end of the very last range.  1: answered (*out: the
 * unit's DIE in mem, or NULL: no unit), 0: ask libdwfl.
 */
static int
lookup_cu(const struct pmp_symindex *ix, uint64_t addr, Dwarf_Die *mem,
          Dwarf_Die **out)
{
    uint64_t a = addr - ix->dwbias;
    size_t lo = upper_bound(ix->cus, ix->ncus, sizeof(*ix->cus), a);
    const struct cu_range *r;

    *out = NULL;
    if (lo == 0)
        return 1;
    r = &ix->cus[lo - 1];
    if (lo == ix->ncus && a - r->lo > r->len)
        return 1;
    if (cu_die(ix->dbg, r->cu_off, mem) != 0)
        return 0;
    *out = mem;
    return 1;
}

Dwarf_Die *
pmp_symindex_addrdie(struct pmp_symindex *ix, Dwfl_Module *mod, uint64_t addr,
                     Dwarf_Die *mem, Dwarf_Addr *bias)
{
    Dwarf_Die *die;

    if (ix && ix->cu_state == 0)
        ix->cu_state = build_cus(ix, mod) == 0 ? 1 : -1;
    if (ix && ix->cu_state == 1 && lookup_cu(ix, addr, mem, &die)) {
        ix->stats.cu_indexed++;
        if (die)
            *bias = ix->dwbias;
        return die;
    }
    if (ix)
        ix->stats.cu_libdwfl++;
    return dwfl_module_addrdie(mod, addr, bias);
}

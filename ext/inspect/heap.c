/*
 * heap.c: glibc malloc seen from outside: arenas, heaps, bins, fastbins,
 * top, the mmap counters — enough to compute the process's own mallinfo2()
 * and malloc_stats() without running a line of code in it.
 *
 * Owns: finding libc and its version, main_arena and mp_ (from libc's
 * symbols when its debug info is there, else from the code and data of
 * the stripped libc: the first RIP-relative lea in the exported
 * mallinfo2() (mallinfo() before 2.33) and the untouched mp_ initialiser
 * in .data), and bounded, checked walks of the arena ring, heaps, bin
 * lists and tcaches.  What differs between glibc releases is a row of
 * layout-glibc-malloc.h (x86_64: 2.31, 2.36, 2.41, 2.43), checked against
 * libc's DWARF when present; a version without a row is refused with its
 * name, never guessed.
 *
 * Must not: trust target memory.  Every list is bounded and loop-checked,
 * every pointer aligned and readable before use; a problem becomes an
 * error line with its address and the walk goes on with the next list.
 */
#define _GNU_SOURCE 1   /* memmem */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmprof-internal.h"

#include "layout-glibc-malloc.h"

/* Version-independent (x86_64, LP64): chunk header and flags, alignment. */
#define HEAP_MAX_SIZE (64ull << 20)
#define CHUNK_SIZE_MASK (~(uint64_t)7)
#define MINSIZE 32
#define MAX_ARENAS 4096
#define MAX_HEAPS_PER_ARENA 65536
#define NBINS 128
#define NFASTBINS_MAX 10
#define MS_SIZE_MAX 2200
#define MP_SIZE_MAX 144
#define R_X86_64_TPOFF64_ 18

typedef struct pmp_glibc_malloc layout_t;

/* What a chunk that looks in use (PREV_INUSE set in the next one) is. */
enum cached_kind { CK_FAST = 1, CK_TCACHE = 2, CK_TCSTRUCT = 3 };

/* Fast path of the chunk walk: in-use chunks of fastbin sizes, with the
   word where a fastbin chunk keeps its fd, so the fastbin chains can be
   followed without reading the heap a second time. */
struct smalls {
    uint64_t *addr, *fd;
    uint8_t *sz16;                /* size >> 4; 0 once claimed by a fastbin */
    size_t n, cap;
    struct { size_t from, to; } seg[1024];   /* ascending runs (one per heap) */
    size_t nseg;
    size_t last;                  /* index of the last hit (galloping) */
};

/* The free chunks of the arena being walked (summary walk): classified
   after the walk, once the unsorted list is known. */
struct frees {
    uint64_t *addr, *fd, *bk, *raw;   /* raw: the size word */
    uint8_t *unsorted;                /* on the unsorted list */
    size_t n, cap;
    int sorted;                       /* addresses ascending */
    size_t last;                      /* index of the last hit (galloping) */
};

struct window {                   /* bulk reads for the chunk walk */
    uint64_t base;
    size_t len;
    const unsigned char *view;    /* buf, or the core's own mapping */
    unsigned char *buf;
};

/* A chunk that looks in use but is not the program's. */
struct cached {
    uint64_t addr;                /* chunk address */
    int kind;                     /* enum cached_kind */
};

#define HIST_DIRECT 4096          /* sizes below 64 KiB: direct index */

struct walk {
    const layout_t *L;            /* the target's glibc */
    struct pmp_target *t;
    struct pmp_heap *h;
    struct cached *cached;        /* sorted by address before the walk */
    size_t ncached, cached_cap;
    size_t cursor;                /* walk_range's position in cached */
    uint32_t *hist_direct;        /* size >> 4 -> index + 1 in h->sizes */
    int lists;                    /* bins and fastbins from their lists */
    struct smalls sm;
    struct frees fr;
    int binpos[NBINS];            /* current arena: bin index -> pos + 1 */
    struct pmp_u64map hist;       /* larger sizes -> index + 1 */
    size_t sizes_cap;
    struct window win;
};

static void
cached_add(struct walk *w, uint64_t addr, int kind)
{
    if (pmp_grow((void **)&w->cached, &w->cached_cap, w->ncached + 1,
                 sizeof(*w->cached)))
        return;
    w->cached[w->ncached].addr = addr;
    w->cached[w->ncached].kind = kind;
    w->ncached++;
}

static int
cmp_cached(const void *a, const void *b)
{
    const struct cached *x = a, *y = b;

    return (x->addr > y->addr) - (x->addr < y->addr);
}

/* The cached kind of chunk p; p only grows within one walk_range. */
static int
cached_at(struct walk *w, uint64_t p)
{
    while (w->cursor < w->ncached && w->cached[w->cursor].addr < p)
        w->cursor++;
    return w->cursor < w->ncached && w->cached[w->cursor].addr == p
               ? w->cached[w->cursor].kind
               : 0;
}

/* Position the cursor at the first cached chunk >= a. */
static void
cached_seek(struct walk *w, uint64_t a)
{
    size_t lo = 0, hi = w->ncached;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->cached[mid].addr < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    w->cursor = lo;
}

static void
herr(struct pmp_heap *h, uint64_t addr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
herr(struct pmp_heap *h, uint64_t addr, const char *fmt, ...)
{
    va_list ap;
    struct pmp_heap_error *e;

    if (h->nerrors >= PMP_HEAP_MAX_ERRORS) {
        h->errors_dropped++;
        return;
    }
    e = &h->errors[h->nerrors++];
    e->addr = addr;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

static int
rd64(struct pmp_target *t, uint64_t addr, uint64_t *v)
{
    /* A core: the word in place (the bin walks read ~2 M of them). */
    if (t->ops->peek && !t->overlay) {
        const void *p = t->ops->peek(t, addr, 8);
        if (p) {
            memcpy(v, p, 8);
            return 1;
        }
    }
    return pmp_target_read_u64(t, addr, v, NULL) == 0;
}

/* ---- finding libc, its version, main_arena and mp_ ---- */

/* The libc symbols heap.c uses, found in one pass over the symbol table
   (main_arena and mp_ are LOCAL: only libc's debug info has them). */
struct libc_syms {
    uint64_t main_arena, main_arena_size;
    uint64_t mp, mp_size;
    uint64_t anchor, anchor_size;     /* the row's anchor_fn */
};

static void
find_libc_syms(Dwfl_Module *mod, const char *anchor_fn, struct libc_syms *ls)
{
    int n = dwfl_module_getsymtab(mod), i;

    memset(ls, 0, sizeof(*ls));
    for (i = 1; i < n && i < 10000000; i++) {
        GElf_Sym sy;
        GElf_Addr a = 0;
        const char *nm =
            dwfl_module_getsym_info(mod, i, &sy, &a, NULL, NULL, NULL);
        if (!nm || !a)
            continue;
        if (!ls->main_arena && strcmp(nm, "main_arena") == 0) {
            ls->main_arena = a;
            ls->main_arena_size = sy.st_size;
        } else if (!ls->mp && strcmp(nm, "mp_") == 0) {
            ls->mp = a;
            ls->mp_size = sy.st_size;
        } else if (!ls->anchor && strcmp(nm, anchor_fn) == 0) {
            ls->anchor = a;
            ls->anchor_size = sy.st_size;
        }
    }
}

/* ---- the layout table checked against libc's DWARF ---- */

/* A row's member: its offset is the int at `field` in the row (-1 when
   the row says the member does not exist); `name_field` names a member
   whose name changed between releases. */
struct member_check {
    const char *type, *member;
    size_t field;
    size_t name_field;            /* 0: member is the name */
};

#define ROW(f) offsetof(struct pmp_glibc_malloc, f)

/* Every offset the walk relies on. */
static const struct member_check layout_members[] = {
    {"malloc_state", "flags", ROW(ms_flags), 0},
    {"malloc_state", "fastbinsY", ROW(ms_fastbins), 0},
    {"malloc_state", "top", ROW(ms_top), 0},
    {"malloc_state", "bins", ROW(ms_bins), 0},
    {"malloc_state", "next", ROW(ms_next), 0},
    {"malloc_state", "next_free", ROW(ms_next_free), 0},
    {"malloc_state", "attached_threads", ROW(ms_attached), 0},
    {"malloc_state", "system_mem", ROW(ms_system_mem), 0},
    {"malloc_state", "max_system_mem", ROW(ms_max_system_mem), 0},
    {"malloc_par", "trim_threshold", ROW(mp_trim_threshold), 0},
    {"malloc_par", "mmap_threshold", ROW(mp_mmap_threshold), 0},
    {"malloc_par", "n_mmaps", ROW(mp_n_mmaps), 0},
    {"malloc_par", "max_n_mmaps", ROW(mp_max_n_mmaps), 0},
    {"malloc_par", "mmapped_mem", ROW(mp_mmapped_mem), 0},
    {"malloc_par", "max_mmapped_mem", ROW(mp_max_mmapped_mem), 0},
    {"malloc_par", "sbrk_base", ROW(mp_sbrk_base), 0},
    {"malloc_par", NULL, ROW(mp_tcache_bins), ROW(mp_tcache_bins_name)},
    {"malloc_par", "tcache_max_bytes", ROW(mp_tcache_max_bytes), 0},
    {"malloc_par", "tcache_count", ROW(mp_tcache_count), 0},
    {"_heap_info", "prev", ROW(hi_prev), 0},
    {"_heap_info", "size", ROW(hi_heap_size), 0},
    {"_heap_info", "mprotect_size", ROW(hi_mprotect), 0},
    {"tcache_perthread_struct", NULL, ROW(tc_counts), ROW(tc_counts_name)},
    {"tcache_perthread_struct", "entries", ROW(tc_entries), 0},
};

/* ... and the sizes of the structs. */
static const struct {
    const char *type;
    size_t field;
} layout_sizes[] = {
    {"malloc_state", ROW(ms_size)},
    {"malloc_par", ROW(mp_size)},
    {"_heap_info", ROW(hi_size)},
    {"tcache_perthread_struct", ROW(tc_sizeof)},
};

static int
row_int(const layout_t *L, size_t field)
{
    int v;

    memcpy(&v, (const char *)L + field, sizeof(v));
    return v;
}

static const char *
row_str(const layout_t *L, size_t field)
{
    const char *v;

    memcpy(&v, (const char *)L + field, sizeof(v));
    return v;
}

/* The row of glibc `version`, or NULL. */
static const layout_t *
layout_for(const char *version)
{
    size_t i;

    for (i = 0; i < PMP_ARRAY_SIZE(pmp_glibc_malloc_layouts); i++)
        if (strcmp(pmp_glibc_malloc_layouts[i].version, version) == 0)
            return &pmp_glibc_malloc_layouts[i];
    return NULL;
}

static long
member_offset(Dwarf_Die *st, const char *member)
{
    Dwarf_Die m;
    Dwarf_Attribute at;
    Dwarf_Word off;

    if (dwarf_child(st, &m) != 0)
        return -1;
    do {
        const char *nm = dwarf_diename(&m);
        if (dwarf_tag(&m) == DW_TAG_member && nm && strcmp(nm, member) == 0) {
            if (dwarf_attr(&m, DW_AT_data_member_location, &at) &&
                dwarf_formudata(&at, &off) == 0)
                return (long)off;
            return -2;
        }
    } while (dwarf_siblingof(&m, &m) == 0);
    return -1;
}

/* The TLS offset of variable die (DW_OP_const* x; push_tls_address), or
   -1. */
static long
tls_offset(Dwarf_Die *die)
{
    Dwarf_Attribute at;
    Dwarf_Op *ops;
    size_t nops;

    if (!dwarf_attr(die, DW_AT_location, &at) ||
        dwarf_getlocation(&at, &ops, &nops) != 0 || nops != 2 ||
        (ops[1].atom != DW_OP_GNU_push_tls_address &&
         ops[1].atom != DW_OP_form_tls_address))
        return -1;
    return (long)ops[0].number;
}

/* One struct DIE (or the tcache variable) of malloc.c against row L:
   counts what it checked; -1 with msg on a difference. */
static int
check_die(const layout_t *L, Dwarf_Die *die, size_t *checked, char *msg,
          size_t msglen)
{
    const char *tn = dwarf_diename(die);
    size_t k;

    if (!tn || dwarf_hasattr(die, DW_AT_declaration))
        return 0;
    if (dwarf_tag(die) == DW_TAG_variable && strcmp(tn, "tcache") == 0) {
        long got = tls_offset(die);
        if (got < 0)
            return 0;
        (*checked)++;
        if (got != L->tc_tls) {
            snprintf(msg, msglen,
                     "libc's DWARF puts tcache at TLS offset %ld, the %s "
                     "table at %d",
                     got, L->version, L->tc_tls);
            return -1;
        }
        return 0;
    }
    if (dwarf_tag(die) != DW_TAG_structure_type)
        return 0;
    for (k = 0; k < PMP_ARRAY_SIZE(layout_sizes); k++) {
        Dwarf_Attribute at;
        Dwarf_Word sz;
        if (strcmp(layout_sizes[k].type, tn) != 0 ||
            !dwarf_attr(die, DW_AT_byte_size, &at) ||
            dwarf_formudata(&at, &sz) != 0)
            continue;
        (*checked)++;
        if ((long)sz != row_int(L, layout_sizes[k].field)) {
            snprintf(msg, msglen,
                     "libc's DWARF gives struct %s %lu bytes, the %s table "
                     "%d",
                     tn, (unsigned long)sz, L->version,
                     row_int(L, layout_sizes[k].field));
            return -1;
        }
    }
    for (k = 0; k < PMP_ARRAY_SIZE(layout_members); k++) {
        const struct member_check *c = &layout_members[k];
        const char *mn = c->name_field ? row_str(L, c->name_field) : c->member;
        int want = row_int(L, c->field);
        long got;

        if (strcmp(c->type, tn) != 0)
            continue;
        got = member_offset(die, mn);
        (*checked)++;
        if (got != want) {
            if (got < 0 && want >= 0)
                snprintf(msg, msglen,
                         "libc's DWARF has no %s.%s, the %s table puts it "
                         "at %d",
                         tn, mn, L->version, want);
            else if (want < 0)
                snprintf(msg, msglen,
                         "libc's DWARF has %s.%s, the %s table has not", tn,
                         mn, L->version);
            else
                snprintf(msg, msglen,
                         "libc's DWARF puts %s.%s at %ld, the %s table at "
                         "%d",
                         tn, mn, got, L->version, want);
            return -1;
        }
    }
    return 0;
}

/*
 * With libc's debug info: read the struct layouts (and tcache's TLS
 * offset) of malloc/malloc.c's compile unit and compare them with row L.
 * Returns 1 agree (every check made), 0 no DWARF (or not all of it),
 * -1 disagree (msg says where).
 */
static int
check_layout_dwarf(Dwfl_Module *mod, const layout_t *L, char *msg,
                   size_t msglen)
{
    Dwarf_Addr bias = 0;
    Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
    Dwarf_Off off = 0, next;
    size_t hsize, checked = 0;
    int ncu = 0;

    if (!dw)
        return 0;
    while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0 &&
           ncu++ < 100000) {
        Dwarf_Die cu, die;
        const char *name;

        if (!dwarf_offdie(dw, off + hsize, &cu)) {
            off = next;
            continue;
        }
        off = next;
        name = dwarf_diename(&cu);
        if (!name)
            continue;
        {
            const char *b = strrchr(name, '/');
            if (strcmp(b ? b + 1 : name, "malloc.c") != 0)
                continue;
        }
        if (dwarf_child(&cu, &die) != 0)
            break;
        do {
            if (check_die(L, &die, &checked, msg, msglen) < 0)
                return -1;
        } while (dwarf_siblingof(&die, &die) == 0);
        break;
    }
    /* "checked" only when every member, size and the TLS offset was */
    return checked >= PMP_ARRAY_SIZE(layout_members) +
                          PMP_ARRAY_SIZE(layout_sizes) + 1
               ? 1
               : 0;
}

/* The first `lea disp32(%rip), reg` (REX.W 8D /r, mod 00 rm 101) of the
   row's exported anchor function (mallinfo2, or mallinfo before 2.33):
   it loads &main_arena first. */
static uint64_t
main_arena_from_lea(struct pmp_target *t, uint64_t fn, uint64_t sz)
{
    uint64_t i;
    unsigned char code[256];

    if (!fn)
        return 0;
    if (sz == 0 || sz > sizeof(code))
        sz = sizeof(code);
    if (pmp_target_read(t, fn, code, (size_t)sz, NULL) != 0)
        return 0;
    for (i = 0; i + 7 <= sz; i++) {
        if ((code[i] == 0x48 || code[i] == 0x4c) && code[i + 1] == 0x8d &&
            (code[i + 2] & 0xc7) == 0x05) {
            int32_t disp;
            memcpy(&disp, code + i + 3, 4);
            return fn + i + 7 + (uint64_t)(int64_t)disp;
        }
    }
    return 0;
}

/* mp_'s default initialiser in libc's .data on disk: trim_threshold,
   top_pad, mmap_threshold 128 KiB, arena_test 8, arena_max 0, and the
   row's tcache_bins, tcache_max_bytes, tcache_count defaults where the row
   puts them. */
static uint64_t
mp_from_data(const layout_t *L, Elf *elf, uint64_t bias)
{
    GElf_Shdr sh;
    Elf_Scn *scn = pmp_elf_section(elf, ".data", &sh);
    Elf_Data *d;
    size_t off;

    if (!scn || sh.sh_type != SHT_PROGBITS ||
        !(d = elf_getdata(scn, NULL)) || !d->d_buf ||
        d->d_size < (size_t)L->mp_size)
        return 0;
    for (off = 0; off + (size_t)L->mp_size <= d->d_size; off += 8) {
        const unsigned char *p = (const unsigned char *)d->d_buf + off;
        if (pmp_u64at(p, 0) == 131072 && pmp_u64at(p, 8) == 131072 &&
            pmp_u64at(p, 16) == 131072 && pmp_u64at(p, 24) == 8 &&
            pmp_u64at(p, 32) == 0 &&
            pmp_u64at(p, (size_t)L->mp_tcache_bins) == L->def_tcache_bins &&
            pmp_u64at(p, (size_t)L->mp_tcache_max_bytes) ==
                L->def_tcache_max_bytes &&
            pmp_u64at(p, (size_t)L->mp_tcache_count) == L->def_tcache_count)
            return bias + sh.sh_addr + off;
    }
    return 0;
}

/* A plausible malloc_state at a: its ring must come back to it. */
static int
arena_ring_closes(const layout_t *L, struct pmp_target *t, uint64_t a)
{
    uint64_t cur = a, next;
    int i;

    for (i = 0; i < MAX_ARENAS; i++) {
        if (!rd64(t, cur + (uint64_t)L->ms_next, &next) || next == 0 ||
            (next & 7))
            return 0;
        if (next == a)
            return 1;
        cur = next;
    }
    return 0;
}

/* ---- bins ---- */

/* A singly linked fd/next word as stored at pos: safe-linked (2.32+),
   else the pointer itself. */
static uint64_t
reveal(const layout_t *L, uint64_t pos, uint64_t ptr)
{
    return L->safe_linking ? (pos >> 12) ^ ptr : ptr;
}

static void
walk_fastbins(struct walk *w, struct pmp_heap_arena *ar,
              const unsigned char *ms)
{
    int i;
    uint64_t cap = ar->system_mem / MINSIZE + 1;

    for (i = 0; i < w->L->nfastbins; i++) {
        uint64_t slot = ar->addr + (uint64_t)w->L->ms_fastbins + 8 * (uint64_t)i;
        uint64_t p = pmp_u64at(ms, (size_t)w->L->ms_fastbins + 8 * (size_t)i);
        uint64_t slow = p, n = 0;

        while (p) {
            uint64_t size, fd;
            if (p & 15) {
                herr(w->h, p, "arena 0x%llx fastbin %d: misaligned chunk",
                     (unsigned long long)ar->addr, i);
                break;
            }
            if (!rd64(w->t, p + 8, &size) || !rd64(w->t, p + 16, &fd)) {
                herr(w->h, p, "arena 0x%llx fastbin %d: unreadable chunk",
                     (unsigned long long)ar->addr, i);
                break;
            }
            size &= CHUNK_SIZE_MASK;
            if ((size >> 4) - 2 != (uint64_t)i) {
                herr(w->h, p,
                     "arena 0x%llx fastbin %d: chunk of size %llu in the "
                     "wrong bin",
                     (unsigned long long)ar->addr, i,
                     (unsigned long long)size);
                break;
            }
            ar->fast_count++;
            ar->fast_bytes += size;
            ar->fast_by_bin[i]++;
            cached_add(w, p, CK_FAST);
            if (++n > cap) {
                herr(w->h, p, "arena 0x%llx fastbin %d: loop",
                     (unsigned long long)ar->addr, i);
                break;
            }
            p = reveal(w->L, p + 16, fd);
            /* Floyd: the slow pointer moves every other step. */
            if (n % 2 == 0) {
                uint64_t sfd;
                if (!rd64(w->t, slow + 16, &sfd))
                    break;
                slow = reveal(w->L, slow + 16, sfd);
                if (slow == p && p) {
                    herr(w->h, p, "arena 0x%llx fastbin %d: loop",
                         (unsigned long long)ar->addr, i);
                    break;
                }
            }
        }
        (void)slot;
    }
}

static void
cached_add(struct walk *w, uint64_t addr, int kind);

/* Count chunk `raw` (its size word, flag bits included) into bin b: the
   figures malloc_info prints, with and without the flag bits. */
static void
bin_add(struct pmp_heap_bin *b, uint64_t raw)
{
    uint64_t size = raw & CHUNK_SIZE_MASK;

    b->count++;
    b->bytes += size;
    if (!b->min || size < b->min)
        b->min = size;
    if (size > b->max)
        b->max = size;
    b->raw_bytes += raw;
    if (!b->raw_min || raw < b->raw_min)
        b->raw_min = raw;
    if (raw > b->raw_max)
        b->raw_max = raw;
}

/* Record bin `index` of ar from the figures a list walk gathered in acc
   (nothing for an empty one). */
static void
bin_store(struct pmp_heap_arena *ar, int index, const struct pmp_heap_bin *acc)
{
    struct pmp_heap_bin *b;

    if (!acc->count || ar->nbins >= PMP_HEAP_MAX_BINS)
        return;
    b = &ar->bins[ar->nbins++];
    *b = *acc;
    b->index = index;
    ar->bin_count += acc->count;
    ar->bin_bytes += acc->bytes;
    if (acc->max > ar->largest_free)
        ar->largest_free = acc->max;
}

static void
walk_bins(struct walk *w, struct pmp_heap_arena *ar)
{
    int i;
    uint64_t cap = ar->system_mem / MINSIZE + 1;

    for (i = 1; i < NBINS - 1; i++) {
        /* bin_at(i): a pseudo-chunk whose fd/bk are bins[2(i-1)], +1 */
        uint64_t head =
            ar->addr + (uint64_t)w->L->ms_bins + 16 * (uint64_t)(i - 1) - 16;
        uint64_t p, prev = head;
        struct pmp_heap_bin acc = {0};

        if (!rd64(w->t, head + 16, &p)) {
            herr(w->h, head, "arena 0x%llx bin %d: unreadable",
                 (unsigned long long)ar->addr, i);
            continue;
        }
        while (p != head) {
            uint64_t raw, bk, size;
            if ((p & 15) || !rd64(w->t, p + 8, &raw) ||
                !rd64(w->t, p + 24, &bk)) {
                herr(w->h, p, "arena 0x%llx bin %d: %s chunk",
                     (unsigned long long)ar->addr, i,
                     (p & 15) ? "misaligned" : "unreadable");
                break;
            }
            if (bk != prev) {
                herr(w->h, p,
                     "arena 0x%llx bin %d: chunk's bk 0x%llx is not the "
                     "previous chunk 0x%llx",
                     (unsigned long long)ar->addr, i,
                     (unsigned long long)bk, (unsigned long long)prev);
                break;
            }
            size = raw & CHUNK_SIZE_MASK;
            if (size < MINSIZE || size > ar->system_mem + HEAP_MAX_SIZE) {
                herr(w->h, p, "arena 0x%llx bin %d: bad size %llu",
                     (unsigned long long)ar->addr, i,
                     (unsigned long long)size);
                break;
            }
            bin_add(&acc, raw);
            if (acc.count > cap) {
                herr(w->h, p, "arena 0x%llx bin %d: loop",
                     (unsigned long long)ar->addr, i);
                break;
            }
            prev = p;
            if (!rd64(w->t, p + 16, &p)) {
                herr(w->h, prev, "arena 0x%llx bin %d: unreadable fd",
                     (unsigned long long)ar->addr, i);
                break;
            }
        }
        bin_store(ar, i, &acc);
    }
}

static void
walk_heaps(struct walk *w, struct pmp_heap_arena *ar)
{
    uint64_t h = ar->top & ~(HEAP_MAX_SIZE - 1);
    int n = 0;

    while (h && n < MAX_HEAPS_PER_ARENA) {
        unsigned char hi[48];
        if (pmp_target_read(w->t, h, hi, sizeof(hi), NULL) != 0) {
            herr(w->h, h, "arena 0x%llx: heap_info unreadable",
                 (unsigned long long)ar->addr);
            break;
        }
        if (pmp_u64at(hi, 0) != ar->addr) {        /* ar_ptr */
            herr(w->h, h, "arena 0x%llx: heap_info's arena is 0x%llx",
                 (unsigned long long)ar->addr,
                 (unsigned long long)pmp_u64at(hi, 0));
            break;
        }
        if (ar->nheaps < PMP_HEAP_MAX_HEAPS) {
            ar->heaps[ar->nheaps].addr = h;
            ar->heaps[ar->nheaps].size =
                pmp_u64at(hi, (size_t)w->L->hi_heap_size);
            ar->heaps[ar->nheaps].mprotect_size =
                pmp_u64at(hi, (size_t)w->L->hi_mprotect);
        }
        ar->nheaps++;
        n++;
        h = pmp_u64at(hi, (size_t)w->L->hi_prev);
        if (h & (HEAP_MAX_SIZE - 1)) {
            herr(w->h, h, "arena 0x%llx: heap prev pointer misaligned",
                 (unsigned long long)ar->addr);
            break;
        }
    }
}

static int
walk_arena(struct walk *w, uint64_t a, int is_main, int lists)
{
    const layout_t *L = w->L;
    unsigned char ms[MS_SIZE_MAX];
    struct pmp_heap_arena *ar;
    uint64_t topsize;

    if (pmp_target_read(w->t, a, ms, (size_t)L->ms_size, NULL) != 0) {
        herr(w->h, a, "arena unreadable");
        return -1;
    }
    if (pmp_grow((void **)&w->h->arenas, &w->h->arenas_cap,
                 w->h->narenas + 1, sizeof(*w->h->arenas)))
        return PMP_E_NOMEM;
    ar = &w->h->arenas[w->h->narenas++];
    memset(ar, 0, sizeof(*ar));
    ar->addr = a;
    ar->is_main = is_main;
    ar->flags = pmp_u32at(ms, (size_t)L->ms_flags);
    ar->top = pmp_u64at(ms, (size_t)L->ms_top);
    ar->next_free = pmp_u64at(ms, (size_t)L->ms_next_free);
    ar->attached_threads = pmp_u64at(ms, (size_t)L->ms_attached);
    ar->system_mem = pmp_u64at(ms, (size_t)L->ms_system_mem);
    ar->max_system_mem = pmp_u64at(ms, (size_t)L->ms_max_system_mem);
    if (ar->top && rd64(w->t, ar->top + 8, &topsize))
        ar->top_size = topsize & CHUNK_SIZE_MASK;
    else if (ar->top)
        herr(w->h, ar->top, "arena 0x%llx: top chunk unreadable",
             (unsigned long long)a);
    ar->largest_free = ar->top_size;
    {
        int k;
        for (k = 0; k < L->nfastbins; k++)
            ar->fast_head[k] =
                pmp_u64at(ms, (size_t)L->ms_fastbins + 8 * (size_t)k);
    }
    if (lists) {
        walk_fastbins(w, ar, ms);
        walk_bins(w, ar);
    }
    /* Summary: every bin comes from the chunk walk (the unsorted list is
       followed afterwards through the words it recorded, settle_frees). */
    if (!is_main && ar->top)
        walk_heaps(w, ar);
    else if (is_main)
        ar->nheaps = ar->system_mem ? 1 : 0;
    return 0;
}


/* ---- tcaches (per thread, through TLS) ---- */

/* ld.so wrote tcache's thread-pointer offset into libc's GOT slot of the
   R_X86_64_TPOFF64 relocation (symbol 0, addend = its TLS offset). */
static int
tcache_tpoff(const layout_t *L, struct pmp_target *t, Elf *elf, uint64_t bias,
             int64_t *out)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        Elf_Data *d;
        size_t i, n;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA ||
            !sh.sh_entsize)
            continue;
        d = elf_getdata(scn, NULL);
        if (!d)
            continue;
        n = sh.sh_size / sh.sh_entsize;
        for (i = 0; i < n && i < 1000000; i++) {
            GElf_Rela r;
            uint64_t v;
            if (!gelf_getrela(d, (int)i, &r))
                break;
            if (GELF_R_TYPE(r.r_info) != R_X86_64_TPOFF64_ ||
                GELF_R_SYM(r.r_info) != 0 || r.r_addend != L->tc_tls)
                continue;
            if (!rd64(t, bias + r.r_offset, &v))
                return 0;
            *out = (int64_t)v;
            return 1;
        }
    }
    return 0;
}

/* The tcache bin of chunk size sz: small bins by 16 bytes; 2.42+ large
   bins by power of two (glibc's large_csize2tidx); -1 if none. */
static int
tcache_bin_of(const layout_t *L, uint64_t sz)
{
    uint64_t small = (sz - MINSIZE) / 16;
    int b = 64, top = 10;     /* MAX_TCACHE_SMALL_SIZE 1040: bit 10 */

    if (sz < MINSIZE || (sz & 15))
        return -1;
    if (small < 64)
        return (int)small;
    while (b < L->tc_bins) {
        if (sz >> (top + 1) == 0)
            return b;
        b++;
        top++;
    }
    return -1;
}

/* Whether a lies in a file-backed mapping (libc's own data, say: never
   a chunk of the heap). */
static int
in_file_mapping(struct pmp_target *t, uint64_t a)
{
    const struct pmp_mapping *maps = NULL;
    size_t nm = 0, i;

    if (t->ops->mappings(t, &maps, &nm, NULL) != 0)
        return 0;
    for (i = 0; i < nm; i++)
        if (a >= maps[i].start && a < maps[i].end)
            return maps[i].path && maps[i].path[0] == '/';
    return 0;
}

/*
 * Whether the chunk c (size word csize) can hold a thread's tcache struct:
 * in use (PREV_INUSE in the next chunk), not mmapped, at least the struct's
 * chunk.  tcache_init's _int_malloc may return a larger chunk whole: with
 * no free chunk of the struct's size, the smallest larger one is not split
 * when the rest would be under MINSIZE (mariadb: a 0x2a0 chunk holding
 * 2.36's 0x290 struct).  The chunk walk then checks that c is a chunk of
 * an arena's heap (tcache_arenas).
 */
static int
tcache_chunk_ok(const layout_t *L, struct pmp_target *t, uint64_t c,
                uint64_t csize)
{
    uint64_t sz = csize & CHUNK_SIZE_MASK, next;

    if ((csize & 2) || sz < L->tc_chunk || sz >= HEAP_MAX_SIZE)
        return 0;
    return rd64(t, c + sz + 8, &next) && (next & 1);
}

/* After the chunk walk: each tcache struct must have been met as a chunk
   of an arena's heap (which sets its arena), unless a walk stopped early. */
static void
tcache_arenas(struct walk *w)
{
    struct pmp_heap *h = w->h;
    size_t i;

    for (i = 0; i < h->narenas; i++)
        if (!h->arenas[i].walk_complete)
            return;
    for (i = 0; i < h->ntcaches; i++)
        if (h->tcaches[i].addr && h->tcaches[i].arena < 0)
            herr(h, h->tcaches[i].addr,
                 "thread %d: its tcache is not a chunk of any arena's heap",
                 h->tcaches[i].tid);
}

static void
walk_tcaches(struct walk *w, const struct pmp_target_thread *tt, size_t nt)
{
    const layout_t *L = w->L;
    struct pmp_heap *h = w->h;
    size_t i;

    h->tcaches = pmp_calloc(nt ? nt : 1, sizeof(*h->tcaches));
    if (!h->tcaches)
        return;
    for (i = 0; i < nt; i++) {
        struct pmp_heap_tcache *tc = &h->tcaches[h->ntcaches];
        uint64_t addr = 0, csize;
        unsigned char ts[1024];
        size_t tslen = (size_t)L->tc_entries + 8 * (size_t)L->tc_bins;
        int b;

        if (!tt[i].regs_ok || !tt[i].regs.fs_base)
            continue;
        memset(tc, 0, sizeof(*tc));
        tc->tid = tt[i].tid;
        tc->arena = -1;
        h->ntcaches++;
        /* x86_64's TCB begins with a pointer to itself: a core without
           the thread's TLS (gcore of a 2.43 process writes its thread
           stacks as zeros: guard pages made with MADV_GUARD_INSTALL) has
           no tcache to read, which is not "no tcache" */
        if (!rd64(w->t, tt[i].regs.fs_base, &addr) ||
            addr != tt[i].regs.fs_base) {
            herr(h, tt[i].regs.fs_base,
                 "thread %d: its thread control block is not in the target "
                 "(reads as 0x%llx): its tcache is unknown",
                 tt[i].tid, (unsigned long long)addr);
            tc->unknown = 1;
            continue;
        }
        if (!rd64(w->t, tt[i].regs.fs_base + (uint64_t)h->tcache_tpoff,
                  &addr)) {
            herr(h, tt[i].regs.fs_base + (uint64_t)h->tcache_tpoff,
                 "thread %d: its tcache pointer is unreadable", tt[i].tid);
            tc->unknown = 1;
            continue;
        }
        if (!addr)
            continue;   /* this thread never malloc'd */
        /* 2.42+: until first used, tcache points to a zeroed dummy in
           libc's .rodata (inactive, or disabled) */
        if (L->tc_never_null && in_file_mapping(w->t, addr))
            continue;
        if (tslen > sizeof(ts) || (addr & 15) ||
            !rd64(w->t, addr - 8, &csize) ||
            !tcache_chunk_ok(L, w->t, addr - 16, csize) ||
            pmp_target_read(w->t, addr, ts, tslen, NULL)) {
            herr(h, addr, "thread %d: tcache pointer does not point to a "
                          "tcache",
                 tt[i].tid);
            continue;
        }
        tc->addr = addr;
        cached_add(w, addr - 16, CK_TCSTRUCT);
        for (b = 0; b < L->tc_bins && b < PMP_HEAP_TCACHE_BINS; b++) {
            uint16_t raw;
            unsigned cnt;
            uint64_t e = pmp_u64at(ts, (size_t)L->tc_entries + 8 * (size_t)b);
            uint64_t n = 0;

            memcpy(&raw, ts + (size_t)L->tc_counts + 2 * (size_t)b, 2);
            if (L->tc_counts_free_slots) {
                /* num_slots: the room left, counted down from
                   mp_.tcache_count */
                if (raw > h->tcache_count) {
                    herr(h, addr + 2 * (uint64_t)b,
                         "thread %d tcache bin %d: %u free slots, more than "
                         "tcache_count %llu",
                         tc->tid, b, raw,
                         (unsigned long long)h->tcache_count);
                    continue;
                }
                cnt = (unsigned)(h->tcache_count - raw);
            } else {
                cnt = raw;
            }
            tc->counts[b] = (uint16_t)cnt;
            while (e) {
                uint64_t sz, next;
                if ((e & 15) || !rd64(w->t, e - 8, &sz) ||
                    !rd64(w->t, e, &next)) {
                    herr(h, e, "thread %d tcache bin %d: %s entry",
                         tc->tid, b, (e & 15) ? "misaligned" : "unreadable");
                    break;
                }
                sz &= CHUNK_SIZE_MASK;
                if (tcache_bin_of(L, sz) != b) {
                    herr(h, e, "thread %d tcache bin %d: chunk of size %llu",
                         tc->tid, b, (unsigned long long)sz);
                    break;
                }
                if (n >= cnt || n >= 65535) {
                    herr(h, e, "thread %d tcache bin %d: longer than its "
                               "count %u (a loop?)",
                         tc->tid, b, cnt);
                    n++;
                    break;
                }
                cached_add(w, e - 16, CK_TCACHE);
                tc->chunks++;
                tc->bytes += sz;
                tc->bin_bytes[b] += sz;
                n++;
                e = reveal(L, e, next);
            }
            if (n < cnt)
                herr(h, addr + 2 * (uint64_t)b,
                     "thread %d tcache bin %d: counts says %u, list has "
                     "%llu",
                     tc->tid, b, cnt, (unsigned long long)n);
        }
    }
}

/* ---- the chunk walk ---- */

static int win_load(struct walk *w, uint64_t a);

/* 16 bytes at a (a chunk header) through a 4 MiB window; 0 if unreadable.
   The common case (inside the window) is inline; win_load moves it. */
static inline int
win_header(struct walk *w, uint64_t a, uint64_t *prev, uint64_t *size)
{
    struct window *wn = &w->win;

    if (__builtin_expect(a < wn->base || a + 32 > wn->base + wn->len, 0) &&
        !win_load(w, a))
        return 0;
    *prev = pmp_u64at(wn->view, (size_t)(a - wn->base));
    *size = pmp_u64at(wn->view, (size_t)(a - wn->base) + 8);
    return 1;
}

static int
win_load(struct walk *w, uint64_t a)
{
    struct window *wn = &w->win;

    /* 32 bytes: the header and, for the fast path, the fd word after it */
    {
        long got;
        const void *direct = NULL;
        size_t n;

        /* A core: look at its mapping in place, no copy. */
        for (n = 4u << 20; !direct && w->t->ops->peek && n >= 32; n >>= 4)
            direct = w->t->ops->peek(w->t, a, n);
        if (direct) {
            wn->view = direct;
            wn->base = a;
            wn->len = n << 4;
        } else {
            if (!wn->buf) {
                wn->buf = malloc(4u << 20);
                if (!wn->buf)
                    return 0;
            }
            got = w->t->ops->read(w->t, a, wn->buf, 4u << 20, NULL);
            if (got < 16)
                return 0;
            wn->view = wn->buf;
            wn->base = a;
            wn->len = (size_t)got;
        }
    }
    return 1;
}

static inline void
hist_add(struct walk *w, uint64_t size, int kind)
{
    struct pmp_heap *h = w->h;
    int direct = (size >> 4) < HIST_DIRECT && w->hist_direct;
    uintptr_t v = direct ? w->hist_direct[size >> 4]
                         : (uintptr_t)pmp_u64map_get(&w->hist, size);
    struct pmp_heap_size *r;

    if (!v) {
        if (pmp_grow((void **)&h->sizes, &w->sizes_cap, h->nsizes + 1,
                     sizeof(*h->sizes)))
            return;
        memset(&h->sizes[h->nsizes], 0, sizeof(*h->sizes));
        h->sizes[h->nsizes].size = size;
        v = ++h->nsizes;
        if (direct)
            w->hist_direct[size >> 4] = (uint32_t)v;
        else
            pmp_u64map_put(&w->hist, size, (void *)v);
    }
    r = &h->sizes[v - 1];
    if (kind == 0) {
        r->used++;
        r->used_bytes += size;
    } else if (kind == 1) {
        r->free++;
        r->free_bytes += size;
    } else {
        r->cached++;
        r->cached_bytes += size;
    }
}

static int
bin_index(uint64_t sz)
{
    if (sz < 1024)
        return (int)(sz >> 4);
    if ((sz >> 6) <= 48)
        return 48 + (int)(sz >> 6);
    if ((sz >> 9) <= 20)
        return 91 + (int)(sz >> 9);
    if ((sz >> 12) <= 10)
        return 110 + (int)(sz >> 12);
    if ((sz >> 15) <= 4)
        return 119 + (int)(sz >> 15);
    if ((sz >> 18) <= 2)
        return 124 + (int)(sz >> 18);
    return 126;
}

/* A free chunk seen by the walk counted into its (sorted) bin. */
static void
derive_bin(struct walk *w, struct pmp_heap_arena *ar, uint64_t raw)
{
    uint64_t size = raw & CHUNK_SIZE_MASK;
    int idx = bin_index(size);
    struct pmp_heap_bin *b;

    if (!w->binpos[idx]) {
        if (ar->nbins >= PMP_HEAP_MAX_BINS)
            return;
        b = &ar->bins[ar->nbins];
        memset(b, 0, sizeof(*b));
        b->index = idx;
        w->binpos[idx] = (int)++ar->nbins;
    }
    bin_add(&ar->bins[w->binpos[idx] - 1], raw);
    ar->bin_count++;
    ar->bin_bytes += size;
    if (size > ar->largest_free)
        ar->largest_free = size;
}

/*
 * Room for one more element in n parallel arrays sharing *cap (doubling,
 * from 65536).  -1 when memory runs out: arrays already grown stay valid
 * and *cap unchanged, so the caller just drops the element.
 */
static int
grow_parallel(size_t len, size_t *cap, void **arrs[], const size_t *esz,
              size_t n)
{
    size_t nc = *cap ? *cap * 2 : 65536, i;

    if (len < *cap)
        return 0;
    for (i = 0; i < n; i++) {
        void *a = pmp_reallocarray(*arrs[i], nc, esz[i]);
        if (!a)
            return -1;
        *arrs[i] = a;
    }
    *cap = nc;
    return 0;
}

/*
 * Index of p in the ascending a[from, to), or -1: a list walk mostly
 * steps to a neighbour of its previous chunk, so search from the last hit
 * outwards (galloping), then by bisection.
 */
static long
gallop_find(const uint64_t *a, size_t from, size_t to, size_t *last,
            uint64_t p)
{
    size_t lo = from, hi = to, step, c = *last;

    if (from >= to || p < a[from] || p > a[to - 1])
        return -1;
    if (c >= from && c < to) {
        if (a[c] >= p) {                /* p is at or below c */
            for (step = 1; c >= from + step && a[c - step] > p; step <<= 1)
                ;
            lo = c >= from + step ? c - step : from;
            hi = c + 1;
        } else {                        /* p is above c */
            for (step = 1; c + step < to && a[c + step] < p; step <<= 1)
                ;
            lo = c + 1;
            hi = c + step < to ? c + step + 1 : to;
        }
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < to && a[lo] == p) {
        *last = lo;
        return (long)lo;
    }
    return -1;
}

static void
frees_add(struct walk *w, uint64_t p, uint64_t fd, uint64_t bk, uint64_t raw)
{
    struct frees *f = &w->fr;
    void **arrs[] = {(void **)&f->addr, (void **)&f->fd, (void **)&f->bk,
                     (void **)&f->raw, (void **)&f->unsorted};
    static const size_t esz[] = {8, 8, 8, 8, 1};

    if (grow_parallel(f->n, &f->cap, arrs, esz, PMP_ARRAY_SIZE(arrs)))
        return;
    if (f->n == 0)
        f->sorted = 1;
    else if (p < f->addr[f->n - 1])
        f->sorted = 0;
    f->addr[f->n] = p;
    f->fd[f->n] = fd;
    f->bk[f->n] = bk;
    f->raw[f->n] = raw;
    f->unsorted[f->n] = 0;
    f->n++;
}

/* Index of free chunk p, or -1 (the unsorted list visits the chunks
   mostly in address order). */
static long
frees_find(struct frees *f, uint64_t p)
{
    return gallop_find(f->addr, 0, f->n, &f->last, p);
}

static int
cmp_u64_idx(const void *a, const void *b, void *arg)
{
    const uint64_t *v = arg;
    uint64_t x = v[*(const size_t *)a], y = v[*(const size_t *)b];

    return (x > y) - (x < y);
}

/* Put the free chunks in address order (thread arenas' heaps need not
   be); the five arrays move together. */
static void
frees_sort(struct frees *f)
{
    size_t *ix, i;
    uint64_t *tmp;
    uint64_t *arrs[4] = {f->fd, f->bk, f->raw, f->addr};
    int k;

    if (f->n == 0) {        /* no arrays yet (memcpy(NULL, .., 0) is UB) */
        f->sorted = 1;
        return;
    }
    ix = pmp_calloc(f->n, sizeof(*ix));
    tmp = pmp_calloc(f->n, 8);
    if (!ix || !tmp) {
        free(ix);
        free(tmp);
        return;
    }
    for (i = 0; i < f->n; i++)
        ix[i] = i;
    qsort_r(ix, f->n, sizeof(*ix), cmp_u64_idx, f->addr);
    for (k = 0; k < 4; k++) {      /* addr last: it is the sort key */
        for (i = 0; i < f->n; i++)
            tmp[i] = arrs[k][ix[i]];
        memcpy(arrs[k], tmp, f->n * 8);
    }
    f->sorted = 1;
    free(ix);
    free(tmp);
}

/*
 * After an arena's chunk walk (summary): follow its unsorted list through
 * the recorded fd/bk words (a chunk the walk did not see free is read
 * from the target, as the list walk used to), count it as bin 1, and put
 * every other free chunk in the bin its size selects.
 */
static void
settle_frees(struct walk *w, struct pmp_heap_arena *ar)
{
    struct frees *f = &w->fr;
    uint64_t head = ar->addr + (uint64_t)w->L->ms_bins - 16, p, prev = head;
    uint64_t cap = ar->system_mem / MINSIZE + 1;
    struct pmp_heap_bin acc = {0};
    size_t i;

    if (!f->sorted)
        frees_sort(f);
    f->last = f->n ? f->n - 1 : 0;
    if (!rd64(w->t, head + 16, &p)) {
        herr(w->h, head, "arena 0x%llx bin 1: unreadable",
             (unsigned long long)ar->addr);
        p = head;
    }
    while (p != head) {
        long k = (p & 15) ? -1 : frees_find(f, p);
        uint64_t raw, bk, fd, size;

        if (k >= 0) {
            raw = f->raw[k];
            bk = f->bk[k];
            fd = f->fd[k];
        } else if ((p & 15) || !rd64(w->t, p + 8, &raw) ||
                   !rd64(w->t, p + 24, &bk) || !rd64(w->t, p + 16, &fd)) {
            herr(w->h, p, "arena 0x%llx bin 1: %s chunk",
                 (unsigned long long)ar->addr,
                 (p & 15) ? "misaligned" : "unreadable");
            break;
        }
        if (bk != prev) {
            herr(w->h, p,
                 "arena 0x%llx bin 1: chunk's bk 0x%llx is not the previous "
                 "chunk 0x%llx",
                 (unsigned long long)ar->addr, (unsigned long long)bk,
                 (unsigned long long)prev);
            break;
        }
        size = raw & CHUNK_SIZE_MASK;
        if (size < MINSIZE || size > ar->system_mem + HEAP_MAX_SIZE) {
            herr(w->h, p, "arena 0x%llx bin 1: bad size %llu",
                 (unsigned long long)ar->addr, (unsigned long long)size);
            break;
        }
        if (k >= 0) {
            if (f->unsorted[k]) {
                herr(w->h, p, "arena 0x%llx bin 1: loop",
                     (unsigned long long)ar->addr);
                break;
            }
            f->unsorted[k] = 1;
        }
        bin_add(&acc, raw);
        if (acc.count > cap) {
            herr(w->h, p, "arena 0x%llx bin 1: loop",
                 (unsigned long long)ar->addr);
            break;
        }
        prev = p;
        p = fd;
    }
    i = ar->nbins;
    bin_store(ar, 1, &acc);
    if (ar->nbins > i)
        w->binpos[1] = (int)ar->nbins;
    for (i = 0; i < f->n; i++)
        if (!f->unsorted[i])
            derive_bin(w, ar, f->raw[i]);
    f->n = 0;
    f->sorted = 1;
    f->last = 0;
}

static void
smalls_add(struct walk *w, uint64_t p, uint64_t fd, uint64_t size)
{
    struct smalls *m = &w->sm;
    void **arrs[] = {(void **)&m->addr, (void **)&m->fd, (void **)&m->sz16};
    static const size_t esz[] = {8, 8, 1};

    if (grow_parallel(m->n, &m->cap, arrs, esz, PMP_ARRAY_SIZE(arrs)))
        return;
    m->addr[m->n] = p;
    m->fd[m->n] = fd;
    m->sz16[m->n] = (uint8_t)(size >> 4);
    m->n++;
}

/* Index of chunk p among the recorded small chunks, or -1: a fastbin
   chain mostly steps to a neighbour of its previous chunk.  The chunks
   are ascending within each heap's run. */
static long
smalls_find(struct smalls *m, uint64_t p)
{
    size_t k;

    for (k = 0; k < m->nseg; k++) {
        size_t from = m->seg[k].from, to = m->seg[k].to;
        if (from < to && p >= m->addr[from] && p <= m->addr[to - 1])
            return gallop_find(m->addr, from, to, &m->last, p);
    }
    return -1;
}

/* Fast path: follow each fastbin with the words the walk recorded and
   move its chunks from "in use" to "cached". */
static void
claim_fastbins(struct walk *w)
{
    struct pmp_heap *h = w->h;
    size_t ai;

    for (ai = 0; ai < h->narenas; ai++) {
        struct pmp_heap_arena *ar = &h->arenas[ai];
        int i;

        for (i = 0; i < w->L->nfastbins; i++) {
            uint64_t p = ar->fast_head[i], n = 0;
            uint64_t want = 32 + 16 * (uint64_t)i;

            while (p) {
                long k = smalls_find(&w->sm, p);
                uintptr_t v;
                if (k < 0 || w->sm.sz16[k] != (want >> 4)) {
                    herr(h, p, "arena 0x%llx fastbin %d: %s",
                         (unsigned long long)ar->addr, i,
                         k < 0 ? "chunk is not a chunk of the heap"
                         : w->sm.sz16[k] ? "chunk of the wrong size"
                                         : "loop");
                    break;
                }
                w->sm.sz16[k] = 0;
                ar->fast_count++;
                ar->fast_bytes += want;
                ar->fast_by_bin[i]++;
                ar->app_chunks--;
                ar->app_bytes -= want;
                v = w->hist_direct ? w->hist_direct[want >> 4] : 0;
                if (v) {
                    struct pmp_heap_size *z = &h->sizes[v - 1];
                    z->used--;
                    z->used_bytes -= want;
                    z->cached++;
                    z->cached_bytes += want;
                }
                if (++n > ar->system_mem / MINSIZE)
                    break;
                p = reveal(w->L, p + 16, w->sm.fd[k]);
            }
        }
    }
}

static void
find_check(struct walk *w, int ai, uint64_t p, uint64_t size,
           const char *state)
{
    struct pmp_heap *h = w->h;

    if (h->find_addr && !h->found_chunk && h->find_addr >= p &&
        h->find_addr < p + size) {
        h->found_chunk = p;
        h->found_size = size;
        h->found_arena = ai;
        pmp_strlcpy(h->found_state, state, sizeof(h->found_state));
    }
}

/* Walk [start, end) of arena ai; stops at top.  Returns 0 if the walk
   reached its end (or top) cleanly. */
static int
walk_range_inner(struct walk *w, int ai, uint64_t start, uint64_t end);

static int
walk_range(struct walk *w, int ai, uint64_t start, uint64_t end)
{
    size_t from = w->sm.n;
    int rc = walk_range_inner(w, ai, start, end);

    if (w->sm.n > from && w->sm.nseg < 1024) {
        w->sm.seg[w->sm.nseg].from = from;
        w->sm.seg[w->sm.nseg].to = w->sm.n;
        w->sm.nseg++;
    }
    return rc;
}

static int
walk_range_inner(struct walk *w, int ai, uint64_t start, uint64_t end)
{
    struct pmp_heap_arena *ar = &w->h->arenas[ai];
    uint64_t p = start, prev, raw, n = 0;
    cached_seek(w, start);
    while (p + 16 <= end) {
        uint64_t size, nprev, nraw, fdw, bkw;
        int in_use, have_fd, have_bk;
        uintptr_t ck;

        if (p == ar->top) {
            find_check(w, ai, p, ar->top_size, "top");
            return 0;
        }
        if (!win_header(w, p, &prev, &raw)) {
            herr(w->h, p, "arena #%d: chunk header unreadable", ai);
            return -1;
        }
        /* the fd and bk words, before the next header moves the window */
        have_fd = p + 24 <= w->win.base + w->win.len;
        fdw = have_fd ? pmp_u64at(w->win.view, (size_t)(p - w->win.base) + 16) : 0;
        have_bk = p + 32 <= w->win.base + w->win.len;
        bkw = have_bk ? pmp_u64at(w->win.view, (size_t)(p - w->win.base) + 24) : 0;
        size = raw & CHUNK_SIZE_MASK;
        if (size == 0 || size == 16) {
            /* fenceposts close a heap that is not the last one, in its
               last 32 bytes; anywhere else it is damage */
            if (end - p > 32) {
                herr(w->h, p, "arena #%d: %s chunk inside the heap", ai,
                     size ? "16-byte" : "zero-size");
                return -1;
            }
            ar->overhead_bytes += end - p;
            find_check(w, ai, p, end - p, "fencepost");
            return 0;
        }
        if (size < MINSIZE || (size & 15) || size > end - p) {
            herr(w->h, p, "arena #%d: bad chunk size 0x%llx", ai,
                 (unsigned long long)raw);
            return -1;
        }
        if (p + size == ar->top) {
            if (!rd64(w->t, ar->top + 8, &nraw))
                return -1;
        } else if (p + size + 16 <= end) {
            if (!win_header(w, p + size, &nprev, &nraw)) {
                herr(w->h, p + size, "arena #%d: chunk header unreadable",
                     ai);
                return -1;
            }
        } else {
            nraw = 1;   /* last chunk of a heap: fenceposts follow */
        }
        in_use = (nraw & 1) != 0;
        ar->walked_chunks++;
        if (!in_use) {
            hist_add(w, size, 1);
            find_check(w, ai, p, size, "free (in a bin)");
            if (!w->lists) {
                if (!have_bk && !rd64(w->t, p + 24, &bkw))
                    bkw = 0;
                if (!have_fd && !rd64(w->t, p + 16, &fdw))
                    fdw = 0;
                frees_add(w, p, fdw, bkw, raw);
            }
        } else if ((ck = (uintptr_t)cached_at(w, p)) != 0) {
            if (ck == CK_TCSTRUCT) {
                ar->overhead_bytes += size;
                find_check(w, ai, p, size, "tcache struct");
                {
                    size_t k;
                    for (k = 0; k < w->h->ntcaches; k++)
                        if (w->h->tcaches[k].addr == p + 16)
                            w->h->tcaches[k].arena = ai;
                }
            } else {
                if (ck == CK_TCACHE) {
                    ar->tcache_chunks++;
                    ar->tcache_bytes += size;
                }
                hist_add(w, size, 2);
                find_check(w, ai, p, size,
                           ck == CK_TCACHE ? "free (tcache)"
                                           : "free (fastbin)");
            }
        } else {
            ar->app_chunks++;
            ar->app_bytes += size;
            hist_add(w, size, 0);
            find_check(w, ai, p, size, "in use");
            if (!w->lists && size <= 128 && have_fd)
                smalls_add(w, p, fdw, size);
        }
        p += size;
        if (++n > (UINT64_C(1) << 40))
            return -1;
    }
    return 0;
}

/* The address ranges of the arenas' heaps, where no mmapped chunk lives. */
struct range {
    uint64_t start, end;
};

static int
cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;

    return (x->start > y->start) - (x->start < y->start);
}

/* Sorted; *n ranges; NULL with *n 0 when there are none (or no memory). */
static struct range *
heap_ranges(const struct pmp_heap *h, size_t *n)
{
    size_t i, k, cap = 0;
    struct range *v = NULL;

    *n = 0;
    for (i = 0; i < h->narenas; i++) {
        const struct pmp_heap_arena *ar = &h->arenas[i];
        size_t nh = ar->is_main ? 1
                                : PMP_MIN(ar->nheaps, (size_t)PMP_HEAP_MAX_HEAPS);
        for (k = 0; k < nh; k++) {
            if (ar->is_main && !ar->top)
                break;
            if (pmp_grow((void **)&v, &cap, *n + 1, sizeof(*v)))
                return v;
            v[*n].start = ar->is_main ? h->sbrk_base : ar->heaps[k].addr;
            v[*n].end = ar->is_main ? ar->top + ar->top_size
                                    : ar->heaps[k].addr + HEAP_MAX_SIZE;
            (*n)++;
        }
    }
    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_range);
    return v;
}

/* If a lies in one of the ranges, the end of that range, else 0. */
static uint64_t
range_end_at(const struct range *v, size_t n, uint64_t a)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {                       /* last range starting <= a */
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].start <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && a < v[lo - 1].end ? v[lo - 1].end : 0;
}

/* glibc keeps no list of mmapped chunks: look at the first 16 bytes of
   every page of the anonymous writable mappings outside the arenas for
   a chunk header {prev_size 0, size = pages | IS_MMAPPED} (2.43: pages
   - 16, the chunk ends with a header like any other). */
static void
scan_mmapped(struct walk *w)
{
    struct pmp_heap *h = w->h;
    const struct pmp_mapping *maps = NULL;
    size_t nm = 0, i, nr = 0;
    uint64_t budget = UINT64_C(1) << 22;   /* pages: 16 GiB at most */
    struct range *ranges;

    if (w->t->ops->mappings(w->t, &maps, &nm, NULL) != 0)
        return;
    ranges = heap_ranges(h, &nr);
    for (i = 0; i < nm && budget; i++) {
        const struct pmp_mapping *m = &maps[i];
        uint64_t a = (m->start + 4095) & ~(uint64_t)4095;

        if (!(m->prot & 2) || (m->path && m->path[0]))
            continue;   /* PROT_WRITE, anonymous only */
        while (a + 16 <= m->end && budget--) {
            unsigned char hd[16];
            uint64_t skip = range_end_at(ranges, nr, a), size, span;
            if (skip) {
                a = (skip + 4095) & ~(uint64_t)4095;
                continue;
            }
            if (w->t->ops->read(w->t, a, hd, sizeof(hd), NULL) ==
                    (long)sizeof(hd) &&
                pmp_u64at(hd, 0) == 0) {
                size = pmp_u64at(hd, 8);
                /* the mapping's bytes */
                span = (size & CHUNK_SIZE_MASK) +
                                (uint64_t)w->L->mmap_hdr_extra;
                if ((size & 7) == 2 && !(span & 4095) && span >= 4096 &&
                    span <= m->end - a) {
                    if (h->nmm < PMP_ARRAY_SIZE(h->mm)) {
                        h->mm[h->nmm].addr = a;
                        h->mm[h->nmm].size = span;
                        h->nmm++;
                    }
                    h->mm_found++;
                    h->mm_bytes += span;
                    a += span;
                    continue;
                }
            }
            a += 4096;
        }
    }
    free(ranges);
}

static int
cmp_bin(const void *a, const void *b)
{
    const struct pmp_heap_bin *x = a, *y = b;

    return (x->index > y->index) - (x->index < y->index);
}

static void
walk_chunks(struct walk *w)
{
    struct pmp_heap *h = w->h;
    size_t ai;

    for (ai = 0; ai < h->narenas; ai++) {
        struct pmp_heap_arena *ar = &h->arenas[ai];
        int ok = 1;

        if (!ar->top || !ar->system_mem)
            continue;
        memset(w->binpos, 0, sizeof(w->binpos));
        {
            size_t k;
            for (k = 0; k < ar->nbins; k++)
                w->binpos[ar->bins[k].index] = (int)k + 1;
        }
        if (ar->is_main) {
            uint64_t start = (h->sbrk_base + 15) & ~(uint64_t)15;
            if (ar->flags & 2) {
                herr(h, ar->addr, "main arena is non-contiguous: not walked");
                continue;
            }
            ar->overhead_bytes += start - h->sbrk_base;
            ok = walk_range(w, (int)ai, start, ar->top + ar->top_size) == 0;
        } else {
            size_t k, nh = PMP_MIN(ar->nheaps, (size_t)PMP_HEAP_MAX_HEAPS);
            for (k = 0; k < nh; k++) {
                uint64_t hb = ar->heaps[k].addr, start, end;
                uint64_t his = (uint64_t)w->L->hi_size;
                if (hb + his == ar->addr)    /* heap_info + malloc_state */
                    start = (hb + his + (uint64_t)w->L->ms_size + 15) &
                            ~(uint64_t)15;
                else
                    start = hb + his;        /* heap_info */
                ar->overhead_bytes += start - hb;
                end = (ar->top >= hb && ar->top < hb + ar->heaps[k].size)
                          ? ar->top + ar->top_size
                          : hb + ar->heaps[k].size;
                if (walk_range(w, (int)ai, start, end) != 0)
                    ok = 0;
            }
            if (ar->nheaps > nh)
                ok = 0;
        }
        ar->walk_complete = ok;
        if (!w->lists)
            settle_frees(w, ar);
        if (!w->lists && ar->nbins > 1)
            qsort(ar->bins, ar->nbins, sizeof(ar->bins[0]), cmp_bin);
    }
    if (!w->lists)
        claim_fastbins(w);
    scan_mmapped(w);
    h->walked = 1;
}

static int
cmp_size(const void *a, const void *b)
{
    const struct pmp_heap_size *x = a, *y = b;

    return (x->size > y->size) - (x->size < y->size);
}

/* Everything after finding main_arena and mp_ (also for unit tests over
   crafted memory: pmp_heap_walk_target). */
static int
heap_walk_from(struct walk *wk, const struct pmp_heap_opts *o,
               const struct pmp_target_thread *tt, size_t nt, int have_tpoff,
               struct pmp_error *err)
{
    struct pmp_heap *h = wk->h;
    const layout_t *L = wk->L;
    unsigned char mp[MP_SIZE_MAX];
    uint64_t a;
    int i, rc;

    if (pmp_target_read(wk->t, h->mp, mp, (size_t)L->mp_size, NULL))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "cannot read glibc's mp_ at 0x%llx",
                             (unsigned long long)h->mp);
    h->trim_threshold = pmp_u64at(mp, (size_t)L->mp_trim_threshold);
    h->mmap_threshold = pmp_u64at(mp, (size_t)L->mp_mmap_threshold);
    h->n_mmaps = pmp_u32at(mp, (size_t)L->mp_n_mmaps);
    h->max_n_mmaps = pmp_u32at(mp, (size_t)L->mp_max_n_mmaps);
    h->mmapped_mem = pmp_u64at(mp, (size_t)L->mp_mmapped_mem);
    h->max_mmapped_mem = pmp_u64at(mp, (size_t)L->mp_max_mmapped_mem);
    h->sbrk_base = pmp_u64at(mp, (size_t)L->mp_sbrk_base);
    h->tcache_count = pmp_u64at(mp, (size_t)L->mp_tcache_count);

    /* The ring: main -> newest -> ... -> oldest -> main. */
    a = h->main_arena;
    for (i = 0; i < MAX_ARENAS; i++) {
        uint64_t next;
        rc = walk_arena(wk, a, i == 0, !(o && o->walk) || wk->lists);
        if (rc < 0 && rc != -1)
            return pmp_error_set(err, rc, "out of memory");
        if (!rd64(wk->t, a + (uint64_t)L->ms_next, &next) ||
            next == h->main_arena)
            break;
        a = next;
    }
    if (o && o->walk) {
        if (have_tpoff)
            walk_tcaches(wk, tt, nt);
        h->find_addr = o->find_addr;
        h->found_arena = -1;
        if (wk->ncached)
            qsort(wk->cached, wk->ncached, sizeof(*wk->cached), cmp_cached);
        wk->hist_direct = pmp_calloc(HIST_DIRECT, sizeof(uint32_t));
        walk_chunks(wk);
        tcache_arenas(wk);
        if (h->nsizes)
            qsort(h->sizes, h->nsizes, sizeof(*h->sizes), cmp_size);
    }
    return 0;
}

static void
walk_init(struct walk *wk, struct pmp_target *t, struct pmp_heap *h,
          const struct pmp_heap_opts *o)
{
    memset(wk, 0, sizeof(*wk));
    wk->L = layout_for("2.36");   /* until the target's version is known */
    wk->t = t;
    wk->h = h;
    wk->lists = !o || !o->walk || o->lists || o->find_addr;
    pmp_u64map_init(&wk->hist);
}

static void
walk_fini(struct walk *wk)
{
    free(wk->cached);
    free(wk->hist_direct);
    free(wk->sm.addr);
    free(wk->sm.fd);
    free(wk->sm.sz16);
    free(wk->fr.addr);
    free(wk->fr.fd);
    free(wk->fr.bk);
    free(wk->fr.raw);
    free(wk->fr.unsorted);
    pmp_u64map_release(&wk->hist);
    free(wk->win.buf);
}

int
pmp_heap_walk_target(struct pmp_target *t, uint64_t main_arena, uint64_t mp,
                     int64_t tcache_tpoff,
                     const struct pmp_target_thread *threads, size_t nthreads,
                     const struct pmp_heap_opts *o, struct pmp_heap **out,
                     struct pmp_error *err)
{
    struct pmp_heap *h = calloc(1, sizeof(*h));
    struct walk wk;
    int rc;

    *out = NULL;
    if (!h)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    h->main_arena = main_arena;
    h->mp = mp;
    h->tcache_tpoff = tcache_tpoff;
    h->nthreads = nthreads;
    walk_init(&wk, t, h, o);      /* the 2.36 row */
    h->nfastbins = wk.L->nfastbins;
    h->tcache_bins = wk.L->tc_bins;
    h->safe_linking = wk.L->safe_linking;
    rc = heap_walk_from(&wk, o, threads, nthreads, tcache_tpoff != 0, err);
    walk_fini(&wk);
    if (rc) {
        pmp_heap_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* ---- another allocator in the process ---- */

/*
 * jemalloc, tcmalloc and mimalloc leave glibc's main_arena untouched (or
 * nearly): its walk would print an empty heap as if it were the answer.
 * Each is found by its library's name among the mapped modules, by a
 * defined symbol of its API in any module's own symbol tables (a static
 * link that kept them), or by a message string of its own in the
 * executable's read-only data (a stripped static link).
 */
static const struct other_alloc {
    const char *name, *lib, *sym[3], *str;
} other_allocs[] = {
    {"jemalloc", "libjemalloc", {"mallctl", "je_mallctl", "je_malloc_conf"},
     "<jemalloc>: "},
    {"tcmalloc", "libtcmalloc", {"tc_malloc", "tc_malloc_size", NULL},
     "tcmalloc: allocation failed"},
    {"mimalloc", "libmimalloc", {"mi_malloc", "mi_version", NULL},
     "mimalloc: error: "},
};

struct other_found {
    char *name, *why;
    size_t nlen, wlen;
};

static const char *
base_name(const char *p)
{
    const char *b = p ? strrchr(p, '/') : NULL;

    return b ? b + 1 : (p ? p : "");
}

/* A defined symbol of one of the allocators in elf's own symbol tables. */
static const struct other_alloc *
other_by_symbol(Elf *elf, const char **symname)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        Elf_Data *d;
        size_t i, n, k, j;

        if (!gelf_getshdr(scn, &sh) ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
            !sh.sh_entsize)
            continue;
        d = elf_getdata(scn, NULL);
        if (!d)
            continue;
        n = sh.sh_size / sh.sh_entsize;
        for (i = 1; i < n && i < 10000000; i++) {
            GElf_Sym sy;
            const char *nm;
            if (!gelf_getsym(d, (int)i, &sy))
                break;
            if (sy.st_shndx == SHN_UNDEF || !sy.st_name)
                continue;
            nm = elf_strptr(elf, sh.sh_link, sy.st_name);
            if (!nm || (nm[0] != 'm' && nm[0] != 't' && nm[0] != 'j'))
                continue;
            for (k = 0; k < PMP_ARRAY_SIZE(other_allocs); k++)
                for (j = 0; j < 3 && other_allocs[k].sym[j]; j++)
                    if (strcmp(nm, other_allocs[k].sym[j]) == 0) {
                        *symname = other_allocs[k].sym[j];
                        return &other_allocs[k];
                    }
        }
    }
    return NULL;
}

/* One of the allocators' own messages in elf's allocated read-only data. */
static const struct other_alloc *
other_by_string(Elf *elf)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        Elf_Data *d;
        size_t k;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
            !(sh.sh_flags & SHF_ALLOC) ||
            (sh.sh_flags & (SHF_WRITE | SHF_EXECINSTR)))
            continue;
        d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        for (k = 0; k < PMP_ARRAY_SIZE(other_allocs); k++)
            if (memmem(d->d_buf, d->d_size, other_allocs[k].str,
                       strlen(other_allocs[k].str)))
                return &other_allocs[k];
    }
    return NULL;
}

/* Whether elf is a program (PT_INTERP, or not position-independent). */
static int
is_program(Elf *elf)
{
    GElf_Ehdr eh;
    size_t i, n = 0;

    if (!gelf_getehdr(elf, &eh))
        return 0;
    if (eh.e_type == ET_EXEC)
        return 1;
    if (elf_getphdrnum(elf, &n))
        return 0;
    for (i = 0; i < n && i < 4096; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_INTERP)
            return 1;
    }
    return 0;
}

static int
other_alloc_cb(Dwfl_Module *mod, void **ud, const char *name,
               Dwarf_Addr base, void *arg)
{
    struct other_found *f = arg;
    const char *b = base_name(name), *sym = NULL;
    const struct other_alloc *a = NULL;
    Dwarf_Addr bias;
    Elf *elf;
    size_t k;

    for (k = 0; k < PMP_ARRAY_SIZE(other_allocs); k++) {
        size_t l = strlen(other_allocs[k].lib);
        if (strncmp(b, other_allocs[k].lib, l) == 0 && strstr(b + l, ".so")) {
            snprintf(f->why, f->wlen, "%s is mapped", name);
            pmp_strlcpy(f->name, other_allocs[k].name, f->nlen);
            return DWARF_CB_ABORT;
        }
    }
    /* glibc's own files carry none of these; skip their tables */
    if (strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-", 5) == 0 ||
        strncmp(b, "ld-", 3) == 0 || b[0] == '[')
        return DWARF_CB_OK;
    elf = dwfl_module_getelf(mod, &bias);
    if (!elf)
        return DWARF_CB_OK;
    a = other_by_symbol(elf, &sym);
    if (a)
        snprintf(f->why, f->wlen, "%s defines %s()", name, sym);
    else if (is_program(elf) && (a = other_by_string(elf)) != NULL)
        snprintf(f->why, f->wlen, "%s holds its message \"%s\"", name,
                 a->str);
    if (!a)
        return DWARF_CB_OK;
    pmp_strlcpy(f->name, a->name, f->nlen);
    return DWARF_CB_ABORT;
}

/* The allocator other than glibc's malloc the process uses, if any: its
   name and the evidence, one line each ("" when none). */
static void
other_allocator(Dwfl *dwfl, char *name, size_t nlen, char *why, size_t wlen)
{
    struct other_found f = {name, why, nlen, wlen};

    name[0] = why[0] = '\0';
    dwfl_getmodules(dwfl, other_alloc_cb, &f, 0);
}

int
pmp_session_heap_allocator(struct pmp_session *s, char *name, size_t nlen,
                           char *why, size_t wlen, struct pmp_error *err)
{
    struct pmp_target_thread *tt = NULL;
    size_t nt = 0;
    int rc;

    name[0] = why[0] = '\0';
    rc = s->target->ops->stop(s->target, &tt, &nt, err);
    if (rc)
        return rc;
    pmp_symbolizer_new_stop(s->sym);
    pmp_symbolizer_refresh(s->sym, NULL);
    other_allocator((Dwfl *)pmp_symbolizer_dwfl(s->sym), name, nlen, why,
                    wlen);
    s->target->ops->resume(s->target);
    return 0;
}

static int
heap_walk(struct pmp_session *s, struct pmp_heap *h, struct walk *wk,
          const struct pmp_heap_opts *o, const struct pmp_target_thread *tt,
          size_t nt, struct pmp_error *err)
{
    Dwfl *dwfl = (Dwfl *)pmp_symbolizer_dwfl(s->sym);
    Dwfl_Module *libc;
    Dwarf_Addr bias = 0;
    Elf *elf;
    uint64_t addr = 0, lea, a;
    struct libc_syms ls;
    const layout_t *L;
    int i;
    const unsigned char *bid = NULL;
    GElf_Addr bid_va;
    int bidlen;

    {
        char name[16], why[256];
        other_allocator(dwfl, name, sizeof(name), why, sizeof(why));
        if (name[0])
            return pmp_error_set(err, PMP_E_UNSUPPORTED,
                                 PMP_HEAP_OTHER_ALLOCATOR_FMT, name, why);
    }
    libc = pmp_find_libc(dwfl);
    if (!libc)
        return pmp_error_set(err, PMP_E_NOTFOUND,
                             "no libc.so in the process (static binary, or "
                             "another C library): pmprof heap reads glibc's "
                             "malloc only");
    {
        Dwarf_Addr lo = 0;
        const char *name =
            dwfl_module_info(libc, NULL, &lo, NULL, NULL, NULL, NULL, NULL);
        pmp_strlcpy(h->libc_path, name ? name : "", sizeof(h->libc_path));
        h->libc_base = lo;
    }
    elf = dwfl_module_getelf(libc, &bias);
    bidlen = dwfl_module_build_id(libc, &bid, &bid_va);
    for (i = 0; i < bidlen && i < 20; i++)
        snprintf(h->build_id + 2 * i, 3, "%02x", bid[i]);
    if (!elf)
        return pmp_error_set(err, PMP_E_NOTFOUND,
                             "cannot read libc's ELF file '%s'",
                             h->libc_path);
    pmp_glibc_release(elf, h->version, sizeof(h->version));
    {
        /*
         * The version's row of the table, checked member by member against
         * libc's DWARF when libc's debug info is there.  A version without
         * a row is refused even with DWARF: the allocator's logic changes
         * between releases, not only its structs.
         */
        char msg[192], known[64] = "";
        size_t k;
        int lc;

        L = h->version[0] ? layout_for(h->version) : NULL;
        if (!L) {
            for (k = 0; k < PMP_ARRAY_SIZE(pmp_glibc_malloc_layouts); k++)
                snprintf(known + strlen(known), sizeof(known) - strlen(known),
                         "%s%s", k ? ", " : "",
                         pmp_glibc_malloc_layouts[k].version);
            return pmp_error_set(
                err, PMP_E_UNSUPPORTED,
                "glibc %s (%s): pmprof knows the malloc of glibc %s "
                "(x86_64) and does not guess another",
                h->version[0] ? h->version : "of unknown version",
                h->libc_path, known);
        }
        if (L->ms_size > MS_SIZE_MAX || L->mp_size > MP_SIZE_MAX ||
            L->nfastbins > NFASTBINS_MAX ||
            L->tc_bins > PMP_HEAP_TCACHE_BINS)
            return pmp_error_set(err, PMP_E_UNSUPPORTED,
                                 "the glibc %s row does not fit heap.c's "
                                 "buffers",
                                 L->version);
        wk->L = L;
        lc = check_layout_dwarf(libc, L, msg, sizeof(msg));
        if (lc < 0)
            return pmp_error_set(err, PMP_E_UNSUPPORTED, "%s (%s)", msg,
                                 h->libc_path);
        snprintf(h->layout, sizeof(h->layout), "table %s x86_64%s",
                 L->version, lc ? ", checked against libc's DWARF" : "");
        h->nfastbins = L->nfastbins;
        h->tcache_bins = L->tc_bins;
        h->safe_linking = L->safe_linking;
    }
    /* main_arena: symbol (libc debug info), else the anchor's first lea. */
    find_libc_syms(libc, L->anchor_fn, &ls);
    lea = main_arena_from_lea(s->target, ls.anchor, ls.anchor_size);
    addr = ls.main_arena;
    if (addr && ls.main_arena_size == (uint64_t)L->ms_size) {
        h->main_arena = addr;
        if (lea == addr)
            snprintf(h->main_arena_method, sizeof(h->main_arena_method),
                     "symbol (= %s lea)", L->anchor_fn);
        else
            pmp_strlcpy(h->main_arena_method, "symbol",
                        sizeof(h->main_arena_method));
    } else if (lea) {
        h->main_arena = lea;
        snprintf(h->main_arena_method, sizeof(h->main_arena_method),
                 "%s lea", L->anchor_fn);
    }
    if (!h->main_arena || !arena_ring_closes(L, s->target, h->main_arena))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "cannot find glibc's main_arena in '%s' (or its "
                             "arena list does not close)",
                             h->libc_path);
    a = mp_from_data(L, elf, bias);
    addr = ls.mp;
    if (addr && ls.mp_size == (uint64_t)L->mp_size) {
        h->mp = addr;
        pmp_strlcpy(h->mp_method, a == addr ? "symbol (= .data initialiser)"
                                            : "symbol",
                    sizeof(h->mp_method));
    } else if (a) {
        h->mp = a;
        pmp_strlcpy(h->mp_method, ".data initialiser",
                    sizeof(h->mp_method));
    }
    if (!h->mp)
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "cannot find glibc's mp_ in '%s'", h->libc_path);
    if (o && o->walk &&
        !tcache_tpoff(L, s->target, elf, bias, &h->tcache_tpoff))
        herr(h, h->libc_base, "cannot find tcache's TLS offset in libc: "
                              "tcache chunks count as in use");
    return heap_walk_from(wk, o, tt, nt, h->tcache_tpoff != 0, err);
}

int
pmp_session_heap(struct pmp_session *s, const struct pmp_heap_opts *o,
                 struct pmp_heap **out, struct pmp_error *err)
{
    struct walk wk;
    struct pmp_target_thread *tt = NULL;
    size_t nt = 0;
    struct pmp_heap *h;
    uint64_t t0 = pmp_now_ns(CLOCK_MONOTONIC);
    int rc;

    *out = NULL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    /* Live: the process is stopped while its heap is read. */
    rc = s->target->ops->stop(s->target, &tt, &nt, err);
    if (rc) {
        free(h);
        return rc;
    }
    pmp_target_drop_cache(s->target);
    pmp_symbolizer_new_stop(s->sym);
    pmp_symbolizer_refresh(s->sym, NULL);
    h->nthreads = nt;
    walk_init(&wk, s->target, h, o);
    rc = heap_walk(s, h, &wk, o, tt, nt, err);
    s->target->ops->resume(s->target);
    walk_fini(&wk);
    h->elapsed_ns = pmp_now_ns(CLOCK_MONOTONIC) - t0;
    if (rc) {
        pmp_heap_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void
pmp_heap_free(struct pmp_heap *h)
{
    if (!h)
        return;
    free(h->arenas);
    free(h->tcaches);
    free(h->sizes);
    free(h);
}

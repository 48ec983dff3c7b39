/*
 * test-symindex.c: ext/unwind/symindex.c answers exactly as libdwfl does.
 *
 * For real modules (libc with libc6-dbg's symbols and DWARF, libstdc++,
 * and the test programs: PIE, non-PIE, static, stripped with a separate
 * debug file, C++, Go), opened with libdwfl as pmprof opens them, every
 * symbol of the module's table (an evenly spread 600 of a big table) is
 * probed at its start, inside it, at its last byte, just past its end and
 * just before it, plus 1 500 random addresses in the module and 600
 * outside it.  At each address:
 *   pmp_symindex_addrinfo == dwfl_module_addrinfo (name and offset),
 *   pmp_symindex_addrdie  == dwfl_module_addrdie (the same unit DIE),
 *   and the line found in that unit == dwfl_module_getsrc's line.
 * Modules that are missing are skipped (said on stdout); libc must be
 * there.  The index must also have been used (not its libdwfl fallback)
 * for most answers, or the test proves nothing: the share is printed and
 * checked.  Exit status 0 / 1.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symindex.h"
#include "unit.h"

struct tally {
    long probes, sym_bad, cu_bad, line_bad, named;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
probe(Dwfl_Module *mod, struct pmp_symindex *ix, uint64_t a, struct tally *t,
      const char *modname)
{
    GElf_Off o1 = 0;
    uint64_t o2 = 0;
    GElf_Sym s;
    const char *n1 = dwfl_module_addrinfo(mod, a, &o1, &s, NULL, NULL, NULL);
    const char *n2 = pmp_symindex_addrinfo(ix, mod, a, &o2);
    Dwarf_Addr b1 = 0, b2 = 0;
    Dwarf_Die mem, *d1, *d2;
    Dwfl_Line *l1;
    Dwarf_Line *l2 = NULL;

    t->probes++;
    if (n1)
        t->named++;
    if ((n1 == NULL) != (n2 == NULL) || (n1 && (strcmp(n1, n2) || o1 != o2))) {
        if (t->sym_bad++ < 10)
            printf("  %s %#lx: libdwfl %s+%#lx, index %s+%#lx\n", modname,
                   (unsigned long)a, n1 ? n1 : "-", (unsigned long)o1,
                   n2 ? n2 : "-", (unsigned long)o2);
    }
    d1 = dwfl_module_addrdie(mod, a, &b1);
    d2 = pmp_symindex_addrdie(ix, mod, a, &mem, &b2);
    if ((d1 == NULL) != (d2 == NULL) ||
        (d1 && (dwarf_dieoffset(d1) != dwarf_dieoffset(d2) || b1 != b2))) {
        if (t->cu_bad++ < 10)
            printf("  %s %#lx: libdwfl unit %#lx, index %#lx\n", modname,
                   (unsigned long)a, d1 ? (unsigned long)dwarf_dieoffset(d1) : 0,
                   d2 ? (unsigned long)dwarf_dieoffset(d2) : 0);
    }
    l1 = dwfl_module_getsrc(mod, a);
    if (d2)
        l2 = dwarf_getsrc_die(d2, a - b2);
    {
        int ln1 = 0, ln2 = 0, c1 = 0, c2 = 0;
        const char *f1 = l1 ? dwfl_lineinfo(l1, NULL, &ln1, &c1, NULL, NULL) : NULL;
        const char *f2 = l2 ? dwarf_linesrc(l2, NULL, NULL) : NULL;

        if (l2) {
            dwarf_lineno(l2, &ln2);
            dwarf_linecol(l2, &c2);
        }
        if ((f1 == NULL) != (f2 == NULL) || ln1 != ln2 || c1 != c2 ||
            (f1 && strcmp(f1, f2))) {
            if (t->line_bad++ < 10)
                printf("  %s %#lx: libdwfl %s:%d, index %s:%d\n", modname,
                       (unsigned long)a, f1 ? f1 : "-", ln1, f2 ? f2 : "-", ln2);
        }
    }
}

static int
check_module(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr start,
             void *arg)
{
    struct pmp_symindex *ix = pmp_symindex_new();
    struct tally t = {0};
    struct pmp_symindex_stats st;
    Dwarf_Addr lo, hi, dwbias;
    Dwarf *dbg;
    int has_aranges = 0;
    int n, i;
    long k;

    (void)ud;
    (void)arg;
    dwfl_module_info(mod, NULL, &lo, &hi, NULL, NULL, NULL, NULL);
    dbg = dwfl_module_getdwarf(mod, &dwbias);
    if (dbg) {
        Dwarf_Aranges *ar;
        size_t nar = 0;
        has_aranges = dwarf_getaranges(dbg, &ar, &nar) == 0 && nar > 0;
    }
    n = dwfl_module_getsymtab(mod);
    /* libdwfl's side scans the whole table per address: every symbol of
       a small table, an evenly spread 600 of a big one. */
    for (i = 1; i < n; i += n > 600 ? n / 600 : 1) {
        GElf_Sym s;
        GElf_Addr v;
        if (!dwfl_module_getsym_info(mod, i, &s, &v, NULL, NULL, NULL))
            continue;
        probe(mod, ix, v, &t, name);
        probe(mod, ix, v - 1, &t, name);
        if (s.st_size > 1) {
            probe(mod, ix, v + s.st_size / 2, &t, name);
            probe(mod, ix, v + s.st_size - 1, &t, name);
        }
        probe(mod, ix, v + s.st_size, &t, name);
    }
    for (k = 0; k < 1500 && hi > lo; k++)
        probe(mod, ix, lo + next_rand() % (hi - lo), &t, name);
    for (k = 0; k < 300; k++) {
        probe(mod, ix, hi + next_rand() % 0x100000, &t, name);
        probe(mod, ix, lo - 1 - next_rand() % 0x100000, &t, name);
    }
    pmp_symindex_get_stats(ix, &st);
    printf("%s: %d symbols, %ld addresses (%ld named), mismatches: "
           "symbol %ld, unit %ld, line %ld; answered by the index: "
           "symbols %lu of %lu, units %lu of %lu\n",
           name, n, t.probes, t.named, t.sym_bad, t.cu_bad, t.line_bad,
           st.sym_indexed, st.sym_indexed + st.sym_libdwfl, st.cu_indexed,
           st.cu_indexed + st.cu_libdwfl);
    /* Addresses with no sized symbol (outside the module, gaps, labels)
       are libdwfl's; the rest must be the index's. */
    CHECK_MSG(st.sym_indexed * 2 > (unsigned long)t.named,
              "%s: the symbol index answered only %lu", name, st.sym_indexed);
    CHECK_MSG(!has_aranges || st.cu_libdwfl == 0,
              "%s: %lu unit lookups left to libdwfl", name, st.cu_libdwfl);
    CHECK_MSG(n > 1, "%s: no symbol table", name);
    CHECK_MSG(t.named * 4 > t.probes, "%s: too few named addresses", name);
    CHECK_MSG(t.sym_bad == 0, "%s: %ld symbol mismatches", name, t.sym_bad);
    CHECK_MSG(t.cu_bad == 0, "%s: %ld unit mismatches", name, t.cu_bad);
    CHECK_MSG(t.line_bad == 0, "%s: %ld line mismatches", name, t.line_bad);
    pmp_symindex_free(ix);
    return DWARF_CB_OK;
}

int
main(int argc, char **argv)
{
    static const char *const files[] = {
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "tests/targets/bin/threads",
        "tests/targets/bin/threads-nopie",
        "tests/targets/bin/threads-static",
        "tests/targets/bin/threads-stripped",
        "tests/targets/bin/cxx",
        "tests/targets/bin/deep",
        "tests/targets/bin/gohello",
    };
    char cwd[4096], dirs[8192];
    char *debug_path = dirs;
    Dwfl_Callbacks cb = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = &debug_path,
    };
    size_t i;

    (void)argc;
    (void)argv;
    /* libdwfl takes relative debug directories as relative to the
       binary: the test programs' one is given whole. */
    if (!getcwd(cwd, sizeof(cwd)))
        return 1;
    snprintf(dirs, sizeof(dirs), "/usr/lib/debug:%s/tests/targets/bin/debug", cwd);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        Dwfl *dwfl;

        if (access(files[i], R_OK) != 0) {
            printf("%s: missing, skipped\n", files[i]);
            CHECK_MSG(i != 0, "libc is required");
            continue;
        }
        dwfl = dwfl_begin(&cb);
        dwfl_report_begin(dwfl);
        CHECK_MSG(dwfl_report_offline(dwfl, files[i], files[i], -1) != NULL,
                  "%s: %s", files[i], dwfl_errmsg(-1));
        dwfl_report_end(dwfl, NULL, NULL);
        dwfl_getmodules(dwfl, check_module, NULL, 0);
        dwfl_end(dwfl);
    }
    return unit_summary();
}

/*
 * symindex.h: per-module address -> symbol and address -> CU indexes
 * answering as libdwfl does, without its per-lookup scans (symindex.c).
 */
#ifndef PMPROF_SYMINDEX_H
#define PMPROF_SYMINDEX_H

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdint.h>

struct pmp_symindex;

/* An empty index (built on first use); NULL on OOM (lookups then ask
   libdwfl).  Freed with pmp_symindex_free. */
struct pmp_symindex *pmp_symindex_new(void);
void pmp_symindex_free(struct pmp_symindex *ix);

/*
 * dwfl_module_addrinfo(mod, addr, off, ...): the symbol's name (owned by
 * libelf) and addr's offset in it, or NULL.  ix may be NULL.
 */
const char *pmp_symindex_addrinfo(struct pmp_symindex *ix, Dwfl_Module *mod,
                                  uint64_t addr, uint64_t *off);

/*
 * dwfl_module_addrdie(mod, addr, bias): the compilation unit's DIE (in
 * *mem, or libdwfl's own), or NULL.  ix may be NULL.
 */
Dwarf_Die *pmp_symindex_addrdie(struct pmp_symindex *ix, Dwfl_Module *mod,
                                uint64_t addr, Dwarf_Die *mem,
                                Dwarf_Addr *bias);

/* How many lookups the index answered and how many went to libdwfl. */
struct pmp_symindex_stats {
    unsigned long sym_indexed, sym_libdwfl;
    unsigned long cu_indexed, cu_libdwfl;
};
void pmp_symindex_get_stats(const struct pmp_symindex *ix,
                            struct pmp_symindex_stats *out);

/* symbolize.c: the unit DIE holding addr in the session's modules (with
   its module and bias), or NULL; see pmp_symindex_addrdie. */
struct pmp_symbolizer;
Dwarf_Die *pmp_symbolizer_addrdie(struct pmp_symbolizer *sym, uint64_t addr,
                                  Dwarf_Die *mem, Dwarf_Addr *bias,
                                  Dwfl_Module **modp);
unsigned pmp_symbolizer_generation(struct pmp_symbolizer *sym);

#endif

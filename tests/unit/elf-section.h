/* elf-section.h: one ELF section's file offset, size and address by name,
 * for the tests and fuzzers that read a Go binary's .gopclntab and .text
 * themselves (tests/unit/test-go.c, tests/fuzz/fuzz-gopclntab.c). */
#ifndef PMPROF_TEST_ELF_SECTION_H
#define PMPROF_TEST_ELF_SECTION_H

#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <string.h>

static inline int
elf_section(Elf *elf, const char *want, size_t *off, size_t *size,
            uint64_t *addr)
{
    Elf_Scn *scn = NULL;
    size_t shstrndx;

    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return -1;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        const char *nm;
        if (!gelf_getshdr(scn, &sh))
            continue;
        nm = elf_strptr(elf, shstrndx, sh.sh_name);
        if (nm && strcmp(nm, want) == 0) {
            *off = sh.sh_offset;
            *size = sh.sh_size;
            *addr = sh.sh_addr;
            return 0;
        }
    }
    return -1;
}

#endif

/*
 * fuzz-gopclntab.c: libFuzzer harness over Go's function table
 * (ext/unwind/gopclntab.c).
 *
 * A real Go executable (PMPROF_FUZZ_GOEXE, default
 * tests/targets/bin/gohello) is the frame: the input replaces its
 * .gopclntab section's bytes (cut to the section's size, zeros after a
 * short input), the ELF around it stays valid.  Then the table is opened
 * and 512 PCs spread over .text are looked up: function, name, frame
 * size, file:line and the inline expansion.
 */
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gopclntab.h"
#include "../unit/elf-section.h"

static unsigned char *file;
static size_t flen, toff, tlen;
static uint64_t text, tsize;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("PMPROF_FUZZ_GOEXE");
    struct stat st;
    size_t xoff, xlen;
    uint64_t taddr;
    Elf *elf;
    int fd;

    (void)argc;
    (void)argv;
    if (!path)
        path = "tests/targets/bin/gohello";
    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "fuzz-gopclntab: cannot open %s (PMPROF_FUZZ_GOEXE)\n", path);
        exit(2);
    }
    flen = (size_t)st.st_size;
    file = malloc(flen);
    if (!file || read(fd, file, flen) != (ssize_t)flen)
        exit(2);
    close(fd);
    elf_version(EV_CURRENT);
    elf = elf_memory((char *)file, flen);
    if (!elf || elf_section(elf, ".gopclntab", &toff, &tlen, &taddr) ||
        elf_section(elf, ".text", &xoff, &xlen, &text) || toff + tlen > flen) {
        fprintf(stderr, "fuzz-gopclntab: %s has no .gopclntab or .text\n", path);
        exit(2);
    }
    tsize = xlen;
    elf_end(elf);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pmp_gomod *g = NULL;
    struct pmp_error err = {0};
    size_t n = size < tlen ? size : tlen;
    Elf *elf;
    int i;

    memcpy(file + toff, data, n);
    memset(file + toff + n, 0, tlen - n);
    elf = elf_memory((char *)file, flen);
    if (!elf)
        abort();
    if (pmp_gomod_open(&g, elf, 0, NULL, &err) == 0) {
        for (i = 0; i < 512; i++) {
            struct pmp_gofunc f;
            struct pmp_goline gl[65];
            uint64_t pc = text + (tsize * (uint64_t)i) / 512;
            const char *fl, *nm;
            int line;
            if (pmp_gomod_func(g, pc, &f) != 0)
                continue;
            nm = pmp_gomod_name(g, f.nameoff);
            (void)strlen(nm);
            (void)pmp_gomod_spdelta(g, &f, pc);
            pmp_gomod_line(g, &f, pc, &fl, &line);
            (void)strlen(fl);
            (void)pmp_gomod_expand(g, &f, pc, gl, 65);
        }
        (void)pmp_gomod_moduledata(g);
        pmp_gomod_free(g);
    } else if (err.msg[0] == '\0' || strchr(err.msg, '\n')) {
        fprintf(stderr, "open failed without a one-line message: '%s'\n", err.msg);
        abort();
    }
    elf_end(elf);
    return 0;
}

/*
 * test-go.c: the Go function-table backend (ext/unwind/gopclntab.c) on a real Go
 * binary (tests/targets/bin/gohello, or argv[1]) and on damaged copies of
 * its .gopclntab.
 *
 * Clean table: every function entry is found, its own entry maps back to
 * it, names are the ones the binary's symbol table gives (gohello keeps
 * .symtab), frame sizes are >= 0 after the prologue, file:line resolve.
 * Damaged tables (random bytes overwritten in the header, the function
 * table, the _func records and the pc-value tables; 3000 copies): open
 * either fails with an error or every lookup on 300 random pcs returns
 * without a crash or a hang, with names that are NUL-terminated inside
 * the table.  Run under ASan by `make asan`.
 * Exit status 0 / 1, 77 when gohello was not built (no Go toolchain).
 */
#include <fcntl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gopclntab.h"
#include "elf-section.h"
#include "unit.h"

static unsigned char *
slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    unsigned char *b;

    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    b = malloc((size_t)st.st_size);
    if (b && read(fd, b, (size_t)st.st_size) != st.st_size) {
        free(b);
        b = NULL;
    }
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

struct sym {
    uint64_t addr;
    const char *name;
};

static void
check_clean(Elf *elf, uint64_t text, size_t tsize)
{
    struct pmp_gomod *g = NULL;
    struct pmp_error err = {0};
    Elf_Scn *scn = NULL;
    size_t nfuncs = 0, named = 0, checked = 0;
    int found_park = 0;

    CHECK_EQ_INT(pmp_gomod_open(&g, elf, 0, NULL, &err), 0);
    if (!g)
        return;
    CHECK(pmp_gomod_moduledata(g) != 0);
    /* Every STT_FUNC symbol of Go text: the table names it the same. */
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        Elf_Data *d;
        size_t i, n;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
            continue;
        d = elf_getdata(scn, NULL);
        n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (i = 0; d && i < n; i++) {
            GElf_Sym s;
            struct pmp_gofunc f;
            const char *nm;
            if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
                s.st_value < text || s.st_value >= text + tsize)
                continue;
            nm = elf_strptr(elf, sh.sh_link, s.st_name);
            if (!nm || pmp_gomod_func(g, s.st_value, &f) != 0)
                continue;   /* C or assembly outside Go's table */
            /* Marker symbols (runtime.text) and the generic type..eq
               names the linker shortens ([...]) are not functions. */
            if (strcmp(nm, "runtime.text") == 0 || strstr(nm, "type..eq.["))
                continue;
            nfuncs++;
            {
                /* The symbol table marks assembly with .abi0. */
                char want[512];
                size_t l = pmp_strlcpy(want, nm, sizeof(want));
                if (l > 5 && strcmp(want + l - 5, ".abi0") == 0)
                    want[l - 5] = '\0';
                if (f.entry == s.st_value &&
                    strcmp(pmp_gomod_name(g, f.nameoff), want) == 0)
                    named++;
                else
                    fprintf(stderr, "mismatch at %#llx: %s vs %s\n",
                            (unsigned long long)s.st_value,
                            pmp_gomod_name(g, f.nameoff), nm);
            }
            if (strcmp(nm, "main.parkOn") == 0) {
                struct pmp_goline gl[8];
                size_t k = pmp_gomod_expand(g, &f, f.entry + 8, gl, 8);
                found_park = 1;
                CHECK(k >= 1);
                CHECK_STR(gl[k - 1].function, "main.parkOn");
                CHECK_MSG(strstr(gl[k - 1].file, "gohello.go") != NULL, "%s",
                          gl[k - 1].file);
                CHECK(gl[k - 1].line >= 20 && gl[k - 1].line <= 30);
                /* After its prologue a Go function with a frame has one
                   (its stack-growth path at the end has none). */
                {
                    int32_t mx = -1;
                    uint64_t pc;
                    for (pc = f.entry; pc < f.end; pc++)
                        mx = PMP_MAX(mx, pmp_gomod_spdelta(g, &f, pc));
                    CHECK(mx >= 16);
                }
                CHECK_EQ_INT(pmp_gomod_spdelta(g, &f, f.entry), 0);
            }
            checked++;
        }
    }
    CHECK(nfuncs > 500);
    CHECK_EQ_INT(named, nfuncs);
    CHECK(found_park);
    /* Past the end of Go text: not Go. */
    {
        struct pmp_gofunc f;
        CHECK(pmp_gomod_func(g, text + tsize + 0x100000, &f) != 0);
        CHECK(pmp_gomod_func(g, 0, &f) != 0);
    }
    (void)checked;
    pmp_gomod_free(g);
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
fuzz(unsigned char *file, size_t flen, size_t toff, size_t tlen,
     uint64_t text, size_t tsize)
{
    unsigned char *clean = malloc(tlen);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int trial, opened = 0, survived = 0;

    memcpy(clean, file + toff, tlen);
    for (trial = 0; trial < 3000; trial++) {
        struct pmp_gomod *g = NULL;
        struct pmp_error err = {0};
        Elf *elf;
        int k, nflip = 1 + (int)(rnd(&seed) % 16);

        memcpy(file + toff, clean, tlen);
        for (k = 0; k < nflip; k++) {
            /* Half the damage in the first 4 KiB (header, function
               table), the rest anywhere in the table. */
            size_t span = (rnd(&seed) & 1) ? PMP_MIN(tlen, (size_t)4096) : tlen;
            size_t at = (size_t)(rnd(&seed) % span);
            file[toff + at] = (unsigned char)rnd(&seed);
            if (rnd(&seed) % 4 == 0 && at + 4 <= tlen)
                memset(file + toff + at, 0xff, 4);
        }
        elf = elf_memory((char *)file, flen);
        if (!elf)
            continue;
        if (pmp_gomod_open(&g, elf, 0, NULL, &err) == 0) {
            int i;
            opened++;
            for (i = 0; i < 300; i++) {
                struct pmp_gofunc f;
                struct pmp_goline gl[65];
                uint64_t pc = text + rnd(&seed) % tsize;
                const char *file_, *nm;
                int line;
                if (pmp_gomod_func(g, pc, &f) != 0)
                    continue;
                nm = pmp_gomod_name(g, f.nameoff);
                (void)strlen(nm);
                (void)pmp_gomod_spdelta(g, &f, pc);
                pmp_gomod_line(g, &f, pc, &file_, &line);
                (void)strlen(file_);
                (void)pmp_gomod_expand(g, &f, pc, gl, 65);
            }
            pmp_gomod_free(g);
            survived++;
        } else {
            CHECK_MSG(err.msg[0] != '\0', "open failed without a message");
        }
        elf_end(elf);
    }
    memcpy(file + toff, clean, tlen);
    CHECK_EQ_INT(survived, opened);
    CHECK(opened > 100);   /* most damage leaves a parseable header */
    free(clean);
}

int
main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "tests/targets/bin/gohello";
    size_t flen = 0, toff, tlen, xoff, xlen;
    uint64_t taddr, text;
    unsigned char *file = slurp(path, &flen);
    Elf *elf;

    if (!file) {
        printf("skipped: %s not built (no Go toolchain)\n", path);
        return UNIT_SKIP;
    }
    elf_version(EV_CURRENT);
    elf = elf_memory((char *)file, flen);
    if (!elf || elf_section(elf, ".gopclntab", &toff, &tlen, &taddr) ||
        elf_section(elf, ".text", &xoff, &xlen, &text)) {
        printf("FAIL: %s has no .gopclntab or .text\n", path);
        return 1;
    }
    check_clean(elf, text, xlen);
    elf_end(elf);
    fuzz(file, flen, toff, tlen, text, xlen);
    free(file);
    return unit_summary();
}

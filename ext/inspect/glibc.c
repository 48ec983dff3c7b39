/*
 * glibc.c: which module of a process is glibc's libc, and which release
 * it is, read from the target's own file (never from this machine).
 *
 * Owns: the libc file-name rule and the "release version X.Y" banner.
 * The layouts keyed on that release live in layout-glibc-*.h; heap.c and
 * locks.c ask here first.
 */

#define _GNU_SOURCE 1   /* memmem */

#include "pmprof-internal.h"

#include <string.h>

void
pmp_glibc_release(Elf *elf, char *out, size_t outlen)
{
    static const char key[] = "release version ";
    GElf_Shdr sh;
    Elf_Scn *scn;
    Elf_Data *d;
    const char *p, *end;

    out[0] = '\0';
    if (!elf || !(scn = pmp_elf_section(elf, ".rodata", &sh)) ||
        sh.sh_type != SHT_PROGBITS || !(d = elf_getdata(scn, NULL)) ||
        !d->d_buf)
        return;
    p = d->d_buf;
    end = p + d->d_size;
    while (p + sizeof(key) < end) {
        size_t k = 0;

        p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
        if (!p)
            return;
        p += sizeof(key) - 1;
        while (p + k < end && k + 1 < outlen &&
               ((p[k] >= '0' && p[k] <= '9') || p[k] == '.'))
            k++;
        while (k && p[k - 1] == '.')
            k--;
        if (k) {
            memcpy(out, p, k);
            out[k] = '\0';
            return;
        }
    }
}

static int
find_libc_cb(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr base,
             void *arg)
{
    Dwfl_Module **out = arg;
    const char *b = name ? strrchr(name, '/') : NULL;

    b = b ? b + 1 : name;
    /* libc.so.6, or libc-2.31.so (the file's name before 2.34) */
    if (b && (strncmp(b, "libc.so", 7) == 0 ||
              (strncmp(b, "libc-", 5) == 0 && b[5] >= '0' && b[5] <= '9' &&
               strstr(b, ".so")))) {
        *out = mod;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

Dwfl_Module *
pmp_find_libc(Dwfl *dwfl)
{
    Dwfl_Module *mod = NULL;

    if (dwfl)
        dwfl_getmodules(dwfl, find_libc_cb, &mod, 0);
    return mod;
}

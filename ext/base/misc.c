/*
 * misc.c: syscall names and symbol demangling.
 *
 * Owns: the x86_64 syscall name table (generated from the kernel headers
 * at build time) and demangling of C++ (Itanium) and legacy Rust names.
 */
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "syscalls.h"

/* From libstdc++ (the C++ ABI's demangler). */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

const char *
pmp_syscall_name(long nr)
{
    size_t lo = 0, hi = PMP_ARRAY_SIZE(pmp_syscall_table);

    /* The table is generated in ascending order. */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pmp_syscall_table[mid].nr == nr)
            return pmp_syscall_table[mid].name;
        if (pmp_syscall_table[mid].nr < nr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Legacy Rust symbols are Itanium-mangled paths ending in a hash segment
 * "17h<16 hex digits>E"; the demangled "::h0123456789abcdef" suffix is
 * noise in a profile and is dropped.
 */
static void
strip_rust_hash(char *s)
{
    size_t n = strlen(s);
    size_t i;

    if (n < 19 || memcmp(s + n - 19, "::h", 3) != 0)
        return;
    for (i = n - 16; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return;
    }
    s[n - 19] = '\0';
}

char *
pmp_demangle(const char *name)
{
    int status = 0;
    char *r;

    if (!name || name[0] != '_' || name[1] != 'Z')
        return NULL;
    r = __cxa_demangle(name, NULL, NULL, &status);
    if (status != 0 || !r) {
        free(r);
        return NULL;
    }
    strip_rust_hash(r);
    return r;
}

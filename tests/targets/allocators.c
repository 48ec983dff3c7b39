/* allocators.c: a program whose malloc may not be glibc's.  tests/
 * test_heap_allocators.py links it against jemalloc, tcmalloc or mimalloc
 * (shared or static), or runs it with LD_PRELOAD, and checks that
 * pmprof heap names that allocator instead of reading glibc's arenas.
 *
 * main allocates and frees a few thousand blocks, then prints which
 * module defines the malloc it calls (dladdr: its own truth, not the
 * test's guess), "MALLOC <path>", then READY, and sleeps in pause().
 */
#include "common.h"

#include <dlfcn.h>

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    static void *v[4096];
    void *(*volatile m)(size_t) = malloc;
    char line[512];
    Dl_info di;
    size_t i;

    for (i = 0; i < 4096; i++)
        if (!(v[i] = m(16 + (i % 200) * 8)))
            tgt_die("malloc");
    for (i = 0; i < 4096; i += 3)
        free(v[i]);
    if (!dladdr((void *)m, &di) || !di.dli_fname)
        tgt_die("dladdr(malloc)");
    snprintf(line, sizeof(line), "MALLOC %s", di.dli_fname);
    if (write(1, line, strlen(line)) < 0 || write(1, "\n", 1) < 0)
        tgt_die("write");
    tgt_say("READY");
    if (o.gencore)
        abort();
    for (;;)
        pause();
}

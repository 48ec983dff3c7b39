/*
 * fuzz-core.c: libFuzzer harness over a core file made of the input bytes.
 *
 * The input is written to a memfd and opened as a core (/proc/self/fd/N)
 * through the same path as `pmprof --core`: ext/target/target-core.c reads its
 * headers and notes, then one command walks the hostile memory.  Built
 * once per command (docs/reliability.md, make fuzz):
 *   FUZZ_CMD_STACKS  snapshot (unwind every thread) + merged stacks text
 *   FUZZ_CMD_LOCKS   snapshot with every futex wait decoded (ext/inspect/locks.c)
 *   FUZZ_CMD_HEAP    the glibc heap walk with every list (ext/inspect/heap.c)
 *   FUZZ_CMD_GO      the Go runtime reader: goroutines, memstats, sched
 *                    (ext/inspect/golang.c, ext/unwind/gopclntab.c through the symbolizer)
 * Environment: PMPROF_FUZZ_EXE, the executable the core is of (else the
 * one NT_FILE names); PMPROF_FUZZ_CACHE, the debug-file cache directory.
 *
 * A crash, a sanitizer report or a leak is a finding; an error return is
 * not (hostile input may be refused), but its message must be one line.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pmprof-internal.h"

static int memfd = -1;
static char core_path[64];

static void
one_line(const struct pmp_error *err)
{
    if (strchr(err->msg, '\n')) {
        fprintf(stderr, "error message of more than one line: %s\n", err->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pmp_session_opts o = {0};
    struct pmp_session *s = NULL;
    struct pmp_error err = {0};
    size_t done = 0;

    if (memfd < 0) {
        memfd = memfd_create("fuzz-core", 0);
        if (memfd < 0)
            abort();
        snprintf(core_path, sizeof(core_path), "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) != 0)
        abort();
    while (done < size) {
        ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    o.exe = getenv("PMPROF_FUZZ_EXE");
    o.cache_dir = getenv("PMPROF_FUZZ_CACHE");
    if (pmp_session_open_core(&s, core_path, &o, &err) != 0) {
        one_line(&err);
        return 0;
    }
#if defined(FUZZ_CMD_STACKS) || defined(FUZZ_CMD_LOCKS)
    {
        struct pmp_snapshot_opts so = {0};
        struct pmp_snapshot *snap = NULL;
#ifdef FUZZ_CMD_LOCKS
        so.decode_waits = 1;
#endif
        if (pmp_session_snapshot(s, &so, &snap, &err) == 0) {
            struct pmp_render_opts ro = {0};
            char *text = NULL;
            size_t ngroups = 0;
            if (pmp_render_stacks(s, snap, &ro, &text, &ngroups, &err) == 0)
                free(text);
            else
                one_line(&err);
            pmp_snapshot_free(snap);
        } else {
            one_line(&err);
        }
    }
#endif
#ifdef FUZZ_CMD_HEAP
    {
        struct pmp_heap_opts ho = {0};
        struct pmp_heap *h = NULL;
        ho.walk = 1;
        ho.lists = 1;
        if (pmp_session_heap(s, &ho, &h, &err) == 0)
            pmp_heap_free(h);
        else
            one_line(&err);
    }
#endif
#ifdef FUZZ_CMD_GO
    {
        struct pmp_go *g = NULL;
        if (pmp_session_go(s, NULL, NULL, NULL, &g, &err) == 0)
            pmp_go_free(g);
        else
            one_line(&err);
    }
#endif
    pmp_session_free(s);
    return 0;
}

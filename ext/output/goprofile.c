/*
 * goprofile.c: the goroutine profile (pprof "goroutine", one count per
 * goroutine, its pprof labels as labels) of what inspect/golang.c read.
 *
 * Owns: turning struct pmp_go into a pprof file through pprof.c; the
 * frames are symbolized by the session's symbol source, after the resume.
 */
#include <time.h>

#include "pmprof-internal.h"

#define MAX_LABELS 64            /* golang.c keeps at most 64 per g */

int
pmp_go_write_profile(struct pmp_session *s, const struct pmp_go *g,
                     const char *path, struct pmp_error *err)
{
    struct pmp_symsource src;
    struct pmp_pprof *p = NULL;
    struct pmp_label lb[MAX_LABELS];
    size_t i, k;
    int rc;

    pmp_session_symsource(s, &src);
    rc = pmp_pprof_begin_count(&p, &src, "goroutine",
                               (int64_t)pmp_now_ns(CLOCK_REALTIME), NULL, 0, err);
    if (rc)
        return rc;
    for (i = 0; i < g->ngoroutines && rc == 0; i++) {
        const struct pmp_goroutine *gr = &g->goroutines[i];
        int64_t one = 1;
        size_t nl = PMP_MIN(gr->nlabels, PMP_ARRAY_SIZE(lb));

        if (gr->system || gr->nframes == 0)
            continue;
        for (k = 0; k < nl; k++) {
            lb[k].key = gr->labels[k].key;
            lb[k].str = gr->labels[k].value;
            lb[k].num = 0;
            lb[k].unit = NULL;
        }
        rc = pmp_pprof_add(p, gr->pcs, gr->frame_flags, (size_t)gr->nframes,
                           &one, lb, nl, err);
    }
    if (rc == 0)
        rc = pmp_pprof_write(p, path, err);
    pmp_pprof_free(p);
    return rc;
}

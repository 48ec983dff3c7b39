/*
 * target-buf.c: a target over in-memory segments (unit tests, fuzzing).
 *
 * Owns: reads from caller-owned byte ranges at chosen addresses, and a
 * fixed thread list.  Nothing is stopped or resumed.
 *
 * Must not: copy or free the segments (the caller keeps them alive).
 */
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"

struct buf_target {
    struct pmp_target base;
    struct pmp_buf_segment *segs;
    size_t nsegs;
    struct pmp_target_thread *threads;
    size_t nthreads;
};

static long
buf_read(struct pmp_target *t, uint64_t addr, void *out, size_t len,
         struct pmp_error *err)
{
    struct buf_target *b = (struct buf_target *)t;
    size_t i;

    (void)err;
    for (i = 0; i < b->nsegs; i++) {
        const struct pmp_buf_segment *s = &b->segs[i];
        if (addr >= s->addr && addr - s->addr < s->len) {
            size_t off = (size_t)(addr - s->addr);
            size_t n = PMP_MIN(len, s->len - off);
            memcpy(out, (const unsigned char *)s->data + off, n);
            return (long)n;
        }
    }
    return 0;
}

static int
buf_stop(struct pmp_target *t, struct pmp_target_thread **threads,
         size_t *nthreads, struct pmp_error *err)
{
    struct buf_target *b = (struct buf_target *)t;

    (void)err;
    *threads = b->threads;
    *nthreads = b->nthreads;
    return 0;
}

static void
buf_resume(struct pmp_target *t)
{
    (void)t;
}

static int
buf_mappings(struct pmp_target *t, const struct pmp_mapping **maps,
             size_t *nmaps, struct pmp_error *err)
{
    (void)t;
    (void)err;
    *maps = NULL;
    *nmaps = 0;
    return 0;
}

static void
buf_free(struct pmp_target *t)
{
    struct buf_target *b = (struct buf_target *)t;

    free(b->segs);
    free(b->threads);
    free(b);
}

static const struct pmp_target_ops buf_ops = {
    .kind = "buf",
    .read = buf_read,
    .stop = buf_stop,
    .resume = buf_resume,
    .mappings = buf_mappings,
    .free = buf_free,
};

int
pmp_target_buf_new(struct pmp_target **out,
                   const struct pmp_buf_segment *segs, size_t nsegs,
                   const struct pmp_target_thread *threads, size_t nthreads,
                   struct pmp_error *err)
{
    struct buf_target *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (!b)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    b->base.ops = &buf_ops;
    b->segs = pmp_calloc(nsegs ? nsegs : 1, sizeof(*segs));
    b->threads = pmp_calloc(nthreads ? nthreads : 1, sizeof(*threads));
    if (!b->segs || !b->threads) {
        buf_free(&b->base);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    if (nsegs)
        memcpy(b->segs, segs, nsegs * sizeof(*segs));
    if (nthreads)
        memcpy(b->threads, threads, nthreads * sizeof(*threads));
    b->nsegs = nsegs;
    b->nthreads = nthreads;
    *out = &b->base;
    return 0;
}

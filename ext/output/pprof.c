/*
 * pprof.c: the pprof profile builder and writer, after Go's runtime/pprof
 * profileBuilder (src/runtime/pprof/proto.go): raw stacks are merged while
 * adding, symbols are resolved once per unique frame at write time.
 *
 * Owns:
 *  - the sample table: samples deduplicated on their raw (pcs, activation
 *    flags, labels) in a hash table, values summed;
 *  - at write time: one symsource lookup per unique (pc, activation), one
 *    Location per unique (pc, activation) with Line[] innermost first,
 *    Functions deduplicated on (name, system_name, filename), the string
 *    table ([0] = "", deduplicated), Mappings for the modules that are
 *    referenced (the main executable always first), protobuf-c encoding,
 *    gzip, and an atomic replace of the output file (temporary + rename).
 *
 * Must not: touch the target or the debugger (symbols come only through
 * the pmp_symsource), include Python.h, keep global state, or write a
 * partial file under the final name.
 *
 * Format facts relied on (checked against go tool pprof 1.19):
 * string_table[0] must be ""; ids are nonzero; mapping[0] is read as the
 * main binary; Location.line is innermost first with the physical function
 * last; callers' addresses are return address - 1; labels pprof drops
 * (num 0 without a unit, str "") are never emitted; samples without
 * frames are valid but hidden by pprof (callers charge such stacks to a
 * synthetic frame instead).
 */
#define ZLIB_CONST
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pmprof-internal.h"
#include "profile.pb-c.h"

#define MAX_PCS PMP_MAX_FRAMES_CAP   /* 4096: the unwinder's hard cap */
#define MAX_LABELS 64
#define MAX_SAMPLE_TYPES 8
#define GZ_CHUNK (64 * 1024)
#define GZ_LEVEL 6                    /* gzip's default */
#define TMP_TRIES 100

/* ------------------------------------------------------------------ */
/* The builder: raw samples                                            */

struct label {
    const char *key;     /* interned */
    const char *str;     /* interned; NULL for a numeric label */
    const char *unit;    /* interned; NULL: none (numeric labels only) */
    int64_t num;
};

/* A sample frame's kind (sample.act). */
enum { FRAME_RETURN = 0, FRAME_EXACT = 1, FRAME_TAILCALL = 2 };

struct sample {
    size_t next;         /* index+1 of the next sample with this hash */
    size_t npcs, nlabels;
    /* One allocation, starting at values (8-byte items first): */
    int64_t *values;     /* ntypes entries; owns the block */
    uint64_t *pcs;
    struct label *labels;
    uint8_t *act;        /* FRAME_* below: exact pc, return address, or
                            a tail-call frame */
};

struct pmp_pprof {
    struct pmp_symsource syms;            /* copy; ctx not owned */
    struct pmp_strpool pool;              /* every string kept */
    struct pmp_value_type types[MAX_SAMPLE_TYPES];   /* interned */
    size_t ntypes;
    struct pmp_value_type period_type;    /* type NULL: none */
    int64_t period, time_nanos, duration_nanos;
    const char *default_type;             /* NULL: unset */
    const char **comments;
    size_t ncomments;
    struct sample *samples;
    size_t nsamples, samples_cap;
    struct pmp_u64map by_hash;            /* hash -> index+1 of newest */
};

static uint64_t
mix(uint64_t h, uint64_t v)
{
    return pmp_hash64(h ^ (v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6)));
}

/* The hash table reserves UINT64_MAX as its empty key. */
static uint64_t
map_key(uint64_t h)
{
    return h == UINT64_MAX ? 0 : h;
}

static int64_t
add_sat(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Intern s (NULL as ""); on failure set *oom and return NULL. */
static const char *
keep(struct pmp_pprof *p, const char *s, int *oom)
{
    const char *in = pmp_strpool_intern(&p->pool, s ? s : "");

    if (!in)
        *oom = 1;
    return in;
}

static int
check_opts(const struct pmp_symsource *syms, const struct pmp_pprof_opts *o,
           struct pmp_error *err)
{
    size_t i;

    if (!syms || !syms->lookup || !syms->nmodules || !syms->module)
        return pmp_error_set(err, PMP_E_USAGE,
                             "pprof: incomplete symbol source");
    if (!o)
        return pmp_error_set(err, PMP_E_USAGE, "pprof: no options");
    if (o->nsample_types < 1 || o->nsample_types > MAX_SAMPLE_TYPES ||
        !o->sample_types)
        return pmp_error_set(err, PMP_E_USAGE,
                             "pprof: a profile has 1 to %d sample types, "
                             "not %zu", MAX_SAMPLE_TYPES, o->nsample_types);
    for (i = 0; i < o->nsample_types; i++)
        if (!o->sample_types[i].type || !o->sample_types[i].type[0])
            return pmp_error_set(err, PMP_E_USAGE,
                                 "pprof: sample type %zu has no name", i);
    if (o->default_sample_type) {
        for (i = 0; i < o->nsample_types; i++)
            if (strcmp(o->sample_types[i].type, o->default_sample_type) == 0)
                break;
        if (i == o->nsample_types)
            return pmp_error_set(err, PMP_E_USAGE,
                                 "pprof: default sample type '%s' is not "
                                 "one of the sample types",
                                 o->default_sample_type);
    }
    if (o->ncomments && !o->comments)
        return pmp_error_set(err, PMP_E_USAGE, "pprof: comments missing");
    for (i = 0; i < o->ncomments; i++)
        if (!o->comments[i])
            return pmp_error_set(err, PMP_E_USAGE,
                                 "pprof: comment %zu is NULL", i);
    return 0;
}

int
pmp_pprof_begin(struct pmp_pprof **out, const struct pmp_symsource *syms,
                const struct pmp_pprof_opts *opts, struct pmp_error *err)
{
    struct pmp_pprof *p = NULL;
    size_t i;
    int oom = 0, rc;

    if (!out)
        return pmp_error_set(err, PMP_E_USAGE, "pprof: no output pointer");
    *out = NULL;
    rc = check_opts(syms, opts, err);
    if (rc)
        goto out;
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    p->syms = *syms;
    pmp_strpool_init(&p->pool);
    pmp_u64map_init(&p->by_hash);
    p->ntypes = opts->nsample_types;
    for (i = 0; i < p->ntypes; i++) {
        p->types[i].type = keep(p, opts->sample_types[i].type, &oom);
        p->types[i].unit = keep(p, opts->sample_types[i].unit, &oom);
    }
    if (opts->period_type.type) {
        p->period_type.type = keep(p, opts->period_type.type, &oom);
        p->period_type.unit = keep(p, opts->period_type.unit, &oom);
    }
    p->period = opts->period;
    p->time_nanos = opts->time_nanos;
    p->duration_nanos = opts->duration_nanos;
    if (opts->default_sample_type)
        p->default_type = keep(p, opts->default_sample_type, &oom);
    if (opts->ncomments) {
        p->comments = pmp_calloc(opts->ncomments, sizeof(*p->comments));
        if (!p->comments)
            oom = 1;
        for (i = 0; p->comments && i < opts->ncomments; i++)
            p->comments[i] = keep(p, opts->comments[i], &oom);
        p->ncomments = opts->ncomments;
    }
    if (oom) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    *out = p;
    p = NULL;
out:
    pmp_pprof_free(p);
    return rc;
}

int
pmp_pprof_begin_count(struct pmp_pprof **out, const struct pmp_symsource *syms,
                      const char *type, int64_t time_nanos,
                      const char *const *comments, size_t ncomments,
                      struct pmp_error *err)
{
    struct pmp_value_type vt = {type, "count"};
    struct pmp_pprof_opts o = {0};

    o.sample_types = &vt;
    o.nsample_types = 1;
    o.period_type = vt;
    o.period = 1;
    o.time_nanos = time_nanos;
    o.comments = comments;
    o.ncomments = ncomments;
    return pmp_pprof_begin(out, syms, &o, err);
}

void
pmp_pprof_free(struct pmp_pprof *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->nsamples; i++)
        free(p->samples[i].values);
    free(p->samples);
    free(p->comments);
    pmp_u64map_release(&p->by_hash);
    pmp_strpool_release(&p->pool);
    free(p);
}

static uint64_t
sample_hash(const uint64_t *pcs, const uint8_t *act, size_t npcs,
            const struct label *lab, size_t nlab)
{
    uint64_t h = mix(npcs, nlab);
    size_t i;

    for (i = 0; i < npcs; i++)
        h = mix(h, pcs[i] * 4 + act[i]);
    /* Interned strings: equal strings have equal pointers. */
    for (i = 0; i < nlab; i++) {
        h = mix(h, (uintptr_t)lab[i].key);
        h = mix(h, (uintptr_t)lab[i].str);
        h = mix(h, (uintptr_t)lab[i].unit);
        h = mix(h, (uint64_t)lab[i].num);
    }
    return h;
}

static int
same_sample(const struct sample *s, const uint64_t *pcs, const uint8_t *act,
            size_t npcs, const struct label *lab, size_t nlab)
{
    size_t i;

    if (s->npcs != npcs || s->nlabels != nlab)
        return 0;
    if ((npcs && memcmp(s->pcs, pcs, npcs * sizeof(*pcs)) != 0) ||
        (npcs && memcmp(s->act, act, npcs) != 0))
        return 0;
    for (i = 0; i < nlab; i++)
        if (s->labels[i].key != lab[i].key ||
            s->labels[i].str != lab[i].str ||
            s->labels[i].unit != lab[i].unit ||
            s->labels[i].num != lab[i].num)
            return 0;
    return 1;
}

/*
 * Normalize labels into lab[]: strings interned, unit dropped from string
 * labels and "" units treated as none.  Labels pprof would silently drop
 * are left out: a numeric one with num 0 and no unit, and a string one
 * with value "" (string index 0 reads as "no value").  Leaving them out
 * here also keeps such samples merging with their label-less twins.
 */
static int
normalize_labels(struct pmp_pprof *p, const struct pmp_label *labels,
                 size_t nlabels, struct label *lab, size_t *nlab,
                 struct pmp_error *err)
{
    const struct pmp_label *l;
    size_t i, n = 0;
    int oom = 0;

    for (i = 0; i < nlabels; i++) {
        l = &labels[i];
        if (!l->key || !l->key[0])
            return pmp_error_set(err, PMP_E_USAGE,
                                 "pprof: label %zu has no key", i);
        if (l->str ? !l->str[0] : l->num == 0 && (!l->unit || !l->unit[0]))
            continue;
        lab[n].key = keep(p, l->key, &oom);
        lab[n].str = l->str ? keep(p, l->str, &oom) : NULL;
        lab[n].unit = !l->str && l->unit && l->unit[0]
                          ? keep(p, l->unit, &oom) : NULL;
        lab[n].num = l->str ? 0 : l->num;
        n++;
    }
    if (oom)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    *nlab = n;
    return 0;
}

int
pmp_pprof_add(struct pmp_pprof *p, const uint64_t *pcs,
              const uint8_t *frame_flags, size_t npcs, const int64_t *values,
              const struct pmp_label *labels, size_t nlabels,
              struct pmp_error *err)
{
    uint8_t act[MAX_PCS];
    struct label lab[MAX_LABELS];
    size_t nlab = 0, i, idx, size;
    struct sample *s;
    char *mem = NULL;
    uint64_t h;
    int rc = 0;

    if (!p || !values || (npcs && !pcs) || (nlabels && !labels)) {
        rc = pmp_error_set(err, PMP_E_USAGE,
                           "pprof: missing builder, values, pcs or labels");
        goto out;
    }
    if (npcs > MAX_PCS) {
        rc = pmp_error_set(err, PMP_E_USAGE,
                           "pprof: %zu frames in a sample, at most %d", npcs,
                           MAX_PCS);
        goto out;
    }
    if (nlabels > MAX_LABELS) {
        rc = pmp_error_set(err, PMP_E_USAGE,
                           "pprof: %zu labels on a sample, at most %d",
                           nlabels, MAX_LABELS);
        goto out;
    }
    for (i = 0; i < npcs; i++)
        act[i] = !frame_flags ? i == 0
                 : (frame_flags[i] & PMP_FRAME_TAILCALL) ? FRAME_TAILCALL
                 : (frame_flags[i] & PMP_FRAME_ACTIVATION) != 0;
    rc = normalize_labels(p, labels, nlabels, lab, &nlab, err);
    if (rc)
        goto out;
    h = map_key(sample_hash(pcs, act, npcs, lab, nlab));
    for (idx = (uintptr_t)pmp_u64map_get(&p->by_hash, h); idx;
         idx = s->next) {
        s = &p->samples[idx - 1];
        if (same_sample(s, pcs, act, npcs, lab, nlab)) {
            for (i = 0; i < p->ntypes; i++)
                s->values[i] = add_sat(s->values[i], values[i]);
            goto out;
        }
    }
    rc = pmp_grow((void **)&p->samples, &p->samples_cap, p->nsamples + 1,
                  sizeof(*p->samples));
    if (rc) {
        rc = pmp_error_set(err, rc, "out of memory");
        goto out;
    }
    /* Bounded by the caps above: no overflow. */
    size = p->ntypes * sizeof(int64_t) + npcs * sizeof(uint64_t) +
           nlab * sizeof(struct label) + npcs;
    mem = malloc(size);
    if (!mem) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    s = &p->samples[p->nsamples];
    memset(s, 0, sizeof(*s));
    s->values = (int64_t *)(void *)mem;
    s->pcs = (uint64_t *)(void *)(s->values + p->ntypes);
    s->labels = (struct label *)(void *)(s->pcs + npcs);
    s->act = (uint8_t *)(s->labels + nlab);
    memcpy(s->values, values, p->ntypes * sizeof(int64_t));
    if (npcs) {
        memcpy(s->pcs, pcs, npcs * sizeof(*pcs));
        memcpy(s->act, act, npcs);
    }
    if (nlab)
        memcpy(s->labels, lab, nlab * sizeof(*lab));
    s->npcs = npcs;
    s->nlabels = nlab;
    s->next = (uintptr_t)pmp_u64map_get(&p->by_hash, h);
    rc = pmp_u64map_put(&p->by_hash, h, (void *)(uintptr_t)(p->nsamples + 1));
    if (rc) {
        rc = pmp_error_set(err, rc, "out of memory");
        goto out;
    }
    p->nsamples++;
    mem = NULL;   /* owned by the sample now */
out:
    free(mem);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writing: symbolize, build the tables, encode                        */

struct fn {                 /* a Function: id = index + 1 */
    const char *name, *system_name, *file;   /* interned */
    size_t next;            /* index+1 of the next with the same hash */
};

struct loc {                /* a Location: id = index + 1 */
    uint64_t address;
    long module;            /* symsource module index, -1: none */
    size_t line0, nlines;   /* range in writer.lines */
};

struct line {
    uint64_t function_id;
    int64_t line, column;
};

struct writer {
    struct pmp_pprof *p;
    struct pmp_error *err;
    int rc;                         /* sticky: the first error */
    /* string table: interned pointer -> index+1 */
    const char **strs;
    size_t nstrs, strs_cap;
    struct pmp_u64map str_ids;
    /* functions */
    struct fn *fns;
    size_t nfns, fns_cap;
    struct pmp_u64map fn_by_hash;
    /* locations: pc -> id per activation; UINT64_MAX is the map's empty
       key, so that pc has its own slots */
    struct loc *locs;
    size_t nlocs, locs_cap;
    struct pmp_u64map loc_ids[3];   /* per FRAME_* kind */
    uint64_t maxpc_loc[3];
    struct line *lines;
    size_t nlines, lines_cap;
    uint64_t *sample_locs;          /* every sample's location ids */
    /* mappings: module index -> id (0: none), id-1 -> module index */
    size_t nmodules;
    uint64_t *map_ids;
    size_t *map_modules;
    size_t nmaps;
    /* message memory, freed together */
    void **allocs;
    size_t nallocs, allocs_cap;
    Perftools__Profiles__ValueType period_type;
};

static void
writer_init(struct writer *w, struct pmp_pprof *p, struct pmp_error *err)
{
    memset(w, 0, sizeof(*w));
    w->p = p;
    w->err = err;
    pmp_u64map_init(&w->str_ids);
    pmp_u64map_init(&w->fn_by_hash);
    pmp_u64map_init(&w->loc_ids[0]);
    pmp_u64map_init(&w->loc_ids[1]);
    pmp_u64map_init(&w->loc_ids[2]);
}

static void
writer_release(struct writer *w)
{
    size_t i;

    for (i = 0; i < w->nallocs; i++)
        free(w->allocs[i]);
    free(w->allocs);
    free(w->strs);
    free(w->fns);
    free(w->locs);
    free(w->lines);
    free(w->sample_locs);
    free(w->map_ids);
    free(w->map_modules);
    pmp_u64map_release(&w->str_ids);
    pmp_u64map_release(&w->fn_by_hash);
    pmp_u64map_release(&w->loc_ids[0]);
    pmp_u64map_release(&w->loc_ids[1]);
    pmp_u64map_release(&w->loc_ids[2]);
}

/* Record the first error; later steps see w->rc and do nothing. */
static void
fail_nomem(struct writer *w)
{
    if (!w->rc)
        w->rc = pmp_error_set(w->err, PMP_E_NOMEM,
                              "out of memory writing the profile");
}

/* Zeroed memory for n items, freed with the writer; NULL after an error. */
static void *
w_alloc(struct writer *w, size_t n, size_t size)
{
    void *m;

    if (w->rc)
        return NULL;
    if (pmp_grow((void **)&w->allocs, &w->allocs_cap, w->nallocs + 1,
                 sizeof(*w->allocs))) {
        fail_nomem(w);
        return NULL;
    }
    m = pmp_calloc(n, size);
    if (!m) {
        fail_nomem(w);
        return NULL;
    }
    w->allocs[w->nallocs++] = m;
    return m;
}

/* String table index of s (NULL as ""); 0 after an error. */
static int64_t
str_id(struct writer *w, const char *s)
{
    const char *in;
    size_t idx;

    if (w->rc)
        return 0;
    in = pmp_strpool_intern(&w->p->pool, s ? s : "");
    if (!in) {
        fail_nomem(w);
        return 0;
    }
    idx = (uintptr_t)pmp_u64map_get(&w->str_ids, (uintptr_t)in);
    if (idx)
        return (int64_t)(idx - 1);
    if (pmp_grow((void **)&w->strs, &w->strs_cap, w->nstrs + 1,
                 sizeof(*w->strs)) ||
        pmp_u64map_put(&w->str_ids, (uintptr_t)in,
                       (void *)(uintptr_t)(w->nstrs + 1))) {
        fail_nomem(w);
        return 0;
    }
    w->strs[w->nstrs] = in;
    return (int64_t)w->nstrs++;
}

/* Function id for a line's (name, system_name, file); 0 after an error. */
static uint64_t
function_id(struct writer *w, const struct pmp_line *ln)
{
    struct pmp_pprof *p = w->p;
    const char *name, *sys, *file;
    struct fn *f;
    uint64_t h;
    size_t idx;
    int oom = 0;

    name = keep(p, ln->function, &oom);
    sys = keep(p, ln->system_name && ln->system_name[0] ? ln->system_name
                                                        : ln->function, &oom);
    file = keep(p, ln->file, &oom);
    if (oom) {
        fail_nomem(w);
        return 0;
    }
    h = map_key(mix(mix(mix(0, (uintptr_t)name), (uintptr_t)sys),
                    (uintptr_t)file));
    for (idx = (uintptr_t)pmp_u64map_get(&w->fn_by_hash, h); idx;
         idx = f->next) {
        f = &w->fns[idx - 1];
        if (f->name == name && f->system_name == sys && f->file == file)
            return idx;
    }
    if (pmp_grow((void **)&w->fns, &w->fns_cap, w->nfns + 1,
                 sizeof(*w->fns))) {
        fail_nomem(w);
        return 0;
    }
    f = &w->fns[w->nfns];
    f->name = name;
    f->system_name = sys;
    f->file = file;
    f->next = (uintptr_t)pmp_u64map_get(&w->fn_by_hash, h);
    if (pmp_u64map_put(&w->fn_by_hash, h, (void *)(uintptr_t)(w->nfns + 1))) {
        fail_nomem(w);
        return 0;
    }
    return ++w->nfns;
}

static uint64_t
loc_get(const struct writer *w, uint64_t pc, int act)
{
    if (pc == UINT64_MAX)
        return w->maxpc_loc[act];
    return (uintptr_t)pmp_u64map_get(&w->loc_ids[act], pc);
}

static int
loc_put(struct writer *w, uint64_t pc, int act, uint64_t id)
{
    if (pc == UINT64_MAX) {
        w->maxpc_loc[act] = id;
        return 0;
    }
    return pmp_u64map_put(&w->loc_ids[act], pc, (void *)(uintptr_t)id);
}

/*
 * Location id for (pc, act), symbolizing it on first sight; 0 after an
 * error.  Lines whose function has no name are left out (a Line needs a
 * function; pprof shows a location without lines by its address).
 */
static uint64_t
location_id(struct writer *w, uint64_t pc, int act)
{
    const struct pmp_symsource *ss = &w->p->syms;
    const struct pmp_frameinfo *fi = NULL;
    struct pmp_error lerr;
    const struct pmp_line *ln;
    struct pmp_line tail;
    struct loc *l;
    uint64_t id, fid;
    size_t i;
    int rc;

    id = loc_get(w, pc, act);
    if (id || w->rc)
        return id;
    memset(&lerr, 0, sizeof(lerr));
    rc = ss->lookup(ss->ctx, pc, act == FRAME_EXACT, &fi, &lerr);
    if (rc) {
        if (lerr.code && w->err)
            *w->err = lerr;
        else if (!lerr.code)
            pmp_error_set(w->err, rc < 0 ? rc : PMP_E_USAGE,
                          "cannot symbolize 0x%" PRIx64, pc);
        w->rc = rc < 0 ? rc : PMP_E_USAGE;
        return 0;
    }
    if (pmp_grow((void **)&w->locs, &w->locs_cap, w->nlocs + 1,
                 sizeof(*w->locs))) {
        fail_nomem(w);
        return 0;
    }
    l = &w->locs[w->nlocs];
    /* Return addresses point after the call: pprof's convention (and
       Go's) is to report the call instruction's last byte, pc-1. */
    l->address = act == FRAME_EXACT || pc == 0 || PMP_PC_IS_SYNTH(pc)
                     ? pc
                     : pc - 1;
    /* Synthetic frames are not code: never in a mapping. */
    l->module = fi && fi->module >= 0 && !PMP_PC_IS_SYNTH(pc) ? fi->module
                                                              : -1;
    l->line0 = w->nlines;
    l->nlines = 0;
    for (i = 0; fi && fi->lines && i < fi->nlines; i++) {
        /* A tail-call frame is one line, named as gdb names it (the
           innermost function at the call site), and marked in its name:
           pprof has no field for it. */
        if (act == FRAME_TAILCALL && i > 0)
            break;
        ln = &fi->lines[i];
        if (!ln->function || !ln->function[0])
            continue;
        if (act == FRAME_TAILCALL) {
            char buf[1024];
            snprintf(buf, sizeof(buf), "%s [tail call]", ln->function);
            tail = *ln;
            tail.function = buf;
            fid = function_id(w, &tail);
        } else {
            fid = function_id(w, ln);
        }
        if (!fid)
            return 0;
        if (pmp_grow((void **)&w->lines, &w->lines_cap, w->nlines + 1,
                     sizeof(*w->lines))) {
            fail_nomem(w);
            return 0;
        }
        /* w->locs did not move: l is still valid. */
        w->lines[w->nlines].function_id = fid;
        w->lines[w->nlines].line = ln->line;
        w->lines[w->nlines].column = ln->column;
        w->nlines++;
        l->nlines++;
    }
    id = ++w->nlocs;
    if (loc_put(w, pc, act, id)) {
        fail_nomem(w);
        return 0;
    }
    return id;
}

/* Pass 1: a location id for every frame of every sample. */
static void
symbolize(struct writer *w)
{
    struct pmp_pprof *p = w->p;
    size_t i, j, total = 0, k = 0;

    for (i = 0; i < p->nsamples; i++)
        total += p->samples[i].npcs;
    w->sample_locs = pmp_calloc(total, sizeof(*w->sample_locs));
    if (!w->sample_locs) {
        fail_nomem(w);
        return;
    }
    for (i = 0; i < p->nsamples && !w->rc; i++)
        for (j = 0; j < p->samples[i].npcs && !w->rc; j++)
            w->sample_locs[k++] = location_id(w, p->samples[i].pcs[j],
                                              p->samples[i].act[j]);
}

/*
 * Pass 2: mapping ids.  pprof takes mapping[0] as the main binary (its
 * File: and Build ID: header), so the module marked is_main gets id 1
 * even when no sample hits it; the others follow in order of first use.
 * Module indices the symsource does not know are treated as "none".
 */
static void
assign_mappings(struct writer *w)
{
    const struct pmp_symsource *ss = &w->p->syms;
    const struct pmp_module_info *mi;
    struct loc *l;
    size_t i, m;

    w->nmodules = ss->nmodules(ss->ctx);
    w->map_ids = pmp_calloc(w->nmodules, sizeof(*w->map_ids));
    w->map_modules = pmp_calloc(w->nmodules, sizeof(*w->map_modules));
    if (!w->map_ids || !w->map_modules) {
        fail_nomem(w);
        return;
    }
    for (i = 0; i < w->nmodules; i++) {
        mi = ss->module(ss->ctx, i);
        if (mi && mi->is_main) {
            w->map_modules[w->nmaps] = i;
            w->map_ids[i] = ++w->nmaps;
            break;
        }
    }
    for (i = 0; i < w->nlocs; i++) {
        l = &w->locs[i];
        if (l->module < 0)
            continue;
        m = (size_t)l->module;
        if (m >= w->nmodules || !ss->module(ss->ctx, m)) {
            l->module = -1;
            continue;
        }
        if (!w->map_ids[m]) {
            w->map_modules[w->nmaps] = m;
            w->map_ids[m] = ++w->nmaps;
        }
    }
}

static void
fill_samples(struct writer *w, Perftools__Profiles__Profile *prof)
{
    struct pmp_pprof *p = w->p;
    Perftools__Profiles__Sample *sm, **smp;
    Perftools__Profiles__Label *lb, **lbp;
    const struct sample *s;
    const struct label *sl;
    size_t i, j, nlab = 0, nloc = 0;

    for (i = 0; i < p->nsamples; i++)
        nlab += p->samples[i].nlabels;
    sm = w_alloc(w, p->nsamples, sizeof(*sm));
    smp = w_alloc(w, p->nsamples, sizeof(*smp));
    lb = w_alloc(w, nlab, sizeof(*lb));
    lbp = w_alloc(w, nlab, sizeof(*lbp));
    if (w->rc)
        return;
    nlab = 0;
    for (i = 0; i < p->nsamples; i++) {
        s = &p->samples[i];
        perftools__profiles__sample__init(&sm[i]);
        smp[i] = &sm[i];
        sm[i].n_location_id = s->npcs;
        sm[i].location_id = w->sample_locs + nloc;
        nloc += s->npcs;
        sm[i].n_value = p->ntypes;
        sm[i].value = s->values;
        sm[i].n_label = s->nlabels;
        sm[i].label = lbp + nlab;
        for (j = 0; j < s->nlabels; j++, nlab++) {
            sl = &s->labels[j];
            perftools__profiles__label__init(&lb[nlab]);
            lbp[nlab] = &lb[nlab];
            lb[nlab].key = str_id(w, sl->key);
            if (sl->str) {
                lb[nlab].str = str_id(w, sl->str);
            } else {
                lb[nlab].num = sl->num;
                if (sl->unit)
                    lb[nlab].num_unit = str_id(w, sl->unit);
            }
        }
    }
    prof->n_sample = p->nsamples;
    prof->sample = smp;
}

static void
fill_mappings(struct writer *w, Perftools__Profiles__Profile *prof)
{
    const struct pmp_symsource *ss = &w->p->syms;
    const struct pmp_module_info *mi;
    Perftools__Profiles__Mapping *mp, **mpp;
    size_t i;

    mp = w_alloc(w, w->nmaps, sizeof(*mp));
    mpp = w_alloc(w, w->nmaps, sizeof(*mpp));
    if (w->rc)
        return;
    for (i = 0; i < w->nmaps; i++) {
        mi = ss->module(ss->ctx, w->map_modules[i]);
        perftools__profiles__mapping__init(&mp[i]);
        mpp[i] = &mp[i];
        mp[i].id = i + 1;
        mp[i].memory_start = mi->start;
        mp[i].memory_limit = mi->end;
        mp[i].file_offset = mi->file_offset;
        mp[i].filename = str_id(w, mi->path);
        mp[i].build_id = str_id(w, mi->build_id);
        mp[i].has_functions = mi->has_functions != 0;
        mp[i].has_filenames = mi->has_filenames != 0;
        mp[i].has_line_numbers = mi->has_line_numbers != 0;
        mp[i].has_inline_frames = mi->has_inline_frames != 0;
    }
    prof->n_mapping = w->nmaps;
    prof->mapping = mpp;
}

static void
fill_locations(struct writer *w, Perftools__Profiles__Profile *prof)
{
    Perftools__Profiles__Location *lc, **lcp;
    Perftools__Profiles__Line *ln, **lnp;
    const struct loc *l;
    size_t i;

    lc = w_alloc(w, w->nlocs, sizeof(*lc));
    lcp = w_alloc(w, w->nlocs, sizeof(*lcp));
    ln = w_alloc(w, w->nlines, sizeof(*ln));
    lnp = w_alloc(w, w->nlines, sizeof(*lnp));
    if (w->rc)
        return;
    for (i = 0; i < w->nlines; i++) {
        perftools__profiles__line__init(&ln[i]);
        lnp[i] = &ln[i];
        ln[i].function_id = w->lines[i].function_id;
        ln[i].line = w->lines[i].line;
        ln[i].column = w->lines[i].column;
    }
    for (i = 0; i < w->nlocs; i++) {
        l = &w->locs[i];
        perftools__profiles__location__init(&lc[i]);
        lcp[i] = &lc[i];
        lc[i].id = i + 1;
        lc[i].address = l->address;
        lc[i].mapping_id = l->module >= 0 ? w->map_ids[l->module] : 0;
        lc[i].n_line = l->nlines;
        lc[i].line = lnp + l->line0;
    }
    prof->n_location = w->nlocs;
    prof->location = lcp;
}

static void
fill_functions(struct writer *w, Perftools__Profiles__Profile *prof)
{
    Perftools__Profiles__Function *fn, **fnp;
    size_t i;

    fn = w_alloc(w, w->nfns, sizeof(*fn));
    fnp = w_alloc(w, w->nfns, sizeof(*fnp));
    if (w->rc)
        return;
    for (i = 0; i < w->nfns; i++) {
        perftools__profiles__function__init(&fn[i]);
        fnp[i] = &fn[i];
        fn[i].id = i + 1;
        fn[i].name = str_id(w, w->fns[i].name);
        fn[i].system_name = str_id(w, w->fns[i].system_name);
        fn[i].filename = str_id(w, w->fns[i].file);
    }
    prof->n_function = w->nfns;
    prof->function = fnp;
}

/* Pass 3: the protobuf-c message tree, pointing into the writer. */
static void
fill_profile(struct writer *w, Perftools__Profiles__Profile *prof)
{
    struct pmp_pprof *p = w->p;
    Perftools__Profiles__ValueType *vt, **vtp;
    int64_t *comments;
    size_t i;

    vt = w_alloc(w, p->ntypes, sizeof(*vt));
    vtp = w_alloc(w, p->ntypes, sizeof(*vtp));
    comments = w_alloc(w, p->ncomments, sizeof(*comments));
    if (w->rc)
        return;
    for (i = 0; i < p->ntypes; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vtp[i] = &vt[i];
        vt[i].type = str_id(w, p->types[i].type);
        vt[i].unit = str_id(w, p->types[i].unit);
    }
    prof->n_sample_type = p->ntypes;
    prof->sample_type = vtp;
    if (p->period_type.type) {
        perftools__profiles__value_type__init(&w->period_type);
        w->period_type.type = str_id(w, p->period_type.type);
        w->period_type.unit = str_id(w, p->period_type.unit);
        prof->period_type = &w->period_type;
    }
    prof->period = p->period;
    prof->time_nanos = p->time_nanos;
    prof->duration_nanos = p->duration_nanos;
    if (p->default_type)
        prof->default_sample_type = str_id(w, p->default_type);
    fill_samples(w, prof);
    fill_mappings(w, prof);
    fill_locations(w, prof);
    fill_functions(w, prof);
    for (i = 0; i < p->ncomments; i++)
        comments[i] = str_id(w, p->comments[i]);
    prof->n_comment = p->ncomments;
    prof->comment = comments;
    /* Last: str_id() may move w->strs until here. */
    prof->n_string_table = w->nstrs;
    prof->string_table = (char **)w->strs;
}

/* ------------------------------------------------------------------ */
/* Output: gzip into a temporary file, then rename                     */

static int
write_all(int fd, const unsigned char *buf, size_t len, const char *name,
          struct pmp_error *err)
{
    ssize_t n;

    while (len) {
        n = write(fd, buf, PMP_MIN(len, (size_t)1 << 30));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pmp_error_errno(err, PMP_E_SYS, n < 0 ? errno : EIO,
                                   "cannot write '%s'", name);
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Gzip buf (a gzip member, as gzip(1) writes) into fd. */
static int
gzip_to_fd(int fd, const uint8_t *buf, size_t len, const char *name,
           struct pmp_error *err)
{
    z_stream zs;
    unsigned char *chunk = NULL;
    size_t left = len, n;
    int zinit = 0, zrc = Z_OK, rc = 0;

    memset(&zs, 0, sizeof(zs));
    chunk = malloc(GZ_CHUNK);
    if (!chunk) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
    if (deflateInit2(&zs, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "cannot start zlib");
        goto out;
    }
    zinit = 1;
    zs.next_in = buf;
    do {
        if (zs.avail_in == 0 && left) {
            n = PMP_MIN(left, (size_t)1 << 30);   /* avail_in is a uInt */
            zs.avail_in = (uInt)n;
            left -= n;
        }
        zs.next_out = chunk;
        zs.avail_out = GZ_CHUNK;
        zrc = deflate(&zs, left || zs.avail_in ? Z_NO_FLUSH : Z_FINISH);
        if (zrc == Z_STREAM_ERROR) {
            rc = pmp_error_set(err, PMP_E_SYS, "zlib failed on '%s'", name);
            goto out;
        }
        rc = write_all(fd, chunk, GZ_CHUNK - zs.avail_out, name, err);
        if (rc)
            goto out;
    } while (zrc != Z_STREAM_END);
out:
    if (zinit)
        deflateEnd(&zs);
    free(chunk);
    return rc;
}

/*
 * Write buf gzipped to path without ever exposing a partial file: into
 * "PATH.tmp.PID.N" (created exclusively, so two writers never share one;
 * mode 0666 less the umask, like any new file), then rename over path.
 */
static int
write_atomic(const char *path, const uint8_t *buf, size_t len,
             struct pmp_error *err)
{
    char *tmp = NULL;
    size_t tmplen = strlen(path) + 48;
    int fd = -1, created = 0, i, rc = 0;

    tmp = malloc(tmplen);
    if (!tmp) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < TMP_TRIES && fd < 0; i++) {
        snprintf(tmp, tmplen, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot create '%s'",
                             tmp);
        goto out;
    }
    created = 1;
    rc = gzip_to_fd(fd, buf, len, tmp, err);
    if (rc)
        goto out;
    /* close() is where NFS and some full disks report write errors. */
    i = close(fd);
    fd = -1;
    if (i != 0) {
        rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot write '%s'", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot write '%s'",
                             path);
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc && created)
        unlink(tmp);
    free(tmp);
    return rc;
}

int
pmp_pprof_write(struct pmp_pprof *p, const char *path, struct pmp_error *err)
{
    Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
    struct writer w;
    uint8_t *buf = NULL;
    size_t len;
    int rc = 0;

    writer_init(&w, p, err);
    if (!p || !path || !path[0]) {
        rc = pmp_error_set(err, PMP_E_USAGE,
                           "pprof: missing builder or output path");
        goto out;
    }
    str_id(&w, "");   /* string_table[0] = "" */
    if (!w.rc)
        symbolize(&w);
    if (!w.rc)
        assign_mappings(&w);
    if (!w.rc)
        fill_profile(&w, &prof);
    if (w.rc) {
        rc = w.rc;
        goto out;
    }
    len = perftools__profiles__profile__get_packed_size(&prof);
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    if (perftools__profiles__profile__pack(&prof, buf) != len) {
        rc = pmp_error_set(err, PMP_E_SYS, "protobuf-c packed a short "
                           "profile");
        goto out;
    }
    rc = write_atomic(path, buf, len, err);
out:
    free(buf);
    writer_release(&w);
    return rc;
}

/*
 * pprof.c: the pprof profile builder (Go runtime/pprof profileBuilder
 * model) and writer.
 *
 * Owns: deduplicating samples on raw (pcs, activation flags, labels) while
 * adding, then at write time symbolizing each unique (pc, activation) once
 * through a pmp_symsource, building the string table ([0] = ""), functions
 * (deduplicated by name, system name, file), locations (by pc and
 * activation; Line[] innermost first), mappings (the main binary first,
 * honest has_* flags), encoding with protobuf-c and gzipping with zlib to
 * a temporary file renamed into place.
 *
 * Must not: touch the target (symbols come from the symsource) or Python.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pmprof-internal.h"
#include "profile.pb-c.h"

#define MAX_PCS 4096
#define MAX_LABELS 64
#define MAX_SAMPLE_TYPES 8

struct label {
    const char *key, *str, *unit;   /* interned; str NULL for numeric */
    int64_t num;
};

struct sample {
    size_t npcs;
    uint64_t *pcs;
    uint8_t *act;
    size_t nlabels;
    struct label *labels;
    int64_t values[MAX_SAMPLE_TYPES];
    uint64_t hash;
    size_t next;                    /* index+1 of next in hash chain */
};

struct pmp_pprof {
    const struct pmp_symsource *syms;
    struct pmp_strpool pool;
    struct pmp_value_type types[MAX_SAMPLE_TYPES];
    size_t ntypes;
    struct pmp_value_type period_type;
    int64_t period, time_nanos, duration_nanos;
    const char *default_type;
    const char **comments;
    size_t ncomments;
    struct sample *samples;
    size_t nsamples, samples_cap;
    struct pmp_u64map by_hash;      /* hash -> index+1 of first sample */
};

static uint64_t
mix(uint64_t h, uint64_t v)
{
    return pmp_hash64(h ^ (v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6)));
}

int
pmp_pprof_begin(struct pmp_pprof **out, const struct pmp_symsource *syms,
                const struct pmp_pprof_opts *o, struct pmp_error *err)
{
    struct pmp_pprof *p;
    size_t i;
    int rc = 0;

    *out = NULL;
    if (!o || o->nsample_types < 1 || o->nsample_types > MAX_SAMPLE_TYPES)
        return pmp_error_set(err, PMP_E_USAGE,
                             "a profile needs 1 to %d sample types",
                             MAX_SAMPLE_TYPES);
    p = calloc(1, sizeof(*p));
    if (!p)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    p->syms = syms;
    pmp_strpool_init(&p->pool);
    pmp_u64map_init(&p->by_hash);
#define IN(s) pmp_strpool_intern(&p->pool, (s) ? (s) : "")
    for (i = 0; i < o->nsample_types; i++) {
        p->types[i].type = IN(o->sample_types[i].type);
        p->types[i].unit = IN(o->sample_types[i].unit);
        if (!p->types[i].type || !p->types[i].unit)
            rc = PMP_E_NOMEM;
    }
    p->ntypes = o->nsample_types;
    if (o->period_type.type) {
        p->period_type.type = IN(o->period_type.type);
        p->period_type.unit = IN(o->period_type.unit);
    }
    p->period = o->period;
    p->time_nanos = o->time_nanos;
    p->duration_nanos = o->duration_nanos;
    if (o->default_sample_type)
        p->default_type = IN(o->default_sample_type);
    if (o->ncomments) {
        p->comments = pmp_calloc(o->ncomments, sizeof(*p->comments));
        if (!p->comments)
            rc = PMP_E_NOMEM;
        for (i = 0; !rc && i < o->ncomments; i++) {
            p->comments[i] = IN(o->comments[i]);
            if (!p->comments[i])
                rc = PMP_E_NOMEM;
        }
        p->ncomments = o->ncomments;
    }
#undef IN
    if (rc) {
        pmp_pprof_free(p);
        return pmp_error_set(err, rc, "out of memory");
    }
    *out = p;
    return 0;
}

void
pmp_pprof_free(struct pmp_pprof *p)
{
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->nsamples; i++) {
        free(p->samples[i].pcs);
        free(p->samples[i].act);
        free(p->samples[i].labels);
    }
    free(p->samples);
    free(p->comments);
    pmp_u64map_release(&p->by_hash);
    pmp_strpool_release(&p->pool);
    free(p);
}

static int
same_sample(const struct sample *s, const uint64_t *pcs, const uint8_t *act,
            size_t npcs, const struct label *labels, size_t nlabels)
{
    size_t i;

    if (s->npcs != npcs || s->nlabels != nlabels)
        return 0;
    if (memcmp(s->pcs, pcs, npcs * sizeof(*pcs)) != 0 ||
        memcmp(s->act, act, npcs) != 0)
        return 0;
    for (i = 0; i < nlabels; i++) {
        /* interned: pointer equality is string equality */
        if (s->labels[i].key != labels[i].key ||
            s->labels[i].str != labels[i].str ||
            s->labels[i].unit != labels[i].unit ||
            s->labels[i].num != labels[i].num)
            return 0;
    }
    return 1;
}

int
pmp_pprof_add(struct pmp_pprof *p, const uint64_t *pcs,
              const uint8_t *frame_flags, size_t npcs, const int64_t *values,
              const struct pmp_label *labels, size_t nlabels,
              struct pmp_error *err)
{
    uint8_t act[MAX_PCS];
    struct label lab[MAX_LABELS];
    uint64_t h = 0;
    size_t i, idx;
    struct sample *s;
    int rc = 0;

    if (npcs > MAX_PCS)
        return pmp_error_set(err, PMP_E_USAGE,
                             "a sample has at most %d frames", MAX_PCS);
    if (nlabels > MAX_LABELS)
        return pmp_error_set(err, PMP_E_USAGE,
                             "a sample has at most %d labels", MAX_LABELS);
    for (i = 0; i < npcs; i++) {
        act[i] = frame_flags ? (frame_flags[i] & PMP_FRAME_ACTIVATION) != 0
                             : i == 0;
        h = mix(h, pcs[i] * 2 + act[i]);
    }
    for (i = 0; i < nlabels; i++) {
        lab[i].key = pmp_strpool_intern(&p->pool, labels[i].key);
        lab[i].str = labels[i].str
                         ? pmp_strpool_intern(&p->pool, labels[i].str)
                         : NULL;
        lab[i].unit = labels[i].unit
                          ? pmp_strpool_intern(&p->pool, labels[i].unit)
                          : NULL;
        lab[i].num = labels[i].str ? 0 : labels[i].num;
        if (!lab[i].key || (labels[i].str && !lab[i].str) ||
            (labels[i].unit && !lab[i].unit))
            return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        h = mix(h, (uintptr_t)lab[i].key);
        h = mix(h, (uintptr_t)lab[i].str);
        h = mix(h, (uint64_t)lab[i].num);
    }
    h = mix(h, npcs);
    if (h == UINT64_MAX)
        h = 0;
    idx = (size_t)(uintptr_t)pmp_u64map_get(&p->by_hash, h);
    while (idx) {
        s = &p->samples[idx - 1];
        if (same_sample(s, pcs, act, npcs, lab, nlabels)) {
            for (i = 0; i < p->ntypes; i++)
                s->values[i] += values[i];
            return 0;
        }
        idx = s->next;
    }
    rc = pmp_grow((void **)&p->samples, &p->samples_cap, p->nsamples + 1,
                  sizeof(*p->samples));
    if (rc)
        return pmp_error_set(err, rc, "out of memory");
    s = &p->samples[p->nsamples];
    memset(s, 0, sizeof(*s));
    s->pcs = malloc(npcs ? npcs * sizeof(*pcs) : 1);
    s->act = malloc(npcs ? npcs : 1);
    s->labels = malloc(nlabels ? nlabels * sizeof(*lab) : 1);
    if (!s->pcs || !s->act || !s->labels) {
        free(s->pcs);
        free(s->act);
        free(s->labels);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    memcpy(s->pcs, pcs, npcs * sizeof(*pcs));
    memcpy(s->act, act, npcs);
    memcpy(s->labels, lab, nlabels * sizeof(*lab));
    s->npcs = npcs;
    s->nlabels = nlabels;
    for (i = 0; i < p->ntypes; i++)
        s->values[i] = values[i];
    s->hash = h;
    s->next = (size_t)(uintptr_t)pmp_u64map_get(&p->by_hash, h);
    rc = pmp_u64map_put(&p->by_hash, h, (void *)(uintptr_t)(p->nsamples + 1));
    if (rc) {
        free(s->pcs);
        free(s->act);
        free(s->labels);
        return pmp_error_set(err, rc, "out of memory");
    }
    p->nsamples++;
    return 0;
}

/* ---- write ---- */

struct func_key {
    const char *name, *sysname, *file;
    uint64_t id;
    size_t next;
};

struct writer {
    struct pmp_pprof *p;
    /* string table */
    char **strs;
    size_t nstrs, strs_cap;
    struct pmp_u64map str_index;    /* interned ptr -> index+1 */
    /* functions */
    struct func_key *funcs;
    size_t nfuncs, funcs_cap;
    struct pmp_u64map func_by_hash; /* hash -> index+1 */
    /* locations */
    Perftools__Profiles__Location **locs;
    size_t nlocs, locs_cap;
    struct pmp_u64map loc_by_pc[2];  /* pc -> id */
    /* mappings: module index -> mapping id */
    struct pmp_u64map map_by_module;
    size_t *mod_of_map;
    size_t nmaps, maps_cap;
};

static int64_t
str_index(struct writer *w, const char *s)
{
    const char *in = pmp_strpool_intern(&w->p->pool, s ? s : "");
    size_t idx;

    if (!in)
        return -1;
    idx = (size_t)(uintptr_t)pmp_u64map_get(&w->str_index, (uintptr_t)in);
    if (idx)
        return (int64_t)(idx - 1);
    if (pmp_grow((void **)&w->strs, &w->strs_cap, w->nstrs + 1,
                 sizeof(*w->strs)))
        return -1;
    w->strs[w->nstrs] = (char *)in;
    if (pmp_u64map_put(&w->str_index, (uintptr_t)in,
                       (void *)(uintptr_t)(w->nstrs + 1)))
        return -1;
    return (int64_t)w->nstrs++;
}

static uint64_t
func_id(struct writer *w, const struct pmp_line *ln)
{
    const char *n = pmp_strpool_intern(&w->p->pool, ln->function);
    const char *sn = pmp_strpool_intern(&w->p->pool, ln->system_name);
    const char *f = pmp_strpool_intern(&w->p->pool, ln->file);
    uint64_t h;
    size_t idx;
    struct func_key *fk;

    if (!n || !sn || !f)
        return 0;
    h = mix(mix(mix(0, (uintptr_t)n), (uintptr_t)sn), (uintptr_t)f);
    if (h == UINT64_MAX)
        h = 0;
    idx = (size_t)(uintptr_t)pmp_u64map_get(&w->func_by_hash, h);
    while (idx) {
        fk = &w->funcs[idx - 1];
        if (fk->name == n && fk->sysname == sn && fk->file == f)
            return fk->id;
        idx = fk->next;
    }
    if (pmp_grow((void **)&w->funcs, &w->funcs_cap, w->nfuncs + 1,
                 sizeof(*w->funcs)))
        return 0;
    fk = &w->funcs[w->nfuncs];
    fk->name = n;
    fk->sysname = sn;
    fk->file = f;
    fk->id = w->nfuncs + 1;
    fk->next = (size_t)(uintptr_t)pmp_u64map_get(&w->func_by_hash, h);
    if (pmp_u64map_put(&w->func_by_hash, h,
                       (void *)(uintptr_t)(w->nfuncs + 1)))
        return 0;
    w->nfuncs++;
    return fk->id;
}

static uint64_t
mapping_id(struct writer *w, size_t module)
{
    size_t id = (size_t)(uintptr_t)pmp_u64map_get(&w->map_by_module, module);

    if (id)
        return id;
    if (pmp_grow((void **)&w->mod_of_map, &w->maps_cap, w->nmaps + 1,
                 sizeof(*w->mod_of_map)))
        return 0;
    w->mod_of_map[w->nmaps] = module;
    if (pmp_u64map_put(&w->map_by_module, module,
                       (void *)(uintptr_t)(w->nmaps + 1)))
        return 0;
    return ++w->nmaps;
}

/* Location id for (pc, act), symbolizing on first sight; 0 on error. */
static uint64_t
location_id(struct writer *w, uint64_t pc, int act, struct pmp_error *err)
{
    struct pmp_u64map *m = &w->loc_by_pc[act ? 1 : 0];
    uint64_t id = (uint64_t)(uintptr_t)pmp_u64map_get(m, pc);
    const struct pmp_frameinfo *fi = NULL;
    Perftools__Profiles__Location *loc;
    size_t i;

    if (id)
        return id;
    if (w->p->syms->lookup(w->p->syms->ctx, pc, act, &fi, err) != 0 || !fi)
        return 0;
    loc = calloc(1, sizeof(*loc));
    if (!loc)
        return 0;
    perftools__profiles__location__init(loc);
    if (pmp_grow((void **)&w->locs, &w->locs_cap, w->nlocs + 1,
                 sizeof(*w->locs))) {
        free(loc);
        return 0;
    }
    w->locs[w->nlocs++] = loc;
    loc->id = w->nlocs;
    /* Callers' addresses are return addresses: pprof convention pc-1. */
    loc->address = act || pc == 0 || PMP_PC_IS_SYNTH(pc) ? pc : pc - 1;
    if (PMP_PC_IS_SYNTH(pc))
        loc->address = 0;
    if (fi->module >= 0) {
        loc->mapping_id = mapping_id(w, (size_t)fi->module);
        if (!loc->mapping_id)
            return 0;
    }
    /* Frames with no function name keep only their address (pprof shows
       the mapping and offset); a Line needs a function. */
    if (fi->nlines > 0 && fi->lines[fi->nlines - 1].function[0]) {
        loc->line = calloc(fi->nlines, sizeof(*loc->line));
        if (!loc->line)
            return 0;
        for (i = 0; i < fi->nlines; i++) {
            Perftools__Profiles__Line *ln = calloc(1, sizeof(*ln));
            if (!ln)
                return 0;
            perftools__profiles__line__init(ln);
            ln->function_id = func_id(w, &fi->lines[i]);
            if (!ln->function_id) {
                free(ln);
                return 0;
            }
            ln->line = fi->lines[i].line;
            ln->column = fi->lines[i].column;
            loc->line[loc->n_line++] = ln;
        }
    }
    if (pmp_u64map_put(m, pc, (void *)(uintptr_t)loc->id))
        return 0;
    return loc->id;
}

static void
writer_release(struct writer *w)
{
    size_t i, j;

    for (i = 0; i < w->nlocs; i++) {
        for (j = 0; j < w->locs[i]->n_line; j++)
            free(w->locs[i]->line[j]);
        free(w->locs[i]->line);
        free(w->locs[i]);
    }
    free(w->locs);
    free(w->strs);
    free(w->funcs);
    free(w->mod_of_map);
    pmp_u64map_release(&w->str_index);
    pmp_u64map_release(&w->func_by_hash);
    pmp_u64map_release(&w->loc_by_pc[0]);
    pmp_u64map_release(&w->loc_by_pc[1]);
    pmp_u64map_release(&w->map_by_module);
}

static int
write_gzip(const char *path, const uint8_t *buf, size_t len,
           struct pmp_error *err)
{
    char tmp[4096];
    gzFile gz;
    size_t done = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
        sizeof(tmp))
        return pmp_error_set(err, PMP_E_USAGE, "path too long: '%s'", path);
    gz = gzopen(tmp, "wb6");
    if (!gz)
        return pmp_error_errno(err, PMP_E_SYS, errno, "cannot create '%s'",
                               tmp);
    while (done < len) {
        unsigned chunk = (unsigned)PMP_MIN(len - done, (size_t)1 << 30);
        int n = gzwrite(gz, buf + done, chunk);
        if (n <= 0) {
            gzclose(gz);
            unlink(tmp);
            return pmp_error_set(err, PMP_E_SYS, "cannot write '%s'", tmp);
        }
        done += (size_t)n;
    }
    if (gzclose(gz) != Z_OK) {
        unlink(tmp);
        return pmp_error_set(err, PMP_E_SYS, "cannot write '%s'", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return pmp_error_errno(err, PMP_E_SYS, e, "cannot write '%s'", path);
    }
    return 0;
}

int
pmp_pprof_write(struct pmp_pprof *p, const char *path, struct pmp_error *err)
{
    struct writer w;
    Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
    Perftools__Profiles__ValueType *vts = NULL, **vtp = NULL, period_vt;
    Perftools__Profiles__Sample *samples = NULL, **sp = NULL;
    Perftools__Profiles__Label *labels = NULL, **lp = NULL;
    Perftools__Profiles__Mapping *maps = NULL, **mp = NULL;
    Perftools__Profiles__Function *funcs = NULL, **fp = NULL;
    uint64_t *locids = NULL;
    int64_t *vals = NULL, *comments = NULL;
    uint8_t *buf = NULL;
    size_t i, j, nlab = 0, nloc = 0, main_idx = SIZE_MAX, len;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.p = p;
    pmp_u64map_init(&w.str_index);
    pmp_u64map_init(&w.func_by_hash);
    pmp_u64map_init(&w.loc_by_pc[0]);
    pmp_u64map_init(&w.loc_by_pc[1]);
    pmp_u64map_init(&w.map_by_module);
    if (str_index(&w, "") != 0)
        goto oom;
    /* The main binary's mapping comes first (pprof reads mapping[0] as
       the main binary), whether or not a sample hits it. */
    for (i = 0; i < p->syms->nmodules(p->syms->ctx); i++)
        if (p->syms->module(p->syms->ctx, i)->is_main) {
            main_idx = i;
            if (!mapping_id(&w, i))
                goto oom;
            break;
        }
    for (i = 0; i < p->nsamples; i++) {
        nlab += p->samples[i].nlabels;
        nloc += p->samples[i].npcs;
    }
    samples = pmp_calloc(p->nsamples, sizeof(*samples));
    sp = pmp_calloc(p->nsamples, sizeof(*sp));
    labels = pmp_calloc(nlab, sizeof(*labels));
    lp = pmp_calloc(nlab, sizeof(*lp));
    locids = pmp_calloc(nloc, sizeof(*locids));
    vals = pmp_calloc(p->nsamples * p->ntypes, sizeof(*vals));
    if (!samples || !sp || !labels || !lp || !locids || !vals)
        goto oom;
    nlab = nloc = 0;
    for (i = 0; i < p->nsamples; i++) {
        struct sample *s = &p->samples[i];
        Perftools__Profiles__Sample *ps = &samples[i];

        perftools__profiles__sample__init(ps);
        sp[i] = ps;
        ps->location_id = locids + nloc;
        for (j = 0; j < s->npcs; j++) {
            uint64_t id = location_id(&w, s->pcs[j], s->act[j], err);
            if (!id) {
                rc = err && err->code ? err->code : PMP_E_NOMEM;
                goto out;
            }
            locids[nloc++] = id;
        }
        ps->n_location_id = s->npcs;
        ps->value = vals + i * p->ntypes;
        memcpy(ps->value, s->values, p->ntypes * sizeof(int64_t));
        ps->n_value = p->ntypes;
        ps->label = lp + nlab;
        for (j = 0; j < s->nlabels; j++) {
            Perftools__Profiles__Label *pl = &labels[nlab];
            const struct label *l = &s->labels[j];

            /* pprof drops a numeric label that is 0 with no unit. */
            if (!l->str && l->num == 0 && !l->unit)
                continue;
            perftools__profiles__label__init(pl);
            pl->key = str_index(&w, l->key);
            if (l->str)
                pl->str = str_index(&w, l->str);
            else {
                pl->num = l->num;
                if (l->unit)
                    pl->num_unit = str_index(&w, l->unit);
            }
            lp[nlab++] = pl;
            ps->n_label++;
        }
    }
    prof.n_sample = p->nsamples;
    prof.sample = sp;

    /* Sample and period types. */
    vts = pmp_calloc(p->ntypes, sizeof(*vts));
    vtp = pmp_calloc(p->ntypes, sizeof(*vtp));
    if (!vts || !vtp)
        goto oom;
    for (i = 0; i < p->ntypes; i++) {
        perftools__profiles__value_type__init(&vts[i]);
        vts[i].type = str_index(&w, p->types[i].type);
        vts[i].unit = str_index(&w, p->types[i].unit);
        vtp[i] = &vts[i];
    }
    prof.n_sample_type = p->ntypes;
    prof.sample_type = vtp;
    if (p->period_type.type) {
        perftools__profiles__value_type__init(&period_vt);
        period_vt.type = str_index(&w, p->period_type.type);
        period_vt.unit = str_index(&w, p->period_type.unit);
        prof.period_type = &period_vt;
    }
    prof.period = p->period;
    prof.time_nanos = p->time_nanos;
    prof.duration_nanos = p->duration_nanos;
    if (p->default_type)
        prof.default_sample_type = str_index(&w, p->default_type);
    if (p->ncomments) {
        comments = pmp_calloc(p->ncomments, sizeof(*comments));
        if (!comments)
            goto oom;
        for (i = 0; i < p->ncomments; i++)
            comments[i] = str_index(&w, p->comments[i]);
        prof.n_comment = p->ncomments;
        prof.comment = comments;
    }

    /* Mappings (referenced ones; the main binary first). */
    maps = pmp_calloc(w.nmaps, sizeof(*maps));
    mp = pmp_calloc(w.nmaps, sizeof(*mp));
    if (!maps || !mp)
        goto oom;
    for (i = 0; i < w.nmaps; i++) {
        const struct pmp_module_info *mi =
            p->syms->module(p->syms->ctx, w.mod_of_map[i]);
        Perftools__Profiles__Mapping *m = &maps[i];

        perftools__profiles__mapping__init(m);
        m->id = i + 1;
        m->memory_start = mi->start;
        m->memory_limit = mi->end;
        m->file_offset = mi->file_offset;
        m->filename = str_index(&w, mi->path);
        m->build_id = str_index(&w, mi->build_id);
        m->has_functions = mi->has_functions;
        m->has_filenames = mi->has_filenames;
        m->has_line_numbers = mi->has_line_numbers;
        m->has_inline_frames = mi->has_inline_frames;
        mp[i] = m;
    }
    (void)main_idx;
    prof.n_mapping = w.nmaps;
    prof.mapping = mp;
    prof.n_location = w.nlocs;
    prof.location = w.locs;

    /* Functions. */
    funcs = pmp_calloc(w.nfuncs, sizeof(*funcs));
    fp = pmp_calloc(w.nfuncs, sizeof(*fp));
    if (!funcs || !fp)
        goto oom;
    for (i = 0; i < w.nfuncs; i++) {
        perftools__profiles__function__init(&funcs[i]);
        funcs[i].id = w.funcs[i].id;
        funcs[i].name = str_index(&w, w.funcs[i].name);
        funcs[i].system_name = str_index(&w, w.funcs[i].sysname);
        funcs[i].filename = str_index(&w, w.funcs[i].file);
        fp[i] = &funcs[i];
    }
    prof.n_function = w.nfuncs;
    prof.function = fp;
    /* str_index failures return -1: check none happened. */
    for (i = 0; i < w.nstrs; i++)
        if (!w.strs[i])
            goto oom;
    prof.n_string_table = w.nstrs;
    prof.string_table = w.strs;

    len = perftools__profiles__profile__get_packed_size(&prof);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto oom;
    perftools__profiles__profile__pack(&prof, buf);
    rc = write_gzip(path, buf, len, err);
    goto out;
oom:
    rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory writing the profile");
out:
    free(buf);
    free(vts);
    free(vtp);
    free(samples);
    free(sp);
    free(labels);
    free(lp);
    free(locids);
    free(vals);
    free(comments);
    free(maps);
    free(mp);
    free(funcs);
    free(fp);
    writer_release(&w);
    return rc;
}

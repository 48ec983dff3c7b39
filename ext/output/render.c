/*
 * render.c: the text of `pmprof stacks` (merged stacks) built in C.
 *
 * Owns: merging threads whose symbolized stacks are identical and writing
 * them as the stacks command prints them.  Threads are first grouped by
 * their raw stacks (pcs, frame flags, stack flags: a sort), each distinct
 * raw stack is symbolized once, then groups whose symbolized frames are
 * equal are merged, so a snapshot of 256 threads parked in a few places
 * costs a few symbolizations and one pass.  Inside gdb a warm `pmprof
 * stacks` is this plus the snapshot: no per-frame Python object.
 *
 * The output matches python/pmprof/commands/stacks.py's --format text
 * body line for line (the header line stays in Python); keep the two in
 * step.  Also here: the snapshot as a pprof profile (`pmprof snapshot`).
 * Must not: stop or read the target (the snapshot is taken).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"

#define THREAD_LIST_MAX 8

struct rgroup {
    size_t first;          /* index in order[] of its first thread */
    size_t n;              /* threads */
    char *key;             /* symbolized frames + flags (merge key) */
    size_t keylen;
    int min_tid;
    size_t merged_into;    /* SIZE_MAX: a group of its own */
};

static int
cmp_raw(const void *a, const void *b, void *arg)
{
    const struct pmp_snapshot *snap = arg;
    const struct pmp_thread *x = &snap->threads[*(const size_t *)a];
    const struct pmp_thread *y = &snap->threads[*(const size_t *)b];
    int c;

    if (x->flags != y->flags)
        return x->flags < y->flags ? -1 : 1;
    if (x->nframes != y->nframes)
        return x->nframes < y->nframes ? -1 : 1;
    c = memcmp(x->pcs, y->pcs, (size_t)x->nframes * sizeof(*x->pcs));
    if (c)
        return c;
    c = memcmp(x->frame_flags, y->frame_flags, (size_t)x->nframes);
    if (c)
        return c;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int
same_raw(const struct pmp_thread *x, const struct pmp_thread *y)
{
    return x->flags == y->flags && x->nframes == y->nframes &&
           memcmp(x->pcs, y->pcs, (size_t)x->nframes * sizeof(*x->pcs)) == 0 &&
           memcmp(x->frame_flags, y->frame_flags, (size_t)x->nframes) == 0;
}

static int
is_system_module(const char *path)
{
    static const char *const pre[] = {"/lib/", "/lib64/", "/usr/lib/",
                                      "/usr/lib64/", "/usr/libexec/"};
    const char *bn;
    size_t i;

    if (!path || !path[0] || path[0] == '[')
        return 1;
    for (i = 0; i < PMP_ARRAY_SIZE(pre); i++)
        if (strncmp(path, pre[i], strlen(pre[i])) == 0)
            return 1;
    bn = strrchr(path, '/');
    bn = bn ? bn + 1 : path;
    return strncmp(bn, "linux-vdso", 10) == 0;
}

static const char *
base_name(const char *p)
{
    const char *b = strrchr(p, '/');

    return b ? b + 1 : p;
}

/* One frame of a stack, as stacks.py sees it. */
struct rframe {
    const char *function, *file, *module;
    int line, inlined;
    int tailcall;          /* left by a tail call (rebuilt, tailcall.c) */
    uint64_t pc, offset;
};

/* Call fn for each displayed frame of thread th (inline-expanded, cut to
   depth); returns the number of frames or a negative error. */
typedef int (*frame_fn)(void *arg, int i, const struct rframe *f);

static int
for_frames(struct pmp_session *s, const struct pmp_thread *th, int depth,
           frame_fn fn, void *arg, struct pmp_error *err)
{
    int i, n = 0, rc;

    for (i = 0; i < th->nframes; i++) {
        const struct pmp_frameinfo *fi = NULL;
        const struct pmp_module_info *mi;
        size_t k;

        rc = pmp_sym_lookup(s, th->pcs[i],
                            th->frame_flags[i] & PMP_FRAME_ACTIVATION, &fi,
                            err);
        if (rc)
            return rc;
        mi = fi->module >= 0 ? pmp_sym_module(s, (size_t)fi->module) : NULL;
        for (k = 0; k < fi->nlines; k++) {
            struct rframe f;
            /* A tail-call frame is one frame, named as gdb names it: by
               the innermost function at its call site (an inlined one
               stands for the function that jumped). */
            int tail = (th->frame_flags[i] & PMP_FRAME_TAILCALL) != 0;

            if (depth > 0 && n >= depth)
                return n;
            f.function = fi->lines[k].function;
            if (k + 1 == fi->nlines && !f.function[0] &&
                (th->frame_flags[i] & PMP_FRAME_SIGNAL))
                f.function = "<signal handler called>";
            f.file = fi->lines[k].file;
            f.line = fi->lines[k].line;
            f.inlined = !tail && k + 1 < fi->nlines;
            f.tailcall = tail;
            f.module = mi ? mi->path : "";
            f.pc = th->pcs[i];
            f.offset = fi->module_offset;
            rc = fn(arg, n, &f);
            if (rc)
                return rc;
            n++;
            if (tail)
                break;
        }
    }
    return n;
}

static int
key_frame(void *arg, int i, const struct rframe *f)
{
    FILE *m = arg;

    fprintf(m, "%s\x01%s\x01%d\x01%s\x01%llx\x01%d\x01%d\x02", f->function,
            f->file, f->line, f->module,
            (unsigned long long)(f->function[0] ? 0 : f->offset), f->inlined,
            f->tailcall);
    return 0;
}

static int
print_frame(void *arg, int i, const struct rframe *f)
{
    FILE *m = arg;

    fprintf(m, "  #%-3d ", i);
    if (f->function[0])
        fputs(f->function, m);
    else if (f->module[0])
        fprintf(m, "%s+0x%llx", base_name(f->module),
                (unsigned long long)f->offset);
    else
        fprintf(m, "0x%llx", (unsigned long long)f->pc);
    if (f->inlined)
        fputs(" [inlined]", m);
    if (f->tailcall)
        fputs(" [tail call]", m);
    if (f->file[0])
        fprintf(m, " at %s:%d", f->file, f->line);
    if (f->module[0] && is_system_module(f->module) && f->function[0])
        fprintf(m, "  (%s)", base_name(f->module));
    fputc('\n', m);
    return 0;
}

struct merged {
    size_t g;              /* representative raw group */
    size_t count;
    int *tids;             /* sorted */
    const char **names;
    size_t n;
};

static int
cmp_tid_idx(const void *a, const void *b, void *arg)
{
    const struct pmp_snapshot *snap = arg;
    const struct pmp_thread *x = &snap->threads[*(const size_t *)a];
    const struct pmp_thread *y = &snap->threads[*(const size_t *)b];

    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int
cmp_merged(const void *a, const void *b)
{
    const struct merged *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->tids[0] > y->tids[0]) - (x->tids[0] < y->tids[0]);
}

int
pmp_render_stacks(struct pmp_session *s, const struct pmp_snapshot *snap,
                  const struct pmp_render_opts *o, char **out,
                  size_t *ngroups, struct pmp_error *err)
{
    size_t nt = snap->nthreads, i, j, ng = 0, nm = 0;
    size_t *order = pmp_calloc(nt ? nt : 1, sizeof(*order));
    struct rgroup *gs = pmp_calloc(nt ? nt : 1, sizeof(*gs));
    struct merged *ms = pmp_calloc(nt ? nt : 1, sizeof(*ms));
    size_t *members = pmp_calloc(nt ? nt : 1, sizeof(*members));
    int depth = o ? o->depth : 0, all = o && o->all, rc = 0;
    char *buf = NULL;
    size_t blen = 0;
    FILE *m = NULL;

    *out = NULL;
    *ngroups = 0;
    if (!order || !gs || !ms || !members) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < nt; i++)
        order[i] = i;
    if (!all)
        qsort_r(order, nt, sizeof(*order), cmp_raw, (void *)snap);
    /* 1. raw groups: identical pcs, frame flags and stack flags */
    for (i = 0; i < nt; i++) {
        const struct pmp_thread *th = &snap->threads[order[i]];
        if (!all && ng > 0 &&
            same_raw(&snap->threads[order[gs[ng - 1].first]], th)) {
            gs[ng - 1].n++;
            continue;
        }
        gs[ng].first = i;
        gs[ng].n = 1;
        gs[ng].merged_into = SIZE_MAX;
        ng++;
    }
    /* 2. each raw group's symbolized key */
    for (i = 0; i < ng && !all; i++) {
        FILE *km = open_memstream(&gs[i].key, &gs[i].keylen);
        const struct pmp_thread *th = &snap->threads[order[gs[i].first]];
        if (!km) {
            rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            goto done;
        }
        rc = for_frames(s, th, depth, key_frame, km, err);
        fprintf(km, "\x03%u", th->flags);
        fclose(km);
        if (rc < 0)
            goto done;
        rc = 0;
        if (!gs[i].key) {
            rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            goto done;
        }
    }
    /* 3. merge raw groups with equal keys (different pcs, same lines) */
    for (i = 0; i < ng; i++) {
        size_t k = 0;
        if (gs[i].merged_into != SIZE_MAX)
            continue;
        ms[nm].g = i;
        for (j = i; j < ng; j++) {
            size_t t;
            if (j != i && (all || gs[j].merged_into != SIZE_MAX ||
                           gs[j].keylen != gs[i].keylen ||
                           memcmp(gs[j].key, gs[i].key, gs[i].keylen) != 0))
                continue;
            gs[j].merged_into = nm;
            for (t = 0; t < gs[j].n; t++)
                members[k++] = order[gs[j].first + t];
            if (all)
                break;
        }
        qsort_r(members, k, sizeof(*members), cmp_tid_idx, (void *)snap);
        ms[nm].count = k;
        ms[nm].n = k;
        ms[nm].tids = pmp_calloc(k, sizeof(int));
        ms[nm].names = pmp_calloc(k, sizeof(char *));
        if (!ms[nm].tids || !ms[nm].names) {
            nm++;
            rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
            goto done;
        }
        for (j = 0; j < k; j++) {
            ms[nm].tids[j] = snap->threads[members[j]].tid;
            ms[nm].names[j] = snap->threads[members[j]].name;
        }
        nm++;
    }
    if (!all)
        qsort(ms, nm, sizeof(*ms), cmp_merged);
    /* 4. the text */
    m = open_memstream(&buf, &blen);
    if (!m) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < nm; i++) {
        const struct merged *g = &ms[i];
        const struct pmp_thread *th = &snap->threads[order[gs[g->g].first]];
        const struct pmp_thread *first = NULL;

        fprintf(m, "\n%zu %s: ", g->count, g->count == 1 ? "thread" : "threads");
        for (j = 0; j < g->n && j < THREAD_LIST_MAX; j++) {
            if (j)
                fputs(", ", m);
            if (g->names[j][0])
                fprintf(m, "%d %s", g->tids[j], g->names[j]);
            else
                fprintf(m, "%d", g->tids[j]);
        }
        if (g->n > THREAD_LIST_MAX)
            fprintf(m, ", ... %zu more", g->n - THREAD_LIST_MAX);
        fputc('\n', m);
        rc = for_frames(s, th, depth, print_frame, m, err);
        if (rc < 0)
            goto done;
        rc = 0;
        for (j = 0; j < nt; j++)
            if (snap->threads[j].tid == g->tids[0])
                first = &snap->threads[j];
        if (first && first->error[0] &&
            (first->flags & (PMP_STACK_UNWIND_ERR | PMP_STACK_NO_REGS)))
            fprintf(m, "  (%s)\n", first->error);
        if (th->flags & PMP_STACK_GO)
            fputs("  (Go code this pmprof cannot read: unsupported Go "
                  "version)\n",
                  m);
    }
    if (fclose(m) != 0) {
        m = NULL;
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto done;
    }
    m = NULL;
    *out = buf;
    buf = NULL;
    *ngroups = nm;
done:
    if (m)
        fclose(m);
    free(buf);
    for (i = 0; i < ng; i++)
        free(gs[i].key);
    for (i = 0; i < nm; i++) {
        free(ms[i].tids);
        free(ms[i].names);
    }
    free(order);
    free(gs);
    free(ms);
    free(members);
    return rc;
}

const char *
pmp_thread_state_name(char c)
{
    switch (c) {
    case 'R': return "R";
    case 'S': return "S";
    case 'D': return "D";
    case 'T': return "T";
    case 't': return "t";
    case 'Z': return "Z";
    case 'C': return "core";
    default: return "?";
    }
}

int
pmp_snapshot_write_pprof(struct pmp_session *s, const struct pmp_snapshot *snap,
                         const char *path, const char *const *comments,
                         size_t ncomments, struct pmp_error *err)
{
    struct pmp_symsource src;
    struct pmp_pprof *pp = NULL;
    size_t i;
    int rc;

    pmp_session_symsource(s, &src);
    rc = pmp_pprof_begin_count(&pp, &src, "threads", (int64_t)snap->time_ns,
                               comments, ncomments, err);
    for (i = 0; rc == 0 && i < snap->nthreads; i++) {
        const struct pmp_thread *th = &snap->threads[i];
        int64_t one = 1;
        struct pmp_label labels[3];
        size_t nl = 0;

        if (th->name[0]) {
            labels[nl].key = "thread";
            labels[nl].str = th->name;
            labels[nl].num = 0;
            labels[nl].unit = NULL;
            nl++;
        }
        labels[nl].key = "tid";
        labels[nl].str = NULL;
        labels[nl].num = th->tid;
        labels[nl].unit = "tid";
        nl++;
        labels[nl].key = "state";
        labels[nl].str = pmp_thread_state_name(th->state);
        labels[nl].num = 0;
        labels[nl].unit = NULL;
        nl++;
        rc = pmp_pprof_add(pp, th->pcs, th->frame_flags, (size_t)th->nframes,
                           &one, labels, nl, err);
    }
    if (rc == 0)
        rc = pmp_pprof_write(pp, path, err);
    pmp_pprof_free(pp);
    return rc;
}

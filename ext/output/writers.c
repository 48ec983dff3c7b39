/*
 * writers.c: a recording written as pprof, collapsed stacks, speedscope
 * JSON or Chrome Trace Event JSON, and the top-functions summary.
 *
 * Owns: rendering frame names (inline frames expanded; module+0xoffset
 * for frames without a symbol, like the text reports), JSON string
 * escaping (invalid UTF-8 replaced), and writing each file to a
 * temporary name that is renamed over the target only when complete.
 *
 * Must not: touch the target (the recording holds everything; symbols
 * come from the session's caches).
 */
#define _GNU_SOURCE 1   /* qsort_r */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pmprof-internal.h"
#include "record.h"

/* ---- frame names ---- */

struct rline {
    const char *name;   /* interned in r->names */
    const char *file;   /* owned by the session */
    int line;
};

/*
 * The rendered lines of one frame, innermost (inlined) first, into out
 * (at most max); returns the count (>= 1).  A tail-call frame (fl
 * PMP_FRAME_TAILCALL) is one line, its name marked " [tail call]", as
 * the text and pprof writers show it.
 */
static size_t
frame_lines_fl(struct pmp_recording *r, uint64_t pc, int act, int tail,
               struct rline *out, size_t max)
{
    const struct pmp_frameinfo *fi = NULL;
    struct pmp_error err = {0};
    size_t i, n;
    char buf[320];

    if (pmp_sym_lookup(r->s, pc, act, &fi, &err) != 0 || !fi) {
        snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)pc);
        out[0].name = pmp_strpool_intern(&r->names, buf);
        out[0].file = "";
        out[0].line = 0;
        if (!out[0].name)
            out[0].name = "?";
        return 1;
    }
    n = tail ? 1 : PMP_MIN(fi->nlines, max);
    for (i = 0; i < n; i++) {
        const struct pmp_line *ln = &fi->lines[i];
        const char *nm = ln->function;
        if (!nm || !nm[0]) {
            const struct pmp_module_info *mi =
                fi->module >= 0 ? pmp_sym_module(r->s, (size_t)fi->module)
                                : NULL;
            if (mi && mi->path && mi->path[0]) {
                const char *b = strrchr(mi->path, '/');
                snprintf(buf, sizeof(buf), "%s+0x%llx", b ? b + 1 : mi->path,
                         (unsigned long long)fi->module_offset);
            } else {
                snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)pc);
            }
            nm = buf;
        }
        if (tail) {
            /* One frame, named by the innermost function at the call
               site, as gdb names a tail-call frame. */
            char tb[1024];
            snprintf(tb, sizeof(tb), "%s [tail call]", nm);
            out[i].name = pmp_strpool_intern(&r->names, tb);
        } else {
            out[i].name = pmp_strpool_intern(&r->names, nm);
        }
        if (!out[i].name)
            out[i].name = "?";
        out[i].file = ln->file ? ln->file : "";
        out[i].line = ln->line;
    }
    return n ? n : 1;
}

static size_t
frame_lines(struct pmp_recording *r, uint64_t pc, int act,
            struct rline *out, size_t max)
{
    return frame_lines_fl(r, pc, act, 0, out, max);
}

#define MAX_INLINE 32

/*
 * The rendered lines of a whole stack, ROOT FIRST (outermost frame, and
 * within a frame the physical function before its inlined callees).
 * *out is a growable array in the caller's hands.
 */
static int
stack_lines(struct pmp_recording *r, uint32_t id, struct rline **out,
            size_t *cap, size_t *n)
{
    const struct pmp_rec_stack *st = &r->stacks[id];
    struct rline tmp[MAX_INLINE];
    size_t k, j, m;

    *n = 0;
    for (k = st->n; k-- > 0;) {
        uint64_t pc = r->pcs[st->off + k];
        int act = (r->fl[st->off + k] & PMP_FRAME_ACTIVATION) != 0;
        int tail = (r->fl[st->off + k] & PMP_FRAME_TAILCALL) != 0;
        m = frame_lines_fl(r, pc, act, tail, tmp, MAX_INLINE);
        if (pmp_grow((void **)out, cap, *n + m, sizeof(**out)))
            return PMP_E_NOMEM;
        for (j = m; j-- > 0;)
            (*out)[(*n)++] = tmp[j];
    }
    return 0;
}

/* ---- files ---- */

struct outfile {
    char *path, *tmp;
    FILE *f;
};

static int
out_open(struct outfile *o, const char *path, struct pmp_error *err)
{
    size_t len = strlen(path) + 48;
    int i, fd = -1;

    memset(o, 0, sizeof(*o));
    o->path = pmp_strdup(path);
    o->tmp = malloc(len);
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    for (i = 0; i < 100 && fd < 0; i++) {
        snprintf(o->tmp, len, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(o->path);
        free(o->tmp);
        return pmp_error_errno(err, PMP_E_SYS, e, "cannot write '%s'", path);
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        close(fd);
        unlink(o->tmp);
        free(o->path);
        free(o->tmp);
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    setvbuf(o->f, NULL, _IOFBF, 1 << 16);
    return 0;
}

/* Finish: rename into place when ok, else remove the temporary. */
static int
out_close(struct outfile *o, int rc, struct pmp_error *err)
{
    int e = 0;

    if (fflush(o->f) != 0 || ferror(o->f))
        e = errno ? errno : EIO;
    if (fclose(o->f) != 0 && !e)
        e = errno;
    if (!rc && e)
        rc = pmp_error_errno(err, PMP_E_SYS, e, "cannot write '%s'",
                             o->path);
    if (!rc && rename(o->tmp, o->path) != 0)
        rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot write '%s'",
                             o->path);
    if (rc)
        unlink(o->tmp);
    free(o->path);
    free(o->tmp);
    return rc;
}

/* A JSON string literal; invalid UTF-8 bytes become U+FFFD. */
static void
json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        size_t len = 0, i;

        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
            continue;
        }
        if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
            continue;
        }
        if (c < 0x80) {
            fputc((int)c, f);
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4;
        for (i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                len = 0;
        if (!len) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        fwrite(p, 1, len, f);
        p += len;
    }
    fputc('"', f);
}

static const char *
state_name(int st)
{
    switch (st) {
    case PMP_SAMPLE_RUNNING: return "running";
    case PMP_SAMPLE_SLEEPING: return "sleeping";
    case PMP_SAMPLE_STOPPED: return "stopped";
    default: return "lost";
    }
}

/*
 * The events grouped by thread, each group in time order (a counting
 * sort): thread t's events are order[start[t] .. start[t + 1]).  Writers
 * that go thread by thread then read the log once, not once per thread.
 */
static int
events_by_thread(const struct pmp_recording *r, size_t **order,
                 size_t **start)
{
    size_t *o = pmp_calloc(r->nevents ? r->nevents : 1, sizeof(*o));
    size_t *st = pmp_calloc(r->nthreads + 2, sizeof(*st));
    size_t i;

    if (!o || !st) {
        free(o);
        free(st);
        return PMP_E_NOMEM;
    }
    for (i = 0; i < r->nevents; i++)
        st[r->events[i].thread + 2]++;
    for (i = 2; i < r->nthreads + 2; i++)
        st[i] += st[i - 1];
    for (i = 0; i < r->nevents; i++)
        o[st[r->events[i].thread + 1]++] = i;
    *order = o;
    *start = st;
    return 0;
}

/* ---- collapsed stacks ---- */

/*
 * One line per distinct rendered stack (two stacks that differ only in
 * return addresses inside the same functions render alike and merge).
 */
static int
write_folded(struct pmp_recording *r, FILE *f, struct pmp_error *err)
{
    uint64_t *count = pmp_calloc(r->nstacks ? r->nstacks : 1,
                                 sizeof(*count));
    struct rline *lines = NULL;
    struct pmp_strpool lp;
    struct pmp_u64map tot;
    const char **order = NULL;
    char *buf = NULL;
    size_t cap = 0, n, i, j, bcap = 0, blen, norder = 0, ocap = 0;
    int rc = 0;

    pmp_strpool_init(&lp);
    pmp_u64map_init(&tot);
    if (!count)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    for (i = 0; i < r->nevents; i++)
        count[r->events[i].stack]++;
    for (i = 0; i < r->nstacks && !rc; i++) {
        const char *key;
        uintptr_t prev;

        if (!count[i])
            continue;
        rc = stack_lines(r, (uint32_t)i, &lines, &cap, &n);
        blen = 0;
        for (j = 0; j < n && !rc; j++) {
            const char *s = lines[j].name;
            size_t sl = strlen(s), k;
            if (pmp_grow((void **)&buf, &bcap, blen + sl + 2, 1)) {
                rc = PMP_E_NOMEM;
                break;
            }
            if (j)
                buf[blen++] = ';';
            for (k = 0; k < sl; k++)
                buf[blen++] = s[k] == ';' ? ':'
                              : (s[k] == '\n' || s[k] == '\r') ? ' '
                                                                : s[k];
        }
        if (rc)
            break;
        if (pmp_grow((void **)&buf, &bcap, blen + 1, 1)) {
            rc = PMP_E_NOMEM;
            break;
        }
        buf[blen] = '\0';
        key = pmp_strpool_intern(&lp, buf);
        if (!key) {
            rc = PMP_E_NOMEM;
            break;
        }
        prev = (uintptr_t)pmp_u64map_get(&tot, (uint64_t)(uintptr_t)key);
        if (!prev) {
            if (pmp_grow((void **)&order, &ocap, norder + 1, sizeof(*order))) {
                rc = PMP_E_NOMEM;
                break;
            }
            order[norder++] = key;
        }
        if (pmp_u64map_put(&tot, (uint64_t)(uintptr_t)key,
                           (void *)(prev + count[i])))
            rc = PMP_E_NOMEM;
    }
    for (i = 0; i < norder && !rc; i++)
        fprintf(f, "%s %llu\n", order[i],
                (unsigned long long)(uintptr_t)pmp_u64map_get(
                    &tot, (uint64_t)(uintptr_t)order[i]));
    free(lines);
    free(count);
    free(buf);
    free(order);
    pmp_u64map_release(&tot);
    pmp_strpool_release(&lp);
    if (rc)
        return pmp_error_set(err, rc, "out of memory");
    return 0;
}

/* ---- speedscope ---- */

static int
write_speedscope(struct pmp_recording *r, FILE *f, struct pmp_error *err)
{
    /* Frames: one per distinct (name, file); indices via a map keyed by
       the interned name pointer and file pointer hashed together. */
    struct pmp_u64map idx;
    struct rline *lines = NULL, *frames = NULL;
    size_t cap = 0, fcap = 0, nframes = 0, n, i, j, t;
    uint32_t **stackframes = NULL;   /* per stack: frame indices, root first */
    uint32_t *stacklen = NULL;
    size_t *order = NULL, *start = NULL;
    int rc = 0, first;

    pmp_u64map_init(&idx);
    if (events_by_thread(r, &order, &start))
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    stackframes = pmp_calloc(r->nstacks ? r->nstacks : 1,
                             sizeof(*stackframes));
    stacklen = pmp_calloc(r->nstacks ? r->nstacks : 1, sizeof(*stacklen));
    if (!stackframes || !stacklen) {
        rc = PMP_E_NOMEM;
        goto out;
    }
    for (i = 0; i < r->nevents && !rc; i++) {
        uint32_t sid = r->events[i].stack;
        if (stackframes[sid])
            continue;
        rc = stack_lines(r, sid, &lines, &cap, &n);
        if (rc)
            break;
        stackframes[sid] = malloc((n ? n : 1) * sizeof(uint32_t));
        if (!stackframes[sid]) {
            rc = PMP_E_NOMEM;
            break;
        }
        stacklen[sid] = (uint32_t)n;
        for (j = 0; j < n; j++) {
            uint64_t key = pmp_hash64((uint64_t)(uintptr_t)lines[j].name) ^
                           (uint64_t)(uintptr_t)lines[j].file;
            void *v;
            size_t k;
            /* Resolve hash collisions by probing key+1, key+2, ... */
            for (;;) {
                if (key == UINT64_MAX)
                    key = 0;
                v = pmp_u64map_get(&idx, key);
                if (!v)
                    break;
                k = (size_t)(uintptr_t)v - 1;
                if (frames[k].name == lines[j].name &&
                    frames[k].file == lines[j].file)
                    break;
                key++;
            }
            if (!v) {
                if (pmp_grow((void **)&frames, &fcap, nframes + 1,
                             sizeof(*frames)) ||
                    pmp_u64map_put(&idx, key, (void *)(uintptr_t)(nframes + 1))) {
                    rc = PMP_E_NOMEM;
                    break;
                }
                frames[nframes] = lines[j];
                v = (void *)(uintptr_t)(++nframes);
            }
            stackframes[sid][j] = (uint32_t)((uintptr_t)v - 1);
        }
    }
    if (rc)
        goto out;
    fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
          "\"exporter\":\"pmprof\",\"name\":",
          f);
    {
        char nm[96];
        snprintf(nm, sizeof(nm), "pmprof record: process %d", r->pid);
        json_str(f, nm);
    }
    fputs(",\"activeProfileIndex\":0,\"shared\":{\"frames\":[", f);
    for (i = 0; i < nframes; i++) {
        if (i)
            fputc(',', f);
        fputs("{\"name\":", f);
        json_str(f, frames[i].name);
        if (frames[i].file[0]) {
            fputs(",\"file\":", f);
            json_str(f, frames[i].file);
        }
        fputc('}', f);
    }
    fputs("]},\"profiles\":[", f);
    first = 1;
    for (t = 0; t < r->nthreads; t++) {
        const struct rthread *th = r->threads[t];
        uint64_t end = 0;
        int firsts = 1;
        char nm[112];

        if (!th->samples)
            continue;
        if (!first)
            fputc(',', f);
        first = 0;
        snprintf(nm, sizeof(nm), "%s (%d)", th->name, th->tid);
        fputs("{\"type\":\"sampled\",\"name\":", f);
        json_str(f, nm);
        fputs(",\"unit\":\"nanoseconds\",\"startValue\":0,\"samples\":[", f);
        for (i = start[th->idx]; i < start[th->idx + 1]; i++) {
            const struct pmp_rec_event *ev = &r->events[order[i]];
            if (!firsts)
                fputc(',', f);
            firsts = 0;
            fputc('[', f);
            for (j = 0; j < stacklen[ev->stack]; j++)
                fprintf(f, j ? ",%u" : "%u", stackframes[ev->stack][j]);
            fputc(']', f);
        }
        fputs("],\"weights\":[", f);
        firsts = 1;
        for (i = start[th->idx]; i < start[th->idx + 1]; i++) {
            const struct pmp_rec_event *ev = &r->events[order[i]];
            fprintf(f, firsts ? "%lld" : ",%lld", (long long)ev->wall_ns);
            firsts = 0;
            end += (uint64_t)ev->wall_ns;
        }
        fprintf(f, "],\"endValue\":%llu}", (unsigned long long)end);
    }
    fputs("]}\n", f);
out:
    free(order);
    free(start);
    if (stackframes)
        for (i = 0; i < r->nstacks; i++)
            free(stackframes[i]);
    free(stackframes);
    free(stacklen);
    free(lines);
    free(frames);
    pmp_u64map_release(&idx);
    if (rc)
        return pmp_error_set(err, rc, "out of memory");
    return 0;
}

/* ---- Chrome Trace Event JSON ---- */

#define STATE_TRACK_BASE 1000000000   /* state track tid = this + tid */

static void
ts_us(FILE *f, uint64_t ns)
{
    fprintf(f, "%llu.%03llu", (unsigned long long)(ns / 1000),
            (unsigned long long)(ns % 1000));
}

static void
chrome_slice(FILE *f, int pid, int tid, char ph, uint64_t ns,
             const struct rline *l)
{
    fprintf(f, ",\n{\"ph\":\"%c\",\"pid\":%d,\"tid\":%d,\"ts\":", ph, pid,
            tid);
    ts_us(f, ns);
    if (ph == 'B') {
        fputs(",\"name\":", f);
        json_str(f, l->name);
        fputs(",\"cat\":\"stack\"", f);
        if (l->file[0]) {
            fputs(",\"args\":{\"file\":", f);
            json_str(f, l->file);
            fprintf(f, ",\"line\":%d}", l->line);
        }
    }
    fputc('}', f);
}

static void
chrome_state(FILE *f, int pid, int tid, uint64_t from, uint64_t to,
             int state, int sys)
{
    char nm[64];
    const char *sc = sys >= 0 ? pmp_syscall_name(sys) : NULL;

    if (state == PMP_SAMPLE_SLEEPING && sc)
        snprintf(nm, sizeof(nm), "sleeping: %s", sc);
    else
        snprintf(nm, sizeof(nm), "%s", state_name(state));
    fprintf(f, ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":", pid,
            STATE_TRACK_BASE + tid);
    ts_us(f, from);
    fputs(",\"dur\":", f);
    ts_us(f, to - from);
    fputs(",\"cat\":\"state\",\"name\":", f);
    json_str(f, nm);
    fputc('}', f);
}

static int
write_chrome(struct pmp_recording *r, FILE *f, struct pmp_error *err)
{
    struct rline *cur = NULL, *nw = NULL;
    size_t ccap = 0, ncap = 0, ncur = 0, nnew = 0, t, i, k;
    size_t *order = NULL, *start = NULL;
    int pid = r->pid, rc = 0;
    char nm[128];

    if (events_by_thread(r, &order, &start))
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");

    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"pmprof "
          "record\",",
          f);
    fprintf(f, "\"pid\":%d,\"period_ns\":%llu,\"samples\":%llu},", pid,
            (unsigned long long)r->period_ns,
            (unsigned long long)r->stats.samples);
    fputs("\"traceEvents\":[\n", f);
    snprintf(nm, sizeof(nm), "process %d", pid);
    fprintf(f, "{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"name\":\"process_name\","
               "\"args\":{\"name\":",
            pid);
    json_str(f, nm);
    fputs("}}", f);
    for (t = 0; t < r->nthreads && !rc; t++) {
        const struct rthread *th = r->threads[t];
        uint64_t last = 0, state_from = 0;
        int have = 0, state = -1, sys = -1;

        if (!th->samples)
            continue;
        snprintf(nm, sizeof(nm), "%s (%d)", th->name, th->tid);
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                   "\"name\":\"thread_name\",\"args\":{\"name\":",
                pid, th->tid);
        json_str(f, nm);
        fputs("}}", f);
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                   "\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}",
                pid, th->tid, (int)(2 * t));
        snprintf(nm, sizeof(nm), "%s (%d) state", th->name, th->tid);
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                   "\"name\":\"thread_name\",\"args\":{\"name\":",
                pid, STATE_TRACK_BASE + th->tid);
        json_str(f, nm);
        fputs("}}", f);
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
                   "\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}",
                pid, STATE_TRACK_BASE + th->tid, (int)(2 * t + 1));
        ncur = 0;
        for (i = start[th->idx]; i < start[th->idx + 1] && !rc; i++) {
            const struct pmp_rec_event *ev = &r->events[order[i]];
            size_t common = 0;

            rc = stack_lines(r, ev->stack, &nw, &ncap, &nnew);
            if (rc)
                break;
            while (common < ncur && common < nnew &&
                   cur[common].name == nw[common].name &&
                   cur[common].file == nw[common].file)
                common++;
            for (k = ncur; k-- > common;)
                chrome_slice(f, pid, th->tid, 'E', ev->t_ns, &cur[k]);
            for (k = common; k < nnew; k++)
                chrome_slice(f, pid, th->tid, 'B', ev->t_ns, &nw[k]);
            if (pmp_grow((void **)&cur, &ccap, nnew ? nnew : 1,
                         sizeof(*cur))) {
                rc = PMP_E_NOMEM;
                break;
            }
            memcpy(cur, nw, nnew * sizeof(*cur));
            ncur = nnew;
            if (have && (ev->state != state || ev->sys != sys)) {
                chrome_state(f, pid, th->tid, state_from, ev->t_ns, state,
                             sys);
                state_from = ev->t_ns;
            } else if (!have) {
                state_from = ev->t_ns;
            }
            state = ev->state;
            sys = ev->sys;
            have = 1;
            last = ev->t_ns;
        }
        /* The last sample stands for one more period. */
        last += r->period_ns;
        for (k = ncur; k-- > 0;)
            chrome_slice(f, pid, th->tid, 'E', last, &cur[k]);
        if (have)
            chrome_state(f, pid, th->tid, state_from, last, state, sys);
    }
    fputs("\n]}\n", f);
    free(cur);
    free(nw);
    free(order);
    free(start);
    if (rc)
        return pmp_error_set(err, rc, "out of memory");
    return 0;
}

/* ---- pprof ---- */

static int
write_pprof(struct pmp_recording *r, const char *path, struct pmp_error *err)
{
    static const struct pmp_value_type types[] = {
        {"samples", "count"}, {"wall", "nanoseconds"}, {"cpu", "nanoseconds"}};
    struct pmp_pprof_opts o = {0};
    struct pmp_symsource src;
    struct pmp_pprof *pp = NULL;
    size_t i;
    int rc;
    char comment[128];
    const char *comments[1];

    pmp_session_symsource(r->s, &src);
    o.sample_types = types;
    o.nsample_types = 3;
    o.period_type.type = "wall";
    o.period_type.unit = "nanoseconds";
    o.period = (int64_t)r->period_ns;
    o.time_nanos = (int64_t)r->t0_real;
    o.duration_nanos = (int64_t)r->stats.elapsed_ns;
    o.default_sample_type = "cpu";
    snprintf(comment, sizeof(comment),
             "pmprof record: pid %d, %.1f Hz, %llu samples, %llu lost",
             r->pid, 1e9 / (double)r->period_ns,
             (unsigned long long)r->stats.samples,
             (unsigned long long)r->stats.lost);
    comments[0] = comment;
    o.comments = comments;
    o.ncomments = 1;
    rc = pmp_pprof_begin(&pp, &src, &o, err);
    for (i = 0; rc == 0 && i < r->nevents; i++) {
        const struct pmp_rec_event *ev = &r->events[i];
        const struct rthread *th = r->threads[ev->thread];
        const struct pmp_rec_stack *st = &r->stacks[ev->stack];
        int64_t vals[3] = {1, ev->wall_ns, ev->cpu_ns};
        struct pmp_label lb[4 + 1 + 32];
        size_t nl = 0, k;
        const char *sc = ev->sys >= 0 ? pmp_syscall_name(ev->sys) : NULL;

        memset(lb, 0, sizeof(lb));
        if (th->name[0]) {
            lb[nl].key = "thread";
            lb[nl++].str = th->name;
        }
        lb[nl].key = "tid";
        lb[nl].num = th->tid;
        lb[nl++].unit = "tid";
        lb[nl].key = "state";
        lb[nl++].str = state_name(ev->state);
        if (sc) {
            lb[nl].key = "syscall";
            lb[nl++].str = sc;
        }
        if (ev->gset && ev->gset <= r->ngsets) {
            /* Go: the goroutine and its pprof labels, as in Go's own
               CPU profiles (which carry the labels), plus its ID. */
            const struct pmp_rec_gset *gs = &r->gsets[ev->gset - 1];
            lb[nl].key = "goid";
            lb[nl].num = gs->goid;
            lb[nl++].unit = "goid";
            for (k = 0; k < gs->n && nl < PMP_ARRAY_SIZE(lb); k++) {
                lb[nl].key = r->glabels[gs->first + k].key;
                lb[nl++].str = r->glabels[gs->first + k].value;
            }
        }
        rc = pmp_pprof_add(pp, r->pcs + st->off, r->fl + st->off, st->n,
                           vals, lb, nl, err);
    }
    if (rc == 0)
        rc = pmp_pprof_write(pp, path, err);
    pmp_pprof_free(pp);
    return rc;
}

int
pmp_recording_write(struct pmp_recording *r, enum pmp_rec_format fmt,
                    const char *path, struct pmp_error *err)
{
    struct outfile o;
    int rc;

    if (fmt == PMP_FMT_PPROF)
        return write_pprof(r, path, err);
    if (fmt != PMP_FMT_FOLDED && fmt != PMP_FMT_SPEEDSCOPE &&
        fmt != PMP_FMT_CHROME)
        return pmp_error_set(err, PMP_E_USAGE, "unknown output format %d",
                             (int)fmt);
    rc = out_open(&o, path, err);
    if (rc)
        return rc;
    if (fmt == PMP_FMT_FOLDED)
        rc = write_folded(r, o.f, err);
    else if (fmt == PMP_FMT_SPEEDSCOPE)
        rc = write_speedscope(r, o.f, err);
    else
        rc = write_chrome(r, o.f, err);
    return out_close(&o, rc, err);
}

/* ---- top functions ---- */

static int
cmp_top(const void *a, const void *b, void *ctx)
{
    const struct pmp_top_entry *x = a, *y = b;
    int by_wall = *(const int *)ctx;
    int64_t vx = by_wall ? x->wall_ns : x->cpu_ns;
    int64_t vy = by_wall ? y->wall_ns : y->cpu_ns;

    if (vx != vy)
        return vx < vy ? 1 : -1;
    if (x->samples != y->samples)
        return x->samples < y->samples ? 1 : -1;
    return strcmp(x->function, y->function);
}

size_t
pmp_recording_top(struct pmp_recording *r, int by_wall,
                  struct pmp_top_entry *out, size_t n)
{
    struct pmp_u64map m;
    struct pmp_top_entry *all = NULL;
    size_t cap = 0, nall = 0, i;
    const char **leaf;

    leaf = pmp_calloc(r->nstacks ? r->nstacks : 1, sizeof(*leaf));
    if (!leaf)
        return 0;
    pmp_u64map_init(&m);
    for (i = 0; i < r->nevents; i++) {
        const struct pmp_rec_event *ev = &r->events[i];
        struct pmp_top_entry *e;
        void *v;

        if (!leaf[ev->stack]) {
            const struct pmp_rec_stack *st = &r->stacks[ev->stack];
            struct rline l[MAX_INLINE];
            frame_lines(r, r->pcs[st->off],
                        (r->fl[st->off] & PMP_FRAME_ACTIVATION) != 0, l,
                        MAX_INLINE);
            leaf[ev->stack] = l[0].name;
        }
        v = pmp_u64map_get(&m, (uint64_t)(uintptr_t)leaf[ev->stack]);
        if (!v) {
            if (pmp_grow((void **)&all, &cap, nall + 1, sizeof(*all)) ||
                pmp_u64map_put(&m, (uint64_t)(uintptr_t)leaf[ev->stack],
                               (void *)(uintptr_t)(nall + 1)))
                break;
            memset(&all[nall], 0, sizeof(all[nall]));
            all[nall].function = leaf[ev->stack];
            v = (void *)(uintptr_t)(++nall);
        }
        e = &all[(uintptr_t)v - 1];
        e->samples++;
        e->cpu_ns += ev->cpu_ns;
        e->wall_ns += ev->wall_ns;
    }
    if (nall)
        qsort_r(all, nall, sizeof(*all), cmp_top, &by_wall);
    n = PMP_MIN(n, nall);
    if (n)
        memcpy(out, all, n * sizeof(*out));
    free(all);
    free(leaf);
    pmp_u64map_release(&m);
    return n;
}

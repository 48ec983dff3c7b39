/*
 * test-pprof.c: tests of the pprof builder and writer (ext/output/pprof.c), fed
 * synthetic stacks through a fake pmp_symsource (Go's translateCPUProfile
 * test model): no process, no debug info.
 *
 * The fake knows three modules (libc first, then the main executable with
 * a build-id, then a library no sample touches) and functions with inline
 * chains, a mangled C++ name, a libc address with no symbol, an address in
 * no module and a synthetic [truncated] pc.  Each written profile is read
 * back (gunzip + protobuf-c unpack) and checked field by field.
 *
 *   test-pprof        run the checks
 *
 * With PMPROF_PPROF_OUT=FILE set, the example profile is also written to
 * FILE; tests/test_pprof_writer.py then checks it with go tool pprof.
 *
 * Exit status: 0 all passed, 1 some check failed.  The last line is
 * "N passed, M failed".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "pmprof.h"
#include "profile.pb-c.h"
#include "unit.h"

#define MAX_SEEN 1024

/* ---- the fake symbol source ------------------------------------- */

#define MAIN_LO UINT64_C(0x555555554000)
#define LIBC_LO UINT64_C(0x7f0000000000)
#define MAIN_BUILD_ID "0123456789abcdef0123456789abcdef01234567"
#define LIBC_BUILD_ID "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
#define MAIN_PATH "/opt/pmprof-test/bin/demo-server"
#define LIBC_PATH "/opt/pmprof-test/lib/libc.so.6"

enum { MOD_LIBC, MOD_MAIN, MOD_UNUSED };

static const struct pmp_module_info fake_modules[] = {
    [MOD_LIBC] = {LIBC_LO, LIBC_LO + 0x200000, 0x28000, LIBC_PATH,
                  LIBC_BUILD_ID, 0, 0, 1, 0, 0, 0},
    [MOD_MAIN] = {MAIN_LO, MAIN_LO + 0x10000, 0, MAIN_PATH, MAIN_BUILD_ID, 1,
                  0, 1, 1, 1, 1},
    [MOD_UNUSED] = {UINT64_C(0x7f1000000000), UINT64_C(0x7f1000010000), 0,
                    "/opt/pmprof-test/lib/libunused.so", "", 0, 0, 1, 0, 0,
                    0},
};

/* Addresses (as looked up: pc for activations, pc-1 otherwise). */
#define A_MAIN (MAIN_LO + 0x1000)          /* main */
#define A_COPY (MAIN_LO + 0x1100)          /* copy_bytes in compress_block */
#define A_COMPRESS (MAIN_LO + 0x1180)      /* compress_block */
#define A_HASH (MAIN_LO + 0x1200)          /* copy_bytes in hash_update */
#define A_CXX (MAIN_LO + 0x1300)           /* ns::Foo::bar(int) */
#define A_NOSYM_MAIN (MAIN_LO + 0x8000)    /* in main, no symbol */
#define A_START (LIBC_LO + 0x29d00)        /* __libc_start_call_main */
#define A_POLL (LIBC_LO + 0x100000)        /* poll */
#define A_NOSYM_LIBC (LIBC_LO + 0x150000)  /* in libc, no symbol */
#define A_NOWHERE UINT64_C(0x1234)         /* in no module */
#define PC_TRUNC PMP_PC_SYNTH(PMP_SYNTH_TRUNCATED)
#define PC_NOREGS PMP_PC_SYNTH(PMP_SYNTH_NO_REGS)

/* Names of synthetic frames, by kind (as the session's symbolizer). */
static const char *const synth_names[] = {
    "[unknown]", "[truncated]", "[unwind error]", "[no registers]", "[lost]",
    "[go: no Go unwinder yet]",
};
#define NSYNTH (sizeof(synth_names) / sizeof(synth_names[0]))

struct fake_fn {
    uint64_t lo, hi;     /* [lo, hi) */
    int module;
    size_t nlines;
    struct pmp_line lines[2];
};

static const struct fake_fn fake_fns[] = {
    {A_MAIN, A_MAIN + 0x100, MOD_MAIN, 1,
     {{"main", "main", "/src/demo/main.c", 30, 5}}},
    {A_COPY, A_COPY + 0x80, MOD_MAIN, 2,
     {{"copy_bytes", "copy_bytes", "/src/demo/util.h", 12, 9},
      {"compress_block", "compress_block", "/src/demo/compress.c", 88, 3}}},
    {A_COMPRESS, A_COMPRESS + 0x80, MOD_MAIN, 1,
     {{"compress_block", "compress_block", "/src/demo/compress.c", 95, 0}}},
    {A_HASH, A_HASH + 0x80, MOD_MAIN, 2,
     {{"copy_bytes", "copy_bytes", "/src/demo/util.h", 14, 9},
      {"hash_update", "hash_update", "/src/demo/hash.c", 40, 0}}},
    {A_CXX, A_CXX + 0x80, MOD_MAIN, 1,
     {{"ns::Foo::bar(int)", "_ZN2ns3Foo3barEi", "/src/demo/foo.cpp", 7, 0}}},
    {A_START, A_START + 0x100, MOD_LIBC, 1,
     {{"__libc_start_call_main", "__libc_start_call_main", "", 0, 0}}},
    {A_POLL, A_POLL + 0x100, MOD_LIBC, 1, {{"poll", "poll", "", 0, 0}}},
};

struct seen {
    uint64_t pc;
    int act;
    int calls;
    struct pmp_frameinfo fi;   /* what lookup returned: stays valid */
};

struct fake {
    size_t nmods;                  /* a prefix of fake_modules */
    int no_main;                   /* pretend no module is the main one */
    struct pmp_module_info mods[3];
    uint64_t fail_pc;              /* lookups of it fail; 0: none */
    struct seen seen[MAX_SEEN];
    size_t nseen;
    long lookups;
    struct pmp_line unknown;       /* the "" line */
    struct pmp_line synth[NSYNTH];
};

static int
fake_lookup(void *ctx, uint64_t pc, int activation,
            const struct pmp_frameinfo **out, struct pmp_error *err)
{
    struct fake *f = ctx;
    uint64_t a = activation || pc == 0 ? pc : pc - 1;
    struct seen *s = NULL;
    size_t i;

    f->lookups++;
    for (i = 0; i < f->nseen; i++)
        if (f->seen[i].pc == pc && f->seen[i].act == activation)
            s = &f->seen[i];
    if (!s) {
        if (f->nseen == MAX_SEEN)
            return pmp_error_set(err, PMP_E_NOMEM, "fake: too many pcs");
        s = &f->seen[f->nseen++];
        memset(s, 0, sizeof(*s));
        s->pc = pc;
        s->act = activation;
    }
    s->calls++;
    if (f->fail_pc && pc == f->fail_pc)
        return pmp_error_set(err, PMP_E_NOMEM, "fake: cannot symbolize");
    s->fi.pc = pc;
    s->fi.module = -1;
    s->fi.module_offset = pc;
    s->fi.nlines = 1;
    s->fi.lines = &f->unknown;
    if (PMP_PC_IS_SYNTH(pc)) {
        i = pc - PMP_PC_SYNTH_BASE;
        if (i >= NSYNTH)
            i = 0;
        s->fi.lines = &f->synth[i];
        *out = &s->fi;
        return 0;
    }
    for (i = 0; i < sizeof(fake_fns) / sizeof(fake_fns[0]); i++)
        if (a >= fake_fns[i].lo && a < fake_fns[i].hi) {
            s->fi.module = fake_fns[i].module;
            s->fi.nlines = fake_fns[i].nlines;
            s->fi.lines = fake_fns[i].lines;
            break;
        }
    for (i = 0; s->fi.module < 0 && i < f->nmods; i++)
        if (a >= f->mods[i].start && a < f->mods[i].end)
            s->fi.module = (int)i;
    if (s->fi.module >= 0)
        s->fi.module_offset = a - f->mods[s->fi.module].start +
                              f->mods[s->fi.module].file_offset;
    *out = &s->fi;
    return 0;
}

static size_t
fake_nmodules(void *ctx)
{
    return ((struct fake *)ctx)->nmods;
}

static const struct pmp_module_info *
fake_module(void *ctx, size_t i)
{
    struct fake *f = ctx;

    return i < f->nmods ? &f->mods[i] : NULL;
}

static void
fake_init(struct fake *f, struct pmp_symsource *src)
{
    size_t i;

    memset(f, 0, sizeof(*f));
    f->nmods = 3;
    for (i = 0; i < 3; i++)
        f->mods[i] = fake_modules[i];
    f->unknown.function = f->unknown.system_name = f->unknown.file = "";
    for (i = 0; i < NSYNTH; i++) {
        f->synth[i].function = f->synth[i].system_name = synth_names[i];
        f->synth[i].file = "";
    }
    src->ctx = f;
    src->lookup = fake_lookup;
    src->nmodules = fake_nmodules;
    src->module = fake_module;
}

static const struct seen *
fake_seen(const struct fake *f, uint64_t pc, int act)
{
    size_t i;

    for (i = 0; i < f->nseen; i++)
        if (f->seen[i].pc == pc && f->seen[i].act == act)
            return &f->seen[i];
    return NULL;
}

/* ---- reading a profile back -------------------------------------- */

static Perftools__Profiles__Profile *
read_profile(const char *path)
{
    Perftools__Profiles__Profile *prof = NULL;
    unsigned char magic[2] = {0, 0};
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    gzFile gz = NULL;
    FILE *fp;
    int n;

    fp = fopen(path, "rb");
    if (!fp || fread(magic, 1, 2, fp) != 2 || magic[0] != 0x1f ||
        magic[1] != 0x8b) {
        CHECK_MSG(0, "%s: missing or not gzip", path);
        goto out;
    }
    gz = gzopen(path, "rb");
    if (!gz)
        goto out;
    for (;;) {
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap ? cap * 2 : 65536);
            if (!nb)
                goto out;
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        n = gzread(gz, buf + len, (unsigned)(cap - len));
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    prof = perftools__profiles__profile__unpack(NULL, len, buf);
    CHECK_MSG(prof != NULL, "%s: does not unpack", path);
out:
    if (gz)
        gzclose(gz);
    if (fp)
        fclose(fp);
    free(buf);
    return prof;
}

static const char *
str(const Perftools__Profiles__Profile *p, int64_t i)
{
    if (i < 0 || (uint64_t)i >= p->n_string_table)
        return "<bad string index>";
    return p->string_table[i];
}

static const Perftools__Profiles__Function *
func(const Perftools__Profiles__Profile *p, uint64_t id)
{
    size_t i;

    for (i = 0; i < p->n_function; i++)
        if (p->function[i]->id == id)
            return p->function[i];
    return NULL;
}

static const Perftools__Profiles__Location *
loc_by_id(const Perftools__Profiles__Profile *p, uint64_t id)
{
    size_t i;

    for (i = 0; i < p->n_location; i++)
        if (p->location[i]->id == id)
            return p->location[i];
    return NULL;
}

static const Perftools__Profiles__Location *
loc_at(const Perftools__Profiles__Profile *p, uint64_t address)
{
    size_t i;

    for (i = 0; i < p->n_location; i++)
        if (p->location[i]->address == address)
            return p->location[i];
    return NULL;
}

/* Function name of a location's line i, or NULL. */
static const char *
line_fn(const Perftools__Profiles__Profile *p,
        const Perftools__Profiles__Location *l, size_t i)
{
    const Perftools__Profiles__Function *f;

    if (!l || i >= l->n_line)
        return NULL;
    f = func(p, l->line[i]->function_id);
    return f ? str(p, f->name) : NULL;
}

static const Perftools__Profiles__Label *
label(const Perftools__Profiles__Profile *p,
      const Perftools__Profiles__Sample *s, const char *key)
{
    size_t i;

    for (i = 0; i < s->n_label; i++)
        if (strcmp(str(p, s->label[i]->key), key) == 0)
            return s->label[i];
    return NULL;
}

/* The one sample with string label key=val, or NULL. */
static const Perftools__Profiles__Sample *
sample_with(const Perftools__Profiles__Profile *p, const char *key,
            const char *val)
{
    const Perftools__Profiles__Sample *found = NULL;
    const Perftools__Profiles__Label *l;
    size_t i;

    for (i = 0; i < p->n_sample; i++) {
        l = label(p, p->sample[i], key);
        if (l && l->str && strcmp(str(p, l->str), val) == 0) {
            CHECK_MSG(found == NULL, "two samples with %s=%s", key, val);
            found = p->sample[i];
        }
    }
    CHECK_MSG(found != NULL, "no sample with %s=%s", key, val);
    return found;
}

/* profile.CheckValid's invariants, and ours (no duplicate strings or
   functions, every line has a function). */
static void
check_valid(const Perftools__Profiles__Profile *p)
{
    size_t i, j;

    CHECK(p->n_string_table >= 1 && strcmp(p->string_table[0], "") == 0);
    for (i = 1; i < p->n_string_table; i++)
        for (j = 0; j < i; j++)
            CHECK_MSG(strcmp(p->string_table[i], p->string_table[j]) != 0,
                      "string %zu duplicates %zu", i, j);
    for (i = 0; i < p->n_sample; i++) {
        CHECK_EQ_INT(p->sample[i]->n_value, p->n_sample_type);
        for (j = 0; j < p->sample[i]->n_location_id; j++)
            CHECK(loc_by_id(p, p->sample[i]->location_id[j]) != NULL);
    }
    for (i = 0; i < p->n_mapping; i++)
        CHECK_EQ_INT(p->mapping[i]->id, i + 1);
    for (i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];

        CHECK_EQ_INT(l->id, i + 1);
        CHECK(l->mapping_id <= p->n_mapping);
        for (j = 0; j < l->n_line; j++)
            CHECK(l->line[j]->function_id != 0 &&
                  func(p, l->line[j]->function_id) != NULL);
    }
    for (i = 0; i < p->n_function; i++) {
        CHECK_EQ_INT(p->function[i]->id, i + 1);
        for (j = 0; j < i; j++)
            CHECK(p->function[i]->name != p->function[j]->name ||
                  p->function[i]->system_name !=
                      p->function[j]->system_name ||
                  p->function[i]->filename != p->function[j]->filename);
    }
}

/* ---- the example profile ----------------------------------------- */

static const struct pmp_value_type types[] = {
    {"samples", "count"},
    {"wall", "nanoseconds"},
};
static const char *const comments[] = {"pmprof unit test", "second comment"};

static void
example_opts(struct pmp_pprof_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sample_types = types;
    o->nsample_types = 2;
    o->period_type.type = "wall";
    o->period_type.unit = "nanoseconds";
    o->period = 10000000;
    o->time_nanos = INT64_C(1700000000000000000);
    o->duration_nanos = INT64_C(2000000000);
    o->default_sample_type = "wall";
    o->comments = comments;
    o->ncomments = 2;
}

static int
add(struct pmp_pprof *pp, const uint64_t *pcs, const uint8_t *flags,
    size_t npcs, int64_t v0, const struct pmp_label *labels, size_t nlabels)
{
    struct pmp_error err;
    int64_t vals[2];
    int rc;

    memset(&err, 0, sizeof(err));
    vals[0] = v0;
    vals[1] = v0 * 10000000;
    rc = pmp_pprof_add(pp, pcs, flags, npcs, vals, labels, nlabels, &err);
    CHECK_MSG(rc == 0, "add: %s", err.msg);
    return rc;
}

/*
 * The example: six threads' stacks, some of them repeated.  pcs are
 * return addresses (looked up as pc-1) except the leaves.
 */
static void
build_example(struct pmp_pprof *pp)
{
    const uint64_t busy[] = {A_COPY + 0x20, A_MAIN + 0x42, A_START + 0x90};
    const uint64_t hash[] = {A_HASH + 0x10, A_COMPRESS + 0x21, A_MAIN + 0x42,
                             A_START + 0x90};
    const uint64_t cxx[] = {A_CXX + 0x8, A_MAIN + 0x60, A_START + 0x90};
    const uint64_t idle[] = {A_POLL + 0x14, A_NOSYM_LIBC + 0x10,
                             A_NOWHERE};
    const uint64_t deep[] = {A_COPY + 0x30, A_MAIN + 0x80, PC_TRUNC};
    const uint64_t noregs[] = {PC_NOREGS};
    const uint8_t inexact[] = {0, 0, 0};
    const struct pmp_label w1[] = {
        {"thread", "worker-1", 0, NULL},
        {"tid", NULL, 101, NULL},
    };
    const struct pmp_label w1_zero[] = {
        {"thread", "worker-1", 0, NULL},
        {"tid", NULL, 101, NULL},
        {"ignored", NULL, 0, NULL},      /* num 0, no unit: dropped */
        {"empty", "", 0, NULL},          /* str "": dropped */
    };
    const struct pmp_label w2[] = {
        {"thread", "worker-2", 0, NULL},
        {"tid", NULL, 102, NULL},
    };
    const struct pmp_label w3[] = {
        {"thread", "worker-3", 0, NULL},
        {"tid", NULL, 103, NULL},
    };
    const struct pmp_label hasher[] = {
        {"thread", "hasher", 0, NULL},
        {"tid", NULL, 104, NULL},
    };
    const struct pmp_label cxxl[] = {
        {"thread", "cxx", 0, NULL},
        {"tid", NULL, 105, NULL},
    };
    const struct pmp_label idlel[] = {
        {"thread", "idle", 0, NULL},
        {"tid", NULL, 106, NULL},
        {"wait", NULL, 1500000, "nanoseconds"},
        {"retries", NULL, 0, "count"},    /* num 0 with a unit: kept */
        {"state", "S", 0, "ignored-unit"},
    };
    const struct pmp_label deepl[] = {
        {"thread", "deep", 0, NULL},
        {"tid", NULL, 107, NULL},
    };
    const struct pmp_label gone[] = {
        {"thread", "no-regs", 0, NULL},
        {"tid", NULL, 108, NULL},
    };

    /* First a stack in libc: mappings in order of first use would put
       libc first, but the main executable must be mapping 1. */
    add(pp, idle, NULL, 3, 5, idlel, 5);
    /* worker-1 three times (once with the dropped label): one sample */
    add(pp, busy, NULL, 3, 1, w1, 2);
    add(pp, busy, NULL, 3, 1, w1_zero, 4);
    add(pp, busy, NULL, 3, 1, w1, 2);
    /* same stack, another thread: its own sample */
    add(pp, busy, NULL, 3, 1, w2, 2);
    /* same pcs, but the leaf is a return address: its own sample and
       locations */
    add(pp, busy, inexact, 3, 1, w3, 2);
    add(pp, hash, NULL, 4, 2, hasher, 2);
    add(pp, cxx, NULL, 3, 1, cxxl, 2);
    add(pp, deep, NULL, 3, 1, deepl, 2);
    /* A thread that could not be read is charged to a synthetic frame:
       pprof drops samples without locations. */
    add(pp, noregs, NULL, 1, 1, gone, 2);
}

static void
check_example(const Perftools__Profiles__Profile *p, const struct fake *f)
{
    const Perftools__Profiles__Sample *s;
    const Perftools__Profiles__Location *l;
    const Perftools__Profiles__Function *fn;
    const Perftools__Profiles__Mapping *m;
    const Perftools__Profiles__Label *lb;
    size_t i, n;

    check_valid(p);

    /* header */
    CHECK_EQ_INT(p->n_sample_type, 2);
    if (p->n_sample_type == 2) {
        CHECK_STR(str(p, p->sample_type[0]->type), "samples");
        CHECK_STR(str(p, p->sample_type[0]->unit), "count");
        CHECK_STR(str(p, p->sample_type[1]->type), "wall");
        CHECK_STR(str(p, p->sample_type[1]->unit), "nanoseconds");
    }
    CHECK_STR(str(p, p->default_sample_type), "wall");
    CHECK(p->period_type != NULL);
    if (p->period_type) {
        CHECK_STR(str(p, p->period_type->type), "wall");
        CHECK_STR(str(p, p->period_type->unit), "nanoseconds");
    }
    CHECK_EQ_INT(p->period, 10000000);
    CHECK_EQ_INT(p->time_nanos, INT64_C(1700000000000000000));
    CHECK_EQ_INT(p->duration_nanos, INT64_C(2000000000));
    CHECK_EQ_INT(p->n_comment, 2);
    if (p->n_comment == 2) {
        CHECK_STR(str(p, p->comment[0]), "pmprof unit test");
        CHECK_STR(str(p, p->comment[1]), "second comment");
    }

    /* mappings: main first although libc is module 0; libunused absent */
    CHECK_EQ_INT(p->n_mapping, 2);
    if (p->n_mapping == 2) {
        m = p->mapping[0];
        CHECK_STR(str(p, m->filename), MAIN_PATH);
        CHECK_STR(str(p, m->build_id), MAIN_BUILD_ID);
        CHECK_EQ_U64(m->memory_start, MAIN_LO);
        CHECK_EQ_U64(m->memory_limit, MAIN_LO + 0x10000);
        CHECK(m->has_functions && m->has_filenames && m->has_line_numbers &&
              m->has_inline_frames);
        m = p->mapping[1];
        CHECK_STR(str(p, m->filename), LIBC_PATH);
        CHECK_STR(str(p, m->build_id), LIBC_BUILD_ID);
        CHECK_EQ_U64(m->file_offset, 0x28000);
        CHECK(m->has_functions && !m->has_filenames &&
              !m->has_line_numbers && !m->has_inline_frames);
    }

    /* symbolized once per unique (pc, activation), and only those */
    CHECK_EQ_INT(f->nseen, p->n_location);
    for (i = 0; i < f->nseen; i++)
        CHECK_MSG(f->seen[i].calls == 1, "pc 0x%" PRIx64 "/%d: %d lookups",
                  f->seen[i].pc, f->seen[i].act, f->seen[i].calls);
    /* new (pc, activation) pairs: busy 3, its inexact twin 1 (the
       callers are the same), hash 2, cxx 2, idle 3, deep 3, no-regs 1 */
    CHECK_EQ_INT(p->n_location, 3 + 1 + 2 + 2 + 3 + 3 + 1);

    /* the inlined leaf: exact address, copy_bytes inside compress_block */
    l = loc_at(p, A_COPY + 0x20);
    CHECK(l != NULL);
    if (l) {
        CHECK_EQ_INT(l->mapping_id, 1);
        CHECK_EQ_INT(l->n_line, 2);
        CHECK_STR(line_fn(p, l, 0), "copy_bytes");
        CHECK_STR(line_fn(p, l, 1), "compress_block");
        if (l->n_line == 2) {
            CHECK_EQ_INT(l->line[0]->line, 12);
            CHECK_EQ_INT(l->line[0]->column, 9);
            CHECK_EQ_INT(l->line[1]->line, 88);
            fn = func(p, l->line[0]->function_id);
            CHECK(fn && strcmp(str(p, fn->filename), "/src/demo/util.h") == 0);
        }
    }
    /* the same pc as a return address: its own location at pc-1 */
    l = loc_at(p, A_COPY + 0x20 - 1);
    CHECK(l != NULL);
    CHECK_STR(line_fn(p, l, 0), "copy_bytes");
    /* callers: pc-1 */
    l = loc_at(p, A_MAIN + 0x41);
    CHECK(l != NULL);
    if (l) {
        CHECK_EQ_INT(l->mapping_id, 1);
        CHECK_STR(line_fn(p, l, 0), "main");
    }
    CHECK(loc_at(p, A_MAIN + 0x42) == NULL);
    l = loc_at(p, A_START + 0x8f);
    CHECK(l != NULL && l->mapping_id == 2);
    CHECK_STR(line_fn(p, l, 0), "__libc_start_call_main");
    /* the mangled name */
    l = loc_at(p, A_CXX + 0x8);
    CHECK(l != NULL && l->n_line == 1);
    if (l && l->n_line == 1) {
        fn = func(p, l->line[0]->function_id);
        CHECK(fn != NULL);
        if (fn) {
            CHECK_STR(str(p, fn->name), "ns::Foo::bar(int)");
            CHECK_STR(str(p, fn->system_name), "_ZN2ns3Foo3barEi");
            CHECK_STR(str(p, fn->filename), "/src/demo/foo.cpp");
        }
    }
    /* no symbol in libc: mapped, no lines; in no module: neither */
    l = loc_at(p, A_NOSYM_LIBC + 0xf);
    CHECK(l != NULL && l->mapping_id == 2 && l->n_line == 0);
    l = loc_at(p, A_NOWHERE - 1);
    CHECK(l != NULL && l->mapping_id == 0 && l->n_line == 0);
    /* the synthetic frame: no mapping, its name, its pc unchanged */
    l = loc_at(p, PC_TRUNC);
    CHECK(l != NULL && l->mapping_id == 0);
    CHECK_STR(line_fn(p, l, 0), "[truncated]");
    CHECK(fake_seen(f, PC_TRUNC, 0) != NULL);

    /* functions: copy_bytes and compress_block once each */
    for (i = 0, n = 0; i < p->n_function; i++)
        n += strcmp(str(p, p->function[i]->name), "copy_bytes") == 0;
    CHECK_EQ_INT(n, 1);
    for (i = 0, n = 0; i < p->n_function; i++)
        n += strcmp(str(p, p->function[i]->name), "compress_block") == 0;
    CHECK_EQ_INT(n, 1);
    /* main, copy_bytes, compress_block, __libc_start_call_main,
       hash_update, ns::Foo::bar, poll, [truncated], [no registers] */
    CHECK_EQ_INT(p->n_function, 9);

    /* samples */
    CHECK_EQ_INT(p->n_sample, 8);
    s = sample_with(p, "thread", "worker-1");
    if (s) {
        CHECK_EQ_INT(s->n_value, 2);
        CHECK_EQ_INT(s->value[0], 3);
        CHECK_EQ_INT(s->value[1], 30000000);
        CHECK_EQ_INT(s->n_label, 2);
        CHECK(label(p, s, "ignored") == NULL);
        CHECK(label(p, s, "empty") == NULL);
        lb = label(p, s, "tid");
        CHECK(lb && lb->num == 101 && lb->str == 0 && lb->num_unit == 0);
        CHECK_EQ_INT(s->n_location_id, 3);
        l = s->n_location_id ? loc_by_id(p, s->location_id[0]) : NULL;
        CHECK(l && l->address == A_COPY + 0x20);
    }
    s = sample_with(p, "thread", "worker-2");
    CHECK(s && s->value[0] == 1);
    s = sample_with(p, "thread", "worker-3");
    l = s && s->n_location_id ? loc_by_id(p, s->location_id[0]) : NULL;
    CHECK(l && l->address == A_COPY + 0x20 - 1);
    s = sample_with(p, "thread", "idle");
    if (s) {
        CHECK_EQ_INT(s->value[0], 5);
        lb = label(p, s, "wait");
        CHECK(lb && lb->num == 1500000 &&
              strcmp(str(p, lb->num_unit), "nanoseconds") == 0);
        lb = label(p, s, "retries");
        CHECK(lb && lb->num == 0 &&
              strcmp(str(p, lb->num_unit), "count") == 0);
        lb = label(p, s, "state");
        CHECK(lb && strcmp(str(p, lb->str), "S") == 0 && lb->num_unit == 0);
        CHECK_EQ_INT(s->n_location_id, 3);
    }
    s = sample_with(p, "thread", "no-regs");
    l = s && s->n_location_id == 1 ? loc_by_id(p, s->location_id[0]) : NULL;
    CHECK(l && l->mapping_id == 0 && l->address == PC_NOREGS);
    CHECK_STR(line_fn(p, l, 0), "[no registers]");
}

static void
test_example(const char *dir)
{
    struct pmp_symsource src;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp = NULL;
    struct pmp_error err;
    struct fake f;
    Perftools__Profiles__Profile *p;
    char path[4096], path2[4096];
    const char *out = getenv("PMPROF_PPROF_OUT");
    FILE *a, *b;
    int ca, cb, same, rc;
    size_t i;

    memset(&err, 0, sizeof(err));
    fake_init(&f, &src);
    example_opts(&o);
    rc = pmp_pprof_begin(&pp, &src, &o, &err);
    CHECK_MSG(rc == 0 && pp, "begin: %s", err.msg);
    if (rc)
        return;
    build_example(pp);
    CHECK_EQ_INT(f.lookups, 0);   /* nothing symbolized while adding */
    snprintf(path, sizeof(path), "%s/example.pb.gz", dir);
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    p = read_profile(path);
    if (p) {
        check_example(p, &f);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    /* A second write symbolizes again (once per pc) and gives the same
       bytes: gzip's header carries no time. */
    memset(f.seen, 0, sizeof(f.seen));
    f.nseen = 0;
    snprintf(path2, sizeof(path2), "%s/example2.pb.gz", dir);
    rc = pmp_pprof_write(pp, path2, &err);
    CHECK_MSG(rc == 0, "write again: %s", err.msg);
    a = fopen(path, "rb");
    b = fopen(path2, "rb");
    same = a && b;
    while (same) {
        ca = getc(a);
        cb = getc(b);
        same = ca == cb;
        if (ca == EOF || cb == EOF)
            break;
    }
    CHECK_MSG(same, "%s and %s differ", path, path2);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    for (i = 0; i < f.nseen; i++)
        CHECK(f.seen[i].calls == 1);
    if (out && out[0]) {
        rc = pmp_pprof_write(pp, out, &err);
        CHECK_MSG(rc == 0, "write %s: %s", out, err.msg);
    }
    pmp_pprof_free(pp);
    unlink(path);
    unlink(path2);
}

/* ---- mappings without a main module, and an empty profile --------- */

static void
test_mappings(const char *dir)
{
    const uint64_t stack[] = {A_POLL + 4, A_MAIN + 0x10, A_NOSYM_MAIN};
    const int64_t one = 1;
    struct pmp_symsource src;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp = NULL;
    struct pmp_error err;
    struct fake f;
    Perftools__Profiles__Profile *p;
    char path[4096];
    int rc;

    memset(&err, 0, sizeof(err));
    memset(&o, 0, sizeof(o));
    o.sample_types = types;
    o.nsample_types = 1;
    snprintf(path, sizeof(path), "%s/map.pb.gz", dir);

    /* Empty: the main module's mapping is still there, and first. */
    fake_init(&f, &src);
    rc = pmp_pprof_begin(&pp, &src, &o, &err);
    CHECK_MSG(rc == 0, "begin: %s", err.msg);
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    pmp_pprof_free(pp);
    p = read_profile(path);
    if (p) {
        check_valid(p);
        CHECK_EQ_INT(p->n_sample, 0);
        CHECK_EQ_INT(p->n_location, 0);
        CHECK_EQ_INT(p->n_mapping, 1);
        CHECK(p->n_mapping && strcmp(str(p, p->mapping[0]->filename),
                                     MAIN_PATH) == 0);
        CHECK(p->period_type == NULL);
        CHECK_EQ_INT(p->default_sample_type, 0);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }

    /* No main module: mappings in order of first use (libc, then the
       executable), and the unknown pc in main is mapped, without lines. */
    fake_init(&f, &src);
    f.mods[MOD_MAIN].is_main = 0;
    rc = pmp_pprof_begin(&pp, &src, &o, &err);
    CHECK_MSG(rc == 0, "begin: %s", err.msg);
    rc = pmp_pprof_add(pp, stack, NULL, 3, &one, NULL, 0, &err);
    CHECK_MSG(rc == 0, "add: %s", err.msg);
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    pmp_pprof_free(pp);
    p = read_profile(path);
    if (p) {
        const Perftools__Profiles__Location *l;

        check_valid(p);
        CHECK_EQ_INT(p->n_mapping, 2);
        if (p->n_mapping == 2) {
            CHECK_STR(str(p, p->mapping[0]->filename), LIBC_PATH);
            CHECK_STR(str(p, p->mapping[1]->filename), MAIN_PATH);
        }
        l = loc_at(p, A_NOSYM_MAIN - 1);
        CHECK(l && l->mapping_id == 2 && l->n_line == 0);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }

    /* A symsource whose module list shrank (index out of range): the
       location is kept without a mapping. */
    fake_init(&f, &src);
    rc = pmp_pprof_begin(&pp, &src, &o, &err);
    CHECK_MSG(rc == 0, "begin: %s", err.msg);
    rc = pmp_pprof_add(pp, stack, NULL, 3, &one, NULL, 0, &err);
    CHECK_MSG(rc == 0, "add: %s", err.msg);
    f.nmods = 1;   /* libc only; lookups still say MOD_MAIN */
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    pmp_pprof_free(pp);
    p = read_profile(path);
    if (p) {
        check_valid(p);
        CHECK_EQ_INT(p->n_mapping, 1);
        CHECK(loc_at(p, A_MAIN + 0xf) &&
              loc_at(p, A_MAIN + 0xf)->mapping_id == 0);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    unlink(path);
}

/* ---- merging many samples; values; odd pcs ------------------------ */

static void
test_merge(const char *dir)
{
    struct pmp_symsource src;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp = NULL;
    struct pmp_error err;
    struct fake f;
    Perftools__Profiles__Profile *p;
    uint64_t pcs[3];
    int64_t v;
    char path[4096];
    size_t i, round;
    int rc;

    memset(&err, 0, sizeof(err));
    memset(&o, 0, sizeof(o));
    o.sample_types = types;
    o.nsample_types = 1;
    snprintf(path, sizeof(path), "%s/merge.pb.gz", dir);
    fake_init(&f, &src);
    rc = pmp_pprof_begin(&pp, &src, &o, &err);
    CHECK_MSG(rc == 0, "begin: %s", err.msg);
    if (rc)
        return;
    /* 10000 distinct stacks from 200 distinct pcs, added twice */
    for (round = 0; round < 2; round++)
        for (i = 0; i < 10000; i++) {
            pcs[0] = A_NOSYM_MAIN + i % 100;
            pcs[1] = A_NOSYM_MAIN + 0x1000 + i / 100;
            pcs[2] = A_MAIN + 0x42;
            v = (int64_t)i;
            rc = pmp_pprof_add(pp, pcs, NULL, 3, &v, NULL, 0, &err);
            if (rc)
                break;
        }
    CHECK_MSG(rc == 0, "add: %s", err.msg);
    /* an empty stack is a valid sample (go tool pprof hides it) */
    v = 7;
    CHECK(pmp_pprof_add(pp, NULL, NULL, 0, &v, NULL, 0, &err) == 0);
    /* values saturate instead of wrapping */
    pcs[0] = UINT64_MAX;   /* the hash table's reserved key, as a pc */
    v = INT64_MAX;
    CHECK(pmp_pprof_add(pp, pcs, NULL, 1, &v, NULL, 0, &err) == 0);
    CHECK(pmp_pprof_add(pp, pcs, NULL, 1, &v, NULL, 0, &err) == 0);
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    pmp_pprof_free(pp);
    p = read_profile(path);
    if (p) {
        check_valid(p);
        CHECK_EQ_INT(p->n_sample, 10002);
        CHECK_EQ_INT(p->n_location, 100 + 100 + 1 + 1);
        for (i = 0; i < p->n_sample && i < 10000; i++)
            if (p->sample[i]->value[0] != 2 * (int64_t)i)
                break;
        CHECK_EQ_INT(i, 10000);
        if (p->n_sample == 10002) {
            CHECK_EQ_INT(p->sample[10000]->n_location_id, 0);
            CHECK_EQ_INT(p->sample[10000]->value[0], 7);
            CHECK_EQ_INT(p->sample[10001]->value[0], INT64_MAX);
            CHECK(loc_by_id(p, p->sample[10001]->location_id[0]) &&
                  loc_by_id(p, p->sample[10001]->location_id[0])->address ==
                      UINT64_MAX);
        }
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    unlink(path);
}

/* ---- errors -------------------------------------------------------- */

static void
test_begin_errors(void)
{
    const struct pmp_value_type nine[9] = {
        {"a", "count"}, {"b", "count"}, {"c", "count"}, {"d", "count"},
        {"e", "count"}, {"f", "count"}, {"g", "count"}, {"h", "count"},
        {"i", "count"},
    };
    const struct pmp_value_type unnamed[] = {{NULL, "count"}};
    const char *const bad_comments[] = {"ok", NULL};
    struct pmp_symsource src, broken;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp;
    struct pmp_error err;
    struct fake f;

    fake_init(&f, &src);
    memset(&o, 0, sizeof(o));
    o.sample_types = nine;

#define BEGIN_FAILS(what)                                                  \
    do {                                                                   \
        memset(&err, 0, sizeof(err));                                      \
        pp = (struct pmp_pprof *)&err;   /* must be reset to NULL */       \
        CHECK_EQ_INT(pmp_pprof_begin(&pp, &src, &o, &err), PMP_E_USAGE);   \
        CHECK_MSG(pp == NULL && err.code == PMP_E_USAGE && err.msg[0],     \
                  "%s", what);                                             \
    } while (0)

    o.nsample_types = 0;
    BEGIN_FAILS("no sample types");
    CHECK_MSG(strstr(err.msg, "1 to 8") != NULL, "%s", err.msg);
    o.nsample_types = 9;
    BEGIN_FAILS("nine sample types");
    o.nsample_types = 8;
    CHECK(pmp_pprof_begin(&pp, &src, &o, &err) == 0 && pp);
    pmp_pprof_free(pp);
    o.sample_types = NULL;
    BEGIN_FAILS("NULL sample types");
    o.sample_types = unnamed;
    o.nsample_types = 1;
    BEGIN_FAILS("a sample type without a name");
    o.sample_types = nine;
    o.default_sample_type = "zzz";
    BEGIN_FAILS("default sample type not among the types");
    o.default_sample_type = "a";
    CHECK(pmp_pprof_begin(&pp, &src, &o, &err) == 0 && pp);
    pmp_pprof_free(pp);
    o.comments = bad_comments;
    o.ncomments = 2;
    BEGIN_FAILS("a NULL comment");
    o.ncomments = 0;
    broken = src;
    broken.lookup = NULL;
    memset(&err, 0, sizeof(err));
    CHECK_EQ_INT(pmp_pprof_begin(&pp, &broken, &o, &err), PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_begin(&pp, NULL, &o, &err), PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_begin(&pp, &src, NULL, &err), PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_begin(&pp, &src, NULL, NULL), PMP_E_USAGE);
    pmp_pprof_free(NULL);
#undef BEGIN_FAILS
}

static void
test_add_errors(void)
{
    struct pmp_label labels[65];
    struct pmp_symsource src;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp = NULL;
    struct pmp_error err;
    struct fake f;
    uint64_t *pcs;
    int64_t one = 1;
    size_t i;

    fake_init(&f, &src);
    memset(&o, 0, sizeof(o));
    o.sample_types = types;
    o.nsample_types = 1;
    memset(&err, 0, sizeof(err));
    if (pmp_pprof_begin(&pp, &src, &o, &err) != 0) {
        CHECK_MSG(0, "begin: %s", err.msg);
        return;
    }
    pcs = calloc(4097, sizeof(*pcs));
    CHECK(pcs != NULL);
    if (!pcs) {
        pmp_pprof_free(pp);
        return;
    }
    for (i = 0; i < 4097; i++)
        pcs[i] = A_NOSYM_MAIN + i;
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 4097, &one, NULL, 0, &err),
                 PMP_E_USAGE);
    CHECK_MSG(strstr(err.msg, "4097") != NULL, "%s", err.msg);
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 4096, &one, NULL, 0, &err), 0);
    CHECK_EQ_INT(pmp_pprof_add(pp, NULL, NULL, 1, &one, NULL, 0, &err),
                 PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 1, NULL, NULL, 0, &err),
                 PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_add(NULL, pcs, NULL, 1, &one, NULL, 0, &err),
                 PMP_E_USAGE);
    for (i = 0; i < 65; i++) {
        labels[i].key = "k";
        labels[i].str = "v";
        labels[i].num = 0;
        labels[i].unit = NULL;
    }
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 1, &one, labels, 65, &err),
                 PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 1, &one, labels, 64, &err), 0);
    labels[3].key = NULL;
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 1, &one, labels, 4, &err),
                 PMP_E_USAGE);
    labels[3].key = "";
    CHECK_EQ_INT(pmp_pprof_add(pp, pcs, NULL, 1, &one, labels, 4, &err),
                 PMP_E_USAGE);
    CHECK_EQ_INT(f.lookups, 0);
    free(pcs);
    pmp_pprof_free(pp);
}

static void
test_write_errors(const char *dir)
{
    const uint64_t stack[] = {A_COPY, A_MAIN + 0x42, A_NOSYM_MAIN};
    const int64_t one = 1;
    struct pmp_symsource src;
    struct pmp_pprof_opts o;
    struct pmp_pprof *pp = NULL;
    struct pmp_error err;
    struct fake f;
    struct stat st;
    char path[4096], tmp[4200];
    int rc;

    fake_init(&f, &src);
    memset(&o, 0, sizeof(o));
    o.sample_types = types;
    o.nsample_types = 1;
    memset(&err, 0, sizeof(err));
    if (pmp_pprof_begin(&pp, &src, &o, &err) != 0 ||
        pmp_pprof_add(pp, stack, NULL, 3, &one, NULL, 0, &err) != 0) {
        CHECK_MSG(0, "setup: %s", err.msg);
        pmp_pprof_free(pp);
        return;
    }
    /* No such directory. */
    snprintf(path, sizeof(path), "%s/no/such/dir/x.pb.gz", dir);
    memset(&err, 0, sizeof(err));
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_EQ_INT(rc, PMP_E_SYS);
    CHECK_MSG(strstr(err.msg, "No such file") != NULL, "%s", err.msg);
    /* The target is a directory: the rename fails and the temporary
       file is removed. */
    snprintf(path, sizeof(path), "%s/adir", dir);
    CHECK(mkdir(path, 0700) == 0);
    memset(&err, 0, sizeof(err));
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_EQ_INT(rc, PMP_E_SYS);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.0", path, (long)getpid());
    CHECK_MSG(stat(tmp, &st) != 0 && errno == ENOENT, "%s left behind", tmp);
    rmdir(path);
    /* A failing lookup fails the write with its error; nothing written. */
    snprintf(path, sizeof(path), "%s/fail.pb.gz", dir);
    f.fail_pc = A_MAIN + 0x42;
    memset(&err, 0, sizeof(err));
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_EQ_INT(rc, PMP_E_NOMEM);
    CHECK_STR(err.msg, "fake: cannot symbolize");
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    /* Bad arguments. */
    CHECK_EQ_INT(pmp_pprof_write(pp, NULL, &err), PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_write(pp, "", &err), PMP_E_USAGE);
    CHECK_EQ_INT(pmp_pprof_write(NULL, path, NULL), PMP_E_USAGE);
    /* The builder is still usable after a failed write. */
    f.fail_pc = 0;
    rc = pmp_pprof_write(pp, path, &err);
    CHECK_MSG(rc == 0, "write: %s", err.msg);
    CHECK(stat(path, &st) == 0 && st.st_size > 20);
    unlink(path);
    pmp_pprof_free(pp);
}

int
main(void)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/pmprof-test-pprof.XXXXXX",
             tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        perror("test-pprof: mkdtemp");
        return 1;
    }
    test_example(dir);
    test_mappings(dir);
    test_merge(dir);
    test_begin_errors();
    test_add_errors();
    test_write_errors(dir);
    CHECK_MSG(rmdir(dir) == 0, "%s not empty: %s", dir, strerror(errno));
    return unit_summary();
}

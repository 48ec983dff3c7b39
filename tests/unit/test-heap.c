/*
 * test-heap.c: the glibc heap walker (ext/inspect/heap.c) over crafted memory (a
 * buffer target holding a main_arena, an mp_ and a 64 KiB sbrk heap laid
 * out as glibc 2.36 x86_64 lays them out): the clean heap adds up, then
 * each damage the notes list is reported with its address and never
 * hangs: a fastbin loop, a bad size, a zero-size chunk inside the heap, a
 * bin whose bk does not point back, an arena ring that leaves memory.
 * Both walks: the one-pass summary and `check` (every list link).
 * Exit status 0 / 1; last line "N passed, M failed".
 */
#include <stdlib.h>
#include <string.h>

#include "pmprof-internal.h"
#include "unit.h"

#define BASE UINT64_C(0x560000000000)
#define SIZE (0x200000)
#define ARENA (BASE + 0x10000)
#define MP (BASE + 0x20000)
#define HEAP (BASE + 0x100000)
#define HSIZE 0x10000

static unsigned char *mem;

static void
put64(uint64_t a, uint64_t v)
{
    memcpy(mem + (a - BASE), &v, 8);
}

static uint64_t
binhead(int i)
{
    return ARENA + 112 + 16 * (uint64_t)(i - 1) - 16;
}

/* c0 in use 0x30 | c1 fastbin 0x40 | c2 unsorted 0x100 | c3 in use 0x50
   (PREV_INUSE clear: c2 is free) | top */
static void
build(void)
{
    int i;
    uint64_t c0 = HEAP, c1 = HEAP + 0x30, c2 = HEAP + 0x70, c3 = HEAP + 0x170;
    uint64_t top = HEAP + 0x1c0;

    memset(mem, 0, SIZE);
    for (i = 1; i < 127; i++) {           /* empty bins point to themselves */
        put64(binhead(i) + 16, binhead(i));
        put64(binhead(i) + 24, binhead(i));
    }
    put64(ARENA + 96, top);               /* top */
    put64(ARENA + 2160, ARENA);           /* next: a ring of one */
    put64(ARENA + 2176, 1);               /* attached_threads */
    put64(ARENA + 2184, HSIZE);           /* system_mem */
    put64(ARENA + 2192, HSIZE);
    put64(MP + 96, HEAP);                 /* sbrk_base */
    put64(MP + 120, 7);                   /* tcache_count */
    put64(c0 + 8, 0x30 | 1);
    put64(c1 + 8, 0x40 | 1);
    put64(c1 + 16, (c1 + 16) >> 12);      /* safe-linked NULL */
    put64(ARENA + 16 + 8 * 2, c1);        /* fastbinsY[2] (size 0x40) */
    put64(c2 + 8, 0x100 | 1);
    put64(c2 + 16, binhead(1));           /* unsorted: fd, bk */
    put64(c2 + 24, binhead(1));
    put64(binhead(1) + 16, c2);
    put64(binhead(1) + 24, c2);
    put64(c3, 0x100);                     /* prev_size of a free chunk */
    put64(c3 + 8, 0x50);                  /* PREV_INUSE clear */
    put64(top + 8, (HSIZE - 0x1c0) | 1);
}

/* tcache variant: the thread's tcache struct (a 0x290 chunk) first, one
   0x30 chunk cached in its bin 1, then top; fs_base - 72 holds the
   tcache pointer, as ld.so lays out libc's TLS here. */
#define FSBASE (BASE + 0x30000)
#define TPOFF (-72)

static void
build_tc(void)
{
    uint64_t tc = HEAP + 16, e1 = HEAP + 0x290;

    build();
    memset(mem + (HEAP - BASE), 0, 0x400);
    put64(ARENA + 16 + 8 * 2, 0);                  /* no fastbins */
    put64(binhead(1) + 16, binhead(1));            /* no unsorted */
    put64(binhead(1) + 24, binhead(1));
    put64(HEAP + 8, 0x290 | 1);
    mem[(tc - BASE) + 2] = 1;                      /* counts[1] = 1 */
    put64(tc + 128 + 8, e1 + 16);                  /* entries[1] */
    put64(e1 + 8, 0x30 | 1);
    put64(e1 + 16, (e1 + 16) >> 12);               /* next: NULL */
    put64(HEAP + 0x2c0 + 8, (HSIZE - 0x2c0) | 1);  /* top */
    put64(ARENA + 96, HEAP + 0x2c0);
    put64(FSBASE + (uint64_t)(int64_t)TPOFF, tc);
    put64(FSBASE, FSBASE);                         /* the TCB's self */
}

static struct pmp_heap *
walk_tc(struct pmp_target *t)
{
    struct pmp_heap_opts o = {1, 0, 0};
    struct pmp_target_thread th;
    struct pmp_heap *h = NULL;
    struct pmp_error err = {0};
    int rc;

    memset(&th, 0, sizeof(th));
    th.tid = 4242;
    th.regs_ok = 1;
    th.regs.fs_base = FSBASE;
    rc = pmp_heap_walk_target(t, ARENA, MP, TPOFF, &th, 1, &o, &h, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return h;
}

static struct pmp_heap *
walk(struct pmp_target *t, int lists)
{
    struct pmp_heap_opts o = {1, 0, lists};
    struct pmp_heap *h = NULL;
    struct pmp_error err = {0};
    int rc = pmp_heap_walk_target(t, ARENA, MP, 0, NULL, 0, &o, &h, &err);

    CHECK_MSG(rc == 0, "%s", err.msg);
    return h;
}

static int
has_error(const struct pmp_heap *h, uint64_t addr, const char *text)
{
    size_t i;

    for (i = 0; h && i < h->nerrors; i++)
        if (h->errors[i].addr == addr && strstr(h->errors[i].msg, text))
            return 1;
    if (h)
        for (i = 0; i < h->nerrors; i++)
            fprintf(stderr, "  (error 0x%llx %s)\n",
                    (unsigned long long)h->errors[i].addr, h->errors[i].msg);
    return 0;
}

int
main(void)
{
    struct pmp_buf_segment seg;
    struct pmp_target *t = NULL;
    struct pmp_heap *h;
    int lists;

    mem = calloc(1, SIZE);
    if (!mem)
        return 1;
    seg.addr = BASE;
    seg.data = mem;
    seg.len = SIZE;
    CHECK(pmp_target_buf_new(&t, &seg, 1, NULL, 0, NULL) == 0);
    if (!t)
        return unit_summary();

    for (lists = 0; lists < 2; lists++) {
        const struct pmp_heap_arena *a;

        build();
        h = walk(t, lists);
        if (!h)
            continue;
        CHECK_EQ_INT((int)h->narenas, 1);
        CHECK_EQ_INT((int)h->nerrors, 0);
        a = &h->arenas[0];
        CHECK_EQ_U64(a->fast_count, 1);
        CHECK_EQ_U64(a->fast_bytes, 0x40);
        CHECK_EQ_U64(a->bin_count, 1);
        CHECK_EQ_U64(a->bin_bytes, 0x100);
        CHECK_EQ_U64(a->app_chunks, 2);
        CHECK_EQ_U64(a->app_bytes, 0x80);
        CHECK_EQ_U64(a->top_size, HSIZE - 0x1c0);
        CHECK_EQ_U64(a->app_bytes + a->tcache_bytes + a->fast_bytes +
                         a->bin_bytes + a->top_size + a->overhead_bytes,
                     a->system_mem);
        CHECK(a->walk_complete);
        pmp_heap_free(h);

        /* fastbin loop: c1 points to itself */
        build();
        put64(HEAP + 0x30 + 16, ((HEAP + 0x30 + 16) >> 12) ^ (HEAP + 0x30));
        h = walk(t, lists);
        CHECK_MSG(has_error(h, HEAP + 0x30, "loop"), "lists %d", lists);
        pmp_heap_free(h);

        /* bad size in the middle of the heap */
        build();
        put64(HEAP + 0x170 + 8, 0x4141414141414141ull);
        h = walk(t, lists);
        CHECK_MSG(has_error(h, HEAP + 0x170, "bad chunk size"), "lists %d",
                  lists);
        CHECK(h && !h->arenas[0].walk_complete);
        pmp_heap_free(h);

        /* a zero-size chunk inside the heap (gdb-heap hangs on it) */
        build();
        put64(HEAP + 0x170 + 8, 0);
        h = walk(t, lists);
        CHECK_MSG(has_error(h, HEAP + 0x170, "zero-size chunk"), "lists %d",
                  lists);
        pmp_heap_free(h);

        /* the unsorted chunk's bk does not point back */
        build();
        put64(HEAP + 0x70 + 24, HEAP + 0x30);
        h = walk(t, lists);
        CHECK_MSG(has_error(h, HEAP + 0x70, "is not the previous chunk"),
                  "lists %d", lists);
        pmp_heap_free(h);

        /* the arena ring leaves memory: one arena, then an error */
        build();
        put64(ARENA + 2160, UINT64_C(0x7fff00000000));
        h = walk(t, lists);
        CHECK(h && h->narenas == 1);
        CHECK(has_error(h, UINT64_C(0x7fff00000000), "arena unreadable"));
        pmp_heap_free(h);
    }

    /* tcaches: a clean one, then a loop, a wrong count, a misaligned entry */
    build_tc();
    h = walk_tc(t);
    if (h) {
        const struct pmp_heap_arena *a = &h->arenas[0];
        CHECK_EQ_INT((int)h->nerrors, 0);
        CHECK_EQ_INT((int)h->ntcaches, 1);
        CHECK_EQ_U64(h->tcaches[0].addr, HEAP + 16);
        CHECK_EQ_U64(h->tcaches[0].chunks, 1);
        CHECK_EQ_INT(h->tcaches[0].arena, 0);
        CHECK_EQ_U64(a->tcache_chunks, 1);
        CHECK_EQ_U64(a->tcache_bytes, 0x30);
        CHECK_EQ_U64(a->overhead_bytes, 0x290);
        CHECK_EQ_U64(a->app_chunks, 0);
        CHECK_EQ_U64(a->app_bytes + a->tcache_bytes + a->fast_bytes +
                         a->bin_bytes + a->top_size + a->overhead_bytes,
                     a->system_mem);
    }
    pmp_heap_free(h);
    build_tc();
    put64(HEAP + 0x290 + 16, ((HEAP + 0x290 + 16) >> 12) ^ (HEAP + 0x290 + 16));
    h = walk_tc(t);
    CHECK(has_error(h, HEAP + 0x290 + 16, "a loop?"));
    pmp_heap_free(h);
    build_tc();
    mem[(HEAP + 16 - BASE) + 2] = 3;
    h = walk_tc(t);
    CHECK(has_error(h, HEAP + 16 + 2, "counts says 3, list has 1"));
    pmp_heap_free(h);
    build_tc();
    put64(HEAP + 16 + 128 + 8, HEAP + 0x290 + 24);
    h = walk_tc(t);
    CHECK(has_error(h, HEAP + 0x290 + 24, "misaligned entry"));
    pmp_heap_free(h);

    /* random damage anywhere in the heap: always ends, never crashes */
    {
        int i, k;
        srand(7);
        for (i = 0; i < 300; i++) {
            build();
            for (k = 0; k < 20; k++)
                mem[(HEAP - BASE) + (size_t)(rand() % 0x400)] =
                    (unsigned char)rand();
            h = walk(t, i & 1);
            pmp_heap_free(h);
        }
        CHECK(i == 300);
    }
    pmp_target_free(t);
    free(mem);
    return unit_summary();
}

/*
 * test-perf.c: tests of the perf-event ring reader (ext/record/record-perf.c).
 *
 *   test-perf
 *       1. A ring built by hand in the kernel's layout: samples read back
 *          with their registers (in DWARF numbering) and stack bytes, one
 *          record wrapping around the end of the ring, a LOST record
 *          counted, a record shorter than its fields refused, and a
 *          header whose size is impossible: the rest dropped, never read
 *          past the ring.
 *       2. Live: an event on a thread of this process that spins: its
 *          samples carry its tid, a stack copy and CLOCK_MONOTONIC times
 *          (skipped where perf_event_open is not allowed).
 *       3. A context-switch ring built by hand: in, out preempted, out
 *          blocked read back with tid and time, one wrapping the end of
 *          the ring, a switch record shorter than its sample_id refused,
 *          a LOST record counted.
 *       4. Live: the switch event of a thread that sleeps 1 ms at a time:
 *          switches out that are not preemptions, and switches in, in
 *          time order (skipped where the kernel has no such records).
 *
 * Exit status: 0 all passed, 1 some check failed.  The last line is
 * "N passed, M failed".
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pmprof-internal.h"
#include "record.h"
#include "unit.h"

#define PAGE 4096u
#define NREGS 17

struct seen {
    int n;
    int tid[8];
    uint64_t rip[8], rsp[8], r15[8], time[8];
    size_t stack_len[8];
    unsigned char stack0[8];
};

static int
collect(void *ctx, const struct pmp_perf_sample *s)
{
    struct seen *v = ctx;

    if (v->n < 8) {
        v->tid[v->n] = s->tid;
        v->rip[v->n] = s->regs.r[PMP_REG_RIP];
        v->rsp[v->n] = s->regs.r[PMP_REG_RSP];
        v->r15[v->n] = s->regs.r[PMP_REG_R15];
        v->time[v->n] = s->time;
        v->stack_len[v->n] = (size_t)s->stack_len;
        v->stack0[v->n] = s->stack_len ? s->stack[0] : 0;
    }
    v->n++;
    return 0;
}

/* Append bytes at ring offset *head (wrapping). */
static void
put(unsigned char *data, size_t size, uint64_t *head, const void *b,
    size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        data[(*head + i) & (size - 1)] = ((const unsigned char *)b)[i];
    *head += n;
}

/* One PERF_RECORD_SAMPLE in the layout record-perf.c asks for. */
static void
put_sample(unsigned char *data, size_t size, uint64_t *head, int tid,
           uint64_t rip, uint64_t rsp, size_t stack, unsigned char fill)
{
    struct perf_event_header h;
    uint32_t ids[2] = {100, (uint32_t)tid};
    uint64_t t = 12345 + (uint64_t)tid, abi = PERF_SAMPLE_REGS_ABI_64;
    uint64_t regs[NREGS], sz = stack, dyn = stack / 2;
    unsigned char st[256];
    size_t i;

    for (i = 0; i < NREGS; i++)
        regs[i] = 0x1000 + i;
    regs[7] = rsp;                 /* SP */
    regs[8] = rip;                 /* IP */
    memset(st, fill, sizeof(st));
    h.type = PERF_RECORD_SAMPLE;
    h.misc = PERF_RECORD_MISC_USER;
    h.size = (uint16_t)(sizeof(h) + 8 + 8 + 8 + sizeof(regs) + 8 + stack +
                        (stack ? 8 : 0));
    put(data, size, head, &h, sizeof(h));
    put(data, size, head, ids, 8);
    put(data, size, head, &t, 8);
    put(data, size, head, &abi, 8);
    put(data, size, head, regs, sizeof(regs));
    put(data, size, head, &sz, 8);
    if (stack) {
        put(data, size, head, st, stack);
        put(data, size, head, &dyn, 8);
    }
}

static void
test_fake_ring(void)
{
    size_t dsize = 2 * PAGE;
    unsigned char *mem = calloc(1, PAGE + dsize);
    struct perf_event_mmap_page *mp = (void *)mem;
    struct pmp_perf p;
    struct seen v;
    uint64_t head = 0;
    int i;

    memset(&p, 0, sizeof(p));
    p.fd = -1;
    p.base = mem;
    p.data = mem + PAGE;
    p.data_size = dsize;

    /* Two samples, read back. */
    put_sample(p.data, dsize, &head, 7, 0x401000, 0x7ffd0000, 64, 0xab);
    put_sample(p.data, dsize, &head, 8, 0x402000, 0x7ffd1000, 0, 0);
    mp->data_head = head;
    memset(&v, 0, sizeof(v));
    CHECK_EQ_INT(pmp_perf_drain(&p, collect, &v), 0);
    CHECK_EQ_INT(v.n, 2);
    CHECK_EQ_INT(v.tid[0], 7);
    CHECK_EQ_U64(v.rip[0], 0x401000);
    CHECK_EQ_U64(v.rsp[0], 0x7ffd0000);
    CHECK_EQ_U64(v.r15[0], 0x1000 + 16);   /* R15: the 17th register */
    CHECK_EQ_INT((int)v.stack_len[0], 32);  /* dyn_size (64 / 2) */
    CHECK_EQ_INT(v.stack0[0], 0xab);
    CHECK_EQ_U64(v.time[0], 12345 + 7);
    CHECK_EQ_INT((int)v.stack_len[1], 0);
    CHECK_EQ_U64(mp->data_tail, head);

    /* Until one record wraps around the end of the ring. */
    for (i = 0; i < 40; i++) {
        uint64_t before = head;
        put_sample(p.data, dsize, &head, 9, 0x403000 + (uint64_t)i,
                   0x7ffd2000, 200, (unsigned char)i);
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        CHECK_EQ_INT(pmp_perf_drain(&p, collect, &v), 0);
        CHECK_EQ_INT(v.n, 1);
        CHECK_EQ_U64(v.rip[0], 0x403000 + (uint64_t)i);
        CHECK_EQ_INT(v.stack0[0], i);
        if ((before & (dsize - 1)) > (head & (dsize - 1)))
            break;   /* this one wrapped */
    }
    CHECK_MSG(i < 40, "no record wrapped");

    /* A LOST record is counted, not passed on. */
    {
        struct perf_event_header h = {PERF_RECORD_LOST, 0, 8 + 16};
        uint64_t id = 1, lost = 5;
        put(p.data, dsize, &head, &h, sizeof(h));
        put(p.data, dsize, &head, &id, 8);
        put(p.data, dsize, &head, &lost, 8);
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain(&p, collect, &v);
        CHECK_EQ_INT(v.n, 0);
        CHECK_EQ_U64(p.lost, 5);
    }

    /* A sample record too short for its own fields: refused. */
    {
        struct perf_event_header h = {PERF_RECORD_SAMPLE, 0, 8 + 16};
        uint64_t z[2] = {0, 0};
        uint64_t bad = p.bad;
        put(p.data, dsize, &head, &h, sizeof(h));
        put(p.data, dsize, &head, z, sizeof(z));
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain(&p, collect, &v);
        CHECK_EQ_INT(v.n, 0);
        CHECK_EQ_U64(p.bad, bad + 1);
        CHECK_EQ_U64(mp->data_tail, head);
    }

    /* A header larger than what is in the ring: the rest is dropped. */
    {
        struct perf_event_header h = {PERF_RECORD_SAMPLE, 0, 60000};
        put(p.data, dsize, &head, &h, sizeof(h));
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain(&p, collect, &v);
        CHECK_EQ_INT(v.n, 0);
        CHECK_EQ_U64(mp->data_tail, head);
        /* and the reader goes on with what comes next */
        put_sample(p.data, dsize, &head, 11, 0x404000, 0x7ffd3000, 8, 1);
        mp->data_head = head;
        pmp_perf_drain(&p, collect, &v);
        CHECK_EQ_INT(v.n, 1);
        CHECK_EQ_INT(v.tid[0], 11);
    }
    free(p.bounce);
    free(mem);
}

static volatile int spin_stop;
static volatile int spin_tid;

static void *
spinner(void *arg)
{
    volatile unsigned long x = 0;

    spin_tid = (int)syscall(SYS_gettid);
    while (!spin_stop)
        x++;
    return NULL;
}

static void
test_live(void)
{
    pthread_t t;
    struct pmp_perf p;
    struct seen v;
    struct timespec ts = {0, 200000000}, now;
    int e, i, kernel = 1;

    if (pthread_create(&t, NULL, spinner, NULL)) {
        CHECK_MSG(0, "pthread_create");
        return;
    }
    while (!spin_tid)
        ;
    e = pmp_perf_open(&p, spin_tid, 1000000, 4096, &kernel);   /* 1 ms of CPU */
    if (e) {
        printf("live part skipped: perf_event_open: %s\n", strerror(-e));
        spin_stop = 1;
        pthread_join(t, NULL);
        return;
    }
    nanosleep(&ts, NULL);
    memset(&v, 0, sizeof(v));
    CHECK_EQ_INT(pmp_perf_drain(&p, collect, &v), 0);
    spin_stop = 1;
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK_MSG(v.n >= 5, "%d samples in 200 ms of spinning", v.n);
    for (i = 0; i < v.n && i < 8; i++) {
        CHECK_EQ_INT(v.tid[i], spin_tid);
        CHECK(v.stack_len[i] > 0 && v.stack_len[i] <= 4096);
        CHECK(v.time[i] > 0 &&
              v.time[i] <= (uint64_t)now.tv_sec * 1000000000ull +
                               (uint64_t)now.tv_nsec);
    }
    pmp_perf_close(&p);
}

struct sw_seen {
    int n;
    int tid[16], out[16], preempt[16];
    uint64_t time[16];
};

static int
collect_sw(void *ctx, const struct pmp_perf_switch *s)
{
    struct sw_seen *v = ctx;

    if (v->n < 16) {
        v->tid[v->n] = s->tid;
        v->out[v->n] = s->out;
        v->preempt[v->n] = s->preempt;
        v->time[v->n] = s->time;
    }
    v->n++;
    return 0;
}

/* One PERF_RECORD_SWITCH with its sample_id (pid, tid, time). */
static void
put_switch(unsigned char *data, size_t size, uint64_t *head, int tid,
           uint16_t misc, uint64_t t)
{
    struct perf_event_header h = {PERF_RECORD_SWITCH, misc, 8 + 16};
    uint32_t ids[2] = {100, (uint32_t)tid};

    put(data, size, head, &h, sizeof(h));
    put(data, size, head, ids, 8);
    put(data, size, head, &t, 8);
}

static void
test_fake_switch_ring(void)
{
    size_t dsize = PAGE;
    unsigned char *mem = calloc(1, PAGE + dsize);
    struct perf_event_mmap_page *mp = (void *)mem;
    struct pmp_perf p, *sw = calloc(1, sizeof(*sw));
    struct sw_seen v;
    uint64_t head = 0;
    int i;

    memset(&p, 0, sizeof(p));
    p.fd = -1;
    sw->fd = -1;
    sw->base = mem;
    sw->data = mem + PAGE;
    sw->data_size = dsize;
    p.sw = sw;

    put_switch(sw->data, dsize, &head, 7, 0, 10);
    put_switch(sw->data, dsize, &head, 7,
               PERF_RECORD_MISC_SWITCH_OUT | PERF_RECORD_MISC_SWITCH_OUT_PREEMPT,
               20);
    put_switch(sw->data, dsize, &head, 7, PERF_RECORD_MISC_SWITCH_OUT, 30);
    mp->data_head = head;
    memset(&v, 0, sizeof(v));
    CHECK_EQ_INT(pmp_perf_drain_switches(&p, collect_sw, &v), 0);
    CHECK_EQ_INT(v.n, 3);
    CHECK(v.tid[0] == 7 && v.tid[2] == 7);
    CHECK(v.out[0] == 0 && v.preempt[0] == 0 && v.time[0] == 10);
    CHECK(v.out[1] == 1 && v.preempt[1] == 1 && v.time[1] == 20);
    CHECK(v.out[2] == 1 && v.preempt[2] == 0 && v.time[2] == 30);
    CHECK_EQ_U64(mp->data_tail, head);
    CHECK_EQ_U64(sw->records, 3);

    /* The sample reader takes none of them for samples. */
    {
        struct seen sv;
        put_switch(sw->data, dsize, &head, 7, 0, 40);
        mp->data_head = head;
        memset(&sv, 0, sizeof(sv));
        CHECK_EQ_INT(pmp_perf_drain(sw, collect, &sv), 0);
        CHECK_EQ_INT(sv.n, 0);
        CHECK_EQ_U64(mp->data_tail, head);
    }

    /* Until one wraps around the end of the ring (24 bytes do not
       divide a page). */
    for (i = 0; i < 400; i++) {
        uint64_t before = head;
        put_switch(sw->data, dsize, &head, 8, PERF_RECORD_MISC_SWITCH_OUT,
                   1000 + (uint64_t)i);
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain_switches(&p, collect_sw, &v);
        CHECK_EQ_INT(v.n, 1);
        CHECK_EQ_U64(v.time[0], 1000 + (uint64_t)i);
        if ((before & (dsize - 1)) + 24 > dsize)
            break;   /* this one wrapped */
    }
    CHECK_MSG(i < 400, "no switch record wrapped");

    /* Shorter than its sample_id: refused, the reader goes on. */
    {
        struct perf_event_header h = {PERF_RECORD_SWITCH, 0, 8 + 8};
        uint64_t z = 0, bad = sw->bad;
        put(sw->data, dsize, &head, &h, sizeof(h));
        put(sw->data, dsize, &head, &z, 8);
        put_switch(sw->data, dsize, &head, 9, 0, 50);
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain_switches(&p, collect_sw, &v);
        CHECK_EQ_U64(sw->bad, bad + 1);
        CHECK_EQ_INT(v.n, 1);
        CHECK_EQ_INT(v.tid[0], 9);
    }

    /* A LOST record: counted in the switch ring's own count. */
    {
        struct perf_event_header h = {PERF_RECORD_LOST, 0, 8 + 16};
        uint64_t id = 1, lost = 3;
        put(sw->data, dsize, &head, &h, sizeof(h));
        put(sw->data, dsize, &head, &id, 8);
        put(sw->data, dsize, &head, &lost, 8);
        mp->data_head = head;
        memset(&v, 0, sizeof(v));
        pmp_perf_drain_switches(&p, collect_sw, &v);
        CHECK_EQ_INT(v.n, 0);
        CHECK_EQ_U64(sw->lost, 3);
        CHECK_EQ_U64(p.lost, 0);
    }
    free(sw->bounce);
    free(sw);
    free(mem);
}

static volatile int nap_stop;
static volatile int nap_tid;

static void *
napper(void *arg)
{
    struct timespec ts = {0, 1000000};

    nap_tid = (int)syscall(SYS_gettid);
    while (!nap_stop)
        nanosleep(&ts, NULL);
    return NULL;
}

static void
test_live_switches(void)
{
    pthread_t t;
    struct pmp_perf p;
    struct sw_seen v;
    struct timespec ts = {0, 50000000};
    int e, i, outs = 0, ins = 0, kernel = 1;

    if (pthread_create(&t, NULL, napper, NULL)) {
        CHECK_MSG(0, "pthread_create");
        return;
    }
    while (!nap_tid)
        ;
    e = pmp_perf_open(&p, nap_tid, 1000000, 4096, &kernel);
    if (e == 0)
        e = pmp_perf_open_switches(&p, nap_tid, 0);
    if (e) {
        printf("live switch part skipped: %s\n", strerror(-e));
        nap_stop = 1;
        pthread_join(t, NULL);
        if (p.fd >= 0)
            pmp_perf_close(&p);
        return;
    }
    nanosleep(&ts, NULL);
    memset(&v, 0, sizeof(v));
    CHECK_EQ_INT(pmp_perf_drain_switches(&p, collect_sw, &v), 0);
    nap_stop = 1;
    pthread_join(t, NULL);
    CHECK_MSG(v.n >= 10, "%d switches in 50 ms of 1 ms sleeps", v.n);
    for (i = 0; i < v.n && i < 16; i++) {
        CHECK_EQ_INT(v.tid[i], nap_tid);
        if (i)
            CHECK(v.time[i] >= v.time[i - 1]);
        if (v.out[i] && !v.preempt[i])
            outs++;
        if (!v.out[i])
            ins++;
    }
    CHECK_MSG(outs >= 3 && ins >= 3, "%d blocking outs, %d ins", outs, ins);
    pmp_perf_close(&p);
}

int
main(void)
{
    test_fake_ring();
    test_live();
    test_fake_switch_ring();
    test_live_switches();
    return unit_summary();
}

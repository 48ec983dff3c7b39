/*
 * record-perf.c: CPU samples from the kernel for "pmprof record".
 *
 * Owns: one perf event per thread (software cpu-clock, user and kernel
 * mode where allowed, a sample every period of the thread's own CPU
 * time) with the user registers and a copy of the top of the user stack
 * in each sample, its mmap ring buffer, and the parsing of that buffer.  No thread is
 * stopped: the kernel takes the sample in its timer interrupt, on the
 * CPU the thread runs on.  Unwinding happens later (record.c) from the
 * copied bytes.
 *
 * Beside it, where the kernel has them, a second event per thread (a
 * dummy software event with context_switch and task) whose ring holds
 * only the thread's context switches (in, out, out while still
 * runnable) and the threads it starts (FORK records).  Its own
 * ring, so that records the kernel drops there are never taken for lost
 * CPU samples, and the reverse.
 *
 * The ring is written by the kernel and read here: every record's size
 * is checked against the ring and the record's layout before it is used.
 *
 * Must not: stop or signal a thread; unwind.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "pmprof-internal.h"
#include "record.h"

/* PERF_REG_X86_* numbering (arch/x86/include/uapi/asm/perf_regs.h). */
enum { PR_AX, PR_BX, PR_CX, PR_DX, PR_SI, PR_DI, PR_BP, PR_SP, PR_IP,
       PR_FLAGS, PR_R8 = 16, PR_R15 = 23 };
#define PERF_REGS_MASK (0x1ffull | (0xffull << PR_R8))
#define PERF_NREGS 17   /* bits set in PERF_REGS_MASK */
#define RING_PAGES_MAX 32u
#define RING_PAGES_MIN 4u
/* Switch records are 24 bytes: 8 pages hold 1365, a tick's switches
   of a thread switching 136 000 times a second at 99 Hz. */
#define SWITCH_PAGES_MAX 8u
#define SWITCH_PAGES_MIN 1u

static long
perf_open(struct perf_event_attr *a, int tid)
{
    return syscall(SYS_perf_event_open, a, tid, -1, -1,
                   PERF_FLAG_FD_CLOEXEC);
}

/* Map p->fd's ring, the largest of max_pages down to min_pages (powers
   of two) the mlock limit allows; on failure p->fd is closed. */
static int
map_ring(struct pmp_perf *p, size_t max_pages, size_t min_pages)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), pages;
    int e;

    for (pages = max_pages; pages >= min_pages && pages; pages /= 2) {
        void *m = mmap(NULL, (pages + 1) * pg, PROT_READ | PROT_WRITE,
                       MAP_SHARED, p->fd, 0);
        if (m != MAP_FAILED) {
            p->base = m;
            p->map_len = (pages + 1) * pg;
            p->data = (unsigned char *)m + pg;
            p->data_size = pages * pg;
            return 0;
        }
    }
    e = errno;
    close(p->fd);
    p->fd = -1;
    return -e;
}

/* What both events ask: a software event (user space only unless the
   caller says otherwise), times on CLOCK_MONOTONIC, no wakeups (nobody
   polls the ring: only when it is nearly full). */
static void
base_attr(struct perf_event_attr *a, uint64_t config)
{
    memset(a, 0, sizeof(*a));
    a->size = sizeof(*a);
    a->type = PERF_TYPE_SOFTWARE;
    a->config = config;
    a->exclude_kernel = 1;
    a->exclude_hv = 1;
    a->use_clockid = 1;
    a->clockid = CLOCK_MONOTONIC;
    a->watermark = 1;
}

int
pmp_perf_open(struct pmp_perf *p, int tid, uint64_t period_ns,
              uint32_t stack_bytes, int *kernel)
{
    struct perf_event_attr a;
    long fd;

    memset(p, 0, sizeof(*p));
    p->fd = -1;
    base_attr(&a, PERF_COUNT_SW_CPU_CLOCK);
    a.sample_period = period_ns ? period_ns : 1;
    a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                    PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
    a.sample_regs_user = PERF_REGS_MASK;
    a.sample_stack_user = stack_bytes & ~7u;
    /* The timer's ticks in the kernel too (a thread's system calls):
       with exclude_kernel the kernel drops every tick that lands there
       and starts a whole period again, so a thread that spends its CPU
       in short system calls (a pipe ping-pong: ~90 % in the kernel) got
       a tenth of its samples.  Such a sample still has the user
       registers (from the system call's entry) and the user stack.  An
       unprivileged user may be refused this (perf_event_paranoid 2):
       then user time only, as *kernel says. */
    a.exclude_kernel = !*kernel;
    fd = perf_open(&a, tid);
    if (fd < 0 && *kernel && (errno == EACCES || errno == EPERM)) {
        *kernel = 0;
        a.exclude_kernel = 1;
        fd = perf_open(&a, tid);
    }
    if (fd < 0)
        return -errno;
    p->fd = (int)fd;
    /* A ring for a few ticks' samples; smaller if the mlock limit of an
       unprivileged user says no. */
    return map_ring(p, RING_PAGES_MAX, RING_PAGES_MIN);
}

/* The kernel's release >= major.minor (uname)?  Here the machine's own
   kernel is what decides what its perf records say. */
static int
kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;

    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return 0;
    return ma > major || (ma == major && mi >= minor);
}

/* pages: the ring's size (a power of two), 0 for the default. */
int
pmp_perf_open_switches(struct pmp_perf *p, int tid, unsigned pages)
{
    struct perf_event_attr a;
    struct pmp_perf *sw;
    long fd;
    int e;

    /* Before 4.17 a switch out does not say whether the thread was
       preempted (still runnable) or blocked: not enough to decide. */
    if (!kernel_at_least(4, 17))
        return -ENOSYS;
    sw = calloc(1, sizeof(*sw));
    if (!sw)
        return -ENOMEM;
    sw->fd = -1;
    base_attr(&a, PERF_COUNT_SW_DUMMY);
    a.sample_period = 1;
    a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
    a.sample_id_all = 1;   /* every record ends in its pid, tid, time */
    a.context_switch = 1;
    /* And a record when the thread starts another (or a process):
       the sampler then lists the threads when one was born, not at
       every tick. */
    a.task = 1;
    fd = perf_open(&a, tid);
    if (fd < 0) {
        e = -errno;
        free(sw);
        return e;
    }
    sw->fd = (int)fd;
    e = pages ? map_ring(sw, pages, pages)
              : map_ring(sw, SWITCH_PAGES_MAX, SWITCH_PAGES_MIN);
    if (e) {
        free(sw);
        return e;
    }
    p->sw = sw;
    return 0;
}

void
pmp_perf_close(struct pmp_perf *p)
{
    if (p->sw) {
        pmp_perf_close(p->sw);
        free(p->sw);
    }
    if (p->base)
        munmap(p->base, p->map_len);
    if (p->fd >= 0)
        close(p->fd);
    free(p->bounce);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}

/* Copy len bytes at ring offset off (wrapping) into p->bounce. */
static const unsigned char *
ring_bytes(struct pmp_perf *p, uint64_t off, size_t len)
{
    size_t o = (size_t)(off & (p->data_size - 1));

    if (o + len <= p->data_size)
        return p->data + o;
    if (len > p->bounce_cap) {
        unsigned char *nb = realloc(p->bounce, len);
        if (!nb)
            return NULL;
        p->bounce = nb;
        p->bounce_cap = len;
    }
    memcpy(p->bounce, p->data + o, p->data_size - o);
    memcpy(p->bounce + (p->data_size - o), p->data,
           len - (p->data_size - o));
    return p->bounce;
}

/* Parse one PERF_RECORD_SAMPLE body of n bytes. */
static int
parse_sample(const unsigned char *b, size_t n, struct pmp_perf_sample *s)
{
    uint64_t abi, size, regs[PERF_NREGS];
    size_t o = 0;
    uint32_t ids[2];

    memset(s, 0, sizeof(*s));
    if (n < 8 + 8 + 8)
        return -1;
    memcpy(ids, b, 8);
    s->pid = (int)ids[0];
    s->tid = (int)ids[1];
    memcpy(&s->time, b + 8, 8);
    memcpy(&abi, b + 16, 8);
    o = 24;
    if (abi != PERF_SAMPLE_REGS_ABI_64)
        return -1;   /* none (a kernel thread) or a 32-bit task */
    if (n - o < sizeof(regs) + 8)
        return -1;
    memcpy(regs, b + o, sizeof(regs));
    o += sizeof(regs);
    memcpy(&size, b + o, 8);
    o += 8;
    if (size > n - o)
        return -1;
    s->stack = b + o;
    s->stack_len = size;
    if (size) {
        uint64_t dyn;
        if (n - o - size < 8)
            return -1;
        memcpy(&dyn, b + o + size, 8);
        if (dyn < s->stack_len)
            s->stack_len = dyn;
    }
    /* regs[] is in mask bit order: AX BX CX DX SI DI BP SP IP R8..R15.
       To DWARF numbering. */
    memset(&s->regs, 0, sizeof(s->regs));
    s->regs.r[PMP_REG_RAX] = regs[0];
    s->regs.r[PMP_REG_RBX] = regs[1];
    s->regs.r[PMP_REG_RCX] = regs[2];
    s->regs.r[PMP_REG_RDX] = regs[3];
    s->regs.r[PMP_REG_RSI] = regs[4];
    s->regs.r[PMP_REG_RDI] = regs[5];
    s->regs.r[PMP_REG_RBP] = regs[6];
    s->regs.r[PMP_REG_RSP] = regs[7];
    s->regs.r[PMP_REG_RIP] = regs[8];
    {
        int i;
        for (i = 0; i < 8; i++)
            s->regs.r[PMP_REG_R8 + i] = regs[9 + i];
    }
    s->regs.orig_rax = (uint64_t)-1;
    return 0;
}

/* Parse one PERF_RECORD_SWITCH of n bytes after its header: nothing but
   the sample_id trailer (pid, tid, time: the sample_type of
   pmp_perf_open_switches). */
static int
parse_switch(const struct perf_event_header *h, const unsigned char *b,
             size_t n, struct pmp_perf_switch *s)
{
    uint32_t ids[2];

    memset(s, 0, sizeof(*s));
    if (n < 8 + 8)
        return -1;
    memcpy(ids, b, 8);
    s->pid = (int)ids[0];
    s->tid = (int)ids[1];
    memcpy(&s->time, b + 8, 8);
    s->out = (h->misc & PERF_RECORD_MISC_SWITCH_OUT) != 0;
    s->preempt = s->out && (h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT);
    return 0;
}

/* Every record from tail to head: samples to sfn, switches to wfn. */
static int
drain_ring(struct pmp_perf *p,
           int (*sfn)(void *ctx, const struct pmp_perf_sample *s),
           int (*wfn)(void *ctx, const struct pmp_perf_switch *s),
           void *ctx)
{
    struct perf_event_mmap_page *mp = p->base;
    uint64_t head, tail;
    int rc = 0;

    if (!mp)
        return 0;
    head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
    tail = mp->data_tail;
    if (head - tail > p->data_size)
        tail = head - p->data_size;   /* cannot happen; stay inside */
    while (tail < head && rc == 0) {
        struct perf_event_header h;
        const unsigned char *b = ring_bytes(p, tail, sizeof(h));

        if (!b)
            break;
        memcpy(&h, b, sizeof(h));
        if (h.size < sizeof(h) || h.size > head - tail) {
            p->bad++;
            tail = head;   /* not a record: drop the rest */
            break;
        }
        if (h.type == PERF_RECORD_SAMPLE && sfn) {
            struct pmp_perf_sample s;
            b = ring_bytes(p, tail, h.size);
            if (b && parse_sample(b + sizeof(h), h.size - sizeof(h), &s) == 0)
                rc = sfn(ctx, &s);
            else
                p->bad++;
        } else if (h.type == PERF_RECORD_SWITCH && wfn) {
            struct pmp_perf_switch s;
            b = ring_bytes(p, tail, h.size);
            p->records++;
            if (b && parse_switch(&h, b + sizeof(h), h.size - sizeof(h),
                                  &s) == 0)
                rc = wfn(ctx, &s);
            else
                p->bad++;
        } else if (h.type == PERF_RECORD_FORK || h.type == PERF_RECORD_EXIT) {
            p->tasks++;
        } else if (h.type == PERF_RECORD_LOST) {
            b = ring_bytes(p, tail, h.size);
            if (b && h.size >= sizeof(h) + 16) {
                uint64_t lost;
                memcpy(&lost, b + sizeof(h) + 8, 8);
                p->lost += lost;
            }
        }
        tail += h.size;
    }
    __atomic_store_n(&mp->data_tail, tail, __ATOMIC_RELEASE);
    return rc;
}

int
pmp_perf_drain(struct pmp_perf *p,
               int (*fn)(void *ctx, const struct pmp_perf_sample *s),
               void *ctx)
{
    return drain_ring(p, fn, NULL, ctx);
}

int
pmp_perf_drain_switches(struct pmp_perf *p,
                        int (*fn)(void *ctx,
                                  const struct pmp_perf_switch *s),
                        void *ctx)
{
    return p->sw ? drain_ring(p->sw, NULL, fn, ctx) : 0;
}

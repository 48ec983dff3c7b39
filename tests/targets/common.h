/* common.h: what every C/C++ test target shares.  Header-only, so each
 * program is one compile line.
 *
 * Owns: option parsing (--timeout N, --gencore), the alarm that stops a
 * target on its own, and the READY handshake.  A thread calls
 * tgt_arrive() immediately before its blocking call (naming the syscall
 * it is about to sleep in) or its spin loop; main calls tgt_wait_ready(n)
 * and prints READY only when n threads have arrived AND every blocking one
 * is asleep in the syscall it announced (checked in
 * /proc/self/task/TID/{stat,syscall}, bounded).  Then main itself blocks;
 * the harness waits for main to be asleep too (tests/helpers.py).
 *
 * Must not: sleep a fixed time to "let threads settle", or print READY on a
 * timeout (a target that cannot reach its state exits 3 and says why).
 */
#ifndef TGT_COMMON_H
#define TGT_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A frame that must stay visible under -O2: no inlining, no cloning
 * (.constprop/.isra suffixes), no identical-code folding, and no
 * attribute discovery (noreturn would let gcc drop the return path). */
#if defined(__GNUC__) && !defined(__clang__)
#define NOINLINE __attribute__((noipa))
#else
#define NOINLINE __attribute__((noinline))
#endif
/* After a call, keeps it from becoming a tail call (the caller's frame
 * must stay on the stack, also with -foptimize-sibling-calls). */
#define NO_TAIL() __asm__ __volatile__("" ::: "memory")

/* What an arriving thread is about to do. */
enum tgt_wait {
    TGT_SPIN = 0,   /* busy loop: never checked for sleep */
    TGT_FUTEX,      /* pthread_cond_wait / pthread_join / mutex */
    TGT_SLEEP,      /* nanosleep / clock_nanosleep */
    TGT_READ,       /* read(2) */
    TGT_SIGWAIT,    /* sigwait / sigtimedwait */
};

#define TGT_MAX_THREADS 2048

struct tgt_slot {
    pid_t tid;
    enum tgt_wait wait;
};

/* Test programs only: plain statics are fine here (one process, one
 * instance); this is not ext/ code. */
static struct tgt_slot tgt_slots[TGT_MAX_THREADS];
static int tgt_next;      /* slots handed out (atomic) */
static int tgt_arrived;   /* slots published (atomic) */
static const char *tgt_prog = "target";

struct tgt_opts {
    unsigned timeout; /* seconds until alarm(); default 120 */
    int gencore;      /* --gencore: abort() at the program's known point */
};

__attribute__((noreturn, format(printf, 1, 2))) static inline void
tgt_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", tgt_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(3);
}

static inline pid_t
tgt_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Removes --timeout N and --gencore from argv (the rest are positional
 * arguments of the program), sets alarm(N) (default_timeout when not
 * given), returns the options. */
static inline struct tgt_opts
tgt_init(int *argc, char **argv, unsigned default_timeout)
{
    struct tgt_opts o = {default_timeout, 0};
    int i, j = 1;
    const char *slash = strrchr(argv[0], '/');

    tgt_prog = slash ? slash + 1 : argv[0];
    for (i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--gencore") == 0) {
            o.gencore = 1;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < *argc) {
            o.timeout = (unsigned)atoi(argv[++i]);
        } else if (strncmp(argv[i], "--timeout=", 10) == 0) {
            o.timeout = (unsigned)atoi(argv[i] + 10);
        } else {
            argv[j++] = argv[i];
        }
    }
    argv[j] = NULL;
    *argc = j;
    if (o.timeout == 0)
        o.timeout = default_timeout;
    alarm(o.timeout);
    return o;
}

/* Called by a thread right before its blocking call or spin loop. */
static inline void
tgt_arrive(enum tgt_wait wait)
{
    int i = __atomic_fetch_add(&tgt_next, 1, __ATOMIC_RELAXED);

    if (i >= TGT_MAX_THREADS)
        tgt_die("more than %d threads", TGT_MAX_THREADS);
    tgt_slots[i].tid = tgt_gettid();
    tgt_slots[i].wait = wait;
    /* Published in order of arrival is not guaranteed, so count after
     * the slot is written: main reads only slots below tgt_next once
     * tgt_arrived caught up with it. */
    __atomic_fetch_add(&tgt_arrived, 1, __ATOMIC_RELEASE);
}

static inline void
tgt_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static inline int
tgt_read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

static inline int
tgt_syscall_matches(enum tgt_wait w, long nr)
{
    switch (w) {
    case TGT_FUTEX:
        return nr == SYS_futex
#ifdef SYS_futex_waitv
               || nr == SYS_futex_waitv
#endif
            ;
    case TGT_SLEEP:
        return nr == SYS_clock_nanosleep
#ifdef SYS_nanosleep
               || nr == SYS_nanosleep
#endif
            ;
    case TGT_READ:
        return nr == SYS_read;
    case TGT_SIGWAIT:
        return nr == SYS_rt_sigtimedwait;
    case TGT_SPIN:
        return 1;
    }
    return 0;
}

/* 1 if thread `s` is asleep in the syscall it announced.  Needs state S in
 * stat; when /proc/.../syscall is readable (it is for our own threads on
 * any kernel with CONFIG_HAVE_ARCH_TRACEHOOK) also the syscall number. */
static inline int
tgt_is_parked(const struct tgt_slot *s)
{
    char path[64], buf[512], *p;
    long nr;

    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)s->tid);
    if (tgt_read_small(path, buf, sizeof(buf)) <= 0)
        return 0;
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] != 'S')
        return 0;
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)s->tid);
    if (tgt_read_small(path, buf, sizeof(buf)) <= 0)
        return 1; /* not readable here: state S has to do */
    if (strncmp(buf, "running", 7) == 0)
        return 0;
    nr = strtol(buf, &p, 10);
    if (p == buf)
        return 1;
    return tgt_syscall_matches(s->wait, nr);
}

/* Blocks until `n` threads arrived (at most 10 s) and every blocking one
 * is parked in its syscall (at most 2 s more); exits 3 otherwise. */
static inline void
tgt_wait_ready(int n)
{
    int i, waited;

    for (waited = 0;
         __atomic_load_n(&tgt_arrived, __ATOMIC_ACQUIRE) < n; waited++) {
        if (waited >= 10000)
            tgt_die("only %d of %d threads arrived after 10 s",
                    __atomic_load_n(&tgt_arrived, __ATOMIC_ACQUIRE), n);
        tgt_sleep_ms(1);
    }
    for (i = 0, waited = 0; i < n;) {
        const struct tgt_slot *s = &tgt_slots[i];

        if (s->wait == TGT_SPIN || tgt_is_parked(s)) {
            i++;
            continue;
        }
        if (++waited > 2000)
            tgt_die("thread %d did not block in its syscall within 2 s",
                    (int)s->tid);
        tgt_sleep_ms(1);
    }
}

/* One line on stdout, unbuffered, so the harness sees it at once. */
static inline void
tgt_say(const char *line)
{
    size_t len = strlen(line);
    char buf[64];

    if (len + 2 > sizeof(buf))
        len = sizeof(buf) - 2;
    memcpy(buf, line, len);
    buf[len] = '\n';
    if (write(1, buf, len + 1) < 0)
        tgt_die("write stdout: %s", strerror(errno));
}

static inline pthread_t
tgt_spawn(void *(*fn)(void *), void *arg, size_t stack)
{
    pthread_t t;
    pthread_attr_t at;
    int err;

    pthread_attr_init(&at);
    if (stack)
        pthread_attr_setstacksize(&at, stack);
    err = pthread_create(&t, &at, fn, arg);
    pthread_attr_destroy(&at);
    if (err)
        tgt_die("pthread_create: %s", strerror(err));
    return t;
}

#ifdef __cplusplus
}
#endif
#endif

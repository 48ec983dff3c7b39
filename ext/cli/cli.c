/*
 * cli.c: bin/pmprof, the standalone command.
 *
 * The command line is the Python CLI (python/pmprof/frontends/cli.py, run with the
 * Python the core was built for): every command, its help, its errors.
 * This program starts it, with two things done first:
 *
 *  - SCHED_FIFO (priority 10) when permitted, PMPROF_NO_RT=1 to skip:
 *    next to spinning target threads a normal-priority tool gets a
 *    fraction of a CPU, so even its start-up takes seconds, all of it
 *    while the target may be stopped.  Its work is bounded.
 *
 *  - One fast path: `stacks` with text output, the 3 a.m. command, and
 *    `snapshot` (its pprof file) are run right here on the same C core
 *    (session, snapshot, pmp_render_stacks / pmp_snapshot_write_pprof)
 *    when their arguments are among the few this parser knows.  Python and
 *    the extension take ~25 ms to start, more than the whole snapshot of
 *    a small process (eu-stack takes ~6 ms).  Anything else (another
 *    command, -h, an option spelled another way, any error) goes to the
 *    Python CLI, which prints what it always prints; nothing is written
 *    before that decision.  tests/test_cli_fast.py checks that the two
 *    paths print the same text, write the same profiles and exit with
 *    the same status.
 *
 * PMPROF_NO_FAST=1 always runs the Python CLI.  Test hook:
 * PMPROF_TEST_NO_PYTHON=1 exits with status 99 where the Python CLI would
 * have been started.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pmprof.h"
#include "banned.h"

#ifndef PMPROF_PYTHON
#error "build with -DPMPROF_PYTHON=\"/path/to/gdb's/python\""
#endif

#define EXIT_OK 0
#define EXIT_PARTIAL 1

extern char **environ;

struct fast_args {
    int snapshot;               /* 0: stacks, 1: snapshot */
    long pid;
    const char *core, *exe, *solib, *debug_dir;
    int all, depth;             /* stacks */
    const char *output;         /* snapshot */
};

/* The repository root: bin/pmprof's parent directory. */
static int
root_dir(char *out, size_t size)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    char *slash;
    int i;

    if (n <= 0)
        return -1;
    buf[n] = '\0';
    for (i = 0; i < 2; i++) {
        slash = strrchr(buf, '/');
        if (!slash)
            return -1;
        *slash = '\0';
    }
    if (snprintf(out, size, "%s", buf[0] ? buf : "/") >= (int)size)
        return -1;
    return 0;
}

static void
run_python(char **argv)
{
    char root[PATH_MAX], pypath[2 * PATH_MAX + 16];
    const char *old = getenv("PYTHONPATH");
    char **args;
    int argc = 0, i;

    while (argv[argc])
        argc++;
    /* Test hook (tests/test_cli_fast.py): prove which path ran. */
    if (getenv("PMPROF_TEST_NO_PYTHON")) {
        fprintf(stderr, "pmprof: test hook: the Python CLI would run\n");
        exit(99);
    }
    if (root_dir(root, sizeof(root)) != 0) {
        fprintf(stderr, "pmprof: cannot find pmprof's directory from "
                        "/proc/self/exe\n");
        exit(2);
    }
    snprintf(pypath, sizeof(pypath), "%s/python%s%s", root,
             old && old[0] ? ":" : "", old && old[0] ? old : "");
    setenv("PYTHONPATH", pypath, 1);
#ifdef PMPROF_PRELOAD
    /* make asan: Python is not built with the sanitizers, the module is;
       the sanitizer runtime must be the first library Python loads. */
    setenv("LD_PRELOAD", PMPROF_PRELOAD, 1);
#endif
    args = calloc((size_t)argc + 5, sizeof(*args));
    if (!args)
        exit(2);
    args[0] = (char *)PMPROF_PYTHON;
    args[1] = (char *)"-S";     /* no site module: the stdlib and pmprof */
    args[2] = (char *)"-m";
    args[3] = (char *)"pmprof.frontends.cli";
    for (i = 1; i < argc; i++)
        args[3 + i] = argv[i];
    execv(PMPROF_PYTHON, args);
    fprintf(stderr, "pmprof: cannot run %s: %s\n", PMPROF_PYTHON,
            strerror(errno));
    exit(2);
}

/* A whole decimal number in 1..max, or -1. */
static long
number(const char *s, long max)
{
    char *end;
    long v;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -1;
    return v;
}

/*
 * `stacks` or `snapshot` with only the options below, each once, spelled
 * `--opt VALUE`, `--opt=VALUE`, `-p PID` or `-o FILE`, and a valid
 * combination: 0.  Anything else: -1 (the Python CLI decides, and
 * explains).
 */
static int
parse_fast(int argc, char **argv, struct fast_args *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    a->pid = -1;
    if (argc < 2)
        return -1;
    if (strcmp(argv[1], "snapshot") == 0)
        a->snapshot = 1;
    else if (strcmp(argv[1], "stacks") != 0)
        return -1;
    for (i = 2; i < argc; i++) {
        /* Options with a value: a string kept as given, or -p/--depth;
           each for one command (2: both). */
        struct {
            const char *name;
            const char **str;
            int cmd;
        } const valued[] = {
            {"--pid", NULL, 2}, {"--depth", NULL, 0}, {"--format", NULL, 0},
            {"--core", &a->core, 2}, {"--exe", &a->exe, 2},
            {"--solib-search", &a->solib, 2}, {"--debug-dir", &a->debug_dir, 2},
            {"--output", &a->output, 1},
        };
        const char *arg = argv[i], *val = NULL, *eq;
        char name[32];
        size_t k, len;

        if (strcmp(arg, "--all") == 0 && !a->snapshot) {
            if (a->all)
                return -1;
            a->all = 1;
            continue;
        }
        if (strcmp(arg, "-p") == 0)
            arg = "--pid";
        else if (strcmp(arg, "-o") == 0)
            arg = "--output";
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof(name))
            return -1;
        memcpy(name, arg, len);
        name[len] = '\0';
        if (eq)
            val = eq + 1;
        for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
            if (strcmp(name, valued[k].name) == 0)
                break;
        if (k == sizeof(valued) / sizeof(valued[0]) ||
            (valued[k].cmd != 2 && valued[k].cmd != a->snapshot))
            return -1;
        if (!val) {
            if (i + 1 >= argc)
                return -1;
            val = argv[++i];
        }
        /* A value that looks like an option is argparse's to judge. */
        if (!val[0] || val[0] == '-')
            return -1;
        if (valued[k].str) {
            if (*valued[k].str)
                return -1;
            *valued[k].str = val;
        } else if (strcmp(name, "--pid") == 0) {
            if (a->pid != -1 || (a->pid = number(val, INT_MAX)) < 0)
                return -1;
        } else if (strcmp(name, "--depth") == 0) {
            long d = number(val, INT_MAX);
            if (a->depth || d < 0)
                return -1;
            a->depth = (int)d;
        } else if (strcmp(val, "text") != 0) {  /* --format */
            return -1;
        }
    }
    if ((a->pid != -1) == (a->core != NULL) || (a->exe && !a->core))
        return -1;
    if (a->snapshot && !a->output)
        a->output = "pmprof-snapshot.pb.gz";
    if (a->core && access(a->core, F_OK) != 0)
        return -1;
    if (a->exe && access(a->exe, F_OK) != 0)
        return -1;
    return 0;
}

/* pmprof.debug_cache_dir(): $PMPROF_CACHE_DIR, else
   $XDG_CACHE_HOME/pmprof/debug or ~/.cache/pmprof/debug; none with
   PMPROF_NO_CACHE. */
static int
cache_dir(char *out, size_t size)
{
    const char *d = getenv("PMPROF_CACHE_DIR"), *base, *home;
    int n;

    if (getenv("PMPROF_NO_CACHE") && getenv("PMPROF_NO_CACHE")[0])
        return -1;
    if (d && d[0])
        n = snprintf(out, size, "%s", d);
    else if ((base = getenv("XDG_CACHE_HOME")) && base[0])
        n = snprintf(out, size, "%s/pmprof/debug", base);
    else {
        struct passwd *pw;
        home = getenv("HOME");
        if (!home || !home[0]) {
            pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home)
            return -1;
        n = snprintf(out, size, "%s/.cache/pmprof/debug", home);
    }
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int
mkdirs(const char *path)
{
    char buf[PATH_MAX];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* The first executable `name` on $PATH, in out. */
static int
which(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH"), *p;

    if (!path)
        path = "/usr/bin:/bin";
    for (p = path; *p;) {
        size_t len = strcspn(p, ":");
        if (len && snprintf(out, size, "%.*s/%s", (int)len, p, name) < (int)size &&
            access(out, X_OK) == 0)
            return 0;
        p += len;
        if (*p == ':')
            p++;
    }
    return -1;
}

/*
 * cli.py's fill_debug_cache(): decompress the debug files this run
 * inflated into the cache, in the background (eu-elfcompress into a
 * temporary file, then rename), at normal priority, niced, in its own
 * session.  Best effort: nothing is waited for or reported.
 */
static void
fill_debug_cache(struct pmp_session *s)
{
    const struct pmp_cache_todo *todo;
    size_t n = pmp_session_cache_todo(s, &todo), i;
    char tool[PATH_MAX];
    static const char script[] =
        "\"$0\" -q -t none -o \"$1\" \"$2\" && mv -f \"$1\" \"$3\" || rm -f \"$1\"";

    if (n == 0 || which("eu-elfcompress", tool, sizeof(tool)) != 0)
        return;
    for (i = 0; i < n; i++) {
        char dir[PATH_MAX], tmp[PATH_MAX + 32], *slash;
        struct stat st;
        pid_t pid;

        if (stat(todo[i].path, &st) != 0 || st.st_size > (512L << 20))
            continue;
        snprintf(dir, sizeof(dir), "%s", todo[i].dest);
        slash = strrchr(dir, '/');
        if (!slash)
            continue;
        *slash = '\0';
        if (mkdirs(dir) != 0)
            continue;
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", todo[i].dest, (int)getpid());
        pid = fork();
        if (pid == 0) {
            struct sched_param sp = {0};
            char *args[] = {(char *)"/bin/sh", (char *)"-c", (char *)script, tool,
                            tmp, (char *)todo[i].path, (char *)todo[i].dest,
                            NULL};
            int fd = open("/dev/null", O_RDWR);

            sched_setscheduler(0, SCHED_OTHER, &sp);
            if (nice(10) == -1 && errno)
                (void)0;
            setsid();
            if (fd >= 0) {
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execv("/bin/sh", args);
            _exit(127);
        }
    }
}

/* From here on a run's answer is final: its warnings, as cli.py words
   them. */
static void
print_warnings(struct pmp_session *s)
{
    size_t nw, i;
    const char *const *w = pmp_session_warnings(s, &nw);

    for (i = 0; i < nw; i++)
        fprintf(stderr, "pmprof: warning: %s\n", w[i]);
}

static int
run_fast(const struct fast_args *a)
{
    struct pmp_session_opts o = {0};
    struct pmp_session *s = NULL;
    struct pmp_snapshot_opts so = {0};
    struct pmp_snapshot *snap = NULL;
    struct pmp_render_opts ro = {0};
    struct pmp_error err = {0};
    char debug[2 * PATH_MAX], cache[PATH_MAX], desc[PATH_MAX + 16];
    const char *base = getenv("PMPROF_DEBUG_PATH");
    char *body = NULL;
    size_t ngroups;
    int status;

    if (!base || !base[0])
        base = "/usr/lib/debug";
    if (a->debug_dir)
        snprintf(debug, sizeof(debug), "%s:%s", a->debug_dir, base);
    else
        snprintf(debug, sizeof(debug), "%s", base);
    o.debug_path = debug;
    o.cache_dir = cache_dir(cache, sizeof(cache)) == 0 ? cache : NULL;
    o.exe = a->exe;
    o.solib_path = a->solib;
    if (a->core ? pmp_session_open_core(&s, a->core, &o, &err)
                : pmp_session_open_pid(&s, (int)a->pid, PMP_ATTACH_SEIZE, &o,
                                       &err))
        goto fail;
    if (pmp_session_snapshot(s, &so, &snap, &err) != 0)
        goto fail;
    if (a->core)
        snprintf(desc, sizeof(desc), "core '%s'", a->core);
    else
        snprintf(desc, sizeof(desc), "pid %ld", a->pid);
    if (a->snapshot) {
        /* commands/snapshot.py */
        char comment[PATH_MAX + 64];
        const char *comments[1] = {comment};

        snprintf(comment, sizeof(comment), "pmprof snapshot of %s", desc);
        if (pmp_snapshot_write_pprof(s, snap, a->output, comments, 1, &err) != 0)
            goto fail;
        print_warnings(s);
        printf("pmprof snapshot: wrote %zu threads to %s\n", snap->nthreads,
               a->output);
    } else {
        /* commands/stacks.py, text */
        ro.all = a->all;
        ro.depth = a->depth;
        if (pmp_render_stacks(s, snap, &ro, &body, &ngroups, &err) != 0)
            goto fail;
        print_warnings(s);
        printf("%s: %zu threads, %zu %s", desc, snap->nthreads, ngroups,
               a->all ? "threads" : "distinct stacks");
        if (!a->core)
            printf(" (target stopped %.2f ms)", snap->stopped_ns / 1e6);
        printf("\n%s", body);
    }
    status = snap->nthreads_failed || snap->nthreads_cut ? EXIT_PARTIAL
                                                         : EXIT_OK;
    if (fflush(stdout) != 0 && errno != EPIPE)
        status = 2;
    if (status == EXIT_PARTIAL)
        fprintf(stderr, "pmprof %s: partial result: some parts could not "
                        "be read (marked in the output)\n",
                a->snapshot ? "snapshot" : "stacks");
    if (o.cache_dir)
        fill_debug_cache(s);
    /* The process ends here: its memory goes with it (freeing libdw's
       trees costs more than the lookups did). */
    return status;
fail:
    /* Nothing was printed: the Python CLI runs the command again and
       words the error.  (The target was detached when the snapshot
       failed; freeing the session makes sure.) */
    pmp_snapshot_free(snap);
    pmp_session_free(s);
    return -1;
}

int
main(int argc, char **argv)
{
    struct fast_args a;
    const char *no_rt = getenv("PMPROF_NO_RT"), *no_fast = getenv("PMPROF_NO_FAST");

    if (!(no_rt && no_rt[0])) {
        struct sched_param sp = {.sched_priority = 10};
        sched_setscheduler(0, SCHED_FIFO, &sp);     /* when permitted */
    }
    if (!(no_fast && no_fast[0]) && parse_fast(argc, argv, &a) == 0) {
        int status;

        signal(SIGPIPE, SIG_IGN);
        status = run_fast(&a);
        if (status >= 0)
            return status;
    }
    run_python(argv);
    return 2;
}

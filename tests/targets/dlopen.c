/* dlopen: frames in a library loaded at run time.  libplugin.so (next to
 * this executable) is opened with dlopen(), never linked.
 *
 *   thread   chain, outermost first (after start_thread)
 *   host     host_main -> host_block -> pthread_cond_wait (in the exe)
 *   plugin   plugin_thread_main -> plugin_entry -> plugin_block ->
 *            pthread_cond_wait (plugin_* in libplugin.so)
 *   (main)   main -> main_wait -> pthread_join(host)
 *
 * Default: main loads the library and starts "plugin" before READY.
 * --late: READY is printed with only "host" (and main parked in
 *   main -> wait_for_sigusr2 -> sigwait); on SIGUSR2 main loads the library,
 *   starts "plugin", prints LOADED once it is parked, then main_wait.  For
 *   module refresh: snapshot, kill -USR2, wait for LOADED, snapshot again.
 * --gencore: main_abort -> abort() in main after READY (or LOADED).
 * --timeout N: alarm(N) instead of alarm(120).
 */
#include "common.h"

#include <dlfcn.h>
#include <limits.h>

static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t host_cv = PTHREAD_COND_INITIALIZER;

typedef void (*plugin_entry_fn)(void (*arrived)(void));

NOINLINE static void
host_block(void)
{
    pthread_mutex_lock(&host_mu);
    tgt_arrive(TGT_FUTEX);
    for (;;)
        pthread_cond_wait(&host_cv, &host_mu);
}

NOINLINE static void *
host_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "host");
    host_block();
    NO_TAIL();
    return NULL;
}

/* Handed to the plugin: it parks in pthread_cond_wait right after. */
static void
plugin_arrived(void)
{
    tgt_arrive(TGT_FUTEX);
}

NOINLINE static void *
plugin_thread_main(void *arg)
{
    plugin_entry_fn entry = (plugin_entry_fn)arg;

    pthread_setname_np(pthread_self(), "plugin");
    entry(plugin_arrived);
    NO_TAIL();
    return NULL;
}

/* dlopen()s libplugin.so from this executable's directory, starts the
 * "plugin" thread in it. */
NOINLINE static void
load_plugin(void)
{
    static const char lib[] = "libplugin.so";
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof(lib));
    char *slash;
    void *h;
    void *entry;

    if (n <= 0)
        tgt_die("readlink /proc/self/exe: %s", strerror(errno));
    path[n] = '\0';
    slash = strrchr(path, '/');
    memcpy(slash ? slash + 1 : path, lib, sizeof(lib));
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        tgt_die("dlopen: %s", dlerror());
    entry = dlsym(h, "plugin_entry");
    if (!entry)
        tgt_die("dlsym plugin_entry: %s", dlerror());
    tgt_spawn(plugin_thread_main, entry, 0);
}

NOINLINE static void
wait_for_sigusr2(void)
{
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    while (sig != SIGUSR2)
        if (sigwait(&set, &sig))
            tgt_die("sigwait: %s", strerror(errno));
    NO_TAIL();
}

NOINLINE static void
main_wait(pthread_t t)
{
    pthread_join(t, NULL);
    NO_TAIL();
}

NOINLINE static void
main_abort(void)
{
    abort();
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    int late = argc == 2 && strcmp(argv[1], "--late") == 0;
    sigset_t set;
    pthread_t host;

    if (argc != 1 && !late)
        tgt_die("usage: %s [--late] [--timeout N] [--gencore]", tgt_prog);
    /* SIGUSR2 blocked in every thread: only main's sigwait() takes it. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    host = tgt_spawn(host_main, NULL, 0);
    if (late) {
        tgt_wait_ready(1);
        tgt_say("READY");
        wait_for_sigusr2();
        load_plugin();
        tgt_wait_ready(2);
        tgt_say("LOADED");
    } else {
        load_plugin();
        tgt_wait_ready(2);
        tgt_say("READY");
    }
    if (o.gencore)
        main_abort();
    main_wait(host);
    NO_TAIL();
    return 0;
}

/* dlopen: main loads libplugin.so with dlopen() and a thread "plugin"
 * blocks in plugin_entry -> plugin_block.  With --late the library is
 * loaded only after SIGUSR2 (prints LOADED), to test module refresh. */
#include "common.h"
#include <dlfcn.h>

static int pfd[2];
static volatile sig_atomic_t go_load;
static void on_usr2(int s) { go_load = 1; (void)s; }

static void *plugin_thread(void *a)
{
    void (*entry)(int, void (*)(void)) = (void (*)(int, void (*)(void)))a;
    entry(pfd[0], arrived);
    return NULL;
}

static void load_and_start(const char *dir)
{
    char path[4096];
    void *h;
    pthread_t t;
    snprintf(path, sizeof(path), "%s/libplugin.so", dir);
    h = dlopen(path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        exit(1);
    }
    pthread_create(&t, NULL, plugin_thread, dlsym(h, "plugin_entry"));
    pthread_setname_np(t, "plugin");
}

int main(int argc, char **argv)
{
    char dir[4096];
    char *slash;
    start_alarm(argc, argv);
    if (pipe(pfd))
        return 1;
    snprintf(dir, sizeof(dir), "%s", argv[0]);
    slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    ready_expected = 1;
    if (has_arg(argc, argv, "--late")) {
        signal(SIGUSR2, on_usr2);
        printf("READY\n");
        fflush(stdout);
        while (!go_load)
            pause();
        load_and_start(dir);
        wait_ready(2);
        printf("LOADED\n");
        fflush(stdout);
    } else {
        load_and_start(dir);
        wait_ready(2);
    }
    for (;;)
        pause();
}

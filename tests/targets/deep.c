/* deep N spin|block: N threads recurse 24 levels through rec_a -> rec_b ->
 * rec_c (different frame sizes), then spin or block on a condvar.  For
 * benchmarks (about 30 frames per stack). */
#include "common.h"

static volatile unsigned long sink;
static int do_spin;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

NOINLINE static void work(void)
{
    arrived();
    if (do_spin)
        for (;;)
            sink++;
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&never, &mu);
}
NOINLINE static void rec_b(int d);
NOINLINE static void rec_c(int d);
NOINLINE static void rec_a(int d)
{
    volatile char pad[16];
    pad[0] = (char)d;
    if (d <= 0) work(); else rec_b(d - 1);
    NO_TAIL();
    sink += pad[0];
}
NOINLINE static void rec_b(int d)
{
    volatile char pad[48];
    pad[0] = (char)d;
    if (d <= 0) work(); else rec_c(d - 1);
    NO_TAIL();
    sink += pad[0];
}
NOINLINE static void rec_c(int d)
{
    volatile char pad[112];
    pad[0] = (char)d;
    if (d <= 0) work(); else rec_a(d - 1);
    NO_TAIL();
    sink += pad[0];
}
static void *worker(void *a) { rec_a(24); NO_TAIL(); return a; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 8, i;
    alarm(600);
    do_spin = argc > 2 && strcmp(argv[2], "spin") == 0;
    ready_expected = n;
    for (i = 0; i < n; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_create(&t, &at, worker, NULL);
    }
    wait_ready(do_spin ? 0 : n);
    for (;;)
        pause();
}

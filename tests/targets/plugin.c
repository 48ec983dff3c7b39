/* libplugin.so: loaded by the `dlopen` target with dlopen(), never linked.
 * Its thread parks at plugin_entry -> plugin_block -> pthread_cond_wait,
 * so a snapshot must resolve frames in a module that appeared at run time
 * (and, in --late mode, after a first snapshot). */
#include "common.h"

static pthread_mutex_t plugin_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t plugin_cv = PTHREAD_COND_INITIALIZER;

/* arrived: the host's READY bookkeeping, called right before parking. */
NOINLINE static void
plugin_block(void (*arrived)(void))
{
    pthread_mutex_lock(&plugin_mu);
    arrived();
    for (;;)
        pthread_cond_wait(&plugin_cv, &plugin_mu);
}

NOINLINE void
plugin_entry(void (*arrived)(void))
{
    plugin_block(arrived);
    NO_TAIL();
}

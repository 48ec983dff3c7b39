/* libplugin.so: plugin_entry -> plugin_block -> read (blocks). */
#include <unistd.h>
#define NOINLINE __attribute__((noinline))
#define NO_TAIL() __asm__ volatile("" ::: "memory")
NOINLINE static void plugin_block(int fd, void (*arrived)(void))
{
    char c;
    arrived();
    for (;;)
        if (read(fd, &c, 1) <= 0)
            pause();
}
NOINLINE void plugin_entry(int fd, void (*arrived)(void)) { plugin_block(fd, arrived); NO_TAIL(); }

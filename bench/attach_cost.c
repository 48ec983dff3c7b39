/* attach_cost.c: the ptrace calls of one thread sample, old design vs new
 * (bench/attach.py builds and runs it; prints figures, asserts nothing).
 *
 *   usage: attach_cost N
 *
 * A child sleeps in pause(); N samples of it each way, per sample:
 *   old: PTRACE_INTERRUPT, waitpid, PTRACE_CONT     (seized once before)
 *   new: PTRACE_SEIZE, PTRACE_INTERRUPT, waitid(WNOWAIT), PTRACE_DETACH
 * Prints the wall and CPU time (this process: the tracer's cost) per
 * sample.  The wall time includes the child's wake-up into the stop.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
us(clockid_t c)
{
    struct timespec t;

    clock_gettime(c, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000, i, st;
    double w0, c0;
    siginfo_t si;
    pid_t c = fork();

    if (c == 0)
        for (;;)
            pause();
    usleep(100000);
    if (ptrace(PTRACE_SEIZE, c, NULL, NULL) < 0) {
        perror("PTRACE_SEIZE");
        kill(c, SIGKILL);
        return 2;
    }
    w0 = us(CLOCK_MONOTONIC);
    c0 = us(CLOCK_PROCESS_CPUTIME_ID);
    for (i = 0; i < n; i++) {
        ptrace(PTRACE_INTERRUPT, c, NULL, NULL);
        waitpid(c, &st, __WALL);
        ptrace(PTRACE_CONT, c, NULL, NULL);
    }
    printf("old interrupt+waitpid+cont: %.2f us wall, %.2f us cpu per sample\n",
           (us(CLOCK_MONOTONIC) - w0) / n,
           (us(CLOCK_PROCESS_CPUTIME_ID) - c0) / n);
    ptrace(PTRACE_INTERRUPT, c, NULL, NULL);
    waitpid(c, &st, __WALL);
    ptrace(PTRACE_DETACH, c, NULL, NULL);
    w0 = us(CLOCK_MONOTONIC);
    c0 = us(CLOCK_PROCESS_CPUTIME_ID);
    for (i = 0; i < n; i++) {
        ptrace(PTRACE_SEIZE, c, NULL, (void *)(long)PTRACE_O_TRACEEXEC);
        ptrace(PTRACE_INTERRUPT, c, NULL, NULL);
        memset(&si, 0, sizeof(si));
        waitid(P_PID, (id_t)c, &si, WSTOPPED | WNOWAIT | __WALL);
        ptrace(PTRACE_DETACH, c, NULL, NULL);
    }
    printf("new seize+interrupt+waitid+detach: %.2f us wall, %.2f us cpu per sample\n",
           (us(CLOCK_MONOTONIC) - w0) / n,
           (us(CLOCK_PROCESS_CPUTIME_ID) - c0) / n);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    return 0;
}

/*
 * noperf: run a command where perf_event_open(2) is refused.
 *
 *   noperf ERRNO COMMAND [ARG...]
 *
 * Installs a seccomp filter (inherited by every child and kept across
 * execve) that makes perf_event_open fail with ERRNO (e.g. 13, EACCES:
 * what a kernel with perf_event_paranoid 3, or a container's seccomp
 * profile, says) and lets every other system call through; then execs
 * COMMAND.  The record tests run `bin/pmprof record` under it to see the
 * ptrace fallback chosen for real, not by --method.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    int err;

    if (argc < 3) {
        fprintf(stderr, "usage: noperf ERRNO COMMAND [ARG...]\n");
        return 2;
    }
    err = atoi(argv[1]);
    if (err <= 0 || err > 4095) {
        fprintf(stderr, "noperf: bad errno %s\n", argv[1]);
        return 2;
    }
    {
        struct sock_filter f[] = {
            /* another architecture's calls: let them through unchanged */
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                     offsetof(struct seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                     offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 0, 1),
            BPF_STMT(BPF_RET | BPF_K,
                     SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
            perror("noperf: seccomp");
            return 2;
        }
    }
    execvp(argv[2], argv + 2);
    perror("noperf: exec");
    return 127;
}

/* uring: a program with io_uring worker threads (iou-wrk-N: kernel
 * threads inside the process, with no user context), for the tests of
 * how pmprof shows them.
 *
 *   thread        what it does
 *   (main)        main -> uring_wait -> io_uring_wait_cqe (never completes)
 *   iou-wrk-N     the kernel's io-wq worker, blocked in the read of a pipe
 *                 nobody writes, submitted with IOSQE_ASYNC
 *   sleeper       sleeper_main -> nanosleep (an ordinary thread beside)
 *
 * READY once the worker exists (/proc/self/task/TID/comm "iou-wrk-...")
 * and the other threads are asleep.  Exit status 4 with a message when
 * io_uring is not available here (io_uring_disabled, seccomp, old
 * kernel): the tests skip with that reason.
 * --gencore: after READY, main aborts (the worker stays blocked).
 */
#include "common.h"

#include <dirent.h>
#include <liburing.h>

static int pipefd[2];
static char buf[64];

NOINLINE static void *
sleeper_main(void *arg)
{
    pthread_setname_np(pthread_self(), "sleeper");
    tgt_arrive(TGT_SLEEP);
    for (;;)
        tgt_sleep_ms(100000);
    return arg;
}

/* Is there an io-wq worker among our threads? */
static int
have_worker(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], comm[64];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        if (tgt_read_small(path, comm, sizeof(comm)) > 0 &&
            strncmp(comm, "iou-wrk-", 8) == 0)
            found = 1;
    }
    closedir(d);
    return found;
}

NOINLINE static void
uring_wait(struct io_uring *ring)
{
    struct io_uring_cqe *cqe;

    for (;;)
        io_uring_wait_cqe(ring, &cqe);
}

int
main(int argc, char **argv)
{
    struct tgt_opts o = tgt_init(&argc, argv, 120);
    struct io_uring ring;
    struct io_uring_sqe *sqe;
    pthread_t th;
    int rc, i;

    if (pipe(pipefd))
        tgt_die("pipe: %s", strerror(errno));
    rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        fprintf(stderr, "uring: io_uring unavailable: %s\n", strerror(-rc));
        return 4;
    }
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_read(sqe, pipefd[0], buf, sizeof(buf), 0);
    io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);   /* to an io-wq worker */
    if (io_uring_submit(&ring) != 1)
        tgt_die("io_uring_submit failed");
    for (i = 0; i < 5000 && !have_worker(); i++)
        tgt_sleep_ms(1);
    if (!have_worker()) {
        fprintf(stderr, "uring: io_uring made no worker thread\n");
        return 4;
    }
    if (pthread_create(&th, NULL, sleeper_main, NULL))
        tgt_die("pthread_create failed");
    tgt_wait_ready(1);
    printf("READY\n");
    fflush(stdout);
    if (o.gencore)
        abort();
    uring_wait(&ring);
    return 0;
}

/*
 * target-core.c: the ELF core-file target backend (x86_64 Linux; kernel
 * cores and gdb's gcore).
 *
 * Owns: validating the core, its notes (NT_PRSTATUS -> threads and
 * registers, NT_PRPSINFO -> command name and pid, NT_FILE -> mapped
 * files) and the raw reads of the dumped memory (ops->read; the page
 * cache and the exact-length pmp_target_read() live in target.c).
 *
 * Memory model of a read at addr, inside a PT_LOAD [p_vaddr, +p_memsz):
 *  - the first p_filesz bytes come from the core itself;
 *  - bytes the dumper left out (past p_filesz) come from the file NT_FILE
 *    names for that address (kernel and gcore both omit unmodified
 *    file-backed pages, e.g. all code), read with pread;
 *  - bytes past p_filesz that no NT_FILE entry covers are anonymous
 *    memory the dumper skipped: they read as zeros;
 *  - bytes inside p_filesz that the file does not hold (a core cut short
 *    by RLIMIT_CORE or a full disk) are lost: the read stops short there.
 *    Such a core still opens; only its headers and notes must be whole.
 * Outside every PT_LOAD, an address NT_FILE covers is read from the file
 * (gcore writes no segment at all for unmodified file mappings); any
 * other address is unmapped.  A read stops at the first unreadable byte.
 *
 * The file is hostile.  Every offset and size is checked against the file
 * size before use, every walk is capped, counts are clamped before any
 * allocation, and files named by NT_FILE are opened read-only, never
 * blocking, and only if they are regular files.
 *
 * Must not: interpret target memory; include Python or debugger headers.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "pmprof-internal.h"

#define MAX_SEGMENTS PMP_MAX_MAPPINGS   /* PT_LOADs kept */
#define MAX_FILES PMP_MAX_MAPPINGS      /* NT_FILE entries kept */
#define MAX_NOTES (8 * PMP_MAX_THREADS + 1024)   /* 3-5 notes a thread */
#define MAX_OPEN_FILES 16               /* cached fds of NT_FILE paths */
#define MAX_PAGE_SIZE (UINT64_C(1) << 30)

/*
 * x86_64 struct elf_prstatus (linux/include/linux/elfcore.h; glibc
 * <sys/procfs.h>): pr_info(12) pr_cursig(2)+pad, pr_sigpend(8) at 16,
 * pr_sighold at 24, pr_pid at 32, pr_ppid, pr_pgrp, pr_sid, then the
 * struct timeval pr_utime at 48, pr_stime at 64, pr_cutime, pr_cstime,
 * and pr_reg (struct user_regs_struct, 27 u64) at 112.
 */
#define PRSTATUS_PID 32
#define PRSTATUS_UTIME 48
#define PRSTATUS_STIME 64
#define PRSTATUS_REG 112
#define PRSTATUS_NREG 27
#define PRSTATUS_MIN (PRSTATUS_REG + PRSTATUS_NREG * 8)

/*
 * x86_64 struct elf_prpsinfo: pr_state, pr_sname, pr_zomb, pr_nice, pad,
 * pr_flag(8) at 8, pr_uid at 16, pr_gid at 20, pr_pid at 24, ...,
 * pr_fname[16] at 40, pr_psargs[80] at 56.
 */
#define PRPSINFO_PID 24
#define PRPSINFO_FNAME 40
#define PRPSINFO_MIN (PRPSINFO_FNAME + 16)

#if defined(__x86_64__) && defined(__linux__)
_Static_assert(offsetof(struct elf_prstatus, pr_pid) == PRSTATUS_PID, "");
_Static_assert(offsetof(struct elf_prstatus, pr_utime) == PRSTATUS_UTIME, "");
_Static_assert(offsetof(struct elf_prstatus, pr_stime) == PRSTATUS_STIME, "");
_Static_assert(offsetof(struct elf_prstatus, pr_reg) == PRSTATUS_REG, "");
_Static_assert(sizeof(elf_gregset_t) == PRSTATUS_NREG * 8, "");
_Static_assert(offsetof(struct elf_prpsinfo, pr_pid) == PRPSINFO_PID, "");
_Static_assert(offsetof(struct elf_prpsinfo, pr_fname) == PRPSINFO_FNAME, "");
#endif

/* user_regs_struct slot -> DWARF register number (-1: kept elsewhere). */
enum {
    UR_ORIG_RAX = 15, UR_EFLAGS = 18, UR_FS_BASE = 21,
};
static const signed char user_reg_to_dwarf[PRSTATUS_NREG] = {
    PMP_REG_R15, PMP_REG_R14, PMP_REG_R13, PMP_REG_R12, PMP_REG_RBP,
    PMP_REG_RBX, PMP_REG_R11, PMP_REG_R10, PMP_REG_R9,  PMP_REG_R8,
    PMP_REG_RAX, PMP_REG_RCX, PMP_REG_RDX, PMP_REG_RSI, PMP_REG_RDI,
    -1 /* orig_rax */, PMP_REG_RIP, -1 /* cs */, -1 /* eflags */,
    PMP_REG_RSP, -1 /* ss */, -1 /* fs_base */, -1 /* gs_base */,
    -1 /* ds */, -1 /* es */, -1 /* fs */, -1 /* gs */,
};

struct segment {
    uint64_t start, end;   /* [p_vaddr, p_vaddr + p_memsz) */
    uint64_t offset;       /* p_offset */
    uint64_t filesz;       /* p_filesz, clamped to p_memsz */
    uint64_t avail;        /* bytes of filesz the file really holds */
    unsigned prot;
};

struct fd_slot {
    const char *path;      /* interned NT_FILE path; NULL: empty slot */
    int fd;                /* -1: cannot be opened (remembered) */
    uint64_t used;         /* LRU clock */
};

struct core_target {
    struct pmp_target base;           /* first: the ops see this */
    int fd;
    const unsigned char *map;         /* the whole core, PROT_READ */
    size_t size;
    Elf *elf;                         /* over map (elf_memory) */
    struct segment *segs;             /* sorted, non-overlapping */
    size_t nsegs;
    size_t last_peek;                 /* segment of the last peek */
    struct pmp_target_thread *threads;   /* sorted by tid */
    size_t nthreads, threads_cap;
    struct pmp_core_file_map *files;  /* sorted by start */
    size_t nfiles;
    int have_files;                   /* an NT_FILE note was seen */
    struct pmp_strpool paths;         /* owns every path string */
    struct pmp_mapping *maps;         /* segments + NT_FILE-only ranges */
    size_t nmaps;
    struct fd_slot fds[MAX_OPEN_FILES];
    uint64_t clock;
    char comm[17];
    int have_psinfo;                  /* an NT_PRPSINFO was seen */
    int psinfo_pid;
    int first_tid;                    /* of the first NT_PRSTATUS */
    int truncated;                    /* some PT_LOAD is cut short */
};

static const struct pmp_target_ops core_ops;

static struct core_target *
to_core(struct pmp_target *t)
{
    return (struct core_target *)t;
}

/* The core behind t, or NULL if t is not a core target. */
static struct core_target *
as_core(struct pmp_target *t)
{
    return t && t->ops == &core_ops ? to_core(t) : NULL;
}

static uint64_t
get64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);   /* x86_64 cores are little-endian, as are we */
    return v;
}

static int32_t
get32(const unsigned char *p)
{
    int32_t v;

    memcpy(&v, p, 4);
    return v;
}

/* ---- reads ---------------------------------------------------------- */

/* The number of segments starting at or before addr. */
static size_t
segments_upto(const struct core_target *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nsegs, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (c->segs[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The NT_FILE entry holding addr (the last one starting at or before). */
static const struct pmp_core_file_map *
find_file(const struct core_target *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nfiles, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (c->files[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || addr >= c->files[lo - 1].end)
        return NULL;
    return &c->files[lo - 1];
}

/*
 * An fd for path (interned, so compared by pointer), from a small LRU
 * cache.  Returns -1 if it cannot be opened; that answer is cached too.
 * O_NONBLOCK and the S_ISREG check keep a hostile NT_FILE naming a FIFO
 * or a device from blocking or reading something endless; procfs and
 * sysfs are refused so that "/proc/self/mem" cannot make our own memory
 * look like the target's.
 */
static int
backing_fd(struct core_target *c, const char *path)
{
    struct fd_slot *victim = &c->fds[0];
    struct statfs fs;
    struct stat st;
    size_t i;
    int fd;

    c->clock++;
    for (i = 0; i < MAX_OPEN_FILES; i++) {
        if (c->fds[i].path == path) {
            c->fds[i].used = c->clock;
            return c->fds[i].fd;
        }
        if (c->fds[i].used < victim->used)
            victim = &c->fds[i];
    }
    if (victim->fd >= 0)
        close(victim->fd);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                    fstatfs(fd, &fs) != 0 || fs.f_type == PROC_SUPER_MAGIC ||
                    fs.f_type == SYSFS_MAGIC)) {
        close(fd);
        fd = -1;
    }
    victim->path = path;
    victim->fd = fd;
    victim->used = c->clock;
    return fd;
}

/*
 * Read want bytes at addr from the file f maps there (want is clipped to
 * f).  Returns the bytes read: 0 if the file cannot be opened or read.
 */
static size_t
read_file(struct core_target *c, const struct pmp_core_file_map *f,
          uint64_t addr, unsigned char *buf, size_t want)
{
    uint64_t off;
    size_t done = 0;
    ssize_t n;
    int fd;

    if (want > f->end - addr)
        want = (size_t)(f->end - addr);
    off = f->offset + (addr - f->start);
    if (off < f->offset || off > (uint64_t)INT64_MAX ||
        want > (uint64_t)INT64_MAX - off)
        return 0;
    fd = backing_fd(c, f->path);
    if (fd < 0)
        return 0;
    while (done < want) {
        n = pread(fd, buf + done, want - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* past the file's end: the mapping would SIGBUS */
        done += (size_t)n;
    }
    return done;
}

/*
 * Read up to len bytes at addr.  want, in each step, never crosses a
 * segment boundary, so the loop takes one step per segment or file
 * touched, plus one per short pread.
 */
static long
core_read(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
          struct pmp_error *err)
{
    struct core_target *c = to_core(t);
    const struct pmp_core_file_map *f;
    const struct segment *s;
    unsigned char *out = buf;
    size_t done = 0, want, i;
    uint64_t a, in_seg;

    (void)err;   /* nothing here fails: unreadable bytes end the read */
    if (len > LONG_MAX)
        len = LONG_MAX;
    if (len > UINT64_MAX - addr)   /* never wrap around */
        len = (size_t)(UINT64_MAX - addr);
    while (done < len) {
        a = addr + done;
        want = len - done;
        i = segments_upto(c, a);
        s = i > 0 && a < c->segs[i - 1].end ? &c->segs[i - 1] : NULL;
        if (!s) {
            /* In no segment: gcore leaves unmodified file-backed
               mappings out entirely, but NT_FILE still lists them. */
            if (i < c->nsegs)
                want = (size_t)PMP_MIN((uint64_t)want, c->segs[i].start - a);
            f = find_file(c, a);
            want = f ? read_file(c, f, a, out + done, want) : 0;
        } else {
            in_seg = a - s->start;
            want = (size_t)PMP_MIN((uint64_t)want, s->end - a);
            if (in_seg < s->avail) {
                want = (size_t)PMP_MIN((uint64_t)want, s->avail - in_seg);
                memcpy(out + done, c->map + s->offset + in_seg, want);
            } else if (in_seg < s->filesz) {
                want = 0;   /* dumped, but the core was cut short: lost */
            } else if ((f = find_file(c, a)) != NULL) {
                want = read_file(c, f, a, out + done, want);
            } else {
                memset(out + done, 0, want);   /* anonymous, not dumped */
            }
        }
        if (want == 0)
            break;
        done += want;
    }
    return (long)done;
}

/* ---- the other ops --------------------------------------------------- */

static int
core_stop(struct pmp_target *t, struct pmp_target_thread **threads,
          size_t *nthreads, struct pmp_error *err)
{
    struct core_target *c = to_core(t);

    (void)err;
    *threads = c->threads;
    *nthreads = c->nthreads;
    return 0;
}

static void
core_resume(struct pmp_target *t)
{
    (void)t;
}

static int
core_mappings(struct pmp_target *t, const struct pmp_mapping **maps,
              size_t *nmaps, struct pmp_error *err)
{
    struct core_target *c = to_core(t);

    (void)err;
    *maps = c->maps;
    *nmaps = c->nmaps;
    return 0;
}

static void
core_free(struct pmp_target *t)
{
    struct core_target *c = to_core(t);
    size_t i;

    if (!c)
        return;
    for (i = 0; i < MAX_OPEN_FILES; i++)
        if (c->fds[i].fd >= 0)
            close(c->fds[i].fd);
    if (c->elf)
        elf_end(c->elf);
    if (c->map)
        munmap((void *)c->map, c->size);
    if (c->fd >= 0)
        close(c->fd);
    pmp_strpool_release(&c->paths);
    free(c->segs);
    free(c->threads);
    free(c->files);
    free(c->maps);   /* paths belong to c->paths */
    free(c);
}

static const void *
core_peek(struct pmp_target *t, uint64_t addr, size_t len)
{
    struct core_target *c = to_core(t);
    const struct segment *s = c->last_peek < c->nsegs ? &c->segs[c->last_peek]
                                                      : NULL;
    uint64_t in_seg;
    size_t i;

    /* Walks read near their previous read: try the last segment first. */
    if (!s || addr < s->start || addr >= s->end) {
        i = segments_upto(c, addr);
        s = i > 0 && addr < c->segs[i - 1].end ? &c->segs[i - 1] : NULL;
        if (s)
            c->last_peek = i - 1;
    }

    if (!s)
        return NULL;
    in_seg = addr - s->start;
    if (in_seg >= s->avail || len > s->avail - in_seg)
        return NULL;
    return c->map + s->offset + in_seg;
}

static const struct pmp_target_ops core_ops = {
    .kind = "core",
    .read = core_read,
    .peek = core_peek,
    .stop = core_stop,
    .resume = core_resume,
    .mappings = core_mappings,
    .free = core_free,
};

/* ---- notes ----------------------------------------------------------- */

/* A struct timeval from the note, in ns; negative -> 0, saturating. */
static uint64_t
timeval_ns(const unsigned char *p)
{
    int64_t sec = (int64_t)get64(p), usec = (int64_t)get64(p + 8);
    uint64_t ns;

    if (sec < 0 || usec < 0)
        return 0;
    if ((uint64_t)sec > UINT64_MAX / 1000000000u)
        return UINT64_MAX;
    ns = (uint64_t)sec * 1000000000u;
    if ((uint64_t)usec > (UINT64_MAX - ns) / 1000u)
        return UINT64_MAX;
    return ns + (uint64_t)usec * 1000u;
}

static int
parse_prstatus(struct core_target *c, const unsigned char *d, size_t n)
{
    struct pmp_target_thread *th;
    const unsigned char *reg = d + PRSTATUS_REG;
    size_t i;
    int rc;

    if (n < PRSTATUS_MIN || c->nthreads >= PMP_MAX_THREADS)
        return 0;   /* malformed or over the cap: skipped */
    rc = pmp_grow((void **)&c->threads, &c->threads_cap, c->nthreads + 1,
                  sizeof(*c->threads));
    if (rc)
        return rc;
    th = &c->threads[c->nthreads++];
    memset(th, 0, sizeof(*th));
    th->tid = get32(d + PRSTATUS_PID);
    th->state = 'C';
    th->utime_ns = timeval_ns(d + PRSTATUS_UTIME);
    th->stime_ns = timeval_ns(d + PRSTATUS_STIME);
    for (i = 0; i < PRSTATUS_NREG; i++)
        if (user_reg_to_dwarf[i] >= 0)
            th->regs.r[user_reg_to_dwarf[i]] = get64(reg + 8 * i);
    th->regs.orig_rax = get64(reg + 8 * UR_ORIG_RAX);
    th->regs.eflags = get64(reg + 8 * UR_EFLAGS);
    th->regs.fs_base = get64(reg + 8 * UR_FS_BASE);
    th->regs_ok = 1;
    if (c->nthreads == 1)
        c->first_tid = th->tid;
    return 0;
}

static void
parse_prpsinfo(struct core_target *c, const unsigned char *d, size_t n)
{
    if (n < PRPSINFO_MIN || c->have_psinfo)
        return;   /* malformed, or not the first one */
    c->have_psinfo = 1;
    memcpy(c->comm, d + PRPSINFO_FNAME, 16);
    c->comm[16] = '\0';
    c->psinfo_pid = get32(d + PRPSINFO_PID);
}

/*
 * NT_FILE (linux fs/binfmt_elf.c fill_files_note): u64 count, u64
 * page_size, count x {u64 start, end, file offset in pages}, then count
 * NUL-terminated paths.  The count is clamped to what the note can hold;
 * entries without a complete path or with an impossible range are
 * dropped.  Only the first NT_FILE note is used.
 */
static int
parse_nt_file(struct core_target *c, const unsigned char *d, size_t n)
{
    uint64_t count, page, start, end, pgoff, i;
    const unsigned char *e;
    const char *name, *path;
    size_t pos, len;

    if (c->have_files)
        return 0;
    c->have_files = 1;
    if (n < 16)
        return 0;
    count = get64(d);
    page = get64(d + 8);
    if (page == 0 || page > MAX_PAGE_SIZE || (page & (page - 1)))
        return 0;
    count = PMP_MIN(count, (uint64_t)((n - 16) / 24));
    count = PMP_MIN(count, (uint64_t)MAX_FILES);
    c->files = pmp_calloc((size_t)count, sizeof(*c->files));
    if (!c->files)
        return PMP_E_NOMEM;
    pos = 16 + (size_t)count * 24;
    for (i = 0; i < count && pos < n; i++) {
        e = d + 16 + i * 24;
        name = (const char *)d + pos;
        len = strnlen(name, n - pos);
        if (len == n - pos)
            break;   /* unterminated: runs off the note */
        pos += len + 1;
        start = get64(e);
        end = get64(e + 8);
        pgoff = get64(e + 16);
        if (end <= start || pgoff > UINT64_MAX / page)
            continue;
        path = pmp_strpool_intern(&c->paths, name);
        if (!path)
            return PMP_E_NOMEM;
        c->files[c->nfiles].start = start;
        c->files[c->nfiles].end = end;
        c->files[c->nfiles].offset = pgoff * page;
        c->files[c->nfiles].path = path;
        c->nfiles++;
    }
    return 0;
}

/* Walk one PT_NOTE segment.  A malformed note ends the walk, keeping
   what was read before it. */
static int
parse_notes(struct core_target *c, Elf_Data *data)
{
    const unsigned char *base = data->d_buf;
    size_t off = 0, next, name_off, desc_off, count;
    GElf_Nhdr nh;
    int rc = 0;

    for (count = 0; off < data->d_size && count < MAX_NOTES; count++) {
        next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
        if (next <= off || next > data->d_size)
            break;
        off = next;
        if (name_off > data->d_size ||
            nh.n_namesz > data->d_size - name_off ||
            desc_off > data->d_size ||
            nh.n_descsz > data->d_size - desc_off)
            break;
        if (nh.n_namesz != 5 || memcmp(base + name_off, "CORE", 5) != 0)
            continue;
        switch (nh.n_type) {
        case NT_PRSTATUS:
            rc = parse_prstatus(c, base + desc_off, nh.n_descsz);
            break;
        case NT_PRPSINFO:
            parse_prpsinfo(c, base + desc_off, nh.n_descsz);
            break;
        case NT_FILE:
            rc = parse_nt_file(c, base + desc_off, nh.n_descsz);
            break;
        default:
            break;
        }
        if (rc)
            break;
    }
    return rc;
}

/* ---- opening --------------------------------------------------------- */

static int
cmp_seg(const void *a, const void *b)
{
    const struct segment *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int
cmp_file(const void *a, const void *b)
{
    const struct pmp_core_file_map *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int
cmp_tid(const void *a, const void *b)
{
    const struct pmp_target_thread *x = a, *y = b;

    return (x->tid > y->tid) - (x->tid < y->tid);
}

static unsigned
prot_of(uint32_t p_flags)
{
    return ((p_flags & PF_R) ? PROT_READ : 0) |
           ((p_flags & PF_W) ? PROT_WRITE : 0) |
           ((p_flags & PF_X) ? PROT_EXEC : 0);
}

/*
 * Sort the segments and make them disjoint: where a (hostile) segment
 * overlaps the next one, the earlier one is cut at the later one's start.
 */
static void
sort_segments(struct core_target *c)
{
    struct segment *s;
    size_t i, kept = 0;

    if (c->nsegs)
        qsort(c->segs, c->nsegs, sizeof(*c->segs), cmp_seg);
    for (i = 0; i < c->nsegs; i++) {
        if (kept && c->segs[kept - 1].end > c->segs[i].start) {
            s = &c->segs[kept - 1];
            s->end = c->segs[i].start;
            s->filesz = PMP_MIN(s->filesz, s->end - s->start);
            s->avail = PMP_MIN(s->avail, s->filesz);
            if (s->end == s->start)
                kept--;
        }
        c->segs[kept++] = c->segs[i];
    }
    c->nsegs = kept;
}

static void
add_segment(struct core_target *c, const Elf64_Phdr *ph)
{
    struct segment *s;

    if (ph->p_memsz == 0 || ph->p_memsz > UINT64_MAX - ph->p_vaddr ||
        c->nsegs >= MAX_SEGMENTS)
        return;
    s = &c->segs[c->nsegs++];
    s->start = ph->p_vaddr;
    s->end = ph->p_vaddr + ph->p_memsz;
    s->offset = ph->p_offset;
    s->filesz = PMP_MIN(ph->p_filesz, ph->p_memsz);
    if (ph->p_offset >= c->size)
        s->avail = 0;
    else
        s->avail = PMP_MIN(s->filesz, (uint64_t)c->size - ph->p_offset);
    if (s->avail < s->filesz)
        c->truncated = 1;
    s->prot = prot_of(ph->p_flags);
}

static int
cmp_map(const void *a, const void *b)
{
    const struct pmp_mapping *x = a, *y = b;

    return (x->start > y->start) - (x->start < y->start);
}

static int
add_mapping(struct core_target *c, size_t *cap, uint64_t start,
            uint64_t end, unsigned prot,
            const struct pmp_core_file_map *f, const char *empty)
{
    struct pmp_mapping *m;

    if (pmp_grow((void **)&c->maps, cap, c->nmaps + 1, sizeof(*c->maps)))
        return PMP_E_NOMEM;
    m = &c->maps[c->nmaps++];
    m->start = start;
    m->end = end;
    m->prot = prot;
    m->offset = f ? f->offset + (start - f->start) : 0;
    m->path = (char *)(f ? f->path : empty);
    return 0;
}

/*
 * The mapping list: one entry per PT_LOAD, named by the NT_FILE entry
 * holding its start, plus the parts of NT_FILE ranges no PT_LOAD covers
 * (gcore leaves unmodified file-backed mappings out of the segments; the
 * core does not record their protection, so they are listed PROT_READ).
 * Sorted and disjoint.
 */
static int
build_mappings(struct core_target *c)
{
    const char *empty = pmp_strpool_intern(&c->paths, "");
    const struct pmp_core_file_map *f;
    uint64_t from, to, seen = 0;
    size_t cap = 0, i, j;
    int rc = 0;

    if (!empty)
        return PMP_E_NOMEM;
    for (i = 0; i < c->nsegs && !rc; i++)
        rc = add_mapping(c, &cap, c->segs[i].start, c->segs[i].end,
                         c->segs[i].prot, find_file(c, c->segs[i].start),
                         empty);
    for (i = 0; i < c->nfiles && !rc; i++) {
        f = &c->files[i];
        from = PMP_MAX(f->start, seen);   /* overlapping entries: once */
        seen = PMP_MAX(seen, f->end);
        j = segments_upto(c, from);
        if (j > 0 && c->segs[j - 1].end > from)
            from = c->segs[j - 1].end;
        for (; from < f->end && !rc; j++) {
            to = j < c->nsegs ? PMP_MIN(f->end, c->segs[j].start) : f->end;
            if (from < to)
                rc = add_mapping(c, &cap, from, to, PROT_READ, f, empty);
            if (j >= c->nsegs)
                break;
            from = PMP_MAX(from, c->segs[j].end);
        }
    }
    if (!rc && c->nmaps)
        qsort(c->maps, c->nmaps, sizeof(*c->maps), cmp_map);
    return rc;
}

static uint16_t
get16_endian(const unsigned char *p, int msb)
{
    return msb ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static const char *
machine_name(unsigned m)
{
    switch (m) {
    case EM_386: return "i386";
    case EM_ARM: return "arm";
    case EM_AARCH64: return "aarch64";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
    case EM_RISCV: return "riscv";
    default: return "another machine";
    }
}

/*
 * Check the ELF header by hand before libelf sees the file, so that the
 * caller gets a precise reason and libelf only ever reads little-endian
 * ELF64 (which it never converts in place).
 */
static int
check_ehdr(const struct core_target *c, const char *path, Elf64_Ehdr *eh,
           struct pmp_error *err)
{
    const unsigned char *id = c->map;
    int msb;
    unsigned type, machine;

    if (c->size < SELFMAG || memcmp(id, ELFMAG, SELFMAG) != 0)
        return pmp_error_set(err, PMP_E_FORMAT, "'%s' is not an ELF file%s",
                             path, c->size ? "" : " (it is empty)");
    if (c->size < 20 || (id[EI_DATA] != ELFDATA2LSB &&
                         id[EI_DATA] != ELFDATA2MSB))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "'%s' is truncated or corrupt: its ELF "
                             "identification is incomplete",
                             path);
    msb = id[EI_DATA] == ELFDATA2MSB;
    type = get16_endian(id + 16, msb);
    machine = get16_endian(id + 18, msb);
    if (type != ET_CORE)
        return pmp_error_set(err, PMP_E_FORMAT,
                             "'%s' is not a core file (it is %s)", path,
                             type == ET_EXEC || type == ET_DYN
                                 ? "an executable or library"
                             : type == ET_REL ? "a relocatable object"
                                              : "an ELF file of unknown type");
    if (machine != EM_X86_64)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "'%s' is a core of %s (ELF machine %u); only "
                             "x86_64 cores are supported",
                             path, machine_name(machine), machine);
    if (id[EI_CLASS] != ELFCLASS64 || msb)
        return pmp_error_set(err, PMP_E_UNSUPPORTED,
                             "'%s' is not a 64-bit little-endian core; only "
                             "x86_64 cores are supported",
                             path);
    if (c->size < sizeof(*eh))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "'%s' is truncated: its ELF header is cut off "
                             "after %zu bytes",
                             path, c->size);
    memcpy(eh, c->map, sizeof(*eh));
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "'%s' is corrupt: program header size %u, "
                             "expected %zu",
                             path, eh->e_phentsize, sizeof(Elf64_Phdr));
    return 0;
}

/*
 * The number of program headers, checked to lie inside the file.  With
 * more than 0xfffe segments e_phnum is PN_XNUM and the count is in
 * section header 0's sh_info (elf(5)).
 */
static int
phdr_count(const struct core_target *c, const char *path,
           const Elf64_Ehdr *eh, uint64_t *out, struct pmp_error *err)
{
    Elf64_Shdr sh0;
    uint64_t n = eh->e_phnum;

    if (n == PN_XNUM) {
        if (eh->e_shoff == 0 || eh->e_shoff > c->size ||
            c->size - eh->e_shoff < sizeof(sh0))
            return pmp_error_set(err, PMP_E_CORRUPT,
                                 "'%s' is truncated: section header 0, "
                                 "which holds the segment count, is "
                                 "beyond the end of the file",
                                 path);
        memcpy(&sh0, c->map + eh->e_shoff, sizeof(sh0));
        n = sh0.sh_info;
    }
    if (n == 0)
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "'%s' is corrupt: it has no program headers",
                             path);
    if (eh->e_phoff > c->size || n > (c->size - eh->e_phoff) /
                                         sizeof(Elf64_Phdr))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "'%s' is truncated: its %llu program headers "
                             "at offset %llu do not fit in its %zu bytes",
                             path, (unsigned long long)n,
                             (unsigned long long)eh->e_phoff, c->size);
    *out = n;
    return 0;
}

/* Read the notes and segments named by the program headers. */
static int
read_phdrs(struct core_target *c, const char *path, const Elf64_Ehdr *eh,
           uint64_t phnum, struct pmp_error *err)
{
    Elf64_Phdr ph;
    Elf_Data *data;
    uint64_t i, nloads = 0;
    int rc;

    for (i = 0; i < phnum; i++) {
        memcpy(&ph, c->map + eh->e_phoff + i * sizeof(ph), sizeof(ph));
        nloads += ph.p_type == PT_LOAD;
    }
    c->segs = pmp_calloc((size_t)PMP_MIN(nloads, (uint64_t)MAX_SEGMENTS),
                         sizeof(*c->segs));
    if (!c->segs)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    for (i = 0; i < phnum; i++) {
        memcpy(&ph, c->map + eh->e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD) {
            add_segment(c, &ph);
            continue;
        }
        if (ph.p_type != PT_NOTE || ph.p_filesz == 0)
            continue;
        if (ph.p_offset > c->size || ph.p_filesz > c->size - ph.p_offset)
            return pmp_error_set(err, PMP_E_CORRUPT,
                                 "'%s' is truncated: its notes (%llu bytes "
                                 "at offset %llu) extend past its %zu bytes",
                                 path, (unsigned long long)ph.p_filesz,
                                 (unsigned long long)ph.p_offset, c->size);
        data = elf_getdata_rawchunk(c->elf, (int64_t)ph.p_offset,
                                    (size_t)ph.p_filesz, ELF_T_NHDR);
        if (!data)
            return pmp_error_set(err, PMP_E_CORRUPT,
                                 "'%s': cannot read its notes: %s", path,
                                 elf_errmsg(-1));
        rc = parse_notes(c, data);
        if (rc)
            return pmp_error_set(err, rc, "out of memory reading '%s'", path);
    }
    return 0;
}

int
pmp_target_core_new(struct pmp_target **out, const char *path,
                    struct pmp_error *err)
{
    struct core_target *c;
    struct stat st;
    Elf64_Ehdr eh;
    uint64_t phnum = 0;
    void *map;
    size_t i;
    int rc = 0;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    c->base.ops = &core_ops;
    c->fd = -1;
    for (i = 0; i < MAX_OPEN_FILES; i++)
        c->fds[i].fd = -1;
    pmp_strpool_init(&c->paths);
    if (elf_version(EV_CURRENT) == EV_NONE) {
        rc = pmp_error_set(err, PMP_E_UNSUPPORTED, "libelf is too old: %s",
                           elf_errmsg(-1));
        goto out;
    }
    c->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (c->fd < 0) {
        rc = pmp_error_errno(err,
                             errno == ENOENT   ? PMP_E_NOTFOUND
                             : errno == EACCES ? PMP_E_PERM
                                               : PMP_E_SYS,
                             errno, "cannot open '%s'", path);
        goto out;
    }
    if (fstat(c->fd, &st) != 0) {
        rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot stat '%s'", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pmp_error_set(err, PMP_E_FORMAT,
                           "'%s' is not a core file (not a regular file)",
                           path);
        goto out;
    }
    c->size = (size_t)st.st_size;
    if (c->size > 0) {
        map = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, c->fd, 0);
        if (map == MAP_FAILED) {
            rc = pmp_error_errno(err, PMP_E_SYS, errno, "cannot map '%s'",
                                 path);
            goto out;
        }
        c->map = map;
    }
    rc = check_ehdr(c, path, &eh, err);
    if (!rc)
        rc = phdr_count(c, path, &eh, &phnum, err);
    if (rc)
        goto out;
    c->elf = elf_memory((char *)c->map, c->size);
    if (!c->elf) {
        rc = pmp_error_set(err, PMP_E_CORRUPT, "'%s': libelf: %s", path,
                           elf_errmsg(-1));
        goto out;
    }
    rc = read_phdrs(c, path, &eh, phnum, err);
    if (rc)
        goto out;
    if (c->nthreads == 0) {
        rc = pmp_error_set(err, PMP_E_CORRUPT,
                           "'%s' has no threads (no valid NT_PRSTATUS note)",
                           path);
        goto out;
    }
    c->base.pid = c->psinfo_pid > 0 ? c->psinfo_pid : c->first_tid;
    qsort(c->threads, c->nthreads, sizeof(*c->threads), cmp_tid);
    if (c->nfiles)
        qsort(c->files, c->nfiles, sizeof(*c->files), cmp_file);
    sort_segments(c);
    if (build_mappings(c)) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory reading '%s'",
                           path);
        goto out;
    }
    *out = &c->base;
    c = NULL;
out:
    core_free(c ? &c->base : NULL);
    return rc;
}

void *
pmp_target_core_elf(struct pmp_target *t)
{
    struct core_target *c = as_core(t);

    return c ? c->elf : NULL;
}

size_t
pmp_target_core_files(struct pmp_target *t,
                      const struct pmp_core_file_map **out)
{
    struct core_target *c = as_core(t);

    if (out)
        *out = c ? c->files : NULL;
    return c ? c->nfiles : 0;
}

const char *
pmp_target_core_comm(struct pmp_target *t)
{
    struct core_target *c = as_core(t);

    return c ? c->comm : "";
}

uint64_t
pmp_target_core_mtime_ns(struct pmp_target *t)
{
    struct core_target *c = as_core(t);
    struct stat st;

    if (!c || fstat(c->fd, &st) != 0)
        return 0;
    return (uint64_t)st.st_mtim.tv_sec * 1000000000u +
           (uint64_t)st.st_mtim.tv_nsec;
}

/*
 * target-core.c: the ELF core-file target backend (x86_64 Linux; kernel
 * cores and gdb's gcore).
 *
 * Owns: validating the core, its notes (NT_PRSTATUS -> threads and
 * registers, NT_PRPSINFO -> command name, NT_FILE -> mapped files) and
 * reads of the dumped memory.  Bytes the core left out of a file-backed
 * segment are read from the file NT_FILE names; anonymous bytes past
 * p_filesz are zero.
 *
 * The file is hostile: every offset and size is checked against the file
 * size before use, note walks are bounded, a truncated core still opens
 * (the missing bytes read as unmapped).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pmprof-internal.h"

#define MAX_SEGMENTS 1000000
#define MAX_NOTES 1000000
#define MAX_OPEN_FILES 64

struct segment {
    uint64_t vaddr, memsz;
    uint64_t offset, filesz;   /* filesz clamped to the file */
    unsigned prot;
    int file;                  /* index into files, or -1 */
};

struct open_file {
    int fd;                    /* -1: not opened yet, -2: cannot open */
};

struct core_target {
    struct pmp_target base;
    int fd;
    unsigned char *map;
    size_t size;
    Elf *elf;
    struct segment *segs;
    size_t nsegs;
    struct pmp_target_thread *threads;
    size_t nthreads, threads_cap;
    struct pmp_core_file_map *files;
    size_t nfiles;
    char *file_strings;        /* copy of NT_FILE paths */
    struct open_file *open;    /* parallel to files */
    size_t nopen;
    struct pmp_mapping *maps;
    size_t nmaps;
    char comm[17];
    int truncated;
};

static struct core_target *
to_core(struct pmp_target *t)
{
    return (struct core_target *)t;
}

static int
file_for(struct core_target *c, uint64_t addr)
{
    size_t i;

    for (i = 0; i < c->nfiles; i++)
        if (addr >= c->files[i].start && addr < c->files[i].end)
            return (int)i;
    return -1;
}

static long
read_from_file(struct core_target *c, int fi, uint64_t addr, void *buf,
               size_t len)
{
    const struct pmp_core_file_map *f = &c->files[fi];
    struct open_file *of = &c->open[fi];
    uint64_t off;
    ssize_t n;

    if (of->fd == -1) {
        if (c->nopen >= MAX_OPEN_FILES) {
            return 0;
        }
        of->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (of->fd < 0) {
            of->fd = -2;
            return 0;
        }
        c->nopen++;
    }
    if (of->fd < 0)
        return 0;
    off = f->offset + (addr - f->start);
    if (len > f->end - addr)
        len = f->end - addr;
    n = pread(of->fd, buf, len, (off_t)off);
    if (n < 0)
        return 0;
    return (long)n;
}

static const struct segment *
find_segment(struct core_target *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nsegs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct segment *s = &c->segs[mid];
        if (addr < s->vaddr)
            hi = mid;
        else if (addr - s->vaddr >= s->memsz)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

static long
core_read(struct pmp_target *t, uint64_t addr, void *buf, size_t len,
          struct pmp_error *err)
{
    struct core_target *c = to_core(t);
    unsigned char *out = buf;
    size_t done = 0;

    while (done < len) {
        uint64_t a = addr + done;
        const struct segment *s = find_segment(c, a);
        uint64_t in_seg, avail;
        size_t chunk;

        if (!s)
            break;
        in_seg = a - s->vaddr;
        avail = s->memsz - in_seg;
        chunk = len - done;
        if (chunk > avail)
            chunk = (size_t)avail;
        if (in_seg < s->filesz) {
            if (chunk > s->filesz - in_seg)
                chunk = (size_t)(s->filesz - in_seg);
            memcpy(out + done, c->map + s->offset + in_seg, chunk);
        } else if (s->file >= 0) {
            long n = read_from_file(c, s->file, a, out + done, chunk);
            if (n <= 0)
                break;
            chunk = (size_t)n;
        } else if (c->truncated && s->filesz > 0) {
            break;   /* the dump was cut here: unknown, not zero */
        } else {
            memset(out + done, 0, chunk);
        }
        done += chunk;
    }
    return (long)done;
}

static int
core_stop(struct pmp_target *t, struct pmp_target_thread **threads,
          size_t *nthreads, struct pmp_error *err)
{
    struct core_target *c = to_core(t);

    *threads = c->threads;
    *nthreads = c->nthreads;
    return 0;
}

static void
core_resume(struct pmp_target *t)
{
}

static int
core_mappings(struct pmp_target *t, const struct pmp_mapping **maps,
              size_t *nmaps, struct pmp_error *err)
{
    struct core_target *c = to_core(t);

    *maps = c->maps;
    *nmaps = c->nmaps;
    return 0;
}

static void
core_free(struct pmp_target *t)
{
    struct core_target *c = to_core(t);
    size_t i;

    if (c->elf)
        elf_end(c->elf);
    if (c->map && c->map != MAP_FAILED)
        munmap(c->map, c->size);
    if (c->fd >= 0)
        close(c->fd);
    for (i = 0; i < c->nfiles; i++)
        if (c->open && c->open[i].fd >= 0)
            close(c->open[i].fd);
    free(c->open);
    free(c->files);
    free(c->file_strings);
    free(c->segs);
    free(c->threads);
    free(c->maps);
    free(c);
}

static const struct pmp_target_ops core_ops = {
    .kind = "core",
    .read = core_read,
    .stop = core_stop,
    .resume = core_resume,
    .mappings = core_mappings,
    .free = core_free,
};

/* ---- notes ---- */

/* x86_64 struct elf_prstatus: pr_pid at 32, pr_utime at 48 (timeval),
   pr_stime at 64, pr_reg (27 u64, user_regs_struct order) at 112. */
#define PRSTATUS_SIZE 336
#define PRSTATUS_PID 32
#define PRSTATUS_UTIME 48
#define PRSTATUS_STIME 64
#define PRSTATUS_REG 112

static uint64_t
get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int
parse_prstatus(struct core_target *c, const unsigned char *d, size_t n)
{
    /* user_regs_struct order: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax
       rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base ... */
    static const int dwarf_of[17] = {
        PMP_REG_R15, PMP_REG_R14, PMP_REG_R13, PMP_REG_R12, PMP_REG_RBP,
        PMP_REG_RBX, PMP_REG_R11, PMP_REG_R10, PMP_REG_R9,  PMP_REG_R8,
        PMP_REG_RAX, PMP_REG_RCX, PMP_REG_RDX, PMP_REG_RSI, PMP_REG_RDI,
        -1 /* orig_rax */, PMP_REG_RIP,
    };
    struct pmp_target_thread *th;
    const unsigned char *reg;
    int32_t pid;
    int i;

    if (n < PRSTATUS_SIZE || c->nthreads >= PMP_MAX_THREADS)
        return 0;
    if (pmp_grow((void **)&c->threads, &c->threads_cap, c->nthreads + 1,
                 sizeof(*c->threads)))
        return PMP_E_NOMEM;
    th = &c->threads[c->nthreads++];
    memset(th, 0, sizeof(*th));
    memcpy(&pid, d + PRSTATUS_PID, 4);
    th->tid = pid;
    th->state = 'C';
    th->utime_ns = get64(d + PRSTATUS_UTIME) * 1000000000ull +
                   get64(d + PRSTATUS_UTIME + 8) * 1000ull;
    th->stime_ns = get64(d + PRSTATUS_STIME) * 1000000000ull +
                   get64(d + PRSTATUS_STIME + 8) * 1000ull;
    reg = d + PRSTATUS_REG;
    for (i = 0; i < 17; i++) {
        if (dwarf_of[i] >= 0)
            th->regs.r[dwarf_of[i]] = get64(reg + 8 * i);
    }
    th->regs.orig_rax = get64(reg + 8 * 15);
    th->regs.eflags = get64(reg + 8 * 18);
    th->regs.r[PMP_REG_RSP] = get64(reg + 8 * 19);
    th->regs.fs_base = get64(reg + 8 * 21);
    th->regs_ok = 1;
    return 0;
}

static int
parse_nt_file(struct core_target *c, const unsigned char *d, size_t n)
{
    uint64_t count, page, i;
    const unsigned char *strs;
    size_t slen, pos = 0;

    if (c->files || n < 16)
        return 0;
    count = get64(d);
    page = get64(d + 8);
    if (count > (n - 16) / 24 || count > MAX_SEGMENTS)
        return PMP_E_CORRUPT;
    strs = d + 16 + count * 24;
    slen = n - 16 - (size_t)count * 24;
    c->file_strings = malloc(slen + 1);
    c->files = pmp_calloc((size_t)count, sizeof(*c->files));
    c->open = pmp_calloc((size_t)count, sizeof(*c->open));
    if (!c->file_strings || !c->files || !c->open)
        return PMP_E_NOMEM;
    memcpy(c->file_strings, strs, slen);
    c->file_strings[slen] = '\0';
    for (i = 0; i < count; i++) {
        const unsigned char *e = d + 16 + i * 24;
        struct pmp_core_file_map *f = &c->files[i];
        size_t l;

        if (pos >= slen)
            return PMP_E_CORRUPT;
        l = strnlen(c->file_strings + pos, slen - pos);
        f->start = get64(e);
        f->end = get64(e + 8);
        f->offset = get64(e + 16) * page;
        f->path = c->file_strings + pos;
        c->open[i].fd = -1;
        pos += l + 1;
        if (f->end < f->start)
            f->end = f->start;
        c->nfiles++;
    }
    return 0;
}

static int
parse_notes(struct core_target *c, Elf_Data *data, struct pmp_error *err)
{
    size_t off = 0, name_off, desc_off;
    GElf_Nhdr nh;
    size_t count = 0;
    int rc;

    while (off < data->d_size && count++ < MAX_NOTES) {
        const unsigned char *desc;
        const char *name;
        size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);

        if (next == 0 || next <= off)
            break;
        off = next;
        if (desc_off > data->d_size || nh.n_descsz > data->d_size - desc_off)
            break;
        name = (const char *)data->d_buf + name_off;
        desc = (const unsigned char *)data->d_buf + desc_off;
        if (nh.n_namesz < 5 || memcmp(name, "CORE", 5) != 0)
            continue;
        rc = 0;
        switch (nh.n_type) {
        case NT_PRSTATUS:
            rc = parse_prstatus(c, desc, nh.n_descsz);
            break;
        case NT_PRPSINFO:
            /* pr_fname[16] at offset 40 in x86_64 elf_prpsinfo */
            if (nh.n_descsz >= 56 && !c->comm[0]) {
                memcpy(c->comm, desc + 40, 16);
                c->comm[16] = '\0';
            }
            if (nh.n_descsz >= 28 && !c->base.pid) {
                int32_t pid;
                memcpy(&pid, desc + 24, 4);
                c->base.pid = pid;
            }
            break;
        case NT_FILE:
            rc = parse_nt_file(c, desc, nh.n_descsz);
            break;
        default:
            break;
        }
        if (rc == PMP_E_NOMEM)
            return pmp_error_set(err, rc, "out of memory reading the core");
    }
    return 0;
}

static int
cmp_seg(const void *a, const void *b)
{
    const struct segment *x = a, *y = b;

    return (x->vaddr > y->vaddr) - (x->vaddr < y->vaddr);
}

static int
cmp_tid(const void *a, const void *b)
{
    const struct pmp_target_thread *x = a, *y = b;

    return (x->tid > y->tid) - (x->tid < y->tid);
}

int
pmp_target_core_new(struct pmp_target **out, const char *path,
                    struct pmp_error *err)
{
    struct core_target *c;
    GElf_Ehdr eh;
    size_t phnum, i;
    struct stat st;
    int rc = 0;

    *out = NULL;
    elf_version(EV_CURRENT);
    c = calloc(1, sizeof(*c));
    if (!c)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    c->base.ops = &core_ops;
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        rc = pmp_error_errno(err, errno == ENOENT ? PMP_E_NOTFOUND
                                                  : PMP_E_TARGET,
                             errno, "cannot open '%s'", path);
        goto out;
    }
    if (fstat(c->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = pmp_error_set(err, PMP_E_FORMAT, "'%s' is not a regular file",
                           path);
        goto out;
    }
    c->size = (size_t)st.st_size;
    if (c->size < sizeof(Elf64_Ehdr)) {
        rc = pmp_error_set(err, PMP_E_FORMAT, "'%s' is not an ELF file%s",
                           path, c->size ? " (too short)" : " (empty)");
        goto out;
    }
    c->map = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, c->fd, 0);
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        rc = pmp_error_errno(err, PMP_E_TARGET, errno, "cannot map '%s'",
                             path);
        goto out;
    }
    if (memcmp(c->map, ELFMAG, SELFMAG) != 0) {
        rc = pmp_error_set(err, PMP_E_FORMAT, "'%s' is not an ELF file", path);
        goto out;
    }
    c->elf = elf_memory((char *)c->map, c->size);
    if (!c->elf || !gelf_getehdr(c->elf, &eh)) {
        rc = pmp_error_set(err, PMP_E_FORMAT, "'%s' is not a valid ELF file: %s",
                           path, elf_errmsg(-1));
        goto out;
    }
    if (eh.e_type != ET_CORE) {
        rc = pmp_error_set(err, PMP_E_FORMAT,
                           "'%s' is not a core file (it is an %s)", path,
                           eh.e_type == ET_EXEC || eh.e_type == ET_DYN
                               ? "executable or a library"
                               : "ELF object");
        goto out;
    }
    if (eh.e_machine != EM_X86_64 || gelf_getclass(c->elf) != ELFCLASS64) {
        rc = pmp_error_set(err, PMP_E_UNSUPPORTED,
                           "'%s' is not an x86_64 core", path);
        goto out;
    }
    if (elf_getphdrnum(c->elf, &phnum) != 0 || phnum == 0 ||
        eh.e_phoff > c->size ||
        phnum > (c->size - eh.e_phoff) / sizeof(Elf64_Phdr)) {
        rc = pmp_error_set(err, PMP_E_CORRUPT,
                           "'%s' is truncated: its program headers are "
                           "missing",
                           path);
        goto out;
    }
    if (phnum > MAX_SEGMENTS)
        phnum = MAX_SEGMENTS;
    c->segs = pmp_calloc(phnum, sizeof(*c->segs));
    if (!c->segs) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < phnum; i++) {
        GElf_Phdr ph;

        if (!gelf_getphdr(c->elf, (int)i, &ph))
            continue;
        if (ph.p_type == PT_NOTE) {
            Elf_Data *data;
            if (ph.p_offset >= c->size || ph.p_filesz > c->size - ph.p_offset) {
                rc = pmp_error_set(err, PMP_E_CORRUPT,
                                   "'%s' is truncated: its notes are cut "
                                   "off",
                                   path);
                goto out;
            }
            data = elf_getdata_rawchunk(c->elf, (int64_t)ph.p_offset,
                                        ph.p_filesz, ELF_T_NHDR);
            if (data) {
                rc = parse_notes(c, data, err);
                if (rc)
                    goto out;
            }
        } else if (ph.p_type == PT_LOAD && ph.p_memsz > 0 &&
                   ph.p_vaddr + ph.p_memsz > ph.p_vaddr) {
            struct segment *s = &c->segs[c->nsegs++];
            s->vaddr = ph.p_vaddr;
            s->memsz = ph.p_memsz;
            s->offset = ph.p_offset;
            s->filesz = PMP_MIN(ph.p_filesz, ph.p_memsz);
            if (s->offset > c->size) {
                s->filesz = 0;
                c->truncated = 1;
            } else if (s->filesz > c->size - s->offset) {
                s->filesz = c->size - s->offset;
                c->truncated = 1;
            }
            s->prot = ((ph.p_flags & PF_R) ? PROT_READ : 0) |
                      ((ph.p_flags & PF_W) ? PROT_WRITE : 0) |
                      ((ph.p_flags & PF_X) ? PROT_EXEC : 0);
        }
    }
    if (c->nthreads == 0) {
        rc = pmp_error_set(err, PMP_E_CORRUPT,
                           "'%s' has no threads (no NT_PRSTATUS notes)",
                           path);
        goto out;
    }
    qsort(c->segs, c->nsegs, sizeof(*c->segs), cmp_seg);
    for (i = 0; i < c->nsegs; i++)
        c->segs[i].file = file_for(c, c->segs[i].vaddr);
    if (!c->base.pid)
        c->base.pid = c->threads[0].tid;
    qsort(c->threads, c->nthreads, sizeof(*c->threads), cmp_tid);
    /* Mappings: one per PT_LOAD, named by NT_FILE where covered. */
    c->maps = pmp_calloc(c->nsegs ? c->nsegs : 1, sizeof(*c->maps));
    if (!c->maps) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < c->nsegs; i++) {
        struct pmp_mapping *m = &c->maps[c->nmaps++];
        int f = c->segs[i].file;
        m->start = c->segs[i].vaddr;
        m->end = c->segs[i].vaddr + c->segs[i].memsz;
        m->prot = c->segs[i].prot;
        m->offset = f >= 0 ? c->files[f].offset +
                                 (m->start - c->files[f].start)
                           : 0;
        m->path = (char *)(f >= 0 ? c->files[f].path : "");
    }
    *out = &c->base;
    c = NULL;
out:
    if (c)
        core_free(&c->base);
    return rc;
}

void *
pmp_target_core_elf(struct pmp_target *t)
{
    return to_core(t)->elf;
}

size_t
pmp_target_core_files(struct pmp_target *t,
                      const struct pmp_core_file_map **out)
{
    struct core_target *c = to_core(t);

    if (out)
        *out = c->files;
    return c->nfiles;
}

const char *
pmp_target_core_comm(struct pmp_target *t)
{
    return to_core(t)->comm;
}

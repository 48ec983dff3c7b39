/*
 * core-names.c: the file names a core makes libdwfl open, checked first.
 *
 * dwfl_core_file_report opens, with a blocking open(2), every name the
 * core's link_map lists (r_debug.r_map -> l_name, strings in the dumped
 * memory) and may open the files NT_FILE names.  A hostile core can name
 * a FIFO there (the open waits for a writer: pmprof hangs) or a device
 * (opening it can act).  Before the report, this walks the same link_map
 * with the bounded reads every decoder uses, and refuses the core with
 * one line when a name that exists is not a regular file.
 *
 * The walk: NT_AUXV's AT_PHDR/AT_PHNUM -> the executable's program
 * headers in memory -> PT_DYNAMIC (bias from PT_PHDR) -> DT_DEBUG ->
 * r_debug.r_map -> link_map (l_name at +8, l_next at +24), at most
 * MAX_LINKS entries.  Anything unreadable ends the walk quietly: libdwfl
 * then reads nothing there either.
 *
 * Must not: open any of the names.
 */
#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>

#include "pmprof-internal.h"

#define MAX_LINKS 65536
#define MAX_DYN 4096
#define MAX_PHNUM 4096

static int
check_name(const char *name, const char *what, struct pmp_error *err)
{
    struct stat st;

    if (name[0] == '/' && stat(name, &st) == 0 && !S_ISREG(st.st_mode))
        return pmp_error_set(err, PMP_E_CORRUPT,
                             "the core's %s names '%s', which is not a "
                             "regular file: pmprof does not open it",
                             what, name);
    return 0;
}

/* NT_AUXV's AT_PHDR and AT_PHNUM; 0 when not found. */
static void
auxv_phdr(Elf *core, uint64_t *phdr, uint64_t *phnum)
{
    size_t n, i;

    *phdr = *phnum = 0;
    if (elf_getphdrnum(core, &n) != 0)
        return;
    for (i = 0; i < n && i < PMP_MAX_MAPPINGS; i++) {
        GElf_Phdr ph;
        Elf_Data *d;
        size_t off = 0, noff, doff;
        GElf_Nhdr nh;

        if (!gelf_getphdr(core, (int)i, &ph) || ph.p_type != PT_NOTE)
            continue;
        d = elf_getdata_rawchunk(core, (int64_t)ph.p_offset, ph.p_filesz,
                                 ELF_T_NHDR);
        while (d && (noff = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
            if (nh.n_type == NT_AUXV) {
                size_t k;
                const unsigned char *a = (const unsigned char *)d->d_buf + doff;
                for (k = 0; k + 16 <= nh.n_descsz; k += 16) {
                    uint64_t type = pmp_u64at(a, k), val = pmp_u64at(a, k + 8);
                    if (type == AT_PHDR)
                        *phdr = val;
                    else if (type == AT_PHNUM)
                        *phnum = val;
                }
                return;
            }
            off = noff;
        }
    }
}

/* r_debug's address from the executable's DT_DEBUG, 0 if none. */
static uint64_t
r_debug_addr(struct pmp_target *t, Elf *core)
{
    uint64_t phdr, phnum, bias = 0, dyn = 0, dynsz = 0, i;
    int have_phdr = 0;

    auxv_phdr(core, &phdr, &phnum);
    if (!phdr || !phnum || phnum > MAX_PHNUM)
        return 0;
    for (i = 0; i < phnum; i++) {
        Elf64_Phdr ph;
        if (pmp_target_read(t, phdr + i * sizeof(ph), &ph, sizeof(ph), NULL))
            return 0;
        if (ph.p_type == PT_PHDR) {
            bias = phdr - ph.p_vaddr;
            have_phdr = 1;
        } else if (ph.p_type == PT_DYNAMIC) {
            dyn = ph.p_vaddr;
            dynsz = ph.p_memsz;
        }
    }
    if (!dyn || !have_phdr)
        return 0;
    for (i = 0; i < MAX_DYN && (i + 1) * 16 <= dynsz; i++) {
        uint64_t e[2];
        if (pmp_target_read(t, bias + dyn + i * 16, e, sizeof(e), NULL))
            return 0;
        if (e[0] == DT_NULL)
            return 0;
        if (e[0] == DT_DEBUG)
            return e[1];
    }
    return 0;
}

int
pmp_core_check_names(struct pmp_target *t, Elf *core, struct pmp_error *err)
{
    const struct pmp_core_file_map *files;
    size_t nfiles = pmp_target_core_files(t, &files), i;
    uint64_t r_debug = core ? r_debug_addr(t, core) : 0, lm;
    int rc;

    for (i = 0; i < nfiles; i++)
        if (files[i].path && (rc = check_name(files[i].path, "NT_FILE", err)))
            return rc;
    if (!r_debug || pmp_target_read_u64(t, r_debug + 8, &lm, NULL))
        return 0;
    for (i = 0; lm && i < MAX_LINKS; i++) {
        uint64_t name_ptr, next;
        char name[4096];
        size_t len = 0;

        if (pmp_target_read_u64(t, lm + 8, &name_ptr, NULL) ||
            pmp_target_read_u64(t, lm + 24, &next, NULL))
            return 0;
        /* The string, 64 bytes at a time (a read stops at the dump's end). */
        while (name_ptr && len + 64 <= sizeof(name) &&
               pmp_target_read(t, name_ptr + len, name + len, 64, NULL) == 0 &&
               !memchr(name + len, '\0', 64))
            len += 64;
        name[sizeof(name) - 1] = '\0';
        if (name_ptr && len + 64 <= sizeof(name) && memchr(name + len, '\0', 64) &&
            (rc = check_name(name, "link map", err)))
            return rc;
        lm = next;
    }
    return 0;
}

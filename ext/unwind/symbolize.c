/*
 * symbolize.c: modules, debug info and pc -> function/file/line/inline chain.
 *
 * Owns: the libdwfl session (module list from /proc/PID/maps or the core,
 * debug info found by build-id under the debug directories, by
 * .gnu_debuglink, or in the binary itself), the module table exported to
 * writers, and the per-(pc, activation) symbol cache.  Lookups of return
 * addresses use pc-1 so that the call site, not the next line, is named.
 *
 * Must not: stop or resume the target; lookups run after the target is
 * resumed.  Strings live in the symbolizer's pool until it is freed.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gopclntab.h"
#include "pmprof-internal.h"
#include "symindex.h"

#define MAX_INLINE_DEPTH 64
#define MAX_WARNINGS 64

struct mod_entry {
    Dwfl_Module *mod;
    struct pmp_module_info info;
    size_t idx;
    struct pmp_gomod *go;         /* Go function table, when is_go */
    int go_tried;
    struct pmp_symindex *ix;      /* symbol and CU lookups (symindex.c) */
};

struct pmp_symbolizer {
    struct pmp_target *target;
    int is_core;
    Dwfl *dwfl;
    Dwfl_Callbacks callbacks;
    char *debuginfo_path;         /* for callbacks.debuginfo_path */
    char *solib_path;
    char *exe;                    /* main executable path, if known */
    struct pmp_u64map by_mod;     /* Dwfl_Module* -> mod_entry */
    struct mod_entry **mods;
    size_t nmods, mods_cap;
    struct pmp_u64map cache[2];   /* [activation] pc -> frameinfo */
    struct pmp_strpool pool;
    int refreshed;                /* module list refreshed this stop */
    unsigned generation;          /* modules dropped so far (removed_cb) */
    char *cache_dir;              /* decompressed debug files, or NULL */
    struct pmp_cache_todo todo[16];
    size_t ntodo;
    char *warnings[MAX_WARNINGS];
    size_t nwarnings;
};

static void
warn(struct pmp_symbolizer *sym, const char *fmt, const char *a,
     const char *b)
{
    char buf[512];
    size_t i;

    snprintf(buf, sizeof(buf), fmt, a, b ? b : "");
    for (i = 0; i < sym->nwarnings; i++)
        if (strcmp(sym->warnings[i], buf) == 0)
            return;
    if (sym->nwarnings < MAX_WARNINGS)
        sym->warnings[sym->nwarnings++] = strdup(buf);
}

/*
 * Open a file a core names (NT_FILE, hostile) only if it is a regular
 * file: a FIFO would block the open forever, and opening a device can act
 * (a watchdog, a tape).  stat first (no open of anything else), then a
 * non-blocking open checked again by fstat.  -1 otherwise.
 */
static int
open_regular(const char *path)
{
    struct stat st;
    int fd;

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
find_elf_in_dirs(const char *dirs, const char *modname, char **file_name,
                 Elf **elfp)
{
    const char *bn = strrchr(modname, '/');
    const char *p = dirs;

    bn = bn ? bn + 1 : modname;
    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char path[PATH_MAX];
        int fd;

        if (n > 0 && n + strlen(bn) + 2 < sizeof(path)) {
            memcpy(path, p, n);
            path[n] = '/';
            pmp_strlcpy(path + n + 1, bn, sizeof(path) - n - 1);
            fd = open_regular(path);
            if (fd >= 0) {
                *file_name = strdup(path);
                *elfp = NULL;
                return fd;
            }
        }
        p = colon ? colon + 1 : NULL;
    }
    return -1;
}

/*
 * find_elf: live processes use libdwfl's /proc reader.  For cores, try the
 * path recorded in the core, then each --solib-search directory, then the
 * build-id index; libdwfl checks the build-id of what we return against
 * the one recorded in the core.  The module's userdata is the symbolizer
 * once reporting is done (set_userdata_cb); during reporting it is NULL.
 */
static int
find_elf_cb(Dwfl_Module *mod, void **userdata, const char *modname,
            Dwarf_Addr base, char **file_name, Elf **elfp)
{
    struct pmp_symbolizer *sym = userdata ? *userdata : NULL;
    int fd;

    if (sym && !sym->is_core)
        return dwfl_linux_proc_find_elf(mod, userdata, modname, base,
                                        file_name, elfp);
    if (modname[0] == '/') {
        fd = open_regular(modname);
        if (fd >= 0) {
            *file_name = strdup(modname);
            return fd;
        }
    } else if (!sym && modname[0] == '[') {
        return dwfl_linux_proc_find_elf(mod, userdata, modname, base,
                                        file_name, elfp);
    }
    if (sym && sym->solib_path) {
        fd = find_elf_in_dirs(sym->solib_path, modname, file_name, elfp);
        if (fd >= 0)
            return fd;
    }
    return dwfl_build_id_find_elf(mod, userdata, modname, base, file_name,
                                  elfp);
}

/* The module's GNU build-id as lowercase hex (out: 129 bytes); its
   length in bytes, 0 if it has none (out is then ""). */
static int
module_build_id_hex(Dwfl_Module *mod, char *out)
{
    const unsigned char *bits;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr), i;

    out[0] = '\0';
    if (len <= 0 || len > 64)
        return 0;
    for (i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", bits[i]);
    return len;
}

/* Does the ELF file at fd have compressed .debug_* sections? */
static int
has_compressed_debug(int fd)
{
    Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    Elf_Scn *scn = NULL;
    size_t shstrndx, n = 0;
    int found = 0;

    if (!e)
        return 0;
    if (elf_getshdrstrndx(e, &shstrndx) == 0) {
        while (!found && (scn = elf_nextscn(e, scn)) != NULL && n++ < 4096) {
            GElf_Shdr sh;
            const char *nm;
            if (!gelf_getshdr(scn, &sh))
                continue;
            nm = elf_strptr(e, shstrndx, sh.sh_name);
            found = (sh.sh_flags & SHF_COMPRESSED) && nm &&
                    strncmp(nm, ".debug_", 7) == 0;
        }
    }
    elf_end(e);
    return found;
}

/* Is there a debug file for build-id hex under one of the absolute
   directories of the debuginfo path (DIR/.build-id/xx/rest.debug, where
   libdwfl's own search looks first)? */
static int
standard_build_id_file(const struct pmp_symbolizer *sym, const char *hex)
{
    const char *p = sym->debuginfo_path;

    while (p && *p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char path[PATH_MAX];

        if (n > 0 && p[0] == '/' &&
            snprintf(path, sizeof(path), "%.*s/.build-id/%.2s/%s.debug",
                     (int)n, p, hex, hex + 2) < (int)sizeof(path) &&
            access(path, R_OK) == 0)
            return 1;
        p = colon ? colon + 1 : NULL;
    }
    return 0;
}

/*
 * find_debuginfo: libdwfl's standard search, except that a debug file it
 * would find by build-id whose decompressed copy is in the cache
 * (CACHE/xx/rest.debug; libc6-dbg ships zlib-compressed DWARF that libdw
 * inflates at every start, ~40 ms) is taken from the cache: libdwfl
 * checks its build-id like any other.  A compressed file the standard
 * search found is noted for the front-end to cache.  The cache never
 * supplies debug info the search would not find.
 */
static int
find_debuginfo_cb(Dwfl_Module *mod, void **userdata, const char *modname,
                  GElf_Addr base, const char *file_name,
                  const char *debuglink_file, GElf_Word debuglink_crc,
                  char **debuginfo_file_name)
{
    struct pmp_symbolizer *sym = userdata ? *userdata : NULL;
    char hex[2 * 64 + 1], path[PATH_MAX];
    int fd, have_path = 0;

    if (sym && sym->cache_dir && module_build_id_hex(mod, hex) > 1) {
        have_path = snprintf(path, sizeof(path), "%s/%.2s/%s.debug",
                             sym->cache_dir, hex, hex + 2) < (int)sizeof(path);
        if (have_path && standard_build_id_file(sym, hex)) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                *debuginfo_file_name = strdup(path);
                if (*debuginfo_file_name)
                    return fd;
                close(fd);
            }
        }
    }
    fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base,
                                      file_name, debuglink_file,
                                      debuglink_crc, debuginfo_file_name);
    if (fd >= 0 && have_path && *debuginfo_file_name &&
        sym->ntodo < PMP_ARRAY_SIZE(sym->todo) && has_compressed_debug(fd)) {
        struct pmp_cache_todo *t = &sym->todo[sym->ntodo];
        t->build_id = pmp_strpool_intern(&sym->pool, hex);
        t->path = pmp_strpool_intern(&sym->pool, *debuginfo_file_name);
        t->dest = pmp_strpool_intern(&sym->pool, path);
        if (t->build_id && t->path && t->dest)
            sym->ntodo++;
    }
    return fd;
}

size_t
pmp_symbolizer_cache_todo(struct pmp_symbolizer *sym,
                          const struct pmp_cache_todo **out)
{
    *out = sym->todo;
    return sym->ntodo;
}

static int
module_has_section(Dwfl_Module *mod, const char *name)
{
    GElf_Addr bias;
    GElf_Shdr sh;
    Elf *elf = dwfl_module_getelf(mod, &bias);

    return elf && pmp_elf_section(elf, name, &sh) != NULL;
}

static struct mod_entry *
entry_for(struct pmp_symbolizer *sym, Dwfl_Module *mod)
{
    struct mod_entry *e = pmp_u64map_get(&sym->by_mod, (uintptr_t)mod);
    const char *name;
    Dwarf_Addr start, end;
    GElf_Addr vaddr;
    char hex[2 * 64 + 1];

    if (e)
        return e;
    if (pmp_grow((void **)&sym->mods, &sym->mods_cap, sym->nmods + 1,
                 sizeof(*sym->mods)))
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    {
        /* Cores name libraries by soname; the file found for the module
           is more useful to a reader (and to pprof). */
        const char *mainfile = NULL;
        GElf_Addr b;
        Elf *elf = dwfl_module_getelf(mod, &b);
        name = dwfl_module_info(mod, NULL, &start, &end, NULL, NULL,
                                &mainfile, NULL);
        if (elf && mainfile && name && name[0] != '/' && name[0] != '[')
            name = mainfile;
    }
    e->mod = mod;
    e->idx = sym->nmods;
    e->ix = pmp_symindex_new();
    e->info.start = start;
    e->info.end = end;
    e->info.path = pmp_strpool_intern(&sym->pool, name ? name : "");
    module_build_id_hex(mod, hex);
    e->info.build_id = pmp_strpool_intern(&sym->pool, hex);
    if (sym->exe && name && strcmp(name, sym->exe) == 0)
        e->info.is_main = 1;
    else if (!sym->exe && sym->is_core && name) {
        /* The executable's basename starts with the core's comm (which
           the kernel truncates to 15 bytes). */
        const char *comm = pmp_target_core_comm(sym->target);
        const char *bn = strrchr(name, '/');
        bn = bn ? bn + 1 : name;
        if (comm && comm[0] && strncmp(bn, comm, strlen(comm)) == 0) {
            size_t k;
            for (k = 0; k < sym->nmods; k++)
                if (sym->mods[k]->info.is_main)
                    break;
            e->info.is_main = k == sym->nmods;
        }
    }
    e->info.is_go = module_has_section(mod, ".gopclntab");
    if (!dwfl_module_getelf(mod, &vaddr) && name && name[0] == '/')
        warn(sym, "no usable file for '%s'%s", name,
             sym->is_core ? " (missing, or its build-id does not match the "
                            "core: use --solib-search or --exe)"
                          : "");
    if (pmp_u64map_put(&sym->by_mod, (uintptr_t)mod, e)) {
        free(e);
        return NULL;
    }
    sym->mods[sym->nmods++] = e;
    return e;
}

static int
set_userdata_cb(Dwfl_Module *mod, void **userdata, const char *name,
                Dwarf_Addr start, void *arg)
{
    *userdata = arg;
    return DWARF_CB_OK;
}

/*
 * A module dropped at a refresh (dlclose): forget its entry, whose
 * Dwfl_Module address a new module may get (it must not inherit the old
 * path, build-id and symbol index).  The entry stays in mods[], so module
 * indexes already handed out remain valid.
 */
static int
removed_cb(Dwfl_Module *mod, void *userdata, const char *name, Dwarf_Addr base,
           void *arg)
{
    struct pmp_symbolizer *sym = arg;

    sym->generation++;
    (void)pmp_u64map_put(&sym->by_mod, (uintptr_t)mod, NULL);
    return DWARF_CB_OK;
}

static int
report_modules(struct pmp_symbolizer *sym, struct pmp_error *err)
{
    int rc;

    dwfl_report_begin(sym->dwfl);
    if (sym->is_core) {
        rc = pmp_core_check_names(sym->target,
                                  pmp_target_core_elf(sym->target), err);
        if (rc) {
            dwfl_report_end(sym->dwfl, removed_cb, sym);
            return rc;
        }
        rc = dwfl_core_file_report(sym->dwfl,
                                   pmp_target_core_elf(sym->target),
                                   sym->exe);
        if (rc < 0) {
            dwfl_report_end(sym->dwfl, removed_cb, sym);
            return pmp_error_set(err, PMP_E_CORRUPT,
                                 "cannot read the module list of the core: %s",
                                 dwfl_errmsg(-1));
        }
    } else {
        rc = dwfl_linux_proc_report(sym->dwfl, sym->target->pid);
        if (rc != 0) {
            dwfl_report_end(sym->dwfl, removed_cb, sym);
            return pmp_error_set(err, PMP_E_TARGET,
                                 "cannot read the module list of process "
                                 "%d: %s",
                                 sym->target->pid,
                                 rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
        }
    }
    if (dwfl_report_end(sym->dwfl, removed_cb, sym) != 0)
        return pmp_error_set(err, PMP_E_TARGET, "cannot report modules: %s",
                             dwfl_errmsg(-1));
    dwfl_getmodules(sym->dwfl, set_userdata_cb, sym, 0);
    return 0;
}

int
pmp_symbolizer_new(struct pmp_symbolizer **out,
                   struct pmp_target *t, const struct pmp_session_opts *opts,
                   struct pmp_error *err)
{
    struct pmp_symbolizer *sym;
    const char *dbg = opts && opts->debug_path ? opts->debug_path : NULL;
    size_t n;
    int rc = 0;

    *out = NULL;
    sym = calloc(1, sizeof(*sym));
    if (!sym)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    sym->target = t;
    sym->is_core = strcmp(t->ops->kind, "core") == 0;
    pmp_strpool_init(&sym->pool);
    pmp_u64map_init(&sym->by_mod);
    pmp_u64map_init(&sym->cache[0]);
    pmp_u64map_init(&sym->cache[1]);
    /*
     * debuginfo_path syntax (libdwfl): ":.debug:/usr/lib/debug" = look
     * next to the file, in .debug/ beside it, then in the directory.
     */
    n = (dbg ? strlen(dbg) : 0) + 64;
    sym->debuginfo_path = malloc(n);
    if (!sym->debuginfo_path) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "out of memory");
        goto out;
    }
    /* opts->debug_path is the whole list of debug-file directories (the
       front-ends add /usr/lib/debug, or gdb's debug-file-directory). */
    snprintf(sym->debuginfo_path, n, ":.debug:%s",
             dbg && dbg[0] ? dbg : "/usr/lib/debug");
    if (opts && opts->solib_path)
        sym->solib_path = strdup(opts->solib_path);
    if (opts && opts->exe) {
        char rp[PATH_MAX];
        sym->exe = strdup(realpath(opts->exe, rp) ? rp : opts->exe);
    } else if (!sym->is_core) {
        char path[64], rp[PATH_MAX];
        ssize_t l;
        snprintf(path, sizeof(path), "/proc/%d/exe", t->pid);
        l = readlink(path, rp, sizeof(rp) - 1);
        if (l > 0) {
            rp[l] = '\0';
            sym->exe = strdup(rp);
        }
    }
    sym->callbacks.find_elf = find_elf_cb;
    if (opts && opts->cache_dir && opts->cache_dir[0])
        sym->cache_dir = strdup(opts->cache_dir);
    sym->callbacks.find_debuginfo = find_debuginfo_cb;
    sym->callbacks.debuginfo_path = &sym->debuginfo_path;
    sym->dwfl = dwfl_begin(&sym->callbacks);
    if (!sym->dwfl) {
        rc = pmp_error_set(err, PMP_E_NOMEM, "cannot start libdwfl: %s",
                           dwfl_errmsg(-1));
        goto out;
    }
    rc = report_modules(sym, err);
    if (rc)
        goto out;
    *out = sym;
out:
    if (rc)
        pmp_symbolizer_free(sym);
    return rc;
}

static void
free_cache(struct pmp_u64map *m)
{
    size_t i;

    for (i = 0; i < m->cap; i++) {
        if (m->keys[i] != UINT64_MAX) {
            struct pmp_frameinfo *fi = m->vals[i];
            if (fi) {
                free((void *)fi->lines);
                free(fi);
            }
        }
    }
    pmp_u64map_release(m);
}

void
pmp_symbolizer_free(struct pmp_symbolizer *sym)
{
    size_t i;

    if (!sym)
        return;
    if (sym->dwfl)
        dwfl_end(sym->dwfl);
    for (i = 0; i < sym->nmods; i++) {
        pmp_gomod_free(sym->mods[i]->go);
        pmp_symindex_free(sym->mods[i]->ix);
        free(sym->mods[i]);
    }
    free(sym->mods);
    pmp_u64map_release(&sym->by_mod);
    free_cache(&sym->cache[0]);
    free_cache(&sym->cache[1]);
    pmp_strpool_release(&sym->pool);
    for (i = 0; i < sym->nwarnings; i++)
        free(sym->warnings[i]);
    free(sym->debuginfo_path);
    free(sym->solib_path);
    free(sym->cache_dir);
    free(sym->exe);
    free(sym);
}

int
pmp_symbolizer_refresh(struct pmp_symbolizer *sym, struct pmp_error *err)
{
    if (sym->is_core)
        return 0;
    return report_modules(sym, err);
}

void
pmp_symbolizer_new_stop(struct pmp_symbolizer *sym)
{
    sym->refreshed = 0;
}

void *
pmp_symbolizer_module_at(struct pmp_symbolizer *sym, uint64_t pc)
{
    Dwfl_Module *mod = dwfl_addrmodule(sym->dwfl, pc);

    if (!mod && !sym->refreshed && !sym->is_core) {
        /* A pc outside every known module: maybe dlopen'd since. */
        sym->refreshed = 1;
        if (pmp_symbolizer_refresh(sym, NULL) == 0)
            mod = dwfl_addrmodule(sym->dwfl, pc);
    }
    if (mod)
        entry_for(sym, mod);
    return mod;
}

/* Changes whenever a module is dropped: caches holding DIEs or symbol
   names of modules (tailcall.c) start over then. */
unsigned
pmp_symbolizer_generation(struct pmp_symbolizer *sym)
{
    return sym->generation;
}

/*
 * The compilation unit holding addr (through the module's symindex), its
 * module and bias; NULL without DWARF there.  For tailcall.c.
 */
Dwarf_Die *
pmp_symbolizer_addrdie(struct pmp_symbolizer *sym, uint64_t addr,
                       Dwarf_Die *mem, Dwarf_Addr *bias, Dwfl_Module **modp)
{
    Dwfl_Module *mod = pmp_symbolizer_module_at(sym, addr);
    struct mod_entry *e = mod ? entry_for(sym, mod) : NULL;

    if (modp)
        *modp = mod;
    if (!e)
        return NULL;
    return pmp_symindex_addrdie(e->ix, mod, addr, mem, bias);
}

int
pmp_symbolizer_is_go(struct pmp_symbolizer *sym, void *mod)
{
    struct mod_entry *e = mod ? entry_for(sym, mod) : NULL;

    return e ? e->info.is_go : 0;
}

struct pmp_gomod *
pmp_symbolizer_gomod(struct pmp_symbolizer *sym, void *mod)
{
    struct mod_entry *e = mod ? entry_for(sym, mod) : NULL;

    if (!e || !e->info.is_go)
        return NULL;
    if (!e->go_tried) {
        GElf_Addr bias = 0;
        Elf *elf = dwfl_module_getelf(mod, &bias);
        struct pmp_error gerr = {0};

        e->go_tried = 1;
        if (elf && pmp_gomod_open(&e->go, elf, bias, sym->target, &gerr))
            warn(sym, "%s: %s", e->info.path, gerr.msg);
    }
    return e->go;
}

static int
go_module_cb(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr base,
             void *arg)
{
    void **out = arg;
    GElf_Addr bias;

    if (dwfl_module_getelf(mod, &bias) && module_has_section(mod, ".gopclntab")) {
        *out = mod;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

void *
pmp_symbolizer_go_module(struct pmp_symbolizer *sym)
{
    void *mod = NULL;

    dwfl_getmodules(sym->dwfl, go_module_cb, &mod, 0);
    if (mod)
        entry_for(sym, mod);
    return mod;
}

size_t
pmp_symbolizer_nmodules(struct pmp_symbolizer *sym)
{
    return sym->nmods;
}

const struct pmp_module_info *
pmp_symbolizer_module(struct pmp_symbolizer *sym, size_t i)
{
    return i < sym->nmods ? &sym->mods[i]->info : NULL;
}

const char *const *
pmp_symbolizer_warnings(struct pmp_symbolizer *sym, size_t *n)
{
    *n = sym->nwarnings;
    return (const char *const *)sym->warnings;
}

/* ---- lookups ---- */

static const char *
die_name(struct pmp_symbolizer *sym, Dwarf_Die *die, const char **sysname)
{
    Dwarf_Attribute attr;
    const char *linkage = NULL, *name;
    char *dm;

    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        linkage = dwarf_formstring(&attr);
    name = dwarf_diename(die);
    if (linkage) {
        *sysname = pmp_strpool_intern(&sym->pool, linkage);
        dm = pmp_demangle(linkage);
        if (dm) {
            const char *r = pmp_strpool_intern(&sym->pool, dm);
            free(dm);
            return r;
        }
        return *sysname;
    }
    *sysname = NULL;
    return pmp_strpool_intern(&sym->pool, name ? name : "");
}

static const char *
call_file(struct pmp_symbolizer *sym, Dwarf_Die *cudie, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    Dwarf_Word idx;
    Dwarf_Files *files;
    size_t nfiles;
    const char *f;

    if (!dwarf_attr(die, DW_AT_call_file, &attr) ||
        dwarf_formudata(&attr, &idx) != 0)
        return "";
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || idx >= nfiles)
        return "";
    f = dwarf_filesrc(files, idx, NULL, NULL);
    return pmp_strpool_intern(&sym->pool, f ? f : "");
}

static int
die_int(Dwarf_Die *die, int at)
{
    Dwarf_Attribute attr;
    Dwarf_Word w;

    if (!dwarf_attr(die, at, &attr) || dwarf_formudata(&attr, &w) != 0)
        return 0;
    return w > INT_MAX ? 0 : (int)w;
}

/*
 * The inline chain at addr, from the concrete DIE tree: the subprogram
 * whose ranges hold addr, then each nested inlined_subroutine that holds
 * it.  (dwarf_getscopes jumps to abstract origins, which is right for
 * variable lookup but loses the call chain for nested inlining.)
 * Returns the count, innermost first, in a malloc'd *out.
 */
#define MAX_DIE_SCAN 200000

struct chain_walk {
    Dwarf_Die dies[MAX_INLINE_DEPTH];
    int n;
    long budget;
};

static int
walk_chain(Dwarf_Die *parent, Dwarf_Addr addr, struct chain_walk *w,
           int depth)
{
    Dwarf_Die child;

    if (depth > 2 * MAX_INLINE_DEPTH || dwarf_child(parent, &child) != 0)
        return 0;
    do {
        int tag = dwarf_tag(&child);

        if (--w->budget < 0)
            return 0;
        switch (tag) {
        case DW_TAG_subprogram:
        case DW_TAG_inlined_subroutine:
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
            if (dwarf_haspc(&child, addr) != 1)
                break;
            if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
                if (w->n >= MAX_INLINE_DEPTH)
                    return 1;
                w->dies[w->n++] = child;
            }
            walk_chain(&child, addr, w, depth + 1);
            return 1;
        case DW_TAG_namespace:
        case DW_TAG_class_type:
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_module:
            if (walk_chain(&child, addr, w, depth + 1))
                return 1;
            break;
        default:
            break;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

static int
concrete_chain(Dwarf_Die *cudie, Dwarf_Addr addr, Dwarf_Die **out)
{
    struct chain_walk *w = malloc(sizeof(*w));
    int i, n;

    *out = NULL;
    if (!w)
        return 0;
    w->n = 0;
    w->budget = MAX_DIE_SCAN;
    walk_chain(cudie, addr, w, 0);
    n = w->n;
    if (n > 0) {
        *out = malloc((size_t)n * sizeof(Dwarf_Die));
        if (!*out) {
            free(w);
            return 0;
        }
        for (i = 0; i < n; i++)
            (*out)[i] = w->dies[n - 1 - i];
    }
    free(w);
    return n;
}

static int
symbolize(struct pmp_symbolizer *sym, uint64_t pc, int activation,
          struct pmp_frameinfo *fi, struct pmp_error *err)
{
    struct pmp_line lines[MAX_INLINE_DEPTH + 1];
    size_t nl = 0, i;
    uint64_t a = activation || pc == 0 ? pc : pc - 1;
    Dwfl_Module *mod;
    struct mod_entry *e;
    uint64_t off = 0;
    const char *symname = NULL;
    const char *srcfile = NULL;
    int srcline = 0, srccol = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die cu_mem, *cudie, *scopes = NULL;
    int nscopes = 0;
    struct pmp_line *heap;

    fi->pc = pc;
    fi->module = -1;
    fi->module_offset = pc;
    memset(lines, 0, sizeof(lines));
    if (PMP_PC_IS_SYNTH(pc)) {
        static const char *const synth[] = {
            "[unknown]", "[truncated]", "[unwind error]", "[no registers]",
            "[lost]", "[go: cannot unwind]", "[stopped]",
            "[io_uring worker]", "[kernel worker]", "[CPU not sampled]",
        };
        size_t k = (size_t)(pc - PMP_PC_SYNTH_BASE);
        const char *nm = k < PMP_ARRAY_SIZE(synth) ? synth[k] : synth[0];
        lines[0].function = lines[0].system_name =
            pmp_strpool_intern(&sym->pool, nm);
        lines[0].file = pmp_strpool_intern(&sym->pool, "");
        nl = 1;
        goto done;
    }
    mod = pmp_symbolizer_module_at(sym, a);
    e = mod ? entry_for(sym, mod) : NULL;
    if (!e) {
        lines[0].function = lines[0].system_name =
            pmp_strpool_intern(&sym->pool, "");
        lines[0].file = lines[0].function;
        nl = 1;
        goto done;
    }
    fi->module = (int)e->idx;
    {
        Elf *elf = dwfl_module_getelf(mod, &bias);
        (void)elf;
        fi->module_offset = pc - bias;
    }
    if (e->info.is_go) {
        struct pmp_gomod *gm = pmp_symbolizer_gomod(sym, mod);
        struct pmp_gofunc gf;
        struct pmp_goline gl[MAX_INLINE_DEPTH + 1];

        if (gm && pmp_gomod_func(gm, a, &gf) == 0) {
            fi->func_offset = pc - gf.entry;
            nl = pmp_gomod_expand(gm, &gf, a, gl, PMP_ARRAY_SIZE(gl));
            for (i = 0; i < nl; i++) {
                lines[i].function = lines[i].system_name =
                    pmp_strpool_intern(&sym->pool, gl[i].function);
                lines[i].file = pmp_strpool_intern(&sym->pool, gl[i].file);
                lines[i].line = gl[i].line;
            }
            e->info.has_functions = e->info.has_filenames =
                e->info.has_line_numbers = 1;
            if (nl > 1)
                e->info.has_inline_frames = 1;
            goto done;
        }
    }
    symname = pmp_symindex_addrinfo(e->ix, mod, a, &off);
    if (symname)
        fi->func_offset = off + (pc - a);
    /* The unit's line table at a (dwfl_module_getsrc's answer), then the
       inline chain from its DWARF scopes. */
    cudie = pmp_symindex_addrdie(e->ix, mod, a, &cu_mem, &bias);
    if (cudie) {
        Dwarf_Line *dl = dwarf_getsrc_die(cudie, a - bias);
        if (dl) {
            srcfile = dwarf_linesrc(dl, NULL, NULL);
            dwarf_lineno(dl, &srcline);
            dwarf_linecol(dl, &srccol);
            if (srcfile)
                e->info.has_filenames = e->info.has_line_numbers = 1;
        }
        nscopes = concrete_chain(cudie, a - bias, &scopes);
    }
    if (nscopes > 0) {
        const char *file = srcfile ? pmp_strpool_intern(&sym->pool, srcfile)
                                   : pmp_strpool_intern(&sym->pool, "");
        int line = srcline, col = srccol;
        int k, last_tag = 0;

        for (k = 0; k < nscopes && nl < MAX_INLINE_DEPTH; k++) {
            Dwarf_Die *d = &scopes[k];
            int tag = dwarf_tag(d);
            const char *sn = NULL, *fn;

            if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
                continue;
            fn = die_name(sym, d, &sn);
            lines[nl].function = fn;
            lines[nl].system_name = sn ? sn : fn;
            lines[nl].file = file;
            lines[nl].line = line;
            lines[nl].column = col;
            nl++;
            last_tag = tag;
            if (tag == DW_TAG_subprogram)
                break;
            /* The caller's position is this inlined call's site. */
            file = call_file(sym, cudie, d);
            line = die_int(d, DW_AT_call_line);
            col = die_int(d, DW_AT_call_column);
        }
        if (last_tag == DW_TAG_inlined_subroutine && symname &&
            nl < MAX_INLINE_DEPTH) {
            /*
             * The concrete chain ended inside an inlined instance (its
             * enclosing subprogram lives elsewhere, e.g. another unit):
             * the ELF symbol names the physical function, positioned at
             * the outermost call site.
             */
            char *dm = pmp_demangle(symname);
            lines[nl].system_name = pmp_strpool_intern(&sym->pool, symname);
            lines[nl].function = dm ? pmp_strpool_intern(&sym->pool, dm)
                                    : lines[nl].system_name;
            free(dm);
            lines[nl].file = file;
            lines[nl].line = line;
            lines[nl].column = col;
            nl++;
        }
        if (nl > 1)
            e->info.has_inline_frames = 1;
    }
    free(scopes);
    if (nl == 0 || !lines[nl - 1].function[0]) {
        /* No DWARF function: the ELF symbol names the physical frame. */
        const char *sysn = symname ? symname : "";
        char *dm = symname ? pmp_demangle(symname) : NULL;
        if (nl == 0)
            nl = 1;
        lines[nl - 1].system_name = pmp_strpool_intern(&sym->pool, sysn);
        lines[nl - 1].function =
            dm ? pmp_strpool_intern(&sym->pool, dm) : lines[nl - 1].system_name;
        free(dm);
        if (!lines[nl - 1].file) {
            lines[nl - 1].file =
                pmp_strpool_intern(&sym->pool, srcfile ? srcfile : "");
            lines[nl - 1].line = srcline;
        }
    } else if (symname && nl >= 1) {
        /*
         * Prefer the ELF symbol for the physical function's linkage name
         * when DWARF gave none (C++ member functions defined out of line
         * carry it on the declaration only).
         */
        struct pmp_line *ph = &lines[nl - 1];
        if (ph->system_name == ph->function && strcmp(symname, ph->function)) {
            char *dm = pmp_demangle(symname);
            if (dm) {
                ph->function = pmp_strpool_intern(&sym->pool, dm);
                ph->system_name = pmp_strpool_intern(&sym->pool, symname);
                free(dm);
            }
        }
    }
    for (i = 0; i < nl; i++)
        if (lines[i].function && lines[i].function[0])
            e->info.has_functions = 1;
done:
    for (i = 0; i < nl; i++) {
        if (!lines[i].function)
            lines[i].function = pmp_strpool_intern(&sym->pool, "");
        if (!lines[i].system_name)
            lines[i].system_name = lines[i].function;
        if (!lines[i].file)
            lines[i].file = pmp_strpool_intern(&sym->pool, "");
        if (!lines[i].function || !lines[i].file)
            return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    }
    heap = malloc(nl * sizeof(*heap));
    if (!heap)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    memcpy(heap, lines, nl * sizeof(*heap));
    fi->lines = heap;
    fi->nlines = nl;
    return 0;
}

int
pmp_symbolizer_lookup(struct pmp_symbolizer *sym, uint64_t pc,
                      int activation, const struct pmp_frameinfo **out,
                      struct pmp_error *err)
{
    struct pmp_u64map *cache = &sym->cache[activation ? 1 : 0];
    struct pmp_frameinfo *fi = pmp_u64map_get(cache, pc);
    int rc;

    if (fi) {
        *out = fi;
        return 0;
    }
    fi = calloc(1, sizeof(*fi));
    if (!fi)
        return pmp_error_set(err, PMP_E_NOMEM, "out of memory");
    rc = symbolize(sym, pc, activation, fi, err);
    if (rc == 0 && pc != UINT64_MAX)
        rc = pmp_u64map_put(cache, pc, fi);
    if (rc) {
        free((void *)fi->lines);
        free(fi);
        return pmp_error_set(err, rc, "out of memory");
    }
    *out = fi;
    return 0;
}

/*
 * The data symbol (STT_OBJECT, or any sized symbol) covering addr: a
 * global lock's name.  *name is interned in the symbolizer's pool; "" and
 * 0 when none.
 */
struct data_find {
    uint64_t addr;
    Dwfl_Module *mod;
};

/* A module's PT_LOAD segments with their memsz: .bss lies past the file
   mappings, where dwfl's module ranges (from /proc/PID/maps) end. */
static int
data_find_cb(Dwfl_Module *mod, void **ud, const char *name, Dwarf_Addr base,
             void *arg)
{
    struct data_find *f = arg;
    GElf_Addr bias = 0;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    size_t n = 0, i;

    if (!elf || elf_getphdrnum(elf, &n) != 0)
        return DWARF_CB_OK;
    for (i = 0; i < n && i < 4096; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (f->addr >= ph.p_vaddr + bias &&
            f->addr - (ph.p_vaddr + bias) < ph.p_memsz) {
            f->mod = mod;
            return DWARF_CB_ABORT;
        }
    }
    return DWARF_CB_OK;
}

int
pmp_symbolizer_data(struct pmp_symbolizer *sym, uint64_t addr,
                    const char **name, uint64_t *offset)
{
    Dwfl_Module *mod = pmp_symbolizer_module_at(sym, addr);
    GElf_Off off = 0;
    GElf_Sym s;
    const char *n = NULL;

    *name = "";
    *offset = 0;
    if (!mod) {
        struct data_find f = {addr, NULL};
        dwfl_getmodules(sym->dwfl, data_find_cb, &f, 0);
        mod = f.mod;
    }
    if (mod)
        n = dwfl_module_addrinfo(mod, addr, &off, &s, NULL, NULL, NULL);
    if (!n || !n[0] || (s.st_size && off >= s.st_size))
        return 0;
    {
        char *dm = pmp_demangle(n);
        const char *in = pmp_strpool_intern(&sym->pool, dm ? dm : n);
        free(dm);
        if (!in)
            return PMP_E_NOMEM;
        *name = in;
    }
    *offset = off;
    return 0;
}

void *
pmp_symbolizer_dwfl(struct pmp_symbolizer *sym)
{
    return sym->dwfl;
}

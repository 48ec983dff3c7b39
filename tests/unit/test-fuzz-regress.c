/*
 * test-fuzz-regress.c: every input a fuzzer once crashed on, run again
 * through the same harness code (tests/fuzz/fuzz-*.c, included here with
 * their entry points renamed), and the invariants those crashes broke.
 *
 *   test-fuzz-regress          (from the repository root, as make test-unit
 *                               runs it) every .gz in tests/fuzz/regress/NAME/
 *
 * NAME is the harness: gopclntab (the input replaces .gopclntab in
 * tests/targets/bin/gohello; skipped when Go is not installed) or core
 * (the input is a core file; every command runs on it).  A crash, an
 * abort (a multi-line error message) or a sanitizer report (make asan) is
 * the failure; an input the parser refuses is a pass.
 *
 * Exit status: 0 all passed, 1 some check failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define LLVMFuzzerTestOneInput fuzz_core_one
#define FUZZ_CMD_STACKS 1
#define FUZZ_CMD_LOCKS 1
#define FUZZ_CMD_HEAP 1
#define FUZZ_CMD_GO 1
#include "../fuzz/fuzz-core.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_gopclntab_one
#define LLVMFuzzerInitialize fuzz_gopclntab_init
#include "../fuzz/fuzz-gopclntab.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

#include "unit.h"

#define REGRESS "tests/fuzz/regress"

static unsigned char *
gunzip_file(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    int r;

    if (!f)
        return NULL;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap ? cap * 2 : 65536);
            if (!nb)
                break;
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        r = gzread(f, buf + n, (unsigned)(cap - n));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    gzclose(f);
    *len = n;
    return buf;
}

static int
run_dir(const char *name, int (*one)(const uint8_t *, size_t))
{
    char dir[256], path[512];
    struct dirent *de;
    DIR *d;
    int ran = 0;

    snprintf(dir, sizeof(dir), "%s/%s", REGRESS, name);
    d = opendir(dir);
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        unsigned char *buf;
        size_t len = 0;
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".gz") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        buf = gunzip_file(path, &len);
        CHECK_MSG(buf != NULL && len > 0, "%s: unreadable", path);
        if (!buf)
            continue;
        printf("%s: %zu bytes\n", path, len);
        fflush(stdout);
        one(buf, len);   /* a crash or abort ends the program: a failure */
        CHECK(1);
        free(buf);
        ran++;
    }
    closedir(d);
    return ran;
}

int
main(void)
{
    struct pmp_error err = {0};

    /* A message quoting a hostile name stays one line. */
    pmp_error_set(&err, PMP_E_CORRUPT, "bad name '%s'", "a\nb\tc\x7f");
    CHECK_STR(err.msg, "bad name 'a?b?c?'");
    if (access("tests/targets/bin/gohello", R_OK) == 0) {
        setenv("PMPROF_FUZZ_GOEXE", "tests/targets/bin/gohello", 1);
        fuzz_gopclntab_init(NULL, NULL);
        CHECK(run_dir("gopclntab", fuzz_gopclntab_one) > 0);
    } else {
        printf("gopclntab inputs skipped: tests/targets/bin/gohello not built\n");
    }
    run_dir("core", fuzz_core_one);
    return unit_summary();
}

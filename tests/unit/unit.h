/*
 * unit.h: a tiny header-only check helper for the C unit tests.
 *
 *   CHECK(cond)                  count a pass, or print the failed condition
 *   CHECK_MSG(cond, "fmt", ...)  the same, with a printf-style detail
 *   CHECK_EQ_INT(a, b)           integers (as long long), both printed on
 *                                failure
 *   CHECK_EQ_U64(a, b)           unsigned 64-bit, printed in hex
 *   CHECK_STR(a, b)              strings (NULL allowed), both printed
 *   return unit_summary();       prints exactly one final line
 *                                "N passed, M failed"; 1 on any failure
 *   UNIT_SKIP                    exit status for "skipped" (make test-unit
 *                                reports 77 as a skip)
 *
 * Each CHECK returns nothing and never aborts, so one run reports every
 * failure.  Failures go to stderr as "FAIL file:line: expr[: detail]".
 *
 * Owns: the pass/fail counters of one test program.  They are the only
 * mutable file-scope state allowed in tests; include this header from the
 * test's single translation unit only.  Must not: depend on pmprof.
 */
#ifndef PMP_UNIT_H
#define PMP_UNIT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNIT_SKIP 77

static struct {
    int passed, failed;
} unit_counts __attribute__((unused));

static inline int __attribute__((format(printf, 4, 5)))
unit_check_(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        unit_counts.passed++;
        return 1;
    }
    unit_counts.failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

static inline int
unit_check_int_(long long a, long long b, const char *ea, const char *eb,
                const char *file, int line)
{
    return unit_check_(a == b, file, line, "%s == %s: %lld != %lld", ea, eb,
                       a, b);
}

static inline int
unit_check_u64_(uint64_t a, uint64_t b, const char *ea, const char *eb,
                const char *file, int line)
{
    return unit_check_(a == b, file, line,
                       "%s == %s: 0x%llx != 0x%llx", ea, eb,
                       (unsigned long long)a, (unsigned long long)b);
}

static inline int
unit_check_str_(const char *a, const char *b, const char *ea, const char *eb,
                const char *file, int line)
{
    int ok = (a == b) || (a && b && strcmp(a, b) == 0);

    return unit_check_(ok, file, line, "%s == %s: %s%s%s != %s%s%s", ea, eb,
                       a ? "\"" : "", a ? a : "NULL", a ? "\"" : "",
                       b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
}

/* Prints "N passed, M failed" (the last line of every unit test). */
static inline int
unit_summary(void)
{
    fflush(stderr);
    printf("%d passed, %d failed\n", unit_counts.passed, unit_counts.failed);
    fflush(stdout);
    return unit_counts.failed ? 1 : 0;
}

#define CHECK(cond) \
    unit_check_((cond) ? 1 : 0, __FILE__, __LINE__, "%s", #cond)
/* fmt must be a string literal. */
#define CHECK_MSG(cond, fmt, ...) \
    unit_check_((cond) ? 1 : 0, __FILE__, __LINE__, "%s: " fmt, #cond, \
                ##__VA_ARGS__)
#define CHECK_EQ_INT(a, b) \
    unit_check_int_((long long)(a), (long long)(b), #a, #b, __FILE__, \
                    __LINE__)
#define CHECK_EQ_U64(a, b) \
    unit_check_u64_((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, \
                    __LINE__)
#define CHECK_STR(a, b) \
    unit_check_str_((a), (b), #a, #b, __FILE__, __LINE__)

#endif /* PMP_UNIT_H */

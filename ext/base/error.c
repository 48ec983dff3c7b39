/*
 * error.c: struct pmp_error and the PMP_ERRORS message table.
 *
 * Owns: formatting of error details.  Must not: print anything; callers
 * decide (module.c turns errors into Python exceptions in one place).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pmprof-internal.h"

static const char *const messages[] = {
#define PMP_ERR_MSG_(name, msg) msg,
    PMP_ERRORS(PMP_ERR_MSG_)
#undef PMP_ERR_MSG_
};

const char *
pmp_strerror(int code)
{
    int idx = -code;

    if (idx < 0 || idx >= PMP_E_COUNT_)
        return "unknown error";
    return messages[idx];
}

static int
verror(struct pmp_error *err, int code, int errnum, const char *fmt,
       va_list ap)
{
    size_t n;

    if (!err)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    if (errnum) {
        n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
                 strerror(errnum));
    }
    /* One line, whatever a hostile target put into a name or path that
       the message quotes (a Go function name, an NT_FILE path). */
    for (n = 0; err->msg[n]; n++)
        if ((unsigned char)err->msg[n] < 0x20 || err->msg[n] == 0x7f)
            err->msg[n] = '?';
    return code;
}

int
pmp_error_set(struct pmp_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = verror(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int
pmp_error_errno(struct pmp_error *err, int code, int errnum, const char *fmt,
                ...)
{
    va_list ap;

    va_start(ap, fmt);
    code = verror(err, code, errnum, fmt, ap);
    va_end(ap);
    return code;
}

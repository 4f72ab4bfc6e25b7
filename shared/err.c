/* err.c - struct mn_err filling. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

#include "mn.h"

int
mn_err_set(struct mn_err *err, int status, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    err->status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

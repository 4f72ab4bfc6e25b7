/* err.h - error details handed back to a caller: an HTTP-ish status (or a
 * Pusher code), the offending field, and a bounded message. */
#ifndef MN_ERR_H
#define MN_ERR_H

struct mn_err {
    int status;    /* HTTP status, Pusher error code, or 0 */
    char msg[256]; /* human readable, never holds a secret */
};

/* Fills err (may be NULL) and returns -1, so callers can `return mn_err_set(...)`. */
int mn_err_set(struct mn_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

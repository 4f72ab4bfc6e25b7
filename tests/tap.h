/* tap.h - a tiny TAP producer for unit tests: plan(), ok(), is_int(),
 * is_str(), done_testing(). Header-only; each test is one program. */
#ifndef MN_TAP_H
#define MN_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_planned, tap_run, tap_failed;

static inline void
plan(int n)
{
    tap_planned = n;
    printf("1..%d\n", n);
}

static inline void __attribute__((format(printf, 2, 0)))
tap_vreport(bool pass, const char *fmt, va_list ap)
{
    tap_run++;
    if (!pass)
        tap_failed++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_run);
    vprintf(fmt, ap);
    printf("\n");
}

static inline bool __attribute__((format(printf, 2, 3)))
ok(bool pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(pass, fmt, ap);
    va_end(ap);
    return pass;
}

static inline bool __attribute__((format(printf, 3, 4)))
is_int(long long got, long long want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(got == want, fmt, ap);
    va_end(ap);
    if (got != want)
        printf("#   got %lld, want %lld\n", got, want);
    return got == want;
}

static inline bool __attribute__((format(printf, 3, 4)))
is_str(const char *got, const char *want, const char *fmt, ...)
{
    bool pass = got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want;
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        printf("#   got \"%s\"\n#  want \"%s\"\n", got ? got : "(null)",
               want ? want : "(null)");
    return pass;
}

static inline int
done_testing(void)
{
    if (tap_planned == 0)
        printf("1..%d\n", tap_run);
    else if (tap_run != tap_planned)
        printf("# planned %d tests, ran %d\n", tap_planned, tap_run);
    return tap_failed || (tap_planned && tap_run != tap_planned) ? 1 : 0;
}

#endif

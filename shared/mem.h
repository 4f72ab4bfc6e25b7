/* mem.h - allocation that cannot fail: out of memory logs and aborts, so
 * callers never check. Sizes from the network must be capped before these. */
#ifndef MN_MEM_H
#define MN_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copy of (s, len) with a NUL after it. */
char *xstrndup(const char *s, size_t len);

#endif

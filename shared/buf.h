/* buf.h - a growable byte buffer for text we build. Appends check for size
 * overflow and never fail (allocation goes through mem.h). The content is
 * always NUL-terminated so it can be printed; len excludes the NUL.
 * An optional headroom reserves bytes in front (LWS_PRE for frames). */
#ifndef MN_BUF_H
#define MN_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *base;  /* allocation start; data = base + head */
    size_t head; /* reserved headroom in front of the data */
    size_t len;  /* bytes of data */
    size_t cap;  /* bytes allocated after head */
};

#define BUF_INIT                                                                         \
    {                                                                                    \
        NULL, 0, 0, 0                                                                    \
    }

/* A buffer with `head` bytes reserved in front of the data. */
void buf_init_head(struct buf *b, size_t head);
static inline char *
buf_data(const struct buf *b)
{
    return b->base ? b->base + b->head : (char *)"";
}
void buf_reserve(struct buf *b, size_t more);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included, escaping as RFC 8259
 * requires. Bytes >= 0x80 are copied as they are (input must be UTF-8). */
void buf_json_str(struct buf *b, const char *s, size_t len);
void buf_reset(struct buf *b);
/* Hands the data (with its headroom) to the caller, who frees base with free();
 * the buffer is empty afterwards. Returns the base pointer. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

#endif

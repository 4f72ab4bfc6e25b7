/* test_buf.c - buf.c: appends, printf, JSON string escaping, headroom. */
#include <string.h>

#include "buf.h"
#include "tap.h"
#include "mn.h"

struct esc_case {
    const char *in;
    size_t len;
    const char *want;
};

static const struct esc_case cases[] = {
    {"plain", 5, "\"plain\""},
    {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
    {"\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\""},
    {"\x01\x1f", 2, "\"\\u0001\\u001f\""},
    {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
    {"", 0, "\"\""},
};

int
main(void)
{
    struct buf b = BUF_INIT;

    plan((int)ARRAY_LEN(cases) + 4);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        buf_reset(&b);
        buf_json_str(&b, cases[i].in, cases[i].len);
        is_str(buf_data(&b), cases[i].want, "escape case %zu", i);
    }
    buf_reset(&b);
    buf_printf(&b, "%d-%s", 42, "x");
    buf_puts(&b, "yz");
    is_str(buf_data(&b), "42-xyz", "printf then puts");
    is_int((long long)b.len, 6, "length counts the bytes, not the NUL");
    buf_free(&b);

    buf_init_head(&b, 16);
    buf_puts(&b, "frame");
    ok(buf_data(&b) == b.base + 16, "headroom sits in front of the data");
    for (int i = 0; i < 10000; i++)
        buf_putc(&b, 'x');
    is_int((long long)b.len, 10005, "growth keeps the data");
    buf_free(&b);
    return done_testing();
}

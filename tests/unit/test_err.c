/* test_err.c - err.c and mem.c: mn_err_set fills and bounds the message and
 * returns -1; NULL err is allowed; the x* allocators copy exactly. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "tap.h"
#include "mn.h"

int
main(void)
{
    struct mn_err err = {0, ""};
    char big[600];
    char *s;

    plan(8);
    is_int(mn_err_set(&err, 401, "Invalid %s", "signature"), -1, "returns -1");
    is_int(err.status, 401, "status kept");
    is_str(err.msg, "Invalid signature", "message formatted");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mn_err_set(&err, 400, "%s", big);
    is_int((long long)strlen(err.msg), (long long)sizeof(err.msg) - 1,
           "a long message is truncated to the buffer");
    is_int(mn_err_set(NULL, 400, "ignored"), -1, "NULL err is allowed");
    s = xstrndup("abcdef", 3);
    is_str(s, "abc", "xstrndup copies len bytes and terminates");
    free(s);
    s = xstrdup("");
    is_str(s, "", "xstrdup of an empty string");
    free(s);
    s = xcalloc(16, 1);
    ok(s[0] == 0 && s[15] == 0, "xcalloc zeroes");
    free(s);
    return done_testing();
}

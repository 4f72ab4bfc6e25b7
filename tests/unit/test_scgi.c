/* test_scgi.c - api/scgi_parse.c: well-formed requests (whole, and fed byte
 * by byte: every proper prefix asks for more), the header values found, and
 * RELIABILITY R12's malformed framing: huge lengths, leading zeros, lengths
 * that do not match, a missing ',', a 1 MiB header block, NUL in names (an
 * empty name), CONTENT_LENGTH missing, late or malformed, SCGI missing, a
 * name without its value, duplicates. */
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "scgi.h"
#include "tap.h"
#include "mn.h"

/* Builds "LEN:" + headers + "," + body; headers given as "N\0V\0..." with its
 * length. The caller frees the result. */
static char *
netstring(const char *headers, size_t hlen, const char *body, size_t *out_len)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof(prefix), "%zu:", hlen);
    size_t blen = strlen(body), len = (size_t)n + hlen + 1 + blen;
    char *s = xmalloc(len + 1);

    memcpy(s, prefix, (size_t)n);
    memcpy(s + n, headers, hlen);
    s[(size_t)n + hlen] = ',';
    memcpy(s + n + hlen + 1, body, blen + 1);
    *out_len = len;
    return s;
}

#define H(lit) lit, sizeof(lit) - 1

static void
test_good(void)
{
    static const char hdr[] = "CONTENT_LENGTH\0"
                              "5\0"
                              "SCGI\0"
                              "1\0"
                              "REQUEST_METHOD\0"
                              "POST\0"
                              "REQUEST_URI\0"
                              "/pusher/apps/1/events?a=b\0"
                              "SCRIPT_NAME\0"
                              "/pusher\0"
                              "PATH_INFO\0"
                              "/apps/1/events\0"
                              "QUERY_STRING\0"
                              "a=b\0"
                              "HTTP_X_ANYTHING\0"
                              "\0";
    struct scgi_req r;
    const char *why;
    size_t len, hlen, more = 0;
    char *s = netstring(H(hdr), "hello", &len);

    is_int(scgi_parse(s, len, &r, &why), SCGI_DONE, "well-formed request parses");
    is_int((long long)r.content_length, 5, "CONTENT_LENGTH read");
    is_str(r.method, "POST", "REQUEST_METHOD");
    is_str(r.request_uri, "/pusher/apps/1/events?a=b", "REQUEST_URI");
    is_str(r.script_name, "/pusher", "SCRIPT_NAME");
    is_str(r.path_info, "/apps/1/events", "PATH_INFO");
    is_str(r.query, "a=b", "QUERY_STRING");
    ok(memcmp(s + r.header_len, "hello", 5) == 0, "the body starts at header_len");
    hlen = r.header_len;
    for (size_t i = 0; i < hlen; i++)
        more += scgi_parse(s, i, &r, &why) == SCGI_MORE;
    is_int((long long)more, (long long)hlen,
           "each of the %zu proper prefixes asks for more", hlen);
    free(s);

    s = netstring(H("CONTENT_LENGTH\0"
                    "0\0"
                    "SCGI\0"
                    "1\0"),
                  "", &len);
    ok(scgi_parse(s, len, &r, &why) == SCGI_DONE && r.method == NULL &&
           r.content_length == 0,
       "minimal request: absent headers are NULL");
    free(s);
}

struct bad_case {
    const char *what;
    const char *bytes;
    size_t len;
};

#define RAW(what, lit)                                                                   \
    {                                                                                    \
        what, lit, sizeof(lit) - 1                                                       \
    }

static const struct bad_case raw_cases[] = {
    RAW("huge length", "99999999999999999999:"),
    RAW("length past 64 KiB", "65537:"),
    RAW("leading zero", "024:CONTENT_LENGTH\0"
                        "0\0"
                        "SCGI\0"
                        "1\0,"),
    RAW("zero length", "0:,"),
    RAW("empty length", ":CONTENT_LENGTH\0"
                        "0\0,"),
    RAW("non-digit length", "2x:"),
    RAW("negative length", "-1:"),
    RAW("length too short (no ',' where it ends)", "10:CONTENT_LENGTH\0"
                                                   "0\0"
                                                   "SCGI\0"
                                                   "1\0,"),
    RAW("length too long (',' inside)", "25:CONTENT_LENGTH\0"
                                        "0\0"
                                        "SCGI\0"
                                        "1\0,xx"),
    RAW("missing comma", "24:CONTENT_LENGTH\0"
                         "0\0"
                         "SCGI\0"
                         "1\0;"),
    RAW("NUL in names (empty name)", "26:CONTENT_LENGTH\0"
                                     "0\0"
                                     "SCGI\0"
                                     "1\0\0\0,"),
    RAW("name without value", "26:CONTENT_LENGTH\0"
                              "0\0"
                              "SCGI\0"
                              "1\0"
                              "X\0,"),
    RAW("content not ending in NUL", "23:CONTENT_LENGTH\0"
                                     "0\0"
                                     "SCGI\0"
                                     "1,"),
    RAW("CONTENT_LENGTH not first", "24:SCGI\0"
                                    "1\0"
                                    "CONTENT_LENGTH\0"
                                    "0\0,"),
    RAW("CONTENT_LENGTH missing", "7:SCGI\0"
                                  "1\0,"),
    RAW("CONTENT_LENGTH twice", "41:CONTENT_LENGTH\0"
                                "0\0"
                                "SCGI\0"
                                "1\0"
                                "CONTENT_LENGTH\0"
                                "0\0,"),
    RAW("CONTENT_LENGTH leading zero", "25:CONTENT_LENGTH\0"
                                       "05\0"
                                       "SCGI\0"
                                       "1\0,"),
    RAW("CONTENT_LENGTH negative", "25:CONTENT_LENGTH\0"
                                   "-5\0"
                                   "SCGI\0"
                                   "1\0,"),
    RAW("CONTENT_LENGTH empty", "23:CONTENT_LENGTH\0\0"
                                "SCGI\0"
                                "1\0,"),
    RAW("CONTENT_LENGTH 20 digits", "43:CONTENT_LENGTH\0"
                                    "99999999999999999999\0"
                                    "SCGI\0"
                                    "1\0,"),
    RAW("SCGI missing", "17:CONTENT_LENGTH\0"
                        "0\0,"),
    RAW("SCGI not 1", "24:CONTENT_LENGTH\0"
                      "0\0"
                      "SCGI\0"
                      "2\0,"),
    RAW("name with a space", "30:CONTENT_LENGTH\0"
                             "0\0"
                             "SCGI\0"
                             "1\0"
                             "A B\0"
                             "v\0,"),
    RAW("REQUEST_URI twice", "52:CONTENT_LENGTH\0"
                             "0\0"
                             "SCGI\0"
                             "1\0"
                             "REQUEST_URI\0"
                             "/\0"
                             "REQUEST_URI\0"
                             "/\0,"),
};

static void
test_bad(void)
{
    struct scgi_req r;
    const char *why = NULL;

    for (size_t i = 0; i < ARRAY_LEN(raw_cases); i++) {
        enum scgi_status st = scgi_parse(raw_cases[i].bytes, raw_cases[i].len, &r, &why);
        ok(st == SCGI_BAD && why != NULL, "refused: %s (%s)", raw_cases[i].what,
           why ? why : "-");
    }
}

/* A header block of 1 MiB is refused from its length alone, before any of it
 * is read. */
static void
test_big(void)
{
    size_t n = (size_t)1 << 20;
    char *s = xmalloc(n + 16);
    struct scgi_req r;
    const char *why;
    int len = snprintf(s, 16, "%zu:", n);

    memset(s + len, 'A', n);
    is_int(scgi_parse(s, (size_t)len, &r, &why), SCGI_BAD,
           "1 MiB header block refused at its length");
    is_int(scgi_parse(s, 3, &r, &why), SCGI_MORE, "its first digits alone are fine");
    free(s);
}

int
main(void)
{
    test_good();
    test_bad();
    test_big();
    return done_testing();
}

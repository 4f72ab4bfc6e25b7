/* scgi.h - the SCGI request header (python.ca/scgi/protocol.txt): a netstring
 * "LEN:" + headers + "," where headers are NUL-terminated name/value pairs,
 * CONTENT_LENGTH first, then the body. The parser is pure (no I/O, no
 * allocation) and strict: it refuses rather than guesses. */
#ifndef MN_SCGI_H
#define MN_SCGI_H

#include <stddef.h>

#define SCGI_HEADERS_MAX 65536 /* bytes of the header netstring's content */

enum scgi_status {
    SCGI_MORE = 0, /* a valid beginning: read more */
    SCGI_DONE,     /* the header netstring is complete and valid */
    SCGI_BAD,      /* refused: *why says what */
};

/* What the web server sent; values point into the caller's buffer and are
 * NUL-terminated there. NULL when absent. */
struct scgi_req {
    size_t header_len;     /* bytes of the netstring, "," included: the body follows */
    size_t content_length; /* CONTENT_LENGTH */
    const char *method;    /* REQUEST_METHOD */
    const char *request_uri;
    const char *script_name;
    const char *path_info;
    const char *query; /* QUERY_STRING */
};

/* Parses the first len bytes a connection sent (all of them, from the
 * start: call again with more). Refused: a length that is empty, has a
 * leading zero, is not decimal or passes SCGI_HEADERS_MAX; a missing ','
 * where the length says the content ends; an empty name, a name with bytes
 * outside '!'..'~', or an odd number of strings (a name without its value);
 * CONTENT_LENGTH missing, not first, or not a plain decimal; SCGI missing or
 * not "1"; any header we use given twice. */
enum scgi_status scgi_parse(const char *buf, size_t len, struct scgi_req *out,
                            const char **why);

#endif

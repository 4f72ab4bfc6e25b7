/* fcgi_gate.h - the FastCGI request gate: checks the records of one request
 * as they arrive from the web server, before libfcgi parses any of it.
 *
 * libfcgi 2.4.2 trusts its input: a name-value length of up to 2^31 is
 * malloc'ed before the bytes arrive (and an allocation failure is an assert,
 * which aborts the daemon); a management record naming FCGI_MAX_CONNS more
 * than three times overflows a 64-byte stack buffer; a read without data
 * blocks forever. So the request is read by us, with a deadline, record by
 * record, and passed on only once it is complete and every length in it has
 * been checked against what is really there. Pure: no I/O. */
#ifndef MN_FCGI_GATE_H
#define MN_FCGI_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define FCGI_GATE_PARAMS_MAX 65536 /* bytes of FCGI_PARAMS content */
#define FCGI_GATE_VALUES_MAX 3     /* pairs in an FCGI_GET_VALUES record */

enum fcgi_gate_status {
    FCGI_GATE_MORE = 0, /* a valid beginning: read more */
    FCGI_GATE_DONE,     /* the request is complete: out holds it */
    FCGI_GATE_BAD,      /* refused: why says what; close the connection */
};

struct fcgi_gate {
    struct buf out;    /* the checked records, for libfcgi */
    struct buf params; /* FCGI_PARAMS content, checked when it ends */
    size_t max_body;   /* FCGI_STDIN bytes kept; one more means "too large" */
    size_t body;       /* FCGI_STDIN bytes kept so far */
    unsigned id;       /* the request id of FCGI_BEGIN_REQUEST; 0 before */
    int stage;         /* 0 before BEGIN_REQUEST, 1 params, 2 stdin, 3 done */
    bool over;         /* the body passed max_body: its stream was ended early */
    const char *why;   /* with FCGI_GATE_BAD */
};

void fcgi_gate_init(struct fcgi_gate *g, size_t max_body);
void fcgi_gate_free(struct fcgi_gate *g);

/* Takes the whole records at the start of (p, len) and sets *used to their
 * size (a record cut short is left for the next call, with more bytes).
 * Rules: version 1 only; management records (id 0) of FCGI_GET_VALUES must
 * hold at most FCGI_GATE_VALUES_MAX well-formed pairs; one
 * FCGI_BEGIN_REQUEST (8 bytes, id > 0) first; then only FCGI_PARAMS and
 * FCGI_STDIN of that id, in that order; the parameters at most
 * FCGI_GATE_PARAMS_MAX bytes of well-formed name-value pairs. Done at the
 * empty FCGI_STDIN record, or once max_body + 1 body bytes are in (over:
 * the body's stream is ended there, so the answer is a 413; the web server's
 * remaining bytes are for the caller to drain). FCGI_ABORT_REQUEST, another
 * request id or any other record type is refused. */
enum fcgi_gate_status fcgi_gate_feed(struct fcgi_gate *g, const unsigned char *p,
                                     size_t len, size_t *used);

#endif

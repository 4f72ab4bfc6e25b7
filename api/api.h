/* api.h - micronotifier-api's parts: the daemon's shared state (main.c),
 * the listening sockets (listen.c), the transport-free front (front.c: CGI
 * variables in, a CGI response out, through the shared REST core and the
 * bus), and the two front ends (fcgi.c over libfcgi, scgi.c over our own
 * parser). What is here is shared by the request threads, read-only once
 * they run. */
#ifndef MN_API_H
#define MN_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "bus.h"
#include "config.h"
#include "err.h"

#define API_READ_DEADLINE_MS 5000        /* a whole SCGI request; each FastCGI read */
#define API_DRAIN_MAX ((size_t)16 << 20) /* body bytes read and dropped after a 413 */

struct api {
    const struct mn_config *cfg;
    struct bus *bus;
    int stop_fd; /* an eventfd, readable once the daemon stops */
};

/* One request as the web server hands it over: CGI variables (NULL when
 * absent, NUL-terminated, borrowed) and the body. */
struct api_req {
    const char *method;      /* REQUEST_METHOD */
    const char *request_uri; /* REQUEST_URI: the raw path and query */
    const char *script_name; /* SCRIPT_NAME */
    const char *path_info;   /* PATH_INFO */
    const char *query;       /* QUERY_STRING, raw */
    const char *body;
    size_t body_len;
};

/* --- front.c --- */

/* The path the app signed: REQUEST_URI's path (or SCRIPT_NAME + PATH_INFO),
 * without the configured api.prefix, or else without SCRIPT_NAME when what
 * follows it is /apps/... Appended to path. */
void front_path(const struct mn_config *cfg, const struct api_req *r, struct buf *path);
/* Runs r through the REST core with the bus as backend (blocking) and
 * appends the whole CGI response ("Status: ..." headers, body) to out. */
void front_handle(const struct api *a, const struct api_req *r, struct buf *out);
/* Appends a CGI response of status with a text/plain body. */
void front_text(struct buf *out, int status, const char *text);
/* "Request body too large\n": what the gateway's own port answers too. */
void front_too_large(struct buf *out);
/* Parses a CONTENT_LENGTH value: decimal digits, no sign, no leading zero
 * (but "0"), at most 15 digits. -1 when malformed. */
int front_content_length(const char *s, size_t *out);

/* --- listen.c --- */

/* A listening socket for addr: "host:port" (TCP) or a Unix socket path,
 * created with mode (a stale socket file is replaced; a live one, or a file
 * that is not a socket, is refused). Non-blocking, close-on-exec. Returns the
 * descriptor, or -1 with err. */
int listen_open(const char *addr, unsigned mode, struct mn_err *err);
/* Closes fd and removes addr's socket file when it is a Unix socket. */
void listen_close(int fd, const char *addr);
/* Waits for a connection on fd, or for stop_fd. Returns a blocking,
 * close-on-exec connection, or -1 once stop_fd is readable. */
int listen_accept(int fd, int stop_fd);
/* Appends what arrives on fd (at most max bytes, NUL-terminated) before
 * the monotonic deadline (ms). Returns the byte count, 0 at EOF, -1 on error
 * or at the deadline. */
ssize_t listen_read_some(int fd, struct buf *in, size_t max, uint64_t deadline);
/* Sets SO_RCVTIMEO and SO_SNDTIMEO of a connection to ms. */
void listen_timeouts(int fd, unsigned ms);

/* --- the front ends: a pool of request threads on one listening socket --- */

struct front {
    struct api *a;
    int fd;           /* the listening socket (the caller's) */
    const char *name; /* "fastcgi", "scgi": for logs */
    size_t n;         /* threads started */
    pthread_t *threads;
};

typedef void *front_run_fn(void *front);
/* front.c: starts cfg->api.threads threads running run(f). NULL (logged)
 * when none could start. */
struct front *front_start(struct api *a, int fd, const char *name, front_run_fn *run);
/* Waits for the threads (they return once a->stop_fd is readable) and frees
 * f; front_join(NULL) does nothing. */
void front_join(struct front *f);

/* fcgi.c: FastCGI through libfcgi's FCGX_*_r calls, one request per
 * connection. */
front_run_fn fcgi_run;
/* fcgi.c: libfcgi's process-wide setup and teardown (once each). */
int fcgi_init(void);
void fcgi_shutdown(void);
/* scgi.c: SCGI with the parser of scgi.h, one request per connection. */
front_run_fn scgi_run;

#endif

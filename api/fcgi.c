/* fcgi.c - the FastCGI front end over libfcgi 2.4.2 (Debian 12): each
 * request thread has its own FCGX_Request and uses only the thread-safe
 * FCGX_*_r calls. One request per connection (FCGI_KEEP_CONN is not
 * honoured: the web server opens a new connection, and no thread sits on an
 * idle one).
 *
 * We accept connections ourselves (listen.c) and hand each to libfcgi by
 * setting the request's ipcFd (with keepConnection, so FCGX_Accept_r reads
 * it instead of accepting, and detached, so a close is a plain close): this
 * is the only way to give libfcgi a read deadline (SO_RCVTIMEO on the
 * connection; a Unix socket's accepted end does not inherit it from the
 * listener), a way out at shutdown, and no 2 s lingering close per bad
 * connection. It relies on those three fields of FCGX_Request, which 2.4.2's
 * header exposes; FCGX_Request's listen_sock is -1, so libfcgi never accepts
 * by itself (after a broken connection FCGX_Accept_r returns an error and
 * we accept the next one).
 *
 * Known limit of libfcgi itself (all versions to 2.4.6): a management record
 * (FCGI_GET_VALUES) naming FCGI_MAX_CONNS more than three times overflows a
 * 64-byte stack buffer inside the library. Random and truncated records do
 * not reach it; keep the socket a Unix socket only the web server can open
 * (api.socket-mode), which is the default. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <fcgios.h>

#include "api.h"
#include "log.h"
#include "mn.h"

#define READ_CHUNK 16384

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
fcgi_init(void)
{
    return FCGX_Init() == 0 ? 0 : -1;
}

void
fcgi_shutdown(void)
{
    OS_LibShutdown(); /* frees what FCGX_Init allocated */
}

/* Reads FCGI_STDIN into body until its end, or until body holds max bytes.
 * Returns -1 when the deadline passed or the stream broke; else 0, with *eof
 * telling whether the end of FCGI_STDIN was read. */
static int
read_body(FCGX_Stream *in, struct buf *body, size_t max, uint64_t deadline, bool *eof)
{
    *eof = false;
    while (body->len < max) {
        size_t want = max - body->len;
        int n;

        if (now_ms() >= deadline)
            return -1;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        buf_reserve(body, want);
        n = FCGX_GetStr(buf_data(body) + body->len, (int)want, in);
        if (n < 0 || FCGX_GetError(in) != 0)
            return -1;
        body->len += (size_t)n;
        if ((size_t)n < want) {
            *eof = true;
            break;
        }
    }
    return 0;
}

/* An answer given before FCGI_STDIN ended (a 413, a refusal): the web server
 * may still be sending. Reading, and dropping, the rest (within bounds) lets
 * it read our answer rather than a broken pipe. */
static void
drain(FCGX_Request *req, uint64_t deadline)
{
    struct buf sink = BUF_INIT;
    size_t drained = 0;
    bool eof = false;

    FCGX_FFlush(req->out);
    while (!eof && drained < API_DRAIN_MAX &&
           read_body(req->in, &sink, READ_CHUNK, deadline, &eof) == 0) {
        drained += sink.len;
        sink.len = 0;
    }
    buf_free(&sink);
}

static void
fill_req(FCGX_Request *req, const struct buf *body, struct api_req *r)
{
    r->method = FCGX_GetParam("REQUEST_METHOD", req->envp);
    r->request_uri = FCGX_GetParam("REQUEST_URI", req->envp);
    r->script_name = FCGX_GetParam("SCRIPT_NAME", req->envp);
    r->path_info = FCGX_GetParam("PATH_INFO", req->envp);
    r->query = FCGX_GetParam("QUERY_STRING", req->envp);
    r->body = buf_data(body);
    r->body_len = body->len;
}

/* One request: its variables, its body (capped), the answer. The body is
 * read to the end of FCGI_STDIN (its empty record) before answering, also
 * when CONTENT_LENGTH is 0: Apache sends that record after the parameters,
 * and closing before it arrives breaks its pipe (a 503 to the client). */
static void
serve(struct api *a, FCGX_Request *req)
{
    uint64_t deadline = now_ms() + API_READ_DEADLINE_MS;
    const char *role = FCGX_GetParam("FCGI_ROLE", req->envp);
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
    size_t max = a->cfg->max_request_bytes, want = max;
    struct buf body = BUF_INIT, out = BUF_INIT;
    bool have_cl = cl != NULL && cl[0] != '\0', eof = false;
    struct api_req r = {0};

    if (role == NULL || strcmp(role, "RESPONDER") != 0) {
        front_text(&out, 400, "Only the FastCGI responder role is served\n");
    } else if (have_cl && front_content_length(cl, &want) < 0) {
        front_text(&out, 400, "Invalid CONTENT_LENGTH\n");
    } else if (want > max) {
        front_too_large(&out);
    } else if (read_body(req->in, &body, want + 1, deadline, &eof) < 0) {
        log_debug("fastcgi: dropped a request: body not read within the deadline");
        goto done; /* nothing sensible to answer on a broken stream */
    } else if (body.len > max) {
        front_too_large(&out);
    } else if (have_cl && body.len != want) {
        front_text(&out, 400, "Request body and CONTENT_LENGTH differ\n");
    } else {
        fill_req(req, &body, &r);
        front_handle(a, &r, &out);
    }
    FCGX_PutStr(buf_data(&out), (int)out.len, req->out);
    if (!eof)
        drain(req, deadline);
done:
    buf_free(&body);
    buf_free(&out);
}

void *
fcgi_run(void *arg)
{
    struct front *f = arg;
    FCGX_Request req;
    int fd;

    if (FCGX_InitRequest(&req, -1, 0) != 0) {
        log_err("fastcgi: cannot initialise a request");
        return NULL;
    }
    while ((fd = listen_accept(f->fd, f->a->stop_fd)) >= 0) {
        listen_timeouts(fd, API_READ_DEADLINE_MS);
        req.ipcFd = fd;
        req.keepConnection = 1; /* FCGX_Accept_r: read this one, do not close it */
        req.detached = 1;       /* and when it closes: no lingering close */
        if (FCGX_Accept_r(&req) == 0) {
            req.keepConnection = 0;
            serve(f->a, &req);
        } else {
            log_debug("fastcgi: dropped a connection: no valid request on it");
        }
        /* Writes FCGI_END_REQUEST and closes the connection (already closed
         * when FCGX_Accept_r failed). */
        FCGX_Finish_r(&req);
    }
    FCGX_Free(&req, 1);
    return NULL;
}

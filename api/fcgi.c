/* fcgi.c - the FastCGI front end over libfcgi 2.4.2 (Debian 12): each request
 * thread has its own FCGX_Request and uses only the thread-safe FCGX_*_r calls.
 *
 * The network side is ours: the thread accepts a connection (listen.c) and
 * reads one request's records through the gate (fcgi_gate.c) within one
 * deadline, checking every record and every name-value length before libfcgi
 * sees a byte (libfcgi aborts or overflows on lengths it trusts, and blocks
 * without a deadline). The checked request is then handed to libfcgi from
 * memory: a memfd opened O_APPEND holds the request, FCGX_Accept_r parses it
 * (the request's ipcFd is set to a dup of the memfd, with keepConnection so
 * that FCGX_Accept_r reads it instead of accepting, and detached so that its
 * close is a plain close: fields 2.4.2's header exposes), our answer and
 * FCGI_END_REQUEST are appended after it, and we send those bytes back.
 * One request per connection: FCGI_KEEP_CONN is not honoured (the web server
 * opens a new connection; no thread waits on an idle one). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <fcgios.h>

#include "clock.h"
#include "api.h"
#include "fcgi_gate.h"
#include "log.h"
#include "mn.h"

#define READ_CHUNK 16384

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
 * Returns -1 when the stream broke, else 0. (The request is in memory.) */
static int
read_body(FCGX_Stream *in, struct buf *body, size_t max)
{
    while (body->len < max) {
        size_t want = max - body->len;
        int n;

        if (want > READ_CHUNK)
            want = READ_CHUNK;
        buf_reserve(body, want);
        n = FCGX_GetStr(buf_data(body) + body->len, (int)want, in);
        if (n < 0 || FCGX_GetError(in) != 0)
            return -1;
        body->len += (size_t)n;
        if ((size_t)n < want)
            break; /* the end of FCGI_STDIN */
    }
    return 0;
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

/* One request (parsed by libfcgi from memory): its variables, its body
 * (capped), the answer. */
static void
serve(struct api *a, FCGX_Request *req)
{
    const char *role = FCGX_GetParam("FCGI_ROLE", req->envp);
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
    size_t max = a->cfg->max_request_bytes, want = max;
    struct buf body = BUF_INIT, out = BUF_INIT;
    bool have_cl = cl != NULL && cl[0] != '\0';
    struct api_req r = {0};

    if (role == NULL || strcmp(role, "RESPONDER") != 0) {
        front_text(&out, 400, "Only the FastCGI responder role is served\n");
    } else if (have_cl && front_content_length(cl, &want) < 0) {
        front_text(&out, 400, "Invalid CONTENT_LENGTH\n");
    } else if (want > max) {
        front_too_large(&out);
    } else if (read_body(req->in, &body, want + 1) < 0) {
        log_err("fastcgi: libfcgi could not read a checked body");
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
done:
    buf_free(&body);
    buf_free(&out);
}

static int
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = fd < 0 ? -1 : write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one request through the gate. FCGI_GATE_DONE with the checked
 * request in g->out; anything else has been logged. */
static enum fcgi_gate_status
read_request(int fd, struct fcgi_gate *g, uint64_t deadline)
{
    enum fcgi_gate_status st = FCGI_GATE_MORE;
    struct buf raw = BUF_INIT;

    while (st == FCGI_GATE_MORE) {
        ssize_t n = listen_read_some(fd, &raw, READ_CHUNK, deadline);
        size_t used;

        if (n <= 0) {
            log_debug("fastcgi: dropped a connection: %s",
                      n == 0 ? "closed before its request ended"
                             : "no complete request within the deadline");
            break;
        }
        st = fcgi_gate_feed(g, (const unsigned char *)buf_data(&raw), raw.len, &used);
        memmove(buf_data(&raw), buf_data(&raw) + used, raw.len - used);
        raw.len -= used;
    }
    if (st == FCGI_GATE_BAD)
        log_info("fastcgi: refused a request: %s", g->why);
    buf_free(&raw);
    return st;
}

/* libfcgi parses the checked request from the memfd and appends its answer;
 * the answer's bytes are appended to reply. */
static int
run_libfcgi(struct api *a, FCGX_Request *req, const struct buf *in, int memfd,
            struct buf *reply)
{
    off_t end;

    if (ftruncate(memfd, 0) < 0 || write_all(memfd, buf_data(in), in->len) < 0 ||
        lseek(memfd, 0, SEEK_SET) < 0) {
        log_errno("fastcgi: cannot stage a request");
        return -1;
    }
    req->ipcFd = dup(memfd);
    req->keepConnection = 1; /* FCGX_Accept_r: read this one, do not accept */
    req->detached = 1;       /* and close it with a plain close */
    if (req->ipcFd >= 0 && FCGX_Accept_r(req) == 0) {
        req->keepConnection = 0;
        serve(a, req);
    } else {
        log_err("fastcgi: libfcgi refused a checked request");
    }
    FCGX_Finish_r(req); /* FCGI_END_REQUEST, and closes the dup */
    end = lseek(memfd, 0, SEEK_END);
    if (end < (off_t)in->len)
        return -1;
    buf_reserve(reply, (size_t)end - in->len);
    if (pread(memfd, buf_data(reply) + reply->len, (size_t)end - in->len,
              (off_t)in->len) != (ssize_t)((size_t)end - in->len))
        return -1;
    reply->len += (size_t)end - in->len;
    return 0;
}

/* After a 413 the web server may still be sending the body: reading (and
 * dropping) it, within bounds, lets it read our answer rather than a reset. */
static void
drain(int fd, uint64_t deadline)
{
    struct buf sink = BUF_INIT;
    size_t drained = 0;
    ssize_t n;

    while (drained < API_DRAIN_MAX &&
           (n = listen_read_some(fd, &sink, READ_CHUNK, deadline)) > 0) {
        drained += (size_t)n;
        sink.len = 0;
    }
    buf_free(&sink);
}

static void
serve_conn(struct api *a, FCGX_Request *req, int fd, int memfd)
{
    uint64_t deadline = mn_now_ms() + API_READ_DEADLINE_MS;
    struct buf reply = BUF_INIT;
    struct fcgi_gate g;

    fcgi_gate_init(&g, a->cfg->max_request_bytes);
    if (read_request(fd, &g, deadline) == FCGI_GATE_DONE &&
        run_libfcgi(a, req, &g.out, memfd, &reply) == 0) {
        /* SO_SNDTIMEO (listen_timeouts) bounds each send. */
        for (size_t done = 0; done < reply.len;) {
            ssize_t n = send(fd, buf_data(&reply) + done, reply.len - done, MSG_NOSIGNAL);
            if (n <= 0 && !(n < 0 && errno == EINTR))
                break;
            if (n > 0)
                done += (size_t)n;
        }
        if (g.over) {
            shutdown(fd, SHUT_WR); /* the answer is complete */
            drain(fd, deadline);
        }
    }
    fcgi_gate_free(&g);
    buf_free(&reply);
}

void *
fcgi_run(void *arg)
{
    struct front *f = arg;
    FCGX_Request req;
    int fd, memfd = memfd_create("micronotifier-fcgi", MFD_CLOEXEC);

    if (memfd < 0 || fcntl(memfd, F_SETFL, O_APPEND) < 0 ||
        FCGX_InitRequest(&req, -1, 0) != 0) {
        log_errno("fastcgi: cannot start a request thread");
        if (memfd >= 0)
            close(memfd);
        return NULL;
    }
    while ((fd = listen_accept(f->fd, f->a->stop_fd)) >= 0) {
        listen_timeouts(fd, API_READ_DEADLINE_MS);
        serve_conn(f->a, &req, fd, memfd);
        close(fd);
    }
    FCGX_Free(&req, 1);
    close(memfd);
    return NULL;
}

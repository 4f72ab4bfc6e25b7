/* scgi.c - the SCGI front end: each request thread accepts a connection,
 * reads the header netstring and the body within one deadline
 * (API_READ_DEADLINE_MS for the whole request, however slowly it trickles
 * in), answers through front.c and closes: SCGI has one request per
 * connection. Malformed framing gets a 400 and the connection closed; a
 * connection that stops sending is dropped at the deadline. The parsing
 * rules are scgi_parse.c's. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "api.h"
#include "log.h"
#include "scgi.h"
#include "mn.h"

#define READ_CHUNK 16384

static void
write_all(int fd, const struct buf *out)
{
    size_t done = 0;

    /* SO_SNDTIMEO bounds each send (listen_timeouts). */
    while (done < out->len) {
        ssize_t n = send(fd, buf_data(out) + done, out->len - done, MSG_NOSIGNAL);

        if (n <= 0 && !(n < 0 && errno == EINTR))
            return;
        if (n > 0)
            done += (size_t)n;
    }
}

/* After a 413: the web server may still be sending the body. Reading (and
 * dropping) part of it first lets it read our answer instead of a reset. */
static void
drain(int fd, size_t left, uint64_t deadline)
{
    struct buf sink = BUF_INIT;

    shutdown(fd, SHUT_WR);
    while (left > 0) {
        ssize_t n =
            listen_read_some(fd, &sink, left < READ_CHUNK ? left : READ_CHUNK, deadline);

        if (n <= 0)
            break;
        left -= (size_t)n;
        sink.len = 0;
    }
    buf_free(&sink);
}

/* Reads the header netstring; SCGI_DONE with r filled, or why it failed
 * (SCGI_BAD: refused; SCGI_MORE: the connection ended or timed out). */
static enum scgi_status
read_header(int fd, struct buf *in, struct scgi_req *r, uint64_t deadline,
            const char **why)
{
    enum scgi_status st = SCGI_MORE;

    *why = "connection closed before the headers ended";
    while (st == SCGI_MORE) {
        ssize_t n = listen_read_some(fd, in, READ_CHUNK, deadline);

        if (n <= 0) {
            if (n < 0)
                *why = "no complete request within the deadline";
            return SCGI_MORE;
        }
        st = scgi_parse(buf_data(in), in->len, r, why);
    }
    return st;
}

static void
serve(struct api *a, int fd)
{
    uint64_t deadline = mn_now_ms() + API_READ_DEADLINE_MS;
    struct buf in = BUF_INIT, out = BUF_INIT;
    struct api_req ar = {0};
    struct scgi_req r;
    enum scgi_status st;
    const char *why;
    size_t need;

    st = read_header(fd, &in, &r, deadline, &why);
    if (st == SCGI_MORE) {
        log_debug("scgi: dropped a connection: %s", why);
        goto done;
    }
    if (st == SCGI_BAD) {
        log_info("scgi: refused a request: %s", why);
        front_text(&out, 400, "Bad SCGI request\n");
        write_all(fd, &out);
        goto done;
    }
    if (r.content_length > a->cfg->max_request_bytes) {
        front_too_large(&out);
        write_all(fd, &out);
        drain(fd, r.content_length < API_DRAIN_MAX ? r.content_length : API_DRAIN_MAX,
              deadline);
        goto done;
    }
    need = r.header_len + r.content_length;
    while (in.len < need) {
        size_t want = need - in.len;

        if (listen_read_some(fd, &in, want < READ_CHUNK ? want : READ_CHUNK, deadline) <=
            0) {
            log_debug("scgi: dropped a connection: body shorter than CONTENT_LENGTH "
                      "within the deadline");
            goto done;
        }
    }
    /* The buffer may have moved while the body came: point into it again. */
    scgi_parse(buf_data(&in), in.len, &r, &why);
    ar.method = r.method;
    ar.request_uri = r.request_uri;
    ar.script_name = r.script_name;
    ar.path_info = r.path_info;
    ar.query = r.query;
    ar.body = buf_data(&in) + r.header_len;
    ar.body_len = r.content_length;
    front_handle(a, &ar, &out);
    write_all(fd, &out);
done:
    buf_free(&in);
    buf_free(&out);
}

void *
scgi_run(void *arg)
{
    struct front *f = arg;
    int fd;

    while ((fd = listen_accept(f->fd, f->a->stop_fd)) >= 0) {
        listen_timeouts(fd, API_READ_DEADLINE_MS);
        serve(f->a, fd);
        close(fd);
    }
    return NULL;
}

/* front.c - what the FastCGI and SCGI front ends share: the path the app
 * signed (prefix handling), one request through the shared REST core with
 * the bus as its backend, the CGI response ("Status:" header) the web server
 * turns into HTTP, and the pool of request threads. Owns no socket and no
 * protocol framing (fcgi.c, scgi.c) and none of the API's rules (rest.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "mem.h"
#include "rest.h"
#include "mn.h"

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void
put_response(struct buf *out, int status, const char *type, const char *body, size_t len)
{
    buf_printf(out, "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
               status, reason(status), type, len);
    buf_append(out, body, len);
}

void
front_text(struct buf *out, int status, const char *text)
{
    put_response(out, status, "text/plain", text, strlen(text));
}

void
front_too_large(struct buf *out)
{
    front_text(out, 413, "Request body too large\n");
}

int
front_content_length(const char *s, size_t *out)
{
    size_t n = 0, i;

    if (s == NULL || s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i == 15)
            return -1;
        n = n * 10 + (size_t)(s[i] - '0');
    }
    *out = n;
    return 0;
}

static bool
starts_with(const char *s, const char *p, size_t plen)
{
    return strncmp(s, p, plen) == 0;
}

void
front_path(const struct mn_config *cfg, const struct api_req *r, struct buf *path)
{
    const char *pre = cfg->api.prefix, *sn = r->script_name, *s;
    size_t at = path->len, cut = 0;

    if (r->request_uri != NULL && r->request_uri[0] != '\0') {
        buf_append(path, r->request_uri, strcspn(r->request_uri, "?"));
    } else {
        buf_puts(path, sn ? sn : "");
        buf_puts(path, r->path_info ? r->path_info : "");
    }
    s = buf_data(path) + at;
    if (pre != NULL && starts_with(s, pre, strlen(pre)) && s[strlen(pre)] == '/')
        cut = strlen(pre);
    else if (sn != NULL && sn[0] != '\0' && starts_with(s, sn, strlen(sn)) &&
             starts_with(s + strlen(sn), "/apps/", 6))
        cut = strlen(sn);
    if (cut) {
        memmove(buf_data(path) + at, s + cut, path->len - at - cut + 1);
        path->len -= cut;
    }
}

static void
on_done(void *arg, struct rest_res *res)
{
    *(struct rest_res **)arg = res;
}

void
front_handle(const struct api *a, const struct api_req *r, struct buf *out)
{
    struct rest_backend be = {bus_call, a->bus};
    struct rest_res *res = NULL;
    struct rest_req req = {0};
    struct buf path = BUF_INIT;

    front_path(a->cfg, r, &path);
    req.method = r->method ? r->method : "";
    req.path = buf_data(&path);
    req.path_len = path.len;
    if (r->query != NULL && r->query[0] != '\0') {
        req.query = r->query;
        req.query_len = strlen(r->query);
    }
    req.body = r->body_len ? r->body : NULL;
    req.body_len = r->body_len;
    req.now = (int64_t)time(NULL);
    /* The bus answers before bus_call returns, so res is set here. */
    rest_handle(a->cfg, &be, &req, on_done, &res);
    if (res == NULL) {
        log_err("api: no answer from the REST core path=%s", buf_data(&path));
        front_text(out, 500, "Internal error\n");
    } else {
        put_response(out, res->status, res->content_type, buf_data(&res->body),
                     res->body.len);
        log_debug("api: %s %s status=%d", req.method, buf_data(&path), res->status);
    }
    rest_res_free(res);
    buf_free(&path);
}

struct front *
front_start(struct api *a, int fd, const char *name, front_run_fn *run)
{
    struct front *f = xcalloc(1, sizeof(*f));
    unsigned want = a->cfg->api.threads;

    f->a = a;
    f->fd = fd;
    f->name = name;
    f->threads = xcalloc(want, sizeof(*f->threads));
    for (unsigned i = 0; i < want; i++) {
        if (pthread_create(&f->threads[f->n], NULL, run, f) != 0) {
            log_errno("api: cannot start a %s thread", name);
            break;
        }
        f->n++;
    }
    if (f->n == 0) {
        free(f->threads);
        free(f);
        return NULL;
    }
    return f;
}

void
front_join(struct front *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        pthread_join(f->threads[i], NULL);
    free(f->threads);
    free(f);
}

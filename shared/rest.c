/* rest.c - Pusher's HTTP API with no transport inside: route a request,
 * decode its path, authenticate it (rest_auth.c), validate the body, ask the
 * backend, write the answer. Does not own channel state (the backend's) nor
 * sockets (gateway/http.c, api/).
 *
 * Exception to STYLE 2: this file is the REST body parser, so it reads request
 * bodies with jansson; every answer is still written with buf_*. It checks
 * signatures, so it compares with no memcmp/strcmp at all (R9's rule may cover
 * the whole auth path): names through span_eq, digests through sign_equal. */
#include "rest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chan.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "rest_int.h"
#include "sign.h"
#include "mn.h"

/* The longest route: /apps/{id}/users/{user_id}/terminate_connections. */
#define ROUTE_SEGS 5

enum route { R_EVENTS, R_BATCH, R_CHANNELS, R_CHANNEL, R_USERS, R_TERMINATE };

struct route_def {
    enum route route;
    const char *method;
    size_t nseg;
    const char *words[ROUTE_SEGS]; /* NULL: a variable, non-empty segment */
};

static const struct route_def routes[] = {
    {R_EVENTS, "POST", 3, {"apps", NULL, "events"}},
    {R_BATCH, "POST", 3, {"apps", NULL, "batch_events"}},
    {R_CHANNELS, "GET", 3, {"apps", NULL, "channels"}},
    {R_CHANNEL, "GET", 4, {"apps", NULL, "channels", NULL}},
    {R_USERS, "GET", 5, {"apps", NULL, "channels", NULL, "users"}},
    {R_TERMINATE, "POST", 5, {"apps", NULL, "users", NULL, "terminate_connections"}},
};

/* The decoded path: segments point into buf, each NUL-terminated. */
struct path {
    size_t nseg;
    const char *seg[ROUTE_SEGS];
    size_t len[ROUTE_SEGS];
    char *buf;
};

/* One request in flight: parsed copies of all the backend is asked, alive
 * until the backend answers (possibly after rest_handle returned). */
struct call {
    const struct mn_app *app;
    enum route route;
    rest_done_fn *done;
    void *arg;
    struct rest_query q;
    struct rest_event *events;
    size_t nevents;
    char *name;   /* channel or user id */
    char *prefix; /* filter_by_prefix */
};

static bool
route_fits(const struct route_def *d, const struct path *p)
{
    size_t i;

    if (d->nseg != p->nseg)
        return false;
    for (i = 0; i < p->nseg; i++) {
        if (d->words[i] == NULL ? p->len[i] == 0
                                : !rest_span_eq(p->seg[i], p->len[i], d->words[i]))
            return false;
    }
    return true;
}

/* Splits req->path on '/' and decodes each segment into p (404 for more
 * segments than any route has). The caller frees p->buf. */
static int
path_split(const struct rest_req *req, struct path *p, struct mn_err *err)
{
    const char *s = req->path, *end = req->path + req->path_len;
    size_t used = 0;

    if (req->path_len == 0 || s[0] != '/')
        return mn_err_set(err, 404, "Not found");
    p->buf = xmalloc(req->path_len + ROUTE_SEGS);
    for (s++;; p->nseg++) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *stop = slash ? slash : end;
        size_t n = p->nseg;

        if (n == ROUTE_SEGS)
            return mn_err_set(err, 404, "Not found");
        if (rest_pct_decode(s, (size_t)(stop - s), false, p->buf + used, &p->len[n]) != 0)
            return mn_err_set(err, 400, "Invalid percent-encoding in the path");
        p->seg[n] = p->buf + used;
        used += p->len[n] + 1;
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    p->nseg++;
    return 0;
}

/* The route of a split path, or NULL with err: 404 for no route, 405 for a
 * route under another method. */
static const struct route_def *
path_route(const char *method, const struct path *p, struct mn_err *err)
{
    bool other_method = false;
    size_t i;

    for (i = 0; i < ARRAY_LEN(routes); i++) {
        if (!route_fits(&routes[i], p))
            continue;
        if (rest_span_eq(method, strlen(method), routes[i].method))
            return &routes[i];
        other_method = true;
    }
    if (other_method)
        mn_err_set(err, 405, "Method not allowed");
    else
        mn_err_set(err, 404, "Not found");
    return NULL;
}

/* A comma-separated info list; attributes outside allowed are refused. */
static int
parse_info(const char *s, size_t n, unsigned allowed, unsigned *out, struct mn_err *err)
{
    static const struct {
        const char *name;
        unsigned flag;
    } attrs[] = {
        {"user_count", REST_INFO_USER_COUNT},
        {"subscription_count", REST_INFO_SUBSCRIPTION_COUNT},
        {"cache", REST_INFO_CACHE},
    };
    const char *end = s + n;

    *out = 0;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t len = (size_t)((comma ? comma : end) - s), i;

        for (i = 0; len > 0 && i < ARRAY_LEN(attrs); i++)
            if ((attrs[i].flag & allowed) && rest_span_eq(s, len, attrs[i].name))
                break;
        if (len > 0 && i == ARRAY_LEN(attrs))
            return mn_err_set(err, 400, "Unknown info attribute");
        if (len > 0)
            *out |= attrs[i].flag;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    return 0;
}

static void
event_clear(struct rest_event *ev)
{
    size_t i;

    free((void *)ev->name);
    free((void *)ev->data);
    free((void *)ev->socket_id);
    for (i = 0; i < ev->nchannels; i++)
        free((void *)ev->channels[i]);
    free((void *)ev->channels);
}

static bool
chan_seen(const struct rest_event *ev, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < ev->nchannels; i++)
        if (rest_span_eq(s, len, ev->channels[i]))
            return true;
    return false;
}

/* channel or channels: valid names, 1..max_trigger_channels of them, no
 * encrypted channel among several; repeats are published once. */
static int
event_channels(const struct mn_app *app, json_t *o, bool batch, struct rest_event *ev,
               struct mn_err *err)
{
    json_t *one = json_object_get(o, "channel"), *many = json_object_get(o, "channels");
    const char **chans;
    size_t n, i;

    if (one != NULL && many != NULL)
        return mn_err_set(err, 400, "Give channel or channels, not both");
    if (batch && many != NULL)
        return mn_err_set(err, 400, "A batch event takes a single channel");
    if (one == NULL && many == NULL)
        return mn_err_set(err, 400, "Missing channel");
    if (one != NULL && !json_is_string(one))
        return mn_err_set(err, 400, "channel must be a string");
    if (many != NULL && !json_is_array(many))
        return mn_err_set(err, 400, "channels must be an array of strings");
    n = one ? 1 : json_array_size(many);
    if (n == 0)
        return mn_err_set(err, 400, "channels must not be empty");
    if (n > app->max_trigger_channels)
        return mn_err_set(err, 400, "Too many channels (max %u)",
                          app->max_trigger_channels);
    chans = xcalloc(n, sizeof(*chans));
    ev->channels = chans;
    for (i = 0; i < n; i++) {
        json_t *c = one ? one : json_array_get(many, i);
        const char *s = json_string_value(c);
        size_t len = json_string_length(c);
        enum chan_kind kind = s ? chan_kind_of(s, len) : CHAN_INVALID;

        if (kind == CHAN_INVALID)
            return mn_err_set(err, 400, "Invalid channel name (channel %zu)", i);
        if (kind == CHAN_ENCRYPTED && n > 1)
            return mn_err_set(err, 400,
                              "An encrypted channel cannot be triggered "
                              "together with other channels");
        if (!chan_seen(ev, s, len))
            chans[ev->nchannels++] = xstrndup(s, len);
    }
    return 0;
}

/* One event from a JSON object into ev (heap copies; event_clear frees them,
 * also after a failure). */
static int
event_parse(const struct mn_app *app, json_t *o, bool batch, struct rest_event *ev,
            struct mn_err *err)
{
    json_t *name = json_object_get(o, "name"), *data = json_object_get(o, "data");
    json_t *sid = json_object_get(o, "socket_id"), *info = json_object_get(o, "info");

    if (!json_is_object(o))
        return mn_err_set(err, 400, "An event must be a JSON object");
    if (!json_is_string(name) ||
        !chan_event_name_ok(json_string_value(name), json_string_length(name)))
        return mn_err_set(err, 400, "%s", name ? "Invalid event name" : "Missing name");
    if (data == NULL)
        return mn_err_set(err, 400, "Missing data");
    if (!json_is_string(data))
        return mn_err_set(err, 400, "data must be a string (JSON-encode it first)");
    if (json_string_length(data) > app->max_event_bytes)
        return mn_err_set(err, 413, "Event data too large (max %u bytes)",
                          app->max_event_bytes);
    if (sid != NULL && !json_is_null(sid) &&
        (!json_is_string(sid) ||
         !chan_socket_id_ok(json_string_value(sid), json_string_length(sid))))
        return mn_err_set(err, 400, "Invalid socket_id");
    if (info != NULL && !json_is_string(info))
        return mn_err_set(err, 400, "info must be a string");
    if (info != NULL &&
        parse_info(json_string_value(info), json_string_length(info),
                   REST_INFO_USER_COUNT | REST_INFO_SUBSCRIPTION_COUNT, &ev->info, err))
        return -1;
    if (event_channels(app, o, batch, ev, err))
        return -1;
    ev->name_len = json_string_length(name);
    ev->name = xstrndup(json_string_value(name), ev->name_len);
    ev->data_len = json_string_length(data);
    ev->data = xstrndup(json_string_value(data), ev->data_len);
    if (json_is_string(sid))
        ev->socket_id = xstrndup(json_string_value(sid), json_string_length(sid));
    return 0;
}

/* The body as a JSON object: jansson refuses invalid UTF-8, duplicate keys
 * (with the flag) and nesting past JSON_PARSER_MAX_DEPTH (2048). */
static json_t *
body_json(const struct rest_req *req, struct mn_err *err)
{
    json_error_t jerr;
    json_t *root;

    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        mn_err_set(err, 400, "Invalid JSON body (at byte %d)", jerr.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        mn_err_set(err, 400, "The JSON body must be an object");
        return NULL;
    }
    return root;
}

/* POST /events with an empty body takes its fields from the query, as the
 * HTTP API allows (channels as channels[]=a&channels[]=b). */
static json_t *
query_event(const struct query *q, struct mn_err *err)
{
    static const char *const fields[] = {"name", "data", "channel", "socket_id", "info"};
    json_t *o = json_object();
    size_t i, f;

    for (i = 0; i < q->n; i++) {
        const struct sign_param *p = &q->p[i];
        json_t *v = json_stringn(p->val, p->val_len);

        if (v == NULL) {
            json_decref(o);
            mn_err_set(err, 400, "Query parameters must be UTF-8");
            return NULL;
        }
        for (f = 0; f < ARRAY_LEN(fields); f++)
            if (rest_span_eq(p->key, p->key_len, fields[f]))
                break;
        if (f < ARRAY_LEN(fields)) {
            json_object_set_new(o, fields[f], v); /* the last one given wins */
        } else if (rest_span_eq(p->key, p->key_len, "channels[]") ||
                   rest_span_eq(p->key, p->key_len, "channels")) {
            if (json_object_get(o, "channels") == NULL)
                json_object_set_new(o, "channels", json_array());
            json_array_append_new(json_object_get(o, "channels"), v);
        } else {
            json_decref(v);
        }
    }
    return o;
}

static int
prepare_events(struct call *c, const struct rest_req *req, const struct query *q,
               struct mn_err *err)
{
    json_t *root = req->body_len ? body_json(req, err) : query_event(q, err);
    int rc;

    if (root == NULL)
        return -1;
    c->events = xcalloc(1, sizeof(*c->events));
    c->nevents = 1;
    rc = event_parse(c->app, root, false, &c->events[0], err);
    json_decref(root);
    return rc;
}

static int
prepare_batch(struct call *c, const struct rest_req *req, struct mn_err *err)
{
    json_t *root = body_json(req, err), *batch;
    size_t i, n;
    int rc = -1;

    if (root == NULL)
        return -1;
    batch = json_object_get(root, "batch");
    if (!json_is_array(batch)) {
        mn_err_set(err, 400, "Missing batch array");
        goto fail;
    }
    n = json_array_size(batch);
    if (n == 0 || n > c->app->max_batch_events) {
        mn_err_set(err, 400, "A batch holds 1 to %u events", c->app->max_batch_events);
        goto fail;
    }
    c->events = xcalloc(n, sizeof(*c->events));
    for (i = 0; i < n; i++) {
        c->nevents++;
        if (event_parse(c->app, json_array_get(batch, i), true, &c->events[i], err))
            goto fail;
    }
    rc = 0;
fail:
    json_decref(root);
    return rc;
}

static int
prepare_channels(struct call *c, const struct query *q, struct mn_err *err)
{
    const struct sign_param *prefix = rest_query_get(q, "filter_by_prefix", NULL);
    const struct sign_param *info = rest_query_get(q, "info", NULL);

    if (info &&
        parse_info(info->val, info->val_len,
                   REST_INFO_USER_COUNT | REST_INFO_SUBSCRIPTION_COUNT, &c->q.info, err))
        return -1;
    if ((c->q.info & REST_INFO_USER_COUNT) &&
        (prefix == NULL || !rest_has_prefix(prefix->val, prefix->val_len, "presence-")))
        return mn_err_set(err, 400, "info=user_count needs filter_by_prefix=presence-");
    if ((c->q.info & REST_INFO_SUBSCRIPTION_COUNT) && !c->app->subscription_count)
        return mn_err_set(err, 400, "subscription_count is not enabled for this app");
    if (prefix != NULL) {
        c->prefix = xstrndup(prefix->val, prefix->val_len);
        c->q.prefix = c->prefix;
        c->q.prefix_len = prefix->val_len;
    }
    return 0;
}

static int
prepare_channel(struct call *c, const struct path *p, const struct query *q,
                struct mn_err *err)
{
    const struct sign_param *info = rest_query_get(q, "info", NULL);
    enum chan_kind kind = chan_kind_of(p->seg[3], p->len[3]);

    if (kind == CHAN_INVALID)
        return mn_err_set(err, 400, "Invalid channel name");
    if (c->route == R_USERS && kind != CHAN_PRESENCE)
        return mn_err_set(err, 400, "Users are only listed for presence channels");
    if (c->route == R_CHANNEL && info &&
        parse_info(info->val, info->val_len,
                   REST_INFO_USER_COUNT | REST_INFO_SUBSCRIPTION_COUNT | REST_INFO_CACHE,
                   &c->q.info, err))
        return -1;
    if ((c->q.info & REST_INFO_USER_COUNT) && kind != CHAN_PRESENCE)
        return mn_err_set(err, 400, "user_count is only available for presence channels");
    if ((c->q.info & REST_INFO_SUBSCRIPTION_COUNT) && !c->app->subscription_count)
        return mn_err_set(err, 400, "subscription_count is not enabled for this app");
    if ((c->q.info & REST_INFO_CACHE) && !chan_is_cache(p->seg[3], p->len[3]))
        return mn_err_set(err, 400, "cache is only available for cache channels");
    c->name = xstrndup(p->seg[3], p->len[3]);
    c->q.channel = c->name;
    c->q.channel_len = p->len[3];
    return 0;
}

static int
prepare_terminate(struct call *c, const struct path *p, struct mn_err *err)
{
    size_t i, max = c->app->max_user_id_len;

    if (max != 0 && p->len[3] > max)
        return mn_err_set(err, 400, "User id too long (max %zu)", max);
    for (i = 0; i < p->len[3]; i++)
        if ((unsigned char)p->seg[3][i] < 0x20 || p->seg[3][i] == 0x7f)
            return mn_err_set(err, 400, "Invalid user id");
    c->name = xstrndup(p->seg[3], p->len[3]);
    c->q.user_id = c->name;
    c->q.user_id_len = p->len[3];
    return 0;
}

/* Everything before the backend, in order: route, app, size (413 before any
 * parsing), query, auth, enabled (after auth: a stranger learns nothing of a
 * disabled app), body. */
static int
prepare(struct call *c, const struct mn_config *cfg, const struct rest_req *req,
        struct path *p, struct query *q, struct mn_err *err)
{
    static const enum rest_op ops[] = {
        [R_EVENTS] = REST_PUBLISH,    [R_BATCH] = REST_PUBLISH,
        [R_CHANNELS] = REST_CHANNELS, [R_CHANNEL] = REST_CHANNEL,
        [R_USERS] = REST_USERS,       [R_TERMINATE] = REST_TERMINATE,
    };
    const struct route_def *def;

    if (path_split(req, p, err))
        return -1;
    def = path_route(req->method, p, err);
    if (def == NULL)
        return -1;
    c->route = def->route;
    c->app = config_app_by_id(cfg, p->seg[1], p->len[1]);
    if (c->app == NULL)
        return mn_err_set(err, 404, "Unknown app");
    if (req->body_len > cfg->max_request_bytes)
        return mn_err_set(err, 413, "Request body too large (max %u bytes)",
                          cfg->max_request_bytes);
    if (rest_query_parse(req->query ? req->query : "", req->query ? req->query_len : 0,
                         req->query_decoded, q, err) ||
        rest_check_auth(c->app, req, q, err))
        return -1;
    if (!c->app->enabled)
        return mn_err_set(err, 403, "App disabled");
    c->q.op = ops[c->route];
    c->q.app = c->app;
    switch (c->route) {
    case R_EVENTS:
        return prepare_events(c, req, q, err);
    case R_BATCH:
        return prepare_batch(c, req, err);
    case R_CHANNELS:
        return prepare_channels(c, q, err);
    case R_CHANNEL:
    case R_USERS:
        return prepare_channel(c, p, q, err);
    case R_TERMINATE:
        return prepare_terminate(c, p, err);
    }
    return mn_err_set(err, 500, "Unrouted request");
}

static void
call_free(struct call *c)
{
    size_t i;

    for (i = 0; i < c->nevents; i++)
        event_clear(&c->events[i]);
    free(c->events);
    free(c->name);
    free(c->prefix);
    free(c);
}

static struct rest_res *
res_new(int status, const char *content_type)
{
    struct rest_res *res = xcalloc(1, sizeof(*res));

    res->status = status;
    res->content_type = content_type;
    buf_init_head(&res->body, 0);
    return res;
}

static struct rest_res *
res_text(int status, const char *msg)
{
    struct rest_res *res = res_new(status, "text/plain");

    buf_puts(&res->body, msg);
    return res;
}

/* {"user_count":N,"subscription_count":M} with only the attributes asked;
 * user_count only for presence channels. */
static void
put_counts(struct buf *b, const struct rest_chan_stat *st, unsigned info, bool presence)
{
    const char *sep = "";

    buf_putc(b, '{');
    if ((info & REST_INFO_USER_COUNT) && presence) {
        buf_printf(b, "\"user_count\":%u", st->occupied ? st->user_count : 0);
        sep = ",";
    }
    if (info & REST_INFO_SUBSCRIPTION_COUNT)
        buf_printf(b, "%s\"subscription_count\":%u", sep,
                   st->occupied ? st->subscription_count : 0);
    buf_putc(b, '}');
}

static bool
is_presence(const char *name)
{
    return chan_kind_of(name, strlen(name)) == CHAN_PRESENCE;
}

/* /events and /batch_events: {} unless info was asked; the backend gave one
 * stat per (event, channel) pair, in order. */
static int
answer_publish(const struct call *c, const struct rest_answer *ans, struct buf *b)
{
    size_t i, k, pairs = 0;
    unsigned any = 0;

    for (i = 0; i < c->nevents; i++) {
        pairs += c->events[i].nchannels;
        any |= c->events[i].info;
    }
    if (any == 0) {
        buf_puts(b, "{}");
        return 0;
    }
    if (ans->nchans < pairs)
        return -1;
    buf_puts(b, c->route == R_BATCH ? "{\"batch\":[" : "{\"channels\":{");
    for (i = 0, pairs = 0; i < c->nevents; i++) {
        const struct rest_event *ev = &c->events[i];

        for (k = 0; k < ev->nchannels; k++, pairs++) {
            if (pairs > 0)
                buf_putc(b, ',');
            if (c->route != R_BATCH) {
                buf_json_str(b, ev->channels[k], strlen(ev->channels[k]));
                buf_putc(b, ':');
            }
            put_counts(b, &ans->chans[pairs], ev->info, is_presence(ev->channels[k]));
        }
    }
    buf_puts(b, c->route == R_BATCH ? "]}" : "}}");
    return 0;
}

static void
answer_channels(const struct call *c, const struct rest_answer *ans, struct buf *b)
{
    const char *sep = "";
    size_t i;

    buf_puts(b, "{\"channels\":{");
    for (i = 0; i < ans->nchans; i++) {
        const struct rest_chan_stat *st = &ans->chans[i];

        if (!st->occupied || st->name == NULL)
            continue;
        buf_puts(b, sep);
        buf_json_str(b, st->name, strlen(st->name));
        buf_putc(b, ':');
        put_counts(b, st, c->q.info, is_presence(st->name));
        sep = ",";
    }
    buf_puts(b, "}}");
}

static void
answer_channel(const struct call *c, const struct rest_answer *ans, struct buf *b)
{
    static const struct rest_chan_stat empty;
    const struct rest_chan_stat *st = ans->nchans ? &ans->chans[0] : &empty;

    buf_printf(b, "{\"occupied\":%s", st->occupied ? "true" : "false");
    if (c->q.info & REST_INFO_USER_COUNT)
        buf_printf(b, ",\"user_count\":%u", st->occupied ? st->user_count : 0);
    if (c->q.info & REST_INFO_SUBSCRIPTION_COUNT)
        buf_printf(b, ",\"subscription_count\":%u",
                   st->occupied ? st->subscription_count : 0);
    /* The cache outlives the subscribers (its TTL), so it does not depend on
     * occupied. */
    if ((c->q.info & REST_INFO_CACHE) && st->cache_data != NULL) {
        buf_puts(b, ",\"cache\":{\"data\":");
        buf_json_str(b, st->cache_data, st->cache_len);
        buf_printf(b, ",\"ttl\":%u}", st->cache_ttl);
    }
    buf_putc(b, '}');
}

static void
answer_users(const struct rest_answer *ans, struct buf *b)
{
    size_t i;

    buf_puts(b, "{\"users\":[");
    for (i = 0; i < ans->nusers; i++) {
        buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        buf_json_str(b, ans->users[i], strlen(ans->users[i]));
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

/* The backend's done callback: writes the answer, hands it on, frees c. */
static void
on_answer(void *arg, const struct rest_answer *ans)
{
    struct call *c = arg;
    rest_done_fn *done = c->done;
    void *done_arg = c->arg;
    struct rest_res *res;

    if (ans->status != 0) {
        res = res_text(ans->status >= 400 && ans->status <= 599 ? ans->status : 500,
                       ans->message ? ans->message : "Backend error");
    } else {
        res = res_new(200, "application/json");
        switch (c->route) {
        case R_EVENTS:
        case R_BATCH:
            if (answer_publish(c, ans, &res->body) != 0) {
                log_err("rest: backend gave too few channel stats app=%s", c->app->id);
                rest_res_free(res);
                res = res_text(500, "Internal error");
            }
            break;
        case R_CHANNELS:
            answer_channels(c, ans, &res->body);
            break;
        case R_CHANNEL:
            answer_channel(c, ans, &res->body);
            break;
        case R_USERS:
            answer_users(ans, &res->body);
            break;
        case R_TERMINATE:
            buf_puts(&res->body, "{}");
            break;
        }
    }
    call_free(c);
    done(done_arg, res);
}

void
rest_handle(const struct mn_config *cfg, const struct rest_backend *backend,
            const struct rest_req *req, rest_done_fn *done, void *arg)
{
    struct call *c = xcalloc(1, sizeof(*c));
    struct path p = {0};
    struct query q = {0};
    struct mn_err err = {0, ""};
    int rc;

    c->done = done;
    c->arg = arg;
    rc = prepare(c, cfg, req, &p, &q, &err);
    free(p.buf);
    free(q.arena);
    if (rc != 0) {
        log_debug("rest: refused status=%d app=%s reason=%s", err.status,
                  c->app ? c->app->id : "-", err.msg);
        call_free(c);
        done(arg, res_text(err.status, err.msg));
        return;
    }
    c->q.events = c->events;
    c->q.nevents = c->nevents;
    /* c may be freed inside call (a synchronous backend): not touched after. */
    backend->call(backend->be, &c->q, on_answer, c);
}

void
rest_res_free(struct rest_res *res)
{
    if (res == NULL)
        return;
    buf_free(&res->body);
    free(res);
}

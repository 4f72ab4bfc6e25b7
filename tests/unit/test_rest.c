/* test_rest.c - rest.c: routing, request authentication (RELIABILITY R1-R7),
 * input caps (R10, R11), every answer's JSON, asynchronous and failing
 * backends. Requests are signed here as pusher-http-node signs them, with
 * OpenSSL directly, so the test does not lean on sign.c to check rest.c. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "config.h"
#include "mem.h"
#include "rest.h"
#include "tap.h"
#include "mn.h"

/* PROTOCOL.md 12's worked example: its key, secret and timestamp. */
#define KEY "278d425bdf160c739803"
#define SECRET "7ad3773142a6692b25b8"
#define NOW 1353088179
#define EXAMPLE_BODY                                                                     \
    "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":"           \
    "\\\"data\\\"}\"}"

#define APP(id_, key_, secret_, enabled_, subcount_)                                     \
    {                                                                                    \
        .name = (id_), .id = (id_), .key = (key_), .secret = (secret_),                  \
        .enabled = (enabled_), .subscription_count = (subcount_),                        \
        .max_event_bytes = 10240, .max_trigger_channels = 100, .max_batch_events = 10,   \
        .max_user_id_len = 128,                                                          \
    }

static struct mn_app apps[] = {
    APP("3", KEY, SECRET, true, true),
    APP("4", "off-key", "off-secret", false, true),
    APP("5", "nosc-key", "nosc-secret", true, false),
};

static struct mn_config cfg = {
    .apps = apps,
    .napps = ARRAY_LEN(apps),
    .max_request_bytes = 262144,
};

/* --- the test backend: records the query, answers canned state --- */

enum be_mode { BE_SYNC, BE_ASYNC, BE_FAIL, BE_SHORT };

static struct {
    enum be_mode mode;
    int calls;
    struct buf seen; /* the last query, as text */
    const struct rest_query *q;
    rest_answer_fn *done;
    void *arg;
} be;

static void
record(const struct rest_query *q)
{
    static const char *const ops[] = {"publish", "channels", "channel", "users",
                                      "terminate"};

    buf_reset(&be.seen);
    buf_printf(&be.seen, "%s app=%s", ops[q->op], q->app->id);
    for (size_t i = 0; i < q->nevents; i++) {
        const struct rest_event *ev = &q->events[i];

        buf_printf(&be.seen, " [%s|%s|", ev->name, ev->data);
        for (size_t k = 0; k < ev->nchannels; k++)
            buf_printf(&be.seen, "%s%s", k ? "," : "", ev->channels[k]);
        buf_printf(&be.seen, "|%s|%u]", ev->socket_id ? ev->socket_id : "-", ev->info);
    }
    if (q->channel)
        buf_printf(&be.seen, " channel=%.*s", (int)q->channel_len, q->channel);
    if (q->prefix)
        buf_printf(&be.seen, " prefix=%.*s", (int)q->prefix_len, q->prefix);
    if (q->user_id)
        buf_printf(&be.seen, " user=%.*s", (int)q->user_id_len, q->user_id);
    if (q->op == REST_CHANNELS || q->op == REST_CHANNEL)
        buf_printf(&be.seen, " info=%u", q->info);
}

static bool
starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
stat_of(struct rest_chan_stat *st, const char *name)
{
    memset(st, 0, sizeof(*st));
    st->name = name;
    st->occupied = !starts(name, "empty-");
    st->user_count = starts(name, "presence-") ? 42 : 0;
    st->subscription_count = starts(name, "presence-") ? 51 : 13;
    if (strstr(name, "cache-") != NULL) {
        st->cache_data = "{\"a\":1}";
        st->cache_len = 7;
        st->cache_event = "ev";
        st->cache_ttl = 60;
    }
}

static void
be_answer(const struct rest_query *q, rest_answer_fn *done, void *arg)
{
    static const char *const occupied[] = {"presence-a", "presence-b", "b", "empty-c"};
    static const char *const users[] = {"1", "2"};
    struct rest_chan_stat st[120];
    struct rest_answer ans = {0};

    record(q);
    if (be.mode == BE_FAIL) {
        ans.status = 503;
        ans.message = "Bus unavailable";
    } else if (q->op == REST_PUBLISH && be.mode != BE_SHORT) {
        for (size_t i = 0; i < q->nevents; i++)
            for (size_t k = 0; k < q->events[i].nchannels && ans.nchans < 120; k++)
                stat_of(&st[ans.nchans++], q->events[i].channels[k]);
    } else if (q->op == REST_CHANNELS) {
        for (size_t i = 0; i < ARRAY_LEN(occupied); i++)
            if (q->prefix == NULL || starts(occupied[i], q->prefix))
                stat_of(&st[ans.nchans++], occupied[i]);
    } else if (q->op == REST_CHANNEL) {
        stat_of(&st[ans.nchans++], q->channel);
        st[0].user_count = 3;
        st[0].subscription_count = 4;
    } else if (q->op == REST_USERS) {
        ans.users = users;
        ans.nusers = ARRAY_LEN(users);
    }
    ans.chans = st;
    done(arg, &ans);
}

static void
be_call(void *unused MN_UNUSED, const struct rest_query *q, rest_answer_fn *done,
        void *arg)
{
    be.calls++;
    if (be.mode == BE_ASYNC) {
        be.q = q;
        be.done = done;
        be.arg = arg;
        return;
    }
    be_answer(q, done, arg);
}

static void
be_flush(void)
{
    be_answer(be.q, be.done, be.arg);
    be.q = NULL;
}

static const struct rest_backend backend = {be_call, NULL};

/* --- what rest_handle answered --- */

static struct {
    int calls;
    int status;
    const char *type;
    struct buf body;
} got;

static void
on_done(void *arg MN_UNUSED, struct rest_res *res)
{
    got.calls++;
    got.status = res->status;
    got.type = res->content_type;
    buf_reset(&got.body);
    buf_append(&got.body, buf_data(&res->body), res->body.len);
    rest_res_free(res);
}

static const char *
body(void)
{
    return buf_data(&got.body);
}

static const char *
seen(void)
{
    return buf_data(&be.seen);
}

/* --- the signer, as pusher-http-node's createSignedQueryString --- */

static void
hex(const unsigned char *md, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * (size_t)i, 3, "%02x", md[i]);
}

static void
hmac_hex(const char *secret, const char *msg, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, len, md,
         &n);
    hex(md, n, out);
}

static void
md5_hex(const char *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
    hex(md, n, out);
}

static char *__attribute__((format(printf, 1, 2))) fmt(const char *f, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    va_start(ap, f);
    buf_vprintf(&b, f, ap);
    va_end(ap);
    return buf_steal(&b);
}

enum sig_case { SIG_GOOD, SIG_UPPER, SIG_63, SIG_65, SIG_NONE, SIG_DUP, SIG_EMPTY };

struct sreq {
    const char *method; /* NULL: POST with a body, else GET */
    const char *path;
    const char *body;      /* signed; sent unless send_body */
    const char *send_body; /* a body changed after signing */
    size_t body_len;       /* 0: strlen(body) */
    const char *params;    /* extra k=v&k=v, signed and sent unescaped */
    const char *key;       /* NULL: KEY */
    const char *secret;    /* NULL: SECRET */
    const char *ts;        /* NULL: NOW + ts_off */
    long ts_off;
    const char *version; /* NULL: "1.0" */
    const char *md5;     /* NULL: computed for a body; "-": left out */
    enum sig_case sig;
    int64_t now; /* 0: NOW */
};

static size_t
key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static int
key_cmp(const char *a, const char *b)
{
    size_t la = key_len(a), lb = key_len(b);
    int c = strncmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Sends a signed request: keys sorted (stably), joined k=v with '&' and not
 * escaped, signed as METHOD\npath\nquery; the query string sent is the same
 * text plus auth_signature. Returns the status (0 while nobody answered). */
static int
send_req(const struct sreq *r)
{
    const char *method = r->method ? r->method : r->body ? "POST" : "GET";
    const char *sent = r->send_body ? r->send_body : r->body;
    size_t blen = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
    size_t slen = r->send_body ? strlen(r->send_body) : blen;
    char *items[96], sig[66];
    size_t n = 0;
    struct buf q = BUF_INIT, s = BUF_INIT;
    struct rest_req req;

    items[n++] = fmt("auth_key=%s", r->key ? r->key : KEY);
    if (r->ts)
        items[n++] = fmt("auth_timestamp=%s", r->ts);
    else
        items[n++] = fmt("auth_timestamp=%ld", (long)NOW + r->ts_off);
    items[n++] = fmt("auth_version=%s", r->version ? r->version : "1.0");
    if (r->md5 == NULL && blen > 0) {
        char md5[33];

        md5_hex(r->body, blen, md5);
        items[n++] = fmt("body_md5=%s", md5);
    } else if (r->md5 != NULL && strcmp(r->md5, "-") != 0) {
        items[n++] = fmt("body_md5=%s", r->md5);
    }
    for (const char *p = r->params; p && *p && n < ARRAY_LEN(items);) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);

        items[n++] = xstrndup(p, len);
        p += len + (amp != NULL);
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: stable, as Array.sort */
        for (size_t j = i; j > 0 && key_cmp(items[j - 1], items[j]) > 0; j--) {
            char *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        buf_printf(&q, "%s%s", i ? "&" : "", items[i]);
        free(items[i]);
    }
    buf_printf(&s, "%s\n%s\n%s", method, r->path, buf_data(&q));
    hmac_hex(r->secret ? r->secret : SECRET, buf_data(&s), s.len, sig);
    if (r->sig == SIG_UPPER)
        for (char *c = sig; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
    if (r->sig == SIG_63)
        sig[63] = '\0';
    if (r->sig == SIG_65)
        sig[64] = '0', sig[65] = '\0';
    if (r->sig == SIG_EMPTY)
        sig[0] = '\0';
    if (r->sig != SIG_NONE)
        buf_printf(&q, "&auth_signature=%s", sig);
    if (r->sig == SIG_DUP)
        buf_printf(&q, "&auth_signature=%s", sig);

    req = (struct rest_req){method, r->path, strlen(r->path),       buf_data(&q), q.len,
                            sent,   slen,    r->now ? r->now : NOW, false};
    got.status = 0;
    rest_handle(&cfg, &backend, &req, on_done, NULL);
    buf_free(&q);
    buf_free(&s);
    return got.status;
}

/* Sends method path?query with no signing at all. */
static int
send_raw(const char *method, const char *path, const char *query, const char *b)
{
    struct rest_req req = {method,
                           path,
                           strlen(path),
                           query,
                           query ? strlen(query) : 0,
                           b,
                           b ? strlen(b) : 0,
                           NOW,
                           false};

    got.status = 0;
    rest_handle(&cfg, &backend, &req, on_done, NULL);
    return got.status;
}

static int
trigger(const char *json)
{
    return send_req(&(struct sreq){.path = "/apps/3/events", .body = json});
}

/* --- the cases --- */

static void
test_worked_example(void)
{
    const char *query =
        "auth_key=" KEY "&auth_timestamp=1353088179&auth_version=1.0"
        "&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature="
        "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
    char sig[65], md5[33];

    md5_hex(EXAMPLE_BODY, strlen(EXAMPLE_BODY), md5);
    is_str(md5, "ec365a775a4cd0599faeb73354201b6f", "signer: example body_md5");
    hmac_hex(SECRET,
             "POST\n/apps/3/events\nauth_key=" KEY "&auth_timestamp=1353088179"
             "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f",
             strlen("POST\n/apps/3/events\nauth_key=" KEY "&auth_timestamp=1353088179"
                    "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"),
             sig);
    is_str(sig, "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
           "signer: example signature");
    is_int(send_raw("POST", "/apps/3/events", query, EXAMPLE_BODY), 200,
           "worked example is accepted");
    is_str(body(), "{}", "worked example answers {}");
    is_str(got.type, "application/json", "success is application/json");
    is_str(seen(), "publish app=3 [foo|{\"some\":\"data\"}|project-3|-|0]",
           "backend got the example event");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events", .body = EXAMPLE_BODY}), 200,
           "the signer's own request is accepted");
}

static void
test_trigger(void)
{
    be.calls = 0;
    is_int(trigger("{\"name\":\"my-event\",\"data\":\"hi\",\"channel\":\"my-channel\"}"),
           200, "single-channel trigger");
    is_str(body(), "{}", "trigger answers {}");
    is_int(be.calls, 1, "backend called once");
    is_str(seen(), "publish app=3 [my-event|hi|my-channel|-|0]", "event as sent");
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channels\":[\"a\",\"b\",\"a\"]}"),
           200, "channel given twice");
    is_str(seen(), "publish app=3 [e|d|a,b|-|0]", "a repeated channel is published once");
    is_int(trigger("{\"name\":\"App\\\\Events\\\\Sent\",\"data\":\"d\",\"channel\":"
                   "\"private-encrypted-x\"}"),
           200, "Laravel class name on one encrypted channel");
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"#server-to-user-7\"}"),
           200, "server-to-user channel");
}

static void
test_timestamps(void)
{
    static const long ok_offs[] = {-599, 599, -600, 600, 0};
    static const long bad_offs[] = {-601, 601, -100000, 100000};
    static const char *const bad_ts[] = {
        "abc", "-1",          "99999999999999999999", "1e9",
        "",    "+1353088179", " 1353088179",          "18446744073709551616"};
    const char *b = "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\"}";

    for (size_t i = 0; i < ARRAY_LEN(ok_offs); i++)
        is_int(send_req(&(struct sreq){
                   .path = "/apps/3/events", .body = b, .ts_off = ok_offs[i]}),
               200, "R1: timestamp now%+ld accepted", ok_offs[i]);
    for (size_t i = 0; i < ARRAY_LEN(bad_offs); i++)
        is_int(send_req(&(struct sreq){
                   .path = "/apps/3/events", .body = b, .ts_off = bad_offs[i]}),
               401, "R2: timestamp now%+ld refused", bad_offs[i]);
    is_str(body(),
           "Timestamp expired: Given timestamp (1353188179) not within 600s of server "
           "time (1353088179)",
           "R2: Pusher's expiry message");
    is_str(got.type, "text/plain", "errors are text/plain");
    for (size_t i = 0; i < ARRAY_LEN(bad_ts); i++)
        is_int(send_req(
                   &(struct sreq){.path = "/apps/3/events", .body = b, .ts = bad_ts[i]}),
               401, "R2: timestamp \"%s\" refused", bad_ts[i]);
    is_int(send_raw("GET", "/apps/3/channels",
                    "auth_key=" KEY "&auth_version=1.0&auth_signature=00", NULL),
           401, "R2: missing timestamp refused");
    is_str(body(), "Missing auth_timestamp", "missing timestamp named");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels",
                                   .ts = "9223372036854775807",
                                   .now = INT64_MIN + 1}),
           401, "R2: extreme timestamp and clock do not overflow");
}

static void
test_signatures(void)
{
    static const struct {
        enum sig_case sig;
        const char *what;
    } cases[] = {
        {SIG_UPPER, "uppercase hex"}, {SIG_63, "63 hex digits"},
        {SIG_65, "65 hex digits"},    {SIG_NONE, "missing"},
        {SIG_DUP, "given twice"},     {SIG_EMPTY, "empty"},
    };
    const char *b = "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\"}";

    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        is_int(send_req(&(struct sreq){
                   .path = "/apps/3/events", .body = b, .sig = cases[i].sig}),
               401, "R4: signature %s refused", cases[i].what);
    is_int(send_req(&(struct sreq){
               .path = "/apps/3/events", .body = b, .secret = "wrong-secret"}),
           401, "R4: wrong signature refused");
    is_str(body(), "Invalid signature", "R4: says why");
    ok(strstr(body(), SECRET) == NULL, "R4: the answer holds no secret");
    is_int(send_req(&(struct sreq){
               .path = "/apps/3/events", .body = b, .params = "socket_id=1.1"}),
           200, "extra parameter is signed too");
    is_int(
        send_req(&(struct sreq){.method = "POST", .path = "/apps/3/events/", .body = b}),
        404, "trailing slash is another path");
    be.calls = 0;
    for (int i = 0; i < 2; i++)
        send_req(&(struct sreq){.path = "/apps/3/events", .body = b});
    is_int(be.calls, 2, "R3: an exact replay is accepted, as Pusher");
}

static void
test_body_md5(void)
{
    const char *b = "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\"}";
    char md5[33];

    is_int(send_req(&(struct sreq){.path = "/apps/3/events", .body = b, .md5 = "-"}), 401,
           "R6: body without body_md5");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events",
                                   .body = b,
                                   .md5 = "ec365a775a4cd0599faeb73354201b6f"}),
           401, "R6: wrong body_md5");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events",
                                   .body = b,
                                   .md5 = "EC365A775A4CD0599FAEB73354201B6F"}),
           401, "R6: uppercase body_md5");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events",
                                   .body = b,
                                   .send_body = "{\"name\":\"e\",\"data\":\"X\","
                                                "\"channel\":\"c\"}"}),
           401, "R6: body changed after signing");
    md5_hex(b, strlen(b), md5);
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .md5 = md5}), 401,
           "R6: body_md5 on an empty body");
    md5_hex("", 0, md5);
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .md5 = md5}), 401,
           "R6: body_md5 of nothing on an empty body");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels"}), 200,
           "GET without body_md5");
}

static void
test_keys_and_apps(void)
{
    const char *b = "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\"}";

    is_int(send_req(&(struct sreq){.path = "/apps/3/events",
                                   .body = b,
                                   .key = "nosc-key",
                                   .secret = "nosc-secret"}),
           401, "R7: another app's key");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events", .body = b, .key = "nope"}),
           401, "R7: unknown auth_key");
    is_int(
        send_req(&(struct sreq){.path = "/apps/3/events", .body = b, .version = "2.0"}),
        401, "R7: auth_version 2.0");
    is_int(send_req(&(struct sreq){.path = "/apps/99/events", .body = b}), 404,
           "R7: unknown app id");
    is_str(body(), "Unknown app", "unknown app named");
    is_int(send_req(&(struct sreq){.path = "/apps/4/events",
                                   .body = b,
                                   .key = "off-key",
                                   .secret = "off-secret"}),
           403, "disabled app");
    is_int(send_req(&(struct sreq){.path = "/apps/5/events",
                                   .body = b,
                                   .key = "nosc-key",
                                   .secret = "nosc-secret"}),
           200, "second app with its own key");
}

static void
test_routes(void)
{
    is_int(send_raw("GET", "/", NULL, NULL), 404, "root is not found");
    is_int(send_raw("GET", "/apps/3/nothing", NULL, NULL), 404, "unknown path");
    is_int(send_raw("GET", "apps/3/events", NULL, NULL), 404, "path without slash");
    is_int(send_raw("GET", "/apps/3/channels/a/b/c/d", NULL, NULL), 404, "too deep");
    is_int(send_raw("GET", "/apps//channels", NULL, NULL), 404, "empty app id");
    is_int(send_raw("GET", "/apps/3/events", NULL, NULL), 405, "GET on events");
    is_int(send_raw("POST", "/apps/3/channels", NULL, NULL), 405, "POST on channels");
    is_int(send_raw("DELETE", "/apps/3/channels/a/users", NULL, NULL), 405,
           "DELETE on users");
    is_int(send_raw("GET", "/apps/3/channels/a%zz", NULL, NULL), 400, "broken escape");
    is_int(send_raw("GET", "/apps/3/channels/a%00", NULL, NULL), 400, "escaped NUL");
    is_int(send_raw("GET", "/apps/3/channels", "auth_key=%g", NULL), 400,
           "broken escape in the query");
}

static char *
channels_body(int n)
{
    struct buf b = BUF_INIT;

    buf_puts(&b, "{\"name\":\"e\",\"data\":\"d\",\"channels\":[");
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s\"ch-%d\"", i ? "," : "", i);
    buf_puts(&b, "]}");
    return buf_steal(&b);
}

static char *
batch_body(int n)
{
    struct buf b = BUF_INIT;

    buf_puts(&b, "{\"batch\":[");
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s{\"name\":\"e%d\",\"data\":\"d\",\"channel\":\"c%d\"}",
                   i ? "," : "", i, i);
    buf_puts(&b, "]}");
    return buf_steal(&b);
}

static char *
data_body(size_t n)
{
    char *data = xmalloc(n + 1);
    char *b;

    memset(data, 'a', n);
    data[n] = '\0';
    b = fmt("{\"name\":\"e\",\"data\":\"%s\",\"channel\":\"c\"}", data);
    free(data);
    return b;
}

static void
test_sizes(void)
{
    static const char nul_body[] = "{\"name\":\"e\",\"data\":\"d\0\",\"channel\":\"c\"}";
    char *big = xmalloc(262146), *b;
    struct buf deep = BUF_INIT;

    memset(big, 'x', 262145);
    big[262145] = '\0';
    is_int(send_req(&(struct sreq){.path = "/apps/3/events", .body = big}), 413,
           "R10: body over max-request-size");
    is_int(send_raw("POST", "/apps/3/events", NULL, big), 413,
           "R10: 413 before auth and parsing");
    free(big);
    b = data_body(10240);
    is_int(trigger(b), 200, "R10: data of 10240 bytes");
    free(b);
    b = data_body(10241);
    is_int(trigger(b), 413, "R10: data of 10241 bytes");
    is_str(body(), "Event data too large (max 10240 bytes)", "R10: says why");
    free(b);
    b = channels_body(100);
    is_int(trigger(b), 200, "R10: 100 channels");
    free(b);
    b = channels_body(101);
    is_int(trigger(b), 400, "R10: 101 channels");
    free(b);
    b = batch_body(10);
    is_int(send_req(&(struct sreq){.path = "/apps/3/batch_events", .body = b}), 200,
           "R10: batch of 10");
    ok(strstr(seen(), "[e0|d|c0|-|0]") && strstr(seen(), "[e9|d|c9|-|0]"),
       "R10: all 10 reach the backend");
    free(b);
    b = batch_body(11);
    is_int(send_req(&(struct sreq){.path = "/apps/3/batch_events", .body = b}), 400,
           "R10: batch of 11");
    free(b);
    is_int(send_req(
               &(struct sreq){.path = "/apps/3/batch_events", .body = "{\"batch\":[]}"}),
           400, "empty batch");
    is_int(trigger("{\"name\":\"e\",\"data\":\"\xff\xfe\",\"channel\":\"c\"}"), 400,
           "R10: non-UTF-8 body");
    buf_puts(&deep, "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"x\":");
    for (int i = 0; i < 10000; i++)
        buf_putc(&deep, '[');
    for (int i = 0; i < 10000; i++)
        buf_putc(&deep, ']');
    buf_putc(&deep, '}');
    is_int(trigger(buf_data(&deep)), 400, "R10: 10,000-deep JSON");
    buf_free(&deep);
    is_int(trigger("{\"name\":\"e\",\"data\":"), 400, "R10: not JSON");
    is_int(trigger("{\"name\":\"e\",\"name\":\"f\",\"data\":\"d\",\"channel\":\"c\"}"),
           400, "R10: duplicate keys");
    is_int(trigger("[1]"), 400, "body not an object");
    is_int(send_req(&(struct sreq){.path = "/apps/3/events",
                                   .body = nul_body,
                                   .body_len = sizeof(nul_body) - 1}),
           400, "R10: NUL byte in the body");
}

static void
test_socket_ids(void)
{
    static const char *const bad[] = {"1.1\\n", "../1", "1.1 ", "1",    "",
                                      "1.",     ".1",   "a.b",  "1.1.1"};
    char *b, *id;

    is_int(trigger(
               "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"socket_id\":\"1.1\"}"),
           200, "R11: socket_id 1.1");
    is_str(seen(), "publish app=3 [e|d|c|1.1|0]", "R11: socket_id reaches the backend");
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"socket_id\":"
                   "\"123456.7890123\"}"),
           200, "R11: long digits");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        b = fmt("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"socket_id\":\"%s\"}",
                bad[i]);
        is_int(trigger(b), 400, "R11: socket_id \"%s\" refused", bad[i]);
        free(b);
    }
    id = xmalloc(1026);
    memset(id, '1', 1025);
    id[512] = '.';
    id[1025] = '\0';
    b = fmt("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"socket_id\":\"%s\"}", id);
    is_int(trigger(b), 400, "R11: 1 KB socket_id refused");
    free(b);
    free(id);
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"socket_id\":1.1}"),
           400, "R11: numeric socket_id refused");
}

static void
test_event_fields(void)
{
    static const struct {
        const char *json, *what;
    } bad[] = {
        {"{\"data\":\"d\",\"channel\":\"c\"}", "missing name"},
        {"{\"name\":\"\",\"data\":\"d\",\"channel\":\"c\"}", "empty name"},
        {"{\"name\":7,\"data\":\"d\",\"channel\":\"c\"}", "numeric name"},
        {"{\"name\":\"e\",\"channel\":\"c\"}", "missing data"},
        {"{\"name\":\"e\",\"data\":{\"a\":1},\"channel\":\"c\"}", "object data"},
        {"{\"name\":\"e\",\"data\":\"d\"}", "no channel"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channel\":\"a b\"}", "invalid channel"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channels\":[\"ok\",7]}", "non-string channel"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channels\":[]}", "no channels"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channels\":\"c\"}", "channels not an array"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"channels\":[\"c\"]}",
         "both"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channels\":[\"private-encrypted-a\",\"b\"]}",
         "encrypted among several"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"info\":\"members\"}",
         "unknown info"},
        {"{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\",\"info\":\"cache\"}",
         "cache info on a trigger"},
    };
    char *b, name[202];

    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        is_int(trigger(bad[i].json), 400, "trigger with %s refused", bad[i].what);
    memset(name, 'n', 201);
    name[201] = '\0';
    b = fmt("{\"name\":\"%s\",\"data\":\"d\",\"channel\":\"c\"}", name);
    is_int(trigger(b), 400, "201-byte event name refused");
    free(b);
    name[200] = '\0';
    b = fmt("{\"name\":\"%s\",\"data\":\"d\",\"channel\":\"c\"}", name);
    is_int(trigger(b), 200, "200-byte event name accepted");
    free(b);
    is_int(send_req(&(struct sreq){.path = "/apps/3/batch_events",
                                   .body = "{\"batch\":[{\"name\":\"e\",\"data\":\"d\","
                                           "\"channels\":[\"a\"]}]}"}),
           400, "batch entry with channels");
    is_int(send_req(&(struct sreq){.path = "/apps/3/batch_events",
                                   .body = "{\"batch\":[{\"name\":\"e\",\"data\":\"d\","
                                           "\"channel\":\"a\"},7]}"}),
           400, "batch entry not an object");
    is_int(send_req(&(struct sreq){.path = "/apps/3/batch_events", .body = "{}"}), 400,
           "batch missing");
    is_int(
        send_req(&(struct sreq){.method = "POST",
                                .path = "/apps/3/events",
                                .params = "name=qe&data=hello&channels[]=a&channels[]=b"
                                          "&socket_id=9.9"}),
        200, "trigger from query parameters");
    is_str(seen(), "publish app=3 [qe|hello|a,b|9.9|0]",
           "query fields reach the backend");
}

static void
test_publish_info(void)
{
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channels\":[\"presence-a\",\"b\"],"
                   "\"info\":\"user_count,subscription_count\"}"),
           200, "trigger with info");
    is_str(body(),
           "{\"channels\":{\"presence-a\":{\"user_count\":42,\"subscription_count\":51},"
           "\"b\":{\"subscription_count\":13}}}",
           "trigger info: user_count only on presence");
    is_str(seen(), "publish app=3 [e|d|presence-a,b|-|3]",
           "info flags reach the backend");
    is_int(
        trigger(
            "{\"name\":\"e\",\"data\":\"d\",\"channel\":\"b\",\"info\":\"user_count\"}"),
        200, "user_count on a public channel");
    is_str(body(), "{\"channels\":{\"b\":{}}}", "asked nothing it has");
    is_int(
        send_req(&(struct sreq){
            .path = "/apps/3/batch_events",
            .body =
                "{\"batch\":[{\"name\":\"e\",\"data\":\"1\",\"channel\":\"presence-a\","
                "\"info\":\"user_count\"},{\"name\":\"e\",\"data\":\"2\",\"channel\":"
                "\"b\"},{\"name\":\"e\",\"data\":\"3\",\"channel\":\"c\",\"info\":"
                "\"subscription_count\",\"socket_id\":\"1.2\"}]}"}),
        200, "batch with info");
    is_str(body(), "{\"batch\":[{\"user_count\":42},{},{\"subscription_count\":13}]}",
           "batch info is index-aligned");
    is_str(seen(), "publish app=3 [e|1|presence-a|-|1] [e|2|b|-|0] [e|3|c|1.2|2]",
           "batch reaches the backend in order");
    be.mode = BE_SHORT;
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"b\",\"info\":"
                   "\"subscription_count\"}"),
           500, "a backend that gives no stats is an internal error");
    be.mode = BE_SYNC;
}

static void
test_channels(void)
{
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels"}), 200, "list channels");
    is_str(body(), "{\"channels\":{\"presence-a\":{},\"presence-b\":{},\"b\":{}}}",
           "occupied channels only");
    is_str(seen(), "channels app=3 info=0", "no prefix asked");
    is_int(
        send_req(&(struct sreq){.path = "/apps/3/channels",
                                .params = "filter_by_prefix=presence-&info=user_count"}),
        200, "user_count with presence- prefix");
    is_str(body(),
           "{\"channels\":{\"presence-a\":{\"user_count\":42},\"presence-b\":{\"user_"
           "count\":"
           "42}}}",
           "user counts");
    is_str(seen(), "channels app=3 prefix=presence- info=1",
           "prefix reaches the backend");
    is_int(
        send_req(&(struct sreq){.path = "/apps/3/channels", .params = "info=user_count"}),
        400, "user_count without a prefix");
    is_int(
        send_req(&(struct sreq){.path = "/apps/3/channels",
                                .params = "filter_by_prefix=private-&info=user_count"}),
        400, "user_count with another prefix");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels",
                                   .params = "info=subscription_count"}),
           200, "subscription_count on an app that counts");
    is_str(body(),
           "{\"channels\":{\"presence-a\":{\"subscription_count\":51},\"presence-b\":{"
           "\"subscription_count\":51},\"b\":{\"subscription_count\":13}}}",
           "subscription counts");
    is_int(send_req(&(struct sreq){.path = "/apps/5/channels",
                                   .key = "nosc-key",
                                   .secret = "nosc-secret",
                                   .params = "info=subscription_count"}),
           400, "subscription_count on an app that does not count");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .params = "info=cache"}),
           400, "cache is not a list attribute");
}

static void
test_percent_decoding(void)
{
    char sig[65], *q;
    const char *canon = "GET\n/apps/3/channels\nauth_key=" KEY
                        "&auth_timestamp=1353088179&auth_version=1.0"
                        "&filter_by_prefix=presence-&info=user_count";

    hmac_hex(SECRET, canon, strlen(canon), sig);
    q = fmt("auth_key=%s&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix="
            "presence%%2D&info=user%%5fcount&auth_signature=%s",
            KEY, sig);
    is_int(send_raw("GET", "/apps/3/channels", q, NULL), 200,
           "escaped query values are signed decoded");
    free(q);
    is_str(seen(), "channels app=3 prefix=presence- info=1", "decoded values used");

    canon = "GET\n/apps/3/channels/presence%2Da\nauth_key=" KEY
            "&auth_timestamp=1353088179&auth_version=1.0&info=user_count";
    hmac_hex(SECRET, canon, strlen(canon), sig);
    q = fmt("auth_key=%s&auth_timestamp=1353088179&auth_version=1.0&info=user_count"
            "&auth_signature=%s",
            KEY, sig);
    is_int(send_raw("GET", "/apps/3/channels/presence%2Da", q, NULL), 200,
           "escaped channel in the path; signed as received");
    free(q);
    is_str(seen(), "channel app=3 channel=presence-a info=1", "channel decoded");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels",
                                   .params = "filter_by_prefix=a+b"}),
           401, "'+' decodes to a space, which was not what was signed");
}

static void
test_channel(void)
{
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/presence-a",
                                   .params = "info=user_count,subscription_count"}),
           200, "presence channel with counts");
    is_str(body(), "{\"occupied\":true,\"user_count\":3,\"subscription_count\":4}",
           "channel counts");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/b"}), 200, "plain channel");
    is_str(body(), "{\"occupied\":true}", "occupied only");
    is_int(send_req(
               &(struct sreq){.path = "/apps/3/channels/b", .params = "info=user_count"}),
           400, "user_count on a public channel");
    is_int(send_req(&(struct sreq){.path = "/apps/5/channels/b",
                                   .key = "nosc-key",
                                   .secret = "nosc-secret",
                                   .params = "info=subscription_count"}),
           400, "subscription_count refused when the app does not count");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/cache-x",
                                   .params = "info=cache"}),
           200, "cache channel");
    is_str(body(),
           "{\"occupied\":true,\"cache\":{\"data\":\"{\\\"a\\\":1}\",\"ttl\":60}}",
           "cache data and ttl");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/b", .params = "info=cache"}),
           400, "cache on a non-cache channel");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/empty-x",
                                   .params = "info=subscription_count"}),
           200, "unoccupied channel");
    is_str(body(), "{\"occupied\":false,\"subscription_count\":0}",
           "unoccupied counts are 0");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/a%20b"}), 400,
           "invalid channel name");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/presence-a/users"}), 200,
           "presence users");
    is_str(body(), "{\"users\":[{\"id\":\"1\"},{\"id\":\"2\"}]}", "user ids");
    is_str(seen(), "users app=3 channel=presence-a", "users query");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/b/users"}), 400,
           "users of a non-presence channel");
}

static void
test_terminate(void)
{
    char *path, long_id[130];

    is_int(send_req(&(struct sreq){.path = "/apps/3/users/42/terminate_connections",
                                   .body = "{}"}),
           200, "terminate connections");
    is_str(body(), "{}", "terminate answers {}");
    is_str(seen(), "terminate app=3 user=42", "user id reaches the backend");
    memset(long_id, 'u', 129);
    long_id[129] = '\0';
    path = fmt("/apps/3/users/%s/terminate_connections", long_id);
    is_int(send_req(&(struct sreq){.path = path, .body = "{}"}), 400, "user id too long");
    free(path);
    is_int(send_req(&(struct sreq){.path = "/apps/3/users/a%0Ab/terminate_connections",
                                   .body = "{}"}),
           400, "control character in a user id");
}

static void
test_async(void)
{
    struct rest_req req;
    char *path = xstrdup("/apps/3/events");
    char *b =
        xstrdup("{\"name\":\"e\",\"data\":\"d\",\"channels\":[\"presence-a\",\"b\"],"
                "\"info\":\"user_count\"}");
    char md5[33], sig[65], *canon, *q;

    md5_hex(b, strlen(b), md5);
    canon = fmt("POST\n%s\nauth_key=%s&auth_timestamp=%d&auth_version=1.0&body_md5=%s",
                path, KEY, NOW, md5);
    hmac_hex(SECRET, canon, strlen(canon), sig);
    q = fmt("%s&auth_signature=%s", strchr(strchr(canon, '\n') + 1, '\n') + 1, sig);
    req = (struct rest_req){"POST", path,      strlen(path), q,    strlen(q),
                            b,      strlen(b), NOW,          false};
    be.mode = BE_ASYNC;
    got.calls = 0;
    rest_handle(&cfg, &backend, &req, on_done, NULL);
    is_int(got.calls, 0, "async: no answer before the backend's");
    /* The request's memory goes away before the backend answers. */
    memset(b, 'z', strlen(b));
    free(b);
    free(path);
    free(q);
    free(canon);
    be_flush();
    is_int(got.calls, 1, "async: answered once");
    is_int(got.status, 200, "async: 200");
    is_str(body(), "{\"channels\":{\"presence-a\":{\"user_count\":42},\"b\":{}}}",
           "async: info from copies of the request");
    is_str(seen(), "publish app=3 [e|d|presence-a,b|-|1]", "async: the query held");

    got.calls = 0;
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels/presence-a/users"}), 0,
           "async GET waits");
    be_flush();
    is_str(body(), "{\"users\":[{\"id\":\"1\"},{\"id\":\"2\"}]}", "async GET answered");
    be.mode = BE_SYNC;
}

static void
test_backend_failure(void)
{
    be.mode = BE_FAIL;
    is_int(trigger("{\"name\":\"e\",\"data\":\"d\",\"channel\":\"c\"}"), 503,
           "bus down: 503 passes through");
    is_str(body(), "Bus unavailable", "bus down: its message");
    is_str(got.type, "text/plain", "bus down: text/plain");
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels"}), 503,
           "bus down: queries too");
    be.mode = BE_SYNC;
}

static void
test_query_caps(void)
{
    struct buf p = BUF_INIT;

    for (int i = 0; i < 61; i++)
        buf_printf(&p, "%sx%d=1", i ? "&" : "", i);
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .params = buf_data(&p)}),
           400, "65 query parameters");
    buf_reset(&p);
    for (int i = 0; i < 60; i++)
        buf_printf(&p, "%sx%d=1", i ? "&" : "", i);
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .params = buf_data(&p)}),
           200, "64 query parameters");
    buf_reset(&p);
    buf_puts(&p, "x=");
    for (int i = 0; i < 8192; i++)
        buf_putc(&p, 'a');
    is_int(send_req(&(struct sreq){.path = "/apps/3/channels", .params = buf_data(&p)}),
           400, "query over 8 KiB");
    buf_free(&p);
}

/* A transport that decoded the query already (lws) must not have it decoded
 * twice: "%zz" is then a literal value, not a bad escape. */
static void
test_decoded_query(void)
{
    struct rest_req req = {
        "GET", "/apps/3/channels", 16, "filter_by_prefix=%zz", 20, NULL, 0, NOW, false};

    got.status = 0;
    rest_handle(&cfg, &backend, &req, on_done, NULL);
    is_int(got.status, 400, "a raw query with a bad escape is 400");
    req.query_decoded = true;
    got.status = 0;
    rest_handle(&cfg, &backend, &req, on_done, NULL);
    is_int(got.status, 401, "the same pieces already decoded reach the signature check");
}

int
main(void)
{
    test_decoded_query();
    test_worked_example();
    test_trigger();
    test_timestamps();
    test_signatures();
    test_body_md5();
    test_keys_and_apps();
    test_routes();
    test_sizes();
    test_socket_ids();
    test_event_fields();
    test_publish_info();
    test_channels();
    test_percent_decoding();
    test_channel();
    test_terminate();
    test_async();
    test_backend_failure();
    test_query_caps();
    buf_free(&be.seen);
    buf_free(&got.body);
    return done_testing();
}

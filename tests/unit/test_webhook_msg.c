/* test_webhook_msg.c - webhook_msg.c: each event object byte for byte (the
 * shapes of PROTOCOL.md section 13), the body, URLs good and bad, the
 * request's headers, and the answer's status line fed whole and in pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_msg.h"
#include "tap.h"
#include "mn.h"

#define S(lit) lit, sizeof(lit) - 1

struct event_case {
    struct webhook_event ev;
    const char *want;
};

static const struct event_case events[] = {
    {{WEBHOOK_CHANNEL_OCCUPIED, S("c"), NULL, 0, NULL, 0, NULL, 0, NULL, 0, false},
     "{\"name\":\"channel_occupied\",\"channel\":\"c\"}"},
    {{WEBHOOK_CHANNEL_VACATED, S("c"), NULL, 0, NULL, 0, NULL, 0, NULL, 0, false},
     "{\"name\":\"channel_vacated\",\"channel\":\"c\"}"},
    {{WEBHOOK_MEMBER_ADDED, S("presence-c"), S("u"), NULL, 0, NULL, 0, NULL, 0, false},
     "{\"name\":\"member_added\",\"channel\":\"presence-c\",\"user_id\":\"u\"}"},
    {{WEBHOOK_MEMBER_REMOVED, S("presence-c"), S("u\"1"), NULL, 0, NULL, 0, NULL, 0,
      false},
     "{\"name\":\"member_removed\",\"channel\":\"presence-c\",\"user_id\":\"u\\\"1\"}"},
    {{WEBHOOK_CLIENT_EVENT, S("private-c"), NULL, 0, S("client-x"), S("{\"a\":1}"), "1.2",
      0, false},
     "{\"name\":\"client_event\",\"channel\":\"private-c\",\"event\":\"client-x\","
     "\"data\":\"{\\\"a\\\":1}\",\"socket_id\":\"1.2\"}"},
    {{WEBHOOK_CLIENT_EVENT, S("presence-c"), S("u"), S("client-x"), S("hi"), "1.2", 0,
      false},
     "{\"name\":\"client_event\",\"channel\":\"presence-c\",\"event\":\"client-x\","
     "\"data\":\"hi\",\"socket_id\":\"1.2\",\"user_id\":\"u\"}"},
    {{WEBHOOK_CACHE_MISS, S("cache-c"), NULL, 0, NULL, 0, NULL, 0, NULL, 0, false},
     "{\"name\":\"cache_miss\",\"channel\":\"cache-c\"}"},
    {{WEBHOOK_SUBSCRIPTION_COUNT, S("c"), NULL, 0, NULL, 0, NULL, 0, NULL, 7, false},
     "{\"name\":\"subscription_count\",\"channel\":\"c\",\"subscription_count\":7}"},
};

struct url_case {
    const char *url;
    const char *why; /* NULL: accepted */
    const char *host, *path;
    unsigned port;
    int tls;
};

static const struct url_case urls[] = {
    {"http://127.0.0.1:3000/hooks", NULL, "127.0.0.1", "/hooks", 3000, 0},
    {"http://example.com", NULL, "example.com", "/", 80, 0},
    {"HTTP://example.com?x=1", NULL, "example.com", "?x=1", 80, 0},
    {"https://example.com/a/b?c=d", NULL, "example.com", "/a/b?c=d", 443, 1},
    {"http://[::1]:8080/x", NULL, "[::1]", "/x", 8080, 0},
    {"ftp://example.com/", "must start with http:// or https://", NULL, NULL, 0, 0},
    {"http://", "must name a host (http://host[:port]/path)", NULL, NULL, 0, 0},
    {"http://:80/", "must name a host (http://host[:port]/path)", NULL, NULL, 0, 0},
    {"http://h:0/", "must have a port of 1 to 65535 after ':'", NULL, NULL, 0, 0},
    {"http://h:65536/", "must have a port of 1 to 65535 after ':'", NULL, NULL, 0, 0},
    {"http://h:/", "must have a port of 1 to 65535 after ':'", NULL, NULL, 0, 0},
    {"http://h:8x/", "must have a port of 1 to 65535 after ':'", NULL, NULL, 0, 0},
    {"http://u:p@h/", "must not carry a user name or password", NULL, NULL, 0, 0},
    {"http://h/a b", "must not contain whitespace, control or non-ASCII characters", NULL,
     NULL, 0, 0},
    {"http://h/#f", "must not have a fragment ('#')", NULL, NULL, 0, 0},
    {"http://[::1/", "has an IPv6 host without its closing ']'", NULL, NULL, 0, 0},
    {"http://[::1]x/", "has something after the IPv6 host that is not \":port\"", NULL,
     NULL, 0, 0},
};

struct status_case {
    const char *in;
    int rc, status;
};

static const struct status_case statuses[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, 200},
    {"HTTP/1.0 500 Internal\r\n\r\n", 1, 500},
    {"HTTP/1.1 204\r\n\r\n", 1, 204},
    {"HTTP/1.1 200 OK\r\nX: y\r\n", 0, 200},
    {"HTTP/1.1 2", 0, 0},
    {"HTTP/", 0, 0},
    {"SSH-2.0-x\r\n", -1, 0},
    {"HTTP/1.1 2x0 OK\r\n\r\n", -1, 0},
    {"HTTP/1.1 2000 OK\r\n\r\n", -1, 0},
};

static void
test_events(void)
{
    for (size_t i = 0; i < ARRAY_LEN(events); i++) {
        struct buf b = BUF_INIT;

        webhook_msg_event(&b, &events[i].ev);
        is_str(buf_data(&b), events[i].want, "event %s",
               webhook_kind_name(events[i].ev.kind));
        buf_free(&b);
    }
    for (int k = 0; k < WEBHOOK_KIND_COUNT; k++) {
        const char *name = webhook_kind_name((enum webhook_kind)k);
        is_int(webhook_kind_parse(name, strlen(name)), k, "name %s parses back", name);
    }
    is_int(webhook_kind_parse(S("channel_occupiedx")), -1, "unknown name refused");
    ok(webhook_kind_name(WEBHOOK_KIND_COUNT) == NULL, "no name past the last kind");
}

static void
test_body_request(void)
{
    struct buf b = BUF_INIT, r = BUF_INIT;
    struct webhook_url u;
    static const char want_head[] =
        "POST /hooks?x=1 HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUser-Agent: "
        "MicroNotifier\r\n"
        "Content-Type: application/json\r\nX-Pusher-Key: k\r\nX-Pusher-Signature: s\r\n"
        "Content-Length: 65\r\nConnection: close\r\n\r\n";

    webhook_msg_body(&b, 1327078148132ull, S("{\"name\":\"channel_occupied\",\"a\":1}"));
    is_str(buf_data(&b),
           "{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_occupied\","
           "\"a\":1}]}",
           "body");
    webhook_url_parse(S("http://127.0.0.1:3000/hooks?x=1"), &u);
    buf_reset(&b);
    webhook_msg_body(&b, 1, S("{\"name\":\"channel_vacated\",\"channel\":\"c\"}"));
    webhook_msg_request(&r, &u, "k", "s", buf_data(&b), b.len);
    ok(r.len == strlen(want_head) + b.len &&
           memcmp(buf_data(&r), want_head, strlen(want_head)) == 0 &&
           memcmp(buf_data(&r) + strlen(want_head), buf_data(&b), b.len) == 0,
       "request: headers then body, Content-Length %zu", b.len);
    buf_reset(&r);
    webhook_url_parse(S("http://example.com"), &u);
    webhook_msg_request(&r, &u, "k", "s", "", 0);
    ok(strncmp(buf_data(&r), "POST / HTTP/1.1\r\nHost: example.com\r\n", 36) == 0,
       "default port left out of Host, path /");
    /* https: 443 is the default, 80 is not (the sender passes the hook's tls) */
    {
        static const struct {
            const char *url, *want;
        } hosts[] = {
            {"https://example.com/h", "POST /h HTTP/1.1\r\nHost: example.com\r\n"},
            {"https://example.com:80/h", "POST /h HTTP/1.1\r\nHost: example.com:80\r\n"},
            {"http://example.com:443/h", "POST /h HTTP/1.1\r\nHost: example.com:443\r\n"},
            {"https://[::1]:8443/h", "POST /h HTTP/1.1\r\nHost: [::1]:8443\r\n"},
        };
        for (size_t i = 0; i < ARRAY_LEN(hosts); i++) {
            buf_reset(&r);
            webhook_url_parse(hosts[i].url, strlen(hosts[i].url), &u);
            webhook_msg_request(&r, &u, "k", "s", "", 0);
            ok(strncmp(buf_data(&r), hosts[i].want, strlen(hosts[i].want)) == 0,
               "Host header of %s", hosts[i].url);
        }
    }
    buf_free(&b);
    buf_free(&r);
}

static void
test_urls(void)
{
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        const struct url_case *c = &urls[i];
        struct webhook_url u;
        const char *why = webhook_url_parse(c->url, strlen(c->url), &u);
        char host[64] = "", path[64] = "";

        is_str(why, c->why, "url %s", c->url);
        if (why != NULL || c->why != NULL)
            continue;
        snprintf(host, sizeof(host), "%.*s", (int)u.host_len, u.host);
        snprintf(path, sizeof(path), "%.*s", (int)u.path_len, u.path);
        ok(strcmp(host, c->host) == 0 && strcmp(path, c->path) == 0 &&
               u.port == c->port && u.tls == (c->tls != 0),
           "url %s: host %s port %u path %s", c->url, host, u.port, path);
    }
}

static void
test_status(void)
{
    for (size_t i = 0; i < ARRAY_LEN(statuses); i++) {
        const struct status_case *c = &statuses[i];
        int st = -7, rc = webhook_msg_status(c->in, strlen(c->in), &st);

        ok(rc == c->rc && st == c->status, "status case %zu (%.8s...): rc %d status %d",
           i, c->in, rc, st);
    }
    /* byte by byte: never complete early, complete at the last byte */
    {
        static const char in[] = "HTTP/1.1 503 Busy\r\nRetry-After: 1\r\n\r\n";
        int st = 0, rc = 0;
        size_t n;

        for (n = 1; n <= sizeof(in) - 1; n++)
            if ((rc = webhook_msg_status(in, n, &st)) != 0)
                break;
        ok(rc == 1 && st == 503 && n == sizeof(in) - 1,
           "fed a byte at a time: complete at byte %zu with %d", n, st);
    }
}

int
main(void)
{
    test_events();
    test_body_request();
    test_urls();
    test_status();
    return done_testing();
}

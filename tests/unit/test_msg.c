/* test_msg.c - msg.c: every encoder byte for byte, round trips through jansson,
 * msg_parse on good and hostile frames, msg_parse_member and its limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "msg.h"
#include "tap.h"
#include "mn.h"

#define S(lit) lit, sizeof(lit) - 1

/* --- encoders: each case appends one message to a buffer --- */

static void
enc_established(struct buf *b)
{
    msg_connection_established(b, "123.456", 120);
}

static void
enc_error(struct buf *b)
{
    msg_error(b, 4001, "Application does not exist");
}

static void
enc_error_null(struct buf *b)
{
    msg_error(b, -1, "Invalid JSON in message: \"x\"");
}

static void
enc_ping(struct buf *b)
{
    msg_ping(b);
}

static void
enc_pong(struct buf *b)
{
    msg_pong(b);
}

static void
enc_event(struct buf *b)
{
    msg_event(b, S("my-event"), S("my-channel"), S("{\"message\":\"hello world\"}"), NULL,
              0);
}

static void
enc_event_user(struct buf *b)
{
    msg_event(b, S("client-typing"), S("presence-room"), S("{}"), S("10"));
}

static void
enc_cache_miss(struct buf *b)
{
    msg_event(b, S("pusher:cache_miss"), S("cache-c"), NULL, 0, NULL, 0);
}

static void
enc_event_escapes(struct buf *b)
{
    msg_event(b, S("e"), NULL, 0, S("q\"b\\n\nt\tc\x01 \xc3\xa9"), NULL, 0);
}

static void
enc_event_nul(struct buf *b)
{
    msg_event(b, S("e"), NULL, 0, S("a\0b"), NULL, 0);
}

static void
enc_succeeded(struct buf *b)
{
    msg_subscription_succeeded(b, S("my-channel"), NULL, 0);
}

static void
enc_succeeded_presence(struct buf *b)
{
    static const char p[] = "{\"presence\":{\"ids\":[\"1\"],\"hash\":{\"1\":null},"
                            "\"count\":1}}";

    msg_subscription_succeeded(b, S("presence-c"), S(p));
}

static void
enc_sub_error(struct buf *b)
{
    msg_subscription_error(b, S("private-c"), "AuthError", "Invalid signature", 401);
}

static void
enc_member_added(struct buf *b)
{
    msg_member_added(b, S("presence-c"), S("10"), S("{\"name\":\"Mr. Channels\"}"));
}

static void
enc_member_added_null(struct buf *b)
{
    msg_member_added(b, S("presence-c"), S("u\"1"), NULL, 0);
}

static void
enc_member_removed(struct buf *b)
{
    msg_member_removed(b, S("presence-c"), S("10"));
}

static void
enc_presence(struct buf *b)
{
    static const char *const ids[] = {"1", "2"};
    static const size_t id_lens[] = {1, 1};
    static const char *const infos[] = {"{\"name\":\"a\"}", NULL};
    static const size_t info_lens[] = {12, 0};

    msg_presence_object(b, ids, id_lens, infos, info_lens, 2);
}

static void
enc_presence_empty(struct buf *b)
{
    msg_presence_object(b, NULL, NULL, NULL, NULL, 0);
}

static void
enc_signin_success(struct buf *b)
{
    msg_signin_success(b, S("{\"id\":\"12345\"}"));
}

static void
enc_subscription_count(struct buf *b)
{
    msg_subscription_count(b, S("my-channel"), 42);
}

static const char *const wl_on[] = {"1"}, *const wl_off[] = {"2", "3"};
static const size_t wl_on_lens[] = {1}, wl_off_lens[] = {1, 1};

static void
enc_watchlist(struct buf *b)
{
    msg_watchlist_events(b, wl_on, wl_on_lens, 1, wl_off, wl_off_lens, 2);
}

static void
enc_watchlist_offline(struct buf *b)
{
    msg_watchlist_events(b, NULL, NULL, 0, wl_off, wl_off_lens, 2);
}

static void
enc_watchlist_online(struct buf *b)
{
    msg_watchlist_events(b, wl_on, wl_on_lens, 1, NULL, NULL, 0);
}

static void
enc_appends(struct buf *b)
{
    buf_puts(b, "[");
    msg_ping(b);
    buf_puts(b, ",");
    msg_pong(b);
    buf_puts(b, "]");
}

struct enc_case {
    const char *name;
    void (*fn)(struct buf *);
    const char *want;
};

static const struct enc_case enc_cases[] = {
    {"connection_established", enc_established,
     "{\"event\":\"pusher:connection_established\",\"data\":\"{\\\"socket_id\\\":"
     "\\\"123.456\\\",\\\"activity_timeout\\\":120}\"}"},
    {"error with code", enc_error,
     "{\"event\":\"pusher:error\",\"data\":\"{\\\"code\\\":4001,\\\"message\\\":"
     "\\\"Application does not exist\\\"}\"}"},
    {"error, code null", enc_error_null,
     "{\"event\":\"pusher:error\",\"data\":\"{\\\"code\\\":null,\\\"message\\\":"
     "\\\"Invalid JSON in message: \\\\\\\"x\\\\\\\"\\\"}\"}"},
    {"ping", enc_ping, "{\"event\":\"pusher:ping\",\"data\":\"{}\"}"},
    {"pong", enc_pong, "{\"event\":\"pusher:pong\",\"data\":\"{}\"}"},
    {"event", enc_event,
     "{\"event\":\"my-event\",\"channel\":\"my-channel\",\"data\":"
     "\"{\\\"message\\\":\\\"hello world\\\"}\"}"},
    {"event with user_id", enc_event_user,
     "{\"event\":\"client-typing\",\"channel\":\"presence-room\",\"data\":\"{}\","
     "\"user_id\":\"10\"}"},
    {"cache_miss: no data", enc_cache_miss,
     "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-c\"}"},
    {"event data escaped", enc_event_escapes,
     "{\"event\":\"e\",\"data\":\"q\\\"b\\\\n\\nt\\tc\\u0001 \xc3\xa9\"}"},
    {"event data with NUL", enc_event_nul, "{\"event\":\"e\",\"data\":\"a\\u0000b\"}"},
    {"subscription_succeeded", enc_succeeded,
     "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":"
     "\"my-channel\",\"data\":\"{}\"}"},
    {"subscription_succeeded presence", enc_succeeded_presence,
     "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":"
     "\"presence-c\",\"data\":\"{\\\"presence\\\":{\\\"ids\\\":[\\\"1\\\"],"
     "\\\"hash\\\":{\\\"1\\\":null},\\\"count\\\":1}}\"}"},
    {"subscription_error", enc_sub_error,
     "{\"event\":\"pusher:subscription_error\",\"channel\":\"private-c\",\"data\":"
     "\"{\\\"type\\\":\\\"AuthError\\\",\\\"error\\\":\\\"Invalid signature\\\","
     "\\\"status\\\":401}\"}"},
    {"member_added", enc_member_added,
     "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-c\","
     "\"data\":\"{\\\"user_id\\\":\\\"10\\\",\\\"user_info\\\":{\\\"name\\\":"
     "\\\"Mr. Channels\\\"}}\"}"},
    {"member_added, no info", enc_member_added_null,
     "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-c\","
     "\"data\":\"{\\\"user_id\\\":\\\"u\\\\\\\"1\\\",\\\"user_info\\\":null}\"}"},
    {"member_removed", enc_member_removed,
     "{\"event\":\"pusher_internal:member_removed\",\"channel\":\"presence-c\","
     "\"data\":\"{\\\"user_id\\\":\\\"10\\\"}\"}"},
    {"presence object", enc_presence,
     "{\"presence\":{\"ids\":[\"1\",\"2\"],\"hash\":{\"1\":{\"name\":\"a\"},"
     "\"2\":null},\"count\":2}}"},
    {"presence object, empty", enc_presence_empty,
     "{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}"},
    {"signin_success", enc_signin_success,
     "{\"event\":\"pusher:signin_success\",\"data\":\"{\\\"user_data\\\":"
     "\\\"{\\\\\\\"id\\\\\\\":\\\\\\\"12345\\\\\\\"}\\\"}\"}"},
    {"subscription_count", enc_subscription_count,
     "{\"event\":\"pusher_internal:subscription_count\",\"channel\":\"my-channel\","
     "\"data\":\"{\\\"subscription_count\\\":42}\"}"},
    {"watchlist_events", enc_watchlist,
     "{\"event\":\"pusher_internal:watchlist_events\",\"data\":\"{\\\"events\\\":["
     "{\\\"name\\\":\\\"online\\\",\\\"user_ids\\\":[\\\"1\\\"]},"
     "{\\\"name\\\":\\\"offline\\\",\\\"user_ids\\\":[\\\"2\\\",\\\"3\\\"]}]}\"}"},
    {"watchlist_events, offline only", enc_watchlist_offline,
     "{\"event\":\"pusher_internal:watchlist_events\",\"data\":\"{\\\"events\\\":["
     "{\\\"name\\\":\\\"offline\\\",\\\"user_ids\\\":[\\\"2\\\",\\\"3\\\"]}]}\"}"},
    {"watchlist_events, online only", enc_watchlist_online,
     "{\"event\":\"pusher_internal:watchlist_events\",\"data\":\"{\\\"events\\\":["
     "{\\\"name\\\":\\\"online\\\",\\\"user_ids\\\":[\\\"1\\\"]}]}\"}"},
    {"encoders append", enc_appends,
     "[{\"event\":\"pusher:ping\",\"data\":\"{}\"},"
     "{\"event\":\"pusher:pong\",\"data\":\"{}\"}]"},
};

static void
test_encoders(void)
{
    for (size_t i = 0; i < ARRAY_LEN(enc_cases); i++) {
        struct buf b = BUF_INIT;

        enc_cases[i].fn(&b);
        is_str(buf_data(&b), enc_cases[i].want, "encode %s", enc_cases[i].name);
        buf_free(&b);
    }
}

/* --- round trips: what we encode, jansson decodes back --- */

#define ROUND_TRIP_TESTS 11

/* The string at obj[key], with its length. */
static const char *
str_at(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = json_object_get(obj, key);

    *len = json_string_length(v);
    return json_string_value(v);
}

static void
round_trip_event(void)
{
    char data[300];
    size_t n = 0, len;
    const char *s;
    struct buf b = BUF_INIT;
    json_t *root;

    for (int c = 0; c < 128; c++) /* every ASCII byte, NUL and controls too */
        data[n++] = (char)c;
    memcpy(data + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    n += 9;
    msg_event(&b, S("client-\"x\""), S("presence-c"), data, n, S("u\\1"));
    root = json_loadb(buf_data(&b), b.len, JSON_ALLOW_NUL, NULL);
    s = str_at(root, "event", &len);
    ok(s != NULL && len == 10 && memcmp(s, "client-\"x\"", len) == 0,
       "round trip: event name");
    s = str_at(root, "data", &len);
    ok(s != NULL && len == n && memcmp(s, data, n) == 0,
       "round trip: all 128 ASCII bytes and UTF-8 in data");
    s = str_at(root, "user_id", &len);
    ok(s != NULL && strcmp(s, "u\\1") == 0, "round trip: user_id");
    json_decref(root);
    buf_free(&b);
}

/* Decodes a message and then its data string. */
static json_t *
inner_of(const struct buf *b)
{
    json_t *root = json_loadb(buf_data(b), b->len, 0, NULL);
    size_t len;
    const char *s = str_at(root, "data", &len);
    json_t *inner = s ? json_loadb(s, len, 0, NULL) : NULL;

    json_decref(root);
    return inner;
}

static void
round_trip_inner(void)
{
    static const char *const ids[] = {"1", "\xc3\xa9"};
    static const size_t id_lens[] = {1, 2};
    static const char *const infos[] = {"[1,{\"a\":\"b\"}]", NULL};
    static const size_t info_lens[] = {13, 0};
    struct buf b = BUF_INIT, p = BUF_INIT;
    json_t *in, *pres;

    msg_connection_established(&b, "1234.5678", 30);
    in = inner_of(&b);
    is_str(json_string_value(json_object_get(in, "socket_id")), "1234.5678",
           "round trip: socket_id");
    is_int(json_integer_value(json_object_get(in, "activity_timeout")), 30,
           "round trip: activity_timeout is an integer");
    json_decref(in);
    buf_reset(&b);
    msg_presence_object(&p, ids, id_lens, infos, info_lens, 2);
    msg_subscription_succeeded(&b, S("presence-c"), buf_data(&p), p.len);
    in = inner_of(&b);
    pres = json_object_get(in, "presence");
    is_int(json_integer_value(json_object_get(pres, "count")), 2,
           "round trip: presence count");
    is_str(json_string_value(json_array_get(json_object_get(pres, "ids"), 1)), "\xc3\xa9",
           "round trip: presence ids");
    ok(json_is_null(json_object_get(json_object_get(pres, "hash"), "\xc3\xa9")) &&
           json_array_size(json_object_get(json_object_get(pres, "hash"), "1")) == 2,
       "round trip: presence hash");
    json_decref(in);
    buf_free(&p);
    buf_free(&b);
}

/* A client event's object data survives msg_parse and msg_event unchanged. */
static void
round_trip_client_event(void)
{
    static const char frame[] = "{\"event\":\"client-x\",\"channel\":\"private-c\","
                                "\"data\":{\"z\": [1, 2.5, \"\\u00e9\"], \"a\": null, "
                                "\"m\": {\"t\": true}}}";
    struct msg_in m;
    struct buf b = BUF_INIT;
    json_t *root, *back;

    ok(msg_parse(S(frame), &m, NULL) == 0, "round trip: client event parsed");
    msg_event(&b, m.event, strlen(m.event), m.channel, strlen(m.channel), m.data,
              m.data_len, NULL, 0);
    root = json_loads(frame, 0, NULL);
    back = inner_of(&b);
    ok(json_equal(json_object_get(root, "data"), back),
       "round trip: client data equal after relay");
    is_str(m.data, "{\"z\":[1,2.5,\"\xc3\xa9\"],\"a\":null,\"m\":{\"t\":true}}",
           "round trip: client data compact, key order kept");
    json_decref(back);
    json_decref(root);
    msg_in_free(&m);
    buf_free(&b);
}

/* --- msg_parse --- */

struct parse_case {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    int rc;
    const char *event, *channel, *data, *auth, *channel_data, *user_data;
};

/* A frame msg_parse must refuse; len 0 means strlen(text). */
#define REFUSE(name, text, len)                                                          \
    {                                                                                    \
        name, text, len, -1, NULL, NULL, NULL, NULL, NULL, NULL                          \
    }

#define AUTH "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f"

static const struct parse_case parse_cases[] = {
    {"subscribe, object data",
     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"my-channel\"}}", 0, 0,
     "pusher:subscribe", "my-channel", NULL, NULL, NULL, NULL},
    {"subscribe, string data",
     "{\"event\":\"pusher:subscribe\",\"data\":\"{\\\"channel\\\":\\\"private-c\\\","
     "\\\"auth\\\":\\\"" AUTH "\\\"}\"}",
     0, 0, "pusher:subscribe", "private-c", NULL, AUTH, NULL, NULL},
    {"presence subscribe, channel_data string",
     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-c\",\"auth\":"
     "\"k:s\",\"channel_data\":\"{\\\"user_id\\\": 10, \\\"user_info\\\":{}}\"}}",
     0, 0, "pusher:subscribe", "presence-c", NULL, "k:s",
     "{\"user_id\": 10, \"user_info\":{}}", NULL},
    {"presence subscribe, channel_data object",
     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-c\",\"auth\":"
     "\"k:s\",\"channel_data\":{\"user_id\": \"u\", \"user_info\": {\"n\": 1}}}}",
     0, 0, "pusher:subscribe", "presence-c", NULL, "k:s",
     "{\"user_id\":\"u\",\"user_info\":{\"n\":1}}", NULL},
    {"unsubscribe", "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"c\"}}", 0,
     0, "pusher:unsubscribe", "c", NULL, NULL, NULL, NULL},
    {"ping from pusher-js", "{\"event\":\"pusher:ping\",\"data\":{}}", 0, 0,
     "pusher:ping", NULL, NULL, NULL, NULL, NULL},
    {"pong without data, blanks around", " \n{\"event\" : \"pusher:pong\"}\t ", 0, 0,
     "pusher:pong", NULL, NULL, NULL, NULL, NULL},
    {"signin",
     "{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"k:s\",\"user_data\":"
     "\"{\\\"id\\\":\\\"u1\\\"}\"}}",
     0, 0, "pusher:signin", NULL, NULL, "k:s", NULL, "{\"id\":\"u1\"}"},
    {"data.channel wins, nulls are absent",
     "{\"event\":\"pusher:subscribe\",\"channel\":\"top\",\"data\":{\"channel\":\"in\","
     "\"auth\":null}}",
     0, 0, "pusher:subscribe", "in", NULL, NULL, NULL, NULL},
    {"client event, object data",
     "{\"event\":\"client-typing\",\"channel\":\"private-c\",\"data\":{\"a\": [1, 2], "
     "\"b\" : \"x\"}}",
     0, 0, "client-typing", "private-c", "{\"a\":[1,2],\"b\":\"x\"}", NULL, NULL, NULL},
    {"client event, string data kept exactly",
     "{\"event\":\"client-x\",\"channel\":\"private-c\",\"data\":\"{\\\"raw\\\": 1}\"}",
     0, 0, "client-x", "private-c", "{\"raw\": 1}", NULL, NULL, NULL},
    {"client event, number data", "{\"event\":\"client-n\",\"data\":-5}", 0, 0,
     "client-n", NULL, "-5", NULL, NULL, NULL},
    {"client event, null data", "{\"event\":\"client-n\",\"data\":null}", 0, 0,
     "client-n", NULL, "null", NULL, NULL, NULL},
    {"client event, no data", "{\"event\":\"client-n\",\"channel\":\"private-c\"}", 0, 0,
     "client-n", "private-c", NULL, NULL, NULL, NULL},
    {"client event, brackets inside strings do not nest",
     "{\"event\":\"client-s\",\"data\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", 0,
     0, "client-s", NULL, "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", NULL, NULL, NULL},
    {"escaped event name", "{\"event\":\"client-\\u00e9\"}", 0, 0, "client-\xc3\xa9",
     NULL, NULL, NULL, NULL, NULL},
    {"duplicate key: last wins", "{\"event\":\"a\",\"event\":\"client-b\"}", 0, 0,
     "client-b", NULL, NULL, NULL, NULL, NULL},
    {"frame is (ptr, len), not NUL-terminated", "{\"event\":\"pusher:ping\"}GARBAGE", 23,
     0, "pusher:ping", NULL, NULL, NULL, NULL, NULL},
    REFUSE("empty frame", "", 0),
    REFUSE("null", "null", 0),
    REFUSE("array", "[]", 0),
    REFUSE("string", "\"x\"", 0),
    REFUSE("number", "42", 0),
    REFUSE("no event", "{}", 0),
    REFUSE("event is a number", "{\"event\":7}", 0),
    REFUSE("event is null", "{\"event\":null}", 0),
    REFUSE("event is empty", "{\"event\":\"\"}", 0),
    REFUSE("subscribe, data is a number", "{\"event\":\"pusher:subscribe\",\"data\":5}",
           0),
    REFUSE("subscribe, data is an array", "{\"event\":\"pusher:subscribe\",\"data\":[]}",
           0),
    REFUSE("subscribe, data string not JSON",
           "{\"event\":\"pusher:subscribe\",\"data\":\"channel\"}", 0),
    REFUSE("subscribe, data string holds an array",
           "{\"event\":\"pusher:subscribe\",\"data\":\"[\\\"c\\\"]\"}", 0),
    REFUSE("subscribe, channel is a number",
           "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":5}}", 0),
    REFUSE("subscribe, auth is an object",
           "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"c\",\"auth\":{}}}",
           0),
    REFUSE("subscribe, channel_data is a number",
           "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"c\",\"channel_data\":"
           "1}}",
           0),
    REFUSE("signin, user_data is an array",
           "{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"k:s\",\"user_data\":[]}}",
           0),
    REFUSE("client event, channel is an array", "{\"event\":\"client-x\",\"channel\":[]}",
           0),
    REFUSE("truncated JSON",
           "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"c\"", 0),
    REFUSE("invalid UTF-8", "{\"event\":\"client-\xff\"}", 0),
    REFUSE("overlong UTF-8", "{\"event\":\"client-\xc0\xaf\"}", 0),
    REFUSE("lone surrogate", "{\"event\":\"client-\\ud800\"}", 0),
    REFUSE("escaped NUL", "{\"event\":\"client-\\u0000x\"}", 0),
    REFUSE("raw NUL in a string", "{\"event\":\"cl\0ient\"}", 19),
    REFUSE("trailing garbage", "{\"event\":\"pusher:ping\"} x", 0),
    REFUSE("two objects", "{\"event\":\"a\"}{\"event\":\"b\"}", 0),
};

/* Checks one case: 8 tests when it must parse, 2 when it must fail. */
static void
parse_check(const struct parse_case *c)
{
    struct msg_in m;
    struct mn_err err = {0, ""};
    size_t len = c->len ? c->len : strlen(c->text);
    int rc = msg_parse(c->text, len, &m, &err);

    is_int(rc, c->rc, "parse %s%s%s", c->name, rc < 0 ? ": " : "", rc < 0 ? err.msg : "");
    if (c->rc < 0) {
        ok(err.status == 400 && err.msg[0] != '\0' && m.event == NULL &&
               m.channel == NULL && m.data == NULL && m.auth == NULL &&
               m.channel_data == NULL && m.user_data == NULL,
           "parse %s: status 400, message, nothing kept", c->name);
    } else {
        is_str(m.event, c->event, "parse %s: event", c->name);
        is_str(m.channel, c->channel, "parse %s: channel", c->name);
        is_str(m.data, c->data, "parse %s: data", c->name);
        ok(m.data_len == (c->data ? strlen(c->data) : 0), "parse %s: data_len", c->name);
        is_str(m.auth, c->auth, "parse %s: auth", c->name);
        is_str(m.channel_data, c->channel_data, "parse %s: channel_data", c->name);
        is_str(m.user_data, c->user_data, "parse %s: user_data", c->name);
    }
    msg_in_free(&m);
}

/* n opening brackets, then n closing ones. */
static void
nest(struct buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        buf_putc(b, ']');
}

#define DEPTH_TESTS 14

/* Depth limits, on frames built here: the envelope is one level. */
static void
parse_depth(void)
{
    struct buf ok32 = BUF_INIT, deep33 = BUF_INIT, deep = BUF_INIT, str33 = BUF_INIT;
    struct buf want = BUF_INIT;

    buf_puts(&ok32, "{\"event\":\"client-d\",\"data\":");
    nest(&ok32, MSG_MAX_DEPTH - 1);
    buf_puts(&ok32, "}");
    nest(&want, MSG_MAX_DEPTH - 1);
    parse_check(&(struct parse_case){.name = "client data 32 levels deep",
                                     .text = buf_data(&ok32),
                                     .event = "client-d",
                                     .data = buf_data(&want)});

    buf_puts(&deep33, "{\"event\":\"client-d\",\"data\":");
    nest(&deep33, MSG_MAX_DEPTH);
    buf_puts(&deep33, "}");
    parse_check(&(struct parse_case){
        .name = "client data 33 levels deep", .text = buf_data(&deep33), .rc = -1});

    nest(&deep, 10000); /* 20 KB */
    parse_check(&(struct parse_case){
        .name = "10,000 nested arrays (20 KB)", .text = buf_data(&deep), .rc = -1});

    buf_puts(&str33, "{\"event\":\"pusher:subscribe\",\"data\":\"{\\\"channel\\\":");
    nest(&str33, MSG_MAX_DEPTH);
    buf_puts(&str33, "}\"}");
    parse_check(&(struct parse_case){.name = "subscribe data string 33 levels deep",
                                     .text = buf_data(&str33),
                                     .rc = -1});
    buf_free(&ok32);
    buf_free(&deep33);
    buf_free(&deep);
    buf_free(&str33);
    buf_free(&want);
}

/* --- msg_parse_member --- */

struct member_case {
    const char *name;
    const char *text;
    const char *id_key;
    int rc;
    const char *user_id, *user_info;
};

static const struct member_case member_cases[] = {
    {"numeric id (the docs' example)",
     "{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}", "user_id", 0, "10",
     "{\"name\":\"Mr. Channels\"}"},
    {"string id, info re-serialised compactly in order",
     "{ \"user_id\" : \"abc\", \"user_info\" : { \"z\" : [1, 2], \"a\" : null } }",
     "user_id", 0, "abc", "{\"z\":[1,2],\"a\":null}"},
    {"negative id", "{\"user_id\":-7}", "user_id", 0, "-7", "null"},
    {"id above 2^53", "{\"user_id\":9007199254740993}", "user_id", 0, "9007199254740993",
     "null"},
    {"missing user_info is null", "{\"user_id\":\"u\"}", "user_id", 0, "u", "null"},
    {"user_info null", "{\"user_id\":\"u\",\"user_info\":null}", "user_id", 0, "u",
     "null"},
    {"user_info a string", "{\"user_id\":\"u\",\"user_info\":\"hi\"}", "user_id", 0, "u",
     "\"hi\""},
    {"sign-in id", "{\"id\":\"u1\",\"user_info\":{\"n\":1},\"watchlist\":[\"2\"]}", "id",
     0, "u1", "{\"n\":1}"},
    {"missing id", "{\"user_info\":{}}", "user_id", -1, NULL, NULL},
    {"sign-in: user_id is not id", "{\"user_id\":\"u1\"}", "id", -1, NULL, NULL},
    {"null id", "{\"user_id\":null}", "user_id", -1, NULL, NULL},
    {"empty id", "{\"user_id\":\"\"}", "user_id", -1, NULL, NULL},
    {"real id", "{\"user_id\":1.5}", "user_id", -1, NULL, NULL},
    {"boolean id", "{\"user_id\":true}", "user_id", -1, NULL, NULL},
    {"object id", "{\"user_id\":{}}", "user_id", -1, NULL, NULL},
    {"not an object", "[\"u\"]", "user_id", -1, NULL, NULL},
    {"not JSON", "user_id=1", "user_id", -1, NULL, NULL},
    {"empty text", "", "user_id", -1, NULL, NULL},
    {"too deep",
     "{\"user_id\":\"u\",\"user_info\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     "user_id", -1, NULL, NULL},
};

static void
member_check(const char *name, const char *text, const char *id_key, int want_rc,
             const char *user_id, const char *user_info)
{
    struct msg_member m;
    struct mn_err err = {0, ""};
    int rc = msg_parse_member(text, strlen(text), id_key, 128, 1024, &m, &err);

    is_int(rc, want_rc, "member %s%s%s", name, rc < 0 ? ": " : "", rc < 0 ? err.msg : "");
    ok(rc == 0 || (err.status == 400 && err.msg[0] != '\0'),
       "member %s: a refusal carries status 400 and a message", name);
    is_str(m.user_id, user_id, "member %s: user_id", name);
    is_str(m.user_info, user_info, "member %s: user_info", name);
    ok(m.info_len == (user_info ? strlen(user_info) : 0), "member %s: info_len", name);
    msg_member_free(&m);
}

#define MEMBER_TESTS 5
#define MEMBER_LIMIT_CASES 5

/* Limits 128 characters of id and 1024 bytes of user_info, at the boundary. */
static void
member_limits(void)
{
    struct buf id = BUF_INIT, doc = BUF_INIT, info = BUF_INIT;

    for (int i = 0; i < 128; i++)
        buf_putc(&id, (char)('a' + i % 26));
    buf_printf(&doc, "{\"user_id\":\"%s\"}", buf_data(&id));
    member_check("id of 128 characters", buf_data(&doc), "user_id", 0, buf_data(&id),
                 "null");
    buf_reset(&doc);
    buf_printf(&doc, "{\"user_id\":\"%sz\"}", buf_data(&id));
    member_check("id of 129 characters", buf_data(&doc), "user_id", -1, NULL, NULL);

    buf_reset(&id);
    for (int i = 0; i < 128; i++)
        buf_puts(&id, "\xc3\xa9"); /* 2 bytes, 1 character */
    buf_reset(&doc);
    buf_printf(&doc, "{\"user_id\":\"%s\"}", buf_data(&id));
    member_check("id of 128 two-byte characters", buf_data(&doc), "user_id", 0,
                 buf_data(&id), "null");

    for (int i = 0; i < 1022; i++)
        buf_putc(&info, 'x');
    buf_reset(&doc);
    buf_printf(&doc, "{\"user_id\":\"u\",\"user_info\":\"%s\"}", buf_data(&info));
    buf_reset(&id);
    buf_printf(&id, "\"%s\"", buf_data(&info));
    member_check("user_info of 1024 bytes", buf_data(&doc), "user_id", 0, "u",
                 buf_data(&id));
    buf_reset(&doc);
    buf_printf(&doc, "{\"user_id\":\"u\",\"user_info\":\"%sx\"}", buf_data(&info));
    member_check("user_info of 1025 bytes", buf_data(&doc), "user_id", -1, NULL, NULL);
    buf_free(&id);
    buf_free(&doc);
    buf_free(&info);
}

/* --- msg_parse_watchlist --- */

struct watch_case {
    const char *name;
    const char *text;
    int rc;
    size_t n, total;
    const char *first, *last; /* ids[0], ids[n - 1] */
};

static const struct watch_case watch_cases[] = {
    {"no watchlist", "{\"id\":\"1\"}", 0, 0, 0, NULL, NULL},
    {"null watchlist", "{\"id\":\"1\",\"watchlist\":null}", 0, 0, 0, NULL, NULL},
    {"strings", "{\"id\":\"1\",\"watchlist\":[\"a\",\"b\"]}", 0, 2, 2, "a", "b"},
    {"integer ids as text", "{\"watchlist\":[7,\"x\",-3]}", 0, 3, 3, "7", "-3"},
    {"duplicates kept", "{\"watchlist\":[\"a\",\"a\"]}", 0, 2, 2, "a", "a"},
    {"first 3 of 5 kept", "{\"watchlist\":[\"1\",\"2\",\"3\",\"4\",{}]}", 0, 3, 5, "1",
     "3"},
    {"not an array", "{\"watchlist\":\"a\"}", -1, 0, 0, NULL, NULL},
    {"object entry", "{\"watchlist\":[\"a\",{}]}", -1, 0, 0, NULL, NULL},
    {"empty id", "{\"watchlist\":[\"\"]}", -1, 0, 0, NULL, NULL},
    {"id of 9 characters", "{\"watchlist\":[\"123456789\"]}", -1, 0, 0, NULL, NULL},
    {"not JSON", "{\"watchlist\":", -1, 0, 0, NULL, NULL},
};
#define WATCH_TESTS 5

static void
watch_check(const struct watch_case *wc)
{
    struct msg_watchlist w;
    struct mn_err err = {0, ""};
    int rc = msg_parse_watchlist(wc->text, strlen(wc->text), 3, 8, &w, &err);

    is_int(rc, wc->rc, "watchlist %s%s%s", wc->name, rc < 0 ? ": " : "",
           rc < 0 ? err.msg : "");
    ok(rc == 0 || err.status == 400, "watchlist %s: a refusal has status 400", wc->name);
    ok(w.n == wc->n && w.total == wc->total, "watchlist %s: n %zu total %zu", wc->name,
       w.n, w.total);
    is_str(w.n ? w.ids[0] : NULL, wc->first, "watchlist %s: first id", wc->name);
    is_str(w.n ? w.ids[w.n - 1] : NULL, wc->last, "watchlist %s: last id", wc->name);
    msg_watchlist_free(&w);
}

/* msg_member_event_parse: the script's member events, as it publishes
 * them; anything else is 0 without a parse, garbled ones -1. */
#define MEMBER_EVENT_TESTS 12
static void
member_events(void)
{
    static const char added[] =
        "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-a\","
        "\"data\":\"{\\\"user_id\\\":\\\"u\\/1\\\",\\\"user_info\\\":{\\\"n\\\":1}}\"}";
    static const char removed[] =
        "{\"event\":\"pusher_internal:member_removed\",\"channel\":\"presence-a\","
        "\"data\":\"{\\\"user_id\\\":\\\"u1\\\"}\"}";
    static const char other[] =
        "{\"event\":\"client-x\",\"channel\":\"presence-a\",\"data\":\"{}\"}";
    static const char garbled[] =
        "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-a\","
        "\"data\":\"{\\\"user_info\\\":1}\"}";
    struct msg_member m;
    bool add = false;

    is_int(msg_member_event_parse(added, sizeof(added) - 1, &add, &m), 1, "added: one");
    ok(add, "added: added");
    is_str(m.user_id, "u/1", "added: the id, unescaped");
    is_str(m.user_info, "{\"n\":1}", "added: user_info, compact");
    is_int((int)m.info_len, 7, "added: info_len");
    msg_member_free(&m);
    is_int(msg_member_event_parse(removed, sizeof(removed) - 1, &add, &m), 1,
           "removed: one");
    ok(!add, "removed: not added");
    is_str(m.user_id, "u1", "removed: the id");
    ok(m.user_info == NULL, "removed: no user_info");
    msg_member_free(&m);
    is_int(msg_member_event_parse(other, sizeof(other) - 1, &add, &m), 0,
           "another event: 0");
    msg_member_free(&m);
    is_int(msg_member_event_parse(garbled, sizeof(garbled) - 1, &add, &m), -1,
           "no user_id: -1");
    msg_member_free(&m);
    is_int(msg_member_event_parse(added, sizeof(added) - 3, &add, &m), -1,
           "cut short: -1");
    msg_member_free(&m);
}

int
main(void)
{
    int n =
        (int)ARRAY_LEN(enc_cases) + ROUND_TRIP_TESTS + DEPTH_TESTS + MEMBER_EVENT_TESTS;

    for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++)
        n += parse_cases[i].rc == 0 ? 8 : 2;
    n += (int)(ARRAY_LEN(member_cases) + MEMBER_LIMIT_CASES) * MEMBER_TESTS;
    n += (int)ARRAY_LEN(watch_cases) * WATCH_TESTS;
    plan(n);
    test_encoders();
    round_trip_event();
    round_trip_inner();
    round_trip_client_event();
    for (size_t i = 0; i < ARRAY_LEN(parse_cases); i++)
        parse_check(&parse_cases[i]);
    parse_depth();
    for (size_t i = 0; i < ARRAY_LEN(member_cases); i++)
        member_check(member_cases[i].name, member_cases[i].text, member_cases[i].id_key,
                     member_cases[i].rc, member_cases[i].user_id,
                     member_cases[i].user_info);
    member_limits();
    member_events();
    for (size_t i = 0; i < ARRAY_LEN(watch_cases); i++)
        watch_check(&watch_cases[i]);
    return done_testing();
}

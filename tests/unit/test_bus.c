/* test_bus.c - the local bus: the wire format (round trips of every query
 * kind and of answers; every truncation, every single-byte corruption, lying
 * counts, NUL in names, trailing bytes, rule breaks refused without a crash),
 * and bus_local.c's calls against a fake gateway (no gateway: 503 with a
 * clear text; the gateway closing, answering garbage or the wrong id:
 * 503/500; a good answer passed through; a stale pooled connection replaced). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "bus.h"
#include "config.h"
#include "mem.h"
#include "tap.h"
#include "mn.h"

static struct mn_config *cfg;
static char sock_path[108];

static const char cfg_text[] =
    "{\"applications\": [{\"name\": \"app1\", \"key\": \"k1\", \"secret\": \"s1\"},"
    " {\"name\": \"app2\", \"key\": \"k2\", \"secret\": \"s2\", \"max-event-size\": 8}],"
    " \"local-socket\": \"%s\"}";

/* --- fixtures ------------------------------------------------------------ */

static const char *const chans_a[] = {"news", "presence-room"};
static const char *const chans_b[] = {"private-x"};

static struct rest_event events[] = {
    {"ev-1", 4, "{\"a\":1}", 7, chans_a, 2, "123.456", REST_INFO_USER_COUNT},
    {"ev-2", 4, "", 0, chans_b, 1, NULL, 0},
};

static struct rest_query
publish_query(void)
{
    struct rest_query q = {0};

    q.op = REST_PUBLISH;
    q.app = &cfg->apps[0];
    q.events = events;
    q.nevents = ARRAY_LEN(events);
    return q;
}

static void
frame_of(struct buf *b, const struct rest_query *q)
{
    buf_reset(b);
    bus_put_query(b, 42, q);
}

static struct bus_msg *
decode(const struct buf *b, struct mn_err *err)
{
    return bus_msg_decode(buf_data(b) + BUS_FRAME_HEADER, b->len - BUS_FRAME_HEADER, cfg,
                          err);
}

/* --- the wire format ----------------------------------------------------- */

static void
test_publish_round_trip(void)
{
    struct rest_query q = publish_query();
    struct buf b = BUF_INIT;
    struct mn_err err = {0, ""};
    struct bus_msg *m;

    frame_of(&b, &q);
    is_int(bus_frame_len(buf_data(&b)), (long long)(b.len - BUS_FRAME_HEADER),
           "frame length is the body length, big-endian");
    m = decode(&b, &err);
    if (!ok(m != NULL, "publish query decodes (%s)", err.msg)) {
        buf_free(&b);
        return;
    }
    is_int(m->kind, BUS_QUERY, "kind query");
    is_int(m->id, 42, "id kept");
    ok(m->q.app == &cfg->apps[0], "app resolved in the config");
    is_int((long long)m->q.nevents, 2, "two events");
    is_str(m->q.events[0].name, "ev-1", "event name");
    is_str(m->q.events[0].data, "{\"a\":1}", "event data");
    is_str(m->q.events[0].socket_id, "123.456", "socket_id");
    is_int(m->q.events[0].info, REST_INFO_USER_COUNT, "info bits");
    is_int((long long)m->q.events[0].nchannels, 2, "channel count");
    is_str(m->q.events[0].channels[1], "presence-room", "second channel");
    ok(m->q.events[1].socket_id == NULL, "absent socket_id stays NULL");
    is_int((long long)m->q.events[1].data_len, 0, "empty data kept as empty");
    bus_msg_free(m);
    buf_free(&b);
}

static void
test_other_queries(void)
{
    struct rest_query q = {0};
    struct buf b = BUF_INIT;
    struct mn_err err = {0, ""};
    struct bus_msg *m;

    q.op = REST_CHANNELS;
    q.app = &cfg->apps[1];
    q.prefix = "presence-";
    q.prefix_len = 9;
    q.info = REST_INFO_USER_COUNT;
    frame_of(&b, &q);
    m = decode(&b, &err);
    ok(m && m->q.op == REST_CHANNELS && m->q.app == &cfg->apps[1] &&
           strcmp(m->q.prefix, "presence-") == 0 && m->q.info == REST_INFO_USER_COUNT &&
           m->q.channel == NULL,
       "channels query with prefix and info round-trips");
    bus_msg_free(m);

    memset(&q, 0, sizeof(q));
    q.op = REST_USERS;
    q.app = &cfg->apps[0];
    q.channel = "presence-room";
    q.channel_len = 13;
    frame_of(&b, &q);
    m = decode(&b, &err);
    ok(m && m->q.op == REST_USERS && strcmp(m->q.channel, "presence-room") == 0 &&
           m->q.channel_len == 13 && m->q.prefix == NULL,
       "users query round-trips");
    bus_msg_free(m);

    memset(&q, 0, sizeof(q));
    q.op = REST_TERMINATE;
    q.app = &cfg->apps[0];
    q.user_id = "user 7";
    q.user_id_len = 6;
    frame_of(&b, &q);
    m = decode(&b, &err);
    ok(m && m->q.op == REST_TERMINATE && strcmp(m->q.user_id, "user 7") == 0,
       "terminate query round-trips");
    bus_msg_free(m);
    buf_free(&b);
}

static void
test_answer_round_trip(void)
{
    static const char *const users[] = {"1", "two"};
    struct rest_chan_stat st[2] = {
        {"presence-room", true, 3, 4, NULL, 0, NULL, 0},
        {"cache-x", false, 0, 0, "{\"v\":1}", 7, "upd", 60},
    };
    struct rest_answer a = {0};
    struct buf b = BUF_INIT;
    struct mn_err err = {0, ""};
    struct bus_msg *m;

    a.chans = st;
    a.nchans = 2;
    a.users = users;
    a.nusers = 2;
    bus_put_answer(&b, 9, &a);
    m = bus_msg_decode(buf_data(&b) + 4, b.len - 4, NULL, &err);
    ok(m && m->kind == BUS_ANSWER && m->id == 9 && m->a.status == 0, "answer decodes");
    ok(m && m->a.nchans == 2 && strcmp(m->a.chans[0].name, "presence-room") == 0 &&
           m->a.chans[0].occupied && m->a.chans[0].user_count == 3 &&
           m->a.chans[0].subscription_count == 4,
       "channel stats kept");
    ok(m && m->a.chans[1].cache_len == 7 &&
           strcmp(m->a.chans[1].cache_data, "{\"v\":1}") == 0 &&
           strcmp(m->a.chans[1].cache_event, "upd") == 0 && m->a.chans[1].cache_ttl == 60,
       "cache fields kept");
    ok(m && m->a.nusers == 2 && strcmp(m->a.users[1], "two") == 0, "users kept");
    bus_msg_free(m);

    memset(&a, 0, sizeof(a));
    a.status = 503;
    a.message = "down";
    buf_reset(&b);
    bus_put_answer(&b, 10, &a);
    m = bus_msg_decode(buf_data(&b) + 4, b.len - 4, NULL, &err);
    ok(m && m->a.status == 503 && strcmp(m->a.message, "down") == 0,
       "error answer keeps status and message");
    bus_msg_free(m);
    buf_free(&b);
}

/* Every prefix of a valid frame body is refused, and every single-byte
 * change is either refused or decodes to something the rules allow: never a
 * crash (ASan and UBSan watch). */
static void
test_truncated_and_corrupted(void)
{
    struct rest_query q = publish_query();
    struct buf b = BUF_INIT;
    struct mn_err err;
    size_t n, refused = 0, decoded = 0;
    char *body;

    frame_of(&b, &q);
    n = b.len - BUS_FRAME_HEADER;
    body = xmalloc(n);
    for (size_t len = 0; len < n; len++) {
        struct bus_msg *m;

        memcpy(body, buf_data(&b) + BUS_FRAME_HEADER, len);
        m = bus_msg_decode(body, len, cfg, &err);
        refused += m == NULL;
        bus_msg_free(m);
    }
    is_int((long long)refused, (long long)n, "all %zu truncations refused", n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            struct bus_msg *m;

            memcpy(body, buf_data(&b) + BUS_FRAME_HEADER, n);
            body[i] ^= (char)(1 << bit);
            m = bus_msg_decode(body, n, cfg, &err);
            decoded += m != NULL;
            bus_msg_free(m);
        }
    }
    ok(decoded < n * 8, "bit flips: %zu of %zu decode, the rest are refused", decoded,
       n * 8);
    free(body);
    buf_free(&b);
}

static void
expect_refused(const struct rest_query *q, int status, const char *what)
{
    struct buf b = BUF_INIT;
    struct mn_err err = {0, ""};
    struct bus_msg *m;

    frame_of(&b, q);
    m = decode(&b, &err);
    ok(m == NULL && err.status == status, "%s refused with %d (%s)", what, status,
       err.msg);
    bus_msg_free(m);
    buf_free(&b);
}

static void
test_rule_breaks(void)
{
    static const char *const bad_chan[] = {"no spaces"};
    static const char *const nul_chan[] = {"a"};
    struct mn_app ghost = cfg->apps[0];
    struct rest_event ev = events[1];
    struct rest_query q = publish_query();

    ghost.id = "ghost";
    q.app = &ghost;
    expect_refused(&q, 404, "unknown app");

    q = publish_query();
    q.nevents = 0;
    expect_refused(&q, 400, "publish without events");

    q = publish_query();
    ev.channels = bad_chan;
    q.events = &ev;
    q.nevents = 1;
    expect_refused(&q, 400, "invalid channel name");

    ev = events[1];
    ev.channels = nul_chan;
    ev.name = "a\0b";
    ev.name_len = 3;
    q.events = &ev;
    expect_refused(&q, 400, "NUL inside an event name");

    ev = events[0];
    ev.socket_id = "1.1\n";
    q.events = &ev;
    expect_refused(&q, 400, "invalid socket_id");

    ev = events[0];
    ev.data = "123456789";
    ev.data_len = 9;
    q = publish_query();
    q.app = &cfg->apps[1]; /* max-event-size 8 */
    q.events = &ev;
    q.nevents = 1;
    expect_refused(&q, 400, "data over the app's max-event-size");

    memset(&q, 0, sizeof(q));
    q.op = REST_CHANNEL;
    q.app = &cfg->apps[0];
    expect_refused(&q, 400, "channel query without a channel");
}

static void
test_lying_counts(void)
{
    struct rest_query q = {0};
    struct buf b = BUF_INIT;
    struct mn_err err = {0, ""};
    struct bus_msg *m;
    unsigned char *p;

    q.op = REST_CHANNELS;
    q.app = &cfg->apps[0];
    frame_of(&b, &q);
    /* the last four bytes are nevents: claim four billion events */
    p = (unsigned char *)buf_data(&b) + b.len - 4;
    memset(p, 0xff, 4);
    m = decode(&b, &err);
    ok(m == NULL, "a count larger than the message is refused (%s)", err.msg);
    bus_msg_free(m);

    frame_of(&b, &q);
    buf_putc(&b, 'x');
    m = decode(&b, &err);
    ok(m == NULL, "a trailing byte is refused (%s)", err.msg);
    bus_msg_free(m);

    frame_of(&b, &q);
    p = (unsigned char *)buf_data(&b);
    p[BUS_FRAME_HEADER + 1] = 9; /* the version byte */
    m = decode(&b, &err);
    ok(m == NULL, "an unknown version is refused");
    bus_msg_free(m);
    buf_free(&b);
    ok(bus_query_cap(cfg) >= ((size_t)1 << 20), "query cap at least 1 MiB");
}

/* --- bus_local.c against a fake gateway ---------------------------------- */

enum fake_mode { FAKE_CLOSE, FAKE_GARBAGE, FAKE_WRONG_ID, FAKE_GOOD };

struct fake {
    int listen_fd;
    enum fake_mode mode;
    int conns; /* connections accepted */
};

static void
read_frame(int fd, struct buf *in)
{
    unsigned char hdr[4];
    size_t have = 0;
    uint32_t len;

    buf_reset(in);
    while (have < 4) {
        ssize_t n = read(fd, hdr + have, 4 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
    }
    len = bus_frame_len(hdr);
    buf_reserve(in, len);
    while (in->len < len) {
        ssize_t n = read(fd, buf_data(in) + in->len, len - in->len);
        if (n <= 0)
            return;
        in->len += (size_t)n;
    }
}

static void *
fake_run(void *arg)
{
    struct fake *f = arg;
    struct buf in = BUF_INIT, out = BUF_INIT;
    int fd = accept(f->listen_fd, NULL, NULL);

    if (fd < 0)
        return NULL;
    f->conns++;
    read_frame(fd, &in);
    if (f->mode == FAKE_GARBAGE) {
        buf_append(&out, "\0\0\0\3abc", 7);
    } else if (f->mode != FAKE_CLOSE) {
        struct rest_answer a = {0};
        static const char *const users[] = {"u1"};
        uint32_t id = in.len >= 7 ? bus_frame_len(buf_data(&in) + 3) : 0;

        a.users = users;
        a.nusers = 1;
        bus_put_answer(&out, f->mode == FAKE_WRONG_ID ? id + 1 : id, &a);
    }
    if (out.len && write(fd, buf_data(&out), out.len) < 0)
        perror("fake write");
    /* Closed after one answer: the client pools the connection anyway, and
     * must notice at its next call that it went stale. */
    close(fd);
    buf_free(&in);
    buf_free(&out);
    return NULL;
}

static struct {
    int status;
    char message[256];
    size_t nusers;
} got;

static void
on_answer(void *arg, const struct rest_answer *a)
{
    (void)arg;
    got.status = a->status;
    snprintf(got.message, sizeof(got.message), "%s", a->message ? a->message : "");
    got.nusers = a->nusers;
}

static void
call_with(struct bus *bus, enum fake_mode mode, struct fake *f)
{
    struct rest_query q = publish_query();
    pthread_t t;

    f->mode = mode;
    pthread_create(&t, NULL, fake_run, f);
    memset(&got, 0, sizeof(got));
    bus_call(bus, &q, on_answer, NULL);
    pthread_join(t, NULL);
}

static void
test_local_client(void)
{
    struct sockaddr_un sa = {0};
    struct rest_query q = publish_query();
    struct mn_err err = {0, ""};
    struct fake f = {0};
    struct bus *bus;

    bus = bus_open(cfg, &err);
    if (!ok(bus != NULL, "local bus opens (%s)", err.msg))
        return;
    memset(&got, 0, sizeof(got));
    bus_call(bus, &q, on_answer, NULL);
    is_int(got.status, 503, "no gateway: 503");
    ok(strstr(got.message, "not reachable") && strstr(got.message, "not published"),
       "no gateway: says the event was not published (\"%s\")", got.message);

    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    f.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (!ok(f.listen_fd >= 0 &&
                bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                listen(f.listen_fd, 8) == 0,
            "fake gateway listens"))
        return;
    call_with(bus, FAKE_CLOSE, &f);
    is_int(got.status, 503, "gateway closes before answering: 503");
    ok(strstr(got.message, "may not have been published") != NULL,
       "and says the event may not have been published");
    call_with(bus, FAKE_GARBAGE, &f);
    is_int(got.status, 500, "garbled answer: 500");
    call_with(bus, FAKE_WRONG_ID, &f);
    is_int(got.status, 500, "answer to another query: 500");
    call_with(bus, FAKE_GOOD, &f);
    ok(got.status == 0 && got.nusers == 1, "good answer passed through");
    f.conns = 0;
    call_with(bus, FAKE_GOOD, &f);
    ok(got.status == 0 && f.conns == 1, "stale pooled connection replaced by a new one");
    close(f.listen_fd);
    unlink(sock_path);
    bus_close(bus);
}

int
main(void)
{
    char text[512];
    struct mn_err err = {0, ""};

    snprintf(sock_path, sizeof(sock_path), "/tmp/mn-test-bus-%ld.sock", (long)getpid());
    unlink(sock_path);
    snprintf(text, sizeof(text), cfg_text, sock_path);
    cfg = config_parse(text, strlen(text), "test", &err);
    if (cfg == NULL) {
        printf("Bail out! config: %s\n", err.msg);
        return 1;
    }
    test_publish_round_trip();
    test_other_queries();
    test_answer_round_trip();
    test_truncated_and_corrupted();
    test_rule_breaks();
    test_lying_counts();
    test_local_client();
    config_free(cfg);
    return done_testing();
}

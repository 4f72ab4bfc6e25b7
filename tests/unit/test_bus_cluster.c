/* test_bus_cluster.c - micronotifier-api's Redis bus without a Redis: the
 * NOSCRIPT retry's command (cluster_cmd_full: EVALSHA becomes the EVAL of
 * the whole script, the arguments kept); bus_open picks it for a config with
 * "redis"; every operation against a refused port answers 503 with the
 * gateways' texts at once, and against a peer that accepts and never
 * answers (a hung Redis) within the reply deadline. The answers against a
 * real Redis are tests/integration/api-redis.test.mjs's. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus.h"
#include "clock.h"
#include "cluster.h"
#include "config.h"
#include "tap.h"
#include "mn.h"

struct got {
    int calls, status;
    char message[128];
};

static void
on_answer(void *arg, const struct rest_answer *ans)
{
    struct got *g = arg;

    g->calls++;
    g->status = ans->status;
    snprintf(g->message, sizeof(g->message), "%s", ans->message ? ans->message : "");
}

static void
test_full(void)
{
    struct cluster_cmd c = {0};

    cluster_cmd_start(&c, "channels", 1, NULL, false);
    cluster_cmd_channels(&c, "app1", "presence-");
    is_str(c.argv[0], "EVALSHA", "started as EVALSHA");
    is_int((long long)c.lens[1], 40, "by the script's SHA1");
    cluster_cmd_full(&c);
    is_str(c.argv[0], "EVAL", "the retry is an EVAL");
    ok(c.lens[1] == cluster_lua_len &&
           memcmp(c.argv[1], cluster_lua, cluster_lua_len) == 0,
       "of the whole script");
    is_int((long long)c.argc, 8, "with the same argument count");
    is_str(c.argv[3], "channels", "the same operation");
    is_str(c.argv[4], "mn:1:", "the same prefix");
    is_str(c.argv[7], "presence-", "the same arguments");
    cluster_cmd_free(&c);

    cluster_cmd_add(&c, "PUBLISH", 7);
    cluster_cmd_add(&c, "x", 1);
    cluster_cmd_full(&c);
    is_str(c.argv[0], "PUBLISH", "any other command is left alone");
    cluster_cmd_free(&c);
}

/* A loopback port: listening (backlog only, never accepted: a hung peer)
 * when fd is given, else closed again (refused). */
static int
loopback_port(int *fd)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0 || (fd && listen(s, 16) < 0))
        return -1;
    port = ntohs(a.sin_port);
    if (fd)
        *fd = s;
    else
        close(s);
    return port;
}

static struct mn_config *
config_for(int port)
{
    char text[512];
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    snprintf(text, sizeof(text),
             "{\"applications\": [{\"name\": \"app1\", \"key\": \"k1\", \"secret\": "
             "\"s1\"}], \"redis\": {\"address\": \"127.0.0.1:%d\"}}",
             port);
    cfg = config_parse(text, strlen(text), "test", &err);
    if (cfg == NULL)
        printf("Bail out! config: %s\n", err.msg);
    return cfg;
}

static const char *const chans[] = {"news", "cache-prices"};
static struct rest_event events[] = {
    {"ev", 2, "{}", 2, chans, 2, NULL, REST_INFO_SUBSCRIPTION_COUNT},
};

/* Each operation against port: 503, the gateways' text, within max_ms. */
static void
calls_fail(int port, uint64_t max_ms, const char *what)
{
    struct mn_config *cfg = config_for(port);
    struct mn_err err = {0, ""};
    struct bus *b;
    static const struct {
        enum rest_op op;
        const char *message;
    } cases[] = {
        {REST_PUBLISH, "Redis is unreachable: the event was not published"},
        {REST_CHANNELS, "Redis is unreachable: the channel state is unknown"},
        {REST_CHANNEL, "Redis is unreachable: the channel state is unknown"},
        {REST_USERS, "Redis is unreachable: the channel state is unknown"},
        {REST_TERMINATE, "Redis is unreachable: terminate_connections was not sent"},
    };

    if (cfg == NULL)
        exit(1);
    b = bus_open(cfg, &err);
    ok(b != NULL, "%s: bus_open gives the Redis bus for a config with redis", what);
    for (size_t i = 0; b && i < ARRAY_LEN(cases); i++) {
        struct rest_query q = {0};
        struct got g = {0, 0, ""};
        uint64_t t0 = mn_now_ms(), ms;

        q.op = cases[i].op;
        q.app = &cfg->apps[0];
        q.events = events;
        q.nevents = cases[i].op == REST_PUBLISH ? 1 : 0;
        q.channel = "presence-room";
        q.channel_len = strlen(q.channel);
        q.user_id = "u1";
        q.user_id_len = 2;
        bus_call(b, &q, on_answer, &g);
        ms = mn_now_ms() - t0;
        ok(g.calls == 1 && g.status == 503,
           "%s: op %d answers 503 once (calls %d status %d)", what, (int)cases[i].op,
           g.calls, g.status);
        is_str(g.message, cases[i].message, "%s: op %d's text", what, (int)cases[i].op);
        ok(ms <= max_ms, "%s: op %d answered after %llu ms (at most %llu)", what,
           (int)cases[i].op, (unsigned long long)ms, (unsigned long long)max_ms);
    }
    bus_close(b);
    config_free(cfg);
}

int
main(void)
{
    int hung_fd = -1, refused = loopback_port(NULL), hung = loopback_port(&hung_fd);

    plan(9 + 2 * (1 + 5 * 3));
    test_full();
    if (refused < 0 || hung < 0) {
        printf("Bail out! no loopback port\n");
        return 1;
    }
    calls_fail(refused, 300, "refused");
    /* The reply deadline (800 ms) bounds each call; valgrind adds a little. */
    calls_fail(hung, 1500, "hung");
    close(hung_fd);
    return done_testing();
}

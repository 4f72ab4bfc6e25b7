/* test_config.c - config.c: every sample in config/ loads, the original
 * MicroNotifier format keeps working with the documented defaults, every key
 * reaches its field, bad files are refused with the file, the JSON path and
 * the reason (and never the secret), and docs/config.md is what the key table
 * generates. JSON in this file uses ' for ", swapped before parsing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tap.h"
#include "mn.h"

#define SECRET "s3cr3t-VALUE"
#define A(extra) "{'name':'a','key':'k','secret':'" SECRET "'" extra "}"
#define B(extra) "{'name':'b','key':'k2','secret':'" SECRET "'" extra "}"
#define CFG(top, app) "{" top "'applications':[" A(app) "]}"
#define REDIS(more) "'redis':{'address':'h:1'" more "},"
#define X64 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

/* Parses JSON written with ' for " as file "t.json". */
static struct mn_config *
parse(const char *sq, struct mn_err *err)
{
    size_t len = strlen(sq);
    char *text = malloc(len + 1);
    struct mn_config *cfg;

    for (size_t i = 0; i <= len; i++)
        text[i] = (char)(sq[i] == '\'' ? '"' : sq[i]);
    cfg = config_parse(text, len, "t.json", err);
    free(text);
    return cfg;
}

struct bad_case {
    const char *json;
    const char *want; /* a substring of err.msg */
};

static const struct bad_case bad[] = {
    {CFG("'prot':8111,", ""), "t.json: prot: unknown key (did you mean \"port\"?)"},
    {CFG("'colour':1,", ""), "t.json: colour: unknown key"},
    {CFG("'sentinel':true,", ""),
     "t.json: sentinel: unknown key (it belongs in \"redis\")"},
    {CFG("'client-events':true,", ""),
     "t.json: client-events: unknown key (it belongs in each applications[] entry)"},
    {CFG("", ",'client-event':true"),
     "t.json: applications[0].client-event: unknown key (did you mean "
     "\"client-events\"?)"},
    {CFG("", ",'colour':'red'"), "t.json: applications[0].colour: unknown key"},
    {CFG(REDIS(",'sentinal':true"), ""),
     "t.json: redis.sentinal: unknown key (did you mean \"sentinel\"?)"},
    {CFG(REDIS(",'mastername':'m'"), ""),
     "t.json: redis.mastername: unknown key (did you mean \"master-name\"?)"},
    {CFG("'port':'8111',", ""), "t.json: port: must be an integer"},
    {CFG("'port':8111.0,", ""), "t.json: port: must be an integer"},
    {CFG("'port':0,", ""), "t.json: port: must be between 1 and 65535"},
    {CFG("'port':70000,", ""), "t.json: port: must be between 1 and 65535"},
    {CFG("'port':-1,", ""), "t.json: port: must be between 1 and 65535"},
    {CFG("'host':5,", ""), "t.json: host: must be a string"},
    {CFG("'host':'',", ""), "t.json: host: must not be empty"},
    {CFG("'certificate':null,", ""), "t.json: certificate: must be a string"},
    {CFG("'workers':65,", ""), "t.json: workers: must be between 0 and 64"},
    {CFG("'activity-timeout':0,", ""),
     "t.json: activity-timeout: must be between 1 and 86400"},
    {CFG("'idle-ping':86401,", ""), "t.json: idle-ping: must be between 1 and 86400"},
    {CFG("'max-message-size':100,", ""),
     "t.json: max-message-size: must be between 1024 and 16777216"},
    {CFG("'log-level':'verbose',", ""),
     "t.json: log-level: must be \"error\", \"warn\", \"info\" or \"debug\""},
    {CFG("'log-level':'',", ""), "t.json: log-level: must be \"error\""},
    {CFG("'local-socket':'/" X64 X64 "',", ""),
     "t.json: local-socket: must be at most 107 bytes"},
    {CFG("", ",'client-events':'yes'"),
     "t.json: applications[0].client-events: must be true or false"},
    {CFG("", ",'enabled':1"), "t.json: applications[0].enabled: must be true or false"},
    {CFG("", ",'authorization-timeout':0"),
     "t.json: applications[0].authorization-timeout: must be between 1 and 86400"},
    {CFG("", ",'max-event-size':-5"),
     "t.json: applications[0].max-event-size: must be between 1 and 16777216"},
    {"{}", "t.json: applications: required key is missing"},
    {"{'applications':[]}", "t.json: applications: must list at least one application"},
    {"{'applications':{}}", "t.json: applications: must be an array"},
    {"{'applications':[1]}", "t.json: applications[0]: must be an object"},
    {"{'applications':[" A("") ",[]]}", "t.json: applications[1]: must be an object"},
    {"{'applications':[{'name':'a','secret':'" SECRET "'}]}",
     "t.json: applications[0].key: required key is missing"},
    {"{'applications':[{'name':'a','key':'k'}]}",
     "t.json: applications[0].secret: required key is missing"},
    {"{'applications':[{'key':'k','secret':'" SECRET "'}]}",
     "t.json: applications[0].name: required key is missing"},
    {"{'applications':[{'name':'','key':'k','secret':'" SECRET "'}]}",
     "t.json: applications[0].name: must not be empty"},
    {"{'applications':[{'name':'a','key':'a/b','secret':'" SECRET "'}]}",
     "t.json: applications[0].key: must be letters, digits, '-' or '_'"},
    {"{'applications':[" A("") ",{'name':'b','key':'k\\u00e9','secret':'" SECRET "'}]}",
     "t.json: applications[1].key: must be letters, digits, '-' or '_'"},
    {"{'applications':[{'name':'a','key':'','secret':'" SECRET "'}]}",
     "t.json: applications[0].key: must not be empty"},
    {"{'applications':[{'name':'a','key':'" X64 X64 "x','secret':'" SECRET "'}]}",
     "t.json: applications[0].key: must be at most 128 bytes"},
    {"{'applications':[{'name':'a','key':7,'secret':'" SECRET "'}]}",
     "t.json: applications[0].key: must be a string"},
    {CFG("", ",'id':'my app'"),
     "t.json: applications[0].id: must be letters, digits, '-' or '_'"},
    {"{'applications':[{'name':'my app','key':'k','secret':'" SECRET "'}]}",
     "t.json: applications[0].id: must be letters, digits, '-' or '_' (it defaults "
     "to the name: set \"id\")"},
    {"{'applications':[{'name':'" X64 X64 "x','key':'k','secret':'" SECRET "'}]}",
     "t.json: applications[0].id: must be at most 128 bytes (it defaults to the name"},
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET " x'}]}",
     "t.json: applications[0].secret: must not contain whitespace"},
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET "\\t'}]}",
     "t.json: applications[0].secret: must not contain whitespace"},
    {"{'applications':[{'name':'a','key':'k','secret':''}]}",
     "t.json: applications[0].secret: must not be empty"},
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET X64 X64 X64 X64 "'}]}",
     "t.json: applications[0].secret: must be at most 256 bytes"},
    {"{'applications':[{'name':'a','key':'k','secret':12345}]}",
     "t.json: applications[0].secret: must be a string"},
    {"{'applications':[" A("") ",{'name':'b','key':'k','secret':'" SECRET "'}]}",
     "t.json: applications[1].key: duplicate of applications[0].key"},
    {"{'applications':[" A("") ",{'name':'a','key':'k2','secret':'" SECRET "'}]}",
     "t.json: applications[1].name: duplicate of applications[0].name"},
    {"{'applications':[" A("") "," B(",'id':'a'") "]}",
     "t.json: applications[1].id: duplicate of applications[0].id"},
    {CFG("'certificate':'c.pem',", ""),
     "t.json: certificate: needs \"private-key\" too (TLS needs both)"},
    {CFG("'certificate':'c.pem','private-key':'',", ""),
     "t.json: certificate: needs \"private-key\" too"},
    {CFG("'private-key':'k.pem',", ""), "t.json: private-key: needs \"certificate\" too"},
    {CFG("'redis':[],", ""), "t.json: redis: must be an object"},
    {CFG("'redis':{},", ""), "t.json: redis.address: required key is missing"},
    {CFG("'redis':{'address':'localhost'},", ""),
     "t.json: redis.address: must be \"host:port\", or a comma-separated list of them"},
    {CFG("'redis':{'address':'h:0'},", ""), "t.json: redis.address: must be"},
    {CFG("'redis':{'address':'h:65536'},", ""), "t.json: redis.address: must be"},
    {CFG("'redis':{'address':':6379'},", ""), "t.json: redis.address: must be"},
    {CFG("'redis':{'address':'::1:6379'},", ""), "t.json: redis.address: must be"},
    {CFG("'redis':{'address':'h:1,','sentinel':true},", ""),
     "t.json: redis.address: must be"},
    {CFG("'redis':{'address':'h:1,h:2'},", ""),
     "t.json: redis.address: a list of addresses needs \"sentinel\": true"},
    {CFG("'redis':{'address':'','sentinel':true},", ""),
     "t.json: redis.address: must not be empty with \"sentinel\""},
    {CFG(REDIS(",'node-timeout':5"), ""),
     "t.json: redis.node-timeout: must be greater than redis.node-heartbeat (5)"},
    {CFG(REDIS(",'node-heartbeat':20"), ""),
     "t.json: redis.node-timeout: must be greater than redis.node-heartbeat (20)"},
    {CFG(REDIS(",'database':1001"), ""),
     "t.json: redis.database: must be between 0 and 1000"},
    {CFG(REDIS(",'sentinel':'true'"), ""),
     "t.json: redis.sentinel: must be true or false"},
    {CFG(REDIS(",'secure':true"), ""), "t.json: redis.secure: only false is supported"},
    {CFG(REDIS(",'master-name':'my master'"), ""),
     "t.json: redis.master-name: must not contain whitespace"},
    {CFG(REDIS(",'password':5"), ""), "t.json: redis.password: must be a string"},
    {"{\n'port': 8111,\n'host' 'x'\n}", "t.json:3:"},
    {"{\n'port': 8111,\n'host' 'x'\n}", "invalid JSON: ':' expected"},
    {"{'port':1,'port':2}", "t.json:1:16: invalid JSON: duplicate object key"},
    {"", "t.json:1:0: invalid JSON"},
    {"[" A("") "]", "t.json: the top level must be an object"},
    /* a syntax error inside the secret must not quote it */
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET "\n'}]}", "t.json:1:"},
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET "\\q'}]}", "t.json:1:"},
    {"{'applications':[{'name':'a','key':'k','secret':'" SECRET "'}}", "t.json:1:"},
    {CFG(REDIS(",'password':'" SECRET "\\x'"), ""), "t.json:1:"},
};

static void
test_bad(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct mn_err err = {0, ""};
        struct mn_config *cfg = parse(bad[i].json, &err);
        if (!ok(cfg == NULL && strstr(err.msg, bad[i].want) != NULL, "bad %zu: %s", i,
                bad[i].want))
            printf("#   got \"%s\"\n", err.msg);
        ok(strstr(err.msg, SECRET) == NULL && strstr(err.msg, "s3cr3t") == NULL,
           "bad %zu: the message holds no secret", i);
        config_free(cfg);
    }
}

/* Every integer and boolean key: its default, and that a value reaches its field. */
enum level { TOP, APP, RED };
struct field_case {
    const char *key;
    size_t off;
    enum level level;
    unsigned def, set;
    bool is_bool;
};

#define OT(f) offsetof(struct mn_config, f)
#define OA(f) offsetof(struct mn_app, f)
#define OR(f) offsetof(struct mn_redis, f)

static const struct field_case fields[] = {
    {"port", OT(port), TOP, 8111, 9000, false},
    {"workers", OT(workers), TOP, 0, 4, false},
    {"activity-timeout", OT(activity_timeout), TOP, 120, 60, false},
    {"idle-ping", OT(idle_ping), TOP, 45, 20, false},
    {"pong-timeout", OT(pong_timeout), TOP, 30, 10, false},
    {"max-message-size", OT(max_message_bytes), TOP, 65536, 2048, false},
    {"max-request-size", OT(max_request_bytes), TOP, 262144, 4096, false},
    {"send-queue-bytes", OT(sendq_max_bytes), TOP, 1048576, 8192, false},
    {"send-queue-messages", OT(sendq_max_messages), TOP, 1000, 50, false},
    {"max-connections", OT(max_node_connections), TOP, 0, 500, false},
    {"enabled", OA(enabled), APP, 1, 0, true},
    {"client-events", OA(client_events), APP, 0, 1, true},
    {"subscription-count", OA(subscription_count), APP, 0, 1, true},
    {"authorized-connections", OA(authorized_connections), APP, 0, 1, true},
    {"authorization-timeout", OA(authorization_timeout), APP, 30, 5, false},
    {"watchlist-events", OA(watchlist_events), APP, 0, 1, true},
    {"max-connections", OA(max_connections), APP, 0, 7, false},
    {"max-event-size", OA(max_event_bytes), APP, 10240, 100, false},
    {"max-trigger-channels", OA(max_trigger_channels), APP, 100, 3, false},
    {"max-batch-events", OA(max_batch_events), APP, 10, 4, false},
    {"max-presence-members", OA(max_presence_members), APP, 100, 9, false},
    {"max-user-info-size", OA(max_user_info_bytes), APP, 1024, 64, false},
    {"max-user-id-length", OA(max_user_id_len), APP, 128, 16, false},
    {"client-event-rate", OA(client_event_rate), APP, 10, 2, false},
    {"max-subscriptions", OA(max_subscriptions), APP, 1000, 11, false},
    {"database", OR(database), RED, 0, 3, false},
    {"sentinel", OR(sentinel), RED, 0, 1, true},
    {"node-heartbeat", OR(node_heartbeat), RED, 5, 2, false},
    {"node-timeout", OR(node_timeout), RED, 15, 6, false},
};

static unsigned
field_value(const struct mn_config *cfg, const struct field_case *f)
{
    const void *base = f->level == TOP   ? (const void *)cfg
                       : f->level == APP ? (const void *)&cfg->apps[0]
                                         : (const void *)&cfg->redis;
    const char *p = (const char *)base + f->off;

    return f->is_bool ? *(const bool *)p : *(const unsigned *)p;
}

static void
test_fields(void)
{
    char top[2048] = "", app[2048] = "", red[1024] = "", text[8192];
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    cfg = parse(CFG(REDIS(""), ""), &err);
    ok(cfg != NULL, "a minimal config with redis loads: %s", err.msg);
    for (size_t i = 0; cfg != NULL && i < ARRAY_LEN(fields); i++)
        is_int(field_value(cfg, &fields[i]), fields[i].def, "default of %s%s",
               fields[i].level == APP ? "applications[]." : "", fields[i].key);
    config_free(cfg);

    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        const struct field_case *f = &fields[i];
        char *dst = f->level == TOP ? top : f->level == APP ? app : red;
        size_t used = strlen(dst), cap = f->level == RED ? sizeof(red) : sizeof(top);
        if (f->is_bool)
            snprintf(dst + used, cap - used, ",'%s':%s", f->key,
                     f->set ? "true" : "false");
        else
            snprintf(dst + used, cap - used, ",'%s':%u", f->key, f->set);
    }
    snprintf(text, sizeof(text),
             "{'applications':[{'name':'a','key':'k','secret':'s'%s}],"
             "'redis':{'address':'h:1'%s}%s}",
             app, red, top);
    cfg = parse(text, &err);
    ok(cfg != NULL, "a config setting every key loads: %s", err.msg);
    for (size_t i = 0; cfg != NULL && i < ARRAY_LEN(fields); i++)
        is_int(field_value(cfg, &fields[i]), fields[i].set, "%s%s reaches its field",
               fields[i].level == APP ? "applications[]." : "", fields[i].key);
    config_free(cfg);
}

static void
test_strings(void)
{
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    cfg = parse("{'host':'0.0.0.0','log-level':'debug','local-socket':'/run/mn.sock',"
                "'certificate':'/c.pem','private-key':'/k.pem','applications':[" A(
                    ",'id':'app-id'") "],'redis':{'address':'[::1]:6379,h:2',"
                                      "'sentinel':true,'master-name':'m1','password':"
                                      "'pw'}}",
                &err);
    ok(cfg != NULL, "a config setting every string loads: %s", err.msg);
    if (cfg == NULL)
        return;
    is_str(cfg->host, "0.0.0.0", "host");
    is_str(cfg->log_level, "debug", "log-level");
    is_str(cfg->local_socket, "/run/mn.sock", "local-socket");
    is_str(cfg->certificate, "/c.pem", "certificate");
    is_str(cfg->private_key, "/k.pem", "private-key");
    is_str(cfg->apps[0].name, "a", "applications[].name");
    is_str(cfg->apps[0].id, "app-id", "applications[].id");
    is_str(cfg->apps[0].key, "k", "applications[].key");
    is_str(cfg->apps[0].secret, SECRET, "applications[].secret");
    is_str(cfg->redis.address, "[::1]:6379,h:2", "redis.address");
    is_str(cfg->redis.master_name, "m1", "redis.master-name");
    is_str(cfg->redis.password, "pw", "redis.password");
    ok(cfg->has_redis, "redis present: distributed");
    config_free(cfg);

    cfg = parse(CFG("'certificate':'','private-key':'','local-socket':'',"
                    "'redis':{'address':'','password':''},",
                    ""),
                &err);
    ok(cfg != NULL, "empty strings load: %s", err.msg);
    if (cfg == NULL)
        return;
    ok(cfg->certificate == NULL && cfg->private_key == NULL, "\"\" certificate: no TLS");
    ok(cfg->local_socket == NULL, "\"\" local-socket: unset");
    ok(cfg->redis.password == NULL, "\"\" redis.password: unset");
    ok(!cfg->has_redis, "\"\" redis.address: standalone, as in the original");
    config_free(cfg);
}

static void
test_paths(void)
{
    static const char *const text =
        "{\"certificate\":\"c.pem\",\"private-key\":\"/abs/k.pem\","
        "\"local-socket\":\"run/mn.sock\",\"applications\":[{\"name\":\"a\","
        "\"key\":\"k\",\"secret\":\"s\"}]}";
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    cfg = config_parse(text, strlen(text), "/etc/mn/config.json", &err);
    ok(cfg != NULL, "relative paths: %s", err.msg);
    if (cfg != NULL) {
        is_str(cfg->certificate, "/etc/mn/c.pem",
               "a relative certificate is "
               "relative to the file's directory");
        is_str(cfg->private_key, "/abs/k.pem", "an absolute private-key stays");
        is_str(cfg->local_socket, "/etc/mn/run/mn.sock", "local-socket too");
        is_str(cfg->path, "/etc/mn/config.json", "path is the file name");
    }
    config_free(cfg);
    cfg = config_parse(text, strlen(text), "config.json", &err);
    ok(cfg != NULL, "a file in the working directory: %s", err.msg);
    if (cfg != NULL)
        is_str(cfg->certificate, "c.pem", "its relative paths stay as they are");
    config_free(cfg);
}

struct sample_case {
    const char *file;
    bool tls, redis, sentinel;
    const char *address;
};

static const struct sample_case samples[] = {
    {"sample.json", false, false, false, NULL},
    {"sample-secure.json", true, false, false, NULL},
    {"sample-redis-test.json", false, true, false, "127.0.0.1:6379"},
    {"sample-redis-sentinel-test.json", false, true, true,
     "127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"},
};

static void
test_samples(void)
{
    for (size_t i = 0; i < ARRAY_LEN(samples); i++) {
        const struct sample_case *s = &samples[i];
        char path[1024];
        struct mn_err err = {0, ""};
        struct mn_config *cfg;

        snprintf(path, sizeof(path), "%s/config/%s", SRCDIR, s->file);
        cfg = config_load(path, &err);
        ok(cfg != NULL, "%s loads: %s", s->file, err.msg);
        if (cfg == NULL)
            continue;
        ok(strcmp(cfg->host, "localhost") == 0 && cfg->port == 8111 && cfg->napps == 2,
           "%s: localhost:8111, two applications", s->file);
        ok(config_app_by_key(cfg, "app1-key", 8) == &cfg->apps[0] &&
               cfg->apps[0].client_events && !cfg->apps[1].client_events,
           "%s: app1 has client events, app2 not", s->file);
        ok((cfg->certificate != NULL) == s->tls && (cfg->private_key != NULL) == s->tls,
           "%s: TLS %s", s->file, s->tls ? "on" : "off");
        ok(cfg->has_redis == s->redis && cfg->redis.sentinel == s->sentinel &&
               (!s->redis || (strcmp(cfg->redis.address, s->address) == 0 &&
                              cfg->redis.database == 1 &&
                              strcmp(cfg->redis.master_name, "mymaster") == 0)),
           "%s: redis %s, sentinel %s", s->file, s->redis ? "on" : "off",
           s->sentinel ? "on" : "off");
        if (s->tls) {
            FILE *f = fopen(cfg->certificate, "r"), *g = fopen(cfg->private_key, "r");
            ok(f != NULL && g != NULL, "%s: certificate and key found from any cwd",
               s->file);
            if (f != NULL)
                fclose(f);
            if (g != NULL)
                fclose(g);
        }
        config_free(cfg);
    }
}

static void
test_original(void)
{
    struct mn_err err = {0, ""};
    struct mn_config *cfg;
    const struct mn_app *a;

    cfg = config_load(SRCDIR "/tests/unit/config/original.json", &err);
    ok(cfg != NULL, "the original format loads: %s", err.msg);
    if (cfg == NULL)
        return;
    is_str(cfg->host, "localhost", "host");
    is_int(cfg->port, 8111, "port");
    ok(cfg->certificate == NULL && cfg->private_key == NULL, "\"\" certificate: plain");
    is_int((long long)cfg->napps, 1, "one application");
    a = &cfg->apps[0];
    is_str(a->name, "app1", "name");
    is_str(a->id, "app1", "id defaults to the name");
    is_str(a->key, "1234567890", "key");
    is_str(a->secret, "abcdefghij", "secret");
    ok(a->enabled && !a->client_events && !a->subscription_count &&
           !a->authorized_connections && !a->watchlist_events,
       "enabled, every optional feature off");
    ok(cfg->has_redis, "redis present: distributed");
    is_str(cfg->redis.address, "localhost:6379", "redis.address");
    is_int(cfg->redis.database, 0, "redis.database");
    ok(cfg->redis.password == NULL, "\"\" password: none");
    ok(!cfg->redis.sentinel, "no sentinel");
    is_str(cfg->redis.master_name, "mymaster", "redis.master-name default");
    is_str(cfg->log_level, "info", "log-level default");
    ok(cfg->local_socket == NULL, "local-socket default: unset");
    config_free(cfg);
}

static void
test_default_and_lookup(void)
{
    struct mn_config *cfg = config_default();
    const struct mn_app *a = &cfg->apps[0];

    is_str(cfg->path, "(embedded default)", "default: path");
    ok(!cfg->has_redis && strcmp(cfg->host, "localhost") == 0 && cfg->port == 8111,
       "default: standalone on localhost:8111");
    ok(cfg->certificate == NULL && cfg->private_key == NULL, "default: plain");
    ok(cfg->napps == 1 && strcmp(a->name, "demo") == 0 && strcmp(a->id, "demo") == 0 &&
           strcmp(a->key, "demo-key") == 0 && strcmp(a->secret, "demo-secret") == 0,
       "default: one demo app");
    ok(a->client_events && a->enabled, "default: client events on");
    ok(config_app_by_key(cfg, "demo-key", 8) == a, "by key");
    ok(config_app_by_key(cfg, "demo-keyX", 8) == a, "by key uses len, not a NUL");
    ok(config_app_by_key(cfg, "demo-ke", 7) == NULL, "by key: a prefix is no match");
    ok(config_app_by_key(cfg, "demo", 4) == NULL, "by key: the id is no key");
    ok(config_app_by_id(cfg, "demo", 4) == a, "by id");
    ok(config_app_by_id(cfg, "demo-key", 8) == NULL, "by id: the key is no id");
    config_free(cfg);
    config_free(NULL);
    ok(true, "config_free(NULL) does nothing");
}

static void
test_load_errors(void)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {SRCDIR "/tests/unit/config/missing.json",
         "/tests/unit/config/missing.json: cannot read: No such file or directory"},
        {SRCDIR "/config", "/config: cannot read: Is a directory"},
        {"/dev/zero", "/dev/zero: larger than 1 MiB"},
        {SRCDIR "/tests/unit/config/bad-syntax.json",
         "/tests/unit/config/bad-syntax.json:10:9: invalid JSON: string or '}' "
         "expected"},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct mn_err err = {0, ""};
        struct mn_config *cfg = config_load(cases[i].path, &err);
        if (!ok(cfg == NULL && strstr(err.msg, cases[i].want) != NULL, "load: %s",
                cases[i].want))
            printf("#   got \"%s\"\n", err.msg);
        config_free(cfg);
    }
}

static void
test_docs(void)
{
    char *text = NULL, *committed = calloc(1, 1 << 20), *start, *end;
    size_t len = 0, clen = 0;
    FILE *out = open_memstream(&text, &len), *in;
    struct mn_err err = {0, ""};
    struct mn_config *cfg;

    config_write_docs(out);
    fclose(out);
    in = fopen(SRCDIR "/docs/config.md", "rb");
    if (in != NULL) {
        clen = fread(committed, 1, 1 << 20, in);
        fclose(in);
    }
    ok(clen == len && memcmp(committed, text, len) == 0,
       "docs/config.md is what config_write_docs() writes");
    ok(strstr(text, "| `max-presence-members` | integer 1..1000000 | `100` |") != NULL,
       "docs: a row has key, type, range and default");
    start = strstr(text, "```json\n");
    end = start != NULL ? strstr(start + 8, "```\n") : NULL;
    cfg = end != NULL
              ? config_parse(start + 8, (size_t)(end - start - 8), "example", &err)
              : NULL;
    ok(cfg != NULL, "the docs example loads: %s", err.msg);
    config_free(cfg);
    free(committed);
    free(text);
}

int
main(void)
{
    test_bad();
    test_fields();
    test_strings();
    test_paths();
    test_samples();
    test_original();
    test_default_and_lookup();
    test_load_errors();
    test_docs();
    return done_testing();
}

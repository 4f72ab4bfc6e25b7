/* main.c - micronotifier-gateway: arguments, config, signals, and the worker
 * threads' lifetime. Protocol and state live in the other gateway files. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "hub.h"
#include "log.h"
#include "mem.h"
#include "webhook.h"
#include "worker.h"
#include "mn.h"

#define MAX_WORKERS 64

static const char usage[] =
    "usage: micronotifier-gateway [-c FILE] [--check-config] [--config-docs]\n"
    "  -c, --config FILE   JSON config (without it: the embedded default,\n"
    "                      localhost:8111 with one demo app)\n"
    "      --check-config  validate the config and exit 0 (valid) or 1\n"
    "      --config-docs   print the config reference (docs/config.md)\n"
    "  -h, --help          this text\n";

static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void
banner(const struct mn_config *cfg)
{
    const char *ws = cfg->certificate ? "wss" : "ws";
    const char *http = cfg->certificate ? "https" : "http";
    const struct mn_app *a = &cfg->apps[0];

    fprintf(stderr,
            "micronotifier-gateway: config %s, %zu app(s)\n"
            "  WebSocket (pusher-js wsHost/wsPort): %s://%s:%u/app/%s\n"
            "  REST API (appId, key, secret, host:port): %s://%s:%u/apps/%s/events\n",
            cfg->path, cfg->napps, ws, cfg->host, cfg->port, a->key, http, cfg->host,
            cfg->port, a->id);
    if (strcmp(cfg->path, "(embedded default)") == 0)
        fprintf(stderr,
                "  demo app: appId \"%s\", key \"%s\"; its secret is in README.md "
                "(secrets are never logged). Pass -c FILE for your own apps.\n",
                a->id, a->key);
}

static unsigned
worker_count(const struct mn_config *cfg)
{
    long n = cfg->workers ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        n = 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static int
serve(const struct mn_config *cfg)
{
    unsigned n = worker_count(cfg);
    struct worker *workers[MAX_WORKERS] = {0};
    struct hub *hub = hub_new(cfg, n);
    struct webhook *wh = webhook_new(cfg);
    sigset_t set;
    int sig = 0, rc = 0;
    unsigned i;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* The sender thread starts first and stops last: every worker may post. */
    hub_set_webhook(hub, wh);
    if (webhook_start(wh) < 0)
        rc = 1;

    for (i = 0; i < n && rc == 0; i++) {
        workers[i] = worker_new(hub, i);
        if (workers[i] == NULL) {
            rc = 1;
            break;
        }
        hub_set_worker(hub, i, workers[i]);
    }
    /* Distributed mode: the Redis link's thread, before any worker runs. */
    if (rc == 0 && cfg->has_redis && hub_redis_start(hub) < 0)
        rc = 1;
    /* The local bus lives on worker 0's loop, which is not running yet. */
    if (rc == 0 && cfg->local_socket != NULL && cfg->has_redis)
        /* bus_server.c expects answers within hub_rest_call, which a publish
         * over Redis does not give; the api daemon will use Redis itself. */
        log_warn("gateway: local-socket ignored in distributed mode");
    else if (rc == 0 && cfg->local_socket != NULL && bus_server_start(workers[0]) < 0)
        rc = 1;
    if (rc == 0) {
        for (i = 0; i < n; i++)
            if (worker_start(workers[i]) < 0) {
                log_err("gateway: cannot start worker thread");
                abort();
            }
        banner(cfg);
        log_info("gateway: listening host=%s port=%u workers=%u tls=%s", cfg->host,
                 cfg->port, n, cfg->certificate ? "yes" : "no");
        do {
            if (sigwait(&set, &sig) != 0)
                break;
            if (sig == SIGHUP)
                log_info("gateway: SIGHUP ignored (reload not supported yet)");
        } while (sig == SIGHUP);
        log_info("gateway: stopping signal=%d", sig);
        /* First: pending triggers answer 503 while the workers still run. */
        hub_redis_stop(hub);
        for (i = 0; i < n; i++)
            worker_stop(workers[i]);
        for (i = 0; i < n; i++)
            worker_join_free(workers[i]);
        if (hub_redis_gave_up(hub))
            rc = 75; /* EX_TEMPFAIL: Redis unreachable past redis.give-up */
    } else {
        /* Contexts built so far never started: stop them in this thread. */
        for (i = 0; i < n && workers[i]; i++) {
            worker_stop(workers[i]);
            worker_start(workers[i]);
            worker_join_free(workers[i]);
        }
    }
    webhook_stop_free(wh);
    hub_free(hub);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct cli_spec spec = {
        "micronotifier-gateway", usage, true, false, NULL, NULL};
    struct mn_config *cfg;
    int rc = cli_load(argc, argv, &spec, &cfg);

    if (rc >= 0)
        return rc;
    lws_set_log_level(
        log_get_level() >= LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, NULL);
    raise_fd_limit();
    rc = serve(cfg);
    config_free(cfg);
    return rc;
}

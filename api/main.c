/* main.c - micronotifier-api: arguments, config, signals, the listeners and
 * the lifetime of their request threads. Requests are fcgi.c's and scgi.c's,
 * answers front.c's (the shared REST core over the bus: to the gateway, or
 * to Redis in distributed mode). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api.h"
#include "bus.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "mn.h"

static const char usage[] =
    "usage: micronotifier-api -c FILE [--check-config]\n"
    "  -c, --config FILE   the JSON config shared with micronotifier-gateway;\n"
    "                      its \"api\" object says where to listen (FastCGI,\n"
    "                      SCGI); with \"redis\" it works on the cluster state\n"
    "                      in Redis, else on the gateway's \"local-socket\"\n"
    "      --check-config  validate the config and exit 0 (valid) or 1\n"
    "  -h, --help          this text\n";

/* What the API daemon needs of a config beyond what config.c checks. */
static int
check_api(const struct mn_config *cfg, void *arg, struct mn_err *err)
{
    unsigned *mode = arg;

    if (!cfg->has_api || (cfg->api.fastcgi == NULL && cfg->api.scgi == NULL))
        return mn_err_set(err, 0,
                          "%s: api: give \"fastcgi\", \"scgi\" or both (where "
                          "micronotifier-api listens)",
                          cfg->path);
    if (cfg->api.fastcgi && cfg->api.scgi && strcmp(cfg->api.fastcgi, cfg->api.scgi) == 0)
        return mn_err_set(err, 0, "%s: api: fastcgi and scgi name the same address",
                          cfg->path);
    if (!cfg->has_redis && cfg->local_socket == NULL)
        return mn_err_set(err, 0,
                          "%s: local-socket: missing; without \"redis\", "
                          "micronotifier-api reaches the gateway through it",
                          cfg->path);
    *mode = (unsigned)strtoul(cfg->api.socket_mode, NULL, 8);
    return 0;
}

struct listener {
    const char *name;
    const char *addr;
    front_run_fn *run;
    int fd;
    struct front *front;
};

static int
start(struct api *a, struct listener *l, unsigned mode)
{
    struct mn_err err = {0, ""};

    if (l->addr == NULL)
        return 0;
    l->fd = listen_open(l->addr, mode, &err);
    if (l->fd < 0) {
        log_err("api: %s: %s", l->name, err.msg);
        return -1;
    }
    l->front = front_start(a, l->fd, l->name, l->run);
    return l->front ? 0 : -1;
}

static int
serve(const struct mn_config *cfg, unsigned mode)
{
    struct api a = {cfg, NULL, -1};
    struct listener ls[2] = {
        {"fastcgi", cfg->api.fastcgi, fcgi_run, -1, NULL},
        {"scgi", cfg->api.scgi, scgi_run, -1, NULL},
    };
    struct mn_err err = {0, ""};
    uint64_t one = 1;
    sigset_t set;
    int sig = 0, rc = 0;

    /* Every thread inherits the mask: only sigwait below sees these. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* before FCGX_Init, which keeps a handler set */

    a.bus = bus_open(cfg, &err);
    if (a.bus == NULL) {
        log_err("api: %s", err.msg);
        return 1;
    }
    a.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a.stop_fd < 0 || (cfg->api.fastcgi && fcgi_init() < 0)) {
        log_errno("api: cannot start");
        rc = 1;
    }
    for (size_t i = 0; i < ARRAY_LEN(ls) && rc == 0; i++)
        if (start(&a, &ls[i], mode) < 0)
            rc = 1;
    if (rc == 0) {
        log_info("api: listening fastcgi=%s scgi=%s threads=%u %s=%s",
                 cfg->api.fastcgi ? cfg->api.fastcgi : "-",
                 cfg->api.scgi ? cfg->api.scgi : "-", cfg->api.threads,
                 cfg->has_redis ? "redis" : "local-socket",
                 cfg->has_redis ? cfg->redis.address : cfg->local_socket);
        do {
            if (sigwait(&set, &sig) != 0)
                break;
            if (sig == SIGHUP)
                log_info("api: SIGHUP ignored (reload not supported yet)");
        } while (sig == SIGHUP);
        log_info("api: stopping signal=%d", sig);
    }
    if (a.stop_fd >= 0 && write(a.stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_errno("api: cannot wake the request threads");
    for (size_t i = 0; i < ARRAY_LEN(ls); i++) {
        front_join(ls[i].front);
        listen_close(ls[i].fd, ls[i].addr);
    }
    if (cfg->api.fastcgi)
        fcgi_shutdown();
    if (a.stop_fd >= 0)
        close(a.stop_fd);
    bus_close(a.bus);
    return rc;
}

int
main(int argc, char **argv)
{
    static unsigned mode;
    static const struct cli_spec spec = {"micronotifier-api", usage, false, true,
                                         check_api,           &mode};
    struct mn_config *cfg;
    int rc = cli_load(argc, argv, &spec, &cfg);

    if (rc >= 0)
        return rc;
    rc = serve(cfg, mode);
    config_free(cfg);
    return rc;
}

/* cli.h - the command line both daemons share: -c FILE, --check-config,
 * --config-docs (where offered), -h; loading and checking the config and
 * setting the log level from it. */
#ifndef MN_CLI_H
#define MN_CLI_H

#include <stdbool.h>

#include "config.h"
#include "err.h"

struct cli_spec {
    const char *prog;  /* "micronotifier-gateway": prefixes error messages */
    const char *usage; /* the whole help text */
    bool docs;         /* --config-docs is offered */
    bool need_config;  /* -c is required (else: the embedded default) */
    /* Checks the daemon needs beyond config.c's, or NULL: 0, or -1 with err. */
    int (*check)(const struct mn_config *cfg, void *arg, struct mn_err *err);
    void *arg;
};

/* Parses argv and loads the config. Returns -1 with *out set (the caller
 * owns it) when the daemon should run; otherwise the exit status after
 * printing what was asked (help, docs, "FILE: ok") or why the config is
 * refused (0 ok, 1 bad config, 2 bad usage). */
int cli_load(int argc, char **argv, const struct cli_spec *spec, struct mn_config **out);

#endif

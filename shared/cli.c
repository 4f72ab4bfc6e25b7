/* cli.c - the daemons' shared command line: options, config loading with the
 * daemon's own extra checks, --check-config, --config-docs, and the log
 * level the config asks for. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

#include "log.h"
#include "mn.h"

int
cli_load(int argc, char **argv, const struct cli_spec *spec, struct mn_config **out)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"config-docs", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check = false;
    struct mn_config *cfg;
    struct mn_err err = {0, ""};
    enum log_level level;
    int opt;

    *out = NULL;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (opt == 'c') {
            path = optarg;
        } else if (opt == 'C') {
            check = true;
        } else if (opt == 'D' && spec->docs) {
            config_write_docs(stdout);
            return 0;
        } else if (opt == 'h') {
            fputs(spec->usage, stdout);
            return 0;
        } else {
            fputs(spec->usage, stderr);
            return 2;
        }
    }
    if (optind < argc || (spec->need_config && path == NULL)) {
        fputs(spec->usage, stderr);
        return 2;
    }
    cfg = path ? config_load(path, &err) : config_default();
    if (cfg == NULL || (spec->check && spec->check(cfg, spec->arg, &err) < 0)) {
        fprintf(stderr, "%s: %s\n", spec->prog, err.msg);
        config_free(cfg);
        return 1;
    }
    if (check) {
        printf("%s: ok\n", cfg->path);
        config_free(cfg);
        return 0;
    }
    if (cfg->log_level && log_level_parse(cfg->log_level, &level) == 0)
        log_set_level(level);
    *out = cfg;
    return -1;
}

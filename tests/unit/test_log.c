/* test_log.c - log.c: level names, the level filter, one line per event. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "mn.h"

/* Runs fn with stderr redirected to a temp file; returns what it wrote. */
static size_t
capture(void (*fn)(void), char *out, size_t outlen)
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    size_t n;

    fflush(stderr);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(out, 1, outlen - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return n;
}

static void
emit(void)
{
    log_debug("test: hidden at info level");
    log_info("test: shown key=%d", 42);
    log_warn("test: warned");
}

int
main(void)
{
    enum log_level lvl = LOG_ERR;
    char out[1024];

    plan(8);
    ok(log_level_parse("debug", &lvl) == 0 && lvl == LOG_DEBUG, "\"debug\" parses");
    ok(log_level_parse("warn", &lvl) == 0 && lvl == LOG_WARN, "\"warn\" parses");
    ok(log_level_parse("verbose", &lvl) == -1, "an unknown level is refused");
    log_set_level(LOG_INFO);
    capture(emit, out, sizeof(out));
    ok(strstr(out, "hidden") == NULL, "debug lines are filtered at info level");
    ok(strstr(out, "info test: shown key=42\n") != NULL,
       "info line: level, text, newline");
    ok(strstr(out, "warn test: warned\n") != NULL, "warn line written");
    is_int((long long)(strchr(out, '\n') - out) > 24, 1,
           "each line starts with a timestamp");
    log_set_level(LOG_ERR);
    capture(emit, out, sizeof(out));
    is_str(out, "", "nothing below error at error level");
    return done_testing();
}

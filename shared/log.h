/* log.h - one line per event on stderr: time, level, component, what
 * happened, key=value facts. Never pass secrets, signatures or bodies. */
#ifndef MN_LOG_H
#define MN_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level level, int with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(LOG_ERR, 0, __VA_ARGS__)
#define log_errno(...) log_msg(LOG_ERR, 1, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...)                                                                   \
    do {                                                                                 \
        if (log_get_level() >= LOG_DEBUG)                                                \
            log_msg(LOG_DEBUG, 0, __VA_ARGS__);                                          \
    } while (0)

#endif

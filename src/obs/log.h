/*
 * log.h - structured log lines on stderr, as JSON or as text.
 *
 * One line per event. JSON (the default): {"time":"2026-11-23T12:00:00.123Z","level":"info",
 * "msg":"...", then the caller's fields}. Text, for people at a terminal:
 * `2026-11-23T12:00:00.123Z info  msg key=value key="a value"`, a value quoted (and escaped
 * as in JSON) when it is empty or holds spaces, quotes, `=`, control or non-ASCII bytes. Fields are
 * key/value pairs of strings ending with NULL; a value that starts with CS_LOG_NUM is written as a
 * JSON number ("duration_us", CS_LOG_NUM "1234"). Each line goes out in one write(2), so lines from
 * different threads never interleave. Below the configured level, cs_log returns before formatting.
 */
#ifndef CS_OBS_LOG_H
#define CS_OBS_LOG_H

#include "capstan/status.h"

typedef enum cs_log_level {
    CS_LOG_DEBUG,
    CS_LOG_INFO,
    CS_LOG_WARN,
    CS_LOG_ERROR,
    CS_LOG_OFF,
} cs_log_level;

/* Marks a field value as a number: cs_log(..., "status", CS_LOG_NUM "200", NULL). */
#define CS_LOG_NUM "\x01"

typedef enum cs_log_format {
    CS_LOG_JSON,
    CS_LOG_TEXT,
} cs_log_format;

void cs_log_set_level(cs_log_level level);
void cs_log_set_format(cs_log_format format);
/* "json" or "text". */
cs_status cs_log_parse_format(const char *s, cs_log_format *out, cs_error *err);
cs_log_level cs_log_get_level(void);
/* "debug", "info", "warn", "error", "off". */
cs_status cs_log_parse_level(const char *s, cs_log_level *out, cs_error *err);

/* Logs msg with key/value string pairs, terminated by NULL. */
void cs_log(cs_log_level level, const char *msg, ...) __attribute__((sentinel));

/* Redirects output to fd (default 2); for tests. */
void cs_log_set_fd(int fd);

#endif

/*
 * log.c - structured log lines, JSON or text; see log.h for the lines' shapes.
 *
 * A line is built in a fixed 8 KiB stack buffer, so logging never allocates, and goes out
 * in one write(2). A mutex around the write keeps lines whole even where the kernel would
 * split a large write (pipes past PIPE_BUF); formatting happens outside it. The level and
 * the descriptor are atomics, so a disabled level costs one relaxed load.
 *
 * Strings are escaped for JSON (quote, backslash, every control character) and checked as
 * UTF-8: each byte that does not start a well-formed sequence becomes U+FFFD, so a
 * line is always valid JSON whatever bytes a caller passes. A line that would pass 8 KiB
 * is cut at a character boundary, closed properly and marked "truncated":true (text:
 * truncated=true); the room for that ending is reserved up front so it always fits. Text
 * lines quote with the same escaping, so they stay one line whatever a value holds.
 */
#include "obs/log.h"

#include "base/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

static const char truncated_end[] = ",\"truncated\":true}\n";
static const char truncated_text_end[] = " truncated=true\n"; /* no longer than the above */

static _Atomic int log_level = CS_LOG_INFO;
static _Atomic int log_fd = 2;
static _Atomic int log_format = CS_LOG_JSON;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
    [CS_LOG_DEBUG] = "debug", [CS_LOG_INFO] = "info", [CS_LOG_WARN] = "warn",
    [CS_LOG_ERROR] = "error", [CS_LOG_OFF] = "off",
};

void cs_log_set_level(cs_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void cs_log_set_format(cs_log_format format)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
}

cs_status cs_log_parse_format(const char *s, cs_log_format *out, cs_error *err)
{
    if (s && !strcmp(s, "json"))
        *out = CS_LOG_JSON;
    else if (s && !strcmp(s, "text"))
        *out = CS_LOG_TEXT;
    else
        return cs_error_set(err, CS_ERR_INVALID, "log format '%.64s': expected json or text",
                            s ? s : "(null)");
    return CS_OK;
}

cs_log_level cs_log_get_level(void)
{
    return (cs_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void cs_log_set_fd(int fd)
{
    atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

cs_status cs_log_parse_level(const char *s, cs_log_level *out, cs_error *err)
{
    for (int i = CS_LOG_DEBUG; s && i <= CS_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (cs_log_level)i;
            return CS_OK;
        }
    }
    if (s && strcasecmp(s, "warning") == 0) {
        *out = CS_LOG_WARN;
        return CS_OK;
    }
    return cs_error_set(err, CS_ERR_INVALID,
                        "log level '%.64s': expected debug, info, warn, error or off",
                        s ? s : "(null)");
}

/* The line being built. Appends stop at LINE_LIMIT, which keeps the reserved ending's
 * room (one string's closing quote plus truncated_end) free; a string completed exactly at
 * the limit may take the quote's byte, after which nothing more is appended. */
typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line;

#define LINE_LIMIT (LINE_MAX_BYTES - 1 - (sizeof truncated_end - 1))

static int put(line *l, const char *s, size_t n)
{
    if (l->len > LINE_LIMIT || n > LINE_LIMIT - l->len) return 0;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return 1;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or
 * code points past U+10FFFF), or 0 when the byte at s does not start one. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* Appends s as a JSON string. Each character goes in whole or not at all; when one does
 * not fit, the string is closed in the reserved byte and 0 is returned (the line is then
 * full and the caller stops). Needs room for at least the opening quote. */
static int put_string(line *l, const char *s)
{
    if (!put(l, "\"", 1)) return 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        const char *out = esc;
        size_t n = utf8_len(p), advance = n ? n : 1;
        if (!n) {
            out = "\xEF\xBF\xBD"; /* U+FFFD REPLACEMENT CHARACTER */
            n = 3;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p < 0x20 || *p == 0x7F) {
            const char *named = *p == '\n'   ? "\\n"
                                : *p == '\t' ? "\\t"
                                : *p == '\r' ? "\\r"
                                : *p == '\b' ? "\\b"
                                : *p == '\f' ? "\\f"
                                             : NULL;
            n = named ? 2 : (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
            if (named) out = named;
        } else {
            out = (const char *)p;
        }
        if (!put(l, out, n)) {
            l->buf[l->len++] = '"'; /* the reserved byte */
            return 0;
        }
        p += advance;
    }
    l->buf[l->len++] = '"'; /* fits: put() left the reserved byte free */
    return 1;
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *s)
{
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9') s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == '\0';
}

/* One key/value field. A field whose key or number does not fit is rolled back whole; a
 * string value that does not fit is cut. Returns 0 once the line is full. A value marked
 * CS_LOG_NUM that is not a JSON number is written as a string, keeping the line valid. */
static int put_field(line *l, const char *key, const char *value)
{
    size_t start = l->len;
    int ok = put(l, ",", 1) && put_string(l, key) && put(l, ":", 1);
    if (ok && !value) {
        ok = put(l, "null", 4);
    } else if (ok && value[0] == CS_LOG_NUM[0] && is_json_number(value + 1)) {
        ok = put(l, value + 1, strlen(value + 1));
    } else if (ok) {
        if (value[0] == CS_LOG_NUM[0]) value++;
        size_t before = l->len;
        if (put_string(l, value)) return 1;
        if (l->len > before) return 0; /* cut, but the field stands */
        ok = 0;
    }
    if (!ok) l->len = start;
    return ok;
}

/* Whether a text value can go out bare: non-empty printable ASCII without `"`, `=`, `\\`. */
static int bare(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '"' || *s == '=' ||
            *s == '\\')
            return 0;
    return 1;
}

/* One text field, ` key=value`; the same roll-back and cut rules as put_field. */
static int put_text_field(line *l, const char *key, const char *value)
{
    size_t start = l->len;
    int ok = put(l, " ", 1) && put(l, key, strlen(key)) && put(l, "=", 1);
    if (ok && !value) {
        ok = put(l, "null", 4);
    } else if (ok) {
        if (value[0] == CS_LOG_NUM[0]) value++;
        if (bare(value) && put(l, value, strlen(value))) return 1;
        size_t before = l->len;
        if (put_string(l, value)) return 1;
        if (l->len > before) return 0;
        ok = 0;
    }
    if (!ok) l->len = start;
    return ok;
}

static void put_time(line *l, int text)
{
    uint64_t ns = cs_wall_ns();
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%s%04d-%02d-%02dT%02d:%02d:%02d.%03uZ%s",
                     text ? "" : "{\"time\":\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ns / 1000000u % 1000u),
                     text ? " " : "\"");
    put(l, buf, (size_t)n);
}

/* Retries on signals and short writes; holding the lock keeps a retried line whole. Errors
 * are dropped: a logger has nowhere to report its own failure. */
static void write_line(const char *s, size_t n)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    pthread_mutex_lock(&write_lock);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

void cs_log(cs_log_level level, const char *msg, ...)
{
    if ((int)level < CS_LOG_DEBUG || level >= CS_LOG_OFF) return;
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed)) return;
    int text = atomic_load_explicit(&log_format, memory_order_relaxed) == CS_LOG_TEXT;
    line l;
    l.len = 0;
    put_time(&l, text);
    int room;
    if (text) {
        char lv[8];
        int n = snprintf(lv, sizeof lv, "%-5s ", level_names[level]);
        put(&l, lv, (size_t)n);
        const char *m = msg ? msg : "";
        room = (bare(m) && put(&l, m, strlen(m))) || put_string(&l, m);
    } else {
        put(&l, ",\"level\":\"", 10);
        put(&l, level_names[level], strlen(level_names[level]));
        put(&l, "\",\"msg\":", 8);
        room = put_string(&l, msg ? msg : "");
    }
    va_list ap;
    va_start(ap, msg);
    for (const char *key; room && (key = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        room = text ? put_text_field(&l, key, value) : put_field(&l, key, value);
        if (!value) break;
    }
    va_end(ap);
    const char *end = room ? (text ? "\n" : "}\n") : text ? truncated_text_end : truncated_end;
    size_t n = strlen(end);
    memcpy(l.buf + l.len, end, n);
    l.len += n;
    write_line(l.buf, l.len);
}

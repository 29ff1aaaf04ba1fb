/*
 * status.c - messages for cs_status codes and the helpers that fill a cs_error.
 *
 * Messages are formatted into the caller's fixed buffer, so reporting an error never
 * allocates (it must work when memory has run out).
 */
#include "capstan/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const messages[] = {
#define CS__STATUS_MSG(code, msg) msg,
    CS_STATUS_MAP(CS__STATUS_MSG)
#undef CS__STATUS_MSG
};

const char *cs_strerror(cs_status code)
{
    if ((unsigned)code >= CS_STATUS_COUNT) return "unknown error";
    return messages[code];
}

cs_status cs_error_set(cs_error *err, cs_status code, const char *fmt, ...)
{
    if (!err) return code;
    /* Format into a copy first: callers may pass err->msg as an argument
     * ("%s (while loading)", err->msg), and vsnprintf's source and target must not overlap. */
    char msg[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(err->msg, msg, sizeof msg);
    err->code = code;
    return code;
}

cs_status cs_error_prefix(cs_error *err, const char *fmt, ...)
{
    if (!err) return CS_ERR_INTERNAL;
    char prefix[CS_ERROR_MSG_MAX], old[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    memcpy(err->msg, prefix, n + 1);
    if (n + 1 < sizeof err->msg) {
        size_t room = sizeof err->msg - n - 1, len = strnlen(old, room);
        memcpy(err->msg + n, old, len);
        err->msg[n + len] = '\0';
    }
    return err->code;
}

void cs_error_clear(cs_error *err)
{
    if (!err) return;
    err->code = CS_OK;
    err->msg[0] = '\0';
}

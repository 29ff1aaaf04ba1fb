/*
 * status.h - capstan's one error type.
 *
 * Every fallible function returns a cs_status and, when given a cs_error, fills it with a
 * message a user can act on ("input 'x': expected float32, got int64"). Codes are stable
 * (they appear in logs and map to HTTP statuses); messages are for people.
 */
#ifndef CAPSTAN_STATUS_H
#define CAPSTAN_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro: code, name, default message. Order is part of the ABI: append only. */
#define CS_STATUS_MAP(X)                   \
    X(CS_OK, "ok")                         \
    X(CS_ERR_NOMEM, "out of memory")       \
    X(CS_ERR_INVALID, "invalid argument")  \
    X(CS_ERR_IO, "input/output error")     \
    X(CS_ERR_PARSE, "malformed input")     \
    X(CS_ERR_UNSUPPORTED, "unsupported")   \
    X(CS_ERR_NOT_FOUND, "not found")       \
    X(CS_ERR_EXISTS, "already exists")     \
    X(CS_ERR_LIMIT, "limit exceeded")      \
    X(CS_ERR_SHUTDOWN, "shutting down")    \
    X(CS_ERR_INTERNAL, "internal error")   \
    X(CS_ERR_TIMEOUT, "deadline exceeded") \
    X(CS_ERR_NO_FIT, "no device fits")     \
    X(CS_ERR_TOO_LARGE, "too large")

typedef enum cs_status {
#define CS__STATUS_ENUM(code, msg) code,
    CS_STATUS_MAP(CS__STATUS_ENUM)
#undef CS__STATUS_ENUM
        CS_STATUS_COUNT
} cs_status;

#define CS_ERROR_MSG_MAX 512

/* A status with its message. Callers own it (usually on the stack); no allocation. */
typedef struct cs_error {
    cs_status code;
    char msg[CS_ERROR_MSG_MAX];
} cs_error;

/* Short static description of a code ("out of memory"). Never NULL. */
const char *cs_strerror(cs_status code);

/* Sets err (when not NULL) to code and a printf-style message; returns code so that callers
 * can write `return cs_error_set(err, CS_ERR_INVALID, "...")`. */
cs_status cs_error_set(cs_error *err, cs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with a printf-style context ("model.onnx: "); returns err->code. */
cs_status cs_error_prefix(cs_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err to CS_OK with an empty message. */
void cs_error_clear(cs_error *err);

#ifdef __cplusplus
}
#endif
#endif

/*
 * model_config.c - a model's serving options from a small YAML file (libyaml):
 *
 *     instances: 2                  # engine sessions, each with a worker thread
 *     threads_per_instance: 1
 *     max_batch_size: 32            # 0 turns batching off
 *     max_queue_delay_us: 500
 *     preferred_batch_sizes: [8, 16]
 *     max_queue_size: 1024
 *     device: cuda:0                # where sessions run: cpu (the default), cuda, cuda:N
 *     precision: fp16               # fp32 (the default), tf32, fp16, bf16
 *
 * Only the keys present change the config passed in, so defaults and command-line flags
 * apply first and the file refines them. Unknown keys and out-of-range values are errors
 * that name the file, the line and the key. The file is read with libyaml's event parser,
 * so memory stays bounded by the longest scalar.
 */
#include "api/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

typedef struct field {
    const char *key;
    long min, max;
} field;

static const field fields[] = {
    {"instances", 1, 64},
    {"threads_per_instance", 1, 256},
    {"max_batch_size", 0, 4096},
    {"max_queue_delay_us", 0, 10 * 1000 * 1000},
    {"preferred_batch_sizes", 1, 4096},
    {"max_queue_size", 0, 1 << 24},
    {"device", 0, 0}, /* the two strings */
    {"precision", 0, 0},
};
#define KEY_DEVICE    6
#define KEY_PRECISION 7
#define N_FIELDS      (sizeof fields / sizeof fields[0])

static cs_status bad(cs_error *err, const char *path, const yaml_event_t *ev, const char *fmt,
                     const char *what)
{
    cs_error_set(err, CS_ERR_INVALID, "%s:%zu: ", path, ev->start_mark.line + 1);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, fmt, what);
    return CS_ERR_INVALID;
}

/* Parses a scalar as an integer within f's range. */
static cs_status number(const char *path, const yaml_event_t *ev, const field *f, long *out,
                        cs_error *err)
{
    const char *s = (const char *)ev->data.scalar.value;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < f->min || v > f->max) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: expected an integer in [%ld, %ld], got '%.40s'", f->key,
                 f->min, f->max, s);
        return bad(err, path, ev, "%s", msg);
    }
    *out = v;
    return CS_OK;
}

static void set(cs_model_config *cfg, int k, long v, bool *batch_given)
{
    switch (k) {
    case 0: cfg->instances = (int)v; break;
    case 1: cfg->threads_per_instance = (int)v; break;
    case 2:
        cfg->max_batch_size = (int)v;
        if (batch_given) *batch_given = true;
        break;
    case 3: cfg->max_queue_delay_us = (uint64_t)v; break;
    default: cfg->max_queue_size = (int)v; break;
    }
}

/* device or precision: checked as the engine parses them, the message its own. */
static cs_status text(const char *path, const yaml_event_t *ev, int key, cs_model_config *cfg,
                      cs_error *err)
{
    const char *s = (const char *)ev->data.scalar.value;
    cs_device d;
    cs_error why;
    cs_status rc = key == KEY_DEVICE ? cs_device_parse(s, &d, &why)
                                     : cs_precision_parse(s, &cfg->precision, &why);
    if (rc == CS_OK && key == KEY_DEVICE && strlen(s) >= sizeof cfg->device)
        rc = cs_error_set(&why, CS_ERR_INVALID, "device '%.32s' is too long", s);
    if (rc) return bad(err, path, ev, "%s", why.msg);
    if (key == KEY_DEVICE) snprintf(cfg->device, sizeof cfg->device, "%s", s);
    return CS_OK;
}

/* Reads the next event; false (with err set) on a YAML syntax error. */
static bool next(yaml_parser_t *p, yaml_event_t *ev, const char *path, cs_error *err)
{
    if (yaml_parser_parse(p, ev)) return true;
    cs_error_set(err, CS_ERR_PARSE, "%s:%zu: %s", path, p->problem_mark.line + 1,
                 p->problem ? p->problem : "malformed YAML");
    return false;
}

cs_status cs_api_model_config_load(const char *path, cs_model_config *cfg, bool *batch_given,
                                   cs_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cs_error_set(err, CS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    yaml_parser_t p;
    yaml_event_t ev = {0};
    cs_status rc = CS_ERR_PARSE;
    int state = 0; /* 0 before the mapping, 1 expecting a key, 2 expecting a value */
    int key = -1, in_seq = 0;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_file(&p, f);
    for (;;) {
        if (!next(&p, &ev, path, err)) goto out;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
            t == YAML_DOCUMENT_END_EVENT) {
        } else if (state == 0 && t == YAML_MAPPING_START_EVENT) {
            state = 1;
        } else if (state == 1 && t == YAML_MAPPING_END_EVENT) {
            state = 3;
        } else if (state == 1 && t == YAML_SCALAR_EVENT) {
            key = -1;
            for (size_t k = 0; k < N_FIELDS; k++)
                if (!strcmp(fields[k].key, (const char *)ev.data.scalar.value)) key = (int)k;
            if (key < 0) {
                rc = bad(err, path, &ev,
                         "unknown key '%.60s' (instances, threads_per_instance, max_batch_size, "
                         "max_queue_delay_us, preferred_batch_sizes, max_queue_size, device, "
                         "precision)",
                         (const char *)ev.data.scalar.value);
                goto out;
            }
            state = 2;
        } else if (state == 2 && key == 4 && t == YAML_SEQUENCE_START_EVENT) {
            cfg->n_preferred = 0;
            in_seq = 1;
        } else if (state == 2 && in_seq && t == YAML_SEQUENCE_END_EVENT) {
            in_seq = 0;
            state = 1;
        } else if (state == 2 && t == YAML_SCALAR_EVENT && key >= KEY_DEVICE) {
            if ((rc = text(path, &ev, key, cfg, err)) != CS_OK) goto out;
            state = 1;
        } else if (state == 2 && t == YAML_SCALAR_EVENT && (key != 4 || in_seq)) {
            long v;
            if ((rc = number(path, &ev, &fields[key], &v, err)) != CS_OK) goto out;
            if (key == 4 && cfg->n_preferred == CS_RT_MAX_PREFERRED) {
                rc = bad(err, path, &ev, "%s: at most 8 sizes", fields[key].key);
                goto out;
            }
            if (key == 4)
                cfg->preferred_batch_sizes[cfg->n_preferred++] = (int)v;
            else
                set(cfg, key, v, batch_given);
            if (!in_seq) state = 1;
        } else {
            rc = bad(err, path, &ev, "%s",
                     state == 0 ? "expected a mapping of options" : "unexpected structure");
            goto out;
        }
        yaml_event_delete(&ev);
    }
    rc = CS_OK;
out:
    yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

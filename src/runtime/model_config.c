/*
 * model_config.c - a version's serving configuration: defaults, bounds, and the checks
 * against the model that dynamic batching relies on.
 *
 * Batching concatenates requests along the first dimension of every input and splits every
 * output the same way, so with max_batch_size > 0 each input and output must have rank >= 1
 * and a first dimension that is symbolic (or -1). A model that fails this is refused at load
 * with the name of the offending tensor, not discovered one bad batch later.
 */
#include "runtime/rt_int.h"

#include <string.h>

#define MAX_BATCH     65536
#define MAX_QUEUE     (1 << 20)
#define DEFAULT_QUEUE 1024
#define MAX_DELAY_US  (60ull * 1000 * 1000)
#define MAX_TPI       256

void cs_model_config_defaults(cs_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->instances = 1;
    cfg->threads_per_instance = 1;
    cfg->max_queue_size = DEFAULT_QUEUE;
}

static cs_status check_batch_dim(const char *kind, cs_value_info v, int max_batch, cs_error *err)
{
    if (v.dtype == CS_DTYPE_STRING)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "%s '%s' holds strings, which cannot be batched; set max_batch_size 0",
                            kind, v.name);
    if (v.rank < 0) return CS_OK; /* undeclared shape: checked per request and per run */
    if (v.rank == 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "max_batch_size %d needs a batch dimension, but %s '%s' is a scalar; "
                            "set max_batch_size 0 for this model",
                            max_batch, kind, v.name);
    /* A fixed first dimension only fits when every batch has exactly that many rows. */
    if (v.dims[0] >= 0 && !(v.dims[0] == 1 && max_batch == 1))
        return cs_error_set(err, CS_ERR_INVALID,
                            "max_batch_size %d needs a dynamic first dimension, but %s '%s' has "
                            "a fixed first dimension %lld; export the model with a symbolic "
                            "batch dimension or set max_batch_size 0 (or 1 for a fixed 1)",
                            max_batch, kind, v.name, (long long)v.dims[0]);
    return CS_OK;
}

cs_status cs__rt_config_normalize(const cs_model_config *cfg, cs_model_config *out, cs_error *err)
{
    if (cfg)
        *out = *cfg;
    else
        cs_model_config_defaults(out);
    if (out->threads_per_instance == 0) out->threads_per_instance = 1;
    if (out->max_queue_size == 0) out->max_queue_size = DEFAULT_QUEUE;

    if (out->instances < 0 || out->instances > CS__RT_MAX_INSTANCES)
        return cs_error_set(err, CS_ERR_INVALID, "instances must be between 0 and %d, not %d",
                            CS__RT_MAX_INSTANCES, out->instances);
    if (out->threads_per_instance < 0 || out->threads_per_instance > MAX_TPI)
        return cs_error_set(err, CS_ERR_INVALID,
                            "threads_per_instance must be between 1 and %d, not %d", MAX_TPI,
                            out->threads_per_instance);
    if (out->max_batch_size < 0 || out->max_batch_size > MAX_BATCH)
        return cs_error_set(err, CS_ERR_INVALID, "max_batch_size must be between 0 and %d, not %d",
                            MAX_BATCH, out->max_batch_size);
    if (out->max_batch_requests < 0 || out->max_batch_requests > MAX_BATCH)
        return cs_error_set(err, CS_ERR_INVALID,
                            "max_batch_requests must be between 0 and %d, not %d", MAX_BATCH,
                            out->max_batch_requests);
    if (out->max_queue_size < 0 || out->max_queue_size > MAX_QUEUE)
        return cs_error_set(err, CS_ERR_INVALID, "max_queue_size must be between 1 and %d, not %d",
                            MAX_QUEUE, out->max_queue_size);
    if (out->max_queue_delay_us > MAX_DELAY_US)
        return cs_error_set(err, CS_ERR_INVALID,
                            "max_queue_delay_us must be at most %llu (one minute), not %llu",
                            MAX_DELAY_US, (unsigned long long)out->max_queue_delay_us);
    cs_device dev;
    if (!memchr(out->device, 0, sizeof out->device) || cs_device_parse(out->device, &dev, err))
        return cs_error_set(err, CS_ERR_INVALID,
                            "device '%.*s' is not one of cpu, cuda, cuda:N (N from 0)",
                            (int)sizeof out->device, out->device);
    if (!strcmp(cs_precision_name(out->precision), "unknown"))
        return cs_error_set(err, CS_ERR_INVALID, "precision must be fp32, tf32, fp16 or bf16");
    if (out->n_preferred < 0 || out->n_preferred > CS_RT_MAX_PREFERRED)
        return cs_error_set(err, CS_ERR_INVALID, "n_preferred must be between 0 and %d, not %d",
                            CS_RT_MAX_PREFERRED, out->n_preferred);
    for (int i = 0; i < out->n_preferred; i++) {
        int p = out->preferred_batch_sizes[i];
        if (p < 1 || p > out->max_batch_size)
            return cs_error_set(err, CS_ERR_INVALID,
                                "preferred batch size %d must be between 1 and max_batch_size "
                                "(%d)",
                                p, out->max_batch_size);
    }
    return CS_OK;
}

cs_status cs__rt_config_check_model(const cs_model_config *cfg, const cs_model_t *m, cs_error *err)
{
    cs_status rc = CS_OK;
    if (cfg->max_batch_size == 0) return rc;
    for (int i = 0; rc == CS_OK && i < cs_model_input_count(m); i++)
        rc = check_batch_dim("input", cs_model_input(m, i), cfg->max_batch_size, err);
    for (int i = 0; rc == CS_OK && i < cs_model_output_count(m); i++)
        rc = check_batch_dim("output", cs_model_output(m, i), cfg->max_batch_size, err);
    return rc;
}

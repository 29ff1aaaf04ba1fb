/*
 * batcher.c - one version's request queue, the dynamic batcher and the worker threads.
 *
 * Submit validates a request against the model outside any lock, then links a slot from a
 * table preallocated at load into a list sorted by (priority, arrival): a submit allocates
 * nothing and inserting is O(1) when priorities repeat (the walk starts at the tail).
 *
 * Each instance's worker takes the next batch itself, so work goes to whichever instance is
 * free first. Under the version's lock it walks the queue from its head once: expired
 * requests are unlinked (answered later, never run), the first live request seeds the batch
 * and later ones join when their dtypes and non-batch dimensions match the seed's and their
 * rows still fit, up to max_batch_requests requests (an instance's containerConcurrency: as
 * a worker runs one batch at a time, that bounds the requests it has in flight). The walk is
 * O(queue length) under the lock; queues are bounded by max_queue_size. A partial batch waits (a
 * timed condition wait, the lock released) until the seed has been queued max_queue_delay_us,
 * unless it is full or a preferred size can be formed exactly. The engine run, the copies and every
 * `done` callback happen with no lock held. Inputs are concatenated into per-instance buffers sized
 * at load for max_batch_size rows when the shapes allow it, else grown once and kept; outputs are
 * split into views of each request's rows, so the steady state allocates nothing.
 *
 * Instances come and go while the version serves. Each worker pins itself to its CPUs,
 * creates its session (whose pool threads inherit the pinning: pthread_create copies the
 * creator's affinity), serves while READY, and on leaving (removed, failed, stopped) frees its
 * session and returns its threads to the budget. A request slot table grows by one batch of
 * slots for each instance beyond the most the version has held, so removing and adding
 * instances again allocates no slots. A batch whose session broke under it (the engine's
 * CS_ERR_INTERNAL, which fails the instance) is not answered: each of its requests goes back
 * into the queue once, for another instance or the replacement (requeue_or_free). While no instance
 * is READY and requests queue, a detached reaper thread answers those whose deadline passes
 * (nothing else would look at the queue); it exits when an instance is READY, the queue is empty or
 * the version stops.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np, cpu_set_t */
#include "runtime/rt_int.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "obs/metrics.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Largest tensor a request may pass: 2^40 bytes bounds every size computation below. */
#define MAX_TENSOR_BYTES (1ull << 40)

static bool batching(const cs_rt_model *m)
{
    return m->cfg.max_batch_size > 0;
}

static size_t tensor_bytes(const cs_tensor *t)
{
    return (size_t)cs_tensor_numel(t) * cs_dtype_size(t->dtype);
}

static void add(cs_rt_duration *d, uint64_t count, uint64_t ns)
{
    d->count += count;
    d->ns += ns;
}

/* --- validation (no lock) ------------------------------------------------------------- */

/* Checks one input tensor against the model's declaration: type, shape (the batch
 * dimension excepted when batching), size and data. *rows gets its batch dimension. */
static cs_status check_input(const cs_rt_model *m, int i, const cs_tensor *t, int64_t *rows,
                             cs_error *err)
{
    cs_value_info v = cs_model_input(m->engine, i);
    if (v.dtype != CS_DTYPE_UNDEFINED && t->dtype != v.dtype)
        return cs_error_set(err, CS_ERR_INVALID, "input '%s': expected %s, got %s", v.name,
                            cs_dtype_name(v.dtype), cs_dtype_name(t->dtype));
    if (cs_dtype_size(t->dtype) == 0)
        return cs_error_set(err, CS_ERR_INVALID, "input '%s': unsupported element type %s", v.name,
                            cs_dtype_name(t->dtype));
    bool ok = t->rank >= (batching(m) ? 1 : 0) && t->rank <= CS_MAX_RANK;
    if (ok && v.rank >= 0) ok = t->rank == v.rank;
    for (int d = 0; ok && d < t->rank; d++) {
        bool batch_dim = d == 0 && batching(m);
        ok = t->dims[d] >= 0 &&
             (batch_dim || d >= v.rank || v.dims[d] < 0 || v.dims[d] == t->dims[d]);
    }
    if (!ok) {
        char want[160], got[160];
        cs_shape_format(want, sizeof want, v.rank, v.dims, v.dim_names);
        cs_shape_format(got, sizeof got, t->rank < 0 || t->rank > CS_MAX_RANK ? 0 : t->rank,
                        t->dims, NULL);
        return cs_error_set(err, CS_ERR_INVALID, "input '%s': expected shape %s, got %s", v.name,
                            v.rank >= 0 ? want : "with a batch dimension", got);
    }
    uint64_t bytes = cs_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] && bytes > MAX_TENSOR_BYTES / (uint64_t)t->dims[d])
            return cs_error_set(err, CS_ERR_LIMIT, "input '%s' is larger than %llu bytes", v.name,
                                MAX_TENSOR_BYTES);
        bytes *= (uint64_t)t->dims[d];
    }
    if (!t->data && bytes > 0)
        return cs_error_set(err, CS_ERR_INVALID, "input '%s' has no data", v.name);
    if (!batching(m)) return CS_OK;
    int64_t r = t->dims[0];
    if (r < 1 || r > m->cfg.max_batch_size)
        return cs_error_set(err, CS_ERR_INVALID,
                            "input '%s': batch dimension %lld must be between 1 and "
                            "max_batch_size %d",
                            v.name, (long long)r, m->cfg.max_batch_size);
    if (*rows && r != *rows)
        return cs_error_set(err, CS_ERR_INVALID,
                            "input '%s' has %lld rows but the request's other inputs have %lld; "
                            "every input needs the same batch dimension",
                            v.name, (long long)r, (long long)*rows);
    *rows = r;
    return CS_OK;
}

/* Resolves names to model inputs, filling slot_in in model order, and checks each. */
static cs_status check_request(const cs_rt_model *m, const cs_infer_request *req,
                               const cs_tensor **slot_in, int64_t *rows, cs_error *err)
{
    memset(slot_in, 0, (size_t)m->n_in * sizeof *slot_in);
    *rows = 0;
    for (int k = 0; k < req->n_inputs; k++) {
        const char *name = req->input_names[k];
        int i = 0;
        while (i < m->n_in && (!name || strcmp(m->in_names[i], name))) i++;
        if (i == m->n_in) {
            char list[256] = "";
            size_t len = 0;
            for (int j = 0; j < m->n_in && len < sizeof list; j++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", j ? ", " : "",
                                        m->in_names[j]);
            return cs_error_set(err, CS_ERR_INVALID,
                                "unknown input '%s'; the model's inputs are %s",
                                name ? name : "(null)", list);
        }
        if (slot_in[i]) return cs_error_set(err, CS_ERR_INVALID, "input '%s' is given twice", name);
        cs_status rc = check_input(m, i, &req->inputs[k], rows, err);
        if (rc) return rc;
        slot_in[i] = &req->inputs[k];
    }
    /* Without batching a missing input may have a default in the model: the engine decides.
     * A batch concatenates every input, so each must be given. */
    for (int i = 0; batching(m) && i < m->n_in; i++)
        if (!slot_in[i])
            return cs_error_set(err, CS_ERR_INVALID, "missing input '%s'", m->in_names[i]);
    if (!batching(m)) *rows = 1;
    return CS_OK;
}

/* --- the queue (version's lock held) --------------------------------------------------- */

/* Under the lock: publishes the gauges so that they never run behind the counts. */
static void publish_gauges(cs_rt_model *m)
{
    if (m->metrics.depth) cs_metric_set(m->metrics.depth, atomic_load(&m->depth));
    if (m->metrics.inflight) cs_metric_set(m->metrics.inflight, atomic_load(&m->in_flight));
}

static void enqueue(cs_rt_model *m, cs__rt_req *r)
{
    cs__rt_req *after = m->tail;
    while (after && after->prio > r->prio) after = after->prev;
    r->prev = after;
    r->next = after ? after->next : m->head;
    if (r->next)
        r->next->prev = r;
    else
        m->tail = r;
    if (after)
        after->next = r;
    else
        m->head = r;
    atomic_fetch_add(&m->depth, 1);
}

static void unlink_req(cs_rt_model *m, cs__rt_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        m->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        m->tail = r->prev;
    r->prev = r->next = NULL;
    atomic_fetch_sub(&m->depth, 1);
}

static void free_slot(cs_rt_model *m, cs__rt_req *r)
{
    r->next = m->free_slots;
    m->free_slots = r;
}

/* Lock held: whether one more request may queue (and, with need_slot, take a slot). The
 * free list runs dry only while workers still answer expired requests beyond a full queue;
 * that is a full queue too. */
static cs_status admit(const cs_rt_model *m, bool need_slot, cs_error *err)
{
    if (atomic_load(&m->closing) || atomic_load(&m->rt->draining))
        return cs_error_set(err, CS_ERR_SHUTDOWN, "model '%s' version '%s' is shutting down",
                            m->name, m->version);
    if (atomic_load(&m->depth) >= m->cfg.max_queue_size || (need_slot && !m->free_slots))
        return cs_error_set(err, CS_ERR_LIMIT, "queue is full (%d requests)",
                            m->cfg.max_queue_size);
    return CS_OK;
}

static cs__rt_instance *claim_inline(cs_rt_model *m);
static void run_inline(cs__rt_instance *in, cs__rt_req *r);
static void ensure_reaper(cs_rt_model *m);

cs_status cs_rt_model_submit(cs_rt_model *m, const cs_infer_request *req, cs_error *err)
{
    if (!req || !req->done)
        return cs_error_set(err, CS_ERR_INVALID, "a request needs a done callback");
    if (req->n_inputs < 0 || (req->n_inputs && (!req->input_names || !req->inputs)))
        return cs_error_set(err, CS_ERR_INVALID, "inputs and their names must be given");
    if (req->priority < 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "priority must be 0 (the default) or a level from 1 (the highest), "
                            "not %d",
                            req->priority);
    uint64_t now = cs_now_ns();
    if (req->deadline_ns && req->deadline_ns <= now)
        return cs_error_set(err, CS_ERR_TIMEOUT, "deadline exceeded before the request was queued");

    /* Take a slot first so that validation writes straight into it, outside the lock. */
    cs__rt_req *r = NULL;
    pthread_mutex_lock(&m->lock);
    cs_status rc = admit(m, true, err);
    if (rc == CS_OK) {
        r = m->free_slots;
        m->free_slots = r->next;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) return rc;

    rc = check_request(m, req, r->in, &r->rows, err);
    r->done = req->done;
    r->ud = req->ud;
    r->timing = req->timing;
    r->prio = req->priority ? req->priority : INT_MAX;
    r->enqueued_ns = now;
    r->deadline_ns = req->deadline_ns;
    r->retried = r->requeue = false;

    cs__rt_instance *own = NULL;
    pthread_mutex_lock(&m->lock);
    if (rc == CS_OK) rc = admit(m, false, err); /* again: others queued or closed meanwhile */
    if (rc) {
        add(&m->stats.fail, 1, cs_now_ns() - now); /* arrived, then refused */
        free_slot(m, r);
    } else if ((own = claim_inline(m))) {
        atomic_fetch_add(&m->in_flight, 1);
        publish_gauges(m);
    } else {
        enqueue(m, r);
        publish_gauges(m);
        pthread_cond_signal(&m->work);
        ensure_reaper(m);
    }
    pthread_mutex_unlock(&m->lock);
    if (own) run_inline(own, r);
    return rc;
}

int cs_rt_model_queue_depth(const cs_rt_model *m)
{
    return atomic_load(&m->depth);
}

bool cs_rt_model_has_room(const cs_rt_model *m)
{
    return !atomic_load(&m->closing) && atomic_load(&m->depth) < m->cfg.max_queue_size;
}

const struct cs_metric *cs_rt_model_latency(const cs_rt_model *m)
{
    return m->metrics.request;
}

int cs_rt_model_in_flight(const cs_rt_model *m)
{
    return atomic_load(&m->in_flight);
}

/* --- batch formation (version's lock held) --------------------------------------------- */

static bool compatible(const cs_rt_model *m, const cs__rt_req *a, const cs__rt_req *b)
{
    for (int i = 0; i < m->n_in; i++) {
        const cs_tensor *x = a->in[i], *y = b->in[i];
        if (!x || !y) {
            if (x != y) return false;
            continue;
        }
        if (x->dtype != y->dtype || x->rank != y->rank) return false;
        if (memcmp(x->dims + 1, y->dims + 1, (size_t)(x->rank - 1) * sizeof x->dims[0]))
            return false;
    }
    return true;
}

/* Keeps the seed, then each request that still fits in `size` rows, in queue order;
 * returns the rows kept. With `apply` the kept requests are compacted to the front of
 * batch[] and counted in *kept; otherwise batch[] is left as it was. */
static int64_t fit(cs__rt_req **batch, int n, int64_t size, bool apply, int *kept)
{
    if (batch[0]->rows > size) return 0;
    int64_t sum = 0;
    int c = 0;
    for (int k = 0; k < n; k++) {
        if (sum + batch[k]->rows > size) continue;
        sum += batch[k]->rows;
        if (apply) batch[c] = batch[k];
        c++;
    }
    if (apply) *kept = c;
    return sum;
}

/* Trims the batch to the largest preferred size that its requests make exactly; returns
 * the new count, or 0 (batch untouched) when no preferred size can be made. O(n_preferred
 * * n). */
static int trim_to_preferred(const cs_rt_model *m, cs__rt_req **batch, int n, int64_t *rows)
{
    int64_t best = 0;
    for (int p = 0; p < m->cfg.n_preferred; p++) {
        int64_t size = m->cfg.preferred_batch_sizes[p];
        if (size > best && size <= *rows && fit(batch, n, size, false, NULL) == size) best = size;
    }
    if (!best) return 0;
    int kept = 0;
    *rows = fit(batch, n, best, true, &kept);
    return kept;
}

/* Picks the next batch into batch[] and unlinks it; moves expired requests to *expired and,
 * when the version drops its queue, every request to *dropped. Returns the number taken;
 * 0 with *wait_ns set when a partial batch should wait until then for more requests. */
static int take_batch(cs_rt_model *m, cs__rt_req **batch, int64_t *rows, cs__rt_req **expired,
                      cs__rt_req **dropped, uint64_t *wait_ns)
{
    uint64_t now = cs_now_ns();
    int64_t max = batching(m) ? m->cfg.max_batch_size : 1;
    int max_n = m->cfg.max_batch_requests > 0 ? m->cfg.max_batch_requests : INT_MAX;
    int n = 0;
    *rows = 0;
    *wait_ns = 0;
    for (cs__rt_req *r = m->head, *next; r; r = next) {
        next = r->next;
        if (m->dropping || (r->deadline_ns && r->deadline_ns <= now)) {
            unlink_req(m, r);
            r->next = m->dropping ? *dropped : *expired;
            *(m->dropping ? dropped : expired) = r;
            continue;
        }
        if (*rows == max || n == max_n) break; /* full in rows or in requests */
        if (n > 0 && (*rows + r->rows > max || !compatible(m, batch[0], r))) continue;
        batch[n++] = r;
        *rows += r->rows;
    }
    if (n > 0 && batching(m) && *rows < max && n < max_n && !m->stopping) {
        int kept = trim_to_preferred(m, batch, n, rows);
        uint64_t ready = batch[0]->enqueued_ns + m->cfg.max_queue_delay_us * 1000;
        if (kept)
            n = kept;
        else if (now < ready) {
            *wait_ns = ready;
            return 0;
        }
    }
    for (int k = 0; k < n; k++) unlink_req(m, batch[k]);
    return n;
}

/* --- running a batch (no lock) ---------------------------------------------------------- */

/* Concatenates input i of every request in the batch into the instance's buffer and binds
 * it as in->in[i]. */
static cs_status concat_input(cs__rt_instance *in, int i, int n, int64_t rows, cs_error *err)
{
    const cs_tensor *first = in->batch[0]->in[i];
    size_t row_bytes = tensor_bytes(first) / (size_t)first->dims[0];
    size_t need = row_bytes * (size_t)rows;
    if (need > in->buf_cap[i]) {
        void *grown = cs_realloc(in->buf[i], need);
        if (!grown)
            return cs_error_set(err, CS_ERR_NOMEM, "out of memory for a batch of %lld rows",
                                (long long)rows);
        in->buf[i] = grown;
        in->buf_cap[i] = need;
    }
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        size_t bytes = row_bytes * (size_t)in->batch[k]->rows;
        if (bytes) memcpy((char *)in->buf[i] + off, in->batch[k]->in[i]->data, bytes);
        off += bytes;
    }
    in->in[i] = *first;
    in->in[i].dims[0] = rows;
    in->in[i].data = in->buf[i];
    return CS_OK;
}

/* Binds the batch's inputs, runs the session and checks that every output kept the
 * batch dimension. */
static cs_status run_batch(cs__rt_instance *in, int n, int64_t rows, uint64_t *infer_start,
                           uint64_t *infer_end, bool *poisoned, cs_error *err)
{
    const cs_rt_model *m = in->model;
    int fed = 0;
    for (int i = 0; i < m->n_in; i++) {
        if (!in->batch[0]->in[i]) continue;
        /* A batch of several requests feeds every input (see check_request), so fed == i. */
        if (n == 1) {
            in->in[fed] = *in->batch[0]->in[i];
        } else {
            cs_status rc = concat_input(in, i, n, rows, err);
            if (rc) return rc;
        }
        in->names[fed++] = m->in_names[i];
    }
    *infer_start = cs_now_ns();
    cs_status rc = m->run(in->session, fed, in->names, in->in, m->n_out, in->out, err);
    *infer_end = cs_now_ns();
    *poisoned = rc == CS_ERR_INTERNAL; /* the engine broke a contract: its state is suspect */
    for (int j = 0; rc == CS_OK && n > 1 && j < m->n_out; j++)
        if (in->out[j].rank < 1 || in->out[j].dims[0] != rows)
            rc = cs_error_set(err, CS_ERR_INTERNAL,
                              "output '%s' has no batch dimension of %lld rows; the model does "
                              "not batch, set max_batch_size 0",
                              cs_model_output(m->engine, j).name, (long long)rows);
    return rc;
}

/* Points view[] at request k's rows of each output, starting at row `row`. */
static void split_outputs(cs__rt_instance *in, int64_t rows, int64_t row, int64_t own)
{
    const cs_rt_model *m = in->model;
    for (int j = 0; j < m->n_out; j++) {
        size_t row_bytes = tensor_bytes(&in->out[j]) / (size_t)rows;
        in->view[j] = in->out[j];
        in->view[j].dims[0] = own;
        in->view[j].data = (char *)in->out[j].data + row_bytes * (size_t)row;
    }
}

static void answer_list(cs_rt_model *m, cs__rt_req *list, cs_status rc, uint64_t now)
{
    for (cs__rt_req *r = list; r; r = r->next) {
        char msg[128];
        if (rc == CS_ERR_TIMEOUT)
            snprintf(msg, sizeof msg, "deadline exceeded after %.3f ms in the queue",
                     (double)(now - r->enqueued_ns) / 1e6);
        else
            snprintf(msg, sizeof msg, "model '%s' version '%s' is shutting down", m->name,
                     m->version);
        if (m->metrics.request)
            cs_metric_observe(m->metrics.request, (double)(now - r->enqueued_ns) / 1e9);
        if (r->timing) *r->timing = (cs_infer_timing){.queued_ns = r->enqueued_ns};
        r->done(r->ud, rc, msg, 0, NULL);
    }
}

/* Counts requests that failed after arrival (refused inputs, expired, dropped) as failures
 * lasting until now. Version's lock held. */
static void count_failed(cs_rt_model *m, const cs__rt_req *list, uint64_t now)
{
    for (const cs__rt_req *r = list; r; r = r->next) add(&m->stats.fail, 1, now - r->enqueued_ns);
}

/* Folds one execution of n requests into the version's statistics, under its lock and
 * before any of them is answered. */
static void count_batch(cs_rt_model *m, cs__rt_req **batch, int n, int64_t rows, bool ok,
                        const uint64_t t[4])
{
    uint64_t input = t[1] - t[0], infer = t[2] - t[1], output = t[3] - t[2];
    pthread_mutex_lock(&m->lock);
    cs_rt_stats *st = &m->stats;
    for (int k = 0; k < n; k++) {
        uint64_t total = t[3] - batch[k]->enqueued_ns;
        if (!ok) {
            add(&st->fail, 1, total);
            continue;
        }
        add(&st->success, 1, total);
        add(&st->queue, 1, t[0] - batch[k]->enqueued_ns);
        add(&st->compute_input, 1, input);
        add(&st->compute_infer, 1, infer);
        add(&st->compute_output, 1, output);
    }
    if (ok) {
        st->inference_count += (uint64_t)rows;
        st->execution_count++;
        st->last_inference_ms = cs_wall_ns() / 1000000u;
        cs_rt_batch_stats *b = &m->batch_stats[rows];
        add(&b->compute_input, 1, input);
        add(&b->compute_infer, 1, infer);
        add(&b->compute_output, 1, output);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Runs a taken batch, counts it (count_batch) and answers each request. Returns the run's
 * status (err: its message; *poisoned: the session is unusable) and sets *compute to the
 * execution's time, for claim_inline. */
static cs_status serve_batch(cs__rt_instance *in, int n, int64_t rows, uint64_t *compute,
                             bool *poisoned, cs_error *err)
{
    cs_rt_model *m = in->model;
    uint64_t t[4]; /* start, engine start, engine end, outputs checked */
    t[0] = t[1] = t[2] = cs_now_ns();
    cs_error_clear(err);
    *poisoned = false;
    cs_status rc = run_batch(in, n, rows, &t[1], &t[2], poisoned, err);
    t[3] = cs_now_ns();
    if (rc != CS_OK && t[2] < t[1]) t[2] = t[1]; /* failed before the engine ran */
    count_batch(m, in->batch, n, rows, rc == CS_OK, t);

    if (m->metrics.batch) cs_metric_observe(m->metrics.batch, (double)rows);
    *compute = t[3] - t[0];
    int64_t row = 0;
    for (int k = 0; k < n; k++) {
        cs__rt_req *r = in->batch[k];
        /* The session broke, not the request: it runs once more elsewhere (requeue_or_free). */
        r->requeue = rc != CS_OK && *poisoned && !r->retried;
        if (r->requeue) continue;
        if (m->metrics.queue)
            cs_metric_observe(m->metrics.queue, (double)(t[0] - r->enqueued_ns) / 1e9);
        if (m->metrics.compute) cs_metric_observe(m->metrics.compute, (double)*compute / 1e9);
        if (r->timing)
            *r->timing = (cs_infer_timing){r->enqueued_ns, t[0], t[1], t[2], t[3], rows, in->id};
        if (rc == CS_OK) {
            const cs_tensor *outs = in->out;
            if (n > 1) {
                split_outputs(in, rows, row, r->rows);
                outs = in->view;
            }
            r->done(r->ud, CS_OK, NULL, m->n_out, outs);
        } else {
            r->done(r->ud, rc, err->msg, 0, NULL);
        }
        row += r->rows;
        if (m->metrics.request)
            cs_metric_observe(m->metrics.request, (double)(cs_now_ns() - r->enqueued_ns) / 1e9);
    }
    return rc;
}

/* After a batch: a request whose instance broke under it (serve_batch set requeue) goes back
 * into the queue once, at its priority, keeping its arrival time and deadline, for another
 * instance or the replacement to run (inference is idempotent, as Knative's activator
 * retries); every other request's slot is freed. Version's lock held. */
static void requeue_or_free(cs_rt_model *m, cs__rt_req **batch, int n)
{
    bool again = false;
    for (int k = 0; k < n; k++) {
        cs__rt_req *r = batch[k];
        if (!r->requeue) {
            free_slot(m, r);
            continue;
        }
        r->requeue = false;
        r->retried = again = true;
        enqueue(m, r);
    }
    if (!again) return;
    pthread_cond_signal(&m->work);
    ensure_reaper(m); /* should no instance be Ready, deadlines are still kept */
}

static void release_list(cs_rt_model *m, cs__rt_req *list)
{
    for (cs__rt_req *r = list, *next; r; r = next) {
        next = r->next;
        free_slot(m, r);
    }
}

/* Answers requests taken off the queue (expired: CS_ERR_TIMEOUT, dropped: CS_ERR_SHUTDOWN)
 * with the lock released meanwhile, and returns their slots. They count as in flight until
 * answered, so that drain waits for the callbacks. Version's lock held on entry and exit. */
static void settle(cs_rt_model *m, cs__rt_req *expired, cs__rt_req *dropped)
{
    int answering = 0;
    for (cs__rt_req *r = expired; r; r = r->next) answering++;
    for (cs__rt_req *r = dropped; r; r = r->next) answering++;
    atomic_fetch_add(&m->in_flight, answering);
    publish_gauges(m);
    uint64_t now = cs_now_ns();
    count_failed(m, expired, now);
    count_failed(m, dropped, now);
    pthread_mutex_unlock(&m->lock);
    answer_list(m, expired, CS_ERR_TIMEOUT, now);
    answer_list(m, dropped, CS_ERR_SHUTDOWN, now);
    pthread_mutex_lock(&m->lock);
    release_list(m, expired);
    release_list(m, dropped);
    atomic_fetch_sub(&m->in_flight, answering);
    publish_gauges(m);
    if (!m->head && atomic_load(&m->in_flight) == 0) pthread_cond_broadcast(&m->idle);
}

/* --- instance states (version's lock held) --------------------------------------------- */

const char *cs_rt_instance_state_name(cs_rt_instance_state s)
{
    static const char *const names[] = {"Starting", "Ready", "Draining", "Failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "Unknown";
}

/* Moves the instance to state s and wakes whoever waits on a change. Once no instance is
 * READY, queued requests are the reaper's. */
static void set_state(cs__rt_instance *in, cs_rt_instance_state s)
{
    cs_rt_model *m = in->model;
    if (in->state == CS_RT_INSTANCE_READY) m->ready--;
    if (s == CS_RT_INSTANCE_READY) {
        m->ready++;
        in->was_ready = true;
    }
    in->state = s;
    in->since_ns = cs_wall_ns();
    pthread_cond_broadcast(&m->changed);
    pthread_cond_broadcast(&m->work); /* the reaper leaves, a lent worker looks again */
    ensure_reaper(m);
}

static void fail(cs__rt_instance *in, cs_status rc, const char *msg)
{
    in->failure = rc;
    snprintf(in->reason, sizeof in->reason, "%s", msg);
    set_state(in, CS_RT_INSTANCE_FAILED);
}

/* An idle READY instance for a request to run on its submitting thread (marked busy), or
 * NULL: only for a version that does not batch, with nothing queued ahead (priorities and
 * FIFO hold), and whose last execution was fast (the first request always goes to a worker,
 * so a slow model never runs on its caller; the first run also plans, so it rarely counts as
 * fast). Version's lock held. */
static cs__rt_instance *claim_inline(cs_rt_model *m)
{
    if (batching(m) || m->head || m->stopping || !m->last_compute_ns ||
        m->last_compute_ns > m->inline_max_ns)
        return NULL;
    for (int i = 0; i < m->n_inst; i++) {
        cs__rt_instance *in = m->inst[i];
        if (in->busy || in->state != CS_RT_INSTANCE_READY) continue;
        in->busy = true;
        in->running = 1;
        return in;
    }
    return NULL;
}

/* Folds the end of a batch into the instance (lock held): counts a successful run, and
 * fails the instance when the engine left its session unusable. */
static void batch_done(cs__rt_instance *in, cs_status rc, bool poisoned, const cs_error *err)
{
    in->busy = false;
    in->running = 0;
    if (rc == CS_OK) in->executions++;
    if (poisoned) fail(in, rc, err->msg);
}

/* Runs r on the calling thread with the instance claim_inline gave, then hands the
 * instance back: to its worker if requests queued meanwhile or it has to leave, and to a
 * stop waiting for it. */
static void run_inline(cs__rt_instance *in, cs__rt_req *r)
{
    cs_rt_model *m = in->model;
    in->batch[0] = r;
    uint64_t compute = 0;
    bool poisoned = false;
    cs_error err;
    cs_status rc = serve_batch(in, 1, r->rows, &compute, &poisoned, &err);
    pthread_mutex_lock(&m->lock);
    requeue_or_free(m, in->batch, 1);
    m->last_compute_ns = compute;
    batch_done(in, rc, poisoned, &err);
    atomic_fetch_sub(&m->in_flight, 1);
    publish_gauges(m);
    if (m->head || m->stopping || in->state != CS_RT_INSTANCE_READY)
        pthread_cond_broadcast(&m->work); /* its worker may have slept on it */
    if (m->stopping || (!m->head && atomic_load(&m->in_flight) == 0))
        pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
}

static void wait_until(pthread_cond_t *c, pthread_mutex_t *lock, uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
                          .tv_nsec = (long)(deadline_ns % 1000000000u)};
    pthread_cond_timedwait(c, lock, &ts);
}

/* --- the reaper ------------------------------------------------------------------------- */

/* Answers queued requests whose deadline passes while no instance is READY. O(queue) per
 * wake-up, under the version's lock; it wakes at the earliest deadline or on `work`. */
static void *reaper_main(void *arg)
{
    cs_rt_model *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->ready && !m->stopping && m->head) {
        uint64_t now = cs_now_ns(), next = 0;
        cs__rt_req *expired = NULL;
        for (cs__rt_req *r = m->head, *after; r; r = after) {
            after = r->next;
            if (!r->deadline_ns) continue;
            if (r->deadline_ns <= now) {
                unlink_req(m, r);
                r->next = expired;
                expired = r;
            } else if (!next || r->deadline_ns < next) {
                next = r->deadline_ns;
            }
        }
        if (expired)
            settle(m, expired, NULL);
        else if (next)
            wait_until(&m->work, &m->lock, next);
        else
            pthread_cond_wait(&m->work, &m->lock);
    }
    m->reaper = false;
    if (m->head) pthread_cond_signal(&m->work); /* a wake-up it took may have been a worker's */
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* Lock held: starts the reaper when requests wait with no READY instance. Detached: stop
 * waits for m->reaper to clear instead of joining. Without a thread (the system refuses one)
 * requests still wait for an instance, but their deadlines go unanswered until then. */
static void ensure_reaper(cs_rt_model *m)
{
    if (m->reaper || m->ready || m->stopping || !m->head) return;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    m->reaper = pthread_create(&t, &attr, reaper_main, m) == 0;
    pthread_attr_destroy(&attr);
}

/* --- the worker ------------------------------------------------------------------------- */

/* Pins the calling thread to the instance's CPUs (no-op without any). */
static cs_status pin(const cs__rt_instance *in, cs_error *err)
{
    if (!in->n_cpus) return CS_OK;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < in->n_cpus; i++) CPU_SET(in->cpus[i], &set);
    int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (e)
        return cs_error_set(err, CS_ERR_INVALID,
                            "cpus: cannot run on the %d CPUs listed (CPU %d first): %s", in->n_cpus,
                            in->cpus[0], strerror(e));
    return CS_OK;
}

/* The worker: starts its session, then holds the version's lock except while it runs a batch
 * or answers requests, and on leaving frees its session and returns its threads. */
static void *worker_main(void *arg)
{
    cs__rt_instance *in = arg;
    cs_rt_model *m = in->model;
    cs_error err;
    cs_error_clear(&err);
    cs_session_options opts = {.threads = in->threads,
                               .max_memory = in->max_memory,
                               .device = in->device,
                               .precision = m->cfg.precision};
    cs_status rc = pin(in, &err);
    if (rc == CS_OK) rc = cs_session_new(m->engine, &opts, &in->session, &err);
    /* A static model's plan over the memory bound fails the start; its other plan errors are
     * left to the requests, which report them as they always have. */
    if (rc == CS_OK && cs_session_prepare(in->session, &err) == CS_ERR_TOO_LARGE)
        rc = CS_ERR_TOO_LARGE;
    pthread_mutex_lock(&m->lock);
    if (rc)
        fail(in, rc, err.msg);
    else if (in->state == CS_RT_INSTANCE_STARTING) /* not removed meanwhile */
        set_state(in, CS_RT_INSTANCE_READY);
    for (;;) {
        if (in->busy) { /* lent to a submitting thread (claim_inline) */
            pthread_cond_wait(&m->work, &m->lock);
            continue;
        }
        if (in->state != CS_RT_INSTANCE_READY) break; /* removed, failed or never started */
        cs__rt_req *expired = NULL, *dropped = NULL;
        int64_t rows = 0;
        uint64_t wait_ns = 0;
        int n = take_batch(m, in->batch, &rows, &expired, &dropped, &wait_ns);
        /* Taken: drain waits for it, and claim_inline cannot lend the instance meanwhile. */
        atomic_fetch_add(&m->in_flight, n);
        in->busy = n > 0;
        in->running = n;
        if (m->head) pthread_cond_signal(&m->work); /* what is left is another worker's */
        if (expired || dropped) settle(m, expired, dropped);
        if (!n) {
            if (expired || dropped) continue;
            if (m->stopping && !m->head) break;
            if (wait_ns)
                wait_until(&m->work, &m->lock, wait_ns);
            else
                pthread_cond_wait(&m->work, &m->lock);
            continue;
        }
        publish_gauges(m);
        pthread_mutex_unlock(&m->lock);

        uint64_t compute = 0;
        bool poisoned = false;
        rc = serve_batch(in, n, rows, &compute, &poisoned, &err);

        pthread_mutex_lock(&m->lock);
        requeue_or_free(m, in->batch, n);
        m->last_compute_ns = compute;
        batch_done(in, rc, poisoned, &err);
        atomic_fetch_sub(&m->in_flight, n);
        publish_gauges(m);
        if (!m->head && atomic_load(&m->in_flight) == 0) pthread_cond_broadcast(&m->idle);
    }
    bool report = in->state == CS_RT_INSTANCE_FAILED && in->was_ready;
    if (m->head && m->ready) pthread_cond_signal(&m->work); /* a wake-up meant for another */
    pthread_mutex_unlock(&m->lock);

    cs_session_free(in->session);
    in->session = NULL;
    cs__rt_give_back(m, in->threads);
    if (report && m->on_failed)
        m->on_failed(m->on_failed_ud, m->name, m->version, in->id, in->reason);
    pthread_mutex_lock(&m->lock);
    m->live--;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------- */

/* A block of n request slots, each with room for n_in input pointers. */
static cs_status slots_new(const cs_rt_model *m, size_t n, cs__rt_slots **out, cs_error *err)
{
    cs__rt_slots *b = cs_calloc(1, sizeof *b);
    if (b) b->req = cs_calloc(n ? n : 1, sizeof *b->req);
    if (b && b->req)
        b->in = cs_calloc((n ? n : 1) * (size_t)(m->n_in ? m->n_in : 1), sizeof *b->in);
    if (!b || !b->req || !b->in) {
        if (b) cs_free(b->req);
        cs_free(b);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory for %zu request slots", n);
    }
    for (size_t k = 0; k < n; k++) b->req[k].in = b->in + k * (size_t)m->n_in;
    *out = b;
    return CS_OK;
}

/* Lock held (or no thread yet): puts a block's slots on the free list. */
static void slots_link(cs_rt_model *m, cs__rt_slots *b, size_t n)
{
    b->next = m->slots;
    m->slots = b;
    for (size_t k = 0; k < n; k++) free_slot(m, &b->req[k]);
}

static void slots_free(cs__rt_slots *b)
{
    if (!b) return;
    cs_free(b->in);
    cs_free(b->req);
    cs_free(b);
}

static void instance_free(const cs_rt_model *m, cs__rt_instance *in)
{
    if (!in) return;
    for (int k = 0; in->buf && k < m->n_in; k++) cs_free(in->buf[k]);
    cs_free(in->batch);
    cs_free(in->buf);
    cs_free(in->buf_cap);
    cs_free(in->in);
    cs_free(in->names);
    cs_free(in->out);
    cs_free(in->view);
    cs_free(in);
}

/* An instance's buffers, its session not yet made. Concatenation buffers are sized for
 * max_batch_size rows up front when an input's shape is static apart from the batch
 * dimension; others grow on first use and are kept. */
static cs_status instance_new(cs_rt_model *m, int threads, const cs_rt_instance_opts *o,
                              cs__rt_instance **out, cs_error *err)
{
    int cap = batching(m) ? m->cfg.max_batch_size : 1;
    cs__rt_instance *in = cs_calloc(1, sizeof *in);
    if (!in) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    in->model = m;
    in->threads = threads;
    in->n_cpus = o->n_cpus;
    if (o->n_cpus) memcpy(in->cpus, o->cpus, (size_t)o->n_cpus * sizeof *o->cpus);
    snprintf(in->device, sizeof in->device, "%s",
             o->device && *o->device ? o->device
             : m->cfg.device[0]      ? m->cfg.device
                                     : "cpu");
    in->max_memory = o->max_memory ? o->max_memory : m->rt->max_session_memory;
    in->batch = cs_calloc((size_t)cap, sizeof *in->batch);
    in->buf = cs_calloc((size_t)m->n_in, sizeof *in->buf);
    in->buf_cap = cs_calloc((size_t)m->n_in, sizeof *in->buf_cap);
    in->in = cs_calloc((size_t)m->n_in, sizeof *in->in);
    in->names = cs_calloc((size_t)m->n_in, sizeof *in->names);
    in->out = cs_calloc((size_t)m->n_out, sizeof *in->out);
    in->view = cs_calloc((size_t)m->n_out, sizeof *in->view);
    cs_status rc = CS_OK;
    if (!in->batch || !in->buf || !in->buf_cap || !in->in || !in->names ||
        (m->n_out && (!in->out || !in->view)))
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == CS_OK && batching(m) && i < m->n_in; i++) {
        cs_value_info v = cs_model_input(m->engine, i);
        size_t bytes = cs_dtype_size(v.dtype) * (size_t)m->cfg.max_batch_size;
        for (int d = 1; d < v.rank && bytes; d++)
            bytes = v.dims[d] >= 0 && (uint64_t)v.dims[d] <= MAX_TENSOR_BYTES / bytes
                        ? bytes * (size_t)v.dims[d]
                        : 0;
        if (v.rank < 1 || !bytes) continue;
        in->buf[i] = cs_malloc(bytes);
        if (!in->buf[i]) rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        in->buf_cap[i] = bytes;
    }
    if (rc) {
        instance_free(m, in);
        return rc;
    }
    *out = in;
    return CS_OK;
}

/* Lock held: the instance with id, or NULL; *at gets its index. */
static cs__rt_instance *find_instance(const cs_rt_model *m, int id, int *at)
{
    for (int i = 0; i < m->n_inst; i++)
        if (m->inst[i]->id == id) {
            if (at) *at = i;
            return m->inst[i];
        }
    return NULL;
}

/* Lock held: takes the instance at index i out of the table, keeping the others' order. */
static void forget_instance(cs_rt_model *m, int i)
{
    memmove(&m->inst[i], &m->inst[i + 1], (size_t)(m->n_inst - i - 1) * sizeof m->inst[0]);
    m->n_inst--;
}

/* Joins an instance that the caller took out of the table or marked `removing`, and frees
 * it. Version's lock not held. */
static void reap(cs_rt_model *m, cs__rt_instance *in, bool in_table)
{
    pthread_join(in->thread, NULL);
    if (in_table) {
        pthread_mutex_lock(&m->lock);
        int at = 0;
        if (find_instance(m, in->id, &at)) forget_instance(m, at);
        pthread_mutex_unlock(&m->lock);
    }
    instance_free(m, in);
}

cs_status cs__rt_instance_start(cs_rt_model *m, int threads, const cs_rt_instance_opts *o, int *id,
                                cs_error *err)
{
    size_t cap = batching(m) ? (size_t)m->cfg.max_batch_size : 1;
    cs__rt_instance *in = NULL;
    cs__rt_slots *slots = NULL;
    cs_status rc = instance_new(m, threads, o, &in, err);
    if (rc == CS_OK) rc = slots_new(m, cap, &slots, err);
    pthread_mutex_lock(&m->lock);
    if (rc == CS_OK && atomic_load(&m->closing))
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "the version is being unloaded");
    else if (rc == CS_OK && m->n_inst == CS__RT_MAX_INSTANCES)
        rc = cs_error_set(err, CS_ERR_LIMIT,
                          "%d instances are listed already (failed ones included); remove one",
                          CS__RT_MAX_INSTANCES);
    if (rc == CS_OK) {
        in->id = ++m->next_id;
        in->state = CS_RT_INSTANCE_STARTING;
        in->since_ns = cs_wall_ns();
        int e = pthread_create(&in->thread, NULL, worker_main, in);
        if (e)
            rc = cs_error_set(err, CS_ERR_LIMIT, "cannot start a worker thread: %s", strerror(e));
    }
    if (rc) {
        pthread_mutex_unlock(&m->lock);
        slots_free(slots);
        instance_free(m, in);
        cs__rt_give_back(m, threads); /* no worker took them */
        return rc;
    }
    m->inst[m->n_inst++] = in;
    m->live++;
    if (m->n_inst > m->slot_insts) { /* every instance may hold a full batch of slots */
        slots_link(m, slots, cap);
        m->slot_insts++;
        slots = NULL;
    }
    int mine = in->id;
    while ((in = find_instance(m, mine, NULL)) && in->state == CS_RT_INSTANCE_STARTING)
        pthread_cond_wait(&m->changed, &m->lock);
    bool reap_it = false;
    if (!in) {
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "the version is being unloaded");
    } else if (in->was_ready) {
        if (id) *id = mine; /* a failure since then is on_instance_failed's */
    } else if (in->state == CS_RT_INSTANCE_FAILED && !in->removing) {
        rc = cs_error_set(err, in->failure, "%s", in->reason);
        in->removing = reap_it = true;
    } else {
        rc = cs_error_set(err, CS_ERR_SHUTDOWN, "instance %d was removed while it started", mine);
    }
    pthread_mutex_unlock(&m->lock);
    slots_free(slots);
    if (reap_it) reap(m, in, true);
    return rc;
}

cs_status cs_rt_model_remove_instance(cs_rt_model *m, int id, cs_error *err)
{
    pthread_mutex_lock(&m->lock);
    cs__rt_instance *in = find_instance(m, id, NULL);
    if (!in || in->removing) {
        pthread_mutex_unlock(&m->lock);
        return cs_error_set(err, CS_ERR_NOT_FOUND, "model '%s' version '%s' has no instance %d%s",
                            m->name, m->version, id, in ? " (it is being removed)" : "");
    }
    in->removing = true;
    if (in->state != CS_RT_INSTANCE_FAILED) set_state(in, CS_RT_INSTANCE_DRAINING);
    pthread_mutex_unlock(&m->lock);
    reap(m, in, true);
    return CS_OK;
}

int cs_rt_model_instances(const cs_rt_model *m, cs_rt_instance_info *out, int max)
{
    cs_rt_model *mm = (cs_rt_model *)m; /* the lock is not part of the logical state */
    pthread_mutex_lock(&mm->lock);
    for (int i = 0; i < m->n_inst && i < max; i++) {
        const cs__rt_instance *in = m->inst[i];
        cs_rt_instance_info *o = &out[i];
        o->id = in->id;
        o->state = in->state;
        o->since_ns = in->since_ns;
        o->threads = in->threads;
        o->running = in->running;
        o->executions = in->executions;
        o->n_cpus = in->n_cpus;
        memcpy(o->cpus, in->cpus, (size_t)in->n_cpus * sizeof in->cpus[0]);
        memcpy(o->device, in->device, sizeof o->device);
        snprintf(o->reason, sizeof o->reason, "%s",
                 in->state == CS_RT_INSTANCE_FAILED ? in->reason : "");
    }
    int n = m->n_inst;
    pthread_mutex_unlock(&mm->lock);
    return n;
}

cs_status cs__rt_batcher_start(cs_rt_model *m, cs_error *err)
{
    m->batch_stats = cs_calloc((size_t)cs_rt_model_batch_sizes(m), sizeof *m->batch_stats);
    if (!m->batch_stats) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs__rt_slots *queue = NULL;
    cs_status rc = slots_new(m, (size_t)m->cfg.max_queue_size, &queue, err);
    if (rc) return rc;
    pthread_mutex_lock(&m->lock);
    slots_link(m, queue, (size_t)m->cfg.max_queue_size);
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; rc == CS_OK && i < m->cfg.instances; i++) {
        int id = 0;
        rc = cs__rt_instance_start(m, m->cfg.threads_per_instance, &(cs_rt_instance_opts){0}, &id,
                                   err);
    }
    return rc;
}

void cs__rt_stop(cs_rt_model *m, bool drop)
{
    pthread_mutex_lock(&m->lock);
    atomic_store(&m->closing, true);
    m->stopping = true;
    m->dropping = drop;
    pthread_cond_broadcast(&m->work);
    for (;;) { /* join every instance no remove owns; a running batch finishes first */
        int i = 0;
        while (i < m->n_inst && m->inst[i]->removing) i++;
        if (i == m->n_inst) break;
        cs__rt_instance *in = m->inst[i];
        forget_instance(m, i);
        pthread_mutex_unlock(&m->lock);
        reap(m, in, false);
        pthread_mutex_lock(&m->lock);
    }
    while (m->live || m->adding || m->reaper) pthread_cond_wait(&m->changed, &m->lock);
    cs__rt_req *left = NULL; /* what no instance was left to serve */
    while (m->head) {
        cs__rt_req *r = m->head;
        unlink_req(m, r);
        r->next = left;
        left = r;
    }
    if (left) settle(m, NULL, left);
    pthread_mutex_unlock(&m->lock);
}

void cs__rt_batcher_free(cs_rt_model *m)
{
    for (int i = 0; i < m->n_inst; i++) instance_free(m, m->inst[i]);
    m->n_inst = 0;
    for (cs__rt_slots *b = m->slots, *next; b; b = next) {
        next = b->next;
        slots_free(b);
    }
    m->slots = NULL;
    m->free_slots = NULL;
    cs_free(m->batch_stats);
    m->batch_stats = NULL;
}

int cs__rt_wait_idle(cs_rt_model *m, uint64_t deadline_ns)
{
    pthread_mutex_lock(&m->lock);
    while ((m->head || atomic_load(&m->in_flight)) && cs_now_ns() < deadline_ns)
        wait_until(&m->idle, &m->lock, deadline_ns);
    int pending = atomic_load(&m->depth) + atomic_load(&m->in_flight);
    pthread_mutex_unlock(&m->lock);
    return pending;
}

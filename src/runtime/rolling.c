/*
 * rolling.c - one step of a rolling update (see rolling.h), after Kubernetes'
 * pkg/controller/deployment/rolling.go: reconcileNewReplicaSet, then, when the new version
 * cannot grow, reconcileOldReplicaSets with its clean-up of unhealthy replicas first.
 * Constant time; the caller loops, a step per pass, until no old instance is left.
 */
#include "runtime/rolling.h"

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

cs_rolling_plan cs_rolling_step(const cs_rolling_view *v)
{
    int surge = v->surge > 0 ? v->surge : 0;
    int unavailable = v->unavailable > 0 ? v->unavailable : 0;
    if (surge == 0 && unavailable == 0) unavailable = 1;
    unavailable = min_int(unavailable, v->desired);
    cs_rolling_plan p = {min_int(v->new_total, v->desired), v->old_total};
    int all = v->new_total + v->old_total;

    /* The new version grows first, within desired + surge in all. */
    if (v->new_total < v->desired && all < v->desired + surge) {
        p.new_want = v->new_total + min_int(v->desired + surge - all, v->desired - v->new_total);
        return p;
    }

    /* Then the old ones shrink, keeping desired - unavailable ready; new instances that are
     * not ready yet use up the margin, so a new version that never becomes ready stops the
     * rollout with the old ones still serving. */
    int min_available = v->desired - unavailable;
    int budget = all - min_available - (v->new_total - v->new_ready);
    if (budget <= 0) return p;
    int unhealthy = v->old_total - v->old_ready;
    p.old_want -= min_int(unhealthy > 0 ? unhealthy : 0, budget);
    int available = v->old_ready + v->new_ready;
    if (available > min_available) p.old_want -= min_int(available - min_available, p.old_want);
    return p;
}

/*
 * rolling.h - one step of a rolling update, as Kubernetes' Deployment controller takes it.
 *
 * A pure function over counts: no locks, no allocation, no clock. The deployer calls it on
 * each pass while a version change is rolling out, with the instances of the new version and
 * of the old ones (all old versions pooled), and applies what it returns.
 */
#ifndef CS_RUNTIME_ROLLING_H
#define CS_RUNTIME_ROLLING_H

/* What a pass sees. `total` counts the instances that exist (starting, ready or failed:
 * Kubernetes' spec.replicas), `ready` those that serve (its availableReplicas). surge and
 * unavailable are maxSurge and maxUnavailable already resolved against desired
 * (cs_deploy_amount_of: percents of surge round up, of unavailable down). */
typedef struct cs_rolling_view {
    int desired, surge, unavailable;
    int new_total, new_ready;
    int old_total, old_ready;
} cs_rolling_view;

/* What to do: the new version's instance count, and the old versions' (in all). */
typedef struct cs_rolling_plan {
    int new_want, old_want;
} cs_rolling_plan;

/* Kubernetes' rolloutRolling in one step. The new version grows while all instances stay
 * within desired + surge (never past desired); when it cannot grow, the old versions shrink
 * while the ready instances stay at least desired - unavailable, with instances of the new
 * version that are not ready yet counted against that margin; old instances that are not
 * ready go first, as cleanupUnhealthyReplicas takes them. With surge and unavailable both 0,
 * unavailable is taken as 1 (Kubernetes' ResolveFenceposts), so a rollout always moves. */
cs_rolling_plan cs_rolling_step(const cs_rolling_view *v);

#endif

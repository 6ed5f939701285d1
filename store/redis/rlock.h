/*
 * rlock.h - the maintenance lock (ef_maint_lock) of a store on Redis
 * Cluster: a lease in the cluster that its holder renews while it lives
 * (rlock.c). Holders are told apart by a random token, never by pid.
 */
#ifndef EF_STORE_REDIS_RLOCK_H
#define EF_STORE_REDIS_RLOCK_H

#include <stdint.h>

#include "edgefeed.h"

#define RLOCK_LEASE_MS 15000 /* a killed holder's lock ends this much later */

struct reng;
typedef struct rlock rlock;

/* Take the lock for @what. While another holds it: with @nowait,
 * EF_EBUSY naming the holder ("pid N on HOST (what)"); else call @on_wait
 * (if not NULL) once with the holder, and wait. EF_OK; EF_EIO; EF_ENOMEM. */
int rlock_take(struct reng *e, const char *what, int nowait,
	       ef_wait_fn on_wait, void *ctx, uint64_t err_id, rlock **out);

/* Did a renewal find the lease gone (the holder stalled past it)? */
int rlock_lost(rlock *l);

/* Stop renewing and delete the lock if it is still ours. NULL is fine. */
void rlock_release(rlock *l);

#endif

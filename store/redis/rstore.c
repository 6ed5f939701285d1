/*
 * rstore.c - store.h on Redis Cluster: a store_env opened on a redis://
 * address runs each transaction inside its group (txn.h), on a client of
 * the engine's pool (engine.h).
 *
 * A transaction is optimistic: the function runs, its writes go out in
 * one MULTI/EXEC, and if the group changed meanwhile nothing was written
 * and the function runs again from the start (store.h's re-run rule, which
 * every function of feed/ already keeps for LMDB's map growth). Runs back
 * off at random, so that writers of one hot owner take turns instead of
 * colliding for ever; they give up with EF_EBUSY only after RETRY_MAX runs
 * and the address's retry_ms both passed.
 */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgefeed.h"
#include "store/envint.h"
#include "store/error.h"
#include "store/nowait.h"
#include "store/redis/engine.h"
#include "store/redis/rlock.h"
#include "store/redis/txn.h"

#define BACKOFF_MIN_US 50
#define BACKOFF_MAX_US 20000

int rstore_open(store_env *env, const char *addr, const store_opts *o)
{
	if (!o->group_of)
		return ef__err(env->err_id, EF_EINVAL, "redis: a store on a "
			       "cluster needs a group function");
	return reng_open(&env->reng, addr, o, env->err_id);
}

void rstore_close(store_env *env)
{
	reng_close(env->reng);
	env->reng = NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep a random time that grows with @attempt. */
static void backoff(int attempt)
{
	long cap = BACKOFF_MIN_US << (attempt < 9 ? attempt : 9);
	struct timespec ts;
	long us;

	if (cap > BACKOFF_MAX_US)
		cap = BACKOFF_MAX_US;
	us = BACKOFF_MIN_US / 2 + (long)randombytes_uniform((uint32_t)cap);
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	nanosleep(&ts, NULL);
}

/* The cursors die with the transaction (txn.h): forget them. */
static void forget_cursors(store_txn *t)
{
	for (int i = 0; i < CURS_MAX; i++)
		t->curs[i].rc = NULL;
}

int rstore_run(store_env *env, const store_val *g, int write,
	       store_txn_fn fn, void *ctx)
{
	const raddr *a = reng_addr(env->reng);
	char tag[RENG_TAG_LEN + 1];
	int64_t start = mono_ms();
	rclient *c;
	store_txn t;
	int rc, unreachable = 0;

	if (g == STORE_ALL)
		return ef__err(env->err_id, EF_EINVAL, "redis: a transaction "
			       "over the whole store: on a cluster, store-wide "
			       "work goes group by group");
	if (store_nowait()) { /* every transaction here waits on the network */
		store_nowait_refused();
		return ef__err(env->err_id, EF_EBUSY, "redis: no transaction "
			       "without waiting");
	}
	reng_tag(env->reng, 'g', g, tag);
	rc = reng_client_take(env->reng, &c);
	if (rc != EF_OK)
		return rc;
	for (int attempt = 0;; attempt++) {
		if (attempt > 0) {
			if (attempt >= RETRY_MAX &&
			    mono_ms() - start > a->retry_ms) {
				char last[256];
				snprintf(last, sizeof(last), "%s",
					 ef__err_get(env->err_id));
				/* no master to be reached is an I/O error;
				 * a group that kept changing, contention */
				rc = ef__err(env->err_id,
					     unreachable ? EF_EIO : EF_EBUSY,
					     "redis: gave up after %d attempts "
					     "in %lld ms (last: %s)", attempt,
					     (long long)(mono_ms() - start),
					     last);
				break;
			}
			backoff(attempt);
		}
		memset(&t, 0, sizeof(t));
		t.env = env;
		t.write = write;
		t.group = *g;
		rc = rtxn_begin(c, tag, write, &t.rt);
		unreachable = rc == RTXN_RETRY;
		if (rc == RTXN_RETRY)
			continue;
		if (rc != EF_OK)
			break;
		rc = fn(&t, ctx);
		forget_cursors(&t);
		if (t.failed) {
			rtxn_abort(t.rt);
			rc = t.fail_code;
			if (rc == RTXN_RETRY)
				continue;
			break;
		}
		if (write && rc != EF_OK) {
			/* nothing to write (EF_EXISTS, FEED_NOCHANGE...) or an
			 * error: decided on what it read, which stands only if
			 * the group did not change meanwhile (a torn read could
			 * look like a corrupt store); the check costs what an
			 * UNWATCH would */
			int rv = rtxn_verify(t.rt);
			if (rv == RTXN_RETRY)
				continue;
			if (rv != EF_OK)
				rc = rv;
			break;
		}
		if (write) {
			int rg = reng_register(env->reng, g);
			if (rg != EF_OK) {
				rtxn_abort(t.rt);
				rc = rg;
				break;
			}
		}
		/* a read ends with an empty EXEC: all it read was one state */
		{
			int rcm = rtxn_commit(t.rt);
			if (rcm == RTXN_RETRY)
				continue;
			if (rcm != EF_OK)
				rc = rcm;
		}
		break;
	}
	reng_client_give(env->reng, c);
	return rc;
}

/* A failure inside a transaction: the run must not commit; RTXN_RETRY
 * runs it again. */
static int txn_fail(store_txn *t, int rc)
{
	t->failed = 1;
	t->fail_code = rc;
	return rc;
}

static int in_group(store_txn *t, const void *key, size_t klen)
{
	if (reng_key_in(t->env->reng, &t->group, key, klen))
		return 1;
	txn_fail(t, ef__err(t->env->err_id, EF_EINVAL, "redis: key '%.*s' "
			    "is outside the transaction's group '%.*s'",
			    (int)(klen > 80 ? 80 : klen), (const char *)key,
			    (int)(t->group.len > 80 ? 80 : t->group.len),
			    (const char *)t->group.data));
	return 0;
}

static int op_result(store_txn *t, int rc)
{
	if (rc == EF_OK || rc == EF_ENOTFOUND || rc == EF_EXISTS)
		return rc;
	return txn_fail(t, rc);
}

int rstore_get(store_txn *t, const void *key, size_t klen, store_val *val)
{
	store_val v;
	int rc;

	if (!in_group(t, key, klen))
		return t->fail_code;
	rc = op_result(t, rtxn_get(t->rt, key, klen, &v));
	if (rc == EF_OK && val)
		*val = v;
	return rc;
}

/* May @t write @key? Else it has failed. */
static int may_write(store_txn *t, const void *key, size_t klen)
{
	if (!in_group(t, key, klen))
		return 0;
	if (t->write)
		return 1;
	txn_fail(t, ef__err(t->env->err_id, EF_EINVAL, "redis: a write in a "
			    "read transaction"));
	return 0;
}

int rstore_put(store_txn *t, const void *key, size_t klen, const void *val,
	       size_t vlen, unsigned flags)
{
	if (!may_write(t, key, klen))
		return t->fail_code;
	return op_result(t, rtxn_put(t->rt, key, klen, val, vlen, flags));
}

int rstore_del(store_txn *t, const void *key, size_t klen)
{
	if (!may_write(t, key, klen))
		return t->fail_code;
	return op_result(t, rtxn_del(t->rt, key, klen));
}

int rstore_cur_open(store_txn *t, store_cur **out)
{
	for (int i = 0; i < CURS_MAX; i++) {
		if (t->curs[i].rc)
			continue;
		int rc = rcur_open(t->rt, &t->curs[i].rc);
		if (rc != EF_OK) {
			t->curs[i].rc = NULL;
			return txn_fail(t, rc);
		}
		t->curs[i].t = t;
		*out = &t->curs[i];
		return EF_OK;
	}
	return ef__err(t->env->err_id, EF_ENOMEM, "too many cursors");
}

void rstore_cur_hint(store_cur *c, size_t n)
{
	rcur_hint(c->rc, n);
}

void rstore_cur_close(store_cur *c)
{
	rcur_close(c->rc);
	c->rc = NULL;
}

int rstore_cur_move(store_cur *c, int op, const void *key, size_t klen,
		    store_val *k, store_val *v)
{
	store_val kk, vv;
	int rc;

	if (c->t->failed)
		return c->t->fail_code;
	switch (op) {
	case RSTORE_SEEK:
		rc = rcur_seek(c->rc, key, klen, &kk, &vv);
		break;
	case RSTORE_NEXT:
		rc = rcur_next(c->rc, &kk, &vv);
		break;
	case RSTORE_PREV:
		rc = rcur_prev(c->rc, &kk, &vv);
		break;
	default:
		assert(op == RSTORE_LAST);
		rc = rcur_last(c->rc, &kk, &vv);
		break;
	}
	rc = op_result(c->t, rc);
	if (rc == EF_OK) {
		if (k)
			*k = kk;
		if (v)
			*v = vv;
	}
	return rc;
}

int rstore_each_group(store_env *env, store_each_fn fn, void *ctx)
{
	return reng_each_group(env->reng, fn, ctx);
}

int store_lock_take(store_env *env, const char *what, int nowait,
		    ef_wait_fn on_wait, void *ctx, store_lock **out)
{
	*out = NULL;
	if (!env->reng)
		return ef__err(env->err_id, EF_EINVAL, "internal: LMDB's "
			       "maintenance lock is a file");
	return rlock_take(env->reng, what, nowait, on_wait, ctx, env->err_id,
			  (rlock **)out);
}

void store_lock_release(store_lock *l)
{
	rlock_release((rlock *)l);
}

int store_rewrite(store_env *env, store_rewrite_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!env->reng)
		return ef__err(env->err_id, EF_EINVAL, "internal: LMDB has no "
			       "append-only file");
	return reng_rewrite_aof(env->reng, &out->nodes, &out->bytes_before,
				&out->bytes_after);
}

/*
 * cqbatch.c - what a batch of the commit queue (cqueue.h) writes in the
 * store: each request through the ordinary fin_apply, and beside it its
 * token, so that no request is ever applied twice and each caller gets the
 * result of its own call, whoever dies where.
 *
 *   meta:groupCommit:<slot>   16-byte token, then the result (i32, BE)
 *
 * The record of a slot is written in the transaction that applies the
 * slot's request, and a transaction applies a request only if the record
 * does not already hold its token: that is the whole of the "at most once"
 * rule, and it holds across dead leaders, two leaders at once (each sees
 * the other's commit: LMDB serializes writers) and waiters that resolve
 * their own request. A slot's record is overwritten only once the slot was
 * freed, i.e. once its request has its result; so the keys stay bounded by
 * the number of slots. ef_check, export and import ignore meta: keys
 * (DESIGN.md reserves them for store metadata).
 */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "feed/cqueue.h"
#include "store/bytes.h"
#include "store/error.h"

#define REC_LEN 20 /* token, result */

static void gc_key(key_buf *k, uint32_t slot)
{
	char name[32];

	snprintf(name, sizeof(name), "groupCommit:%03u", (unsigned)slot);
	key_meta(k, name);
}

/* EF_OK with *rc when the record of @slot holds @token (the request was
 * committed); EF_ENOTFOUND when not; or a store error. */
static int gc_recorded(store_txn *t, uint32_t slot, const uint8_t *token,
		       int *rc)
{
	key_buf k;
	store_val v;
	int r;

	gc_key(&k, slot);
	r = store_get(t, k.s, k.len, &v);
	if (r != EF_OK)
		return r;
	if (v.len != REC_LEN || sodium_memcmp(v.data, token, 16) != 0)
		return EF_ENOTFOUND; /* another request's */
	*rc = (int)(int32_t)(uint32_t)be_get((const uint8_t *)v.data + 16, 4);
	return EF_OK;
}

static int gc_record(store_txn *t, uint32_t slot, const uint8_t *token,
		     int rc)
{
	uint8_t v[REC_LEN];
	key_buf k;

	gc_key(&k, slot);
	memcpy(v, token, 16);
	be_put(v + 16, (uint32_t)(int32_t)rc, 4);
	return store_put(t, k.s, k.len, v, sizeof(v), 0);
}

/* Apply one request in @t unless its token says it was: *rc gets its
 * result. EF_OK (something to commit), FEED_NOCHANGE (already committed),
 * or the error that aborts the transaction. */
static int gc_apply_one(store_txn *t, ef_store *st, const fin_item *it,
			int64_t now, uint32_t slot, const uint8_t *token,
			int *rc)
{
	int r = gc_recorded(t, slot, token, rc);

	if (r == EF_OK)
		return FEED_NOCHANGE;
	if (r != EF_ENOTFOUND)
		return r;
	r = fin_apply(t, st, it, now, 0, NULL);
	if (r < 0)
		return r;
	*rc = r; /* EF_OK or EF_EXISTS: recorded either way */
	return gc_record(t, slot, token, r);
}

typedef struct batch_ctx {
	ef_store *st;
	cq_item *items;
	size_t n;
	size_t recovered; /* resolved from their records */
} batch_ctx;

static int batch_txn(store_txn *t, void *p)
{
	batch_ctx *c = p;
	int wrote = 0;

	c->recovered = 0; /* store_write may run this again */
	for (size_t i = 0; i < c->n; i++) {
		cq_item *x = &c->items[i];
		int rc = gc_apply_one(t, c->st, &x->it, x->now, x->slot,
				      x->token, &x->rc);

		if (rc == FEED_NOCHANGE)
			c->recovered++;
		else if (rc == EF_OK)
			wrote = 1;
		else
			return rc;
	}
	cq__at("applied");
	return wrote ? EF_OK : FEED_NOCHANGE;
}

typedef struct one_ctx {
	ef_store *st;
	const fin_item *it;
	int64_t now;
	uint32_t slot;
	const uint8_t *token;
	int rc;
} one_ctx;

static int one_txn(store_txn *t, void *p)
{
	one_ctx *c = p;

	return gc_apply_one(t, c->st, c->it, c->now, c->slot, c->token,
			    &c->rc);
}

/* One request in its own transaction: its result (a store error if the
 * transaction failed). A result found in the record was committed by a
 * leader that may have died before syncing it: sync before handing it on. */
static int gc_single(ef_store *st, const fin_item *it, int64_t now,
		     uint32_t slot, const uint8_t *token)
{
	one_ctx c = {st, it, now, slot, token, 0};
	int rc = store_write(st->env, one_txn, &c);

	if (rc == FEED_NOCHANGE)
		rc = store_sync(st->env);
	return rc == EF_OK ? c.rc : rc;
}

void cqb_lead(ef_store *st, cqueue *q, cq_item *items)
{
	size_t n;
	batch_ctx c;
	int rc;

	cq__at("leading");
	n = cq_claim(q, items, CQ_NSLOTS);
	c = (batch_ctx){st, items, n, 0};
	cq__at("claimed");
	if (n == 0) {
		cq_lead_end(q);
		return;
	}
	rc = store_write(st->env, batch_txn, &c);
	/* results taken from a dead leader's records: its commit may be
	 * visible and not yet synced (killed between its meta page and its
	 * fsync); a commit of ours synced it with everything before it, a
	 * batch with nothing to write must sync it itself */
	if (rc == FEED_NOCHANGE)
		rc = store_sync(st->env) == EF_OK ? FEED_NOCHANGE : EF_EIO;
	if (rc == EF_OK || rc == FEED_NOCHANGE) {
		/* committed (and synced unless EF_NOSYNC): now, and only
		 * now, may anyone be told */
		cq__at("committed");
		cq_count_batch(q, n, c.recovered);
		for (size_t i = 0; i < n; i++)
			cq_complete(q, &items[i], items[i].rc, "");
	} else {
		/* one request failed the whole transaction: give each its
		 * own, so that it fails alone */
		for (size_t i = 0; i < n; i++) {
			cq_item *x = &items[i];
			int r = gc_single(st, &x->it, x->now, x->slot,
					  x->token);

			cq_complete(q, x, r,
				    r < 0 ? ef__err_get(st->err_id) : "");
		}
	}
	cq_lead_end(q);
}

int cqb_resolve(ef_store *st, const cq_ticket *t, const fin_item *it,
		int64_t now)
{
	return gc_single(st, it, now, t->slot, t->token);
}

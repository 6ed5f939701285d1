/*
 * group.c - finalizations in batches: one write transaction (and one sync)
 * for many, each with its own result; and group commit, which gathers the
 * concurrent ef_finalize calls of all processes and threads of a store into
 * such batches.
 *
 * Group commit has no timer: the first caller to find no batch running
 * leads at once with whatever is queued (a lone caller: just itself), and
 * callers arriving meanwhile queue for the next batch, which one of them
 * leads when the current one is synced. The queue is the store's commit
 * queue file (cqueue.h), shared by every process; where it cannot be had
 * (not made, not mapped, full, a request too big for a slot) a process
 * falls back to its own in-process queue below, and that to a plain
 * transaction of its own: never to waiting for ever.
 */
#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/cqueue.h"
#include "feed/feed.h"
#include "store/error.h"

#define GROUP_MAX 256 /* finalizations in one transaction */

struct gc_req {
	fin_req r;             /* the finalization and its result */
	int done;              /* r.rc is final */
	pthread_cond_t cv;     /* this caller's own wake-up */
	struct gc_req *next;   /* queue link */
};

struct fin_group {
	pthread_mutex_t mu;
	struct gc_req *head;   /* queued, not yet in a batch */
	struct gc_req **tail;
	int leading;           /* a batch is being written */
	cqueue *cq;            /* the shared commit queue, or NULL */
	pthread_mutex_t cq_mu; /* renewing cq */
	cq_item *items;        /* a leader's batch (one leader a process) */
};

typedef struct batch_ctx {
	ef_store *st;
	fin_req *reqs;
	size_t n;
} batch_ctx;

static int batch_txn(store_txn *t, void *p)
{
	batch_ctx *c = p;

	for (size_t i = 0; i < c->n; i++) {
		c->reqs[i].rc = fin_apply(t, c->st, c->reqs[i].it,
					  c->reqs[i].now, 0, NULL);
		if (c->reqs[i].rc < 0)
			return c->reqs[i].rc;
	}
	return EF_OK;
}

static int single_txn(store_txn *t, void *p)
{
	batch_ctx *c = p;
	return fin_apply(t, c->st, c->reqs->it, c->reqs->now, 0, NULL);
}

static store_val owner_group(const fin_req *r)
{
	store_val g = {r->it->owner.s, r->it->owner.len};
	return g;
}

/* Requests of one group in one transaction; if it fails as a whole, each
 * gets its own, so that one failing finalization does not fail the
 * others. */
static void batch_in(ef_store *st, const store_val *g, fin_req *reqs,
		     size_t n)
{
	batch_ctx c = {st, reqs, n};
	int rc = n == 1 ? store_write_in(st->env, g, single_txn, &c)
			: store_write_in(st->env, g, batch_txn, &c);

	if (n == 1) {
		reqs[0].rc = rc;
		return;
	}
	if (rc == EF_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		batch_ctx one = {st, &reqs[i], 1};
		store_val og = owner_group(&reqs[i]);
		reqs[i].rc = store_write_in(st->env, &og, single_txn, &one);
	}
}

void fin_batch(ef_store *st, fin_req *reqs, size_t n)
{
	size_t i = 0;

	if (!store_sharded(st->env)) {
		batch_in(st, STORE_ALL, reqs, n);
		return;
	}
	/* a sharded engine commits one group at a time: runs of one owner */
	while (i < n) {
		store_val g = owner_group(&reqs[i]);
		size_t j = i + 1;
		while (j < n && reqs[j].it->owner.len == g.len &&
		       memcmp(reqs[j].it->owner.s, g.data, g.len) == 0)
			j++;
		batch_in(st, &g, reqs + i, j - i);
		i = j;
	}
}

/* The settings a request is applied with: a leader takes only requests
 * that its own handle would apply alike (same cap, staleness, retention,
 * and durability: a durable caller is never acknowledged by a commit that
 * was not synced). */
static uint32_t group_tag(const ef_store *st)
{
	const ef_config *c = &st->cfg;
	uint8_t in[8 * 3 + 4], out[16];
	uint32_t tag;

	memcpy(in, &c->feed_ttl_ms, 8);
	memcpy(in + 8, &c->ip_retention_ms, 8);
	memcpy(in + 16, &(uint64_t){c->feed_cap}, 8);
	memcpy(in + 24, &(uint32_t){c->flags & EF_NOSYNC}, 4);
	crypto_generichash(out, sizeof(out), in, sizeof(in), NULL, 0);
	memcpy(&tag, out, sizeof(tag));
	return tag;
}

int fin_group_new(ef_store *st, struct fin_group **out)
{
	struct fin_group *g = ef__calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return EF_ENOMEM;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return EF_ENOMEM;
	}
	if (pthread_mutex_init(&g->cq_mu, NULL) != 0) {
		pthread_mutex_destroy(&g->mu);
		free(g);
		return EF_ENOMEM;
	}
	g->tail = &g->head;
	g->items = ef__calloc(CQ_NSLOTS, sizeof(*g->items));
	/* no queue file (a read-only directory, a refusal, no memory): the
	 * in-process queue alone, as before the queue file existed */
	if (g->items && cqueue_open(st->dir, group_tag(st), st->err_id,
				    &g->cq) != EF_OK)
		ef__err_clear(st->err_id);
	*out = g;
	return EF_OK;
}

void fin_group_free(struct fin_group *g)
{
	if (!g)
		return;
	cqueue_close(g->cq);
	free(g->items);
	pthread_mutex_destroy(&g->cq_mu);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* Lead one batch of the in-process queue: everything queued, up to
 * GROUP_MAX. Called with g->mu held; returns with it held. Each member is
 * woken on its own condition variable, and the first caller queued
 * meanwhile is woken to lead the next batch: nobody else wakes for
 * nothing. */
static void lead(ef_store *st, struct fin_group *g)
{
	struct gc_req *batch[GROUP_MAX];
	fin_req reqs[GROUP_MAX];
	size_t n = 0;

	g->leading = 1;
	while (g->head && n < GROUP_MAX) {
		batch[n] = g->head;
		reqs[n] = g->head->r;
		n++;
		g->head = g->head->next;
	}
	if (!g->head)
		g->tail = &g->head;
	pthread_mutex_unlock(&g->mu);
	fin_batch(st, reqs, n);
	pthread_mutex_lock(&g->mu);
	for (size_t i = 0; i < n; i++) {
		batch[i]->r.rc = reqs[i].rc;
		batch[i]->done = 1;
		pthread_cond_signal(&batch[i]->cv);
	}
	g->leading = 0;
	if (g->head)
		pthread_cond_signal(&g->head->cv);
}

/* The in-process queue: threads of this process only. */
static int local_apply(ef_store *st, struct fin_group *g, const fin_item *it,
		       int64_t now)
{
	struct gc_req req;

	memset(&req, 0, sizeof(req));
	req.r.it = it;
	req.r.now = now;
	if (pthread_cond_init(&req.cv, NULL) != 0) {
		fin_batch(st, &req.r, 1);
		return req.r.rc;
	}
	pthread_mutex_lock(&g->mu);
	*g->tail = &req;
	g->tail = &req.next;
	while (!req.done) {
		if (!g->leading)
			lead(st, g);
		else
			pthread_cond_wait(&req.cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	pthread_cond_destroy(&req.cv);
	return req.r.rc;
}

/* The queue file found damaged or retired: map the one now in its place
 * (once per queue, whichever thread sees it first). */
static cqueue *renew(ef_store *st, struct fin_group *g, cqueue *seen)
{
	cqueue *q;

	pthread_mutex_lock(&g->cq_mu);
	q = __atomic_load_n(&g->cq, __ATOMIC_ACQUIRE);
	if (q == seen) {
		cqueue *n = cqueue_renew(seen, st->err_id);
		if (n)
			__atomic_store_n(&g->cq, n, __ATOMIC_RELEASE);
		q = n;
		ef__err_clear(st->err_id);
	}
	pthread_mutex_unlock(&g->cq_mu);
	return q;
}

/* Wait for the request of @t in @q, leading batches when asked to. */
static int shared_wait(ef_store *st, struct fin_group *g, cqueue *q,
		       cq_ticket *t, const fin_item *it, int64_t now)
{
	char err[256];
	int rc;

	for (;;) {
		switch (cq_wait(q, t, &rc, err, sizeof(err))) {
		case CQ_DONE:
			if (rc == CQ_LOST)
				return cqb_resolve(st, t, it, now);
			if (rc < 0)
				ef__err(st->err_id, rc, "%s", err);
			return rc;
		case CQ_LEAD:
			/* one leader a process (the lead is its pid): the
			 * batch buffer is ours alone */
			cqb_lead(st, q, g->items);
			break;
		default: /* CQ_LOST: the slot cannot be trusted any more */
			return cqb_resolve(st, t, it, now);
		}
	}
}

int fin_group_apply(ef_store *st, struct fin_group *g, const fin_item *it,
		    int64_t now)
{
	cqueue *q = __atomic_load_n(&g->cq, __ATOMIC_ACQUIRE);
	cq_ticket t;
	int rc = CQ_FULL;

	if (q)
		rc = cq_submit(q, it, now, &t);
	if (rc == CQ_LOST && (q = renew(st, g, q)))
		rc = cq_submit(q, it, now, &t);
	if (rc == EF_OK)
		return shared_wait(st, g, q, &t, it, now);
	if (rc == CQ_ALONE) { /* nobody to batch with: an ordinary commit */
		fin_req r = {.it = it, .now = now};

		fin_batch(st, &r, 1);
		cq_alone_end(q, &t, 1);
		return r.rc;
	}
	return local_apply(st, g, it, now);
}

void fin_group_apply_many(ef_store *st, struct fin_group *g, fin_req *reqs,
			  size_t n)
{
	cqueue *q = __atomic_load_n(&g->cq, __ATOMIC_ACQUIRE);
	cq_ticket *t;
	uint8_t *queued;
	fin_req *direct;
	size_t nd = 0;
	int rc;

	assert(n > 0);
	t = ef__calloc(n, sizeof(*t));
	queued = ef__calloc(n, 1);
	direct = ef__calloc(n, sizeof(*direct));
	if (!q || !t || !queued || !direct) {
		fin_batch(st, reqs, n); /* no queue: one transaction anyway */
		goto out;
	}
	rc = cq_submit(q, reqs[0].it, reqs[0].now, &t[0]);
	if (rc == CQ_ALONE) { /* nobody to share with: one commit, now */
		fin_batch(st, reqs, n);
		cq_alone_end(q, &t[0], n);
		goto out;
	}
	queued[0] = rc == EF_OK;
	for (size_t i = 1; i < n; i++) /* slot 0 is in use: never alone */
		queued[i] = cq_submit(q, reqs[i].it, reqs[i].now, &t[i]) ==
			    EF_OK;
	for (size_t i = 0; i < n; i++) /* no slot (full, damaged file) */
		if (!queued[i])
			direct[nd++] = reqs[i];
	if (nd) {
		fin_batch(st, direct, nd);
		for (size_t i = 0, k = 0; i < n; i++)
			if (!queued[i])
				reqs[i].rc = direct[k++].rc;
	}
	/* the first wait may lead: its batch takes the others of ours, which
	 * are then done when their turn comes */
	for (size_t i = 0; i < n; i++)
		if (queued[i])
			reqs[i].rc = shared_wait(st, g, q, &t[i], reqs[i].it,
						 reqs[i].now);
out:
	free(t);
	free(queued);
	free(direct);
}

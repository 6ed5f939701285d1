/*
 * group.c - finalizations in batches: one write transaction (and one sync)
 * for many, each with its own result; and group commit, which gathers the
 * concurrent ef_finalize calls of one process into such batches.
 *
 * Group commit has no timer: the first caller to find no batch running
 * leads at once with whatever is queued (a lone caller: just itself), and
 * callers arriving meanwhile queue for the next batch, which the next
 * waiting caller leads when the current one is synced.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "store/error.h"

#define GROUP_MAX 256 /* finalizations in one transaction */

struct gc_req {
	fin_req r;             /* the finalization and its result */
	int done;              /* r.rc is final */
	struct gc_req *next;   /* queue link */
};

struct fin_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* a batch finished */
	struct gc_req *head;   /* queued, not yet in a batch */
	struct gc_req **tail;
	int leading;           /* a batch is being written */
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

void fin_batch(ef_store *st, fin_req *reqs, size_t n)
{
	batch_ctx c = {st, reqs, n};
	int rc = n == 1 ? store_write(st->env, single_txn, &c)
			: store_write(st->env, batch_txn, &c);

	if (n == 1) {
		reqs[0].rc = rc;
		return;
	}
	if (rc == EF_OK)
		return;
	/* the transaction failed as a whole: give each its own, so that one
	 * failing finalization does not fail the others */
	for (size_t i = 0; i < n; i++) {
		batch_ctx one = {st, &reqs[i], 1};
		reqs[i].rc = store_write(st->env, single_txn, &one);
	}
}

int fin_group_new(struct fin_group **out)
{
	struct fin_group *g = ef__calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return EF_ENOMEM;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return EF_ENOMEM;
	}
	if (pthread_cond_init(&g->cv, NULL) != 0) {
		pthread_mutex_destroy(&g->mu);
		free(g);
		return EF_ENOMEM;
	}
	g->tail = &g->head;
	*out = g;
	return EF_OK;
}

void fin_group_free(struct fin_group *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* Lead one batch: everything queued, up to GROUP_MAX. Called with g->mu
 * held; returns with it held. */
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
	}
	g->leading = 0;
	pthread_cond_broadcast(&g->cv);
}

int fin_group_apply(ef_store *st, struct fin_group *g, const fin_item *it,
		    int64_t now)
{
	struct gc_req req;

	memset(&req, 0, sizeof(req));
	req.r.it = it;
	req.r.now = now;
	pthread_mutex_lock(&g->mu);
	*g->tail = &req;
	g->tail = &req.next;
	while (!req.done) {
		if (!g->leading)
			lead(st, g);
		else
			pthread_cond_wait(&g->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return req.r.rc;
}

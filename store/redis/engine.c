/*
 * engine.c - the Redis Cluster engine's environment (engine.h): the
 * address, a pool of clients (one per thread at a time), group tags and
 * the registry of groups.
 */
#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/redis/engine.h"
#include "store/redis/slot.h"

#define POOL_MAX 64      /* idle clients kept */
#define SEEN_SLOTS 4096  /* registered groups remembered (hashes) */
#define WALK_BATCH "1000"

struct reng {
	raddr a;
	uint64_t err_id;
	store_group_fn group_of;
	pthread_mutex_t mu;     /* guards the pool and the seen set */
	rclient *pool[POOL_MAX];
	size_t npool;
	uint64_t seen[SEEN_SLOTS]; /* open addressing; 0: empty */
	size_t nseen;
	char reg[3 + 2 + RENG_TAG_LEN + 2 + 1]; /* ef:{R}:g */
};

void reng_tag(const reng *e, char kind, const store_val *g,
	      char out[RENG_TAG_LEN + 1])
{
	crypto_generichash_state st;
	unsigned char h[RENG_TAG_LEN / 2];
	const unsigned char zero = 0, k = (unsigned char)kind;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)e->a.store,
				  strlen(e->a.store));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, &k, 1);
	if (g && g->len)
		crypto_generichash_update(&st, g->data, g->len);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(out, RENG_TAG_LEN + 1, h, sizeof(h));
}

unsigned reng_slot(const reng *e, char kind, const store_val *g)
{
	char tag[RENG_TAG_LEN + 1];

	/* every key of a tag is ef:{T}:..., and a cluster hashes T alone */
	reng_tag(e, kind, g, tag);
	return rslot_of(tag, RENG_TAG_LEN);
}

int reng_open(reng **out, const char *addr, const store_opts *o,
	      uint64_t err_id)
{
	char tag[RENG_TAG_LEN + 1];
	rclient *c;
	reng *e;
	int rc;

	*out = NULL;
	assert(o && o->group_of);
	e = ef__calloc(1, sizeof(*e));
	if (!e)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	e->err_id = err_id;
	e->group_of = o->group_of;
	rc = raddr_parse(err_id, addr, &e->a);
	if (rc != EF_OK) {
		raddr_wipe(&e->a);
		free(e);
		return rc;
	}
	if (pthread_mutex_init(&e->mu, NULL) != 0) {
		raddr_wipe(&e->a);
		free(e);
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	}
	reng_tag(e, 'r', NULL, tag);
	snprintf(e->reg, sizeof(e->reg), "ef:{%s}:g", tag);
	rc = rclient_open(&c, &e->a, err_id);
	if (rc != EF_OK) {
		reng_close(e);
		return rc;
	}
	reng_client_give(e, c);
	*out = e;
	return EF_OK;
}

void reng_close(reng *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->npool; i++)
		rclient_close(e->pool[i]);
	pthread_mutex_destroy(&e->mu);
	raddr_wipe(&e->a);
	free(e);
}

int reng_client_take(reng *e, rclient **out)
{
	rclient *c = NULL;

	pthread_mutex_lock(&e->mu);
	if (e->npool)
		c = e->pool[--e->npool];
	pthread_mutex_unlock(&e->mu);
	if (c) {
		*out = c;
		return EF_OK;
	}
	return rclient_open(out, &e->a, e->err_id);
}

void reng_client_give(reng *e, rclient *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&e->mu);
	if (e->npool < POOL_MAX) {
		e->pool[e->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&e->mu);
	rclient_close(c); /* more threads than the pool keeps */
}

int reng_cmd(reng *e, int slot, unsigned flags, int argc, const char **argv,
	     const size_t *lens, const char *what, redisReply **out)
{
	rclient *c;
	int rc = reng_client_take(e, &c);

	*out = NULL;
	if (rc != EF_OK)
		return rc;
	rc = rclient_cmd(c, slot, flags, argc, argv, lens, out);
	reng_client_give(e, c);
	if (rc == EF_EIO) { /* say what it was for */
		char why[256]; /* the slot is rewritten */
		snprintf(why, sizeof(why), "%s", ef__err_get(e->err_id));
		rc = ef__err(e->err_id, EF_EIO, "redis: %s: %s", what, why);
	} else if (rc == EF_OK && (*out)->type == REDIS_REPLY_ERROR) {
		rc = ef__err(e->err_id, EF_EIO, "redis: %s: %.*s", what,
			     (int)((*out)->len > 120 ? 120 : (*out)->len),
			     (*out)->str);
		freeReplyObject(*out);
		*out = NULL;
	}
	return rc;
}

int reng_key_in(const reng *e, const store_val *g, const void *key,
		size_t klen)
{
	store_val kg;

	if (e->group_of(key, klen, &kg) != EF_OK)
		return 0;
	return kg.len == g->len && (g->len == 0 ||
				    memcmp(kg.data, g->data, g->len) == 0);
}

static uint64_t group_hash(const store_val *g)
{
	uint64_t h;

	crypto_generichash((unsigned char *)&h, sizeof(h), g->data, g->len,
			   NULL, 0);
	return h ? h : 1;
}

/* Is @h in the seen set? With @add, put it there (a full set starts
 * again: it is a cache). */
static int seen(reng *e, uint64_t h, int add)
{
	size_t i = (size_t)(h % SEEN_SLOTS);

	for (size_t n = 0; n < SEEN_SLOTS; n++, i = (i + 1) % SEEN_SLOTS) {
		if (e->seen[i] == h)
			return 1;
		if (e->seen[i] == 0)
			break;
	}
	if (!add)
		return 0;
	if (e->nseen >= SEEN_SLOTS / 2) {
		memset(e->seen, 0, sizeof(e->seen));
		e->nseen = 0;
		i = (size_t)(h % SEEN_SLOTS);
	}
	while (e->seen[i])
		i = (i + 1) % SEEN_SLOTS;
	e->seen[i] = h;
	e->nseen++;
	return 0;
}

int reng_register(reng *e, const store_val *g)
{
	uint64_t h;
	const char *argv[4];
	size_t lens[4];
	redisReply *r = NULL;
	int rc, known;

	if (g->len == 0) /* the metadata group is always walked */
		return EF_OK;
	h = group_hash(g);
	pthread_mutex_lock(&e->mu);
	known = seen(e, h, 0);
	pthread_mutex_unlock(&e->mu);
	if (known)
		return EF_OK;
	argv[0] = "ZADD";
	lens[0] = 4;
	argv[1] = e->reg;
	lens[1] = strlen(e->reg);
	argv[2] = "0";
	lens[2] = 1;
	argv[3] = g->data;
	lens[3] = g->len;
	/* on a client of its own (reng_cmd): the caller's holds a
	 * transaction's connection (txn.h), which this command, failing on
	 * the same node, would free under the transaction; with wait=N, as
	 * durable as the write it comes before: a group lost from the
	 * registry is lost to every walk of the store */
	rc = reng_cmd(e, (int)rslot_of(argv[1], lens[1]),
		      RCMD_IDEMPOTENT | RCMD_WAIT, 4, argv, lens,
		      "registering a group", &r);
	if (r)
		freeReplyObject(r);
	if (rc == EF_OK) {
		pthread_mutex_lock(&e->mu);
		seen(e, h, 1);
		pthread_mutex_unlock(&e->mu);
	}
	return rc;
}

/* One batch of the registry after @from ("-" at first): its members into
 * a reply the caller frees. */
static int walk_batch(reng *e, rclient *c, const char *from, size_t flen,
		      redisReply **out)
{
	const char *argv[] = {"ZRANGEBYLEX", e->reg, from, "+", "LIMIT", "0",
			      WALK_BATCH};
	size_t lens[] = {11, strlen(e->reg), flen, 1, 5, 1,
			 sizeof(WALK_BATCH) - 1};
	int rc;

	rc = rclient_cmd(c, (int)rslot_of(e->reg, lens[1]), RCMD_IDEMPOTENT,
			 7, argv, lens, out);
	if (rc != EF_OK)
		return rc;
	if ((*out)->type != REDIS_REPLY_ARRAY) {
		rc = ef__err(e->err_id, EF_EIO, "redis: the registry of groups "
			     "is not a sorted set");
		freeReplyObject(*out);
		*out = NULL;
	}
	return rc;
}

int reng_each_group(reng *e, store_each_fn fn, void *ctx)
{
	store_val g = {"", 0};
	char *from = NULL;
	size_t flen = 1;
	redisReply *r = NULL;
	rclient *c;
	int rc;

	rc = fn(&g, ctx);
	if (rc != EF_OK)
		return rc;
	from = ef__malloc(2);
	if (!from)
		return ef__err(e->err_id, EF_ENOMEM, "out of memory");
	memcpy(from, "-", 2);
	for (;;) {
		size_t n;
		rc = reng_client_take(e, &c);
		if (rc != EF_OK)
			break;
		rc = walk_batch(e, c, from, flen, &r);
		reng_client_give(e, c);
		if (rc != EF_OK)
			break;
		n = r->elements;
		for (size_t i = 0; i < n && rc == EF_OK; i++) {
			redisReply *m = r->element[i];
			if (m->type != REDIS_REPLY_STRING || m->len == 0)
				continue; /* not ours: never written so */
			g.data = m->str;
			g.len = m->len;
			rc = fn(&g, ctx);
		}
		if (rc == EF_OK && n > 0) {
			redisReply *last = r->element[n - 1];
			char *nf = ef__malloc(last->len + 1);
			if (!nf) {
				rc = ef__err(e->err_id, EF_ENOMEM,
					     "out of memory");
			} else {
				nf[0] = '(';
				memcpy(nf + 1, last->str, last->len);
				free(from);
				from = nf;
				flen = last->len + 1;
			}
		}
		freeReplyObject(r);
		r = NULL;
		if (rc != EF_OK || n < (size_t)atoi(WALK_BATCH))
			break;
	}
	free(from);
	return rc;
}

const raddr *reng_addr(const reng *e)
{
	return &e->a;
}

uint64_t reng_err_id(const reng *e)
{
	return e->err_id;
}

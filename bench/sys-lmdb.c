/*
 * sys-lmdb.c - lmdb-raw: edgefeed's key schema and finalize-shaped
 * transaction (1 get + 3 puts) written directly against liblmdb, with no
 * layer in between: no validation, no IP sealing, no cap, no legacy look-up.
 * It is the engine's limit that edgefeed is measured against.
 *
 *   receiveIndex:<owner>:<rid>             <createdSort>
 *   recentReceive:<owner>:<sort>:<rid>     record
 *   unread:<owner>:<rid>                   <createdSort>
 *
 * Record: version (1), created_ms (8, little endian), rid length (1), rid,
 * IPv4 (4, zero when absent), payload bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "blmdb.h"

#define SORT_MAX 9999999999999LL
#define KEY_BUF 512
#define REC_BUF 512

typedef struct lm {
	MDB_env *env;
	MDB_dbi dbi;
	int unread;      /* look up unread markers when reading */
} lm;

int blmdb_err(const char *who, const char *what, int rc)
{
	fprintf(stderr, "edgefeed-bench: %s: %s: %s\n", who, what,
		mdb_strerror(rc));
	return BS_ERR;
}

int blmdb_open(MDB_env **env, MDB_dbi *dbi, const char *dir, int durable,
	       const char *who)
{
	MDB_txn *t;
	int rc;

	*env = NULL;
	if ((rc = mdb_env_create(env)) ||
	    (rc = mdb_env_set_mapsize(*env, BLMDB_MAP_SIZE)) ||
	    (rc = mdb_env_set_maxreaders(*env, 512)) ||
	    (rc = mdb_env_open(*env, dir, durable ? 0 : MDB_NOSYNC, 0600)))
		goto fail;
	if ((rc = mdb_txn_begin(*env, NULL, 0, &t)))
		goto fail;
	if ((rc = mdb_dbi_open(t, NULL, 0, dbi))) {
		mdb_txn_abort(t);
		goto fail;
	}
	if ((rc = mdb_txn_commit(t)))
		goto fail;
	return 0;
fail:
	blmdb_err(who, "open", rc);
	mdb_env_close(*env);
	*env = NULL;
	return BS_ERR;
}

int blmdb_count_prefix(MDB_env *env, MDB_dbi dbi, const char *prefix,
		       uint64_t *n)
{
	MDB_txn *t;
	MDB_cursor *c;
	size_t plen = strlen(prefix);
	MDB_val k = {plen, (void *)prefix}, v;
	int rc;

	*n = 0;
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t)))
		return blmdb_err("lmdb", "count", rc);
	if ((rc = mdb_cursor_open(t, dbi, &c))) {
		mdb_txn_abort(t);
		return blmdb_err("lmdb", "count", rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= plen && !memcmp(k.mv_data, prefix, plen);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		(*n)++;
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	return 0;
}

int blmdb_compact(MDB_env *env, const char *dir, const char *who)
{
	char tmp[4096], from[4200], to[4200];
	int rc;

	snprintf(tmp, sizeof(tmp), "%s/compact", dir);
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return BS_ERR;
	rc = mdb_env_copy2(env, tmp, MDB_CP_COMPACT);
	if (rc)
		return blmdb_err(who, "compacting copy", rc);
	snprintf(from, sizeof(from), "%s/data.mdb", tmp);
	snprintf(to, sizeof(to), "%s/data.mdb", dir);
	if (rename(from, to) != 0)
		return BS_ERR;
	rmdir(tmp);
	return 0;
}

static int lm_open(void **proc, const char *dir, const bs_cfg *cfg)
{
	lm *h = calloc(1, sizeof(*h));

	if (!h)
		return BS_ERR;
	if (blmdb_open(&h->env, &h->dbi, dir, cfg->durable, "lmdb-raw")) {
		free(h);
		return BS_ERR;
	}
	h->unread = cfg->unread;
	*proc = h;
	return 0;
}

static void lm_close(void *proc)
{
	lm *h = proc;

	if (h) {
		mdb_env_close(h->env);
		free(h);
	}
}

static int lm_thread(void *proc, void **th)
{
	*th = proc;
	return 0;
}

static void lm_thread_done(void *th)
{
	(void)th;
}

static size_t enc_rec(const bs_rec *r, uint8_t *out)
{
	size_t rl = strlen(r->rid), pl = r->payload ? strlen(r->payload) : 0;
	uint64_t c = (uint64_t)r->created_ms;
	uint8_t *p = out;

	if (rl > 255 || 1 + 8 + 1 + rl + 4 + pl > REC_BUF)
		return 0;
	*p++ = 1;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(c >> (8 * i));
	*p++ = (uint8_t)rl;
	memcpy(p, r->rid, rl);
	p += rl;
	memset(p, 0, 4);
	if (r->ip && inet_pton(AF_INET, r->ip, p) != 1)
		memset(p, 0, 4);
	p += 4;
	memcpy(p, r->payload, pl);
	return (size_t)(p - out) + pl;
}

/* The finalize-shaped work inside write transaction @t. */
static int lm_apply(lm *h, MDB_txn *t, const bs_rec *r)
{
	char ik[KEY_BUF], ek[KEY_BUF], uk[KEY_BUF], sort[24];
	uint8_t rec[REC_BUF];
	MDB_val k, v;
	size_t rl;
	int rc;

	snprintf(sort, sizeof(sort), "%013" PRId64,
		 (int64_t)(SORT_MAX - r->created_ms));
	k.mv_size = (size_t)snprintf(ik, sizeof(ik), "receiveIndex:%s:%s",
				     r->owner, r->rid);
	k.mv_data = ik;
	rc = mdb_get(t, h->dbi, &k, &v);
	if (rc == 0)
		return BS_EXISTS;
	if (rc != MDB_NOTFOUND)
		return blmdb_err("lmdb-raw", "get", rc);
	v.mv_size = 13;
	v.mv_data = sort;
	if ((rc = mdb_put(t, h->dbi, &k, &v, MDB_NOOVERWRITE)))
		return rc == MDB_KEYEXIST ? BS_EXISTS
					  : blmdb_err("lmdb-raw", "put", rc);
	rl = enc_rec(r, rec);
	if (!rl)
		return BS_ERR;
	k.mv_size = (size_t)snprintf(ek, sizeof(ek), "recentReceive:%s:%s:%s",
				     r->owner, sort, r->rid);
	k.mv_data = ek;
	v.mv_size = rl;
	v.mv_data = rec;
	if ((rc = mdb_put(t, h->dbi, &k, &v, 0)))
		return blmdb_err("lmdb-raw", "put", rc);
	k.mv_size = (size_t)snprintf(uk, sizeof(uk), "unread:%s:%s", r->owner,
				     r->rid);
	k.mv_data = uk;
	v.mv_size = 13;
	v.mv_data = sort;
	if ((rc = mdb_put(t, h->dbi, &k, &v, 0)))
		return blmdb_err("lmdb-raw", "put", rc);
	return BS_OK;
}

static int lm_finalize(void *th, const bs_rec *r)
{
	lm *h = th;
	MDB_txn *t;
	int rc = mdb_txn_begin(h->env, NULL, 0, &t), res;

	if (rc)
		return blmdb_err("lmdb-raw", "begin", rc);
	res = lm_apply(h, t, r);
	if (res != BS_OK) {
		mdb_txn_abort(t);
		return res;
	}
	if ((rc = mdb_txn_commit(t)))
		return blmdb_err("lmdb-raw", "commit", rc);
	return BS_OK;
}

static int lm_load(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	lm *h = th;
	MDB_txn *t;
	int rc = mdb_txn_begin(h->env, NULL, 0, &t);

	if (rc)
		return blmdb_err("lmdb-raw", "begin", rc);
	for (size_t i = 0; i < n; i++) {
		rcs[i] = lm_apply(h, t, &recs[i]);
		if (rcs[i] == BS_ERR) {
			mdb_txn_abort(t);
			return BS_ERR;
		}
	}
	if ((rc = mdb_txn_commit(t)))
		return blmdb_err("lmdb-raw", "commit", rc);
	return 0;
}

/* Materialize one entry as a client needs it; 0 or BS_ERR. */
static int lm_entry(lm *h, MDB_txn *t, const MDB_val *k, const MDB_val *v,
		    size_t plen, bs_entry_fn fn, void *ctx)
{
	const uint8_t *p = v->mv_data;
	char rid[256], ip[INET_ADDRSTRLEN], payload[REC_BUF], uk[KEY_BUF];
	uint64_t c = 0;
	size_t rl, pl, ul;
	int unread = 0;

	if (v->mv_size < 14 || p[0] != 1)
		return BS_ERR;
	for (int i = 0; i < 8; i++)
		c |= (uint64_t)p[1 + i] << (8 * i);
	rl = p[9];
	if (v->mv_size < 10 + rl + 4)
		return BS_ERR;
	memcpy(rid, p + 10, rl);
	rid[rl] = '\0';
	inet_ntop(AF_INET, p + 10 + rl, ip, sizeof(ip));
	pl = v->mv_size - (10 + rl + 4);
	memcpy(payload, p + 14 + rl, pl);
	payload[pl] = '\0';
	if (h->unread) {
		/* "recentReceive:<owner>:<sort>:<rid>" -> "unread:<owner>:<rid>" */
		const char *key = k->mv_data;
		size_t ol = plen - 14 - 1; /* owner length */
		MDB_val mk, mv;
		ul = (size_t)snprintf(uk, sizeof(uk), "unread:%.*s:%s",
				      (int)ol, key + 14, rid);
		mk.mv_size = ul;
		mk.mv_data = uk;
		unread = mdb_get(t, h->dbi, &mk, &mv) == 0;
	}
	(void)unread; /* looked up as a client would; not reported */
	if (fn)
		fn(ctx, rid, rl, (int64_t)c);
	return 0;
}

static int lm_page(void *th, const char *owner, const char *cursor,
		   size_t limit, bs_entry_fn fn, void *ctx,
		   char next[BS_CURSOR_MAX], size_t *count)
{
	lm *h = th;
	char prefix[KEY_BUF];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix),
				       "recentReceive:%s:", owner);
	MDB_txn *t;
	MDB_cursor *c;
	MDB_val k, v, last = {0, NULL};
	int rc, res = 0;

	next[0] = '\0';
	*count = 0;
	if ((rc = mdb_txn_begin(h->env, NULL, MDB_RDONLY, &t)))
		return blmdb_err("lmdb-raw", "begin read", rc);
	if ((rc = mdb_cursor_open(t, h->dbi, &c))) {
		mdb_txn_abort(t);
		return blmdb_err("lmdb-raw", "cursor", rc);
	}
	k.mv_data = cursor[0] ? (void *)cursor : prefix;
	k.mv_size = cursor[0] ? strlen(cursor) : plen;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && cursor[0] && k.mv_size == strlen(cursor) &&
	    !memcmp(k.mv_data, cursor, k.mv_size))
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	for (; rc == 0 && k.mv_size > plen && !memcmp(k.mv_data, prefix, plen);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (*count == limit) {
			if (last.mv_size < BS_CURSOR_MAX) {
				memcpy(next, last.mv_data, last.mv_size);
				next[last.mv_size] = '\0';
			}
			break;
		}
		if ((res = lm_entry(h, t, &k, &v, plen, fn, ctx)) != 0)
			break;
		last = k;
		(*count)++;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	return res;
}

static int lm_count(void *th, uint64_t *n)
{
	lm *h = th;
	return blmdb_count_prefix(h->env, h->dbi, "recentReceive:", n);
}

static int lm_compact(void *proc, const char *dir)
{
	lm *h = proc;
	return blmdb_compact(h->env, dir, "lmdb-raw");
}

const bsys_ops bsys_lmdb = {
	"lmdb-raw", lm_open, lm_close, lm_thread, lm_thread_done,
	lm_finalize, lm_load, lm_page, lm_count, lm_compact, 0,
};

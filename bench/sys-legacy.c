/*
 * sys-legacy.c - the design edgefeed replaces: each owner's feed is one
 * JSON array under "recentReceives:<owner>", newest first, and every
 * finalization reads it, adds its element (unless the reservation is in
 * it already) and writes it back.
 *
 *   legacy-txn   the read-modify-write inside one LMDB write transaction:
 *                correct, but every finalization costs O(array).
 *   legacy-lock  the old worker: read the array, change it under a lock
 *                of this process, write it back in a separate transaction.
 *                A lock inside one process does not serialize another, so
 *                two processes overwrite each other's elements: the
 *                benchmark's ledger counts the entries lost that way.
 *
 * Arrays are not capped here, so that every acknowledged element must stay
 * and the ledger can tell a lost one from an evicted one.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "blmdb.h"

#define KEY_BUF 512

typedef struct leg {
	MDB_env *env;
	MDB_dbi dbi;
	int lock;              /* legacy-lock: separate read and write */
	pthread_mutex_t mu;    /* legacy-lock: the in-process lock */
	const char *name;
} leg;

static int leg_open(void **proc, const char *dir, const bs_cfg *cfg, int lk)
{
	leg *h = calloc(1, sizeof(*h));

	if (!h)
		return BS_ERR;
	h->lock = lk;
	h->name = lk ? "legacy-lock" : "legacy-txn";
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return BS_ERR;
	}
	if (blmdb_open(&h->env, &h->dbi, dir, cfg->durable, h->name)) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return BS_ERR;
	}
	*proc = h;
	return 0;
}

static int leg_open_txn(void **proc, const char *dir, const bs_cfg *cfg)
{
	return leg_open(proc, dir, cfg, 0);
}

static int leg_open_lock(void **proc, const char *dir, const bs_cfg *cfg)
{
	return leg_open(proc, dir, cfg, 1);
}

static void leg_close(void *proc)
{
	leg *h = proc;

	if (h) {
		mdb_env_close(h->env);
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
}

static int leg_thread(void *proc, void **th)
{
	*th = proc;
	return 0;
}

static void leg_thread_done(void *th)
{
	(void)th;
}

/* The old worker's element: reservationId, createdAt (ISO-8601), ip, then
 * the payload's fields. */
static json_t *leg_element(const bs_rec *r)
{
	json_t *el = json_object(), *p = NULL;
	time_t secs = (time_t)(r->created_ms / 1000);
	struct tm tm;
	char iso[64];

	if (!el)
		return NULL;
	gmtime_r(&secs, &tm);
	snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(r->created_ms % 1000));
	json_object_set_new(el, "reservationId", json_string(r->rid));
	json_object_set_new(el, "createdAt", json_string(iso));
	if (r->ip)
		json_object_set_new(el, "ip", json_string(r->ip));
	if (r->payload)
		p = json_loads(r->payload, 0, NULL);
	if (json_is_object(p))
		json_object_update(el, p);
	json_decref(p);
	return el;
}

static int leg_has(json_t *arr, const char *rid)
{
	size_t i;
	json_t *el;

	json_array_foreach(arr, i, el) {
		const char *s = json_string_value(
			json_object_get(el, "reservationId"));
		if (s && !strcmp(s, rid))
			return 1;
	}
	return 0;
}

/* The array from a stored value (a new empty one when @v is NULL). */
static json_t *leg_parse(const MDB_val *v)
{
	json_t *a;

	if (!v)
		return json_array();
	a = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	if (!json_is_array(a)) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static int leg_key(char *k, const char *owner)
{
	return snprintf(k, KEY_BUF, "recentReceives:%s", owner);
}

/* Add @n elements of one owner to @arr (newest first), skipping those it
 * has; @rcs gets each answer. 1 if anything was added. */
static int leg_add(json_t *arr, const bs_rec *recs, size_t n, int *rcs)
{
	int changed = 0;

	for (size_t i = 0; i < n; i++) {
		json_t *el;
		if (leg_has(arr, recs[i].rid)) {
			rcs[i] = BS_EXISTS;
			continue;
		}
		el = leg_element(&recs[i]);
		if (!el || json_array_insert_new(arr, 0, el) != 0) {
			rcs[i] = BS_ERR;
			continue;
		}
		rcs[i] = BS_OK;
		changed = 1;
	}
	return changed;
}

static int leg_put(leg *h, MDB_txn *t, const char *key, json_t *arr)
{
	char *s = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	MDB_val k = {strlen(key), (void *)key}, v;
	int rc;

	if (!s)
		return BS_ERR;
	v.mv_size = strlen(s);
	v.mv_data = s;
	rc = mdb_put(t, h->dbi, &k, &v, 0);
	free(s);
	return rc ? blmdb_err(h->name, "put", rc) : 0;
}

/* Read-modify-write of one owner's array inside write transaction @t. */
static int leg_rmw(leg *h, MDB_txn *t, const bs_rec *recs, size_t n,
		   int *rcs)
{
	char key[KEY_BUF];
	MDB_val k, v;
	json_t *arr;
	int rc;

	leg_key(key, recs[0].owner);
	k.mv_size = strlen(key);
	k.mv_data = key;
	rc = mdb_get(t, h->dbi, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return blmdb_err(h->name, "get", rc);
	arr = leg_parse(rc ? NULL : &v);
	if (!arr)
		return BS_ERR;
	rc = leg_add(arr, recs, n, rcs) ? leg_put(h, t, key, arr) : 0;
	json_decref(arr);
	return rc;
}

static int leg_finalize_txn(leg *h, const bs_rec *r)
{
	MDB_txn *t;
	int res = BS_ERR, rc = mdb_txn_begin(h->env, NULL, 0, &t);

	if (rc)
		return blmdb_err(h->name, "begin", rc);
	if (leg_rmw(h, t, r, 1, &res) != 0 || res != BS_OK) {
		mdb_txn_abort(t);
		return res == BS_EXISTS ? BS_EXISTS : BS_ERR;
	}
	if ((rc = mdb_txn_commit(t)))
		return blmdb_err(h->name, "commit", rc);
	return BS_OK;
}

/* The old worker: read in one transaction, write in another. */
static int leg_finalize_lock(leg *h, const bs_rec *r)
{
	char key[KEY_BUF];
	MDB_txn *t;
	MDB_val k, v;
	json_t *arr = NULL;
	int rc, res = BS_ERR;

	leg_key(key, r->owner);
	k.mv_size = strlen(key);
	k.mv_data = key;
	pthread_mutex_lock(&h->mu);
	if ((rc = mdb_txn_begin(h->env, NULL, MDB_RDONLY, &t))) {
		blmdb_err(h->name, "begin read", rc);
		goto out;
	}
	rc = mdb_get(t, h->dbi, &k, &v);
	if (rc == 0 || rc == MDB_NOTFOUND)
		arr = leg_parse(rc ? NULL : &v); /* a copy, read in this txn */
	mdb_txn_abort(t);
	if (!arr || !leg_add(arr, r, 1, &res))
		goto out;
	if ((rc = mdb_txn_begin(h->env, NULL, 0, &t))) {
		res = blmdb_err(h->name, "begin", rc);
		goto out;
	}
	if (leg_put(h, t, key, arr) != 0) {
		mdb_txn_abort(t);
		res = BS_ERR;
	} else if ((rc = mdb_txn_commit(t))) {
		res = blmdb_err(h->name, "commit", rc);
	}
out:
	pthread_mutex_unlock(&h->mu);
	json_decref(arr);
	return res;
}

static int leg_finalize(void *th, const bs_rec *r)
{
	leg *h = th;
	return h->lock ? leg_finalize_lock(h, r) : leg_finalize_txn(h, r);
}

static int leg_load(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	leg *h = th;
	MDB_txn *t;
	size_t i = 0, j;
	int rc = mdb_txn_begin(h->env, NULL, 0, &t);

	if (rc)
		return blmdb_err(h->name, "begin", rc);
	/* one read-modify-write per run of the same owner */
	while (i < n) {
		for (j = i + 1; j < n && !strcmp(recs[j].owner, recs[i].owner);
		     j++)
			;
		if (leg_rmw(h, t, recs + i, j - i, rcs + i) != 0) {
			mdb_txn_abort(t);
			return BS_ERR;
		}
		i = j;
	}
	if ((rc = mdb_txn_commit(t)))
		return blmdb_err(h->name, "commit", rc);
	return 0;
}

/* Hand element @el to @fn as a client would see it. */
static void leg_entry(json_t *el, bs_entry_fn fn, void *ctx)
{
	const char *rid = json_string_value(json_object_get(el, "reservationId"));
	const char *at = json_string_value(json_object_get(el, "createdAt"));
	struct tm tm = {0};
	int64_t ms = 0;
	int msec = 0;

	if (at && sscanf(at, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
			 &msec) == 7) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		ms = (int64_t)timegm(&tm) * 1000 + msec;
	}
	if (fn && rid)
		fn(ctx, rid, strlen(rid), ms);
}

/* Pages by position in the array (the old worker's offset paging). */
static int leg_page(void *th, const char *owner, const char *cursor,
		    size_t limit, bs_entry_fn fn, void *ctx,
		    char next[BS_CURSOR_MAX], size_t *count)
{
	leg *h = th;
	char key[KEY_BUF];
	MDB_txn *t;
	MDB_val k, v;
	json_t *arr;
	size_t from = cursor[0] ? strtoul(cursor, NULL, 10) : 0, n;
	int rc;

	next[0] = '\0';
	*count = 0;
	leg_key(key, owner);
	k.mv_size = strlen(key);
	k.mv_data = key;
	if ((rc = mdb_txn_begin(h->env, NULL, MDB_RDONLY, &t)))
		return blmdb_err(h->name, "begin read", rc);
	rc = mdb_get(t, h->dbi, &k, &v);
	arr = rc == 0 ? leg_parse(&v) : NULL;
	mdb_txn_abort(t);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (!arr)
		return BS_ERR;
	n = json_array_size(arr);
	for (size_t i = from; i < n && *count < limit; i++, (*count)++)
		leg_entry(json_array_get(arr, i), fn, ctx);
	if (from + *count < n)
		snprintf(next, BS_CURSOR_MAX, "%zu", from + *count);
	json_decref(arr);
	return 0;
}

static int leg_count(void *th, uint64_t *n)
{
	leg *h = th;
	const char *prefix = "recentReceives:";
	size_t plen = strlen(prefix);
	MDB_txn *t;
	MDB_cursor *c;
	MDB_val k = {plen, (void *)prefix}, v;
	int rc;

	*n = 0;
	if ((rc = mdb_txn_begin(h->env, NULL, MDB_RDONLY, &t)))
		return blmdb_err(h->name, "count", rc);
	if ((rc = mdb_cursor_open(t, h->dbi, &c))) {
		mdb_txn_abort(t);
		return blmdb_err(h->name, "count", rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size >= plen && !memcmp(k.mv_data, prefix, plen);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		json_t *a = leg_parse(&v);
		*n += json_array_size(a);
		json_decref(a);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	return 0;
}

static int leg_compact(void *proc, const char *dir)
{
	leg *h = proc;
	return blmdb_compact(h->env, dir, h->name);
}

const bsys_ops bsys_legacy_txn = {
	"legacy-txn", leg_open_txn, leg_close, leg_thread, leg_thread_done,
	leg_finalize, leg_load, leg_page, leg_count, leg_compact, 0,
};

const bsys_ops bsys_legacy_lock = {
	"legacy-lock", leg_open_lock, leg_close, leg_thread, leg_thread_done,
	leg_finalize, leg_load, leg_page, leg_count, leg_compact, 0,
};

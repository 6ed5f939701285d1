/*
 * migrate.c - ef_migrate: legacy arrays into per-entry records, each owner
 * in one write transaction, through the finalize logic.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "migrate/kvbulk.h"
#include "migrate/migrate.h"
#include "store/error.h"

#define BATCH_DEFAULT 16
#define BATCH_MAX 1024

typedef struct mig_ctx {
	ef_store *st;
	uint32_t batch;
	int dry_run;
	int64_t now;
	key_buf after;        /* last legacy key handled; the next start */
	int has_after;
	key_buf *keys;        /* this batch's legacy keys (batch of them) */
	size_t nkeys;
	ef_migrate_stats s;   /* of this transaction; reset on a re-run */
} mig_ctx;

/* The legacy keys of the next batch, after c->after. */
static int collect(store_txn *t, mig_ctx *c)
{
	const size_t plen = strlen(KEY_P_LEGACY);
	store_cur *cur;
	store_val k;
	int rc;

	c->nkeys = 0;
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	rc = c->has_after ? store_cur_seek(cur, c->after.s, c->after.len, &k,
					   NULL)
			  : store_cur_seek(cur, KEY_P_LEGACY, plen, &k, NULL);
	if (rc == EF_OK && c->has_after &&
	    store_keycmp(&k, c->after.s, c->after.len) == 0)
		rc = store_cur_next(cur, &k, NULL);
	for (; rc == EF_OK && c->nkeys < c->batch &&
	       store_has_prefix(&k, KEY_P_LEGACY, plen);
	     rc = store_cur_next(cur, &k, NULL)) {
		memcpy(c->keys[c->nkeys].s, k.data, k.len);
		c->keys[c->nkeys].s[k.len] = '\0';
		c->keys[c->nkeys++].len = k.len;
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Count the owner's unread markers: kept (their entry exists) or orphans. */
static int count_markers(store_txn *t, mig_ctx *c, const key_part *owner)
{
	key_buf prefix, ik;
	store_cur *cur;
	store_val k;
	key_view ow, rid;
	int rc;

	key_unread_prefix(&prefix, owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &k, NULL)) {
		int has;
		if (key_split_pair(k.data, k.len, KEY_P_UNREAD, &ow, &rid) !=
		    EF_OK) {
			c->s.orphan_markers++;
			continue;
		}
		key_pair_views(&ik, KEY_P_INDEX, ow, rid);
		has = store_get(t, ik.s, ik.len, NULL);
		if (has == EF_OK)
			c->s.markers_kept++;
		else if (has == EF_ENOTFOUND)
			c->s.orphan_markers++;
		else {
			rc = has;
			break;
		}
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static int migrate_owner(store_txn *t, mig_ctx *c, const key_buf *lk)
{
	legacy_array a;
	key_part owner;
	store_val v;
	uint8_t *raw = NULL;
	size_t len = 0;
	int64_t seal_by;
	int rc, have_owner, gone;

	rc = store_get(t, lk->s, lk->len, &v);
	if (rc != EF_OK)
		return rc == EF_ENOTFOUND ? EF_OK : rc;
	/* the value as it reads now (a copy: the store's bytes do not survive
	 * the writes below); a sealed one that is gone migrates as nothing */
	seal_by = legacy_value_sealed_since(v.data, v.len);
	rc = legacy_value_view(c->st, lk, v.data, v.len, c->now, &raw, &len);
	gone = rc == EF_ENOTFOUND || rc == EF_ECORRUPT;
	if (rc != EF_OK && !gone)
		return rc;
	/* the rule of import (key_owner_from_key): an old writer's key that
	 * is not spelled as edgefeed spells its owner could name another
	 * owner's feed; it is kept whole under no owner, never merged */
	have_owner = key_owner_from_key(c->st->err_id,
					lk->s + strlen(KEY_P_LEGACY),
					lk->len - strlen(KEY_P_LEGACY),
					&owner) == EF_OK;
	memset(&a, 0, sizeof(a));
	if (gone)
		rc = legacy_issue_add(&a, -1, 0, rc == EF_ECORRUPT
				      ? "its sealed form is malformed"
				      : "not JSON, and its bytes were shredded "
					"with their retention window");
	else if (have_owner)
		rc = legacy_parse(c->st, &owner, raw, len, c->now,
				  LEGACY_STRICT, &a);
	else
		rc = legacy_issue_add(&a, -1, 0, "the legacy key names no "
				      "owner: %s", ef_errmsg(c->st));
	for (size_t i = 0; rc == EF_OK && i < a.n; i++) {
		rc = fin_apply(t, c->st, &a.elems[i].it, c->now, FIN_MIGRATING,
			       NULL);
		if (rc == EF_OK)
			c->s.migrated++;
		else if (rc == EF_EXISTS)
			c->s.duplicates++, rc = EF_OK;
	}
	if (rc == EF_OK) {
		c->s.owners++;
		c->s.elements += a.total;
		c->s.duplicates += a.duplicates;
		c->s.quarantined += a.quarantined;
		for (size_t i = 0; i < a.nissues; i++)
			c->s.kept_without_ip += (uint64_t)a.issues[i].kept;
	}
	if (rc == EF_OK && (a.nissues > 0 || !have_owner))
		rc = quarantine_put(t, c->st, have_owner ? &owner : NULL, lk->s,
				    lk->len, raw ? raw : (const uint8_t *)"",
				    len, &a, c->now, seal_by);
	if (rc == EF_OK)
		rc = store_del(t, lk->s, lk->len);
	if (rc == EF_OK && have_owner)
		rc = count_markers(t, c, &owner);
	legacy_free(&a);
	if (raw)
		sodium_memzero(raw, len);
	free(raw);
	return rc;
}

static int migrate_txn(store_txn *t, void *p)
{
	mig_ctx *c = p;
	int rc;

	memset(&c->s, 0, sizeof(c->s));
	rc = collect(t, c);
	for (size_t i = 0; rc == EF_OK && i < c->nkeys; i++)
		rc = migrate_owner(t, c, &c->keys[i]);
	if (rc != EF_OK)
		return rc;
	if (c->nkeys == 0)
		return FEED_NOCHANGE;
	/* a dry run computes all of it in the transaction, then aborts */
	return c->dry_run ? FEED_NOCHANGE : EF_OK;
}

/* How many legacy arrays there are, for progress. */
static int count_txn(store_txn *t, void *p)
{
	uint64_t *n = p;
	store_cur *cur;
	store_val k;
	int rc;

	*n = 0;
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, KEY_P_LEGACY, strlen(KEY_P_LEGACY), &k,
				 NULL);
	     rc == EF_OK && store_has_prefix(&k, KEY_P_LEGACY,
					     strlen(KEY_P_LEGACY));
	     rc = store_cur_next(cur, &k, NULL))
		(*n)++;
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static void stats_add(ef_migrate_stats *to, const ef_migrate_stats *s)
{
	to->owners += s->owners;
	to->elements += s->elements;
	to->migrated += s->migrated;
	to->duplicates += s->duplicates;
	to->quarantined += s->quarantined;
	to->kept_without_ip += s->kept_without_ip;
	to->markers_kept += s->markers_kept;
	to->orphan_markers += s->orphan_markers;
}

typedef struct mig_run {
	ef_store *st;
	const ef_migrate_opts *o;
	ef_migrate_stats *total;
	mig_ctx c;
	uint64_t n; /* legacy arrays, for progress */
} mig_run;

static int count_group(const store_val *g, void *p)
{
	mig_run *r = p;
	uint64_t n = 0;
	int rc = store_read_in(r->st->env, g, count_txn, &n);

	r->n += n;
	return rc;
}

/* Migrate the arrays of one group (the whole store on LMDB), a batch of
 * them a transaction. */
static int migrate_group(const store_val *g, void *p)
{
	mig_run *r = p;
	mig_ctx *c = &r->c;
	int rc;

	c->has_after = 0;
	for (;;) {
		rc = store_write_in(r->st->env, g, migrate_txn, c);
		if (rc == FEED_NOCHANGE && c->nkeys > 0)
			rc = EF_OK; /* a dry-run batch */
		if (rc != EF_OK)
			break;
		stats_add(r->total, &c->s);
		r->total->batches++;
		c->after = c->keys[c->nkeys - 1];
		c->has_after = 1;
		if (r->o->progress)
			r->o->progress(r->total->owners < r->n
					       ? r->total->owners : r->n,
				       r->n, r->o->progress_ctx);
	}
	return rc == FEED_NOCHANGE ? EF_OK : rc;
}

static int migrate_run(ef_store *st, const ef_migrate_opts *o,
		       ef_migrate_stats *total)
{
	mig_run r;
	mig_ctx *c = &r.c;
	int rc;

	memset(&r, 0, sizeof(r));
	r.st = st;
	r.o = o;
	r.total = total;
	c->st = st;
	c->batch = o->batch ? o->batch : BATCH_DEFAULT;
	if (c->batch > BATCH_MAX)
		return ef__err(st->err_id, EF_EINVAL,
			       "batch: %u is outside 1..%d", o->batch,
			       BATCH_MAX);
	c->dry_run = o->dry_run;
	c->now = feed_now(st);
	c->keys = ef__calloc(c->batch, sizeof(*c->keys));
	if (!c->keys)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	rc = store_each_group(st->env, count_group, &r);
	if (rc == EF_OK)
		rc = store_each_group(st->env, migrate_group, &r);
	free(c->keys);
	return rc;
}

int ef_migrate(ef_store *st, const ef_migrate_opts *opts,
	       ef_migrate_stats *stats)
{
	ef_migrate_opts o = {0};
	ef_migrate_stats s = {0};
	ef_maint *lk;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (opts)
		o = *opts;
	rc = ef_maint_lock(st, o.dry_run ? "edgefeed migrate --dry-run"
					 : "edgefeed migrate",
			   o.lock_flags, o.on_wait, o.wait_ctx, &lk);
	if (rc != EF_OK)
		return rc;
	rc = migrate_run(st, &o, &s);
	ef_maint_unlock(lk);
	if (stats)
		*stats = s;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

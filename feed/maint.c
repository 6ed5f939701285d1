/*
 * maint.c - the maintenance lock, reset and stat.
 */
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "store/error.h"
#include "store/lock.h"

#define RESET_BATCH 1000 /* keys deleted per write transaction */

struct ef_maint {
	int fd;          /* the flock'd maint.lock (LMDB) */
	store_lock *sl;  /* the lease (Redis Cluster) */
};

int ef_maint_lock(ef_store *st, const char *what, unsigned flags,
		  ef_wait_fn on_wait, void *ctx, ef_maint **out)
{
	ef_maint *lk;
	int rc;

	if (!out)
		return EF_EINVAL;
	*out = NULL;
	if (!st)
		return EF_EINVAL;
	/* every job under the lock acts as of the store's clock */
	rc = feed_maint_not_ahead(st, "clock_ms", feed_now(st));
	if (rc != EF_OK)
		return rc;
	lk = ef__malloc(sizeof(*lk));
	if (!lk)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (st->cfg.flags & EF_NOWAIT) /* the handle never waits */
		flags |= EF_LOCK_NOWAIT;
	lk->fd = -1;
	lk->sl = NULL;
	if (store_sharded(st->env))
		rc = store_lock_take(st->env, what,
				     (flags & EF_LOCK_NOWAIT) != 0, on_wait,
				     ctx, &lk->sl);
	else
		rc = lock_maint(st->dir, what, flags, on_wait, ctx, st->err_id,
				&lk->fd);
	if (rc != EF_OK) {
		free(lk);
		return rc;
	}
	*out = lk;
	return EF_OK;
}

void ef_maint_unlock(ef_maint *lk)
{
	if (!lk)
		return;
	store_lock_release(lk->sl);
	lock_release(lk->fd, 1);
	free(lk);
}

static const char *const feed_prefixes[] = {KEY_P_ENTRY, KEY_P_INDEX,
					    KEY_P_UNREAD, KEY_P_LEGACY,
					    KEY_P_COUNT};

typedef struct reset_ctx {
	uint64_t deleted; /* in this batch */
} reset_ctx;

static int reset_txn(store_txn *t, void *p)
{
	reset_ctx *c = p;
	uint64_t n;
	int rc;

	c->deleted = 0;
	for (size_t i = 0; i < sizeof(feed_prefixes) / sizeof(*feed_prefixes) &&
			   c->deleted < RESET_BATCH;
	     i++) {
		rc = store_del_prefix(t, feed_prefixes[i],
				      strlen(feed_prefixes[i]),
				      RESET_BATCH - c->deleted, &n);
		if (rc != EF_OK)
			return rc;
		c->deleted += n;
	}
	return c->deleted ? EF_OK : FEED_NOCHANGE;
}

typedef struct reset_all {
	ef_store *st;
	ef_reset_stats s;
} reset_all;

/* Empty one group (the whole store on LMDB), a batch at a time. */
static int reset_group(const store_val *g, void *p)
{
	reset_all *r = p;
	reset_ctx c;
	int rc;

	for (;;) {
		rc = store_write_in(r->st->env, g, reset_txn, &c);
		if (rc != EF_OK)
			break;
		r->s.keys_deleted += c.deleted;
		r->s.batches++;
	}
	return rc == FEED_NOCHANGE ? EF_OK : rc;
}

int ef_reset(ef_store *st, ef_reset_stats *stats)
{
	reset_all r = {st, {0}};
	int rc;

	if (!st)
		return EF_EINVAL;
	rc = store_each_group(st->env, reset_group, &r);
	if (stats)
		*stats = r.s;
	return rc;
}

typedef struct stat_ctx {
	ef_stat_info *out;
	const char *last_owner; /* view, valid in the read snapshot */
	size_t last_owner_len;
	int meta;               /* the group holds meta:format */
} stat_ctx;

static int stat_txn(store_txn *t, void *p)
{
	stat_ctx *c = p;
	ef_stat_info *o = c->out;
	store_cur *cur;
	store_val k, v;
	key_buf mk;
	int rc;

	o->entries = o->index_keys = o->unread_markers = 0;
	o->legacy_arrays = o->owners = o->other_keys = o->quarantined = 0;
	c->last_owner = NULL;
	c->last_owner_len = 0;
	key_meta(&mk, "format");
	if (c->meta && store_get(t, mk.s, mk.len, &v) == EF_OK && v.len < 10) {
		char buf[12];
		memcpy(buf, v.data, v.len);
		buf[v.len] = '\0';
		o->format_version = (uint32_t)strtoul(buf, NULL, 10);
	}
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		key_view ow, so, rid;

		if (store_has_prefix(&k, KEY_P_ENTRY, strlen(KEY_P_ENTRY))) {
			o->entries++;
			if (key_split_entry(k.data, k.len, &ow, &so, &rid) ==
				    EF_OK &&
			    (ow.len != c->last_owner_len ||
			     memcmp(ow.p, c->last_owner, ow.len) != 0)) {
				o->owners++;
				c->last_owner = ow.p;
				c->last_owner_len = ow.len;
			}
		} else if (store_has_prefix(&k, KEY_P_INDEX,
					    strlen(KEY_P_INDEX))) {
			o->index_keys++;
		} else if (store_has_prefix(&k, KEY_P_UNREAD,
					    strlen(KEY_P_UNREAD))) {
			o->unread_markers++;
		} else if (store_has_prefix(&k, KEY_P_LEGACY,
					    strlen(KEY_P_LEGACY))) {
			o->legacy_arrays++;
		} else if (store_has_prefix(&k, KEY_P_QUARANTINE,
					    strlen(KEY_P_QUARANTINE))) {
			o->quarantined++;
		} else {
			o->other_keys++;
		}
	}
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

typedef struct stat_all {
	ef_store *st;
	ef_stat_info *out;
} stat_all;

/* Count one group (the whole store on LMDB) and add it up: an owner's
 * keys are all in its group, so owners add up too. */
static int stat_group(const store_val *g, void *p)
{
	stat_all *a = p;
	ef_stat_info one = {0};
	stat_ctx c = {&one, NULL, 0, g == STORE_ALL || g->len == 0};
	ef_stat_info *o = a->out;
	int rc = store_read_in(a->st->env, g, stat_txn, &c);

	if (rc != EF_OK)
		return rc;
	if (one.format_version)
		o->format_version = one.format_version;
	o->entries += one.entries;
	o->index_keys += one.index_keys;
	o->unread_markers += one.unread_markers;
	o->legacy_arrays += one.legacy_arrays;
	o->owners += one.owners;
	o->other_keys += one.other_keys;
	o->quarantined += one.quarantined;
	return EF_OK;
}

int ef_stat(ef_store *st, ef_stat_info *out)
{
	stat_all a;
	store_info si;
	int rc;

	if (!st || !out)
		return EF_EINVAL;
	memset(out, 0, sizeof(*out));
	a.st = st;
	a.out = out;
	rc = store_each_group(st->env, stat_group, &a);
	if (rc != EF_OK)
		return rc;
	store_info_get(st->env, &si);
	out->map_size = si.map_size;
	out->map_used = si.map_used;
	out->page_size = si.page_size;
	out->max_readers = si.max_readers;
	out->readers_used = si.readers_used;
	return EF_OK;
}

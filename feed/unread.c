/*
 * unread.c - unread markers: one key per reservation, counted against what a
 * full read of the feed would return.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "feed/iter.h"
#include "store/error.h"

#define MARK_BATCH 1000 /* markers removed per write transaction */

typedef struct unread_ctx {
	ef_store *st;
	key_part owner;
	key_part rid;
	int64_t now;
	uint64_t count;
} unread_ctx;

/* Count the markers of the entries a full read returns (records and, while
 * the owner has one, legacy elements): O(cap) lookups. */
static int count_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	feed_iter it;
	key_view ow, so, rid;
	key_buf mk;
	uint64_t rank = 0;
	int rc;

	c->count = 0;
	rc = feed_iter_open(&it, t, c->st, &c->owner, c->now,
			    c->st->cfg.feed_cap); /* all it may return */
	while (rc == EF_OK && feed_iter_returnable(&it, c->st, rank, c->now)) {
		if (key_split_entry(it.k.data, it.k.len, &ow, &so, &rid) ==
		    EF_OK) {
			key_pair_views(&mk, KEY_P_UNREAD, ow, rid);
			rc = store_get(t, mk.s, mk.len, NULL);
			if (rc == EF_OK)
				c->count++;
			else if (rc != EF_ENOTFOUND)
				break;
		}
		rank++;
		rc = feed_iter_next(&it);
	}
	feed_iter_close(&it);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

int ef_unread_count(ef_store *st, const char *owner, uint64_t *out)
{
	unread_ctx c = {0};
	int rc;

	if (!st || !out)
		return EF_EINVAL;
	*out = 0;
	c.st = st;
	rc = key_owner(st->err_id, "owner", owner, &c.owner);
	if (rc != EF_OK)
		return rc;
	c.now = feed_now(st);
	rc = store_read_in(st->env, &(store_val){c.owner.s, c.owner.len},
			   count_txn, &c);
	if (rc == EF_OK) {
		*out = c.count;
		ef__err_clear(st->err_id);
	}
	return rc;
}

int feed_record_unread(store_txn *t, const key_part *owner,
		       const key_part *rid, int unread)
{
	char sort[KEY_SORT_LEN + 1];
	uint8_t *copy;
	store_val v;
	key_buf k;
	int rc;

	key_index(&k, owner, rid);
	rc = store_get(t, k.s, k.len, &v);
	if (rc != EF_OK || v.len != KEY_SORT_LEN) /* none, or check says */
		return rc == EF_ENOTFOUND || rc == EF_OK ? EF_OK : rc;
	memcpy(sort, v.data, KEY_SORT_LEN);
	sort[KEY_SORT_LEN] = '\0';
	key_entry(&k, owner, sort, rid);
	rc = store_get(t, k.s, k.len, &v);
	if (rc != EF_OK)
		return rc == EF_ENOTFOUND ? EF_OK : rc;
	if (rec_unread_state(v.data, v.len) == unread)
		return EF_OK;
	copy = ef__malloc(v.len);
	if (!copy)
		return EF_ENOMEM;
	memcpy(copy, v.data, v.len);
	/* a version-1 record keeps no state: reads look its marker up */
	rc = rec_set_unread(copy, v.len, unread) == EF_OK
		     ? store_put(t, k.s, k.len, copy, v.len, 0)
		     : EF_OK;
	free(copy);
	return rc;
}

static int mark_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	key_buf k;
	int rc;

	key_unread(&k, &c->owner, &c->rid);
	rc = store_del(t, k.s, k.len);
	if (rc == EF_OK)
		return feed_record_unread(t, &c->owner, &c->rid, REC_UNREAD_NO);
	if (rc != EF_ENOTFOUND)
		return rc;
	/* no marker: already read, or no such entry */
	key_index(&k, &c->owner, &c->rid);
	rc = store_get(t, k.s, k.len, NULL);
	if (rc == EF_ENOTFOUND)
		rc = legacy_has(t, c->st, &c->owner, &c->rid, c->now) > 0
			     ? EF_OK
			     : EF_ENOTFOUND;
	if (rc == EF_OK)
		return FEED_NOCHANGE;
	if (rc == EF_ENOTFOUND)
		return ef__err(c->st->err_id, EF_ENOTFOUND,
			       "reservation '%s' is not in the feed of '%s'",
			       c->rid.s, c->owner.s);
	return rc;
}

int ef_mark_read(ef_store *st, const char *owner, const char *reservation_id)
{
	unread_ctx c = {0};
	int rc;

	if (!st)
		return EF_EINVAL;
	c.st = st;
	rc = key_owner(st->err_id, "owner", owner, &c.owner);
	if (rc == EF_OK)
		rc = key_reservation(st->err_id, "reservation_id",
				     reservation_id, &c.rid);
	if (rc != EF_OK)
		return rc;
	c.now = feed_now(st);
	rc = store_write_in(st->env, &(store_val){c.owner.s, c.owner.len},
			    mark_txn, &c);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

/* The reservation ids (escaped) of up to @max markers of @c's owner. */
static int markers_of(store_txn *t, unread_ctx *c, key_part *rids,
		      size_t max, size_t *n)
{
	key_buf prefix;
	store_cur *cur;
	store_val k;
	int rc;

	*n = 0;
	key_unread_prefix(&prefix, &c->owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && *n < max &&
	     store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &k, NULL)) {
		size_t len = k.len - prefix.len;

		if (len > EF_OWNER_KEY_MAX)
			continue; /* not a marker of ours: check says */
		memcpy(rids[*n].s, (const char *)k.data + prefix.len, len);
		rids[*n].s[len] = '\0';
		rids[(*n)++].len = len;
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Delete up to MARK_BATCH markers of the owner, each with its record's
 * unread state. */
static int mark_all_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	key_part *rids = ef__malloc(MARK_BATCH * sizeof(*rids));
	size_t n = 0;
	key_buf k;
	int rc;

	c->count = 0;
	if (!rids)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	rc = markers_of(t, c, rids, MARK_BATCH, &n);
	for (size_t i = 0; rc == EF_OK && i < n; i++) {
		key_unread(&k, &c->owner, &rids[i]);
		rc = store_del(t, k.s, k.len);
		if (rc == EF_OK)
			rc = feed_record_unread(t, &c->owner, &rids[i],
						REC_UNREAD_NO);
	}
	free(rids);
	if (rc != EF_OK)
		return rc;
	c->count = n;
	return n ? EF_OK : FEED_NOCHANGE;
}

int ef_mark_all_read(ef_store *st, const char *owner)
{
	unread_ctx c = {0};
	int rc;

	if (!st)
		return EF_EINVAL;
	c.st = st;
	rc = key_owner(st->err_id, "owner", owner, &c.owner);
	if (rc != EF_OK)
		return rc;
	/* batches keep each write short; loop until no marker is left */
	do
		rc = store_write_in(st->env,
				    &(store_val){c.owner.s, c.owner.len},
				    mark_all_txn, &c);
	while (rc == EF_OK && c.count >= MARK_BATCH);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

/*
 * unread.c - unread markers: one key per reservation, counted against what a
 * full read of the feed would return.
 */
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"

#define MARK_BATCH 1000 /* markers removed per write transaction */

typedef struct unread_ctx {
	ef_store *st;
	key_part owner;
	key_part rid;
	int64_t now;
	uint64_t count;
} unread_ctx;

/*
 * The last entry key a full read would return (@has = 0 when none): entries
 * are newest first, so the returnable ones are the first min(cap, fresh).
 */
static int returnable_end(store_txn *t, unread_ctx *c, key_buf *end, int *has)
{
	key_buf prefix;
	store_cur *cur;
	store_val k;
	uint64_t rank = 0;
	int64_t created;
	int rc;

	*has = 0;
	key_entry_prefix(&prefix, &c->owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && rank < c->st->cfg.feed_cap &&
	     store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &k, NULL), rank++) {
		if (k.len < prefix.len + KEY_SORT_LEN ||
		    key_created_from_sort((const char *)k.data + prefix.len,
					  KEY_SORT_LEN, &created) != EF_OK ||
		    feed_is_stale(c->st, created, c->now))
			break;
		memcpy(end->s, k.data, k.len);
		end->len = k.len;
		*has = 1;
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static int count_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	key_buf end, prefix, ek, eprefix;
	store_cur *cur;
	store_val k, v;
	int has, rc;

	c->count = 0;
	rc = returnable_end(t, c, &end, &has);
	if (rc != EF_OK || !has)
		return rc;
	key_unread_prefix(&prefix, &c->owner);
	key_entry_prefix(&eprefix, &c->owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	/* a marker counts when its entry exists and is at or before @end */
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &k, &v);
	     rc == EF_OK && store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &k, &v)) {
		size_t rlen = k.len - prefix.len;
		store_val ev;

		if (v.len != KEY_SORT_LEN ||
		    eprefix.len + KEY_SORT_LEN + 1 + rlen > KEY_MAX)
			continue; /* malformed: check reports it */
		ek = eprefix;
		memcpy(ek.s + ek.len, v.data, KEY_SORT_LEN);
		ek.s[ek.len + KEY_SORT_LEN] = ':';
		memcpy(ek.s + ek.len + KEY_SORT_LEN + 1,
		       (const char *)k.data + prefix.len, rlen);
		ek.len += KEY_SORT_LEN + 1 + rlen;
		ev.data = ek.s;
		ev.len = ek.len;
		if (store_keycmp(&ev, end.s, end.len) > 0)
			continue;
		rc = store_get(t, ek.s, ek.len, NULL);
		if (rc == EF_OK)
			c->count++;
		else if (rc != EF_ENOTFOUND)
			break;
	}
	store_cur_close(cur);
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
	rc = store_read(st->env, count_txn, &c);
	if (rc == EF_OK) {
		*out = c.count;
		ef__err_clear(st->err_id);
	}
	return rc;
}

static int mark_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	key_buf k;
	int rc;

	key_unread(&k, &c->owner, &c->rid);
	rc = store_del(t, k.s, k.len);
	if (rc != EF_ENOTFOUND)
		return rc;
	/* no marker: already read, or no such entry */
	key_index(&k, &c->owner, &c->rid);
	rc = store_get(t, k.s, k.len, NULL);
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
	rc = store_write(st->env, mark_txn, &c);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

static int mark_all_txn(store_txn *t, void *p)
{
	unread_ctx *c = p;
	key_buf prefix;
	int rc;

	key_unread_prefix(&prefix, &c->owner);
	rc = store_del_prefix(t, prefix.s, prefix.len, MARK_BATCH, &c->count);
	if (rc != EF_OK)
		return rc;
	return c->count ? EF_OK : FEED_NOCHANGE;
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
		rc = store_write(st->env, mark_all_txn, &c);
	while (rc == EF_OK && c.count >= MARK_BATCH);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

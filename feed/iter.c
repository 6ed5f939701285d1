/*
 * iter.c - the merged newest-first walk of one owner's feed (iter.h).
 */
#include "feed/iter.h"

#include <assert.h>
#include <string.h>

static int rec_step(feed_iter *it, int rc)
{
	it->rec_ok = rc == EF_OK &&
		     store_has_prefix(&it->rk, it->prefix.s, it->prefix.len);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Make the smaller of the record and the legacy element current. */
static void pick(feed_iter *it)
{
	const legacy_elem *le = it->li < it->leg.n ? &it->leg.elems[it->li] : NULL;

	it->valid = it->rec_ok || le;
	if (!it->valid)
		return;
	if (le && (!it->rec_ok ||
		   store_keycmp(&it->rk, le->ekey.s, le->ekey.len) > 0)) {
		it->k.data = le->ekey.s;
		it->k.len = le->ekey.len;
		it->v.data = le->it.rec;
		it->v.len = le->it.rec_len;
		it->from_legacy = 1;
	} else {
		it->k = it->rk;
		it->v = it->rv;
		it->from_legacy = 0;
	}
}

/* Drop legacy elements whose reservation already has a record. */
static int leg_filter(feed_iter *it)
{
	size_t o = 0;
	key_buf k;
	int rc;

	for (size_t i = 0; i < it->leg.n; i++) {
		legacy_elem *e = &it->leg.elems[i];
		key_index(&k, &e->it.owner, &e->it.rid);
		rc = store_get(it->txn, k.s, k.len, NULL);
		if (rc == EF_OK) {
			fin_item_free(&e->it);
			continue;
		}
		if (rc != EF_ENOTFOUND)
			return rc;
		it->leg.elems[o++] = *e;
	}
	it->leg.n = o;
	return EF_OK;
}

int feed_iter_open(feed_iter *it, store_txn *txn, ef_store *st,
		   const key_part *owner, int64_t now, size_t expect)
{
	int rc;

	memset(it, 0, sizeof(*it));
	it->txn = txn;
	key_entry_prefix(&it->prefix, owner);
	rc = legacy_load(txn, st, owner, now, &it->leg);
	if (rc == EF_OK)
		rc = leg_filter(it);
	else if (rc == EF_ENOTFOUND)
		rc = EF_OK;
	if (rc == EF_OK)
		rc = store_cur_open(txn, &it->cur);
	if (rc == EF_OK)
		store_cur_hint(it->cur, expect);
	if (rc == EF_OK)
		rc = rec_step(it, store_cur_seek(it->cur, it->prefix.s,
						 it->prefix.len, &it->rk,
						 &it->rv));
	if (rc != EF_OK) {
		feed_iter_close(it);
		return rc;
	}
	pick(it);
	return EF_OK;
}

int feed_iter_next(feed_iter *it)
{
	int rc = EF_OK;

	if (!it->valid)
		return EF_OK;
	if (it->from_legacy)
		it->li++;
	else
		rc = rec_step(it, store_cur_next(it->cur, &it->rk, &it->rv));
	if (rc != EF_OK)
		return rc;
	pick(it);
	return EF_OK;
}

int feed_iter_seek_after(feed_iter *it, const key_buf *after)
{
	int rc;

	assert(it->leg.n == 0);
	rc = store_cur_seek(it->cur, after->s, after->len, &it->rk, &it->rv);
	if (rc == EF_OK && store_keycmp(&it->rk, after->s, after->len) == 0)
		rc = store_cur_next(it->cur, &it->rk, &it->rv);
	rc = rec_step(it, rc);
	if (rc == EF_OK)
		pick(it);
	return rc;
}

void feed_iter_close(feed_iter *it)
{
	store_cur_close(it->cur);
	it->cur = NULL;
	legacy_free(&it->leg);
	it->valid = 0;
}

int feed_iter_created(const feed_iter *it, int64_t *created_ms)
{
	if (it->k.len < it->prefix.len + KEY_SORT_LEN)
		return EF_EINVAL;
	return key_created_from_sort((const char *)it->k.data + it->prefix.len,
				     KEY_SORT_LEN, created_ms);
}

int feed_iter_returnable(const feed_iter *it, const ef_store *st,
			 uint64_t rank, int64_t now)
{
	int64_t created;

	if (!it->valid || rank >= st->cfg.feed_cap ||
	    feed_iter_created(it, &created) != EF_OK)
		return 0;
	return !feed_is_stale(st, created, now);
}

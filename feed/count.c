/*
 * count.c - how many entry records an owner has, kept in the store so that
 * a page far down a feed need not walk every entry ahead of its cursor to
 * apply the cap (see feed.h, "entry counts").
 *
 * meta:entries:<owner> holds the count, 8 bytes big-endian, written in the
 * transaction that adds or deletes a record. The one invariant reads rely
 * on: the count is never below the number of the owner's records. A read
 * that finds count <= feed_cap knows every record is within the cap, and
 * skips the walk; one that finds none, or a larger count, walks as before.
 * So a count may be missing or too high (a store of an older version, an
 * entry deleted some other way) and reads stay right, only slower; it is
 * never made from a guess: fin_apply creates it only for an owner whose
 * record is the first, and sweep sets it from a full walk. check reports
 * any count that differs from the records.
 */
#include <assert.h>
#include <string.h>

#include "feed/feed.h"
#include "store/bytes.h"
#include "store/error.h"

int feed_count_get(store_txn *t, const key_part *owner, uint64_t *n)
{
	key_buf k;
	store_val v;
	const uint8_t *p;
	int rc;

	*n = 0;
	key_count(&k, owner);
	rc = store_get(t, k.s, k.len, &v);
	if (rc != EF_OK)
		return rc;
	if (v.len != 8)
		return EF_ECORRUPT;
	p = v.data;
	*n = be_get(p, 8);
	return EF_OK;
}

int feed_count_set(store_txn *t, const key_part *owner, uint64_t n)
{
	uint8_t v[8];
	key_buf k;
	int rc;

	key_count(&k, owner);
	if (n == 0) { /* an owner without records has no count */
		rc = store_del(t, k.s, k.len);
		return rc == EF_ENOTFOUND ? EF_OK : rc;
	}
	be_put(v, n, 8);
	return store_put(t, k.s, k.len, v, sizeof(v), 0);
}

/* Is the owner's only record the one just written? 1, 0, or < 0. */
static int first_record(store_txn *t, const key_part *owner)
{
	key_buf prefix;
	store_cur *c;
	store_val k;
	int rc, n = 0;

	key_entry_prefix(&prefix, owner);
	rc = store_cur_open(t, &c);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(c, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && n < 2 && store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(c, &k, NULL))
		n++;
	store_cur_close(c);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	assert(n >= 1); /* called after the record was written */
	return n == 1;
}

int feed_count_added(store_txn *t, const key_part *owner)
{
	uint64_t n;
	int rc = feed_count_get(t, owner, &n);

	if (rc == EF_OK)
		return feed_count_set(t, owner, n + 1);
	if (rc == EF_ECORRUPT)
		return feed_count_set(t, owner, 0); /* reads walk again */
	if (rc != EF_ENOTFOUND)
		return rc;
	rc = first_record(t, owner);
	if (rc < 0)
		return rc;
	/* other records and no count: an older store; sweep counts them */
	return rc ? feed_count_set(t, owner, 1) : EF_OK;
}

int feed_count_deleted(store_txn *t, const key_part *owner)
{
	uint64_t n;
	int rc = feed_count_get(t, owner, &n);

	if (rc == EF_ENOTFOUND)
		return EF_OK;
	if (rc == EF_ECORRUPT || (rc == EF_OK && n == 0))
		return feed_count_set(t, owner, 0); /* reads walk again */
	return rc == EF_OK ? feed_count_set(t, owner, n - 1) : rc;
}

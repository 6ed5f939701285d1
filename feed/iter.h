/*
 * iter.h - an owner's feed in key order (newest first), merging per-entry
 * records with the elements of a legacy array still present (dual-read).
 * A legacy element whose reservation has a record is left out: the record
 * wins.
 */
#ifndef EF_FEED_ITER_H
#define EF_FEED_ITER_H

#include "feed/legacy.h"

typedef struct feed_iter {
	store_txn *txn;
	store_cur *cur;       /* over recentReceive:<owner>: */
	key_buf prefix;       /* recentReceive:<owner>: */
	legacy_array leg;     /* legacy elements without a record */
	size_t li;            /* next legacy element */
	int rec_ok;           /* rk/rv hold a record of the owner */
	store_val rk, rv;     /* current record */
	int valid;            /* k/v hold the current merged item */
	store_val k, v;       /* entry key and record bytes */
	int from_legacy;      /* the current item is a legacy element */
} feed_iter;

/* Position on the owner's newest item, expecting to read about @expect
 * items (store_cur_hint). EF_OK (check it->valid) or error. */
int feed_iter_open(feed_iter *it, store_txn *txn, ef_store *st,
		   const key_part *owner, int64_t now, size_t expect);
int feed_iter_next(feed_iter *it);
/* Move to the first item after entry key @after (of this owner), without
 * visiting those before it. Only for an iterator without legacy elements
 * (it->leg.n == 0): EF_OK (check it->valid) or error. */
int feed_iter_seek_after(feed_iter *it, const key_buf *after);
void feed_iter_close(feed_iter *it);

/* createdSort of the current item, as created_ms; EF_EINVAL if malformed. */
int feed_iter_created(const feed_iter *it, int64_t *created_ms);

/* Is the current item one a read returns at @rank (0 = newest): within
 * the cap and not stale? 0 when the iterator is exhausted. */
int feed_iter_returnable(const feed_iter *it, const ef_store *st,
			 uint64_t rank, int64_t now);

#endif

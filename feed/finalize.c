/*
 * finalize.c - ef_finalize: one write transaction writes the entry, its
 * uniqueness index and its unread marker, or nothing; then trims the owner's
 * feed to its cap and staleness in the same transaction.
 */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "store/alloc.h"
#include "feed/legacy.h"
#include "store/error.h"

/* At most this many entries are deleted by one trim: the rest stay hidden by
 * the read rules until the next write or sweep deletes them. */
#define TRIM_MAX 32

/* The entry's time: as given (0 included: ef_finalize resolved "now"),
 * in range, and not ahead of the clock the call acts at. */
static int fin_created(ef_store *st, int64_t created, int64_t now,
		       fin_item *it)
{
	it->created_ms = created;
	if (key_created_sort(created, it->sort) != EF_OK)
		return ef__err(st->err_id, EF_EINVAL,
			       "created_ms: %lld is outside [0, %lld]",
			       (long long)created, (long long)EF_CREATED_MAX);
	return feed_not_ahead(st, "created_ms", created, "the store's clock",
			      now, "an entry from the future would stay on "
			      "top of the feed, and keep its IP, until then");
}

/* Seal @ip for the entry into @sealed; e->ip_kind says whether it was. An
 * IP already past retention is not kept at all; one within retention (at
 * the store's clock and at the real one) whose day's key was destroyed is
 * an error, never a silent loss. */
static int fin_seal(ef_store *st, const fin_item *it, int64_t now,
		    uint8_t kind, const uint8_t *ip, uint8_t *sealed,
		    rec_entry *e)
{
	key_view ov = {it->owner.s, it->owner.len};
	key_view rv = {it->rid.s, it->rid.len};
	char day[EF_TIME_BUFSZ];
	int rc;

	rc = ip_seal_entry(st, ov, rv, it->created_ms, now, kind, ip, sealed,
			   &e->ip_len);
	if (rc == EF_OK) {
		e->ip_kind = REC_IP_SEALED;
		e->ip = sealed;
		return EF_OK;
	}
	if (rc != IPSEAL_EXPIRED)
		return rc;
	if (!feed_ip_visible(st, it->created_ms, now) ||
	    !feed_ip_visible(st, it->created_ms, feed_real_now()))
		return EF_OK; /* past retention: stored without its IP */
	ef_time_format(it->created_ms, day);
	day[10] = '\0';
	return ef__err(st->err_id, EF_EIO,
		       "ip: the key of %s (UTC) was destroyed, although that "
		       "day is within IP retention: a sweep ran with a clock "
		       "ahead of the real one. No IP of that day can be kept "
		       "until it is past retention; finalize without the ip "
		       "to keep the entry, and sweep only with a correct clock",
		       day);
}

int fin_prepare(ef_store *st, const ef_receive *r, int64_t now, fin_item *it)
{
	const uint64_t id = st->err_id;
	rec_entry e = {0};
	uint8_t ip[16], sealed[IP_SEALED_LEN], kind = REC_IP_NONE;
	int rc;

	memset(it, 0, sizeof(*it));
	if (!r)
		return ef__err(id, EF_EINVAL, "receive: NULL");
	rc = key_owner(id, "owner", r->owner, &it->owner);
	if (rc == EF_OK)
		rc = key_reservation(id, "reservation_id", r->reservation_id,
				     &it->rid);
	if (rc == EF_OK)
		rc = fin_created(st, r->created_ms, now, it);
	if (rc == EF_OK && r->ip)
		rc = ip_parse(id, "ip", r->ip, ip, &kind);
	if (rc != EF_OK)
		return rc;
	if (r->payload_json) {
		e.has_payload = 1;
		e.payload = r->payload_json;
		e.payload_len = strlen(r->payload_json);
		rc = payload_check(id, "payload_json", e.payload,
				   e.payload_len);
		if (rc != EF_OK)
			return rc;
	}
	if (kind != REC_IP_NONE) {
		/* valid input only: sealing may make the window's key */
		rc = fin_seal(st, it, now, kind, ip, sealed, &e);
		sodium_memzero(ip, sizeof(ip));
		if (rc != EF_OK)
			return rc;
	}
	e.created_ms = it->created_ms;
	e.unread = REC_UNREAD_YES; /* fin_apply writes its marker */
	e.rid = r->reservation_id;
	e.rid_len = strlen(r->reservation_id);
	rc = rec_encode(&e, &it->rec, &it->rec_len);
	if (rc != EF_OK)
		return ef__err(id, rc, "cannot encode the entry: %s",
			       ef_strerror(rc));
	return EF_OK;
}

void fin_item_free(fin_item *it)
{
	if (it) {
		free(it->rec);
		it->rec = NULL;
	}
}

/* Would feed_trim delete @it at once, were it written: past feed_ttl, or
 * behind feed_cap keys of the owner (newer ones; ranked as feed_trim ranks
 * them)? 1, 0, or < 0. Walks at most feed_cap keys. */
static int fin_trimmed_at_once(store_txn *t, ef_store *st, const fin_item *it,
			       int64_t now)
{
	key_buf prefix, ek;
	store_cur *c;
	store_val k;
	uint64_t rank = 0;
	int rc;

	if (feed_is_stale(st, it->created_ms, now))
		return 1;
	key_entry_prefix(&prefix, &it->owner);
	key_entry(&ek, &it->owner, it->sort, &it->rid);
	rc = store_cur_open(t, &c);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(c, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && rank < st->cfg.feed_cap &&
	     store_has_prefix(&k, prefix.s, prefix.len) &&
	     store_keycmp(&k, ek.s, ek.len) < 0;
	     rc = store_cur_next(c, &k, NULL))
		rank++;
	store_cur_close(c);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	return rank >= st->cfg.feed_cap;
}

/* EF_EXISTS if the reservation of @it has an entry (its index) or, but
 * when migrating its owner's own array, an element of that array. */
static int fin_exists(store_txn *t, ef_store *st, const fin_item *it,
		      int64_t now, unsigned flags)
{
	key_buf k;
	int rc;

	key_index(&k, &it->owner, &it->rid);
	rc = store_get(t, k.s, k.len, NULL);
	if (rc == EF_OK)
		return EF_EXISTS; /* first write wins */
	if (rc != EF_ENOTFOUND)
		return rc;
	if (flags & FIN_MIGRATING)
		return EF_OK;
	rc = legacy_has(t, st, &it->owner, &it->rid, now);
	return rc > 0 ? EF_EXISTS : rc;
}

int fin_apply(store_txn *t, ef_store *st, const fin_item *it, int64_t now,
	      unsigned flags, uint64_t *trimmed)
{
	key_buf k;
	int rc;

	if (trimmed)
		*trimmed = 0;
	/* a record that says "unread" gets its marker here, and only here */
	assert(!(flags & (FIN_MIGRATING | FIN_IMPORT)) ||
	       rec_unread_state(it->rec, it->rec_len) == REC_UNREAD_UNKNOWN);
	rc = fin_exists(t, st, it, now, flags);
	if (rc == EF_OK && (flags & FIN_IMPORT)) {
		rc = fin_trimmed_at_once(t, st, it, now);
		if (rc > 0)
			return FEED_TRIMMED;
	}
	if (rc != EF_OK)
		return rc;
	/* the lookup above gives the friendly answer; NOOVERWRITE is the
	 * backstop that makes the store itself refuse a second index */
	key_index(&k, &it->owner, &it->rid);
	rc = store_put(t, k.s, k.len, it->sort, KEY_SORT_LEN,
		       STORE_NOOVERWRITE);
	if (rc != EF_OK)
		return rc;
	key_entry(&k, &it->owner, it->sort, &it->rid);
	rc = store_put(t, k.s, k.len, it->rec, it->rec_len, STORE_NOOVERWRITE);
	if (rc == EF_EXISTS)
		return ef__err(st->err_id, EF_ECORRUPT,
			       "entry key exists without its index: %s", k.s);
	if (rc != EF_OK)
		return rc;
	rc = feed_count_added(t, &it->owner);
	if (rc != EF_OK)
		return rc;
	if (!(flags & (FIN_MIGRATING | FIN_IMPORT))) {
		key_unread(&k, &it->owner, &it->rid);
		rc = store_put(t, k.s, k.len, it->sort, KEY_SORT_LEN, 0);
		if (rc != EF_OK)
			return rc;
	}
	return feed_trim(t, st, &it->owner, now, trimmed);
}

int feed_delete_entry(store_txn *t, const void *ekey, size_t eklen)
{
	key_view owner, sort, rid;
	key_buf k;
	int rc;

	if (key_split_entry(ekey, eklen, &owner, &sort, &rid) != EF_OK)
		return EF_ECORRUPT;
	rc = store_del(t, ekey, eklen);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	if (rc == EF_OK) {
		key_part op;

		key_part_set(&op, owner); /* split: it fits */
		rc = feed_count_deleted(t, &op);
		if (rc != EF_OK)
			return rc;
	}
	/* index and marker keys share the escaped owner and rid */
	key_pair_views(&k, KEY_P_INDEX, owner, rid);
	rc = store_del(t, k.s, k.len);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	key_pair_views(&k, KEY_P_UNREAD, owner, rid);
	rc = store_del(t, k.s, k.len);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/*
 * Can feed_trim see at once that it has nothing to delete? When the owner's
 * count says its records are within the cap (count.c: never below them),
 * only staleness is left, and the oldest record is the first to go stale:
 * one seek to the end of the owner's range instead of a walk of them all.
 * 1 (nothing to trim), 0 (walk), or < 0.
 */
static int trim_nothing(store_txn *t, ef_store *st, const key_part *owner,
			const key_buf *prefix, int64_t now)
{
	key_buf end = *prefix;
	store_cur *c;
	store_val k;
	uint64_t n;
	int64_t created;
	int rc = feed_count_get(t, owner, &n);

	if (rc != EF_OK || n > st->cfg.feed_cap)
		return rc == EF_OK || rc == EF_ENOTFOUND || rc == EF_ECORRUPT
			       ? 0
			       : rc;
	/* past every "recentReceive:<owner>:..." key: ';' follows ':' */
	end.s[end.len - 1] = ';';
	rc = store_cur_open(t, &c);
	if (rc != EF_OK)
		return rc;
	rc = store_cur_seek(c, end.s, end.len, &k, NULL);
	rc = rc == EF_OK ? store_cur_prev(c, &k, NULL)
			 : rc == EF_ENOTFOUND ? store_cur_last(c, &k, NULL) : rc;
	if (rc == EF_OK) /* the owner's oldest record, if it is one */
		rc = !store_has_prefix(&k, prefix->s, prefix->len) ||
		     (k.len >= prefix->len + KEY_SORT_LEN &&
		      key_created_from_sort((const char *)k.data + prefix->len,
					    KEY_SORT_LEN, &created) == EF_OK &&
		      !feed_is_stale(st, created, now));
	store_cur_close(c);
	return rc == EF_ENOTFOUND ? 1 : rc;
}

int feed_trim(store_txn *t, ef_store *st, const key_part *owner, int64_t now,
	      uint64_t *deleted)
{
	key_buf prefix, victims[TRIM_MAX];
	store_cur *c;
	store_val k;
	size_t nv = 0;
	uint64_t rank = 0;
	int64_t created;
	int rc;

	if (deleted)
		*deleted = 0;
	key_entry_prefix(&prefix, owner);
	rc = trim_nothing(t, st, owner, &prefix, now);
	if (rc != 0)
		return rc > 0 ? EF_OK : rc;
	rc = store_cur_open(t, &c);
	if (rc != EF_OK)
		return rc;
	/* newest first: rank counts entries ahead; once one is stale, all the
	 * rest are older and stale too */
	for (rc = store_cur_seek(c, prefix.s, prefix.len, &k, NULL);
	     rc == EF_OK && nv < TRIM_MAX &&
	     store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(c, &k, NULL), rank++) {
		if (k.len < prefix.len + KEY_SORT_LEN ||
		    key_created_from_sort((const char *)k.data + prefix.len,
					  KEY_SORT_LEN, &created) != EF_OK)
			continue; /* not ours to judge: check reports it */
		if (rank < st->cfg.feed_cap && !feed_is_stale(st, created, now))
			continue;
		memcpy(victims[nv].s, k.data, k.len);
		victims[nv++].len = k.len;
	}
	store_cur_close(c);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	for (size_t i = 0; i < nv; i++) {
		rc = feed_delete_entry(t, victims[i].s, victims[i].len);
		if (rc != EF_OK)
			return rc;
	}
	if (deleted)
		*deleted = nv;
	return EF_OK;
}

struct fin_ctx {
	ef_store *st;
	fin_item it;
	int64_t now;
};

static int fin_txn(store_txn *t, void *p)
{
	struct fin_ctx *c = p;
	return fin_apply(t, c->st, &c->it, c->now, 0, NULL);
}

int ef_finalize(ef_store *st, const ef_receive *r)
{
	struct fin_ctx c;
	ef_receive now_r;
	int rc;

	if (!st)
		return EF_EINVAL;
	c.st = st;
	c.now = feed_now(st);
	if (r && !r->created_ms) { /* "0: now" is the public API's alone */
		now_r = *r;
		now_r.created_ms = c.now;
		r = &now_r;
	}
	rc = fin_prepare(st, r, c.now, &c.it);
	if (rc == EF_OK && st->group)
		rc = fin_group_apply(st, st->group, &c.it, c.now);
	else if (rc == EF_OK)
		rc = store_write_in(st->env, &(store_val){c.it.owner.s,
			c.it.owner.len}, fin_txn, &c);
	fin_item_free(&c.it);
	if (rc == EF_OK || rc == EF_EXISTS)
		ef__err_clear(st->err_id);
	return rc;
}

#define BATCH_PENDING 1000 /* an rcs[] value: prepared, not yet applied */

/* Does one of the @m requests @at[] of this round name @i's reservation? */
static int in_round(const fin_item *its, const size_t *at, size_t m,
		    size_t i)
{
	for (size_t k = 0; k < m; k++) {
		const fin_item *a = &its[at[k]], *b = &its[i];
		if (a->owner.len == b->owner.len && a->rid.len == b->rid.len &&
		    memcmp(a->owner.s, b->owner.s, a->owner.len) == 0 &&
		    memcmp(a->rid.s, b->rid.s, a->rid.len) == 0)
			return 1;
	}
	return 0;
}

int ef_finalize_batch(ef_store *st, const ef_receive *rs, size_t n,
		      int *rcs)
{
	fin_item *its;
	fin_req *reqs;
	size_t *at, m;
	int64_t now;

	if (!st || !rs || !rcs || n == 0 || n > EF_BATCH_MAX)
		return st ? ef__err(st->err_id, EF_EINVAL, "batch: 1 to %u "
				    "receives, and somewhere to put results",
				    EF_BATCH_MAX)
			  : EF_EINVAL;
	its = ef__calloc(n, sizeof(*its));
	reqs = ef__calloc(n, sizeof(*reqs));
	at = ef__calloc(n, sizeof(*at));
	if (!its || !reqs || !at) {
		free(its);
		free(reqs);
		free(at);
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	}
	now = feed_now(st);
	for (size_t i = 0; i < n; i++) {
		ef_receive r = rs[i];

		if (!r.created_ms) /* "0: now", as for ef_finalize */
			r.created_ms = now;
		rcs[i] = fin_prepare(st, &r, now, &its[i]);
		if (rcs[i] == EF_OK)
			rcs[i] = BATCH_PENDING;
	}
	/* Rounds of distinct reservations: a batch's requests may be applied
	 * in any order (the commit queue takes them by slot), which is only
	 * the order of the calls when no two name one reservation; a later
	 * call of a reservation waits for the next round. */
	for (;;) {
		m = 0;
		for (size_t i = 0; i < n; i++) {
			if (rcs[i] != BATCH_PENDING || in_round(its, at, m, i))
				continue;
			reqs[m] = (fin_req){&its[i], now, 0};
			at[m++] = i;
		}
		if (m == 0)
			break;
		if (st->group) /* with the other processes' calls */
			fin_group_apply_many(st, st->group, reqs, m);
		else
			fin_batch(st, reqs, m);
		for (size_t k = 0; k < m; k++)
			rcs[at[k]] = reqs[k].rc;
	}
	for (size_t i = 0; i < n; i++)
		fin_item_free(&its[i]);
	free(its);
	free(reqs);
	free(at);
	return EF_OK;
}

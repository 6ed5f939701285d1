/*
 * sweep.c - ef_sweep: retention for the whole store, in four phases:
 * destroy the keys of windows past ip_retention (crypto-shredding), then
 * per owner delete stale and over-cap entries and reseal version-1 records,
 * then drop orphan unread markers, then seal legacy values that hold IP
 * addresses in plaintext (legacy.h).
 *
 * Every write transaction does a bounded amount of work and records where
 * the next one starts, so workers keep writing meanwhile, and a sweep killed
 * at any point leaves only whole transactions behind: re-running it finishes
 * the job. Transactions may be re-run by store_write, so each derives its
 * work from the start position and resets its outputs.
 */
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "feed/legacy.h"
#include "store/error.h"
#include "store/keyring.h"

#define SWEEP_BATCH 256 /* default work per write transaction */
#define RESEAL_MAX 32   /* version-1 records rewritten per owner visit */

typedef struct sweep_ctx {
	ef_store *st;
	int64_t now;
	uint64_t batch;     /* work allowed per transaction */
	key_buf pos;        /* where the transaction starts looking */
	int pos_after;      /* strictly after pos (pos was looked at) */
	/* outputs of one transaction, reset when it (re)starts */
	key_buf next;       /* where the next transaction starts */
	int next_after;     /* strictly after next */
	int end;            /* nothing is left in this phase */
	uint64_t work;      /* work done, against batch */
	uint64_t examined;  /* keys looked at, for progress */
	uint64_t deleted, resealed, dropped, legacy_sealed;
	uint64_t counted;   /* owners whose entry count was set */
} sweep_ctx;

static void ctx_reset(sweep_ctx *c)
{
	c->next = c->pos;
	c->next_after = c->pos_after;
	c->end = 0;
	c->work = c->examined = 0;
	c->deleted = c->resealed = c->dropped = c->legacy_sealed = 0;
	c->counted = 0;
}

/* Position @cur at @k, or strictly after it if @after; *v may be NULL. A
 * key of 511 bytes has no "key + NUL" to seek to, hence the flag. */
static int seek_from(store_cur *cur, const key_buf *k, int after,
		     store_val *kv, store_val *v)
{
	int rc = store_cur_seek(cur, k->s, k->len, kv, v);

	if (rc == EF_OK && after && store_keycmp(kv, k->s, k->len) == 0)
		rc = store_cur_next(cur, kv, v);
	return rc;
}

/* ---- phase 2: entries, owner by owner ---- */

/* Rewrite the version-1 record @r (a copy) at entry key @k: its IP sealed
 * while within retention, else dropped. */
static int reseal_one(store_txn *t, sweep_ctx *c, const key_buf *k,
		      rec_entry *r)
{
	key_view ow, so, rid;
	uint8_t sealed[IP_SEALED_LEN], *rec;
	size_t rlen;
	int rc;

	key_split_entry(k->s, k->len, &ow, &so, &rid); /* checked by the scan */
	rc = ip_seal_entry(c->st, ow, rid, r->created_ms, c->now, r->ip_kind,
			   r->ip, sealed, &r->ip_len);
	if (rc == EF_OK) {
		r->ip_kind = REC_IP_SEALED;
		r->ip = sealed;
	} else if (rc == IPSEAL_EXPIRED) {
		r->ip_kind = REC_IP_NONE;
		r->ip = NULL;
		r->ip_len = 0;
	} else {
		return rc;
	}
	rc = rec_encode(r, &rec, &rlen);
	if (rc != EF_OK)
		return ef__err(c->st->err_id, rc, "cannot encode '%s'", k->s);
	rc = store_put(t, k->s, k->len, rec, rlen, 0);
	free(rec);
	if (rc == EF_OK)
		c->resealed++;
	return rc;
}

/* Is @v at @k a well-formed version-1 record that holds an IP? */
static int is_v1_with_ip(const store_val *k, const store_val *v)
{
	key_view ow, so, rid;
	rec_entry r;

	return rec_decode(v->data, v->len, &r) == EF_OK && r.version == 1 &&
	       r.ip_kind != REC_IP_NONE &&
	       key_split_entry(k->data, k->len, &ow, &so, &rid) == EF_OK;
}

typedef struct v1_rec {
	key_buf k;
	uint8_t *v; /* a copy: the put invalidates views */
	size_t vlen;
} v1_rec;

/* Reseal up to RESEAL_MAX version-1 records with an IP of @owner; *more
 * when there may be others. Counts the owner's entries as examined, and
 * in *records (all of them when *more is 0). */
static int reseal_owner(store_txn *t, sweep_ctx *c, const key_part *owner,
			int *more, uint64_t *records)
{
	v1_rec found[RESEAL_MAX];
	key_buf prefix;
	store_cur *cur;
	store_val k, v;
	size_t n = 0;
	int rc;

	key_entry_prefix(&prefix, owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	*records = 0;
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &k, &v);
	     rc == EF_OK && n < RESEAL_MAX &&
	     store_has_prefix(&k, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &k, &v)) {
		c->examined++;
		(*records)++;
		if (!is_v1_with_ip(&k, &v))
			continue;
		found[n].v = ef__malloc(v.len);
		if (!found[n].v) {
			rc = ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
			break;
		}
		memcpy(found[n].v, v.data, v.len);
		found[n].vlen = v.len;
		key_buf_set(&found[n++].k, k.data, k.len);
	}
	store_cur_close(cur);
	*more = n == RESEAL_MAX;
	if (rc == EF_ENOTFOUND)
		rc = EF_OK;
	for (size_t i = 0; i < n; i++) {
		rec_entry r;

		if (rc == EF_OK &&
		    (rc = rec_decode(found[i].v, found[i].vlen, &r)) == EF_OK)
			rc = reseal_one(t, c, &found[i].k, &r);
		free(found[i].v);
	}
	c->work += n;
	return rc;
}

/* The walk found @records records of @owner, all of them: make its count
 * say so (stores of older versions have none; a wrong one is mended). */
static int count_owner(store_txn *t, sweep_ctx *c, const key_part *owner,
		       uint64_t records)
{
	uint64_t n;
	int rc = feed_count_get(t, owner, &n);

	if (rc == EF_ECORRUPT || (rc == EF_ENOTFOUND && records > 0) ||
	    (rc == EF_OK && n != records)) {
		c->counted++;
		return feed_count_set(t, owner, records);
	}
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Trim and reseal one owner; *more when it needs another visit. */
static int sweep_owner(store_txn *t, sweep_ctx *c, const key_part *owner,
		       int *more)
{
	uint64_t n;
	int rc;

	c->work++;
	do {
		rc = feed_trim(t, c->st, owner, c->now, &n);
		c->deleted += n;
		c->examined += n;
		c->work += n;
	} while (rc == EF_OK && n > 0 && c->work < c->batch);
	*more = n > 0;
	if (rc == EF_OK && !*more)
		rc = reseal_owner(t, c, owner, more, &n);
	if (rc == EF_OK && !*more)
		rc = count_owner(t, c, owner, n);
	return rc;
}

/* The owner of the first entry key at or after c->next. EF_ENOTFOUND past
 * the last entry; EF_EINVAL for a malformed key (c->next moves past it). */
static int next_owner(store_txn *t, sweep_ctx *c, key_part *owner)
{
	store_cur *cur;
	store_val k;
	key_view ow, so, rid;
	int rc = store_cur_open(t, &cur);

	if (rc != EF_OK)
		return rc;
	rc = seek_from(cur, &c->next, c->next_after, &k, NULL);
	if (rc == EF_OK && !store_has_prefix(&k, KEY_P_ENTRY,
					     strlen(KEY_P_ENTRY)))
		rc = EF_ENOTFOUND;
	if (rc == EF_OK &&
	    (key_split_entry(k.data, k.len, &ow, &so, &rid) != EF_OK ||
	     ow.len > EF_OWNER_KEY_MAX)) {
		key_buf_set(&c->next, k.data, k.len); /* not ours: check says */
		c->next_after = 1;
		rc = EF_EINVAL;
	} else if (rc == EF_OK) {
		key_part_set(owner, ow);
	}
	store_cur_close(cur);
	return rc;
}

static int entries_txn(store_txn *t, void *p)
{
	sweep_ctx *c = p;
	key_part owner;
	int rc = EF_OK, more;

	ctx_reset(c);
	while (c->work < c->batch) {
		rc = next_owner(t, c, &owner);
		if (rc == EF_EINVAL) {
			c->work++;
			continue;
		}
		if (rc == EF_ENOTFOUND) {
			c->end = 1;
			rc = EF_OK;
			break;
		}
		if (rc == EF_OK)
			rc = sweep_owner(t, c, &owner, &more);
		if (rc != EF_OK)
			return rc;
		key_entry_prefix(&c->next, &owner);
		c->next_after = 0;
		if (more)
			break; /* the same owner again, in a new transaction */
		/* past every "recentReceive:<owner>:..." key: ';' follows ':' */
		c->next.s[c->next.len - 1] = ';';
	}
	return c->deleted || c->resealed || c->counted ? EF_OK : FEED_NOCHANGE;
}

/* ---- phase 3: orphan unread markers ---- */

/* Does the marker @k have an entry (a record, or a legacy element)?
 * 1, 0, or a negative error; malformed keys count as having one (check
 * reports them; sweep deletes only what it understands). */
static int marker_has_entry(store_txn *t, sweep_ctx *c, const store_val *k)
{
	key_view ow, rid;
	key_part owner, res;
	key_buf ik;
	store_val iv;
	char sort[KEY_SORT_LEN + 1];
	int rc;

	if (key_split_pair(k->data, k->len, KEY_P_UNREAD, &ow, &rid) != EF_OK ||
	    ow.len > EF_OWNER_KEY_MAX || rid.len > EF_OWNER_KEY_MAX)
		return 1;
	key_part_set(&owner, ow);
	key_part_set(&res, rid);
	key_index(&ik, &owner, &res);
	rc = store_get(t, ik.s, ik.len, &iv);
	if (rc == EF_OK && iv.len == KEY_SORT_LEN) {
		memcpy(sort, iv.data, KEY_SORT_LEN);
		sort[KEY_SORT_LEN] = '\0';
		key_entry(&ik, &owner, sort, &res);
		rc = store_get(t, ik.s, ik.len, NULL);
	} else if (rc == EF_OK) {
		rc = EF_ENOTFOUND;
	}
	if (rc == EF_OK)
		return 1;
	if (rc != EF_ENOTFOUND)
		return rc;
	return legacy_has(t, c->st, &owner, &res, c->now);
}

static int markers_txn(store_txn *t, void *p)
{
	sweep_ctx *c = p;
	key_buf *orphans;
	store_cur *cur;
	store_val k;
	size_t n = 0;
	int rc, has;

	ctx_reset(c);
	orphans = ef__malloc(c->batch * sizeof(*orphans));
	if (!orphans)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK) {
		free(orphans);
		return rc;
	}
	for (rc = seek_from(cur, &c->pos, c->pos_after, &k, NULL);
	     rc == EF_OK && c->examined < c->batch &&
	     store_has_prefix(&k, KEY_P_UNREAD, strlen(KEY_P_UNREAD));
	     rc = store_cur_next(cur, &k, NULL)) {
		c->examined++;
		key_buf_set(&c->next, k.data, k.len);
		c->next_after = 1;
		has = marker_has_entry(t, c, &k);
		if (has < 0) {
			rc = has;
			break;
		}
		if (!has)
			key_buf_set(&orphans[n++], k.data, k.len);
	}
	store_cur_close(cur);
	/* stopped by the end of the markers, not by the batch: done */
	if (rc == EF_ENOTFOUND || (rc == EF_OK && c->examined < c->batch)) {
		c->end = 1;
		rc = EF_OK;
	}
	for (size_t i = 0; rc == EF_OK && i < n; i++)
		rc = store_del(t, orphans[i].s, orphans[i].len);
	free(orphans);
	if (rc != EF_OK)
		return rc;
	c->dropped = n;
	return n ? EF_OK : FEED_NOCHANGE;
}

/* ---- phase 4: legacy values kept in plaintext ---- */

#define LEGACY_SEAL_MAX 16 /* values (up to 8 MiB each) sealed per txn */

/* Seal the plain legacy value @v at @k (legacy_value_encode): one that an
 * older edgefeed imported, or that reached the store another way, holds
 * its IPs in plaintext. */
static int legacy_seal_one(store_txn *t, sweep_ctx *c, const store_val *k,
			   const store_val *v)
{
	key_buf lk;
	uint8_t *enc, *raw = ef__malloc(v->len ? v->len : 1);
	size_t elen;
	int rc;

	if (!raw)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	memcpy(raw, v->data, v->len); /* the put invalidates @v */
	key_buf_set(&lk, k->data, k->len);
	rc = legacy_value_encode(c->st, &lk, raw, v->len, c->now, &enc, &elen);
	free(raw);
	if (rc != EF_OK)
		return rc;
	rc = store_put(t, lk.s, lk.len, enc, elen, 0);
	free(enc);
	if (rc == EF_OK)
		c->legacy_sealed++;
	return rc;
}

static int legacy_txn(store_txn *t, void *p)
{
	sweep_ctx *c = p;
	store_cur *cur;
	store_val k, v;
	int rc, need;

	ctx_reset(c);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = seek_from(cur, &c->pos, c->pos_after, &k, &v);
	     rc == EF_OK && c->examined < c->batch &&
	     c->legacy_sealed < LEGACY_SEAL_MAX &&
	     store_has_prefix(&k, KEY_P_LEGACY, strlen(KEY_P_LEGACY));
	     rc = store_cur_next(cur, &k, &v)) {
		c->examined++;
		key_buf_set(&c->next, k.data, k.len);
		c->next_after = 1;
		need = legacy_value_needs_seal(v.data, v.len);
		if (need < 0)
			rc = ef__err(c->st->err_id, need, "out of memory");
		else if (need)
			rc = legacy_seal_one(t, c, &k, &v);
		if (rc != EF_OK)
			break;
		/* a put may move the cursor's page: find the key again */
		if (need && (rc = seek_from(cur, &c->next, 0, &k, &v)) != EF_OK)
			break;
	}
	store_cur_close(cur);
	if (rc == EF_ENOTFOUND || (rc == EF_OK && c->examined < c->batch &&
				   c->legacy_sealed < LEGACY_SEAL_MAX)) {
		c->end = 1;
		rc = EF_OK;
	}
	if (rc != EF_OK)
		return rc;
	return c->legacy_sealed ? EF_OK : FEED_NOCHANGE;
}

/* ---- the job ---- */

typedef struct sweep_run {
	sweep_ctx c;
	const ef_sweep_opts *o;
	ef_sweep_stats *s;
	uint64_t done, total; /* progress: keys examined of the ones there */
	uint64_t group_total; /* count_txn's, of one group */
	const store_val *g;   /* the group being swept (store.h) */
} sweep_run;

/* Run one phase's transactions from @start until the phase ends. */
static int run_phase(sweep_run *r, store_txn_fn fn, const char *start)
{
	sweep_ctx *c = &r->c;
	int rc;

	key_buf_set(&c->pos, start, strlen(start));
	c->pos_after = 0;
	for (;;) {
		rc = store_write_in(c->st->env, r->g, fn, c);
		if (rc == EF_OK)
			r->s->batches++;
		else if (rc != FEED_NOCHANGE)
			return rc;
		r->s->entries_deleted += c->deleted;
		r->s->records_resealed += c->resealed;
		r->s->markers_dropped += c->dropped;
		r->s->legacy_sealed += c->legacy_sealed;
		r->done += c->examined;
		if (r->o->progress)
			r->o->progress(r->done < r->total ? r->done : r->total,
				       r->total, r->o->progress_ctx);
		if (c->end)
			return EF_OK;
		c->pos = c->next;
		c->pos_after = c->next_after;
	}
}

static int count_txn(store_txn *t, void *p)
{
	sweep_run *r = p;
	static const char *const prefixes[] = {KEY_P_ENTRY, KEY_P_UNREAD,
					       KEY_P_LEGACY};
	store_cur *cur;
	store_val k;
	int rc = EF_OK;

	r->group_total = 0;
	for (size_t i = 0; i < 3 && rc == EF_OK; i++) {
		size_t n = strlen(prefixes[i]);

		rc = store_cur_open(t, &cur);
		if (rc != EF_OK)
			return rc;
		for (rc = store_cur_seek(cur, prefixes[i], n, &k, NULL);
		     rc == EF_OK && store_has_prefix(&k, prefixes[i], n);
		     rc = store_cur_next(cur, &k, NULL))
			r->group_total++;
		store_cur_close(cur);
		if (rc == EF_ENOTFOUND)
			rc = EF_OK;
	}
	return rc;
}

/* The first window not wholly past retention at @now: window w ends at
 * (w + 1) * W - 1, which is past retention when now - that >= retention. */
static uint32_t windows_past(const ef_store *st, int64_t now)
{
	int64_t edge = now - st->cfg.ip_retention_ms + 1;
	return edge > 0 ? keyring_window(edge) : 0;
}

static int count_group(const store_val *g, void *p)
{
	sweep_run *r = p;
	int rc = store_read_in(r->c.st->env, g, count_txn, r);

	if (rc == EF_OK)
		r->total += r->group_total;
	return rc;
}

/* The phases over one group (the whole store on LMDB): an owner's
 * entries, markers and legacy array are all in its group. */
static int sweep_group(const store_val *g, void *p)
{
	sweep_run *r = p;
	int rc;

	r->g = g;
	rc = run_phase(r, entries_txn, KEY_P_ENTRY);
	if (rc == EF_OK)
		rc = run_phase(r, markers_txn, KEY_P_UNREAD);
	if (rc == EF_OK)
		rc = run_phase(r, legacy_txn, KEY_P_LEGACY);
	return rc;
}

static int sweep_locked(sweep_run *r)
{
	ef_store *st = r->c.st;
	int rc;

	rc = keyring_destroy_before(st->keyring, windows_past(st, r->c.now),
				    &r->s->keys_destroyed,
				    &r->s->keyring_wiped);
	if (rc == EF_OK && r->o->progress)
		rc = store_each_group(st->env, count_group, r);
	if (rc == EF_OK)
		rc = store_each_group(st->env, sweep_group, r);
	/* on a cluster a destroyed key or a deleted entry is still in every
	 * node's append-only file until the file is rewritten */
	if (rc == EF_OK && store_sharded(st->env) &&
	    (r->s->keys_destroyed || r->s->keyring_wiped ||
	     r->s->entries_deleted || r->s->markers_dropped ||
	     r->s->records_resealed || r->s->legacy_sealed)) {
		store_rewrite_info ri;
		rc = store_rewrite(st->env, &ri);
		r->s->aof_rewritten = ri.nodes;
	}
	return rc;
}

int ef_sweep_ex(ef_store *st, const ef_sweep_opts *opts, ef_sweep_stats *stats)
{
	static const ef_sweep_opts defaults;
	ef_sweep_stats s = {0};
	ef_maint *lk = NULL;
	sweep_run r;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (st->cfg.flags & EF_RDONLY)
		return ef__err(st->err_id, EF_EINVAL,
			       "the store is open read-only");
	memset(&r, 0, sizeof(r));
	r.o = opts ? opts : &defaults;
	r.s = &s;
	r.c.st = st;
	r.c.batch = r.o->batch ? r.o->batch : SWEEP_BATCH;
	/* the lock refuses a store clock ahead of the real one; this, a
	 * given time ahead of it */
	rc = feed_maint_not_ahead(st, "now_ms", r.o->now_ms);
	if (rc == EF_OK)
		rc = ef_maint_lock(st, "edgefeed sweep", r.o->lock_flags,
				   r.o->on_wait, r.o->wait_ctx, &lk);
	if (rc != EF_OK)
		return rc;
	r.c.now = s.now_ms = r.o->now_ms ? r.o->now_ms : feed_now(st);
	rc = sweep_locked(&r);
	ef_maint_unlock(lk);
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	if (stats)
		*stats = s;
	return rc;
}

int ef_sweep(ef_store *st, ef_sweep_stats *stats)
{
	return ef_sweep_ex(st, NULL, stats);
}

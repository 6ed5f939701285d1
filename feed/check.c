/*
 * check.c - ef_check: every invariant of DESIGN.md, verified under one read
 * transaction in one pass over the keys (plus one indexed lookup per entry,
 * index key and marker).
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "feed/ipscan.h"
#include "feed/legacy.h"
#include "store/error.h"
#include "store/keyring.h"

typedef struct check_ctx {
	ef_store *st;
	ef_check_opts o;
	ef_check_stats s;
	int64_t now;
	uint64_t total_keys;     /* keys, for progress */
	int has_format;
	key_buf owner;           /* entries: the current owner, for the cap */
	uint64_t sealed_ips;     /* entries with a sealed IP */
	uint64_t rank;
	/* a run of check_txn covers one group (the whole store on LMDB); a
	 * sharded engine may run it again, so what it finds is kept here and
	 * added up, and reported, only once its run stood */
	ef_check_stats total;
	int total_format;
	uint64_t total_sealed;
	char *pending;           /* reports: "what\0key\0" ... */
	size_t npending, cpending;
	int oom;                 /* a report could not be kept */
} check_ctx;

/* Keep a report of this run, for report_pending. */
static void keep_report(check_ctx *c, const char *what, const char *key)
{
	size_t wl = strlen(what) + 1, kl = strlen(key) + 1;

	if (c->npending + wl + kl > c->cpending) {
		size_t cap = c->cpending ? c->cpending * 2 : 4096;
		char *p;
		while (cap < c->npending + wl + kl)
			cap *= 2;
		p = realloc(c->pending, cap);
		if (!p) {
			c->oom = 1;
			return;
		}
		c->pending = p;
		c->cpending = cap;
	}
	memcpy(c->pending + c->npending, what, wl);
	memcpy(c->pending + c->npending + wl, key, kl);
	c->npending += wl + kl;
}

static void report_pending(check_ctx *c)
{
	for (size_t o = 0; o < c->npending;) {
		const char *what = c->pending + o;
		const char *key = what + strlen(what) + 1;
		c->o.report(what, key, c->o.report_ctx);
		o = (size_t)(key + strlen(key) + 1 - c->pending);
	}
	c->npending = 0;
}

static void violation(check_ctx *c, const char *what, const store_val *k)
{
	char buf[4 * KEY_MAX + 1];
	size_t o = 0;

	c->s.violations++;
	if (!c->o.report)
		return;
	/* keys are shown printable: other bytes as \xNN */
	for (size_t i = 0; k && i < k->len && o + 5 < sizeof(buf); i++) {
		unsigned char b = ((const unsigned char *)k->data)[i];
		if (b >= 0x20 && b < 0x7F && b != '\\')
			buf[o++] = (char)b;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
					      "\\x%02X", b);
	}
	buf[o] = '\0';
	/* a key names records by their owner and id, which may hold an IP
	 * address: a finding shows it masked (the import's skip lines do) */
	ipscan_mask(buf, o);
	keep_report(c, what, buf);
}

/* Does the owner component of a key name an owner (the one rule of
 * key_owner_from_key: the canonical spelling, escaped)? */
static int owner_canonical(check_ctx *c, key_view ow)
{
	key_part p;

	return key_owner_from_key(c->st->err_id, ow.p, ow.len, &p) == EF_OK;
}

/* The key that sealed an entry's IP: there (and the IP opens with it), or
 * shredded by a sweep (past retention); missing, or another key in its
 * place, means a lost or damaged keyring. */
static void check_sealed_ip(check_ctx *c, const rec_entry *r, key_view ow,
			    key_view rid, const store_val *k)
{
	int rc = ipseal_key_state(c->st, r->ip, r->ip_len);
	uint8_t plain[64];
	size_t n;
	key_buf ad;

	c->sealed_ips++;
	if (rc == EF_OK) {
		/* opened as of its own creation, inside any retention */
		key_pair_views(&ad, KEY_P_INDEX, ow, rid);
		rc = ipseal_open(c->st, r->created_ms, r->created_ms, ad.s,
				 ad.len, r->ip, r->ip_len, plain, sizeof(plain),
				 &n);
		sodium_memzero(plain, sizeof(plain));
	}
	if (rc == EF_ENOTFOUND)
		violation(c, "entry: the key that sealed its IP is missing "
			     "(keyring lost or damaged: the IP reads as absent)",
			  k);
	else if (rc == EF_ECORRUPT)
		violation(c, "entry: its sealed IP is malformed", k);
}

/* The keyring file itself (outside LMDB). */
static void check_keyring(check_ctx *c)
{
	keyring_health h;
	char what[160];

	if (keyring_health_get(c->st->keyring, &h) != EF_OK) {
		violation(c, "keyring: cannot be read", NULL);
		return;
	}
	if (!h.present && c->sealed_ips > 0)
		violation(c, "keyring: missing, while entries hold sealed IPs",
			  NULL);
	else if (h.present && !h.header_ok)
		violation(c, "keyring: its header is damaged", NULL);
	if (h.damaged) {
		snprintf(what, sizeof(what),
			 "keyring: %llu damaged slot(s) (a sweep zeroes them)",
			 (unsigned long long)h.damaged);
		violation(c, what, NULL);
	}
}

/* A record that knows its unread state agrees with its marker: a page
 * shows the record's, the unread count the markers'. */
static int check_unread_state(check_ctx *c, store_txn *t, const rec_entry *r,
			      key_view ow, key_view rid, const store_val *k)
{
	key_buf mk;
	int rc;

	key_pair_views(&mk, KEY_P_UNREAD, ow, rid);
	rc = store_get(t, mk.s, mk.len, NULL);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	if ((rc == EF_OK) != (r->unread == REC_UNREAD_YES))
		violation(c, rc == EF_OK ? "entry: says read, but has an unread "
					   "marker"
					 : "entry: says unread, but has no "
					   "unread marker",
			  k);
	return EF_OK;
}

static int check_entry(check_ctx *c, store_txn *t, const store_val *k,
		       const store_val *v)
{
	key_view ow, so, rid;
	rec_entry r;
	key_part rp;
	key_buf ik;
	store_val iv;
	int64_t created;
	int rc;

	c->s.entries++;
	if (key_split_entry(k->data, k->len, &ow, &so, &rid) != EF_OK) {
		violation(c, "entry: malformed key", k);
		return EF_OK;
	}
	if (!owner_canonical(c, ow))
		violation(c, "entry: owner is not in canonical form", k);
	key_created_from_sort(so.p, so.len, &created);
	if (rec_decode(v->data, v->len, &r) != EF_OK) {
		violation(c, "entry: record does not decode", k);
	} else {
		if (r.created_ms != created)
			violation(c, "entry: record's created_ms differs from "
				     "the key's createdSort", k);
		if (key_reservation_n(c->st->err_id, "reservation_id", r.rid,
				      r.rid_len, &rp) != EF_OK ||
		    rp.len != rid.len || memcmp(rp.s, rid.p, rid.len) != 0)
			violation(c, "entry: record's reservation id differs "
				     "from the key", k);
		if (r.has_payload &&
		    payload_check(c->st->err_id, "payload", r.payload,
				  r.payload_len) != EF_OK)
			violation(c, "entry: payload is not a JSON object", k);
		if (r.ip_kind == REC_IP_SEALED)
			check_sealed_ip(c, &r, ow, rid, k);
		if (r.unread != REC_UNREAD_UNKNOWN &&
		    (rc = check_unread_state(c, t, &r, ow, rid, k)) != EF_OK)
			return rc;
	}
	key_pair_views(&ik, KEY_P_INDEX, ow, rid);
	rc = store_get(t, ik.s, ik.len, &iv);
	if (rc == EF_ENOTFOUND)
		violation(c, "entry: no index key", k);
	else if (rc != EF_OK)
		return rc;
	else if (iv.len != KEY_SORT_LEN || memcmp(iv.data, so.p, so.len) != 0)
		violation(c, "entry: its index key has another createdSort", k);
	/* entries of one owner are adjacent, newest first */
	if (ow.len != c->owner.len || memcmp(ow.p, c->owner.s, ow.len) != 0) {
		memcpy(c->owner.s, ow.p, ow.len);
		c->owner.len = ow.len;
		c->rank = 0;
	}
	if (c->o.strict && c->rank == c->st->cfg.feed_cap)
		violation(c, "owner: over its cap (a sweep deletes the rest)", k);
	if (c->o.strict && feed_is_stale(c->st, created, c->now))
		violation(c, "entry: stale (a sweep deletes it)", k);
	c->rank++;
	return EF_OK;
}

/* "recentReceive:<owner>:<sort>:<rid>" from views. */
static int entry_key(key_buf *ek, key_view ow, key_view sort, key_view rid)
{
	key_pair_views(ek, KEY_P_ENTRY, ow, sort);
	if (ek->len + 1 + rid.len > KEY_MAX)
		return EF_EINVAL;
	ek->s[ek->len++] = ':';
	memcpy(ek->s + ek->len, rid.p, rid.len);
	ek->len += rid.len;
	return EF_OK;
}

static int check_index(check_ctx *c, store_txn *t, const store_val *k,
		       const store_val *v)
{
	key_view ow, rid;
	key_buf ek;
	int64_t created;
	int rc;

	c->s.index_keys++;
	if (key_split_pair(k->data, k->len, KEY_P_INDEX, &ow, &rid) != EF_OK ||
	    key_created_from_sort(v->data, v->len, &created) != EF_OK) {
		violation(c, "index: malformed key or value", k);
		return EF_OK;
	}
	if (!owner_canonical(c, ow))
		violation(c, "index: owner is not in canonical form", k);
	if (entry_key(&ek, ow, (key_view){v->data, v->len}, rid) != EF_OK) {
		violation(c, "index: too long", k);
		return EF_OK;
	}
	rc = store_get(t, ek.s, ek.len, NULL);
	if (rc == EF_ENOTFOUND)
		violation(c, "index: no entry", k);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static int check_marker(check_ctx *c, store_txn *t, const store_val *k,
			const store_val *v)
{
	key_view ow, rid;
	key_buf ek;
	key_part op, rp;
	int64_t created;
	int rc;

	c->s.markers++;
	if (key_split_pair(k->data, k->len, KEY_P_UNREAD, &ow, &rid) != EF_OK) {
		violation(c, "marker: malformed key", k);
		return EF_OK;
	}
	/* the marker's value is its entry's createdSort; markers of the old
	 * design, or imported ones, may hold anything (also another value of
	 * that shape), so when that finds no entry the index tells, as it
	 * does for a sweep (an index without its entry is reported there) */
	if (key_created_from_sort(v->data, v->len, &created) == EF_OK &&
	    entry_key(&ek, ow, (key_view){v->data, v->len}, rid) == EF_OK) {
		rc = store_get(t, ek.s, ek.len, NULL);
		if (rc != EF_ENOTFOUND) {
			if (rc == EF_OK && c->o.strict &&
			    feed_is_stale(c->st, created, c->now))
				violation(c, "marker: of a stale entry (a sweep "
					     "deletes both)", k);
			return rc;
		}
	}
	key_pair_views(&ek, KEY_P_INDEX, ow, rid);
	rc = store_get(t, ek.s, ek.len, NULL);
	if (rc != EF_ENOTFOUND)
		return rc;
	/* no record: a legacy element still in its array counts */
	key_part_set(&op, ow);
	key_part_set(&rp, rid);
	rc = legacy_has(t, c->st, &op, &rp, c->now);
	if (rc == 0)
		violation(c, "marker: no entry (an orphan; a sweep drops it)", k);
	return rc < 0 ? rc : EF_OK;
}

/* A sealed legacy value reads (its seals may be shredded, not malformed). */
static int check_legacy_value(check_ctx *c, const store_val *k,
			      const store_val *v)
{
	uint8_t *view;
	size_t vlen;
	key_buf lk;
	int rc;

	if (!legacy_value_sealed(v->data, v->len))
		return EF_OK;
	key_buf_set(&lk, k->data, k->len);
	rc = legacy_value_view(c->st, &lk, v->data, v->len, c->now, &view,
			       &vlen);
	if (rc == EF_OK) {
		sodium_memzero(view, vlen);
		free(view);
	}
	if (rc == EF_ECORRUPT)
		violation(c, "legacy: sealed value is malformed (migrate "
			     "quarantines what is left of it)", k);
	return rc == EF_ENOMEM ? rc : EF_OK;
}

/* An entry count says exactly how many records its owner has (reads need
 * it never to say fewer; anything else is a count that went wrong). */
static int check_count(check_ctx *c, store_txn *t, const store_val *k)
{
	key_view ow = {(const char *)k->data + strlen(KEY_P_COUNT),
		       k->len - strlen(KEY_P_COUNT)};
	uint64_t n, records = 0;
	key_buf prefix;
	key_part owner;
	store_cur *cur;
	store_val ek;
	int rc;

	if (ow.len == 0 || ow.len > EF_OWNER_KEY_MAX || !key_view_valid(ow)) {
		violation(c, "count: not meta:entries:<owner>", k);
		return EF_OK;
	}
	key_part_set(&owner, ow);
	rc = feed_count_get(t, &owner, &n);
	if (rc == EF_ECORRUPT) {
		violation(c, "count: value is not 8 bytes", k);
		return EF_OK;
	}
	if (rc != EF_OK)
		return rc;
	key_entry_prefix(&prefix, &owner);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, prefix.s, prefix.len, &ek, NULL);
	     rc == EF_OK && store_has_prefix(&ek, prefix.s, prefix.len);
	     rc = store_cur_next(cur, &ek, NULL))
		records++;
	store_cur_close(cur);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	if (n < records)
		violation(c, "count: below the owner's records (a page could "
			     "show entries beyond the cap)", k);
	else if (n > records)
		violation(c, "count: above the owner's records (a sweep "
			     "mends it)", k);
	return EF_OK;
}

static int check_key(check_ctx *c, store_txn *t, const store_val *k,
		     const store_val *v)
{
	if (store_has_prefix(k, KEY_P_ENTRY, strlen(KEY_P_ENTRY)))
		return check_entry(c, t, k, v);
	if (store_has_prefix(k, KEY_P_INDEX, strlen(KEY_P_INDEX)))
		return check_index(c, t, k, v);
	if (store_has_prefix(k, KEY_P_UNREAD, strlen(KEY_P_UNREAD)))
		return check_marker(c, t, k, v);
	if (store_has_prefix(k, KEY_P_LEGACY, strlen(KEY_P_LEGACY))) {
		key_view ow = {(const char *)k->data + strlen(KEY_P_LEGACY),
			       k->len - strlen(KEY_P_LEGACY)};
		c->s.legacy_arrays++;
		if (!owner_canonical(c, ow))
			violation(c, "legacy: owner is not in canonical form "
				     "(dual-read never reads it; migrate "
				     "quarantines it)", k);
		return check_legacy_value(c, k, v);
	} else if (store_has_prefix(k, KEY_P_QUARANTINE,
				    strlen(KEY_P_QUARANTINE))) {
		json_t *j = json_loadb(v->data, v->len, 0, NULL);
		c->s.quarantined++;
		if (!json_is_object(j))
			violation(c, "quarantine: record is not a JSON object", k);
		json_decref(j);
	} else if (store_has_prefix(k, "meta:format", 11) && k->len == 11) {
		c->has_format = 1;
	} else if (store_has_prefix(k, KEY_P_COUNT, strlen(KEY_P_COUNT))) {
		return check_count(c, t, k);
	} else if (!store_has_prefix(k, KEY_P_META, strlen(KEY_P_META))) {
		violation(c, "unknown key family", k);
	}
	return EF_OK;
}

static int check_txn(store_txn *t, void *p)
{
	check_ctx *c = p;
	store_cur *cur;
	store_val k, v;
	int rc;

	memset(&c->s, 0, sizeof(c->s));
	c->has_format = 0;
	c->owner.len = 0;
	c->sealed_ips = 0;
	c->npending = 0;
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		c->s.keys++;
		rc = check_key(c, t, &k, &v);
		if (rc != EF_OK)
			break;
		if (c->o.progress && (c->total.keys + c->s.keys) % 65536 == 0)
			c->o.progress(c->total.keys + c->s.keys, c->total_keys,
				      c->o.progress_ctx);
	}
	store_cur_close(cur);
	if (rc != EF_OK && rc != EF_ENOTFOUND)
		return rc;
	return EF_OK;
}

/* Check one group (the whole store on LMDB) and add up what it found. */
static int check_group(const store_val *g, void *p)
{
	check_ctx *c = p;
	ef_check_stats *a = &c->total;
	int rc = store_read_in(c->st->env, g, check_txn, c);

	if (rc != EF_OK)
		return rc;
	a->keys += c->s.keys;
	a->entries += c->s.entries;
	a->index_keys += c->s.index_keys;
	a->markers += c->s.markers;
	a->legacy_arrays += c->s.legacy_arrays;
	a->quarantined += c->s.quarantined;
	a->violations += c->s.violations;
	c->total_format |= c->has_format;
	c->total_sealed += c->sealed_ips;
	if (c->o.report)
		report_pending(c);
	c->npending = 0;
	return EF_OK;
}

int ef_check(ef_store *st, const ef_check_opts *opts, ef_check_stats *stats)
{
	check_ctx c;
	ef_stat_info si;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	memset(&c, 0, sizeof(c));
	c.st = st;
	if (opts)
		c.o = *opts;
	c.now = feed_now(st);
	if (c.o.progress && ef_stat(st, &si) == EF_OK)
		c.total_keys = si.entries + si.index_keys + si.unread_markers +
			       si.legacy_arrays + si.quarantined +
			       si.other_keys;
	rc = store_each_group(st->env, check_group, &c);
	if (rc == EF_OK) {
		/* what holds of the store as a whole */
		memset(&c.s, 0, sizeof(c.s));
		c.sealed_ips = c.total_sealed;
		if (!c.total_format)
			violation(&c, "meta:format is missing", NULL);
		check_keyring(&c);
		c.total.violations += c.s.violations;
		if (c.o.report)
			report_pending(&c);
		if (c.oom)
			rc = ef__err(st->err_id, EF_ENOMEM, "out of memory "
				     "keeping the violations found");
		if (c.o.progress)
			c.o.progress(c.total.keys, c.total.keys,
				     c.o.progress_ctx);
	}
	free(c.pending);
	if (stats)
		*stats = c.total;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

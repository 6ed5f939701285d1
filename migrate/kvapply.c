/*
 * kvapply.c - a batch of import items applied in one write transaction.
 * Since store_write may run it again, applying derives everything from the
 * items and resets its outputs first. Entries are written by fin_apply,
 * as every entry is; legacy arrays merge with the store's; index keys and
 * unread markers whose entry is not in the store yet are deferred (their
 * entry may come later in the file) and settled at the end.
 */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/kvbulk-int.h"
#include "migrate/migrate.h"
#include "store/alloc.h"
#include "store/error.h"

/* ---- applying a batch in one write transaction -------------------------- */

void kv_cache_drop(imp_ctx *c)
{
	legacy_free(&c->cache);
	c->cache_valid = 0;
}

/* Is @rid in @owner's legacy array? 1, 0, or < 0. The markers of one
 * owner come together, so the last owner's parsed array is kept. */
static int legacy_cached_has(imp_ctx *c, store_txn *t, const key_part *owner,
			     const key_part *rid)
{
	int rc;

	if (!c->cache_valid || c->cache_owner.len != owner->len ||
	    memcmp(c->cache_owner.s, owner->s, owner->len) != 0) {
		kv_cache_drop(c);
		rc = legacy_load(t, c->st, owner, c->now, &c->cache);
		if (rc != EF_OK && rc != EF_ENOTFOUND)
			return rc;
		c->cache_owner = *owner;
		c->cache_valid = 1;
	}
	return legacy_find(&c->cache, rid) != NULL;
}

/* Is the entry of index key or marker @it in the store: a record, or an
 * element of its owner's legacy array? 1, 0, or < 0. */
static int entry_exists(imp_ctx *c, store_txn *t, const kv_item *it,
			const char *prefix)
{
	key_view ow, rv;
	key_part owner, rid;
	key_buf ik;
	int rc;

	if (key_split_pair(it->k, it->k_len, prefix, &ow, &rv) != EF_OK)
		return 0; /* unreachable: made by the key codec */
	key_pair_views(&ik, KEY_P_INDEX, ow, rv);
	rc = store_get(t, ik.s, ik.len, NULL);
	if (rc != EF_ENOTFOUND)
		return rc == EF_OK ? 1 : rc;
	key_part_set(&owner, ow);
	key_part_set(&rid, rv);
	return legacy_cached_has(c, t, &owner, &rid);
}

/* Was the entry of index key or marker @it trimmed at once by this
 * import? 1 or 0. Settling only (the list is sorted then). */
static int entry_trimmed(const imp_ctx *c, const kv_item *it,
			 const char *prefix)
{
	key_view ow, rv;
	key_buf ik;
	const char *k = ik.s;

	if (key_split_pair(it->k, it->k_len, prefix, &ow, &rv) != EF_OK)
		return 0; /* unreachable: made by the key codec */
	key_pair_views(&ik, KEY_P_INDEX, ow, rv);
	return c->ntrimmed &&
	       bsearch(&k, c->trimmed, c->ntrimmed, sizeof(*c->trimmed),
		       kv_by_str) != NULL;
}

static int defer_or_skip(imp_ctx *c, kv_item *it, const char *prefix,
			 const char *why)
{
	if (!c->final) {
		it->deferred = 1; /* its entry may come later in the file */
		return EF_OK;
	}
	if (entry_trimmed(c, it, prefix)) {
		c->b.trimmed++; /* left out with its entry */
		return EF_OK;
	}
	return skip_txn(c, it, EF_IMPORT_SKIP_NO_ENTRY, "%s", why);
}

/* The record of the marker @it just written says "unread" from now on. */
static int marker_record(store_txn *t, const kv_item *it)
{
	key_view ow, rv;
	key_part owner, rid;

	if (key_split_pair(it->k, it->k_len, KEY_P_UNREAD, &ow, &rv) != EF_OK ||
	    ow.len > EF_OWNER_KEY_MAX || rv.len > EF_OWNER_KEY_MAX) {
		assert(!"pair_prepare made the key: it splits");
		return EF_OK;
	}
	key_part_set(&owner, ow);
	key_part_set(&rid, rv);
	return feed_record_unread(t, &owner, &rid, REC_UNREAD_YES);
}

static int marker_apply(imp_ctx *c, store_txn *t, kv_item *it)
{
	int rc = store_get(t, it->k, it->k_len, NULL);

	if (rc == EF_OK) { /* a marker says "unread" by being there */
		c->b.unchanged++;
		return EF_OK;
	}
	if (rc != EF_ENOTFOUND)
		return rc;
	rc = entry_exists(c, t, it, KEY_P_UNREAD);
	if (rc <= 0)
		return rc < 0 ? rc
			      : defer_or_skip(c, it, KEY_P_UNREAD,
					      "its entry is neither in the "
					      "file nor in the store");
	rc = store_put(t, it->k, it->k_len, it->val, it->vlen, 0);
	if (rc == EF_OK)
		rc = marker_record(t, it);
	if (rc == EF_OK)
		c->b.markers++, c->changed = 1;
	return rc;
}

static int index_apply(imp_ctx *c, store_txn *t, kv_item *it)
{
	store_val v;
	int rc = store_get(t, it->k, it->k_len, &v);

	if (rc == EF_ENOTFOUND)
		return defer_or_skip(c, it, KEY_P_INDEX,
				     "its entry is neither in the file nor "
				     "in the store");
	if (rc != EF_OK)
		return rc;
	if (v.len != it->vlen || memcmp(v.data, it->val, v.len) != 0)
		return skip_txn(c, it, EF_IMPORT_SKIP_CONFLICT,
				"the store's entry of this reservation has "
				"createdSort %.*s", (int)v.len,
				(const char *)v.data);
	c->b.index_keys++;
	return EF_OK;
}

/* Do the record @v in the store and the prepared @f say the same? 1, 0,
 * or EF_ENOMEM. Sealed IPs differ in their nonce: compare what they open
 * to. */
static int rec_same(imp_ctx *c, const fin_item *f, const store_val *v)
{
	key_view ow = {f->owner.s, f->owner.len}, rv = {f->rid.s, f->rid.len};
	char ia[64], ib[64];
	rec_entry a, b;
	int ra, rb;

	if (rec_decode(v->data, v->len, &a) != EF_OK ||
	    rec_decode(f->rec, f->rec_len, &b) != EF_OK ||
	    a.created_ms != b.created_ms || a.rid_len != b.rid_len ||
	    memcmp(a.rid, b.rid, a.rid_len) != 0 ||
	    a.has_payload != b.has_payload || a.payload_len != b.payload_len ||
	    (a.payload_len && memcmp(a.payload, b.payload, a.payload_len)) ||
	    (a.psealed_len == 0) != (b.psealed_len == 0))
		return 0;
	ra = ip_reveal_entry(c->st, ow, rv, &a, c->now, ia, sizeof(ia));
	rb = ip_reveal_entry(c->st, ow, rv, &b, c->now, ib, sizeof(ib));
	if (ra == EF_ENOMEM || rb == EF_ENOMEM)
		return EF_ENOMEM;
	return ra == rb && (ra != EF_OK || strcmp(ia, ib) == 0);
}

/* Remember the index key @ik of an entry trimmed at once. */
static int trimmed_add(imp_ctx *c, const key_buf *ik)
{
	char **n = kv_grow(c, c->trimmed, c->ntrimmed, &c->captrimmed,
			   sizeof(*n), 64), *d;

	if (!n)
		return EF_ENOMEM;
	c->trimmed = n;
	d = kv_dup_bytes(ik->s, ik->len);
	if (!d)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	c->trimmed[c->ntrimmed++] = d;
	c->b.trimmed++;
	return EF_OK;
}

/* fin_apply found the reservation already there: say where. */
static int entry_conflict(imp_ctx *c, store_txn *t, kv_item *it)
{
	const key_buf *ik = &it->x->ik;
	store_val v;
	int rc = store_get(t, ik->s, ik->len, &v);

	if (rc == EF_OK)
		return skip_txn(c, it, EF_IMPORT_SKIP_CONFLICT,
				"the reservation already has an entry, with "
				"createdSort %.*s (first write wins)",
				(int)v.len, (const char *)v.data);
	if (rc != EF_ENOTFOUND)
		return rc;
	return skip_txn(c, it, EF_IMPORT_SKIP_CONFLICT,
			"the reservation is an element of the owner's legacy "
			"array (first write wins, as for a finalization)");
}

/* The entry goes through the finalize logic (fin_apply): the index with
 * NOOVERWRITE, the legacy-array check, the cap and staleness trim. */
static int entry_apply(imp_ctx *c, store_txn *t, kv_item *it)
{
	uint64_t deleted;
	store_val v;
	int rc = store_get(t, it->k, it->k_len, &v);

	if (rc == EF_OK) {
		rc = rec_same(c, &it->x->fin, &v);
		if (rc < 0)
			return ef__err(c->st->err_id, rc, "out of memory");
		if (rc == 0)
			return skip_txn(c, it, EF_IMPORT_SKIP_CONFLICT,
					"the store holds another record under "
					"this key (first write wins)");
		c->b.unchanged++;
		return EF_OK;
	}
	if (rc != EF_ENOTFOUND)
		return rc;
	rc = fin_apply(t, c->st, &it->x->fin, c->now, FIN_IMPORT, &deleted);
	if (rc == EF_EXISTS)
		return entry_conflict(c, t, it);
	if (rc == FEED_TRIMMED)
		return trimmed_add(c, &it->x->ik);
	if (rc == EF_OK) {
		c->b.entries++;
		c->b.trim_deleted += deleted;
		c->changed = 1;
	}
	return rc;
}

static int quarantine_apply(imp_ctx *c, store_txn *t, kv_item *it)
{
	kv_extra *x = it->x;
	int rc = store_get(t, it->k, it->k_len, NULL);

	if (rc == EF_OK) {
		c->b.unchanged++;
		return EF_OK;
	}
	if (rc != EF_ENOTFOUND)
		return rc;
	/* the quarantine's own encoding, keyed by its bytes: the same bytes
	 * twice keep one record */
	rc = quarantine_put(t, c->st, x->has_owner ? &x->owner : NULL, x->lkey,
			    x->lklen, it->val, it->vlen, &x->reasons, c->now,
			    x->seal_by);
	if (rc == EF_OK)
		c->b.quarantine_records++, c->changed = 1;
	return rc;
}

/* Keep @raw (the value of @key) in a new quarantine record: it cannot merge
 * with the other legacy array of its owner. */
static int quarantine_value(imp_ctx *c, store_txn *t, const key_part *owner,
			    const char *key, size_t klen, const void *raw,
			    size_t len, int64_t seal_by, const char *why)
{
	legacy_array a;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = legacy_issue_add(&a, -1, 0, "%s", why);
	if (rc == EF_OK)
		rc = quarantine_put(t, c->st, owner, key, klen, raw, len, &a,
				    c->now, seal_by);
	legacy_free(&a);
	if (rc == EF_OK)
		c->b.quarantined++, c->changed = 1;
	return rc;
}

/* Store @val as the legacy value of @it, in the form that keeps its IP
 * addresses sealed (legacy_value_encode): they never reach the store in
 * plaintext. */
static int legacy_put(imp_ctx *c, store_txn *t, const kv_item *it,
		      const void *val, size_t len)
{
	key_buf k;
	uint8_t *enc;
	size_t elen;
	int rc;

	key_buf_set(&k, it->k, it->k_len);
	rc = legacy_value_encode(c->st, &k, val, len, c->now, &enc, &elen);
	if (rc != EF_OK)
		return rc;
	rc = store_put(t, it->k, it->k_len, enc, elen, 0);
	free(enc);
	kv_cache_drop(c); /* it may hold this owner's array as it was */
	if (rc == EF_OK)
		c->changed = 1;
	return rc;
}

static json_t *legacy_array_of(const void *data, size_t len)
{
	json_t *j = kv_legacy_load(data, len);

	if (json_is_array(j))
		return j;
	json_decref(j);
	return NULL;
}

int kv_by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Append to @into each element of @from that @into does not hold (as
 * canonical JSON), so that no element is lost and importing the same
 * file again adds nothing. *added counts. EF_OK or EF_ENOMEM.
 */
static int legacy_union(json_t *into, json_t *from, size_t *added)
{
	const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
	size_t n = json_array_size(into), i, have = 0;
	char **seen = ef__calloc(n ? n : 1, sizeof(*seen)), *d;
	json_t *el;
	int rc = seen ? EF_OK : EF_ENOMEM;

	*added = 0;
	for (i = 0; rc == EF_OK && i < n; i++)
		if (!(seen[have++] = json_dumps(json_array_get(into, i), flags)))
			rc = EF_ENOMEM;
	if (rc == EF_OK)
		qsort(seen, have, sizeof(*seen), kv_by_str);
	json_array_foreach(from, i, el) {
		if (rc != EF_OK || !(d = json_dumps(el, flags))) {
			rc = EF_ENOMEM;
			break;
		}
		if (!bsearch(&d, seen, have, sizeof(*seen), kv_by_str)) {
			if (json_array_append(into, el) != 0)
				rc = EF_ENOMEM;
			else
				(*added)++;
		}
		free(d);
	}
	for (i = 0; seen && i < have; i++)
		free(seen[i]);
	free(seen);
	return rc;
}

/* Merge the imported array @in into the store's @ex, both arrays. */
static int legacy_merge(imp_ctx *c, store_txn *t, kv_item *it, size_t idx,
			json_t *ex, json_t *in)
{
	uint64_t dropped = 0;
	size_t added = 0;
	char *text;
	int rc;

	/* as the import's own array was: without IPs past retention */
	rc = kv_scrub_ips(c->st, &it->x->owner, ex, c->now, &dropped);
	if (rc == EF_OK)
		rc = legacy_union(ex, in, &added);
	if (rc != EF_OK)
		return ef__err(c->st->err_id, rc, "out of memory");
	if (added == 0) {
		c->b.unchanged++;
		return EF_OK;
	}
	text = json_dumps(ex, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	rc = legacy_put(c, t, it, text, strlen(text));
	free(text);
	if (rc == EF_OK) {
		c->b.legacy_merged++;
		c->b.ips_dropped += dropped;
		c->merged[c->nmerged++] = idx;
	}
	return rc;
}

/* The store's legacy value of @it as it reads now (*old malloc'd) and the
 * oldest window it was sealed under (*seal_by); a sealed one of which
 * nothing reads is as good as none (EF_ENOTFOUND). */
static int legacy_stored(imp_ctx *c, store_txn *t, const kv_item *it,
			 uint8_t **old, size_t *len, int64_t *seal_by)
{
	key_buf k;
	store_val v;
	int rc = store_get(t, it->k, it->k_len, &v);

	*old = NULL;
	if (rc != EF_OK)
		return rc;
	*seal_by = legacy_value_sealed_since(v.data, v.len);
	key_buf_set(&k, it->k, it->k_len);
	rc = legacy_value_view(c->st, &k, v.data, v.len, c->now, old, len);
	return rc == EF_ECORRUPT ? EF_ENOTFOUND : rc;
}

static int legacy_apply(imp_ctx *c, store_txn *t, kv_item *it, size_t idx)
{
	json_t *ex, *in;
	uint8_t *old;
	size_t len;
	int64_t seal_by;
	int rc = legacy_stored(c, t, it, &old, &len, &seal_by);

	if (rc == EF_ENOTFOUND) {
		rc = legacy_put(c, t, it, it->val, it->vlen);
		c->b.legacy_arrays += rc == EF_OK;
		return rc;
	}
	if (rc != EF_OK)
		return rc;
	if (len == it->vlen && memcmp(old, it->val, len) == 0) {
		c->b.unchanged++;
		free(old);
		return EF_OK;
	}
	/* another spelling of the owner, or an array already there */
	ex = legacy_array_of(old, len);
	in = legacy_array_of(it->val, it->vlen);
	if (ex && in) {
		rc = legacy_merge(c, t, it, idx, ex, in);
	} else if (!in) {
		rc = quarantine_value(c, t, &it->x->owner, it->key, it->klen,
				      it->val, it->vlen, INT64_MAX,
				      "not a JSON array, so it cannot merge "
				      "with the owner's legacy array");
	} else {
		/* the store's value cannot merge: it moves to quarantine */
		rc = quarantine_value(c, t, &it->x->owner, it->k, it->k_len,
				      old, len, seal_by,
				      "not a JSON array, so it cannot merge "
				      "with the owner's imported legacy array");
		if (rc == EF_OK)
			rc = legacy_put(c, t, it, it->val, it->vlen);
		c->b.legacy_arrays += rc == EF_OK;
	}
	sodium_memzero(old, len);
	free(old);
	json_decref(ex);
	json_decref(in);
	return rc;
}

static int item_apply(imp_ctx *c, store_txn *t, size_t i)
{
	kv_item *it = &c->items[i];

	switch (it->kind) {
	case KIND_LEGACY: return legacy_apply(c, t, it, i);
	case KIND_ENTRY: return entry_apply(c, t, it);
	case KIND_INDEX: return index_apply(c, t, it);
	case KIND_MARKER: return marker_apply(c, t, it);
	default: return quarantine_apply(c, t, it);
	}
}

/* A transaction that runs again starts from the same state. */
static void txn_reset(imp_ctx *c)
{
	memset(&c->b, 0, sizeof(c->b));
	c->nmerged = 0;
	c->changed = 0;
	while (c->nskips > c->npre)
		free(c->skips[--c->nskips].key);
	for (size_t i = 0; i < c->n; i++)
		c->items[i].deferred = 0;
	while (c->ntrimmed > c->ntrimmed_done)
		free(c->trimmed[--c->ntrimmed]);
	kv_cache_drop(c);
}

int kv_batch_txn(store_txn *t, void *p)
{
	imp_ctx *c = p;
	int rc = EF_OK;

	txn_reset(c);
	for (size_t i = 0; rc == EF_OK && i < c->n; i++)
		rc = item_apply(c, t, i);
	kv_cache_drop(c);
	if (rc != EF_OK)
		return rc;
	return c->changed ? EF_OK : FEED_NOCHANGE;
}

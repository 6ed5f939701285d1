/*
 * kvbulk.c - ef_import_kvbulk: a Workers KV bulk file into the store.
 *
 * The file is read as a stream (kvread.c): memory is one element and one
 * batch. Each element becomes an item: its key validated (its owner taken
 * only in the spelling edgefeed writes: key_owner_from_key), its value
 * decoded and checked, an entry's record encoded by the finalize
 * logic (outside any transaction, since sealing an IP may write the
 * keyring). A batch of items is applied in one write transaction; since
 * store_write may run it again, applying derives everything from the items
 * and resets its outputs first. Index keys and unread markers whose entry
 * is not in the store yet are set aside and settled at the end, when every
 * entry of the file is in (a file in key order lists index keys first).
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "migrate/kvbulk.h"
#include "migrate/migrate.h"
#include "feed/ipscan.h"
#include "store/error.h"

#define BATCH_DEFAULT 1000
#define BATCH_MAX 100000
#define BATCH_BYTES ((size_t)16 << 20) /* value bytes per transaction */
#define MARKER_MAX 256                 /* bytes of an unread marker's value */
#define DETAIL_MAX 300
#define KV_SKIPPED 101 /* item_make: the element was reported and skipped */
#define KV_DEFER 102   /* apply: its entry is not in the store yet */

const char *ef_import_skip_name(int reason)
{
	switch (reason) {
#define EF__SKIP_CASE(name, json)                                              \
	case EF_IMPORT_SKIP_##name:                                            \
		return json;
		EF_IMPORT_SKIP_MAP(EF__SKIP_CASE)
#undef EF__SKIP_CASE
	default:
		return "unknown";
	}
}

/* ---- items: an element, validated and ready to apply -------------------- */

enum { KIND_LEGACY, KIND_ENTRY, KIND_INDEX, KIND_MARKER, KIND_QUARANTINE };

/* What entries, legacy arrays and quarantine records need besides. */
typedef struct kv_extra {
	key_part owner;       /* canonical owner (legacy, quarantine) */
	int has_owner;        /* quarantine: 0 for the owner "-" */
	fin_item fin;         /* entry: the record as finalize encodes it */
	key_buf ik;           /* entry: its index key */
	legacy_array reasons; /* quarantine: the record's reasons */
	char *lkey;           /* quarantine: its legacyKey, lklen bytes */
	size_t lklen;
	int64_t seal_by;      /* quarantine: its bytes' time of quarantine */
} kv_extra;

typedef struct kv_item {
	uint64_t index; /* element index in the file */
	int kind;       /* KIND_* */
	int deferred;   /* this transaction left it for the end */
	char *key;      /* "key" as in the file, klen bytes */
	size_t klen;
	uint8_t *val;   /* the value's bytes (base64 decoded) */
	size_t vlen;
	char *k;        /* the key in the store (canonical), k_len bytes */
	size_t k_len;
	kv_extra *x;    /* NULL for index keys and markers */
} kv_item;

/* A skipped element, reported after its batch. */
typedef struct kv_skip {
	uint64_t element;
	char *key;
	size_t klen;
	int reason;
	char detail[DETAIL_MAX];
} kv_skip;

/* Counts of one write transaction (reset when it runs again). */
typedef struct kv_txn_stats {
	uint64_t legacy_arrays, legacy_merged, entries, index_keys, markers;
	uint64_t quarantine_records, quarantined, unchanged, ips_dropped;
	uint64_t trimmed, trim_deleted; /* ef_import_stats' */
} kv_txn_stats;

typedef struct imp_ctx {
	ef_store *st;
	ef_import_opts o;
	uint32_t batch;       /* items per write transaction */
	int64_t now;          /* one clock reading for the whole import */
	uint64_t total;       /* elements in the file; 0 if unknown */
	ef_import_stats s;    /* what is done */
	int final;            /* settling: nothing may be deferred any more */
	kv_item *items;       /* this batch */
	size_t n;
	size_t bytes;         /* value bytes in this batch */
	kv_item *pending;     /* deferred index keys and markers */
	size_t npending, cappending;
	kv_skip *skips;       /* this batch's skips */
	size_t nskips, capskips;
	size_t npre;          /* skips found before the transaction */
	key_part *owners;     /* owners whose legacy arrays merged (distinct) */
	size_t nowners;
	char **trimmed;       /* index keys of the entries trimmed at once
			       * (FEED_TRIMMED), so that their index keys and
			       * markers count as trimmed too; sorted when
			       * settling */
	size_t ntrimmed, captrimmed;
	size_t ntrimmed_done; /* of them, from committed transactions */
	/* per transaction */
	kv_txn_stats b;
	size_t *merged;       /* items that merged into a legacy array */
	size_t nmerged;
	int changed;          /* something was written */
	legacy_array cache;   /* legacy array of cache_owner, for markers */
	key_part cache_owner;
	int cache_valid;
} imp_ctx;

static void *dup_bytes(const void *p, size_t n)
{
	char *d = ef__malloc(n + 1);

	if (d) {
		if (n)
			memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

static void item_free(kv_item *it)
{
	free(it->key);
	free(it->val);
	free(it->k);
	if (it->x) {
		fin_item_free(&it->x->fin);
		legacy_free(&it->x->reasons);
		free(it->x->lkey);
		free(it->x);
	}
	memset(it, 0, sizeof(*it));
}

/*
 * Room for one more than @n elements of @size in @arr (capacity *cap,
 * doubled from @first when full): @arr, or the array that replaces it, or
 * NULL (out of memory, in the error slot; @arr is kept).
 */
static void *grow(imp_ctx *c, void *arr, size_t n, size_t *cap, size_t size,
		  size_t first)
{
	size_t want = *cap ? *cap * 2 : first;
	void *m;

	if (n < *cap)
		return arr;
	/* catch size_t overflow */
	if (want < *cap || want > SIZE_MAX / size ||
	    !(m = ef__realloc(arr, want * size))) {
		ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
		return NULL;
	}
	*cap = want;
	return m;
}

static int skip_add(imp_ctx *c, const kv_item *it, int reason,
		    const char *fmt, va_list ap)
{
	kv_skip *s = grow(c, c->skips, c->nskips, &c->capskips, sizeof(*s), 64);

	if (!s)
		return EF_ENOMEM;
	c->skips = s;
	s = &c->skips[c->nskips];
	s->key = dup_bytes(it->key, it->klen);
	if (!s->key)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	/* a key is shown to whoever reads the report: not its addresses */
	ipscan_mask(s->key, it->klen);
	s->element = it->index;
	s->klen = it->klen;
	s->reason = reason;
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	c->nskips++;
	return EF_OK;
}

/*
 * Skip @it for @reason. Found before the transaction (@in_txn 0), it is
 * kept for the batch's report and KV_SKIPPED is returned; found inside
 * (@in_txn 1), it is forgotten if the transaction runs again, and EF_OK
 * lets the transaction go on. EF_ENOMEM either way.
 */
static int skip(imp_ctx *c, int in_txn, const kv_item *it, int reason,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int skip(imp_ctx *c, int in_txn, const kv_item *it, int reason,
		const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = skip_add(c, it, reason, fmt, ap);
	va_end(ap);
	if (rc != EF_OK || in_txn)
		return rc;
	c->npre = c->nskips;
	return KV_SKIPPED;
}

#define skip_now(c, ...) skip(c, 0, __VA_ARGS__)
#define skip_txn(c, ...) skip(c, 1, __VA_ARGS__)

static int set_store_key(imp_ctx *c, kv_item *it, const key_buf *k)
{
	it->k = dup_bytes(k->s, k->len);
	it->k_len = k->len;
	return it->k ? EF_OK : ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
}

static int extra_new(imp_ctx *c, kv_item *it)
{
	it->x = ef__calloc(1, sizeof(*it->x));
	return it->x ? EF_OK : ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
}

/* The owner that key component @ow names (key_owner_from_key: only the
 * spelling edgefeed writes, so no two keys of a file merge into one
 * owner's feed); otherwise @it is skipped as badKey. */
static int key_owner_or_skip(imp_ctx *c, kv_item *it, key_view ow,
			     key_part *out)
{
	if (key_owner_from_key(c->st->err_id, ow.p, ow.len, out) == EF_OK)
		return EF_OK;
	return skip_now(c, it, EF_IMPORT_SKIP_BAD_KEY, "%s", ef_errmsg(c->st));
}

json_t *kv_legacy_load(const void *data, size_t len)
{
	if (len > LEGACY_MAX_BYTES)
		return NULL;
	/* the flags of legacy_parse, so an element reads as the feed reads it */
	return json_loadb(data, len, 0, NULL);
}

/* Replace a legacy value (or quarantined bytes, @owner NULL) by its form
 * without IPs past retention, if it had any: they never enter the store.
 * What is not JSON is kept as it is (migrate quarantines it). */
static int scrub_value(imp_ctx *c, const key_part *owner, kv_item *it)
{
	json_t *j = kv_legacy_load(it->val, it->vlen);
	uint64_t n = 0;
	char *text;
	int rc;

	if (!j)
		return EF_OK;
	rc = kv_scrub_ips(c->st, owner, j, c->now, &n);
	if (rc == EF_OK && n > 0) {
		text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
					     JSON_ENCODE_ANY);
		if (text) {
			free(it->val);
			it->val = (uint8_t *)text;
			it->vlen = strlen(text);
			c->s.ips_dropped += n;
		} else {
			rc = EF_ENOMEM;
		}
	}
	json_decref(j);
	return rc == EF_OK ? EF_OK
			   : ef__err(c->st->err_id, rc, "out of memory");
}

static int legacy_prepare(imp_ctx *c, kv_item *it)
{
	const size_t plen = strlen(KEY_P_LEGACY);
	key_view ow = {it->key + plen, it->klen - plen};
	key_buf k;
	int rc;

	it->kind = KIND_LEGACY;
	if ((rc = extra_new(c, it)) != EF_OK)
		return rc;
	/* the old worker's keys count only where they are spelled as
	 * edgefeed spells them: another spelling could name another's feed */
	if ((rc = key_owner_or_skip(c, it, ow, &it->x->owner)) != EF_OK)
		return rc;
	key_legacy(&k, &it->x->owner);
	rc = set_store_key(c, it, &k);
	return rc == EF_OK ? scrub_value(c, &it->x->owner, it) : rc;
}

/* The IP an entry brings: "metadata": {"ip"}, else a version-1 record's
 * own (plaintext); none once past retention. *ip points into @buf or @meta. */
static int entry_ip(imp_ctx *c, kv_item *it, json_t *meta, key_view ow,
		    key_view rv, const rec_entry *r, char *buf, size_t cap,
		    const char **ip)
{
	json_t *j = json_object_get(meta, "ip");
	int rc;

	*ip = NULL;
	if (j && !json_is_null(j)) {
		if (!json_is_string(j))
			return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
					"metadata.ip is not a string");
		*ip = json_string_value(j);
	} else {
		rc = ip_reveal_entry(c->st, ow, rv, r, c->now, buf, cap);
		if (rc == EF_OK)
			*ip = buf;
		else if (rc != EF_ENOTFOUND)
			return ef__err(c->st->err_id, rc, "out of memory");
	}
	if (*ip && !feed_ip_visible(c->st, r->created_ms, c->now)) {
		c->s.ips_dropped++;
		*ip = NULL;
	}
	return EF_OK;
}

/* Check the record against its key, then encode it as finalize does. */
static int entry_encode(imp_ctx *c, kv_item *it, json_t *meta, key_view ow,
			key_view rv, const rec_entry *r)
{
	char owner[EF_OWNER_KEY_MAX + 1], ipbuf[64], *rid, *payload = NULL;
	ef_receive in = {0};
	key_part rp;
	int rc;

	if (key_reservation_n(c->st->err_id, "reservation id", r->rid,
			      r->rid_len, &rp) != EF_OK ||
	    rp.len != rv.len || memcmp(rp.s, rv.p, rv.len) != 0)
		return skip_now(c, it, EF_IMPORT_SKIP_MISMATCH,
				"the record's reservation id is not the key's");
	/* ef_receive takes C strings; a NUL would cut them short */
	if (r->has_payload && memchr(r->payload, '\0', r->payload_len))
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"the record's payload holds a NUL byte");
	rc = entry_ip(c, it, meta, ow, rv, r, ipbuf, sizeof(ipbuf), &in.ip);
	if (rc != EF_OK)
		return rc;
	key_unescape(ow, owner, sizeof(owner)); /* valid: key_split_entry */
	rid = dup_bytes(r->rid, r->rid_len);
	if (r->has_payload)
		payload = dup_bytes(r->payload, r->payload_len);
	if (!rid || (r->has_payload && !payload)) {
		free(rid);
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	}
	in.owner = owner;
	in.reservation_id = rid;
	in.created_ms = r->created_ms;
	in.payload_json = payload;
	rc = fin_prepare(c->st, &in, c->now, &it->x->fin);
	free(rid);
	free(payload);
	if (rc == EF_OK) /* imported payloads obey the rule of legacy data */
		rc = fin_seal_payload(c->st, &it->x->fin, c->now);
	if (rc == EF_EINVAL)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE, "%s",
				ef_errmsg(c->st));
	return rc;
}

static int entry_prepare(imp_ctx *c, kv_item *it, json_t *meta)
{
	key_view ow, so, rv;
	int64_t created;
	rec_entry r;
	key_buf k;
	int rc;

	it->kind = KIND_ENTRY;
	if ((rc = extra_new(c, it)) != EF_OK)
		return rc;
	if (key_split_entry(it->key, it->klen, &ow, &so, &rv) != EF_OK)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_KEY,
				"not recentReceive:<owner>:<13-digit "
				"createdSort>:<reservationId> with ':', '%%' "
				"and ' ' escaped as %%XX");
	if ((rc = key_owner_or_skip(c, it, ow, &it->x->owner)) != EF_OK)
		return rc;
	key_created_from_sort(so.p, so.len, &created);
	rc = rec_decode(it->val, it->vlen, &r);
	if (rc != EF_OK)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"not an entry record (%s)", ef_strerror(rc));
	if (r.created_ms != created)
		return skip_now(c, it, EF_IMPORT_SKIP_MISMATCH,
				"the record was created at %lld ms, its key "
				"says %lld", (long long)r.created_ms,
				(long long)created);
	/* 0 reads as "now" in ef_receive; no entry is from 1970 */
	if (created == 0)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"the record's created_ms is 0");
	rc = entry_encode(c, it, meta, ow, rv, &r);
	if (rc != EF_OK)
		return rc;
	key_entry(&k, &it->x->fin.owner, it->x->fin.sort, &it->x->fin.rid);
	key_index(&it->x->ik, &it->x->fin.owner, &it->x->fin.rid);
	return set_store_key(c, it, &k);
}

/* Index keys and unread markers: "<prefix><owner>:<reservationId>". */
static int pair_prepare(imp_ctx *c, kv_item *it, const char *prefix)
{
	key_view ow, rv;
	key_part owner, rid;
	key_buf k;
	int64_t ms;
	int rc;

	it->kind = prefix[0] == 'u' ? KIND_MARKER : KIND_INDEX;
	if (key_split_pair(it->key, it->klen, prefix, &ow, &rv) != EF_OK)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_KEY,
				"not %s<owner>:<reservationId> with ':', '%%' "
				"and ' ' escaped as %%XX", prefix);
	if ((rc = key_owner_or_skip(c, it, ow, &owner)) != EF_OK)
		return rc;
	memcpy(rid.s, rv.p, rv.len); /* valid and short: key_split_pair */
	rid.s[rv.len] = '\0';
	rid.len = rv.len;
	if (it->kind == KIND_INDEX) {
		if (key_created_from_sort((const char *)it->val, it->vlen,
					  &ms) != EF_OK)
			return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
					"an index key holds the 13-digit "
					"createdSort of its entry");
		key_index(&k, &owner, &rid);
	} else {
		if (it->vlen > MARKER_MAX)
			return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
					"an unread marker's value is at most "
					"%d bytes", MARKER_MAX);
		key_unread(&k, &owner, &rid);
	}
	return set_store_key(c, it, &k);
}

static int hash_valid(key_view h)
{
	if (h.len != 32)
		return 0;
	for (size_t i = 0; i < h.len; i++)
		if (!((h.p[i] >= '0' && h.p[i] <= '9') ||
		      (h.p[i] >= 'a' && h.p[i] <= 'f')))
			return 0;
	return 1;
}

/* A quarantine record's bytes (rawBase64), legacyKey and reasons. */
static int quarantine_parts(imp_ctx *c, kv_item *it, json_t *j)
{
	json_t *raw = json_object_get(j, "rawBase64"), *lk, *r, *q;
	const char *b64 = json_string_value(raw);
	size_t n = b64 ? json_string_length(raw) : 0, len, i;
	uint8_t *bytes;
	int rc = EF_OK;

	if (!json_is_integer(json_object_get(j, "version")) ||
	    json_integer_value(json_object_get(j, "version")) !=
		    QUARANTINE_FILE_VERSION || !b64)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"not a quarantine record of version %d with "
				"rawBase64", QUARANTINE_FILE_VERSION);
	bytes = ef__malloc(n / 4 * 3 + 3);
	if (!bytes)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	if (sodium_base642bin(bytes, n / 4 * 3 + 3, b64, n, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bytes);
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"rawBase64 is not base64");
	}
	free(it->val);
	it->val = bytes;
	it->vlen = len;
	if ((rc = scrub_value(c, NULL, it)) != EF_OK)
		return rc;
	/* its bytes may not live longer for having moved */
	q = json_object_get(j, "quarantinedMs");
	it->x->seal_by = json_is_integer(q) && json_integer_value(q) > 0
				 ? json_integer_value(q)
				 : INT64_MAX;
	lk = json_object_get(j, "legacyKey");
	it->x->lkey = json_is_string(lk)
			      ? dup_bytes(json_string_value(lk),
					  json_string_length(lk))
			      : dup_bytes(it->key, it->klen);
	it->x->lklen = json_is_string(lk) ? json_string_length(lk) : it->klen;
	json_array_foreach(json_object_get(j, "reasons"), i, r) {
		json_t *ix = json_object_get(r, "index");
		const char *why = json_string_value(json_object_get(r, "reason"));
		/* an older version's reasons could quote the input */
		if (why && ipscan_text(why, strlen(why)))
			why = "(withheld: it quoted an IP address)";
		rc = legacy_issue_add(&it->x->reasons,
				      json_is_integer(ix)
					      ? (long)json_integer_value(ix)
					      : -1,
				      json_is_true(json_object_get(r, "migrated")),
				      "%s", why ? why : "(no reason given)");
		if (rc != EF_OK)
			break;
	}
	if (!it->x->lkey || rc != EF_OK)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	return EF_OK;
}

static int quarantine_prepare(imp_ctx *c, kv_item *it)
{
	key_view ow, hv;
	key_buf k;
	json_t *j;
	int rc;

	it->kind = KIND_QUARANTINE;
	if ((rc = extra_new(c, it)) != EF_OK)
		return rc;
	if (key_split_pair(it->key, it->klen, KEY_P_QUARANTINE, &ow, &hv) !=
		    EF_OK ||
	    !hash_valid(hv))
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_KEY,
				"not quarantine:<owner>:<32 hex digits>");
	it->x->has_owner = !(ow.len == 1 && ow.p[0] == '-');
	if (it->x->has_owner &&
	    (rc = key_owner_or_skip(c, it, ow, &it->x->owner)) != EF_OK)
		return rc;
	/* the key as the store that quarantined it spelled it: found there,
	 * the record is home already (its bytes may have lost IPs since) */
	key_pair_views(&k, KEY_P_QUARANTINE, ow, hv);
	if ((rc = set_store_key(c, it, &k)) != EF_OK)
		return rc;
	j = json_loadb((const char *)it->val, it->vlen, JSON_REJECT_DUPLICATES,
		       NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_VALUE,
				"a quarantine record is a JSON object");
	}
	rc = quarantine_parts(c, it, j);
	json_decref(j);
	return rc;
}

static int has_prefix(const kv_item *it, const char *p)
{
	size_t n = strlen(p);
	return it->klen >= n && memcmp(it->key, p, n) == 0;
}

static int item_classify(imp_ctx *c, kv_item *it, json_t *meta)
{
	if (has_prefix(it, KEY_P_LEGACY))
		return legacy_prepare(c, it);
	if (has_prefix(it, KEY_P_ENTRY))
		return entry_prepare(c, it, meta);
	if (has_prefix(it, KEY_P_INDEX))
		return pair_prepare(c, it, KEY_P_INDEX);
	if (has_prefix(it, KEY_P_UNREAD))
		return pair_prepare(c, it, KEY_P_UNREAD);
	if (has_prefix(it, KEY_P_QUARANTINE))
		return quarantine_prepare(c, it);
	if (has_prefix(it, KEY_P_META))
		return skip_now(c, it, EF_IMPORT_SKIP_UNKNOWN_PREFIX,
				"store metadata (meta:) is not imported");
	return skip_now(c, it, EF_IMPORT_SKIP_UNKNOWN_PREFIX,
			"not a key of the feed (recentReceives:, "
			"recentReceive:, receiveIndex:, unread:, "
			"quarantine:)");
}

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* The value's bytes: the string's, or what its base64 decodes to. */
static int value_decode(imp_ctx *c, kv_item *it, json_t *val, json_t *b64)
{
	const char *s = json_string_value(val);
	size_t n = json_string_length(val), cap = n / 4 * 3 + 3;

	if (!json_is_true(b64)) {
		it->val = dup_bytes(s, n);
		it->vlen = n;
		return it->val ? EF_OK
			       : ef__err(c->st->err_id, EF_ENOMEM,
					 "out of memory");
	}
	it->val = ef__malloc(cap);
	if (!it->val)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	/* line breaks are tolerated: some encoders wrap base64 */
	if (sodium_base642bin(it->val, cap, s, n, "\r\n", &it->vlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_BASE64,
				"the value is not base64 (standard alphabet, "
				"padded)");
	return EF_OK;
}

/* Element @index into @it: EF_OK, KV_SKIPPED (reported), or an error. */
static int item_make(imp_ctx *c, json_t *el, uint64_t index, kv_item *it)
{
	json_t *key = json_object_get(el, "key");
	json_t *val = json_object_get(el, "value");
	json_t *b64 = json_object_get(el, "base64");
	int rc;

	memset(it, 0, sizeof(*it));
	it->index = index;
	it->klen = json_string_length(key);
	it->key = dup_bytes(json_string_value(key), it->klen);
	if (!it->key)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	if (!json_is_string(val))
		return skip_now(c, it, EF_IMPORT_SKIP_NOT_STRING,
				"\"value\" is %s, not a string",
				json_kind(val));
	if (b64 && !json_is_boolean(b64))
		return skip_now(c, it, EF_IMPORT_SKIP_BAD_BASE64,
				"\"base64\" is %s, not true or false",
				json_kind(b64));
	rc = value_decode(c, it, val, b64);
	return rc == EF_OK ? item_classify(c, it, json_object_get(el, "metadata"))
			   : rc;
}

/* ---- legacy elements: IPs past retention ------------------------------- */

/* The reservation id the feed gives @el (which has none): legacy_parse's
 * own derivation, on an array of that one element. *id is NULL when the
 * element does not convert (it is quarantined, so its id shows nowhere). */
static int elem_legacy_id(ef_store *st, const key_part *owner, json_t *el,
			  int64_t now, json_t **id)
{
	char raw[EF_RESERVATION_KEY_MAX + 1], *text;
	json_t *one = json_array();
	legacy_array a;
	int rc;

	*id = NULL;
	if (!one || json_array_append(one, el) != 0) {
		json_decref(one);
		return EF_ENOMEM;
	}
	text = json_dumps(one, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(one);
	if (!text)
		return EF_ENOMEM;
	rc = legacy_parse(st, owner, text, strlen(text), now, 0, &a);
	free(text);
	if (rc == EF_OK && a.n == 1) {
		key_view v = {a.elems[0].it.rid.s, a.elems[0].it.rid.len};
		if (key_unescape(v, raw, sizeof(raw)) >= 0 &&
		    !(*id = json_string(raw)))
			rc = EF_ENOMEM;
	}
	legacy_free(&a);
	return rc;
}

/* Drop the IP addresses of @el, at any depth (ipscan.h), and its "ip"
 * whatever it holds, unless its createdAt shows it within retention. */
static int scrub_elem(ef_store *st, const key_part *owner, json_t *el,
		      int64_t now, uint64_t *dropped)
{
	json_t *ip = json_object_get(el, "ip"), *rid, *id;
	int has_ip = ip && !json_is_null(ip);
	int64_t created;
	long n;
	int rc;

	if (!has_ip && !ipscan_json(el))
		return EF_OK;
	created = legacy_elem_created(el);
	if (created >= 0 && feed_ip_visible(st, created, now))
		return EF_OK;
	rid = json_object_get(el, "reservationId");
	if (owner && json_is_object(el) && (!rid || json_is_null(rid))) {
		/* its id is a hash of all of it, ip included: keep it */
		rc = elem_legacy_id(st, owner, el, now, &id);
		if (rc != EF_OK)
			return rc;
		if (id && json_object_set_new(el, "reservationId", id) != 0)
			return EF_ENOMEM;
	}
	if (has_ip && !ipscan_json(ip)) {
		json_object_del(el, "ip");
		(*dropped)++;
	}
	n = ipscan_redact(el);
	if (n < 0)
		return EF_ENOMEM;
	*dropped += (uint64_t)n;
	return EF_OK;
}

int kv_scrub_ips(ef_store *st, const key_part *owner, json_t *v, int64_t now,
		 uint64_t *dropped)
{
	json_t *el;
	size_t i;
	int rc = EF_OK;

	if (!json_is_array(v))
		return scrub_elem(st, owner, v, now, dropped);
	json_array_foreach(v, i, el) {
		if (json_is_string(el) && ipscan_json(el)) {
			/* an element of unknown age: its place stays */
			if (json_array_set_new(v, i, json_null()) != 0)
				return EF_ENOMEM;
			(*dropped)++;
			continue;
		}
		rc = scrub_elem(st, owner, el, now, dropped);
		if (rc != EF_OK)
			break;
	}
	return rc;
}

/* ---- applying a batch in one write transaction -------------------------- */

static void cache_drop(imp_ctx *c)
{
	legacy_free(&c->cache);
	c->cache_valid = 0;
}

static void view_part(key_view v, key_part *p)
{
	memcpy(p->s, v.p, v.len); /* v is a valid component: it fits */
	p->s[v.len] = '\0';
	p->len = v.len;
}

/* Is @rid in @owner's legacy array? 1, 0, or < 0. The markers of one
 * owner come together, so the last owner's parsed array is kept. */
static int legacy_cached_has(imp_ctx *c, store_txn *t, const key_part *owner,
			     const key_part *rid)
{
	int rc;

	if (!c->cache_valid || c->cache_owner.len != owner->len ||
	    memcmp(c->cache_owner.s, owner->s, owner->len) != 0) {
		cache_drop(c);
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
	view_part(ow, &owner);
	view_part(rv, &rid);
	return legacy_cached_has(c, t, &owner, &rid);
}

static int by_str(const void *a, const void *b);

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
		       by_str) != NULL;
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
	char **n = grow(c, c->trimmed, c->ntrimmed, &c->captrimmed,
			sizeof(*n), 64), *d;

	if (!n)
		return EF_ENOMEM;
	c->trimmed = n;
	d = dup_bytes(ik->s, ik->len);
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
	cache_drop(c); /* it may hold this owner's array as it was */
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

static int by_str(const void *a, const void *b)
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
		qsort(seen, have, sizeof(*seen), by_str);
	json_array_foreach(from, i, el) {
		if (rc != EF_OK || !(d = json_dumps(el, flags))) {
			rc = EF_ENOMEM;
			break;
		}
		if (!bsearch(&d, seen, have, sizeof(*seen), by_str)) {
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
	cache_drop(c);
}

static int batch_txn(store_txn *t, void *p)
{
	imp_ctx *c = p;
	int rc = EF_OK;

	txn_reset(c);
	for (size_t i = 0; rc == EF_OK && i < c->n; i++)
		rc = item_apply(c, t, i);
	cache_drop(c);
	if (rc != EF_OK)
		return rc;
	return c->changed ? EF_OK : FEED_NOCHANGE;
}

/* ---- batches ------------------------------------------------------------ */

static int owner_note(imp_ctx *c, const key_part *o)
{
	key_part *n;

	for (size_t i = 0; i < c->nowners; i++)
		if (c->owners[i].len == o->len &&
		    memcmp(c->owners[i].s, o->s, o->len) == 0)
			return EF_OK;
	n = ef__realloc(c->owners, (c->nowners + 1) * sizeof(*n));
	if (!n)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	c->owners = n;
	c->owners[c->nowners++] = *o;
	c->s.merged_owners = c->nowners;
	return EF_OK;
}

static int pending_add(imp_ctx *c, kv_item *it)
{
	kv_item *n = grow(c, c->pending, c->npending, &c->cappending,
			  sizeof(*n), 256);

	if (!n)
		return EF_ENOMEM;
	c->pending = n;
	c->pending[c->npending++] = *it; /* it moves: the batch forgets it */
	memset(it, 0, sizeof(*it));
	return EF_OK;
}

/* The batch's transaction committed (or had nothing to write). */
static int batch_commit(imp_ctx *c)
{
	const kv_txn_stats *b = &c->b;
	int rc = EF_OK;

	c->s.legacy_arrays += b->legacy_arrays;
	c->s.legacy_merged += b->legacy_merged;
	c->s.entries += b->entries;
	c->s.index_keys += b->index_keys;
	c->s.markers += b->markers;
	c->s.quarantine_records += b->quarantine_records;
	c->s.quarantined += b->quarantined;
	c->s.unchanged += b->unchanged;
	c->s.ips_dropped += b->ips_dropped;
	c->s.trimmed += b->trimmed;
	c->s.trim_deleted += b->trim_deleted;
	c->ntrimmed_done = c->ntrimmed;
	for (size_t i = 0; rc == EF_OK && i < c->nmerged; i++)
		rc = owner_note(c, &c->items[c->merged[i]].x->owner);
	for (size_t i = 0; rc == EF_OK && i < c->n; i++)
		if (c->items[i].deferred)
			rc = pending_add(c, &c->items[i]);
	return rc;
}

static int by_element(const void *x, const void *y)
{
	const kv_skip *a = x, *b = y;
	return (a->element > b->element) - (a->element < b->element);
}

/* Report the batch's skips in file order (with @report), and forget them. */
static void skips_done(imp_ctx *c, int report)
{
	if (report && c->nskips) /* qsort wants a base even for 0 */
		qsort(c->skips, c->nskips, sizeof(*c->skips), by_element);
	for (size_t i = 0; i < c->nskips; i++) {
		kv_skip *s = &c->skips[i];
		if (report) {
			c->s.skipped++;
			c->s.skipped_by_reason[s->reason]++;
			if (c->o.on_skip)
				c->o.on_skip(s->element, s->key, s->klen,
					     s->reason, s->detail,
					     c->o.skip_ctx);
		}
		free(s->key);
	}
	c->nskips = c->npre = 0;
}

static void batch_clear(imp_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		item_free(&c->items[i]);
	c->n = 0;
	c->bytes = 0;
}

/* Write the batch in one transaction, then report it. */
static int flush(imp_ctx *c)
{
	uint64_t done = c->s.elements;
	int rc = EF_OK;

	if (c->n > 0) {
		rc = store_write(c->st->env, batch_txn, c);
		if (rc == EF_OK)
			c->s.batches++;
		else if (rc == FEED_NOCHANGE)
			rc = EF_OK;
		if (rc == EF_OK)
			rc = batch_commit(c);
	}
	skips_done(c, rc == EF_OK);
	batch_clear(c);
	if (rc == EF_OK && c->o.progress)
		c->o.progress(done, c->total > done ? c->total : done,
			      c->o.progress_ctx);
	return rc;
}

static int import_elem(void *p, json_t *el, uint64_t index)
{
	imp_ctx *c = p;
	kv_item *it = &c->items[c->n];
	int rc;

	c->s.elements++;
	rc = item_make(c, el, index, it);
	if (rc != EF_OK) {
		item_free(it);
		if (rc != KV_SKIPPED)
			return rc;
	} else {
		c->n++;
		c->bytes += it->vlen;
	}
	if (c->n == c->batch || c->bytes >= BATCH_BYTES ||
	    c->nskips >= c->batch)
		return flush(c);
	return EF_OK;
}

/* The index keys and markers whose entry was not in the store when they
 * came: every entry of the file is in now, so each is taken or skipped. */
static int settle(imp_ctx *c)
{
	kv_item *all = c->pending;
	size_t n = c->npending, i = 0, m;
	int rc = EF_OK;

	c->pending = NULL;
	c->npending = c->cappending = 0;
	c->final = 1;
	if (c->ntrimmed) /* for entry_trimmed's bsearch */
		qsort(c->trimmed, c->ntrimmed, sizeof(*c->trimmed), by_str);
	while (rc == EF_OK && i < n) {
		m = n - i < c->batch ? n - i : c->batch;
		memcpy(c->items, all + i, m * sizeof(*all));
		c->n = m;
		i += m;
		rc = flush(c);
	}
	for (; i < n; i++)
		item_free(&all[i]);
	free(all);
	return rc;
}

static int imp_init(imp_ctx *c, ef_store *st, const ef_import_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	if (o)
		c->o = *o;
	c->batch = c->o.batch ? c->o.batch : BATCH_DEFAULT;
	if (c->batch > BATCH_MAX)
		return ef__err(st->err_id, EF_EINVAL,
			       "batch: %u is outside 1..%d", c->o.batch,
			       BATCH_MAX);
	c->items = ef__calloc(c->batch, sizeof(*c->items));
	c->merged = ef__calloc(c->batch, sizeof(*c->merged));
	if (!c->items || !c->merged)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	c->now = feed_now(st);
	return EF_OK;
}

static void imp_free(imp_ctx *c)
{
	if (c->items)
		batch_clear(c);
	for (size_t i = 0; i < c->npending; i++)
		item_free(&c->pending[i]);
	skips_done(c, 0);
	cache_drop(c);
	free(c->pending);
	free(c->items);
	free(c->merged);
	free(c->skips);
	free(c->owners);
	for (size_t i = 0; i < c->ntrimmed; i++)
		free(c->trimmed[i]);
	free(c->trimmed);
}

static int import_run(imp_ctx *c, kv_reader *r)
{
	uint64_t n;
	int rc;

	/* the structure of the whole file first (kv_open made any input one
	 * that can be read twice): a malformed file writes nothing, and
	 * progress knows the total */
	rc = kv_scan(r, NULL, NULL, &n);
	if (rc == EF_OK)
		rc = kv_rewind(r);
	if (rc != EF_OK)
		return rc;
	c->total = n;
	rc = kv_scan(r, import_elem, c, &n);
	if (rc == EF_OK)
		rc = flush(c);
	if (rc == EF_OK)
		rc = settle(c);
	return rc;
}

int ef_import_kvbulk(ef_store *st, const char *path,
		     const ef_import_opts *opts, ef_import_stats *stats)
{
	ef_maint *lk = NULL;
	kv_reader r = {0};
	imp_ctx c;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (!path)
		return ef__err(st->err_id, EF_EINVAL, "path: missing");
	rc = imp_init(&c, st, opts);
	if (rc == EF_OK)
		rc = kv_open(&r, st->err_id, path, st->dir);
	if (rc == EF_OK)
		rc = ef_maint_lock(st, "edgefeed import", c.o.lock_flags,
				   c.o.on_wait, c.o.wait_ctx, &lk);
	if (rc == EF_OK)
		rc = import_run(&c, &r);
	ef_maint_unlock(lk);
	kv_close(&r);
	if (stats)
		*stats = c.s;
	imp_free(&c);
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

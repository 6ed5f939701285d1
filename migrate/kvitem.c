/*
 * kvitem.c - an element of a Workers KV bulk file into an item, ready to
 * apply: its key validated (its owner taken only in the spelling edgefeed
 * writes: key_owner_from_key), its value decoded and checked, an entry's
 * record encoded by the finalize logic (outside any transaction, since
 * sealing an IP may write the keyring); and the IPs past retention that
 * legacy values lose on the way in (kv_scrub_ips).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/ipscan.h"
#include "migrate/kvbulk-int.h"
#include "migrate/migrate.h"
#include "store/alloc.h"
#include "store/error.h"

void *kv_dup_bytes(const void *p, size_t n)
{
	char *d = ef__malloc(n + 1);

	if (d) {
		if (n)
			memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

void kv_item_free(kv_item *it)
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

static int set_store_key(imp_ctx *c, kv_item *it, const key_buf *k)
{
	it->k = kv_dup_bytes(k->s, k->len);
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
	rid = kv_dup_bytes(r->rid, r->rid_len);
	if (r->has_payload)
		payload = kv_dup_bytes(r->payload, r->payload_len);
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
	if (rc == EF_OK) /* its marker is an element of its own */
		rec_set_unread(it->x->fin.rec, it->x->fin.rec_len,
			       REC_UNREAD_UNKNOWN);
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
			      ? kv_dup_bytes(json_string_value(lk),
					     json_string_length(lk))
			      : kv_dup_bytes(it->key, it->klen);
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
		it->val = kv_dup_bytes(s, n);
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
int kv_item_make(imp_ctx *c, json_t *el, uint64_t index, kv_item *it)
{
	json_t *key = json_object_get(el, "key");
	json_t *val = json_object_get(el, "value");
	json_t *b64 = json_object_get(el, "base64");
	int rc;

	memset(it, 0, sizeof(*it));
	it->index = index;
	it->klen = json_string_length(key);
	it->key = kv_dup_bytes(json_string_value(key), it->klen);
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

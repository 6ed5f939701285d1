/*
 * legacy.c - parse and convert a legacy JSON array (see legacy.h).
 *
 * Hostile input is expected: jansson parses with a length bound, values are
 * checked for depth and size, and whatever cannot be converted becomes an
 * issue with its reason; nothing here fails on bad data.
 */
#include "store/alloc.h"
#include "feed/legacy.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/jsonerr.h"
#include "store/error.h"

int legacy_issue_add(legacy_array *a, long index, int kept, const char *fmt,
		     ...)
{
	legacy_issue *n = ef__realloc(a->issues, (a->nissues + 1) * sizeof(*n));
	va_list ap;

	if (!n)
		return EF_ENOMEM;
	a->issues = n;
	n += a->nissues++;
	n->index = index;
	n->kept = kept;
	va_start(ap, fmt);
	vsnprintf(n->reason, sizeof(n->reason), fmt, ap);
	va_end(ap);
	if (!kept)
		a->quarantined++;
	return EF_OK;
}

static int depth_of(json_t *v, int limit)
{
	int d = 0, c;
	const char *k;
	json_t *x;
	size_t i;

	if (limit <= 0)
		return 1;
	if (json_is_object(v)) {
		json_object_foreach(v, k, x) {
			c = depth_of(x, limit - 1);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x) {
			c = depth_of(x, limit - 1);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	return 0;
}

/* "legacy-" + hex BLAKE2b of the element's canonical JSON (sorted, compact) */
static int legacy_id(json_t *el, char *out, size_t cap)
{
	unsigned char h[crypto_generichash_BYTES];
	char hex[2 * crypto_generichash_BYTES + 1];
	char *canon = json_dumps(el, JSON_COMPACT | JSON_SORT_KEYS |
					     JSON_ENCODE_ANY);

	if (!canon)
		return EF_ENOMEM;
	crypto_generichash(h, sizeof(h), (const unsigned char *)canon,
			   strlen(canon), NULL, 0);
	free(canon);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(out, cap, "legacy-%s", hex);
	return EF_OK;
}

int64_t legacy_elem_created(json_t *el)
{
	json_t *v = json_object_get(el, "createdAt");
	int64_t ms;

	if (json_is_integer(v))
		ms = json_integer_value(v);
	else if (!json_is_string(v) ||
		 ef_time_parse(json_string_value(v), &ms) != EF_OK)
		return -1;
	/* 0 would read as "now" in ef_receive; no upload happened in 1970 */
	return ms > 0 && ms <= EF_CREATED_MAX ? ms : -1;
}

/* The payload: every field but the three the entry carries itself. */
static int payload_of(json_t *el, char **out)
{
	json_t *p = json_object();
	const char *k;
	json_t *v;

	*out = NULL;
	if (!p)
		return EF_ENOMEM;
	json_object_foreach(el, k, v) {
		if (strcmp(k, "reservationId") && strcmp(k, "createdAt") &&
		    strcmp(k, "ip") && json_object_set(p, k, v) != 0) {
			json_decref(p);
			return EF_ENOMEM;
		}
	}
	if (json_object_size(p) > 0) {
		*out = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!*out) {
			json_decref(p);
			return EF_ENOMEM;
		}
	}
	json_decref(p);
	return EF_OK;
}

static int elem_add(legacy_array *a, legacy_elem *e)
{
	legacy_elem *n = ef__realloc(a->elems, (a->n + 1) * sizeof(*n));

	if (!n)
		return EF_ENOMEM;
	a->elems = n;
	a->elems[a->n++] = *e;
	return EF_OK;
}

/* Convert element @i; bad data becomes an issue, only ENOMEM fails. */
static int elem_convert(ef_store *st, const key_part *owner, json_t *el,
			size_t i, int64_t now, unsigned flags, legacy_array *a)
{
	char idbuf[96], owner_raw[EF_OWNER_KEY_MAX + 1], *payload = NULL;
	json_t *jrid, *jip;
	ef_receive r = {0};
	legacy_elem e;
	key_view ov = {owner->s, owner->len};
	int rc;

	if (!json_is_object(el))
		return legacy_issue_add(a, (long)i, 0, "element %zu: not a JSON object",
				 i);
	if (depth_of(el, LEGACY_MAX_DEPTH + 1) > LEGACY_MAX_DEPTH)
		return legacy_issue_add(a, (long)i, 0,
				 "element %zu: nested deeper than %d levels", i,
				 LEGACY_MAX_DEPTH);
	jrid = json_object_get(el, "reservationId");
	if (!jrid || json_is_null(jrid)) {
		if ((rc = legacy_id(el, idbuf, sizeof(idbuf))) != EF_OK)
			return rc;
		r.reservation_id = idbuf;
	} else if (json_is_string(jrid)) {
		r.reservation_id = json_string_value(jrid);
	} else {
		return legacy_issue_add(a, (long)i, 0,
				 "element %zu: reservationId is not a string", i);
	}
	r.created_ms = legacy_elem_created(el);
	if (r.created_ms < 0)
		return legacy_issue_add(a, (long)i, 0,
				 "element %zu: createdAt is missing or not an "
				 "ISO-8601 time or epoch milliseconds", i);
	jip = json_object_get(el, "ip");
	if (json_is_string(jip)) {
		uint8_t bin[16], kind;
		if (ip_parse(st->err_id, "ip", json_string_value(jip), bin,
			     &kind) == EF_OK)
			r.ip = json_string_value(jip);
		else if ((rc = legacy_issue_add(a, (long)i, 1,
					 "element %zu: ip is not an IP address "
					 "(migrated without it)", i)))
			return rc;
	} else if (jip && !json_is_null(jip) &&
		   (rc = legacy_issue_add(a, (long)i, 1,
				   "element %zu: ip is not a string (migrated "
				   "without it)", i))) {
		return rc;
	}
	if ((rc = payload_of(el, &payload)) != EF_OK)
		return rc;
	if (key_unescape(ov, owner_raw, sizeof(owner_raw)) < 0) {
		free(payload);
		return legacy_issue_add(a, (long)i, 0, "owner key is malformed");
	}
	r.owner = owner_raw;
	r.payload_json = payload;
	rc = fin_prepare(st, &r, now, &e.it);
	if ((rc == EF_EIO || rc == EF_EFULL || rc == EF_EVERSION) && r.ip &&
	    !(flags & LEGACY_STRICT)) {
		/* the keyring cannot seal: a read shows the entry without its
		 * IP rather than hiding it (a migration stops instead) */
		fin_item_free(&e.it);
		r.ip = NULL;
		rc = fin_prepare(st, &r, now, &e.it);
	}
	free(payload);
	if (rc == EF_OK) {
		/* addresses deeper in the element obey retention too */
		rc = fin_seal_payload(st, &e.it, now);
		if ((rc == EF_EIO || rc == EF_EFULL || rc == EF_EVERSION) &&
		    !(flags & LEGACY_STRICT))
			rc = EF_OK; /* a read's record stays in memory */
		if (rc != EF_OK)
			fin_item_free(&e.it);
	}
	if (rc == EF_OK) /* its marker, if any, is the old worker's */
		rec_set_unread(e.it.rec, e.it.rec_len, REC_UNREAD_UNKNOWN);
	if (rc == EF_ENOMEM || rc == EF_EIO || rc == EF_EFULL ||
	    rc == EF_EVERSION)
		return rc;
	if (rc != EF_OK) {
		rc = legacy_issue_add(a, (long)i, 0, "element %zu: %s", i,
			       ef__err_get(st->err_id));
		fin_item_free(&e.it);
		return rc;
	}
	e.index = i;
	key_entry(&e.ekey, &e.it.owner, e.it.sort, &e.it.rid);
	rc = elem_add(a, &e);
	if (rc != EF_OK)
		fin_item_free(&e.it);
	return rc;
}

static int by_rid_then_index(const void *x, const void *y)
{
	const legacy_elem *a = x, *b = y;
	int c = strcmp(a->it.rid.s, b->it.rid.s);
	return c ? c : (a->index > b->index) - (a->index < b->index);
}

static int by_key(const void *x, const void *y)
{
	const legacy_elem *a = x, *b = y;
	size_t n = a->ekey.len < b->ekey.len ? a->ekey.len : b->ekey.len;
	int c = memcmp(a->ekey.s, b->ekey.s, n);
	return c ? c : (a->ekey.len > b->ekey.len) - (a->ekey.len < b->ekey.len);
}

/* Keep the first occurrence (in array order) of each reservation. */
static void dedupe(legacy_array *a)
{
	size_t o = 0;

	if (a->n == 0)
		return;
	qsort(a->elems, a->n, sizeof(*a->elems), by_rid_then_index);
	for (size_t i = 0; i < a->n; i++) {
		if (o > 0 && strcmp(a->elems[o - 1].it.rid.s,
				    a->elems[i].it.rid.s) == 0) {
			fin_item_free(&a->elems[i].it);
			a->duplicates++;
			continue;
		}
		a->elems[o++] = a->elems[i];
	}
	a->n = o;
	qsort(a->elems, a->n, sizeof(*a->elems), by_key);
}

int legacy_parse(ef_store *st, const key_part *owner, const void *json,
		 size_t len, int64_t now, unsigned flags, legacy_array *a)
{
	uint64_t oom;
	json_error_t jerr;
	json_t *root, *el;
	size_t i;
	int rc = EF_OK;

	memset(a, 0, sizeof(*a));
	if (len > LEGACY_MAX_BYTES)
		return legacy_issue_add(a, -1, 0, "%zu bytes, over the %zu-byte limit",
				 len, LEGACY_MAX_BYTES);
	oom = ef__oom_count();
	root = json_loadb(json, len, 0, &jerr);
	if (!root && ef__oom_count() != oom)
		return EF_ENOMEM;
	if (!root)
		return legacy_issue_add(a, -1, 0,
				 "invalid JSON at line %d column %d (byte %d): "
				 "%s",
				 jerr.line, jerr.column, jerr.position,
				 jsonerr_what(&jerr));
	if (!json_is_array(root)) {
		json_decref(root);
		return legacy_issue_add(a, -1, 0, "not a JSON array");
	}
	a->total = json_array_size(root);
	json_array_foreach(root, i, el) {
		rc = elem_convert(st, owner, el, i, now, flags, a);
		if (rc != EF_OK)
			break;
	}
	json_decref(root);
	if (rc == EF_OK)
		dedupe(a);
	return rc;
}

void legacy_free(legacy_array *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		fin_item_free(&a->elems[i].it);
	free(a->elems);
	free(a->issues);
	memset(a, 0, sizeof(*a));
}

const legacy_elem *legacy_find(const legacy_array *a, const key_part *rid)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->elems[i].it.rid.len == rid->len &&
		    memcmp(a->elems[i].it.rid.s, rid->s, rid->len) == 0)
			return &a->elems[i];
	return NULL;
}

/* legacy_parse for a read: nothing on error, and its detail set. */
static int legacy_parsed(ef_store *st, const key_part *owner, const void *json,
			 size_t len, int64_t now, legacy_array *a)
{
	int rc = legacy_parse(st, owner, json, len, now, 0, a);

	if (rc != EF_OK) {
		legacy_free(a);
		if (rc == EF_ENOMEM)
			rc = ef__err(st->err_id, rc, "out of memory");
	}
	return rc;
}

int legacy_load(store_txn *t, ef_store *st, const key_part *owner,
		int64_t now, legacy_array *a)
{
	key_buf k;
	store_val v;
	uint8_t *view;
	size_t vlen;
	int rc;

	memset(a, 0, sizeof(*a));
	key_legacy(&k, owner);
	rc = store_get(t, k.s, k.len, &v);
	if (rc != EF_OK)
		return rc;
	if (!legacy_value_sealed(v.data, v.len)) /* plain: read it in place */
		return legacy_parsed(st, owner, v.data, v.len, now, a);
	rc = legacy_value_view(st, &k, v.data, v.len, now, &view, &vlen);
	if (rc == EF_ENOTFOUND || rc == EF_ECORRUPT)
		return EF_ENOTFOUND; /* nothing of it reads (check reports it) */
	if (rc != EF_OK)
		return rc;
	rc = legacy_parsed(st, owner, view, vlen, now, a);
	sodium_memzero(view, vlen);
	free(view);
	return rc;
}

int legacy_has(store_txn *t, ef_store *st, const key_part *owner,
	       const key_part *rid, int64_t now)
{
	legacy_array a;
	int rc = legacy_load(t, st, owner, now, &a);

	if (rc == EF_ENOTFOUND)
		return 0;
	if (rc != EF_OK)
		return rc;
	rc = legacy_find(&a, rid) != NULL;
	legacy_free(&a);
	return rc;
}

/*
 * quarantine.c - legacy data that could not migrate, kept byte for byte
 * while its IPs may be kept, and without its IPs after that.
 *
 * Value (JSON, version 2): {"version":2, "owner", "legacyKey",
 * "quarantinedMs", "bytes", "reasons":[{"index": n|null, "reason",
 * "migrated": bool}], "sealedMs", "sealed", "redacted"}:
 *  - "sealed": base64 of the original value sealed by ipseal_seal under the
 *    window of "sealedMs" (the oldest createdAt of an element that holds an
 *    IP address, else the quarantine time), with the record's key as
 *    associated data:
 *    no byte is lost, whatever it held (invalid JSON, invalid UTF-8), until
 *    retention shreds the window's key; null if already past retention.
 *  - "redacted": the value with every IP address removed at any depth
 *    (ipscan.h; compact JSON text), when it parses as JSON; null otherwise.
 *    It outlives the key. A value that is not JSON keeps its bytes only
 *    while "sealed" opens: nobody can tell which of its bytes are IPs.
 * Version 1 (bulk files, and stores written before sealing) holds the
 * plain value in "rawBase64" instead.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "migrate/kvbulk.h"
#include "migrate/migrate.h"
#include "feed/feed.h"
#include "feed/ipscan.h"
#include "store/error.h"

/* A JSON string of @s, its invalid UTF-8 bytes (a legacy key may hold
 * any) replaced by '?'. */
static json_t *text_json(const char *s, size_t n)
{
	char *tmp = ef__malloc(n + 1);
	size_t bad;
	json_t *j;

	if (!tmp)
		return NULL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	while (!utf8_valid((const unsigned char *)tmp, n, &bad))
		tmp[bad] = '?';
	j = json_stringn(tmp, n);
	free(tmp);
	return j;
}

static json_t *reasons_json(const legacy_array *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < a->nissues; i++) {
		const legacy_issue *is = &a->issues[i];
		json_t *o = json_pack("{s:o, s:o, s:b}", "index",
				      is->index < 0 ? json_null()
						    : json_integer(is->index),
				      "reason",
				      text_json(is->reason, strlen(is->reason)),
				      "migrated", is->kept);
		if (!o || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The window to seal under: the oldest createdAt of an element that holds
 * an IP address at any depth (its IP must go first), else @now. */
static int64_t seal_window(json_t *v, int64_t now)
{
	int64_t oldest = now, c;
	json_t *el;
	size_t i;

	if (json_is_object(v)) {
		c = legacy_elem_created(v);
		return ipscan_json(v) && c >= 0 && c < now ? c : now;
	}
	json_array_foreach(v, i, el) {
		if (!ipscan_json(el))
			continue;
		c = legacy_elem_created(el);
		if (c >= 0 && c < oldest)
			oldest = c;
	}
	return oldest;
}

/* The value without any IP address at any depth (ipscan.h), as compact
 * JSON text; NULL when it is not JSON (or out of memory). */
static char *redact(json_t *v)
{
	if (!v || ipscan_redact(v) < 0)
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER |
				     JSON_ENCODE_ANY);
}

/* "sealed" for the record: base64 of the sealed bytes, or JSON null when
 * they are past retention already. */
static int sealed_json(ef_store *st, const key_buf *k, const void *raw,
		       size_t len, int64_t when, int64_t now, json_t **out)
{
	uint8_t *sealed = ef__malloc(IPSEAL_LEN(len));
	size_t slen;
	char *enc;
	int rc;

	*out = NULL;
	if (!sealed)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	rc = ipseal_seal(st, when, now, k->s, k->len, raw, len, sealed, &slen);
	if (rc == IPSEAL_EXPIRED) {
		free(sealed);
		*out = json_null();
		return EF_OK;
	}
	if (rc != EF_OK) {
		free(sealed);
		return rc;
	}
	enc = kv_base64(sealed, slen);
	free(sealed);
	*out = enc ? json_string(enc) : NULL;
	free(enc);
	return *out ? EF_OK : ef__err(st->err_id, EF_ENOMEM, "out of memory");
}

int quarantine_raw(ef_store *st, const void *qkey, size_t qklen, json_t *rec,
		   int64_t now, uint8_t **raw, size_t *len)
{
	json_t *ver = json_object_get(rec, "version");
	json_t *b = json_object_get(rec,
				    json_integer_value(ver) == 1 ? "rawBase64"
								 : "sealed");
	size_t n = json_string_length(b), cap = n / 4 * 3 + 3, blen;
	uint8_t *bytes;
	int rc;

	*raw = NULL;
	*len = 0;
	if (!json_is_integer(ver))
		return EF_ECORRUPT;
	if (json_is_null(b))
		return EF_ENOTFOUND;
	if (!json_is_string(b))
		return EF_ECORRUPT;
	bytes = ef__malloc(cap);
	if (!bytes)
		return EF_ENOMEM;
	if (sodium_base642bin(bytes, cap, json_string_value(b), n, NULL, &blen,
			      NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(bytes);
		return EF_ECORRUPT;
	}
	if (json_integer_value(ver) == 1) {
		*raw = bytes;
		*len = blen;
		return EF_OK;
	}
	cap = ipseal_plain_len(bytes, blen) + 1;
	*raw = ef__malloc(cap);
	if (!*raw) {
		free(bytes);
		return EF_ENOMEM;
	}
	rc = ipseal_open(st, json_integer_value(json_object_get(rec, "sealedMs")),
			 now, qkey, qklen, bytes, blen, *raw,
			 cap, len);
	free(bytes);
	if (rc != EF_OK) {
		free(*raw);
		*raw = NULL;
		*len = 0;
	}
	return rc;
}

int quarantine_put(store_txn *t, ef_store *st, const key_part *owner,
		   const void *lkey, size_t lklen, const void *raw, size_t len,
		   const legacy_array *a, int64_t now, int64_t seal_by)
{
	unsigned char h[16];
	char hex[33], owner_raw[EF_OWNER_KEY_MAX + 1] = "-", *text, *red;
	key_part qo;
	key_buf k;
	json_t *j, *v, *sealed;
	int64_t when;
	int rc;

	if (owner) {
		key_view v = {owner->s, owner->len};
		if (key_unescape(v, owner_raw, sizeof(owner_raw)) < 0)
			strcpy(owner_raw, "-");
		qo = *owner;
	} else {
		strcpy(qo.s, "-");
		qo.len = 1;
	}
	crypto_generichash(h, sizeof(h), raw, len, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	k.len = (size_t)snprintf(k.s, sizeof(k.s), "%s%s:%s", KEY_P_QUARANTINE,
				 qo.s, hex);
	/* the same bytes quarantined again keep their first record */
	rc = store_get(t, k.s, k.len, NULL);
	if (rc != EF_ENOTFOUND)
		return rc == EF_OK ? EF_OK : rc;
	v = json_loadb(raw, len, JSON_DECODE_ANY, NULL);
	when = seal_window(v, now);
	if (seal_by < when)
		when = seal_by;
	rc = sealed_json(st, &k, raw, len, when, now, &sealed);
	if (rc != EF_OK) {
		json_decref(v);
		return rc;
	}
	red = redact(v);
	json_decref(v);
	j = json_pack("{s:i, s:s, s:o, s:I, s:I, s:o, s:I, s:o, s:o}",
		      "version", QUARANTINE_VERSION, "owner", owner_raw,
		      "legacyKey", text_json(lkey, lklen), "quarantinedMs",
		      (json_int_t)now, "bytes", (json_int_t)len, "reasons",
		      reasons_json(a), "sealedMs", (json_int_t)when, "sealed",
		      sealed, "redacted", red ? json_string(red) : json_null());
	free(red);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return ef__err(st->err_id, EF_ENOMEM,
			       "cannot encode a quarantine record");
	rc = store_put(t, k.s, k.len, text, strlen(text), STORE_NOOVERWRITE);
	free(text);
	return rc;
}

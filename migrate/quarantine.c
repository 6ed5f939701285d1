/*
 * quarantine.c - legacy data that could not migrate, kept byte for byte.
 *
 * Value (JSON, version 1): {"version":1, "owner", "legacyKey",
 * "quarantinedMs", "bytes", "reasons":[{"index": n|null, "reason",
 * "migrated": bool}], "rawBase64"}: rawBase64 is the original value, so no
 * byte is lost whatever it held (invalid JSON, invalid UTF-8, anything).
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/kvbulk.h"
#include "migrate/migrate.h"
#include "store/error.h"

/* A JSON string of @s, its invalid UTF-8 bytes (a reason may quote cut
 * input) replaced by '?'. */
static json_t *text_json(const char *s, size_t n)
{
	char *tmp = malloc(n + 1);
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

int quarantine_put(store_txn *t, ef_store *st, const key_part *owner,
		   const void *lkey, size_t lklen, const void *raw, size_t len,
		   const legacy_array *a, int64_t now)
{
	unsigned char h[16];
	char hex[33], owner_raw[EF_OWNER_KEY_MAX + 1] = "-", *enc, *text;
	key_part qo;
	key_buf k;
	json_t *j;
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
	enc = kv_base64(raw, len);
	if (!enc)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	j = json_pack("{s:i, s:s, s:o, s:I, s:I, s:o, s:s}", "version",
		      QUARANTINE_VERSION, "owner", owner_raw, "legacyKey",
		      text_json(lkey, lklen), "quarantinedMs",
		      (json_int_t)now, "bytes", (json_int_t)len, "reasons",
		      reasons_json(a), "rawBase64", enc);
	free(enc);
	text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return ef__err(st->err_id, EF_ENOMEM,
			       "cannot encode a quarantine record");
	k.len = (size_t)snprintf(k.s, sizeof(k.s), "%s%s:%s", KEY_P_QUARANTINE,
				 qo.s, hex);
	rc = store_put(t, k.s, k.len, text, strlen(text), STORE_NOOVERWRITE);
	free(text);
	return rc == EF_EXISTS ? EF_OK : rc;
}

/*
 * legacyval.c - how a legacy value is kept in the store (see legacy.h).
 *
 * A legacy value that holds no IP address (ipscan.h: at any depth) is kept
 * as it is, plain JSON. Any other value is kept sealed, so that no address
 * reaches LMDB's pages in plaintext (DESIGN.md "IP retention"):
 *
 *   u8[4] magic "\0EFL" (no JSON text starts with a NUL byte)
 *   u8    version 1
 *   u8    kind: 1 JSON (an array or object), 2 opaque (not JSON)
 *   u32   length, then the value with every address removed (compact JSON;
 *         kind 1 only, else 0)
 *   u32   count of seals, then each:
 *         u32 place (element index; 0xffffffff: the whole value)
 *         i64 sealed_ms (the window: the element's createdAt, or the time
 *             of storing when its age cannot be read)
 *         u32 length, then ipseal_seal bytes of the original element (its
 *             compact JSON) or of the whole value's bytes
 *
 * The associated data of a seal is the legacy key, a NUL and the place
 * (big-endian), so sealed bytes open at their own key and place only.
 * Reading (legacy_value_view) puts back every element whose seal still
 * opens: within retention the value reads as it was written; past it, each
 * element reads without its addresses, and an opaque value is gone.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/bytes.h"
#include "store/error.h"
#include "feed/ipscan.h"
#include "feed/legacy.h"

#define MAGIC "\0EFL"
#define MAGIC_LEN 4u
#define LV_VERSION 1
#define KIND_JSON 1
#define KIND_OPAQUE 2
#define PLACE_WHOLE 0xffffffffu
#define HEAD_LEN (MAGIC_LEN + 2 + 4)

/* A growing output buffer. */
typedef struct lv_buf {
	uint8_t *p;
	size_t len, cap;
	int oom;
} lv_buf;

static void buf_add(lv_buf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = (b->len + n) * 2;
		uint8_t *p = ef__realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void buf_be(lv_buf *b, uint64_t v, int n)
{
	uint8_t t[8];

	be_put(t, v, n);
	buf_add(b, t, (size_t)n);
}

static void seal_ad(const key_buf *lkey, uint32_t place, uint8_t *ad,
		    size_t *adlen)
{
	memcpy(ad, lkey->s, lkey->len);
	ad[lkey->len] = '\0';
	be_put(ad + lkey->len + 1, place, 4);
	*adlen = lkey->len + 5;
}

int legacy_value_sealed(const void *stored, size_t len)
{
	return len >= MAGIC_LEN && memcmp(stored, MAGIC, MAGIC_LEN) == 0;
}

/* Append one seal of @msg at @place, created at @when. A window already
 * past retention seals nothing: those addresses are gone. */
static int add_seal(ef_store *st, const key_buf *lkey, uint32_t place,
		    int64_t when, int64_t now, const void *msg, size_t mlen,
		    lv_buf *b, uint32_t *nseals)
{
	uint8_t ad[KEY_MAX + 6], *sealed = ef__malloc(IPSEAL_LEN(mlen));
	size_t adlen, slen;
	int rc;

	if (!sealed)
		return EF_ENOMEM;
	seal_ad(lkey, place, ad, &adlen);
	rc = ipseal_seal(st, when, now, ad, adlen, msg, mlen, sealed, &slen);
	if (rc == EF_OK && slen <= UINT32_MAX) {
		buf_be(b, place, 4);
		buf_be(b, (uint64_t)when, 8);
		buf_be(b, slen, 4);
		buf_add(b, sealed, slen);
		(*nseals)++;
	}
	free(sealed);
	if (rc == IPSEAL_EXPIRED)
		return EF_OK;
	return b->oom ? EF_ENOMEM : rc;
}

/* The window of an element: its createdAt, or @now when it has none that
 * reads (nor a past one): its age is unknown, so it counts from now. */
static int64_t elem_window(json_t *el, int64_t now)
{
	int64_t c = legacy_elem_created(el);

	return c >= 0 && c <= now ? c : now;
}

static int seal_json(ef_store *st, const key_buf *lkey, uint32_t place,
		     json_t *el, int64_t now, lv_buf *b, uint32_t *nseals)
{
	char *text = json_dumps(el, JSON_COMPACT | JSON_PRESERVE_ORDER |
					    JSON_ENCODE_ANY);
	int rc;

	if (!text)
		return EF_ENOMEM;
	rc = add_seal(st, lkey, place, elem_window(el, now), now, text,
		      strlen(text), b, nseals);
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

/* The seals of @j (each element that holds an address, or the whole of an
 * object that does), then their count in place at @count_at. */
static int seal_elements(ef_store *st, const key_buf *lkey, json_t *j,
			 int64_t now, lv_buf *b, size_t count_at)
{
	uint32_t nseals = 0;
	json_t *el;
	size_t i;
	int rc = EF_OK;

	if (!json_is_array(j)) {
		rc = seal_json(st, lkey, PLACE_WHOLE, j, now, b, &nseals);
	} else {
		json_array_foreach(j, i, el) {
			if (i >= PLACE_WHOLE)
				break; /* LEGACY_MAX_BYTES keeps arrays smaller */
			if (ipscan_json(el) &&
			    (rc = seal_json(st, lkey, (uint32_t)i, el, now, b,
					    &nseals)) != EF_OK)
				break;
		}
	}
	if (rc == EF_OK && !b->oom)
		be_put(b->p + count_at, nseals, 4);
	return rc;
}

static int encode_json(ef_store *st, const key_buf *lkey, json_t *j,
		       int64_t now, lv_buf *b)
{
	json_t *red = json_deep_copy(j);
	char *text = NULL;
	size_t count_at;
	int rc = EF_ENOMEM;

	if (red && ipscan_redact(red) >= 0)
		text = json_dumps(red, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(red);
	if (!text)
		return EF_ENOMEM;
	buf_add(b, MAGIC, MAGIC_LEN);
	buf_be(b, LV_VERSION, 1);
	buf_be(b, KIND_JSON, 1);
	buf_be(b, strlen(text), 4);
	buf_add(b, text, strlen(text));
	free(text);
	count_at = b->len;
	buf_be(b, 0, 4);
	if (!b->oom)
		rc = seal_elements(st, lkey, j, now, b, count_at);
	return rc;
}

static int encode_opaque(ef_store *st, const key_buf *lkey, const void *raw,
			 size_t len, int64_t now, lv_buf *b)
{
	uint32_t nseals = 0;
	size_t count_at;
	int rc;

	buf_add(b, MAGIC, MAGIC_LEN);
	buf_be(b, LV_VERSION, 1);
	buf_be(b, KIND_OPAQUE, 1);
	buf_be(b, 0, 4);
	count_at = b->len;
	buf_be(b, 0, 4);
	if (b->oom)
		return EF_ENOMEM;
	rc = add_seal(st, lkey, PLACE_WHOLE, now, now, raw, len, b, &nseals);
	if (rc == EF_OK)
		b->p[count_at + 3] = (uint8_t)nseals;
	return rc;
}

int legacy_value_encode(ef_store *st, const key_buf *lkey, const void *raw,
			size_t len, int64_t now, uint8_t **out, size_t *outlen)
{
	lv_buf b = {0};
	json_t *j = NULL;
	uint64_t oom = ef__oom_count();
	int rc;

	*out = NULL;
	*outlen = 0;
	if (len <= LEGACY_MAX_BYTES && !legacy_value_sealed(raw, len))
		j = json_loadb(raw, len, 0, NULL);
	if (!j && ef__oom_count() != oom)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (j && !ipscan_json(j)) {
		buf_add(&b, raw, len); /* nothing personal: kept as it is */
		rc = b.oom ? EF_ENOMEM : EF_OK;
	} else if (j) {
		rc = encode_json(st, lkey, j, now, &b);
	} else {
		rc = encode_opaque(st, lkey, raw, len, now, &b);
	}
	json_decref(j);
	if (rc != EF_OK) {
		free(b.p);
		return rc == EF_ENOMEM
			       ? ef__err(st->err_id, rc, "out of memory")
			       : rc;
	}
	*out = b.p ? b.p : ef__malloc(1);
	*outlen = b.len;
	return *out ? EF_OK : ef__err(st->err_id, EF_ENOMEM, "out of memory");
}

/* ---- reading ------------------------------------------------------------ */

typedef struct lv_seal {
	uint32_t place;
	int64_t sealed_ms;
	const uint8_t *p;
	size_t len;
} lv_seal;

/* Seal @i of the envelope; @pos walks the seal list. EF_ECORRUPT. */
static int next_seal(const uint8_t *s, size_t len, size_t *pos, lv_seal *out)
{
	if (len - *pos < 16)
		return EF_ECORRUPT;
	out->place = (uint32_t)be_get(s + *pos, 4);
	out->sealed_ms = (int64_t)be_get(s + *pos + 4, 8);
	out->len = (size_t)be_get(s + *pos + 12, 4);
	*pos += 16;
	if (len - *pos < out->len)
		return EF_ECORRUPT;
	out->p = s + *pos;
	*pos += out->len;
	return EF_OK;
}

/* Open @sl: *msg malloc'd. EF_OK, EF_ENOTFOUND (shredded or past
 * retention), EF_ENOMEM. */
static int open_seal(ef_store *st, const key_buf *lkey, const lv_seal *sl,
		     int64_t now, uint8_t **msg, size_t *mlen)
{
	uint8_t ad[KEY_MAX + 6];
	size_t adlen, cap = ipseal_plain_len(sl->p, sl->len) + 1;
	int rc;

	*msg = ef__malloc(cap);
	if (!*msg)
		return EF_ENOMEM;
	seal_ad(lkey, sl->place, ad, &adlen);
	rc = ipseal_open(st, sl->sealed_ms, now, ad, adlen, sl->p, sl->len,
			 *msg, cap, mlen);
	if (rc != EF_OK) {
		free(*msg);
		*msg = NULL;
	}
	return rc == EF_EINVAL ? EF_ENOTFOUND : rc;
}

/* Put the element of @sl back into @j (its redacted form). */
static int restore(ef_store *st, const key_buf *lkey, const lv_seal *sl,
		   int64_t now, json_t **j)
{
	uint8_t *msg;
	size_t mlen;
	json_t *el;
	int rc = open_seal(st, lkey, sl, now, &msg, &mlen);

	if (rc != EF_OK)
		return rc == EF_ENOTFOUND ? EF_OK : rc;
	el = json_loadb((const char *)msg, mlen, JSON_DECODE_ANY, NULL);
	sodium_memzero(msg, mlen);
	free(msg);
	if (!el)
		return EF_ECORRUPT;
	if (sl->place == PLACE_WHOLE) {
		json_decref(*j);
		*j = el;
		return EF_OK;
	}
	if (sl->place >= json_array_size(*j)) {
		json_decref(el);
		return EF_ECORRUPT;
	}
	return json_array_set_new(*j, sl->place, el) == 0 ? EF_OK : EF_ENOMEM;
}

static int view_json(ef_store *st, const key_buf *lkey, const uint8_t *red,
		     size_t rlen, const uint8_t *s, size_t len, size_t pos,
		     uint32_t nseals, int64_t now, uint8_t **out, size_t *outlen)
{
	json_t *j = json_loadb((const char *)red, rlen, 0, NULL);
	lv_seal sl;
	int rc = j ? EF_OK : EF_ECORRUPT;

	for (uint32_t i = 0; rc == EF_OK && i < nseals; i++) {
		rc = next_seal(s, len, &pos, &sl);
		if (rc == EF_OK)
			rc = restore(st, lkey, &sl, now, &j);
	}
	if (rc == EF_OK && pos != len)
		rc = EF_ECORRUPT;
	if (rc == EF_OK) {
		*out = (uint8_t *)json_dumps(j, JSON_COMPACT |
							JSON_PRESERVE_ORDER |
							JSON_ENCODE_ANY);
		*outlen = *out ? strlen((char *)*out) : 0;
		rc = *out ? EF_OK : EF_ENOMEM;
	}
	json_decref(j);
	return rc;
}

static int view_opaque(ef_store *st, const key_buf *lkey, const uint8_t *s,
		       size_t len, size_t pos, uint32_t nseals, int64_t now,
		       uint8_t **out, size_t *outlen)
{
	lv_seal sl;
	int rc;

	if (nseals == 0)
		return pos == len ? EF_ENOTFOUND : EF_ECORRUPT;
	rc = next_seal(s, len, &pos, &sl);
	if (rc != EF_OK || nseals != 1 || pos != len ||
	    sl.place != PLACE_WHOLE)
		return EF_ECORRUPT;
	return open_seal(st, lkey, &sl, now, out, outlen);
}

/* The head of sealed form @s (@len bytes, magic checked): the redacted
 * text's length, where the seals start and how many. EF_ECORRUPT if it is
 * of another version or cut short. */
static int parse_head(const uint8_t *s, size_t len, size_t *rlen, size_t *pos,
		      uint32_t *nseals)
{
	if (len < HEAD_LEN || s[MAGIC_LEN] != LV_VERSION)
		return EF_ECORRUPT;
	*rlen = (size_t)be_get(s + MAGIC_LEN + 2, 4);
	*pos = HEAD_LEN + *rlen;
	if (len - HEAD_LEN < *rlen || len - *pos < 4)
		return EF_ECORRUPT;
	*nseals = (uint32_t)be_get(s + *pos, 4);
	*pos += 4;
	return EF_OK;
}

int legacy_value_view(ef_store *st, const key_buf *lkey, const void *stored,
		      size_t len, int64_t now, uint8_t **out, size_t *outlen)
{
	const uint8_t *s = stored;
	size_t rlen, pos;
	uint32_t nseals;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (!legacy_value_sealed(stored, len)) {
		*out = ef__malloc(len ? len : 1);
		if (!*out)
			return ef__err(st->err_id, EF_ENOMEM, "out of memory");
		if (len)
			memcpy(*out, stored, len);
		*outlen = len;
		return EF_OK;
	}
	if (parse_head(s, len, &rlen, &pos, &nseals) != EF_OK)
		return ef__err(st->err_id, EF_ECORRUPT,
			       "legacy value: a sealed form of another version "
			       "or cut short");
	if (s[MAGIC_LEN + 1] == KIND_JSON)
		rc = view_json(st, lkey, s + HEAD_LEN, rlen, s, len, pos,
			       nseals, now, out, outlen);
	else if (s[MAGIC_LEN + 1] == KIND_OPAQUE && rlen == 0)
		rc = view_opaque(st, lkey, s, len, pos, nseals, now, out,
				 outlen);
	else
		rc = EF_ECORRUPT;
	if (rc == EF_ECORRUPT)
		return ef__err(st->err_id, rc, "legacy value: sealed form "
			       "malformed");
	if (rc == EF_ENOMEM)
		return ef__err(st->err_id, rc, "out of memory");
	return rc;
}

int64_t legacy_value_sealed_since(const void *stored, size_t len)
{
	const uint8_t *s = stored;
	int64_t oldest = INT64_MAX;
	size_t pos, rlen;
	uint32_t nseals;
	lv_seal sl;

	if (!legacy_value_sealed(stored, len) ||
	    parse_head(s, len, &rlen, &pos, &nseals) != EF_OK)
		return oldest;
	for (uint32_t i = 0; i < nseals && next_seal(s, len, &pos, &sl) == EF_OK;
	     i++)
		if (sl.sealed_ms < oldest)
			oldest = sl.sealed_ms;
	return oldest;
}

int legacy_value_needs_seal(const void *stored, size_t len)
{
	uint64_t oom = ef__oom_count();
	json_t *j;
	int r;

	if (legacy_value_sealed(stored, len))
		return 0;
	if (len > LEGACY_MAX_BYTES)
		return 1;
	j = json_loadb(stored, len, 0, NULL);
	if (!j && ef__oom_count() != oom)
		return EF_ENOMEM;
	r = !j || ipscan_json(j);
	json_decref(j);
	return r;
}

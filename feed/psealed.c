/*
 * psealed.c - payloads of legacy data that hold IP addresses (feed.h,
 * fin_seal_payload): kept without them, the original sealed like an IP.
 *
 * An element of an old array may carry addresses anywhere in the fields
 * that become its payload ({"client":{"addr":"198.51.100.7"}}). The record
 * keeps the payload with every address removed (ipscan_redact) and the
 * original sealed under the entry's window, with the entry's index key, a
 * NUL and "payload" as associated data (an entry's sealed IP uses the index
 * key alone, so neither opens in the other's place).
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/error.h"
#include "feed/feed.h"
#include "feed/ipscan.h"

#define AD_SUFFIX "\0payload"
#define AD_SUFFIX_LEN 8u

static size_t payload_ad(key_view owner, key_view rid, uint8_t *ad)
{
	key_buf k;

	key_pair_views(&k, KEY_P_INDEX, owner, rid);
	memcpy(ad, k.s, k.len);
	memcpy(ad + k.len, AD_SUFFIX, AD_SUFFIX_LEN);
	return k.len + AD_SUFFIX_LEN;
}

/* @r's payload without addresses (*red) and sealed (*sealed, or NULL when
 * already past retention). EF_OK, EF_ENOMEM, or an ipseal_seal error. */
static int split_payload(ef_store *st, const fin_item *it, const rec_entry *r,
			 json_t *j, int64_t now, char **red, uint8_t **sealed,
			 size_t *slen)
{
	uint8_t ad[KEY_MAX + AD_SUFFIX_LEN];
	key_view ov = {it->owner.s, it->owner.len};
	key_view rv = {it->rid.s, it->rid.len};
	size_t adlen = payload_ad(ov, rv, ad);
	int rc;

	*red = NULL;
	*sealed = ef__malloc(IPSEAL_LEN(r->payload_len));
	if (!*sealed || ipscan_redact(j) < 0 ||
	    !(*red = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		return EF_ENOMEM;
	rc = ipseal_seal(st, r->created_ms, now, ad, adlen, r->payload,
			 r->payload_len, *sealed, slen);
	if (rc == IPSEAL_EXPIRED) {
		free(*sealed);
		*sealed = NULL;
		*slen = 0;
		rc = EF_OK;
	}
	return rc;
}

int fin_seal_payload(ef_store *st, fin_item *it, int64_t now)
{
	uint8_t *sealed = NULL, *rec = NULL;
	size_t slen = 0, rlen;
	char *red = NULL;
	rec_entry r;
	json_t *j;
	int rc = rec_decode(it->rec, it->rec_len, &r);

	if (rc != EF_OK || !r.has_payload || r.psealed_len)
		return rc;
	j = json_loadb(r.payload, r.payload_len, 0, NULL);
	if (!j || !ipscan_json(j)) {
		json_decref(j); /* not JSON: payload_check refused it before */
		return EF_OK;
	}
	rc = split_payload(st, it, &r, j, now, &red, &sealed, &slen);
	json_decref(j);
	if (rc == EF_OK) {
		r.payload = red;
		r.payload_len = strlen(red);
		r.psealed = sealed;
		r.psealed_len = slen;
		rc = rec_encode(&r, &rec, &rlen);
	}
	free(red);
	free(sealed);
	if (rc != EF_OK)
		return rc == EF_ENOMEM ? ef__err(st->err_id, rc, "out of memory")
				       : rc;
	free(it->rec);
	it->rec = rec;
	it->rec_len = rlen;
	return EF_OK;
}

int feed_payload_reveal(ef_store *st, key_view owner, key_view rid,
			const rec_entry *r, int64_t now, const char **text,
			size_t *len, char **owned)
{
	uint8_t ad[KEY_MAX + AD_SUFFIX_LEN];
	size_t adlen, n, cap;
	char *p;
	int rc;

	*text = r->payload;
	*len = r->payload_len;
	*owned = NULL;
	cap = ipseal_plain_len(r->psealed, r->psealed_len) + 1;
	if (cap == 1)
		return EF_OK; /* none, or not sealed bytes */
	p = ef__malloc(cap);
	if (!p)
		return EF_ENOMEM;
	adlen = payload_ad(owner, rid, ad);
	rc = ipseal_open(st, r->created_ms, now, ad, adlen, r->psealed,
			 r->psealed_len, (uint8_t *)p, cap, &n);
	if (rc != EF_OK) {
		free(p);
		return rc == EF_ENOMEM ? EF_ENOMEM : EF_OK;
	}
	p[n] = '\0';
	*text = p;
	*len = n;
	*owned = p;
	return EF_OK;
}

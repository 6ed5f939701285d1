/*
 * ip.c - IP addresses: validated text in, sealed bytes stored, canonical
 * text out while within retention.
 *
 * What an entry seals (IP_PLAIN_LEN bytes): the kind (REC_IP_V4 or
 * REC_IP_V6), then 16 address bytes (an IPv4 address in the first 4, the
 * rest zero), so that sealed IPv4 and IPv6 addresses look alike. The
 * associated data is the entry's index key "receiveIndex:<owner>:<rid>"
 * (escaped forms): a sealed IP opens in its own entry only.
 */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"

int ip_parse(uint64_t err_id, const char *field, const char *text,
	     uint8_t bin[16], uint8_t *kind)
{
	if (inet_pton(AF_INET, text, bin) == 1) {
		*kind = REC_IP_V4;
		return EF_OK;
	}
	if (inet_pton(AF_INET6, text, bin) == 1) {
		*kind = REC_IP_V6;
		return EF_OK;
	}
	/* the text is not quoted: it may hold an address all the same */
	return ef__err(err_id, EF_EINVAL,
		       "%s: not an IPv4 or IPv6 address (%zu bytes)", field,
		       strlen(text));
}

/* Dotted decimal of 4 bytes, as inet_ntop writes it, without its
 * sprintf (a page formats up to a thousand of them). @buf >= 16 bytes. */
static void ip4_format(const uint8_t *bin, char *buf)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = bin[i];

		if (v >= 100)
			*buf++ = (char)('0' + v / 100);
		if (v >= 10)
			*buf++ = (char)('0' + v / 10 % 10);
		*buf++ = (char)('0' + v % 10);
		*buf++ = i < 3 ? '.' : '\0';
	}
}

void ip_format(uint8_t kind, const uint8_t *bin, char *buf, size_t cap)
{
	if (kind == REC_IP_V4 && cap >= 16) {
		ip4_format(bin, buf);
		return;
	}
	if (!inet_ntop(kind == REC_IP_V4 ? AF_INET : AF_INET6, bin, buf,
		       (socklen_t)cap))
		snprintf(buf, cap, "?");
}

int ip_seal_entry(ef_store *st, key_view owner, key_view rid,
		  int64_t created_ms, int64_t now, uint8_t kind,
		  const uint8_t *bin, uint8_t out[IP_SEALED_LEN], size_t *outlen)
{
	uint8_t plain[IP_PLAIN_LEN] = {0};
	key_buf ad;
	int rc;

	plain[0] = kind;
	memcpy(plain + 1, bin, kind == REC_IP_V4 ? 4 : 16);
	key_pair_views(&ad, KEY_P_INDEX, owner, rid);
	rc = ipseal_seal(st, created_ms, now, ad.s, ad.len, plain,
			 sizeof(plain), out, outlen);
	sodium_memzero(plain, sizeof(plain));
	return rc;
}

int ip_reveal_entry(ef_store *st, key_view owner, key_view rid,
		    const rec_entry *r, int64_t now, char *buf, size_t cap)
{
	return ip_reveal_entry_memo(st, NULL, owner, rid, r, now, buf, cap);
}

int ip_reveal_entry_memo(ef_store *st, struct ipseal_memo *memo,
			 key_view owner, key_view rid, const rec_entry *r,
			 int64_t now, char *buf, size_t cap)
{
	uint8_t plain[IP_PLAIN_LEN + 1];
	key_buf ad;
	size_t n;
	int rc;

	if (r->ip_kind == REC_IP_NONE)
		return EF_ENOTFOUND;
	if (r->ip_kind != REC_IP_SEALED) { /* version 1: plaintext */
		if (!feed_ip_visible(st, r->created_ms, now))
			return EF_ENOTFOUND;
		ip_format(r->ip_kind, r->ip, buf, cap);
		return EF_OK;
	}
	key_pair_views(&ad, KEY_P_INDEX, owner, rid);
	rc = ipseal_open_memo(st, memo, r->created_ms, now, ad.s, ad.len,
			      r->ip, r->ip_len, plain, sizeof(plain), &n);
	if (rc == EF_OK && (n != IP_PLAIN_LEN || (plain[0] != REC_IP_V4 &&
						  plain[0] != REC_IP_V6)))
		rc = EF_ENOTFOUND; /* sealed by something else: no IP */
	if (rc == EF_OK)
		ip_format(plain[0], plain + 1, buf, cap);
	sodium_memzero(plain, sizeof(plain));
	return rc == EF_EINVAL ? EF_ENOTFOUND : rc;
}

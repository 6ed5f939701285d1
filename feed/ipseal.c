/*
 * ipseal.c - personal data (IPs) sealed under the key of its time window,
 * so that destroying the window's key in the keyring scrubs every copy at
 * once, wherever LMDB left it (crypto-shredding). See feed.h for the API
 * and the sealed format.
 */
#include <sodium.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"
#include "store/keyring.h"

#define SCHEME_XCHACHA 1 /* XChaCha20-Poly1305-IETF under a window key */
#define HDR_LEN (1 + 4)  /* scheme, window */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define MAC_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

/* the public constant must say what the format takes */
_Static_assert(IPSEAL_OVERHEAD == HDR_LEN + NONCE_LEN + MAC_LEN,
	       "IPSEAL_OVERHEAD");
_Static_assert(KEYRING_KEYBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "window keys are AEAD keys");

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

int ipseal_seal(ef_store *st, int64_t created_ms, int64_t now, const void *ad,
		size_t adlen, const void *msg, size_t mlen, uint8_t *out,
		size_t *outlen)
{
	uint8_t key[KEYRING_KEYBYTES];
	unsigned long long clen;
	uint32_t win;
	int rc;

	*outlen = 0;
	if (created_ms < 0 || created_ms > EF_CREATED_MAX ||
	    mlen > SIZE_MAX - IPSEAL_OVERHEAD) /* catch size_t overflow */
		return ef__err(st->err_id, EF_EINVAL,
			       "ipseal: created_ms or length out of range");
	if (!feed_ip_visible(st, created_ms, now))
		return IPSEAL_EXPIRED;
	win = keyring_window(created_ms);
	rc = keyring_get(st->keyring, win, 1, key);
	if (rc == KEYRING_DESTROYED)
		return IPSEAL_EXPIRED;
	if (rc != EF_OK)
		return rc;
	out[0] = SCHEME_XCHACHA;
	out[1] = (uint8_t)(win >> 24);
	out[2] = (uint8_t)(win >> 16);
	out[3] = (uint8_t)(win >> 8);
	out[4] = (uint8_t)win;
	randombytes_buf(out + HDR_LEN, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + HDR_LEN + NONCE_LEN, &clen, msg, mlen, ad, adlen, NULL,
		out + HDR_LEN, key);
	sodium_memzero(key, sizeof(key));
	*outlen = HDR_LEN + NONCE_LEN + (size_t)clen;
	return EF_OK;
}

int ipseal_open_key(const uint8_t key[32], const void *ad, size_t adlen,
		    const uint8_t *sealed, size_t slen, uint8_t *out,
		    size_t cap, size_t *outlen)
{
	unsigned long long mlen;

	*outlen = 0;
	if (slen < IPSEAL_OVERHEAD || sealed[0] != SCHEME_XCHACHA ||
	    cap < slen - IPSEAL_OVERHEAD)
		return EF_ENOTFOUND;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    out, &mlen, NULL, sealed + HDR_LEN + NONCE_LEN,
		    slen - HDR_LEN - NONCE_LEN, ad, adlen, sealed + HDR_LEN,
		    key) != 0)
		return EF_ENOTFOUND;
	*outlen = (size_t)mlen;
	return EF_OK;
}

int ipseal_open(ef_store *st, int64_t created_ms, int64_t now, const void *ad,
		size_t adlen, const uint8_t *sealed, size_t slen, uint8_t *out,
		size_t cap, size_t *outlen)
{
	uint8_t key[KEYRING_KEYBYTES];
	uint32_t win;
	int rc;

	*outlen = 0;
	if (slen < IPSEAL_OVERHEAD || cap < slen - IPSEAL_OVERHEAD)
		return ef__err(st->err_id, EF_EINVAL,
			       "ipseal: output buffer too small");
	win = get_be32(sealed + 1);
	/* the read rule first; a blob that names another window than its
	 * time's was moved or damaged: absent either way */
	if (created_ms < 0 || !feed_ip_visible(st, created_ms, now) ||
	    win != keyring_window(created_ms))
		return EF_ENOTFOUND;
	rc = keyring_get(st->keyring, win, 0, key);
	if (rc == EF_ENOMEM)
		return rc;
	/* a missing, damaged or unreadable keyring reads as "no IP" */
	if (rc == EF_OK)
		rc = ipseal_open_key(key, ad, adlen, sealed, slen, out, cap,
				     outlen);
	else
		rc = EF_ENOTFOUND;
	/* a read-only handle seals under keys kept in memory only */
	if (rc != EF_OK &&
	    keyring_get_ephemeral(st->keyring, win, key) == EF_OK)
		rc = ipseal_open_key(key, ad, adlen, sealed, slen, out, cap,
				     outlen);
	sodium_memzero(key, sizeof(key));
	return rc;
}

int ipseal_key_state(ef_store *st, const uint8_t *sealed, size_t slen)
{
	uint8_t key[KEYRING_KEYBYTES];
	int rc;

	if (slen < IPSEAL_OVERHEAD || sealed[0] != SCHEME_XCHACHA)
		return EF_ECORRUPT;
	rc = keyring_get(st->keyring, get_be32(sealed + 1), 0, key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

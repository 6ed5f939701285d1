/*
 * ipseal.c - personal data (IPs) sealed under the key of its time window,
 * so that destroying the window's key in the keyring scrubs every copy at
 * once, wherever LMDB left it (crypto-shredding). See feed.h for the API
 * and the sealed format.
 *
 * Two schemes, told apart by the first byte, both opened everywhere they
 * can be:
 *   1  XChaCha20-Poly1305-IETF, 24-byte random nonce (45 bytes of overhead)
 *   2  AES-256-GCM, 12-byte random nonce (33 bytes), written where the CPU
 *      has AES and carry-less multiply instructions (libsodium's
 *      crypto_aead_aes256gcm_is_available) unless EF_SEAL_PORTABLE. Its
 *      expanded key is kept per window (seal_cache), so a page of IPs
 *      costs one key expansion, not one HChaCha20 per IP: an IP opens in
 *      about a tenth of the time. A window's key is still looked up in the
 *      keyring first, every time: a destroyed key opens nothing, whatever
 *      the cache holds. Random 96-bit nonces are safe for the at most
 *      2^32 seals one window key would need to see before a collision
 *      became likely (one key per UTC day).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"
#include "store/nowait.h"
#include "store/bytes.h"
#include "store/keyring.h"

#define SCHEME_XCHACHA 1 /* XChaCha20-Poly1305-IETF under a window key */
#define SCHEME_AESGCM 2  /* AES-256-GCM under a window key */
#define HDR_LEN (1 + 4)  /* scheme, window */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define MAC_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AES_NONCE_LEN crypto_aead_aes256gcm_NPUBBYTES
#define AES_MAC_LEN crypto_aead_aes256gcm_ABYTES
#define AES_OVERHEAD (HDR_LEN + AES_NONCE_LEN + AES_MAC_LEN)
#define CACHE_SLOTS 8    /* windows whose AES key schedule is kept */

/* the public constant must say what the format takes at most */
_Static_assert(IPSEAL_OVERHEAD == HDR_LEN + NONCE_LEN + MAC_LEN,
	       "IPSEAL_OVERHEAD");
_Static_assert(AES_OVERHEAD <= IPSEAL_OVERHEAD, "IPSEAL_OVERHEAD is the most");
_Static_assert(KEYRING_KEYBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
	       "window keys are AEAD keys");
_Static_assert(KEYRING_KEYBYTES == crypto_aead_aes256gcm_KEYBYTES,
	       "window keys are AES-256 keys");

/* The AES key schedules of recent windows, with the key each was made
 * from (a slot is used only for the very key the keyring hands out). */
struct seal_cache {
	crypto_aead_aes256gcm_state state[CACHE_SLOTS]; /* 16-aligned */
	uint8_t key[CACHE_SLOTS][KEYRING_KEYBYTES];     /* what made it */
	uint32_t win[CACHE_SLOTS];                      /* its window */
	int used[CACHE_SLOTS];                          /* slot filled */
	unsigned next;                                  /* next to reuse */
	pthread_mutex_t mu;                             /* guards the rest */
};

int ipseal_cache_new(struct seal_cache **out)
{
	struct seal_cache *c = NULL;

	*out = NULL;
	if (posix_memalign((void **)&c, 64, sizeof(*c)) != 0)
		return EF_ENOMEM;
	memset(c, 0, sizeof(*c));
	(void)sodium_mlock(c, sizeof(*c)); /* best effort: keys, not swap */
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return EF_ENOMEM;
	}
	*out = c;
	return EF_OK;
}

void ipseal_cache_free(struct seal_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	sodium_munlock(c, sizeof(*c)); /* zeroes it too */
	free(c);
}

/* Copy the key schedule of @key (window @win) into @out, making it in the
 * cache if it is not there. */
static void aes_state(struct seal_cache *c, uint32_t win,
		      const uint8_t key[KEYRING_KEYBYTES],
		      crypto_aead_aes256gcm_state *out)
{
	unsigned i;

	if (store_mutex_lock(&c->mu) != 0) { /* must not wait: no cache */
		crypto_aead_aes256gcm_beforenm(out, key);
		return;
	}
	for (i = 0; i < CACHE_SLOTS; i++)
		if (c->used[i] && c->win[i] == win &&
		    sodium_memcmp(c->key[i], key, KEYRING_KEYBYTES) == 0)
			break;
	if (i == CACHE_SLOTS) {
		i = c->next++ % CACHE_SLOTS;
		crypto_aead_aes256gcm_beforenm(&c->state[i], key);
		memcpy(c->key[i], key, KEYRING_KEYBYTES);
		c->win[i] = win;
		c->used[i] = 1;
	}
	memcpy(out, &c->state[i], sizeof(*out));
	pthread_mutex_unlock(&c->mu);
}

/* Forget window @win's schedule (its key was destroyed). It waits for the
 * mutex even in a call that must not wait: only a few instructions run
 * under it, never I/O, and a destroyed key's schedule must not stay. */
static void aes_forget(struct seal_cache *c, uint32_t win)
{
	pthread_mutex_lock(&c->mu);
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (c->used[i] && c->win[i] == win) {
			sodium_memzero(&c->state[i], sizeof(c->state[i]));
			sodium_memzero(c->key[i], KEYRING_KEYBYTES);
			c->used[i] = 0;
		}
	pthread_mutex_unlock(&c->mu);
}

static int aes_wanted(const ef_store *st)
{
	return !(st->cfg.flags & EF_SEAL_PORTABLE) && st->seal &&
	       crypto_aead_aes256gcm_is_available();
}

/* Are @sealed's @slen bytes long enough for the scheme they name? */
static int well_formed(const uint8_t *sealed, size_t slen)
{
	return (slen >= AES_OVERHEAD && sealed[0] == SCHEME_AESGCM) ||
	       (slen >= IPSEAL_OVERHEAD && sealed[0] == SCHEME_XCHACHA);
}

size_t ipseal_plain_len(const uint8_t *sealed, size_t slen)
{
	if (!well_formed(sealed, slen))
		return 0;
	return slen - (sealed[0] == SCHEME_AESGCM ? AES_OVERHEAD
						  : IPSEAL_OVERHEAD);
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
	out[0] = aes_wanted(st) ? SCHEME_AESGCM : SCHEME_XCHACHA;
	be_put(out + 1, win, 4);
	if (out[0] == SCHEME_AESGCM) {
		crypto_aead_aes256gcm_state state;

		aes_state(st->seal, win, key, &state);
		randombytes_buf(out + HDR_LEN, AES_NONCE_LEN);
		crypto_aead_aes256gcm_encrypt_afternm(
			out + HDR_LEN + AES_NONCE_LEN, &clen, msg, mlen, ad,
			adlen, NULL, out + HDR_LEN, &state);
		sodium_memzero(&state, sizeof(state));
		*outlen = HDR_LEN + AES_NONCE_LEN + (size_t)clen;
	} else {
		randombytes_buf(out + HDR_LEN, NONCE_LEN);
		crypto_aead_xchacha20poly1305_ietf_encrypt(
			out + HDR_LEN + NONCE_LEN, &clen, msg, mlen, ad, adlen,
			NULL, out + HDR_LEN, key);
		*outlen = HDR_LEN + NONCE_LEN + (size_t)clen;
	}
	sodium_memzero(key, sizeof(key));
	return EF_OK;
}

/* Open scheme 2 bytes with an AES key schedule. */
static int open_aes(const crypto_aead_aes256gcm_state *state, const void *ad,
		    size_t adlen, const uint8_t *sealed, size_t slen,
		    uint8_t *out, unsigned long long *mlen)
{
	return crypto_aead_aes256gcm_decrypt_afternm(
		       out, mlen, NULL, sealed + HDR_LEN + AES_NONCE_LEN,
		       slen - HDR_LEN - AES_NONCE_LEN, ad, adlen,
		       sealed + HDR_LEN, state) == 0
		       ? EF_OK
		       : EF_ENOTFOUND;
}

int ipseal_open_key(const uint8_t key[32], const void *ad, size_t adlen,
		    const uint8_t *sealed, size_t slen, uint8_t *out,
		    size_t cap, size_t *outlen)
{
	unsigned long long mlen;
	int rc;

	*outlen = 0;
	if (!well_formed(sealed, slen) || cap < ipseal_plain_len(sealed, slen))
		return EF_ENOTFOUND;
	if (sealed[0] == SCHEME_AESGCM) {
		crypto_aead_aes256gcm_state state;

		if (!crypto_aead_aes256gcm_is_available())
			return EF_ENOTFOUND; /* this CPU cannot: no IP */
		crypto_aead_aes256gcm_beforenm(&state, key);
		rc = open_aes(&state, ad, adlen, sealed, slen, out, &mlen);
		sodium_memzero(&state, sizeof(state));
	} else {
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
			     out, &mlen, NULL, sealed + HDR_LEN + NONCE_LEN,
			     slen - HDR_LEN - NONCE_LEN, ad, adlen,
			     sealed + HDR_LEN, key) == 0
			     ? EF_OK
			     : EF_ENOTFOUND;
	}
	if (rc == EF_OK)
		*outlen = (size_t)mlen;
	return rc;
}

/* Open with the keyring's key @key of window @win: scheme 2 through the
 * cached key schedule, scheme 1 directly. */
static int open_with(ef_store *st, uint32_t win, const uint8_t *key,
		     const void *ad, size_t adlen, const uint8_t *sealed,
		     size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
	crypto_aead_aes256gcm_state state;
	unsigned long long mlen;
	int rc;

	if (sealed[0] != SCHEME_AESGCM || !st->seal ||
	    !crypto_aead_aes256gcm_is_available())
		return ipseal_open_key(key, ad, adlen, sealed, slen, out, cap,
				       outlen);
	aes_state(st->seal, win, key, &state);
	rc = open_aes(&state, ad, adlen, sealed, slen, out, &mlen);
	sodium_memzero(&state, sizeof(state));
	*outlen = rc == EF_OK ? (size_t)mlen : 0;
	return rc;
}

/* The window keys one read has asked the keyring for (a page's IPs are of
 * a few days): the keyring is asked once per window per read, not per IP.
 * What it said holds for the read, as if it had been done at its start. */
struct ipseal_memo {
	crypto_aead_aes256gcm_state state; /* of key, when aes (16-aligned) */
	uint8_t key[KEYRING_KEYBYTES];     /* the window's key, when have */
	uint32_t win;                      /* its window */
	int have;                          /* key is the keyring's answer */
	int aes;                           /* state is made from key */
};

int ipseal_memo_new(struct ipseal_memo **out)
{
	struct ipseal_memo *m = NULL;

	*out = NULL;
	if (posix_memalign((void **)&m, 64, sizeof(*m)) != 0)
		return EF_ENOMEM;
	memset(m, 0, sizeof(*m));
	*out = m;
	return EF_OK;
}

void ipseal_memo_free(struct ipseal_memo *m)
{
	if (!m)
		return;
	sodium_memzero(m, sizeof(*m));
	free(m);
}

/* Open @sealed with the memo's key of its window. */
static int memo_open(struct ipseal_memo *m, const void *ad, size_t adlen,
		     const uint8_t *sealed, size_t slen, uint8_t *out,
		     size_t cap, size_t *outlen)
{
	unsigned long long mlen;
	int rc;

	if (sealed[0] != SCHEME_AESGCM || !crypto_aead_aes256gcm_is_available())
		return ipseal_open_key(m->key, ad, adlen, sealed, slen, out,
				       cap, outlen);
	if (!m->aes) {
		crypto_aead_aes256gcm_beforenm(&m->state, m->key);
		m->aes = 1;
	}
	rc = open_aes(&m->state, ad, adlen, sealed, slen, out, &mlen);
	*outlen = rc == EF_OK ? (size_t)mlen : 0;
	return rc;
}

int ipseal_open_memo(ef_store *st, struct ipseal_memo *m, int64_t created_ms,
		     int64_t now, const void *ad, size_t adlen,
		     const uint8_t *sealed, size_t slen, uint8_t *out,
		     size_t cap, size_t *outlen)
{
	uint32_t win;
	int rc;

	*outlen = 0;
	if (!m || !well_formed(sealed, slen) ||
	    cap < ipseal_plain_len(sealed, slen))
		return ipseal_open(st, created_ms, now, ad, adlen, sealed, slen,
				   out, cap, outlen);
	win = (uint32_t)be_get(sealed + 1, 4);
	if (created_ms < 0 || !feed_ip_visible(st, created_ms, now) ||
	    win != keyring_window(created_ms))
		return EF_ENOTFOUND; /* the read rule, as ipseal_open */
	if (!m->have || m->win != win) {
		rc = keyring_get(st->keyring, win, 0, m->key);
		if (rc != EF_OK) { /* none, destroyed, damaged: the slow way */
			m->have = 0;
			return ipseal_open(st, created_ms, now, ad, adlen,
					   sealed, slen, out, cap, outlen);
		}
		m->win = win;
		m->have = 1;
		m->aes = 0;
	}
	return memo_open(m, ad, adlen, sealed, slen, out, cap, outlen);
}

int ipseal_open(ef_store *st, int64_t created_ms, int64_t now, const void *ad,
		size_t adlen, const uint8_t *sealed, size_t slen, uint8_t *out,
		size_t cap, size_t *outlen)
{
	uint8_t key[KEYRING_KEYBYTES];
	uint32_t win;
	int rc;

	*outlen = 0;
	if (!well_formed(sealed, slen))
		return EF_ENOTFOUND; /* not sealed bytes: no IP */
	if (cap < ipseal_plain_len(sealed, slen))
		return ef__err(st->err_id, EF_EINVAL,
			       "ipseal: output buffer too small");
	win = (uint32_t)be_get(sealed + 1, 4);
	/* the read rule first; a blob that names another window than its
	 * time's was moved or damaged: absent either way */
	if (created_ms < 0 || !feed_ip_visible(st, created_ms, now) ||
	    win != keyring_window(created_ms))
		return EF_ENOTFOUND;
	rc = keyring_get(st->keyring, win, 0, key);
	if (rc == EF_ENOMEM)
		return rc;
	if (rc == KEYRING_DESTROYED && st->seal)
		aes_forget(st->seal, win);
	/* a missing, damaged or unreadable keyring reads as "no IP" */
	if (rc == EF_OK)
		rc = open_with(st, win, key, ad, adlen, sealed, slen, out, cap,
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

	if (!well_formed(sealed, slen))
		return EF_ECORRUPT;
	rc = keyring_get(st->keyring, (uint32_t)be_get(sealed + 1, 4), 0, key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

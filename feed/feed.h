/*
 * feed.h - feed semantics shared by the files of feed/ (and by migrate/):
 * the store handle, record encoding, finalize steps and the read rules.
 * Speaks only store/store.h; no LMDB type appears here.
 */
#ifndef EF_FEED_FEED_H
#define EF_FEED_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "edgefeed.h"
#include "feed/keys.h"
#include "store/store.h"

/* A positive status of a write function: nothing to write, report EF_OK
 * (store_write aborts on any non-EF_OK return, so no empty commit syncs). */
#define FEED_NOCHANGE 100

/* A positive status of fin_apply with FIN_IMPORT: the entry is beyond the
 * owner's feed_cap or past feed_ttl, so the trim would delete it at once;
 * nothing was written. (Distinct from the other statuses: KV_SKIPPED 101,
 * IPSEAL_EXPIRED 102, KEYRING_DESTROYED 110.) */
#define FEED_TRIMMED 103

struct ef_store {
	store_env *env;     /* the LMDB environment */
	char *dir;          /* store directory, owned */
	uint64_t err_id;    /* error slot of this handle */
	ef_config cfg;      /* defaults resolved */
	int open_lock_fd;   /* shared open.lock, held while open */
	struct keyring *keyring; /* IP window keys (store/keyring.h) */
	struct fin_group *group; /* group commit queue (EF_GROUP_COMMIT), or NULL */
	struct seal_cache *seal; /* AES key schedules of recent windows (ipseal.c) */
};

/* The group (store.h) of the store's metadata (meta:*, except
 * meta:entries:<owner>, which is the owner's: keys.h key_group). */
#define FEED_META_GROUP (&(const store_val){"", 0})

/* Current time of the store's clock, ms since the epoch. */
int64_t feed_now(const ef_store *st);

/* The real time: the system's clock (CLOCK_REALTIME), whatever clock the
 * store was given. Tests inject clocks behind it (their T0 is in the
 * past), so they never trip a check against it; a clock ahead of it is
 * one that maintenance must not act on. */
int64_t feed_real_now(void);

/* EF_OK if @t is at most EF_CLOCK_SKEW_MS ahead of @ref; else EF_EINVAL,
 * "<field>: <t> is ahead of <ref_name> (<ref>) by more than 5 minutes;
 * <hint>". Times only: the message quotes no other input. */
int feed_not_ahead(ef_store *st, const char *field, int64_t t,
		   const char *ref_name, int64_t ref, const char *hint);

/* Destructive maintenance (sweep, seed, every job under the maintenance
 * lock) acts as of @t, named @field: EF_EINVAL if @t is ahead of the real
 * clock beyond EF_CLOCK_SKEW_MS, so that a wrong clock cannot destroy the
 * keys and entries that the real one still needs. */
int feed_maint_not_ahead(ef_store *st, const char *field, int64_t t);

/* Read rules, in one place (DESIGN.md "Feed read", "IP retention"). */
int feed_is_stale(const ef_store *st, int64_t created_ms, int64_t now);
int feed_ip_visible(const ef_store *st, int64_t created_ms, int64_t now);

/* ---- entry record (record.c) ---- */

#define REC_VERSION 2 /* written; version 1 (plaintext IPs) is still read */
#define REC_IP_NONE 0 /* ip kinds */
#define REC_IP_V4 4   /* version 1 only: 4 plaintext bytes */
#define REC_IP_V6 6   /* version 1 only: 16 plaintext bytes */
#define REC_IP_SEALED 'S' /* ipseal_seal bytes (see ip.c) */

/* A decoded record; pointers are views into the encoded bytes. */
typedef struct rec_entry {
	uint8_t version;       /* as decoded (rec_encode writes REC_VERSION) */
	int64_t created_ms;
	const char *rid;       /* raw reservation id (not escaped) */
	size_t rid_len;
	uint8_t ip_kind;       /* REC_IP_* */
	const uint8_t *ip;     /* ip_len bytes, per ip_kind */
	size_t ip_len;
	int has_payload;
	const char *payload;   /* JSON object text, byte-for-byte as given;
				* with psealed, the one without addresses */
	size_t payload_len;
	int unread;             /* REC_UNREAD_*: the marker's state, if known */
	const uint8_t *psealed; /* legacy data only: the original payload, which
				 * holds IP addresses (ipscan.h), sealed like
				 * an IP (feed_payload_reveal); NULL if none */
	size_t psealed_len;
} rec_entry;

/* rec_entry.unread: whether the entry's unread marker exists, as the record
 * knows it (kept in the transaction that writes or deletes the marker, so a
 * page need not look it up); unknown for records that predate it, legacy
 * elements and what migrate and import write (their markers come apart). */
#define REC_UNREAD_UNKNOWN 0
#define REC_UNREAD_YES 1 /* the marker exists */
#define REC_UNREAD_NO 2  /* it does not */

/* Set the unread state in the encoded version-2 record @rec in place.
 * EF_OK, or EF_EINVAL for another version (its state stays unknown). */
int rec_set_unread(uint8_t *rec, size_t len, int unread);
/* The unread state of the encoded record @rec (unknown if it does not
 * decode). */
int rec_unread_state(const uint8_t *rec, size_t len);

/* Keep the record of @owner/@rid (if it has one) saying @unread, in the
 * transaction that writes or deletes its marker (unread.c). EF_OK or a
 * store error. */
int feed_record_unread(store_txn *txn, const key_part *owner,
		       const key_part *rid, int unread);

/* Encode into a new buffer (*out, *len; free()). EF_ENOMEM, EF_OK, or
 * EF_EINVAL for a plaintext ip kind (IPs are written sealed only). */
int rec_encode(const rec_entry *e, uint8_t **out, size_t *len);
/* Decode; EF_ECORRUPT if malformed, EF_EVERSION for an unknown version. */
int rec_decode(const void *buf, size_t len, rec_entry *out);

/* ---- IPs and payloads (ip.c, payload.c) ---- */

/* Parse IPv4/IPv6 text into 4 or 16 bytes; sets *kind. EF_EINVAL. */
int ip_parse(uint64_t err_id, const char *field, const char *text,
	     uint8_t bin[16], uint8_t *kind);
/* Canonical text of a binary IP into @buf (>= 46 bytes). */
void ip_format(uint8_t kind, const uint8_t *bin, char *buf, size_t cap);

/* A JSON object of at most EF_PAYLOAD_MAX bytes? EF_OK or EF_EINVAL. */
int payload_check(uint64_t err_id, const char *field, const char *json,
		  size_t len);

/* ---- finalize (finalize.c) ---- */

/* A validated finalization, ready to apply inside a write transaction. */
typedef struct fin_item {
	key_part owner;             /* escaped canonical owner */
	key_part rid;               /* escaped reservation id */
	char sort[KEY_SORT_LEN + 1];/* createdSort */
	int64_t created_ms;
	uint8_t *rec;               /* encoded record, owned */
	size_t rec_len;
} fin_item;

/* Validate and encode @r (nothing is written). EF_EINVAL names the field.
 * r->created_ms is taken as given, 0 included (the epoch: only ef_finalize
 * reads 0 as "now"); ahead of @now by more than EF_CLOCK_SKEW_MS it is
 * EF_EINVAL. An IP whose day's key was destroyed within retention is
 * EF_EIO (the keyring cannot seal it), never silently dropped. */
int fin_prepare(ef_store *st, const ef_receive *r, int64_t now, fin_item *it);
void fin_item_free(fin_item *it);

/* fin_apply flags */
#define FIN_MIGRATING 0x1u /* from the owner's own legacy array: do not look
			    * in it, and create no unread marker */
#define FIN_IMPORT 0x2u    /* from an import file: create no unread marker
			    * (markers come as keys of their own), and
			    * write nothing that the trim would delete at
			    * once (FEED_TRIMMED), so that importing a file
			    * again writes nothing */

/* Apply one prepared finalization in @txn: EF_OK, EF_EXISTS (the
 * reservation has a record, or is in the owner's legacy array: nothing
 * written), FEED_TRIMMED (FIN_IMPORT only: nothing written), or an error
 * (the transaction must abort). Enforces the owner's cap and staleness;
 * *trimmed (may be NULL) gets the entries that trim deleted. The one
 * writer of entry records and index keys: finalize, group commit,
 * migration, import and seed all write through it. May run again if the
 * transaction is re-run. */
int fin_apply(store_txn *txn, ef_store *st, const fin_item *it, int64_t now,
	      unsigned flags, uint64_t *trimmed);

/*
 * Hold the payload of the prepared @it to the rule of legacy data: when it
 * holds IP addresses at any depth (ipscan.h), the record keeps it without
 * them and seals the original under the entry's window (shown while within
 * retention, like the entry's IP; shredded with it). For what comes from
 * legacy arrays and import files, whose payloads are free-form old data;
 * ef_finalize's own payloads are the caller's and kept as given.
 * EF_OK (nothing to do, or done); EF_ENOMEM; an ipseal_seal error.
 */
int fin_seal_payload(ef_store *st, fin_item *it, int64_t now);

/*
 * The payload of record @r (entry of escaped @owner and @rid) as it reads
 * at @now: the original while its seal opens, else the stored one. *text
 * points into @r or at *owned (malloc'd, free() it; NULL when not used).
 * EF_OK or EF_ENOMEM. Only meaningful when r->has_payload.
 */
int feed_payload_reveal(ef_store *st, key_view owner, key_view rid,
			const rec_entry *r, int64_t now, const char **text,
			size_t *len, char **owned);

/* ---- batches and group commit (group.c) ---- */

/* One finalization of a batch, and its result. */
typedef struct fin_req {
	const fin_item *it;
	int64_t now;   /* the clock of its caller */
	int rc;        /* EF_OK, EF_EXISTS, or an error */
} fin_req;

/* Apply @n finalizations in one write transaction (one sync). Each gets its
 * own result: if the transaction fails, each is retried on its own. */
void fin_batch(ef_store *st, fin_req *reqs, size_t n);

struct fin_group;
/* The group commit of handle @st: the store's shared commit queue
 * (cqueue.h) where it can be had, else an in-process one. */
int fin_group_new(ef_store *st, struct fin_group **out);
void fin_group_free(struct fin_group *g);
/* Finalize @it through group commit: returns once the transaction that
 * holds it is committed (and synced), with its own result. Thread-safe. */
/* Apply the @n finalizations of @reqs (each its rc) through the group's
 * queue together, so that they share a transaction with whatever else is
 * queued; a lone caller's batch commits at once in one transaction. */
void fin_group_apply_many(ef_store *st, struct fin_group *g, fin_req *reqs,
			  size_t n);
int fin_group_apply(ef_store *st, struct fin_group *g, const fin_item *it,
		    int64_t now);

/* Delete over-cap and stale entries of @owner (with their index keys and
 * markers), at most a bounded number per call. *deleted may be NULL. */
int feed_trim(store_txn *txn, ef_store *st, const key_part *owner,
	      int64_t now, uint64_t *deleted);

/* ---- entry counts (count.c): meta:entries:<owner> ----
 * Never below the number of the owner's records (reads rely on it: a
 * count <= feed_cap lets a page skip the walk that applies the cap); it
 * may be missing or too high, never too low. */

/* EF_OK with *n; EF_ENOTFOUND (no count); EF_ECORRUPT (not 8 bytes). */
int feed_count_get(store_txn *txn, const key_part *owner, uint64_t *n);
/* Set it to @n exactly (a full walk found @n records); 0 deletes it. */
int feed_count_set(store_txn *txn, const key_part *owner, uint64_t n);
/* A record of @owner was written / deleted in @txn: keep the count. */
int feed_count_added(store_txn *txn, const key_part *owner);
int feed_count_deleted(store_txn *txn, const key_part *owner);

/* Delete one entry given its entry key, with its index key and marker. */
int feed_delete_entry(store_txn *txn, const void *ekey, size_t eklen);

/* ---- reading (page.c) ---- */

/* Fill @e (its strings in one allocation) from entry key @k and record
 * @v, applying the IP retention rule at @now (through the window keys of
 * @memo, a page's, when given) and looking up its unread marker, through
 * the cursor @markers when given (a page's entries look up their markers in
 * turn: NULL makes a lookup from the root). */
struct ipseal_memo;
int feed_entry_fill(store_txn *txn, ef_store *st, store_cur *markers,
		    struct ipseal_memo *memo, const store_val *k,
		    const store_val *v, int64_t now, ef_entry *e);
/* Free the strings of @e (not @e itself). */
void feed_entry_clear(ef_entry *e);

/* ---- IP retention: sealed personal data (ipseal.c) ----
 *
 * Personal data (IPs, or any bytes that contain one, such as a quarantined
 * legacy element) is never written to LMDB in plaintext: it is sealed with
 * AES-256-GCM (where the CPU has it) or XChaCha20-Poly1305 under the
 * random key of its time window (one UTC day
 * of @created_ms), kept in the keyring file outside LMDB. ef_sweep destroys
 * the key of every window past ip_retention, which scrubs every sealed copy
 * of that window at once, in live records, in LMDB's freed pages and in
 * backups of data.mdb alike; no record needs rewriting, and no separate
 * pass over quarantine records is needed.
 *
 * Sealed format (at most IPSEAL_LEN(mlen) bytes):
 *   u8  scheme (1: XChaCha20-Poly1305-IETF; 2: AES-256-GCM, ipseal.c)
 *   u32 window number, big-endian (created_ms / 86400000)
 *   24 (scheme 1) or 12 (scheme 2) nonce (random)
 *   mlen + 16  ciphertext and tag
 *
 * @ad (associated data) binds the sealed bytes to their place, so that they
 * cannot be moved to another record and still open: entry IPs use their
 * index key "receiveIndex:<owner>:<reservationId>" (escaped forms); other
 * users pass the key of the record that holds the sealed bytes (e.g. the
 * quarantine key). The same @ad must be given to ipseal_open.
 */

#define IPSEAL_OVERHEAD 45u /* at most: 1 scheme + 4 window + 24 nonce + 16
			     * tag (scheme 1; scheme 2 takes 33, ipseal.c) */
#define IPSEAL_LEN(mlen) ((size_t)(mlen) + IPSEAL_OVERHEAD)

/* A positive status of ipseal_seal: nothing sealed, because @created_ms is
 * past retention at @now or its window's key was destroyed. Store no IP. */
#define IPSEAL_EXPIRED 102

/*
 * Seal @mlen bytes of @msg, created at @created_ms, into @out (room for
 * IPSEAL_LEN(mlen) bytes); *outlen gets the length. Creates the window's key
 * in the keyring if it has none yet (synced before returning unless
 * EF_NOSYNC), so call it outside write transactions where possible (inside
 * one is allowed: the keyring lock nests inside LMDB's writer lock).
 * @return EF_OK; IPSEAL_EXPIRED; EF_EINVAL (@created_ms out of range);
 *         EF_EIO, EF_EFULL (the keyring cannot be written); EF_EVERSION
 *         (a keyring of a newer format); EF_ENOMEM. Thread-safe.
 * On a read-only handle, a window without a key gets one in memory only:
 * what is sealed then opens in this handle only (it cannot be written).
 */
int ipseal_seal(ef_store *st, int64_t created_ms, int64_t now, const void *ad,
		size_t adlen, const void *msg, size_t mlen, uint8_t *out,
		size_t *outlen);

/* The per-handle cache of AES key schedules (ef_open, ef_close). */
struct seal_cache;
int ipseal_cache_new(struct seal_cache **out);
void ipseal_cache_free(struct seal_cache *c);

/* The window keys of one read (a page): ipseal_open_memo asks the keyring
 * once per window per read instead of once per IP. NULL memo: ipseal_open.
 * Free it (it holds keys) when the read ends. */
struct ipseal_memo;
int ipseal_memo_new(struct ipseal_memo **out);
void ipseal_memo_free(struct ipseal_memo *m);
int ipseal_open_memo(ef_store *st, struct ipseal_memo *m, int64_t created_ms,
		     int64_t now, const void *ad, size_t adlen,
		     const uint8_t *sealed, size_t slen, uint8_t *out,
		     size_t cap, size_t *outlen);

/* How many bytes @sealed (@slen bytes) opens to; 0 if it is not sealed
 * bytes of a known scheme. Size ipseal_open's @out with it. */
size_t ipseal_plain_len(const uint8_t *sealed, size_t slen);

/*
 * Open what ipseal_seal made, applying the read rule of retention at @now:
 * @out (capacity @cap >= ipseal_plain_len) gets the bytes.
 * @return EF_OK; EF_ENOTFOUND (absent: past retention at @now, the key is
 *         destroyed or missing, the keyring is damaged, or the bytes were
 *         moved or damaged: a read shows "no IP"); EF_EINVAL (@cap too
 *         small); EF_ENOMEM. Thread-safe.
 */
int ipseal_open(ef_store *st, int64_t created_ms, int64_t now, const void *ad,
		size_t adlen, const uint8_t *sealed, size_t slen, uint8_t *out,
		size_t cap, size_t *outlen);

/* Entry IPs (ip.c): what is sealed is the kind and 16 address bytes. */
#define IP_PLAIN_LEN 17u
#define IP_SEALED_LEN IPSEAL_LEN(IP_PLAIN_LEN)

/* Seal the address @bin of @kind for the entry of escaped @owner and @rid
 * into @out. EF_OK; IPSEAL_EXPIRED (store no IP); an ipseal_seal error. */
int ip_seal_entry(ef_store *st, key_view owner, key_view rid,
		  int64_t created_ms, int64_t now, uint8_t kind,
		  const uint8_t *bin, uint8_t out[IP_SEALED_LEN], size_t *outlen);

/* The IP of record @r (entry of escaped @owner and @rid) as text into @buf
 * (>= 46 bytes), by the read rule at @now: EF_OK; EF_ENOTFOUND (absent, past
 * retention, or its key is gone: the entry shows no IP); EF_ENOMEM. Reads
 * version 1 (plaintext) records as before. */
int ip_reveal_entry(ef_store *st, key_view owner, key_view rid,
		    const rec_entry *r, int64_t now, char *buf, size_t cap);
/* The same through the window keys of @memo (may be NULL). */
int ip_reveal_entry_memo(ef_store *st, struct ipseal_memo *memo,
			 key_view owner, key_view rid, const rec_entry *r,
			 int64_t now, char *buf, size_t cap);

/* The options ef_open gives the store layer (compact reopens with them). */
void feed_store_opts(const ef_store *st, store_opts *so);

/*
 * For check: does the key that sealed @sealed exist? EF_OK (live);
 * KEYRING_DESTROYED (swept: expected past retention); EF_ENOTFOUND (no such
 * key: the keyring is missing or damaged, the IP reads as absent);
 * EF_ECORRUPT (not sealed bytes); EF_EIO. The keyring's own state:
 * keyring_health_get(st->keyring, ...) in store/keyring.h.
 */
int ipseal_key_state(ef_store *st, const uint8_t *sealed, size_t slen);

/* The AEAD step of ipseal_open with a given 32-byte key (no keyring, no
 * retention rule): EF_OK or EF_ENOTFOUND. For tests that try keys. */
int ipseal_open_key(const uint8_t key[32], const void *ad, size_t adlen,
		    const uint8_t *sealed, size_t slen, uint8_t *out,
		    size_t cap, size_t *outlen);

#endif

/*
 * legacy.h - the legacy feed format: one capped JSON array per owner under
 * recentReceives:<owner>, newest first, of objects with reservationId,
 * createdAt, optional ip and any other fields (the payload).
 *
 * One conversion, used by dual-read (page, unread, finalize, get) and by the
 * migrator, so an element reads the same before and after migration.
 */
#ifndef EF_FEED_LEGACY_H
#define EF_FEED_LEGACY_H

#include "feed/feed.h"

#define LEGACY_MAX_BYTES ((size_t)8 << 20) /* a larger array is quarantined */
#define LEGACY_MAX_DEPTH 32                /* nesting inside one element */
#define LEGACY_REASON_MAX 200

/* An element that could not be migrated as it is. */
typedef struct legacy_issue {
	long index;                      /* element index; -1: the whole value */
	int kept;                        /* 1: migrated anyway (e.g. without its ip) */
	char reason[LEGACY_REASON_MAX];  /* what was wrong */
} legacy_issue;

/* A converted element, ready for fin_apply. */
typedef struct legacy_elem {
	fin_item it;   /* owner, rid, createdSort, encoded record */
	size_t index;  /* position in the array */
	key_buf ekey;  /* the entry key it would have */
} legacy_elem;

typedef struct legacy_array {
	legacy_elem *elems;   /* migratable elements, first occurrence of each
			       * reservation, sorted by entry key */
	size_t n;
	size_t total;         /* elements in the array (0 if not an array) */
	size_t duplicates;    /* later occurrences of a reservation, merged */
	legacy_issue *issues; /* elements quarantined or kept with a loss */
	size_t nissues;
	size_t quarantined;   /* issues with kept == 0 (the whole value counts 1) */
} legacy_array;

/* legacy_parse flags */
#define LEGACY_STRICT 0x1u /* a keyring that cannot seal an IP fails the
			    * parse (migration), instead of the element
			    * showing without its IP (reads) */

/*
 * Parse and convert the legacy value @json (@len bytes) of @owner. Never
 * fails on bad data (that becomes issues); returns EF_ENOMEM, or a keyring
 * error (EF_EIO, EF_EFULL, EF_EVERSION) with LEGACY_STRICT.
 */
int legacy_parse(ef_store *st, const key_part *owner, const void *json,
		 size_t len, int64_t now, unsigned flags, legacy_array *out);
void legacy_free(legacy_array *a);

/* Record an issue of element @index (-1: the whole value). EF_ENOMEM. */
int legacy_issue_add(legacy_array *a, long index, int kept, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

struct json_t;
/* created_ms of a legacy element (createdAt: ISO-8601 or epoch ms), as every
 * reader of legacy data takes it; -1 if missing or unreadable (0 too). */
int64_t legacy_elem_created(struct json_t *el);

/* ---- the stored form of a legacy value (legacyval.c) ----
 *
 * Every write of a value under recentReceives:<owner> goes through
 * legacy_value_encode and every read through legacy_value_view, so that no
 * IP address of legacy data (at any depth, ipscan.h) is ever written to the
 * store in plaintext, and what reads it obeys retention like an entry.
 */

/*
 * The bytes to store under legacy key @lkey for the legacy value @raw (@len
 * bytes, as the old worker wrote it) at @now: @raw itself when it is JSON
 * that holds no IP address; otherwise a sealed form (legacyval.c) in which
 * each element that holds one is sealed under its createdAt's window (the
 * storing time's when that cannot be read), and a value that is not JSON is
 * sealed whole under @now's. *out is malloc'd. EF_OK; EF_ENOMEM; a keyring
 * error of ipseal_seal (EF_EIO, EF_EFULL, EF_EVERSION).
 */
int legacy_value_encode(ef_store *st, const key_buf *lkey, const void *raw,
			size_t len, int64_t now, uint8_t **out, size_t *outlen);

/*
 * The legacy value stored under @lkey as it reads at @now (*out malloc'd,
 * *outlen bytes): a plain value as it is; a sealed one with each element
 * whose window is still readable put back, the others without their
 * addresses. EF_OK; EF_ENOTFOUND (a value that was not JSON and whose
 * bytes are shredded: nothing of it is left); EF_ECORRUPT (a malformed
 * sealed form); EF_ENOMEM.
 */
int legacy_value_view(ef_store *st, const key_buf *lkey, const void *stored,
		      size_t len, int64_t now, uint8_t **out, size_t *outlen);

/* The oldest window (sealed_ms) of the seals of @stored: what is put back
 * from it may not outlive that. INT64_MAX for a plain value. */
int64_t legacy_value_sealed_since(const void *stored, size_t len);

/* Is @stored in the sealed form? 1 or 0. */
int legacy_value_sealed(const void *stored, size_t len);

/* Does the plain value @stored hold what must be sealed (an IP address at
 * any depth, or bytes that are not JSON)? 1, 0, or EF_ENOMEM. */
int legacy_value_needs_seal(const void *stored, size_t len);

/* Find the element for reservation @rid (escaped); NULL if none. */
const legacy_elem *legacy_find(const legacy_array *a, const key_part *rid);

/* Read and parse @owner's legacy array in @txn. EF_ENOTFOUND when the owner
 * has none; *a is then empty (and needs no legacy_free). */
int legacy_load(store_txn *txn, ef_store *st, const key_part *owner,
		int64_t now, legacy_array *a);

/* Is @rid in @owner's legacy array? 1 or 0, or a negative error. One get
 * when the owner has none, which is the common case. */
int legacy_has(store_txn *txn, ef_store *st, const key_part *owner,
	       const key_part *rid, int64_t now);

#endif

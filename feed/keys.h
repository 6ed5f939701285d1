/*
 * keys.h - the key codec of DESIGN.md "Key schema". Every path (finalize,
 * read, migration, import, CLI) derives keys through these functions and no
 * other, so one identity always has one key.
 *
 *   recentReceive:<owner>:<createdSort>:<reservationId>  entry record
 *   receiveIndex:<owner>:<reservationId>                 uniqueness index
 *   unread:<owner>:<reservationId>                       unread marker
 *   recentReceives:<owner>                               legacy JSON array
 *   meta:<name>                                          store metadata
 *   quarantine:<owner>:<hash>                            legacy data that
 *                                                        could not migrate
 *
 * <owner> and <reservationId> appear escaped: ':', '%' and ' ' as %XX
 * (upper-case hex), so a key splits unambiguously and no owner's prefix
 * reaches into another owner's range.
 */
#ifndef EF_FEED_KEYS_H
#define EF_FEED_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "edgefeed.h"

#define KEY_MAX 511u
#define KEY_SORT_LEN 13u

#define KEY_P_ENTRY "recentReceive:"
#define KEY_P_INDEX "receiveIndex:"
#define KEY_P_UNREAD "unread:"
#define KEY_P_LEGACY "recentReceives:"
#define KEY_P_META "meta:"
#define KEY_P_COUNT "meta:entries:" /* + escaped owner: feed/count.c */
#define KEY_P_QUARANTINE "quarantine:"

/* An escaped key component (owner or reservation id). */
typedef struct key_part {
	char s[EF_OWNER_KEY_MAX + 1]; /* escaped bytes, NUL-terminated */
	size_t len;                   /* bytes in s */
} key_part;

/* A whole key. */
typedef struct key_buf {
	char s[KEY_MAX + 1]; /* NUL-terminated for printing; keys hold no NUL */
	size_t len;
} key_buf;

/*
 * Canonicalize an owner: trim ASCII white space, lowercase ASCII letters,
 * require valid UTF-8, at least one byte, no control characters; then escape.
 * EF_EINVAL with the detail in error slot @err_id, naming @field.
 */
int key_owner(uint64_t err_id, const char *field, const char *text,
	      key_part *out);

/*
 * The owner that a key names: @text (@len bytes) is the key's owner
 * component, as found after its prefix ("recentReceives:" and the others).
 * One rule for every key, legacy or exported: the component names an owner
 * only if it is exactly the spelling that key_owner() writes for that
 * owner (canonical, ':' '%' ' ' escaped as %3A %25 %20, nothing else
 * escaped); *out is then that spelling. So the map is injective (no two
 * keys name one owner) and round-trips (an owner's key names it again).
 * Anything else (white space that the trim would drop, upper-case letters,
 * other or lower-case escapes, raw ':' '%' ' ', control bytes, invalid
 * UTF-8, nothing) is EF_EINVAL: the detail in slot @err_id says what and
 * at which byte, never quoting the key.
 */
int key_owner_from_key(uint64_t err_id, const char *text, size_t len,
		       key_part *out);

/* Validate and escape a reservation id (taken as given, case-sensitive). */
int key_reservation(uint64_t err_id, const char *field, const char *text,
		    key_part *out);

/* The same validation for a byte string that is not NUL-terminated. */
int key_owner_n(uint64_t err_id, const char *field, const char *text,
		size_t len, key_part *out);
int key_reservation_n(uint64_t err_id, const char *field, const char *text,
		      size_t len, key_part *out);

/* 13 ASCII digits of 9999999999999 - created_ms; created_ms must be in
 * [0, EF_CREATED_MAX]. @out has room for 14 bytes (NUL). */
int key_created_sort(int64_t created_ms, char out[KEY_SORT_LEN + 1]);
/* The inverse; EF_EINVAL unless 13 digits. */
int key_created_from_sort(const char *sort, size_t len, int64_t *created_ms);

void key_entry(key_buf *k, const key_part *owner, const char *sort,
	       const key_part *rid);
void key_entry_prefix(key_buf *k, const key_part *owner);
void key_index(key_buf *k, const key_part *owner, const key_part *rid);
void key_unread(key_buf *k, const key_part *owner, const key_part *rid);
void key_unread_prefix(key_buf *k, const key_part *owner);
void key_legacy(key_buf *k, const key_part *owner);
/* @k = the @len bytes of a key read from the store (at most KEY_MAX). */
void key_buf_set(key_buf *k, const void *key, size_t len);
void key_meta(key_buf *k, const char *name);
void key_count(key_buf *k, const key_part *owner);

/*
 * Split an entry key. Views point into @key. EF_EINVAL unless the key has the
 * exact form with a 13-digit sort and well-formed escapes.
 */
typedef struct key_view {
	const char *p;
	size_t len;
} key_view;
/* @p = the escaped component @v (a view of a split key; at most
 * EF_OWNER_KEY_MAX bytes). */
void key_part_set(key_part *p, key_view v);
int key_split_entry(const void *key, size_t klen, key_view *owner,
		    key_view *sort, key_view *rid);
/* The same split for a key read back from the store, where it was written
 * by key_entry: the structure is checked, the escapes are not re-validated
 * byte by byte (check does that). EF_EINVAL if the structure is wrong. */
int key_split_entry_stored(const void *key, size_t klen, key_view *owner,
			   key_view *sort, key_view *rid);

/* Split index/unread keys: "<prefix><owner>:<rid>". */
int key_split_pair(const void *key, size_t klen, const char *prefix,
		   key_view *owner, key_view *rid);

/* "<prefix><owner>:<rid>" from escaped views (index and unread keys of an
 * entry key split with key_split_entry). */
void key_pair_views(key_buf *k, const char *prefix, key_view owner,
		    key_view rid);

/* Is @v a well-formed escaped component (only %XX escapes of ':' '%' ' ',
 * no raw ':' '%' ' ' or control bytes, valid UTF-8 after unescaping)? */
int key_view_valid(key_view v);

/* Unescape @v into @out (capacity @cap, NUL-terminated). Returns length or
 * -1 if it does not fit or is malformed. */
long key_unescape(key_view v, char *out, size_t cap);

/* Is [s, s+len) valid UTF-8? Returns 1, or 0 with the offset of the first
 * bad byte in *bad_at. */
/* The group (store.h) that @key belongs to: the escaped owner it names
 * (every key of an owner, "meta:entries:<owner>" and quarantined
 * elements included); "-" for a per-owner key whose owner component names
 * no owner (key_owner_from_key), where migrate quarantines its array; the
 * empty group for the store's metadata and any key of no owner. Always
 * EF_OK; a store_group_fn. */
struct store_val;
int key_group(const void *key, size_t klen, struct store_val *g);

int utf8_valid(const unsigned char *s, size_t len, size_t *bad_at);

#endif

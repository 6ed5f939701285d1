/*
 * kvbulk-int.h - what the three files of the Workers KV bulk import share
 * (as SQLite's btreeInt.h does for its B-tree): the items, the import's
 * context, and the functions that cross from one file to another.
 *
 *   kvitem.c   an element of the file into an item: parsed, classified,
 *              validated, an entry's record encoded (outside transactions)
 *   kvapply.c  a batch of items applied in one write transaction
 *   kvbulk.c   batches, skips and their report, settling, the public entry
 *              point ef_import_kvbulk
 *
 * Not a public interface: migrate/kvbulk.h is what the export shares.
 */
#ifndef EF_MIGRATE_KVBULK_INT_H
#define EF_MIGRATE_KVBULK_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "feed/feed.h"
#include "feed/legacy.h"
#include "migrate/kvbulk.h"

#define MARKER_MAX 256 /* bytes of an unread marker's value */
#define DETAIL_MAX 300 /* bytes of a skip's detail */
#define KV_SKIPPED 101 /* kv_item_make: the element was reported and skipped
			* (distinct from FEED_NOCHANGE, FEED_TRIMMED) */

/* ---- items: an element, validated and ready to apply -------------------- */

enum { KIND_LEGACY, KIND_ENTRY, KIND_INDEX, KIND_MARKER, KIND_QUARANTINE };

/* What entries, legacy arrays and quarantine records need besides. */
typedef struct kv_extra {
	key_part owner;       /* canonical owner (legacy, quarantine) */
	int has_owner;        /* quarantine: 0 for the owner "-" */
	fin_item fin;         /* entry: the record as finalize encodes it */
	key_buf ik;           /* entry: its index key */
	legacy_array reasons; /* quarantine: the record's reasons */
	char *lkey;           /* quarantine: its legacyKey, lklen bytes */
	size_t lklen;         /* bytes of lkey */
	int64_t seal_by;      /* quarantine: its bytes' time of quarantine */
} kv_extra;

/* An element of the file, validated and ready to apply. */
typedef struct kv_item {
	uint64_t index; /* element index in the file */
	int kind;       /* KIND_* */
	int deferred;   /* this transaction left it for the end */
	char *key;      /* "key" as in the file, klen bytes */
	size_t klen;    /* bytes of key */
	uint8_t *val;   /* the value's bytes (base64 decoded) */
	size_t vlen;    /* bytes of val */
	char *k;        /* the key in the store (canonical), k_len bytes */
	size_t k_len;   /* bytes of k */
	kv_extra *x;    /* NULL for index keys and markers */
} kv_item;

/* A skipped element, reported after its batch. */
typedef struct kv_skip {
	uint64_t element;        /* its index in the file */
	char *key;               /* its "key", IP addresses masked; owned */
	size_t klen;             /* bytes of key */
	int reason;              /* an ef_import_skip */
	char detail[DETAIL_MAX]; /* what exactly was wrong */
} kv_skip;

/* Counts of one write transaction (reset when it runs again); each is
 * the ef_import_stats field of its name. */
typedef struct kv_txn_stats {
	uint64_t legacy_arrays, legacy_merged, entries, index_keys, markers;
	uint64_t quarantine_records, quarantined, unchanged, ips_dropped;
	uint64_t trimmed, trim_deleted;
} kv_txn_stats;

/* One import: its options, the batch at hand, what is done. */
typedef struct imp_ctx {
	ef_store *st;         /* the store imported into */
	ef_import_opts o;     /* the caller's options (defaults if none) */
	uint32_t batch;       /* items per write transaction */
	int64_t now;          /* one clock reading for the whole import */
	uint64_t total;       /* elements in the file; 0 if unknown */
	ef_import_stats s;    /* what is done */
	int final;            /* settling: nothing may be deferred any more */
	kv_item *items;       /* this batch (room for batch items) */
	size_t n;             /* items in it */
	size_t bytes;         /* value bytes in this batch */
	kv_item *pending;     /* deferred index keys and markers */
	size_t npending, cappending; /* used, room */
	kv_skip *skips;       /* this batch's skips */
	size_t nskips, capskips; /* used, room */
	size_t npre;          /* skips found before the transaction */
	key_part *owners;     /* owners whose legacy arrays merged (distinct) */
	size_t nowners;       /* of them */
	char **trimmed;       /* index keys of the entries trimmed at once
			       * (FEED_TRIMMED), so that their index keys and
			       * markers count as trimmed too; sorted when
			       * settling */
	size_t ntrimmed, captrimmed; /* used, room */
	size_t ntrimmed_done; /* of them, from committed transactions */
	/* per transaction */
	kv_txn_stats b;       /* its counts, added to s once it commits */
	size_t *merged;       /* items that merged into a legacy array */
	size_t nmerged;       /* of them */
	int changed;          /* something was written */
	legacy_array cache;   /* legacy array of cache_owner, for markers */
	key_part cache_owner; /* whose array cache is */
	int cache_valid;      /* cache holds cache_owner's array */
} imp_ctx;

/* ---- kvitem.c ---- */

/* @n bytes of @p and a NUL, malloc'd; NULL when out of memory. */
void *kv_dup_bytes(const void *p, size_t n);

/* Free what @it owns and zero it. */
void kv_item_free(kv_item *it);

/* Element @index into @it: EF_OK, KV_SKIPPED (reported), or an error. */
int kv_item_make(imp_ctx *c, json_t *el, uint64_t index, kv_item *it);

/* ---- kvapply.c ---- */

/* store_write's function: apply the batch c->items in @txn. EF_OK,
 * FEED_NOCHANGE (nothing to write), or an error. */
int kv_batch_txn(store_txn *txn, void *c);

/* Forget the cached legacy array. */
void kv_cache_drop(imp_ctx *c);

/* strcmp of two char * elements, for qsort and bsearch. */
int kv_by_str(const void *a, const void *b);

/* ---- kvbulk.c ---- */

/*
 * Room for one more than @n elements of @size in @arr (capacity *cap,
 * doubled from @first when full): @arr, or the array that replaces it, or
 * NULL (out of memory, in the error slot; @arr is kept).
 */
void *kv_grow(imp_ctx *c, void *arr, size_t n, size_t *cap, size_t size,
	      size_t first);

/*
 * Skip @it for @reason. Found before the transaction (@in_txn 0), it is
 * kept for the batch's report and KV_SKIPPED is returned; found inside
 * (@in_txn 1), it is forgotten if the transaction runs again, and EF_OK
 * lets the transaction go on. EF_ENOMEM either way.
 */
int kv_skip_item(imp_ctx *c, int in_txn, const kv_item *it, int reason,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define skip_now(c, ...) kv_skip_item(c, 0, __VA_ARGS__)
#define skip_txn(c, ...) kv_skip_item(c, 1, __VA_ARGS__)

#endif

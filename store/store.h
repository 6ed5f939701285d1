/*
 * store.h - the small ordered key-value transaction interface that feed/
 * speaks. It hides every LMDB type: another ordered KV engine could stand
 * behind it.
 *
 * Engines: LMDB (a directory) and Redis Cluster (a redis:// address,
 * store/redis/engine.h). Transactions are run through store_read() /
 * store_write() (or their _in forms), which take a function and run it
 * inside a transaction. store_write() may run the
 * function more than once (after growing a full map, or adopting a map that
 * another process grew), so the function must derive everything it writes
 * from its inputs and reset its outputs on entry.
 */
#ifndef EF_STORE_STORE_H
#define EF_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "edgefeed.h"

typedef struct store_env store_env;
typedef struct store_txn store_txn;
typedef struct store_cur store_cur;

/* A borrowed byte string. From store_get/cursor: valid until the transaction
 * ends or the next write in it. */
typedef struct store_val {
	const void *data;
	size_t len;
} store_val;

/*
 * Groups. Every transaction runs inside one group of keys, named when it
 * begins: an engine may keep a group together (Redis Cluster: one hash
 * slot, so one master, where a transaction is atomic) and must know it
 * before the first read. The store's user says which group a key is in
 * (store_opts.group_of: feed/ puts an owner's keys in one group, the
 * store's own metadata in the empty group). STORE_ALL (NULL) names every
 * key at once: LMDB runs it as one transaction; a sharded engine refuses
 * it with EF_EINVAL, and store-wide work goes group by group
 * (store_each_group), one transaction each.
 */
#define STORE_ALL ((const store_val *)0)
typedef int (*store_group_fn)(const void *key, size_t klen, store_val *group);

typedef struct store_opts {
	size_t map_size;  /* initial map size */
	int nosync;       /* MDB_NOSYNC */
	int rdonly;       /* MDB_RDONLY */
	unsigned max_readers;
	store_group_fn group_of; /* required by a sharded engine */
} store_opts;

/* Open the environment in @dir (which must exist), or on the cluster of a
 * redis:// address (store/redis/addr.h). Errors carry detail in the error
 * slot of @err_id. */
int store_open(store_env **out, const char *dir, const store_opts *o,
	       uint64_t err_id);
void store_close(store_env *env);

/* The error slot id (see store/error.h) that this env reports into. */
uint64_t store_err_id(const store_env *env);

typedef int (*store_txn_fn)(store_txn *txn, void *ctx);

/*
 * Run @fn in a read-only transaction (a consistent snapshot).
 * Returns what @fn returned, or a store error.
 */
int store_read(store_env *env, store_txn_fn fn, void *ctx);

/*
 * Run @fn in a write transaction. If @fn returns EF_OK the transaction is
 * committed (and synced unless nosync); if it returns anything else it is
 * aborted and that code is returned (so a status such as EF_EXISTS must mean
 * "nothing to write"). MDB_MAP_FULL anywhere grows the map and re-runs @fn.
 */
int store_write(store_env *env, store_txn_fn fn, void *ctx);

/* The same, inside group @group (STORE_ALL: store_read/store_write). On a
 * sharded engine a transaction may also be re-run because its group
 * changed under it (optimistic isolation), and a key outside @group fails
 * it with EF_EINVAL. */
int store_read_in(store_env *env, const store_val *group, store_txn_fn fn,
		  void *ctx);
int store_write_in(store_env *env, const store_val *group, store_txn_fn fn,
		   void *ctx);

/* Does the store keep groups apart (so STORE_ALL is refused)? */
int store_sharded(const store_env *env);

/* Call @fn with every group of the store: on LMDB once, with STORE_ALL; on
 * a sharded engine with the empty group (metadata) first, then with every
 * group that was ever written, in byte order (some may be empty). Stops
 * at, and returns, the first return other than EF_OK. */
typedef int (*store_each_fn)(const store_val *group, void *ctx);
int store_each_group(store_env *env, store_each_fn fn, void *ctx);

/* Inside a transaction. Keys are byte strings of 1..511 bytes. */
int store_get(store_txn *txn, const void *key, size_t klen, store_val *val);
/* EF_OK or EF_ENOTFOUND */

#define STORE_NOOVERWRITE 0x1u
int store_put(store_txn *txn, const void *key, size_t klen, const void *val,
	      size_t vlen, unsigned flags);
/* EF_OK, or EF_EXISTS with STORE_NOOVERWRITE when the key exists */

int store_del(store_txn *txn, const void *key, size_t klen);
/* EF_OK or EF_ENOTFOUND */

/* Cursors: closed automatically when the transaction ends, or by
 * store_cur_close(). Positioning calls return EF_OK with the current key and
 * value, or EF_ENOTFOUND when there is no such record. */
int store_cur_open(store_txn *txn, store_cur **out);
void store_cur_close(store_cur *c);
/* The caller expects to read about @n records from the cursor's next
 * positioning on: an engine that fetches in batches (Redis Cluster, one
 * round trip a batch) fetches that many at once. Only a hint: nothing
 * else changes. */
void store_cur_hint(store_cur *c, size_t n);
/* first key >= @key */
int store_cur_seek(store_cur *c, const void *key, size_t klen, store_val *k,
		   store_val *v);
int store_cur_next(store_cur *c, store_val *k, store_val *v);
int store_cur_prev(store_cur *c, store_val *k, store_val *v);
int store_cur_last(store_cur *c, store_val *k, store_val *v);

/* Delete up to @max keys that start with @prefix (plen >= 1); *deleted
 * gets how many (fewer than @max means none is left). */
int store_del_prefix(store_txn *txn, const void *prefix, size_t plen,
		     uint64_t max, uint64_t *deleted);

/* Compare @a with the key [b, b+blen) in the store's order (memcmp, then
 * length). */
int store_keycmp(const store_val *a, const void *b, size_t blen);

/* Convenience: does @k start with @prefix? */
int store_has_prefix(const store_val *k, const void *prefix, size_t plen);

/* The maintenance lock of a store on a sharded engine (a lease in the
 * cluster: store/redis/rlock.h); LMDB's is a file (lock.h). EF_EINVAL on
 * LMDB. See rlock_take for the rest. */
typedef struct store_lock store_lock;
int store_lock_take(store_env *env, const char *what, int nowait,
		    ef_wait_fn on_wait, void *ctx, store_lock **out);
void store_lock_release(store_lock *l); /* NULL is fine */

/* A sharded engine's disk after deletes: on Redis Cluster, rewrite every
 * node's append-only file, so that what was deleted or overwritten (a
 * destroyed window key) leaves the disk's live files. EF_EINVAL on LMDB
 * (store_compact is its way). */
typedef struct store_rewrite_info {
	uint64_t nodes;        /* nodes whose file was rewritten */
	uint64_t bytes_before; /* their files' sizes, summed */
	uint64_t bytes_after;
} store_rewrite_info;
int store_rewrite(store_env *env, store_rewrite_info *out);

/* Environment facts for ef_stat. */
typedef struct store_info {
	uint64_t map_size;
	uint64_t map_used;
	uint64_t page_size;
	uint32_t max_readers;
	uint32_t readers_used;
} store_info;
int store_info_get(store_env *env, store_info *out);

/* Test hook: the @nth call (1: the next) of @op from now, in any thread,
 * fails with LMDB or errno code @rc instead of doing its work (a commit
 * aborts its transaction). @nth 0 turns it off. Process-wide. */
#define STORE_OP_GET 1
#define STORE_OP_PUT 2
#define STORE_OP_COMMIT 3
void store__inject(int op, uint64_t nth, int rc);

/* Test hooks: how many times the map grew or was adopted in this process. */
uint64_t store_map_grows(const store_env *env);

/*
 * Sync what is committed to disk now (nothing to do for a nosync env). For
 * a result read from another process's commit that may not be synced yet
 * (killed between writing its meta page and syncing it): visible to every
 * reader, durable only once synced. EF_OK or EF_EIO.
 */
int store_sync(store_env *env);
/* Test hook: how many times store_sync synced. */
uint64_t store_syncs(const store_env *env);

/* ---- compaction (compact.c) ---- */

typedef struct store_compact_info {
	uint64_t bytes_before; /* data.mdb before */
	uint64_t bytes_after;  /* and after */
	uint64_t keys;         /* records copied */
} store_compact_info;

/*
 * Replace data.mdb in @dir with a copy that holds only its live records,
 * made record by record into a fresh file (no byte of a freed page or of a
 * deleted record comes along), synced, renamed over data.mdb; then the old
 * file is overwritten with zeros. The caller must hold the store exclusively
 * (the open lock) with no environment of it open in this process.
 * EF_OK; EF_EIO, EF_EFULL (the store is left as it was, unless the error
 * came from cleaning the old file after the swap).
 */
int store_compact(const char *dir, uint64_t err_id, store_compact_info *out);

#endif

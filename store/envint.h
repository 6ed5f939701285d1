/*
 * envint.h - what a store_env, a store_txn and a store_cur hold, for the
 * engines behind store.h (env.c: LMDB; redis/rstore.c: Redis Cluster).
 * Nothing outside store/ includes it.
 */
#ifndef EF_STORE_ENVINT_H
#define EF_STORE_ENVINT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

#include "store/store.h"
#include "store/txnlock.h"

struct rtxn;
struct rcur;
struct reng;

#define CURS_MAX 4             /* cursors open at once in one transaction */
#define RETRY_MAX 64           /* bound on re-runs of one transaction */
#define RPOOL_MAX 16           /* reset read transactions kept for reuse */

struct store_cur {
	MDB_cursor *c;   /* NULL when the slot is free (LMDB) */
	struct rcur *rc; /* NULL when the slot is free (Redis) */
	store_txn *t;    /* owning transaction */
};

struct store_txn {
	store_env *env;
	MDB_txn *txn;       /* LMDB */
	struct rtxn *rt;    /* Redis Cluster */
	store_val group;    /* Redis Cluster: the group, borrowed */
	int write;
	int map_full;       /* a write hit MDB_MAP_FULL: grow and re-run */
	int failed;         /* an LMDB error: the transaction must abort */
	int fail_code;      /* EF_E* of that error */
	size_t map_seen;    /* map size when the transaction began */
	store_cur curs[CURS_MAX];
};

struct store_env {
	struct reng *reng;  /* Redis Cluster: the rest is unused */
	MDB_env *env;
	MDB_dbi dbi;
	/* Every transaction of this process holds it shared; resizing the map
	 * holds it exclusively, as mdb_env_set_mapsize() requires that the
	 * process has no transaction open. Writer-preferring, so that a resize
	 * is not starved by a stream of readers. */
	pthread_rwlock_t resize;
	uint64_t err_id;
	int rdonly;
	int nosync;                  /* MDB_NOSYNC: store_sync does nothing */
	uint64_t grows;              /* map grown or adopted (atomic) */
	uint64_t syncs;              /* store_sync calls that synced (atomic) */
	int64_t last_reader_check;   /* monotonic ns (atomic) */
	txnlock *tl;                 /* NULL: LMDB's mutexes alone */
	/* Reset read transactions, each keeping its reader slot (MDB_NOTLS:
	 * the slot belongs to the transaction, which any thread may renew). */
	pthread_mutex_t pool_mu;
	MDB_txn *pool[RPOOL_MAX];
	int npool;
};


/* ---- the Redis Cluster engine (redis/rstore.c) ---- */
int rstore_open(store_env *env, const char *addr, const store_opts *o);
void rstore_close(store_env *env);
int rstore_run(store_env *env, const store_val *g, int write,
	       store_txn_fn fn, void *ctx);
int rstore_get(store_txn *t, const void *key, size_t klen, store_val *val);
int rstore_put(store_txn *t, const void *key, size_t klen, const void *val,
	       size_t vlen, unsigned flags);
int rstore_del(store_txn *t, const void *key, size_t klen);
int rstore_cur_open(store_txn *t, store_cur **out);
void rstore_cur_close(store_cur *c);
void rstore_cur_hint(store_cur *c, size_t n);
int rstore_cur_move(store_cur *c, int op, const void *key, size_t klen,
		    store_val *k, store_val *v);
int rstore_each_group(store_env *env, store_each_fn fn, void *ctx);

#define RSTORE_SEEK 1
#define RSTORE_NEXT 2
#define RSTORE_PREV 3
#define RSTORE_LAST 4

#endif

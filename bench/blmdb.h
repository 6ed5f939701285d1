/*
 * blmdb.h - the raw LMDB environment that the hand-written systems
 * (lmdb-raw, legacy-txn, legacy-lock) share.
 */
#ifndef EF_BENCH_BLMDB_H
#define EF_BENCH_BLMDB_H

#include <lmdb.h>

#define BLMDB_MAP_SIZE ((size_t)32 << 30) /* sparse: only used pages count */

/* Open (creating) the environment in @dir with its main database.
 * 0, or BS_ERR with the reason on stderr. */
int blmdb_open(MDB_env **env, MDB_dbi *dbi, const char *dir, int durable,
	       const char *who);

/* Report an LMDB error of @who doing @what; returns BS_ERR. */
int blmdb_err(const char *who, const char *what, int rc);

/* Entries under @prefix, counted with a cursor. */
int blmdb_count_prefix(MDB_env *env, MDB_dbi dbi, const char *prefix,
		       uint64_t *n);

/* A compacting copy (mdb_env_copy2 with MDB_CP_COMPACT) put in place of
 * data.mdb; the environment must be closed and reopened by the caller. */
int blmdb_compact(MDB_env *env, const char *dir, const char *who);

#endif

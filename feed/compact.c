/*
 * compact.c - ef_compact: swap in a copy of data.mdb that holds only its
 * live records (store_compact), with the store to ourselves.
 *
 * Order: the maintenance lock (no other long job), then the open lock
 * turned exclusive (no other handle, in any process; every ef_open holds it
 * shared, and a new ef_open waits while we hold it, told by the note we
 * leave in open.lock, or fails with EF_NOWAIT), then our own
 * environment closed, since the file is renamed under it; then copy, swap,
 * reopen, and the open lock shared again.
 */
#include <string.h>
#include <sys/file.h>

#include "feed/feed.h"
#include "store/error.h"
#include "store/lock.h"

/* who holds the locks, as waiters are told ("pid N (edgefeed compact)") */
#define COMPACT_WHAT "edgefeed compact"

/* Reopen the environment after the swap (or after a failed copy). */
static int reopen(ef_store *st)
{
	store_opts so;
	int rc;

	feed_store_opts(st, &so);
	rc = store_open(&st->env, st->dir, &so, st->err_id);
	if (rc != EF_OK)
		return ef__err(st->err_id, rc,
			       "compact: cannot reopen the store, close the "
			       "handle: %s", ef__err_get(st->err_id));
	return EF_OK;
}

/* On a cluster: every node's append-only file rewritten from its data
 * set (store_rewrite), under the maintenance lock; workers keep writing
 * meanwhile, as Redis rewrites in the background. */
static int compact_cluster(ef_store *st, ef_compact_stats *stats)
{
	store_rewrite_info ri;
	ef_stat_info si;
	ef_maint *lk = NULL;
	int rc;

	rc = ef_maint_lock(st, COMPACT_WHAT, EF_LOCK_NOWAIT, NULL, NULL, &lk);
	if (rc != EF_OK)
		return rc;
	rc = store_rewrite(st->env, &ri);
	ef_maint_unlock(lk);
	if (rc == EF_OK)
		rc = ef_stat(st, &si);
	if (rc == EF_OK) {
		ef__err_clear(st->err_id);
		if (stats) {
			stats->bytes_before = ri.bytes_before;
			stats->bytes_after = ri.bytes_after;
			stats->keys = si.entries + si.index_keys +
				      si.unread_markers + si.legacy_arrays +
				      si.quarantined + si.other_keys;
		}
	}
	return rc;
}

int ef_compact(ef_store *st, ef_compact_stats *stats)
{
	store_compact_info info = {0};
	ef_maint *lk = NULL;
	int rc, rc2;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (st->cfg.flags & EF_RDONLY)
		return ef__err(st->err_id, EF_EINVAL,
			       "the store is open read-only");
	if (store_sharded(st->env))
		return compact_cluster(st, stats);
	rc = ef_maint_lock(st, COMPACT_WHAT, EF_LOCK_NOWAIT, NULL, NULL, &lk);
	if (rc != EF_OK)
		return rc;
	rc = lock_open_exclusive(st->open_lock_fd, COMPACT_WHAT, st->err_id);
	if (rc != EF_OK) {
		/* a failed conversion may have dropped the shared lock */
		lock_flock(st->open_lock_fd, LOCK_SH);
		ef_maint_unlock(lk);
		return rc;
	}
	store_close(st->env);
	st->env = NULL;
	rc = store_compact(st->dir, st->err_id, &info);
	rc2 = reopen(st);
	lock_open_shared_again(st->open_lock_fd);
	ef_maint_unlock(lk);
	if (rc2 != EF_OK)
		rc = rc2; /* the handle is unusable: that matters most */
	if (rc == EF_OK) {
		ef__err_clear(st->err_id);
		if (stats) {
			stats->bytes_before = info.bytes_before;
			stats->bytes_after = info.bytes_after;
			stats->keys = info.keys;
		}
	}
	return rc;
}

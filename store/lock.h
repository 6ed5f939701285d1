/*
 * lock.h - file locks in the store directory, held by the process and
 * released by the kernel when it dies (flock(2)).
 *
 *   open.lock   every open handle holds it shared; compaction exclusively
 *   maint.lock  the maintenance lock that serializes long operations; the
 *               holder writes "pid N (what)" into it for waiters to show
 *   (txn.lock   a POSIX record lock, not a flock: see txnlock.h)
 *
 * flock locks belong to an open file description: two handles in one process
 * exclude each other like two processes do; a child forked while a lock is
 * held shares it (do not fork while holding one).
 */
#ifndef EF_STORE_LOCK_H
#define EF_STORE_LOCK_H

#include <stdint.h>

#include "edgefeed.h"

#define LOCK_OPEN_FILE "open.lock"
#define LOCK_MAINT_FILE "maint.lock"

/* Take the shared open lock; waits while a compaction holds it. *fd gets the
 * descriptor to pass to lock_release(). */
int lock_open_shared(const char *dir, int rdonly, uint64_t err_id, int *fd);

/* Try to turn the shared open lock into an exclusive one without waiting:
 * EF_EBUSY while any other handle is open. */
int lock_open_exclusive(int fd, uint64_t err_id);

/* Take the maintenance lock (see ef_maint_lock). */
int lock_maint(const char *dir, const char *what, unsigned flags,
	       ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd);

/* flock(2) that retries on EINTR; for other files locked the same way. */
int lock_flock(int fd, int op);

/* Release (and for the maintenance lock, clear the holder note). */
void lock_release(int fd, int clear_note);

#endif

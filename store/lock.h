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

/* Take the shared open lock. While a compaction holds it exclusively:
 * with EF_LOCK_NOWAIT in @flags, EF_EBUSY naming the holder; else call
 * @on_wait (if not NULL) with the holder, once, and wait. *fd gets the
 * descriptor to pass to lock_release(). */
int lock_open_shared(const char *dir, int rdonly, unsigned flags,
		     ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd);

/* Try to turn the shared open lock into an exclusive one without waiting:
 * EF_EBUSY while any other handle is open. Once held, the note "pid N
 * (@what)" in open.lock tells waiters who holds it. */
int lock_open_exclusive(int fd, const char *what, uint64_t err_id);

/* Turn the exclusive open lock back into a shared one (waiting, as the
 * exclusive lock is let go first), clearing the note. */
void lock_open_shared_again(int fd);

/* Take the maintenance lock (see ef_maint_lock). */
int lock_maint(const char *dir, const char *what, unsigned flags,
	       ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd);

/* flock(2) that retries on EINTR; for other files locked the same way. */
int lock_flock(int fd, int op);

/* Release (and for the maintenance lock, clear the holder note). */
void lock_release(int fd, int clear_note);

#endif

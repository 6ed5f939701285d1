/*
 * lock.c - flock-based locks in the store directory.
 */
#define _GNU_SOURCE
#include "store/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/error.h"
#include "store/storefile.h"

/* Open @name in the store directory (storefile.h: no link followed, made
 * 0600 with O_EXCL). A read-only handle opens it read-only, and makes it
 * only where it is missing. */
static int lock_file(const char *dir, const char *name, int rdonly,
		     uint64_t err_id, int *fd)
{
	int sys_err, rc;

	rc = storefile_open(dir, name, rdonly ? O_RDONLY : O_RDWR | O_CREAT,
			    err_id, fd, &sys_err);
	if (rc != EF_OK && rdonly && sys_err == ENOENT)
		rc = storefile_open(dir, name, O_RDWR | O_CREAT, err_id, fd,
				    &sys_err);
	return rc;
}

static int flock_retry(int fd, int op)
{
	int rc;

	do
		rc = flock(fd, op);
	while (rc < 0 && errno == EINTR);
	return rc;
}

int lock_flock(int fd, int op)
{
	return flock_retry(fd, op);
}

/* Read the holder's note ("pid N (what)") into @buf. */
static void holder_note(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* Write the note that names this process, holding @fd's lock for @what. */
static void holder_note_write(int fd, const char *what)
{
	char note[256];
	int n = snprintf(note, sizeof(note), "pid %ld (%s)\n", (long)getpid(),
			 what);

	if (n > 0 && ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, note, strlen(note), 0);
}

/* Does @note name a live process? */
static int note_alive(const char *note)
{
	long pid;

	if (sscanf(note, "pid %ld", &pid) != 1 || pid <= 0)
		return 0;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/*
 * The lock is busy: describe its holder for a waiter. The holder writes its
 * note just after it gets the lock, and a holder killed with SIGKILL leaves
 * its note behind, so a note that names no live process is read again for a
 * while (trying @op meanwhile, in case the holder left). Returns 1 (busy;
 * @note says by whom), 0 (the lock is ours now) or -1 (errno).
 */
static int describe_holder(int fd, int op, char *note, size_t cap)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 20; i++) {
		holder_note(fd, note, cap);
		if (note_alive(note))
			return 1;
		nanosleep(&pause, NULL);
		if (flock_retry(fd, op | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -1;
	}
	snprintf(note, cap, "another process");
	return 1;
}

static int lock_err(const char *dir, const char *name, uint64_t err_id)
{
	return ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s", dir, name,
		       strerror(errno));
}

/*
 * Open the lock file @name (*@fd) and take @op (LOCK_SH or LOCK_EX) on it:
 * at once if nobody is in the way. Otherwise @note gets the holder, and:
 * under EF_LOCK_NOWAIT, EF_EBUSY (for the caller to say); else @on_wait is
 * told, once, before the wait. EF_OK once held; on failure *@fd is -1.
 */
static int take(const char *dir, const char *name, int rdonly, int op,
		unsigned flags, ef_wait_fn on_wait, void *ctx, uint64_t err_id,
		int *fd, char *note, size_t cap)
{
	int rc = lock_file(dir, name, rdonly, err_id, fd), busy;

	if (rc != EF_OK || flock_retry(*fd, op | LOCK_NB) == 0)
		return rc;
	if (errno != EWOULDBLOCK)
		goto fail;
	busy = describe_holder(*fd, op, note, cap);
	if (busy <= 0) {
		if (busy < 0)
			goto fail;
		return EF_OK;
	}
	if (flags & EF_LOCK_NOWAIT) {
		rc = EF_EBUSY;
		goto out;
	}
	if (on_wait)
		on_wait(note, ctx);
	if (flock_retry(*fd, op) == 0)
		return EF_OK;
fail:
	rc = lock_err(dir, name, err_id);
out:
	close(*fd);
	*fd = -1;
	return rc;
}

int lock_open_shared(const char *dir, int rdonly, unsigned flags,
		     ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd)
{
	char note[256];
	int rc = take(dir, LOCK_OPEN_FILE, rdonly, LOCK_SH, flags, on_wait, ctx,
		      err_id, fd, note, sizeof(note));

	if (rc == EF_EBUSY)
		return ef__err(err_id, EF_EBUSY,
			       "the store is held exclusively by %s (%s/%s: a "
			       "compaction needs the store to itself)", note,
			       dir, LOCK_OPEN_FILE);
	return rc;
}

int lock_open_exclusive(int fd, const char *what, uint64_t err_id)
{
	if (flock_retry(fd, LOCK_EX | LOCK_NB) == 0) {
		holder_note_write(fd, what);
		return EF_OK;
	}
	if (errno == EWOULDBLOCK)
		return ef__err(err_id, EF_EBUSY,
			       "the store is open in another process or handle");
	return ef__err(err_id, EF_EIO, "cannot lock the store: %s",
		       strerror(errno));
}

void lock_open_shared_again(int fd)
{
	(void)!ftruncate(fd, 0); /* the note: nobody holds it exclusively */
	flock_retry(fd, LOCK_SH);
}

int lock_maint(const char *dir, const char *what, unsigned flags,
	       ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd)
{
	char note[256];
	int rc = take(dir, LOCK_MAINT_FILE, 0, LOCK_EX, flags, on_wait, ctx,
		      err_id, fd, note, sizeof(note));

	if (rc == EF_EBUSY)
		return ef__err(err_id, EF_EBUSY,
			       "the maintenance lock is held by %s", note);
	if (rc == EF_OK)
		holder_note_write(*fd, what ? what : "maintenance");
	return rc;
}

void lock_release(int fd, int clear_note)
{
	if (fd < 0)
		return;
	if (clear_note)
		(void)!ftruncate(fd, 0);
	close(fd); /* closing the only descriptor releases the flock */
}

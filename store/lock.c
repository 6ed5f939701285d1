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

int lock_open_shared(const char *dir, int rdonly, uint64_t err_id, int *fd)
{
	int rc = lock_file(dir, LOCK_OPEN_FILE, rdonly, err_id, fd);

	if (rc != EF_OK)
		return rc;
	if (flock_retry(*fd, LOCK_SH) < 0) {
		rc = ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s", dir,
			     LOCK_OPEN_FILE, strerror(errno));
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int lock_open_exclusive(int fd, uint64_t err_id)
{
	if (flock_retry(fd, LOCK_EX | LOCK_NB) == 0)
		return EF_OK;
	if (errno == EWOULDBLOCK)
		return ef__err(err_id, EF_EBUSY,
			       "the store is open in another process or handle");
	return ef__err(err_id, EF_EIO, "cannot lock the store: %s",
		       strerror(errno));
}

/* Read the holder's note ("pid N (what)") into @buf. */
static void holder_note(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
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
 * while (trying the lock meanwhile, in case the holder left). Returns 1
 * (busy; @note says by whom), 0 (the lock is ours now) or -1 (errno).
 */
static int describe_holder(int fd, char *note, size_t cap)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 20; i++) {
		holder_note(fd, note, cap);
		if (note_alive(note))
			return 1;
		nanosleep(&pause, NULL);
		if (flock_retry(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -1;
	}
	snprintf(note, cap, "another process");
	return 1;
}

int lock_maint(const char *dir, const char *what, unsigned flags,
	       ef_wait_fn on_wait, void *ctx, uint64_t err_id, int *fd)
{
	char note[256];
	int rc = lock_file(dir, LOCK_MAINT_FILE, 0, err_id, fd);
	int n;

	if (rc != EF_OK)
		return rc;
	if (flock_retry(*fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			rc = ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s",
				     dir, LOCK_MAINT_FILE, strerror(errno));
			goto fail;
		}
		rc = describe_holder(*fd, note, sizeof(note));
		if (rc < 0) {
			rc = ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s",
				     dir, LOCK_MAINT_FILE, strerror(errno));
			goto fail;
		}
		if (rc == 0)
			goto mine;
		rc = EF_OK;
		if (flags & EF_LOCK_NOWAIT) {
			rc = ef__err(err_id, EF_EBUSY,
				     "the maintenance lock is held by %s", note);
			goto fail;
		}
		if (on_wait)
			on_wait(note, ctx);
		if (flock_retry(*fd, LOCK_EX) < 0) {
			rc = ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s",
				     dir, LOCK_MAINT_FILE, strerror(errno));
			goto fail;
		}
	}
mine:
	n = snprintf(note, sizeof(note), "pid %ld (%s)\n", (long)getpid(),
		     what ? what : "maintenance");
	if (n > 0 && ftruncate(*fd, 0) == 0)
		(void)!pwrite(*fd, note, strlen(note), 0);
	return EF_OK;
fail:
	close(*fd);
	*fd = -1;
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

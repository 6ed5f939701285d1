/*
 * storefile.c - the store directory and its files, trusted only when they
 * are what the store made (see storefile.h).
 */
#define _GNU_SOURCE
#include "store/storefile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "edgefeed.h"
#include "store/error.h"
#include "store/lock.h"
#include "store/txnlock.h"

#define OPEN_TRIES 8 /* made and removed by another process in between */

/* The files an open store depends on. Not the keyring: one that cannot
 * be used costs IPs, never entries or reads (store/keyring.h), so it is
 * refused where it is used; nor compaction's temporary copy, made and
 * checked by store/compact.c. */
static const char *const store_files[] = {
	STOREFILE_DATA, STOREFILE_LOCK, LOCK_OPEN_FILE,
	LOCK_MAINT_FILE, TXNLOCK_FILE,
};

static const char *kind_of(mode_t mode)
{
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "something else";
}

static const char *writers_of(mode_t mode)
{
	if ((mode & S_IWGRP) && (mode & S_IWOTH))
		return "group and others";
	return (mode & S_IWGRP) ? "group" : "others";
}

/*
 * Is @sb (of @dir, or of @name in it when @name) to be trusted: the right
 * type, owned by us or root, writable by neither group nor others? EF_OK,
 * or EF_EIO saying which path and why.
 */
static int trusted(const char *dir, const char *name, const struct stat *sb,
		   uint64_t err_id)
{
	const char *what = name ? "file" : "directory";
	const char *sep = name ? "/" : "";
	uid_t me = geteuid();

	assert(name || S_ISDIR(sb->st_mode)); /* opened with O_DIRECTORY */
	if (name && S_ISLNK(sb->st_mode))
		return ef__err(err_id, EF_EIO,
			       "unsafe store file '%s/%s': a symbolic link "
			       "(the store never follows one; remove it, the "
			       "store makes its own files)", dir, name);
	if (name && !S_ISREG(sb->st_mode))
		return ef__err(err_id, EF_EIO,
			       "unsafe store file '%s/%s': not a regular file "
			       "but %s (remove it, the store makes its own "
			       "files)", dir, name, kind_of(sb->st_mode));
	if (sb->st_uid != me && sb->st_uid != 0)
		return ef__err(err_id, EF_EIO,
			       "unsafe store %s '%s%s%s': owned by uid %lu, "
			       "not by uid %lu (this process) or root (chown "
			       "it, or run as its owner)", what, dir, sep,
			       name ? name : "", (unsigned long)sb->st_uid,
			       (unsigned long)me);
	if (sb->st_mode & (S_IWGRP | S_IWOTH))
		return ef__err(err_id, EF_EIO,
			       "unsafe store %s '%s%s%s': writable by %s "
			       "(mode %04o; chmod go-w it)", what, dir, sep,
			       name ? name : "", writers_of(sb->st_mode),
			       (unsigned)(sb->st_mode & 07777));
	return EF_OK;
}

/* A descriptor of the store directory @dir, checked. */
static int dir_open(const char *dir, uint64_t err_id, int *dfd, int *sys_err)
{
	struct stat sb;
	int rc;

	/* O_PATH: what is checked is the directory, not whether we may list it */
	*dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0) {
		*sys_err = errno;
		return ef__err(err_id, EF_EIO,
			       "cannot open store directory '%s': %s", dir,
			       strerror(errno));
	}
	if (fstat(*dfd, &sb) < 0) {
		*sys_err = errno;
		rc = ef__err(err_id, EF_EIO, "cannot stat '%s': %s", dir,
			     strerror(errno));
	} else {
		rc = trusted(dir, NULL, &sb, err_id);
	}
	if (rc != EF_OK) {
		close(*dfd);
		*dfd = -1;
	}
	return rc;
}

/* openat @name without following a link or blocking on a FIFO; made with
 * O_EXCL when @flags has O_CREAT and it is missing. -1 and errno. */
static int open_at(int dfd, const char *name, int flags)
{
	int base = (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW | O_CLOEXEC |
		   O_NOCTTY | O_NONBLOCK;
	int fd = -1;

	for (int i = 0; i < OPEN_TRIES && fd < 0; i++) {
		if (flags & O_CREAT) {
			fd = openat(dfd, name, base | O_CREAT | O_EXCL, 0600);
			if (fd >= 0 || errno != EEXIST)
				break;
		}
		fd = openat(dfd, name, base);
		if (fd >= 0 || errno != ENOENT || !(flags & O_CREAT))
			break;
	}
	if (fd >= 0 && !(flags & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* @name in @dir could not be opened (errno @e): refuse what is there if
 * it is not to be trusted (a link, a FIFO...), else report @e. */
static int open_failed(int dfd, const char *dir, const char *name, int e,
		       uint64_t err_id, int *sys_err)
{
	struct stat sb;
	int rc;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (rc = trusted(dir, name, &sb, err_id)) != EF_OK)
		return rc;
	*sys_err = e;
	return ef__err(err_id, e == ENOSPC || e == EDQUOT ? EF_EFULL : EF_EIO,
		       "cannot open '%s/%s': %s", dir, name, strerror(e));
}

int storefile_open(const char *dir, const char *name, int flags,
		   uint64_t err_id, int *fd, int *sys_err)
{
	struct stat sb;
	int dfd, rc;

	*fd = -1;
	*sys_err = 0;
	rc = dir_open(dir, err_id, &dfd, sys_err);
	if (rc != EF_OK)
		return rc;
	*fd = open_at(dfd, name, flags);
	if (*fd < 0)
		rc = open_failed(dfd, dir, name, errno, err_id, sys_err);
	else if (fstat(*fd, &sb) < 0)
		rc = ef__err(err_id, EF_EIO, "cannot stat '%s/%s': %s", dir,
			     name, strerror(errno));
	else
		rc = trusted(dir, name, &sb, err_id);
	if (rc != EF_OK && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	close(dfd);
	return rc;
}

/* @name in the directory @dfd, checked if it exists (st_nlink 0 if not). */
static int check_at(int dfd, const char *dir, const char *name,
		    uint64_t err_id, struct stat *sb)
{
	if (fstatat(dfd, name, sb, AT_SYMLINK_NOFOLLOW) == 0)
		return trusted(dir, name, sb, err_id);
	memset(sb, 0, sizeof(*sb));
	if (errno == ENOENT)
		return EF_OK;
	return ef__err(err_id, EF_EIO, "cannot stat '%s/%s': %s", dir, name,
		       strerror(errno));
}

int storefile_check(const char *dir, const char *name, uint64_t err_id,
		    struct stat *sb)
{
	int dfd, ignore, rc;

	rc = dir_open(dir, err_id, &dfd, &ignore);
	if (rc != EF_OK)
		return rc;
	rc = check_at(dfd, dir, name, err_id, sb);
	close(dfd);
	return rc;
}

int storefile_check_all(const char *dir, uint64_t err_id)
{
	struct stat sb;
	int dfd, ignore, rc;

	rc = dir_open(dir, err_id, &dfd, &ignore);
	for (size_t i = 0; rc == EF_OK && i < sizeof(store_files) /
						  sizeof(*store_files); i++)
		rc = check_at(dfd, dir, store_files[i], err_id, &sb);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int storefile_same(const char *dir, const char *name, int fd,
		   uint64_t err_id)
{
	struct stat seen, opened;
	int rc = storefile_check(dir, name, err_id, &seen);

	if (rc != EF_OK)
		return rc;
	if (fstat(fd, &opened) < 0)
		return ef__err(err_id, EF_EIO, "cannot stat '%s/%s': %s", dir,
			       name, strerror(errno));
	if (seen.st_nlink == 0 || seen.st_dev != opened.st_dev ||
	    seen.st_ino != opened.st_ino)
		return ef__err(err_id, EF_EIO,
			       "unsafe store file '%s/%s': replaced while it "
			       "was being opened", dir, name);
	return EF_OK;
}

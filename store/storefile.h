/*
 * storefile.h - the store directory and the files the store keeps in it
 * (data.mdb, lock.mdb, open.lock, maint.lock, txn.lock, keyring, and
 * compaction's temporary copy), opened without trusting what was planted
 * there.
 *
 * Trusted, as ssh trusts its key files: a directory or regular file owned
 * by this process's effective uid or by root (who can change anything
 * anyway), and writable by neither group nor others. A symbolic link is
 * never followed, whoever owns it: the store makes its own files. Anything
 * else is refused with EF_EIO and a message naming the path and why
 * ("unsafe store file '/d/keyring': a symbolic link ..."), before a byte
 * is read from it or written to it.
 *
 * Files are opened relative to a descriptor of the checked directory
 * (openat), with O_NOFOLLOW, and never block on a FIFO or a device planted
 * under a store file's name. A file that is made is made with O_EXCL, mode
 * 0600. Since only the directory's owner (or root) can add, remove or swap
 * its entries once the directory is trusted, a file checked here stays
 * what it was checked as.
 */
#ifndef EF_STORE_STOREFILE_H
#define EF_STORE_STOREFILE_H

#include <stdint.h>
#include <sys/stat.h>

#define STOREFILE_DATA "data.mdb" /* LMDB's database */
#define STOREFILE_LOCK "lock.mdb" /* LMDB's reader table */

/* Open @name in the store directory @dir with @flags (O_RDONLY or O_RDWR,
 * and O_CREAT to make it, 0600, if missing); O_NOFOLLOW and O_CLOEXEC are
 * added. EF_OK with *@fd; otherwise *@fd is -1, the code (EF_EIO, or
 * EF_EFULL) and detail are recorded under @err_id, and *@sys_err is the
 * errno of the failed open
 * (ENOENT, EACCES, ...) for a caller that falls back, or 0 when something
 * was there but refused. */
int storefile_open(const char *dir, const char *name, int flags,
		   uint64_t err_id, int *fd, int *sys_err);

/* Check the store directory @dir and every store file already in it that
 * an open depends on (all but the keyring, which is checked where it is
 * used), without following links: EF_OK, or EF_EIO naming the first that
 * is not to be trusted. Missing files are fine. */
int storefile_check_all(const char *dir, uint64_t err_id);

/* Check @name in @dir if it exists, without following a link: EF_OK with
 * *@sb filled (@sb->st_nlink 0 when it does not exist), or EF_EIO. */
int storefile_check(const char *dir, const char *name, uint64_t err_id,
		    struct stat *sb);

/* Is the open descriptor @fd the file @name in @dir (same device and
 * inode as the link-free lookup of @name), and that file to be trusted?
 * EF_OK or EF_EIO. For a file that another library opened by path (LMDB's
 * data.mdb), checked after it did. */
int storefile_same(const char *dir, const char *name, int fd,
		   uint64_t err_id);

#endif

/*
 * compact.c - a compact copy of the LMDB environment, swapped in for
 * data.mdb (see store_compact in store.h).
 *
 * The copy is made record by record into a fresh environment (cursor walk,
 * MDB_APPEND), not with mdb_env_copy2(MDB_CP_COMPACT): that one copies live
 * pages whole, and LMDB reuses page buffers without clearing them, so bytes
 * of deleted records survive in the unused tail of live pages (overflow
 * pages above all) and would survive the copy. A fresh environment only
 * ever holds bytes that were handed to mdb_put, and zeros.
 */
#define _GNU_SOURCE
#include "store/alloc.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/error.h"
#include "store/storefile.h"

#define DATA_FILE STOREFILE_DATA
#define TEMP_PREFIX "data.mdb.compact-"
#define COPY_BATCH 10000 /* records per write transaction of the copy */
#define ZERO_CHUNK ((size_t)1 << 20)

typedef struct copy_job {
	const char *dir;
	uint64_t err_id;
	MDB_env *src, *dst;
	MDB_txn *rtxn;          /* one snapshot of the source */
	MDB_dbi sdbi;
	size_t dst_map;         /* current map size of the copy */
	unsigned char last[512];/* last key committed to the copy */
	size_t last_len;        /* 0: none yet */
	uint64_t keys;          /* records committed */
} copy_job;

static int mdb_fail(const copy_job *j, const char *what, int rc)
{
	return ef__err(j->err_id,
		       rc == MDB_MAP_FULL || rc == ENOSPC ? EF_EFULL : EF_EIO,
		       "compact: %s: %s", what, mdb_strerror(rc));
}

static int sys_fail(const copy_job *j, const char *what, const char *path)
{
	int e = errno;
	return ef__err(j->err_id, e == ENOSPC ? EF_EFULL : EF_EIO,
		       "compact: cannot %s '%s': %s", what, path, strerror(e));
}

/* Copies of an earlier compact that died midway hold nothing that the
 * store does not: remove them. */
static void remove_stale_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[4096];

		if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
		    (int)sizeof(path))
			unlink(path);
	}
	closedir(d);
}

static int open_source(copy_job *j)
{
	MDB_envinfo info;
	int rc;

	/* no lock file: the caller holds the store exclusively */
	rc = mdb_env_create(&j->src);
	if (rc == 0)
		rc = mdb_env_open(j->src, j->dir, MDB_RDONLY | MDB_NOLOCK, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(j->src, NULL, MDB_RDONLY, &j->rtxn);
	if (rc == 0)
		rc = mdb_dbi_open(j->rtxn, NULL, 0, &j->sdbi);
	if (rc)
		return mdb_fail(j, "open the store", rc);
	mdb_env_info(j->src, &info);
	j->dst_map = info.me_mapsize;
	return EF_OK;
}

/* Is LMDB's descriptor of the copy the file mkstemp made (@tmp_fd), not
 * something put in its place in between? */
static int copy_is_ours(const copy_job *j, const char *path, int tmp_fd)
{
	struct stat made, opened;
	mdb_filehandle_t fd;

	if (mdb_env_get_fd(j->dst, &fd) != 0 || fstat(fd, &opened) < 0 ||
	    fstat(tmp_fd, &made) < 0)
		return sys_fail(j, "stat the copy", path);
	if (made.st_dev != opened.st_dev || made.st_ino != opened.st_ino)
		return ef__err(j->err_id, EF_EIO,
			       "compact: unsafe store file '%s': replaced "
			       "while it was being opened", path);
	return EF_OK;
}

/* LMDB opens the copy by path: @tmp_fd, still open, says what it must be. */
static int open_copy(copy_job *j, const char *path, int tmp_fd)
{
	int rc = mdb_env_create(&j->dst);

	if (rc == 0)
		rc = mdb_env_set_mapsize(j->dst, j->dst_map);
	if (rc == 0)
		rc = mdb_env_open(j->dst, path,
				  MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600);
	return rc ? mdb_fail(j, "create the copy", rc)
		  : copy_is_ours(j, path, tmp_fd);
}

/* Position @cur on the first record after j->last (the first of all at
 * the start). */
static int seek_next(copy_job *j, MDB_cursor *cur, MDB_val *k, MDB_val *v)
{
	int rc;

	if (!j->last_len)
		return mdb_cursor_get(cur, k, v, MDB_FIRST);
	k->mv_size = j->last_len;
	k->mv_data = j->last;
	rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == j->last_len &&
	    memcmp(k->mv_data, j->last, j->last_len) == 0)
		rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
	return rc;
}

/* Copy up to COPY_BATCH records after j->last in one transaction of the
 * copy; *done when the source has no more. j->last and j->keys move only
 * when the transaction commits, so an MDB_MAP_FULL can simply be retried. */
static int copy_batch(copy_job *j, int *done)
{
	unsigned char last[512];
	size_t last_len = 0;
	MDB_txn *w = NULL;
	MDB_cursor *cur = NULL;
	MDB_dbi ddbi;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	*done = 0;
	rc = mdb_txn_begin(j->dst, NULL, 0, &w);
	if (rc == 0)
		rc = mdb_dbi_open(w, NULL, 0, &ddbi);
	if (rc == 0)
		rc = mdb_cursor_open(j->rtxn, j->sdbi, &cur);
	if (rc == 0)
		rc = seek_next(j, cur, &k, &v);
	while (rc == 0 && n < COPY_BATCH) {
		rc = mdb_put(w, ddbi, &k, &v, MDB_APPEND);
		if (rc)
			break;
		n++;
		memcpy(last, k.mv_data, last_len = k.mv_size);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		*done = 1;
		rc = 0;
	}
	if (cur)
		mdb_cursor_close(cur);
	if (w && rc) {
		mdb_txn_abort(w);
		return rc;
	}
	if (rc)
		return rc;
	rc = mdb_txn_commit(w);
	if (rc == 0 && n) {
		memcpy(j->last, last, last_len);
		j->last_len = last_len;
		j->keys += n;
	}
	return rc;
}

static int copy_all(copy_job *j)
{
	int rc, done = 0;

	while (!done) {
		rc = copy_batch(j, &done);
		if (rc == MDB_MAP_FULL) {
			/* nothing of the batch was committed: grow, redo it */
			done = 0;
			j->dst_map *= 2;
			rc = mdb_env_set_mapsize(j->dst, j->dst_map);
		}
		if (rc)
			return mdb_fail(j, "copy", rc);
	}
	rc = mdb_env_sync(j->dst, 1);
	return rc ? mdb_fail(j, "sync the copy", rc) : EF_OK;
}

static int fsync_dir(const copy_job *j)
{
	int fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd) < 0)
		rc = sys_fail(j, "sync the directory", j->dir);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Overwrite the whole of the (unlinked) old file with zeros and sync, so
 * its blocks are released clean where the filesystem writes in place. */
static int scrub_old(const copy_job *j, int fd, uint64_t size)
{
	uint8_t *zero = ef__calloc(1, ZERO_CHUNK);
	uint64_t off = 0;
	int rc = EF_OK;

	if (!zero)
		return ef__err(j->err_id, EF_ENOMEM, "out of memory");
	while (off < size && rc == EF_OK) {
		size_t n = size - off < ZERO_CHUNK ? (size_t)(size - off)
						   : ZERO_CHUNK;
		ssize_t w = pwrite(fd, zero, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = sys_fail(j, "overwrite the old", DATA_FILE);
		else
			off += (uint64_t)w;
	}
	free(zero);
	if (rc == EF_OK && fdatasync(fd) < 0)
		rc = sys_fail(j, "sync the old", DATA_FILE);
	return rc;
}

/* Swap @tmp in for data.mdb, then scrub the old file. */
static int swap_in(copy_job *j, const char *tmp, store_compact_info *out)
{
	char data[4096];
	struct stat sb;
	int old, rc, e;

	snprintf(data, sizeof(data), "%s/%s", j->dir, DATA_FILE);
	/* it is zeroed below: never through a link (storefile.h) */
	rc = storefile_open(j->dir, DATA_FILE, O_RDWR, j->err_id, &old, &e);
	if (rc != EF_OK)
		return rc;
	if (fstat(old, &sb) < 0) {
		rc = sys_fail(j, "stat", data);
		close(old);
		return rc;
	}
	out->bytes_before = (uint64_t)sb.st_size;
	if (rename(tmp, data) < 0) {
		rc = sys_fail(j, "rename the copy to", data);
		close(old);
		return rc;
	}
	rc = fsync_dir(j);
	/* the new file is in place and durable; what follows only cleans */
	if (rc == EF_OK)
		rc = scrub_old(j, old, out->bytes_before);
	close(old);
	if (stat(data, &sb) == 0)
		out->bytes_after = (uint64_t)sb.st_size;
	return rc;
}

int store_compact(const char *dir, uint64_t err_id, store_compact_info *out)
{
	copy_job j;
	char tmp[4096];
	int fd, rc;

	memset(&j, 0, sizeof(j));
	memset(out, 0, sizeof(*out));
	j.dir = dir;
	j.err_id = err_id;
	remove_stale_temps(dir);
	if (snprintf(tmp, sizeof(tmp), "%s/%sXXXXXX", dir, TEMP_PREFIX) >=
	    (int)sizeof(tmp))
		return ef__err(err_id, EF_EINVAL, "store path too long");
	/* an empty file, made with O_EXCL, mode 0600: LMDB initializes it */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return sys_fail(&j, "create", tmp);
	rc = open_source(&j);
	if (rc == EF_OK)
		rc = open_copy(&j, tmp, fd);
	close(fd);
	if (rc == EF_OK)
		rc = copy_all(&j);
	if (j.rtxn)
		mdb_txn_abort(j.rtxn);
	if (j.src)
		mdb_env_close(j.src);
	if (j.dst)
		mdb_env_close(j.dst);
	if (rc == EF_OK)
		rc = swap_in(&j, tmp, out);
	else
		unlink(tmp);
	out->keys = j.keys;
	return rc;
}

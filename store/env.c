/*
 * env.c - the LMDB environment behind store.h: transactions that retry on a
 * full or resized map, reader-slot hygiene, and the LMDB error mapping.
 *
 * No thread waits on LMDB's process-shared mutexes (a kill can lose their
 * wake-ups, txnlock.h): a write transaction holds txn.lock from begin to
 * commit or abort; a read transaction is a reset one kept from before
 * (mdb_txn_renew keeps its reader slot: no mutex), or begun under txn.lock
 * when there is none; dead readers are cleared under txn.lock. Lock order:
 * txn.lock, then the resize lock.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "store/alloc.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "store/envint.h"
#include "store/error.h"
#include "store/nowait.h"
#include "store/redis/addr.h"
#include "store/storefile.h"
#include "store/txnlock.h"

#define GROW_STEP_MAX ((size_t)1 << 30) /* grow by doubling up to 1 GiB steps */
#define READER_CHECK_NS 1000000000LL /* clear dead readers at most once a second */
#define FULL_SLACK ((unsigned long long)1 << 20) /* "nearly full": see commit_err */
#define REGION_RETRY_MAX 2000  /* reopens (1 ms apart) for a half-made lock.mdb */

/* store__inject's state: off when inj_left is 0 */
static int inj_op, inj_rc;
static uint64_t inj_left;
static pthread_mutex_t inj_mu = PTHREAD_MUTEX_INITIALIZER;

void store__inject(int op, uint64_t nth, int rc)
{
	pthread_mutex_lock(&inj_mu);
	inj_op = op;
	inj_rc = rc;
	__atomic_store_n(&inj_left, nth, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&inj_mu);
}

/* The code to fail @op with now, or 0 (one relaxed load when off). */
static int injected(int op)
{
	int rc = 0;

	if (__atomic_load_n(&inj_left, __ATOMIC_RELAXED) == 0)
		return 0;
	pthread_mutex_lock(&inj_mu);
	if (inj_left && inj_op == op && --inj_left == 0)
		rc = inj_rc;
	pthread_mutex_unlock(&inj_mu);
	return rc;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Map an LMDB or errno code to EF_E*, recording what failed. */
static int lmdb_err(store_env *env, const char *what, int rc)
{
	int code;

	switch (rc) {
	case MDB_MAP_FULL:
		code = EF_EFULL;
		break;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_BAD_TXN:
		code = EF_ECORRUPT;
		break;
	case MDB_VERSION_MISMATCH:
		code = EF_EVERSION;
		break;
	case MDB_READERS_FULL:
	case MDB_TXN_FULL:
		code = EF_EBUSY;
		break;
	case MDB_PANIC:
		code = EF_EIO;
		break;
	default:
		code = rc > 0 ? ef__errno_code(rc) : EF_EIO;
		break;
	}
	return ef__err(env->err_id, code, "lmdb: %s: %s%s", what,
		       mdb_strerror(rc),
		       rc == MDB_PANIC ? " (the store must be reopened)" : "");
}

uint64_t store_err_id(const store_env *env)
{
	return env->err_id;
}

uint64_t store_map_grows(const store_env *env)
{
	if (env->reng)
		return 0;
	return __atomic_load_n(&env->grows, __ATOMIC_RELAXED);
}

int store_sync(store_env *env)
{
	int rc;

	if (env->reng || env->nosync || env->rdonly)
		return EF_OK; /* Redis: appendfsync, the cluster's setting */
	rc = mdb_env_sync(env->env, 1);
	if (rc != MDB_SUCCESS)
		return lmdb_err(env, "mdb_env_sync", rc);
	__atomic_add_fetch(&env->syncs, 1, __ATOMIC_RELAXED);
	return EF_OK;
}

uint64_t store_syncs(const store_env *env)
{
	return __atomic_load_n(&env->syncs, __ATOMIC_RELAXED);
}

/* Clear the reader slots of dead processes (under txn.lock: it takes the
 * reader table's mutex when it finds one). */
static void reader_check(store_env *env, int force)
{
	int64_t now = mono_ns();
	int64_t last = __atomic_load_n(&env->last_reader_check, __ATOMIC_RELAXED);
	int dead = 0;

	if (!force && now - last < READER_CHECK_NS)
		return;
	if (!__atomic_compare_exchange_n(&env->last_reader_check, &last, now, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED) &&
	    !force)
		return;
	mdb_reader_check(env->env, &dead);
}

/* Open the main database. Another process may grow the map between
 * mdb_env_open and here: adopt its size and try again (no other thread can
 * hold a transaction on an environment that is not returned yet). */
static int open_main_dbi(store_env *env, int rdonly)
{
	MDB_txn *txn;
	int rc;

	for (int attempt = 0; attempt < RETRY_MAX; attempt++) {
		txn = NULL;
		rc = mdb_txn_begin(env->env, NULL, rdonly ? MDB_RDONLY : 0, &txn);
		if (rc == MDB_MAP_RESIZED) {
			rc = mdb_env_set_mapsize(env->env, 0);
			if (rc)
				return rc;
			continue;
		}
		if (rc)
			return rc;
		rc = mdb_dbi_open(txn, NULL, 0, &env->dbi);
		if (rc) {
			mdb_txn_abort(txn);
			return rc;
		}
		return mdb_txn_commit(txn);
	}
	return MDB_MAP_RESIZED;
}

/* Is lock.mdb's region half-made: its transaction id 0 while data.mdb has
 * commits? LMDB's first opener sets it to 0 when it (re)initializes the
 * region and to the last commit's when done; killed in between, it leaves
 * 0, and the next writer would build on meta page 0 whatever the last
 * commit was. Call under txn.lock (the read takes the reader mutex). */
static int region_half_made(MDB_env *e)
{
	MDB_envinfo info;
	MDB_txn *txn;
	size_t id;

	if (mdb_env_info(e, &info) != 0 || info.me_last_txnid == 0)
		return 0;
	if (mdb_txn_begin(e, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	id = mdb_txn_id(txn);
	mdb_txn_abort(txn);
	return id == 0;
}

/* LMDB opens data.mdb and lock.mdb by path, following links and making
 * them if missing: check both before (a planted link or foreign file is
 * refused before LMDB touches it) and after, that the data.mdb LMDB holds
 * open is the one checked (storefile.h). EF_OK or EF_EIO. */
static int files_trusted(const char *dir, MDB_env *e, uint64_t err_id)
{
	struct stat sb;
	mdb_filehandle_t fd;
	int rc = storefile_check(dir, STOREFILE_DATA, err_id, &sb);

	if (rc == EF_OK)
		rc = storefile_check(dir, STOREFILE_LOCK, err_id, &sb);
	if (rc == EF_OK && e && mdb_env_get_fd(e, &fd) == 0)
		rc = storefile_same(dir, STOREFILE_DATA, fd, err_id);
	return rc;
}

/* mdb_env_create and mdb_env_open, under txn.lock: an LMDB code. */
static int env_open(store_env *env, const char *dir, const store_opts *o,
		    unsigned flags)
{
	int rc = mdb_env_create(&env->env);

	if (rc) {
		env->env = NULL;
		return rc;
	}
	mdb_env_set_mapsize(env->env, o->map_size);
	mdb_env_set_maxreaders(env->env, o->max_readers);
	return mdb_env_open(env->env, dir, flags, 0600);
}

/* What a failed mdb_env_open (LMDB or errno code @rc) means, recorded. */
static int env_open_err(store_env *env, const char *dir, int rc)
{
	if (rc == EACCES || rc == EPERM)
		return ef__err(env->err_id, EF_EIO,
			       "cannot open store '%s': permission denied", dir);
	if (rc == ENOENT)
		return ef__err(env->err_id, EF_ENOTFOUND,
			       "cannot open store '%s': no store there", dir);
	if (rc == MDB_INVALID)
		return ef__err(env->err_id, EF_ECORRUPT,
			       "cannot open store '%s': data.mdb is not an LMDB "
			       "file", dir);
	return lmdb_err(env, "mdb_env_open", rc);
}

/*
 * Open the environment, under txn.lock. The first process to open the
 * store (re)initializes lock.mdb (region_half_made()); killed in between
 * while another opener waited on lock.mdb, that one took the region as
 * made and wrote on a stale snapshot: the last commit before it was lost
 * (tests/test-txnlock.c). Openers wait on txn.lock instead, and the next
 * one finds nobody using lock.mdb and initializes it again; or, if it came
 * in while the killed one's lock.mdb was still being let go, it sees the
 * half-made region, closes and opens again.
 */
static int env_open_locked(store_env *env, const char *dir,
			   const store_opts *o, unsigned flags)
{
	int rc = files_trusted(dir, NULL, env->err_id);

	for (int attempt = 0; rc == EF_OK; attempt++) {
		rc = env_open(env, dir, o, flags);
		if (rc)
			return env_open_err(env, dir, rc);
		if (!region_half_made(env->env))
			return files_trusted(dir, env->env, env->err_id);
		mdb_env_close(env->env);
		env->env = NULL;
		if (attempt == REGION_RETRY_MAX)
			return ef__err(env->err_id, EF_EBUSY,
				       "cannot open store '%s': lock.mdb was "
				       "left half-made by a process killed while "
				       "opening the store, and a process that "
				       "does not take txn.lock (such as LMDB's "
				       "own tools) holds it open; stop the "
				       "processes using the store, then open it "
				       "again", dir);
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return rc;
}

/* A new store_env with its locks made, or NULL (recorded). */
static store_env *env_new(const store_opts *o, uint64_t err_id)
{
	store_env *env = ef__calloc(1, sizeof(*env));
	pthread_rwlockattr_t attr;
	int rc;

	if (!env) {
		ef__err(err_id, EF_ENOMEM, "out of memory");
		return NULL;
	}
	env->err_id = err_id;
	env->rdonly = o->rdonly;
	env->nosync = o->nosync;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&env->resize, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc == 0 && (rc = pthread_mutex_init(&env->pool_mu, NULL)) != 0)
		pthread_rwlock_destroy(&env->resize);
	if (rc) {
		free(env);
		ef__err(err_id, EF_ENOMEM, "cannot create a lock");
		return NULL;
	}
	return env;
}

int store_open(store_env **out, const char *dir, const store_opts *o,
	       uint64_t err_id)
{
	store_env *env;
	unsigned flags = MDB_NOTLS;
	mdb_filehandle_t fd;
	int rc;

	*out = NULL;
	env = env_new(o, err_id);
	if (!env)
		return EF_ENOMEM;
	if (raddr_is(dir)) {
		rc = rstore_open(env, dir, o);
		if (rc != EF_OK)
			goto fail;
		*out = env;
		return EF_OK;
	}
	if (o->nosync)
		flags |= MDB_NOSYNC;
	if (o->rdonly)
		flags |= MDB_RDONLY;
	rc = txnlock_open(dir, err_id, &env->tl);
	if (rc != EF_OK)
		goto fail;
	txnlock_take(env->tl);
	rc = env_open_locked(env, dir, o, flags);
	if (rc == EF_OK) {
		/* LMDB opens data.mdb without close-on-exec: a worker that
		 * execs must not hand it on */
		if (mdb_env_get_fd(env->env, &fd) == 0)
			fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
		reader_check(env, 1);
		rc = open_main_dbi(env, o->rdonly);
		if (rc)
			rc = lmdb_err(env, "open main database", rc);
	}
	txnlock_give(env->tl);
	if (rc != EF_OK)
		goto fail;
	*out = env;
	return EF_OK;
fail:
	store_close(env);
	return rc;
}

void store_close(store_env *env)
{
	if (!env)
		return;
	rstore_close(env);
	for (int i = 0; i < env->npool; i++)
		mdb_txn_abort(env->pool[i]);
	if (env->env)
		mdb_env_close(env->env);
	txnlock_close(env->tl);
	pthread_mutex_destroy(&env->pool_mu);
	pthread_rwlock_destroy(&env->resize);
	free(env);
}

/* A failed commit. LMDB writes a commit's pages with pwrite(v) and turns
 * a short write into EIO (mdb_page_flush); the kernel writes short when the
 * file system fills in the middle of a write, which then leaves it (nearly)
 * full. So EIO from a commit on a file system with less than FULL_SLACK
 * free is a full disk, and said as one; any other EIO stays EF_EIO. */
static int commit_err(store_env *env, int rc)
{
	mdb_filehandle_t fd;
	struct statvfs vfs;

	if (rc == EIO && mdb_env_get_fd(env->env, &fd) == 0 &&
	    fstatvfs(fd, &vfs) == 0) {
		unsigned long long avail =
			(unsigned long long)vfs.f_bavail * vfs.f_frsize;

		if (avail < FULL_SLACK)
			return ef__err(env->err_id, EF_EFULL,
				       "lmdb: commit: No space left on device "
				       "(a write was cut short; %llu bytes "
				       "free)", avail);
	}
	return lmdb_err(env, "commit", rc);
}

/* Grow the map, unless another thread already did since @seen was read. */
static int map_grow(store_env *env, size_t seen)
{
	MDB_envinfo info;
	size_t next;
	int rc = EF_OK;

	pthread_rwlock_wrlock(&env->resize);
	mdb_env_info(env->env, &info);
	if (info.me_mapsize <= seen) {
		next = seen < GROW_STEP_MAX ? seen * 2 : seen + GROW_STEP_MAX;
		if (next < seen)  /* catch size_t overflow */
			rc = EF_EFULL;
		else
			rc = mdb_env_set_mapsize(env->env, next);
		if (rc)
			rc = ef__err(env->err_id, EF_EFULL,
				     "lmdb: cannot grow the map to %zu bytes: %s",
				     next, rc > 0 ? mdb_strerror(rc) : "too large");
		else
			__atomic_fetch_add(&env->grows, 1, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&env->resize);
	return rc;
}

/* Another process grew the map: adopt its size (MDB_MAP_RESIZED). */
static int map_adopt(store_env *env)
{
	int rc;

	pthread_rwlock_wrlock(&env->resize);
	rc = mdb_env_set_mapsize(env->env, 0);
	pthread_rwlock_unlock(&env->resize);
	if (rc)
		return lmdb_err(env, "adopt the grown map", rc);
	__atomic_fetch_add(&env->grows, 1, __ATOMIC_RELAXED);
	return EF_OK;
}

static MDB_txn *pool_pop(store_env *env)
{
	MDB_txn *txn = NULL;

	pthread_mutex_lock(&env->pool_mu);
	if (env->npool > 0)
		txn = env->pool[--env->npool];
	pthread_mutex_unlock(&env->pool_mu);
	return txn;
}

/* Keep a read transaction for reuse (reset: no snapshot, slot kept), or
 * end it when enough are kept. */
static void pool_push(store_env *env, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	if (store_mutex_lock(&env->pool_mu) == 0) { /* nowait: maybe not */
		if (env->npool < RPOOL_MAX) {
			env->pool[env->npool++] = txn;
			txn = NULL;
		}
		pthread_mutex_unlock(&env->pool_mu);
	}
	if (txn)
		mdb_txn_abort(txn); /* gives its slot back: no mutex */
}

static void txn_init(store_env *env, int write, store_txn *t)
{
	MDB_envinfo info;

	memset(t, 0, sizeof(*t));
	t->env = env;
	t->write = write;
	pthread_rwlock_rdlock(&env->resize);
	mdb_env_info(env->env, &info);
	t->map_seen = info.me_mapsize;
}

/* A read that must not wait (nowait.h): only a kept read transaction
 * will do (a new one may wait for txn.lock and LMDB's reader table), and
 * only if no lock of this process stands in the way. */
static int txn_begin_nowait(store_env *env, store_txn *t)
{
	MDB_envinfo info;
	MDB_txn *kept = NULL;

	if (pthread_mutex_trylock(&env->pool_mu) == 0) {
		if (env->npool > 0)
			kept = env->pool[--env->npool];
		pthread_mutex_unlock(&env->pool_mu);
	}
	if (!kept) {
		store_nowait_refused();
		return ef__err(env->err_id, EF_EBUSY, "no read transaction "
			       "is free to renew without waiting");
	}
	memset(t, 0, sizeof(*t));
	t->env = env;
	if (pthread_rwlock_tryrdlock(&env->resize) != 0) {
		store_nowait_refused();
		pool_push(env, kept);
		return ef__err(env->err_id, EF_EBUSY, "the map is being "
			       "resized");
	}
	mdb_env_info(env->env, &info);
	t->map_seen = info.me_mapsize;
	if (mdb_txn_renew(kept) != MDB_SUCCESS) {
		store_nowait_refused();
		mdb_txn_abort(kept);
		pthread_rwlock_unlock(&env->resize);
		return ef__err(env->err_id, EF_EBUSY, "the read transaction "
			       "could not be renewed without waiting");
	}
	t->txn = kept;
	return EF_OK;
}

/* Begin a transaction under the shared resize lock (and for a write,
 * txn.lock). On EF_OK the locks are held; otherwise not, and *retry says
 * whether to try again. */
static int txn_begin(store_env *env, int write, store_txn *t, int *retry)
{
	MDB_txn *kept;
	int rc;

	*retry = 0;
	if (!write && store_nowait())
		return txn_begin_nowait(env, t);
	kept = write ? NULL : pool_pop(env);
	if (kept) {
		txn_init(env, 0, t);
		if (mdb_txn_renew(kept) == MDB_SUCCESS) {
			t->txn = kept;
			return EF_OK;
		}
		/* the map moved on, or the slot is gone: begin anew */
		mdb_txn_abort(kept);
		pthread_rwlock_unlock(&env->resize);
	}
	txnlock_take(env->tl);
	txn_init(env, write, t);
	rc = mdb_txn_begin(env->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc == MDB_SUCCESS) {
		if (!write)
			txnlock_give(env->tl);
		return EF_OK;
	}
	pthread_rwlock_unlock(&env->resize);
	if (rc == MDB_READERS_FULL) {
		/* dead processes may hold slots: clear them and try again */
		reader_check(env, 1);
		*retry = 1;
	}
	txnlock_give(env->tl);
	if (rc == MDB_MAP_RESIZED) {
		/* no transaction began: adopt the new size, then retry */
		rc = map_adopt(env);
		*retry = rc == EF_OK;
		return rc == EF_OK ? EF_EBUSY : rc;
	}
	return lmdb_err(env, write ? "begin write" : "begin read", rc);
}

static void txn_close_cursors(store_txn *t)
{
	for (int i = 0; i < CURS_MAX; i++) {
		if (t->curs[i].c) {
			mdb_cursor_close(t->curs[i].c);
			t->curs[i].c = NULL;
		}
	}
}

/* End a transaction without committing, and let go of its locks. */
static void txn_abort(store_txn *t)
{
	txn_close_cursors(t);
	if (t->write) {
		mdb_txn_abort(t->txn);
		pthread_rwlock_unlock(&t->env->resize);
		txnlock_give(t->env->tl);
	} else {
		pool_push(t->env, t->txn);
		pthread_rwlock_unlock(&t->env->resize);
	}
}

int store_read(store_env *env, store_txn_fn fn, void *ctx)
{
	return store_read_in(env, STORE_ALL, fn, ctx);
}

int store_write(store_env *env, store_txn_fn fn, void *ctx)
{
	return store_write_in(env, STORE_ALL, fn, ctx);
}

int store_sharded(const store_env *env)
{
	return env->reng != NULL;
}

int store_each_group(store_env *env, store_each_fn fn, void *ctx)
{
	if (env->reng)
		return rstore_each_group(env, fn, ctx);
	return fn(STORE_ALL, ctx);
}

int store_read_in(store_env *env, const store_val *group, store_txn_fn fn,
		  void *ctx)
{
	store_txn t;
	int rc, retry;

	if (env->reng)
		return rstore_run(env, group, 0, fn, ctx);

	for (int attempt = 0; attempt < RETRY_MAX; attempt++) {
		rc = txn_begin(env, 0, &t, &retry);
		if (rc != EF_OK) {
			if (retry)
				continue;
			return rc;
		}
		rc = fn(&t, ctx);
		txn_abort(&t);
		return t.failed ? t.fail_code : rc;
	}
	return rc;
}

int store_write_in(store_env *env, const store_val *group, store_txn_fn fn,
		   void *ctx)
{
	store_txn t;
	int rc, retry;

	if (env->rdonly)
		return ef__err(env->err_id, EF_EINVAL,
			       "the store is open read-only");
	if (env->reng)
		return rstore_run(env, group, 1, fn, ctx);
	for (int attempt = 0; attempt < RETRY_MAX; attempt++) {
		rc = txn_begin(env, 1, &t, &retry);
		if (rc != EF_OK) {
			if (retry)
				continue;
			return rc;
		}
		rc = fn(&t, ctx);
		if (t.map_full) {
			txn_abort(&t);
			rc = map_grow(env, t.map_seen);
			if (rc != EF_OK)
				return rc;
			continue;
		}
		if (t.failed || rc != EF_OK) {
			txn_abort(&t);
			return t.failed ? t.fail_code : rc;
		}
		txn_close_cursors(&t);
		rc = injected(STORE_OP_COMMIT);
		if (rc)
			mdb_txn_abort(t.txn);
		else
			rc = mdb_txn_commit(t.txn);
		pthread_rwlock_unlock(&env->resize);
		if (rc == MDB_SUCCESS)
			reader_check(env, 0);
		txnlock_give(env->tl);
		if (rc == MDB_MAP_FULL) {
			rc = map_grow(env, t.map_seen);
			if (rc != EF_OK)
				return rc;
			continue;
		}
		if (rc)
			return commit_err(env, rc);
		return EF_OK;
	}
	return ef__err(env->err_id, EF_EBUSY,
		       "lmdb: gave up after %d attempts to write", RETRY_MAX);
}

/* Record an LMDB error inside a transaction: MAP_FULL asks for a re-run,
 * anything else fails the transaction. */
static int txn_fail(store_txn *t, const char *what, int rc)
{
	if (rc == MDB_MAP_FULL) {
		t->map_full = 1;
		t->failed = 1;
		t->fail_code = EF_EFULL;
		return EF_EFULL;
	}
	t->failed = 1;
	t->fail_code = lmdb_err(t->env, what, rc);
	return t->fail_code;
}

static MDB_val mv(const void *p, size_t n)
{
	MDB_val v = {n, (void *)p};
	return v;
}

static void sv(store_val *out, const MDB_val *v)
{
	if (out) {
		out->data = v->mv_data;
		out->len = v->mv_size;
	}
}

int store_get(store_txn *t, const void *key, size_t klen, store_val *val)
{
	MDB_val k = mv(key, klen), v;
	int rc;

	if (t->failed)
		return t->fail_code;
	if (t->rt)
		return rstore_get(t, key, klen, val);
	rc = injected(STORE_OP_GET);
	if (!rc)
		rc = mdb_get(t->txn, t->env->dbi, &k, &v);
	if (rc == MDB_NOTFOUND)
		return EF_ENOTFOUND;
	if (rc)
		return txn_fail(t, "get", rc);
	sv(val, &v);
	return EF_OK;
}

int store_put(store_txn *t, const void *key, size_t klen, const void *val,
	      size_t vlen, unsigned flags)
{
	MDB_val k = mv(key, klen), v = mv(val, vlen);
	int rc;

	if (t->failed)
		return t->fail_code;
	if (t->rt)
		return rstore_put(t, key, klen, val, vlen, flags);
	rc = injected(STORE_OP_PUT);
	if (!rc)
		rc = mdb_put(t->txn, t->env->dbi, &k, &v,
		     (flags & STORE_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
	if (rc == MDB_KEYEXIST)
		return EF_EXISTS;
	if (rc)
		return txn_fail(t, "put", rc);
	return EF_OK;
}

int store_del(store_txn *t, const void *key, size_t klen)
{
	MDB_val k = mv(key, klen);
	int rc;

	if (t->failed)
		return t->fail_code;
	if (t->rt)
		return rstore_del(t, key, klen);
	rc = mdb_del(t->txn, t->env->dbi, &k, NULL);
	if (rc == MDB_NOTFOUND)
		return EF_ENOTFOUND;
	if (rc)
		return txn_fail(t, "del", rc);
	return EF_OK;
}

int store_cur_open(store_txn *t, store_cur **out)
{
	int rc;

	*out = NULL;
	if (t->failed)
		return t->fail_code;
	if (t->rt)
		return rstore_cur_open(t, out);
	for (int i = 0; i < CURS_MAX; i++) {
		if (t->curs[i].c)
			continue;
		rc = mdb_cursor_open(t->txn, t->env->dbi, &t->curs[i].c);
		if (rc) {
			t->curs[i].c = NULL;
			return txn_fail(t, "cursor open", rc);
		}
		t->curs[i].t = t;
		*out = &t->curs[i];
		return EF_OK;
	}
	return ef__err(t->env->err_id, EF_ENOMEM, "too many cursors");
}

void store_cur_hint(store_cur *c, size_t n)
{
	if (c && c->rc)
		rstore_cur_hint(c, n); /* LMDB reads in place: nothing to do */
}

void store_cur_close(store_cur *c)
{
	if (c && c->rc) {
		rstore_cur_close(c);
		return;
	}
	if (c && c->c) {
		mdb_cursor_close(c->c);
		c->c = NULL;
	}
}

static int cur_get(store_cur *c, MDB_val *k, MDB_val *v, MDB_cursor_op op,
		   store_val *ko, store_val *vo)
{
	int rc;

	if (c->t->failed)
		return c->t->fail_code;
	rc = mdb_cursor_get(c->c, k, v, op);
	if (rc == MDB_NOTFOUND)
		return EF_ENOTFOUND;
	if (rc)
		return txn_fail(c->t, "cursor get", rc);
	sv(ko, k);
	sv(vo, v);
	return EF_OK;
}

int store_cur_seek(store_cur *c, const void *key, size_t klen, store_val *k,
		   store_val *v)
{
	MDB_val mk = mv(key, klen), mvv;
	if (c->rc)
		return rstore_cur_move(c, RSTORE_SEEK, key, klen, k, v);
	/* LMDB refuses an empty key: the first key of all is what is meant */
	return cur_get(c, &mk, &mvv, klen ? MDB_SET_RANGE : MDB_FIRST, k, v);
}

int store_cur_next(store_cur *c, store_val *k, store_val *v)
{
	MDB_val mk, mvv;
	if (c->rc)
		return rstore_cur_move(c, RSTORE_NEXT, NULL, 0, k, v);
	return cur_get(c, &mk, &mvv, MDB_NEXT, k, v);
}

int store_cur_prev(store_cur *c, store_val *k, store_val *v)
{
	MDB_val mk, mvv;
	if (c->rc)
		return rstore_cur_move(c, RSTORE_PREV, NULL, 0, k, v);
	return cur_get(c, &mk, &mvv, MDB_PREV, k, v);
}

int store_cur_last(store_cur *c, store_val *k, store_val *v)
{
	MDB_val mk, mvv;
	if (c->rc)
		return rstore_cur_move(c, RSTORE_LAST, NULL, 0, k, v);
	return cur_get(c, &mk, &mvv, MDB_LAST, k, v);
}

int store_del_prefix(store_txn *t, const void *prefix, size_t plen,
		     uint64_t max, uint64_t *deleted)
{
	enum { BATCH = 64 };
	struct {
		char s[511]; /* LMDB's largest key */
		size_t len;
	} batch[BATCH];
	store_cur *c;
	store_val k;
	size_t n;
	int rc;

	*deleted = 0;
	do {
		/* collect, then delete: a cursor does not survive the deletes */
		rc = store_cur_open(t, &c);
		if (rc != EF_OK)
			return rc;
		n = 0;
		for (rc = store_cur_seek(c, prefix, plen, &k, NULL);
		     rc == EF_OK && n < BATCH && *deleted + n < max &&
		     store_has_prefix(&k, prefix, plen);
		     rc = store_cur_next(c, &k, NULL)) {
			memcpy(batch[n].s, k.data, k.len);
			batch[n++].len = k.len;
		}
		store_cur_close(c);
		if (rc != EF_OK && rc != EF_ENOTFOUND)
			return rc;
		for (size_t i = 0; i < n; i++) {
			rc = store_del(t, batch[i].s, batch[i].len);
			if (rc != EF_OK)
				return rc;
		}
		*deleted += n;
	} while (n == BATCH && *deleted < max);
	return EF_OK;
}

int store_keycmp(const store_val *a, const void *b, size_t blen)
{
	size_t n = a->len < blen ? a->len : blen;
	int r = memcmp(a->data, b, n);
	return r ? r : (a->len > blen) - (a->len < blen);
}

int store_has_prefix(const store_val *k, const void *prefix, size_t plen)
{
	return k->len >= plen && memcmp(k->data, prefix, plen) == 0;
}

int store_info_get(store_env *env, store_info *out)
{
	MDB_envinfo info;
	MDB_stat st;

	if (env->reng) {
		memset(out, 0, sizeof(*out));
		return EF_OK;
	}
	mdb_env_info(env->env, &info);
	mdb_env_stat(env->env, &st);
	out->map_size = info.me_mapsize;
	out->map_used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	out->page_size = st.ms_psize;
	out->max_readers = info.me_maxreaders;
	out->readers_used = info.me_numreaders;
	return EF_OK;
}

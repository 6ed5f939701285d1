/*
 * open.c - ef_open / ef_close, the store's format version, its clock and the
 * read rules that every path shares.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "store/error.h"
#include "store/redis/addr.h"
#include "store/keyring.h"
#include "store/lock.h"
#include "store/storefile.h"

#define FORMAT_VERSION 1
#define MAX_READERS 4096 /* many worker threads, each may read at once */
#define CONFIG_FLAGS                                                         \
	(EF_NOSYNC | EF_RDONLY | EF_GROUP_COMMIT | EF_NOCREATE | EF_NOWAIT | \
	 EF_SEAL_PORTABLE | EF_NO_GROUP_COMMIT)

int64_t feed_real_now(void)
{
	struct timespec ts;
	int rc = clock_gettime(CLOCK_REALTIME, &ts);

	assert(rc == 0); /* CLOCK_REALTIME always exists */
	(void)rc;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t feed_now(const ef_store *st)
{
	if (st->cfg.clock_ms)
		return st->cfg.clock_ms(st->cfg.clock_ctx);
	return feed_real_now();
}

/* @ms as ISO-8601 into @buf, or as a number when out of its range. */
static const char *time_text(int64_t ms, char buf[EF_TIME_BUFSZ])
{
	if (ef_time_format(ms, buf) != EF_OK)
		snprintf(buf, EF_TIME_BUFSZ, "%lld ms", (long long)ms);
	return buf;
}

int feed_not_ahead(ef_store *st, const char *field, int64_t t,
		   const char *ref_name, int64_t ref, const char *hint)
{
	char tb[EF_TIME_BUFSZ], rb[EF_TIME_BUFSZ];

	/* t > ref: their difference fits in uint64_t, whatever a clock says */
	if (t <= ref ||
	    (uint64_t)t - (uint64_t)ref <= (uint64_t)EF_CLOCK_SKEW_MS)
		return EF_OK;
	return ef__err(st->err_id, EF_EINVAL,
		       "%s: %s is ahead of %s (%s) by more than %lld minutes; "
		       "%s", field, time_text(t, tb), ref_name,
		       time_text(ref, rb), EF_CLOCK_SKEW_MS / 60000, hint);
}

int feed_maint_not_ahead(ef_store *st, const char *field, int64_t t)
{
	return feed_not_ahead(st, field, t, "the real clock", feed_real_now(),
			      "a job as of a later time would destroy IP keys "
			      "and entries the real clock still needs, or "
			      "write entries from the future (check the clock, "
			      "or leave the time out)");
}

int feed_is_stale(const ef_store *st, int64_t created_ms, int64_t now)
{
	return now - created_ms > st->cfg.feed_ttl_ms;
}

int feed_ip_visible(const ef_store *st, int64_t created_ms, int64_t now)
{
	return now - created_ms < st->cfg.ip_retention_ms;
}

const char *ef_errmsg(const ef_store *st)
{
	return ef__err_get(st ? st->err_id : EF__ERR_NOSTORE);
}

static int config_resolve(const ef_config *in, ef_config *out)
{
	const uint64_t id = EF__ERR_NOSTORE;

	memset(out, 0, sizeof(*out));
	if (in)
		*out = *in;
	if (out->feed_ttl_ms < 0)
		return ef__err(id, EF_EINVAL, "feed_ttl_ms: negative");
	if (out->ip_retention_ms < 0)
		return ef__err(id, EF_EINVAL, "ip_retention_ms: negative");
	if (out->flags & ~CONFIG_FLAGS)
		return ef__err(id, EF_EINVAL, "flags: unknown bits 0x%x",
			       out->flags & ~CONFIG_FLAGS);
	if ((out->flags & EF_GROUP_COMMIT) && (out->flags & EF_NO_GROUP_COMMIT))
		return ef__err(id, EF_EINVAL, "flags: EF_GROUP_COMMIT and "
			       "EF_NO_GROUP_COMMIT together");
	if (!out->map_size)
		out->map_size = EF_DEFAULT_MAP_SIZE;
	if (!out->feed_cap)
		out->feed_cap = EF_DEFAULT_FEED_CAP;
	if (!out->feed_ttl_ms)
		out->feed_ttl_ms = EF_DEFAULT_FEED_TTL_MS;
	if (!out->ip_retention_ms)
		out->ip_retention_ms = EF_DEFAULT_IP_RETENTION_MS;
	return EF_OK;
}

/* @dir holds no store, and this open may not make one: EF_ENOTFOUND. */
static int no_store(const char *dir, const char *what)
{
	return ef__err(EF__ERR_NOSTORE, EF_ENOTFOUND, "no store at '%s': %s",
		       dir, what);
}

/* Make the missing store directory @dir (mode 0700; not its parents). */
static int dir_make(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ef__err(EF__ERR_NOSTORE,
			       errno == ENOSPC ? EF_EFULL : EF_EIO,
			       "cannot create store '%s': %s", dir,
			       strerror(errno));
	return EF_OK;
}

/* Does the existing directory @dir hold data.mdb (the store itself)? */
static int dir_has_data(const char *dir)
{
	char path[PATH_MAX];
	struct stat sb;
	int n = snprintf(path, sizeof(path), "%s/data.mdb", dir);

	return n > 0 && (size_t)n < sizeof(path) && lstat(path, &sb) == 0;
}

/*
 * The store directory is ready to open: it exists and is a directory. An
 * open that may create (@create) makes a missing directory; one that may
 * not (EF_RDONLY, EF_NOCREATE) needs data.mdb in it already and creates
 * nothing at all, so that a mistyped path is reported, not made. The
 * directory and the store's files in it are to be trusted (storefile.h)
 * before anything is opened or made there.
 */
static int dir_ready(const char *dir, int create, int rdonly)
{
	const uint64_t id = EF__ERR_NOSTORE;
	struct stat sb;

	if (!dir || !*dir)
		return ef__err(id, EF_EINVAL, "store directory: empty path");
	if (stat(dir, &sb) < 0) {
		if (!create && (errno == ENOENT || errno == ENOTDIR))
			return no_store(dir, "no such directory");
		if (errno != ENOENT)
			return ef__err(id, EF_EIO, "cannot open store '%s': %s",
				       dir, strerror(errno));
		return dir_make(dir);
	}
	if (!S_ISDIR(sb.st_mode))
		return create ? ef__err(id, EF_EINVAL,
					"cannot open store '%s': not a "
					"directory", dir)
			      : no_store(dir, "a file, not a directory");
	if (!create && !dir_has_data(dir))
		return no_store(dir, "a directory without data.mdb");
	if (!rdonly && access(dir, W_OK | X_OK) < 0)
		return ef__err(id, EF_EIO,
			       "cannot open store '%s': permission denied", dir);
	return storefile_check_all(dir, id);
}

void feed_store_opts(const ef_store *st, store_opts *so)
{
	so->map_size = st->cfg.map_size;
	so->nosync = (st->cfg.flags & EF_NOSYNC) != 0;
	so->rdonly = (st->cfg.flags & EF_RDONLY) != 0;
	so->max_readers = MAX_READERS;
	so->group_of = key_group;
}

static int format_txn(store_txn *t, void *ctx)
{
	ef_store *st = ctx;
	key_buf k;
	store_val v;
	char buf[16];
	long ver;
	int rc;

	key_meta(&k, "format");
	rc = store_get(t, k.s, k.len, &v);
	if (rc == EF_ENOTFOUND) {
		if (st->cfg.flags & EF_RDONLY)
			return FEED_NOCHANGE; /* an empty store, never written */
		snprintf(buf, sizeof(buf), "%d", FORMAT_VERSION);
		return store_put(t, k.s, k.len, buf, strlen(buf), 0);
	}
	if (rc != EF_OK)
		return rc;
	if (v.len == 0 || v.len >= sizeof(buf))
		goto bad;
	memcpy(buf, v.data, v.len);
	buf[v.len] = '\0';
	ver = strtol(buf, NULL, 10);
	if (ver <= 0)
		goto bad;
	if (ver > FORMAT_VERSION)
		return ef__err(st->err_id, EF_EVERSION,
			       "store '%s' has format %ld; this library reads "
			       "format %d and older", st->dir, ver,
			       FORMAT_VERSION);
	return FEED_NOCHANGE;
bad:
	return ef__err(st->err_id, EF_ECORRUPT,
		       "store '%s': meta:format is not a version number",
		       st->dir);
}

/* A new handle with @cfg resolved into it (*rc: how that went; the handle
 * is returned either way, for ef_close), or NULL (*rc EF_ENOMEM). */
static ef_store *handle_new(const ef_config *cfg, int *rc)
{
	ef_store *st = ef__calloc(1, sizeof(*st));

	if (!st) {
		*rc = ef__err(EF__ERR_NOSTORE, EF_ENOMEM, "out of memory");
		return NULL;
	}
	st->open_lock_fd = -1;
	st->err_id = ef__err_new_id();
	*rc = config_resolve(cfg, &st->cfg);
	return st;
}

/* What messages call a store on a cluster: its nodes and its name, never
 * its options (a password may be among them). */
static char *cluster_name(const char *addr)
{
	const char *q = strchr(addr, '?');
	const char *name = q ? strstr(q, "store=") : NULL;
	size_t n = q ? (size_t)(q - addr) : strlen(addr), m = 0;
	char *out;

	if (name && (name[-1] == '?' || name[-1] == '&'))
		m = strcspn(name, "&");
	out = ef__malloc(n + m + 2);
	if (!out)
		return NULL;
	memcpy(out, addr, n);
	out[n] = '\0';
	if (m) {
		out[n] = '?';
		memcpy(out + n + 1, name, m);
		out[n + 1 + m] = '\0';
	}
	return out;
}

/* Does the store hold meta:format (was it ever created)? */
static int has_format_txn(store_txn *t, void *ctx)
{
	key_buf k;
	int rc;

	(void)ctx;
	key_meta(&k, "format");
	rc = store_get(t, k.s, k.len, NULL);
	return rc == EF_ENOTFOUND ? FEED_NOCHANGE : rc;
}

/*
 * ef_open on a redis:// address (store/redis/engine.h): no directory, no
 * file lock, no commit queue (Redis orders and syncs the writes of many
 * clients itself); the window keys live in the cluster.
 */
static int open_cluster(ef_store **out, const char *addr,
			const ef_config *cfg)
{
	ef_store *st;
	store_opts so;
	int rc, rdonly;

	st = handle_new(cfg, &rc);
	if (!st)
		return rc;
	if (rc != EF_OK)
		goto fail;
	rdonly = (st->cfg.flags & EF_RDONLY) != 0;
	st->dir = cluster_name(addr);
	if (!st->dir) {
		rc = ef__err(EF__ERR_NOSTORE, EF_ENOMEM, "out of memory");
		goto fail;
	}
	feed_store_opts(st, &so);
	rc = store_open(&st->env, addr, &so, st->err_id);
	/* an open that may not create needs the store there already, as on
	 * LMDB it needs data.mdb: a mistyped store name is reported, not
	 * made */
	if (rc == EF_OK && (st->cfg.flags & (EF_RDONLY | EF_NOCREATE))) {
		rc = store_read_in(st->env, FEED_META_GROUP, has_format_txn,
				   NULL);
		if (rc == FEED_NOCHANGE) {
			rc = no_store(st->dir, "the cluster holds no store of "
				      "that name (no meta:format)");
			goto fail;
		}
	}
	if (rc == EF_OK)
		rc = rdonly ? store_read_in(st->env, FEED_META_GROUP,
					    format_txn, st)
			    : store_write_in(st->env, FEED_META_GROUP,
					     format_txn, st);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		rc = keyring_open_env(&st->keyring, st->env, rdonly,
				      st->err_id);
	if (rc == EF_OK && ipseal_cache_new(&st->seal) != EF_OK)
		rc = ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (rc != EF_OK) {
		ef__err(EF__ERR_NOSTORE, rc, "%s", ef__err_get(st->err_id));
		goto fail;
	}
	*out = st;
	return EF_OK;
fail:
	ef_close(st);
	return rc;
}

int ef_open(ef_store **out, const char *dir, const ef_config *cfg)
{
	ef_store *st;
	store_opts so;
	int rc, rdonly;

	if (!out)
		return ef__err(EF__ERR_NOSTORE, EF_EINVAL, "out: NULL");
	*out = NULL;
	ef__alloc_init();
	if (raddr_is(dir)) /* not a path, whatever directories exist */
		return open_cluster(out, dir, cfg);
	st = handle_new(cfg, &rc);
	if (!st)
		return rc;
	rdonly = (st->cfg.flags & EF_RDONLY) != 0;
	if (rc == EF_OK)
		rc = dir_ready(dir, !(st->cfg.flags & (EF_RDONLY | EF_NOCREATE)),
			       rdonly);
	if (rc != EF_OK)
		goto fail;
	st->dir = ef__strdup(dir);
	if (!st->dir) {
		rc = ef__err(EF__ERR_NOSTORE, EF_ENOMEM, "out of memory");
		goto fail;
	}
	rc = lock_open_shared(dir, rdonly,
			      (st->cfg.flags & EF_NOWAIT) ? EF_LOCK_NOWAIT : 0,
			      st->cfg.on_wait, st->cfg.wait_ctx,
			      EF__ERR_NOSTORE, &st->open_lock_fd);
	if (rc != EF_OK)
		goto fail;
	feed_store_opts(st, &so);
	rc = store_open(&st->env, dir, &so, st->err_id);
	if (rc != EF_OK)
		goto fail_detail;
	rc = rdonly ? store_read(st->env, format_txn, st)
		    : store_write(st->env, format_txn, st);
	if (rc == FEED_NOCHANGE)
		rc = EF_OK;
	if (rc == EF_OK)
		rc = keyring_open(&st->keyring, dir, rdonly, so.nosync,
				  st->err_id);
	/* group commit is the default: it shares the syncs of durable
	 * commits; without syncs (EF_NOSYNC) there is nothing to share, and
	 * every caller commits at once (docs/BENCHMARKS.md, issue 13) */
	if (rc == EF_OK && !rdonly &&
	    !(st->cfg.flags & (EF_NO_GROUP_COMMIT | EF_NOSYNC)) &&
	    fin_group_new(st, &st->group) != EF_OK)
		rc = ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (rc == EF_OK && ipseal_cache_new(&st->seal) != EF_OK)
		rc = ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (rc != EF_OK)
		goto fail_detail;
	*out = st;
	return EF_OK;
fail_detail:
	/* the detail went to the store's slot; a failed open reports in the
	 * no-store slot, which is what ef_errmsg(NULL) reads */
	ef__err(EF__ERR_NOSTORE, rc, "%s", ef__err_get(st->err_id));
fail:
	ef_close(st);
	return rc;
}

void ef_close(ef_store *st)
{
	if (!st)
		return;
	fin_group_free(st->group);
	ipseal_cache_free(st->seal);
	keyring_close(st->keyring);
	store_close(st->env);
	lock_release(st->open_lock_fd, 0);
	free(st->dir);
	free(st);
}

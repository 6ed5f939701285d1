/*
 * keyring.c - window keys in a file of fixed-size slots; see keyring.h for
 * the layout and the rules.
 *
 * Every change of the file bumps the header's generation first, then
 * changes slots, then syncs, all under LOCK_EX. A process keeps the slots
 * it read in memory and trusts them while the header still carries the
 * generation it read them at; a reader that finds another generation (or a
 * torn header) reloads under LOCK_SH, which waits for the writer. A crash
 * between the bump and the slot writes only makes caches reload.
 */
#define _GNU_SOURCE
#include "store/alloc.h"
#include "store/keyring.h"
#include "store/bytes.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/bytes.h"
#include "store/envint.h"
#include "store/error.h"
#include "store/redis/rkeyring.h"
#include "store/nowait.h"
#include "store/lock.h"
#include "store/storefile.h"

#define HDR_SIZE 64
#define SLOT_SIZE 64
#define CHECK_OFF 48
#define CHECK_LEN 16
#define SLOT_MAX 100000 /* slots read at most: 270 years of days */
#define MAGIC "edgefeed-keyring"
#define MAGIC_LEN 16
#define KR_VERSION 1

enum { ST_FREE = 0, ST_LIVE = 1, ST_DESTROYED = 2 };
enum { SLOT_ZERO, SLOT_OK, SLOT_BAD }; /* slot_parse results */

/* A window as cached in memory. */
typedef struct kr_key {
	uint32_t win;                  /* window number */
	uint8_t state;                 /* ST_LIVE or ST_DESTROYED */
	uint8_t key[KEYRING_KEYBYTES]; /* zero unless live */
} kr_key;

/* A set of windows in sodium_malloc'd memory. */
typedef struct kr_set {
	kr_key *k;
	size_t n, cap;
} kr_set;

struct keyring {
	rkeyring *r;        /* on Redis Cluster: every call goes there */
	pthread_mutex_t mu; /* guards every field below */
	char *path;         /* <dir>/keyring, owned */
	char *dir;          /* the store directory, owned */
	int rdonly;         /* never create or change the file */
	int nosync;         /* no fsync after creating a key */
	uint64_t err_id;    /* error slot of the owning store */
	int fd;             /* the file, or -1 while it does not exist */
	int fd_rw;          /* fd was opened for writing */
	int cache_ok;       /* cache is the file's content at generation gen */
	uint64_t gen;       /* generation of the cache */
	int64_t checked_ns; /* monotonic time the generation was last read */
	kr_set cache;       /* the file's valid slots */
	kr_set eph;         /* keys made in memory by a read-only handle */
};

/* The whole file, read into guarded memory (it holds keys). */
typedef struct kr_image {
	uint8_t *buf;  /* sodium_malloc'd, or NULL when len == 0 */
	size_t len;
} kr_image;

uint32_t keyring_window(int64_t created_ms)
{
	return (uint32_t)(created_ms / KEYRING_WINDOW_MS);
}

static void check_of(const uint8_t *rec, uint8_t out[CHECK_LEN])
{
	crypto_generichash(out, CHECK_LEN, rec, CHECK_OFF, NULL, 0);
}

static int check_ok(const uint8_t *rec)
{
	uint8_t c[CHECK_LEN];
	check_of(rec, c);
	return sodium_memcmp(c, rec + CHECK_OFF, CHECK_LEN) == 0;
}

static void hdr_make(uint8_t h[HDR_SIZE], uint64_t gen)
{
	memset(h, 0, HDR_SIZE);
	memcpy(h, MAGIC, MAGIC_LEN);
	be_put(h + 16, KR_VERSION, 4);
	be_put(h + 20, SLOT_SIZE, 4);
	be_put(h + 24, gen, 8);
	check_of(h, h + CHECK_OFF);
}

/* 1 if @h is a valid header (*gen set); 0 if damaged. *newer: a valid
 * header of a format this code does not know. */
static int hdr_parse(const uint8_t *h, size_t len, uint64_t *gen, int *newer)
{
	*newer = 0;
	if (len < HDR_SIZE || memcmp(h, MAGIC, MAGIC_LEN) != 0 || !check_ok(h))
		return 0;
	if (be_get(h + 16, 4) != KR_VERSION || be_get(h + 20, 4) != SLOT_SIZE) {
		*newer = be_get(h + 16, 4) > KR_VERSION;
		return 0;
	}
	*gen = be_get(h + 24, 8);
	return 1;
}

static void slot_make(uint8_t s[SLOT_SIZE], uint8_t state, uint32_t win,
		      const uint8_t *key)
{
	memset(s, 0, SLOT_SIZE);
	s[0] = state;
	be_put(s + 4, win, 4);
	if (key)
		memcpy(s + 8, key, KEYRING_KEYBYTES);
	check_of(s, s + CHECK_OFF);
}

static int slot_parse(const uint8_t *s, kr_key *out)
{
	static const uint8_t zero[SLOT_SIZE];

	if (memcmp(s, zero, SLOT_SIZE) == 0)
		return SLOT_ZERO;
	if (!check_ok(s) || (s[0] != ST_LIVE && s[0] != ST_DESTROYED))
		return SLOT_BAD;
	out->win = (uint32_t)be_get(s + 4, 4);
	out->state = s[0];
	memcpy(out->key, s + 8, KEYRING_KEYBYTES);
	return SLOT_OK;
}

/* ---- sets of keys in guarded memory ---- */

static void set_clear(kr_set *s)
{
	sodium_free(s->k); /* zeroes the memory; accepts NULL */
	memset(s, 0, sizeof(*s));
}

static kr_key *set_find(kr_set *s, uint32_t win)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->k[i].win == win)
			return &s->k[i];
	return NULL;
}

static int set_add(kr_set *s, const kr_key *k)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		kr_key *n = sodium_allocarray(cap, sizeof(*n));

		if (!n)
			return EF_ENOMEM;
		if (s->n)
			memcpy(n, s->k, s->n * sizeof(*n));
		sodium_free(s->k);
		s->k = n;
		s->cap = cap;
	}
	s->k[s->n++] = *k;
	return EF_OK;
}

/* ---- file access ---- */

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n, len -= (size_t)n, off += n;
	}
	return 0;
}

static int io_err(keyring *kr, const char *what)
{
	int e = errno;
	return ef__err(kr->err_id, e == ENOSPC || e == EDQUOT ? EF_EFULL : EF_EIO,
		       "keyring '%s': cannot %s: %s", kr->path, what,
		       strerror(e));
}

/* Make sure kr->fd is open (creating the file if @create), never through
 * a link (storefile.h). EF_ENOTFOUND when the file does not exist and
 * !@create; a read-write handle that may not write it opens it read-only. */
static int kr_fd(keyring *kr, int create)
{
	int flags = kr->rdonly ? O_RDONLY : O_RDWR, sys_err, rc;

	if (kr->fd >= 0)
		return EF_OK;
	if (create && !kr->rdonly)
		flags |= O_CREAT;
	rc = storefile_open(kr->dir, KEYRING_FILE, flags, kr->err_id, &kr->fd,
			    &sys_err);
	if (rc != EF_OK && sys_err == EACCES && !kr->rdonly)
		rc = storefile_open(kr->dir, KEYRING_FILE, O_RDONLY, kr->err_id,
				    &kr->fd, &sys_err);
	if (rc != EF_OK)
		return sys_err == ENOENT && !(flags & O_CREAT) ? EF_ENOTFOUND
								: rc;
	kr->fd_rw = (fcntl(kr->fd, F_GETFL) & O_ACCMODE) == O_RDWR;
	return EF_OK;
}

static void image_free(kr_image *im)
{
	sodium_free(im->buf);
	im->buf = NULL;
	im->len = 0;
}

/* Read the file (at most the header and SLOT_MAX slots). */
static int image_read(keyring *kr, kr_image *im)
{
	struct stat sb;
	size_t len, got = 0;

	im->buf = NULL;
	im->len = 0;
	if (fstat(kr->fd, &sb) < 0)
		return io_err(kr, "stat");
	len = (size_t)sb.st_size;
	if (len > HDR_SIZE + (size_t)SLOT_MAX * SLOT_SIZE)
		len = HDR_SIZE + (size_t)SLOT_MAX * SLOT_SIZE;
	if (len == 0)
		return EF_OK;
	im->buf = sodium_malloc(len);
	if (!im->buf)
		return ef__err(kr->err_id, EF_ENOMEM, "out of memory");
	while (got < len) {
		ssize_t n = pread(kr->fd, im->buf + got, len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = io_err(kr, "read");
			image_free(im);
			return rc;
		}
		if (n == 0)
			break; /* it shrank meanwhile: take what is there */
		got += (size_t)n;
	}
	im->len = got;
	return EF_OK;
}

static size_t image_slots(const kr_image *im)
{
	return im->len > HDR_SIZE ? (im->len - HDR_SIZE) / SLOT_SIZE : 0;
}

static const uint8_t *image_slot(const kr_image *im, size_t i)
{
	return im->buf + HDR_SIZE + i * SLOT_SIZE;
}

/* Replace the cache with the content of @im. Slots carry their own
 * checks, so they are read even behind a damaged header (not behind one of
 * a newer format); the cache is then never taken as current. */
static int cache_fill(keyring *kr, const kr_image *im)
{
	kr_key k;
	int newer, ok, rc = EF_OK;

	set_clear(&kr->cache);
	kr->cache_ok = 0;
	ok = hdr_parse(im->buf, im->len, &kr->gen, &newer);
	if (newer)
		return EF_OK;
	for (size_t i = 0; i < image_slots(im) && rc == EF_OK; i++) {
		if (slot_parse(image_slot(im, i), &k) == SLOT_OK &&
		    !set_find(&kr->cache, k.win))
			rc = set_add(&kr->cache, &k);
	}
	sodium_memzero(&k, sizeof(k));
	if (rc != EF_OK) {
		set_clear(&kr->cache);
		return ef__err(kr->err_id, rc, "out of memory");
	}
	kr->cache_ok = ok;
	return EF_OK;
}

/* The cached key of @win: EF_OK, EF_ENOTFOUND or KEYRING_DESTROYED. */
static int cache_key(keyring *kr, uint32_t win, uint8_t *key)
{
	const kr_key *k = set_find(&kr->cache, win);

	if (!k)
		return EF_ENOTFOUND;
	if (k->state != ST_LIVE)
		return KEYRING_DESTROYED;
	memcpy(key, k->key, KEYRING_KEYBYTES);
	return EF_OK;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Does the cache still match the file? One pread of the header, at most
 * every CHECK_EVERY_NS: a page of 50 sealed IPs then costs one system call,
 * not 50. A key another process destroyed can so be used here for that
 * long more; only for IPs still within retention by the read rule, which
 * every open applies first.
 */
#define CHECK_EVERY_NS (100 * 1000 * 1000LL)

static int cache_current(keyring *kr)
{
	uint8_t h[HDR_SIZE];
	uint64_t gen;
	int newer;
	ssize_t n;
	int64_t now = mono_ns();

	if (!kr->cache_ok || kr->fd < 0)
		return 0;
	if (now - kr->checked_ns < CHECK_EVERY_NS)
		return 1;
	n = pread(kr->fd, h, HDR_SIZE, 0);
	if (n != HDR_SIZE || !hdr_parse(h, HDR_SIZE, &gen, &newer) ||
	    gen != kr->gen)
		return 0;
	kr->checked_ns = now;
	return 1;
}

/* Bring the cache up to date (under LOCK_SH). A missing file empties it. */
static int cache_refresh(keyring *kr)
{
	kr_image im;
	int rc;

	if (cache_current(kr))
		return EF_OK;
	rc = kr_fd(kr, 0);
	if (rc == EF_ENOTFOUND) {
		set_clear(&kr->cache);
		kr->cache_ok = 0;
		return EF_OK;
	}
	if (rc != EF_OK)
		return rc;
	if (lock_flock(kr->fd, LOCK_SH | (store_nowait() ? LOCK_NB : 0)) < 0) {
		if (errno != EWOULDBLOCK)
			return io_err(kr, "lock");
		store_nowait_refused();
		return ef__err(kr->err_id, EF_EBUSY, "keyring '%s' is being "
			       "written", kr->path);
	}
	rc = image_read(kr, &im);
	if (rc == EF_OK)
		rc = cache_fill(kr, &im);
	image_free(&im);
	lock_flock(kr->fd, LOCK_UN);
	return rc;
}

/* Under LOCK_EX: read the file and the header's state. *gen gets the
 * generation to write next (a random one after a damaged header). */
static int locked_read(keyring *kr, kr_image *im, uint64_t *next_gen)
{
	uint64_t gen;
	int newer, rc = image_read(kr, im);

	if (rc != EF_OK)
		return rc;
	if (hdr_parse(im->buf, im->len, &gen, &newer)) {
		*next_gen = gen + 1;
		return EF_OK;
	}
	if (newer) {
		image_free(im);
		return ef__err(kr->err_id, EF_EVERSION,
			       "keyring '%s' has a newer format", kr->path);
	}
	randombytes_buf(next_gen, sizeof(*next_gen));
	return EF_OK;
}

static int write_header(keyring *kr, uint64_t gen)
{
	uint8_t h[HDR_SIZE];

	hdr_make(h, gen);
	return pwrite_all(kr->fd, h, HDR_SIZE, 0) < 0 ? io_err(kr, "write")
						     : EF_OK;
}

static int kr_sync(keyring *kr)
{
	return fsync(kr->fd) < 0 ? io_err(kr, "sync") : EF_OK;
}

/* Where a new slot goes: the first free slot, else the end (a partial
 * slot at the end is overwritten). */
static off_t free_slot(const kr_image *im)
{
	kr_key k;
	size_t i, n = image_slots(im);

	for (i = 0; i < n; i++)
		if (slot_parse(image_slot(im, i), &k) == SLOT_ZERO)
			break;
	sodium_memzero(&k, sizeof(k));
	return (off_t)(HDR_SIZE + i * SLOT_SIZE);
}

/* Under LOCK_EX, with the file read into @im: append a new key for @win. */
static int append_key(keyring *kr, const kr_image *im, uint64_t gen,
		      uint32_t win)
{
	uint8_t key[KEYRING_KEYBYTES], s[SLOT_SIZE];
	int rc;

	if (image_slots(im) >= SLOT_MAX)
		return ef__err(kr->err_id, EF_EFULL,
			       "keyring '%s': no free slot", kr->path);
	/* the generation first: a crash after it only makes caches reload */
	rc = write_header(kr, gen);
	if (rc != EF_OK)
		return rc;
	randombytes_buf(key, sizeof(key));
	slot_make(s, ST_LIVE, win, key);
	if (pwrite_all(kr->fd, s, SLOT_SIZE, free_slot(im)) < 0)
		rc = io_err(kr, "write");
	sodium_memzero(key, sizeof(key));
	sodium_memzero(s, sizeof(s));
	if (rc == EF_OK && !kr->nosync)
		rc = kr_sync(kr);
	return rc;
}

/* Make the key of @win unless another process made it first. */
static int create_key(keyring *kr, uint32_t win)
{
	kr_image im = {0};
	uint64_t gen;
	int rc;

	rc = kr_fd(kr, 1);
	if (rc == EF_OK && !kr->fd_rw)
		rc = ef__err(kr->err_id, EF_EIO,
			     "keyring '%s' is not writable", kr->path);
	if (rc != EF_OK)
		return rc;
	if (lock_flock(kr->fd, LOCK_EX) < 0)
		return io_err(kr, "lock");
	rc = locked_read(kr, &im, &gen);
	if (rc == EF_OK) {
		rc = cache_fill(kr, &im);
		if (rc == EF_OK && !set_find(&kr->cache, win))
			rc = append_key(kr, &im, gen, win);
	}
	image_free(&im);
	/* reread what is there now, under the lock still held */
	if (rc == EF_OK && (rc = image_read(kr, &im)) == EF_OK)
		rc = cache_fill(kr, &im);
	image_free(&im);
	lock_flock(kr->fd, LOCK_UN);
	return rc;
}

/* ---- the interface ---- */

int keyring_open(keyring **out, const char *dir, int rdonly, int nosync,
		 uint64_t err_id)
{
	keyring *kr;

	*out = NULL;
	if (sodium_init() < 0)
		return ef__err(err_id, EF_EIO, "libsodium cannot initialize");
	kr = ef__calloc(1, sizeof(*kr));
	if (!kr || asprintf(&kr->path, "%s/%s", dir, KEYRING_FILE) < 0 ||
	    !(kr->dir = ef__strdup(dir))) {
		if (kr)
			free(kr->path);
		free(kr);
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	}
	if (pthread_mutex_init(&kr->mu, NULL) != 0) {
		free(kr->dir);
		free(kr->path);
		free(kr);
		return ef__err(err_id, EF_ENOMEM, "cannot create a lock");
	}
	kr->rdonly = rdonly;
	kr->nosync = nosync;
	kr->err_id = err_id;
	kr->fd = -1;
	*out = kr;
	return EF_OK;
}

int keyring_open_env(keyring **out, store_env *env, int rdonly,
		     uint64_t err_id)
{
	keyring *kr;
	int rc;

	*out = NULL;
	if (!env->reng)
		return ef__err(err_id, EF_EINVAL, "keyring: not a store on a "
			       "cluster");
	kr = ef__calloc(1, sizeof(*kr));
	if (!kr)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	rc = rkr_open(&kr->r, env->reng, rdonly, err_id);
	if (rc != EF_OK) {
		free(kr);
		return rc;
	}
	kr->err_id = err_id;
	kr->fd = -1;
	*out = kr;
	return EF_OK;
}

void keyring_close(keyring *kr)
{
	if (!kr)
		return;
	if (kr->r) {
		rkr_close(kr->r);
		free(kr);
		return;
	}
	set_clear(&kr->cache);
	set_clear(&kr->eph);
	if (kr->fd >= 0)
		close(kr->fd);
	pthread_mutex_destroy(&kr->mu);
	free(kr->dir);
	free(kr->path);
	free(kr);
}

/* A key made in memory only, for a read-only handle. */
static int ephemeral_key(keyring *kr, uint32_t win, uint8_t *key)
{
	kr_key k = {0}, *have = set_find(&kr->eph, win);
	int rc = EF_OK;

	if (!have) {
		k.win = win;
		k.state = ST_LIVE;
		randombytes_buf(k.key, sizeof(k.key));
		rc = set_add(&kr->eph, &k);
		sodium_memzero(&k, sizeof(k));
		if (rc != EF_OK)
			return ef__err(kr->err_id, rc, "out of memory");
		have = &kr->eph.k[kr->eph.n - 1];
	}
	memcpy(key, have->key, KEYRING_KEYBYTES);
	return EF_OK;
}

int keyring_get(keyring *kr, uint32_t win, int create,
		uint8_t key[KEYRING_KEYBYTES])
{
	int rc;

	if (kr->r)
		return rkr_get(kr->r, win, create, key);
	assert(!(create && store_nowait())); /* making a key writes and syncs */
	if (store_mutex_lock(&kr->mu) != 0)
		return ef__err(kr->err_id, EF_EBUSY, "keyring '%s' is in use "
			       "by another thread", kr->path);
	rc = cache_refresh(kr);
	if (rc == EF_OK)
		rc = cache_key(kr, win, key);
	if (rc == EF_ENOTFOUND && create && kr->rdonly)
		rc = ephemeral_key(kr, win, key);
	else if (rc == EF_ENOTFOUND && create) {
		rc = create_key(kr, win);
		if (rc == EF_OK)
			rc = cache_key(kr, win, key);
		if (rc == EF_ENOTFOUND) /* made, yet not there when reread */
			rc = ef__err(kr->err_id, EF_EIO,
				     "keyring '%s': a new key did not persist",
				     kr->path);
	}
	pthread_mutex_unlock(&kr->mu);
	return rc;
}

int keyring_get_ephemeral(keyring *kr, uint32_t win,
			  uint8_t key[KEYRING_KEYBYTES])
{
	kr_key *k;
	int rc = EF_ENOTFOUND;

	if (kr->r)
		return rkr_get_ephemeral(kr->r, win, key);
	pthread_mutex_lock(&kr->mu);
	k = set_find(&kr->eph, win);
	if (k) {
		memcpy(key, k->key, KEYRING_KEYBYTES);
		rc = EF_OK;
	}
	pthread_mutex_unlock(&kr->mu);
	return rc;
}

/* Under LOCK_EX with @im read: destroy or wipe each slot that needs it. */
static int destroy_slots(keyring *kr, const kr_image *im, uint32_t before,
			 uint64_t *destroyed, uint64_t *wiped)
{
	static const uint8_t zero[SLOT_SIZE];
	uint8_t s[SLOT_SIZE];
	kr_key k;
	size_t n = image_slots(im), tail;
	int rc = EF_OK;

	for (size_t i = 0; i < n && rc == EF_OK; i++) {
		off_t off = (off_t)(HDR_SIZE + i * SLOT_SIZE);
		int what = slot_parse(image_slot(im, i), &k);

		if (what == SLOT_OK && k.state == ST_LIVE && k.win < before) {
			slot_make(s, ST_DESTROYED, k.win, NULL);
			if (pwrite_all(kr->fd, s, SLOT_SIZE, off) < 0)
				rc = io_err(kr, "write");
			(*destroyed)++;
		} else if (what == SLOT_BAD) {
			if (pwrite_all(kr->fd, zero, SLOT_SIZE, off) < 0)
				rc = io_err(kr, "write");
			(*wiped)++;
		}
	}
	sodium_memzero(&k, sizeof(k));
	/* a partial slot at the end (a torn append) is zeroed out too */
	tail = im->len > HDR_SIZE ? (im->len - HDR_SIZE) % SLOT_SIZE : 0;
	if (rc == EF_OK && tail) {
		if (pwrite_all(kr->fd, zero, SLOT_SIZE,
			       (off_t)(HDR_SIZE + n * SLOT_SIZE)) < 0)
			rc = io_err(kr, "write");
		(*wiped)++;
	}
	return rc;
}

/* How many slots destroy_slots would change. */
static uint64_t slots_to_change(const kr_image *im, uint32_t before)
{
	kr_key k;
	uint64_t n = 0;

	for (size_t i = 0; i < image_slots(im); i++) {
		int what = slot_parse(image_slot(im, i), &k);
		n += what == SLOT_BAD ||
		     (what == SLOT_OK && k.state == ST_LIVE && k.win < before);
	}
	sodium_memzero(&k, sizeof(k));
	return n + (im->len > HDR_SIZE && (im->len - HDR_SIZE) % SLOT_SIZE);
}

int keyring_destroy_before(keyring *kr, uint32_t before, uint64_t *destroyed,
			   uint64_t *wiped)
{
	kr_image im = {0};
	uint64_t gen, ignore;
	int rc, newer;

	if (kr->r)
		return rkr_destroy_before(kr->r, before, destroyed, wiped);
	*destroyed = *wiped = 0;
	pthread_mutex_lock(&kr->mu);
	rc = kr_fd(kr, 0);
	if (rc == EF_ENOTFOUND) {
		pthread_mutex_unlock(&kr->mu);
		return EF_OK; /* no keyring: no key to destroy */
	}
	if (rc == EF_OK && !kr->fd_rw)
		rc = ef__err(kr->err_id, EF_EIO,
			     "keyring '%s' is not writable", kr->path);
	if (rc == EF_OK && lock_flock(kr->fd, LOCK_EX) < 0)
		rc = io_err(kr, "lock");
	if (rc != EF_OK) {
		pthread_mutex_unlock(&kr->mu);
		return rc;
	}
	rc = locked_read(kr, &im, &gen);
	if (rc == EF_OK && (slots_to_change(&im, before) ||
			    (im.len && !hdr_parse(im.buf, im.len, &ignore,
						  &newer)))) {
		/* the generation first: caches reload before keys go */
		rc = write_header(kr, gen);
		if (rc == EF_OK)
			rc = destroy_slots(kr, &im, before, destroyed, wiped);
		if (rc == EF_OK)
			rc = kr_sync(kr);
	}
	image_free(&im);
	if (rc == EF_OK && (rc = image_read(kr, &im)) == EF_OK)
		rc = cache_fill(kr, &im);
	image_free(&im);
	lock_flock(kr->fd, LOCK_UN);
	pthread_mutex_unlock(&kr->mu);
	return rc;
}

/* Read the file under LOCK_SH into @im; EF_ENOTFOUND if it is missing. */
static int read_shared(keyring *kr, kr_image *im)
{
	int rc = kr_fd(kr, 0);

	if (rc != EF_OK)
		return rc;
	if (lock_flock(kr->fd, LOCK_SH) < 0)
		return io_err(kr, "lock");
	rc = image_read(kr, im);
	lock_flock(kr->fd, LOCK_UN);
	return rc;
}

int keyring_health_get(keyring *kr, keyring_health *out)
{
	kr_image im = {0};
	kr_key k;
	int rc, newer;

	if (kr->r)
		return rkr_health(kr->r, out);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&kr->mu);
	rc = read_shared(kr, &im);
	if (rc == EF_OK) {
		out->present = 1;
		out->header_ok = hdr_parse(im.buf, im.len, &out->gen, &newer);
		for (size_t i = 0; i < image_slots(&im); i++) {
			switch (slot_parse(image_slot(&im, i), &k)) {
			case SLOT_OK:
				if (k.state == ST_LIVE)
					out->live++;
				else
					out->destroyed++;
				break;
			case SLOT_BAD:
				out->damaged++;
				break;
			}
		}
		out->damaged += im.len > HDR_SIZE &&
				(im.len - HDR_SIZE) % SLOT_SIZE;
		sodium_memzero(&k, sizeof(k));
	}
	image_free(&im);
	pthread_mutex_unlock(&kr->mu);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

long keyring_count_window(keyring *kr, uint32_t win)
{
	kr_image im = {0};
	kr_key k;
	long n = 0;
	int rc;

	if (kr->r)
		return rkr_count_window(kr->r, win);
	pthread_mutex_lock(&kr->mu);
	rc = read_shared(kr, &im);
	for (size_t i = 0; rc == EF_OK && i < image_slots(&im); i++)
		n += slot_parse(image_slot(&im, i), &k) == SLOT_OK &&
		     k.state == ST_LIVE && k.win == win;
	sodium_memzero(&k, sizeof(k));
	image_free(&im);
	pthread_mutex_unlock(&kr->mu);
	return rc == EF_OK || rc == EF_ENOTFOUND ? n : rc;
}

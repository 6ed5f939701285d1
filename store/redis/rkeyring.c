/*
 * rkeyring.c - the window keys of a store on Redis Cluster (rkeyring.h),
 * kept in the cluster so that every host seals and opens with the same
 * key, and destroyed there for every host at once.
 *
 * One hash ef:{K}:k (engine.h) holds:
 *   w:XXXXXXXX  the key of window 0xXXXXXXXX: 32 random bytes while live,
 *               the empty string once destroyed (so no later HSETNX can
 *               bring a destroyed window back)
 *   gen         a counter that every destruction increments: a process
 *               drops its cached keys when it changes
 * The first process that needs a window's key makes it with HSETNX, so all
 * agree on one; with the address's wait=N, making and destroying a key
 * wait for N replicas, as a finalize does (a destroyed key that a
 * failover brought back would open its day's IPs again).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/nowait.h"
#include "store/redis/engine.h"
#include "store/redis/rkeyring.h"
#include "store/redis/slot.h"

#define CACHE_MAX 64
#define CHECK_EVERY_NS (100 * 1000 * 1000LL)
#define FIELD_LEN 10 /* "w:" + 8 hex */

typedef struct ckey {
	uint32_t win;
	int destroyed;
	uint8_t key[KEYRING_KEYBYTES];
} ckey;

struct rkeyring {
	pthread_mutex_t mu;
	reng *e;
	int rdonly;
	uint64_t err_id;
	char k[3 + 2 + RENG_TAG_LEN + 2 + 1]; /* ef:{K}:k */
	size_t kl;
	int slot;
	ckey *cache;          /* sodium_malloc'd, CACHE_MAX */
	size_t n;
	long long gen;        /* the gen the cache belongs to */
	int64_t checked_ns;
	ckey *eph;            /* read-only handles: keys made in memory */
	size_t neph;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rkr_open(rkeyring **out, reng *e, int rdonly, uint64_t err_id)
{
	char tag[RENG_TAG_LEN + 1];
	rkeyring *r;

	*out = NULL;
	if (sodium_init() < 0)
		return ef__err(err_id, EF_EIO, "libsodium cannot initialize");
	r = ef__calloc(1, sizeof(*r));
	if (!r)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	r->cache = sodium_malloc(CACHE_MAX * sizeof(ckey));
	r->eph = sodium_malloc(CACHE_MAX * sizeof(ckey));
	if (!r->cache || !r->eph || pthread_mutex_init(&r->mu, NULL) != 0) {
		sodium_free(r->cache);
		sodium_free(r->eph);
		free(r);
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	}
	r->e = e;
	r->rdonly = rdonly;
	r->err_id = err_id;
	r->gen = -1;
	reng_tag(e, 'k', NULL, tag);
	r->kl = (size_t)snprintf(r->k, sizeof(r->k), "ef:{%s}:k", tag);
	r->slot = (int)rslot_of(r->k, r->kl);
	*out = r;
	return EF_OK;
}

void rkr_close(rkeyring *r)
{
	if (!r)
		return;
	sodium_memzero(r->cache, CACHE_MAX * sizeof(ckey));
	sodium_memzero(r->eph, CACHE_MAX * sizeof(ckey));
	sodium_free(r->cache);
	sodium_free(r->eph);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void field_of(uint32_t win, char f[FIELD_LEN + 1])
{
	snprintf(f, FIELD_LEN + 1, "w:%08x", (unsigned)win);
}

/* Run one command on the keyring's slot (reng_cmd). */
static int kcmd(rkeyring *r, unsigned flags, int argc, const char **argv,
		const size_t *lens, redisReply **out)
{
	return reng_cmd(r->e, r->slot, flags, argc, argv, lens, "keyring",
			out);
}

static void cache_clear(rkeyring *r)
{
	sodium_memzero(r->cache, CACHE_MAX * sizeof(ckey));
	r->n = 0;
}

static long long reply_int(const redisReply *v)
{
	if (v->type == REDIS_REPLY_INTEGER)
		return v->integer;
	if (v->type == REDIS_REPLY_STRING)
		return strtoll(v->str, NULL, 10);
	return 0; /* nil: never destroyed */
}

/* Drop the cache if a destruction happened since it was filled (asked at
 * most every CHECK_EVERY_NS: a key destroyed elsewhere can so be used
 * here that much longer, for IPs still within retention by the read rule,
 * which every open applies first; as the file keyring does). */
static int cache_current(rkeyring *r)
{
	const char *argv[] = {"HGET", r->k, "gen"};
	size_t lens[] = {4, r->kl, 3};
	int64_t now = mono_ns();
	redisReply *v;
	long long gen;
	int rc;

	if (r->gen >= 0 && now - r->checked_ns < CHECK_EVERY_NS)
		return EF_OK;
	rc = kcmd(r, RCMD_IDEMPOTENT, 3, argv, lens, &v);
	if (rc != EF_OK)
		return rc;
	gen = reply_int(v);
	freeReplyObject(v);
	if (gen != r->gen)
		cache_clear(r);
	r->gen = gen;
	r->checked_ns = now;
	return EF_OK;
}

static ckey *cache_find(ckey *set, size_t n, uint32_t win)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].win == win)
			return &set[i];
	return NULL;
}

static void cache_put(rkeyring *r, uint32_t win, int destroyed,
		      const uint8_t *key)
{
	ckey *k;

	if (r->n == CACHE_MAX) /* drop the oldest */
		memmove(r->cache, r->cache + 1, (CACHE_MAX - 1) * sizeof(ckey));
	else
		r->n++;
	k = &r->cache[r->n - 1];
	k->win = win;
	k->destroyed = destroyed;
	if (destroyed)
		memset(k->key, 0, sizeof(k->key));
	else
		memcpy(k->key, key, sizeof(k->key));
}

/* The key of @win from the cluster: EF_OK (cached), EF_ENOTFOUND,
 * KEYRING_DESTROYED, or an error. A value of another length is not a key
 * (damaged): read as absent, never used. */
static int fetch(rkeyring *r, uint32_t win)
{
	char f[FIELD_LEN + 1];
	const char *argv[] = {"HGET", r->k, f};
	size_t lens[] = {4, r->kl, FIELD_LEN};
	redisReply *v;
	int rc;

	field_of(win, f);
	rc = kcmd(r, RCMD_IDEMPOTENT, 3, argv, lens, &v);
	if (rc != EF_OK)
		return rc;
	if (v->type == REDIS_REPLY_STRING && v->len == 0) {
		cache_put(r, win, 1, NULL);
		rc = KEYRING_DESTROYED;
	} else if (v->type == REDIS_REPLY_STRING &&
		   v->len == KEYRING_KEYBYTES) {
		cache_put(r, win, 0, (const uint8_t *)v->str);
		rc = EF_OK;
	} else {
		rc = EF_ENOTFOUND;
	}
	if (v->type == REDIS_REPLY_STRING)
		sodium_memzero(v->str, v->len);
	freeReplyObject(v);
	return rc;
}

/* Make the key of @win unless another process made it first. With the
 * address's wait=N, the HSETNX is acknowledged by N replicas on its own
 * connection (RCMD_WAIT): a key lost in a failover would cost its day's
 * IPs. */
static int create(rkeyring *r, uint32_t win)
{
	uint8_t key[KEYRING_KEYBYTES];
	char f[FIELD_LEN + 1];
	const char *argv[] = {"HSETNX", r->k, f, (const char *)key};
	size_t lens[] = {6, r->kl, FIELD_LEN, sizeof(key)};
	redisReply *v;
	int rc;

	field_of(win, f);
	randombytes_buf(key, sizeof(key));
	/* HSETNX twice sets nothing the second time: safe to send again */
	rc = kcmd(r, RCMD_IDEMPOTENT | RCMD_WAIT, 4, argv, lens, &v);
	sodium_memzero(key, sizeof(key));
	if (rc != EF_OK)
		return rc;
	freeReplyObject(v);
	return EF_OK;
}

int rkr_get(rkeyring *r, uint32_t win, int create_it,
	    uint8_t key[KEYRING_KEYBYTES])
{
	ckey *k;
	int rc;

	if (store_nowait()) { /* a network read is a wait */
		store_nowait_refused();
		return ef__err(r->err_id, EF_EBUSY, "redis: keyring: not "
			       "without waiting");
	}
	pthread_mutex_lock(&r->mu);
	rc = cache_current(r);
	if (rc == EF_OK) {
		k = cache_find(r->cache, r->n, win);
		rc = k ? (k->destroyed ? KEYRING_DESTROYED : EF_OK)
		       : fetch(r, win);
	}
	if (rc == EF_ENOTFOUND && create_it && r->rdonly) {
		k = cache_find(r->eph, r->neph, win);
		if (!k && r->neph < CACHE_MAX) {
			k = &r->eph[r->neph++];
			k->win = win;
			k->destroyed = 0;
			randombytes_buf(k->key, sizeof(k->key));
		}
		if (k) {
			memcpy(key, k->key, KEYRING_KEYBYTES);
			rc = EF_OK;
		} else {
			rc = ef__err(r->err_id, EF_ENOMEM, "keyring: too many "
				     "keys made in memory");
		}
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	if (rc == EF_ENOTFOUND && create_it) {
		rc = create(r, win);
		if (rc == EF_OK)
			rc = fetch(r, win);
		if (rc == EF_ENOTFOUND)
			rc = ef__err(r->err_id, EF_EIO, "redis: keyring: a new "
				     "key did not persist");
	}
	if (rc == EF_OK) {
		k = cache_find(r->cache, r->n, win);
		memcpy(key, k->key, KEYRING_KEYBYTES);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int rkr_get_ephemeral(rkeyring *r, uint32_t win,
		      uint8_t key[KEYRING_KEYBYTES])
{
	ckey *k;
	int rc = EF_ENOTFOUND;

	pthread_mutex_lock(&r->mu);
	k = cache_find(r->eph, r->neph, win);
	if (k) {
		memcpy(key, k->key, KEYRING_KEYBYTES);
		rc = EF_OK;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Every field and value of the hash: HGETALL's reply. */
static int read_all(rkeyring *r, redisReply **out)
{
	const char *argv[] = {"HGETALL", r->k};
	size_t lens[] = {7, r->kl};
	int rc = kcmd(r, RCMD_IDEMPOTENT, 2, argv, lens, out);

	if (rc == EF_OK && ((*out)->type != REDIS_REPLY_ARRAY ||
			    (*out)->elements % 2)) {
		freeReplyObject(*out);
		*out = NULL;
		rc = ef__err(r->err_id, EF_EIO, "redis: keyring: not a hash");
	}
	return rc;
}

/* The window a field names, or -1 for a field that names none. */
static long long field_win(const redisReply *f)
{
	char buf[9];
	char *end;
	unsigned long w;

	if (f->type != REDIS_REPLY_STRING || f->len != FIELD_LEN ||
	    memcmp(f->str, "w:", 2) != 0)
		return -1;
	memcpy(buf, f->str + 2, 8);
	buf[8] = '\0';
	w = strtoul(buf, &end, 16);
	return *end ? -1 : (long long)w;
}

static void wipe_reply(redisReply *v)
{
	for (size_t i = 0; v && i < v->elements; i++)
		if (v->element[i]->type == REDIS_REPLY_STRING)
			sodium_memzero(v->element[i]->str, v->element[i]->len);
	if (v)
		freeReplyObject(v);
}

int rkr_destroy_before(rkeyring *r, uint32_t before, uint64_t *destroyed,
		       uint64_t *wiped)
{
	redisReply *all, *v;
	int rc;

	*destroyed = *wiped = 0;
	if (r->rdonly)
		return ef__err(r->err_id, EF_EINVAL, "keyring: the store is "
			       "open read-only");
	pthread_mutex_lock(&r->mu);
	rc = read_all(r, &all);
	if (rc != EF_OK) {
		pthread_mutex_unlock(&r->mu);
		return rc;
	}
	/* the generation first: caches reload before keys go */
	{
		const char *argv[] = {"HINCRBY", r->k, "gen", "1"};
		size_t lens[] = {7, r->kl, 3, 1};
		rc = kcmd(r, 0, 4, argv, lens, &v);
		if (rc == EF_OK)
			freeReplyObject(v);
	}
	for (size_t i = 0; rc == EF_OK && i < all->elements; i += 2) {
		const redisReply *f = all->element[i], *val = all->element[i + 1];
		long long w = field_win(f);
		const char *argv[] = {"HSET", r->k, f->str, ""};
		size_t lens[] = {4, r->kl, f->len, 0};
		int damaged = val->type != REDIS_REPLY_STRING ||
			      (val->len != 0 && val->len != KEYRING_KEYBYTES);

		if (f->len == 3 && memcmp(f->str, "gen", 3) == 0)
			continue;
		if (w < 0 || damaged) { /* not a key: never kept */
			argv[0] = "HDEL";
			lens[0] = 4;
			rc = kcmd(r, RCMD_IDEMPOTENT | RCMD_WAIT, 3, argv,
				  lens, &v);
			if (rc == EF_OK) {
				freeReplyObject(v);
				++*wiped;
			}
			continue;
		}
		if ((uint64_t)w >= before || val->len == 0)
			continue;
		rc = kcmd(r, RCMD_IDEMPOTENT | RCMD_WAIT, 4, argv, lens, &v);
		if (rc == EF_OK) {
			freeReplyObject(v);
			++*destroyed;
		}
	}
	wipe_reply(all);
	cache_clear(r);
	r->gen = -1;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int rkr_health(rkeyring *r, keyring_health *out)
{
	redisReply *all;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->mu);
	rc = read_all(r, &all);
	pthread_mutex_unlock(&r->mu);
	if (rc != EF_OK)
		return rc;
	out->present = all->elements > 0;
	out->header_ok = 1;
	for (size_t i = 0; i < all->elements; i += 2) {
		const redisReply *f = all->element[i], *v = all->element[i + 1];
		if (f->len == 3 && memcmp(f->str, "gen", 3) == 0) {
			out->gen = (uint64_t)reply_int(v);
			continue;
		}
		if (field_win(f) < 0 || v->type != REDIS_REPLY_STRING ||
		    (v->len != 0 && v->len != KEYRING_KEYBYTES))
			out->damaged++;
		else if (v->len == 0)
			out->destroyed++;
		else
			out->live++;
	}
	wipe_reply(all);
	return EF_OK;
}

long rkr_count_window(rkeyring *r, uint32_t win)
{
	char f[FIELD_LEN + 1];
	const char *argv[] = {"HSTRLEN", r->k, f};
	size_t lens[] = {7, r->kl, FIELD_LEN};
	redisReply *v;
	long n;
	int rc;

	field_of(win, f);
	rc = kcmd(r, RCMD_IDEMPOTENT, 3, argv, lens, &v);
	if (rc != EF_OK)
		return rc;
	/* one field a window: HSETNX cannot make two */
	n = v->type == REDIS_REPLY_INTEGER && v->integer == KEYRING_KEYBYTES;
	freeReplyObject(v);
	return n;
}

/*
 * rlock.c - the maintenance lock of a store on Redis Cluster (rlock.h): a
 * lease in the cluster, bound to its holder by a random token.
 *
 * The key ef:{L}:m (L = tag(S, 'm', "")) holds "pid N on HOST (WHAT)
 * TOKEN" while held. SET NX PX takes it; a thread of the holder renews the
 * lease every third of it, and only while the key still holds the
 * holder's token (a script compares and extends in one step); release
 * deletes it the same way, so a holder whose lease ran out never deletes
 * the next holder's lock. A holder killed with kill -9 stops renewing:
 * the lease ends RLOCK_LEASE_MS later and a waiter takes the lock; a
 * waiter on the holder's own host sees at once that its pid is gone and
 * ends the dead holder's lock itself (compare-and-delete of its note).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/redis/engine.h"
#include "store/redis/rlock.h"
#include "store/redis/slot.h"

#define POLL_MS 100
#define RLOCK_AGAIN 1 /* try_take: a dead holder's lock was ended */

static const char renew_lua[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then "
	"return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char release_lua[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then "
	"return redis.call('del', KEYS[1]) else return 0 end";

struct rlock {
	reng *e;
	uint64_t err_id;
	char key[3 + 2 + RENG_TAG_LEN + 2 + 1];
	int slot;
	char val[512];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int lost;      /* a renewal found the lease gone */
};

static int lock_cmd(rlock *l, unsigned flags, int argc, const char **argv,
		    const size_t *lens, redisReply **out)
{
	return reng_cmd(l->e, l->slot, flags, argc, argv, lens,
			"maintenance lock", out);
}

/* Run @lua on the lock's key with value @val (@vlen bytes): its integer
 * reply. */
static int script_on(rlock *l, const char *lua, const char *val, size_t vlen,
		     long long *out)
{
	char ms[24];
	const char *argv[] = {"EVAL", lua, "1", l->key, val, ms};
	size_t lens[] = {4, strlen(lua), 1, strlen(l->key), vlen, 0};
	redisReply *r;
	int rc;

	lens[5] = (size_t)snprintf(ms, sizeof(ms), "%d", RLOCK_LEASE_MS);
	rc = lock_cmd(l, RCMD_IDEMPOTENT, 6, argv, lens, &r);
	if (rc != EF_OK)
		return rc;
	*out = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return EF_OK;
}

static int script(rlock *l, const char *lua, long long *out)
{
	return script_on(l, lua, l->val, strlen(l->val), out);
}

/* Is the holder note @v (@n bytes) that of a process of this host that is
 * gone? Then nobody will renew its lease: it may be ended now, as a flock
 * ends with its process. A pid that is in use again reads as alive, and
 * the lease then ends in its time: never a live holder's lock taken. */
static int holder_dead_here(const char *v, size_t n)
{
	char buf[512], host[256], me[256] = "";
	long pid;
	int at = 0;

	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (sscanf(buf, "pid %ld on %255s (%n", &pid, host, &at) != 2 ||
	    at == 0 || pid <= 0)
		return 0;
	if (gethostname(me, sizeof(me) - 1) != 0 || strcmp(me, host) != 0)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void *renewer(void *p)
{
	rlock *l = p;
	struct timespec at;
	long long n;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_nsec += (long)(RLOCK_LEASE_MS / 3 % 1000) * 1000000L;
		at.tv_sec += RLOCK_LEASE_MS / 3 / 1000 + at.tv_nsec / 1000000000L;
		at.tv_nsec %= 1000000000L;
		if (pthread_cond_timedwait(&l->cv, &l->mu, &at) != ETIMEDOUT ||
		    l->stop)
			continue;
		pthread_mutex_unlock(&l->mu);
		/* a failed call is tried again at the next turn; a lease
		 * that is gone stays gone */
		if (script(l, renew_lua, &n) == EF_OK && n == 0)
			l->lost = 1;
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Try once: EF_OK (taken), EF_EBUSY (*holder gets the holder's note). */
static int try_take(rlock *l, char *holder, size_t cap)
{
	char ms[24];
	const char *argv[] = {"SET", l->key, l->val, "NX", "PX", ms};
	size_t lens[] = {3, strlen(l->key), strlen(l->val), 2, 2, 0};
	const char *gv[] = {"GET", l->key};
	size_t gl[] = {3, strlen(l->key)};
	redisReply *r;
	int rc;

	lens[5] = (size_t)snprintf(ms, sizeof(ms), "%d", RLOCK_LEASE_MS);
	rc = lock_cmd(l, 0, 6, argv, lens, &r);
	if (rc != EF_OK)
		return rc;
	if (r->type == REDIS_REPLY_STATUS) {
		freeReplyObject(r);
		return EF_OK;
	}
	freeReplyObject(r);
	rc = lock_cmd(l, RCMD_IDEMPOTENT, 2, gv, gl, &r);
	if (rc != EF_OK)
		return rc;
	if (r->type == REDIS_REPLY_STRING && holder_dead_here(r->str, r->len)) {
		long long n;
		rc = script_on(l, release_lua, r->str, r->len, &n);
		freeReplyObject(r);
		return rc == EF_OK ? RLOCK_AGAIN : rc;
	}
	if (r->type == REDIS_REPLY_STRING) {
		/* the note without its token */
		size_t n = r->len;
		while (n > 0 && r->str[n - 1] != ' ')
			n--;
		n = n ? n - 1 : r->len;
		snprintf(holder, cap, "%.*s", (int)n, r->str);
	} else {
		snprintf(holder, cap, "a holder that just let go");
	}
	freeReplyObject(r);
	return EF_EBUSY;
}

int rlock_take(reng *e, const char *what, int nowait, ef_wait_fn on_wait,
	       void *ctx, uint64_t err_id, rlock **out)
{
	char tag[RENG_TAG_LEN + 1], host[128] = "?", hex[33], holder[512];
	unsigned char tok[16];
	int rc, told = 0;
	rlock *l;

	*out = NULL;
	l = ef__calloc(1, sizeof(*l));
	if (!l)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	l->e = e;
	l->err_id = err_id;
	reng_tag(e, 'm', NULL, tag);
	snprintf(l->key, sizeof(l->key), "ef:{%s}:m", tag);
	l->slot = (int)rslot_of(l->key, strlen(l->key));
	gethostname(host, sizeof(host) - 1);
	randombytes_buf(tok, sizeof(tok));
	sodium_bin2hex(hex, sizeof(hex), tok, sizeof(tok));
	snprintf(l->val, sizeof(l->val), "pid %ld on %s (%.200s) %s",
		 (long)getpid(), host, what ? what : "maintenance", hex);
	for (;;) {
		rc = try_take(l, holder, sizeof(holder));
		if (rc == RLOCK_AGAIN)
			continue; /* a dead holder's lock was ended */
		if (rc != EF_EBUSY)
			break;
		if (nowait) {
			rc = ef__err(err_id, EF_EBUSY, "the maintenance lock is "
				     "held by %s", holder);
			break;
		}
		if (!told && on_wait)
			on_wait(holder, ctx);
		told = 1;
		nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
	}
	if (rc == EF_OK) {
		pthread_mutex_init(&l->mu, NULL);
		pthread_cond_init(&l->cv, NULL);
		if (pthread_create(&l->th, NULL, renewer, l) != 0) {
			long long n;
			script(l, release_lua, &n);
			pthread_cond_destroy(&l->cv);
			pthread_mutex_destroy(&l->mu);
			rc = ef__err(err_id, EF_ENOMEM, "cannot start the "
				     "thread that renews the lock");
		}
	}
	if (rc != EF_OK) {
		free(l);
		return rc;
	}
	*out = l;
	return EF_OK;
}

int rlock_lost(rlock *l)
{
	return l->lost;
}

void rlock_release(rlock *l)
{
	long long n;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->th, NULL);
	script(l, release_lua, &n);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/*
 * txn.c - optimistic transactions over one group of keys (txn.h).
 *
 * Invariants:
 * - Every read of the group's keys happens after WATCH of both, on the
 *   one pinned connection, so EXEC fails if anything read changed.
 * - Writes stay in t->w (sorted by key, at most one op a key) until
 *   commit; reads and cursors consult t->w first, so the transaction sees
 *   its own writes.
 * - Returned store_vals point into t's arena (or into t->w), never into a
 *   hiredis reply, so they stay valid until the transaction ends.
 */
#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/redis/reply.h"
#include "store/redis/slot.h"
#include "store/redis/txn.h"

/* A token lives as long as a lost reply may take to resolve (resolve asks
 * for it until the address's retry_ms has passed) and a minute more; not
 * an hour, which at 1,000 commits a second kept 3.6 million tokens. */
#define TOKEN_SLACK_MS 60000

#define BATCH_MIN 8            /* keys a cursor fetches at first */
#define BATCH_MAX 128          /* and at most, doubling */
#define RKEY_MAX (3 + 2 + RTXN_TAG_MAX + 3 + 32)

typedef struct wop {
	char *k;      /* owned, klen bytes (+ NUL) */
	size_t klen;
	char *v;      /* owned; NULL for a delete */
	size_t vlen;
} wop;

typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
} chunk;

struct rcur {
	rtxn *t;
	struct rcur *next;      /* the transaction's list */
	int open;
	char *pos;              /* the current key (owned), or NULL */
	size_t poslen;
	int incl;               /* a seek: @pos itself is the next candidate */
	int dir;                /* the cache's direction: 1 up, -1 down */
	store_val *ck, *cv;     /* cached keys/values from Redis, in dir */
	size_t cn, ci;          /* cached, next to use */
	int cend;               /* Redis has no key past the cache */
	size_t batch;
	size_t hint;            /* rcur_hint's, for the next fetch */
};

/* A key read by HGET in this transaction, and what it read: asked again,
 * it answers from here (under WATCH, a second read could only differ if
 * the group changed, and then the commit fails anyway). */
typedef struct rread {
	const char *k;          /* in the arena */
	size_t kl;
	const char *v;          /* in the arena; NULL: not found */
	size_t vl;
} rread;

#define RREAD_MAX 16 /* the last keys read, kept */

struct rtxn {
	rread reads[RREAD_MAX];
	size_t nreads;          /* reads kept, at most RREAD_MAX */
	size_t next_read;       /* the slot the next one takes */
	rclient *c;
	unsigned slot;
	int write;
	redisContext *ctx;      /* pinned; NULL once broken */
	int watched;
	char h[RKEY_MAX], z[RKEY_MAX];
	size_t hl, zl;
	wop *w;                 /* sorted by key */
	size_t wn, wcap;
	chunk *arena;
	struct rcur *curs;
	uint64_t err_id;
};

/* The token's time to live, in decimal, into @buf. */
static size_t token_ttl(const rtxn *t, char buf[24])
{
	const raddr *a = rclient_addr(t->c);
	long long ms = (long long)a->retry_ms + a->timeout_ms + TOKEN_SLACK_MS;

	return (size_t)snprintf(buf, 24, "%lld", ms);
}

static int cut_after_exec; /* test hook */

void rtxn__cut_after_exec(int on)
{
	cut_after_exec = on;
}

/* ---- memory ---- */

static void *arena_copy(rtxn *t, const void *p, size_t n)
{
	chunk *c = t->arena;
	char *out;

	if (!c || c->cap - c->used < n + 1) {
		size_t cap = n + 1 > 4096 ? n + 1 : 4096;
		c = ef__malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = t->arena;
		t->arena = c;
	}
	out = c->data + c->used;
	if (n)
		memcpy(out, p, n);
	out[n] = '\0';
	c->used += n + 1;
	return out;
}

static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	int r = memcmp(a, b, al < bl ? al : bl);
	return r ? r : (al > bl) - (al < bl);
}

/* ---- talking to the master ---- */

/* A failure on the pinned connection: what the caller returns. */
static int conn_failed(rtxn *t, const char *what)
{
	int rc = ef__err(t->err_id, RTXN_RETRY, "redis: %s: %s", what,
			 t->ctx ? t->ctx->errstr : "not connected");
	rclient_pin_broken(t->c, t->slot);
	t->ctx = NULL;
	return rc;
}

/* An error reply: a redirection or a cluster state means "run again";
 * anything else is an error of ours or of the data. */
static int reply_failed(rtxn *t, const redisReply *r, const char *what)
{
	int k = rclient_pin_error(t->c, r->str, r->len);

	if (k != RERR_OTHER)
		return ef__err(t->err_id, RTXN_RETRY, "redis: %s: %.*s", what,
			       (int)(r->len > 120 ? 120 : r->len), r->str);
	return ef__err(t->err_id, EF_EIO, "redis: %s: %.*s", what,
		       (int)(r->len > 120 ? 120 : r->len), r->str);
}

static int cmd(rtxn *t, const char *what, int argc, const char **argv,
	       const size_t *lens, redisReply **out)
{
	*out = NULL;
	if (!t->ctx)
		return conn_failed(t, what);
	*out = redisCommandArgv(t->ctx, argc, argv, lens);
	if (!*out)
		return conn_failed(t, what);
	if ((*out)->type == REDIS_REPLY_ERROR) {
		int rc = reply_failed(t, *out, what);
		freeReplyObject(*out);
		*out = NULL;
		return rc;
	}
	return EF_OK;
}

static void unpin(rtxn *t);

/*
 * @argv on the pinned connection, after WATCH if the transaction has not
 * watched yet: the two go in one write, so a transaction's first read
 * costs one round trip, not two. The WATCH is in place before the read
 * runs (a connection runs its commands in order).
 */
static int wcmd(rtxn *t, const char *what, int argc, const char **argv,
		const size_t *lens, redisReply **out)
{
	const char *wv[] = {"WATCH", t->h, t->z};
	size_t wl[] = {5, t->hl, t->zl};
	void *wr = NULL, *r = NULL;
	int rc;

	if (t->watched)
		return cmd(t, what, argc, argv, lens, out);
	*out = NULL;
	if (!t->ctx)
		return conn_failed(t, "WATCH");
	if (redisAppendCommandArgv(t->ctx, 3, wv, wl) != REDIS_OK ||
	    redisAppendCommandArgv(t->ctx, argc, argv, lens) != REDIS_OK) {
		unpin(t); /* it may hold half a pipeline */
		return EF_ENOMEM;
	}
	if (redisGetReply(t->ctx, &wr) != REDIS_OK)
		return conn_failed(t, "WATCH");
	if (redisGetReply(t->ctx, &r) != REDIS_OK) {
		freeReplyObject(wr);
		return conn_failed(t, what);
	}
	if (((redisReply *)wr)->type == REDIS_REPLY_ERROR) {
		rc = reply_failed(t, wr, "WATCH");
		freeReplyObject(wr);
		freeReplyObject(r);
		return rc;
	}
	freeReplyObject(wr);
	t->watched = 1;
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		rc = reply_failed(t, r, what);
		freeReplyObject(r);
		return rc;
	}
	*out = r;
	return EF_OK;
}

static int watch(rtxn *t)
{
	const char *argv[] = {"WATCH", t->h, t->z};
	size_t lens[] = {5, t->hl, t->zl};
	redisReply *r;
	int rc;

	if (t->watched)
		return EF_OK;
	rc = cmd(t, "WATCH", 3, argv, lens, &r);
	if (rc != EF_OK)
		return rc;
	freeReplyObject(r);
	t->watched = 1;
	return EF_OK;
}

int rtxn_begin(rclient *c, const char *tag, int write, rtxn **out)
{
	size_t tl = strlen(tag);
	rtxn *t;
	int rc;

	*out = NULL;
	assert(tl >= 1 && tl <= RTXN_TAG_MAX && !strpbrk(tag, "{}"));
	t = ef__calloc(1, sizeof(*t));
	if (!t)
		return EF_ENOMEM;
	t->c = c;
	t->write = write;
	t->hl = (size_t)snprintf(t->h, sizeof(t->h), "ef:{%s}:h", tag);
	t->zl = (size_t)snprintf(t->z, sizeof(t->z), "ef:{%s}:z", tag);
	t->slot = rslot_of(t->h, t->hl);
	t->err_id = rclient_err_id(c);
	rc = rclient_pin(c, t->slot, &t->ctx);
	if (rc != EF_OK) {
		free(t);
		return rc == EF_EIO ? RTXN_RETRY : rc;
	}
	*out = t;
	return EF_OK;
}

/* ---- the write buffer ---- */

/* The index of @k in t->w, or where it would go (*found 0). */
static size_t wfind(const rtxn *t, const void *k, size_t kl, int *found)
{
	size_t lo = 0, hi = t->wn;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = keycmp(t->w[mid].k, t->w[mid].klen, k, kl);
		if (r == 0) {
			*found = 1;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int wset(rtxn *t, const void *k, size_t kl, const void *v, size_t vl,
		int del)
{
	int found;
	size_t i = wfind(t, k, kl, &found);
	char *nv = NULL;
	wop *w;

	if (!del) {
		nv = ef__malloc(vl ? vl : 1);
		if (!nv)
			return EF_ENOMEM;
		if (vl)
			memcpy(nv, v, vl);
	}
	if (found) {
		free(t->w[i].v);
		t->w[i].v = nv;
		t->w[i].vlen = vl;
		return EF_OK;
	}
	if (t->wn == t->wcap) {
		size_t cap = t->wcap ? t->wcap * 2 : 8;
		wop *nw = ef__realloc(t->w, cap * sizeof(*nw));
		if (!nw) {
			free(nv);
			return EF_ENOMEM;
		}
		t->w = nw;
		t->wcap = cap;
	}
	w = &t->w[i];
	memmove(w + 1, w, (t->wn - i) * sizeof(*w));
	w->k = ef__malloc(kl + 1);
	if (!w->k) {
		memmove(w, w + 1, (t->wn - i) * sizeof(*w));
		free(nv);
		return EF_ENOMEM;
	}
	memcpy(w->k, k, kl);
	w->k[kl] = '\0';
	w->klen = kl;
	w->v = nv;
	w->vlen = vl;
	t->wn++;
	return EF_OK;
}

/* ---- reads ---- */

/* What this transaction read of @k before, if it kept it. */
static const rread *read_kept(const rtxn *t, const void *k, size_t kl)
{
	for (size_t i = 0; i < t->nreads; i++)
		if (t->reads[i].kl == kl && memcmp(t->reads[i].k, k, kl) == 0)
			return &t->reads[i];
	return NULL;
}

static void read_keep(rtxn *t, const void *k, size_t kl, const char *v,
		      size_t vl)
{
	const char *kc = arena_copy(t, k, kl);
	rread *r;

	if (!kc)
		return; /* out of memory: it is only not kept */
	r = &t->reads[t->next_read];
	t->next_read = (t->next_read + 1) % RREAD_MAX;
	if (t->nreads < RREAD_MAX)
		t->nreads++;
	r->k = kc;
	r->kl = kl;
	r->v = v;
	r->vl = vl;
}

int rtxn_get(rtxn *t, const void *k, size_t kl, store_val *v)
{
	const char *argv[] = {"HGET", t->h, k};
	size_t lens[] = {4, t->hl, kl};
	const rread *kept;
	redisReply *r;
	int found, rc;
	size_t i = wfind(t, k, kl, &found);

	if (found) {
		if (!t->w[i].v)
			return EF_ENOTFOUND;
		if (v) {
			v->data = t->w[i].v;
			v->len = t->w[i].vlen;
		}
		return EF_OK;
	}
	kept = read_kept(t, k, kl);
	if (kept) {
		if (!kept->v)
			return EF_ENOTFOUND;
		if (v) {
			v->data = kept->v;
			v->len = kept->vl;
		}
		return EF_OK;
	}
	rc = wcmd(t, "HGET", 3, argv, lens, &r);
	if (rc != EF_OK)
		return rc;
	if (r->type == REDIS_REPLY_NIL) {
		rc = EF_ENOTFOUND;
		read_keep(t, k, kl, NULL, 0);
	} else if (r->type != REDIS_REPLY_STRING) {
		rc = ef__err(t->err_id, EF_EIO, "redis: HGET: not a string");
	} else {
		const char *copy = arena_copy(t, r->str, r->len);
		rc = copy ? EF_OK : EF_ENOMEM;
		if (copy) {
			read_keep(t, k, kl, copy, r->len);
			if (v) {
				v->data = copy;
				v->len = r->len;
			}
		}
	}
	freeReplyObject(r);
	return rc;
}

int rtxn_put(rtxn *t, const void *k, size_t kl, const void *v, size_t vl,
	     unsigned flags)
{
	int rc;

	assert(t->write);
	if (flags & STORE_NOOVERWRITE) {
		rc = rtxn_get(t, k, kl, NULL);
		if (rc == EF_OK)
			return EF_EXISTS;
		if (rc != EF_ENOTFOUND)
			return rc;
	} else {
		rc = watch(t); /* a blind write still takes part in EXEC */
		if (rc != EF_OK)
			return rc;
	}
	return wset(t, k, kl, v, vl, 0);
}

int rtxn_del(rtxn *t, const void *k, size_t kl)
{
	int rc = rtxn_get(t, k, kl, NULL);

	assert(t->write);
	if (rc != EF_OK)
		return rc;
	return wset(t, k, kl, NULL, 0, 1);
}

/* ---- commit ---- */

static void free_all(rtxn *t)
{
	while (t->curs) {
		struct rcur *c = t->curs;
		t->curs = c->next;
		free(c->pos);
		free(c->ck);
		free(c->cv);
		free(c);
	}
	for (size_t i = 0; i < t->wn; i++) {
		free(t->w[i].k);
		free(t->w[i].v);
	}
	free(t->w);
	while (t->arena) {
		chunk *c = t->arena;
		t->arena = c->next;
		free(c);
	}
	free(t);
}

void rtxn_abort(rtxn *t)
{
	if (!t)
		return;
	if (t->ctx && t->watched) { /* leave the connection as we found it */
		redisReply *r = redisCommand(t->ctx, "UNWATCH");
		if (r)
			freeReplyObject(r);
		else
			rclient_pin_broken(t->c, t->slot);
	}
	free_all(t);
}

int rtxn_verify(rtxn *t)
{
	for (size_t i = 0; i < t->wn; i++) {
		free(t->w[i].k);
		free(t->w[i].v);
	}
	t->wn = 0;
	return rtxn_commit(t); /* nothing to write: an empty MULTI/EXEC */
}

/* Append the commands of one MULTI block: the buffered writes, the token. */
static int append_writes(rtxn *t, const char *tok, size_t tokl)
{
	size_t n = t->wn, puts = 0, dels = 0;
	const char **argv = ef__malloc((2 * n + 3) * sizeof(*argv));
	size_t *lens = ef__malloc((2 * n + 3) * sizeof(*lens));
	char ttl[24];
	int rc = EF_OK;

	if (!argv || !lens) {
		free(argv);
		free(lens);
		return EF_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		t->w[i].v ? puts++ : dels++;
	/* HSET h k v ..., ZADD z 0 k ..., HDEL h k ..., ZREM z k ... */
	for (int pass = 0; pass < 4 && rc == EF_OK; pass++) {
		static const char *verb[] = {"HSET", "ZADD", "HDEL", "ZREM"};
		int want_put = pass < 2;
		size_t argc = 0;

		if ((want_put && !puts) || (!want_put && !dels))
			continue;
		argv[argc] = verb[pass];
		lens[argc++] = 4;
		argv[argc] = pass % 2 ? t->z : t->h;
		lens[argc++] = pass % 2 ? t->zl : t->hl;
		for (size_t i = 0; i < n; i++) {
			if ((t->w[i].v != NULL) != want_put)
				continue;
			if (pass == 1) {
				argv[argc] = "0";
				lens[argc++] = 1;
			}
			argv[argc] = t->w[i].k;
			lens[argc++] = t->w[i].klen;
			if (pass == 0) {
				argv[argc] = t->w[i].v;
				lens[argc++] = t->w[i].vlen;
			}
		}
		if (redisAppendCommandArgv(t->ctx, (int)argc, argv, lens) !=
		    REDIS_OK)
			rc = EF_ENOMEM;
	}
	if (rc == EF_OK) {
		argv[0] = "SET";
		lens[0] = 3;
		argv[1] = tok;
		lens[1] = tokl;
		argv[2] = "1";
		lens[2] = 1;
		argv[3] = "PX";
		lens[3] = 2;
		argv[4] = ttl;
		lens[4] = token_ttl(t, ttl);
		if (redisAppendCommandArgv(t->ctx, 5, argv, lens) != REDIS_OK)
			rc = EF_ENOMEM;
	}
	free(argv);
	free(lens);
	return rc;
}

/* The pinned connection is gone (broken, or its reply lost). */
static void unpin(rtxn *t)
{
	if (t->ctx)
		rclient_pin_broken(t->c, t->slot);
	t->ctx = NULL;
}

/*
 * The reply to EXEC was lost: was the transaction of token @tok
 * committed? Asked of the slot's master, retried (it may be failing over)
 * until retry_ms. EF_OK (it was; t->ctx is then a connection to the
 * master, for WAIT), RTXN_RETRY (it was not), EF_EIO (cannot tell).
 */
static int resolve(rtxn *t, const char *tok, size_t tokl)
{
	const char *argv[] = {"EXISTS", tok};
	size_t lens[] = {6, tokl};
	int left = rclient_addr(t->c)->retry_ms / 50 + 1;
	struct timespec pause = {0, 50 * 1000000L};

	unpin(t);
	if (tokl == 0) /* a read-only commit: nothing to lose, read again */
		return ef__err(t->err_id, RTXN_RETRY, "redis: the reply to a "
			       "read's EXEC was lost");
	for (; left > 0; left--, nanosleep(&pause, NULL)) {
		redisContext *ctx;
		redisReply *r;
		int type;
		long long v;

		if (rclient_pin(t->c, t->slot, &ctx) != EF_OK)
			continue;
		r = redisCommandArgv(ctx, 2, argv, lens);
		if (!r) {
			rclient_pin_broken(t->c, t->slot);
			continue;
		}
		type = r->type;
		v = r->integer;
		if (type == REDIS_REPLY_ERROR)
			rclient_pin_error(t->c, r->str, r->len);
		freeReplyObject(r);
		if (type != REDIS_REPLY_INTEGER)
			continue;
		if (v != 1)
			return ef__err(t->err_id, RTXN_RETRY, "redis: the reply "
				       "to a commit was lost, and it did not "
				       "happen");
		t->ctx = ctx;
		return EF_OK;
	}
	return ef__err(t->err_id, EF_EIO, "redis: the reply to a commit was "
		       "lost, and the slot's master could not be asked within "
		       "retry_ms whether it happened");
}

/*
 * WAIT for the address's replicas after a commit. WAIT covers the writes
 * of its own connection; after a lost reply that connection is new, so a
 * harmless write of the token (its TTL again) comes first: replication is
 * in order, so a replica that has it has the commit too.
 */
static int wait_replicas(rtxn *t, const char *tok, size_t tokl, int touch)
{
	const raddr *a = rclient_addr(t->c);
	redisReply *r;
	int rc = EF_OK;

	if (a->wait_replicas == 0)
		return EF_OK;
	if (touch) {
		char ttl[24];
		const char *argv[] = {"PEXPIRE", tok, ttl};
		size_t lens[] = {7, tokl, 0};
		lens[2] = token_ttl(t, ttl);
		r = redisCommandArgv(t->ctx, 3, argv, lens);
		if (r)
			freeReplyObject(r);
	}
	r = redisCommand(t->ctx, "WAIT %d %d", a->wait_replicas, a->wait_ms);
	if (!r) {
		rc = ef__err(t->err_id, EF_EIO, "redis: written on the master, "
			     "but WAIT for %d replicas failed (%s)",
			     a->wait_replicas, t->ctx->errstr);
		unpin(t);
		return rc;
	}
	if (r->type != REDIS_REPLY_INTEGER || r->integer < a->wait_replicas)
		rc = ef__err(t->err_id, EF_EIO, "redis: written on the master, "
			     "acknowledged by only %lld of %d replicas within "
			     "%d ms", r->type == REDIS_REPLY_INTEGER
			     ? r->integer : 0LL, a->wait_replicas, a->wait_ms);
	freeReplyObject(r);
	return rc;
}

/* Read the replies of MULTI, the @queued commands and EXEC. *@lost: the
 * outcome had to be asked for (resolve). */
static int exec_replies(rtxn *t, size_t queued, const char *tok,
			size_t tokl, int *lost)
{
	int rc = EF_OK;
	redisReply *r;
	void *v;

	*lost = 0;
	for (size_t i = 0; i < queued + 1; i++) { /* +OK, then +QUEUED */
		if (redisGetReply(t->ctx, &v) != REDIS_OK) {
			*lost = 1;
			return resolve(t, tok, tokl);
		}
		r = v;
		if (r->type == REDIS_REPLY_ERROR && rc == EF_OK)
			rc = reply_failed(t, r, "MULTI");
		freeReplyObject(r);
	}
	if (cut_after_exec || redisGetReply(t->ctx, &v) != REDIS_OK) {
		cut_after_exec = 0;
		*lost = 1;
		return resolve(t, tok, tokl);
	}
	r = v;
	if (r->type == REDIS_REPLY_NIL) /* a WATCHed key changed */
		rc = ef__err(t->err_id, RTXN_RETRY, "redis: the group changed");
	else if (r->type == REDIS_REPLY_ERROR)
		rc = rc != EF_OK ? rc : reply_failed(t, r, "EXEC");
	else if (r->type != REDIS_REPLY_ARRAY)
		rc = ef__err(t->err_id, EF_EIO, "redis: EXEC: not an array");
	freeReplyObject(r);
	return rc;
}

int rtxn_commit(rtxn *t)
{
	unsigned char raw[16];
	char tok[RKEY_MAX + 40], hex[33];
	size_t tokl = 0, queued = 0, puts = 0, dels = 0;
	int rc, done = 0, lost;

	if (!t->ctx) {
		uint64_t id = t->err_id;
		rtxn_abort(t);
		return ef__err(id, RTXN_RETRY, "redis: not connected");
	}
	if (!t->watched && t->wn == 0) { /* read nothing, wrote nothing */
		free_all(t);
		return EF_OK;
	}
	for (size_t i = 0; i < t->wn; i++)
		t->w[i].v ? puts++ : dels++;
	if (t->wn) {
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
		/* the token shares the group's tag, so its slot */
		tokl = (size_t)snprintf(tok, sizeof(tok), "%.*s:t:%s",
					(int)(t->hl - 2), t->h, hex);
		queued = (puts ? 2 : 0) + (dels ? 2 : 0) + 1;
	}
	rc = redisAppendCommand(t->ctx, "MULTI") == REDIS_OK ? EF_OK
							      : EF_ENOMEM;
	if (rc == EF_OK && t->wn)
		rc = append_writes(t, tok, tokl);
	if (rc == EF_OK && redisAppendCommand(t->ctx, "EXEC") != REDIS_OK)
		rc = EF_ENOMEM;
	if (rc != EF_OK) { /* the connection holds half a pipeline: drop it */
		unpin(t);
		free_all(t);
		return rc;
	}
	while (!done)
		if (redisBufferWrite(t->ctx, &done) != REDIS_OK) {
			rc = conn_failed(t, "MULTI"); /* not all left: not run */
			free_all(t);
			return rc;
		}
	rc = exec_replies(t, queued, tok, tokl, &lost);
	if (rc == EF_OK && t->wn)
		rc = wait_replicas(t, tok, tokl, lost);
	free_all(t);
	return rc;
}

/* ---- cursors ---- */

int rcur_open(rtxn *t, rcur **out)
{
	rcur *c = ef__calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return EF_ENOMEM;
	c->t = t;
	c->open = 1;
	c->next = t->curs;
	t->curs = c;
	*out = c;
	return EF_OK;
}

void rcur_hint(rcur *c, size_t n)
{
	c->hint = n < BATCH_MIN ? BATCH_MIN : n > BATCH_MAX ? BATCH_MAX : n;
}

void rcur_close(rcur *c)
{
	if (c)
		c->open = 0; /* freed with the transaction */
}

static void cache_drop(rcur *c)
{
	free(c->ck);
	free(c->cv);
	c->ck = c->cv = NULL;
	c->cn = c->ci = 0;
	c->cend = 0;
}

/* One round trip for a batch of keys and their values: the range read
 * and the HMGET of what it found, as one script on the group's master
 * (both keys of a group share its slot). Returns {keys, values}. */
static const char fetch_lua[] =
	"local ks = redis.call(ARGV[1], KEYS[2], ARGV[2], ARGV[3], "
	"'LIMIT', 0, ARGV[4]) "
	"if #ks == 0 then return {ks, {}} end "
	"return {ks, redis.call('HMGET', KEYS[1], unpack(ks))}";

/* Fetch the next batch of keys past @from (from it on, in a seek), or
 * from the start or end when NULL, in direction @dir, with their values. */
static int fetch(rcur *c, const char *from, size_t flen, int dir)
{
	rtxn *t = c->t;
	char *lo = ef__malloc(flen + 2);
	char lim[24];
	const char *argv[] = {"EVAL", fetch_lua, "2", t->h, t->z,
			      dir > 0 ? "ZRANGEBYLEX" : "ZREVRANGEBYLEX",
			      NULL, NULL, lim};
	size_t lens[9];
	redisReply *r = NULL, *ks, *vs;
	int rc;

	if (!lo)
		return EF_ENOMEM;
	cache_drop(c);
	c->dir = dir;
	c->batch = c->hint    ? c->hint
		   : c->batch ? (c->batch * 2 > BATCH_MAX ? BATCH_MAX
							  : c->batch * 2)
			      : BATCH_MIN;
	c->hint = 0; /* the size after it grows from there */
	snprintf(lim, sizeof(lim), "%zu", c->batch);
	lo[0] = c->incl ? '[' : '(';
	if (from)
		memcpy(lo + 1, from, flen);
	argv[6] = from ? lo : dir > 0 ? "-" : "+";
	argv[7] = dir > 0 ? "+" : "-";
	lens[0] = 4;
	lens[1] = sizeof(fetch_lua) - 1;
	lens[2] = 1;
	lens[3] = t->hl;
	lens[4] = t->zl;
	lens[5] = strlen(argv[5]);
	lens[6] = from ? flen + 1 : 1;
	lens[7] = 1;
	lens[8] = strlen(lim);
	rc = wcmd(t, "EVAL", 9, argv, lens, &r);
	free(lo);
	if (rc != EF_OK)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY ||
	    r->element[1]->type != REDIS_REPLY_ARRAY ||
	    r->element[1]->elements != r->element[0]->elements ||
	    r->element[0]->elements > c->batch) {
		freeReplyObject(r);
		return ef__err(t->err_id, EF_EIO, "redis: a batch of keys: "
			       "not the reply asked for");
	}
	ks = r->element[0];
	vs = r->element[1];
	c->cend = ks->elements < c->batch;
	if (ks->elements) {
		size_t n = ks->elements;
		c->ck = ef__calloc(n, sizeof(*c->ck));
		c->cv = ef__calloc(n, sizeof(*c->cv));
		rc = c->ck && c->cv ? EF_OK : EF_ENOMEM;
		for (size_t i = 0; rc == EF_OK && i < n; i++) {
			const redisReply *k = ks->element[i], *v = vs->element[i];
			if (k->type != REDIS_REPLY_STRING) {
				rc = ef__err(t->err_id, EF_EIO, "redis: a batch "
					     "of keys: a key that is no string");
				break;
			}
			if (v->type != REDIS_REPLY_STRING) {
				/* in the index but not the hash: the two
				 * are written together, so never */
				rc = ef__err(t->err_id, EF_ECORRUPT, "redis: "
					     "key in the group's order but "
					     "without a value");
				break;
			}
			c->ck[i].data = arena_copy(t, k->str, k->len);
			c->ck[i].len = k->len;
			c->cv[i].data = arena_copy(t, v->str, v->len);
			c->cv[i].len = v->len;
			if (!c->ck[i].data || !c->cv[i].data)
				rc = EF_ENOMEM;
		}
		if (rc == EF_OK)
			c->cn = n;
	}
	freeReplyObject(r);
	return rc;
}

/* The next Redis key past the position in @dir (NULL at the end). The
 * cache holds keys strictly past the position, in @dir's order, so it
 * stays right while the buffer's keys move the position. */
static int redis_next(rcur *c, int dir, const store_val **k,
		      const store_val **v)
{
	*k = *v = NULL;
	if (c->dir != dir || (c->ci == c->cn && !c->cend)) {
		int rc = fetch(c, c->pos, c->poslen, dir);
		if (rc != EF_OK)
			return rc;
	}
	if (c->ci < c->cn) {
		*k = &c->ck[c->ci];
		*v = &c->cv[c->ci];
	}
	return EF_OK;
}

static int set_pos(rcur *c, const void *k, size_t kl)
{
	char *p = ef__malloc(kl + 1);

	if (!p)
		return EF_ENOMEM;
	memcpy(p, k, kl);
	p[kl] = '\0';
	free(c->pos);
	c->pos = p;
	c->poslen = kl;
	c->incl = 0;
	return EF_OK;
}

/* The next buffered write past the position in @dir, or NULL. */
static const wop *buf_next(const rcur *c, int dir)
{
	const rtxn *t = c->t;
	int found;
	size_t i;

	if (!c->pos)
		return t->wn == 0 ? NULL : dir > 0 ? &t->w[0]
						   : &t->w[t->wn - 1];
	i = wfind(t, c->pos, c->poslen, &found);
	if (dir > 0) {
		i += found && !c->incl;
		return i < t->wn ? &t->w[i] : NULL;
	}
	return i > 0 ? &t->w[i - 1] : NULL;
}

/* Step in @dir: the merged next key. */
static int step(rcur *c, int dir, store_val *ok, store_val *ov)
{
	for (;;) {
		const store_val *rk, *rv;
		const wop *w = buf_next(c, dir);
		int rc = redis_next(c, dir, &rk, &rv), cmp;

		if (rc != EF_OK)
			return rc;
		if (!rk && !w)
			return EF_ENOTFOUND;
		if (!rk) {
			cmp = 1; /* only the buffer has more */
		} else if (!w) {
			cmp = -1; /* only Redis has */
		} else {
			cmp = keycmp(rk->data, rk->len, w->k, w->klen);
			if (dir < 0)
				cmp = -cmp;
		}
		if (cmp < 0) { /* Redis's key comes first */
			c->ci++;
			rc = set_pos(c, rk->data, rk->len);
			if (rc != EF_OK)
				return rc;
			if (ok)
				*ok = *rk;
			if (ov)
				*ov = *rv;
			return EF_OK;
		}
		if (cmp == 0)
			c->ci++; /* the buffer's write replaces it */
		rc = set_pos(c, w->k, w->klen);
		if (rc != EF_OK)
			return rc;
		if (!w->v)
			continue; /* deleted in this transaction */
		if (ok) {
			ok->data = w->k;
			ok->len = w->klen;
		}
		if (ov) {
			ov->data = w->v;
			ov->len = w->vlen;
		}
		return EF_OK;
	}
}

int rcur_seek(rcur *c, const void *k, size_t kl, store_val *ok,
	      store_val *ov)
{
	int rc;

	assert(c->open);
	/* @k itself if it is there, else the first key past it: one range
	 * read from @k on, merged with the buffer as any step */
	cache_drop(c);
	c->dir = 0;
	c->batch = 0;
	rc = set_pos(c, k, kl);
	if (rc != EF_OK)
		return rc;
	c->incl = 1;
	return step(c, 1, ok, ov);
}

int rcur_next(rcur *c, store_val *ok, store_val *ov)
{
	assert(c->open);
	if (!c->pos)
		return EF_ENOTFOUND;
	return step(c, 1, ok, ov);
}

int rcur_prev(rcur *c, store_val *ok, store_val *ov)
{
	assert(c->open);
	if (!c->pos)
		return EF_ENOTFOUND;
	return step(c, -1, ok, ov);
}

int rcur_last(rcur *c, store_val *ok, store_val *ov)
{
	assert(c->open);
	cache_drop(c);
	c->dir = 0;
	c->batch = 0;
	free(c->pos);
	c->pos = NULL;
	c->poslen = 0;
	return step(c, -1, ok, ov);
}

/*
 * client.c - the cluster client (client.h).
 *
 * State: a table of known nodes (the seeds first, then every master a map
 * or a redirection named), a connection per node made when first needed,
 * and the slot map, one node index per slot. The map is read with CLUSTER
 * SLOTS from any node that answers; a MOVED reply patches the one slot at
 * once and asks for a full read before the next command, as the cluster
 * specification advises.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/redis/client.h"
#include "store/redis/reply.h"
#include "store/redis/slot.h"

#define NODES_MAX 256      /* known nodes: seeds plus every master seen */
#define NO_NODE 0xFFFFu
#define BACKOFF_MIN_MS 10  /* first wait after TRYAGAIN/DOWN/refused */
#define BACKOFF_MAX_MS 500

typedef struct rnode {
	raddr_node ep;        /* endpoint */
	redisContext *ctx;    /* NULL: not connected */
} rnode;

struct rclient {
	raddr a;                       /* the address, secrets included */
	uint64_t err_id;
	pid_t pid;                     /* connections belong to this pid */
	rnode nodes[NODES_MAX];
	size_t n;                      /* nodes known, seeds first */
	uint16_t slot[RSLOT_COUNT];    /* node index serving each, or NO_NODE */
	int stale;                     /* read the map before the next command */
	rclient_stats st;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void node_drop(rnode *nd)
{
	if (nd->ctx)
		redisFree(nd->ctx); /* closes the socket; sends nothing */
	nd->ctx = NULL;
}

/* After a fork, the parent's connections are not ours to use. */
static void check_pid(rclient *c)
{
	pid_t me = getpid();

	if (me == c->pid)
		return;
	for (size_t i = 0; i < c->n; i++)
		node_drop(&c->nodes[i]);
	c->pid = me;
}

/* The index of endpoint @ep, added if new; NO_NODE if the table is full. */
static unsigned node_index(rclient *c, const raddr_node *ep)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->nodes[i].ep.port == ep->port &&
		    strcmp(c->nodes[i].ep.host, ep->host) == 0)
			return (unsigned)i;
	if (c->n == NODES_MAX)
		return NO_NODE;
	c->nodes[c->n].ep = *ep;
	c->nodes[c->n].ctx = NULL;
	return (unsigned)c->n++;
}

static struct timeval tv_of(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

static int auth(rclient *c, rnode *nd)
{
	const char *argv[3];
	size_t lens[3];
	int argc = 0;
	redisReply *r;
	int rc = EF_OK;

	if (!c->a.password[0])
		return EF_OK;
	argv[argc] = "AUTH";
	lens[argc++] = 4;
	if (c->a.user[0]) {
		argv[argc] = c->a.user;
		lens[argc++] = strlen(c->a.user);
	}
	argv[argc] = c->a.password;
	lens[argc++] = strlen(c->a.password);
	r = redisCommandArgv(nd->ctx, argc, argv, lens);
	if (!r)
		return ef__err(c->err_id, EF_EIO, "redis %s:%d: AUTH: %s",
			       nd->ep.host, nd->ep.port, nd->ctx->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		rc = ef__err(c->err_id, EF_EINVAL, "redis %s:%d: AUTH refused "
			     "(%.*s)", nd->ep.host, nd->ep.port,
			     (int)(r->len > 80 ? 80 : r->len), r->str);
	freeReplyObject(r);
	return rc;
}

/* Is the idle connection of @nd still usable? An idle connection has no
 * reply due, so anything to read (the end of the stream after the server
 * died or closed it, or an error) means it is not; then a command is not
 * sent on it, so that it cannot be lost on a dead socket. */
static int idle_alive(rnode *nd)
{
	struct pollfd p = {nd->ctx->fd, POLLIN, 0};

	return poll(&p, 1, 0) == 0;
}

/* Connect @nd if it is not. EF_OK, EF_EIO (nothing was sent), EF_EINVAL
 * (AUTH refused). */
static int node_connect(rclient *c, rnode *nd)
{
	int rc;

	if (nd->ctx && !idle_alive(nd))
		node_drop(nd);
	if (nd->ctx)
		return EF_OK;
	nd->ctx = redisConnectWithTimeout(nd->ep.host, nd->ep.port,
					  tv_of(c->a.timeout_ms));
	if (!nd->ctx)
		return ef__err(c->err_id, EF_ENOMEM, "out of memory");
	if (nd->ctx->err) {
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: cannot connect: "
			     "%s", nd->ep.host, nd->ep.port, nd->ctx->errstr);
		node_drop(nd);
		return rc;
	}
	if (!rreply_functions()) {
		node_drop(nd);
		return ef__err(c->err_id, EF_ENOMEM, "out of memory");
	}
	nd->ctx->reader->fn = rreply_functions(); /* bounded arrays */
	if (redisSetTimeout(nd->ctx, tv_of(c->a.timeout_ms)) != REDIS_OK ||
	    redisEnableKeepAlive(nd->ctx) != REDIS_OK) {
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: cannot set the "
			     "socket's options: %s", nd->ep.host, nd->ep.port,
			     nd->ctx->errstr);
		node_drop(nd);
		return rc;
	}
	c->st.connects++;
	rc = auth(c, nd);
	if (rc != EF_OK)
		node_drop(nd);
	return rc;
}

/* Read the map from node @i. EF_OK, or EF_EIO. */
static int map_from(rclient *c, size_t i)
{
	rrange *rs = NULL;
	size_t n = 0;
	redisReply *r;
	rnode *nd = &c->nodes[i];
	int rc = node_connect(c, nd);

	if (rc != EF_OK)
		return rc;
	r = redisCommand(nd->ctx, "CLUSTER SLOTS");
	if (!r) {
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: CLUSTER SLOTS: "
			     "%s", nd->ep.host, nd->ep.port, nd->ctx->errstr);
		node_drop(nd);
		return rc;
	}
	rs = ef__calloc(RSLOT_COUNT, sizeof(*rs));
	if (!rs) {
		freeReplyObject(r);
		return ef__err(c->err_id, EF_ENOMEM, "out of memory");
	}
	if (rreply_slots(r, &nd->ep, rs, RSLOT_COUNT, &n) != 0 || n == 0) {
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: CLUSTER SLOTS: "
			     "%s", nd->ep.host, nd->ep.port,
			     r->type == REDIS_REPLY_ERROR ? r->str
			     : n == 0 ? "no slot is served"
				      : "not a slot map");
	} else {
		for (size_t s = 0; s < RSLOT_COUNT; s++)
			c->slot[s] = NO_NODE;
		for (size_t k = 0; k < n; k++) {
			raddr_node ep = {{0}, rs[k].port};
			unsigned ix;

			memcpy(ep.host, rs[k].host, sizeof(ep.host));
			ix = node_index(c, &ep);
			for (unsigned s = rs[k].first; s <= rs[k].last; s++)
				c->slot[s] = (uint16_t)ix;
		}
		rc = EF_OK;
	}
	freeReplyObject(r);
	free(rs);
	return rc;
}

int rclient_refresh(rclient *c)
{
	int rc = EF_EIO;

	check_pid(c);
	c->st.refreshes++;
	/* the nodes we know, in order: the seeds first, then masters seen */
	for (size_t i = 0; i < c->n; i++) {
		rc = map_from(c, i);
		if (rc == EF_OK || rc == EF_ENOMEM || rc == EF_EINVAL)
			break;
	}
	if (rc == EF_OK)
		c->stale = 0;
	return rc;
}

/* Send ASKING (if @asking) and the command on @nd, and read the reply.
 * *@sent: whether the whole command left, so that it may have run. A
 * write that fails leaves at most part of the command, which a server
 * never runs; only a failure after the last byte left is unknown. */
static int send_recv(rclient *c, rnode *nd, int asking, int argc,
		     const char **argv, const size_t *lens, redisReply **out,
		     int *sent)
{
	void *v = NULL;
	int done = 0;

	*out = NULL;
	*sent = 0;
	if ((asking && redisAppendCommand(nd->ctx, "ASKING") != REDIS_OK) ||
	    redisAppendCommandArgv(nd->ctx, argc, argv, lens) != REDIS_OK)
		return ef__err(c->err_id, EF_ENOMEM, "out of memory");
	while (!done)
		if (redisBufferWrite(nd->ctx, &done) != REDIS_OK)
			goto io;
	*sent = 1;
	if (asking) {
		if (redisGetReply(nd->ctx, &v) != REDIS_OK)
			goto io;
		/* an ASKING refused shows in the command's own reply */
		freeReplyObject(v);
	}
	if (redisGetReply(nd->ctx, &v) != REDIS_OK)
		goto io;
	*out = v;
	return EF_OK;
io:
	{
		int rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: %s",
				 nd->ep.host, nd->ep.port,
				 nd->ctx->err == REDIS_ERR_IO &&
					 (errno == EAGAIN || errno == EWOULDBLOCK)
				 ? "no reply within timeout_ms"
				 : nd->ctx->errstr);
		node_drop(nd);
		return rc;
	}
}

/* WAIT for the address's replicas on @nd, whose connection has just run a
 * write. EF_OK, or EF_EIO (the message says what is known). */
static int wait_on(rclient *c, rnode *nd)
{
	redisReply *r = redisCommand(nd->ctx, "WAIT %d %d", c->a.wait_replicas,
				     c->a.wait_ms);
	int rc = EF_OK;

	if (!r) {
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: written on the "
			     "master, but WAIT for %d replicas failed (%s)",
			     nd->ep.host, nd->ep.port, c->a.wait_replicas,
			     nd->ctx->errstr);
		node_drop(nd);
		return rc;
	}
	if (r->type != REDIS_REPLY_INTEGER || r->integer < c->a.wait_replicas)
		rc = ef__err(c->err_id, EF_EIO, "redis %s:%d: written on the "
			     "master, acknowledged by only %lld of %d replicas "
			     "within %d ms", nd->ep.host, nd->ep.port,
			     r->type == REDIS_REPLY_INTEGER ? r->integer : 0LL,
			     c->a.wait_replicas, c->a.wait_ms);
	freeReplyObject(r);
	return rc;
}

/* The node for @slot: a known master, or any node for RCMD_ANY_NODE. */
static unsigned pick(rclient *c, int slot)
{
	if (slot >= 0)
		return c->slot[slot];
	for (size_t i = 0; i < c->n; i++)
		if (c->nodes[i].ctx)
			return (unsigned)i;
	return c->n ? 0 : NO_NODE;
}

/* Wait before another try; 0 if @deadline has passed. */
static int backoff(int64_t deadline, int *ms)
{
	int64_t left = deadline - mono_ms();

	if (left <= 0)
		return 0;
	sleep_ms((int)(left < *ms ? left : *ms));
	*ms = *ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *ms * 2;
	return 1;
}

int rclient_cmd(rclient *c, int slot, unsigned flags, int argc,
		const char **argv, const size_t *lens, redisReply **out)
{
	int64_t deadline = mono_ms() + c->a.retry_ms;
	int redirects = 0, wait = BACKOFF_MIN_MS, rc = EF_EIO;
	unsigned ask = NO_NODE;

	assert(slot >= RCMD_ANY_NODE && slot < RSLOT_COUNT);
	*out = NULL;
	check_pid(c);
	c->st.commands++;
	for (;;) {
		unsigned ix, kind_slot = 0;
		raddr_node to;
		enum rerr_kind kind;
		redisReply *r = NULL;
		int sent;

		if (c->stale && ask == NO_NODE)
			(void)rclient_refresh(c); /* on failure: the old map */
		ix = ask != NO_NODE ? ask : pick(c, slot);
		if (ix == NO_NODE) {
			rc = ef__err(c->err_id, EF_EIO, "redis: slot %d has no "
				     "master in the cluster's map", slot);
			c->stale = 1;
		} else if ((rc = node_connect(c, &c->nodes[ix])) == EF_OK) {
			rc = send_recv(c, &c->nodes[ix], ask != NO_NODE, argc,
				       argv, lens, &r, &sent);
			if (rc != EF_OK && sent &&
			    !(flags & RCMD_IDEMPOTENT) && rc != EF_ENOMEM) {
				char why[256]; /* the slot is rewritten */
				snprintf(why, sizeof(why), "%s",
					 ef__err_get(c->err_id));
				return ef__err(c->err_id, EF_EIO, "%s; the "
					       "command may or may not have "
					       "run", why);
			}
		}
		ask = NO_NODE;
		if (rc == EF_ENOMEM || rc == EF_EINVAL)
			return rc;
		if (rc != EF_OK) { /* nothing ran: another node, later */
			c->stale = 1;
			c->st.retries++;
			if (!backoff(deadline, &wait))
				return rc;
			continue;
		}
		if (r->type != REDIS_REPLY_ERROR) {
			if ((flags & RCMD_WAIT) && c->a.wait_replicas > 0 &&
			    (rc = wait_on(c, &c->nodes[ix])) != EF_OK) {
				freeReplyObject(r);
				return rc;
			}
			*out = r;
			return EF_OK;
		}
		kind = rreply_error(r->str, r->len, &kind_slot, &to);
		if (kind == RERR_OTHER) {
			*out = r;
			return EF_OK;
		}
		freeReplyObject(r);
		if (kind == RERR_MOVED || kind == RERR_ASK) {
			unsigned to_ix = node_index(c, &to);
			if (++redirects > c->a.redirects || to_ix == NO_NODE)
				return ef__err(c->err_id, EF_EIO, "redis: slot "
					       "%u: more than %d redirections",
					       kind_slot, c->a.redirects);
			if (kind == RERR_MOVED) {
				c->st.moved++;
				c->slot[kind_slot] = (uint16_t)to_ix;
				c->stale = 1;
			} else {
				c->st.asked++;
				ask = to_ix;
			}
			continue;
		}
		/* TRYAGAIN, CLUSTERDOWN, LOADING, ...: later, same command */
		if (kind == RERR_DOWN)
			c->stale = 1;
		c->st.retries++;
		if (!backoff(deadline, &wait))
			return ef__err(c->err_id, EF_EIO, "redis: slot %d: the "
				       "cluster kept answering %s for %d ms",
				       slot, kind == RERR_DOWN ? "that it is "
				       "down" : "TRYAGAIN", c->a.retry_ms);
	}
}

int rclient_pin(rclient *c, unsigned slot, redisContext **ctx)
{
	unsigned ix;
	int rc;

	assert(slot < RSLOT_COUNT);
	*ctx = NULL;
	check_pid(c);
	if (c->stale)
		(void)rclient_refresh(c);
	ix = c->slot[slot];
	if (ix == NO_NODE) {
		c->stale = 1;
		return ef__err(c->err_id, EF_EIO, "redis: slot %u has no "
			       "master in the cluster's map", slot);
	}
	rc = node_connect(c, &c->nodes[ix]);
	if (rc != EF_OK) {
		c->stale = 1;
		return rc;
	}
	*ctx = c->nodes[ix].ctx;
	return EF_OK;
}

void rclient_pin_broken(rclient *c, unsigned slot)
{
	unsigned ix = slot < RSLOT_COUNT ? c->slot[slot] : NO_NODE;

	if (ix != NO_NODE)
		node_drop(&c->nodes[ix]);
	c->stale = 1;
}

int rclient_pin_error(rclient *c, const char *s, size_t len)
{
	unsigned slot = 0, ix;
	raddr_node to;
	enum rerr_kind k = rreply_error(s, len, &slot, &to);

	if (k == RERR_MOVED && (ix = node_index(c, &to)) != NO_NODE) {
		c->st.moved++;
		c->slot[slot] = (uint16_t)ix;
	}
	if (k != RERR_OTHER)
		c->stale = 1;
	return (int)k;
}

const raddr *rclient_addr(const rclient *c)
{
	return &c->a;
}

uint64_t rclient_err_id(const rclient *c)
{
	return c->err_id;
}

int rclient_open(rclient **out, const raddr *a, uint64_t err_id)
{
	rclient *c = ef__calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	c->a = *a;
	c->err_id = err_id;
	c->pid = getpid();
	for (size_t s = 0; s < RSLOT_COUNT; s++)
		c->slot[s] = NO_NODE;
	for (size_t i = 0; i < a->n; i++)
		(void)node_index(c, &a->nodes[i]);
	rc = rclient_refresh(c);
	if (rc != EF_OK) {
		rclient_close(c);
		return rc;
	}
	*out = c;
	return EF_OK;
}

void rclient_close(rclient *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) /* in a child: its fds only */
		node_drop(&c->nodes[i]);
	raddr_wipe(&c->a);
	free(c);
}

const char *rclient_node_of(rclient *c, unsigned slot, int *port)
{
	unsigned ix = slot < RSLOT_COUNT ? c->slot[slot] : NO_NODE;

	*port = ix == NO_NODE ? 0 : c->nodes[ix].ep.port;
	return ix == NO_NODE ? "" : c->nodes[ix].ep.host;
}

void rclient_get_stats(const rclient *c, rclient_stats *out)
{
	*out = c->st;
}

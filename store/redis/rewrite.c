/*
 * rewrite.c - what Redis keeps on disk after a delete, made to go: a
 * rewrite of the append-only file of every node of the cluster, masters
 * and replicas (engine.h reng_rewrite_aof).
 *
 * A DEL or an HSET over a value leaves the old bytes in the AOF (every
 * command ever applied is there) until the file is rewritten from the
 * data set; BGREWRITEAOF does that, on the one node it is sent to. So a
 * shredded window key is gone from a node's disk only once that node's
 * rewrite is done: this asks every node the cluster lists, all at once,
 * and waits for each. (The old file's blocks are released by the file system, not
 * overwritten: docs/CLUSTER.md says what that leaves to the operator.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/redis/engine.h"

#define POLL_MS 50
#define REWRITE_MAX_MS (30 * 60 * 1000) /* a node's rewrite must end within */

typedef struct rnode {
	char host[RADDR_HOST_MAX + 1];
	int port;
	int master;
} rnode;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The nodes of CLUSTER NODES' text @s that are reachable (not failed, not
 * without an address); *down counts the others. */
static int parse_nodes(const char *s, const char *seed_host, rnode **out,
		       size_t *n, size_t *down)
{
	size_t cap = 0;
	rnode *v = NULL;

	*n = *down = 0;
	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t len = eol ? (size_t)(eol - s) : strlen(s);
		char line[1024], addr[RADDR_HOST_MAX + 1], flags[256];
		char *at, *colon;
		rnode nd;

		if (len < sizeof(line)) {
			memcpy(line, s, len);
			line[len] = '\0';
			int ok = sscanf(line, "%*s %255s %255s", addr,
					flags) == 2;
			if (ok && (strstr(flags, "fail") ||
				   strstr(flags, "noaddr") ||
				   strstr(flags, "handshake"))) {
				++*down;
				ok = 0;
			}
			if (ok) {
				at = strchr(addr, '@');
				if (at)
					*at = '\0';
				colon = strrchr(addr, ':');
				memset(&nd, 0, sizeof(nd));
				if (colon) {
					*colon = '\0';
					nd.port = atoi(colon + 1);
					snprintf(nd.host, sizeof(nd.host), "%s",
						 *addr ? addr : seed_host);
					nd.master = strstr(flags, "master") != NULL;
				}
				if (nd.port > 0) {
					if (*n == cap) {
						rnode *nv;
						cap = cap ? cap * 2 : 16;
						nv = realloc(v, cap * sizeof(*v));
						if (!nv) {
							free(v);
							return EF_ENOMEM;
						}
						v = nv;
					}
					v[(*n)++] = nd;
				}
			}
		}
		s += len + (eol ? 1 : 0);
	}
	*out = v;
	return EF_OK;
}

/* A field of INFO's text, as a number (-1 if absent). */
static long long info_num(const char *info, const char *name)
{
	const char *p = strstr(info, name);
	size_t n = strlen(name);

	while (p && !((p == info || p[-1] == '\n') && p[n] == ':'))
		p = strstr(p + 1, name);
	return p ? strtoll(p + n + 1, NULL, 10) : -1;
}

static redisContext *node_connect(reng *e, const rnode *nd)
{
	const raddr *a = reng_addr(e);
	struct timeval tv = {a->timeout_ms / 1000, (a->timeout_ms % 1000) * 1000};
	redisContext *ctx = redisConnectWithTimeout(nd->host, nd->port, tv);
	redisReply *r;

	if (!ctx || ctx->err) {
		if (ctx)
			redisFree(ctx);
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	if (a->password[0]) {
		r = a->user[0] ? redisCommand(ctx, "AUTH %s %s", a->user,
					      a->password)
			       : redisCommand(ctx, "AUTH %s", a->password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			if (r)
				freeReplyObject(r);
			redisFree(ctx);
			return NULL;
		}
		freeReplyObject(r);
	}
	return ctx;
}

/* INFO persistence of @ctx into *in_progress etc. */
static int node_state(redisContext *ctx, long long *busy, long long *size,
		      char *status, size_t cap)
{
	redisReply *r = redisCommand(ctx, "INFO persistence");
	const char *st;

	if (!r || r->type != REDIS_REPLY_STRING) {
		if (r)
			freeReplyObject(r);
		return -1;
	}
	*busy = info_num(r->str, "aof_rewrite_in_progress") > 0 ||
		info_num(r->str, "aof_rewrite_scheduled") > 0;
	*size = info_num(r->str, "aof_current_size");
	st = strstr(r->str, "aof_last_bgrewrite_status:");
	snprintf(status, cap, "%.*s", st ? (int)strcspn(st + 26, "\r\n") : 0,
		 st ? st + 26 : "");
	if (info_num(r->str, "aof_enabled") == 0)
		snprintf(status, cap, "aof off");
	freeReplyObject(r);
	return 0;
}

/* A node's rewrite under way. */
typedef struct job {
	const rnode *nd;
	redisContext *ctx;
	int asked;   /* our BGREWRITEAOF was accepted */
	int done;
} job;

/* One step of @j: ask for the rewrite once nothing else is rewriting
 * (one that began before we asked does not do), or see ours end.
 * EF_OK (j->done says whether it ended), or an error naming the node. */
static int job_step(reng *e, job *j, uint64_t *after)
{
	uint64_t id = reng_err_id(e);
	const rnode *nd = j->nd;
	char status[64];
	long long busy, size;
	redisReply *r;

	if (node_state(j->ctx, &busy, &size, status, sizeof(status)) != 0)
		return ef__err(id, EF_EIO, "redis %s:%d: INFO failed",
			       nd->host, nd->port);
	if (busy)
		return EF_OK;
	if (j->asked) {
		j->done = 1;
		*after += size > 0 ? (uint64_t)size : 0;
		if (strcmp(status, "ok") != 0)
			return ef__err(id, EF_EIO, "redis %s:%d: the rewrite of "
				       "its append-only file failed (%s)",
				       nd->host, nd->port, status);
		return EF_OK;
	}
	r = redisCommand(j->ctx, "BGREWRITEAOF");
	if (!r || r->type == REDIS_REPLY_ERROR) {
		int rc = ef__err(id, EF_EIO, "redis %s:%d: BGREWRITEAOF: %s",
				 nd->host, nd->port,
				 r ? r->str : j->ctx->errstr);
		if (r)
			freeReplyObject(r);
		return rc;
	}
	freeReplyObject(r);
	j->asked = 1;
	return EF_OK;
}

/* Connect to @nd and see that its AOF is on; *before gets its size. */
static int job_start(reng *e, job *j, const rnode *nd, uint64_t *before)
{
	uint64_t id = reng_err_id(e);
	char status[64];
	long long busy, size;

	memset(j, 0, sizeof(*j));
	j->nd = nd;
	j->ctx = node_connect(e, nd);
	if (!j->ctx)
		return ef__err(id, EF_EIO, "redis %s:%d: cannot connect to "
			       "rewrite its append-only file", nd->host,
			       nd->port);
	if (node_state(j->ctx, &busy, &size, status, sizeof(status)) != 0)
		return ef__err(id, EF_EIO, "redis %s:%d: INFO failed", nd->host,
			       nd->port);
	if (strcmp(status, "aof off") == 0)
		return ef__err(id, EF_EIO, "redis %s:%d: appendonly is off: "
			       "edgefeed needs it on (docs/CLUSTER.md)",
			       nd->host, nd->port);
	*before += size > 0 ? (uint64_t)size : 0;
	return EF_OK;
}

/* Rewrite every node's file at once, and wait for all of them. */
static int rewrite_all(reng *e, const rnode *v, size_t n, uint64_t *nodes,
		       uint64_t *before, uint64_t *after)
{
	job *jobs = ef__calloc(n ? n : 1, sizeof(*jobs));
	int64_t start = mono_ms();
	size_t left = n;
	int rc = EF_OK;

	if (!jobs)
		return ef__err(reng_err_id(e), EF_ENOMEM, "out of memory");
	for (size_t i = 0; rc == EF_OK && i < n; i++)
		rc = job_start(e, &jobs[i], &v[i], before);
	while (rc == EF_OK && left > 0) {
		for (size_t i = 0; rc == EF_OK && i < n; i++) {
			if (jobs[i].done)
				continue;
			rc = job_step(e, &jobs[i], after);
			if (rc == EF_OK && jobs[i].done) {
				left--;
				++*nodes;
			}
		}
		if (rc == EF_OK && left && mono_ms() - start > REWRITE_MAX_MS)
			rc = ef__err(reng_err_id(e), EF_EIO, "redis: %zu "
				     "node(s) did not end the rewrite of their "
				     "append-only file", left);
		if (rc == EF_OK && left)
			nanosleep(&(struct timespec){0, POLL_MS * 1000000L},
				  NULL);
	}
	for (size_t i = 0; i < n; i++)
		if (jobs[i].ctx)
			redisFree(jobs[i].ctx);
	free(jobs);
	return rc;
}

int reng_rewrite_aof(reng *e, uint64_t *nodes, uint64_t *before,
		     uint64_t *after)
{
	const char *argv[] = {"CLUSTER", "NODES"};
	size_t lens[] = {7, 5};
	redisReply *r = NULL;
	rclient *c;
	rnode *v = NULL;
	size_t n = 0, down = 0;
	int rc;

	*nodes = *before = *after = 0;
	rc = reng_client_take(e, &c);
	if (rc != EF_OK)
		return rc;
	rc = rclient_cmd(c, RCMD_ANY_NODE, RCMD_IDEMPOTENT, 2, argv, lens, &r);
	reng_client_give(e, c);
	if (rc != EF_OK)
		return rc;
	if (r->type != REDIS_REPLY_STRING)
		rc = ef__err(reng_err_id(e), EF_EIO, "redis: CLUSTER NODES: "
			     "not a text");
	else if (parse_nodes(r->str, reng_addr(e)->nodes[0].host, &v, &n,
			     &down) != EF_OK)
		rc = ef__err(reng_err_id(e), EF_ENOMEM, "out of memory");
	freeReplyObject(r);
	if (rc == EF_OK)
		rc = rewrite_all(e, v, n, nodes, before, after);
	free(v);
	/* a node that is down keeps its file as it was: the job is not done
	 * until it is back (a node that rejoins and resyncs rewrites its
	 * file from the new data; one forgotten is the operator's to wipe) */
	if (rc == EF_OK && down)
		rc = ef__err(reng_err_id(e), EF_EIO, "redis: %zu node(s) of the "
			     "cluster are down or unknown (CLUSTER NODES): "
			     "their append-only files still hold what was "
			     "deleted; run it again once they are back, or "
			     "wipe their disks", down);
	return rc;
}

/*
 * client.h - a small Redis Cluster client over hiredis 0.14 (which has
 * none): a slot map, one connection per node, commands routed by slot,
 * MOVED and ASK followed, the map refreshed after a redirection or a
 * failover.
 *
 * One rclient serves one thread: it is not thread-safe. A process that
 * forks must not share connections with its child; the client notices a
 * new pid and reconnects (the parent's sockets are closed in the child
 * without a word sent on them).
 *
 * The retry rule (why one call never becomes two writes with different
 * results): a command is sent again only when the cluster said it did not
 * run it (MOVED, ASK, TRYAGAIN, CLUSTERDOWN and the like), or when the
 * connection could not be made or failed before anything was sent. When a
 * connection breaks after the command went out, its outcome is unknown:
 * rclient_cmd then fails with EF_EIO and says so, unless the caller marked
 * the command RCMD_IDEMPOTENT (a read, or a write whose repetition is
 * harmless), and then it is sent again.
 */
#ifndef EF_STORE_REDIS_CLIENT_H
#define EF_STORE_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "store/redis/addr.h"

typedef struct rclient rclient;

/* Counters of what the client did, for tests and the benchmark. */
typedef struct rclient_stats {
	uint64_t commands;   /* rclient_cmd calls */
	uint64_t moved;      /* MOVED replies followed */
	uint64_t asked;      /* ASK replies followed */
	uint64_t retries;    /* sent again after TRYAGAIN/DOWN/reconnect */
	uint64_t refreshes;  /* slot maps read */
	uint64_t connects;   /* connections made */
} rclient_stats;

/*
 * Connect to the cluster of @a (the address is copied, secrets included,
 * and wiped at rclient_close) and read its slot map from the first seed
 * that answers. EF_OK; EF_EIO (no seed answered with a usable map; the
 * message names the last failure); EF_EINVAL (AUTH refused); EF_ENOMEM.
 * On failure *@out is NULL.
 */
int rclient_open(rclient **out, const raddr *a, uint64_t err_id);
void rclient_close(rclient *c); /* NULL is fine */

#define RCMD_ANY_NODE (-1)      /* @slot of a command for any node */
#define RCMD_IDEMPOTENT 0x1u    /* may be sent again if its outcome is lost */
#define RCMD_WAIT 0x2u          /* a write: then WAIT on its connection */

/*
 * Run the command @argv (@argc arguments of @lens bytes) on the master that
 * serves @slot (or on any node), following redirections as the retry rule
 * above allows. EF_OK with *@out the reply (owned: freeReplyObject); the
 * reply may be an error of the command itself. EF_EIO: no master reachable
 * within the address's retry_ms, a timeout, or an unknown outcome (the
 * message says which). EF_ENOMEM.
 *
 * With RCMD_WAIT and the address's wait=N, a reply that is no error is
 * followed by WAIT for N replicas on the connection that ran the command
 * (WAIT covers the writes of its own connection only): fewer within
 * wait_ms, or a failure of WAIT, is EF_EIO (the write may have been
 * applied on the master), and *@out is NULL.
 */
int rclient_cmd(rclient *c, int slot, unsigned flags, int argc,
		const char **argv, const size_t *lens, redisReply **out);

/*
 * Pinned connections, for a transaction (its WATCH state lives on one
 * connection): the connection to the master of @slot, made if needed.
 * EF_OK; EF_EIO (no master reachable: the message says why). Commands on
 * it are the caller's, with no redirection followed; the caller reports
 * what went wrong with the two calls below.
 */
int rclient_pin(rclient *c, unsigned slot, redisContext **ctx);

/* The pinned connection of @slot broke (or its state is unknown): drop it,
 * and read the map before the next command. */
void rclient_pin_broken(rclient *c, unsigned slot);

/* An error reply @r (text @len bytes) came on a pinned connection: note a
 * redirection in the map. Returns its kind (reply.h's enum rerr_kind). */
int rclient_pin_error(rclient *c, const char *s, size_t len);

/* The address the client was opened with (its WAIT settings, retry_ms),
 * and the error slot its messages go to. */
const raddr *rclient_addr(const rclient *c);
uint64_t rclient_err_id(const rclient *c);

/* Read the slot map again now (EF_OK or EF_EIO). */
int rclient_refresh(rclient *c);

/* The node serving @slot now, by the client's map ("" if none). */
const char *rclient_node_of(rclient *c, unsigned slot, int *port);

void rclient_get_stats(const rclient *c, rclient_stats *out);

#endif

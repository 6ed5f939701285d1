/*
 * engine.h - the Redis Cluster engine behind store.h: what a store_env
 * opened on a redis:// address holds, and how a transaction of one group
 * finds its keys.
 *
 * Names in the cluster (S: the address's store name, "" by default):
 *   ef:{T}:h, ef:{T}:z   the keys of group G (txn.h), T = tag(S, 'g', G)
 *   ef:{R}:g             the registry: a sorted set of every group that
 *                        was ever written (all of score 0, in byte order),
 *                        R = tag(S, 'r', "")
 *   ef:{K}:k             the window keys (rkeyring.h), K = tag(S, 'k', "")
 * tag(S, c, G) is the hex of BLAKE2b-128 over S, a 0 byte, c and G: no
 * brace can reach a hash tag, every group gets its own slot at random,
 * and two stores of one cluster share no key.
 *
 * A group is registered (ZADD, idempotent) before its first write commits,
 * and with the address's wait=N acknowledged by N replicas first, so a
 * walk of the registry (store_each_group) never misses a group that holds
 * a key, even after a failover. A registered group may be empty.
 */
#ifndef EF_STORE_REDIS_ENGINE_H
#define EF_STORE_REDIS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "store/redis/client.h"
#include "store/redis/txn.h"
#include "store/store.h"

#define RENG_TAG_LEN 32 /* hex characters */

typedef struct reng reng;

/* Parse @addr, connect (one client, to fail early with the reason), and
 * keep @o's group function. EF_OK; EF_EINVAL (the address: the message
 * names the field); EF_EIO (no node answered); EF_ENOMEM. */
int reng_open(reng **out, const char *addr, const store_opts *o,
	      uint64_t err_id);
void reng_close(reng *e); /* NULL is fine */

/* A client for one transaction or command sequence of this thread, from
 * the engine's pool (a new one if none is free); give it back after. */
int reng_client_take(reng *e, rclient **out);
void reng_client_give(reng *e, rclient *c);

/* The tag of group @g (kind 'g'), of the registry ('r', empty @g) or of
 * the keyring ('k', empty @g), NUL-terminated. */
void reng_tag(const reng *e, char kind, const store_val *g,
	      char out[RENG_TAG_LEN + 1]);

/* The hash slot of the keys of tag(S, @kind, @g), as for reng_tag: where
 * a group, the registry or the keyring lives, for tests that move a slot
 * or fail its master over. */
unsigned reng_slot(const reng *e, char kind, const store_val *g);

/* Does @key belong to group @g, by the store's group function? */
int reng_key_in(const reng *e, const store_val *g, const void *key,
		size_t klen);

/* Run one command on the master of @slot (or RCMD_ANY_NODE) on a client
 * of the pool. A reply that is an error is EF_EIO here, its text after
 * "redis: @what: ". Otherwise as rclient_cmd. */
int reng_cmd(reng *e, int slot, unsigned flags, int argc, const char **argv,
	     const size_t *lens, const char *what, redisReply **out);

/* Register group @g (once per process: cached), on a client of the pool,
 * never the one a transaction of the calling thread holds, and with the
 * address's wait=N acknowledged by N replicas. EF_OK, or an error (EF_EIO:
 * the registry could not be written, or not acknowledged). */
int reng_register(reng *e, const store_val *g);

/* Call @fn for the metadata group ("") and then for every registered
 * group in byte order; stops at the first return other than EF_OK. */
int reng_each_group(reng *e, store_each_fn fn, void *ctx);

/* Rewrite the append-only file of every node the cluster lists (masters
 * and replicas) and wait until each is done (rewrite.c): what a delete or
 * an overwrite left in the file is then gone from it. *nodes: how many;
 * *before, *after: the files' summed sizes. EF_OK; EF_EIO naming the
 * node (unreachable, AOF off, the rewrite failed). */
int reng_rewrite_aof(reng *e, uint64_t *nodes, uint64_t *before,
		     uint64_t *after);

/* The address the engine was opened with. */
const raddr *reng_addr(const reng *e);
uint64_t reng_err_id(const reng *e);

#endif

/*
 * reply.h - what a cluster node's replies say about the cluster: the slot
 * map of CLUSTER SLOTS, and the errors that redirect or delay a command.
 * Pure functions over hiredis replies, so that the fuzzer can feed them
 * any bytes through hiredis's own reader.
 */
#ifndef EF_STORE_REDIS_REPLY_H
#define EF_STORE_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "store/redis/addr.h"

/* One range of slots and the master that serves it. */
typedef struct rrange {
	unsigned first, last;          /* 0 <= first <= last < 16384 */
	char host[RADDR_HOST_MAX + 1]; /* never empty */
	int port;                      /* 1..65535 */
} rrange;

/*
 * The ranges of a CLUSTER SLOTS reply @r, at most @cap, into @out (*@n of
 * them). A master whose endpoint is empty is the node asked (@asked); one
 * whose endpoint is "?" (unknown) leaves its slots out. 0, or -1 if the
 * reply is not the shape the specification gives (nothing is trusted from
 * it then).
 */
int rreply_slots(const redisReply *r, const raddr_node *asked, rrange *out,
		 size_t cap, size_t *n);

/* The errors a cluster client acts on. */
enum rerr_kind {
	RERR_OTHER = 0, /* an error of the command itself */
	RERR_MOVED,     /* the slot is served elsewhere for good: refresh */
	RERR_ASK,       /* the slot is moving: ask the target this once */
	RERR_TRYAGAIN,  /* keys of a moving slot are split: wait, retry */
	RERR_DOWN,      /* CLUSTERDOWN, MASTERDOWN, LOADING, READONLY:
			 * wait, refresh the map, retry */
};

/*
 * Classify the error text @s (@len bytes). For MOVED and ASK, *@slot and
 * @to get the slot and the node to go to; an endpoint that cannot be read
 * makes it RERR_OTHER (a reply never names a node we cannot parse).
 */
enum rerr_kind rreply_error(const char *s, size_t len, unsigned *slot,
			    raddr_node *to);

/* Largest array a reply may hold (CLUSTER SLOTS names at most 16384
 * ranges; the client asks for far smaller arrays). hiredis 0.14 has no
 * such limit: a reply announcing "*2000000000" makes it allocate 16 GB. */
#define RREPLY_ELEMENTS_MAX 65536

/* hiredis's reply functions with that limit: an array announced longer
 * fails the reader (an out-of-memory error: the connection is dropped)
 * before anything is allocated. Give it to every reader that parses what
 * a server sends (redisContext.reader->fn, redisReaderCreateWithFunctions). */
redisReplyObjectFunctions *rreply_functions(void);

#endif

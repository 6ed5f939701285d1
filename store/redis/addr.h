/*
 * addr.h - the address of a store on Redis Cluster:
 *
 *     redis://HOST:PORT[,HOST:PORT...][?OPTION=VALUE[&OPTION=VALUE...]]
 *
 * HOST is a name, an IPv4 address or a bracketed IPv6 address
 * ([::1]:7000). The nodes are seeds: any one that answers tells the
 * client where every slot is served. Options (values percent-decoded):
 *
 *   user=NAME          ACL user for AUTH (default: the default user)
 *   password=SECRET    AUTH password (default: $EDGEFEED_REDIS_PASSWORD,
 *                      else none); a password in the address is visible to
 *                      whoever sees the command line, the variable is not
 *   timeout_ms=N       connect and reply timeout, 1..600000 (default 2000)
 *   wait=N             after each write, WAIT for N replicas, 0..16
 *                      (default 0: the master's acknowledgement only)
 *   wait_ms=N          how long WAIT may take, 1..600000 (default 1000); a
 *                      write that fewer replicas acknowledged in time fails
 *                      with EF_EIO (it may still have been applied)
 *   redirects=N        MOVED/ASK redirections followed per command, 1..64
 *                      (default 16)
 *   retry_ms=N         how long a command keeps retrying while its slot has
 *                      no reachable master (a failover, a node restarting),
 *                      0..600000 (default 10000); then EF_EIO
 *   store=NAME         which store of the cluster, 1..128 bytes (default:
 *                      the unnamed one); stores of different names share
 *                      nothing, so one cluster can hold several
 */
#ifndef EF_STORE_REDIS_ADDR_H
#define EF_STORE_REDIS_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define RADDR_SCHEME "redis://"
#define RADDR_NODES_MAX 64
#define RADDR_HOST_MAX 255
#define RADDR_SECRET_MAX 256
#define RADDR_STORE_MAX 128

typedef struct raddr_node {
	char host[RADDR_HOST_MAX + 1]; /* without brackets */
	int port;                      /* 1..65535 */
} raddr_node;

typedef struct raddr {
	raddr_node nodes[RADDR_NODES_MAX]; /* the seeds, as given */
	size_t n;                          /* 1..RADDR_NODES_MAX */
	char user[RADDR_SECRET_MAX + 1];   /* "" : no ACL user */
	char password[RADDR_SECRET_MAX + 1]; /* "" : no AUTH */
	int timeout_ms;
	int wait_replicas;
	int wait_ms;
	int redirects;
	int retry_ms;
	char store[RADDR_STORE_MAX + 1]; /* "" : the default store */
} raddr;

/* Does @s name a Redis Cluster store (it starts with "redis://")? */
int raddr_is(const char *s);

/* Parse @s into @out. EF_OK, or EF_EINVAL with a message in the error slot
 * of @err_id that names the part at fault (never the password). */
int raddr_parse(uint64_t err_id, const char *s, raddr *out);

/* Wipe the secrets of @a (sodium_memzero). */
void raddr_wipe(raddr *a);

#endif

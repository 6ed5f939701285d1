/*
 * rfixture.h - a real Redis Cluster for a test program: started in a fresh
 * directory by scripts/redis-cluster.sh in the group setup, stopped by pid
 * in the teardown.
 */
#ifndef EF_TESTS_RFIXTURE_H
#define EF_TESTS_RFIXTURE_H

#include <hiredis/hiredis.h>

#include "store/redis/client.h"

#define RF_NODES_MAX 16

typedef struct rfixture {
	char *dir;                 /* the nodes' files */
	char addr[4096];           /* redis://127.0.0.1:PORT,... */
	int ports[RF_NODES_MAX];
	size_t nports;
} rfixture;

extern rfixture rf;

/* Start @masters masters with @replicas replicas each; 0 or -1. */
int rf_start(int masters, int replicas);
void rf_stop(void);

/* cmocka group setup and teardown: a 3 + 3 cluster for the program. */
int rf_group_setup(void **state);
int rf_group_teardown(void **state);

/* A direct connection to the node on @port (asserting it works). */
redisContext *rf_node(int port);

/* The pid of the node on @port. */
int rf_node_pid(int port);

/* The node id of the node on @port into @id. */
void rf_node_id(int port, char id[64]);

/* rclient_open on rf.addr plus @options ("" or "?..."), asserting it
 * works; errors go to error slot 1. */
rclient *rf_client(const char *options);

/* Move slot @slot from the master on @src to the master on @dst, keys
 * and all, and tell every node. */
void rf_move_slot(unsigned slot, int src, int dst);

/* A master's port other than @not, by @c's map. */
int rf_other_master(rclient *c, int not);

#endif

/*
 * test-redis-cluster.c - the cluster client against a real Redis Cluster:
 * 3 masters and 3 replicas on loopback, started by scripts/redis-cluster.sh
 * for this run and stopped by pid at its end. No mocks: slots are checked
 * against the servers' own CLUSTER KEYSLOT, redirections are made by
 * moving slots for real, a failover by kill -9 of a master.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "rfixture.h"
#include "store/error.h"
#include "store/redis/client.h"
#include "store/redis/slot.h"

#define open_client rf_client

static redisReply *cmd(rclient *c, unsigned flags, const char *a0,
		       const char *a1, const char *a2)
{
	const char *argv[3] = {a0, a1, a2};
	size_t lens[3] = {strlen(a0), a1 ? strlen(a1) : 0,
			  a2 ? strlen(a2) : 0};
	int argc = a2 ? 3 : a1 ? 2 : 1;
	redisReply *r;

	if (rclient_cmd(c, a1 ? (int)rslot_of(a1, lens[1]) : RCMD_ANY_NODE,
			flags, argc, argv, lens, &r) != EF_OK)
		fail_msg("%s %s: %s", a0, a1 ? a1 : "", ef__err_get(1));
	return r;
}

static void set(rclient *c, const char *k, const char *v)
{
	redisReply *r = cmd(c, 0, "SET", k, v);

	if (r->type != REDIS_REPLY_STATUS)
		fail_msg("SET %s: %s", k, r->str);
	freeReplyObject(r);
}

static void expect(rclient *c, const char *k, const char *v)
{
	redisReply *r = cmd(c, RCMD_IDEMPOTENT, "GET", k, NULL);

	if (r->type != REDIS_REPLY_STRING || strcmp(r->str, v) != 0)
		fail_msg("GET %s: type %d '%s', wanted '%s'", k, r->type,
			 r->type == REDIS_REPLY_STRING ? r->str : "", v);
	freeReplyObject(r);
}

static void test_cluster_slots_agree_with_the_servers_keyslot(void **state)
{
	uint64_t rng = 42;
	redisContext *c = rf_node(rf.ports[0]);

	(void)state;
	for (int i = 0; i < 2000; i++) {
		char k[64];
		size_t n = (size_t)(th_rng_next(&rng) % 40) + 1;
		redisReply *r;

		for (size_t j = 0; j < n; j++) { /* braces often, any byte */
			uint64_t x = th_rng_next(&rng);
			k[j] = x % 5 == 0 ? '{' : x % 5 == 1 ? '}'
						   : (char)(x >> 8);
		}
		r = redisCommand(c, "CLUSTER KEYSLOT %b", k, n);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_INTEGER);
		assert_int_equal(r->integer, rslot_of(k, n));
		freeReplyObject(r);
	}
	redisFree(c);
}

static void test_cluster_routes_every_command_to_its_master(void **state)
{
	rclient *c = open_client("");
	rclient_stats st;
	char k[32], v[32];

	(void)state;
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof(k), "route:%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		set(c, k, v);
	}
	for (int i = 0; i < 3000; i += 7) {
		snprintf(k, sizeof(k), "route:%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		expect(c, k, v);
	}
	rclient_get_stats(c, &st);
	assert_int_equal(st.moved, 0); /* the map was right every time */
	assert_int_equal(st.asked, 0);
	assert_true(st.connects <= 6);
	rclient_close(c);
}

static void test_cluster_opens_through_any_seed_that_answers(void **state)
{
	char s[4200];
	raddr b;
	rclient *c;

	(void)state;
	/* a closed port first, then a real node */
	snprintf(s, sizeof(s), "redis://127.0.0.1:1,127.0.0.1:%d", rf.ports[2]);
	assert_int_equal(raddr_parse(1, s, &b), EF_OK);
	assert_int_equal(rclient_open(&c, &b, 1), EF_OK);
	set(c, "seed:x", "1");
	expect(c, "seed:x", "1");
	rclient_close(c);
	/* none answers: EF_EIO naming the failure */
	assert_int_equal(raddr_parse(1, "redis://127.0.0.1:1?timeout_ms=200",
				     &b), EF_OK);
	assert_int_equal(rclient_open(&c, &b, 1), EF_EIO);
	assert_null(c);
	assert_non_null(strstr(ef__err_get(1), "127.0.0.1:1: cannot connect"));
}

static void test_cluster_refuses_a_wrong_password_clearly(void **state)
{
	char s[4200];
	raddr b;
	rclient *c;

	(void)state;
	snprintf(s, sizeof(s), "%s?password=not-the-one", rf.addr);
	assert_int_equal(raddr_parse(1, s, &b), EF_OK);
	assert_int_equal(rclient_open(&c, &b, 1), EF_EINVAL);
	assert_null(c);
	assert_non_null(strstr(ef__err_get(1), "AUTH refused"));
	assert_null(strstr(ef__err_get(1), "not-the-one"));
}

/* Two keys of one slot (their tag fixes it); one moves to another master
 * while the slot is MIGRATING, the other stays: ASK for the first. */
static void test_cluster_follows_ask_while_a_slot_moves(void **state)
{
	rclient *c = open_client("");
	const char *k1 = "{ask}one", *k2 = "{ask}two";
	unsigned s = rslot_of(k1, strlen(k1));
	char slot[16], src_id[64], dst_id[64], mig[256];
	int src, dst;
	rclient_stats st;
	redisContext *n;
	redisReply *r;

	(void)state;
	set(c, k1, "1");
	set(c, k2, "2");
	rclient_node_of(c, s, &src);
	dst = rf_other_master(c, src);
	rf_node_id(src, src_id);
	rf_node_id(dst, dst_id);
	snprintf(slot, sizeof(slot), "%u", s);
	n = rf_node(dst);
	r = redisCommand(n, "CLUSTER SETSLOT %s IMPORTING %s", slot, src_id);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(n);
	n = rf_node(src);
	r = redisCommand(n, "CLUSTER SETSLOT %s MIGRATING %s", slot, dst_id);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	snprintf(mig, sizeof(mig), "%d", dst);
	r = redisCommand(n, "MIGRATE 127.0.0.1 %s %s 0 5000", mig, k1);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(n);
	/* k1 is on dst now: src answers ASK; k2 is still on src */
	expect(c, k1, "1");
	expect(c, k2, "2");
	rclient_get_stats(c, &st);
	assert_true(st.asked >= 1);
	/* finish the move, so the other tests see a whole cluster */
	n = rf_node(src);
	r = redisCommand(n, "MIGRATE 127.0.0.1 %s %s 0 5000", mig, k2);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(n);
	for (size_t i = 0; i < rf.nports; i++) { /* replicas refuse: gossip */
		n = rf_node(rf.ports[i]);
		r = redisCommand(n, "CLUSTER SETSLOT %s NODE %s", slot, dst_id);
		if (r)
			freeReplyObject(r);
		redisFree(n);
	}
	expect(c, k1, "1");
	expect(c, k2, "2");
	rclient_get_stats(c, &st);
	assert_true(st.moved >= 1); /* the old map sent k1 to src first */
	rclient_node_of(c, s, &src);
	assert_int_equal(src, dst);
	rclient_close(c);
}

static void test_cluster_follows_moved_after_resharding(void **state)
{
	rclient *c = open_client("");
	char k[32], v[32], from[64], to[64], nslots[8] = "500";
	char seed[32];
	int src, dst;
	rclient_stats st;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "reshard:%d", i);
		snprintf(v, sizeof(v), "r%d", i);
		set(c, k, v);
	}
	rclient_node_of(c, 0, &src);
	dst = rf_other_master(c, src);
	rf_node_id(src, from);
	rf_node_id(dst, to);
	snprintf(seed, sizeof(seed), "127.0.0.1:%d", src);
	{
		char *argv[] = {"/usr/bin/redis-cli", "--cluster", "reshard",
				seed, "--cluster-from", from, "--cluster-to",
				to, "--cluster-slots", nslots, "--cluster-yes",
				NULL};
		char *err = NULL;
		int rc = th_run(argv, NULL, &err);
		if (rc != 0)
			fail_msg("reshard: %s", err);
		free(err);
	}
	/* the client still has the old map: MOVED for the slots that went */
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "reshard:%d", i);
		snprintf(v, sizeof(v), "r%d", i);
		expect(c, k, v);
	}
	rclient_get_stats(c, &st);
	assert_true(st.moved >= 1);
	assert_true(st.refreshes >= 2); /* a MOVED rereads the whole map */
	rclient_close(c);
}

static void test_cluster_child_after_fork_uses_its_own_sockets(void **state)
{
	rclient *c = open_client("");
	pid_t pids[4];
	int status;

	(void)state;
	set(c, "fork:x", "parent");
	for (int i = 0; i < 4; i++) {
		pids[i] = th_fork(60);
		if (pids[i] == 0) {
			char k[32];
			snprintf(k, sizeof(k), "fork:child%d", i);
			for (int j = 0; j < 200; j++) {
				set(c, k, "child");
				expect(c, "fork:x", "parent");
			}
			_exit(0);
		}
	}
	for (int j = 0; j < 200; j++) /* the parent, meanwhile */
		expect(c, "fork:x", "parent");
	for (int i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	expect(c, "fork:child3", "child");
	rclient_close(c);
}

static void test_cluster_times_out_with_a_clear_error(void **state)
{
	rclient *c = open_client("?timeout_ms=200&retry_ms=0");
	const char *k = "{stopped}k";
	const char *argv[] = {"GET", k};
	size_t lens[] = {3, strlen(k)};
	redisReply *r = NULL;
	pid_t pid;
	int port, rc;

	(void)state;
	set(c, k, "v");
	rclient_node_of(c, rslot_of(k, strlen(k)), &port);
	pid = (pid_t)rf_node_pid(port);
	assert_int_equal(kill(pid, SIGSTOP), 0);
	rc = rclient_cmd(c, (int)rslot_of(k, strlen(k)), RCMD_IDEMPOTENT, 2,
			 argv, lens, &r);
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(rc, EF_EIO);
	assert_null(r);
	assert_non_null(strstr(ef__err_get(1), "no reply within timeout_ms"));
	/* a write whose reply is lost: the caller is told it may have run */
	assert_int_equal(kill(pid, SIGSTOP), 0);
	{
		const char *wv[] = {"SET", k, "w"};
		size_t wl[] = {3, strlen(k), 1};
		rc = rclient_cmd(c, (int)rslot_of(k, strlen(k)), 0, 3, wv, wl,
				 &r);
	}
	assert_int_equal(kill(pid, SIGCONT), 0);
	assert_int_equal(rc, EF_EIO);
	assert_non_null(strstr(ef__err_get(1), "no reply within timeout_ms; "
			       "the command may or may not have run"));
	rclient_close(c);
}

static void test_cluster_survives_a_master_killed(void **state)
{
	rclient *c = open_client("?retry_ms=30000");
	const char *k = "{killed}k";
	int port, now;
	rclient_stats st;

	(void)state;
	set(c, k, "before");
	rclient_node_of(c, rslot_of(k, strlen(k)), &port);
	assert_int_equal(kill((pid_t)rf_node_pid(port), SIGKILL), 0);
	th_sleep_us(100000); /* the dead master's sockets are closed */
	/* the replica is promoted (cluster-node-timeout 2 s): the same
	 * client, through the same address, writes and reads again; the
	 * write was not sent on the dead connection, so it is not "maybe
	 * run" but retried until the new master takes it */
	set(c, k, "after");
	expect(c, k, "after");
	rclient_node_of(c, rslot_of(k, strlen(k)), &now);
	assert_int_not_equal(now, port);
	rclient_get_stats(c, &st);
	assert_true(st.retries >= 1);
	rclient_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_cluster_slots_agree_with_the_servers_keyslot),
		cmocka_unit_test(
			test_cluster_routes_every_command_to_its_master),
		cmocka_unit_test(
			test_cluster_opens_through_any_seed_that_answers),
		cmocka_unit_test(
			test_cluster_refuses_a_wrong_password_clearly),
		cmocka_unit_test(test_cluster_follows_ask_while_a_slot_moves),
		cmocka_unit_test(test_cluster_follows_moved_after_resharding),
		cmocka_unit_test(
			test_cluster_child_after_fork_uses_its_own_sockets),
		cmocka_unit_test(test_cluster_times_out_with_a_clear_error),
		cmocka_unit_test(test_cluster_survives_a_master_killed),
	};
	return cmocka_run_group_tests(tests, rf_group_setup,
				      rf_group_teardown);
}

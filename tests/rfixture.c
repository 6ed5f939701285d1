/*
 * rfixture.c - a real Redis Cluster for a test program (rfixture.h).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "rfixture.h"
#include "store/error.h"
#include "store/redis/slot.h"

rfixture rf;

/* The watchdog: a child that stops the cluster when this program dies
 * without doing so itself (a crash, an abort, a sanitizer's report). It
 * blocks on a pipe whose only writer is this program (close-on-exec, so
 * the programs it runs do not hold it); end of file means it is gone. */
static pid_t watchdog = -1;
static int watchdog_fd = -1;

static void watchdog_start(void)
{
	int fds[2];
	char c;

	if (pipe(fds) != 0)
		return;
	fflush(NULL);
	watchdog = fork();
	if (watchdog < 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (watchdog == 0) {
		char path[4096];
		close(fds[1]);
		signal(SIGINT, SIG_IGN); /* a ^C of the test is ours to clean */
		signal(SIGTERM, SIG_IGN);
		while (read(fds[0], &c, 1) > 0)
			;
		snprintf(path, sizeof(path), "%s/scripts/redis-cluster.sh",
			 getenv("EF_SOURCE_ROOT") ? getenv("EF_SOURCE_ROOT")
						  : ".");
		execl("/bin/sh", "sh", "-c", "\"$0\" stop \"$1\"; rm -rf \"$1\"",
		      path, rf.dir, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	watchdog_fd = fds[1];
}

static void watchdog_stop(void)
{
	if (watchdog > 0) {
		kill(watchdog, SIGKILL);
		waitpid(watchdog, NULL, 0);
	}
	if (watchdog_fd >= 0)
		close(watchdog_fd);
	watchdog = -1;
	watchdog_fd = -1;
}

static int script(const char *verb, int masters, int replicas, char **out)
{
	char path[4096], m[16], r[16];
	char *argv[] = {path, (char *)verb, rf.dir, m, r, NULL};
	char *err = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/scripts/redis-cluster.sh",
		 getenv("EF_SOURCE_ROOT") ? getenv("EF_SOURCE_ROOT") : ".");
	snprintf(m, sizeof(m), "%d", masters);
	snprintf(r, sizeof(r), "%d", replicas);
	rc = th_run(argv, out, &err);
	if (rc != 0)
		fprintf(stderr, "redis-cluster.sh %s: %s\n", verb, err);
	free(err);
	return rc;
}

int rf_start(int masters, int replicas)
{
	char *out = NULL, *p;

	rf.dir = th_tmpdir();
	watchdog_start();
	if (script("start", masters, replicas, &out) != 0) {
		free(out);
		return -1;
	}
	snprintf(rf.addr, sizeof(rf.addr), "%s", out);
	rf.addr[strcspn(rf.addr, "\n")] = '\0';
	free(out);
	if (script("ports", 0, 0, &out) != 0) {
		free(out);
		return -1;
	}
	for (p = strtok(out, "\n"); p && rf.nports < RF_NODES_MAX;
	     p = strtok(NULL, "\n"))
		rf.ports[rf.nports++] = atoi(p);
	free(out);
	return rf.nports == (size_t)(masters * (1 + replicas)) ? 0 : -1;
}

void rf_stop(void)
{
	watchdog_stop();
	script("stop", 0, 0, NULL);
	th_cleanup(rf.dir);
	rf.dir = NULL;
}

int rf_group_setup(void **state)
{
	(void)state;
	return rf_start(3, 1);
}

int rf_group_teardown(void **state)
{
	(void)state;
	rf_stop();
	return 0;
}

redisContext *rf_node(int port)
{
	redisContext *c = redisConnect("127.0.0.1", port);

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	return c;
}

int rf_node_pid(int port)
{
	char p[4200];
	FILE *f;
	int pid = 0;

	snprintf(p, sizeof(p), "%s/%d/redis.pid", rf.dir, port);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	return pid;
}

void rf_node_id(int port, char id[64])
{
	redisContext *c = rf_node(port);
	redisReply *r = redisCommand(c, "CLUSTER MYID");

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(id, 64, "%s", r->str);
	freeReplyObject(r);
	redisFree(c);
}

rclient *rf_client(const char *options)
{
	char s[4200];
	raddr b;
	rclient *c;

	snprintf(s, sizeof(s), "%s%s", rf.addr, options);
	assert_int_equal(raddr_parse(1, s, &b), EF_OK);
	if (rclient_open(&c, &b, 1) != EF_OK)
		fail_msg("rclient_open: %s", ef__err_get(1));
	raddr_wipe(&b);
	return c;
}

static void node_ok(int port, const char *fmt, const char *a1, const char *a2)
{
	redisContext *n = rf_node(port);
	redisReply *r = redisCommand(n, fmt, a1, a2);

	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("node %d: %s: %s", port, fmt, r->str);
	freeReplyObject(r);
	redisFree(n);
}

void rf_move_slot(unsigned slot, int src, int dst)
{
	char s[16], src_id[64], dst_id[64], port[16];
	redisContext *n;

	snprintf(s, sizeof(s), "%u", slot);
	snprintf(port, sizeof(port), "%d", dst);
	rf_node_id(src, src_id);
	rf_node_id(dst, dst_id);
	node_ok(dst, "CLUSTER SETSLOT %s IMPORTING %s", s, src_id);
	node_ok(src, "CLUSTER SETSLOT %s MIGRATING %s", s, dst_id);
	n = rf_node(src);
	for (;;) {
		redisReply *r = redisCommand(n, "CLUSTER GETKEYSINSLOT %s 100",
					     s);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		if (r->elements == 0) {
			freeReplyObject(r);
			break;
		}
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *m = redisCommand(n, "MIGRATE 127.0.0.1 %s "
						     "%b 0 5000", port,
						     r->element[i]->str,
						     r->element[i]->len);
			assert_non_null(m);
			if (m->type == REDIS_REPLY_ERROR)
				fail_msg("MIGRATE: %s", m->str);
			freeReplyObject(m);
		}
		freeReplyObject(r);
	}
	redisFree(n);
	/* the new owner first, then the others (replicas refuse: gossip) */
	node_ok(dst, "CLUSTER SETSLOT %s NODE %s", s, dst_id);
	for (size_t i = 0; i < rf.nports; i++) {
		redisContext *o = rf_node(rf.ports[i]);
		redisReply *r = redisCommand(o, "CLUSTER SETSLOT %s NODE %s", s,
					     dst_id);
		if (r)
			freeReplyObject(r);
		redisFree(o);
	}
}

int rf_other_master(rclient *c, int not)
{
	for (unsigned s = 0; s < RSLOT_COUNT; s += 100) {
		int port;
		rclient_node_of(c, s, &port);
		if (port && port != not)
			return port;
	}
	fail_msg("no second master");
	return 0;
}

/*
 * test-redis-retention.c - retention on a real Redis Cluster (3 masters,
 * 1 replica each): a sweep that shreds a day destroys its key everywhere,
 * so that no byte of it is left in any file of any node (append-only
 * files of masters and replicas, anything else in their directories), and
 * the IPs sealed under it are unrecoverable; while a day is within
 * retention, its key is in the cluster for every host.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "helpers.h"
#include "rfixture.h"
#include "store/envint.h"
#include "store/error.h"
#include "store/keyring.h"
#include "store/redis/engine.h"
#include "store/redis/slot.h"

#define DAY (24LL * 3600 * 1000)

/* The raw key of window @win of @st, read from the cluster (asserting it
 * is there and live). */
static void window_key(ef_store *st, uint32_t win, uint8_t key[32])
{
	char tag[RENG_TAG_LEN + 1], k[64], f[16];
	redisContext *c;
	redisReply *r;
	int port = 0;

	reng_tag(st->env->reng, 'k', NULL, tag);
	snprintf(k, sizeof(k), "ef:{%s}:k", tag);
	snprintf(f, sizeof(f), "w:%08x", (unsigned)win);
	{
		rclient *rc = rf_client("");
		rclient_node_of(rc, rslot_of(k, strlen(k)), &port);
		rclient_close(rc);
	}
	assert_true(port > 0);
	c = rf_node(port);
	r = redisCommand(c, "HGET %s %s", k, f);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_int_equal(r->len, 32);
	memcpy(key, r->str, 32);
	freeReplyObject(r);
	redisFree(c);
}

/* Files under @dir (recursively) whose bytes hold @needle: how many;
 * their names go to stderr. */
static int files_holding(const char *dir, const void *needle, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int hits = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char p[4096];
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &sb) != 0)
			continue; /* deleted meanwhile */
		if (S_ISDIR(sb.st_mode)) {
			hits += files_holding(p, needle, n);
		} else if (S_ISREG(sb.st_mode)) {
			FILE *fp = fopen(p, "rb");
			unsigned char *buf;
			size_t len;

			if (!fp)
				continue;
			buf = malloc((size_t)sb.st_size + 1);
			assert_non_null(buf);
			len = fread(buf, 1, (size_t)sb.st_size, fp);
			fclose(fp);
			if (len >= n && memmem(buf, len, needle, n)) {
				fprintf(stderr, "  held by %s\n", p);
				hits++;
			}
			free(buf);
		}
	}
	closedir(d);
	return hits;
}

static void test_cluster_sweep_shreds_a_day_key_from_every_nodes_files(
	void **state)
{
	int64_t now = feed_real_now(), t_old = now - 40 * DAY, clock = t_old;
	uint32_t win = keyring_window(t_old);
	ef_config cfg = {0};
	ef_sweep_stats ss;
	ef_sweep_opts so = {0};
	uint8_t key[32];
	char addr[4300];
	ef_store *st;
	ef_entry *e;
	int hits = 0;

	(void)state;
	snprintf(addr, sizeof(addr), "%s?store=retention&wait=1", rf.addr);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &clock;
	st = th_open(addr, &cfg);
	{
		ef_receive r = {"a@x", "old", t_old, "203.0.113.9", NULL};
		ef_receive r2 = {"a@x", "new", now - DAY, "203.0.113.10",
				 NULL};
		assert_int_equal(ef_finalize(st, &r), EF_OK);
		clock = now;
		assert_int_equal(ef_finalize(st, &r2), EF_OK);
	}
	window_key(st, win, key);
	/* the scan finds what is there: the key is in the master's and its
	 * replica's append-only files (wait=1) */
	hits = files_holding(rf.dir, key, sizeof(key));
	assert_true(hits >= 2);

	so.now_ms = now;
	assert_int_equal(ef_sweep_ex(st, &so, &ss), EF_OK);
	assert_true(ss.keys_destroyed >= 1);
	assert_int_equal(ss.aof_rewritten, rf.nports); /* every node */
	/* a rewrite's old files are deleted in the background: give them
	 * their moment (bounded), then no file of any node holds the key */
	for (int i = 0; i < 100; i++) {
		hits = files_holding(rf.dir, key, sizeof(key));
		if (hits == 0)
			break;
		th_sleep_us(100000);
	}
	assert_int_equal(hits, 0);
	/* and the IP sealed under it is gone for every reader; the newer
	 * day's stays */
	assert_int_equal(ef_get_entry(st, "a@x", "old", &e), EF_OK);
	assert_null(e->ip);
	ef_entry_free(e);
	assert_int_equal(ef_get_entry(st, "a@x", "new", &e), EF_OK);
	assert_string_equal(e->ip, "203.0.113.10");
	ef_entry_free(e);
	th_assert_consistent(st);
	ef_close(st);
	sodium_memzero(key, sizeof(key));
}

/* Two handles (two hosts, as far as the store can tell) seal and open
 * with one key per day: the one the first of them made. */
static void test_cluster_day_key_is_one_for_every_host(void **state)
{
	char addr[4300];
	ef_store *a, *b;
	ef_entry *e;

	(void)state;
	snprintf(addr, sizeof(addr), "%s?store=onekey", rf.addr);
	a = th_open(addr, NULL);
	b = th_open(addr, NULL);
	{
		ef_receive r = {"h@x", "r1", 0, "198.51.100.7", NULL};
		assert_int_equal(ef_finalize(a, &r), EF_OK);
	}
	assert_int_equal(ef_get_entry(b, "h@x", "r1", &e), EF_OK);
	assert_string_equal(e->ip, "198.51.100.7");
	ef_entry_free(e);
	assert_int_equal(keyring_count_window(a->keyring,
					      keyring_window(feed_real_now())),
			 1);
	ef_close(a);
	ef_close(b);
}

/* A node that is down keeps its file as it was: the sweep does all it
 * can, then says so (EF_EIO), rather than report the job done. */
static void test_cluster_sweep_with_a_node_down_says_so(void **state)
{
	int64_t now = feed_real_now(), clock = now - 40 * DAY;
	ef_config cfg = {0};
	ef_sweep_opts so = {0};
	ef_sweep_stats ss;
	char addr[4300];
	ef_store *st;
	int victim = 0, rc;
	rclient *c = rf_client("");

	(void)state;
	/* a replica: a node of no slot, so the store keeps working */
	for (size_t i = 0; i < rf.nports && !victim; i++) {
		int port;
		int is_master = 0;
		for (unsigned sl = 0; sl < RSLOT_COUNT; sl += 97) {
			rclient_node_of(c, sl, &port);
			is_master |= port == rf.ports[i];
		}
		if (!is_master)
			victim = rf.ports[i];
	}
	rclient_close(c);
	assert_true(victim > 0);
	snprintf(addr, sizeof(addr), "%s?store=down", rf.addr);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &clock;
	st = th_open(addr, &cfg);
	{
		ef_receive r = {"d@x", "old", clock, "203.0.113.11", NULL};
		assert_int_equal(ef_finalize(st, &r), EF_OK);
	}
	clock = now;
	assert_int_equal(kill(rf_node_pid(victim), SIGKILL), 0);
	/* until the others mark it failed (bounded: a state, not a time) */
	for (int i = 0; i < 200; i++) {
		redisContext *n = rf_node(rf.ports[victim == rf.ports[0]]);
		redisReply *r = redisCommand(n, "CLUSTER NODES");
		int failed = r && r->type == REDIS_REPLY_STRING &&
			     strstr(r->str, "fail") != NULL;
		if (r)
			freeReplyObject(r);
		redisFree(n);
		if (failed)
			break;
		th_sleep_us(50000);
	}
	so.now_ms = now;
	rc = ef_sweep_ex(st, &so, &ss);
	assert_int_equal(rc, EF_EIO);
	assert_non_null(strstr(ef_errmsg(st), "down"));
	assert_true(ss.keys_destroyed >= 1); /* the rest of the job was done */
	ef_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_cluster_sweep_shreds_a_day_key_from_every_nodes_files),
		cmocka_unit_test(test_cluster_day_key_is_one_for_every_host),
		/* last: it leaves a replica dead */
		cmocka_unit_test(test_cluster_sweep_with_a_node_down_says_so),
	};
	return cmocka_run_group_tests(tests, rf_group_setup,
				      rf_group_teardown);
}

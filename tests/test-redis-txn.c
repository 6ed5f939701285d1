/*
 * test-redis-txn.c - transactions over one group of keys on a real Redis
 * Cluster (store/redis/txn.c): reads of its own writes, ordered cursors
 * merged with the write buffer, optimistic conflicts told to run again,
 * forked writers that lose nothing, a lost EXEC reply resolved by its
 * token, WAIT for replicas, a group whose slot moves mid-transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "rfixture.h"
#include "store/error.h"
#include "store/redis/slot.h"
#include "store/redis/txn.h"

static rtxn *begin(rclient *c, const char *tag, int write)
{
	rtxn *t;

	if (rtxn_begin(c, tag, write, &t) != EF_OK)
		fail_msg("rtxn_begin: %s", ef__err_get(1));
	return t;
}

static void put(rtxn *t, const char *k, const char *v)
{
	assert_int_equal(rtxn_put(t, k, strlen(k), v, strlen(v), 0), EF_OK);
}

static void want_value(rtxn *t, const char *k, const char *v)
{
	store_val got;
	int rc = rtxn_get(t, k, strlen(k), &got);

	if (!v) {
		assert_int_equal(rc, EF_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, EF_OK);
	assert_int_equal(got.len, strlen(v));
	assert_memory_equal(got.data, v, got.len);
}

static void test_txn_reads_its_own_writes_and_commits_them(void **state)
{
	rclient *c = rf_client("");
	rtxn *t = begin(c, "own", 1);

	(void)state;
	want_value(t, "a", NULL);
	put(t, "a", "1");
	put(t, "b", "2");
	want_value(t, "a", "1");
	assert_int_equal(rtxn_put(t, "a", 1, "x", 1, STORE_NOOVERWRITE),
			 EF_EXISTS);
	assert_int_equal(rtxn_del(t, "b", 1), EF_OK);
	want_value(t, "b", NULL);
	assert_int_equal(rtxn_del(t, "b", 1), EF_ENOTFOUND);
	/* binary keys and values, and an empty value */
	assert_int_equal(rtxn_put(t, "k\0z", 3, "v\0w", 3, 0), EF_OK);
	assert_int_equal(rtxn_put(t, "empty", 5, "", 0, 0), EF_OK);
	assert_int_equal(rtxn_commit(t), EF_OK);

	t = begin(c, "own", 0);
	want_value(t, "a", "1");
	want_value(t, "b", NULL);
	want_value(t, "empty", "");
	{
		store_val v;
		assert_int_equal(rtxn_get(t, "k\0z", 3, &v), EF_OK);
		assert_int_equal(v.len, 3);
		assert_memory_equal(v.data, "v\0w", 3);
	}
	assert_int_equal(rtxn_commit(t), EF_OK);
	/* an aborted transaction writes nothing */
	t = begin(c, "own", 1);
	put(t, "a", "changed");
	rtxn_abort(t);
	t = begin(c, "own", 0);
	want_value(t, "a", "1");
	assert_int_equal(rtxn_commit(t), EF_OK);
	rclient_close(c);
}

/* A model of the group: sorted keys and values. */
#define MODEL_MAX 600
typedef struct model {
	char k[MODEL_MAX][16];
	char v[MODEL_MAX][16];
	size_t n;
} model;

static int model_find(const model *m, const char *k, int *found)
{
	int lo = 0, hi = (int)m->n;

	*found = 0;
	while (lo < hi) {
		int mid = (lo + hi) / 2, r = strcmp(m->k[mid], k);
		if (r == 0) {
			*found = 1;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void model_put(model *m, const char *k, const char *v)
{
	int found, i = model_find(m, k, &found);

	if (!found) {
		assert_true(m->n < MODEL_MAX);
		memmove(m->k[i + 1], m->k[i], (m->n - (size_t)i) * 16);
		memmove(m->v[i + 1], m->v[i], (m->n - (size_t)i) * 16);
		m->n++;
		snprintf(m->k[i], 16, "%s", k);
	}
	snprintf(m->v[i], 16, "%s", v);
}

static void model_del(model *m, const char *k)
{
	int found, i = model_find(m, k, &found);

	if (!found)
		return;
	memmove(m->k[i], m->k[i + 1], (m->n - (size_t)i - 1) * 16);
	memmove(m->v[i], m->v[i + 1], (m->n - (size_t)i - 1) * 16);
	m->n--;
}

static void expect_at(const store_val *k, const store_val *v, const model *m,
		      size_t i)
{
	if (k->len != strlen(m->k[i]) || memcmp(k->data, m->k[i], k->len) ||
	    v->len != strlen(m->v[i]) || memcmp(v->data, m->v[i], v->len))
		fail_msg("cursor at '%.*s'='%.*s', model has '%s'='%s'",
			 (int)k->len, (const char *)k->data, (int)v->len,
			 (const char *)v->data, m->k[i], m->v[i]);
}

/* Walk the whole group both ways, and seek to random keys. */
static void check_cursor(rtxn *t, const model *m, uint64_t *rng)
{
	store_val k, v;
	rcur *c;
	size_t i = 0;
	int rc;

	assert_int_equal(rcur_open(t, &c), EF_OK);
	for (rc = rcur_seek(c, "", 0, &k, &v); rc == EF_OK;
	     rc = rcur_next(c, &k, &v))
		expect_at(&k, &v, m, i++);
	assert_int_equal(rc, EF_ENOTFOUND);
	assert_int_equal(i, m->n);
	i = m->n;
	for (rc = rcur_last(c, &k, &v); rc == EF_OK;
	     rc = rcur_prev(c, &k, &v))
		expect_at(&k, &v, m, --i);
	assert_int_equal(rc, EF_ENOTFOUND);
	assert_int_equal(i, 0);
	for (int s = 0; s < 20; s++) {
		char key[16];
		int found;
		size_t at;

		snprintf(key, sizeof(key), "k%03u",
			 (unsigned)(th_rng_next(rng) % 700));
		at = (size_t)model_find(m, key, &found);
		rc = rcur_seek(c, key, strlen(key), &k, &v);
		if (at == m->n) {
			assert_int_equal(rc, EF_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, EF_OK);
		expect_at(&k, &v, m, at);
		/* and on, a few steps, then back */
		if (at + 1 < m->n) {
			assert_int_equal(rcur_next(c, &k, &v), EF_OK);
			expect_at(&k, &v, m, at + 1);
			assert_int_equal(rcur_prev(c, &k, &v), EF_OK);
			expect_at(&k, &v, m, at);
		}
	}
	rcur_close(c);
}

static void test_txn_cursor_merges_its_writes_with_stored_keys(void **state)
{
	static model m;
	rclient *c = rf_client("");
	uint64_t rng = 7;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (int round = 0; round < 12; round++) {
		rtxn *t = begin(c, "cursor", 1);

		/* enough keys that cursors cross fetch batches (8..128) */
		for (int op = 0; op < 60; op++) {
			char k[16], v[16];
			uint64_t x = th_rng_next(&rng);

			snprintf(k, sizeof(k), "k%03u", (unsigned)(x % 700));
			snprintf(v, sizeof(v), "v%u", (unsigned)(x >> 40));
			if (x % 4 == 0) {
				int found;
				model_find(&m, k, &found);
				assert_int_equal(rtxn_del(t, k, strlen(k)),
						 found ? EF_OK : EF_ENOTFOUND);
				model_del(&m, k);
			} else {
				put(t, k, v);
				model_put(&m, k, v);
			}
			if (op % 20 == 19) /* mid-transaction: merged view */
				check_cursor(t, &m, &rng);
		}
		check_cursor(t, &m, &rng);
		assert_int_equal(rtxn_commit(t), EF_OK);
		t = begin(c, "cursor", 0); /* and as stored */
		check_cursor(t, &m, &rng);
		assert_int_equal(rtxn_commit(t), EF_OK);
	}
	rclient_close(c);
}

/* How many times the node on @port ran @cmd ("eval"), by INFO
 * commandstats. */
static long long calls_of(int port, const char *cmd)
{
	redisContext *n = rf_node(port);
	redisReply *r = redisCommand(n, "INFO commandstats");
	char needle[64];
	const char *p;
	long long calls = 0;

	assert_non_null(r);
	snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
	p = strstr(r->str, needle);
	if (p)
		calls = strtoll(p + strlen(needle), NULL, 10);
	freeReplyObject(r);
	redisFree(n);
	return calls;
}

/* A cursor told how much its caller will read fetches it in one round
 * trip (one batch, one script); untold, it starts small and doubles. */
static void test_txn_cursor_hint_fetches_in_one_batch(void **state)
{
	rclient *c = rf_client("");
	rtxn *t = begin(c, "hint", 1);
	char h[64];
	store_val k, v;
	long long before;
	int port = 0, n;
	rcur *cur;

	(void)state;
	for (int i = 0; i < 60; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%02d", i);
		put(t, key, "v");
	}
	assert_int_equal(rtxn_commit(t), EF_OK);
	snprintf(h, sizeof(h), "ef:{hint}:h");
	rclient_node_of(c, rslot_of(h, strlen(h)), &port);
	assert_true(port > 0);
	for (int hinted = 0; hinted < 2; hinted++) {
		t = begin(c, "hint", 0);
		assert_int_equal(rcur_open(t, &cur), EF_OK);
		if (hinted)
			rcur_hint(cur, 51);
		before = calls_of(port, "eval");
		assert_int_equal(rcur_seek(cur, "k", 1, &k, &v), EF_OK);
		for (n = 1; n < 51; n++) /* 51 keys read, no more */
			assert_int_equal(rcur_next(cur, &k, &v), EF_OK);
		assert_int_equal(k.len, 3);
		assert_memory_equal(k.data, "k50", 3);
		/* 8 + 16 + 32 untold; 51 at once told */
		assert_int_equal(calls_of(port, "eval") - before,
				 hinted ? 1 : 3);
		assert_int_equal(rtxn_commit(t), EF_OK);
	}
	rclient_close(c);
}

static void test_txn_second_writer_of_a_group_is_told_to_retry(void **state)
{
	rclient *c1 = rf_client(""), *c2 = rf_client("");
	rtxn *t1 = begin(c1, "conflict", 1), *t2 = begin(c2, "conflict", 1);

	(void)state;
	want_value(t1, "x", NULL);
	want_value(t2, "x", NULL);
	put(t1, "x", "one");
	put(t2, "x", "two");
	put(t2, "y", "two");
	assert_int_equal(rtxn_commit(t1), EF_OK);
	assert_int_equal(rtxn_commit(t2), RTXN_RETRY);
	t1 = begin(c1, "conflict", 0);
	want_value(t1, "x", "one");
	want_value(t1, "y", NULL); /* nothing of t2 */
	assert_int_equal(rtxn_commit(t1), EF_OK);
	/* another group is not a conflict */
	t1 = begin(c1, "conflict", 1);
	t2 = begin(c2, "conflict-other", 1);
	want_value(t1, "x", "one");
	want_value(t2, "x", NULL);
	put(t1, "z", "1");
	put(t2, "z", "2");
	assert_int_equal(rtxn_commit(t2), EF_OK);
	assert_int_equal(rtxn_commit(t1), EF_OK);
	rclient_close(c1);
	rclient_close(c2);
}

/* A write transaction that decides not to write says whether what it read
 * was one state: its buffered writes never go out either way. */
static void test_txn_verify_tells_a_torn_decision_and_writes_nothing(
	void **state)
{
	rclient *a = rf_client(""), *b = rf_client("");
	rtxn *t = begin(a, "verify", 1), *u;

	(void)state;
	want_value(t, "x", NULL);
	put(t, "x", "mine");
	assert_int_equal(rtxn_verify(t), EF_OK); /* nothing changed */
	t = begin(a, "verify", 1);
	want_value(t, "x", NULL); /* nothing of the verified one was written */
	put(t, "y", "mine");
	u = begin(b, "verify", 1);
	put(u, "x", "theirs");
	assert_int_equal(rtxn_commit(u), EF_OK);
	assert_int_equal(rtxn_verify(t), RTXN_RETRY); /* x changed after it */
	t = begin(a, "verify", 0);
	want_value(t, "x", "theirs");
	want_value(t, "y", NULL);
	assert_int_equal(rtxn_commit(t), EF_OK);
	rclient_close(a);
	rclient_close(b);
}

static void test_txn_read_sees_one_state_of_the_group(void **state)
{
	rclient *r = rf_client(""), *w = rf_client("");
	rtxn *tr, *tw = begin(w, "snap", 1);

	(void)state;
	put(tw, "a", "0");
	put(tw, "b", "0");
	assert_int_equal(rtxn_commit(tw), EF_OK);
	tr = begin(r, "snap", 0);
	want_value(tr, "a", "0");
	tw = begin(w, "snap", 1); /* a writer changes both meanwhile */
	put(tw, "a", "1");
	put(tw, "b", "1");
	assert_int_equal(rtxn_commit(tw), EF_OK);
	want_value(tr, "b", "1"); /* a torn view so far ... */
	assert_int_equal(rtxn_commit(tr), RTXN_RETRY); /* ... not accepted */
	rclient_close(r);
	rclient_close(w);
}

/* Increment the counter of group @tag once, running again on conflict. */
static int increment(rclient *c, const char *tag, const char *log)
{
	for (int tries = 0; tries < 10000; tries++) {
		rtxn *t;
		store_val v;
		char buf[32];
		long n = 0;
		int rc = rtxn_begin(c, tag, 1, &t);

		if (rc == RTXN_RETRY)
			continue;
		if (rc != EF_OK)
			return rc;
		rc = rtxn_get(t, "counter", 7, &v);
		if (rc == EF_OK)
			n = strtol(v.data, NULL, 10);
		else if (rc != EF_ENOTFOUND) {
			rtxn_abort(t);
			if (rc == RTXN_RETRY)
				continue;
			return rc;
		}
		snprintf(buf, sizeof(buf), "%ld", n + 1);
		if (rtxn_put(t, "counter", 7, buf, strlen(buf), 0) != EF_OK ||
		    rtxn_put(t, log, strlen(log), buf, strlen(buf),
			     STORE_NOOVERWRITE) != EF_OK) {
			rtxn_abort(t);
			return EF_EIO;
		}
		rc = rtxn_commit(t);
		if (rc != RTXN_RETRY)
			return rc;
	}
	return EF_EBUSY;
}

static void test_txn_forked_writers_lose_no_increment(void **state)
{
	enum { PROCS = 6, EACH = 150 };
	pid_t pids[PROCS];
	rclient *c;
	rtxn *t;
	store_val v;
	int status;

	(void)state;
	for (int p = 0; p < PROCS; p++) {
		pids[p] = th_fork(240);
		if (pids[p] == 0) {
			rclient *cc = rf_client("");
			for (int i = 0; i < EACH; i++) {
				char log[32];
				snprintf(log, sizeof(log), "log:%d:%d", p, i);
				if (increment(cc, "count", log) != EF_OK)
					_exit(1);
			}
			rclient_close(cc);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* every acknowledged increment is there once: the counter and the
	 * ledger of log keys agree */
	c = rf_client("");
	t = begin(c, "count", 0);
	assert_int_equal(rtxn_get(t, "counter", 7, &v), EF_OK);
	assert_int_equal(strtol(v.data, NULL, 10), PROCS * EACH);
	{
		rcur *cur;
		store_val k;
		int n = 0, rc;
		assert_int_equal(rcur_open(t, &cur), EF_OK);
		for (rc = rcur_seek(cur, "log:", 4, &k, &v);
		     rc == EF_OK && k.len > 4 && !memcmp(k.data, "log:", 4);
		     rc = rcur_next(cur, &k, &v))
			n++;
		assert_int_equal(n, PROCS * EACH);
	}
	assert_int_equal(rtxn_commit(t), EF_OK);
	rclient_close(c);
}

static void test_txn_lost_exec_reply_is_resolved_by_its_token(void **state)
{
	rclient *c = rf_client(""), *other = rf_client("");
	rtxn *t;

	(void)state;
	/* committed, reply lost: the token says it happened */
	t = begin(c, "lost", 1);
	want_value(t, "k", NULL);
	put(t, "k", "1");
	rtxn__cut_after_exec(1);
	assert_int_equal(rtxn_commit(t), EF_OK);
	t = begin(c, "lost", 0);
	want_value(t, "k", "1");
	assert_int_equal(rtxn_commit(t), EF_OK);
	/* refused (the group changed), reply lost: it did not happen */
	t = begin(c, "lost", 1);
	want_value(t, "k", "1");
	put(t, "k", "2");
	{
		rtxn *o = begin(other, "lost", 1);
		put(o, "k", "other");
		assert_int_equal(rtxn_commit(o), EF_OK);
	}
	rtxn__cut_after_exec(1);
	assert_int_equal(rtxn_commit(t), RTXN_RETRY);
	assert_non_null(strstr(ef__err_get(1), "did not happen"));
	t = begin(c, "lost", 0);
	want_value(t, "k", "other");
	assert_int_equal(rtxn_commit(t), EF_OK);
	rclient_close(c);
	rclient_close(other);
}

static void test_txn_waits_for_the_replicas_asked(void **state)
{
	rclient *one = rf_client("?wait=1&wait_ms=5000");
	rclient *two = rf_client("?wait=2&wait_ms=300");
	rtxn *t;

	(void)state;
	t = begin(one, "wait", 1);
	put(t, "k", "1");
	assert_int_equal(rtxn_commit(t), EF_OK);
	/* each master has one replica: two cannot acknowledge */
	t = begin(two, "wait", 1);
	put(t, "k", "2");
	assert_int_equal(rtxn_commit(t), EF_EIO);
	assert_non_null(strstr(ef__err_get(1), "acknowledged by only 1 of 2"));
	/* and after a lost reply, WAIT still covers the commit */
	t = begin(one, "wait", 1);
	put(t, "k", "3");
	rtxn__cut_after_exec(1);
	assert_int_equal(rtxn_commit(t), EF_OK);
	rclient_close(one);
	rclient_close(two);
}

static void test_txn_group_moved_mid_transaction_runs_again(void **state)
{
	rclient *c = rf_client("");
	const char *h = "ef:{moving}:h";
	unsigned slot = rslot_of(h, strlen(h));
	rtxn *t;
	int src, dst;

	(void)state;
	t = begin(c, "moving", 1);
	put(t, "k", "before");
	assert_int_equal(rtxn_commit(t), EF_OK);
	t = begin(c, "moving", 1);
	want_value(t, "k", "before");
	put(t, "k", "during");
	rclient_node_of(c, slot, &src);
	dst = rf_other_master(c, src);
	rf_move_slot(slot, src, dst);
	assert_int_equal(rtxn_commit(t), RTXN_RETRY);
	t = begin(c, "moving", 1); /* the run again, on the new master */
	want_value(t, "k", "before");
	put(t, "k", "after");
	assert_int_equal(rtxn_commit(t), EF_OK);
	{
		int now;
		rclient_node_of(c, slot, &now);
		assert_int_equal(now, dst);
	}
	rclient_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_txn_reads_its_own_writes_and_commits_them),
		cmocka_unit_test(
			test_txn_cursor_merges_its_writes_with_stored_keys),
		cmocka_unit_test(test_txn_cursor_hint_fetches_in_one_batch),
		cmocka_unit_test(
			test_txn_second_writer_of_a_group_is_told_to_retry),
		cmocka_unit_test(
			test_txn_verify_tells_a_torn_decision_and_writes_nothing),
		cmocka_unit_test(test_txn_read_sees_one_state_of_the_group),
		cmocka_unit_test(test_txn_forked_writers_lose_no_increment),
		cmocka_unit_test(
			test_txn_lost_exec_reply_is_resolved_by_its_token),
		cmocka_unit_test(test_txn_waits_for_the_replicas_asked),
		cmocka_unit_test(
			test_txn_group_moved_mid_transaction_runs_again),
	};
	return cmocka_run_group_tests(tests, rf_group_setup,
				      rf_group_teardown);
}

/*
 * test-alloc.c - out of memory, the SQLite way: make the N-th allocation
 * fail, for N = 1, 2, ... until the operation succeeds. Every failure must
 * be a clean EF_ENOMEM that changed nothing (the store byte-for-byte as
 * before, and consistent); ASan's leak check sees any leak.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "store/alloc.h"

#define T0 1700000000000LL /* 2023: T0 + 100 days is in the past too */
#define MAX_STEPS 5000 /* an operation allocates far fewer times */

typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	ef_config cfg = {0};

	f->dir = th_tmpdir();
	f->now = T0;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	f->st = th_open(f->dir, &cfg);
	for (int i = 0; i < 5; i++) {
		char rid[16];
		ef_receive r = {"a@x", rid, T0 - i, "192.0.2.7",
				"{\"fileName\":\"f.txt\",\"size\":3}"};
		snprintf(rid, sizeof(rid), "seed%d", i);
		assert_int_equal(ef_finalize(f->st, &r), EF_OK);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	ef__alloc_fail_at(0, 0);
	ef_close(f->st);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

typedef int (*op_fn)(fx *f);

/*
 * Run @op with the N-th allocation failing, N = 1.. until it succeeds.
 * An operation of one transaction (@atomic) must change nothing when it
 * fails; one that commits in batches (sweep) may have done some batches,
 * and must leave the store consistent. Returns the failures injected.
 */
static int oom_loop_ex(fx *f, op_fn op, int sticky, int atomic)
{
	int injected = 0;

	for (uint64_t n = 1; n < MAX_STEPS; n++) {
		char *before = th_dump(f->st), *after;
		int rc;

		ef__alloc_fail_at(n, sticky);
		rc = op(f);
		ef__alloc_fail_at(0, 0);
		if (rc >= 0 && ef__alloc_failures() == 0) {
			free(before);
			return injected; /* it needed fewer than n allocations */
		}
		injected++;
		if (rc >= 0) {
			/* an allocation failed but the operation coped (a
			 * fallback path): it must still have done its job */
			free(before);
			continue;
		}
		if (rc != EF_ENOMEM)
			fail_msg("allocation %llu failed: got %s (%s), wanted "
				 "EF_ENOMEM",
				 (unsigned long long)n, ef_err_name(rc),
				 ef_errmsg(f->st));
		after = th_dump(f->st);
		if (atomic)
			assert_string_equal(before, after);
		free(before);
		free(after);
		th_assert_consistent(f->st);
	}
	fail_msg("the operation never succeeded");
	return injected;
}

static int oom_loop(fx *f, op_fn op, int sticky)
{
	return oom_loop_ex(f, op, sticky, 1);
}

static int op_finalize(fx *f)
{
	static int seq;
	char rid[32];
	ef_receive r = {"a@x", rid, T0, "2001:db8::9",
			"{\"fileName\":\"g.txt\",\"size\":12}"};
	int rc;

	snprintf(rid, sizeof(rid), "oom%d", seq);
	rc = ef_finalize(f->st, &r);
	if (rc == EF_OK)
		seq++;
	return rc;
}

static int op_page(fx *f)
{
	ef_page p;
	int rc = ef_feed_page(f->st, "a@x", NULL, 3, &p);

	if (rc == EF_OK) {
		char *cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		assert_int_equal(p.count, 3);
		ef_page_free(&p);
		rc = ef_feed_page(f->st, "a@x", cursor, 3, &p);
		free(cursor);
		if (rc == EF_OK)
			ef_page_free(&p);
	}
	return rc;
}

static int op_unread(fx *f)
{
	uint64_t n;
	return ef_unread_count(f->st, "a@x", &n);
}

static int op_migrate(fx *f)
{
	return ef_migrate(f->st, NULL, NULL);
}

static int op_sweep(fx *f)
{
	return ef_sweep(f->st, NULL);
}

static void test_alloc_finalize_fails_cleanly_at_every_allocation(
	void **state)
{
	fx *f = *state;
	assert_true(oom_loop(f, op_finalize, 0) > 0);
	assert_true(oom_loop(f, op_finalize, 1) > 0);
}

static void test_alloc_feed_page_and_unread_fail_cleanly(void **state)
{
	fx *f = *state;
	assert_true(oom_loop(f, op_page, 0) > 0);
	assert_true(oom_loop(f, op_page, 1) > 0);
	oom_loop(f, op_unread, 0);
}

static void test_alloc_migrate_fails_cleanly_at_every_allocation(void **state)
{
	fx *f = *state;
	const char *arr =
		"[{\"reservationId\":\"l1\",\"createdAt\":1789990000000,"
		"\"ip\":\"203.0.113.1\",\"fileName\":\"x\"},"
		"{\"createdAt\":1789990000001,\"fileName\":\"anon\"},42]";

	th_put_raw(f->st, "recentReceives:a@x", arr, strlen(arr));
	/* dual-read under memory pressure too */
	assert_true(oom_loop(f, op_page, 0) > 0);
	assert_true(oom_loop(f, op_migrate, 0) > 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	assert_int_equal(th_count_prefix(f->st, "quarantine:"), 1);
}

static void test_alloc_sweep_fails_cleanly_at_every_allocation(void **state)
{
	fx *f = *state;

	f->now = T0 + 100LL * 24 * 3600 * 1000; /* everything stale */
	assert_true(oom_loop_ex(f, op_sweep, 0, 0) > 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_alloc_finalize_fails_cleanly_at_every_allocation,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_alloc_feed_page_and_unread_fail_cleanly, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_alloc_migrate_fails_cleanly_at_every_allocation,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_alloc_sweep_fails_cleanly_at_every_allocation,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-faults.c - LMDB errors forced at chosen calls (store__inject): a
 * clean error, no half-written state, and a handle that recovers (or says
 * it must be reopened).
 */
#include "tests/helpers.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"

typedef struct fx {
	char *dir;
	ef_store *st;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	ef_config cfg = {0};

	f->dir = th_tmpdir();
	cfg.flags = EF_NOSYNC;
	f->st = th_open(f->dir, &cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	store__inject(0, 0, 0);
	ef_close(f->st);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

static int fin(fx *f, const char *rid)
{
	ef_receive r = {"a@x", rid, 0, "192.0.2.3", "{\"k\":1}"};
	return ef_finalize(f->st, &r);
}

/* @op's @nth call fails with @lmdb_rc: finalize says @want, changes
 * nothing, and the next finalize works. */
static void fails_cleanly(fx *f, int op, uint64_t nth, int lmdb_rc, int want,
			  const char *msg)
{
	char *before = th_dump(f->st), *after;
	static int seq;
	char rid[32];

	snprintf(rid, sizeof(rid), "r%d", seq++);
	store__inject(op, nth, lmdb_rc);
	assert_int_equal(fin(f, rid), want);
	store__inject(0, 0, 0);
	if (!strstr(ef_errmsg(f->st), msg))
		fail_msg("message '%s' lacks '%s'", ef_errmsg(f->st), msg);
	after = th_dump(f->st);
	assert_string_equal(before, after);
	free(before);
	free(after);
	th_assert_consistent(f->st);
	assert_int_equal(fin(f, rid), EF_OK); /* the handle recovered */
}

static void test_faults_map_full_at_commit_grows_and_retries(void **state)
{
	fx *f = *state;
	uint64_t grows = store_map_grows(f->st->env);

	store__inject(STORE_OP_COMMIT, 1, MDB_MAP_FULL);
	assert_int_equal(fin(f, "r1"), EF_OK);
	store__inject(0, 0, 0);
	assert_true(store_map_grows(f->st->env) > grows);
	assert_int_equal(fin(f, "r1"), EF_EXISTS);
	th_assert_consistent(f->st);
}

static void test_faults_eio_at_a_put_writes_nothing(void **state)
{
	fx *f = *state;
	for (uint64_t n = 1; n <= 3; n++) /* index, entry, marker */
		fails_cleanly(f, STORE_OP_PUT, n, EIO, EF_EIO, "lmdb: put");
}

static void test_faults_eio_at_a_get_writes_nothing(void **state)
{
	fx *f = *state;
	fails_cleanly(f, STORE_OP_GET, 1, EIO, EF_EIO, "lmdb: get");
}

static void test_faults_eio_and_enospc_at_commit(void **state)
{
	fx *f = *state;
	fails_cleanly(f, STORE_OP_COMMIT, 1, EIO, EF_EIO, "lmdb: commit");
	fails_cleanly(f, STORE_OP_COMMIT, 1, ENOSPC, EF_EFULL,
		      "No space left");
}

static void test_faults_panic_says_the_store_must_be_reopened(void **state)
{
	fx *f = *state;
	fails_cleanly(f, STORE_OP_COMMIT, 1, MDB_PANIC, EF_EIO,
		      "must be reopened");
}

static void test_faults_corrupt_page_is_ecorrupt(void **state)
{
	fx *f = *state;
	ef_page p;

	assert_int_equal(fin(f, "r1"), EF_OK);
	store__inject(STORE_OP_GET, 1, MDB_CORRUPTED);
	/* a read that meets a corrupted page reports it */
	assert_int_equal(ef_get_entry(f->st, "a@x", "r1", &(ef_entry *){0}),
			 EF_ECORRUPT);
	store__inject(0, 0, 0);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 5, &p), EF_OK);
	assert_int_equal(p.count, 1);
	ef_page_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_faults_map_full_at_commit_grows_and_retries, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_faults_eio_at_a_put_writes_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_faults_eio_at_a_get_writes_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_faults_eio_and_enospc_at_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_faults_panic_says_the_store_must_be_reopened,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_faults_corrupt_page_is_ecorrupt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-compact.c - ef_compact and `edgefeed compact`: it refuses while any
 * other handle has the store open, keeps every live record, and leaves no
 * byte of deleted plaintext (a legacy array with an IP) in any file of the
 * store directory, where LMDB's own compacting copy would keep some.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed/feed.h"
#include "tests/retention-fixture.h"

static void test_compact_refuses_while_another_handle_is_open(void **state)
{
	fx *f = *state;
	ef_store *other = fx_open(f, EF_NOSYNC, 0), *third;
	ef_compact_stats cs;
	char *out, *err;

	rf_fin(f->st, "a@x", "r1", T0, "203.0.113.77");
	assert_int_equal(ef_compact(f->st, &cs), EF_EBUSY);
	assert_non_null(strstr(ef_errmsg(f->st), "open in another"));
	/* both handles still work */
	rf_fin(f->st, "a@x", "r2", T0, NULL);
	rf_fin(other, "a@x", "r3", T0, NULL);
	assert_int_equal(ef_compact(other, NULL), EF_EBUSY);
	/* and a failed attempt left its shared lock: a third cannot either */
	ef_close(other);
	third = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(ef_compact(third, NULL), EF_EBUSY);
	/* another process: the CLI exits 75 and says why */
	assert_int_equal(th_cli(f->dir, &out, &err, "compact", NULL), 75);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "compact"));
	assert_non_null(strstr(err, "open in another process"));
	free(out);
	free(err);
	ef_close(third);
	assert_int_equal(ef_compact(f->st, &cs), EF_OK);
	/* meta:format, a@x's entry count, 3 entries */
	assert_int_equal(cs.keys, 1 + 1 + 3 * 3);
}

static void test_compact_keeps_every_record_and_the_handle(void **state)
{
	fx *f = *state;
	ef_compact_stats cs;
	char *before, *after, rid[16];
	ef_page p;

	for (int i = 0; i < 300; i++) {
		snprintf(rid, sizeof(rid), "r%03d", i);
		rf_fin(f->st, i % 2 ? "a@x" : "b@x", rid, T0 - i, "192.0.2.7");
	}
	for (int i = 0; i < 300; i += 3) {
		snprintf(rid, sizeof(rid), "r%03d", i);
		assert_int_equal(ef_mark_read(f->st, i % 2 ? "a@x" : "b@x", rid),
				 EF_OK);
	}
	before = th_dump(f->st);
	assert_int_equal(ef_compact(f->st, &cs), EF_OK);
	assert_int_equal(cs.keys, 1 + 2 + 300 * 2 + 200); /* 2 counts */
	assert_true(cs.bytes_after <= cs.bytes_before);
	after = th_dump(f->st);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* the same handle reads and writes the new file */
	rf_fin(f->st, "a@x", "new", T0 + 1, "192.0.2.8");
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 5, &p), EF_OK);
	assert_string_equal(p.entries[0].reservation_id, "new");
	assert_string_equal(p.entries[0].ip, "192.0.2.8");
	assert_string_equal(p.entries[1].ip, "192.0.2.7");
	ef_page_free(&p);
	th_assert_consistent(f->st);
	/* so does another process, through the CLI */
	assert_int_equal(th_cli(f->dir, NULL, NULL, "finalize", "--owner",
				"c@x", "--reservation", "r1", NULL),
			 0);
}

/*
 * The proof for plaintext from before sealing: a legacy array with an IP,
 * written by an old worker, then deleted (as migrate does), among records
 * that make LMDB reuse its page buffers (single-page overflow values, whose
 * unused tail keeps what the buffer held before: here, the array's leaf).
 * The filler keys ("a:...") sort before the array's key.
 */
static const char LEGACY[] =
	"[{\"reservationId\":\"old1\",\"createdAt\":1790000000000,"
	"\"ip\":\"203.0.113.77\",\"fileName\":\"a.pdf\"}]";

static void fill_around_a_deleted_legacy_array(ef_store *st)
{
	char key[64], val[4096];

	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "a:a%03d", i);
		memset(val, 's', 300);
		th_put_raw(st, key, val, 300);
	}
	th_put_raw(st, "recentReceives:bob@x", LEGACY, strlen(LEGACY));
	for (int i = 0; i < 60; i++) {
		snprintf(key, sizeof(key), "a:a%03d", 200 + i);
		memset(val, 'b', sizeof(val));
		th_put_raw(st, key, val, 2500 + (size_t)(i % 7) * 100);
	}
	th_del_raw(st, "recentReceives:bob@x");
	for (int i = 0; i < 140; i++) {
		snprintf(key, sizeof(key), "a:z%03d", 260 + i);
		memset(val, 'm', sizeof(val));
		th_put_raw(st, key, val, 1000 + (size_t)(i * 37) % 3000);
	}
}

static void test_compact_leaves_no_deleted_plaintext(void **state)
{
	fx *f = *state;
	char *where;

	fill_around_a_deleted_legacy_array(f->st);
	ef_close(f->st);
	f->st = NULL;
	/* deleted, yet LMDB left it in the file */
	where = th_dir_find(f->dir, "203.0.113.77", 12);
	assert_string_equal(where, "data.mdb");
	free(where);
	assert_int_equal(th_cli(f->dir, NULL, NULL, "compact", NULL), 0);
	where = th_dir_find(f->dir, "203.0.113.77", 12);
	if (where)
		fail_msg("plaintext IP still in '%s' after compact", where);
	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(th_count_prefix(f->st, "a:"), 400);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
}

/* Why compact does not use mdb_env_copy2(MDB_CP_COMPACT): on the same
 * store, LMDB's compacting copy still holds the deleted plaintext. */
static void test_lmdb_compacting_copy_would_keep_it(void **state)
{
	fx *f = *state;
	char *copy = th_tmpdir(), *where;
	MDB_env *env;

	fill_around_a_deleted_legacy_array(f->st);
	ef_close(f->st);
	f->st = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY | MDB_NOLOCK,
				      0600),
			 0);
	assert_int_equal(mdb_env_copy2(env, copy, MDB_CP_COMPACT), 0);
	mdb_env_close(env);
	where = th_dir_find(copy, "203.0.113.77", 12);
	assert_non_null(where); /* what ef_compact exists to avoid */
	free(where);
	th_cleanup(copy);
	f->st = fx_open(f, EF_NOSYNC, 0);
}

static void no_temp_copy(const char *name, const unsigned char *buf,
			 size_t len, void *ctx)
{
	(void)buf, (void)len, (void)ctx;
	if (strncmp(name, "data.mdb.", 9) == 0)
		fail_msg("'%s' left behind", name);
}

static void test_compact_cli_output_and_usage(void **state)
{
	fx *f = *state;
	char *out, *err;

	rf_fin(f->st, "a@x", "r1", T0, NULL);
	ef_close(f->st);
	f->st = NULL;
	assert_int_equal(th_cli(f->dir, &out, NULL, "compact", NULL), 0);
	assert_non_null(strstr(out, "\"bytesBefore\":"));
	assert_non_null(strstr(out, "\"keys\":5")); /* with a@x's count */
	free(out);
	assert_int_equal(th_cli(f->dir, NULL, &err, "compact", "--now", "1",
				NULL),
			 2);
	assert_non_null(strstr(err, "--now"));
	free(err);
	assert_int_equal(th_cli(f->dir, &out, NULL, "compact", "--help", NULL),
			 0);
	assert_non_null(strstr(out, "usage: edgefeed [--db DIR] compact"));
	free(out);
	/* no copy is left behind in the directory */
	th_each_file(f->dir, no_temp_copy, NULL);
	f->st = fx_open(f, EF_NOSYNC, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_compact_refuses_while_another_handle_is_open,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_compact_keeps_every_record_and_the_handle, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_compact_leaves_no_deleted_plaintext, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_lmdb_compacting_copy_would_keep_it, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_compact_cli_output_and_usage, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-unread.c - unread markers: counts that equal what a full read would
 * show as unread, idempotent marking, markers that leave with their entries.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL

typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

static ef_store *open_cap(fx *f, uint32_t cap)
{
	ef_config cfg = {0};

	cfg.feed_cap = cap;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	return th_open(f->dir, &cfg);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->dir = th_tmpdir();
	f->now = T0;
	f->st = open_cap(f, 10);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	ef_close(f->st);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

static void fin(ef_store *st, const char *owner, const char *rid,
		int64_t created)
{
	ef_receive r = {owner, rid, created, NULL, NULL};
	assert_int_equal(ef_finalize(st, &r), EF_OK);
}

static uint64_t unread(ef_store *st, const char *owner)
{
	uint64_t n = 999;
	assert_int_equal(ef_unread_count(st, owner, &n), EF_OK);
	return n;
}

/* Unread entries that a full read returns. */
static uint64_t unread_by_reading(ef_store *st, const char *owner)
{
	ef_page p;
	uint64_t n = 0;

	assert_int_equal(ef_feed_page(st, owner, NULL, 1000, &p), EF_OK);
	for (size_t i = 0; i < p.count; i++)
		n += (uint64_t)p.entries[i].unread;
	ef_page_free(&p);
	return n;
}

static void test_unread_counts_new_entries(void **state)
{
	fx *f = *state;

	assert_int_equal(unread(f->st, "a@x"), 0);
	fin(f->st, "a@x", "r1", T0 - 3);
	fin(f->st, "a@x", "r2", T0 - 2);
	fin(f->st, "b@x", "r1", T0 - 1);
	assert_int_equal(unread(f->st, "a@x"), 2);
	assert_int_equal(unread(f->st, " A@X "), 2);
	assert_int_equal(unread(f->st, "b@x"), 1);
	assert_int_equal(unread_by_reading(f->st, "a@x"), 2);
}

static void test_unread_mark_read_is_idempotent(void **state)
{
	fx *f = *state;
	char *before, *after;

	fin(f->st, "a@x", "r1", T0 - 3);
	fin(f->st, "a@x", "r2", T0 - 2);
	assert_int_equal(ef_mark_read(f->st, "a@x", "r1"), EF_OK);
	assert_int_equal(unread(f->st, "a@x"), 1);
	before = th_dump(f->st);
	assert_int_equal(ef_mark_read(f->st, "A@x", "r1"), EF_OK);
	after = th_dump(f->st);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(unread(f->st, "a@x"), 1);
	assert_int_equal(unread_by_reading(f->st, "a@x"), 1);
	assert_int_equal(ef_mark_read(f->st, "a@x", "nope"), EF_ENOTFOUND);
	assert_non_null(strstr(ef_errmsg(f->st), "nope"));
	assert_int_equal(ef_mark_read(f->st, "a@x", ""), EF_EINVAL);
	/* a duplicate finalize does not make a read entry unread again */
	{
		ef_receive r = {"a@x", "r1", T0 - 3, NULL, NULL};
		assert_int_equal(ef_finalize(f->st, &r), EF_EXISTS);
	}
	assert_int_equal(unread(f->st, "a@x"), 1);
}

static void test_unread_mark_all_read(void **state)
{
	fx *f = *state;
	char rid[16];

	for (int i = 0; i < 8; i++) {
		snprintf(rid, sizeof(rid), "r%d", i);
		fin(f->st, "a@x", rid, T0 - i);
	}
	fin(f->st, "b@x", "r", T0);
	assert_int_equal(ef_mark_all_read(f->st, "a@x"), EF_OK);
	assert_int_equal(unread(f->st, "a@x"), 0);
	assert_int_equal(unread(f->st, "b@x"), 1);
	assert_int_equal(ef_mark_all_read(f->st, "a@x"), EF_OK);
	assert_int_equal(ef_mark_all_read(f->st, "nobody@x"), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 1);
}

static void test_unread_mark_all_read_spans_many_batches(void **state)
{
	fx *f = *state;
	ef_store *big = open_cap(f, 5000);
	char rid[16];

	/* more markers than one write transaction removes */
	for (int i = 0; i < 2500; i++) {
		snprintf(rid, sizeof(rid), "r%04d", i);
		fin(big, "a@x", rid, T0 - i);
	}
	assert_int_equal(unread(big, "a@x"), 2500);
	assert_int_equal(ef_mark_all_read(big, "a@x"), EF_OK);
	assert_int_equal(unread(big, "a@x"), 0);
	assert_int_equal(th_count_prefix(big, "unread:"), 0);
	assert_int_equal(th_count_prefix(big, "recentReceive:"), 2500);
	ef_close(big);
}

static void test_unread_markers_leave_with_their_entries(void **state)
{
	fx *f = *state; /* cap 10 */
	char rid[16];

	for (int i = 0; i < 25; i++) {
		snprintf(rid, sizeof(rid), "r%02d", i);
		fin(f->st, "a@x", rid, T0 - 1000 + i);
	}
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 10);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 10);
	assert_int_equal(unread(f->st, "a@x"), 10);
	/* stale entries go with their markers on the next write */
	f->now = T0 + EF_DEFAULT_FEED_TTL_MS;
	fin(f->st, "a@x", "new", 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 1);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 1);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:"), 1);
}

static void test_unread_ignores_markers_of_hidden_entries(void **state)
{
	fx *f = *state;
	ef_store *small;

	fin(f->st, "a@x", "r1", T0 - 1);
	fin(f->st, "a@x", "r2", T0 - 2);
	fin(f->st, "a@x", "r3", T0 - 3);
	fin(f->st, "a@x", "old", T0 - 80 * DAY);
	assert_int_equal(unread(f->st, "a@x"), 4);
	/* stale, not deleted yet: its marker does not count */
	f->now = T0 + 11 * DAY;
	assert_int_equal(unread(f->st, "a@x"), 3);
	assert_int_equal(unread_by_reading(f->st, "a@x"), 3);
	/* over the cap of a smaller-cap reader: not counted either */
	small = open_cap(f, 2);
	assert_int_equal(unread(small, "a@x"), 2);
	assert_int_equal(unread_by_reading(small, "a@x"), 2);
	assert_int_equal(ef_mark_read(small, "a@x", "r1"), EF_OK);
	assert_int_equal(unread(small, "a@x"), 1);
	assert_int_equal(unread_by_reading(small, "a@x"), 1);
	ef_close(small);
	/* an orphan marker (no entry) does not count */
	th_put_raw(f->st, "unread:a@x:ghost", "8209999999999", 13);
	assert_int_equal(unread(f->st, "a@x"), 2);
}

static void test_unread_count_matches_full_read_under_random_ops(void **state)
{
	fx *f = *state;
	char rid[16];
	unsigned x = 12345;

	for (int step = 0; step < 400; step++) {
		x = x * 1103515245u + 12345u;
		snprintf(rid, sizeof(rid), "r%u", (x >> 8) % 30);
		switch ((x >> 20) % 4) {
		case 0:
		case 1: {
			ef_receive r = {"a@x", rid, T0 - (int64_t)((x >> 4) % 5000),
					NULL, NULL};
			int rc = ef_finalize(f->st, &r);
			assert_true(rc == EF_OK || rc == EF_EXISTS);
			break;
		}
		case 2: {
			int rc = ef_mark_read(f->st, "a@x", rid);
			assert_true(rc == EF_OK || rc == EF_ENOTFOUND);
			break;
		}
		default:
			if ((x >> 12) % 10 == 0)
				assert_int_equal(ef_mark_all_read(f->st, "a@x"),
						 EF_OK);
			break;
		}
		assert_int_equal(unread(f->st, "a@x"),
				 unread_by_reading(f->st, "a@x"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unread_counts_new_entries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_mark_read_is_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_mark_all_read,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_mark_all_read_spans_many_batches, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_markers_leave_with_their_entries, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_ignores_markers_of_hidden_entries, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_count_matches_full_read_under_random_ops,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

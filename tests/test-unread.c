#define _GNU_SOURCE /* asprintf */
/*
 * test-unread.c - unread markers: counts that equal what a full read would
 * show as unread, idempotent marking, markers that leave with their entries.
 */
#include "tests/helpers.h"

#include "feed/feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

	f->dir = th_store();
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

/* The record's unread state (what a page shows without a marker look-up)
 * follows every change of the marker, in the same transaction; check holds
 * the two to each other after each step. */
struct state_ctx {
	const char *owner, *rid;
	int state;
};

static int state_txn(store_txn *t, void *p)
{
	struct state_ctx *c = p;
	char sort[KEY_SORT_LEN + 1];
	key_part owner, rid;
	store_val v;
	key_buf k;

	assert_int_equal(key_owner(0, "owner", c->owner, &owner), EF_OK);
	assert_int_equal(key_reservation(0, "rid", c->rid, &rid), EF_OK);
	key_index(&k, &owner, &rid);
	assert_int_equal(store_get(t, k.s, k.len, &v), EF_OK);
	memcpy(sort, v.data, KEY_SORT_LEN);
	sort[KEY_SORT_LEN] = '\0';
	key_entry(&k, &owner, sort, &rid);
	assert_int_equal(store_get(t, k.s, k.len, &v), EF_OK);
	c->state = rec_unread_state(v.data, v.len);
	return EF_OK;
}

/* What the record of @owner/@rid says of its marker (REC_UNREAD_*). */
static int record_state(ef_store *st, const char *owner, const char *rid)
{
	struct state_ctx c = {owner, rid, -1};
	key_part o;
	store_val g;

	assert_int_equal(key_owner(0, "owner", owner, &o), EF_OK);
	g.data = o.s;
	g.len = o.len;
	assert_int_equal(store_read_in(st->env, &g, state_txn, &c), EF_OK);
	return c.state;
}

static int page_unread(ef_store *st, const char *owner, const char *rid)
{
	ef_page p;
	int u = -1;

	assert_int_equal(ef_feed_page(st, owner, NULL, 100, &p), EF_OK);
	for (size_t i = 0; i < p.count; i++)
		if (strcmp(p.entries[i].reservation_id, rid) == 0)
			u = p.entries[i].unread;
	ef_page_free(&p);
	return u;
}

static void test_unread_state_in_the_record_follows_the_marker(void **state)
{
	fx *f = *state;

	fin(f->st, "a@x", "r1", T0 - 1000);
	fin(f->st, "a@x", "r2", T0 - 2000);
	fin(f->st, "a@x", "r3", T0 - 3000);
	assert_int_equal(record_state(f->st, "a@x", "r1"), REC_UNREAD_YES);
	assert_int_equal(ef_mark_read(f->st, "a@x", "r1"), EF_OK);
	assert_int_equal(record_state(f->st, "a@x", "r1"), REC_UNREAD_NO);
	assert_int_equal(page_unread(f->st, "a@x", "r1"), 0);
	assert_int_equal(page_unread(f->st, "a@x", "r2"), 1);
	th_assert_consistent(f->st);
	assert_int_equal(ef_mark_all_read(f->st, "a@x"), EF_OK);
	assert_int_equal(record_state(f->st, "a@x", "r2"), REC_UNREAD_NO);
	assert_int_equal(record_state(f->st, "a@x", "r3"), REC_UNREAD_NO);
	assert_int_equal(page_unread(f->st, "a@x", "r3"), 0);
	assert_int_equal(unread(f->st, "a@x"), 0);
	th_assert_consistent(f->st);
	/* a marker an import brings makes it unread again */
	{
		char sort[KEY_SORT_LEN + 1], *path, body[256];
		char *tmp = th_tmpdir(); /* the store may be on a cluster */
		FILE *fp;

		assert_int_equal(key_created_sort(T0 - 2000, sort), EF_OK);
		snprintf(body, sizeof(body),
			 "[{\"key\":\"unread:a@x:r2\",\"value\":\"%s\"}]",
			 sort);
		assert_true(asprintf(&path, "%s/m.json", tmp) > 0);
		fp = fopen(path, "w");
		assert_non_null(fp);
		fputs(body, fp);
		assert_int_equal(fclose(fp), 0);
		assert_int_equal(ef_import_kvbulk(f->st, path, NULL, NULL),
				 EF_OK);
		unlink(path);
		free(path);
		th_cleanup(tmp);
	}
	assert_int_equal(record_state(f->st, "a@x", "r2"), REC_UNREAD_YES);
	assert_int_equal(page_unread(f->st, "a@x", "r2"), 1);
	assert_int_equal(unread(f->st, "a@x"), 1);
	th_assert_consistent(f->st);
}

static void count_state_violation(const char *what, const char *key, void *ctx)
{
	(void)key;
	*(int *)ctx += strstr(what, "unread marker") != NULL;
}

/* check reports a record whose state disagrees with its marker. */
static void test_unread_state_disagreeing_with_marker_is_reported(void **state)
{
	fx *f = *state;
	int found = 0;
	ef_check_opts o = {.report = count_state_violation, .report_ctx = &found};
	ef_check_stats cs;

	fin(f->st, "a@x", "r1", T0 - 1000);
	fin(f->st, "a@x", "r2", T0 - 2000);
	assert_int_equal(ef_mark_read(f->st, "a@x", "r2"), EF_OK);
	th_del_raw(f->st, "unread:a@x:r1");          /* says unread: none */
	th_put_raw(f->st, "unread:a@x:r2", "x", 1);  /* says read: one */
	assert_int_equal(ef_check(f->st, &o, &cs), EF_OK);
	assert_int_equal(found, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_unread_state_in_the_record_follows_the_marker,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_unread_state_disagreeing_with_marker_is_reported,
			setup, teardown),
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

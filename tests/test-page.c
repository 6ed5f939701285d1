/*
 * test-page.c - ef_feed_page: order, limits, a stable cursor, and the read
 * rules (stale, over cap, IP retention) applied before anything deletes.
 */
#include "tests/helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "feed/feed.h"

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

	f->dir = th_store();
	f->now = T0;
	f->st = open_cap(f, 1000);
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
		int64_t created, const char *ip)
{
	ef_receive r = {owner, rid, created, ip, NULL};
	int rc = ef_finalize(st, &r);
	if (rc != EF_OK)
		fail_msg("finalize %s/%s: %s %s", owner, rid, ef_err_name(rc),
			 ef_errmsg(st));
}

/* Read the whole feed with pages of @limit; returns the ids, newline
 * separated, and the number of pages. */
static char *read_all(ef_store *st, const char *owner, size_t limit,
		      int *pages)
{
	char *out = calloc(1, 1), *cursor = NULL;
	size_t len = 0;

	*pages = 0;
	for (;;) {
		ef_page p;
		int rc = ef_feed_page(st, owner, cursor, limit, &p);

		assert_int_equal(rc, EF_OK);
		(*pages)++;
		assert_true(p.count <= limit);
		for (size_t i = 0; i < p.count; i++) {
			size_t n = strlen(p.entries[i].reservation_id);
			out = realloc(out, len + n + 2);
			memcpy(out + len, p.entries[i].reservation_id, n);
			len += n;
			out[len++] = '\n';
			out[len] = '\0';
		}
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		if (p.next_cursor)
			assert_int_equal(p.count, limit);
		ef_page_free(&p);
		if (!cursor)
			break;
	}
	return out;
}

static void test_page_newest_first_ties_by_reservation(void **state)
{
	fx *f = *state;
	ef_page p;

	fin(f->st, "a@x", "m", T0 - 10, NULL);
	fin(f->st, "a@x", "b", T0 - 20, NULL);
	fin(f->st, "a@x", "z", T0 - 10, NULL);
	fin(f->st, "a@x", "a", T0 - 10, NULL);
	fin(f->st, "a@x", "c", T0 - 5, NULL);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 0, &p), EF_OK);
	assert_int_equal(p.count, 5);
	assert_string_equal(p.entries[0].reservation_id, "c");
	assert_string_equal(p.entries[1].reservation_id, "a");
	assert_string_equal(p.entries[2].reservation_id, "m");
	assert_string_equal(p.entries[3].reservation_id, "z");
	assert_string_equal(p.entries[4].reservation_id, "b");
	assert_null(p.next_cursor);
	for (size_t i = 1; i < p.count; i++)
		assert_true(p.entries[i - 1].created_ms >= p.entries[i].created_ms);
	ef_page_free(&p);
}

static void test_page_limits_default_and_bounds(void **state)
{
	fx *f = *state;
	char rid[32];
	ef_page p;
	int pages;
	char *all;

	for (int i = 0; i < 120; i++) {
		snprintf(rid, sizeof(rid), "r%03d", i);
		fin(f->st, "a@x", rid, T0 - i, NULL);
	}
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 0, &p), EF_OK);
	assert_int_equal(p.count, EF_PAGE_LIMIT_DEFAULT);
	assert_non_null(p.next_cursor);
	ef_page_free(&p);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 1001, &p), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->st), "limit"));
	assert_int_equal(p.count, 0);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 1000, &p), EF_OK);
	assert_int_equal(p.count, 120);
	assert_null(p.next_cursor);
	ef_page_free(&p);
	/* pages of 1, and of exactly the remaining size, end cleanly */
	all = read_all(f->st, "a@x", 1, &pages);
	assert_int_equal(pages, 120);
	free(all);
	all = read_all(f->st, "a@x", 60, &pages);
	assert_int_equal(pages, 2);
	free(all);
	all = read_all(f->st, "a@x", 7, &pages);
	assert_int_equal(pages, 18);
	free(all);
}

static void test_page_cursor_stable_while_entries_are_finalized(void **state)
{
	fx *f = *state;
	char rid[32], *cursor = NULL, seen[200] = {0};
	int total = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(rid, sizeof(rid), "r%03d", i);
		fin(f->st, "a@x", rid, T0 - 1000 * (i + 1), NULL);
	}
	for (int page = 0;; page++) {
		ef_page p;
		assert_int_equal(ef_feed_page(f->st, "a@x", cursor, 9, &p),
				 EF_OK);
		for (size_t i = 0; i < p.count; i++) {
			int n = atoi(p.entries[i].reservation_id + 1);
			if (p.entries[i].reservation_id[0] == 'r') {
				assert_int_equal(seen[n], 0); /* never twice */
				seen[n] = 1;
				total++;
			} else {
				/* only an older entry added behind the
				 * cursor may appear, and once */
				assert_int_equal(p.entries[i].reservation_id[0],
						 'o');
				assert_int_equal(seen[100 + n], 0);
				seen[100 + n] = 1;
			}
		}
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		ef_page_free(&p);
		if (!cursor)
			break;
		/* between pages: newer entries, an entry with the same
		 * timestamp as one already seen, and an old one */
		snprintf(rid, sizeof(rid), "n%03d", page);
		fin(f->st, "a@x", rid, T0 + page, NULL);
		snprintf(rid, sizeof(rid), "o%03d", page);
		fin(f->st, "a@x", rid, T0 - 1000 * 200 - page, NULL);
	}
	assert_int_equal(total, 100); /* none skipped */
	for (int i = 100; i < 100 + 11; i++)
		assert_int_equal(seen[i], 1); /* every older addition seen */
}

static void test_page_rejects_a_malformed_cursor(void **state)
{
	fx *f = *state;
	const char *bad[] = {"!!!", "AAAA", "MTIz", "x", "MTgyMDUwMjUxMTIyNDQ"};
	ef_page p;

	fin(f->st, "a@x", "r", T0, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		assert_int_equal(ef_feed_page(f->st, "a@x", bad[i], 10, &p),
				 EF_EINVAL);
		assert_non_null(strstr(ef_errmsg(f->st), "cursor"));
	}
	assert_int_equal(ef_feed_page(f->st, "", NULL, 10, &p), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->st), "owner"));
}

static void test_page_hides_stale_entries_before_deletion(void **state)
{
	fx *f = *state;
	ef_page p;

	fin(f->st, "a@x", "fresh", T0 - 1 * DAY, NULL);
	fin(f->st, "a@x", "older", T0 - 50 * DAY, NULL);
	fin(f->st, "a@x", "oldest", T0 - 80 * DAY, NULL);
	f->now = T0 + 20 * DAY; /* "oldest" is 100 days old: stale */
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_string_equal(p.entries[1].reservation_id, "older");
	ef_page_free(&p);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 3);
	/* paging hits the stale boundary the same way */
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 2, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_null(p.next_cursor);
	ef_page_free(&p);
}

static void test_page_hides_over_cap_entries_before_deletion(void **state)
{
	fx *f = *state;
	char rid[32], *all;
	ef_store *small;
	int pages;

	for (int i = 0; i < 12; i++) {
		snprintf(rid, sizeof(rid), "r%02d", i);
		fin(f->st, "a@x", rid, T0 - i, NULL);
	}
	/* a handle with a smaller cap reads only its cap's newest */
	small = open_cap(f, 5);
	all = read_all(small, "a@x", 2, &pages);
	assert_string_equal(all, "r00\nr01\nr02\nr03\nr04\n");
	assert_int_equal(pages, 3);
	free(all);
	ef_close(small);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 12);
}

static void test_page_ip_only_within_retention(void **state)
{
	fx *f = *state;
	ef_page p;

	/* finalized while both are within retention (an IP already past it
	 * when finalized is not kept at all: test-retention.c) */
	f->now = T0 - 2 * DAY;
	fin(f->st, "a@x", "v4", T0 - 29 * DAY, "203.0.113.77");
	fin(f->st, "a@x", "v6", T0 - 31 * DAY, "2001:db8::77");
	f->now = T0;
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_string_equal(p.entries[0].ip, "203.0.113.77");
	assert_null(p.entries[1].ip); /* 31 days: past 30-day retention */
	ef_page_free(&p);
	f->now = T0 - 30 * DAY; /* a clock inside both windows */
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_string_equal(p.entries[1].ip, "2001:db8::77");
	ef_page_free(&p);
	f->now = T0 + 2 * DAY;
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_null(p.entries[0].ip);
	assert_null(p.entries[1].ip);
	ef_page_free(&p);
}

static void test_page_owner_is_canonical_and_isolated(void **state)
{
	fx *f = *state;
	ef_page p;

	fin(f->st, "Alice@Example.com ", "r1", T0, NULL);
	fin(f->st, "alice@example.com:x", "r2", T0, NULL);
	fin(f->st, "alice@example.co", "r3", T0, NULL);
	assert_int_equal(ef_feed_page(f->st, "  ALICE@EXAMPLE.COM", NULL, 10, &p),
			 EF_OK);
	assert_int_equal(p.count, 1);
	assert_string_equal(p.entries[0].reservation_id, "r1");
	ef_page_free(&p);
	assert_int_equal(ef_feed_page(f->st, "nobody@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 0);
	assert_null(p.next_cursor);
	ef_page_free(&p);
}

/* A deep page seeks straight to its cursor when the owner's count says its
 * records are within the cap; missing, too-high and too-low-for-the-reader
 * counts read the same as the walk. */
static void set_count(ef_store *st, const char *owner, uint64_t n)
{
	char key[128];
	uint8_t v[8];

	for (int i = 7; i >= 0; i--, n >>= 8)
		v[i] = (uint8_t)n;
	snprintf(key, sizeof(key), "meta:entries:%s", owner);
	th_put_raw(st, key, v, sizeof(v));
}

static void test_page_deep_cursor_reads_the_same_whatever_the_count(void **state)
{
	fx *f = *state;
	char rid[32], *want, *got;
	int pages;
	ef_store *small;

	for (int i = 0; i < 230; i++) {
		snprintf(rid, sizeof(rid), "r%03d", i);
		fin(f->st, "a@x", rid, T0 - DAY + (i % 50) * 1000, NULL);
	}
	th_assert_consistent(f->st); /* the count is exact */
	want = read_all(f->st, "a@x", 7, &pages);
	assert_int_equal(pages, 33);
	th_del_raw(f->st, "meta:entries:a@x"); /* an older store: the walk */
	got = read_all(f->st, "a@x", 7, &pages);
	assert_string_equal(got, want);
	free(got);
	set_count(f->st, "a@x", 900); /* too high, within the cap: a seek */
	got = read_all(f->st, "a@x", 7, &pages);
	assert_string_equal(got, want);
	free(got);
	/* a reader whose cap is below the count walks, and stops at it */
	small = open_cap(f, 100);
	got = read_all(small, "a@x", 7, &pages);
	assert_int_equal(pages, 15); /* 100 entries */
	assert_int_equal(strncmp(got, want, strlen(got)), 0);
	free(got);
	ef_close(small);
	free(want);
}

/* check holds the count to the records: one below them could show
 * entries beyond the cap, so it is reported; sweep mends a wrong one. */
static void count_violation(const char *what, const char *key, void *ctx)
{
	(void)key;
	*(int *)ctx += strncmp(what, "count:", 6) == 0;
}

static void test_page_count_below_records_is_reported(void **state)
{
	fx *f = *state;
	int found = 0;
	ef_check_opts o = {.report = count_violation, .report_ctx = &found};
	ef_check_stats cs;

	fin(f->st, "a@x", "r1", T0 - 1000, NULL);
	fin(f->st, "a@x", "r2", T0 - 2000, NULL);
	set_count(f->st, "a@x", 1);
	assert_int_equal(ef_check(f->st, &o, &cs), EF_OK);
	assert_int_equal(found, 1);
	assert_int_equal(ef_sweep(f->st, NULL), EF_OK);
	th_assert_consistent(f->st);
}

/* A count is never guessed: an owner of an older store (records, no count)
 * gets none from a finalize, only from a sweep's full walk. */
static void test_page_count_made_by_first_record_or_sweep_only(void **state)
{
	fx *f = *state;

	fin(f->st, "a@x", "r1", T0 - 1000, NULL);
	fin(f->st, "a@x", "r2", T0 - 2000, NULL);
	assert_int_equal(th_count_prefix(f->st, "meta:entries:"), 1);
	th_del_raw(f->st, "meta:entries:a@x");
	fin(f->st, "a@x", "r3", T0 - 3000, NULL);
	assert_int_equal(th_count_prefix(f->st, "meta:entries:"), 0);
	assert_int_equal(ef_sweep(f->st, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "meta:entries:"), 1);
	th_assert_consistent(f->st); /* and it says 3 */
}

/* The page's own IPv4 formatting writes what inet_ntop writes. */
static void test_ip_format_matches_inet_ntop(void **state)
{
	uint64_t rng = 42;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t bin[16] = {0};
		char mine[64], theirs[64];
		uint64_t r = th_rng_next(&rng);

		for (int b = 0; b < 4; b++)
			bin[b] = i < 1024 ? (uint8_t)(i >> (b * 2) & 3) * 85
					  : (uint8_t)(r >> (8 * b));
		if (i % 7 == 0)
			bin[i % 4] = (uint8_t)(i % 3 == 0 ? 0 : i % 3 == 1 ? 9 : 99);
		ip_format(REC_IP_V4, bin, mine, sizeof(mine));
		assert_non_null(inet_ntop(AF_INET, bin, theirs, sizeof(theirs)));
		assert_string_equal(mine, theirs);
	}
}

/* Two pages are the same: ids, times, IPs, unread flags, payloads. */
static void same_page(const ef_page *a, const ef_page *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		const ef_entry *x = &a->entries[i], *y = &b->entries[i];
		assert_string_equal(x->reservation_id, y->reservation_id);
		assert_int_equal(x->created_ms, y->created_ms);
		assert_int_equal(!x->ip, !y->ip);
		if (x->ip)
			assert_string_equal(x->ip, y->ip);
		assert_int_equal(x->unread, y->unread);
		assert_int_equal(!x->payload_json, !y->payload_json);
	}
	assert_int_equal(!a->next_cursor, !b->next_cursor);
}

static void test_page_try_reads_the_same_page_without_waiting(void **state)
{
	fx *f = *state;
	ef_page p, q;

	f->now = T0;
	fin(f->st, "a@x", "r1", T0 - DAY, "203.0.113.1");
	fin(f->st, "a@x", "r2", T0 - 2 * DAY, "2001:db8::2");
	fin(f->st, "a@x", "r3", T0 - 3 * DAY, NULL);
	assert_int_equal(ef_mark_read(f->st, "a@x", "r2"), EF_OK);
	/* nothing read yet: no read transaction to renew, and a new one may
	 * wait for txn.lock: refused, with nothing to free */
	assert_int_equal(ef_feed_page_try(f->st, "a@x", NULL, 2, &p),
			 EF_EBUSY);
	assert_int_equal(p.count, 0);
	assert_null(p.entries);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 2, &p), EF_OK);
	if (th_redis()) { /* every read on a cluster waits on the network */
		assert_int_equal(ef_feed_page_try(f->st, "a@x", NULL, 2, &q),
				 EF_EBUSY);
		assert_int_equal(q.count, 0);
		ef_page_free(&p);
		return;
	}
	assert_int_equal(ef_feed_page_try(f->st, "a@x", NULL, 2, &q), EF_OK);
	same_page(&p, &q);
	assert_string_equal(q.entries[0].ip, "203.0.113.1");
	ef_page_free(&q);
	/* its cursor too, and what ef_feed_page refuses it refuses */
	assert_int_equal(ef_feed_page_try(f->st, "a@x", p.next_cursor, 2, &q),
			 EF_OK);
	assert_int_equal(q.count, 1);
	assert_string_equal(q.entries[0].reservation_id, "r3");
	ef_page_free(&q);
	ef_page_free(&p);
	assert_int_equal(ef_feed_page_try(f->st, "", NULL, 2, &q), EF_EINVAL);
	assert_int_equal(ef_feed_page_try(f->st, "a@x", "junk", 2, &q),
			 EF_EINVAL);
	assert_int_equal(ef_feed_page_try(NULL, "a@x", NULL, 2, &q), EF_EINVAL);
}

/* Another process writes the keyring (a new day's key) and holds it: a
 * page that would have to reread the keyring does not wait for it. */
static void test_page_try_refuses_while_the_keyring_is_written(void **state)
{
	fx *f = *state;
	char path[4200];
	ef_page p;
	int fd, status;
	pid_t pid;

	th_lmdb_only(); /* the keyring file is LMDB's */

	f->now = T0;
	fin(f->st, "a@x", "old", T0 - 3 * DAY, "203.0.113.3");
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	ef_page_free(&p); /* the keyring is cached, a read is kept */
	pid = th_fork(30);
	if (pid == 0) { /* a new day's key: the keyring changes */
		ef_store *st = open_cap(f, 1000);
		fin(st, "a@x", "new", T0 - DAY, "203.0.113.4");
		ef_close(st);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(path, sizeof(path), "%s/keyring", f->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0); /* as its writer holds it */
	th_sleep_us(150000); /* past the keyring's 100 ms recheck */
	assert_int_equal(ef_feed_page_try(f->st, "a@x", NULL, 10, &p),
			 EF_EBUSY);
	assert_non_null(strstr(ef_errmsg(f->st), "without waiting"));
	assert_int_equal(flock(fd, LOCK_UN), 0);
	close(fd);
	assert_int_equal(ef_feed_page_try(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_string_equal(p.entries[0].ip, "203.0.113.4");
	assert_string_equal(p.entries[1].ip, "203.0.113.3");
	ef_page_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_format_matches_inet_ntop),
		cmocka_unit_test_setup_teardown(
			test_page_deep_cursor_reads_the_same_whatever_the_count,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_count_below_records_is_reported, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_page_count_made_by_first_record_or_sweep_only,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_newest_first_ties_by_reservation, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_page_limits_default_and_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_cursor_stable_while_entries_are_finalized,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_rejects_a_malformed_cursor, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_hides_stale_entries_before_deletion, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_page_hides_over_cap_entries_before_deletion, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_page_ip_only_within_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_owner_is_canonical_and_isolated, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_page_try_reads_the_same_page_without_waiting,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_page_try_refuses_while_the_keyring_is_written,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

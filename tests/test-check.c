/*
 * test-check.c - ef_check / `edgefeed check`: a healthy store passes, and
 * every kind of broken invariant is found.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"

#define T0 1790000000000LL
#define DAY (24LL * 3600 * 1000)

typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	ef_config cfg = {0};

	f->dir = th_store();
	f->now = T0;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	cfg.feed_cap = 5;
	f->st = th_open(f->dir, &cfg);
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

struct seen {
	char what[16][128];
	char keys[16][256]; /* the key each finding named, as reported */
	int n;
};

static void collect(const char *what, const char *key, void *ctx)
{
	struct seen *s = ctx;

	if (s->n < 16) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s",
			 key ? key : "");
		snprintf(s->what[s->n++], sizeof(s->what[0]), "%s", what);
	}
}

static uint64_t check(ef_store *st, int strict, struct seen *s)
{
	ef_check_opts o = {0};
	ef_check_stats cs;

	o.strict = strict;
	o.report = collect;
	o.report_ctx = s;
	memset(s, 0, sizeof(*s));
	assert_int_equal(ef_check(st, &o, &cs), EF_OK);
	return cs.violations;
}

static int saw(const struct seen *s, const char *what)
{
	for (int i = 0; i < s->n; i++)
		if (strstr(s->what[i], what))
			return 1;
	return 0;
}

static void fill(fx *f)
{
	char rid[16];
	for (int i = 0; i < 4; i++) {
		ef_receive r = {"a@x", rid, T0 - i, "192.0.2.1", "{\"k\":1}"};
		snprintf(rid, sizeof(rid), "r%d", i);
		assert_int_equal(ef_finalize(f->st, &r), EF_OK);
	}
}

struct del_ctx {
	const char *key;
};

static int del_txn(store_txn *t, void *p)
{
	struct del_ctx *c = p;
	return store_del(t, c->key, strlen(c->key));
}

static void del_raw(ef_store *st, const char *key)
{
	struct del_ctx c = {key};
	store_val g;

	key_group(key, strlen(key), &g);
	assert_int_equal(store_write_in(st->env, &g, del_txn, &c), EF_OK);
}

static void test_check_healthy_store_passes(void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	assert_int_equal(ef_mark_read(f->st, "a@x", "r1"), EF_OK);
	th_put_raw(f->st, "recentReceives:b@x", "[]", 2);
	assert_int_equal(check(f->st, 1, &s), 0);
}

static void test_check_finds_entry_without_index_and_index_without_entry(
	void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	del_raw(f->st, "receiveIndex:a@x:r0");
	th_put_raw(f->st, "receiveIndex:a@x:ghost", "8209999999999", 13);
	assert_int_equal(check(f->st, 0, &s), 2);
	assert_true(saw(&s, "entry: no index key"));
	assert_true(saw(&s, "index: no entry"));
}

static void test_check_finds_index_with_another_created_sort(void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	th_put_raw(f->st, "receiveIndex:a@x:r0", "8200000000000", 13);
	assert_int_equal(check(f->st, 0, &s), 2);
	assert_true(saw(&s, "another createdSort"));
	assert_true(saw(&s, "index: no entry"));
}

static void test_check_finds_orphan_marker_and_bad_keys(void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	th_put_raw(f->st, "unread:a@x:nobody", "8209999999999", 13);
	th_put_raw(f->st, "recentReceive:A@X:8209999999999:r9", "\x01", 1);
	th_put_raw(f->st, "recentReceive:a@x:12345:r9", "\x01", 1);
	th_put_raw(f->st, "surprise:key", "1", 1);
	th_put_raw(f->st, "quarantine:a@x:00", "not json", 8);
	check(f->st, 0, &s);
	assert_true(saw(&s, "marker: no entry"));
	assert_true(saw(&s, "owner is not in canonical form"));
	assert_true(saw(&s, "entry: malformed key"));
	assert_true(saw(&s, "record does not decode"));
	assert_true(saw(&s, "unknown key family"));
	assert_true(saw(&s, "quarantine: record is not a JSON object"));
}

/* Keys with an owner longer than any edgefeed writes (planted): reported
 * as malformed, never copied into a fixed buffer; sweep skips them. */
static void test_check_owner_longer_than_any_key_is_malformed(void **state)
{
	fx *f = *state;
	struct seen s;
	char key[KEY_MAX + 1];

	fill(f);
	snprintf(key, sizeof(key), "unread:%0400d:r1", 7);
	th_put_raw(f->st, key, "8209999999999", 13);
	snprintf(key, sizeof(key), "recentReceive:%0400d:8209999999999:r1", 7);
	th_put_raw(f->st, key, "\x02", 1);
	snprintf(key, sizeof(key), "meta:entries:%0400d", 7);
	th_put_raw(f->st, key, "\0\0\0\0\0\0\0\1", 8);
	check(f->st, 0, &s);
	assert_true(saw(&s, "marker: malformed key"));
	assert_true(saw(&s, "entry: malformed key"));
	assert_true(saw(&s, "count: not meta:entries:<owner>"));
	assert_int_equal(ef_sweep(f->st, NULL), EF_OK);
}

/* A finding names its key, but never an IP address in it (an owner or a
 * reservation id may hold one): such tokens are masked. */
static void test_check_findings_mask_addresses_in_keys(void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	th_put_raw(f->st, "unread:a@x:198.51.100.7", "8209999999999", 13);
	th_put_raw(f->st, "receiveIndex:a@x:[2001:db8::7]", "8209999999999",
		   13);
	check(f->st, 0, &s);
	assert_true(saw(&s, "marker: no entry"));
	for (int i = 0; i < s.n; i++)
		if (strstr(s.keys[i], "198.51") || strstr(s.keys[i], "db8"))
			fail_msg("a finding quotes an address: %s", s.keys[i]);
}

/* A marker's value is normally its entry's createdSort, but an imported or
 * old-design marker may hold another value of that shape (an epoch-ms time
 * of the old worker): the entry is there all the same, found through the
 * index as a sweep finds it, so the marker is no orphan (found by
 * fuzz-kvbulk). */
static void test_check_marker_with_another_sort_shaped_value_is_no_orphan(
	void **state)
{
	fx *f = *state;
	struct seen s;

	fill(f);
	th_put_raw(f->st, "unread:a@x:r2", "1700000000000", 13);
	assert_int_equal(check(f->st, 1, &s), 0);
	th_put_raw(f->st, "unread:a@x:gone", "1700000000000", 13);
	assert_int_equal(check(f->st, 0, &s), 1);
	assert_true(saw(&s, "marker: no entry"));
}

static void test_check_finds_record_that_disagrees_with_its_key(void **state)
{
	fx *f = *state;
	struct seen s;
	rec_entry e = {0};
	uint8_t *buf;
	size_t len;

	e.created_ms = T0 - 77; /* not the key's */
	e.rid = "other";
	e.rid_len = 5;
	assert_int_equal(rec_encode(&e, &buf, &len), EF_OK);
	th_put_raw(f->st, "recentReceive:a@x:8209999999999:r5", buf, len);
	th_put_raw(f->st, "receiveIndex:a@x:r5", "8209999999999", 13);
	free(buf);
	assert_int_equal(check(f->st, 0, &s), 2);
	assert_true(saw(&s, "created_ms differs"));
	assert_true(saw(&s, "reservation id differs"));
}

static void test_check_strict_flags_what_a_sweep_deletes(void **state)
{
	fx *f = *state;
	struct seen s;
	ef_store *big;
	ef_config cfg = {0};
	char rid[16];

	cfg.feed_cap = 50;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	big = th_open(f->dir, &cfg);
	for (int i = 0; i < 7; i++) {
		ef_receive r = {"a@x", rid, T0 - i, NULL, NULL};
		snprintf(rid, sizeof(rid), "r%d", i);
		assert_int_equal(ef_finalize(big, &r), EF_OK);
	}
	ef_close(big);
	assert_int_equal(check(f->st, 0, &s), 0);
	assert_true(check(f->st, 1, &s) > 0); /* cap 5: over it */
	assert_true(saw(&s, "over its cap"));
	f->now = T0 + 100 * DAY;
	check(f->st, 1, &s);
	assert_true(saw(&s, "stale"));
}

static void test_check_reports_a_lost_or_damaged_keyring(void **state)
{
	fx *f = *state;
	struct seen s;
	char path[600];
	ef_store *again;
	FILE *kf;

	th_lmdb_only(); /* the keyring file is LMDB's */

	fill(f); /* entries with sealed IPs */
	assert_int_equal(check(f->st, 0, &s), 0);
	snprintf(path, sizeof(path), "%s/keyring", f->dir);
	/* lost */
	assert_int_equal(rename(path, "/tmp/edgefeed-test-keyring.bak"), 0);
	again = th_open(f->dir, NULL);
	assert_true(check(again, 0, &s) >= 4);
	assert_true(saw(&s, "the key that sealed its IP is missing"));
	assert_true(saw(&s, "keyring: missing"));
	ef_close(again);
	/* damaged: garbage where the file was */
	kf = fopen(path, "w");
	assert_non_null(kf);
	for (int i = 0; i < 300; i++)
		fputc((i * 37) & 0xFF, kf);
	fclose(kf);
	again = th_open(f->dir, NULL);
	assert_true(check(again, 0, &s) > 0);
	assert_true(saw(&s, "keyring:"));
	ef_close(again);
	remove("/tmp/edgefeed-test-keyring.bak");
}

static void test_check_cli_exits_4_with_one_line_per_violation(void **state)
{
	fx *f = *state;
	char *out;
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", f->dir,
			"check", NULL};
	int lines = 0;

	fill(f);
	assert_int_equal(th_run(argv, &out, NULL), 0);
	assert_non_null(strstr(out, "\"ok\":true"));
	free(out);
	del_raw(f->st, "receiveIndex:a@x:r0");
	del_raw(f->st, "receiveIndex:a@x:r1");
	assert_int_equal(th_run(argv, &out, NULL), 4);
	for (char *p = out; (p = strstr(p, "\"violation\"")); p++)
		lines++;
	assert_int_equal(lines, 2);
	assert_non_null(strstr(out, "\"ok\":false"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_healthy_store_passes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_owner_longer_than_any_key_is_malformed, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_findings_mask_addresses_in_keys, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_marker_with_another_sort_shaped_value_is_no_orphan,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_finds_entry_without_index_and_index_without_entry,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_finds_index_with_another_created_sort, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_finds_orphan_marker_and_bad_keys, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_finds_record_that_disagrees_with_its_key,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_check_strict_flags_what_a_sweep_deletes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_reports_a_lost_or_damaged_keyring, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_check_cli_exits_4_with_one_line_per_violation,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

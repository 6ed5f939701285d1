/*
 * test-migrate.c - dual-read of legacy arrays and the migrator: the same
 * pages before and after, one entry per reservation across the boundary,
 * quarantine that keeps the bytes, idempotent re-runs.
 */
#include "tests/helpers.h"

#include "feed/feed.h"
#include "migrate/migrate.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL /* 2026-09-21T14:13:20Z */

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
	f->st = open_cap(f, 100);
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

/* Every shape the legacy format is found in (issue 3). */
static const char fixture[] =
	"["
	/* 0: newest, ISO with Z and ms, IP, extra fields */
	"{\"reservationId\":\"r-new\",\"createdAt\":\"2026-09-21T10:00:00.123Z\","
	"\"ip\":\"203.0.113.9\",\"fileName\":\"a.pdf\",\"size\":123,"
	"\"senderEmail\":\"s@example.org\"},"
	/* 1: offset, no fraction */
	"{\"reservationId\":\"r-offset\",\"createdAt\":\"2026-09-21T09:00:00+02:00\","
	"\"linkId\":\"lnk-1\"},"
	/* 2: epoch ms, IPv6 */
	"{\"reservationId\":\"r-epoch\",\"createdAt\":1789990000000,"
	"\"ip\":\"2001:db8::5\"},"
	/* 3: the same reservation again (merged: first wins) */
	"{\"reservationId\":\"r-epoch\",\"createdAt\":1789000000000,"
	"\"fileName\":\"dup\"},"
	/* 4: no reservationId: a deterministic legacy- id */
	"{\"createdAt\":\"2026-09-20T00:00:00Z\",\"fileName\":\"anon.txt\"},"
	/* 5: not an object */
	"42,"
	/* 6: bad createdAt */
	"{\"reservationId\":\"r-badtime\",\"createdAt\":\"yesterday\"},"
	/* 7: invalid ip: migrated without it */
	"{\"reservationId\":\"r-badip\",\"createdAt\":1789900000000,"
	"\"ip\":\"999.1.2.3\"},"
	/* 8: deeply nested junk */
	"{\"reservationId\":\"r-deep\",\"createdAt\":1789800000000,\"x\":"
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},"
	/* 9: reservationId not a string */
	"{\"reservationId\":7,\"createdAt\":1789800000000},"
	/* 10: stale (older than 90 days) */
	"{\"reservationId\":\"r-stale\",\"createdAt\":\"2026-01-01T00:00:00Z\"},"
	/* 11: a unicode id with the characters that need escaping */
	"{\"reservationId\":\"r: 100%\\u00e9\",\"createdAt\":1789700000000}"
	"]";

static void put_legacy(ef_store *st, const char *owner_key, const char *json)
{
	char key[600];
	snprintf(key, sizeof(key), "recentReceives:%s", owner_key);
	th_put_raw(st, key, json, strlen(json));
}

/* The whole feed as JSON text (every field of every entry, every page). */
static char *feed_text(ef_store *st, const char *owner, size_t limit)
{
	char *cursor = NULL, *out;
	json_t *all = json_array();
	uint64_t unread = 0;

	for (;;) {
		ef_page p;
		assert_int_equal(ef_feed_page(st, owner, cursor, limit, &p),
				 EF_OK);
		for (size_t i = 0; i < p.count; i++) {
			ef_entry *e = &p.entries[i];
			json_array_append_new(
				all, json_pack("{s:s, s:I, s:s?, s:s?, s:b}",
					       "id", e->reservation_id, "ms",
					       (json_int_t)e->created_ms, "ip",
					       e->ip, "payload", e->payload_json,
					       "unread", e->unread));
		}
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		ef_page_free(&p);
		if (!cursor)
			break;
	}
	assert_int_equal(ef_unread_count(st, owner, &unread), EF_OK);
	json_array_append_new(all, json_integer((json_int_t)unread));
	out = json_dumps(all, JSON_COMPACT);
	json_decref(all);
	return out;
}

struct prefix_ctx {
	const char *prefix;
	char *val;
	key_buf *key;
};

static int prefix_txn(store_txn *t, void *p)
{
	struct prefix_ctx *c = p;
	store_cur *cur;
	store_val k, v;

	assert_int_equal(store_cur_open(t, &cur), EF_OK);
	assert_int_equal(store_cur_seek(cur, c->prefix, strlen(c->prefix), &k,
					&v),
			 EF_OK);
	assert_true(store_has_prefix(&k, c->prefix, strlen(c->prefix)));
	c->val = calloc(1, v.len + 1);
	memcpy(c->val, v.data, v.len);
	memcpy(c->key->s, k.data, k.len);
	c->key->len = k.len;
	return EF_OK;
}

/* The value of the first key with @prefix (asserted to exist); malloc'd.
 * *key gets that key. */
static char *value_at_prefix(ef_store *st, const char *prefix, key_buf *key)
{
	struct prefix_ctx c = {prefix, NULL, key};
	store_val g;

	key_group(prefix, strlen(prefix), &g); /* the prefix names the owner */
	assert_int_equal(store_read_in(st->env, &g, prefix_txn, &c), EF_OK);
	return c.val;
}

static ef_migrate_stats migrate(ef_store *st, int dry)
{
	ef_migrate_opts o = {0};
	ef_migrate_stats s;

	o.dry_run = dry;
	assert_int_equal(ef_migrate(st, &o, &s), EF_OK);
	return s;
}

static void test_migrate_pages_identical_before_and_after(void **state)
{
	fx *f = *state;
	char *before, *before2, *after, *after2;
	ef_migrate_stats s;

	put_legacy(f->st, "alice@example.com", fixture);
	/* an unread marker from the old design, and one for a read entry */
	th_put_raw(f->st, "unread:alice@example.com:r-offset", "x", 1);
	before = feed_text(f->st, "Alice@Example.com", 50);
	before2 = feed_text(f->st, "alice@example.com", 2);
	s = migrate(f->st, 0);
	after = feed_text(f->st, "alice@example.com", 50);
	after2 = feed_text(f->st, "alice@example.com", 2);
	assert_string_equal(before, after);
	assert_string_equal(before2, after2);
	assert_string_equal(before, before2);
	assert_int_equal(s.owners, 1);
	assert_int_equal(s.elements, 12);
	/* 0,1,2,4,7,10,11 convert; 3 merges; 5,6,8,9 quarantine */
	assert_int_equal(s.migrated, 7);
	assert_int_equal(s.duplicates, 1);
	assert_int_equal(s.quarantined, 4);
	assert_int_equal(s.kept_without_ip, 1);
	assert_int_equal(s.markers_kept, 1);
	/* the stale element was trimmed at once; its entry is not there */
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 6);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	assert_int_equal(th_count_prefix(f->st, "quarantine:"), 1);
	th_assert_consistent(f->st);
	/* no markers were created for legacy entries: only the old one */
	assert_int_equal(th_count_prefix(f->st, "unread:"), 1);
	assert_non_null(strstr(before, "\"r-offset\""));
	assert_non_null(strstr(before, "\"id\":\"legacy-"));
	assert_non_null(strstr(before, "\"ip\":\"203.0.113.9\""));
	assert_null(strstr(before, "r-badtime"));
	assert_null(strstr(before, "r-deep"));
	assert_null(strstr(before, "\"dup\""));
	free(before);
	free(before2);
	free(after);
	free(after2);
}

static void test_migrate_legacy_id_is_deterministic(void **state)
{
	fx *f = *state;
	const char *el = "{\"createdAt\":\"2026-09-20T00:00:00Z\","
			 "\"fileName\":\"anon.txt\"}";
	char canon[] = "{\"createdAt\":\"2026-09-20T00:00:00Z\","
		       "\"fileName\":\"anon.txt\"}";
	unsigned char h[crypto_generichash_BYTES];
	char hex[2 * sizeof(h) + 1], want[100], arr[200];
	ef_entry *e;

	snprintf(arr, sizeof(arr), "[%s]", el);
	put_legacy(f->st, "b@x", arr);
	crypto_generichash(h, sizeof(h), (unsigned char *)canon,
			   strlen(canon), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(want, sizeof(want), "legacy-%s", hex);
	assert_int_equal(ef_get_entry(f->st, "b@x", want, &e), EF_OK);
	assert_string_equal(e->reservation_id, want);
	ef_entry_free(e);
	migrate(f->st, 0);
	assert_int_equal(ef_get_entry(f->st, "b@x", want, &e), EF_OK);
	ef_entry_free(e);
}

static void test_migrate_duplicate_finalize_across_the_boundary(void **state)
{
	fx *f = *state;
	ef_receive r = {"alice@example.com", "r-new", T0, NULL, "{\"late\":1}"};
	ef_entry *e;

	put_legacy(f->st, "alice@example.com", fixture);
	/* before: the legacy array already has it */
	assert_int_equal(ef_finalize(f->st, &r), EF_EXISTS);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 0);
	/* a reservation only finalized now is new */
	r.reservation_id = "r-fresh";
	assert_int_equal(ef_finalize(f->st, &r), EF_OK);
	migrate(f->st, 0);
	/* after: the record has it */
	r.reservation_id = "r-new";
	assert_int_equal(ef_finalize(f->st, &r), EF_EXISTS);
	r.reservation_id = "r-fresh";
	assert_int_equal(ef_finalize(f->st, &r), EF_EXISTS);
	assert_int_equal(ef_get_entry(f->st, "alice@example.com", "r-new", &e),
			 EF_OK);
	assert_string_equal(e->payload_json,
			    "{\"fileName\":\"a.pdf\",\"size\":123,"
			    "\"senderEmail\":\"s@example.org\"}");
	ef_entry_free(e);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:alice@example.com:r-new"),
			 1);
	/* an old writer recreates the array with the same element: the next
	 * run merges it, and there is still exactly one entry */
	put_legacy(f->st, "alice@example.com",
		   "[{\"reservationId\":\"r-new\",\"createdAt\":1},"
		   "{\"reservationId\":\"r-later\",\"createdAt\":1789990000001}]");
	migrate(f->st, 0);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:alice@example.com:r-new"),
			 1);
	assert_int_equal(ef_get_entry(f->st, "alice@example.com", "r-later", &e),
			 EF_OK);
	ef_entry_free(e);
	th_assert_consistent(f->st);
}

static void test_migrate_quarantine_keeps_the_original_bytes(void **state)
{
	fx *f = *state;
	const char *bad[] = {
		"this is not json",
		"{\"an\":\"object\"}",
		"[{\"reservationId\":\"x\",\"createdAt\":\"\\ud800\"}]",
		"[1,2,3]",
	};
	char owner[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(owner, sizeof(owner), "q%zu@x", i);
		put_legacy(f->st, owner, bad[i]);
	}
	/* raw bytes that are not even UTF-8 */
	th_put_raw(f->st, "recentReceives:q9@x", "\xff\xfe[\x01", 4);
	migrate(f->st, 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	assert_int_equal(th_count_prefix(f->st, "quarantine:"), 5);
	th_assert_consistent(f->st);
	for (size_t i = 0; i <= sizeof(bad) / sizeof(*bad); i++) {
		const char *want = i < 4 ? bad[i] : "\xff\xfe[\x01";
		size_t wlen = i < 4 ? strlen(bad[i]) : 4, n;
		size_t qi = i < 4 ? i : 9;
		unsigned char raw[256];
		char prefix[64], *val;
		key_buf qkey;
		json_t *j, *reasons;
		ef_page p;

		snprintf(prefix, sizeof(prefix), "quarantine:q%zu@x:", qi);
		val = value_at_prefix(f->st, prefix, &qkey);
		j = json_loads(val, 0, NULL);
		assert_non_null(j);
		/* the exact bytes, whatever they were, opened from their
		 * sealed form */
		{
			uint8_t *r;
			assert_int_equal(quarantine_raw(f->st, qkey.s, qkey.len,
							j, f->now, &r, &n),
					 EF_OK);
			assert_true(n <= sizeof(raw));
			memcpy(raw, r, n);
			free(r);
		}
		assert_int_equal(n, wlen);
		assert_memory_equal(raw, want, wlen);
		/* and the reason */
		reasons = json_object_get(j, "reasons");
		assert_true(json_array_size(reasons) >= 1);
		assert_non_null(json_string_value(
			json_object_get(json_array_get(reasons, 0), "reason")));
		json_decref(j);
		free(val);
		/* nothing of it shows in the feed */
		snprintf(prefix, sizeof(prefix), "q%zu@x", qi);
		assert_int_equal(ef_feed_page(f->st, prefix, NULL, 10, &p), EF_OK);
		assert_int_equal(p.count, 0);
		ef_page_free(&p);
	}
}

static void test_migrate_rerun_and_dry_run_change_nothing(void **state)
{
	fx *f = *state;
	char *d0, *d1, *d2;
	ef_migrate_stats s;

	put_legacy(f->st, "alice@example.com", fixture);
	put_legacy(f->st, "bob@example.com", "[{\"reservationId\":\"b1\","
					     "\"createdAt\":1789990000000}]");
	d0 = th_dump(f->st);
	s = migrate(f->st, 1);
	assert_int_equal(s.owners, 2);
	assert_int_equal(s.migrated, 8);
	d1 = th_dump(f->st);
	assert_string_equal(d0, d1); /* the dry run wrote nothing */
	migrate(f->st, 0);
	free(d1);
	d1 = th_dump(f->st);
	s = migrate(f->st, 0);
	assert_int_equal(s.owners, 0);
	assert_int_equal(s.migrated, 0);
	d2 = th_dump(f->st);
	assert_string_equal(d1, d2);
	free(d0);
	free(d1);
	free(d2);
}

/* Violations that ef_check reports, by what. */
typedef struct check_seen {
	int legacy_not_canonical;
	int other;
} check_seen;

static void on_violation(const char *what, const char *key, void *ctx)
{
	check_seen *cs = ctx;

	(void)key;
	if (strstr(what, "legacy") && strstr(what, "not in canonical form"))
		cs->legacy_not_canonical++;
	else
		cs->other++;
}

/* The owner of a legacy key already in the store (an old-version writer
 * spelled it its own way) follows the rule of import: only the canonical
 * spelling is the owner's; the others are quarantined whole, never merged
 * into the owner's feed. */
static void test_migrate_non_canonical_legacy_keys_are_quarantined(void **state)
{
	fx *f = *state;
	static const char *const spellings[] = {
		"Carol@Example.COM", "carol@example.com%20",
		"%20carol@example.com", "carol@example.com ", "carol:x",
		"carol%3ax", "carol@example.com%0A", "%20",
	};
	const size_t n = sizeof(spellings) / sizeof(*spellings);
	ef_check_opts co = {0};
	check_seen cs = {0};
	ef_migrate_stats s;
	char *text, val[200];

	put_legacy(f->st, "carol@example.com",
		   "[{\"reservationId\":\"c1\",\"createdAt\":1789990000000}]");
	for (size_t i = 0; i < n; i++) {
		snprintf(val, sizeof(val),
			 "[{\"reservationId\":\"evil%zu\",\"createdAt\":"
			 "1789990000001}]", i);
		put_legacy(f->st, spellings[i], val);
	}
	/* check says which legacy keys no owner will ever read */
	co.report = on_violation;
	co.report_ctx = &cs;
	assert_int_equal(ef_check(f->st, &co, NULL), EF_OK);
	assert_int_equal(cs.legacy_not_canonical, (int)n);
	assert_int_equal(cs.other, 0);
	s = migrate(f->st, 0);
	assert_int_equal(s.migrated, 1);
	text = feed_text(f->st, "carol@example.com", 50);
	assert_non_null(strstr(text, "\"c1\""));
	assert_null(strstr(text, "evil"));
	free(text);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:carol@example.com:"),
			 1);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:"), 1);
	/* kept whole, under no owner, the legacy keys gone */
	assert_int_equal(th_count_prefix(f->st, "quarantine:-:"), n);
	assert_int_equal(th_count_prefix(f->st, "quarantine:"), n);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	th_assert_consistent(f->st);
}

static void test_migrate_cap_applies_across_records_and_legacy(void **state)
{
	fx *f = *state;
	ef_store *small = open_cap(f, 3);
	char *before, *after;
	ef_receive r = {"d@x", "rec-1", 1789995000000, NULL, NULL};

	put_legacy(small, "d@x",
		   "[{\"reservationId\":\"l1\",\"createdAt\":1789990000004},"
		   "{\"reservationId\":\"l2\",\"createdAt\":1789990000003},"
		   "{\"reservationId\":\"l3\",\"createdAt\":1789990000002}]");
	assert_int_equal(ef_finalize(small, &r), EF_OK);
	before = feed_text(small, "d@x", 1);
	assert_null(strstr(before, "\"l3\"")); /* fourth newest: over cap */
	migrate(small, 0);
	after = feed_text(small, "d@x", 1);
	assert_string_equal(before, after);
	assert_int_equal(th_count_prefix(small, "recentReceive:"), 3);
	free(before);
	free(after);
	ef_close(small);
}

static void test_migrate_then_compact_leaves_no_plaintext_ip(void **state)
{
	fx *f = *state;
	/* IPs in elements that migrate, that migrate without their ip, and
	 * that are quarantined whole (a bad createdAt) */
	const char *arr =
		"[{\"reservationId\":\"p1\",\"createdAt\":1789990000000,"
		"\"ip\":\"203.0.113.77\"},"
		"{\"reservationId\":\"p2\",\"createdAt\":1789990000000,"
		"\"ip\":\"2001:db8::77\"},"
		"{\"reservationId\":\"p3\",\"createdAt\":\"bad\","
		"\"ip\":\"198.51.100.77\"}]";
	const uint8_t v4[4] = {203, 0, 113, 77};
	const uint8_t q4[4] = {198, 51, 100, 77};
	const char *texts[] = {"203.0.113.77", "2001:db8::77", "198.51.100.77"};
	ef_compact_stats cs;
	ef_page p;
	char *hit;

	th_lmdb_only(); /* compact and data.mdb are LMDB's */

	put_legacy(f->st, "ip@x", arr);
	/* before: the plaintext is in the file */
	hit = th_dir_find(f->dir, "203.0.113.77", 12);
	assert_non_null(hit);
	free(hit);
	migrate(f->st, 0);
	/* the entries still show their IPs (sealed, within retention) */
	assert_int_equal(ef_feed_page(f->st, "ip@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_non_null(p.entries[0].ip);
	ef_page_free(&p);
	assert_int_equal(ef_compact(f->st, &cs), EF_OK);
	for (size_t i = 0; i < 3; i++) {
		hit = th_dir_find(f->dir, texts[i], strlen(texts[i]));
		if (hit)
			fail_msg("'%s' is still in %s", texts[i], hit);
	}
	hit = th_dir_find(f->dir, v4, 4);
	assert_null(hit);
	hit = th_dir_find(f->dir, q4, 4);
	assert_null(hit);
	/* and the quarantined element's bytes still open, IP and all */
	{
		key_buf qkey;
		char *val = value_at_prefix(f->st, "quarantine:ip@x:", &qkey);
		json_t *j = json_loads(val, 0, NULL);
		uint8_t *raw;
		size_t n;

		assert_int_equal(quarantine_raw(f->st, qkey.s, qkey.len, j,
						f->now, &raw, &n),
				 EF_OK);
		assert_int_equal(n, strlen(arr));
		assert_memory_equal(raw, arr, n);
		free(raw);
		json_decref(j);
		free(val);
	}
	th_assert_consistent(f->st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_migrate_pages_identical_before_and_after, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_legacy_id_is_deterministic, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_duplicate_finalize_across_the_boundary,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_quarantine_keeps_the_original_bytes, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_rerun_and_dry_run_change_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_non_canonical_legacy_keys_are_quarantined, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_cap_applies_across_records_and_legacy,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_then_compact_leaves_no_plaintext_ip, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-finalize.c - ef_finalize: idempotent, all-or-nothing, validated,
 * trimming cap and staleness in the same transaction.
 */
#include "tests/helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "feed/cqueue.h"
#include "feed/feed.h"

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL /* 2026-09-21 */

typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

static int setup_cap(void **state, uint32_t cap)
{
	fx *f = calloc(1, sizeof(*f));
	ef_config cfg = {0};

	f->dir = th_store();
	f->now = T0;
	cfg.feed_cap = cap;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	f->st = th_open(f->dir, &cfg);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_cap(state, 0);
}

static int setup_cap5(void **state)
{
	return setup_cap(state, 5);
}

/* A directory only: the test opens its store itself. */
static int setup_dir(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->dir = th_store();
	*state = f;
	return 0;
}

static int teardown_dir(void **state)
{
	fx *f = *state;

	th_cleanup(f->dir);
	free(f);
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

static int fin(fx *f, const char *owner, const char *rid, int64_t created,
	       const char *ip, const char *payload)
{
	ef_receive r = {owner, rid, created, ip, payload};
	return ef_finalize(f->st, &r);
}

static void test_finalize_writes_entry_index_and_marker(void **state)
{
	fx *f = *state;
	ef_entry *e = NULL;

	assert_int_equal(fin(f, "alice@example.com", "r1", T0 - 1000,
			     "203.0.113.9", "{\"fileName\":\"a.pdf\"}"),
			 EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 1);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:"), 1);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 1);
	assert_int_equal(ef_get_entry(f->st, "alice@example.com", "r1", &e),
			 EF_OK);
	assert_string_equal(e->reservation_id, "r1");
	assert_true(e->created_ms == T0 - 1000);
	assert_string_equal(e->ip, "203.0.113.9");
	assert_string_equal(e->payload_json, "{\"fileName\":\"a.pdf\"}");
	assert_int_equal(e->unread, 1);
	ef_entry_free(e);
}

static void test_finalize_key_layout_matches_design(void **state)
{
	fx *f = *state;
	char *dump;

	assert_int_equal(fin(f, " Bob Smith@X.org ", "id:1%", T0, NULL, NULL),
			 EF_OK);
	dump = th_dump(f->st);
	/* createdSort of T0 is 9999999999999 - T0; ':' '%' ' ' escaped */
	assert_non_null(strstr(dump, "recentReceive:bob%20smith@x.org:"
				     "8209999999999:id%3A1%25\t"));
	assert_non_null(strstr(dump, "receiveIndex:bob%20smith@x.org:"
				     "id%3A1%25\t"));
	assert_non_null(strstr(dump, "unread:bob%20smith@x.org:id%3A1%25\t"));
	free(dump);
}

static void test_finalize_duplicate_returns_exists_and_changes_nothing(
	void **state)
{
	fx *f = *state;
	char *before, *after;

	assert_int_equal(fin(f, "alice@example.com", "r1", T0 - 5, "192.0.2.1",
			     "{\"a\":1}"),
			 EF_OK);
	assert_int_equal(ef_mark_read(f->st, "alice@example.com", "r1"), EF_OK);
	before = th_dump(f->st);
	/* other fields, other spelling of the owner: still the same entry */
	assert_int_equal(fin(f, "alice@example.com", "r1", T0 - 5, "192.0.2.1",
			     "{\"a\":1}"),
			 EF_EXISTS);
	assert_int_equal(fin(f, "  ALICE@Example.com\t", "r1", T0 - 99999,
			     "2001:db8::1", "{\"b\":2}"),
			 EF_EXISTS);
	assert_int_equal(fin(f, "alice@example.com", "r1", 0, NULL, NULL),
			 EF_EXISTS);
	after = th_dump(f->st);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* reservation ids are case-sensitive: R1 is another reservation */
	assert_int_equal(fin(f, "alice@example.com", "R1", T0, NULL, NULL),
			 EF_OK);
}

static void test_finalize_bad_input_returns_einval_and_writes_nothing(
	void **state)
{
	fx *f = *state;
	char big_owner[400], big_rid[200], *big_payload;
	char *before, *after;
	struct {
		const char *owner, *rid;
		int64_t created;
		const char *ip, *payload, *field;
	} cases[] = {
		{NULL, "r", 0, NULL, NULL, "owner"},
		{"", "r", 0, NULL, NULL, "owner"},
		{" \t ", "r", 0, NULL, NULL, "owner"},
		{"a\x01" "b", "r", 0, NULL, NULL, "owner"},
		{"a\x7f", "r", 0, NULL, NULL, "owner"},
		{"ab\xc3(", "r", 0, NULL, NULL, "owner"},
		{big_owner, "r", 0, NULL, NULL, "owner"},
		{"a@x", NULL, 0, NULL, NULL, "reservation_id"},
		{"a@x", "", 0, NULL, NULL, "reservation_id"},
		{"a@x", "r\n1", 0, NULL, NULL, "reservation_id"},
		{"a@x", "\xed\xa0\x80", 0, NULL, NULL, "reservation_id"},
		{"a@x", big_rid, 0, NULL, NULL, "reservation_id"},
		{"a@x", "r", -1, NULL, NULL, "created_ms"},
		{"a@x", "r", EF_CREATED_MAX + 1, NULL, NULL, "created_ms"},
		{"a@x", "r", 0, "256.1.1.1", NULL, "ip"},
		{"a@x", "r", 0, "example.com", NULL, "ip"},
		{"a@x", "r", 0, "", NULL, "ip"},
		{"a@x", "r", 0, NULL, "[1,2]", "payload_json"},
		{"a@x", "r", 0, NULL, "\"text\"", "payload_json"},
		{"a@x", "r", 0, NULL, "{", "payload_json"},
		{"a@x", "r", 0, NULL, "{\"a\":1,\"a\":2}", "payload_json"},
		{"a@x", "r", 0, NULL, "{\"a\":\"\xff\"}", "payload_json"},
		{"a@x", "r", 0, NULL, NULL /* big */, "payload_json"},
	};
	size_t n = sizeof(cases) / sizeof(*cases);

	memset(big_owner, 'o', 321);
	big_owner[321] = '\0';
	memset(big_rid, 'r', 161);
	big_rid[161] = '\0';
	big_payload = malloc(EF_PAYLOAD_MAX + 16);
	assert_non_null(big_payload);
	strcpy(big_payload, "{\"x\":\"");
	memset(big_payload + 6, 'y', EF_PAYLOAD_MAX);
	strcpy(big_payload + 6 + EF_PAYLOAD_MAX, "\"}");
	cases[n - 1].payload = big_payload;

	assert_int_equal(fin(f, "seed@x", "s", T0, NULL, NULL), EF_OK);
	before = th_dump(f->st);
	for (size_t i = 0; i < n; i++) {
		int rc = fin(f, cases[i].owner, cases[i].rid, cases[i].created,
			     cases[i].ip, cases[i].payload);
		if (rc != EF_EINVAL)
			fail_msg("case %zu: got %s", i, ef_err_name(rc));
		if (strncmp(ef_errmsg(f->st), cases[i].field,
			    strlen(cases[i].field)) != 0)
			fail_msg("case %zu: message '%s' does not name '%s'", i,
				 ef_errmsg(f->st), cases[i].field);
	}
	assert_int_equal(ef_finalize(f->st, NULL), EF_EINVAL);
	after = th_dump(f->st);
	assert_string_equal(before, after);
	free(before);
	free(after);
	free(big_payload);
}

static void test_finalize_accepts_inputs_at_the_limits(void **state)
{
	fx *f = *state;
	static char payload[EF_PAYLOAD_MAX + 1];
	char owner[400], rid[200];

	memset(owner, 'o', 320);
	owner[320] = '\0';
	memset(rid, 'r', 160);
	rid[160] = '\0';
	strcpy(payload, "{\"x\":\"");
	memset(payload + 6, 'y', EF_PAYLOAD_MAX - 8);
	strcpy(payload + EF_PAYLOAD_MAX - 2, "\"}");
	assert_int_equal(strlen(payload), EF_PAYLOAD_MAX);
	f->now = EF_CREATED_MAX; /* never ahead of the clock */
	assert_int_equal(fin(f, owner, rid, EF_CREATED_MAX, NULL, payload),
			 EF_OK);
	assert_int_equal(fin(f, "a@x", "r", 1, NULL, NULL), EF_OK);
}

static void test_finalize_created_zero_means_store_clock(void **state)
{
	fx *f = *state;
	ef_entry *e;

	assert_int_equal(fin(f, "a@x", "r", 0, NULL, NULL), EF_OK);
	assert_int_equal(ef_get_entry(f->st, "a@x", "r", &e), EF_OK);
	assert_true(e->created_ms == T0);
	ef_entry_free(e);
}

static void test_finalize_keeps_payload_bytes_and_canonical_ip(void **state)
{
	fx *f = *state;
	const char *payload = "{ \"size\" : 1.50e3 ,\"n\":\"\\u00e9\" , "
			      "\"deep\":{\"x\":[]} }";
	ef_entry *e;

	assert_int_equal(fin(f, "a@x", "r", T0, "2001:DB8:0:0:0:0:0:1",
			     payload),
			 EF_OK);
	assert_int_equal(ef_get_entry(f->st, "a@x", "r", &e), EF_OK);
	assert_string_equal(e->payload_json, payload);
	assert_string_equal(e->ip, "2001:db8::1");
	ef_entry_free(e);
	assert_int_equal(fin(f, "a@x", "r2", T0, NULL, NULL), EF_OK);
	assert_int_equal(ef_get_entry(f->st, "a@x", "r2", &e), EF_OK);
	assert_null(e->payload_json);
	assert_null(e->ip);
	ef_entry_free(e);
}

static void test_finalize_enforces_cap_in_the_same_transaction(void **state)
{
	fx *f = *state; /* cap 5 */
	char rid[16];
	ef_page p;

	for (int i = 0; i < 8; i++) {
		snprintf(rid, sizeof(rid), "r%d", i);
		assert_int_equal(fin(f, "a@x", rid, T0 - 1000 + i, NULL, NULL),
				 EF_OK);
		/* after every commit the store itself holds at most the cap */
		assert_true(th_count_prefix(f->st, "recentReceive:a@x:") <= 5);
	}
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 5);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:"), 5);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 5);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 5);
	assert_string_equal(p.entries[0].reservation_id, "r7");
	assert_string_equal(p.entries[4].reservation_id, "r3");
	ef_page_free(&p);
	/* an older entry than the cap keeps is not kept; its index went too,
	 * so the store stays consistent */
	assert_int_equal(fin(f, "a@x", "old", T0 - 5000, NULL, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 5);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:"), 5);
	/* other owners are not touched */
	assert_int_equal(fin(f, "b@x", "r0", T0 - 9000, NULL, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:b@x:"), 1);
}

static void test_finalize_deletes_stale_entries_of_that_owner(void **state)
{
	fx *f = *state;

	assert_int_equal(fin(f, "a@x", "old1", T0 - 10 * DAY, NULL, NULL), EF_OK);
	assert_int_equal(fin(f, "a@x", "old2", T0 - 9 * DAY, NULL, NULL), EF_OK);
	assert_int_equal(fin(f, "b@x", "old", T0 - 10 * DAY, NULL, NULL), EF_OK);
	f->now = T0 + EF_DEFAULT_FEED_TTL_MS - 9 * DAY + 1; /* both a@x stale */
	assert_int_equal(th_count_prefix(f->st, "recentReceive:a@x:"), 2);
	assert_int_equal(fin(f, "a@x", "new", 0, NULL, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:a@x:"), 1);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:a@x:"), 1);
	assert_int_equal(th_count_prefix(f->st, "unread:a@x:"), 1);
	/* b@x is stale too but nobody wrote to it: left for sweep */
	assert_int_equal(th_count_prefix(f->st, "recentReceive:b@x:"), 1);
}

static void test_finalize_on_read_only_store_is_refused(void **state)
{
	fx *f = *state;
	ef_config cfg = {0};
	ef_store *ro;
	ef_receive r = {"a@x", "r", 0, NULL, NULL};

	assert_int_equal(fin(f, "a@x", "q", T0, NULL, NULL), EF_OK);
	cfg.flags = EF_RDONLY;
	ro = th_open(f->dir, &cfg);
	assert_int_equal(ef_finalize(ro, &r), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(ro), "read-only"));
	ef_close(ro);
}

/* The same calls, one batch and one by one: the same results, and the same
 * store, byte for byte (sealed IPs compared by what they open to). */
static void test_finalize_batch_gives_each_its_own_calls_result(void **state)
{
	fx *f = *state, *g;
	ef_receive rs[] = {
		{"a@x", "before", T0 - 5, "192.0.2.1", NULL},
		{"a@x", "one", T0 - 4, "192.0.2.1", "{\"n\":1}"},
		{"B@X ", "two", T0 - 3, NULL, NULL},
		{"a@x", "one", T0 - 2, "192.0.2.9", "{\"n\":2}"}, /* dup */
		{"a@x", "bad", T0 - 1, "not-an-ip", NULL},
		{"a@x", "now", 0, NULL, NULL},  /* 0: the store's clock */
		{"", "no-owner", T0, NULL, NULL},
		{"a@x", "before", T0, NULL, NULL}, /* finalized earlier */
	};
	enum { N = sizeof(rs) / sizeof(rs[0]) };
	int rcs[N], one[N];
	char *d1, *d2;

	assert_int_equal(ef_finalize(f->st, &rs[0]), EF_OK);
	assert_int_equal(ef_finalize_batch(f->st, rs + 1, N - 1, rcs + 1),
			 EF_OK);
	setup(state); /* a second store, the same calls one by one */
	g = *state;
	for (size_t i = 0; i < N; i++)
		one[i] = ef_finalize(g->st, &rs[i]);
	for (size_t i = 1; i < N; i++)
		if (rcs[i] != one[i])
			fail_msg("receive %zu: batch %s, alone %s", i,
				 ef_err_name(rcs[i]), ef_err_name(one[i]));
	assert_int_equal(rcs[3], EF_EXISTS);
	assert_int_equal(rcs[4], EF_EINVAL);
	assert_int_equal(rcs[7], EF_EXISTS);
	d1 = th_dump(f->st);
	d2 = th_dump(g->st);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	th_assert_consistent(f->st);
	teardown(state);
	*state = f;
}

/* Through group commit's queue (durable, every request in a slot: the
 * lone way turned off), whose leader takes slots in slot order, not in the
 * order of the calls: a batch that names a reservation twice still gives
 * the first call "created" and its payload, the later ones "duplicate". */
static void test_finalize_batch_through_the_queue_keeps_call_order(
	void **state)
{
	fx *f = *state;
	ef_config cfg = {0};
	ef_store *st;
	cq_stats cs;

	th_lmdb_only(); /* the commit queue is LMDB's */
	(void)f;

	cfg.feed_cap = 1000; /* durable, group commit: the default */
	st = th_open(f->dir, &cfg);
	cqueue__never_alone(1);
	for (int round = 0; round < 20; round++) {
		char rids[6][16], pls[6][24];
		static const int who[6] = {0, 1, 0, 2, 1, 0};
		static const int want[6] = {EF_OK, EF_OK, EF_EXISTS, EF_OK,
					    EF_EXISTS, EF_EXISTS};
		ef_receive rs[6];
		int rcs[6];
		ef_entry *e;

		for (int i = 0; i < 6; i++) {
			snprintf(rids[i], sizeof(rids[i]), "r%d-%d", round,
				 who[i]);
			snprintf(pls[i], sizeof(pls[i]), "{\"call\":%d}", i);
			rs[i] = (ef_receive){"q@x", rids[i], T0 + round,
					     NULL, pls[i]};
		}
		assert_int_equal(ef_finalize_batch(st, rs, 6, rcs), EF_OK);
		for (int i = 0; i < 6; i++)
			if (rcs[i] != want[i])
				fail_msg("round %d call %d: %s", round, i,
					 ef_err_name(rcs[i]));
		assert_int_equal(ef_get_entry(st, "q@x", rids[0], &e), EF_OK);
		assert_string_equal(e->payload_json, "{\"call\":0}");
		ef_entry_free(e);
		assert_int_equal(ef_get_entry(st, "q@x", rids[1], &e), EF_OK);
		assert_string_equal(e->payload_json, "{\"call\":1}");
		ef_entry_free(e);
	}
	cqueue__never_alone(0);
	assert_int_equal(cqueue_peek(f->dir, &cs), EF_OK);
	assert_true(cs.batched >= 20 * 6); /* it did go through the queue */
	assert_int_equal(cs.used, 0);
	th_assert_consistent(st);
	ef_close(st);
}

static void test_finalize_batch_refuses_bad_sizes(void **state)
{
	fx *f = *state;
	ef_receive r = {"a@x", "r", T0, NULL, NULL};
	int rc = 7;

	assert_int_equal(ef_finalize_batch(f->st, &r, 0, &rc), EF_EINVAL);
	assert_int_equal(ef_finalize_batch(f->st, &r, EF_BATCH_MAX + 1, &rc),
			 EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->st), "batch"));
	assert_int_equal(ef_finalize_batch(f->st, NULL, 1, &rc), EF_EINVAL);
	assert_int_equal(ef_finalize_batch(f->st, &r, 1, NULL), EF_EINVAL);
	assert_int_equal(ef_finalize_batch(NULL, &r, 1, &rc), EF_EINVAL);
	assert_int_equal(rc, 7); /* no result set */
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 0);
}

/* 4 processes finalize the same 200 reservations in batches, each in its
 * own order: each reservation is created by exactly one call, and all are
 * there. */
static void test_finalize_batch_processes_create_each_once(void **state)
{
	fx *f = *state;
	char ledger[4200];
	int fd, created[200] = {0};
	pid_t pids[4];
	FILE *in;
	unsigned rid, rc;

	char *tmp = th_tmpdir(); /* the store may be on a cluster */

	snprintf(ledger, sizeof(ledger), "%s/ledger", tmp);
	fd = open(ledger, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(fd >= 0);
	for (int p = 0; p < 4; p++) {
		pids[p] = th_fork(60);
		if (pids[p] != 0)
			continue;
		ef_config cfg = {0};
		ef_store *st;
		cfg.feed_cap = 1000; /* no trim: a trimmed id is created again */
		st = th_open(f->dir, &cfg);
		for (int b = 0; b < 200; b += 16) {
			char ids[16][16];
			ef_receive rs[16];
			int rcs[16], n = 0;
			for (int k = b; k < b + 16 && k < 200; k++, n++) {
				int id = (k * (p + 1) * 7 + p) % 200;
				snprintf(ids[n], sizeof(ids[n]), "r%d", id);
				rs[n] = (ef_receive){"o@x", ids[n], T0 + id,
						     NULL, NULL};
			}
			if (ef_finalize_batch(st, rs, (size_t)n, rcs) != EF_OK)
				_exit(1);
			for (int k = 0; k < n; k++) {
				char line[32];
				int len = snprintf(line, sizeof(line), "%s %d\n",
						   ids[k] + 1, rcs[k]);
				if (rcs[k] < 0 ||
				    write(fd, line, (size_t)len) != len)
					_exit(2);
			}
		}
		ef_close(st);
		_exit(0);
	}
	for (int p = 0; p < 4; p++) {
		int status;
		assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(fd);
	in = fopen(ledger, "r");
	assert_non_null(in);
	while (fscanf(in, "%u %u", &rid, &rc) == 2) {
		assert_true(rid < 200);
		if (rc == EF_OK)
			created[rid]++;
	}
	fclose(in);
	for (int i = 0; i < 200; i++) /* child 0 alone covers every id */
		assert_int_equal(created[i], 1);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:o@x:"),
			 th_count_prefix(f->st, "recentReceive:o@x:"));
	{
		int total = 0;
		for (int i = 0; i < 200; i++)
			total += created[i];
		assert_int_equal((size_t)total,
				 th_count_prefix(f->st, "recentReceive:o@x:"));
	}
	th_assert_consistent(f->st);
	th_cleanup(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_finalize_writes_entry_index_and_marker, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_batch_gives_each_its_own_calls_result,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_batch_refuses_bad_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_batch_through_the_queue_keeps_call_order,
			setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(
			test_finalize_batch_processes_create_each_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_key_layout_matches_design, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_duplicate_returns_exists_and_changes_nothing,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_bad_input_returns_einval_and_writes_nothing,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_accepts_inputs_at_the_limits, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_created_zero_means_store_clock, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_keeps_payload_bytes_and_canonical_ip,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_enforces_cap_in_the_same_transaction,
			setup_cap5, teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_deletes_stale_entries_of_that_owner, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_on_read_only_store_is_refused, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-cli.c - the edgefeed command: outputs, exit codes, and messages
 * that name what was wrong.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = th_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_cleanup(dir);
	return 0;
}

/* Fill @argv with edgefeed --db DIR and the arguments of @ap, up to 12
 * (NULL-terminated); the index of the last. */
static int argv_of(char *argv[16], va_list ap)
{
	int i = 0;

	argv[i++] = (char *)th_program("EDGEFEED_BIN");
	argv[i++] = "--db";
	argv[i++] = dir;
	while (i < 15 && (argv[i] = va_arg(ap, char *)) != NULL)
		i++;
	argv[i] = NULL;
	return i - 1;
}

/* Run edgefeed --db DIR with up to 12 more arguments (NULL-terminated). */
static int ef(char **out, char **err, ...)
{
	char *argv[16];
	va_list ap;

	va_start(ap, err);
	argv_of(argv, ap);
	va_end(ap);
	return th_run(argv, out, err);
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("not JSON (%s): %s", e.text, text);
	return j;
}

/* The system's clock as ISO-8601, @delta ms from now. */
static void real_iso(int64_t delta, char buf[EF_TIME_BUFSZ])
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	assert_int_equal(ef_time_format((int64_t)ts.tv_sec * 1000 +
						ts.tv_nsec / 1000000 + delta,
					buf),
			 EF_OK);
}

static void test_cli_finalize_prints_created_then_duplicate(void **state)
{
	char *out, *err, created[EF_TIME_BUFSZ];
	json_t *j, *e;
	int64_t ms;
	(void)state;

	real_iso(-3600 * 1000, created); /* an hour ago: kept, with its IP */
	assert_int_equal(ef_time_parse(created, &ms), EF_OK);
	assert_int_equal(ef(&out, &err, "finalize", "--owner", "Alice@X.org ",
			    "--reservation", "r1", "--created", created,
			    "--ip", "203.0.113.7",
			    "--payload", "{\"fileName\":\"a.pdf\"}", NULL),
			 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "status")),
			    "created");
	e = json_object_get(j, "entry");
	assert_string_equal(json_string_value(json_object_get(e, "reservationId")),
			    "r1");
	assert_string_equal(json_string_value(json_object_get(e, "createdAt")),
			    created);
	assert_true(json_integer_value(json_object_get(e, "createdMs")) == ms);
	assert_string_equal(json_string_value(json_object_get(e, "ip")),
			    "203.0.113.7");
	assert_true(json_is_boolean(json_object_get(e, "unread")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(e, "payload"), "fileName")),
			    "a.pdf");
	json_decref(j);
	free(out);
	free(err);
	/* a duplicate is a success, and shows the first write */
	assert_int_equal(ef(&out, &err, "finalize", "--owner", "alice@x.org",
			    "--reservation", "r1", "--payload", "{\"b\":1}",
			    NULL),
			 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "status")),
			    "duplicate");
	e = json_object_get(json_object_get(j, "entry"), "payload");
	assert_non_null(json_object_get(e, "fileName"));
	json_decref(j);
	free(out);
	free(err);
}

static void test_cli_feed_unread_and_mark_read(void **state)
{
	char *out, *err, *cursor;
	json_t *j;
	(void)state;

	assert_int_equal(ef(NULL, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r1", NULL), 0);
	assert_int_equal(ef(NULL, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r2", NULL), 0);
	assert_int_equal(ef(&out, &err, "feed", "--owner", "a@x", "--limit", "1",
			    NULL), 0);
	j = parse(out);
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 1);
	cursor = strdup(json_string_value(json_object_get(j, "nextCursor")));
	json_decref(j);
	free(out);
	free(err);
	assert_int_equal(ef(&out, &err, "feed", "--owner", "a@x", "--limit", "1",
			    "--cursor", cursor, NULL), 0);
	j = parse(out);
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 1);
	assert_true(json_is_null(json_object_get(j, "nextCursor")));
	json_decref(j);
	free(out);
	free(err);
	free(cursor);
	assert_int_equal(ef(&out, NULL, "unread", "--owner", " A@X", NULL), 0);
	assert_string_equal(out, "{\"owner\":\"a@x\",\"unread\":2}\n");
	free(out);
	assert_int_equal(ef(&out, NULL, "mark-read", "--owner", "a@x",
			    "--reservation", "r1", NULL), 0);
	assert_non_null(strstr(out, "\"unread\":1"));
	free(out);
	assert_int_equal(ef(&out, NULL, "mark-read", "--owner", "a@x", "--all",
			    NULL), 0);
	assert_non_null(strstr(out, "\"unread\":0"));
	free(out);
	assert_int_equal(ef(NULL, &err, "mark-read", "--owner", "a@x",
			    "--reservation", "nope", NULL), 1);
	assert_non_null(strstr(err, "nope"));
	free(err);
}

static void test_cli_bad_input_exits_2_naming_the_option(void **state)
{
	static const struct {
		const char *args[8];
		const char *needle;
	} cases[] = {
		{{"finalize", "--reservation", "r", NULL}, "--owner: missing"},
		{{"finalize", "--owner", "a", NULL}, "--reservation: missing"},
		{{"finalize", "--owner", "a\x01", "--reservation", "r", NULL},
		 "--owner: control character"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--ip",
		  "1.2.3", NULL},
		 "--ip: not an IPv4 or IPv6 address"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--payload",
		  "[]", NULL},
		 "--payload: must be a JSON object"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--created",
		  "soon", NULL},
		 "--created: not a time"},
		{{"feed", "--owner", "a", "--limit", "1001", NULL}, "--limit"},
		{{"feed", "--owner", "a", "--cursor", "zzz", NULL}, "--cursor"},
		{{"feed", NULL}, "--owner: missing"},
		{{"feed", "--owner", "a", "--bogus", NULL}, "--bogus"},
		{{"feed", "--owner", "a", "extra", NULL}, "unexpected argument"},
		{{"mark-read", "--owner", "a", NULL}, "exactly one of"},
		{{"mark-read", "--owner", "a", "--all", "--reservation", "r",
		  NULL},
		 "exactly one of"},
		{{"nonsense", NULL}, "'nonsense' is not a command"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *argv[16], *err;
		int n = 0, rc;

		argv[n++] = (char *)th_program("EDGEFEED_BIN");
		argv[n++] = "--db";
		argv[n++] = dir;
		for (int k = 0; cases[i].args[k]; k++)
			argv[n++] = (char *)cases[i].args[k];
		argv[n] = NULL;
		rc = th_run(argv, NULL, &err);
		if (rc != 2 || !strstr(err, cases[i].needle))
			fail_msg("case %zu: exit %d, stderr '%s', wanted 2 and "
				 "'%s'", i, rc, err, cases[i].needle);
		free(err);
	}
}

static void test_cli_help_and_version(void **state)
{
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--help", NULL};
	char *argv2[] = {(char *)th_program("EDGEFEED_BIN"), "--version", NULL};
	char *argv3[] = {(char *)th_program("EDGEFEED_BIN"), NULL};
	const char *cmds[] = {"init", "finalize", "feed", "unread",
			      "mark-read", "stat", "seed"};
	char *out;
	(void)state;

	assert_int_equal(th_run(argv, &out, NULL), 0);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++)
		assert_non_null(strstr(out, cmds[i]));
	assert_non_null(strstr(out, "--db DIR"));
	free(out);
	assert_int_equal(th_run(argv2, &out, NULL), 0);
	assert_non_null(strstr(out, EF_VERSION_STRING));
	free(out);
	assert_int_equal(th_run(argv3, NULL, NULL), 2);
	assert_int_equal(ef(&out, NULL, "feed", "--help", NULL), 0);
	assert_non_null(strstr(out, "feed --owner O"));
	free(out);
}

static void test_cli_init_and_stat_report_the_store(void **state)
{
	char *out, *err;
	json_t *j;
	(void)state;

	assert_int_equal(ef(&out, NULL, "init", NULL), 0);
	j = parse(out);
	assert_int_equal(json_integer_value(json_object_get(j, "format")), 1);
	json_decref(j);
	free(out);
	assert_int_equal(ef(NULL, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r", NULL), 0);
	assert_int_equal(ef(&out, NULL, "stat", NULL), 0);
	j = parse(out);
	assert_int_equal(json_integer_value(json_object_get(j, "entries")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "indexKeys")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "unreadMarkers")),
			 1);
	json_decref(j);
	free(out);
	/* a store path that is a file: init cannot make a store there (exit
	 * 2); to stat it holds no store (exit 1) */
	{
		char path[600];
		char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", path,
				"init", NULL};
		FILE *f;

		snprintf(path, sizeof(path), "%s/file", dir);
		f = fopen(path, "w");
		fclose(f);
		assert_int_equal(th_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "not a directory"));
		free(err);
		argv[3] = "stat";
		assert_int_equal(th_run(argv, NULL, &err), 1);
		assert_non_null(strstr(err, "no store at"));
		assert_non_null(strstr(err, "a file, not a directory"));
		free(err);
	}
}

/* Run edgefeed with the arguments after @opt (NULL-terminated): exit 2
 * and a message naming @opt, not quoting the IP. */
static void exits_2_naming(const char *opt, ...)
{
	char *argv[16], *err;
	va_list ap;
	int last, rc;

	va_start(ap, opt);
	last = argv_of(argv, ap);
	va_end(ap);
	rc = th_run(argv, NULL, &err);
	if (rc != 2 || !strstr(err, opt) || strstr(err, "192.0.2.1"))
		fail_msg("%s %s: exit %d, stderr '%s': wanted 2 naming %s",
			 argv[3], argv[last], rc, err, opt);
	free(err);
}

/* `sweep --now` (or `seed --now`) ahead of the real clock beyond the skew
 * is refused, in any spelling, and today's IPs stay readable: a finalize
 * after it still keeps its IP. Within the skew, sweep runs. */
static void test_cli_sweep_refuses_a_now_ahead_of_the_real_clock(
	void **state)
{
	char *out, hour[EF_TIME_BUFSZ], skew[EF_TIME_BUFSZ];
	static const char *const far[] = {
		"2200-01-01T00:00:00Z", "7258118400000", "9999999999999",
		"2286-11-20T17:46:39.999Z", "2200-01-01T00:00:00+14:00",
	};
	(void)state;

	real_iso(3600 * 1000, hour);
	real_iso(EF_CLOCK_SKEW_MS - 60000, skew);
	assert_int_equal(ef(&out, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r1", "--ip", "192.0.2.1", NULL),
			 0);
	free(out);
	for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
		exits_2_naming("--now: ", "sweep", "--now", far[i], NULL);
		exits_2_naming("--now: ", "seed", "--owners", "1",
			       "--receives", "1", "--now", far[i], NULL);
	}
	exits_2_naming("--now: ", "sweep", "--now", hour, NULL);
	assert_int_equal(ef(&out, NULL, "sweep", "--now", skew, NULL), 0);
	free(out);
	assert_int_equal(ef(&out, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r2", "--ip", "192.0.2.1", NULL),
			 0);
	assert_non_null(strstr(out, "\"ip\":\"192.0.2.1\""));
	free(out);
	assert_int_equal(ef(&out, NULL, "feed", "--owner", "a@x", NULL), 0);
	assert_null(strstr(out, "\"ip\":null"));
	free(out);
}

/* An explicit time is never replaced by another: --created (or --now) 0,
 * in any spelling, is refused rather than read as "now"; a time ahead of
 * the clock, or a leap second where none can be, is refused too. */
static void test_cli_finalize_refuses_times_it_cannot_keep(void **state)
{
	char *out, hour[EF_TIME_BUFSZ], past[EF_TIME_BUFSZ];
	static const char *const bad[] = {
		"0", "0000000000000", "1970-01-01T00:00:00Z",
		"1970-01-01T00:00:00.000Z", "1970-01-01T01:00:00+01:00",
		"1969-12-31T19:00:00-05:00",
		"9999999999999", "2286-11-20T17:46:39.999Z",
		"2100-01-01T00:00:00Z",
		"2026-05-06T12:30:60Z", "2026-05-06T23:59:60Z",
	};
	(void)state;

	real_iso(3600 * 1000, hour);
	real_iso(-60000, past);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		exits_2_naming("--created: ", "finalize", "--owner", "a@x",
			       "--reservation", "r", "--created", bad[i],
			       "--ip", "192.0.2.1", NULL);
	exits_2_naming("--created: ", "finalize", "--owner", "a@x",
		       "--reservation", "r", "--created", hour, NULL);
	exits_2_naming("--now: ", "sweep", "--now", "0", NULL);
	exits_2_naming("--now: ", "feed", "--owner", "a@x", "--now",
		       "1970-01-01T00:00:00Z", NULL);
	assert_int_equal(ef(&out, NULL, "finalize", "--owner", "a@x",
			    "--reservation", "r", "--created", past, NULL),
			 0);
	assert_non_null(strstr(out, past));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_cli_finalize_prints_created_then_duplicate, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_feed_unread_and_mark_read, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_bad_input_exits_2_naming_the_option, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_cli_help_and_version,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_init_and_stat_report_the_store, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_sweep_refuses_a_now_ahead_of_the_real_clock,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_finalize_refuses_times_it_cannot_keep, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

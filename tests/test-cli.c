/*
 * test-cli.c - the edgefeed command: outputs, exit codes, and messages
 * that name what was wrong.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Run edgefeed --db DIR with up to 12 more arguments (NULL-terminated). */
static int ef(char **out, char **err, ...)
{
	char *argv[16];
	va_list ap;
	int i = 0;

	argv[i++] = (char *)th_program("EDGEFEED_BIN");
	argv[i++] = "--db";
	argv[i++] = dir;
	va_start(ap, err);
	while (i < 15 && (argv[i] = va_arg(ap, char *)) != NULL)
		i++;
	va_end(ap);
	argv[i] = NULL;
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

static void test_cli_finalize_prints_created_then_duplicate(void **state)
{
	char *out, *err;
	json_t *j, *e;
	(void)state;

	assert_int_equal(ef(&out, &err, "finalize", "--owner", "Alice@X.org ",
			    "--reservation", "r1", "--created",
			    "2030-01-02T03:04:05.123Z", "--ip", "203.0.113.7",
			    "--payload", "{\"fileName\":\"a.pdf\"}", NULL),
			 0);
	j = parse(out);
	assert_string_equal(json_string_value(json_object_get(j, "status")),
			    "created");
	e = json_object_get(j, "entry");
	assert_string_equal(json_string_value(json_object_get(e, "reservationId")),
			    "r1");
	assert_string_equal(json_string_value(json_object_get(e, "createdAt")),
			    "2030-01-02T03:04:05.123Z");
	assert_true(json_integer_value(json_object_get(e, "createdMs")) ==
		    1893553445123LL);
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
		 "--ip: '1.2.3'"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--payload",
		  "[]", NULL},
		 "--payload: must be a JSON object"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--created",
		  "soon", NULL},
		 "--created: 'soon'"},
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-seed.c - `edgefeed seed`: deterministic data, serialized resets, and
 * the maintenance lock as the CLI shows it.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW "2026-11-23T12:00:00Z"

static int seed(const char *dir, const char *owners, const char *receives,
		const char *rng, int reset, char **out, char **err)
{
	char *argv[16];
	int i = 0;

	argv[i++] = (char *)th_program("EDGEFEED_BIN");
	argv[i++] = "--db";
	argv[i++] = (char *)dir;
	argv[i++] = "seed";
	argv[i++] = "--owners";
	argv[i++] = (char *)owners;
	argv[i++] = "--receives";
	argv[i++] = (char *)receives;
	argv[i++] = "--rng-seed";
	argv[i++] = (char *)rng;
	argv[i++] = "--now";
	argv[i++] = NOW;
	if (reset)
		argv[i++] = "--reset";
	argv[i] = NULL;
	return th_run(argv, out, err);
}

static char *dump_dir(const char *dir)
{
	ef_store *st = th_open(dir, NULL);
	char *d = th_dump(st);
	ef_close(st);
	return d;
}

static void test_seed_is_deterministic_for_seed_and_now(void **state)
{
	char *a = th_store(), *b = th_store(), *c = th_store();
	char *da, *db, *dc, *out, *err;
	(void)state;

	assert_int_equal(seed(a, "7", "20", "42", 0, &out, &err), 0);
	assert_non_null(strstr(err, "created 140 entries for 7 owners"));
	assert_non_null(strstr(out, "\"created\":140"));
	free(out);
	free(err);
	assert_int_equal(seed(b, "7", "20", "42", 0, NULL, NULL), 0);
	assert_int_equal(seed(c, "7", "20", "43", 0, NULL, NULL), 0);
	da = dump_dir(a);
	db = dump_dir(b);
	dc = dump_dir(c);
	assert_string_equal(da, db);
	assert_string_not_equal(da, dc);
	/* realistic: example.com owners, documentation IPs, payload fields */
	assert_non_null(strstr(da, "recentReceive:user0006@example.com:"));
	assert_null(strstr(da, "user0007@"));
	free(da);
	free(db);
	free(dc);
	/* seeding again without --reset adds nothing: all duplicates */
	assert_int_equal(seed(a, "7", "20", "42", 0, &out, NULL), 0);
	assert_non_null(strstr(out, "\"created\":0,\"duplicates\":140"));
	free(out);
	th_cleanup(a);
	th_cleanup(b);
	th_cleanup(c);
}

static void test_seed_reset_removes_every_feed_record(void **state)
{
	char *a = th_store(), *b = th_store(), *da, *db;
	ef_store *st;
	ef_receive r = {"other@x", "extra", 0, NULL, NULL};
	ef_config cfg = {0};
	(void)state;

	/* group commit would leave a meta:groupCommit record (store metadata,
	 * not a feed record: a reset keeps it) that the other store lacks */
	cfg.flags = EF_NO_GROUP_COMMIT;
	assert_int_equal(seed(a, "3", "10", "1", 0, NULL, NULL), 0);
	st = th_open(a, &cfg);
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	th_put_raw(st, "recentReceives:legacy@x", "[]", 2);
	ef_close(st);
	assert_int_equal(seed(a, "3", "10", "9", 1, NULL, NULL), 0);
	assert_int_equal(seed(b, "3", "10", "9", 0, NULL, NULL), 0);
	da = dump_dir(a);
	db = dump_dir(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	th_cleanup(a);
	th_cleanup(b);
}

/* Start a seed in the background; returns its pid. Its stderr goes to
 * @errpath. */
static pid_t seed_bg(const char *dir, const char *errpath)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *f = freopen(errpath, "w", stderr);
		(void)f;
		if (!freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(th_program("EDGEFEED_BIN"), "edgefeed", "--db", dir,
		      "seed", "--owners", "40", "--receives", "150",
		      "--rng-seed", "5", "--now", NOW, "--reset", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static char *slurp_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_seed_concurrent_resets_serialize(void **state)
{
	char *a = th_store(), *b = th_store(), *da, *db, *e1, *e2;
	char *p1, *p2;
	pid_t k1, k2;
	int s1, s2;
	(void)state;

	/* a store with data from another seed, so each reset has work */
	assert_int_equal(seed(a, "10", "10", "77", 0, NULL, NULL), 0);
	p1 = th_scratch(a, ".err1");
	p2 = th_scratch(a, ".err2");
	k1 = seed_bg(a, p1);
	k2 = seed_bg(a, p2);
	assert_int_equal(waitpid(k1, &s1, 0), k1);
	assert_int_equal(waitpid(k2, &s2, 0), k2);
	assert_true(WIFEXITED(s1) && WEXITSTATUS(s1) == 0);
	assert_true(WIFEXITED(s2) && WEXITSTATUS(s2) == 0);
	e1 = slurp_file(p1);
	e2 = slurp_file(p2);
	/* each run did all of its work: neither saw a half-reset store */
	assert_non_null(strstr(e1, "created 6000 entries for 40 owners"));
	assert_non_null(strstr(e2, "created 6000 entries for 40 owners"));
	/* and the one that came second said whom it waited for */
	if (!strstr(e1, "waiting for the maintenance lock, held by pid") &&
	    !strstr(e2, "waiting for the maintenance lock, held by pid"))
		fail_msg("neither run waited:\n%s\n%s", e1, e2);
	assert_true(strstr(e1, "(edgefeed seed --reset)") ||
		    strstr(e2, "(edgefeed seed --reset)"));
	/* the end state is exactly that of one run */
	assert_int_equal(seed(b, "40", "150", "5", 0, NULL, NULL), 0);
	da = dump_dir(a);
	db = dump_dir(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	free(e1);
	free(e2);
	unlink(p1);
	unlink(p2);
	free(p1);
	free(p2);
	th_cleanup(a);
	th_cleanup(b);
}

static void test_seed_no_wait_exits_75_while_the_lock_is_held(void **state)
{
	char *a = th_store(), *err;
	ef_store *st = th_open(a, NULL);
	ef_maint *lk;
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", a, "seed",
			"--owners", "1", "--receives", "1", "--no-wait", NULL};
	char pid[32];
	(void)state;

	assert_int_equal(ef_maint_lock(st, "test holder", 0, NULL, NULL, &lk),
			 EF_OK);
	assert_int_equal(th_run(argv, NULL, &err), 75);
	/* "pid N (test holder)"; on a cluster "pid N on HOST (test holder)" */
	snprintf(pid, sizeof(pid), "pid %ld ", (long)getpid());
	assert_non_null(strstr(err, pid));
	assert_non_null(strstr(err, "(test holder)"));
	free(err);
	ef_maint_unlock(lk);
	assert_int_equal(th_run(argv, NULL, NULL), 0);
	ef_close(st);
	th_cleanup(a);
}

static void test_seed_rejects_bad_arguments_with_exit_2(void **state)
{
	char *a = th_store(), *err;
	const char *bin = th_program("EDGEFEED_BIN");
	char *c1[] = {(char *)bin, "--db", a, "seed", "--owners", "0",
		      "--receives", "1", NULL};
	char *c2[] = {(char *)bin, "--db", a, "seed", "--owners", "2", NULL};
	char *c3[] = {(char *)bin, "--db", a, "seed", "--owners", "2",
		      "--receives", "x1", NULL};
	char *c4[] = {(char *)bin, "--db", a, "seed", "--owners", "2",
		      "--receives", "1", "--now", "yesterday", NULL};
	(void)state;

	assert_int_equal(th_run(c1, NULL, &err), 2);
	assert_non_null(strstr(err, "--owners"));
	free(err);
	assert_int_equal(th_run(c2, NULL, &err), 2);
	assert_non_null(strstr(err, "--receives: missing"));
	free(err);
	assert_int_equal(th_run(c3, NULL, &err), 2);
	assert_non_null(strstr(err, "--receives: 'x1'"));
	free(err);
	assert_int_equal(th_run(c4, NULL, &err), 2);
	assert_non_null(strstr(err, "--now: not a time"));
	free(err);
	th_cleanup(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_is_deterministic_for_seed_and_now),
		cmocka_unit_test(test_seed_reset_removes_every_feed_record),
		cmocka_unit_test(test_seed_concurrent_resets_serialize),
		cmocka_unit_test(
			test_seed_no_wait_exits_75_while_the_lock_is_held),
		cmocka_unit_test(test_seed_rejects_bad_arguments_with_exit_2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

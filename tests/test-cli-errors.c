/*
 * test-cli-errors.c - every documented error of the edgefeed command (the
 * DIAGNOSTICS of man/edgefeed.1): its exit code, and a message that names
 * the thing that was wrong and says what would be right.
 */
#include "tests/helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "feed/feed.h"
#include "store/lock.h"

static char *dir;

/* A fresh directory holding a fresh store: usage errors are found with a
 * store to find them in (the commands that only read need one). */
static int setup(void **state)
{
	(void)state;
	dir = th_tmpdir();
	ef_close(th_open(dir, NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_cleanup(dir);
	return 0;
}

/* One error case: the arguments after "edgefeed", the exit code, what the
 * message must name and what it must say would be right. */
typedef struct err_case {
	const char *args[10];
	int rc;
	const char *names;
	const char *right;
} err_case;

/* Run "edgefeed ARGS" (no --db added: a case gives its own). */
static void run_case(const err_case *k, const char *db)
{
	char *argv[16], *out, *err;
	int n = 0, rc;

	argv[n++] = (char *)th_program("EDGEFEED_BIN");
	if (db) {
		argv[n++] = "--db";
		argv[n++] = (char *)db;
	}
	for (int i = 0; k->args[i]; i++)
		argv[n++] = (char *)k->args[i];
	argv[n] = NULL;
	rc = th_run(argv, &out, &err);
	if (rc != k->rc || !strstr(err, k->names) || !strstr(err, k->right))
		fail_msg("edgefeed %s %s ...: exit %d, stderr '%s'; wanted exit "
			 "%d and a message with '%s' and '%s'",
			 k->args[0] ? k->args[0] : "", k->args[1] ? k->args[1] : "",
			 rc, err, k->rc, k->names, k->right);
	/* a message is one line of stderr per problem, results never mix in */
	if (k->rc == 2 && *out)
		fail_msg("edgefeed %s: usage error printed to stdout: '%s'",
			 k->args[0] ? k->args[0] : "", out);
	free(out);
	free(err);
}

static void run_cases(const err_case *cases, size_t n, const char *db)
{
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i], db);
}

#define RUN(cases, db) run_cases(cases, sizeof(cases) / sizeof(*cases), db)

static void test_cli_errors_usage_names_the_option_and_the_usage(void **state)
{
	static const err_case cases[] = {
		{{"feed", "--owner", NULL}, 2, "--owner: needs a value",
		 "usage: edgefeed [--db DIR] feed --owner O"},
		{{"feed", "--owner", "a", "--bogus", NULL}, 2,
		 "'--bogus' is not an option of feed",
		 "usage: edgefeed [--db DIR] feed --owner O"},
		{{"feed", "--owner", "a", "--bogus=1", NULL}, 2,
		 "'--bogus' is not an option of feed", "[--limit N]"},
		{{"seed", "-x", NULL}, 2, "'-x' is not an option of seed",
		 "seed --owners N --receives M"},
		{{"mark-read", "--owner", "a", "--all=yes", NULL}, 2,
		 "--all: takes no value, but was given 'yes'",
		 "(--reservation R | --all)"},
		{{"feed", "--owner", "a", "extra", NULL}, 2,
		 "unexpected argument 'extra'", "usage: edgefeed [--db DIR] feed"},
		{{"check", "extra", NULL}, 2, "unexpected argument 'extra'",
		 "check [--strict]"},
		{{"import", "--format", "kv-bulk", "a.json", "b.json", NULL}, 2,
		 "unexpected argument 'b.json'", "import --format kv-bulk FILE"},
		{{"nonsense", NULL}, 2, "'nonsense' is not a command",
		 "the commands are init, finalize, feed"},
		{{"finalize", "--reservation", "r", NULL}, 2, "--owner: missing",
		 "e.g. --owner alice@example.com"},
		{{"feed", NULL}, 2, "--owner: missing", "--owner alice@example.com"},
		{{"unread", NULL}, 2, "--owner: missing", "--owner alice@example.com"},
		{{"finalize", "--owner", "a", NULL}, 2, "--reservation: missing",
		 "e.g. --reservation rsv-1"},
		{{"mark-read", "--owner", "a", NULL}, 2, "exactly one of",
		 "--reservation R (one entry) and --all (every entry)"},
		{{"seed", "--receives", "3", NULL}, 2, "--owners: missing",
		 "e.g. --owners 20"},
		{{"seed", "--owners", "3", NULL}, 2, "--receives: missing",
		 "e.g. --receives 40"},
		{{"import", "kv.json", NULL}, 2, "--format: missing",
		 "--format kv-bulk"},
		{{"import", "--format", "csv", "kv.json", NULL}, 2,
		 "--format: 'csv' is not a format", "the one format is kv-bulk"},
		{{"export", "--format", "csv", NULL}, 2,
		 "--format: 'csv' is not a format", "kv-bulk"},
		{{"import", "--format", "kv-bulk", NULL}, 2, "FILE: missing",
		 "import --format kv-bulk kv.json"},
	};
	(void)state;
	RUN(cases, dir);
}

static void test_cli_errors_global_options(void **state)
{
	static const err_case cases[] = {
		{{"--bogus", "feed", NULL}, 2,
		 "'--bogus' is not an option before the command",
		 "those are --db DIR, --no-wait, --help, --version"},
		{{"--db", NULL}, 2, "--db: needs a value",
		 "edgefeed --db DIR COMMAND"},
		{{"--db", "", "stat", NULL}, 2, "--db: empty path",
		 "e.g. --db /var/lib/edgefeed"},
		{{NULL}, 2, "a COMMAND is needed", "usage: edgefeed [--db DIR]"},
	};
	(void)state;
	RUN(cases, NULL);
}

static void test_cli_errors_bad_numbers_and_times(void **state)
{
	static const err_case cases[] = {
		{{"feed", "--owner", "a", "--limit", "abc", NULL}, 2,
		 "--limit: 'abc'", "is not a whole number in 1..1000"},
		{{"feed", "--owner", "a", "--limit", "1001", NULL}, 2,
		 "--limit: '1001'", "1..1000"},
		{{"feed", "--owner", "a", "--limit", "-1", NULL}, 2,
		 "--limit: '-1'", "1..1000"},
		{{"seed", "--owners", "0", "--receives", "1", NULL}, 2,
		 "--owners: '0'", "1..10000000"},
		{{"seed", "--owners", "1", "--receives", "2000000", NULL}, 2,
		 "--receives: '2000000'", "1..1000000"},
		{{"seed", "--owners", "1", "--receives", "1", "--rng-seed", "x",
		  NULL}, 2, "--rng-seed: 'x'", "0..18446744073709551615"},
		{{"migrate", "--batch", "0", NULL}, 2, "--batch: '0'", "1..1024"},
		{{"import", "--format", "kv-bulk", "--batch", "0", "f", NULL}, 2,
		 "--batch: '0'", "1..100000"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--created",
		  "soon", NULL}, 2, "--created: not a time",
		 "epoch milliseconds, or ISO-8601 like 2026-05-06T02:58:52.123Z"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--created",
		  "99999999999999", NULL}, 2, "--created: not a time",
		 "ISO-8601"},
		{{"feed", "--owner", "a", "--now", "yesterday", NULL}, 2,
		 "--now: not a time", "epoch milliseconds"},
		{{"sweep", "--now", "2026-13-01T00:00:00Z", NULL}, 2,
		 "--now: not a time", "ISO-8601"},
	};
	(void)state;
	RUN(cases, dir);
}

static void test_cli_errors_bad_owner_reservation_ip_payload(void **state)
{
	static char big[EF_PAYLOAD_MAX + 64];
	static const err_case cases[] = {
		{{"finalize", "--owner", "   ", "--reservation", "r", NULL}, 2,
		 "--owner: empty", "a character besides white space"},
		{{"finalize", "--owner", "a\x01", "--reservation", "r", NULL}, 2,
		 "--owner: control character 0x01 at byte 1",
		 "may not hold control characters"},
		{{"finalize", "--owner", "a\xff", "--reservation", "r", NULL}, 2,
		 "--owner: invalid UTF-8", "at byte"},
		{{"finalize", "--owner", "a", "--reservation", "", NULL}, 2,
		 "--reservation: empty", "give the reservation id"},
		{{"finalize", "--owner", "a", "--reservation", "r\x7f", NULL}, 2,
		 "--reservation: control character", "may not hold"},
		{{"feed", "--owner", "", NULL}, 2, "--owner: empty",
		 "alice@example.com"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--ip",
		  "1.2.3", NULL}, 2, "--ip: not an IPv4 or IPv6 address", "(5 bytes)"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--payload",
		  "[1]", NULL}, 2, "--payload", "must be a JSON object"},
		{{"finalize", "--owner", "a", "--reservation", "r", "--payload",
		  "{bad", NULL}, 2, "--payload: invalid JSON", "line 1 column"},
		{{"feed", "--owner", "a", "--cursor", "zzz", NULL}, 2,
		 "--cursor: not a cursor of this feed",
		 "pass the nextCursor of an earlier page"},
	};
	err_case too_big = {{"finalize", "--owner", "a", "--reservation", "r",
			     "--payload", big, NULL}, 2, "--payload: ",
			    "more than the limit of 16384"};
	char *out;
	(void)state;

	RUN(cases, dir);
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	run_case(&too_big, dir);
	/* none of them wrote anything */
	assert_int_equal(th_cli(dir, &out, NULL, "stat", NULL), 0);
	assert_non_null(strstr(out, "\"entries\":0"));
	free(out);
}

static void test_cli_errors_store_directory(void **state)
{
	char file[600], missing[600], empty[600];
	const err_case not_dir = {{"init", NULL}, 2, "not a directory",
				  "--db must name the store's directory"};
	const err_case no_store = {{"stat", NULL}, 1, "no such directory",
				   "create one with 'edgefeed --db DIR init'"};
	const err_case not_store = {{"check", NULL}, 1,
				    "a directory without data.mdb",
				    "or give an existing store with --db or "
				    "EDGEFEED_DB"};
	const err_case file_store = {{"feed", "--owner", "a", NULL}, 1,
				     "a file, not a directory",
				     "create one with"};
	FILE *f;
	(void)state;

	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(mkdir(empty, 0700), 0);
	run_case(&not_dir, file);
	run_case(&file_store, file);
	run_case(&no_store, missing);
	run_case(&not_store, empty);
}

/* The names directly in @path, one a line ("(missing)" if it is none);
 * static buffer. */
static const char *listing(const char *path, char *buf, size_t cap)
{
	struct dirent **names;
	size_t len = 0;
	int n = scandir(path, &names, NULL, alphasort);

	buf[0] = '\0';
	if (n < 0)
		return snprintf(buf, cap, "(missing)"), buf;
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0,
					"%s\n", names[i]->d_name);
		free(names[i]);
	}
	free(names);
	assert_true(len < cap);
	return buf;
}

/* Every command that only reads or maintains a store, with what it needs
 * besides the store. */
static const char *const readers[][6] = {
	{"feed", "--owner", "a@x", NULL},
	{"unread", "--owner", "a@x", NULL},
	{"mark-read", "--owner", "a@x", "--all", NULL},
	{"mark-read", "--owner", "a@x", "--reservation", "r", NULL},
	{"stat", NULL},
	{"check", NULL},
	{"export", NULL},
	{"sweep", NULL},
	{"migrate", NULL},
	{"migrate", "--dry-run", NULL},
	{"compact", NULL},
};

/* Run reader @i on @db (NULL: no --db) and assert that it exits 1 saying
 * there is no store and what to do, and that @watch is unchanged. */
static void expect_no_store(size_t i, const char *db, const char *watch)
{
	char before[4096], after[4096], *argv[12], *out, *err;
	int n = 0, rc;

	listing(watch, before, sizeof(before));
	argv[n++] = (char *)th_program("EDGEFEED_BIN");
	if (db) {
		argv[n++] = "--db";
		argv[n++] = (char *)db;
	}
	for (int a = 0; readers[i][a]; a++)
		argv[n++] = (char *)readers[i][a];
	argv[n] = NULL;
	rc = th_run(argv, &out, &err);
	if (rc != 1 || !strstr(err, "no store at") ||
	    !strstr(err, "create one with 'edgefeed --db DIR init'") || *out)
		fail_msg("edgefeed --db %s %s: exit %d, stdout '%s', stderr "
			 "'%s'; wanted exit 1, 'no store at' and the next step",
			 db ? db : "(default)", readers[i][0], rc, out, err);
	listing(watch, after, sizeof(after));
	if (strcmp(before, after) != 0)
		fail_msg("edgefeed %s left '%s' changed: before\n%safter\n%s",
			 readers[i][0], watch, before, after);
	free(out);
	free(err);
}

static void test_cli_errors_reading_commands_create_no_store(void **state)
{
	const size_t nr = sizeof(readers) / sizeof(*readers);
	char typo[600], empty[600], file[600], deep[600], cwd[4096];
	char *out;
	FILE *f;
	(void)state;

	snprintf(typo, sizeof(typo), "%s/typo", dir);
	snprintf(deep, sizeof(deep), "%s/typo/deeper", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	assert_int_equal(mkdir(empty, 0700), 0);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	for (size_t i = 0; i < nr; i++) {
		expect_no_store(i, typo, dir);     /* a mistyped --db */
		expect_no_store(i, deep, dir);     /* with missing parents */
		expect_no_store(i, empty, empty);  /* a directory, no store */
		expect_no_store(i, file, dir);     /* a file */
		/* EDGEFEED_DB with a typo */
		assert_int_equal(setenv("EDGEFEED_DB", typo, 1), 0);
		expect_no_store(i, NULL, dir);
		assert_int_equal(unsetenv("EDGEFEED_DB"), 0);
		/* the default ./edgefeed.db, in a directory without one */
		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(empty), 0);
		expect_no_store(i, NULL, empty);
		assert_int_equal(chdir(cwd), 0);
	}
	/* the commands that write on purpose create the store */
	assert_int_equal(th_cli(typo, NULL, NULL, "finalize", "--owner", "a@x",
				"--reservation", "r", NULL), 0);
	assert_int_equal(th_cli(typo, &out, NULL, "feed", "--owner", "a@x",
				NULL), 0);
	assert_non_null(strstr(out, "\"reservationId\":\"r\""));
	free(out);
	assert_int_equal(th_cli(empty, NULL, NULL, "init", NULL), 0);
	assert_int_equal(th_cli(empty, NULL, NULL, "stat", NULL), 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_cli_errors_malformed_import_file(void **state)
{
	static const struct {
		const char *text, *names, *right;
	} files[] = {
		{"nope", "line 1 column 1 (byte 0)", "not a JSON array ('[' expected)"},
		{"[{\"key\":\"recentReceives:a\",\"value\":\"[]\"},\n {\"key\":\"x\"}]",
		 "line 2 column", "element 1: \"value\" is missing"},
		{"[{\"key\":\"k\",\"value\":\"v\"},\n 5]", "element 1",
		 "not a JSON object"},
		{"[{\"key\":\"recentReceives:a\",\"value\":\"[]\"},", "element 1",
		 "the file ends inside the array (']' expected)"},
	};
	char path[600], *out;
	(void)state;

	snprintf(path, sizeof(path), "%s/kv.json", dir);
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		err_case k = {{"import", "--format", "kv-bulk", path, NULL}, 2,
			      files[i].names, files[i].right};
		write_file(path, files[i].text);
		run_case(&k, dir);
		k.names = path; /* the message names the file too */
		run_case(&k, dir);
	}
	/* a malformed file writes nothing */
	assert_int_equal(th_cli(dir, &out, NULL, "stat", NULL), 0);
	assert_non_null(strstr(out, "\"legacyArrays\":0"));
	free(out);
	{
		char nofile[600];
		err_case k = {{"import", "--format", "kv-bulk", nofile, NULL}, 1,
			      "cannot open", "No such file or directory"};
		snprintf(nofile, sizeof(nofile), "%s/none.json", dir);
		run_case(&k, dir);
	}
}

static void test_cli_errors_lock_busy_no_wait_exits_75(void **state)
{
	const err_case cases[] = {
		{{"sweep", "--no-wait", NULL}, 75, "the maintenance lock is held "
		 "by pid", "run it again later, or without --no-wait"},
		{{"migrate", "--no-wait", NULL}, 75, "(test-cli-errors holder)",
		 "without --no-wait to wait its turn"},
		{{"seed", "--owners", "1", "--receives", "1", "--no-wait", NULL},
		 75, "held by pid", "run it again later"},
		{{"compact", NULL}, 75, "the maintenance lock is held by pid",
		 "compact waits for no one: run it again once that job is done"},
	};
	const err_case open_elsewhere = {
		{"compact", NULL}, 75, "the store is open in another process",
		"compact needs the store to itself: stop the workers"};
	ef_maint *lk;
	ef_store *st;
	char pid[32];
	(void)state;

	st = th_open(dir, NULL);
	assert_int_equal(ef_maint_lock(st, "test-cli-errors holder", 0, NULL,
				       NULL, &lk), EF_OK);
	RUN(cases, dir);
	{
		/* the holder is named by its pid */
		err_case k = cases[0];
		snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
		k.names = pid;
		run_case(&k, dir);
	}
	ef_maint_unlock(lk);
	/* compact also refuses while any other handle is open (st is) */
	run_case(&open_elsewhere, dir);
	ef_close(st);
}

/* A child that holds the store exclusively, as compact does (open.lock),
 * until @stop says so; its note is "pid N (edgefeed compact)". */
typedef struct holder {
	pid_t pid;
	int stop;
	char pid_s[32];
} holder;

static void holder_start(holder *h)
{
	int ready[2], stop[2];
	char b;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(stop), 0);
	h->pid = th_fork(20); /* a stuck test ends before meson's timeout */
	if (h->pid == 0) {
		ef_store *st = NULL;

		close(ready[0]);
		close(stop[1]);
		if (ef_open(&st, dir, NULL) != EF_OK ||
		    lock_open_exclusive(st->open_lock_fd, "edgefeed compact",
					st->err_id) != EF_OK)
			_exit(2);
		(void)!write(ready[1], "x", 1);
		(void)!read(stop[0], &b, 1);
		lock_open_shared_again(st->open_lock_fd);
		ef_close(st);
		_exit(0);
	}
	close(ready[1]);
	close(stop[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	h->stop = stop[1];
	/* the commands started meanwhile must not keep it open */
	assert_int_equal(fcntl(h->stop, F_SETFD, FD_CLOEXEC), 0);
	snprintf(h->pid_s, sizeof(h->pid_s), "pid %ld", (long)h->pid);
}

static void holder_stop(holder *h)
{
	int status;

	(void)!write(h->stop, "x", 1);
	close(h->stop);
	assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the holder ended with status 0x%x", status);
}

/* While compact holds the store, --no-wait (before any command, or the
 * maintenance commands' own) exits 75 at once, naming open.lock and the
 * holder's pid; creating nothing. */
static void test_cli_errors_store_held_no_wait_exits_75(void **state)
{
	char kv[600], pid_note[64];
	const char *const cmds[][10] = {
		{"--no-wait", "feed", "--owner", "a@x", NULL},
		{"--no-wait", "unread", "--owner", "a@x", NULL},
		{"--no-wait", "mark-read", "--owner", "a@x", "--all", NULL},
		{"--no-wait", "finalize", "--owner", "a@x", "--reservation",
		 "r", NULL},
		{"--no-wait", "init", NULL},
		{"--no-wait", "stat", NULL},
		{"--no-wait", "check", NULL},
		{"--no-wait", "export", NULL},
		{"--no-wait", "compact", NULL},
		{"--no-wait", "sweep", NULL},
		{"sweep", "--no-wait", NULL},
		{"migrate", "--no-wait", NULL},
		{"seed", "--owners", "1", "--receives", "1", "--no-wait", NULL},
		{"import", "--format", "kv-bulk", kv, "--no-wait", NULL},
	};
	holder h;
	(void)state;

	snprintf(kv, sizeof(kv), "%s/kv.json", dir);
	write_file(kv, "[]");
	holder_start(&h);
	snprintf(pid_note, sizeof(pid_note), "%s (edgefeed compact)", h.pid_s);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		err_case k = {{NULL}, 75, pid_note, "open.lock"};

		memcpy(k.args, cmds[i], sizeof(cmds[i]));
		run_case(&k, dir);
		k.names = "held exclusively";
		k.right = "without --no-wait to wait for it";
		run_case(&k, dir);
	}
	holder_stop(&h);
	/* let go: the same commands run */
	assert_int_equal(th_cli(dir, NULL, NULL, "--no-wait", "finalize",
				"--owner", "a@x", "--reservation", "r", NULL),
			 0);
}

/* --no-wait before the command covers the maintenance lock too. */
static void test_cli_errors_global_no_wait_covers_maint_lock(void **state)
{
	const err_case k = {{"--no-wait", "sweep", NULL}, 75,
			    "the maintenance lock is held by pid",
			    "run it again later, or without --no-wait"};
	ef_maint *lk;
	ef_store *st;
	(void)state;

	st = th_open(dir, NULL);
	assert_int_equal(ef_maint_lock(st, "test holder", 0, NULL, NULL, &lk),
			 EF_OK);
	run_case(&k, dir);
	ef_maint_unlock(lk);
	ef_close(st);
}

/* Start "edgefeed --db DIR ARGS" with stderr on a pipe (*@err_fd); stdout
 * to a file read by async_wait. */
static pid_t async_cli(const char *const args[], int *err_fd, int *out_fd)
{
	char *argv[16], opath[] = "/tmp/edgefeed-out-XXXXXX";
	int n = 0, p[2], ofd = mkstemp(opath);
	pid_t pid;

	assert_true(ofd >= 0);
	unlink(opath);
	argv[n++] = (char *)th_program("EDGEFEED_BIN");
	argv[n++] = "--db";
	argv[n++] = dir;
	for (int i = 0; args[i]; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*err_fd = p[0];
	*out_fd = ofd;
	return pid;
}

/* Without --no-wait, a command says on stderr whom it waits for (the lock,
 * the holder's pid) before it waits, and runs once the holder lets go. */
static void test_cli_errors_store_held_says_whom_it_waits_for(void **state)
{
	static const char *const cmds[][8] = {
		{"feed", "--owner", "a@x", NULL},
		{"stat", NULL},
		{"finalize", "--owner", "a@x", "--reservation", "r", NULL},
		{"sweep", NULL},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		char line[1024], out[4096];
		holder h;
		FILE *ef;
		pid_t pid;
		int efd, ofd, status;
		ssize_t n;

		holder_start(&h);
		pid = async_cli(cmds[i], &efd, &ofd);
		ef = fdopen(efd, "r");
		assert_non_null(ef);
		/* the first line comes before the wait; it cannot come after,
		 * as the holder lets go only once it is read */
		if (!fgets(line, sizeof(line), ef)) {
			waitpid(pid, &status, 0);
			fail_msg("%s: no word on stderr before waiting (status "
				 "%d)", cmds[i][0], status);
		}
		if (!strstr(line, "waiting for") || !strstr(line, "open.lock") ||
		    !strstr(line, h.pid_s) || !strstr(line, "edgefeed compact"))
			fail_msg("%s: stderr '%s' does not say whom it waits "
				 "for", cmds[i][0], line);
		holder_stop(&h);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("%s: status %d after the wait", cmds[i][0],
				 status);
		fclose(ef);
		n = pread(ofd, out, sizeof(out) - 1, 0);
		assert_true(n > 0); /* its JSON result */
		close(ofd);
	}
}

static void test_cli_errors_check_violation_exits_4(void **state)
{
	const err_case k = {{"check", NULL}, 4, "check: 1 violation(s)",
			    "one JSON line each on stdout"};
	char *out;
	ef_store *st;
	(void)state;

	assert_int_equal(th_cli(dir, NULL, NULL, "finalize", "--owner", "a@x",
				"--reservation", "r1", NULL), 0);
	st = th_open(dir, NULL);
	th_del_raw(st, "receiveIndex:a@x:r1");
	ef_close(st);
	run_case(&k, dir);
	assert_int_equal(th_cli(dir, &out, NULL, "check", NULL), 4);
	assert_non_null(strstr(out, "{\"violation\":\"entry: no index key\","
				    "\"key\":\"recentReceive:a@x:"));
	free(out);
}

static void test_cli_errors_runtime_failures_exit_1(void **state)
{
	char out_path[600];
	const err_case not_in_feed = {{"mark-read", "--owner", "a@x",
				       "--reservation", "nope", NULL}, 1,
				      "reservation 'nope'", "is not in the feed "
				      "of 'a@x'"};
	err_case no_dir = {{"export", "--output", out_path, NULL}, 1,
			   "--output: cannot create", "its directory must exist "
			   "and be writable"};
	const err_case newer = {{"stat", NULL}, 1, "has format 99",
				"this library reads format 1 and older"};
	ef_store *st;
	(void)state;

	snprintf(out_path, sizeof(out_path), "%s/no/such/dir/all.json", dir);
	assert_int_equal(th_cli(dir, NULL, NULL, "init", NULL), 0);
	run_case(&not_in_feed, dir);
	run_case(&no_dir, dir);
	/* a store written by a newer format is refused, not misread */
	st = th_open(dir, NULL);
	th_put_raw(st, "meta:format", "99", 2);
	ef_close(st);
	run_case(&newer, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_cli_errors_usage_names_the_option_and_the_usage,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_errors_global_options,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_bad_numbers_and_times, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_bad_owner_reservation_ip_payload, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_cli_errors_store_directory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_reading_commands_create_no_store, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_malformed_import_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_lock_busy_no_wait_exits_75, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_store_held_no_wait_exits_75, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_global_no_wait_covers_maint_lock, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_store_held_says_whom_it_waits_for, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_check_violation_exits_4, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_cli_errors_runtime_failures_exit_1, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

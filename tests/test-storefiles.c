/*
 * test-storefiles.c - the store directory's own files are never trusted
 * blindly: a symbolic link planted as one of them is refused, not followed
 * (its target keeps its bytes), and so is a file or directory that another
 * user owns or that group or others can write, or that is no regular file;
 * the message names the path and says why. Compaction's temporary file is
 * made privately.
 *
 * CI runs the tests as root: "another user" is then uid 65534, given with
 * chown; those variants are skipped when not run as root.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OTHER_UID 65534 /* nobody: a uid other than ours when we are root */
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define VICTIM_TEXT "victim: bytes that no store may change\n"

/* The store's own files, each of which may be planted. The keyring last:
 * it is refused where it is used (an unusable keyring costs IPs, never
 * entries or reads), every other file by ef_open itself. */
static const char *const store_files[] = {
	"open.lock", "maint.lock", "txn.lock", "data.mdb", "lock.mdb",
	"keyring",
};
#define KEYRING_AT (N_STORE_FILES - 1)
#define N_STORE_FILES (sizeof(store_files) / sizeof(*store_files))

typedef struct fx {
	char *tmp;            /* the test's directory */
	char store[PATH_MAX]; /* tmp/store */
	char victim[PATH_MAX];/* tmp/victim: outside the store */
	int64_t now;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->tmp = th_tmpdir();
	f->now = T0;
	snprintf(f->store, sizeof(f->store), "%s/store", f->tmp);
	snprintf(f->victim, sizeof(f->victim), "%s/victim", f->tmp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	th_cleanup(f->tmp);
	free(f);
	return 0;
}

static void path_of(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* The whole file at @path; malloc'd, NUL-terminated. */
static char *read_all(const char *path)
{
	char *buf = malloc(1 << 16);
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	n = read(fd, buf, (1 << 16) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void victim_make(const fx *f)
{
	write_text(f->victim, VICTIM_TEXT, 0644);
}

static void victim_intact(const fx *f)
{
	char *got = read_all(f->victim);
	struct stat sb;

	assert_string_equal(got, VICTIM_TEXT);
	assert_int_equal(stat(f->victim, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	free(got);
}

/* A store at f->store with an entry with an IP (so that every file of the
 * store exists: the keyring too) and a maintenance run behind it. */
static void store_make(fx *f)
{
	ef_config cfg = {0};
	ef_receive r = {0};
	ef_maint *lk;
	ef_store *st;

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	st = th_open(f->store, &cfg);
	r.owner = "alice@example.com";
	r.reservation_id = "r1";
	r.created_ms = T0 - 1000;
	r.ip = "198.51.100.7";
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	assert_int_equal(ef_maint_lock(st, "test", 0, NULL, NULL, &lk), EF_OK);
	ef_maint_unlock(lk);
	ef_close(st);
}

/* ef_open of f->store must fail with EF_EIO and a message naming @name
 * (a path under the store, or the store itself when NULL) and @why; with
 * @ro_too, read-only too. */
static void expect_open_refused_as(const fx *f, const char *name,
				   const char *why, int ro_too)
{
	ef_config cfg = {0};
	ef_store *st = NULL;
	char path[PATH_MAX];
	int rc;

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = (void *)&f->now;
	if (name)
		path_of(path, sizeof(path), f->store, name);
	else
		snprintf(path, sizeof(path), "%s", f->store);
	for (int ro = 0; ro < 1 + !!ro_too; ro++) {
		cfg.flags = ro ? EF_RDONLY : 0;
		rc = ef_open(&st, f->store, &cfg);
		if (rc == EF_OK) {
			ef_close(st);
			fail_msg("ef_open%s succeeded with an unsafe %s (%s)",
				 ro ? " (read-only)" : "", path, why);
		}
		assert_null(st);
		if (rc != EF_EIO || !strstr(ef_errmsg(NULL), path) ||
		    !strstr(ef_errmsg(NULL), why))
			fail_msg("ef_open%s = %s '%s'; want EF_EIO naming '%s' "
				 "and '%s'", ro ? " (read-only)" : "",
				 ef_err_name(rc), ef_errmsg(NULL), path, why);
	}
}

/* The keyring is refused where it is used: the store opens, sealing an
 * IP and sweeping fail with EF_EIO naming it and @why. */
static void expect_keyring_refused(const fx *f, const char *why)
{
	ef_config cfg = {0};
	ef_receive r = {0};
	char path[PATH_MAX];
	ef_store *st;
	int rc;

	path_of(path, sizeof(path), f->store, "keyring");
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = (void *)&f->now;
	st = th_open(f->store, &cfg);
	r.owner = "b@x";
	r.reservation_id = "sealed";
	r.created_ms = f->now - 1000;
	r.ip = "203.0.113.9";
	rc = ef_finalize(st, &r);
	if (rc != EF_EIO || !strstr(ef_errmsg(st), path) ||
	    !strstr(ef_errmsg(st), why))
		fail_msg("ef_finalize with an unsafe keyring = %s '%s'; want "
			 "EF_EIO naming '%s' and '%s'", ef_err_name(rc),
			 ef_errmsg(st), path, why);
	rc = ef_sweep(st, NULL);
	if (rc != EF_EIO || !strstr(ef_errmsg(st), path))
		fail_msg("ef_sweep with an unsafe keyring = %s '%s'",
			 ef_err_name(rc), ef_errmsg(st));
	ef_close(st);
}

static void expect_open_refused(const fx *f, const char *name, const char *why)
{
	if (name && strcmp(name, "keyring") == 0)
		expect_keyring_refused(f, why);
	else
		expect_open_refused_as(f, name, why, 1);
}

/* The CLI refuses too: exit 1, the path and why on stderr. */
static void expect_cli_refused(const fx *f, const char *name, const char *why,
			       const char *cmd)
{
	char path[PATH_MAX], *out, *err;
	int rc, used;

	path_of(path, sizeof(path), f->store, name);
	if (strcmp(cmd, "finalize") == 0)
		rc = th_cli(f->store, &out, &err, "finalize", "--owner", "b@x",
			    "--reservation", "r2", "--ip", "203.0.113.9", NULL);
	else
		rc = th_cli(f->store, &out, &err, cmd, NULL);
	/* the keyring is refused by the commands that use it; the others
	 * run (and must leave the link's target alone) */
	used = strcmp(name, "keyring") != 0 || strcmp(cmd, "sweep") == 0 ||
	       strcmp(cmd, "finalize") == 0;
	if (used && (rc != 1 || !strstr(err, path) || !strstr(err, why)))
		fail_msg("edgefeed %s: exit %d, stderr '%s'; want exit 1 naming "
			 "'%s' and '%s'", cmd, rc, err, path, why);
	free(out);
	free(err);
}

/* ---- symbolic links ------------------------------------------------------ */

/* Each file of an existing store replaced with a link to a file outside
 * it: every open, and the commands, refuse it and the target keeps its
 * bytes. */
static void test_storefiles_planted_link_is_refused_not_followed(void **state)
{
	static const char *const cmds[] = {"sweep", "compact", "finalize",
					   "migrate", "check"};
	fx *f = *state;
	char path[PATH_MAX];

	store_make(f);
	victim_make(f);
	for (size_t i = 0; i < N_STORE_FILES; i++) {
		char saved[PATH_MAX];

		path_of(path, sizeof(path), f->store, store_files[i]);
		path_of(saved, sizeof(saved), f->tmp, "saved");
		assert_int_equal(rename(path, saved), 0);
		assert_int_equal(symlink(f->victim, path), 0);
		expect_open_refused(f, store_files[i], "symbolic link");
		for (size_t c = 0; c < sizeof(cmds) / sizeof(*cmds); c++)
			expect_cli_refused(f, store_files[i], "symbolic link",
					   cmds[c]);
		victim_intact(f);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(saved, path), 0);
	}
	/* put back, the store opens again */
	ef_close(th_open(f->store, NULL));
}

/* A link to a file that does not exist yet is not created through. */
static void test_storefiles_dangling_link_creates_no_target(void **state)
{
	fx *f = *state;
	char path[PATH_MAX], target[PATH_MAX];
	struct stat sb;

	store_make(f);
	path_of(target, sizeof(target), f->tmp, "made-through-a-link");
	for (size_t i = 0; i < N_STORE_FILES; i++) {
		char saved[PATH_MAX];

		path_of(path, sizeof(path), f->store, store_files[i]);
		path_of(saved, sizeof(saved), f->tmp, "saved");
		assert_int_equal(rename(path, saved), 0);
		assert_int_equal(symlink(target, path), 0);
		expect_open_refused(f, store_files[i], "symbolic link");
		expect_cli_refused(f, store_files[i], "symbolic link", "sweep");
		assert_int_equal(lstat(target, &sb), -1);
		assert_int_equal(errno, ENOENT);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(rename(saved, path), 0);
	}
}

/* Links planted in a directory before the store is made there: creating
 * the store refuses them, and neither makes nor changes their targets. */
static void test_storefiles_links_planted_before_init_are_refused(void **state)
{
	fx *f = *state;
	char path[PATH_MAX], *err;

	victim_make(f);
	assert_int_equal(mkdir(f->store, 0700), 0);
	for (size_t i = 0; i < KEYRING_AT; i++) {
		path_of(path, sizeof(path), f->store, store_files[i]);
		assert_int_equal(symlink(f->victim, path), 0);
		assert_int_equal(th_cli(f->store, NULL, &err, "init", NULL), 1);
		if (!strstr(err, path) || !strstr(err, "symbolic link"))
			fail_msg("init with %s planted: '%s'", store_files[i],
				 err);
		free(err);
		/* (read-only, a directory without data.mdb is no store) */
		expect_open_refused_as(f, store_files[i], "symbolic link", 0);
		victim_intact(f);
		assert_int_equal(unlink(path), 0);
	}
	/* the keyring: the store is made, the first IP refuses the link */
	path_of(path, sizeof(path), f->store, "keyring");
	assert_int_equal(symlink(f->victim, path), 0);
	assert_int_equal(th_cli(f->store, NULL, NULL, "init", NULL), 0);
	expect_keyring_refused(f, "symbolic link");
	expect_cli_refused(f, "keyring", "symbolic link", "finalize");
	victim_intact(f);
}

/* Links planted while a handle is open, before it first opens the file
 * (the maintenance lock, the keyring of a store without IPs yet): the
 * handle's own open refuses them too, not only ef_open's check. */
static void test_storefiles_link_planted_after_open_is_refused(void **state)
{
	fx *f = *state;
	char maint[PATH_MAX], keyring[PATH_MAX];
	ef_config cfg = {0};
	ef_receive r = {0};
	ef_sweep_stats ss;
	ef_compact_stats cs;
	ef_maint *lk = NULL;
	ef_store *st;
	int rc;

	victim_make(f);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	st = th_open(f->store, &cfg);
	path_of(maint, sizeof(maint), f->store, "maint.lock");
	path_of(keyring, sizeof(keyring), f->store, "keyring");
	assert_int_equal(symlink(f->victim, maint), 0);
	assert_int_equal(symlink(f->victim, keyring), 0);

	assert_int_equal(ef_maint_lock(st, "test", 0, NULL, NULL, &lk), EF_EIO);
	assert_null(lk);
	assert_non_null(strstr(ef_errmsg(st), maint));
	assert_non_null(strstr(ef_errmsg(st), "symbolic link"));
	assert_int_equal(ef_sweep(st, &ss), EF_EIO);
	assert_int_equal(ef_compact(st, &cs), EF_EIO);
	victim_intact(f);

	r.owner = "alice@example.com";
	r.reservation_id = "r1";
	r.created_ms = T0 - 1000;
	r.ip = "198.51.100.7";
	rc = ef_finalize(st, &r);
	if (rc != EF_EIO || !strstr(ef_errmsg(st), keyring))
		fail_msg("ef_finalize with a keyring link = %s '%s'",
			 ef_err_name(rc), ef_errmsg(st));
	victim_intact(f);
	ef_close(st);
}

/* ---- owner, mode, type ---------------------------------------------------- */

static void test_storefiles_foreign_owner_is_refused(void **state)
{
	fx *f = *state;
	char path[PATH_MAX];

	if (geteuid() != 0)
		skip(); /* chown to another uid needs root */
	store_make(f);
	for (size_t i = 0; i < N_STORE_FILES; i++) {
		path_of(path, sizeof(path), f->store, store_files[i]);
		assert_int_equal(chown(path, OTHER_UID, (gid_t)-1), 0);
		expect_open_refused(f, store_files[i], "owned by uid 65534");
		expect_cli_refused(f, store_files[i], "owned by uid 65534",
				   "sweep");
		assert_int_equal(chown(path, geteuid(), (gid_t)-1), 0);
	}
	/* the directory itself */
	assert_int_equal(chown(f->store, OTHER_UID, (gid_t)-1), 0);
	expect_open_refused(f, NULL, "owned by uid 65534");
	assert_int_equal(chown(f->store, geteuid(), (gid_t)-1), 0);
	ef_close(th_open(f->store, NULL));
}

static void test_storefiles_group_or_other_writable_is_refused(void **state)
{
	static const struct {
		mode_t mode;
		const char *why;
	} modes[] = {{0620, "writable by group"},
		     {0602, "writable by others"},
		     {0666, "writable by group and others"}};
	static const struct {
		mode_t mode;
		const char *why;
	} dmodes[] = {{0770, "writable by group"},
		      {0707, "writable by others"},
		      {01777, "writable by group and others"}};
	fx *f = *state;
	char path[PATH_MAX];
	struct stat sb;

	store_make(f);
	for (size_t i = 0; i < N_STORE_FILES; i++) {
		path_of(path, sizeof(path), f->store, store_files[i]);
		assert_int_equal(stat(path, &sb), 0);
		for (size_t m = 0; m < sizeof(modes) / sizeof(*modes); m++) {
			assert_int_equal(chmod(path, modes[m].mode), 0);
			expect_open_refused(f, store_files[i], modes[m].why);
		}
		expect_cli_refused(f, store_files[i], "chmod go-w", "sweep");
		assert_int_equal(chmod(path, sb.st_mode & 07777), 0);
	}
	for (size_t m = 0; m < sizeof(dmodes) / sizeof(*dmodes); m++) {
		assert_int_equal(chmod(f->store, dmodes[m].mode), 0);
		expect_open_refused(f, NULL, dmodes[m].why);
	}
	assert_int_equal(chmod(f->store, 0700), 0);
	ef_close(th_open(f->store, NULL));
}

/* A FIFO, a directory: refused at once (never a blocking open). */
static void test_storefiles_non_regular_file_is_refused(void **state)
{
	fx *f = *state;
	char path[PATH_MAX], saved[PATH_MAX];

	store_make(f);
	path_of(saved, sizeof(saved), f->tmp, "saved");
	for (size_t i = 0; i < N_STORE_FILES; i++) {
		path_of(path, sizeof(path), f->store, store_files[i]);
		assert_int_equal(rename(path, saved), 0);
		assert_int_equal(mkfifo(path, 0600), 0);
		expect_open_refused(f, store_files[i], "not a regular file");
		assert_int_equal(unlink(path), 0);
		assert_int_equal(mkdir(path, 0700), 0);
		expect_open_refused(f, store_files[i], "not a regular file");
		assert_int_equal(rmdir(path), 0);
		assert_int_equal(rename(saved, path), 0);
	}
}

/* ---- compaction's temporary file ---------------------------------------- */

/* A planted temporary of an earlier compaction (a link to the victim) is
 * removed, not followed; the new data.mdb is private (0600, ours). */
static void test_storefiles_compact_temp_is_private(void **state)
{
	fx *f = *state;
	char path[PATH_MAX], data[PATH_MAX], *out;
	struct stat sb;

	store_make(f);
	victim_make(f);
	path_of(path, sizeof(path), f->store, "data.mdb.compact-AAAAAA");
	assert_int_equal(symlink(f->victim, path), 0);
	assert_int_equal(th_cli(f->store, &out, NULL, "compact", NULL), 0);
	free(out);
	victim_intact(f);
	assert_int_equal(lstat(path, &sb), -1);
	path_of(data, sizeof(data), f->store, "data.mdb");
	assert_int_equal(lstat(data, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_uid, geteuid());
	ef_close(th_open(f->store, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_storefiles_planted_link_is_refused_not_followed,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_dangling_link_creates_no_target, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_links_planted_before_init_are_refused,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_link_planted_after_open_is_refused,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_foreign_owner_is_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_group_or_other_writable_is_refused,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_non_regular_file_is_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_storefiles_compact_temp_is_private, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-open.c - ef_open / ef_close and the maintenance lock: what a good open
 * creates, how every bad one fails (code, message, *out NULL, nothing
 * leaked), read-only handles, the reader slots of dead processes, and the
 * flock-based maintenance lock across processes.
 *
 * Children never call cmocka: they report through pipes and their exit
 * status, and _exit().
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "store/lock.h"

#define CHILD_ALARM_S 60 /* a stuck child dies instead of hanging the run */
#define NOBODY 65534     /* uid/gid to drop to when the tests run as root */

/* ---- helpers ------------------------------------------------------------ */

/* The current test's directory: a global rather than a local, because forked
 * children inherit it and valgrind, which checks leaks in children too when
 * they exit, must find it reachable. */
static char *test_tmp;

static const char *tmp_new(void)
{
	test_tmp = th_tmpdir();
	return test_tmp;
}

static void tmp_done(void)
{
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

/* A path in a caller's buffer (no allocation for a forked child to leak). */
typedef struct path_buf {
	char s[PATH_MAX];
} path_buf;

static path_buf path_in(const char *dir, const char *name)
{
	path_buf p;
	int n = snprintf(p.s, sizeof(p.s), "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < sizeof(p.s));
	return p;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Fill @buf with bytes from a fixed-seed generator: reproducible garbage. */
static void garbage(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		buf[i] = (uint8_t)((s * 2685821657736338717ULL) >> 56);
	}
}

/* ef_open must fail with @want, leave *out NULL, and (if @needle) say
 * @needle in ef_errmsg(NULL). */
static void expect_open_fails(const char *dir, const ef_config *cfg, int want,
			      const char *needle)
{
	static char sentinel;
	ef_store *st = (ef_store *)(void *)&sentinel;
	int rc = ef_open(&st, dir, cfg);

	if (rc != want)
		fail_msg("ef_open('%s') = %s, want %s (%s)", dir ? dir : "(null)",
			 ef_err_name(rc), ef_err_name(want), ef_errmsg(NULL));
	assert_null(st);
	assert_non_null(ef_errmsg(NULL));
	assert_true(ef_errmsg(NULL)[0] != '\0');
	if (needle && !strstr(ef_errmsg(NULL), needle))
		fail_msg("ef_errmsg(NULL) = '%s', want it to mention '%s'",
			 ef_errmsg(NULL), needle);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own descriptor */
}

/* Reap @pid and assert it exited with 0. */
static void expect_child_ok(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("child %ld killed by signal %d", (long)pid,
			 WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child %ld exited with %d", (long)pid,
			 WEXITSTATUS(status));
}

static void send_line(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One line in one write(): atomic on a pipe (shorter than PIPE_BUF). */
static void send_line(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(fd, buf, (size_t)n);
}

static void finalize_n(ef_store *st, const char *owner, int n)
{
	for (int i = 0; i < n; i++) {
		char rid[32];
		ef_receive r = {0};

		snprintf(rid, sizeof(rid), "rid-%d", i);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = 0;
		assert_int_equal(ef_finalize(st, &r), EF_OK);
	}
}

/* ---- creating and opening ----------------------------------------------- */

static void test_open_creates_missing_directory(void **state)
{
	const char *tmp = tmp_new();
	path_buf dir = path_in(tmp, "new-store");
	path_buf data = path_in(dir.s, "data.mdb");
	struct stat sb;
	ef_stat_info si;
	ef_store *st;

	(void)state;
	assert_int_equal(stat(dir.s, &sb), -1);
	st = th_open(dir.s, NULL);
	assert_int_equal(stat(dir.s, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(data.s, &sb), 0);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.format_version, 1);
	assert_int_equal(si.entries, 0);
	finalize_n(st, "alice@example.com", 2);
	ef_close(st);

	/* and it opens again, with what was written */
	st = th_open(dir.s, NULL);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, 2);
	assert_int_equal(si.format_version, 1);
	ef_close(st);
	tmp_done();
}

/* A redis:// address is a cluster, never a path: with no cluster there it
 * fails to connect (EF_EIO, naming the address), and nothing is created,
 * not even where a directory "redis:" would make it a relative path; a
 * malformed one is EF_EINVAL. */
static void test_open_redis_address_is_a_cluster_never_a_path(void **state)
{
	const char *tmp = tmp_new();
	path_buf cwd_redis = path_in(tmp, "redis:");
	char old[4096];
	ef_store *st = (ef_store *)1;
	struct stat sb;

	(void)state;
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(mkdir(cwd_redis.s, 0700), 0); /* "redis:/h:1" exists */
	assert_int_equal(chdir(tmp), 0);
	/* port 1: nothing listens there */
	assert_int_equal(ef_open(&st, "redis://127.0.0.1:1?retry_ms=0", NULL),
			 EF_EIO);
	assert_null(st);
	assert_non_null(strstr(ef_errmsg(NULL), "127.0.0.1:1"));
	assert_int_equal(stat("redis:/127.0.0.1:1", &sb), -1);
	assert_int_equal(ef_open(&st, "redis://", NULL), EF_EINVAL);
	assert_null(st);
	assert_int_equal(ef_open(&st, "redis://127.0.0.1:1?store=", NULL),
			 EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(NULL), "store"));
	assert_int_equal(chdir(old), 0);
	tmp_done();
}

/* A file where the store should be: a creating open cannot make one there
 * (EF_EINVAL); to one that only opens, it is no store (EF_ENOTFOUND). */
static void test_open_regular_file_is_einval(void **state)
{
	const char *tmp = tmp_new();
	path_buf file = path_in(tmp, "plain-file");
	ef_config ro = {0};

	(void)state;
	write_file(file.s, "hello\n", 6);
	expect_open_fails(file.s, NULL, EF_EINVAL, "not a directory");
	ro.flags = EF_RDONLY;
	expect_open_fails(file.s, &ro, EF_ENOTFOUND, "a file, not a directory");
	tmp_done();
}

/* Runs in a child that has dropped root: the unwritable directory refuses. */
static int unwritable_child(const char *dir)
{
	ef_store *st = (ef_store *)(void *)&st;
	int rc;

	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
	    setuid(NOBODY) != 0 || geteuid() == 0) {
		fprintf(stderr, "cannot drop privileges: %s\n", strerror(errno));
		return 10;
	}
	rc = ef_open(&st, dir, NULL);
	if (rc != EF_EIO) {
		fprintf(stderr, "ef_open = %s, want EF_EIO (%s)\n",
			ef_err_name(rc), ef_errmsg(NULL));
		if (rc == EF_OK)
			ef_close(st);
		return 1;
	}
	if (st != NULL) {
		fprintf(stderr, "*out is not NULL after a failed open\n");
		return 2;
	}
	if (!strstr(ef_errmsg(NULL), "permission denied")) {
		fprintf(stderr, "ef_errmsg(NULL) = '%s', want 'permission "
			"denied'\n", ef_errmsg(NULL));
		return 3;
	}
	return 0;
}

static void test_open_unwritable_directory_is_eio(void **state)
{
	const char *tmp = tmp_new();
	path_buf dir = path_in(tmp, "locked");
	pid_t pid;

	(void)state;
	assert_int_equal(mkdir(dir.s, 0700), 0);
	assert_int_equal(chmod(dir.s, 0500), 0);
	if (geteuid() != 0) {
		expect_open_fails(dir.s, NULL, EF_EIO, "permission denied");
	} else {
		/* root ignores permission bits: drop to nobody in a child,
		 * which must be able to reach the directory */
		assert_int_equal(chmod(tmp, 0755), 0);
		pid = th_fork(CHILD_ALARM_S);
		if (pid == 0)
			_exit(unwritable_child(dir.s));
		expect_child_ok(pid);
	}
	assert_int_equal(chmod(dir.s, 0700), 0);
	tmp_done();
}

static void test_open_newer_format_is_eversion(void **state)
{
	const char *tmp = tmp_new();
	ef_config ro = {0};
	ef_store *st;

	(void)state;
	st = th_open(tmp, NULL);
	finalize_n(st, "alice@example.com", 1);
	th_put_raw(st, "meta:format", "2", 1);
	ef_close(st);
	expect_open_fails(tmp, NULL, EF_EVERSION, "format 2");
	ro.flags = EF_RDONLY;
	expect_open_fails(tmp, &ro, EF_EVERSION, "format 2");
	/* the failed open did not "fix" the format: it still refuses */
	expect_open_fails(tmp, NULL, EF_EVERSION, "format 2");
	tmp_done();
}

static void test_open_bad_format_value_is_ecorrupt(void **state)
{
	const char *tmp = tmp_new();
	ef_store *st;

	(void)state;
	st = th_open(tmp, NULL);
	th_put_raw(st, "meta:format", "banana", 6);
	ef_close(st);
	expect_open_fails(tmp, NULL, EF_ECORRUPT, "meta:format");
	tmp_done();
}

/* A failed open holds no lock: an exclusive flock on open.lock succeeds. */
static void expect_open_lock_free(const char *dir)
{
	path_buf p = path_in(dir, "open.lock");
	int fd = open(p.s, O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
		close(fd);
	}
}

static void expect_garbage_fails(const char *dir)
{
	static char sentinel;
	ef_store *st = (ef_store *)(void *)&sentinel;
	int rc = ef_open(&st, dir, NULL);

	if (rc != EF_ECORRUPT && rc != EF_EIO)
		fail_msg("ef_open on garbage = %s, want EF_ECORRUPT or EF_EIO "
			 "(%s)", ef_err_name(rc), ef_errmsg(NULL));
	assert_null(st);
	assert_true(ef_errmsg(NULL)[0] != '\0');
	expect_open_lock_free(dir);
}

static void test_open_garbage_data_file_fails_cleanly(void **state)
{
	static const size_t sizes[] = {65536, 8192, 100};
	uint8_t *buf = malloc(65536);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		const char *tmp = tmp_new();
		path_buf data = path_in(tmp, "data.mdb");

		garbage(buf, sizes[i], i + 1);
		write_file(data.s, buf, sizes[i]);
		expect_garbage_fails(tmp);
		/* the read-only path fails the same way */
		{
			ef_config ro = {0};
			ef_store *st = NULL;
			int rc;

			ro.flags = EF_RDONLY;
			rc = ef_open(&st, tmp, &ro);
			assert_true(rc == EF_ECORRUPT || rc == EF_EIO);
			assert_null(st);
		}
		tmp_done();
	}
	free(buf);
}

static void test_open_rdonly_missing_dir_is_enotfound(void **state)
{
	const char *tmp = tmp_new();
	path_buf dir = path_in(tmp, "missing");
	ef_config ro = {0};
	struct stat sb;

	(void)state;
	ro.flags = EF_RDONLY;
	expect_open_fails(dir.s, &ro, EF_ENOTFOUND, NULL);
	/* read-only never creates the directory */
	assert_int_equal(stat(dir.s, &sb), -1);
	assert_int_equal(errno, ENOENT);
	/* an existing directory without a store is not found either, and
	 * the read-only open leaves nothing behind in it */
	expect_open_fails(tmp, &ro, EF_ENOTFOUND, NULL);
	{
		path_buf lock = path_in(tmp, "open.lock");
		assert_int_equal(stat(lock.s, &sb), -1);
	}
	tmp_done();
}

/* The names directly in @dir, sorted, one per line; "" if it is empty and
 * "(missing)" if it does not exist. malloc'd. */
static char *dir_listing(const char *dir)
{
	struct dirent **names;
	size_t len = 0, cap = 1;
	char *out = calloc(1, cap);
	int n = scandir(dir, &names, NULL, alphasort);

	assert_non_null(out);
	if (n < 0) {
		free(out);
		out = strdup("(missing)");
		assert_non_null(out);
		return out;
	}
	for (int i = 0; i < n; i++) {
		size_t nl = strlen(names[i]->d_name);

		out = realloc(out, cap += nl + 1);
		assert_non_null(out);
		memcpy(out + len, names[i]->d_name, nl);
		out[len += nl] = '\n';
		out[++len] = '\0';
		free(names[i]);
	}
	free(names);
	return out;
}

/* ef_open with EF_NOCREATE (alone and with other flags) must fail with
 * EF_ENOTFOUND, say "no store at", and leave @path as it was. */
static void expect_no_store(const char *path, const char *watch)
{
	static const unsigned extra[] = {0, EF_NOSYNC, EF_RDONLY,
					 EF_GROUP_COMMIT | EF_NOSYNC};
	char *before = dir_listing(watch);

	for (size_t i = 0; i < sizeof(extra) / sizeof(*extra); i++) {
		ef_config cfg = {0};
		char *after;

		cfg.flags = EF_NOCREATE | extra[i];
		expect_open_fails(path, &cfg, EF_ENOTFOUND, "no store at");
		after = dir_listing(watch);
		assert_string_equal(before, after);
		free(after);
	}
	free(before);
}

static void test_open_nocreate_creates_nothing(void **state)
{
	const char *tmp = tmp_new();
	path_buf missing = path_in(tmp, "typo");
	path_buf deep = path_in(tmp, "typo/deeper/store");
	path_buf slash = path_in(tmp, "typo/");
	path_buf empty = path_in(tmp, "empty");
	path_buf file = path_in(tmp, "file");
	path_buf dangling = path_in(tmp, "dangling");
	path_buf locks = path_in(tmp, "locks-only");
	path_buf lock = path_in(locks.s, "open.lock");
	path_buf good = path_in(tmp, "good");
	ef_config cfg = {0};
	struct stat sb;
	ef_store *st;

	(void)state;
	assert_int_equal(mkdir(empty.s, 0700), 0);
	write_file(file.s, "not a store\n", 12);
	assert_int_equal(symlink("nowhere", dangling.s), 0);
	assert_int_equal(mkdir(locks.s, 0700), 0);
	write_file(lock.s, "", 0);

	expect_no_store(missing.s, tmp);        /* a mistyped directory */
	expect_no_store(deep.s, tmp);           /* and its missing parents */
	expect_no_store(slash.s, tmp);
	expect_no_store(empty.s, empty.s);      /* a directory is no store */
	expect_no_store(empty.s, tmp);
	expect_no_store(file.s, tmp);           /* nor is a file */
	expect_no_store(dangling.s, tmp);       /* nor a link to nothing */
	expect_no_store(locks.s, locks.s);      /* lock files but no data.mdb */
	assert_int_equal(stat(file.s, &sb), 0);
	assert_int_equal(sb.st_size, 12);

	/* an existing store opens as usual, and is written to */
	ef_close(th_open(good.s, NULL));
	cfg.flags = EF_NOCREATE;
	st = th_open(good.s, &cfg);
	finalize_n(st, "alice@example.com", 2);
	ef_close(st);
	tmp_done();
}

static void test_open_rdonly_reads_but_refuses_writes(void **state)
{
	const char *tmp = tmp_new();
	ef_config ro = {0};
	ef_receive r = {0};
	ef_stat_info si;
	ef_page pg;
	uint64_t unread;
	ef_store *st;
	char *before, *after;

	(void)state;
	st = th_open(tmp, NULL);
	finalize_n(st, "alice@example.com", 3);
	before = th_dump(st);
	ef_close(st);

	ro.flags = EF_RDONLY;
	st = th_open(tmp, &ro);
	assert_int_equal(ef_feed_page(st, "alice@example.com", NULL, 0, &pg),
			 EF_OK);
	assert_int_equal(pg.count, 3);
	ef_page_free(&pg);
	assert_int_equal(ef_unread_count(st, "alice@example.com", &unread),
			 EF_OK);
	assert_int_equal(unread, 3);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, 3);

	r.owner = "alice@example.com";
	r.reservation_id = "rid-new";
	assert_int_equal(ef_finalize(st, &r), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(st), "read-only"));
	/* a duplicate is refused too, not answered EF_EXISTS */
	r.reservation_id = "rid-0";
	assert_int_equal(ef_finalize(st, &r), EF_EINVAL);
	assert_int_equal(ef_mark_read(st, "alice@example.com", "rid-0"),
			 EF_EINVAL);
	assert_int_equal(ef_mark_all_read(st, "alice@example.com"), EF_EINVAL);
	assert_int_equal(ef_reset(st, NULL), EF_EINVAL);
	after = th_dump(st);
	assert_string_equal(before, after);
	ef_close(st);
	free(before);
	free(after);
	tmp_done();
}

static void test_open_bad_arguments_are_einval(void **state)
{
	const char *tmp = tmp_new();
	path_buf dir = path_in(tmp, "never-created");
	ef_config cfg = {0};
	struct stat sb;

	(void)state;
	cfg.flags = 0x80;
	expect_open_fails(dir.s, &cfg, EF_EINVAL, "flags");
	cfg.flags = EF_NOSYNC | 0x100;
	expect_open_fails(dir.s, &cfg, EF_EINVAL, "flags");
	cfg.flags = 0x80000000u;
	expect_open_fails(dir.s, &cfg, EF_EINVAL, "flags");
	cfg.flags = 0;
	cfg.feed_ttl_ms = -1;
	expect_open_fails(dir.s, &cfg, EF_EINVAL, "feed_ttl_ms");
	cfg.feed_ttl_ms = 0;
	cfg.ip_retention_ms = -5;
	expect_open_fails(dir.s, &cfg, EF_EINVAL, "ip_retention_ms");
	/* a bad config is refused before anything is created */
	assert_int_equal(stat(dir.s, &sb), -1);

	expect_open_fails(NULL, NULL, EF_EINVAL, NULL);
	expect_open_fails("", NULL, EF_EINVAL, NULL);
	assert_int_equal(ef_open(NULL, tmp, NULL), EF_EINVAL);
	tmp_done();
}

static void test_close_null_is_harmless(void **state)
{
	(void)state;
	ef_close(NULL);
	ef_page_free(NULL);
	ef_maint_unlock(NULL);
}

/* Open/close cycles, good and failed, leak no memory (ASan's leak check
 * says so at exit) and no file descriptor. */
static void test_open_close_cycles_do_not_leak(void **state)
{
	const char *tmp = tmp_new();
	path_buf good = path_in(tmp, "good");
	path_buf newer = path_in(tmp, "newer");
	path_buf file = path_in(tmp, "file");
	ef_config cfg = {0}, bad = {0};
	ef_store *st;
	ef_page pg;
	int fds;

	(void)state;
	cfg.feed_cap = 1000;
	cfg.flags = EF_NOSYNC;
	bad.flags = 0x8000; /* no such flag */
	st = th_open(newer.s, NULL);
	th_put_raw(st, "meta:format", "7", 1);
	ef_close(st);
	write_file(file.s, "x", 1);
	ef_close(th_open(good.s, &cfg)); /* first open creates: not counted */

	fds = count_fds();
	for (int i = 0; i < 200; i++) {
		char rid[32];
		ef_receive r = {0};

		snprintf(rid, sizeof(rid), "cycle-%03d", i);
		r.owner = "cycler@example.com";
		r.reservation_id = rid;
		st = th_open(good.s, &cfg);
		assert_int_equal(ef_finalize(st, &r), EF_OK);
		assert_int_equal(ef_feed_page(st, "cycler@example.com", NULL, 5,
					      &pg),
				 EF_OK);
		ef_page_free(&pg);
		ef_close(st);
		if (i % 4 == 0) {
			expect_open_fails(newer.s, NULL, EF_EVERSION, NULL);
			expect_open_fails(file.s, NULL, EF_EINVAL, NULL);
			expect_open_fails(good.s, &bad, EF_EINVAL, NULL);
		}
	}
	assert_int_equal(count_fds(), fds);

	st = th_open(good.s, &cfg);
	assert_int_equal(th_count_prefix(st, "recentReceive:"), 200);
	ef_close(st);
	assert_int_equal(count_fds(), fds);
	tmp_done();
}

/* ---- reader slots of dead processes ------------------------------------- */

typedef struct reader_scan {
	long pid;  /* the pid looked for */
	int found; /* listed in the reader table */
} reader_scan;

static int reader_line(const char *msg, void *ctx)
{
	reader_scan *s = ctx;
	long pid;

	if (sscanf(msg, "%ld", &pid) == 1 && pid == s->pid)
		s->found = 1;
	return 0;
}

/* In a child (never in the test process, which may have the store open):
 * is @pid in the store's LMDB reader table? Exit 0 if as @want_listed. */
static int reader_table_child(const char *dir, pid_t pid, int want_listed)
{
	reader_scan s = {(long)pid, 0};
	MDB_env *env;
	int rc;

	rc = mdb_env_create(&env);
	if (rc == 0)
		rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
	if (rc == 0)
		rc = mdb_reader_list(env, reader_line, &s) < 0;
	if (rc) {
		fprintf(stderr, "reader table: %s\n", mdb_strerror(rc));
		return 2;
	}
	mdb_env_close(env);
	if (s.found != want_listed) {
		fprintf(stderr, "pid %ld is %slisted in the reader table\n",
			(long)pid, s.found ? "" : "not ");
		return 1;
	}
	return 0;
}

static void expect_reader_table(const char *dir, pid_t pid, int listed)
{
	pid_t c = th_fork(CHILD_ALARM_S);

	if (c == 0)
		_exit(reader_table_child(dir, pid, listed));
	expect_child_ok(c);
}

typedef struct hold_ctx {
	int fd; /* write a byte here once inside the transaction */
} hold_ctx;

static int hold_read_txn(store_txn *t, void *p)
{
	hold_ctx *h = p;

	(void)t;
	(void)!write(h->fd, "a", 1);
	for (;;)
		pause(); /* killed here, inside the read transaction */
	return EF_OK;
}

static ef_store *held_store;

static void test_open_clears_dead_reader_slots(void **state)
{
	const char *tmp = tmp_new();
	pid_t keeper, reader;
	int ready[2], stop[2], status;
	char b;

	(void)state;
	ef_close(th_open(tmp, NULL));
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(stop), 0);

	/* a live process keeps the environment open, so LMDB does not reset
	 * the reader table on the next open: only the library clears it */
	keeper = th_fork(CHILD_ALARM_S);
	if (keeper == 0) {
		ef_store *k = NULL;

		close(stop[1]);
		close(ready[0]);
		if (ef_open(&k, tmp, NULL) != EF_OK)
			_exit(2);
		(void)!write(ready[1], "k", 1);
		(void)!read(stop[0], &b, 1);
		ef_close(k);
		_exit(0);
	}
	reader = th_fork(CHILD_ALARM_S);
	if (reader == 0) {
		ef_store *r = NULL;
		hold_ctx h = {ready[1]};

		close(stop[1]);
		close(ready[0]);
		if (ef_open(&r, tmp, NULL) != EF_OK)
			_exit(2);
		store_read(r->env, hold_read_txn, &h);
		_exit(3);
	}
	close(ready[1]);
	close(stop[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(read(ready[0], &b, 1), 1);
	assert_int_equal(kill(reader, SIGKILL), 0);
	assert_int_equal(waitpid(reader, &status, 0), reader);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	expect_reader_table(tmp, reader, 1); /* the dead reader's slot */
	/* open across the next fork (the child leaves it alone): a global,
	 * so that it is reachable in the child for valgrind's leak check */
	held_store = th_open(tmp, NULL);
	expect_reader_table(tmp, reader, 0); /* cleared by ef_open */
	finalize_n(held_store, "after@example.com", 1);
	ef_close(held_store);
	held_store = NULL;

	close(stop[1]);
	close(ready[0]);
	expect_child_ok(keeper);
	tmp_done();
}

/* ---- the maintenance lock ----------------------------------------------- */

#define HOLDER_JOB "holder job for the test"

typedef struct waiter_ctx {
	int fd;    /* report pipe to the parent */
	int calls; /* on_wait calls */
} waiter_ctx;

static void waiter_on_wait(const char *holder, void *p)
{
	waiter_ctx *w = p;

	w->calls++;
	send_line(w->fd, "wait %s", holder);
}

/* The contender: NOWAIT first (must be EF_EBUSY), then waits its turn. */
static int contender_child(const char *dir, int go_fd, int report_fd)
{
	waiter_ctx w = {report_fd, 0};
	ef_maint *lk = (ef_maint *)(void *)&w;
	ef_store *st = NULL;
	char b;
	int rc;

	if (read(go_fd, &b, 1) != 1)
		return 2; /* the parent never took the lock */
	if (ef_open(&st, dir, NULL) != EF_OK)
		return 3;
	rc = ef_maint_lock(st, "contender", EF_LOCK_NOWAIT, waiter_on_wait,
			   &w, &lk);
	send_line(report_fd, "nowait %s %s %s", ef_err_name(rc),
		  lk ? "out-set" : "out-null", ef_errmsg(st));
	if (rc == EF_OK)
		ef_maint_unlock(lk);
	rc = ef_maint_lock(st, "contender", 0, waiter_on_wait, &w, &lk);
	send_line(report_fd, "acquired %s calls=%d", ef_err_name(rc), w.calls);
	ef_maint_unlock(lk);
	ef_close(st);
	return rc == EF_OK ? 0 : 1;
}

static char *read_line(FILE *f, char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, f))
		return NULL;
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void test_maint_lock_busy_then_waits_for_holder(void **state)
{
	const char *tmp = tmp_new();
	char line[600], want[64];
	int go[2], report[2];
	ef_maint *lk = NULL;
	ef_store *st;
	FILE *rf;
	pid_t pid;

	(void)state;
	ef_close(th_open(tmp, NULL));
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(report), 0);
	/* fork before opening anything: the child inherits no lock */
	pid = th_fork(CHILD_ALARM_S);
	if (pid == 0) {
		close(go[1]);
		close(report[0]);
		_exit(contender_child(tmp, go[0], report[1]));
	}
	close(go[0]);
	close(report[1]);
	rf = fdopen(report[0], "r");
	assert_non_null(rf);

	st = th_open(tmp, NULL);
	assert_int_equal(ef_maint_lock(st, HOLDER_JOB, 0, NULL, NULL, &lk),
			 EF_OK);
	assert_non_null(lk);
	assert_int_equal(write(go[1], "g", 1), 1);
	snprintf(want, sizeof(want), "pid %ld", (long)getpid());

	/* NOWAIT: busy, *out NULL, and the message names the holder */
	assert_non_null(read_line(rf, line, sizeof(line)));
	if (strncmp(line, "nowait EF_EBUSY out-null ", 25) != 0 ||
	    !strstr(line, want) || !strstr(line, HOLDER_JOB))
		fail_msg("contender said '%s', want EF_EBUSY naming '%s' and "
			 "'%s'", line, want, HOLDER_JOB);
	/* waiting: on_wait hears who holds the lock, then it blocks */
	assert_non_null(read_line(rf, line, sizeof(line)));
	if (strncmp(line, "wait ", 5) != 0 || !strstr(line, want) ||
	    !strstr(line, HOLDER_JOB))
		fail_msg("on_wait got '%s', want a holder naming '%s' and "
			 "'%s'", line, want, HOLDER_JOB);
	ef_maint_unlock(lk);
	/* released: the waiter proceeds */
	assert_non_null(read_line(rf, line, sizeof(line)));
	assert_string_equal(line, "acquired EF_OK calls=1");
	fclose(rf);
	close(go[1]);
	expect_child_ok(pid);

	/* and the lock is free again */
	assert_int_equal(ef_maint_lock(st, "again", EF_LOCK_NOWAIT, NULL, NULL,
				       &lk),
			 EF_OK);
	ef_maint_unlock(lk);
	ef_close(st);
	tmp_done();
}

static void test_maint_lock_released_when_holder_killed(void **state)
{
	const char *tmp = tmp_new();
	char want[64], b;
	ef_maint *lk = (ef_maint *)(void *)&b;
	ef_store *st;
	int ready[2], status;
	pid_t holder;

	(void)state;
	ef_close(th_open(tmp, NULL));
	assert_int_equal(pipe(ready), 0);
	holder = th_fork(CHILD_ALARM_S);
	if (holder == 0) {
		ef_store *h = NULL;
		ef_maint *hl = NULL;

		close(ready[0]);
		if (ef_open(&h, tmp, NULL) != EF_OK ||
		    ef_maint_lock(h, "doomed job", 0, NULL, NULL, &hl) != EF_OK)
			_exit(2);
		(void)!write(ready[1], "h", 1);
		for (;;)
			pause(); /* killed while holding the lock */
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);

	st = th_open(tmp, NULL);
	assert_int_equal(ef_maint_lock(st, "survivor", EF_LOCK_NOWAIT, NULL,
				       NULL, &lk),
			 EF_EBUSY);
	assert_null(lk);
	snprintf(want, sizeof(want), "pid %ld", (long)holder);
	if (!strstr(ef_errmsg(st), want) || !strstr(ef_errmsg(st), "doomed job"))
		fail_msg("ef_errmsg = '%s', want '%s (doomed job)'",
			 ef_errmsg(st), want);

	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* the kernel released the flock with the process */
	assert_int_equal(ef_maint_lock(st, "survivor", EF_LOCK_NOWAIT, NULL,
				       NULL, &lk),
			 EF_OK);
	assert_non_null(lk);
	ef_maint_unlock(lk);
	ef_close(st);
	tmp_done();
}

static void test_maint_lock_bad_arguments_are_einval(void **state)
{
	const char *tmp = tmp_new();
	ef_maint *lk = (ef_maint *)(void *)&lk;
	ef_store *st;

	(void)state;
	assert_int_equal(ef_maint_lock(NULL, "x", 0, NULL, NULL, &lk),
			 EF_EINVAL);
	assert_null(lk);
	st = th_open(tmp, NULL);
	assert_int_equal(ef_maint_lock(st, "x", 0, NULL, NULL, NULL), EF_EINVAL);
	ef_close(st);
	tmp_done();
}

/* ---- a compaction's exclusive hold on the store (open.lock) ------------- */

#define COMPACT_JOB "edgefeed compact"

/* In a child: open the store and hold open.lock exclusively, as ef_compact
 * does (lock_open_exclusive), say so on @ready_fd, and let go (closing the
 * store) when @stop_fd says so or closes. */
static int compactor_child(const char *dir, int ready_fd, int stop_fd)
{
	ef_store *st = NULL;
	char b;

	if (ef_open(&st, dir, NULL) != EF_OK)
		return 2;
	if (lock_open_exclusive(st->open_lock_fd, COMPACT_JOB, st->err_id) !=
	    EF_OK)
		return 3;
	(void)!write(ready_fd, "x", 1);
	(void)!read(stop_fd, &b, 1);
	lock_open_shared_again(st->open_lock_fd);
	ef_close(st);
	return 0;
}

typedef struct compactor {
	pid_t pid;
	int stop;      /* write end: a byte (or closing it) lets go */
	char note[64]; /* "pid N (edgefeed compact)" */
} compactor;

static void compactor_start(compactor *c, const char *dir)
{
	int ready[2], stop[2];
	char b;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(stop), 0);
	c->pid = th_fork(CHILD_ALARM_S);
	if (c->pid == 0) {
		close(ready[0]);
		close(stop[1]);
		_exit(compactor_child(dir, ready[1], stop[0]));
	}
	close(ready[1]);
	close(stop[0]);
	assert_int_equal(read(ready[0], &b, 1), 1);
	close(ready[0]);
	c->stop = stop[1];
	snprintf(c->note, sizeof(c->note), "pid %ld (%s)", (long)c->pid,
		 COMPACT_JOB);
}

static void compactor_stop(compactor *c)
{
	if (c->stop >= 0) {
		(void)!write(c->stop, "x", 1);
		close(c->stop);
		c->stop = -1;
	}
	expect_child_ok(c->pid);
}

/* EF_NOWAIT: while the store is held exclusively, every kind of open fails
 * at once with EF_EBUSY naming the lock and the holder, and creates
 * nothing; once it is let go, the same open succeeds. */
static void test_open_nowait_while_store_held_is_ebusy(void **state)
{
	static const unsigned kinds[] = {0, EF_RDONLY, EF_NOCREATE,
					 EF_NOSYNC | EF_GROUP_COMMIT};
	const char *tmp = tmp_new();
	ef_config cfg = {0};
	compactor c;
	ef_store *st;

	(void)state;
	ef_close(th_open(tmp, NULL));
	compactor_start(&c, tmp);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		cfg.flags = EF_NOWAIT | kinds[i];
		expect_open_fails(tmp, &cfg, EF_EBUSY, c.note);
		expect_open_fails(tmp, &cfg, EF_EBUSY, "open.lock");
	}
	compactor_stop(&c);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
		cfg.flags = EF_NOWAIT | kinds[i];
		st = th_open(tmp, &cfg);
		ef_close(st);
	}
	tmp_done();
}

typedef struct open_waiter {
	compactor *c; /* let go of once the wait is announced */
	int calls;
	char holder[128];
} open_waiter;

static void open_waiter_cb(const char *holder, void *p)
{
	open_waiter *w = p;

	w->calls++;
	snprintf(w->holder, sizeof(w->holder), "%s", holder);
	close(w->c->stop); /* let go only now: the wait was said */
	w->c->stop = -1;
}

/* Without EF_NOWAIT, ef_open says whom it waits for (on_wait, once, before
 * it blocks), then proceeds once the holder lets go. Nobody holding it:
 * no call. */
static void test_open_says_whom_it_waits_for_then_proceeds(void **state)
{
	const char *tmp = tmp_new();
	ef_config cfg = {0};
	open_waiter w = {0};
	compactor c;
	ef_store *st;

	(void)state;
	ef_close(th_open(tmp, NULL));
	compactor_start(&c, tmp);
	w.c = &c;
	cfg.on_wait = open_waiter_cb;
	cfg.wait_ctx = &w;
	st = th_open(tmp, &cfg);
	assert_int_equal(w.calls, 1);
	assert_string_equal(w.holder, c.note);
	finalize_n(st, "after@example.com", 1);
	compactor_stop(&c);
	ef_close(st);
	/* nobody holds it: no word */
	w.calls = 0;
	ef_close(th_open(tmp, &cfg));
	assert_int_equal(w.calls, 0);
	tmp_done();
}

/* An EF_NOWAIT handle takes the maintenance lock without waiting too, so
 * that the long operations refuse at once. */
static void test_open_nowait_handle_never_waits_for_maint_lock(void **state)
{
	const char *tmp = tmp_new();
	ef_config cfg = {0};
	ef_maint *held, *lk = NULL;
	ef_store *st, *nw;

	(void)state;
	st = th_open(tmp, NULL);
	assert_int_equal(ef_maint_lock(st, HOLDER_JOB, 0, NULL, NULL, &held),
			 EF_OK);
	cfg.flags = EF_NOWAIT;
	nw = th_open(tmp, &cfg);
	assert_int_equal(ef_maint_lock(nw, "second", 0, NULL, NULL, &lk),
			 EF_EBUSY);
	assert_null(lk);
	assert_non_null(strstr(ef_errmsg(nw), HOLDER_JOB));
	assert_int_equal(ef_sweep(nw, NULL), EF_EBUSY);
	ef_maint_unlock(held);
	assert_int_equal(ef_sweep(nw, NULL), EF_OK);
	ef_close(nw);
	ef_close(st);
	tmp_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_missing_directory),
		cmocka_unit_test(test_open_regular_file_is_einval),
		cmocka_unit_test(test_open_redis_address_is_a_cluster_never_a_path),
		cmocka_unit_test(test_open_unwritable_directory_is_eio),
		cmocka_unit_test(test_open_newer_format_is_eversion),
		cmocka_unit_test(test_open_bad_format_value_is_ecorrupt),
		cmocka_unit_test(test_open_garbage_data_file_fails_cleanly),
		cmocka_unit_test(test_open_rdonly_missing_dir_is_enotfound),
		cmocka_unit_test(test_open_rdonly_reads_but_refuses_writes),
		cmocka_unit_test(test_open_nocreate_creates_nothing),
		cmocka_unit_test(test_open_bad_arguments_are_einval),
		cmocka_unit_test(test_close_null_is_harmless),
		cmocka_unit_test(test_open_close_cycles_do_not_leak),
		cmocka_unit_test(test_open_clears_dead_reader_slots),
		cmocka_unit_test(test_maint_lock_busy_then_waits_for_holder),
		cmocka_unit_test(test_maint_lock_released_when_holder_killed),
		cmocka_unit_test(test_maint_lock_bad_arguments_are_einval),
		cmocka_unit_test(test_open_nowait_while_store_held_is_ebusy),
		cmocka_unit_test(test_open_says_whom_it_waits_for_then_proceeds),
		cmocka_unit_test(
			test_open_nowait_handle_never_waits_for_maint_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

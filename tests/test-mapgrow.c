/*
 * test-mapgrow.c - the LMDB map grows by itself: a store opened with a small
 * map takes far more than it, in one process and in several at once, and
 * processes that did not grow the map adopt the size another one gave it
 * (MDB_MAP_RESIZED) without any call failing.
 *
 * Children open their own ef_store after fork(), never call cmocka, and
 * _exit() with a status the parent asserts.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"

#define SMALL_MAP ((size_t)1 << 20) /* 1 MiB: the store outgrows it soon */
#define PAD_LEN 1000                 /* payload bytes of padding: ~1 KiB */
#define PAYLOAD_CAP (PAD_LEN + 64)
#define CHILD_ALARM_S 240            /* a stuck child dies, not the run */

enum {
	CHILD_OK = 0,
	CHILD_EWRITE = 1, /* a finalize failed */
	CHILD_EOPEN = 2,  /* ef_open failed */
	CHILD_EREAD = 3,  /* a read failed or saw something wrong */
	CHILD_EGROW = 4,  /* the map did not grow / was not adopted */
	CHILD_ESYS = 5,   /* a system call failed */
};

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

/* ---- child processes ---------------------------------------------------- */

typedef int (*child_fn)(void *ctx, int idx);

static int parent_only_fds[8]; /* pipe ends a child must not hold */
static int parent_only_n;

static void parent_only(int fd)
{
	assert_true(parent_only_n < 8);
	parent_only_fds[parent_only_n++] = fd;
}

static void child_setup(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS,
				   SIGABRT};

	/* a crash must kill the child, not resume cmocka's runner in it */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		signal(sigs[i], SIG_DFL);
	for (int i = 0; i < parent_only_n; i++)
		close(parent_only_fds[i]);
	alarm(CHILD_ALARM_S);
}

static pid_t spawn(child_fn fn, void *ctx, int idx)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_setup();
		_exit(fn(ctx, idx));
	}
	return pid;
}

/* Reap every child; the number that did not exit with CHILD_OK. */
static int reap_children(const pid_t *pids, int n)
{
	int failed = 0;

	for (int i = 0; i < n; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK)
			continue;
		failed++;
		if (WIFEXITED(status))
			print_error("child %d (pid %ld) exited with %d\n", i,
				    (long)pids[i], WEXITSTATUS(status));
		else
			print_error("child %d (pid %ld) killed by signal %d\n",
				    i, (long)pids[i], WTERMSIG(status));
	}
	return failed;
}

/* Block until the other end of @fd is closed (or a byte arrives). */
static void wait_fd(int fd)
{
	char b;
	ssize_t n;

	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
}

static int fd_closed(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0;
}

/* ---- what gets written -------------------------------------------------- */

static int64_t hour_ago_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 - 3600 * 1000;
}

static void big_owner(char *buf, size_t cap, int o)
{
	snprintf(buf, cap, "grow%d@example.com", o);
}

static void big_rid(char *buf, size_t cap, int r)
{
	snprintf(buf, cap, "big-%05d", r);
}

/* A ~1 KiB JSON object that says which item it belongs to. */
static void big_payload(char *buf, int o, int r)
{
	int n = snprintf(buf, PAYLOAD_CAP, "{\"o\":%d,\"r\":%d,\"pad\":\"", o,
			 r);

	memset(buf + n, 'a' + (o * 7 + r) % 26, PAD_LEN);
	n += PAD_LEN;
	memcpy(buf + n, "\"}", 3);
}

static int big_finalize(ef_store *st, int o, int r, int64_t base_ms)
{
	char owner[64], rid[32], payload[PAYLOAD_CAP];
	ef_receive rcv = {0};

	big_owner(owner, sizeof(owner), o);
	big_rid(rid, sizeof(rid), r);
	big_payload(payload, o, r);
	rcv.owner = owner;
	rcv.reservation_id = rid;
	rcv.created_ms = base_ms + r;
	rcv.payload_json = payload;
	return ef_finalize(st, &rcv);
}

/*
 * Read @o's whole feed and compare it with what big_finalize wrote for
 * reservations 0..@nres-1: each exactly once, newest first, payload intact.
 * No cmocka here (children use it too): returns EF_OK, an EF_E* code of a
 * failed read, or EF_ECORRUPT for wrong contents, with a line on stderr.
 */
static int big_verify_owner(ef_store *st, int o, int nres, int64_t base_ms)
{
	char owner[64], rid[32], payload[PAYLOAD_CAP];
	char *cursor = NULL;
	int next = nres - 1, rc;

	big_owner(owner, sizeof(owner), o);
	do {
		ef_page pg;

		rc = ef_feed_page(st, owner, cursor, EF_PAGE_LIMIT_MAX, &pg);
		free(cursor);
		cursor = NULL;
		if (rc != EF_OK) {
			fprintf(stderr, "%s: ef_feed_page: %s: %s\n", owner,
				ef_err_name(rc), ef_errmsg(st));
			return rc;
		}
		for (size_t i = 0; i < pg.count && rc == EF_OK; i++, next--) {
			const ef_entry *e = &pg.entries[i];

			big_rid(rid, sizeof(rid), next);
			big_payload(payload, o, next);
			if (next < 0 || strcmp(e->reservation_id, rid) != 0 ||
			    e->created_ms != base_ms + next ||
			    !e->payload_json ||
			    strcmp(e->payload_json, payload) != 0) {
				fprintf(stderr, "%s: entry %zu is '%s', want "
					"'%s' with its payload\n", owner, i,
					e->reservation_id, rid);
				rc = EF_ECORRUPT;
			}
		}
		if (rc == EF_OK && pg.next_cursor) {
			cursor = strdup(pg.next_cursor);
			if (!cursor)
				rc = EF_ENOMEM;
		}
		ef_page_free(&pg);
	} while (cursor && rc == EF_OK);
	free(cursor);
	if (rc == EF_OK && next != -1) {
		fprintf(stderr, "%s: %d entries missing\n", owner, next + 1);
		rc = EF_ECORRUPT;
	}
	return rc;
}

/* ---- one process -------------------------------------------------------- */

#define SOLO_OWNERS 50
#define SOLO_RES 400 /* 20,000 entries of ~1 KiB into a 1 MiB map */

static void test_finalize_map_grows_by_itself(void **state)
{
	const char *tmp = tmp_new();
	int64_t base = hour_ago_ms();
	ef_config cfg = {0};
	ef_stat_info si;
	ef_store *st;

	(void)state;
	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = SOLO_RES;
	cfg.flags = EF_NOSYNC;
	st = th_open(tmp, &cfg);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_true(si.map_size <= SMALL_MAP);
	for (int r = 0; r < SOLO_RES; r++) {
		for (int o = 0; o < SOLO_OWNERS; o++) {
			int rc = big_finalize(st, o, r, base);

			if (rc != EF_OK)
				fail_msg("finalize %d/%d: %s: %s", o, r,
					 ef_err_name(rc), ef_errmsg(st));
		}
	}
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, SOLO_OWNERS * SOLO_RES);
	assert_int_equal(si.index_keys, SOLO_OWNERS * SOLO_RES);
	assert_int_equal(si.unread_markers, SOLO_OWNERS * SOLO_RES);
	assert_true(si.map_size > SMALL_MAP);
	assert_true(si.map_used > SMALL_MAP);
	assert_true(si.map_used <= si.map_size);
	assert_true(store_map_grows(st->env) > 0);
	for (int o = 0; o < SOLO_OWNERS; o++)
		assert_int_equal(big_verify_owner(st, o, SOLO_RES, base), EF_OK);
	ef_close(st);

	/* reopened with the small map again, smaller than the data: LMDB maps
	 * at least the data, it all reads back, and writing goes on (growing
	 * again when needed; each write here also trims one entry) */
	st = th_open(tmp, &cfg);
	for (int o = 0; o < SOLO_OWNERS; o += 7)
		assert_int_equal(big_verify_owner(st, o, SOLO_RES, base), EF_OK);
	for (int o = 0; o < SOLO_OWNERS; o++)
		assert_int_equal(big_finalize(st, o, SOLO_RES, base), EF_OK);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, SOLO_OWNERS * SOLO_RES);
	ef_close(st);
	tmp_done();
}

/* Many threads of one process hit MDB_MAP_FULL together: one grows, the
 * others see it grown and re-run; nobody fails. */
#define THREADS 4
#define THREAD_RES 1500

typedef struct thread_arg {
	pthread_t tid;
	ef_store *st;
	int idx;
	int64_t base;
	int rc;
} thread_arg;

static void *thread_writer(void *p)
{
	thread_arg *a = p;

	a->rc = EF_OK;
	for (int r = 0; r < THREAD_RES && a->rc == EF_OK; r++)
		a->rc = big_finalize(a->st, a->idx, r, a->base);
	return NULL;
}

static void test_finalize_map_grows_under_threads(void **state)
{
	const char *tmp = tmp_new();
	thread_arg ta[THREADS];
	ef_config cfg = {0};
	ef_stat_info si;
	ef_store *st;

	(void)state;
	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = THREAD_RES;
	cfg.flags = EF_NOSYNC;
	st = th_open(tmp, &cfg);
	for (int i = 0; i < THREADS; i++) {
		ta[i].st = st;
		ta[i].idx = i;
		ta[i].base = hour_ago_ms();
		assert_int_equal(pthread_create(&ta[i].tid, NULL, thread_writer,
						&ta[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(ta[i].tid, NULL);
	for (int i = 0; i < THREADS; i++) {
		if (ta[i].rc != EF_OK)
			fail_msg("thread %d: %s", i, ef_err_name(ta[i].rc));
		assert_int_equal(big_verify_owner(st, i, THREAD_RES, ta[i].base),
				 EF_OK);
	}
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, THREADS * THREAD_RES);
	assert_true(si.map_size > SMALL_MAP);
	ef_close(st);
	tmp_done();
}

/* ---- several processes -------------------------------------------------- */

#define MP_PROCS 4
#define MP_OWNERS 10
#define MP_ITEMS 6000 /* each finalized by two of the four processes */

typedef struct mp_ctx {
	char dir[PATH_MAX];
	char ledgers[PATH_MAX];
	int64_t base;
	int go_fd;
} mp_ctx;

static ef_config mp_cfg(void)
{
	ef_config cfg = {0};

	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = MP_ITEMS / MP_OWNERS;
	cfg.flags = EF_NOSYNC;
	return cfg;
}

/* Process @idx finalizes the items j with j % 4 in {idx, idx+1}; its ledger
 * says how many answers were EF_OK and EF_EXISTS and how often it grew or
 * adopted the map. */
static int mp_writer(void *p, int idx)
{
	mp_ctx *c = p;
	ef_config cfg = mp_cfg();
	char path[PATH_MAX + 32];
	long ok = 0, exists = 0;
	ef_store *st = NULL;
	int rc, status = CHILD_OK;
	FILE *led;

	wait_fd(c->go_fd);
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "writer %d: ef_open: %s: %s\n", idx,
			ef_err_name(rc), ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	for (int j = 0; j < MP_ITEMS; j++) {
		if (j % MP_PROCS != idx && j % MP_PROCS != (idx + 1) % MP_PROCS)
			continue;
		rc = big_finalize(st, j % MP_OWNERS, j / MP_OWNERS, c->base);
		if (rc == EF_OK) {
			ok++;
		} else if (rc == EF_EXISTS) {
			exists++;
		} else {
			fprintf(stderr, "writer %d: item %d: %s: %s\n", idx, j,
				ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EWRITE;
			break;
		}
	}
	snprintf(path, sizeof(path), "%s/ledger.%d", c->ledgers, idx);
	led = fopen(path, "w");
	if (!led || fprintf(led, "%ld %ld %llu\n", ok, exists,
			    (unsigned long long)store_map_grows(st->env)) < 0)
		status = status ? status : CHILD_ESYS;
	if (led && fclose(led) != 0)
		status = status ? status : CHILD_ESYS;
	ef_close(st);
	return status;
}

/* Sum the writers' ledgers: EF_OK and EF_EXISTS answers, grows/adoptions. */
static void mp_ledgers_read(const mp_ctx *c, long *ok, long *exists,
			    unsigned long long *grows)
{
	*ok = *exists = 0;
	*grows = 0;
	for (int i = 0; i < MP_PROCS; i++) {
		char path[PATH_MAX + 32];
		unsigned long long g;
		long o, e;
		FILE *f;

		snprintf(path, sizeof(path), "%s/ledger.%d", c->ledgers, i);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_int_equal(fscanf(f, "%ld %ld %llu", &o, &e, &g), 3);
		fclose(f);
		assert_int_equal(o + e, MP_ITEMS / 2);
		*ok += o;
		*exists += e;
		*grows += g;
	}
}

static void test_finalize_map_grows_in_concurrent_processes(void **state)
{
	const char *tmp = tmp_new();
	pid_t pids[MP_PROCS];
	unsigned long long grows;
	long ok, exists;
	ef_config cfg = mp_cfg();
	ef_stat_info si;
	ef_store *st;
	mp_ctx c;
	int go[2];

	(void)state;
	snprintf(c.dir, sizeof(c.dir), "%s/store", tmp);
	snprintf(c.ledgers, sizeof(c.ledgers), "%s", tmp);
	c.base = hour_ago_ms();
	assert_int_equal(pipe(go), 0);
	c.go_fd = go[0];
	parent_only(go[1]);
	for (int i = 0; i < MP_PROCS; i++)
		pids[i] = spawn(mp_writer, &c, i);
	parent_only_n = 0;
	close(go[1]); /* go: all open the (new) store and write at once */
	close(go[0]);
	assert_int_equal(reap_children(pids, MP_PROCS), 0);

	/* every item twice: one EF_OK and one EF_EXISTS */
	mp_ledgers_read(&c, &ok, &exists, &grows);
	assert_int_equal(ok, MP_ITEMS);
	assert_int_equal(exists, MP_ITEMS);
	assert_true(grows > 0);

	st = th_open(c.dir, &cfg);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, MP_ITEMS);
	assert_int_equal(si.index_keys, MP_ITEMS);
	assert_int_equal(si.unread_markers, MP_ITEMS);
	assert_true(si.map_size > SMALL_MAP);
	for (int o = 0; o < MP_OWNERS; o++)
		assert_int_equal(big_verify_owner(st, o, MP_ITEMS / MP_OWNERS,
						  c.base),
				 EF_OK);
	ef_close(st);
	tmp_done();
}

/* ---- adopting a map another process grew -------------------------------- */

#define ADOPT_RES 4000 /* ~4.5 MB: several doublings past 1 MiB */

typedef struct adopt_ctx {
	char dir[PATH_MAX];
	int64_t base;
	int ready_fd; /* the sleeper writes one byte once open */
	int go_fd;    /* EOF: the grower is done */
} adopt_ctx;

/* Opens with the small map, waits while another process grows the store far
 * past it, then reads and writes: its first transaction must adopt the new
 * size (MDB_MAP_RESIZED) and succeed. */
static int adopt_sleeper(void *p, int idx)
{
	adopt_ctx *c = p;
	ef_config cfg = {0};
	ef_stat_info si;
	ef_store *st = NULL;
	uint64_t grows_before, unread;
	int rc, status = CHILD_OK;

	(void)idx;
	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = ADOPT_RES + 1;
	cfg.flags = EF_NOSYNC;
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "sleeper: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	grows_before = store_map_grows(st->env);
	if (write(c->ready_fd, "r", 1) != 1)
		status = CHILD_ESYS;
	close(c->ready_fd);
	wait_fd(c->go_fd);
	if (status == CHILD_OK && big_verify_owner(st, 0, ADOPT_RES, c->base))
		status = CHILD_EREAD;
	if (status == CHILD_OK && store_map_grows(st->env) == grows_before) {
		fprintf(stderr, "sleeper: read a grown store without adopting "
			"the new map size\n");
		status = CHILD_EGROW;
	}
	if (status == CHILD_OK) {
		rc = ef_unread_count(st, "grow0@example.com", &unread);
		if (rc != EF_OK || unread != ADOPT_RES) {
			fprintf(stderr, "sleeper: unread: %s, %llu\n",
				ef_err_name(rc), (unsigned long long)unread);
			status = CHILD_EREAD;
		}
	}
	if (status == CHILD_OK) {
		rc = big_finalize(st, 0, ADOPT_RES, c->base);
		if (rc != EF_OK) {
			fprintf(stderr, "sleeper: write after adopting: %s: %s\n",
				ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EWRITE;
		}
	}
	if (status == CHILD_OK && (ef_stat(st, &si) != EF_OK ||
				   si.map_size <= SMALL_MAP ||
				   si.entries != ADOPT_RES + 1)) {
		fprintf(stderr, "sleeper: stat disagrees\n");
		status = CHILD_EREAD;
	}
	ef_close(st);
	return status;
}

static int adopt_grower(void *p, int idx)
{
	adopt_ctx *c = p;
	ef_config cfg = {0};
	ef_store *st = NULL;
	int rc, status = CHILD_OK;

	(void)idx;
	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = ADOPT_RES + 1;
	cfg.flags = EF_NOSYNC;
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "grower: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	for (int r = 0; r < ADOPT_RES && status == CHILD_OK; r++) {
		rc = big_finalize(st, 0, r, c->base);
		if (rc != EF_OK) {
			fprintf(stderr, "grower: %d: %s: %s\n", r,
				ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EWRITE;
		}
	}
	if (status == CHILD_OK && store_map_grows(st->env) == 0)
		status = CHILD_EGROW;
	ef_close(st);
	return status;
}

static void test_read_adopts_map_grown_by_other_process(void **state)
{
	const char *tmp = tmp_new();
	ef_config cfg = {0};
	adopt_ctx c;
	pid_t sleeper, grower;
	int ready[2], go[2], failed;
	char b;

	(void)state;
	snprintf(c.dir, sizeof(c.dir), "%s", tmp);
	c.base = hour_ago_ms();
	cfg.map_size = SMALL_MAP;
	ef_close(th_open(tmp, &cfg));
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	c.ready_fd = ready[1];
	c.go_fd = go[0];
	parent_only(go[1]);
	parent_only(ready[0]);
	sleeper = spawn(adopt_sleeper, &c, 0);
	close(ready[1]);
	/* the sleeper has mapped 1 MiB before the grower starts */
	assert_int_equal(read(ready[0], &b, 1), 1);
	grower = spawn(adopt_grower, &c, 1);
	parent_only_n = 0;
	failed = reap_children(&grower, 1);
	close(go[1]);
	close(go[0]);
	close(ready[0]);
	failed += reap_children(&sleeper, 1);
	assert_int_equal(failed, 0);
	tmp_done();
}

/* ---- readers while another process grows the map ------------------------ */

#define RG_OWNERS 4
#define RG_RES 1500
#define RG_READERS 2 /* threads of the reader process */

typedef struct rg_ctx {
	char dir[PATH_MAX];
	int64_t base;
	int stop_fd; /* EOF: the writer is done */
} rg_ctx;

static ef_config rg_cfg(void)
{
	ef_config cfg = {0};

	cfg.map_size = SMALL_MAP;
	cfg.feed_cap = RG_RES;
	cfg.flags = EF_NOSYNC;
	return cfg;
}

static int rg_writer(void *p, int idx)
{
	rg_ctx *c = p;
	ef_config cfg = rg_cfg();
	ef_store *st = NULL;
	int rc;

	(void)idx;
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK)
		return CHILD_EOPEN;
	for (int r = 0; r < RG_RES; r++) {
		for (int o = 0; o < RG_OWNERS; o++) {
			rc = big_finalize(st, o, r, c->base);
			if (rc != EF_OK) {
				fprintf(stderr, "writer: %s: %s\n",
					ef_err_name(rc), ef_errmsg(st));
				ef_close(st);
				return CHILD_EWRITE;
			}
		}
	}
	ef_close(st);
	return CHILD_OK;
}

typedef struct rg_thread {
	pthread_t tid;
	ef_store *st;
	rg_ctx *c;
	int idx;
	int status;
} rg_thread;

/* Count @owner's feed page by page (small pages, many transactions). */
static int rg_count(ef_store *st, const char *owner, uint64_t *count)
{
	char *cursor = NULL;
	int rc;

	*count = 0;
	do {
		ef_page pg;

		rc = ef_feed_page(st, owner, cursor, 97, &pg);
		free(cursor);
		cursor = NULL;
		if (rc != EF_OK)
			return rc;
		*count += pg.count;
		if (pg.next_cursor && !(cursor = strdup(pg.next_cursor)))
			rc = EF_ENOMEM;
		ef_page_free(&pg);
	} while (cursor);
	return rc;
}

/* Keep reading until the writer is done, then once more: no call may fail,
 * and an owner's count never goes down (nothing is deleted). */
static void *rg_reader(void *p)
{
	rg_thread *t = p;
	uint64_t last[RG_OWNERS] = {0}, n, unread;
	char owner[64];
	int stop = 0, rc;

	t->status = CHILD_OK;
	while (!stop && t->status == CHILD_OK) {
		stop = fd_closed(t->c->stop_fd);
		for (int o = 0; o < RG_OWNERS && t->status == CHILD_OK; o++) {
			big_owner(owner, sizeof(owner), o);
			rc = rg_count(t->st, owner, &n);
			if (rc == EF_OK)
				rc = ef_unread_count(t->st, owner, &unread);
			if (rc != EF_OK) {
				/* leave at once: a failed transaction may have
				 * left the handle's locks unusable for the
				 * other thread, which would then hang */
				fprintf(stderr, "reader %d: %s: %s\n", t->idx,
					ef_err_name(rc), ef_errmsg(t->st));
				_exit(CHILD_EREAD);
			} else if (n < last[o] || unread < n) {
				fprintf(stderr, "reader %d: %s went from %llu "
					"to %llu entries\n", t->idx, owner,
					(unsigned long long)last[o],
					(unsigned long long)n);
				t->status = CHILD_EREAD;
			}
			last[o] = n;
		}
	}
	for (int o = 0; o < RG_OWNERS && t->status == CHILD_OK; o++) {
		if (last[o] != RG_RES) {
			fprintf(stderr, "reader %d: owner %d: %llu entries at "
				"the end\n", t->idx, o,
				(unsigned long long)last[o]);
			t->status = CHILD_EREAD;
		}
	}
	return NULL;
}

static int rg_reader_proc(void *p, int idx)
{
	rg_ctx *c = p;
	ef_config cfg = rg_cfg();
	rg_thread th[RG_READERS];
	ef_store *st = NULL;
	int rc, status = CHILD_OK, started = 0;

	(void)idx;
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK)
		return CHILD_EOPEN;
	for (int i = 0; i < RG_READERS; i++) {
		th[i].st = st;
		th[i].c = c;
		th[i].idx = i;
		if (pthread_create(&th[i].tid, NULL, rg_reader, &th[i]) != 0) {
			status = CHILD_ESYS;
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i].tid, NULL);
		if (th[i].status != CHILD_OK)
			status = th[i].status;
	}
	if (status == CHILD_OK) {
		for (int o = 0; o < RG_OWNERS && status == CHILD_OK; o++)
			if (big_verify_owner(st, o, RG_RES, c->base) != EF_OK)
				status = CHILD_EREAD;
	}
	if (status == CHILD_OK && store_map_grows(st->env) == 0) {
		fprintf(stderr, "reader: never adopted the grown map\n");
		status = CHILD_EGROW;
	}
	ef_close(st);
	return status;
}

static void test_feed_page_reader_never_fails_while_map_grows(void **state)
{
	const char *tmp = tmp_new();
	ef_config cfg = rg_cfg();
	rg_ctx c;
	pid_t reader, writer;
	int stop[2], failed;

	(void)state;
	snprintf(c.dir, sizeof(c.dir), "%s", tmp);
	c.base = hour_ago_ms();
	ef_close(th_open(tmp, &cfg));
	assert_int_equal(pipe(stop), 0);
	c.stop_fd = stop[0];
	parent_only(stop[1]);
	reader = spawn(rg_reader_proc, &c, 0);
	writer = spawn(rg_writer, &c, 1);
	parent_only_n = 0;
	failed = reap_children(&writer, 1);
	close(stop[1]); /* the reader makes its last pass and exits */
	close(stop[0]);
	failed += reap_children(&reader, 1);
	assert_int_equal(failed, 0);
	tmp_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finalize_map_grows_by_itself),
		cmocka_unit_test(test_finalize_map_grows_under_threads),
		cmocka_unit_test(test_finalize_map_grows_in_concurrent_processes),
		cmocka_unit_test(test_read_adopts_map_grown_by_other_process),
		cmocka_unit_test(test_feed_page_reader_never_fails_while_map_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

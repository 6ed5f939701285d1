/*
 * test-cqueue.c - group commit across processes (feed/cqueue.c, the shared
 * commit queue; feed/cqbatch.c, what its batches write): real processes
 * (fork), real kill -9 at named points of a leader's and a waiter's life,
 * and a randomized storm, each checked against a ledger of what was
 * acknowledged; plus the queue file's limits: full, damaged, unusable.
 */
#include "tests/helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "feed/cqueue.h"
#include "store/store.h"

#define CHILD_ALARM 60 /* s: a child stuck longer fails the test */
#define OWNER "owner@example.com"

/* Durable: with EF_NOSYNC nothing goes through the queue. */
static ef_config gc_cfg(void)
{
	ef_config cfg = {0};

	cfg.flags = EF_GROUP_COMMIT;
	cfg.feed_cap = 100000;
	return cfg;
}

static cq_stats stats_of(const char *dir)
{
	cq_stats s;

	assert_int_equal(cqueue_peek(dir, &s), EF_OK);
	return s;
}

/* ---- what a child does ---- */

static const char *stop_point; /* the hook stops the process here */
static const char *stop_once;  /* ... if it is the first to create this */
static int stop_fd = -1;       /* and says so (its pid) on this pipe */

static void stop_hook(const char *point)
{
	int fd;
	pid_t me = getpid();

	if (!stop_point || strcmp(point, stop_point) != 0)
		return;
	fd = open(stop_once, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return; /* another process stopped here already */
	close(fd);
	if (write(stop_fd, &me, sizeof(me)) != (ssize_t)sizeof(me))
		_exit(90);
	for (;;)
		pause(); /* until kill -9 */
}

/* Append "rid rc" to @ledger with one write (a kill tears no line). */
static void ledger_add(const char *ledger, const char *rid, int rc)
{
	char line[128];
	int fd = open(ledger, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int n = snprintf(line, sizeof(line), "%s %d\n", rid, rc);

	if (fd < 0 || write(fd, line, (size_t)n) != n)
		_exit(91);
	close(fd);
}

/* Child: finalize @rid once (with @point armed), record the result. */
static void child_one(const char *dir, const char *rid, const char *point,
		      const char *ledger)
{
	ef_config cfg = gc_cfg();
	ef_receive r = {OWNER, rid, 0, "192.0.2.7", "{\"n\":1}"};
	ef_store *st;
	int rc;

	stop_point = point;
	cqueue__hook(stop_hook);
	if (ef_open(&st, dir, &cfg) != EF_OK)
		_exit(92);
	rc = ef_finalize(st, &r);
	ledger_add(ledger, rid, rc);
	ef_close(st);
	_exit(rc == EF_OK || rc == EF_EXISTS ? 0 : 93);
}

/* ---- checking a ledger against the store ---- */

typedef struct tally {
	char rid[64];
	int created; /* EF_OK acknowledgements */
	int dup;     /* EF_EXISTS */
} tally;

static int ledgers = 64; /* files ledger0 .. ledger<ledgers - 1> */

/* Read every ledger line of the files "ledger*" in @dir into @t (@cap),
 * returning how many reservations; any error result fails. */
static size_t ledger_read(const char *dir, tally *t, size_t cap)
{
	size_t n = 0;
	char path[4200];

	for (int i = 0; i < ledgers; i++) {
		FILE *f;
		char rid[64];
		int rc;

		snprintf(path, sizeof(path), "%s/ledger%d", dir, i);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fscanf(f, "%63s %d", rid, &rc) == 2) {
			size_t j;
			for (j = 0; j < n && strcmp(t[j].rid, rid) != 0; j++)
				;
			if (j == n) {
				assert_true(n < cap);
				memset(&t[n], 0, sizeof(t[n]));
				snprintf(t[n].rid, sizeof(t[n].rid), "%s", rid);
				n++;
			}
			if (rc == EF_OK)
				t[j].created++;
			else if (rc == EF_EXISTS)
				t[j].dup++;
			else
				fail_msg("ledger: %s got %d", rid, rc);
		}
		fclose(f);
	}
	return n;
}

/* Every acknowledged reservation is in the store exactly once (its index
 * key, and a readable entry), none was created twice, ef_check is clean,
 * and the queue's slots all come back once the dead are reclaimed. */
static void verify(const char *dir, size_t expect_min)
{
	static tally t[4096];
	size_t n = ledger_read(dir, t, 4096);
	ef_config cfg = gc_cfg();
	ef_store *st = th_open(dir, &cfg);
	ef_receive r = {OWNER, "final-reclaim", 0, NULL, NULL};
	cq_stats s;

	assert_true(n >= expect_min);
	for (size_t i = 0; i < n; i++) {
		ef_entry *e = NULL;
		char key[160];

		assert_true(t[i].created <= 1); /* never created twice */
		assert_int_equal(ef_get_entry(st, OWNER, t[i].rid, &e), EF_OK);
		ef_entry_free(e);
		snprintf(key, sizeof(key), "receiveIndex:%s:%.63s", OWNER,
			 t[i].rid);
		assert_int_equal(th_count_prefix(st, key), 1);
	}
	th_assert_consistent(st);
	/* a fresh handle's first batch reclaims the dead callers' slots; the
	 * next scan (CQ_SCAN_MS on) those its first batch recovered */
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	th_sleep_us(250 * 1000);
	r.reservation_id = "final-reclaim-2";
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	s = stats_of(dir);
	assert_int_equal(s.used, 0);
	ef_close(st);
}

/* ---- kill -9 at a named point ---- */

/* Wait (bounded) until @n slots of @dir's queue are pending. */
static void wait_pending(const char *dir, uint32_t n)
{
	for (int i = 0; i < 20000; i++) {
		if (stats_of(dir).pending >= n)
			return;
		th_sleep_us(500);
	}
	fail_msg("the callers never queued up");
}

/*
 * @n children queue up behind a lead this process holds; then it lets go,
 * one child takes the lead, and whoever first passes @point (a leader's or
 * a caller's) is killed there. The others must finish with their own
 * results: each its own reservation, so each must say "created".
 */
static void kill_at(const char *point, int n, int waiter_victim)
{
	char *dir = th_tmpdir(), once[4200], ledger[4200];
	int fds[2];
	pid_t pids[16], victim = 0;
	cqueue *q;
	cq_stats before;

	assert_true(n <= 16);
	ef_close(th_open(dir, NULL));
	snprintf(once, sizeof(once), "%s/stop.once", dir);
	stop_once = once;
	assert_int_equal(pipe(fds), 0);
	stop_fd = fds[1];
	assert_int_equal(cqueue_open(dir, 0, 0, &q), EF_OK);
	assert_int_equal(cqueue__hold_lead(q), EF_OK);
	for (int i = 0; i < n; i++) {
		char rid[32];

		snprintf(rid, sizeof(rid), "r%02d", i);
		snprintf(ledger, sizeof(ledger), "%s/ledger%d", dir, i);
		pids[i] = th_fork(CHILD_ALARM);
		if (pids[i] == 0)
			child_one(dir, rid, point, ledger);
	}
	if (strcmp(point, "filling") == 0) {
		/* the victim stops inside its slot; the others queue */
		assert_int_equal(read(fds[0], &victim, sizeof(victim)),
				 sizeof(victim));
		wait_pending(dir, (uint32_t)n - 1);
	} else {
		wait_pending(dir, (uint32_t)n);
	}
	if (waiter_victim) /* asleep on its pending slot */
		victim = pids[0];
	before = stats_of(dir);
	cq_lead_end(q); /* one of them leads now */
	if (!victim)
		assert_int_equal(read(fds[0], &victim, sizeof(victim)),
				 sizeof(victim));
	assert_int_equal(kill(victim, SIGKILL), 0);
	for (int i = 0; i < n; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (pids[i] == victim)
			assert_true(WIFSIGNALED(status));
		else /* finished, with a result of its own: not stuck */
			assert_true(WIFEXITED(status) &&
				    WEXITSTATUS(status) == 0);
	}
	{
		static tally t[64];
		size_t m = ledger_read(dir, t, 64);

		assert_int_equal(m, (size_t)n - 1);
		for (size_t i = 0; i < m; i++) /* its own call created it */
			assert_int_equal(t[i].created, 1);
	}
	if (strcmp(point, "committed") == 0 ||
	    strcmp(point, "completing") == 0) {
		/* the dead leader's commit stood: resolved from its records,
		 * never applied again */
		assert_true(stats_of(dir).recovered - before.recovered >=
			    (uint64_t)n - 1);
	}
	verify(dir, (size_t)n - 1);
	cq_stats_get(q, &before);
	cqueue_close(q);
	close(fds[0]);
	close(fds[1]);
	th_cleanup(dir);
}

static void test_leader_killed_before_commit_loses_nothing(void **state)
{
	(void)state;
	kill_at("claimed", 6, 0);
	kill_at("applied", 6, 0); /* inside the transaction */
}

static void test_leader_killed_after_commit_gives_each_its_own_result(
	void **state)
{
	(void)state;
	kill_at("committed", 6, 0);
	kill_at("completing", 6, 0);
}

static void test_leader_killed_holding_the_lead_is_replaced(void **state)
{
	(void)state;
	kill_at("leading", 6, 0);
}

static void test_caller_killed_mid_slot_is_reclaimed(void **state)
{
	(void)state;
	kill_at("filling", 6, 0);
}

static void test_caller_killed_while_waiting_is_reclaimed(void **state)
{
	(void)state;
	kill_at("none", 6, 1);
}

/* ---- the storm ---- */

typedef struct storm_arg {
	ef_store *st;
	const char *ledger;
	uint64_t rng;
	int calls;
	int batches;    /* finalize in ef_finalize_batch calls of 1..8 */
} storm_arg;

static void *storm_thread(void *p)
{
	storm_arg *a = p;

	for (int i = 0; i < a->calls;) {
		char rid[8][32], payload[64];
		ef_receive r[8];
		int rcs[8], n = a->batches ? 1 + (int)(a->rng % 8) : 1;

		if (n > a->calls - i)
			n = a->calls - i; /* exactly @calls in all */

		snprintf(payload, sizeof(payload), "{\"by\":%ld}",
			 (long)getpid());
		for (int k = 0; k < n; k++) {
			uint64_t x = th_rng_next(&a->rng);
			snprintf(rid[k], sizeof(rid[k]), "s%03u",
				 (unsigned)(x % 300));
			r[k] = (ef_receive){OWNER, rid[k], 0,
					    x % 3 ? "198.51.100.9" : NULL,
					    payload};
		}
		if (!a->batches)
			rcs[0] = ef_finalize(a->st, &r[0]);
		else if (ef_finalize_batch(a->st, r, (size_t)n, rcs) != EF_OK)
			_exit(93);
		for (int k = 0; k < n; k++) {
			if (rcs[k] != EF_OK && rcs[k] != EF_EXISTS)
				_exit(94);
			ledger_add(a->ledger, rid[k], rcs[k]);
		}
		i += n;
	}
	return NULL;
}

/* A storm worker: 2 threads, each @calls finalizations of reservations
 * that every worker also finalizes. */
static void storm_child(const char *dir, const char *ledger, uint64_t seed,
			int calls)
{
	ef_config cfg = gc_cfg();
	storm_arg a[2];
	pthread_t th[2];
	ef_store *st;

	if (ef_open(&st, dir, &cfg) != EF_OK)
		_exit(95);
	for (int i = 0; i < 2; i++) {
		/* one thread calls one by one, the other in batches */
		a[i] = (storm_arg){st, ledger, seed * 31 + (uint64_t)i, calls,
				   i == 1};
		if (pthread_create(&th[i], NULL, storm_thread, &a[i]) != 0)
			_exit(96);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ef_close(st);
	_exit(0);
}

/* Every other incarnation may take the lone caller's way (as in use), so
 * that kills land on both ways and on callers of both at once. */
static void storm_child_mixed(const char *dir, const char *ledger,
			      int incarnation)
{
	cqueue__never_alone(incarnation % 2);
	storm_child(dir, ledger, (uint64_t)incarnation, 400);
}

static void test_storm_of_kills_loses_and_duplicates_nothing(void **state)
{
	char *dir = th_tmpdir(), ledger[4200];
	enum { WORKERS = 4 };
	pid_t pids[WORKERS];
	int incarnation = 0, kills = 0;
	unsigned long ms = th_env_ulong("EF_CQ_STORM_MS", 3000);
	uint64_t rng = 0xC0FFEEu + (uint64_t)time(NULL);
	struct timespec t0, t;
	(void)state;

	ef_close(th_open(dir, NULL));
	printf("storm seed %llu\n", (unsigned long long)rng);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < WORKERS; i++) {
		snprintf(ledger, sizeof(ledger), "%s/ledger%d", dir,
			 incarnation);
		pids[i] = th_fork(CHILD_ALARM);
		if (pids[i] == 0)
			storm_child_mixed(dir, ledger, incarnation);
		incarnation++;
	}
	for (;;) {
		int i = (int)(th_rng_next(&rng) % WORKERS), status;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000 >= (long)ms)
			break;
		th_sleep_us((long)(1000 + th_rng_next(&rng) % 20000));
		if (kill(pids[i], SIGKILL) == 0)
			kills++; /* unless it had finished: a zombie */
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFSIGNALED(status) ?
				    WTERMSIG(status) == SIGKILL :
				    WEXITSTATUS(status) == 0);
		snprintf(ledger, sizeof(ledger), "%s/ledger%d", dir,
			 incarnation);
		pids[i] = th_fork(CHILD_ALARM);
		if (pids[i] == 0)
			storm_child_mixed(dir, ledger, incarnation);
		incarnation++;
	}
	for (int i = 0; i < WORKERS; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ledgers = incarnation;
	printf("storm: %d kills, %d incarnations, %llu batches, %llu "
	       "recovered, %llu reclaimed, %llu alone\n", kills, incarnation,
	       (unsigned long long)stats_of(dir).batches,
	       (unsigned long long)stats_of(dir).recovered,
	       (unsigned long long)stats_of(dir).reclaimed,
	       (unsigned long long)stats_of(dir).alone);
	verify(dir, 1);
	th_cleanup(dir);
}

/* ---- results as without batching ---- */

/* A script of calls with duplicates and errors; the results of every call
 * and the pages must be the same with group commit as without. */
static void run_script(const char *dir, unsigned flags, int *rcs, size_t n,
		       char **page)
{
	ef_config cfg = {0};
	ef_store *st;
	ef_page p;
	size_t len = 0;
	int64_t now = 1700000000000LL + 3600 * 1000;

	cfg.flags = flags;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &now;
	st = th_open(dir, &cfg);
	for (size_t i = 0; i < n; i++) {
		char rid[32], payload[32];
		ef_receive r = {i % 2 ? "A@Example.com " : "a@example.com",
				rid, 1700000000000LL + (int64_t)i,
				i % 3 ? "203.0.113.5" : NULL, payload};

		snprintf(rid, sizeof(rid), "rid-%zu", i % 7);
		snprintf(payload, sizeof(payload), "{\"call\":%zu}", i);
		if (i == 11)
			r.ip = "bad-ip"; /* refused before any queue */
		rcs[i] = ef_finalize(st, &r);
	}
	assert_int_equal(ef_feed_page(st, "a@example.com", NULL, 100, &p),
			 EF_OK);
	*page = calloc(1, 8192);
	for (size_t i = 0; i < p.count; i++)
		len += (size_t)snprintf(*page + len, 8192 - len, "%s %lld %s\n",
					p.entries[i].reservation_id,
					(long long)p.entries[i].created_ms,
					p.entries[i].payload_json);
	ef_page_free(&p);
	th_assert_consistent(st);
	ef_close(st);
}

static void test_results_are_the_same_as_without_group_commit(void **state)
{
	char *d1 = th_tmpdir(), *d2 = th_tmpdir(), *p1, *p2;
	int r1[20], r2[20];
	(void)state;

	run_script(d1, EF_NO_GROUP_COMMIT, r1, 20, &p1);
	run_script(d2, EF_GROUP_COMMIT, r2, 20, &p2);
	assert_memory_equal(r1, r2, sizeof(r1));
	assert_int_equal(r2[0], EF_OK);
	assert_int_equal(r2[7], EF_EXISTS); /* first write wins */
	assert_int_equal(r2[11], EF_EINVAL);
	assert_string_equal(p1, p2); /* the first entry of each, as written */
	assert_true(stats_of(d2).batched >= 19);
	free(p1);
	free(p2);
	th_cleanup(d1);
	th_cleanup(d2);
}

/* Teardown of the tests that turn the lone way on: off again, failed or
 * not, so that the tests of the queue's mechanics after them keep every
 * request in a slot. */
static int never_alone_again(void **state)
{
	(void)state;
	cqueue__never_alone(1);
	return 0;
}

/* A caller that finds nobody else in the queue commits on its own: no copy
 * into a slot, no token record, the same results; while others are in the
 * queue, callers batch as before. */
static void test_lone_writer_commits_without_the_queue(void **state)
{
	char *d1 = th_tmpdir(), *d2 = th_tmpdir(), *p1, *p2;
	int r1[20], r2[20];
	ef_config cfg = gc_cfg();
	ef_store *st;
	cq_stats s;
	(void)state;

	cqueue__never_alone(0);
	run_script(d1, 0, r1, 20, &p1);
	run_script(d2, EF_GROUP_COMMIT, r2, 20, &p2);
	assert_memory_equal(r1, r2, sizeof(r1));
	assert_string_equal(p1, p2);
	s = stats_of(d2);
	assert_int_equal(s.batched, 0);
	assert_int_equal(s.alone, 19); /* one call was refused before */
	assert_int_equal(s.used, 0);
	st = th_open(d2, &cfg);
	assert_int_equal(th_count_prefix(st, "meta:groupCommit:"), 0);
	ef_close(st);
	free(p1);
	free(p2);
	th_cleanup(d1);
	th_cleanup(d2);
}

/* processes x threads on the same reservations: each created exactly once,
 * every acknowledged one there, and batches shared across processes (lone
 * callers allowed: as in use) */
static void test_processes_and_threads_share_batches(void **state)
{
	char *dir = th_tmpdir(), ledger[4200];
	pid_t pids[4];
	cq_stats s;
	static tally t[4096];
	size_t n;
	(void)state;

	cqueue__never_alone(0);
	ef_close(th_open(dir, NULL));
	for (int i = 0; i < 4; i++) {
		snprintf(ledger, sizeof(ledger), "%s/ledger%d", dir, i);
		pids[i] = th_fork(CHILD_ALARM);
		if (pids[i] == 0)
			storm_child(dir, ledger, (uint64_t)i, 150);
	}
	for (int i = 0; i < 4; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	n = ledger_read(dir, t, 4096);
	for (size_t i = 0; i < n; i++) /* seen by someone: created once */
		assert_int_equal(t[i].created, 1);
	s = stats_of(dir);
	assert_int_equal(s.batched + s.alone, 4 * 2 * 150);
	assert_true(s.batches < s.batched); /* shared transactions */
	printf("%llu finalizations: %llu in %llu transactions, %llu alone\n",
	       (unsigned long long)(s.batched + s.alone),
	       (unsigned long long)s.batched, (unsigned long long)s.batches,
	       (unsigned long long)s.alone);
	verify(dir, n);
	th_cleanup(dir);
}

/* ---- the queue file's limits ---- */

/* A result read from a dead leader's record may belong to a commit that
 * was not synced yet (killed between its meta page and its fsync: visible,
 * not durable). Whoever hands such a result on syncs the store first, so
 * that nothing is acknowledged before it is on disk. */
static void test_result_from_a_record_is_synced_before_it_is_given(void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = gc_cfg();
	ef_receive r = {OWNER, "recorded", 0, "192.0.2.9", "{\"n\":1}"};
	ef_store *st;
	fin_item it;
	cq_ticket t = {.slot = 5};
	uint64_t before;
	(void)state;

	st = th_open(dir, &cfg);
	randombytes_buf(t.token, sizeof(t.token));
	assert_int_equal(fin_prepare(st, &r, feed_now(st), &it), EF_OK);
	assert_int_equal(cqb_resolve(st, &t, &it, feed_now(st)), EF_OK);
	before = store_syncs(st->env);
	/* again: found in the record (not applied twice: created, as the
	 * first call said), and synced before it is returned */
	assert_int_equal(cqb_resolve(st, &t, &it, feed_now(st)), EF_OK);
	assert_true(store_syncs(st->env) > before);
	fin_item_free(&it);
	th_assert_consistent(st);
	ef_close(st);
	th_cleanup(dir);
}

static void test_full_queue_degrades_to_own_commits(void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = gc_cfg();
	ef_store *st;
	cqueue *q;
	fin_item it;
	cq_ticket tk;
	ef_receive r = {OWNER, "filler", 0, NULL, NULL};
	ef_receive mine = {OWNER, "mine", 0, NULL, NULL};
	(void)state;

	st = th_open(dir, &cfg);
	/* every slot taken by requests no leader will take (another tag) */
	assert_int_equal(cqueue_open(dir, 12345, 0, &q), EF_OK);
	assert_int_equal(fin_prepare(st, &r, feed_now(st), &it), EF_OK);
	for (unsigned i = 0; i < CQ_NSLOTS; i++)
		assert_int_equal(cq_submit(q, &it, feed_now(st), &tk), EF_OK);
	assert_int_equal(cq_submit(q, &it, feed_now(st), &tk), CQ_FULL);
	fin_item_free(&it);
	assert_int_equal(ef_finalize(st, &mine), EF_OK); /* not blocked */
	assert_int_equal(ef_finalize(st, &mine), EF_EXISTS);
	assert_int_equal(stats_of(dir).batched, 0);
	ef_close(st);
	cqueue_close(q);
	th_cleanup(dir);
}

/* Damage the queue file of @dir: @how 0 the header's checksum, 1 a slot
 * in an impossible state, 2 a truncated file. */
static void damage(const char *dir, int how)
{
	char path[4200];
	int fd;
	uint32_t seven = 7;

	snprintf(path, sizeof(path), "%s/%s", dir, CQ_FILE);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (how == 0)
		assert_int_equal(pwrite(fd, "XXXX", 4, 24), 4);
	else if (how == 1)
		assert_int_equal(pwrite(fd, &seven, 4, 128 + 5 * 8), 4);
	else
		assert_int_equal(ftruncate(fd, 100), 0);
	close(fd);
}

static void test_damaged_queue_file_is_rebuilt_not_trusted(void **state)
{
	ef_receive r = {OWNER, NULL, 0, NULL, NULL};
	ef_config cfg = gc_cfg();
	(void)state;

	for (int how = 0; how < 3; how++) {
		char *dir = th_tmpdir(), rid[32];
		ef_store *st = th_open(dir, &cfg);

		r.reservation_id = "before";
		assert_int_equal(ef_finalize(st, &r), EF_OK);
		ef_close(st);
		damage(dir, how);
		assert_int_not_equal(cqueue_peek(dir, &(cq_stats){0}), EF_OK);
		st = th_open(dir, &cfg);
		snprintf(rid, sizeof(rid), "after-%d", how);
		r.reservation_id = rid;
		assert_int_equal(ef_finalize(st, &r), EF_OK);
		/* a fresh file: its counters start again */
		assert_int_equal(stats_of(dir).batched, 1);
		th_assert_consistent(st);
		ef_close(st);
		th_cleanup(dir);
	}
}

static void test_queue_damaged_while_mapped_is_replaced(void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = gc_cfg();
	ef_receive r = {OWNER, "one", 0, NULL, NULL};
	ef_store *a, *b;
	(void)state;

	a = th_open(dir, &cfg);
	assert_int_equal(ef_finalize(a, &r), EF_OK);
	damage(dir, 0); /* under a's mapping */
	b = th_open(dir, &cfg); /* rebuilds: a new file, the old retired */
	r.reservation_id = "two";
	assert_int_equal(ef_finalize(b, &r), EF_OK);
	r.reservation_id = "three"; /* a sees the damage and moves over */
	assert_int_equal(ef_finalize(a, &r), EF_OK);
	assert_int_equal(stats_of(dir).batched, 2);
	r.reservation_id = "one";
	assert_int_equal(ef_finalize(a, &r), EF_EXISTS);
	th_assert_consistent(a);
	ef_close(a);
	ef_close(b);
	th_cleanup(dir);
}

static void test_unusable_queue_file_degrades(void **state)
{
	char *dir = th_tmpdir(), path[4200];
	ef_config cfg = gc_cfg();
	ef_receive r = {OWNER, "x", 0, NULL, NULL};
	ef_store *st;
	(void)state;

	cfg.flags = EF_NO_GROUP_COMMIT; /* makes no queue file */
	ef_close(th_open(dir, &cfg));
	cfg.flags = EF_GROUP_COMMIT;
	snprintf(path, sizeof(path), "%s/%s", dir, CQ_FILE);
	assert_int_equal(mkdir(path, 0700), 0); /* cannot be a queue */
	st = th_open(dir, &cfg);
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	assert_int_equal(ef_finalize(st, &r), EF_EXISTS);
	th_assert_consistent(st);
	ef_close(st);
	th_cleanup(dir);
}

static void test_largest_request_fits_a_slot(void **state)
{
	char *dir = th_tmpdir(), owner[400], rid[200], *payload;
	ef_config cfg = gc_cfg();
	ef_store *st;
	ef_entry *e = NULL;
	ef_receive r;
	(void)state;

	/* 106 ':' escape to 318 bytes, +2: 320; 53 ':' to 159, +1: 160 */
	memset(owner, ':', 106);
	strcpy(owner + 106, "ab");
	memset(rid, ':', 53);
	strcpy(rid + 53, "z");
	payload = malloc(EF_PAYLOAD_MAX + 1);
	assert_non_null(payload);
	memset(payload, 'p', EF_PAYLOAD_MAX);
	memcpy(payload, "{\"k\":\"", 6);
	memcpy(payload + EF_PAYLOAD_MAX - 2, "\"}", 2);
	payload[EF_PAYLOAD_MAX] = '\0';
	r = (ef_receive){owner, rid, 0, "2001:db8::1", payload};
	st = th_open(dir, &cfg);
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	assert_int_equal(stats_of(dir).batched, 1); /* through the queue */
	assert_int_equal(ef_get_entry(st, owner, rid, &e), EF_OK);
	assert_string_equal(e->payload_json, payload);
	assert_string_equal(e->ip, "2001:db8::1");
	ef_entry_free(e);
	/* one byte more is refused, queue or not */
	owner[108] = 'c';
	owner[109] = '\0';
	assert_int_equal(ef_finalize(st, &r), EF_EINVAL);
	th_assert_consistent(st);
	ef_close(st);
	free(payload);
	th_cleanup(dir);
}

/* handles of different settings (here the cap; durability is one too)
 * share the file; neither takes the other's requests, neither waits for
 * ever */
static void *mixed_thread(void *p)
{
	ef_store *st = p;

	for (int i = 0; i < 40; i++) {
		char rid[32];
		ef_receive r = {OWNER, rid, 0, NULL, NULL};

		snprintf(rid, sizeof(rid), "m%p-%d", (void *)&rid, i);
		if (ef_finalize(st, &r) != EF_OK)
			return p;
	}
	return NULL;
}

static void test_handles_of_other_settings_are_not_mixed(void **state)
{
	char *dir = th_tmpdir();
	ef_config c1 = gc_cfg(), c2 = gc_cfg();
	ef_store *a, *b;
	pthread_t th[4];
	void *ret;
	(void)state;

	c2.feed_cap = 5000; /* other settings: another tag */
	a = th_open(dir, &c1);
	b = th_open(dir, &c2);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, mixed_thread,
						i % 2 ? a : b), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(stats_of(dir).batched, 160);
	assert_int_equal(stats_of(dir).used, 0);
	th_assert_consistent(a);
	ef_close(a);
	ef_close(b);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_lone_writer_commits_without_the_queue,
			never_alone_again),
		cmocka_unit_test(
			test_results_are_the_same_as_without_group_commit),
		cmocka_unit_test_teardown(
			test_processes_and_threads_share_batches,
			never_alone_again),
		cmocka_unit_test(
			test_result_from_a_record_is_synced_before_it_is_given),
		cmocka_unit_test(test_full_queue_degrades_to_own_commits),
		cmocka_unit_test(
			test_damaged_queue_file_is_rebuilt_not_trusted),
		cmocka_unit_test(test_queue_damaged_while_mapped_is_replaced),
		cmocka_unit_test(test_unusable_queue_file_degrades),
		cmocka_unit_test(test_largest_request_fits_a_slot),
		cmocka_unit_test(test_handles_of_other_settings_are_not_mixed),
		cmocka_unit_test(test_leader_killed_before_commit_loses_nothing),
		cmocka_unit_test(
			test_leader_killed_after_commit_gives_each_its_own_result),
		cmocka_unit_test(
			test_leader_killed_holding_the_lead_is_replaced),
		cmocka_unit_test(test_caller_killed_mid_slot_is_reclaimed),
		cmocka_unit_test(test_caller_killed_while_waiting_is_reclaimed),
		cmocka_unit_test(test_storm_of_kills_loses_and_duplicates_nothing),
	};

	/* the queue's own mechanics are tested with every request going
	 * through a slot; the lone caller's way is tested where it is
	 * turned back on */
	cqueue__never_alone(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

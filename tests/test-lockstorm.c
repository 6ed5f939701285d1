/*
 * test-lockstorm.c - writer processes killed with SIGKILL in quick
 * succession never leave a survivor asleep on a free lock.
 *
 * LMDB's writer and reader-table mutexes are glibc robust futexes in
 * lock.mdb. A process killed right after a wake-up was handed to it (or
 * between releasing such a mutex and waking a waiter), while a third takes
 * the free mutex on the fast path, takes that wake-up with it: the other
 * waiters sleep on a mutex that reads free until some other writer happens
 * to contend, and in a store where nothing else writes, for good
 * (tests/lockview.c). edgefeed serializes the processes that take those
 * mutexes with a lock the kernel hands over itself (store/txnlock.h), so
 * that LMDB's mutexes never have a waiter to lose.
 *
 * STORM_PROCS worker processes each finalize (and read a page every third
 * time) in a loop; the parent kills a random one every few hundred
 * microseconds and starts a replacement. After every kill it asks every
 * worker to stop between two calls ("park") and waits: a worker asleep on a
 * free mutex never parks, as nobody else is writing then to wake it. After
 * STALL_MS without progress the parent looks in lock.mdb, wakes any sleeper
 * on a free LMDB mutex and counts it; the test fails if it ever had to.
 * At the end every acknowledged finalization is in the store, nothing is
 * there that was not attempted, and ef_check finds nothing wrong.
 *
 * EF_STORM_KILLS (default 600) sets the number of kills.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "feed/feed.h"
#include "tests/lockview.h"

#define T0 1790000000000LL
#define STORM_PROCS 4
#define STORM_KILLS_DEFAULT 600
#define OWNERS 4
#define CHILD_ALARM_S 120

enum { CHILD_OK = 0, CHILD_EOPEN = 2, CHILD_EFINALIZE = 3, CHILD_EREAD = 5 };

/* Shared by the parent and every worker (MAP_SHARED | MAP_ANONYMOUS). */
typedef struct storm_shm {
	uint32_t quiet;               /* epoch to park at; 0: run */
	uint32_t stop;                /* 1: finish and exit */
	uint32_t parked[STORM_PROCS]; /* the last epoch each worker parked at */
	uint64_t acked[];             /* [p * incs + inc]: finalizations
				       * acknowledged by that incarnation */
} storm_shm;

typedef struct storm {
	char *dir;
	storm_shm *shm;
	size_t shm_len;
	unsigned long incs;          /* incarnations per worker, at most */
	pid_t pid[STORM_PROCS];
	unsigned long inc[STORM_PROCS]; /* current incarnation */
	lockview lk;
	stall sw;
} storm;

static int64_t test_now = T0;

static ef_config storm_cfg(void)
{
	ef_config cfg = {0};

	cfg.feed_cap = 1000000;
	cfg.flags = EF_NOSYNC;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &test_now;
	return cfg;
}

static void storm_item(int p, unsigned long inc, uint64_t n, char *owner,
		       size_t ocap, char *rid, size_t rcap)
{
	snprintf(owner, ocap, "owner%d@example.com", (int)(n % OWNERS));
	snprintf(rid, rcap, "s%d.%lu.%llu", p, inc, (unsigned long long)n);
}

static uint32_t ld32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* A worker: finalize, read a page every third time, park when asked. */
static int storm_worker(storm *s, int p, unsigned long inc)
{
	ef_config cfg = storm_cfg();
	uint64_t *acked = &s->shm->acked[(size_t)p * s->incs + inc];
	ef_store *st = NULL;
	int rc;

	rc = ef_open(&st, s->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "worker %d: ef_open: %s: %s\n", p,
			ef_err_name(rc), ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	for (uint64_t n = 0; !ld32(&s->shm->stop); n++) {
		char owner[48], rid[48], payload[64];
		ef_receive r = {0};
		uint32_t q = ld32(&s->shm->quiet);

		if (q) {
			__atomic_store_n(&s->shm->parked[p], q,
					 __ATOMIC_RELEASE);
			while (ld32(&s->shm->quiet) == q && !ld32(&s->shm->stop))
				th_sleep_us(100);
		}
		storm_item(p, inc, n, owner, sizeof(owner), rid, sizeof(rid));
		snprintf(payload, sizeof(payload), "{\"n\":%llu}",
			 (unsigned long long)n);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = T0 - 1000 + (int64_t)(n % 1000);
		r.payload_json = payload;
		rc = ef_finalize(st, &r);
		if (rc != EF_OK) {
			fprintf(stderr, "worker %d: ef_finalize(%s): %s: %s\n",
				p, rid, ef_err_name(rc), ef_errmsg(st));
			return CHILD_EFINALIZE;
		}
		__atomic_store_n(acked, n + 1, __ATOMIC_RELEASE);
		if (n % 3 == 0) {
			ef_page pg;

			rc = ef_feed_page(st, owner, NULL, 5, &pg);
			if (rc != EF_OK) {
				fprintf(stderr, "worker %d: ef_feed_page: %s: "
					"%s\n", p, ef_err_name(rc),
					ef_errmsg(st));
				return CHILD_EREAD;
			}
			ef_page_free(&pg);
		}
	}
	ef_close(st);
	return CHILD_OK;
}

static void storm_spawn(storm *s, int p)
{
	pid_t pid = th_fork(CHILD_ALARM_S);

	if (pid == 0)
		_exit(storm_worker(s, p, s->inc[p]));
	s->pid[p] = pid;
}

/* Fail if a worker exited on its own (an error, or its alarm). */
static void storm_reap_early(const storm *s)
{
	for (int p = 0; p < STORM_PROCS; p++) {
		int status;

		if (waitpid(s->pid[p], &status, WNOHANG) == s->pid[p])
			fail_msg("worker %d exited on its own (status 0x%x)", p,
				 status);
	}
}

/* Ask every worker to park and wait until all did; a worker asleep on a
 * free LMDB mutex never does, and stall_watch() finds it. */
static void storm_quiesce(storm *s, uint32_t epoch, const char *where)
{
	int last = -1;

	__atomic_store_n(&s->shm->quiet, epoch, __ATOMIC_RELEASE);
	stall_moved(&s->sw);
	for (;;) {
		int parked = 0;

		for (int p = 0; p < STORM_PROCS; p++)
			parked += ld32(&s->shm->parked[p]) == epoch;
		if (parked == STORM_PROCS)
			break;
		if (parked != last) {
			last = parked;
			stall_moved(&s->sw);
		}
		storm_reap_early(s);
		stall_watch(&s->sw, &s->lk, where);
		th_sleep_us(200);
	}
	__atomic_store_n(&s->shm->quiet, 0, __ATOMIC_RELEASE);
}

static void storm_kill(storm *s, int p)
{
	int status;

	assert_int_equal(kill(s->pid[p], SIGKILL), 0);
	assert_int_equal(waitpid(s->pid[p], &status, 0), s->pid[p]);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail_msg("worker %d ended before the kill (status 0x%x)", p,
			 status);
	s->inc[p]++;
	storm_spawn(s, p);
}

static void storm_stop(storm *s)
{
	__atomic_store_n(&s->shm->stop, 1, __ATOMIC_RELEASE);
	for (int p = 0; p < STORM_PROCS; p++) {
		int status;

		assert_int_equal(waitpid(s->pid[p], &status, 0), s->pid[p]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK)
			fail_msg("worker %d ended with status 0x%x", p, status);
	}
}

/* Every acknowledged finalization is there; the entries number at most the
 * acknowledged ones plus one a killed incarnation (its last attempt may
 * have committed before the kill); ef_check is clean. */
static void storm_verify(const storm *s)
{
	ef_config cfg = storm_cfg();
	ef_store *st = th_open(s->dir, &cfg);
	unsigned long acked = 0, killed = 0;

	for (int p = 0; p < STORM_PROCS; p++) {
		killed += s->inc[p];
		for (unsigned long inc = 0; inc <= s->inc[p]; inc++) {
			uint64_t n = s->shm->acked[(size_t)p * s->incs + inc];

			for (uint64_t k = 0; k < n; k++) {
				char owner[48], rid[48];
				ef_entry *e = NULL;

				storm_item(p, inc, k, owner, sizeof(owner), rid,
					   sizeof(rid));
				if (ef_get_entry(st, owner, rid, &e) != EF_OK)
					fail_msg("acknowledged %s/%s is missing",
						 owner, rid);
				ef_entry_free(e);
			}
			acked += n;
		}
	}
	{
		size_t entries = th_count_prefix(st, KEY_P_ENTRY);

		printf("lockstorm: %lu finalizations acknowledged, %zu "
		       "entries\n", acked, entries);
		assert_true(entries >= acked);
		assert_true(entries <= acked + killed);
	}
	th_assert_consistent(st);
	ef_close(st);
}

static void test_lockstorm_killed_writers_leave_nobody_asleep_on_a_free_lock(
	void **state)
{
	unsigned long kills = th_env_ulong("EF_STORM_KILLS",
					   STORM_KILLS_DEFAULT);
	uint64_t rng = 0x5eed5eedULL;
	storm s;

	(void)state;
	lk_calibrate();
	memset(&s, 0, sizeof(s));
	s.dir = th_tmpdir();
	s.incs = kills + 1;
	s.shm_len = sizeof(storm_shm) + STORM_PROCS * s.incs * sizeof(uint64_t);
	s.shm = mmap(NULL, s.shm_len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s.shm != MAP_FAILED);
	{
		/* create the store before the workers race to */
		ef_config cfg = storm_cfg();
		ef_close(th_open(s.dir, &cfg));
	}
	lk_map(s.dir, &s.lk);
	for (int p = 0; p < STORM_PROCS; p++)
		storm_spawn(&s, p);
	for (unsigned long k = 0; k < kills; k++) {
		char where[48];

		th_sleep_us(200 + th_rng_next(&rng) % 2800);
		storm_kill(&s, (int)(th_rng_next(&rng) % STORM_PROCS));
		snprintf(where, sizeof(where), "kill %lu", k + 1);
		storm_quiesce(&s, (uint32_t)k + 1, where);
	}
	storm_stop(&s);
	printf("lockstorm: %lu kills of %d writer processes; survivors found "
	       "asleep on a free LMDB mutex: %lu\n", kills, STORM_PROCS,
	       s.sw.rescues);
	if (s.sw.rescues)
		fail_msg("%lu times a survivor slept on a free LMDB mutex (a "
			 "wake-up lost to a kill) until the test woke it",
			 s.sw.rescues);
	storm_verify(&s);
	lk_unmap(&s.lk);
	munmap(s.shm, s.shm_len);
	th_cleanup(s.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_lockstorm_killed_writers_leave_nobody_asleep_on_a_free_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-group.c - group commit (EF_GROUP_COMMIT): concurrent finalizations of
 * one process share transactions, and each caller still gets its own,
 * correct result; across processes nothing is lost or duplicated.
 */
#include "tests/helpers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
#define PER_THREAD 150
#define RESERVATIONS 600 /* each finalized by several threads */

typedef struct worker {
	ef_store *st;
	int id;
	int ok[RESERVATIONS];     /* EF_OK results per reservation */
	int exists[RESERVATIONS]; /* EF_EXISTS results */
	int bad;                  /* any other result */
	int poison_rc;            /* result for the poisoned reservation */
} worker;

/* The poisoned reservation's time: an hour ago, so that it is neither
 * stale nor ahead of the clock (finalize refuses that) on any date. */
static int64_t poison_ms;

static void *work(void *p)
{
	worker *w = p;
	char owner[32], rid[32];
	unsigned x = 77u + (unsigned)w->id;

	for (int i = 0; i < PER_THREAD * 3; i++) {
		int r, rc;
		ef_receive rec = {owner, rid, 0, "198.51.100.4",
				  "{\"fileName\":\"f\"}"};

		x = x * 1103515245u + 12345u;
		r = (int)((x >> 8) % RESERVATIONS);
		snprintf(owner, sizeof(owner), "owner%d@example.com", r % 5);
		snprintf(rid, sizeof(rid), "rsv-%04d", r);
		if (i % 50 == 7) {
			/* bad input is refused before it joins a batch */
			rec.ip = "not-an-ip";
			if (ef_finalize(w->st, &rec) != EF_EINVAL)
				w->bad++;
			continue;
		}
		if (i % 40 == 3) {
			snprintf(owner, sizeof(owner), "poison@example.com");
			snprintf(rid, sizeof(rid), "poisoned");
			rec.created_ms = poison_ms; /* the poisoned key's */
			w->poison_rc = ef_finalize(w->st, &rec);
			continue;
		}
		rc = ef_finalize(w->st, &rec);
		if (rc == EF_OK)
			w->ok[r]++;
		else if (rc == EF_EXISTS)
			w->exists[r]++;
		else
			w->bad++;
	}
	return NULL;
}

static void test_group_commit_gives_each_caller_its_own_result(void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = {0};
	ef_store *st;
	worker *w = calloc(THREADS, sizeof(*w));
	pthread_t th[THREADS];
	int total_ok = 0;
	ef_stat_info si;
	(void)state;

	cfg.flags = EF_GROUP_COMMIT; /* durable: each batch is synced */
	cfg.feed_cap = 1000;
	st = th_open(dir, &cfg);
	/* an entry key without its index: finalizing "poisoned" fails with
	 * EF_ECORRUPT inside the transaction, in whatever batch it lands */
	{
		ef_receive r = {"poison@example.com", "poisoned", poison_ms,
				NULL, NULL};
		char key[80];

		snprintf(key, sizeof(key),
			 "recentReceive:poison@example.com:%013lld:poisoned",
			 (long long)(EF_CREATED_MAX - poison_ms));
		th_put_raw(st, key, "x", 1);
		assert_int_equal(ef_finalize(st, &r), EF_ECORRUPT);
	}
	for (int i = 0; i < THREADS; i++) {
		w[i].st = st;
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int r = 0; r < RESERVATIONS; r++) {
		int ok = 0, seen = 0;
		for (int i = 0; i < THREADS; i++) {
			ok += w[i].ok[r];
			seen += w[i].ok[r] + w[i].exists[r];
		}
		/* exactly one caller created it; the rest saw a duplicate */
		if (seen > 0)
			assert_int_equal(ok, 1);
		total_ok += ok;
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].bad, 0);
		assert_int_equal(w[i].poison_rc, EF_ECORRUPT);
	}
	assert_int_equal(ef_stat(st, &si), EF_OK);
	/* every created entry is there once (+1: the poisoned raw key) */
	assert_int_equal(si.entries, (uint64_t)total_ok + 1);
	assert_int_equal(si.index_keys, (uint64_t)total_ok);
	ef_close(st);
	free(w);
	th_cleanup(dir);
}

static void test_group_commit_lone_caller_and_reopen(void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = {0};
	ef_store *st;
	ef_receive r = {"a@x", "r1", 0, NULL, NULL};
	ef_page p;
	(void)state;

	cfg.flags = EF_GROUP_COMMIT;
	st = th_open(dir, &cfg);
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	assert_int_equal(ef_finalize(st, &r), EF_EXISTS);
	ef_close(st);
	st = th_open(dir, NULL);
	assert_int_equal(ef_feed_page(st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 1);
	ef_page_free(&p);
	th_assert_consistent(st);
	ef_close(st);
	th_cleanup(dir);
}

/* Child: 4 threads with group commit; writes "rid rc" lines to @ledger. */
static void child(const char *dir, int idx, const char *ledger)
{
	ef_config cfg = {0};
	ef_store *st;
	worker w[4];
	pthread_t th[4];
	FILE *f;

	cfg.flags = EF_GROUP_COMMIT;
	cfg.feed_cap = 1000;
	if (ef_open(&st, dir, &cfg) != EF_OK)
		_exit(2);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 4; i++) {
		w[i].st = st;
		w[i].id = 100 * idx + i;
		if (pthread_create(&th[i], NULL, work, &w[i]) != 0)
			_exit(3);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	f = fopen(ledger, "w");
	if (!f)
		_exit(4);
	for (int r = 0; r < RESERVATIONS; r++) {
		int ok = 0;
		for (int i = 0; i < 4; i++)
			ok += w[i].ok[r];
		fprintf(f, "%d %d\n", r, ok);
	}
	fclose(f);
	for (int i = 0; i < 4; i++)
		if (w[i].bad)
			_exit(5);
	ef_close(st);
	_exit(0);
}

static void test_group_commit_across_processes_loses_nothing(void **state)
{
	char *dir = th_tmpdir(), ledger[4][600];
	int ok[RESERVATIONS] = {0}, total = 0;
	pid_t pids[4];
	ef_store *st;
	ef_stat_info si;
	(void)state;

	ef_close(th_open(dir, NULL));
	for (int i = 0; i < 4; i++) {
		snprintf(ledger[i], sizeof(ledger[i]), "%s/ledger%d", dir, i);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			child(dir, i, ledger[i]);
	}
	for (int i = 0; i < 4; i++) {
		int status;
		FILE *f;
		int r, n;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		f = fopen(ledger[i], "r");
		assert_non_null(f);
		while (fscanf(f, "%d %d", &r, &n) == 2)
			ok[r] += n;
		fclose(f);
	}
	for (int r = 0; r < RESERVATIONS; r++) {
		assert_true(ok[r] <= 1); /* never created twice */
		total += ok[r];
	}
	{
		ef_config cfg = {0};
		cfg.feed_cap = 1000; /* read with the writers' cap */
		st = th_open(dir, &cfg);
	}
	assert_int_equal(ef_stat(st, &si), EF_OK);
	/* + "poisoned", which no raw key poisons in this store */
	assert_int_equal(si.index_keys, (uint64_t)total + 1);
	/* every acknowledged creation is in a feed page, once */
	{
		int found = 0;
		for (int o = 0; o < 5; o++) {
			char owner[32];
			ef_page p;
			snprintf(owner, sizeof(owner), "owner%d@example.com", o);
			assert_int_equal(ef_feed_page(st, owner, NULL, 1000, &p),
					 EF_OK);
			for (size_t i = 0; i < p.count; i++) {
				int r = atoi(p.entries[i].reservation_id + 4);
				assert_int_equal(ok[r], 1);
				found++;
			}
			ef_page_free(&p);
		}
		assert_int_equal(found, total);
	}
	th_assert_consistent(st);
	ef_close(st);
	th_cleanup(dir);
}

int main(void)
{
	struct timespec ts;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_group_commit_gives_each_caller_its_own_result),
		cmocka_unit_test(test_group_commit_lone_caller_and_reopen),
		cmocka_unit_test(
			test_group_commit_across_processes_loses_nothing),
	};

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 1;
	poison_ms = (int64_t)ts.tv_sec * 1000 - 3600 * 1000;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

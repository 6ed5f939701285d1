/*
 * test-txnlock.c - txn.lock (store/txnlock.h) belongs to the process that
 * takes it: held by a write transaction, it keeps other processes out; a
 * forked child does not inherit it; when its holder is killed, the next
 * writer goes on at once, even while children forked by the killed process
 * still live (an flock would stay held by them); and the threads of one
 * process take turns at it.
 *
 * And opening a store: the first process to open it (re)initializes LMDB's
 * lock region (lock.mdb), setting its last transaction id to 0 until it is
 * done. Killed in between while another process waits to open, that one
 * found the region "initialized" and wrote on top of a stale snapshot: the
 * last transaction before it was lost. Opens take txn.lock too, so the next
 * opener initializes the region again.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "feed/feed.h"
#include "store/txnlock.h"
#include "tests/lockview.h"

#define T0 1790000000000LL
#define CHILD_ALARM_S 60

static int64_t test_now = T0;

static ef_config cfg_nosync(void)
{
	ef_config cfg = {0};

	cfg.flags = EF_NOSYNC;
	cfg.feed_cap = 1000000; /* never trim what a test counts */
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &test_now;
	return cfg;
}

/* The one kind of finalization these tests make. */
static ef_receive receive_of(const char *rid)
{
	ef_receive r = {0};

	r.owner = "alice@example.com";
	r.reservation_id = rid;
	r.created_ms = T0 - 1000;
	r.payload_json = "{}";
	return r;
}

/* The process holding txn.lock in @dir (F_GETLK), or 0 if none. */
static pid_t lock_owner(const char *dir)
{
	char path[PATH_MAX];
	struct flock fl;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, TXNLOCK_FILE);
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_len = 1;
	assert_int_equal(fcntl(fd, F_GETLK, &fl), 0);
	close(fd);
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

static int wait_byte(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char c;

	return poll(&p, 1, ms) > 0 && read(fd, &c, 1) == 1;
}

typedef struct hold {
	int sig_fd;
	int child_fd; /* the forked child says it runs */
} hold;

/* Inside a write transaction: fork a child that just lives on, say so,
 * and wait for the kill. */
static int hold_txn(store_txn *t, void *p)
{
	hold *h = p;
	char c = 'h';
	pid_t child;

	(void)t;
	child = fork();
	if (child == 0) {
		alarm(CHILD_ALARM_S);
		(void)!write(h->child_fd, &c, 1);
		for (;;)
			pause();
	}
	(void)!write(h->sig_fd, &c, 1);
	for (;;)
		pause();
	return EF_OK;
}

/* A process whose writer holds txn.lock and forks a child, then is killed:
 * the lock is free again at once although the child lives, and another
 * process finalizes. The child never held it. */
static void test_txnlock_killed_holder_frees_it_though_its_child_lives(
	void **state)
{
	char *dir = th_tmpdir();
	int sig[2], kid[2], status;
	pid_t holder, child = 0;
	ef_config cfg = cfg_nosync();
	ef_store *st;
	ef_receive r = receive_of("after-kill");

	(void)state;
	ef_close(th_open(dir, &cfg));
	assert_int_equal(pipe(sig), 0);
	assert_int_equal(pipe(kid), 0);
	holder = th_fork(CHILD_ALARM_S);
	if (holder == 0) {
		hold h = {sig[1], kid[1]};
		ef_store *hs = NULL;

		if (ef_open(&hs, dir, &cfg) != EF_OK)
			_exit(2);
		(void)store_write(hs->env, hold_txn, &h);
		_exit(3);
	}
	assert_true(wait_byte(sig[0], 30000));
	assert_true(wait_byte(kid[0], 30000));
	assert_int_equal(lock_owner(dir), holder);

	/* the child's pid: the holder's only child */
	{
		char path[64], buf[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children",
			 (long)holder, (long)holder);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_non_null(fgets(buf, sizeof(buf), f));
		fclose(f);
		child = (pid_t)atol(buf);
		assert_true(child > 0);
	}

	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(waitpid(holder, &status, 0), holder);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(kill(child, 0), 0); /* still alive */
	assert_int_equal(lock_owner(dir), 0);

	alarm(30); /* a hang here is the failure */
	st = th_open(dir, &cfg);
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	alarm(0);
	th_assert_consistent(st);
	ef_close(st);
	assert_int_equal(kill(child, SIGKILL), 0);
	close(sig[0]);
	close(sig[1]);
	close(kid[0]);
	close(kid[1]);
	th_cleanup(dir);
}

typedef struct turns {
	txnlock *l;
	int inside;   /* threads between take and give (atomic) */
	int most;     /* the most seen at once */
	pthread_mutex_t mu;
} turns;

static void *turn_thread(void *p)
{
	turns *t = p;

	for (int i = 0; i < 2000; i++) {
		int now;

		txnlock_take(t->l);
		now = __atomic_add_fetch(&t->inside, 1, __ATOMIC_ACQ_REL);
		pthread_mutex_lock(&t->mu);
		if (now > t->most)
			t->most = now;
		pthread_mutex_unlock(&t->mu);
		if (i % 64 == 0)
			th_sleep_us(50);
		__atomic_sub_fetch(&t->inside, 1, __ATOMIC_ACQ_REL);
		txnlock_give(t->l);
	}
	return NULL;
}

/* The threads of one process exclude each other (a POSIX record lock does
 * not), and two opens of one store in a process share one lock, so that
 * closing one does not drop the other's. */
static void test_txnlock_threads_take_turns_and_opens_share_one_lock(
	void **state)
{
	char *dir = th_tmpdir();
	turns t;
	txnlock *second = NULL;
	pthread_t th[4];

	(void)state;
	memset(&t, 0, sizeof(t));
	pthread_mutex_init(&t.mu, NULL);
	assert_int_equal(txnlock_open(dir, 0, &t.l), EF_OK);
	assert_non_null(t.l);
	assert_int_equal(txnlock_open(dir, 0, &second), EF_OK);
	assert_ptr_equal(second, t.l);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, turn_thread, &t),
				 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(t.most, 1);

	/* (no lock_owner() here: its close would drop our own lock) */
	txnlock_take(t.l);
	txnlock_close(second); /* must not drop the lock held */
	{
		pid_t pid = th_fork(CHILD_ALARM_S);

		if (pid == 0)
			_exit(lock_owner(dir) == getppid() ? 0 : 1);
		{
			int status;

			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
	}
	txnlock_give(t.l);
	txnlock_close(t.l);
	pthread_mutex_destroy(&t.mu);
	th_cleanup(dir);
}

static void fin_one(ef_store *st, const char *rid)
{
	ef_receive r = receive_of(rid);
	int rc = ef_finalize(st, &r);
	if (rc != EF_OK)
		fail_msg("finalize %s: %s: %s", rid, ef_err_name(rc),
			 ef_errmsg(st));
}

#define INIT_TRIES 400  /* opens stopped until this many landed in time */
#define INIT_HITS 12    /* kills inside the initialization wanted */

/*
 * Stop a process inside LMDB's initialization of lock.mdb (the region's
 * transaction id reads 0 while the data file has committed transactions),
 * start a second opener that writes one entry, kill the first: nothing
 * committed before may be lost, and the second's entry must be there.
 */
static void test_open_killed_while_it_initializes_lock_mdb_loses_nothing(
	void **state)
{
	char *dir = th_tmpdir();
	ef_config cfg = cfg_nosync();
	int hits = 0, tries = 0, committed = 0;
	lockview lv;
	ef_store *st;

	(void)state;
	lk_calibrate();
	if (lk_layout_ok != 1) {
		print_message("skipped: lock.mdb is not laid out as expected\n");
		th_cleanup(dir);
		skip();
	}
	st = th_open(dir, &cfg);
	fin_one(st, "first");
	committed++;
	ef_close(st);
	lk_map(dir, &lv);
	while (hits < INIT_HITS && tries < INIT_TRIES) {
		char rid[32], after[32];
		pid_t a, b;
		int status;

		tries++;
		/* the latest transaction: written, then nobody has it open */
		st = th_open(dir, &cfg);
		snprintf(rid, sizeof(rid), "latest-%d", tries);
		fin_one(st, rid);
		committed++;
		ef_close(st);

		a = th_fork(CHILD_ALARM_S);
		if (a == 0) {
			ef_store *s2 = NULL;

			_exit(ef_open(&s2, dir, &cfg) == EF_OK ? 0 : 2);
		}
		while (lk_txnid(&lv) != 0 && waitpid(a, &status, WNOHANG) == 0)
			;
		kill(a, SIGSTOP);
		if (waitpid(a, &status, WUNTRACED) != a || !WIFSTOPPED(status) ||
		    lk_txnid(&lv) != 0) {
			/* missed the window: it ran past it, or finished */
			kill(a, SIGKILL);
			waitpid(a, &status, 0);
			continue;
		}
		hits++;
		snprintf(after, sizeof(after), "after-%d", tries);
		b = th_fork(CHILD_ALARM_S);
		if (b == 0) {
			ef_store *s2 = NULL;
			ef_receive r = receive_of(after);

			if (ef_open(&s2, dir, &cfg) != EF_OK)
				_exit(2);
			_exit(ef_finalize(s2, &r) == EF_OK ? 0 : 3);
		}
		th_sleep_us(50000); /* b waits for the lock */
		assert_int_equal(kill(a, SIGKILL), 0);
		assert_int_equal(waitpid(a, &status, 0), a);
		assert_int_equal(waitpid(b, &status, 0), b);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		committed++;
		st = th_open(dir, &cfg);
		{
			ef_entry *e = NULL;

			if (ef_get_entry(st, "alice@example.com", rid, &e) != EF_OK)
				fail_msg("try %d: %s, committed before the "
					 "killed open, is lost", tries, rid);
			ef_entry_free(e);
			if (ef_get_entry(st, "alice@example.com", after, &e) !=
			    EF_OK)
				fail_msg("try %d: %s, acknowledged after the "
					 "killed open, is lost", tries, after);
			ef_entry_free(e);
		}
		assert_int_equal(th_count_prefix(st, KEY_P_ENTRY),
				 (size_t)committed);
		th_assert_consistent(st);
		ef_close(st);
	}
	print_message("%d opens stopped inside the initialization of "
		      "lock.mdb in %d tries; nothing lost\n", hits, tries);
	if (hits == 0)
		fail_msg("no open was stopped inside the initialization in %d "
			 "tries: the test proves nothing here", tries);
	lk_unmap(&lv);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_txnlock_killed_holder_frees_it_though_its_child_lives),
		cmocka_unit_test(
			test_txnlock_threads_take_turns_and_opens_share_one_lock),
		cmocka_unit_test(
			test_open_killed_while_it_initializes_lock_mdb_loses_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-multiprocess.c - finalizations from many processes (and threads) at
 * once, for real: nothing is lost, nothing is duplicated, first write wins,
 * and paging stays stable while others write.
 *
 * Every child process opens its own ef_store after fork() and reports
 * through a ledger file (one line per call). The parent holds no store across
 * fork(); once every child has exited it checks the store with a fresh handle
 * against the ledgers. Children never call cmocka: they _exit() with a status
 * that the parent asserts, and say what went wrong on stderr.
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"

#define CHILD_ALARM_S 120 /* a deadlocked child dies instead of hanging */
#define WORKERS_MAX 64    /* created_ms spacing: one slot per worker */
#define FEED_CAP 1000u    /* large enough that nothing is trimmed */

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

/* Exit statuses of children, so a failure says what kind it was. */
enum {
	CHILD_OK = 0,
	CHILD_EFINALIZE = 1, /* a call returned something unexpected */
	CHILD_EOPEN = 2,     /* ef_open failed */
	CHILD_ELEDGER = 3,   /* cannot write the ledger */
	CHILD_ETHREAD = 4,   /* cannot start a thread */
	CHILD_EREAD = 5,     /* a read failed or saw something wrong */
};

typedef int (*child_fn)(void *ctx, int idx);

/* Pipe ends that only the parent may hold: a child closes its copies, so
 * that the parent's close() is what the readers see as EOF. */
static int parent_only_fds[8];
static int parent_only_n;

static void parent_only(int fd)
{
	assert_true(parent_only_n < 8);
	parent_only_fds[parent_only_n++] = fd;
}

static void parent_only_close(void)
{
	for (int i = 0; i < parent_only_n; i++)
		close(parent_only_fds[i]);
	parent_only_n = 0;
}

/* In a child: undo cmocka's signal handlers (a crash must kill the child,
 * not resume the test runner in it), drop the parent's pipe ends and bound
 * its life. */
static void child_setup(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS,
				   SIGABRT};

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

/* Reap every child (none may outlive the test); the number that failed. */
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

static void wait_children(const pid_t *pids, int n)
{
	assert_int_equal(reap_children(pids, n), 0);
}

/* Block until the parent closes the write end of the "go" pipe (EOF). */
static void wait_go(int fd)
{
	char b;
	ssize_t n;

	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
}

/* ---- the scenario of one concurrent run -------------------------------- */

typedef struct scenario {
	char dir[PATH_MAX];     /* store directory (created by the children) */
	char ledgers[PATH_MAX]; /* directory of the ledger files */
	int procs;              /* child processes */
	int threads;            /* threads per process, sharing one ef_store */
	int owners;             /* distinct owners */
	int res;                /* reservations per owner */
	int share;              /* workers per reservation; 0: every worker */
	unsigned flags;         /* EF_NOSYNC or 0 */
	int64_t base_ms;        /* created_ms of the oldest reservation */
	int go_fd;              /* read end of the "go" pipe (children) */
} scenario;

static int workers(const scenario *sc)
{
	return sc->procs * sc->threads;
}

static int items(const scenario *sc)
{
	return sc->owners * sc->res;
}

/* How many workers finalize each reservation. */
static int coverage(const scenario *sc)
{
	return sc->share && sc->share < workers(sc) ? sc->share : workers(sc);
}

/* Does worker @w finalize item @j? Item j is handled by the workers
 * j, j-1, ..., j-share+1 (mod W): exactly coverage() of them. */
static int covers(const scenario *sc, int w, int j)
{
	int nw = workers(sc);
	return ((j - w) % nw + nw) % nw < coverage(sc);
}

static ef_config scenario_cfg(const scenario *sc)
{
	ef_config cfg = {0};

	cfg.feed_cap = FEED_CAP;
	cfg.flags = sc->flags;
	return cfg;
}

/* An hour ago: fresh, and older than anything "now" would give. */
/* The store's location for a test whose files go in @tmp: "@tmp/store",
 * or a fresh store on the test cluster (helpers.h th_store). */
static void store_at(char *buf, size_t cap, const char *tmp)
{
	char *s;

	if (!th_redis()) {
		snprintf(buf, cap, "%s/store", tmp);
		return;
	}
	s = th_store();
	snprintf(buf, cap, "%s", s);
	free(s);
}

static int64_t hour_ago_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 - 3600 * 1000;
}

static void scenario_init(scenario *sc, const char *tmp)
{
	memset(sc, 0, sizeof(*sc));
	store_at(sc->dir, sizeof(sc->dir), tmp);
	snprintf(sc->ledgers, sizeof(sc->ledgers), "%s", tmp);
	sc->base_ms = hour_ago_ms();
	sc->threads = 1;
	sc->go_fd = -1;
}

/* Spellings of one owner that canonicalize to "owner<o>@example.com": every
 * worker must land on the same key whichever it uses. */
static void owner_spelling(char *buf, size_t cap, int o, int variant)
{
	switch (variant % 3) {
	case 0:
		snprintf(buf, cap, "owner%d@example.com", o);
		break;
	case 1:
		snprintf(buf, cap, "OWNER%d@EXAMPLE.COM", o);
		break;
	default:
		snprintf(buf, cap, "  Owner%d@Example.Com ", o);
		break;
	}
}

/* What worker @w writes for item @j (so the parent can tell whose write won). */
static void item_rid(char *buf, size_t cap, int r)
{
	snprintf(buf, cap, "rsv:%04d", r);
}

static void item_payload(char *buf, size_t cap, int w, int o, int r)
{
	snprintf(buf, cap, "{\"w\":%d,\"o\":%d,\"r\":%d}", w, o, r);
}

static void item_ip(char *buf, size_t cap, int w)
{
	snprintf(buf, cap, "192.0.2.%d", w + 1);
}

static int64_t item_created(const scenario *sc, int j, int w)
{
	/* workers disagree on created_ms: a duplicate would be a second entry
	 * key, so only the uniqueness index can stop it */
	return sc->base_ms + (int64_t)j * WORKERS_MAX + w;
}

/* xorshift64*: a per-worker order, reproducible from the worker number. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void shuffle(int *a, int n, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (int i = n - 1; i > 0; i--) {
		int k = (int)(rng_next(&s) % (uint64_t)(i + 1));
		int t = a[i];
		a[i] = a[k];
		a[k] = t;
	}
}

/* Worker @w: finalize its items in its own order, one ledger line each
 * ("owner reservation rc"). Runs in a child; returns a CHILD_* status. */
static int worker_run(ef_store *st, const scenario *sc, int w)
{
	char path[PATH_MAX + 32], owner[64], rid[32], payload[96], ip[32];
	int n = 0, status = CHILD_OK;
	int *order = malloc((size_t)items(sc) * sizeof(*order));
	FILE *led;

	if (!order)
		return CHILD_EFINALIZE;
	for (int j = 0; j < items(sc); j++)
		if (covers(sc, w, j))
			order[n++] = j;
	shuffle(order, n, (uint64_t)w + 1);
	snprintf(path, sizeof(path), "%s/ledger.%d", sc->ledgers, w);
	led = fopen(path, "w");
	if (!led) {
		free(order);
		return CHILD_ELEDGER;
	}
	for (int i = 0; i < n; i++) {
		int j = order[i], o = j / sc->res, r = j % sc->res, rc;
		ef_receive rcv;

		owner_spelling(owner, sizeof(owner), o, w);
		item_rid(rid, sizeof(rid), r);
		item_payload(payload, sizeof(payload), w, o, r);
		item_ip(ip, sizeof(ip), w);
		rcv.owner = owner;
		rcv.reservation_id = rid;
		rcv.created_ms = item_created(sc, j, w);
		rcv.ip = ip;
		rcv.payload_json = payload;
		rc = ef_finalize(st, &rcv);
		fprintf(led, "%d %d %d\n", o, r, rc);
		if (rc != EF_OK && rc != EF_EXISTS) {
			fprintf(stderr,
				"worker %d: ef_finalize('%s', '%s') = %s: %s\n",
				w, owner, rid, ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EFINALIZE;
			break;
		}
	}
	if (fclose(led) != 0 && status == CHILD_OK)
		status = CHILD_ELEDGER;
	free(order);
	return status;
}

typedef struct worker_thread {
	pthread_t tid;
	ef_store *st;
	const scenario *sc;
	int w;
	int status;
} worker_thread;

static void *worker_thread_main(void *p)
{
	worker_thread *t = p;

	t->status = worker_run(t->st, t->sc, t->w);
	return NULL;
}

/* One child process: wait for "go", open its own store, run its workers
 * (threads sharing the one handle), close. */
static int scenario_child(void *ctx, int p)
{
	const scenario *sc = ctx;
	ef_config cfg = scenario_cfg(sc);
	worker_thread th[16];
	ef_store *st = NULL;
	int rc, status = CHILD_OK, started = 0;

	wait_go(sc->go_fd);
	rc = ef_open(&st, sc->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "process %d: ef_open: %s: %s\n", p,
			ef_err_name(rc), ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	if (sc->threads <= 1) {
		status = worker_run(st, sc, p);
	} else {
		for (int t = 0; t < sc->threads && t < 16; t++) {
			th[t].st = st;
			th[t].sc = sc;
			th[t].w = p * sc->threads + t;
			th[t].status = CHILD_OK;
			if (pthread_create(&th[t].tid, NULL, worker_thread_main,
					   &th[t]) != 0) {
				status = CHILD_ETHREAD;
				break;
			}
			started++;
		}
		for (int t = 0; t < started; t++) {
			pthread_join(th[t].tid, NULL);
			if (th[t].status != CHILD_OK)
				status = th[t].status;
		}
	}
	ef_close(st);
	return status;
}

/* Fork the scenario's processes, release them at once, and reap them. */
static void scenario_run(scenario *sc)
{
	pid_t pids[WORKERS_MAX];
	int go[2];

	assert_true(sc->procs >= 1 && sc->procs <= WORKERS_MAX);
	assert_true(sc->threads >= 1 && sc->threads <= 16);
	assert_true(workers(sc) <= WORKERS_MAX);
	assert_int_equal(pipe(go), 0);
	sc->go_fd = go[0];
	parent_only(go[1]);
	for (int p = 0; p < sc->procs; p++)
		pids[p] = spawn(scenario_child, sc, p);
	parent_only_close(); /* go: every child opens its store now */
	close(go[0]);
	wait_children(pids, sc->procs);
}

/* ---- checking a finished run against its ledgers ----------------------- */

typedef struct ledger_sum {
	int *calls;  /* per item: calls made, by all workers */
	int *oks;    /* per item: EF_OK answers */
	int *winner; /* per item: the worker that got EF_OK, or -1 */
	long total_ok;
} ledger_sum;

static void ledgers_read(const scenario *sc, ledger_sum *ls)
{
	int n = items(sc);

	ls->calls = calloc((size_t)n, sizeof(int));
	ls->oks = calloc((size_t)n, sizeof(int));
	ls->winner = malloc((size_t)n * sizeof(int));
	assert_non_null(ls->calls);
	assert_non_null(ls->oks);
	assert_non_null(ls->winner);
	ls->total_ok = 0;
	for (int j = 0; j < n; j++)
		ls->winner[j] = -1;
	for (int w = 0; w < workers(sc); w++) {
		char path[PATH_MAX + 32];
		int o, r, rc;
		FILE *f;

		snprintf(path, sizeof(path), "%s/ledger.%d", sc->ledgers, w);
		f = fopen(path, "r");
		if (!f)
			fail_msg("ledger of worker %d is missing", w);
		while (fscanf(f, "%d %d %d", &o, &r, &rc) == 3) {
			int j = o * sc->res + r;

			assert_true(o >= 0 && o < sc->owners);
			assert_true(r >= 0 && r < sc->res);
			assert_true(covers(sc, w, j));
			ls->calls[j]++;
			if (rc == EF_OK) {
				ls->oks[j]++;
				ls->winner[j] = w;
				ls->total_ok++;
			} else if (rc != EF_EXISTS) {
				fail_msg("worker %d: item %d/%d gave %s", w, o,
					 r, ef_err_name(rc));
			}
		}
		fclose(f);
	}
}

static void ledgers_free(ledger_sum *ls)
{
	free(ls->calls);
	free(ls->oks);
	free(ls->winner);
}

/* Read @owner's whole feed with ef_feed_page, following next_cursor, into
 * one array of pages' entries (pages kept so the strings stay valid). */
typedef struct full_feed {
	ef_page pages[64];
	size_t npages;
	size_t count;
} full_feed;

static void feed_read_all(ef_store *st, const char *owner, size_t limit,
			  full_feed *ff)
{
	const char *cursor = NULL;

	memset(ff, 0, sizeof(*ff));
	do {
		ef_page *pg;
		int rc;

		assert_true(ff->npages < sizeof(ff->pages) / sizeof(*ff->pages));
		pg = &ff->pages[ff->npages++];
		rc = ef_feed_page(st, owner, cursor, limit, pg);
		if (rc != EF_OK)
			fail_msg("ef_feed_page(%s): %s: %s", owner,
				 ef_err_name(rc), ef_errmsg(st));
		ff->count += pg->count;
		cursor = pg->next_cursor;
	} while (cursor);
}

static void feed_free_all(full_feed *ff)
{
	for (size_t i = 0; i < ff->npages; i++)
		ef_page_free(&ff->pages[i]);
}

/* Check one entry of owner @o's feed against the ledgers: a reservation of
 * this run, not seen before, written by its winner, no newer than @prev. */
static void entry_check(const scenario *sc, const ledger_sum *ls, int o,
			const ef_entry *e, int64_t prev, char *seen)
{
	char rid[32], payload[96], ip[32];
	int r = -1, j, w;

	assert_int_equal(sscanf(e->reservation_id, "rsv:%d", &r), 1);
	assert_true(r >= 0 && r < sc->res);
	item_rid(rid, sizeof(rid), r);
	assert_string_equal(e->reservation_id, rid);
	j = o * sc->res + r;
	if (seen[j])
		fail_msg("owner %d: '%s' is in the feed twice", o, rid);
	seen[j] = 1;
	w = ls->winner[j];
	item_payload(payload, sizeof(payload), w, o, r);
	item_ip(ip, sizeof(ip), w);
	assert_non_null(e->payload_json);
	assert_string_equal(e->payload_json, payload);
	assert_non_null(e->ip);
	assert_string_equal(e->ip, ip);
	assert_true(e->created_ms == item_created(sc, j, w));
	assert_true(e->created_ms <= prev);
	assert_int_equal(e->unread, 1);
}

/* Owner @o's whole feed: every one of its reservations exactly once, newest
 * first, and as many unread. */
static void owner_check(ef_store *st, const scenario *sc,
			const ledger_sum *ls, int o, char *seen)
{
	char owner[64];
	int64_t prev = INT64_MAX;
	uint64_t unread;
	full_feed ff;

	owner_spelling(owner, sizeof(owner), o, 0);
	feed_read_all(st, owner, EF_PAGE_LIMIT_MAX, &ff);
	for (size_t p = 0; p < ff.npages; p++) {
		for (size_t i = 0; i < ff.pages[p].count; i++) {
			const ef_entry *e = &ff.pages[p].entries[i];

			entry_check(sc, ls, o, e, prev, seen);
			prev = e->created_ms;
		}
	}
	assert_int_equal(ff.count, sc->res);
	feed_free_all(&ff);
	assert_int_equal(ef_unread_count(st, owner, &unread), EF_OK);
	assert_int_equal(unread, sc->res);
}

/* Every reservation exactly once, each the winner's, newest first; one EF_OK
 * per reservation across all processes; the three key kinds agree. */
static void scenario_verify(const scenario *sc)
{
	ef_config cfg = scenario_cfg(sc);
	ledger_sum ls;
	ef_stat_info si;
	ef_store *st;
	char *seen;

	ledgers_read(sc, &ls);
	for (int j = 0; j < items(sc); j++) {
		if (ls.calls[j] != coverage(sc) || ls.oks[j] != 1)
			fail_msg("item %d/%d: %d calls (want %d), %d EF_OK "
				 "(want 1)", j / sc->res, j % sc->res,
				 ls.calls[j], coverage(sc), ls.oks[j]);
	}
	assert_int_equal(ls.total_ok, items(sc));

	seen = calloc((size_t)items(sc), 1);
	assert_non_null(seen);
	st = th_open(sc->dir, &cfg);
	for (int o = 0; o < sc->owners; o++)
		owner_check(st, sc, &ls, o, seen);
	for (int j = 0; j < items(sc); j++)
		assert_true(seen[j]);
	assert_int_equal(th_count_prefix(st, "recentReceive:"), items(sc));
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), items(sc));
	assert_int_equal(th_count_prefix(st, "unread:"), items(sc));
	assert_int_equal(th_count_prefix(st, "meta:format"), 1);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	assert_int_equal(si.entries, items(sc));
	assert_int_equal(si.owners, sc->owners);
	th_assert_consistent(st);
	ef_close(st);
	free(seen);
	ledgers_free(&ls);
}

/* ---- lose nothing ------------------------------------------------------- */

/* 8 processes, each the whole set in its own order, no fsync. */
static void test_finalize_concurrent_processes_lose_nothing(void **state)
{
	const char *tmp = tmp_new();
	scenario sc;

	(void)state;
	scenario_init(&sc, tmp);
	sc.procs = 8;
	sc.owners = 4;
	sc.res = 150;
	sc.share = 0;
	sc.flags = EF_NOSYNC;
	scenario_run(&sc);
	scenario_verify(&sc);
	tmp_done();
}

/* The same with durable commits (every EF_OK is synced): fewer operations,
 * each reservation by three of the eight processes. */
static void test_finalize_concurrent_processes_durable_lose_nothing(void **state)
{
	const char *tmp = tmp_new();
	scenario sc;

	(void)state;
	scenario_init(&sc, tmp);
	sc.procs = 8;
	sc.owners = 4;
	sc.res = 30;
	sc.share = 3;
	sc.flags = 0;
	scenario_run(&sc);
	scenario_verify(&sc);
	tmp_done();
}

/* 4 processes x 4 threads sharing one ef_store per process. */
static void test_finalize_concurrent_threads_and_processes_lose_nothing(
	void **state)
{
	const char *tmp = tmp_new();
	scenario sc;

	(void)state;
	scenario_init(&sc, tmp);
	sc.procs = 4;
	sc.threads = 4;
	sc.owners = 4;
	sc.res = 100;
	sc.share = 0;
	sc.flags = EF_NOSYNC;
	scenario_run(&sc);
	scenario_verify(&sc);
	tmp_done();
}

/* Many processes create the store at once: one store, one format key, and
 * every process can write into it. */
static void test_open_concurrent_processes_create_one_store(void **state)
{
	const char *tmp = tmp_new();
	scenario sc;

	(void)state;
	scenario_init(&sc, tmp);
	sc.procs = 12;
	sc.owners = 1;
	sc.res = 12;
	sc.share = 2;
	sc.flags = EF_NOSYNC;
	scenario_run(&sc);
	scenario_verify(&sc);
	tmp_done();
}

/* ---- first write wins --------------------------------------------------- */

#define RACE_PROCS 12
#define RACE_ROUNDS 25

typedef struct race_shared {
	pthread_barrier_t barrier; /* process-shared: rounds start together */
} race_shared;

typedef struct race_ctx {
	char dir[PATH_MAX];
	char ledgers[PATH_MAX];
	race_shared *shm;
	int64_t base_ms;
} race_ctx;

static void race_payload(char *buf, size_t cap, int proc, int round)
{
	snprintf(buf, cap, "{\"proc\":%d,\"round\":%d}", proc, round);
}

/* Every round, all processes finalize the same (owner, reservation) with
 * their own payload and created_ms. A child that cannot open still joins
 * every barrier, so the others never wait for it forever. */
static int race_child(void *p, int idx)
{
	race_ctx *c = p;
	ef_config cfg = {0};
	char path[PATH_MAX + 32], rid[32], payload[64], owner[64];
	ef_store *st = NULL;
	int status = CHILD_OK, rc;
	FILE *led;

	cfg.feed_cap = FEED_CAP;
	cfg.flags = EF_NOSYNC;
	snprintf(path, sizeof(path), "%s/ledger.%d", c->ledgers, idx);
	led = fopen(path, "w");
	rc = ef_open(&st, c->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "race %d: ef_open: %s: %s\n", idx,
			ef_err_name(rc), ef_errmsg(NULL));
		status = CHILD_EOPEN;
	}
	if (!led)
		status = CHILD_ELEDGER;
	pthread_barrier_wait(&c->shm->barrier);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		ef_receive r = {0};

		pthread_barrier_wait(&c->shm->barrier);
		if (status != CHILD_OK)
			continue;
		owner_spelling(owner, sizeof(owner), 0, idx);
		snprintf(rid, sizeof(rid), "race-%d", round);
		race_payload(payload, sizeof(payload), idx, round);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = c->base_ms + round * 1000 + idx;
		r.payload_json = payload;
		rc = ef_finalize(st, &r);
		fprintf(led, "%d %d\n", round, rc);
		if (rc != EF_OK && rc != EF_EXISTS) {
			fprintf(stderr, "race %d: round %d: %s: %s\n", idx,
				round, ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EFINALIZE;
		}
	}
	if (led && fclose(led) != 0 && status == CHILD_OK)
		status = CHILD_ELEDGER;
	ef_close(st);
	return status;
}

/* Shared memory with a process-shared barrier for RACE_PROCS processes. */
static race_shared *race_shared_new(void)
{
	pthread_barrierattr_t attr;
	race_shared *shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(shm != MAP_FAILED);
	assert_int_equal(pthread_barrierattr_init(&attr), 0);
	assert_int_equal(
		pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED), 0);
	assert_int_equal(pthread_barrier_init(&shm->barrier, &attr, RACE_PROCS),
			 0);
	pthread_barrierattr_destroy(&attr);
	return shm;
}

static void race_shared_free(race_shared *shm)
{
	pthread_barrier_destroy(&shm->barrier);
	munmap(shm, sizeof(*shm));
}

/* From the ledgers: exactly one EF_OK per round, every other answer
 * EF_EXISTS; @winner[k] gets the process that won round k. */
static void race_ledgers_read(const race_ctx *c, int winner[RACE_ROUNDS])
{
	int oks[RACE_ROUNDS] = {0}, exists[RACE_ROUNDS] = {0};

	for (int k = 0; k < RACE_ROUNDS; k++)
		winner[k] = -1;
	for (int i = 0; i < RACE_PROCS; i++) {
		char path[PATH_MAX + 32];
		int round, rc, lines = 0;
		FILE *f;

		snprintf(path, sizeof(path), "%s/ledger.%d", c->ledgers, i);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fscanf(f, "%d %d", &round, &rc) == 2) {
			assert_true(round >= 0 && round < RACE_ROUNDS);
			lines++;
			if (rc == EF_OK) {
				oks[round]++;
				winner[round] = i;
			} else {
				assert_int_equal(rc, EF_EXISTS);
				exists[round]++;
			}
		}
		fclose(f);
		assert_int_equal(lines, RACE_ROUNDS);
	}
	for (int k = 0; k < RACE_ROUNDS; k++) {
		if (oks[k] != 1 || exists[k] != RACE_PROCS - 1)
			fail_msg("round %d: %d EF_OK and %d EF_EXISTS, want 1 "
				 "and %d", k, oks[k], exists[k], RACE_PROCS - 1);
	}
}

static void test_finalize_concurrent_same_reservation_first_write_wins(
	void **state)
{
	const char *tmp = tmp_new();
	pid_t pids[RACE_PROCS];
	int winner[RACE_ROUNDS];
	ef_config cfg = {0};
	uint64_t unread;
	race_ctx c;
	full_feed ff;
	ef_store *st;

	(void)state;
	memset(&c, 0, sizeof(c));
	store_at(c.dir, sizeof(c.dir), tmp);
	snprintf(c.ledgers, sizeof(c.ledgers), "%s", tmp);
	c.base_ms = hour_ago_ms();
	c.shm = race_shared_new();
	for (int i = 0; i < RACE_PROCS; i++)
		pids[i] = spawn(race_child, &c, i);
	wait_children(pids, RACE_PROCS);
	race_shared_free(c.shm);
	race_ledgers_read(&c, winner);

	/* one entry per round, and it is the winner's: payload and time */
	cfg.feed_cap = FEED_CAP;
	st = th_open(c.dir, &cfg);
	feed_read_all(st, "owner0@example.com", EF_PAGE_LIMIT_MAX, &ff);
	assert_int_equal(ff.count, RACE_ROUNDS);
	for (int k = 0; k < RACE_ROUNDS; k++) {
		/* newest first: round k is at index RACE_ROUNDS-1-k */
		const ef_entry *e = &ff.pages[0].entries[RACE_ROUNDS - 1 - k];
		char rid[32], payload[64];

		snprintf(rid, sizeof(rid), "race-%d", k);
		race_payload(payload, sizeof(payload), winner[k], k);
		assert_string_equal(e->reservation_id, rid);
		assert_non_null(e->payload_json);
		assert_string_equal(e->payload_json, payload);
		assert_true(e->created_ms == c.base_ms + k * 1000 + winner[k]);
	}
	feed_free_all(&ff);
	assert_int_equal(ef_unread_count(st, "owner0@example.com", &unread),
			 EF_OK);
	assert_int_equal(unread, RACE_ROUNDS);
	assert_int_equal(th_count_prefix(st, "recentReceive:"), RACE_ROUNDS);
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), RACE_ROUNDS);
	assert_int_equal(th_count_prefix(st, "unread:"), RACE_ROUNDS);
	ef_close(st);
	tmp_done();
}

/* ---- stable paging under concurrent writers ----------------------------- */

typedef struct pager_ctx {
	const scenario *sc; /* the writers' scenario */
	int stop_fd;        /* read end: EOF once the writers are done */
} pager_ctx;

static int stop_requested(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, 0) > 0;
}

static int rid_index(const char *rid, int res)
{
	int r = -1;

	if (sscanf(rid, "rsv:%d", &r) != 1 || r < 0 || r >= res)
		return -1;
	return r;
}

/* One full read of owner 0 in small pages. A pass must not see an entry
 * twice, must go strictly down in (created, rid) order, and must contain
 * everything the previous pass saw (nothing older is ever skipped). */
static int pager_pass(ef_store *st, const scenario *sc, char *seen,
		      const char *prev, int *count)
{
	char *cursor = NULL;
	int64_t last = INT64_MAX;
	int rc = EF_OK, status = CHILD_OK;

	memset(seen, 0, (size_t)sc->res);
	*count = 0;
	do {
		ef_page pg;

		rc = ef_feed_page(st, "owner0@example.com", cursor, 7, &pg);
		free(cursor);
		cursor = NULL;
		if (rc != EF_OK) {
			fprintf(stderr, "pager: %s: %s\n", ef_err_name(rc),
				ef_errmsg(st));
			return CHILD_EREAD;
		}
		for (size_t i = 0; i < pg.count && status == CHILD_OK; i++) {
			int r = rid_index(pg.entries[i].reservation_id, sc->res);

			if (r < 0 || seen[r] ||
			    pg.entries[i].created_ms >= last) {
				fprintf(stderr, "pager: '%s' out of order or "
					"seen twice\n",
					pg.entries[i].reservation_id);
				status = CHILD_EREAD;
				break;
			}
			seen[r] = 1;
			last = pg.entries[i].created_ms;
			(*count)++;
		}
		if (pg.next_cursor)
			cursor = strdup(pg.next_cursor);
		ef_page_free(&pg);
	} while (cursor && status == CHILD_OK);
	free(cursor);
	for (int r = 0; r < sc->res && status == CHILD_OK; r++) {
		if (prev[r] && !seen[r]) {
			fprintf(stderr, "pager: rsv:%04d was skipped\n", r);
			status = CHILD_EREAD;
		}
	}
	return status;
}

static int pager_child(void *p, int idx)
{
	pager_ctx *c = p;
	ef_config cfg = scenario_cfg(c->sc);
	char *seen = calloc((size_t)c->sc->res, 1);
	char *prev = calloc((size_t)c->sc->res, 1);
	ef_store *st = NULL;
	int status = CHILD_OK, rc, count = 0, stop = 0;

	(void)idx;
	if (!seen || !prev)
		return CHILD_EREAD;
	rc = ef_open(&st, c->sc->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "pager: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	/* the last pass starts after the writers are done: it sees all */
	while (status == CHILD_OK && !stop) {
		stop = stop_requested(c->stop_fd);
		status = pager_pass(st, c->sc, seen, prev, &count);
		memcpy(prev, seen, (size_t)c->sc->res);
	}
	if (status == CHILD_OK && count != c->sc->res) {
		fprintf(stderr, "pager: last pass saw %d of %d\n", count,
			c->sc->res);
		status = CHILD_EREAD;
	}
	ef_close(st);
	free(seen);
	free(prev);
	return status;
}

static void test_feed_page_stable_under_concurrent_finalize(void **state)
{
	const char *tmp = tmp_new();
	ef_config cfg;
	scenario sc;
	pager_ctx pc;
	pid_t writers[WORKERS_MAX], pager;
	int go[2], stop[2], failed;
	ef_store *st;

	(void)state;
	scenario_init(&sc, tmp);
	sc.procs = 4;
	sc.owners = 2;
	sc.res = 300;
	sc.share = 2;
	sc.flags = EF_NOSYNC;
	/* create the store first, so the pager can open it at once */
	cfg = scenario_cfg(&sc);
	st = th_open(sc.dir, &cfg);
	ef_close(st);

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(stop), 0);
	pc.sc = &sc;
	pc.stop_fd = stop[0];
	sc.go_fd = go[0];
	parent_only(go[1]);
	parent_only(stop[1]);
	pager = spawn(pager_child, &pc, 0);
	for (int p = 0; p < sc.procs; p++)
		writers[p] = spawn(scenario_child, &sc, p);
	close(go[1]); /* go */
	close(go[0]);
	failed = reap_children(writers, sc.procs);
	close(stop[1]); /* the pager makes its last pass and exits */
	close(stop[0]);
	parent_only_n = 0;
	failed += reap_children(&pager, 1);
	assert_int_equal(failed, 0);
	scenario_verify(&sc);
	tmp_done();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finalize_concurrent_processes_lose_nothing),
		cmocka_unit_test(
			test_finalize_concurrent_processes_durable_lose_nothing),
		cmocka_unit_test(
			test_finalize_concurrent_threads_and_processes_lose_nothing),
		cmocka_unit_test(test_open_concurrent_processes_create_one_store),
		cmocka_unit_test(
			test_finalize_concurrent_same_reservation_first_write_wins),
		cmocka_unit_test(test_feed_page_stable_under_concurrent_finalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-redis-store.c - the library on a real Redis Cluster (issue 14),
 * through ef_open on the fixture's address (3 masters, 3 replicas), a
 * fresh store= per test: forked processes racing on the same reservations,
 * writers killed -9 mid-call, slots moved between masters under running
 * writers, a group's first write whose registration must reconnect, a
 * master killed under writers that WAIT for a replica, and the failover
 * of the master that holds the store's registry of groups.
 *
 * Every process opens its own store after fork(). Children never call
 * cmocka: they append to the test's ledger (one line per call, one
 * write() with O_APPEND, so a kill tears no line and the lines of many
 * processes do not mix), and _exit() with a status. A line that says a
 * call succeeded is written only after the call returned. The parent
 * checks the store against the ledger with a handle of its own: every
 * acknowledged reservation is there, exactly once, nothing is there that
 * nobody finalized, and ef_check finds no violation.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "feed/keys.h"
#include "rfixture.h"
#include "store/envint.h"
#include "store/error.h"
#include "store/redis/engine.h"
#include "store/redis/slot.h"

#define CHILD_ALARM_S 120  /* a stuck child dies instead of hanging the run */
#define FEED_CAP 100000u   /* nothing is trimmed: a trimmed id is new again */
#define SETTLE_S 60        /* bound on waiting for the cluster to settle */
#define RID_MAX 40

/* Exit statuses of children, so a failure says what kind it was. */
enum {
	CHILD_OK = 0,
	CHILD_EFINALIZE = 1, /* a call returned what it must not */
	CHILD_EOPEN = 2,     /* ef_open failed */
	CHILD_ELEDGER = 3,   /* cannot write the ledger */
};

/* The current test's store address and ledger directory: globals, so
 * forked children find them (and leak checkers see them reachable). */
static char store_addr[4400];
static char *test_tmp;
static char ledger_path[4200];
static int64_t base_ms; /* the items' times are derived from it */

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new store on the cluster, named for the test, and a ledger. */
static void store_new(const char *what)
{
	unsigned char raw[6];
	char hex[13];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	snprintf(store_addr, sizeof(store_addr), "%s?store=%s-%s", rf.addr,
		 what, hex);
	test_tmp = th_tmpdir();
	snprintf(ledger_path, sizeof(ledger_path), "%s/ledger", test_tmp);
	base_ms = real_ms() - 3600 * 1000; /* an hour ago */
}

static void store_done(void)
{
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

static ef_config store_cfg(void)
{
	ef_config cfg = {0};

	cfg.feed_cap = FEED_CAP;
	return cfg;
}

/* Open the test's store with @opts ("" or "&wait=1"...) appended. */
static int ts_open(ef_store **st, const char *opts)
{
	char addr[4500];
	ef_config cfg = store_cfg();

	snprintf(addr, sizeof(addr), "%s%s", store_addr, opts);
	return ef_open(st, addr, &cfg);
}

static ef_store *parent_open(const char *opts)
{
	ef_store *st = NULL;
	int rc = ts_open(&st, opts);

	if (rc != EF_OK)
		fail_msg("ef_open(%s%s): %s: %s", store_addr, opts,
			 ef_err_name(rc), ef_errmsg(NULL));
	return st;
}

/* ---- items: every field derived from (owner, reservation) -------------- */

static void owner_name(char *buf, size_t cap, int o)
{
	snprintf(buf, cap, "owner%d@example.com", o);
}

/* The same owner as another writer would spell it. */
static void owner_spelled(char *buf, size_t cap, int o, int spelling)
{
	if (spelling % 2)
		snprintf(buf, cap, "  Owner%d@Example.COM ", o);
	else
		owner_name(buf, cap, o);
}

static uint32_t rid_hash(const char *rid)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *rid; rid++)
		h = (h ^ (unsigned char)*rid) * 16777619u;
	return h;
}

typedef struct item {
	char owner[64];
	char rid[RID_MAX];
	char ip[32];
	char payload[96];
	ef_receive r;
} item;

static void item_make(item *it, int o, const char *rid)
{
	uint32_t h = rid_hash(rid);

	owner_name(it->owner, sizeof(it->owner), o);
	snprintf(it->rid, sizeof(it->rid), "%s", rid);
	snprintf(it->ip, sizeof(it->ip), "192.0.2.%u", h % 250 + 1);
	snprintf(it->payload, sizeof(it->payload),
		 "{\"rid\":\"%s\",\"owner\":%d}", rid, o);
	it->r.owner = it->owner;
	it->r.reservation_id = it->rid;
	it->r.created_ms = base_ms + (int64_t)(h % 3000000);
	it->r.ip = it->ip;
	it->r.payload_json = it->payload;
}

/* ---- the ledger --------------------------------------------------------- */

/* In a child: append "KIND OWNER RID RC A B" with one write. */
static void ledger_add(char kind, int o, const char *rid, int rc, int a, int b)
{
	char line[160];
	int fd = open(ledger_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	int n = snprintf(line, sizeof(line), "%c %d %s %d %d %d\n", kind, o,
			 rid, rc, a, b);

	if (fd < 0 || n <= 0 || (size_t)n >= sizeof(line) ||
	    write(fd, line, (size_t)n) != n)
		_exit(CHILD_ELEDGER);
	close(fd);
}

typedef struct call {
	char kind;
	int o;
	char rid[RID_MAX];
	int rc;
	int a, b;
} call;

typedef struct calls {
	call *v;
	size_t n, cap;
} calls;

static void calls_read(calls *cs)
{
	FILE *f = fopen(ledger_path, "r");
	call c;

	memset(cs, 0, sizeof(*cs));
	if (!f)
		return; /* nobody wrote a line */
	while (fscanf(f, " %c %d %39s %d %d %d", &c.kind, &c.o, c.rid, &c.rc,
		      &c.a, &c.b) == 6) {
		if (cs->n == cs->cap) {
			cs->cap = cs->cap ? cs->cap * 2 : 256;
			cs->v = realloc(cs->v, cs->cap * sizeof(*cs->v));
			assert_non_null(cs->v);
		}
		cs->v[cs->n++] = c;
	}
	assert_true(feof(f)); /* every line parsed: none torn */
	fclose(f);
}

/* ---- the reservations a test expects, and what the store holds ---------- */

typedef struct rec {
	int o;
	char rid[RID_MAX];
	int acked; /* a call returned success for it: it must be there */
	int seen;  /* times the owner's feed listed it */
} rec;

typedef struct recset {
	rec *v;
	size_t n, cap;
} recset;

static int rec_cmp(const void *x, const void *y)
{
	const rec *a = x, *b = y;

	return a->o != b->o ? (a->o > b->o) - (a->o < b->o)
			    : strcmp(a->rid, b->rid);
}

static void recset_add(recset *rs, int o, const char *rid)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		assert_non_null(rs->v);
	}
	memset(&rs->v[rs->n], 0, sizeof(rs->v[rs->n]));
	rs->v[rs->n].o = o;
	snprintf(rs->v[rs->n].rid, RID_MAX, "%s", rid);
	rs->n++;
}

/* Sort and drop repeats. */
static void recset_seal(recset *rs)
{
	size_t k = 0;

	if (!rs->n)
		return;
	qsort(rs->v, rs->n, sizeof(*rs->v), rec_cmp);
	for (size_t i = 1; i < rs->n; i++)
		if (rec_cmp(&rs->v[k], &rs->v[i]) != 0)
			rs->v[++k] = rs->v[i];
	rs->n = k + 1;
}

static rec *recset_find(recset *rs, int o, const char *rid)
{
	rec key;

	memset(&key, 0, sizeof(key));
	key.o = o;
	snprintf(key.rid, RID_MAX, "%s", rid);
	return rs->n ? bsearch(&key, rs->v, rs->n, sizeof(*rs->v), rec_cmp)
		     : NULL;
}

/* The entry @e of owner @o must be what item_make says. */
static void entry_fields_check(const ef_entry *e, int o)
{
	item it;

	item_make(&it, o, e->reservation_id);
	assert_int_equal(e->created_ms, it.r.created_ms);
	assert_non_null(e->payload_json);
	assert_string_equal(e->payload_json, it.payload);
	assert_non_null(e->ip);
	assert_string_equal(e->ip, it.ip);
	assert_int_equal(e->unread, 1);
}

/* Read owner @o's whole feed; every entry must be one of @rs, listed
 * once. Returns the entries read. */
static size_t feed_scan(ef_store *st, int o, recset *rs, int fields)
{
	char owner[64], *cursor = NULL;
	size_t n = 0;

	owner_name(owner, sizeof(owner), o);
	do {
		ef_page pg;
		int rc = ef_feed_page(st, owner, cursor, EF_PAGE_LIMIT_MAX,
				      &pg);

		free(cursor);
		cursor = NULL;
		if (rc != EF_OK)
			fail_msg("feed of %s: %s: %s", owner, ef_err_name(rc),
				 ef_errmsg(st));
		for (size_t i = 0; i < pg.count; i++) {
			const ef_entry *e = &pg.entries[i];
			rec *r = recset_find(rs, o, e->reservation_id);

			if (!r)
				fail_msg("%s has '%s', which nobody finalized",
					 owner, e->reservation_id);
			if (++r->seen > 1)
				fail_msg("%s has '%s' twice", owner,
					 e->reservation_id);
			if (fields)
				entry_fields_check(e, o);
		}
		n += pg.count;
		if (pg.next_cursor) {
			cursor = strdup(pg.next_cursor);
			assert_non_null(cursor);
		}
		ef_page_free(&pg);
	} while (cursor);
	return n;
}

/*
 * The store against @rs: owners 0..@owners-1 hold exactly the reservations
 * of @rs that are there, each once; every acknowledged one (every one,
 * with @all) is there, and its indexed read finds it; the key families
 * agree; ef_check finds no violation. Returns the entries found.
 */
static size_t store_verify(ef_store *st, recset *rs, int owners, int all,
			   int fields)
{
	size_t total = 0;

	for (size_t i = 0; i < rs->n; i++)
		rs->v[i].seen = 0;
	for (int o = 0; o < owners; o++)
		total += feed_scan(st, o, rs, fields);
	for (size_t i = 0; i < rs->n; i++) {
		rec *r = &rs->v[i];
		char owner[64];
		ef_entry *e = NULL;
		int rc;

		if (!(r->acked || all))
			continue;
		if (r->seen != 1)
			fail_msg("owner%d: '%s' was acknowledged but is not in "
				 "the feed", r->o, r->rid);
		if (i % 8) /* every 8th also by its index: a read each */
			continue;
		owner_name(owner, sizeof(owner), r->o);
		rc = ef_get_entry(st, owner, r->rid, &e);
		if (rc != EF_OK)
			fail_msg("ef_get_entry(%s, %s): %s: %s", owner, r->rid,
				 ef_err_name(rc), ef_errmsg(st));
		assert_string_equal(e->reservation_id, r->rid);
		ef_entry_free(e);
	}
	assert_int_equal(th_count_prefix(st, "recentReceive:"), total);
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), total);
	assert_int_equal(th_count_prefix(st, "unread:"), total);
	th_assert_consistent(st);
	return total;
}

/* ---- processes ---------------------------------------------------------- */

typedef int (*child_fn)(int idx);

#define CHILDREN_MAX 16
static pid_t children[CHILDREN_MAX]; /* forked and not reaped yet */

static pid_t spawn(child_fn fn, int idx)
{
	pid_t pid = th_fork(CHILD_ALARM_S);
	int i = 0;

	if (pid == 0)
		_exit(fn(idx));
	while (i < CHILDREN_MAX && children[i])
		i++;
	assert_true(i < CHILDREN_MAX);
	children[i] = pid;
	return pid;
}

/* waitpid for @pid, which must be a child of the test. */
static int reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	for (int i = 0; i < CHILDREN_MAX; i++)
		if (children[i] == pid)
			children[i] = 0;
	return status;
}

static void reap_ok(const pid_t *pids, int n)
{
	int failed = 0;

	for (int i = 0; i < n; i++) {
		int status = reap(pids[i]);

		if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
			print_error("child %d: %s %d\n", i,
				    WIFEXITED(status) ? "exit" : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status)
						      : WTERMSIG(status));
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* A page of memory shared by the parent and its children. */
static void *shared_new(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	memset(p, 0, size);
	return p;
}

static int shared_get(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void shared_set(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* A random pause of @lo..@hi ms, from @rng. */
static void pause_ms(uint64_t *rng, unsigned lo, unsigned hi)
{
	th_sleep_us(1000L * (lo + (long)(th_rng_next(rng) % (hi - lo + 1))));
}

/* What the parent and its writers share while they run. */
#define RUN_WRITERS_MAX 8

typedef struct run_shared {
	int stop;                    /* 1: writers finish their call, exit */
	int phase;                   /* test 4's: before, failing over, after */
	int calls[RUN_WRITERS_MAX];  /* each writer's calls that count */
} run_shared;

static run_shared *run_shm;

/* In a writer: one more call that counts. */
static void run_count(int w)
{
	__atomic_add_fetch(&run_shm->calls[w], 1, __ATOMIC_SEQ_CST);
}

/* Wait (at most SETTLE_S) until each of the @n writers has counted @want
 * calls: progress, not time, says when the test acts. */
static void run_progress(int n, int want)
{
	for (int i = 0; i < SETTLE_S * 200; i++, th_sleep_us(5000)) {
		int done = 1;

		for (int w = 0; w < n; w++)
			done &= shared_get(&run_shm->calls[w]) >= want;
		if (done)
			return;
	}
	fail_msg("the writers made fewer than %d calls each in %d s", want,
		 SETTLE_S);
}

/* In a child: open the test's store with @opts, or _exit. */
static ef_store *child_open(const char *opts, int idx)
{
	ef_store *st = NULL;
	int rc = ts_open(&st, opts);

	if (rc != EF_OK) {
		fprintf(stderr, "child %d: ef_open: %s: %s\n", idx,
			ef_err_name(rc), ef_errmsg(NULL));
		_exit(CHILD_EOPEN);
	}
	return st;
}

/* ---- 1. many processes, the same reservations --------------------------- */

#define RACE_PROCS 6
#define RACE_OWNERS 3
#define RACE_N 30 /* reservations, one round each, owners in turn */

typedef struct race_shared {
	pthread_barrier_t barrier; /* process-shared: rounds start together */
} race_shared;

static race_shared *race_shm;

static void race_payload(char *buf, size_t cap, int proc, int k)
{
	snprintf(buf, cap, "{\"proc\":%d,\"round\":%d}", proc, k);
}

/* Every round, all processes finalize the same reservation, each with its
 * own payload and time and its own spelling of the owner. A child that
 * cannot open still joins every barrier. */
static int race_child(int p)
{
	ef_store *st = NULL;
	int status = CHILD_OK, rc = ts_open(&st, "");

	if (rc != EF_OK) {
		fprintf(stderr, "race %d: ef_open: %s: %s\n", p,
			ef_err_name(rc), ef_errmsg(NULL));
		status = CHILD_EOPEN;
	}
	for (int k = 0; k < RACE_N; k++) {
		char owner[64], rid[RID_MAX], payload[64];
		ef_receive r = {0};

		pthread_barrier_wait(&race_shm->barrier);
		if (status != CHILD_OK)
			continue;
		owner_spelled(owner, sizeof(owner), k % RACE_OWNERS, p);
		snprintf(rid, sizeof(rid), "race-%d", k);
		race_payload(payload, sizeof(payload), p, k);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = base_ms + k * 1000 + p;
		r.payload_json = payload;
		rc = ef_finalize(st, &r);
		ledger_add('F', k % RACE_OWNERS, rid, rc, p, k);
		if (rc != EF_OK && rc != EF_EXISTS) {
			fprintf(stderr, "race %d: round %d: %s: %s\n", p, k,
				ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EFINALIZE;
		}
	}
	ef_close(st);
	return status;
}

static void test_store_processes_racing_create_each_reservation_once(
	void **state)
{
	pthread_barrierattr_t attr;
	pid_t pids[RACE_PROCS];
	int oks[RACE_N] = {0}, dups[RACE_N] = {0}, winner[RACE_N];
	recset rs = {0};
	calls cs;
	ef_store *st;

	(void)state;
	store_new("race");
	race_shm = shared_new(sizeof(*race_shm));
	assert_int_equal(pthread_barrierattr_init(&attr), 0);
	assert_int_equal(pthread_barrierattr_setpshared(&attr,
			 PTHREAD_PROCESS_SHARED), 0);
	assert_int_equal(pthread_barrier_init(&race_shm->barrier, &attr,
					      RACE_PROCS), 0);
	pthread_barrierattr_destroy(&attr);
	for (int p = 0; p < RACE_PROCS; p++)
		pids[p] = spawn(race_child, p);
	reap_ok(pids, RACE_PROCS);
	pthread_barrier_destroy(&race_shm->barrier);
	munmap(race_shm, sizeof(*race_shm));
	race_shm = NULL;

	/* the ledger: one "created" per reservation, all others duplicates */
	calls_read(&cs);
	assert_int_equal(cs.n, RACE_PROCS * RACE_N);
	for (size_t i = 0; i < cs.n; i++) {
		const call *c = &cs.v[i];

		assert_true(c->b >= 0 && c->b < RACE_N);
		if (c->rc == EF_OK) {
			oks[c->b]++;
			winner[c->b] = c->a;
		} else {
			assert_int_equal(c->rc, EF_EXISTS);
			dups[c->b]++;
		}
	}
	free(cs.v);
	for (int k = 0; k < RACE_N; k++) {
		char rid[RID_MAX];

		if (oks[k] != 1 || dups[k] != RACE_PROCS - 1)
			fail_msg("race-%d: %d created and %d duplicates, want 1 "
				 "and %d", k, oks[k], dups[k], RACE_PROCS - 1);
		snprintf(rid, sizeof(rid), "race-%d", k);
		recset_add(&rs, k % RACE_OWNERS, rid);
	}
	recset_seal(&rs);
	for (size_t i = 0; i < rs.n; i++)
		rs.v[i].acked = 1;

	/* the store: each once, and it is the winner's (first write wins) */
	st = parent_open("");
	assert_int_equal(store_verify(st, &rs, RACE_OWNERS, 1, 0), RACE_N);
	for (int k = 0; k < RACE_N; k++) {
		char owner[64], rid[RID_MAX], payload[64];
		ef_entry *e = NULL;

		owner_spelled(owner, sizeof(owner), k % RACE_OWNERS, k);
		snprintf(rid, sizeof(rid), "race-%d", k);
		assert_int_equal(ef_get_entry(st, owner, rid, &e), EF_OK);
		race_payload(payload, sizeof(payload), winner[k], k);
		assert_string_equal(e->payload_json, payload);
		assert_true(e->created_ms == base_ms + k * 1000 + winner[k]);
		ef_entry_free(e);
	}
	for (int o = 0; o < RACE_OWNERS; o++) {
		char owner[64];
		uint64_t unread = 0;

		owner_name(owner, sizeof(owner), o);
		assert_int_equal(ef_unread_count(st, owner, &unread), EF_OK);
		assert_int_equal(unread, RACE_N / RACE_OWNERS);
	}
	ef_close(st);
	free(rs.v);
	store_done();
}

/* ---- 2. writers killed -9 mid-call ------------------------------------ */

#define KILL_WRITERS 4
#define KILL_ROUNDS 4
#define KILL_OWNERS 6
#define KILL_MAX 100000 /* calls per writer and round: more than it reaches */

static int kill_round;   /* the round the writers being forked belong to */
static recset kill_all;  /* every reservation attempted, for the restart */

/*
 * Finalize new reservations until killed: an "A" line before each call
 * (from then on it may be in the store, whatever happens next), a "K"
 * line once it returned EF_OK. Every fourth call, one acknowledged before
 * is finalized again ("D"): EF_EXISTS.
 */
static int kill_writer(int w)
{
	ef_store *st = child_open("", w);

	for (int i = 0; i < KILL_MAX; i++) {
		int o = (w + i) % KILL_OWNERS, rc;
		char rid[RID_MAX];
		item it;

		snprintf(rid, sizeof(rid), "k%d-w%d-%d", kill_round, w, i);
		item_make(&it, o, rid);
		ledger_add('A', o, rid, 0, w, kill_round);
		rc = ef_finalize(st, &it.r);
		if (rc != EF_OK) {
			ledger_add('E', o, rid, rc, w, kill_round);
			fprintf(stderr, "writer %d: %s: %s: %s\n", w, rid,
				ef_err_name(rc), ef_errmsg(st));
			_exit(CHILD_EFINALIZE);
		}
		ledger_add('K', o, rid, rc, w, kill_round);
		run_count(w);
		if (i % 4 == 3) {
			int j = i - 2, oj = (w + j) % KILL_OWNERS;

			snprintf(rid, sizeof(rid), "k%d-w%d-%d", kill_round, w,
				 j);
			item_make(&it, oj, rid);
			rc = ef_finalize(st, &it.r);
			ledger_add('D', oj, rid, rc, w, kill_round);
			if (rc != EF_EXISTS) {
				fprintf(stderr, "writer %d: %s again: %s: %s\n",
					w, rid, ef_err_name(rc), ef_errmsg(st));
				_exit(CHILD_EFINALIZE);
			}
		}
	}
	ef_close(st);
	return CHILD_OK;
}

/* After the kills: finalize every attempted reservation again, a share
 * each ("R" lines, whatever the answer). */
static int kill_restarter(int w)
{
	ef_store *st = child_open("", w);
	int status = CHILD_OK;

	for (size_t i = (size_t)w; i < kill_all.n; i += KILL_WRITERS) {
		const rec *r = &kill_all.v[i];
		item it;
		int rc;

		item_make(&it, r->o, r->rid);
		rc = ef_finalize(st, &it.r);
		ledger_add('R', r->o, r->rid, rc, w, 0);
		if (rc != EF_OK && rc != EF_EXISTS) {
			fprintf(stderr, "restart %d: %s: %s: %s\n", w, r->rid,
				ef_err_name(rc), ef_errmsg(st));
			status = CHILD_EFINALIZE;
		}
	}
	ef_close(st);
	return status;
}

/* Fork the round's writers, SIGKILL each at a random moment, reap them. */
static void kill_one_round(uint64_t *rng, int round)
{
	pid_t pids[KILL_WRITERS];

	kill_round = round;
	memset(run_shm, 0, sizeof(*run_shm));
	for (int w = 0; w < KILL_WRITERS; w++)
		pids[w] = spawn(kill_writer, w);
	run_progress(KILL_WRITERS, 1); /* each has acknowledged one */
	pause_ms(rng, 0, 300);
	for (int w = 0; w < KILL_WRITERS; w++) {
		assert_int_equal(kill(pids[w], SIGKILL), 0);
		pause_ms(rng, 0, 40);
	}
	for (int w = 0; w < KILL_WRITERS; w++) {
		int status = reap(pids[w]);

		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK)
			fail_msg("round %d: writer %d: %s %d", round, w,
				 WIFEXITED(status) ? "exit" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status)
						   : WTERMSIG(status));
	}
}

static void test_store_writers_killed_mid_call_lose_no_acknowledged_entry(
	void **state)
{
	pid_t pids[KILL_WRITERS];
	size_t acked = 0, redone = 0, were_there = 0;
	uint64_t rng;
	calls cs;
	ef_store *st;

	(void)state;
	randombytes_buf(&rng, sizeof(rng));
	store_new("kill");
	run_shm = shared_new(sizeof(*run_shm));
	for (int round = 0; round < KILL_ROUNDS; round++)
		kill_one_round(&rng, round);
	munmap(run_shm, sizeof(*run_shm));
	run_shm = NULL;

	/* the ledger: what was attempted, and what was acknowledged */
	calls_read(&cs);
	memset(&kill_all, 0, sizeof(kill_all));
	for (size_t i = 0; i < cs.n; i++) {
		const call *c = &cs.v[i];

		if (c->kind == 'E')
			fail_msg("%s: %s", c->rid, ef_err_name(c->rc));
		if (c->kind == 'D' && c->rc != EF_EXISTS)
			fail_msg("%s again: %s", c->rid, ef_err_name(c->rc));
		if (c->kind == 'A')
			recset_add(&kill_all, c->o, c->rid);
	}
	recset_seal(&kill_all);
	for (size_t i = 0; i < cs.n; i++) {
		const call *c = &cs.v[i];
		rec *r;

		if (c->kind != 'K')
			continue;
		assert_int_equal(c->rc, EF_OK);
		r = recset_find(&kill_all, c->o, c->rid);
		assert_non_null(r); /* an "A" came before */
		acked += !r->acked;
		r->acked = 1;
	}
	free(cs.v);
	assert_true(acked >= KILL_WRITERS * KILL_ROUNDS);

	/* restarted writers finalize everything again */
	snprintf(ledger_path, sizeof(ledger_path), "%s/ledger.restart",
		 test_tmp);
	for (int w = 0; w < KILL_WRITERS; w++)
		pids[w] = spawn(kill_restarter, w);
	reap_ok(pids, KILL_WRITERS);
	calls_read(&cs);
	assert_int_equal(cs.n, kill_all.n); /* one answer for each */
	for (size_t i = 0; i < cs.n; i++) {
		const call *c = &cs.v[i];
		rec *r = recset_find(&kill_all, c->o, c->rid);

		assert_non_null(r);
		assert_int_equal(r->seen, 0); /* answered once */
		r->seen = 1;
		if (r->acked && c->rc != EF_EXISTS)
			fail_msg("%s was acknowledged, but finalizing it again "
				 "gave %s", c->rid, ef_err_name(c->rc));
		if (!r->acked) {
			assert_true(c->rc == EF_OK || c->rc == EF_EXISTS);
			redone += c->rc == EF_OK;
			were_there += c->rc == EF_EXISTS;
		}
	}
	free(cs.v);

	st = parent_open("");
	assert_int_equal(store_verify(st, &kill_all, KILL_OWNERS, 1, 1),
			 kill_all.n);
	ef_close(st);
	print_message("kill -9: %d rounds, %zu reservations attempted, %zu "
		      "acknowledged; of the %zu in flight at a kill, %zu had "
		      "been written, %zu were written by the restart\n",
		      KILL_ROUNDS, kill_all.n, acked, kill_all.n - acked,
		      were_there, redone);
	free(kill_all.v);
	memset(&kill_all, 0, sizeof(kill_all));
	store_done();
}

/* ---- shared by 3. and 4. ------------------------------------------------ */

/* The slot of owner @owner's group, by the library's own derivation. */
static unsigned owner_slot(ef_store *st, const char *owner)
{
	key_part kp;
	store_val g;

	assert_int_equal(key_owner(EF__ERR_QUIET, "owner", owner, &kp), EF_OK);
	g.data = kp.s;
	g.len = kp.len;
	return reng_slot(st->env->reng, 'g', &g);
}

static long long keys_in_slot(int port, unsigned slot)
{
	redisContext *n = rf_node(port);
	redisReply *r = redisCommand(n, "CLUSTER COUNTKEYSINSLOT %u", slot);
	long long k;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	k = r->integer;
	freeReplyObject(r);
	redisFree(n);
	return k;
}

/* The master serving @slot now, by a fresh read of the map. */
static int master_of(rclient *c, unsigned slot)
{
	int port = 0;

	if (rclient_refresh(c) != EF_OK)
		fail_msg("reading the slot map: %s", ef__err_get(1));
	rclient_node_of(c, slot, &port);
	assert_true(port != 0);
	return port;
}

/* ---- 3. slots migrated while writers run -------------------------------- */

/* The redirections and refusals every node of the cluster has answered so
 * far (INFO errorstats): MOVED, ASK, TRYAGAIN. */
static void redirections(long long out[3])
{
	static const char *const name[3] = {"errorstat_MOVED:count=",
					    "errorstat_ASK:count=",
					    "errorstat_TRYAGAIN:count="};

	out[0] = out[1] = out[2] = 0;
	for (size_t i = 0; i < rf.nports; i++) {
		redisContext *n = rf_node(rf.ports[i]);
		redisReply *r = redisCommand(n, "INFO errorstats");

		assert_non_null(r);
		for (int k = 0; k < 3; k++) {
			const char *at = r->type == REDIS_REPLY_STRING
					 ? strstr(r->str, name[k]) : NULL;
			if (at)
				out[k] += atoll(at + strlen(name[k]));
		}
		freeReplyObject(r);
		redisFree(n);
	}
}

#define MOVE_WRITERS 4
#define MOVE_OWNERS 8
#define MOVE_GROUPS 4 /* owners 0..3: their groups' slots move */
#define MOVE_MOVES 7  /* each moves once, three of them twice */
#define MOVE_MAX 100000

/* Finalize new reservations until told to stop ("N", whatever the
 * answer); every third call, the one before again ("D"). */
static int move_writer(int w)
{
	ef_store *st = child_open("", w);

	for (int i = 0; i < MOVE_MAX && !shared_get(&run_shm->stop); i++) {
		int o = (w * 3 + i) % MOVE_OWNERS, rc;
		char rid[RID_MAX];
		item it;

		snprintf(rid, sizeof(rid), "m-w%d-%d", w, i);
		item_make(&it, o, rid);
		rc = ef_finalize(st, &it.r);
		ledger_add('N', o, rid, rc, w, 0);
		run_count(w);
		if (rc != EF_OK)
			fprintf(stderr, "writer %d: %s: %s: %s\n", w, rid,
				ef_err_name(rc), ef_errmsg(st));
		if (i % 3 == 2) {
			int j = i - 1, oj = (w * 3 + j) % MOVE_OWNERS;

			snprintf(rid, sizeof(rid), "m-w%d-%d", w, j);
			item_make(&it, oj, rid);
			rc = ef_finalize(st, &it.r);
			ledger_add('D', oj, rid, rc, w, 0);
			if (rc != EF_EXISTS)
				fprintf(stderr, "writer %d: %s again: %s: %s\n",
					w, rid, ef_err_name(rc),
					ef_errmsg(st));
		}
	}
	ef_close(st);
	return CHILD_OK;
}

/* A master other than @not, picked at random from @c's map. */
static int another_master(rclient *c, int not, uint64_t *rng)
{
	int ports[RF_NODES_MAX], n = 0;

	for (unsigned s = 0; s < RSLOT_COUNT; s++) {
		int port, known = 0;

		rclient_node_of(c, s, &port);
		for (int i = 0; i < n; i++)
			known |= ports[i] == port;
		if (port && port != not && !known && n < RF_NODES_MAX)
			ports[n++] = port;
	}
	assert_true(n > 0);
	return ports[th_rng_next(rng) % (uint64_t)n];
}

static void test_store_slots_migrated_under_writers_lose_nothing(void **state)
{
	pid_t pids[MOVE_WRITERS];
	long long red0[3], red1[3];
	size_t dups = 0;
	recset rs = {0};
	uint64_t rng;
	rclient *c;
	ef_store *st;
	calls cs;

	(void)state;
	randombytes_buf(&rng, sizeof(rng));
	store_new("move");
	run_shm = shared_new(sizeof(*run_shm));
	/* every owner has keys before anything moves: a slot moves with them */
	st = parent_open("");
	for (int o = 0; o < MOVE_OWNERS; o++) {
		char rid[RID_MAX];
		item it;

		snprintf(rid, sizeof(rid), "m-first-%d", o);
		item_make(&it, o, rid);
		assert_int_equal(ef_finalize(st, &it.r), EF_OK);
		recset_add(&rs, o, rid);
	}
	ef_close(st);
	redirections(red0);
	for (int w = 0; w < MOVE_WRITERS; w++)
		pids[w] = spawn(move_writer, w);

	st = parent_open("");
	c = rf_client("");
	run_progress(MOVE_WRITERS, MOVE_OWNERS); /* all write, every owner */
	for (int m = 0; m < MOVE_MOVES; m++) {
		char owner[64];
		unsigned slot;
		int src, dst;

		owner_name(owner, sizeof(owner), m % MOVE_GROUPS);
		slot = owner_slot(st, owner);
		src = master_of(c, slot);
		/* the slot the library derives is where the group's keys are */
		assert_true(keys_in_slot(src, slot) >= 2);
		dst = another_master(c, src, &rng);
		rf_move_slot(slot, src, dst);
		assert_int_equal(master_of(c, slot), dst);
		assert_true(keys_in_slot(dst, slot) >= 2);
		assert_int_equal(keys_in_slot(src, slot), 0);
		pause_ms(&rng, 50, 200);
	}
	pause_ms(&rng, 100, 200);
	shared_set(&run_shm->stop, 1);
	reap_ok(pids, MOVE_WRITERS);
	redirections(red1);
	munmap(run_shm, sizeof(*run_shm));
	run_shm = NULL;
	rclient_close(c);

	/* no writer saw an error; every call is in the ledger */
	calls_read(&cs);
	for (size_t i = 0; i < cs.n; i++) {
		const call *x = &cs.v[i];

		if (x->kind == 'N' && x->rc != EF_OK)
			fail_msg("%s: %s (want created)", x->rid,
				 ef_err_name(x->rc));
		if (x->kind == 'D' && x->rc != EF_EXISTS)
			fail_msg("%s again: %s (want a duplicate)", x->rid,
				 ef_err_name(x->rc));
		if (x->kind == 'N')
			recset_add(&rs, x->o, x->rid);
		dups += x->kind == 'D';
	}
	free(cs.v);
	recset_seal(&rs);
	for (size_t i = 0; i < rs.n; i++)
		rs.v[i].acked = 1;
	assert_int_equal(store_verify(st, &rs, MOVE_OWNERS, 1, 1), rs.n);
	ef_close(st);
	print_message("resharding: %d slot moves under %d writers: %zu "
		      "created, %zu duplicates answered, no error; the "
		      "cluster answered %lld MOVED, %lld ASK, %lld TRYAGAIN "
		      "meanwhile\n", MOVE_MOVES, MOVE_WRITERS, rs.n, dups,
		      red1[0] - red0[0], red1[1] - red0[1], red1[2] - red0[2]);
	free(rs.v);
	store_done();
}

/* ---- 5. a group's first write, its registration slow -------------------- */

/* Run @cmd on node @port, asserting it is not refused. */
static void node_run(int port, const char *cmd)
{
	redisContext *n = rf_node(port);
	redisReply *r = redisCommand(n, cmd);

	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("node %d: %s: %s", port, cmd, r->str);
	freeReplyObject(r);
	redisFree(n);
}

/*
 * A write registers its group in the registry (engine.h) before it
 * commits. Where the registry's master also serves the group, and that
 * master is slow to answer the registration (writes paused there; reads
 * still pass, so the transaction has read under its WATCH), the client
 * gives up on the connection and makes a new one. The write must then
 * still commit once, as a transaction of its own, and not through the
 * connection that was given up.
 */
static void test_store_first_write_of_a_group_outlasts_a_slow_registry(
	void **state)
{
	unsigned reg_slot;
	int master, o;
	rclient *c;
	ef_store *st;
	ef_entry *e = NULL;
	item it;

	(void)state;
	store_new("slowreg");
	st = parent_open("&timeout_ms=200");
	c = rf_client("");
	reg_slot = reng_slot(st->env->reng, 'r', NULL);
	master = master_of(c, reg_slot);
	for (o = 0;; o++) { /* an owner whose group shares that master */
		char owner[64];

		assert_true(o < 1000);
		owner_name(owner, sizeof(owner), o);
		if (master_of(c, owner_slot(st, owner)) == master)
			break;
	}
	item_make(&it, o, "slow-registry");
	it.r.ip = NULL; /* no window key to write first */
	/* longer than timeout_ms, shorter than retry_ms */
	node_run(master, "CLIENT PAUSE 1000 WRITE");
	if (ef_finalize(st, &it.r) != EF_OK)
		fail_msg("ef_finalize: %s", ef_errmsg(st));
	assert_int_equal(ef_finalize(st, &it.r), EF_EXISTS);
	assert_int_equal(ef_get_entry(st, it.owner, it.rid, &e), EF_OK);
	assert_string_equal(e->payload_json, it.payload);
	ef_entry_free(e);
	assert_int_equal(th_count_prefix(st, "recentReceive:"), 1);
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), 1);
	assert_int_equal(th_count_prefix(st, "unread:"), 1);
	th_assert_consistent(st);
	rclient_close(c);
	ef_close(st);
	store_done();
}

/* ---- 4. a master killed under writers that WAIT for a replica ---------- */

#define FO_WRITERS 3
#define FO_OWNERS 6
#define FO_AFTER 25 /* calls each writer makes once the cluster is whole */
#define FO_MAX 1000000

enum { FO_BEFORE = 0, FO_FAILING = 1, FO_WHOLE = 2 };

/* In a child: one "PHASE ERROR message" line per failed call, for the
 * report of what a failover costs the callers. */
static void fo_note(int phase, int rc, const char *msg)
{
	char path[4300], line[400];
	int fd, n;

	snprintf(path, sizeof(path), "%s/errors", test_tmp);
	n = snprintf(line, sizeof(line), "%d %s %.300s\n", phase,
		     ef_err_name(rc), msg);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || n <= 0 || write(fd, line, strlen(line)) < 0)
		_exit(CHILD_ELEDGER);
	close(fd);
}

/* Finalize new reservations with wait=1 until told to stop: "N OWNER RID
 * RC PHASE-BEFORE PHASE-AFTER". */
static int fo_writer(int w)
{
	ef_store *st = child_open("&wait=1", w);

	for (int i = 0; i < FO_MAX && !shared_get(&run_shm->stop); i++) {
		int o = (w * 2 + i) % FO_OWNERS, rc, p0, p1;
		char rid[RID_MAX];
		item it;

		snprintf(rid, sizeof(rid), "f-w%d-%d", w, i);
		item_make(&it, o, rid);
		p0 = shared_get(&run_shm->phase);
		rc = ef_finalize(st, &it.r);
		p1 = shared_get(&run_shm->phase);
		ledger_add('N', o, rid, rc, p0, p1);
		if (rc < 0)
			fo_note(p0, rc, ef_errmsg(st));
		if (p0 == FO_WHOLE)
			run_count(w);
	}
	ef_close(st);
	return CHILD_OK;
}

/* Does node @port's answer to @cmd contain every one of @want (NULL
 * ended)? A node that does not answer does not. */
static int node_says(int port, const char *cmd, const char *const *want)
{
	redisContext *n = redisConnect("127.0.0.1", port);
	redisReply *r = NULL;
	int yes = 0;

	if (n && !n->err)
		r = redisCommand(n, cmd);
	if (r && r->type == REDIS_REPLY_STRING) {
		yes = 1;
		for (; *want; want++)
			yes &= strstr(r->str, *want) != NULL;
	}
	if (r)
		freeReplyObject(r);
	if (n)
		redisFree(n);
	return yes;
}

/* Wait (at most SETTLE_S) until a master other than @victim serves @slot
 * and says the cluster is whole; its port. */
static int fo_promoted(rclient *c, unsigned slot, int victim)
{
	static const char *const ok[] = {"cluster_state:ok", NULL};

	for (int i = 0; i < SETTLE_S * 20; i++, th_sleep_us(50000)) {
		int port = 0;

		if (rclient_refresh(c) != EF_OK)
			continue;
		rclient_node_of(c, slot, &port);
		if (port && port != victim &&
		    node_says(port, "CLUSTER INFO", ok))
			return port;
	}
	fail_msg("no replica took over slot %u within %d s", slot, SETTLE_S);
	return 0;
}

/* Start the killed node again, on its own files: it rejoins as a replica
 * of the master that took its place, as an operator would bring it back. */
static void fo_restart(int port)
{
	char conf[4300];
	char *argv[] = {"/bin/sh", "-c", "exec redis-server \"$0\"", conf,
			NULL};
	char *err = NULL;
	int rc;

	snprintf(conf, sizeof(conf), "%s/%d/redis.conf", rf.dir, port);
	rc = th_run(argv, NULL, &err);
	if (rc != 0)
		fail_msg("restarting node %d: %s", port, err);
	free(err);
}

/* Wait (at most SETTLE_S) until @replica replicates @master, in sync. */
static void fo_replica_online(int master, int replica)
{
	static const char *const m[] = {"connected_slaves:1", "state=online",
					NULL};
	static const char *const r[] = {"role:slave",
					"master_link_status:up", NULL};

	for (int i = 0; i < SETTLE_S * 20; i++, th_sleep_us(50000))
		if (node_says(replica, "INFO replication", r) &&
		    node_says(master, "INFO replication", m))
			return;
	fail_msg("node %d is no replica of %d in sync after %d s", replica,
		 master, SETTLE_S);
}

/* Print each distinct error (name and message) the failover caused, with
 * how often it came. */
static void fo_report_errors(void)
{
	enum { KINDS = 8 };
	char path[4300], line[400], kind[KINDS][400];
	int count[KINDS] = {0}, nkinds = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/errors", test_tmp);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *what = strchr(line, ' '); /* past the phase */
		int k = 0;

		if (!what)
			continue;
		while (k < nkinds && strcmp(kind[k], what + 1) != 0)
			k++;
		if (k == nkinds && nkinds < KINDS)
			snprintf(kind[nkinds++], sizeof(kind[0]), "%s", what + 1);
		if (k < nkinds)
			count[k]++;
	}
	fclose(f);
	for (int k = 0; k < nkinds; k++)
		print_message("failover: %dx %s", count[k], kind[k]);
}

static void test_store_master_killed_keeps_every_write_acked_by_a_replica(
	void **state)
{
	pid_t pids[FO_WRITERS];
	size_t n_before = 0, n_after = 0, n_window = 0, n_eio = 0,
	       n_ebusy = 0, n_acked = 0, refound = 0;
	char owner[64];
	recset rs = {0};
	uint64_t rng;
	unsigned slot;
	int victim, heir;
	rclient *c;
	ef_store *st;
	calls cs;

	(void)state;
	randombytes_buf(&rng, sizeof(rng));
	store_new("failover");
	run_shm = shared_new(sizeof(*run_shm));
	for (int w = 0; w < FO_WRITERS; w++)
		pids[w] = spawn(fo_writer, w);
	st = parent_open("");
	c = rf_client("");
	owner_name(owner, sizeof(owner), 0);
	slot = owner_slot(st, owner);
	victim = master_of(c, slot);
	pause_ms(&rng, 300, 600);

	shared_set(&run_shm->phase, FO_FAILING);
	assert_int_equal(kill((pid_t)rf_node_pid(victim), SIGKILL), 0);
	heir = fo_promoted(c, slot, victim);
	fo_restart(victim);
	fo_replica_online(heir, victim);
	shared_set(&run_shm->phase, FO_WHOLE);
	run_progress(FO_WRITERS, FO_AFTER);
	shared_set(&run_shm->stop, 1);
	reap_ok(pids, FO_WRITERS);
	munmap(run_shm, sizeof(*run_shm));
	run_shm = NULL;
	rclient_close(c);

	/* before the kill and once whole again, every call succeeded; while
	 * it failed over, a call either succeeded or failed as documented */
	calls_read(&cs);
	for (size_t i = 0; i < cs.n; i++) {
		const call *x = &cs.v[i];
		int window = !(x->a == FO_BEFORE && x->b == FO_BEFORE) &&
			     x->a != FO_WHOLE;

		assert_int_equal(x->kind, 'N');
		recset_add(&rs, x->o, x->rid);
		n_before += x->a == FO_BEFORE && x->b == FO_BEFORE;
		n_after += x->a == FO_WHOLE;
		n_window += window;
		if (x->rc == EF_OK)
			continue;
		if (!window || (x->rc != EF_EIO && x->rc != EF_EBUSY))
			fail_msg("%s (phase %d..%d): %s", x->rid, x->a, x->b,
				 ef_err_name(x->rc));
		n_eio += x->rc == EF_EIO;
		n_ebusy += x->rc == EF_EBUSY;
	}
	recset_seal(&rs);
	assert_int_equal(rs.n, cs.n); /* every reservation once */
	for (size_t i = 0; i < cs.n; i++)
		if (cs.v[i].rc == EF_OK) {
			recset_find(&rs, cs.v[i].o, cs.v[i].rid)->acked = 1;
			n_acked++;
		}

	/* every write acknowledged with wait=1 survived the failover */
	store_verify(st, &rs, FO_OWNERS, 0, 1);
	/* and finalizing again: a duplicate for each acknowledged one; the
	 * failed ones are written now, or were already */
	for (size_t i = 0; i < cs.n; i++) {
		const call *x = &cs.v[i];
		item it;
		int rc;

		item_make(&it, x->o, x->rid);
		rc = ef_finalize(st, &it.r);
		if (x->rc == EF_OK && rc != EF_EXISTS)
			fail_msg("%s was acknowledged, finalizing it again gave "
				 "%s", x->rid, ef_err_name(rc));
		if (rc != EF_OK && rc != EF_EXISTS)
			fail_msg("%s again: %s: %s", x->rid, ef_err_name(rc),
				 ef_errmsg(st));
		refound += x->rc != EF_OK && rc == EF_EXISTS;
	}
	assert_int_equal(store_verify(st, &rs, FO_OWNERS, 1, 1), rs.n);
	ef_close(st);
	print_message("failover: node %d killed, %d took over slot %u; calls: "
		      "%zu before, %zu during (%zu EF_EIO, %zu EF_EBUSY; %zu "
		      "of the failed were applied), %zu after, %zu "
		      "acknowledged\n", victim, heir, slot, n_before, n_window,
		      n_eio, n_ebusy, refound, n_after, n_acked);
	fo_report_errors();
	free(cs.v);
	free(rs.v);
	store_done();
}

/* ---- 6. the registry's master fails over after a write with wait=1 ----- */

static pid_t stopped_pid; /* a node stopped (SIGSTOP) by the test */

/* The port of the replica of master @port (its first). */
static int replica_of(int port)
{
	redisContext *n = rf_node(port);
	redisReply *r = redisCommand(n, "INFO replication");
	const char *at;
	int rport = 0;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	at = strstr(r->str, "slave0:");
	if (at && (at = strstr(at, "port=")) != NULL)
		rport = atoi(at + 5);
	freeReplyObject(r);
	redisFree(n);
	assert_true(rport > 0);
	return rport;
}

/*
 * A write acknowledged with wait=1 must survive the failover of any
 * master it touched, and store-wide work (ef_check, sweep, export,
 * migrate) finds an owner only through the store's registry of groups
 * (engine.h), written by the owner's first write. So: the registry's
 * replica stopped, a first write of an owner whose group lives on
 * another master, then the registry's master killed and its replica
 * (which never got the registration) promoted. An acknowledged write
 * must still be seen by ef_check and every walk; a write whose
 * registration no replica took must not be acknowledged.
 */
static void test_store_write_acked_with_wait_survives_the_registry_failover(
	void **state)
{
	unsigned reg_slot;
	int regm, replica, heir, o, rc;
	char owner[64];
	ef_check_stats cs;
	ef_store *st;
	ef_entry *e = NULL;
	rclient *c;
	item it;

	(void)state;
	store_new("regfail");
	st = parent_open("&wait=1&wait_ms=500");
	c = rf_client("");
	reg_slot = reng_slot(st->env->reng, 'r', NULL);
	regm = master_of(c, reg_slot);
	replica = replica_of(regm);
	for (o = 0;; o++) { /* an owner whose group lives elsewhere */
		assert_true(o < 1000);
		owner_name(owner, sizeof(owner), o);
		if (master_of(c, owner_slot(st, owner)) != regm)
			break;
	}
	item_make(&it, o, "registry-failover");
	it.r.ip = NULL; /* the keyring is not what this is about */

	/* the replica stopped, and its link cut (what the master had sent
	 * would wait in its socket and reach it after SIGCONT) */
	stopped_pid = (pid_t)rf_node_pid(replica);
	assert_int_equal(kill(stopped_pid, SIGSTOP), 0);
	node_run(regm, "CLIENT KILL TYPE replica");
	rc = ef_finalize(st, &it.r);
	assert_int_equal(kill((pid_t)rf_node_pid(regm), SIGKILL), 0);
	assert_int_equal(kill(stopped_pid, SIGCONT), 0);
	stopped_pid = 0;
	if (rc != EF_OK && rc != EF_EIO)
		fail_msg("ef_finalize: %s: %s", ef_err_name(rc), ef_errmsg(st));
	print_message("registry failover: the write without a replica for "
		      "its registration: %s%s%s\n", ef_err_name(rc),
		      rc == EF_OK ? "" : ": ", rc == EF_OK ? "" : ef_errmsg(st));
	heir = fo_promoted(c, reg_slot, regm);
	fo_restart(regm);
	fo_replica_online(heir, regm);

	/* acknowledged: the owner's feed and every walk see it */
	if (rc == EF_OK) {
		assert_int_equal(ef_get_entry(st, it.owner, it.rid, &e), EF_OK);
		ef_entry_free(e);
		if (th_count_prefix(st, "recentReceive:") != 1)
			fail_msg("acknowledged with wait=1, but after the "
				 "failover of the registry's master no walk of "
				 "the store sees it");
	}
	/* either way, once written it is there once for every reader. A
	 * wait=1 write may still find the new pair catching up (EF_EIO,
	 * "acknowledged by only 0 of 1 replicas": documented, and maybe
	 * applied): then it is called again, as a caller would */
	for (int i = 0; i < 50; i++) {
		rc = ef_finalize(st, &it.r);
		if (rc != EF_EIO)
			break;
		print_message("after the failover: %s\n", ef_errmsg(st));
		th_sleep_us(100000);
	}
	if (rc != EF_OK && rc != EF_EXISTS)
		fail_msg("ef_finalize after the failover: %s: %s",
			 ef_err_name(rc), ef_errmsg(st));
	assert_int_equal(ef_get_entry(st, it.owner, it.rid, &e), EF_OK);
	ef_entry_free(e);
	assert_int_equal(th_count_prefix(st, "recentReceive:"), 1);
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), 1);
	th_assert_consistent(st);
	assert_int_equal(ef_check(st, NULL, &cs), EF_OK);
	assert_int_equal(cs.entries, 1);
	rclient_close(c);
	ef_close(st);
	store_done();
}

/* After each test, whatever it failed on: no child outlives it, and its
 * files go. */
static int test_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < CHILDREN_MAX; i++) {
		if (!children[i])
			continue;
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
		children[i] = 0;
	}
	if (run_shm) {
		munmap(run_shm, sizeof(*run_shm));
		run_shm = NULL;
	}
	if (race_shm) {
		munmap(race_shm, sizeof(*race_shm));
		race_shm = NULL;
	}
	free(kill_all.v);
	memset(&kill_all, 0, sizeof(kill_all));
	if (stopped_pid) {
		kill(stopped_pid, SIGCONT);
		stopped_pid = 0;
	}
	if (test_tmp)
		store_done();
	return 0;
}

/*
 * Every node of the cluster killed at once (kill -9), then started again
 * on its own files: every finalize acknowledged before is there, with its
 * IP (the day key came back from its AOF too), and nothing else. With
 * appendfsync always, Redis answers a write only once its AOF holds it.
 * (A kill spares the page cache: what this shows is that an acknowledged
 * write is in the AOF, not that the AOF reached the platter.)
 */
static void test_store_whole_cluster_killed_keeps_every_acknowledged_write(
	void **state)
{
	static const char *const ok[] = {"cluster_state:ok", NULL};
	enum { N = 240 };
	ef_check_stats cs;
	ef_store *st;
	ef_entry *e;
	item it;

	(void)state;
	store_new("wholecrash");
	st = parent_open("");
	for (int i = 0; i < N; i++) {
		char rid[32];
		snprintf(rid, sizeof(rid), "crash-%d", i);
		item_make(&it, i % 24, rid);
		assert_int_equal(ef_finalize(st, &it.r), EF_OK);
	}
	ef_close(st);
	for (size_t i = 0; i < rf.nports; i++)
		assert_int_equal(kill((pid_t)rf_node_pid(rf.ports[i]), SIGKILL),
				 0);
	th_sleep_us(200000); /* let the kernel reap them and free the ports */
	for (size_t i = 0; i < rf.nports; i++)
		fo_restart(rf.ports[i]);
	for (size_t i = 0; i < rf.nports; i++) {
		int n = 0;
		while (!node_says(rf.ports[i], "CLUSTER INFO", ok)) {
			if (++n > SETTLE_S * 10)
				fail_msg("node %d not back within %d s",
					 rf.ports[i], SETTLE_S);
			th_sleep_us(100000);
		}
	}
	st = parent_open("");
	for (int i = 0; i < N; i++) {
		char rid[32];
		snprintf(rid, sizeof(rid), "crash-%d", i);
		item_make(&it, i % 24, rid);
		if (ef_get_entry(st, it.owner, it.rid, &e) != EF_OK)
			fail_msg("%s/%s lost: %s", it.owner, it.rid,
				 ef_errmsg(st));
		assert_string_equal(e->ip, it.ip);
		assert_int_equal(e->created_ms, it.r.created_ms);
		ef_entry_free(e);
		assert_int_equal(ef_finalize(st, &it.r), EF_EXISTS);
	}
	assert_int_equal(ef_check(st, NULL, &cs), EF_OK);
	assert_int_equal(cs.violations, 0);
	assert_int_equal(cs.entries, N);
	ef_close(st);
	store_done();
}

#define store_test(f) cmocka_unit_test_teardown(f, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		store_test(
			test_store_processes_racing_create_each_reservation_once),
		store_test(
			test_store_writers_killed_mid_call_lose_no_acknowledged_entry),
		store_test(
			test_store_slots_migrated_under_writers_lose_nothing),
		store_test(
			test_store_first_write_of_a_group_outlasts_a_slow_registry),
		store_test(
			test_store_master_killed_keeps_every_write_acked_by_a_replica),
		store_test(
			test_store_write_acked_with_wait_survives_the_registry_failover),
		store_test(
			test_store_whole_cluster_killed_keeps_every_acknowledged_write),
	};
	return cmocka_run_group_tests(tests, rf_group_setup,
				      rf_group_teardown);
}

/*
 * test-migrate-concurrency.c - the migrator with live workers, for real:
 * forked processes finalize new reservations and reservations of the legacy
 * arrays while ef_migrate converts them, and nothing is lost, duplicated or
 * acknowledged twice; two migrations started together serialize on the
 * maintenance lock; and `edgefeed migrate` waits, refuses (--no-wait),
 * dry-runs and reports as DESIGN.md says.
 *
 * As in test-multiprocess.c, every child opens its own ef_store after fork()
 * and reports through a ledger file; children never call cmocka, they
 * _exit() with a status the parent asserts. The children and the migrator
 * meet through counters in shared memory, so that every phase (before,
 * between the migrator's transactions, after) is exercised by construction,
 * not by luck of timing; the waits are bounded only to turn a hang into a
 * failure.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"
#include "tests/legacy-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1790000000000LL /* 2026-09-21T14:13:20Z: the tests' clock */
#define CHILD_ALARM_S 150  /* a stuck child dies instead of hanging the run */
#define WAIT_MAX_MS 100000 /* bounded waits: a hang becomes a failure */

#define OWNERS 6
#define ELEMS 80
#define FINALIZERS 4
#define NEW_PER 8     /* reservations per finalizer and owner, its own */
#define SHARED_PER 4  /* reservations per owner that every finalizer makes */
#define BEFORE_CALLS 40 /* calls each finalizer makes before migration starts */
#define DURING_CALLS 3  /* ... and after each of the migrator's commits */

/* Exit statuses of children. */
enum {
	CHILD_OK = 0,
	CHILD_ECALL = 1,   /* a call returned something unexpected */
	CHILD_EOPEN = 2,   /* ef_open failed */
	CHILD_ELEDGER = 3, /* cannot write a ledger or stats file */
	CHILD_EWAIT = 4,   /* a bounded wait ran out, or a peer failed */
};

static int64_t test_now = T0;

static ef_config mc_cfg(void)
{
	ef_config cfg = {0};

	cfg.feed_cap = LF_FEED_CAP;
	cfg.flags = EF_NOSYNC;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &test_now;
	return cfg;
}

/* ---- processes ------------------------------------------------------------ */

/* The directory of the current test: global, so forked children inherit
 * it reachable (valgrind checks children's leaks too). */
static char *test_tmp;

/* The write end of the "go" pipe: only the parent may hold it, so that its
 * close() is what the children see as EOF. */
static int go_write_fd = -1;

/* In a child: a crash must kill it, not resume cmocka's runner in it; drop
 * the parent's end of the go pipe; bound its life. */
static void child_setup(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		signal(sigs[i], SIG_DFL);
	if (go_write_fd >= 0)
		close(go_write_fd);
	alarm(CHILD_ALARM_S);
}

/* A go pipe: the children block on fds[0] until go_release(). */
static void go_open(int fds[2])
{
	assert_int_equal(pipe(fds), 0);
	go_write_fd = fds[1];
}

static void go_release(int fds[2])
{
	close(fds[1]);
	close(fds[0]);
	go_write_fd = -1;
}

typedef int (*child_fn)(void *ctx, int idx);

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

/* Reap every child; the number that failed. */
static int reap(const pid_t *pids, int n)
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

static void wait_go(int fd)
{
	char b;
	ssize_t n;

	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What processes share: counters in an anonymous shared mapping. */
enum { PHASE_BEFORE = 0, PHASE_DURING = 1, PHASE_AFTER = 2 };

typedef struct mc_shared {
	atomic_int phase;               /* PHASE_*: where the migrator is */
	atomic_long calls[FINALIZERS];  /* finalizations completed */
	atomic_int failed;              /* a child gave up: nobody waits */
	atomic_int waited;              /* on_wait callbacks that ran */
	atomic_int holding;             /* a migrator sits in its progress */
	char holder[2][256];            /* what each waiter was told */
} mc_shared;

static mc_shared *shared_new(void)
{
	mc_shared *shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(shm != MAP_FAILED);
	memset(shm, 0, sizeof(*shm));
	return shm;
}

static void shared_free(mc_shared *shm)
{
	munmap(shm, sizeof(*shm));
}

/* ---- what finalizers write ----------------------------------------------- */

/* Spellings of one owner that canonicalize to it. */
static void owner_spelling(char *buf, size_t cap, const char *canon, int v)
{
	size_t i;

	switch (v % 3) {
	case 0:
		snprintf(buf, cap, "%s", canon);
		break;
	case 1:
		for (i = 0; canon[i] && i + 1 < cap; i++)
			buf[i] = (char)(canon[i] >= 'a' && canon[i] <= 'z'
						? canon[i] - 32
						: canon[i]);
		buf[i] = '\0';
		break;
	default:
		snprintf(buf, cap, "  %c%s ", canon[0] - 32, canon + 1);
		break;
	}
}

/* A call of a finalizer's sequence. */
enum { CALL_LEGACY = 'L', CALL_NEW = 'N', CALL_SHARED = 'S' };

typedef struct call {
	char kind;  /* CALL_* */
	int o;      /* owner */
	int k;      /* legacy: element index in the owner's model; new and
		     * shared: number */
} call;

static void new_rid(char *buf, size_t cap, int w, int o, int k)
{
	snprintf(buf, cap, "new-%d-%d-%d", w, o, k);
}

static void shared_rid(char *buf, size_t cap, int o, int k)
{
	snprintf(buf, cap, "shared:%d %d", o, k); /* needs escaping */
}

/* The fields finalizer @w gives a call; for a legacy reservation they
 * differ from the element's (which must win: first write wins). */
static void call_fields(const call *c, int w, char *ip, size_t ipcap,
			char *payload, size_t pcap, int64_t *created)
{
	switch (c->kind) {
	case CALL_LEGACY:
		snprintf(ip, ipcap, "198.51.100.%d", w + 1);
		snprintf(payload, pcap, "{\"by\":%d,\"late\":true}", w);
		*created = T0 - 1000 * (w + 1);
		break;
	case CALL_NEW:
		snprintf(ip, ipcap, "192.0.2.%d", w + 1);
		snprintf(payload, pcap, "{\"w\":%d,\"o\":%d,\"k\":%d}", w, c->o,
			 c->k);
		*created = T0 - 600000 - ((int64_t)w * 64 + c->k) * 1000 - c->o;
		break;
	default:
		snprintf(ip, ipcap, "2001:db8:5::%x", w + 1);
		snprintf(payload, pcap, "{\"w\":%d,\"shared\":%d}", w, c->k);
		*created = T0 - 300000 - (int64_t)c->k * 1000 + w;
		break;
	}
}

/* xorshift64*: a reproducible order per finalizer. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void shuffle(call *a, size_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t i = n; i > 1; i--) {
		size_t k = (size_t)(rng_next(&s) % i);
		call t = a[i - 1];
		a[i - 1] = a[k];
		a[k] = t;
	}
}

/* Finalizer @w's sequence: every legacy reservation of the fixture, in its
 * own order, alternating with its new and the shared reservations (cycled),
 * so any two consecutive calls include a legacy one. */
static call *sequence(const lf_fixture *fx, int w, size_t *len)
{
	size_t nl = 0, nn = (size_t)OWNERS * (NEW_PER + SHARED_PER), i = 0;
	call *leg, *nw, *seq;

	for (int o = 0; o < OWNERS; o++)
		nl += fx->o[o].n;
	leg = calloc(nl, sizeof(*leg));
	nw = calloc(nn, sizeof(*nw));
	seq = calloc(2 * nl, sizeof(*seq));
	if (!leg || !nw || !seq) {
		free(leg), free(nw), free(seq);
		return NULL;
	}
	for (int o = 0; o < OWNERS; o++)
		for (size_t k = 0; k < fx->o[o].n; k++)
			leg[i++] = (call){CALL_LEGACY, o, (int)k};
	i = 0;
	for (int o = 0; o < OWNERS; o++) {
		for (int k = 0; k < NEW_PER; k++)
			nw[i++] = (call){CALL_NEW, o, k};
		for (int k = 0; k < SHARED_PER; k++)
			nw[i++] = (call){CALL_SHARED, o, k};
	}
	shuffle(leg, nl, (uint64_t)w + 1);
	shuffle(nw, nn, (uint64_t)w + 101);
	for (i = 0; i < nl; i++) {
		seq[2 * i] = leg[i];
		seq[2 * i + 1] = nw[i % nn];
	}
	free(leg);
	free(nw);
	*len = 2 * nl;
	return seq;
}

/* ---- the concurrent scenario ----------------------------------------------- */

typedef struct scenario {
	char dir[PATH_MAX];     /* the store */
	char ledgers[PATH_MAX]; /* ledger.<w> and migrate.stats */
	lf_fixture fx;
	mc_shared *shm;
	int go_fd;
} scenario;

static const char *phase_name(int p)
{
	return p == PHASE_BEFORE ? "before" : p == PHASE_DURING ? "during"
							       : "after";
}

/* One call: ledger line "<kind> <owner> <k> <rc> <phase>", where the
 * phase is before (migration had not started when the call returned),
 * after (it had finished when the call began) or during. */
static int finalize_one(ef_store *st, const scenario *sc, int w, const call *c,
			size_t pos, FILE *led)
{
	const lf_owner *lo = &sc->fx.o[c->o];
	char owner[LF_OWNER_MAX + 8], rid[LF_RID_MAX], ip[48], payload[96];
	ef_receive r = {0};
	int p0, p1, rc, phase;

	owner_spelling(owner, sizeof(owner), lo->owner, (int)(pos % 3));
	if (c->kind == CALL_LEGACY)
		snprintf(rid, sizeof(rid), "%s", lo->el[c->k].rid);
	else if (c->kind == CALL_NEW)
		new_rid(rid, sizeof(rid), w, c->o, c->k);
	else
		shared_rid(rid, sizeof(rid), c->o, c->k);
	call_fields(c, w, ip, sizeof(ip), payload, sizeof(payload),
		    &r.created_ms);
	r.owner = owner;
	r.reservation_id = rid;
	r.ip = ip;
	r.payload_json = payload;
	p0 = atomic_load(&sc->shm->phase);
	rc = ef_finalize(st, &r);
	p1 = atomic_load(&sc->shm->phase);
	phase = p1 == PHASE_BEFORE  ? PHASE_BEFORE
		: p0 == PHASE_AFTER ? PHASE_AFTER
				    : PHASE_DURING;
	fprintf(led, "%c %d %d %d %d\n", c->kind, c->o, c->k, rc, phase);
	if (rc != EF_OK && rc != EF_EXISTS) {
		fprintf(stderr, "finalizer %d: ef_finalize('%s', '%s') %s: "
			"%s: %s\n", w, owner, rid, phase_name(phase),
			ef_err_name(rc), ef_errmsg(st));
		return CHILD_ECALL;
	}
	atomic_fetch_add(&sc->shm->calls[w], 1);
	return CHILD_OK;
}

/* Finalizer @w: its sequence, cyclically, until the migration is over;
 * then once more through all of it. */
static int finalizer_child(void *ctx, int w)
{
	const scenario *sc = ctx;
	ef_config cfg = mc_cfg();
	char path[PATH_MAX + 32];
	size_t len = 0, pos, after_at = SIZE_MAX;
	ef_store *st = NULL;
	int rc, status = CHILD_OK;
	call *seq = sequence(&sc->fx, w, &len);
	FILE *led;

	snprintf(path, sizeof(path), "%s/ledger.%d", sc->ledgers, w);
	led = fopen(path, "w");
	if (!seq || !led) {
		atomic_store(&sc->shm->failed, 1);
		return CHILD_ELEDGER;
	}
	wait_go(sc->go_fd);
	rc = ef_open(&st, sc->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "finalizer %d: ef_open: %s: %s\n", w,
			ef_err_name(rc), ef_errmsg(NULL));
		atomic_store(&sc->shm->failed, 1);
		return CHILD_EOPEN;
	}
	for (pos = 0; status == CHILD_OK; pos++) {
		if (after_at == SIZE_MAX &&
		    atomic_load(&sc->shm->phase) == PHASE_AFTER)
			after_at = pos;
		if (after_at != SIZE_MAX && pos - after_at >= len)
			break;
		if (atomic_load(&sc->shm->failed)) {
			status = CHILD_EWAIT;
			break;
		}
		status = finalize_one(st, sc, w, &seq[pos % len], pos, led);
	}
	if (status != CHILD_OK)
		atomic_store(&sc->shm->failed, 1);
	if (fclose(led) != 0 && status == CHILD_OK)
		status = CHILD_ELEDGER;
	ef_close(st);
	free(seq);
	return status;
}

/* Wait until every finalizer has completed at least @want[w] calls. */
static int wait_calls(mc_shared *shm, const long *want)
{
	for (long ms = 0; ms < WAIT_MAX_MS; ms++) {
		int all = 1;

		if (atomic_load(&shm->failed))
			return CHILD_EWAIT;
		for (int w = 0; w < FINALIZERS; w++)
			all &= atomic_load(&shm->calls[w]) >= want[w];
		if (all)
			return CHILD_OK;
		sleep_ms(1);
	}
	fprintf(stderr, "migrator: the finalizers made no progress\n");
	return CHILD_EWAIT;
}

/* After each commit of the migrator: let every finalizer make a few calls
 * against the half-migrated store before the next transaction. */
static void migrator_progress(uint64_t done, uint64_t total, void *ctx)
{
	mc_shared *shm = ctx;
	long want[FINALIZERS];

	(void)done, (void)total;
	for (int w = 0; w < FINALIZERS; w++)
		want[w] = atomic_load(&shm->calls[w]) + DURING_CALLS;
	if (wait_calls(shm, want) != CHILD_OK)
		atomic_store(&shm->failed, 1);
}

static int migrator_child(void *ctx, int idx)
{
	const scenario *sc = ctx;
	ef_config cfg = mc_cfg();
	ef_migrate_opts mo = {0};
	ef_migrate_stats ms;
	long want[FINALIZERS];
	char path[PATH_MAX + 32];
	ef_store *st = NULL;
	int rc, status;
	FILE *f;

	(void)idx;
	wait_go(sc->go_fd);
	rc = ef_open(&st, sc->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		atomic_store(&sc->shm->failed, 1);
		return CHILD_EOPEN;
	}
	for (int w = 0; w < FINALIZERS; w++)
		want[w] = BEFORE_CALLS;
	status = wait_calls(sc->shm, want);
	if (status != CHILD_OK) {
		ef_close(st);
		return status;
	}
	atomic_store(&sc->shm->phase, PHASE_DURING);
	mo.batch = 1;
	mo.progress = migrator_progress;
	mo.progress_ctx = sc->shm;
	rc = ef_migrate(st, &mo, &ms);
	atomic_store(&sc->shm->phase, PHASE_AFTER);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator: ef_migrate: %s: %s\n",
			ef_err_name(rc), ef_errmsg(st));
		atomic_store(&sc->shm->failed, 1);
		ef_close(st);
		return CHILD_ECALL;
	}
	ef_close(st);
	if (atomic_load(&sc->shm->failed))
		return CHILD_EWAIT;
	snprintf(path, sizeof(path), "%s/migrate.stats", sc->ledgers);
	f = fopen(path, "w");
	if (!f)
		return CHILD_ELEDGER;
	fprintf(f, "%llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
		(unsigned long long)ms.owners, (unsigned long long)ms.elements,
		(unsigned long long)ms.migrated,
		(unsigned long long)ms.duplicates,
		(unsigned long long)ms.quarantined,
		(unsigned long long)ms.kept_without_ip,
		(unsigned long long)ms.markers_kept,
		(unsigned long long)ms.orphan_markers,
		(unsigned long long)ms.batches);
	return fclose(f) == 0 ? CHILD_OK : CHILD_ELEDGER;
}

/* ---- checking the concurrent run ---------------------------------------- */

typedef struct tally {
	/* per owner: oks and winner of each new / shared reservation */
	int new_ok[OWNERS][FINALIZERS][NEW_PER];
	int new_calls[OWNERS][FINALIZERS][NEW_PER];
	int shared_ok[OWNERS][SHARED_PER];
	int shared_calls[OWNERS][SHARED_PER];
	int shared_winner[OWNERS][SHARED_PER];
	/* legacy calls by finalizer and phase */
	long legacy_calls[FINALIZERS][3];
	long legacy_exists;
} tally;

static void ledgers_read(const scenario *sc, tally *t)
{
	memset(t, 0, sizeof(*t));
	for (int w = 0; w < FINALIZERS; w++) {
		char path[PATH_MAX + 32], kind;
		int o, k, rc, phase;
		FILE *f;

		snprintf(path, sizeof(path), "%s/ledger.%d", sc->ledgers, w);
		f = fopen(path, "r");
		if (!f)
			fail_msg("the ledger of finalizer %d is missing", w);
		while (fscanf(f, " %c %d %d %d %d", &kind, &o, &k, &rc,
			      &phase) == 5) {
			assert_true(o >= 0 && o < OWNERS);
			assert_true(phase >= PHASE_BEFORE && phase <= PHASE_AFTER);
			if (rc != EF_OK && rc != EF_EXISTS)
				fail_msg("finalizer %d: %c %d %d gave %s", w,
					 kind, o, k, ef_err_name(rc));
			if (kind == CALL_LEGACY) {
				const lf_owner *lo = &sc->fx.o[o];

				assert_true(k >= 0 && (size_t)k < lo->n);
				if (rc == EF_OK)
					fail_msg("finalizer %d: '%s' of the "
						 "legacy array '%s%s' was "
						 "acknowledged EF_OK %s the "
						 "migration (want EF_EXISTS)",
						 w, lo->el[k].rid, KEY_P_LEGACY,
						 lo->key_owner,
						 phase_name(phase));
				t->legacy_calls[w][phase]++;
				t->legacy_exists++;
			} else if (kind == CALL_NEW) {
				assert_true(k >= 0 && k < NEW_PER);
				t->new_calls[o][w][k]++;
				t->new_ok[o][w][k] += rc == EF_OK;
			} else {
				assert_int_equal(kind, CALL_SHARED);
				assert_true(k >= 0 && k < SHARED_PER);
				t->shared_calls[o][k]++;
				if (rc == EF_OK) {
					t->shared_ok[o][k]++;
					t->shared_winner[o][k] = w;
				}
			}
		}
		fclose(f);
	}
}

/* Exactly one EF_OK per new reservation; legacy calls in every phase. */
static void ledgers_check(const tally *t)
{
	for (int o = 0; o < OWNERS; o++) {
		for (int w = 0; w < FINALIZERS; w++)
			for (int k = 0; k < NEW_PER; k++)
				if (t->new_calls[o][w][k] < 1 ||
				    t->new_ok[o][w][k] != 1)
					fail_msg("new-%d-%d-%d: %d calls, %d "
						 "EF_OK (want 1)", w, o, k,
						 t->new_calls[o][w][k],
						 t->new_ok[o][w][k]);
		for (int k = 0; k < SHARED_PER; k++)
			if (t->shared_calls[o][k] < FINALIZERS ||
			    t->shared_ok[o][k] != 1)
				fail_msg("shared %d %d: %d calls, %d EF_OK "
					 "(want 1)", o, k, t->shared_calls[o][k],
					 t->shared_ok[o][k]);
	}
	for (int w = 0; w < FINALIZERS; w++)
		for (int p = PHASE_BEFORE; p <= PHASE_AFTER; p++)
			if (t->legacy_calls[w][p] < 1)
				fail_msg("finalizer %d made no legacy call %s "
					 "the migration", w, phase_name(p));
}

typedef struct feed_ctx {
	const scenario *sc;
	const tally *t;
	int o;
	char *seen_legacy;              /* per element of the owner */
	char seen_new[FINALIZERS][NEW_PER];
	char seen_shared[SHARED_PER];
} feed_ctx;

/* An entry of a new or shared reservation: the winner's fields. */
static void check_new_entry(const feed_ctx *c, const ef_entry *e, char kind,
			    int w, int k)
{
	char ip[48], payload[96];
	call cl = {kind, c->o, k};
	int64_t created;

	call_fields(&cl, w, ip, sizeof(ip), payload, sizeof(payload),
		    &created);
	if (e->created_ms != created || !e->ip || strcmp(e->ip, ip) != 0 ||
	    !e->payload_json || strcmp(e->payload_json, payload) != 0)
		fail_msg("%s: '%s' is not the EF_OK write of finalizer %d: "
			 "%lld %s %s", c->sc->fx.o[c->o].owner,
			 e->reservation_id, w, (long long)e->created_ms,
			 e->ip ? e->ip : "-",
			 e->payload_json ? e->payload_json : "-");
	assert_int_equal(e->unread, 1);
}

static void feed_entry(const ef_entry *e, void *ctx)
{
	feed_ctx *c = ctx;
	const lf_owner *lo = &c->sc->fx.o[c->o];
	char why[400], rid[LF_RID_MAX];
	int w, o, k;
	long i;

	if (sscanf(e->reservation_id, "new-%d-%d-%d", &w, &o, &k) == 3) {
		new_rid(rid, sizeof(rid), w, o, k);
		assert_string_equal(rid, e->reservation_id);
		assert_true(w >= 0 && w < FINALIZERS && o == c->o && k >= 0 &&
			    k < NEW_PER);
		if (c->seen_new[w][k]++)
			fail_msg("%s: '%s' twice", lo->owner, rid);
		check_new_entry(c, e, CALL_NEW, w, k);
		return;
	}
	if (sscanf(e->reservation_id, "shared:%d %d", &o, &k) == 2) {
		shared_rid(rid, sizeof(rid), o, k);
		assert_string_equal(rid, e->reservation_id);
		assert_true(o == c->o && k >= 0 && k < SHARED_PER);
		if (c->seen_shared[k]++)
			fail_msg("%s: '%s' twice", lo->owner, rid);
		check_new_entry(c, e, CALL_SHARED, c->t->shared_winner[o][k], k);
		return;
	}
	i = lf_find(lo, e->reservation_id);
	if (i < 0)
		fail_msg("%s: '%s' is neither a legacy element nor a new "
			 "reservation", lo->owner, e->reservation_id);
	if (c->seen_legacy[i]++)
		fail_msg("%s: '%s' twice", lo->owner, e->reservation_id);
	/* first write wins: the element's fields, not a finalizer's */
	if (!lf_entry_matches(&lo->el[i], e, why, sizeof(why)))
		fail_msg("%s: %s", lo->owner, why);
	assert_int_equal(e->unread, lo->el[i].marker);
}

/* Every legacy element and every new reservation of @o exactly once. */
static void owner_check(ef_store *st, const scenario *sc, const tally *t,
			int o)
{
	const lf_owner *lo = &sc->fx.o[o];
	feed_ctx c;
	uint64_t unread;
	size_t n;

	memset(&c, 0, sizeof(c));
	c.sc = sc;
	c.t = t;
	c.o = o;
	c.seen_legacy = calloc(lo->n + 1, 1);
	assert_non_null(c.seen_legacy);
	n = lf_feed_walk(st, lo->owner, feed_entry, &c);
	for (size_t i = 0; i < lo->n; i++)
		if (c.seen_legacy[i] != 1)
			fail_msg("%s: legacy '%s' is missing", lo->owner,
				 lo->el[i].rid);
	for (int w = 0; w < FINALIZERS; w++)
		for (int k = 0; k < NEW_PER; k++)
			if (c.seen_new[w][k] != 1)
				fail_msg("%s: new-%d-%d-%d is missing",
					 lo->owner, w, o, k);
	for (int k = 0; k < SHARED_PER; k++)
		if (c.seen_shared[k] != 1)
			fail_msg("%s: shared %d %d is missing", lo->owner, o, k);
	assert_int_equal(n, lo->n + FINALIZERS * NEW_PER + SHARED_PER);
	assert_int_equal(ef_unread_count(st, lo->owner, &unread), EF_OK);
	assert_int_equal(unread, lo->markers + FINALIZERS * NEW_PER + SHARED_PER);
	free(c.seen_legacy);
}

static void stats_check(const scenario *sc)
{
	lf_sums s = lf_sum(&sc->fx);
	unsigned long long v[9];
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/migrate.stats", sc->ledgers);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu %llu %llu %llu %llu %llu %llu %llu "
				"%llu", &v[0], &v[1], &v[2], &v[3], &v[4],
				&v[5], &v[6], &v[7], &v[8]),
			 9);
	fclose(f);
	assert_int_equal(v[0], sc->fx.n);           /* owners */
	assert_int_equal(v[1], s.elements);         /* elements */
	assert_int_equal(v[2], s.convertible);      /* migrated */
	assert_int_equal(v[3], s.dups);             /* duplicates */
	assert_int_equal(v[4], s.quarantined);      /* quarantined */
	assert_int_equal(v[5], s.kept_without_ip);  /* kept without ip */
	assert_true(v[6] >= s.markers);             /* and the new ones' */
	assert_int_equal(v[7], s.orphans);          /* orphans */
	assert_int_equal(v[8], sc->fx.n);           /* one owner a batch */
}

static void scenario_verify(const scenario *sc)
{
	ef_config cfg = mc_cfg();
	lf_sums s = lf_sum(&sc->fx);
	size_t news = (size_t)OWNERS * (FINALIZERS * NEW_PER + SHARED_PER);
	long phases[3] = {0};
	ef_store *st;
	lf_tally lt;
	tally *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	ledgers_read(sc, t);
	ledgers_check(t);
	for (int w = 0; w < FINALIZERS; w++)
		for (int p = PHASE_BEFORE; p <= PHASE_AFTER; p++)
			phases[p] += t->legacy_calls[w][p];
	printf("migrate concurrency: %d finalizers; finalizations of legacy "
	       "reservations (all EF_EXISTS): %ld before, %ld during and %ld "
	       "after the migration\n", FINALIZERS, phases[PHASE_BEFORE],
	       phases[PHASE_DURING], phases[PHASE_AFTER]);
	fflush(stdout);
	stats_check(sc);
	st = th_open(sc->dir, &cfg);
	lf_tally_take(st, &sc->fx, &lt);
	if (lt.bad)
		fail_msg("%zu inconsistent keys; first: %s", lt.bad,
			 lt.first_bad);
	assert_int_equal(lt.legacy, 0);
	assert_int_equal(lt.foreign, 0);
	assert_int_equal(lt.entries, s.convertible + news);
	assert_int_equal(lt.index, s.convertible + news);
	assert_int_equal(lt.markers, s.markers + s.orphans + news);
	assert_int_equal(lt.quarantine, s.with_issues);
	lf_tally_free(&lt);
	for (int o = 0; o < OWNERS; o++)
		owner_check(st, sc, t, o);
	for (size_t o = 0; o < sc->fx.n; o++)
		lf_check_quarantine(st, &sc->fx.o[o]);
	lf_check_invariants(st);
	ef_close(st);
	free(t);
}

static void test_migrate_while_processes_finalize_loses_nothing(void **state)
{
	ef_config cfg = mc_cfg();
	pid_t pids[FINALIZERS + 1];
	scenario *sc = calloc(1, sizeof(*sc));
	int go[2];
	ef_store *st;

	(void)state;
	assert_non_null(sc);
	test_tmp = th_tmpdir();
	snprintf(sc->dir, sizeof(sc->dir), "%s/store", test_tmp);
	snprintf(sc->ledgers, sizeof(sc->ledgers), "%s", test_tmp);
	/* every array keyed canonically, as the store keys them: dual-read
	 * reads recentReceives:<canonical owner> only (import skips other
	 * spellings; migrate quarantines any left) */
	lf_build(&sc->fx, OWNERS, ELEMS, T0, LF_JUNK_VALUE);
	sc->shm = shared_new();
	st = th_open(sc->dir, &cfg);
	lf_store(st, &sc->fx);
	ef_close(st); /* no handle crosses a fork */

	go_open(go);
	sc->go_fd = go[0];
	for (int w = 0; w < FINALIZERS; w++)
		pids[w] = spawn(finalizer_child, sc, w);
	pids[FINALIZERS] = spawn(migrator_child, sc, 0);
	go_release(go);
	assert_int_equal(reap(pids, FINALIZERS + 1), 0);
	scenario_verify(sc);
	shared_free(sc->shm);
	lf_free(&sc->fx);
	free(sc);
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

/* ---- two migrations started together ------------------------------------- */

typedef struct duo {
	char dir[PATH_MAX];
	char out[PATH_MAX];
	mc_shared *shm;
	int go_fd;
	int me; /* in a child (its own copy): which of the two it is */
} duo;

static void duo_on_wait(const char *holder, void *ctx)
{
	duo *d = ctx;

	snprintf(d->shm->holder[d->me], sizeof(d->shm->holder[d->me]), "%s",
		 holder);
	atomic_fetch_add(&d->shm->waited, 1);
}

/* The first to hold the lock keeps it, after its first commit, until the
 * other has said that it waits: the overlap is certain, not a matter of
 * timing. */
static void duo_progress(uint64_t done, uint64_t total, void *ctx)
{
	duo *d = ctx;

	(void)done, (void)total;
	atomic_store(&d->shm->holding, 1);
	for (long ms = 0; ms < WAIT_MAX_MS && !atomic_load(&d->shm->waited);
	     ms++)
		sleep_ms(1);
}

static int duo_child(void *ctx, int idx)
{
	duo *d = ctx;
	ef_config cfg = mc_cfg();
	ef_migrate_opts mo = {0};
	ef_migrate_stats ms;
	char path[PATH_MAX + 32];
	ef_store *st = NULL;
	FILE *f;
	int rc;

	wait_go(d->go_fd);
	rc = ef_open(&st, d->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator %d: ef_open: %s: %s\n", idx,
			ef_err_name(rc), ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	mo.batch = 1;
	mo.on_wait = duo_on_wait;
	mo.wait_ctx = d;
	mo.progress = duo_progress;
	mo.progress_ctx = d;
	d->me = idx;
	rc = ef_migrate(st, &mo, &ms);
	ef_close(st);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator %d: ef_migrate: %s\n", idx,
			ef_err_name(rc));
		return CHILD_ECALL;
	}
	snprintf(path, sizeof(path), "%s.%d", d->out, idx);
	f = fopen(path, "w");
	if (!f)
		return CHILD_ELEDGER;
	fprintf(f, "%ld %llu %llu %llu\n", (long)getpid(),
		(unsigned long long)ms.owners, (unsigned long long)ms.migrated,
		(unsigned long long)ms.batches);
	return fclose(f) == 0 ? CHILD_OK : CHILD_ELEDGER;
}

/* Both succeeded; exactly one waited, and was told who held the lock; the
 * first did everything, the second found nothing to do. */
static void duo_results_check(const duo *d, const lf_fixture *fx)
{
	lf_sums s = lf_sum(fx);
	long pid[2];
	unsigned long long owners[2], migrated[2], batches[2];
	int first, second;
	char want[64];

	assert_int_equal(atomic_load(&d->shm->waited), 1);
	assert_int_equal(atomic_load(&d->shm->holding), 1);
	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX + 32];
		FILE *f;

		snprintf(path, sizeof(path), "%s.%d", d->out, i);
		f = fopen(path, "r");
		assert_non_null(f);
		assert_int_equal(fscanf(f, "%ld %llu %llu %llu", &pid[i],
					&owners[i], &migrated[i], &batches[i]),
				 4);
		fclose(f);
	}
	first = owners[0] > 0 ? 0 : 1;
	second = 1 - first;
	assert_int_equal(owners[first], fx->n);
	assert_int_equal(migrated[first], s.convertible);
	assert_int_equal(owners[second], 0);
	assert_int_equal(migrated[second], 0);
	assert_int_equal(batches[second], 0);
	snprintf(want, sizeof(want), "pid %ld (edgefeed migrate)", pid[first]);
	if (!strstr(d->shm->holder[0], want) && !strstr(d->shm->holder[1], want))
		fail_msg("the waiter was told '%s' / '%s', want '%s'",
			 d->shm->holder[0], d->shm->holder[1], want);
}

static void test_migrate_two_runs_serialize(void **state)
{
	ef_config cfg = mc_cfg();
	char *single = th_tmpdir(), *d1, *d2;
	lf_fixture fx;
	duo d;
	pid_t pids[2];
	int go[2];
	ef_store *st;

	(void)state;
	test_tmp = th_tmpdir();
	memset(&d, 0, sizeof(d));
	snprintf(d.dir, sizeof(d.dir), "%s/store", test_tmp);
	snprintf(d.out, sizeof(d.out), "%s/duo", test_tmp);
	lf_build(&fx, OWNERS, 30, T0, LF_JUNK_VALUE);
	st = th_open(d.dir, &cfg);
	lf_store(st, &fx);
	ef_close(st);
	d.shm = shared_new();

	go_open(go);
	d.go_fd = go[0];
	for (int i = 0; i < 2; i++)
		pids[i] = spawn(duo_child, &d, i);
	go_release(go);
	assert_int_equal(reap(pids, 2), 0);
	duo_results_check(&d, &fx);

	/* the end state is exactly that of one run */
	st = th_open(single, &cfg);
	lf_store(st, &fx);
	assert_int_equal(ef_migrate(st, NULL, NULL), EF_OK);
	d1 = th_dump(st);
	ef_close(st);
	st = th_open(d.dir, &cfg);
	d2 = th_dump(st);
	ef_close(st);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	shared_free(d.shm);
	lf_free(&fx);
	th_cleanup(single);
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

/* ---- the CLI ---------------------------------------------------------------- */

/* A store of legacy arrays with times relative to the real clock (the CLI
 * has no injectable clock). Returns the directory; @fx gets the model. */
static char *cli_store(lf_fixture *fx)
{
	char *dir = th_tmpdir();
	struct timespec ts;
	ef_config cfg = {0};
	ef_store *st;

	clock_gettime(CLOCK_REALTIME, &ts);
	lf_build(fx, 4, 30, (int64_t)ts.tv_sec * 1000 - 3600 * 1000,
		 LF_JUNK_VALUE);
	cfg.feed_cap = LF_FEED_CAP;
	st = th_open(dir, &cfg);
	lf_store(st, fx);
	ef_close(st);
	return dir;
}

static char *dump_dir(const char *dir)
{
	ef_config cfg = {0};
	ef_store *st;
	char *d;

	cfg.feed_cap = LF_FEED_CAP;
	st = th_open(dir, &cfg);
	d = th_dump(st);
	ef_close(st);
	return d;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (!j)
		fail_msg("not JSON (%s): %s", e.text, text);
	return j;
}

static long long jint(const json_t *j, const char *name)
{
	json_t *v = json_object_get(j, name);

	if (!json_is_integer(v))
		fail_msg("summary has no integer '%s'", name);
	return (long long)json_integer_value(v);
}

/* The summary of a run over the whole fixture @fx. */
static void summary_check(const char *out, const lf_fixture *fx, int dry)
{
	lf_sums s = lf_sum(fx);
	json_t *j = parse(out);

	assert_true(json_is_boolean(json_object_get(j, "dryRun")));
	assert_int_equal(json_is_true(json_object_get(j, "dryRun")), dry);
	assert_int_equal(jint(j, "owners"), fx->n);
	assert_int_equal(jint(j, "elements"), s.elements);
	assert_int_equal(jint(j, "migrated"), s.convertible);
	assert_int_equal(jint(j, "duplicatesMerged"), s.dups);
	assert_int_equal(jint(j, "quarantined"), s.quarantined);
	assert_int_equal(jint(j, "keptWithoutIp"), s.kept_without_ip);
	assert_int_equal(jint(j, "markersKept"), s.markers);
	assert_int_equal(jint(j, "orphanMarkers"), s.orphans);
	json_decref(j);
}

static void test_migrate_cli_no_wait_exits_75_while_the_lock_is_held(
	void **state)
{
	lf_fixture fx;
	char *dir = cli_store(&fx), *err, *before, *after, want[64];
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", dir,
			"migrate", "--no-wait", NULL};
	ef_config cfg = {0};
	ef_maint *lk;
	ef_store *st;

	(void)state;
	before = dump_dir(dir);
	cfg.feed_cap = LF_FEED_CAP;
	st = th_open(dir, &cfg);
	assert_int_equal(ef_maint_lock(st, "test holder", 0, NULL, NULL, &lk),
			 EF_OK);
	assert_int_equal(th_run(argv, NULL, &err), 75);
	snprintf(want, sizeof(want), "pid %ld (test holder)", (long)getpid());
	if (!strstr(err, want))
		fail_msg("stderr does not name the holder '%s': %s", want, err);
	free(err);
	ef_maint_unlock(lk);
	ef_close(st);
	after = dump_dir(dir);
	assert_string_equal(before, after); /* it did nothing */
	free(before);
	free(after);
	lf_free(&fx);
	th_cleanup(dir);
}

/* Read @path until it contains @needle; 1 if it did (bounded wait). */
static int file_waits_for(const char *path, const char *needle)
{
	char buf[4096];

	for (long ms = 0; ms < WAIT_MAX_MS; ms++) {
		FILE *f = fopen(path, "r");
		size_t n = 0;

		if (f) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if (strstr(buf, needle))
			return 1;
		sleep_ms(1);
	}
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_migrate_cli_waits_for_the_lock_then_migrates(void **state)
{
	const char *bin = th_program("EDGEFEED_BIN"); /* not in the child */
	lf_fixture fx;
	char *dir = cli_store(&fx), *out, *err;
	char opath[PATH_MAX + 16], epath[PATH_MAX + 16], want[128];
	ef_config cfg = {0};
	ef_maint *lk;
	ef_store *st;
	pid_t pid;
	int status;

	(void)state;
	snprintf(opath, sizeof(opath), "%s.out", dir);
	snprintf(epath, sizeof(epath), "%s.err", dir);
	cfg.feed_cap = LF_FEED_CAP;
	st = th_open(dir, &cfg);
	assert_int_equal(ef_maint_lock(st, "test holder", 0, NULL, NULL, &lk),
			 EF_OK);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(opath, "w", stdout) || !freopen(epath, "w", stderr))
			_exit(126);
		execl(bin, "edgefeed", "--db", dir, "migrate", "--batch", "1",
		      (char *)NULL);
		_exit(127);
	}
	snprintf(want, sizeof(want),
		 "waiting for the maintenance lock, held by pid %ld (test "
		 "holder)", (long)getpid());
	if (!file_waits_for(epath, want)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		err = slurp(epath);
		fail_msg("edgefeed migrate did not say whom it waits for: %s",
			 err);
	}
	/* it cannot finish while we hold the lock */
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	assert_int_equal(th_count_prefix(st, KEY_P_LEGACY), fx.n);
	ef_maint_unlock(lk);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	out = slurp(opath);
	summary_check(out, &fx, 0);
	assert_int_equal(th_count_prefix(st, KEY_P_LEGACY), 0);
	ef_close(st);
	free(out);
	unlink(opath);
	unlink(epath);
	lf_free(&fx);
	th_cleanup(dir);
}

static void test_migrate_cli_dry_run_prints_summary_changes_nothing(
	void **state)
{
	lf_fixture fx;
	char *dir = cli_store(&fx), *out, *err, *before, *after;
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", dir,
			"migrate", "--dry-run", "--batch", "2", NULL};

	(void)state;
	before = dump_dir(dir);
	assert_int_equal(th_run(argv, &out, &err), 0);
	summary_check(out, &fx, 1);
	after = dump_dir(dir);
	assert_string_equal(before, after);
	free(out);
	free(err);
	free(before);
	free(after);
	lf_free(&fx);
	th_cleanup(dir);
}

static void test_migrate_cli_bad_batch_exits_2_naming_the_option(void **state)
{
	static const char *const bad[] = {"0", "x", "-1", "1025", ""};
	lf_fixture fx;
	char *dir = cli_store(&fx), *err, *before, *after;

	(void)state;
	before = dump_dir(dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", dir,
				"migrate", "--batch", (char *)bad[i], NULL};

		assert_int_equal(th_run(argv, NULL, &err), 2);
		if (!strstr(err, "--batch"))
			fail_msg("--batch '%s': stderr does not name --batch: "
				 "%s", bad[i], err);
		free(err);
	}
	after = dump_dir(dir);
	assert_string_equal(before, after);
	free(before);
	free(after);
	lf_free(&fx);
	th_cleanup(dir);
}

static void test_migrate_cli_prints_summary_and_rerun_does_nothing(
	void **state)
{
	lf_fixture fx;
	char *dir = cli_store(&fx), *out, *err, *d1, *d2;
	char *argv[] = {(char *)th_program("EDGEFEED_BIN"), "--db", dir,
			"migrate", NULL};
	json_t *j;

	(void)state;
	assert_int_equal(th_run(argv, &out, &err), 0);
	summary_check(out, &fx, 0);
	/* the quarantine is said on stderr */
	assert_non_null(strstr(err, "quarantine"));
	free(out);
	free(err);
	d1 = dump_dir(dir);
	assert_int_equal(th_run(argv, &out, NULL), 0);
	j = parse(out);
	assert_int_equal(jint(j, "owners"), 0);
	assert_int_equal(jint(j, "migrated"), 0);
	assert_int_equal(jint(j, "quarantined"), 0);
	json_decref(j);
	free(out);
	d2 = dump_dir(dir);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	lf_free(&fx);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_migrate_while_processes_finalize_loses_nothing),
		cmocka_unit_test(test_migrate_two_runs_serialize),
		cmocka_unit_test(
			test_migrate_cli_no_wait_exits_75_while_the_lock_is_held),
		cmocka_unit_test(
			test_migrate_cli_waits_for_the_lock_then_migrates),
		cmocka_unit_test(
			test_migrate_cli_dry_run_prints_summary_changes_nothing),
		cmocka_unit_test(
			test_migrate_cli_bad_batch_exits_2_naming_the_option),
		cmocka_unit_test(
			test_migrate_cli_prints_summary_and_rerun_does_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

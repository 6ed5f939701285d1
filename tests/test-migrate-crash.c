/*
 * test-migrate-crash.c - kill -9 of the migrator at random points, round
 * after round; after each kill every legacy owner is either fully migrated
 * or not at all, and a re-run completes the store with nothing lost and
 * nothing duplicated.
 *
 * Each round builds a fresh store of legacy arrays (legacy-fixture.h), forks
 * a child that runs ef_migrate in batches of one owner (sometimes a few), and
 * kills it with SIGKILL: at once (before it has opened the store), after a
 * random delay, a random moment after its k-th committed batch, or after it
 * finished. The kill point comes from a PRNG seeded by the round number, so
 * a failing round can be replayed (EF_CRASH_ROUNDS, EF_CRASH_FIRST). The
 * parent then opens the store with a fresh handle, checks the state the kill
 * left, re-runs ef_migrate and checks the end state.
 *
 * Most rounds use EF_NOSYNC: a killed process loses nothing the kernel has
 * (only a power loss would), so the kill is as real either way; every eighth
 * round commits durably, to cover that path too.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"
#include "tests/legacy-fixture.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1790000000000LL /* 2026-09-21T14:13:20Z: the tests' clock */
#define OWNERS 20
#define ELEMS 30
#define ROUNDS_DEFAULT 120
#define CHILD_ALARM_S 120 /* a stuck child dies instead of hanging the run */

/* Exit statuses of the child. */
enum { CHILD_OK = 0, CHILD_EOPEN = 2, CHILD_EMIGRATE = 3 };

static int64_t test_now = T0;

static ef_config crash_cfg(int durable)
{
	ef_config cfg = {0};

	cfg.feed_cap = LF_FEED_CAP;
	cfg.flags = durable ? 0 : EF_NOSYNC;
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &test_now;
	return cfg;
}

/* ---- the child: a migrator to be killed ---------------------------------- */

/* One byte on the progress pipe per committed batch. */
static void child_progress(uint64_t done, uint64_t total, void *ctx)
{
	int fd = *(int *)ctx;
	ssize_t n;

	(void)done, (void)total;
	do
		n = write(fd, "b", 1);
	while (n < 0 && errno == EINTR);
}

static int child_migrate(const char *dir, int durable, uint32_t batch,
			 int progress_fd)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	ef_config cfg = crash_cfg(durable);
	ef_migrate_opts mo = {0};
	ef_migrate_stats ms;
	ef_store *st = NULL;
	int rc;

	/* a crash must kill the child, not resume cmocka's runner in it */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		signal(sigs[i], SIG_DFL);
	alarm(CHILD_ALARM_S);
	rc = ef_open(&st, dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	mo.batch = batch;
	mo.progress = child_progress;
	mo.progress_ctx = &progress_fd;
	rc = ef_migrate(st, &mo, &ms);
	if (rc != EF_OK) {
		fprintf(stderr, "migrator: ef_migrate: %s: %s\n",
			ef_err_name(rc), ef_errmsg(st));
		return CHILD_EMIGRATE;
	}
	ef_close(st);
	return CHILD_OK;
}

/* ---- the reference: what a migrated store reads as ----------------------- */

typedef struct crash_state {
	lf_fixture fx;
	lf_sums sums;
	char **pages; /* per owner: lf_feed_text of the fully migrated store */
	unsigned long rounds, killed, finished;
	unsigned long before, midway, after; /* where the kills landed */
	unsigned long durable_rounds;
} crash_state;

typedef struct owner_walk {
	const lf_owner *w;
	char *seen; /* per convertible element */
} owner_walk;

static void walk_entry(const ef_entry *e, void *ctx)
{
	owner_walk *ow = ctx;
	char why[400];
	long i = lf_find(ow->w, e->reservation_id);

	if (i < 0)
		fail_msg("%s: '%s' is not an element of the fixture",
			 ow->w->owner, e->reservation_id);
	if (ow->seen[i]++)
		fail_msg("%s: '%s' is in the feed twice", ow->w->owner,
			 e->reservation_id);
	if (!lf_entry_matches(&ow->w->el[i], e, why, sizeof(why)))
		fail_msg("%s: %s", ow->w->owner, why);
	/* migration keeps the old design's markers and creates none */
	assert_int_equal(e->unread, ow->w->el[i].marker);
}

/* Every convertible element of every owner exactly once, with its fields,
 * newest first; the unread count is that of the kept markers. */
static void check_feeds_against_fixture(ef_store *st, const lf_fixture *fx)
{
	for (size_t o = 0; o < fx->n; o++) {
		const lf_owner *w = &fx->o[o];
		owner_walk ow = {w, calloc(w->n + 1, 1)};
		uint64_t unread;

		assert_non_null(ow.seen);
		assert_int_equal(lf_feed_walk(st, w->owner, walk_entry, &ow),
				 w->n);
		for (size_t i = 0; i < w->n; i++)
			assert_int_equal(ow.seen[i], 1);
		assert_int_equal(ef_unread_count(st, w->owner, &unread), EF_OK);
		assert_int_equal(unread, w->markers);
		free(ow.seen);
	}
}

/* The end state of a complete migration, whoever did it. */
static void check_complete(ef_store *st, crash_state *cs)
{
	const lf_fixture *fx = &cs->fx;
	lf_tally t;

	lf_tally_take(st, fx, &t);
	if (t.bad)
		fail_msg("%zu inconsistent keys; first: %s", t.bad, t.first_bad);
	assert_int_equal(t.legacy, 0);
	assert_int_equal(t.foreign, 0);
	assert_int_equal(t.entries, cs->sums.convertible);
	assert_int_equal(t.index, cs->sums.convertible);
	assert_int_equal(t.markers, cs->sums.markers + cs->sums.orphans);
	assert_int_equal(t.quarantine, cs->sums.with_issues);
	for (size_t o = 0; o < fx->n; o++) {
		assert_int_equal(t.per[o].entries, fx->o[o].n);
		assert_int_equal(t.per[o].index, fx->o[o].n);
		lf_check_quarantine(st, &fx->o[o]);
	}
	lf_tally_free(&t);
	lf_check_invariants(st);
}

/* Build the fixture, migrate it once without a kill, check it against the
 * model, and keep each owner's pages as the reference of every round. */
static void reference_build(crash_state *cs)
{
	char *dir = th_tmpdir();
	ef_config cfg = crash_cfg(0);
	ef_migrate_stats ms;
	ef_store *st;

	lf_build(&cs->fx, OWNERS, ELEMS, T0, LF_JUNK_VALUE);
	cs->sums = lf_sum(&cs->fx);
	st = th_open(dir, &cfg);
	lf_store(st, &cs->fx);
	assert_int_equal(ef_migrate(st, NULL, &ms), EF_OK);
	assert_int_equal(ms.owners, cs->fx.n);
	assert_int_equal(ms.elements, cs->sums.elements);
	assert_int_equal(ms.migrated, cs->sums.convertible);
	assert_int_equal(ms.duplicates, cs->sums.dups);
	assert_int_equal(ms.quarantined, cs->sums.quarantined);
	assert_int_equal(ms.kept_without_ip, cs->sums.kept_without_ip);
	assert_int_equal(ms.markers_kept, cs->sums.markers);
	assert_int_equal(ms.orphan_markers, cs->sums.orphans);
	check_complete(st, cs);
	check_feeds_against_fixture(st, &cs->fx);
	cs->pages = calloc(cs->fx.n, sizeof(*cs->pages));
	assert_non_null(cs->pages);
	for (size_t o = 0; o < cs->fx.n; o++)
		cs->pages[o] = lf_feed_text(st, cs->fx.o[o].owner, 12);
	ef_close(st);
	th_cleanup(dir);
}

static void reference_free(crash_state *cs)
{
	for (size_t o = 0; cs->pages && o < cs->fx.n; o++)
		free(cs->pages[o]);
	free(cs->pages);
	lf_free(&cs->fx);
}

/* Every owner's pages equal the reference (dual-read for an owner whose
 * array is still there, its records once it is migrated). */
static void check_pages(ef_store *st, const crash_state *cs, unsigned long round,
			const char *when)
{
	for (size_t o = 0; o < cs->fx.n; o++) {
		char *text = lf_feed_text(st, cs->fx.o[o].owner, 12);

		if (strcmp(text, cs->pages[o]) != 0)
			fail_msg("round %lu, %s: %s reads differently:\n%s\n"
				 "want:\n%s", round, when, cs->fx.o[o].owner,
				 text, cs->pages[o]);
		free(text);
	}
}

/* ---- one round -------------------------------------------------------- */

/* What the kill left: each owner all or nothing. Returns how many owners
 * were migrated; @left gets the sums over the others. */
static size_t check_after_kill(ef_store *st, const crash_state *cs,
			       unsigned long round, lf_sums *left)
{
	const lf_fixture *fx = &cs->fx;
	size_t migrated = 0;
	lf_tally t;

	lf_check_invariants(st);
	lf_tally_take(st, fx, &t);
	if (t.bad)
		fail_msg("round %lu: %zu inconsistent keys after the kill; "
			 "first: %s", round, t.bad, t.first_bad);
	assert_int_equal(t.foreign, 0);
	/* no marker is created or lost, whatever was done */
	assert_int_equal(t.markers, cs->sums.markers + cs->sums.orphans);
	for (size_t o = 0; o < fx->n; o++) {
		const lf_owner *w = &fx->o[o];
		const lf_owner_tally *p = &t.per[o];
		int issues = w->quarantined + w->kept_without_ip > 0;

		if (p->legacy > 1)
			fail_msg("round %lu: %s: %zu legacy keys", round,
				 w->owner, p->legacy);
		if (p->legacy == 1 && (p->entries || p->index || p->quarantine))
			fail_msg("round %lu: %s: half migrated: its array is "
				 "still there, with %zu entries, %zu index keys "
				 "and %zu quarantine records",
				 round, w->owner, p->entries, p->index,
				 p->quarantine);
		if (p->legacy == 0 &&
		    (p->entries != w->n || p->index != w->n ||
		     p->quarantine != (size_t)issues))
			fail_msg("round %lu: %s: half migrated: its array is "
				 "gone, with %zu entries and %zu index keys "
				 "(want %zu) and %zu quarantine records (want "
				 "%d)",
				 round, w->owner, p->entries, p->index, w->n,
				 p->quarantine, issues);
		migrated += p->legacy == 0;
		if (p->legacy) {
			left->convertible += w->n;
			left->dups += w->dups;
			left->quarantined += w->quarantined;
			left->markers += w->markers;
			left->orphans += w->orphans;
		}
	}
	lf_tally_free(&t);
	return migrated;
}

/* Kill the child at a point chosen by @rng. */
static void kill_somewhere(pid_t pid, int progress_fd, uint64_t *rng)
{
	uint64_t how = th_rng_next(rng) % 16;
	char buf[64];
	ssize_t n;

	if (how == 0) {
		/* at once: usually before it has even opened the store */
	} else if (how <= 4) {
		th_sleep_us((long)(th_rng_next(rng) % 15000));
	} else if (how <= 14) {
		/* a random moment after its k-th commit: often inside the
		 * next write transaction */
		uint64_t k = th_rng_next(rng) % (OWNERS + 2);

		for (uint64_t i = 0; i < k; i++) {
			do
				n = read(progress_fd, buf, 1);
			while (n < 0 && errno == EINTR);
			if (n <= 0)
				break; /* it finished */
		}
		th_sleep_us((long)(th_rng_next(rng) % 400));
	} else {
		/* after it finished (the kill then hits a zombie) */
		do
			n = read(progress_fd, buf, sizeof(buf));
		while (n > 0 || (n < 0 && errno == EINTR));
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
}

/* Fork a migrator and kill it somewhere; 1 if the kill landed, 0 if it
 * had finished first. */
static int run_and_kill(const char *dir, int durable, uint32_t batch,
			uint64_t *rng)
{
	int pfd[2], status;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		_exit(child_migrate(dir, durable, batch, pfd[1]));
	}
	close(pfd[1]);
	kill_somewhere(pid, pfd[0], rng);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pfd[0]);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		return 1;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
	return 0;
}

static void crash_round(crash_state *cs, unsigned long round)
{
	uint64_t rng = round * 0x2545F4914F6CDD1DULL + 17;
	int durable = round % 8 == 7;
	uint32_t batch = round % 5 == 4 ? 3 : 1;
	ef_config cfg = crash_cfg(durable);
	ef_migrate_opts mo = {0};
	ef_migrate_stats ms;
	lf_sums left = {0};
	char *dir = th_tmpdir();
	size_t migrated;
	ef_store *st;

	st = th_open(dir, &cfg);
	lf_store(st, &cs->fx);
	ef_close(st); /* no handle may cross the fork */

	if (run_and_kill(dir, durable, batch, &rng))
		cs->killed++;
	else
		cs->finished++;

	st = th_open(dir, &cfg);
	migrated = check_after_kill(st, cs, round, &left);
	if (migrated == 0)
		cs->before++;
	else if (migrated < cs->fx.n)
		cs->midway++;
	else
		cs->after++;
	check_pages(st, cs, round, "after the kill");

	/* the re-run does the rest, and only the rest */
	mo.batch = 1;
	assert_int_equal(ef_migrate(st, &mo, &ms), EF_OK);
	assert_int_equal(ms.owners, cs->fx.n - migrated);
	assert_int_equal(ms.migrated, left.convertible);
	assert_int_equal(ms.duplicates, left.dups);
	assert_int_equal(ms.quarantined, left.quarantined);
	assert_int_equal(ms.markers_kept, left.markers);
	assert_int_equal(ms.orphan_markers, left.orphans);
	check_complete(st, cs);
	check_pages(st, cs, round, "after the re-run");
	ef_close(st);
	th_cleanup(dir);
	cs->rounds++;
	cs->durable_rounds += (unsigned long)durable;
}

static void test_migrate_kill9_at_random_points_then_rerun_completes(
	void **state)
{
	unsigned long rounds = th_env_ulong("EF_CRASH_ROUNDS", ROUNDS_DEFAULT);
	unsigned long first = th_env_ulong("EF_CRASH_FIRST", 0);
	crash_state cs;

	(void)state;
	memset(&cs, 0, sizeof(cs));
	reference_build(&cs);
	for (unsigned long r = first; r < first + rounds; r++)
		crash_round(&cs, r);
	printf("migrate crash: %lu rounds (%lu durable): %lu children killed, "
	       "%lu had finished; after the kill %lu stores were untouched, "
	       "%lu partly migrated (mid-way kills), %lu fully migrated\n",
	       cs.rounds, cs.durable_rounds, cs.killed, cs.finished, cs.before,
	       cs.midway, cs.after);
	fflush(stdout);
	assert_int_equal(cs.rounds, rounds);
	reference_free(&cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_migrate_kill9_at_random_points_then_rerun_completes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

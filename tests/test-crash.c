/*
 * test-crash.c - kill -9 of worker processes at random times, round after
 * round, checked against a ledger kept outside the store (RocksDB's crash
 * test, Jepsen's set checker).
 *
 * Each round makes a fresh store and forks several worker processes (each
 * opens its own store; some with two threads, sometimes in group commit).
 * Every worker slot finalizes its own sequence of reservations, some of
 * them shared with the other slots, and in some rounds also marks entries
 * read and reads pages while a sweeper process sweeps. Before each call a
 * worker appends what it is about to try to its "attempts" file; only after
 * ef_finalize returned EF_OK or EF_EXISTS does it append the reservation to
 * its ledger (written and flushed; synced in durable rounds). Meanwhile the
 * parent, at random points of the round's progress (a PRNG seeded by the
 * round number: EF_CRASH_FIRST=N EF_CRASH_ROUNDS=1 runs round N again with
 * the same plan, though not the same timing), stops a
 * random worker or the sweeper, looks in LMDB's lock file to see whether it
 * holds the write lock or a read slot right then, kills it with SIGKILL and
 * starts a replacement that retries the slot's last attempt. In a third of
 * the rounds a process also stops inside a write transaction that has
 * written a whole finalization and is killed there; another process must
 * then finalize at once (LMDB's robust mutex), and nothing of the killed
 * transaction may ever appear.
 *
 * After every round: ef_check finds no violation; every acknowledged
 * reservation is in the store exactly once (zero lost, zero duplicated);
 * every entry is one a worker attempted, with the fields of one attempt
 * (zero unexpected, zero torn); an entry whose mark-read was acknowledged
 * is read and an entry nobody tried to mark is unread; and every process
 * that was not killed exited without having seen an error. Sweep rounds end
 * with a sweep that removes exactly the stale entries seeded for it.
 *
 * A second test kills reader processes, each holding a read transaction,
 * under a steady stream of writes: their reader slots are reclaimed (the
 * reader table stays small) and data.mdb does not grow without bound.
 *
 * Both watch for a survivor asleep on a free LMDB mutex (a wake-up lost to
 * a kill, tests/lockview.c): they fail on it, or with EF_CRASH_STRICT=0
 * wake it, count it and go on.
 *
 * Most rounds use EF_NOSYNC: a killed process loses nothing the kernel has
 * (only a power loss would), so the kill is as real either way; every
 * eighth round commits durably, to cover that path too.
 *
 * EF_CRASH_ROUNDS (default 200), EF_CRASH_FIRST (default 0) and
 * EF_CRASH_READERS (default 200) change the amount of work; the long run is
 * scripts/crash-long.sh.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "tests/lockview.h"

#define T0 1790000000000LL /* 2026-09-21T14:13:20Z: the tests' clock */
#define DAY (24LL * 3600 * 1000)
#define SEED_NOW (T0 - 100 * DAY) /* seeded entries: stale at T0 */
#define OWNERS 4
#define FEED_CAP 100000u /* nothing fresh is ever trimmed */
#define ROUNDS_DEFAULT 200
#define READERS_DEFAULT 200
#define CHILD_ALARM_S 120 /* a stuck child dies instead of hanging the run */
#define PROCS_MAX 4
#define THREADS_MAX 2
#define ITEMS_MAX 48
#define KIDS_MAX 16
#define SEEDS 12
#define SWEEP_PASSES 3
#define RID_MAX 24
#define PAYLOAD_MAX 40

/* Exit statuses of children, so a failure says what kind it was. */
enum {
	CHILD_OK = 0,
	CHILD_EOPEN = 2,     /* ef_open failed */
	CHILD_EFINALIZE = 3, /* ef_finalize returned an error */
	CHILD_EMARK = 4,     /* ef_mark_read / ef_mark_all_read failed */
	CHILD_EREAD = 5,     /* a page or count read failed */
	CHILD_ESWEEP = 6,    /* ef_sweep_ex failed */
	CHILD_ELOG = 7,      /* cannot write the attempts file or ledger */
	CHILD_EHOLD = 8,     /* the lock holder could not get there */
};

/* The current test's directory: a global, so that forked children
 * inherit it and valgrind finds it reachable in them. */
static char *test_tmp;

static int64_t test_now = T0;

/* ---- small tools --------------------------------------------------------- */

static ef_config crash_cfg(int durable, int group, uint32_t cap)
{
	ef_config cfg = {0};

	cfg.feed_cap = cap;
	cfg.flags = (durable ? 0 : EF_NOSYNC) |
		    (group ? EF_GROUP_COMMIT : EF_NO_GROUP_COMMIT);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &test_now;
	return cfg;
}

static void put_byte(int fd, char c)
{
	ssize_t n;

	do
		n = write(fd, &c, 1);
	while (n < 0 && errno == EINTR);
}

/* Wait up to @ms for a byte on @fd: 1 got one, 0 timed out or EOF. */
static int get_byte(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	char c;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	return read(fd, &c, 1) == 1;
}

static int stop_requested(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, 0) > 0;
}

static off_t file_size(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/* ---- a round's plan and its items ---------------------------------------- */

typedef struct kid {
	pid_t pid;
	int kind; /* KID_* */
	int p;    /* worker process index */
} kid;

enum { KID_WORKER, KID_SWEEPER };

typedef struct crash_round {
	unsigned long round;
	uint64_t rng;
	int procs;          /* worker processes */
	int threads;        /* worker slots (threads) per process */
	int items;          /* finalizations per slot */
	int durable;        /* synced commits (and ledger) */
	int group;          /* EF_GROUP_COMMIT */
	int readers;        /* workers also mark read and read pages */
	int sweep;          /* a sweeper process runs; stale entries seeded */
	int holder;         /* a process is killed inside a write transaction */
	int kills;          /* random kills planned */
	int storm;          /* kills in quick succession */
	char dir[PATH_MAX]; /* the store */
	char logs[PATH_MAX]; /* attempts files and ledgers */
	int prog_rd, prog_wr; /* one byte per acknowledged finalization */
	kid kids[KIDS_MAX]; /* live children */
	int nkids;
	int inc[PROCS_MAX]; /* incarnations started per worker process */
	int sweepers, holders; /* started so far */
	unsigned long progress; /* bytes read from prog_rd */
	int failed;         /* children that exited with an error */
	lockview lk;
	stall sw;           /* lost wake-ups found and ended */
	char where[32];     /* "round N", for messages */
} crash_round;

/* What a whole run did; printed at the end. */
typedef struct crash_totals {
	unsigned long rounds, durable, with_sweep, with_reads, with_threads;
	unsigned long kills, kills_worker, kills_sweeper, mid_write, mid_read;
	unsigned long holders, probes, attempted, acked, marks;
	unsigned long lost, duplicated, unexpected, torn, leaked, unread_wrong;
	unsigned long seeded, seeds_gone; /* stale entries; gone before the
					   * final sweep */
	unsigned long rescues; /* survivors woken from a lost wake-up */
} crash_totals;

typedef struct item {
	int o;
	char rid[RID_MAX];
	int64_t created;
	char ip[48];        /* "" for none */
	char payload[PAYLOAD_MAX];
	char owner[48];     /* as this call spells it */
} item;

static int slots(const crash_round *cr)
{
	return cr->procs * cr->threads;
}

static void owner_spell(char *buf, size_t cap, int o, int variant)
{
	static const char *const forms[] = {"owner%d@example.com",
					    "OWNER%d@EXAMPLE.COM",
					    "Owner%d@Example.Com"};

	snprintf(buf, cap, forms[variant % 3], o);
}

/* Item @k of slot @s. Every fourth one is shared by all slots ("s<j>", one
 * owner for all): first write wins, the others get EF_EXISTS. Slots
 * disagree on created_ms and payload, so a duplicate would be a second
 * entry key and a torn write a mix of two attempts. Times spread over three
 * days (three keyring windows); two of three carry an IP. */
static void item_make(int s, int k, item *it)
{
	int shared = k % 4 == 3;

	memset(it, 0, sizeof(*it));
	if (shared) {
		it->o = (k / 4) % OWNERS;
		snprintf(it->rid, sizeof(it->rid), "s%d", k / 4);
	} else {
		it->o = (s + k) % OWNERS;
		snprintf(it->rid, sizeof(it->rid), "w%d-%d", s, k);
	}
	it->created = T0 - 1000 * (1 + ((int64_t)s * 7919 + (int64_t)k * 104729) %
				    (3 * 86400));
	if (k % 3 == 0)
		snprintf(it->ip, sizeof(it->ip), "192.0.2.%d", s + 1);
	else if (k % 3 == 1)
		snprintf(it->ip, sizeof(it->ip), "2001:db8::%x", s + 1);
	snprintf(it->payload, sizeof(it->payload), "{\"w\":%d,\"k\":%d}", s, k);
	owner_spell(it->owner, sizeof(it->owner), it->o, s + k);
}

static void item_receive(const item *it, ef_receive *r)
{
	memset(r, 0, sizeof(*r));
	r->owner = it->owner;
	r->reservation_id = it->rid;
	r->created_ms = it->created;
	r->ip = it->ip[0] ? it->ip : NULL;
	r->payload_json = it->payload;
}

/* ---- the children's logs -------------------------------------------------
 *
 * attempts file ("att.<tag>"), written before each call:
 *   F <o> <rid> <created> <payload> <k>   about to finalize
 *   H <o> <rid> <created> <payload> 0     finalized inside a transaction
 *                                         that will be killed: never in the
 *                                         store
 *   M <o> <rid>                           about to mark read
 *   A <o>                                 about to mark all read
 * ledger ("led.<tag>"), written after the call succeeded:
 *   F <o> <rid> <rc>   acknowledged (EF_OK or EF_EXISTS)
 *   M <o> <rid>        marked read
 *   A <o>              all marked read
 * Each incarnation of a process writes files of its own, so a line torn by
 * a kill is only ever the last one of its file (and is ignored: an attempt
 * line is written before the call, a ledger line after it).
 */
typedef struct clog {
	FILE *att, *led;
	int sync; /* fsync the ledger after each line */
} clog;

static int clog_open(clog *l, const char *logs, const char *tag, int sync)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/att.%s", logs, tag);
	l->att = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/led.%s", logs, tag);
	l->led = fopen(path, "w");
	l->sync = sync;
	return l->att && l->led ? 0 : -1;
}

static void clog_close(clog *l)
{
	if (l->att)
		fclose(l->att);
	if (l->led)
		fclose(l->led);
}

static int clog_line(FILE *f, int sync, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	if (rc < 0 || fflush(f) != 0)
		return -1;
	if (sync && fdatasync(fileno(f)) != 0)
		return -1;
	return 0;
}

/* ---- the children --------------------------------------------------------- */

typedef struct slot_run {
	pthread_t tid;
	ef_store *st;
	const crash_round *cr;
	int slot, inc, start;
	int status;
} slot_run;

/* After an acknowledged finalization, in mark-read rounds: sometimes mark
 * one of this incarnation's acknowledged items read, read a page, or mark
 * an owner's whole feed read. */
static int slot_reads(slot_run *sr, clog *l, uint64_t *rng, const int *acked,
		      int nacked, const item *cur)
{
	uint64_t dice = th_rng_next(rng) % 64;
	ef_page pg;
	uint64_t unread;
	item it;
	int rc;

	if (dice < 16) {
		item_make(sr->slot, acked[th_rng_next(rng) % (uint64_t)nacked], &it);
		owner_spell(it.owner, sizeof(it.owner), it.o, (int)dice);
		if (clog_line(l->att, 0, "M %d %s\n", it.o, it.rid))
			return CHILD_ELOG;
		rc = ef_mark_read(sr->st, it.owner, it.rid);
		if (rc != EF_OK) {
			fprintf(stderr, "slot %d: ef_mark_read(%s, %s): %s: %s\n",
				sr->slot, it.owner, it.rid, ef_err_name(rc),
				ef_errmsg(sr->st));
			return CHILD_EMARK;
		}
		if (clog_line(l->led, l->sync, "M %d %s\n", it.o, it.rid))
			return CHILD_ELOG;
	} else if (dice < 24) {
		rc = ef_feed_page(sr->st, cur->owner, NULL, 20, &pg);
		if (rc == EF_OK) {
			ef_page_free(&pg);
			rc = ef_unread_count(sr->st, cur->owner, &unread);
		}
		if (rc != EF_OK) {
			fprintf(stderr, "slot %d: reading %s: %s: %s\n",
				sr->slot, cur->owner, ef_err_name(rc),
				ef_errmsg(sr->st));
			return CHILD_EREAD;
		}
	} else if (dice == 24) {
		if (clog_line(l->att, 0, "A %d\n", cur->o))
			return CHILD_ELOG;
		rc = ef_mark_all_read(sr->st, cur->owner);
		if (rc != EF_OK) {
			fprintf(stderr, "slot %d: ef_mark_all_read(%s): %s: %s\n",
				sr->slot, cur->owner, ef_err_name(rc),
				ef_errmsg(sr->st));
			return CHILD_EMARK;
		}
		if (clog_line(l->led, l->sync, "A %d\n", cur->o))
			return CHILD_ELOG;
	}
	return CHILD_OK;
}

/* One worker slot: finalize items start..items-1 of the slot. */
static int slot_main(slot_run *sr)
{
	const crash_round *cr = sr->cr;
	uint64_t rng = cr->rng ^ ((uint64_t)sr->slot << 40) ^
		       ((uint64_t)sr->inc << 20);
	int acked[ITEMS_MAX], nacked = 0, status = CHILD_OK;
	char tag[32];
	clog l;

	snprintf(tag, sizeof(tag), "s%d.%d", sr->slot, sr->inc);
	if (clog_open(&l, cr->logs, tag, cr->durable)) {
		clog_close(&l);
		return CHILD_ELOG;
	}
	for (int k = sr->start; k < cr->items && status == CHILD_OK; k++) {
		ef_receive r;
		item it;
		int rc;

		item_make(sr->slot, k, &it);
		item_receive(&it, &r);
		if (clog_line(l.att, 0, "F %d %s %" PRId64 " %s %d\n", it.o,
			      it.rid, it.created, it.payload, k)) {
			status = CHILD_ELOG;
			break;
		}
		rc = ef_finalize(sr->st, &r);
		if (rc != EF_OK && rc != EF_EXISTS) {
			fprintf(stderr, "slot %d: ef_finalize(%s, %s): %s: %s\n",
				sr->slot, it.owner, it.rid, ef_err_name(rc),
				ef_errmsg(sr->st));
			status = CHILD_EFINALIZE;
			break;
		}
		if (clog_line(l.led, l.sync, "F %d %s %d\n", it.o, it.rid, rc)) {
			status = CHILD_ELOG;
			break;
		}
		put_byte(cr->prog_wr, 'f');
		acked[nacked++] = k;
		if (cr->readers)
			status = slot_reads(sr, &l, &rng, acked, nacked, &it);
	}
	clog_close(&l);
	return status;
}

static void *slot_thread(void *p)
{
	slot_run *sr = p;

	sr->status = slot_main(sr);
	return NULL;
}

/* A worker process: open its own store, run its slots (one thread each),
 * close. @start: per slot, the item to begin with. */
static int worker_main(const crash_round *cr, int p, int inc, const int *start)
{
	ef_config cfg = crash_cfg(cr->durable, cr->group, FEED_CAP);
	slot_run sr[THREADS_MAX];
	ef_store *st = NULL;
	int rc, status = CHILD_OK, started = 0;

	rc = ef_open(&st, cr->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "worker %d: ef_open: %s: %s\n", p,
			ef_err_name(rc), ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	for (int t = 0; t < cr->threads; t++) {
		sr[t].st = st;
		sr[t].cr = cr;
		sr[t].slot = p * cr->threads + t;
		sr[t].inc = inc;
		sr[t].start = start[t];
		sr[t].status = CHILD_OK;
	}
	if (cr->threads == 1) {
		status = slot_main(&sr[0]);
	} else {
		for (int t = 0; t < cr->threads; t++) {
			if (pthread_create(&sr[t].tid, NULL, slot_thread,
					   &sr[t]) != 0)
				break;
			started++;
		}
		for (int t = 0; t < started; t++) {
			pthread_join(sr[t].tid, NULL);
			if (sr[t].status != CHILD_OK)
				status = sr[t].status;
		}
		if (started < cr->threads)
			status = CHILD_EOPEN;
	}
	ef_close(st);
	return status;
}

/* The sweeper: a few whole sweeps in small batches. */
static int sweeper_main(const crash_round *cr)
{
	ef_config cfg = crash_cfg(cr->durable, 0, FEED_CAP);
	ef_sweep_opts o = {0};
	ef_store *st = NULL;
	int rc;

	rc = ef_open(&st, cr->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "sweeper: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	o.batch = 4;
	for (int i = 0; i < SWEEP_PASSES; i++) {
		rc = ef_sweep_ex(st, &o, NULL);
		if (rc != EF_OK) {
			fprintf(stderr, "sweeper: ef_sweep_ex: %s: %s\n",
				ef_err_name(rc), ef_errmsg(st));
			ef_close(st);
			return CHILD_ESWEEP;
		}
		th_sleep_us(1000);
	}
	ef_close(st);
	return CHILD_OK;
}

/* The write-lock holder: inside one write transaction, apply a whole
 * finalization, say so on @sig_fd and wait there to be killed. */
typedef struct hold_ctx {
	ef_store *st;
	fin_item it;
	int64_t now;
	int sig_fd;
} hold_ctx;

static int hold_txn(store_txn *t, void *p)
{
	hold_ctx *h = p;
	int rc = fin_apply(t, h->st, &h->it, h->now, 0, NULL);

	if (rc != EF_OK)
		return rc;
	put_byte(h->sig_fd, 'h');
	for (;;)
		pause();
}

static void holder_item(int n, item *it)
{
	memset(it, 0, sizeof(*it));
	it->o = n % OWNERS;
	snprintf(it->rid, sizeof(it->rid), "h%d", n);
	it->created = T0 - 5000 - n;
	snprintf(it->ip, sizeof(it->ip), "192.0.2.%d", 200 + n % 50);
	snprintf(it->payload, sizeof(it->payload), "{\"h\":%d}", n);
	owner_spell(it->owner, sizeof(it->owner), it->o, n);
}

static int holder_main(const crash_round *cr, int n, int sig_fd)
{
	ef_config cfg = crash_cfg(cr->durable, 0, FEED_CAP);
	ef_store *st = NULL;
	ef_receive r;
	hold_ctx h;
	char tag[32];
	item it;
	clog l;
	int rc;

	snprintf(tag, sizeof(tag), "hold%d", n);
	if (clog_open(&l, cr->logs, tag, 0))
		return CHILD_ELOG;
	rc = ef_open(&st, cr->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "holder: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	holder_item(n, &it);
	item_receive(&it, &r);
	if (clog_line(l.att, 0, "H %d %s %" PRId64 " %s 0\n", it.o, it.rid,
		      it.created, it.payload))
		return CHILD_ELOG;
	h.st = st;
	h.now = feed_now(st);
	h.sig_fd = sig_fd;
	rc = fin_prepare(st, &r, h.now, &h.it);
	if (rc == EF_OK)
		rc = store_write(st->env, hold_txn, &h);
	fprintf(stderr, "holder: did not stop inside the transaction: %s: %s\n",
		ef_err_name(rc), ef_errmsg(st));
	return CHILD_EHOLD;
}

/* The probe, right after a holder was killed: one finalization by another
 * process must go through at once. */
static int probe_main(const crash_round *cr, int n)
{
	ef_config cfg = crash_cfg(cr->durable, 0, FEED_CAP);
	ef_store *st = NULL;
	ef_receive r;
	char tag[32];
	item it;
	clog l;
	int rc;

	alarm(30);
	snprintf(tag, sizeof(tag), "probe%d", n);
	if (clog_open(&l, cr->logs, tag, cr->durable))
		return CHILD_ELOG;
	rc = ef_open(&st, cr->dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "probe: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	holder_item(n, &it);
	snprintf(it.rid, sizeof(it.rid), "p%d", n);
	item_receive(&it, &r);
	if (clog_line(l.att, 0, "F %d %s %" PRId64 " %s 0\n", it.o, it.rid,
		      it.created, it.payload))
		return CHILD_ELOG;
	rc = ef_finalize(st, &r);
	if (rc != EF_OK) {
		fprintf(stderr, "probe: ef_finalize after the write lock's "
			"holder was killed: %s: %s\n", ef_err_name(rc),
			ef_errmsg(st));
		return CHILD_EFINALIZE;
	}
	if (clog_line(l.led, l.sync, "F %d %s %d\n", it.o, it.rid, rc))
		return CHILD_ELOG;
	clog_close(&l);
	ef_close(st);
	return CHILD_OK;
}

/* ---- the parent: reading the logs ----------------------------------------- */

/* Call @fn on each complete line of file @path (a torn last line, which
 * has no newline, is left out). */
typedef void (*line_fn)(const char *line, void *ctx);

static void each_line(const char *path, line_fn fn, void *ctx)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;
		line[n - 1] = '\0';
		fn(line, ctx);
	}
	free(line);
	fclose(f);
}

/* Call @fn on each line of every file in @dir whose name starts with
 * @prefix. */
static void each_log(const char *dir, const char *prefix, line_fn fn,
		     void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX + 300];

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		each_line(path, fn, ctx);
	}
	closedir(d);
}

static void max_k_line(const char *line, void *ctx)
{
	int *k = ctx, o, kk;
	char rid[RID_MAX], payload[PAYLOAD_MAX];
	int64_t created;

	if (sscanf(line, "F %d %23s %" SCNd64 " %39s %d", &o, rid, &created,
		   payload, &kk) == 5 && kk > *k)
		*k = kk;
}

/* Where a new incarnation of slot @s begins: its last attempt, which may or
 * may not have gone through (as a real worker retries after a crash). */
static int slot_resume(const crash_round *cr, int s)
{
	char prefix[32];
	int k = -1;

	snprintf(prefix, sizeof(prefix), "att.s%d.", s);
	each_log(cr->logs, prefix, max_k_line, &k);
	return k < 0 ? 0 : k;
}

/* ---- the parent: children -------------------------------------------------- */

static void kid_add(crash_round *cr, pid_t pid, int kind, int p)
{
	assert_true(cr->nkids < KIDS_MAX);
	cr->kids[cr->nkids].pid = pid;
	cr->kids[cr->nkids].kind = kind;
	cr->kids[cr->nkids].p = p;
	cr->nkids++;
}

static void kid_remove(crash_round *cr, int i)
{
	cr->kids[i] = cr->kids[--cr->nkids];
}

static void spawn_worker(crash_round *cr, int p)
{
	int start[THREADS_MAX], inc = cr->inc[p]++;
	pid_t pid;

	for (int t = 0; t < cr->threads; t++)
		start[t] = slot_resume(cr, p * cr->threads + t);
	pid = th_fork(CHILD_ALARM_S);
	if (pid == 0)
		_exit(worker_main(cr, p, inc, start));
	kid_add(cr, pid, KID_WORKER, p);
}

static void spawn_sweeper(crash_round *cr)
{
	pid_t pid = th_fork(CHILD_ALARM_S);

	cr->sweepers++;
	if (pid == 0)
		_exit(sweeper_main(cr));
	kid_add(cr, pid, KID_SWEEPER, -1);
}

static void note_exit(crash_round *cr, const char *what, pid_t pid, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK)
		return;
	cr->failed++;
	if (WIFEXITED(status))
		print_error("round %lu: %s (pid %ld) exited with %d\n",
			    cr->round, what, (long)pid, WEXITSTATUS(status));
	else
		print_error("round %lu: %s (pid %ld) died of signal %d\n",
			    cr->round, what, (long)pid, WTERMSIG(status));
}

static const char *kid_name(const kid *k)
{
	return k->kind == KID_SWEEPER ? "sweeper" : "worker";
}

/* Read the progress bytes there are, waiting up to @ms for the first, and
 * reap children that finished. */
static void pump(crash_round *cr, int ms)
{
	struct pollfd p = {cr->prog_rd, POLLIN, 0};
	char buf[256];
	ssize_t n;

	if (poll(&p, 1, ms) > 0) {
		while ((n = read(cr->prog_rd, buf, sizeof(buf))) > 0) {
			cr->progress += (unsigned long)n;
			stall_moved(&cr->sw);
		}
	}
	for (int i = 0; i < cr->nkids;) {
		int status;
		pid_t r = waitpid(cr->kids[i].pid, &status, WNOHANG);

		assert_true(r >= 0);
		if (r == 0) {
			i++;
			continue;
		}
		note_exit(cr, kid_name(&cr->kids[i]), r, status);
		kid_remove(cr, i);
		stall_moved(&cr->sw);
	}
	if (cr->nkids > 0)
		stall_watch(&cr->sw, &cr->lk, cr->where);
}

static int live_workers(const crash_round *cr)
{
	int n = 0;

	for (int i = 0; i < cr->nkids; i++)
		n += cr->kids[i].kind == KID_WORKER;
	return n;
}

/* Wait until @target finalizations were acknowledged, or no worker runs. */
static void wait_progress(crash_round *cr, unsigned long target)
{
	while (cr->progress < target && live_workers(cr) > 0)
		pump(cr, 5);
}

/* Stop a random live worker or sweeper, see whether it is inside a write
 * or read transaction, SIGKILL it and start its replacement. */
static void kill_one(crash_round *cr, crash_totals *tot)
{
	int i, status;
	kid k;

	pump(cr, 0);
	if (cr->nkids == 0)
		return;
	i = (int)(th_rng_next(&cr->rng) % (uint64_t)cr->nkids);
	k = cr->kids[i];
	assert_int_equal(kill(k.pid, SIGSTOP), 0);
	assert_int_equal(waitpid(k.pid, &status, WUNTRACED), k.pid);
	kid_remove(cr, i);
	if (!WIFSTOPPED(status)) { /* it had just finished */
		note_exit(cr, kid_name(&k), k.pid, status);
		return;
	}
	if (lk_layout_ok == 1) {
		tot->mid_write += tid_of(k.pid, lk_writer(&cr->lk));
		tot->mid_read += lk_reading(&cr->lk, k.pid);
	}
	assert_int_equal(kill(k.pid, SIGKILL), 0);
	assert_int_equal(waitpid(k.pid, &status, 0), k.pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	stall_moved(&cr->sw);
	tot->kills++;
	if (k.kind == KID_SWEEPER) {
		tot->kills_sweeper++;
		spawn_sweeper(cr);
	} else {
		tot->kills_worker++;
		spawn_worker(cr, k.p);
	}
}

/* A process stops inside a write transaction that applied a whole
 * finalization and is killed there; then another process must finalize at
 * once (LMDB's robust writer mutex) while the workers go on. */
static void kill_holder(crash_round *cr, crash_totals *tot)
{
	int n = cr->holders++, sig[2], status;
	stall psw = {0, 0}; /* the holder's and the probe's own waits */
	pid_t pid, probe, r;

	assert_int_equal(pipe(sig), 0);
	pid = th_fork(CHILD_ALARM_S);
	if (pid == 0) {
		close(sig[0]);
		_exit(holder_main(cr, n, sig[1]));
	}
	close(sig[1]);
	stall_moved(&psw);
	while (!get_byte(sig[0], 5)) {
		pump(cr, 0);
		stall_watch(&psw, &cr->lk, cr->where);
		if (waitpid(pid, &status, WNOHANG) == pid) {
			note_exit(cr, "write-lock holder", pid, status);
			fail_msg("round %lu: the write-lock holder exited before "
				 "it held the lock", cr->round);
		}
	}
	close(sig[0]);
	if (lk_layout_ok == 1 && lk_writer(&cr->lk) != pid)
		fail_msg("round %lu: the holder (pid %ld) says it is inside a "
			 "write transaction, but lock.mdb names %ld", cr->round,
			 (long)pid, (long)lk_writer(&cr->lk));
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	tot->holders++;

	stall_moved(&cr->sw);
	probe = th_fork(CHILD_ALARM_S);
	if (probe == 0)
		_exit(probe_main(cr, n));
	stall_moved(&psw);
	while ((r = waitpid(probe, &status, WNOHANG)) == 0) {
		pump(cr, 2);
		stall_watch(&psw, &cr->lk, cr->where);
	}
	assert_int_equal(r, probe);
	cr->sw.rescues += psw.rescues;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
		note_exit(cr, "probe", probe, status);
		fail_msg("round %lu: no finalization went through after the "
			 "write lock's holder was killed", cr->round);
	}
	tot->probes++;
}

/* ---- the parent: checking a round ----------------------------------------- */

typedef struct rec {
	int o;
	char rid[RID_MAX];
	int64_t created;
	char payload[PAYLOAD_MAX];
} rec;

typedef struct recs {
	rec *v;
	size_t n, cap;
} recs;

static void recs_add(recs *r, int o, const char *rid, int64_t created,
		     const char *payload)
{
	rec *x;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	x = &r->v[r->n++];
	memset(x, 0, sizeof(*x));
	x->o = o;
	snprintf(x->rid, sizeof(x->rid), "%s", rid);
	x->created = created;
	snprintf(x->payload, sizeof(x->payload), "%s", payload ? payload : "");
}

static int rec_cmp(const void *a, const void *b)
{
	const rec *x = a, *y = b;

	if (x->o != y->o)
		return x->o < y->o ? -1 : 1;
	return strcmp(x->rid, y->rid);
}

static void recs_sort(recs *r)
{
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), rec_cmp);
}

/* The first record of (o, rid) in sorted @r, and how many there are. */
static const rec *recs_find(const recs *r, int o, const char *rid, size_t *count)
{
	rec key;
	size_t lo = 0, hi = r->n, i;

	key.o = o;
	snprintf(key.rid, sizeof(key.rid), "%s", rid);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rec_cmp(&r->v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < r->n && rec_cmp(&r->v[i], &key) == 0; i++)
		;
	if (count)
		*count = i - lo;
	return i > lo ? &r->v[lo] : NULL;
}

static void recs_free(recs *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* What the logs of a round say. */
typedef struct logset {
	recs att;      /* attempted finalizations (and seeded entries) */
	recs never;    /* finalized inside a killed transaction */
	recs led;      /* acknowledged finalizations */
	recs mark_att; /* mark-read attempted */
	recs mark_led; /* mark-read acknowledged */
	int all_att[OWNERS]; /* mark-all-read attempted */
	unsigned long bad_rc;
} logset;

static void att_line(const char *line, void *ctx)
{
	logset *ls = ctx;
	char kind, rid[RID_MAX], payload[PAYLOAD_MAX];
	int64_t created;
	int o, k;

	if (sscanf(line, "%c %d %23s %" SCNd64 " %39s %d", &kind, &o, rid,
		   &created, payload, &k) == 6) {
		assert_true(o >= 0 && o < OWNERS);
		recs_add(kind == 'H' ? &ls->never : &ls->att, o, rid, created,
			 payload);
	} else if (sscanf(line, "M %d %23s", &o, rid) == 2) {
		recs_add(&ls->mark_att, o, rid, 0, NULL);
	} else if (sscanf(line, "A %d", &o) == 1) {
		assert_true(o >= 0 && o < OWNERS);
		ls->all_att[o] = 1;
	} else {
		fail_msg("attempts file: cannot read '%s'", line);
	}
}

static void led_line(const char *line, void *ctx)
{
	logset *ls = ctx;
	char rid[RID_MAX];
	int o, rc;

	if (sscanf(line, "F %d %23s %d", &o, rid, &rc) == 3) {
		recs_add(&ls->led, o, rid, 0, NULL);
		ls->bad_rc += rc != EF_OK && rc != EF_EXISTS;
	} else if (sscanf(line, "M %d %23s", &o, rid) == 2) {
		recs_add(&ls->mark_led, o, rid, 0, NULL);
	} else if (sscanf(line, "A %d", &o) != 1) {
		fail_msg("ledger: cannot read '%s'", line);
	}
}

static void logs_read(const crash_round *cr, logset *ls)
{
	memset(ls, 0, sizeof(*ls));
	each_log(cr->logs, "att.", att_line, ls);
	each_log(cr->logs, "led.", led_line, ls);
	recs_sort(&ls->att);
	recs_sort(&ls->never);
	recs_sort(&ls->led);
	recs_sort(&ls->mark_att);
	recs_sort(&ls->mark_led);
}

static void logs_free(logset *ls)
{
	recs_free(&ls->att);
	recs_free(&ls->never);
	recs_free(&ls->led);
	recs_free(&ls->mark_att);
	recs_free(&ls->mark_led);
}

/* Every entry record of the store, raw: owner, reservation id, created_ms
 * and payload as the record holds them. */
static int scan_txn(store_txn *t, void *p)
{
	recs *s = p;
	store_cur *c;
	store_val k, v;
	int rc;

	rc = store_cur_open(t, &c);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(c, KEY_P_ENTRY, strlen(KEY_P_ENTRY), &k, &v);
	     rc == EF_OK && store_has_prefix(&k, KEY_P_ENTRY,
					    strlen(KEY_P_ENTRY));
	     rc = store_cur_next(c, &k, &v)) {
		key_view ow, so, rid;
		char owner[64], rbuf[RID_MAX], pbuf[PAYLOAD_MAX];
		rec_entry r;
		int o = -1;

		assert_int_equal(key_split_entry(k.data, k.len, &ow, &so, &rid),
				 EF_OK);
		assert_int_equal(rec_decode(v.data, v.len, &r), EF_OK);
		snprintf(owner, sizeof(owner), "%.*s", (int)ow.len, ow.p);
		assert_int_equal(sscanf(owner, "owner%d@example.com", &o), 1);
		assert_true(o >= 0 && o < OWNERS);
		snprintf(rbuf, sizeof(rbuf), "%.*s", (int)rid.len, rid.p);
		snprintf(pbuf, sizeof(pbuf), "%.*s",
			 r.has_payload ? (int)r.payload_len : 0,
			 r.has_payload ? r.payload : "");
		recs_add(s, o, rbuf, r.created_ms, pbuf);
	}
	return rc == EF_ENOTFOUND || rc == EF_OK ? EF_OK : rc;
}

static void store_scan(ef_store *st, recs *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(store_read(st->env, scan_txn, s), EF_OK);
	recs_sort(s);
}

/* The counts of one round's check; all must be 0. */
typedef struct verdict {
	unsigned long lost, duplicated, unexpected, torn, leaked, unread_wrong;
	char first[256]; /* the first problem, said in words */
} verdict;

static void verdict_note(verdict *vd, unsigned long *count, const char *fmt,
			 ...)
{
	va_list ap;

	if (!vd->first[0]) {
		va_start(ap, fmt);
		vsnprintf(vd->first, sizeof(vd->first), fmt, ap);
		va_end(ap);
	}
	(*count)++;
}

/* Store entries against attempts: each one exactly once, attempted, with
 * the fields of one attempt, and none of a killed transaction. */
static void judge_entries(const logset *ls, const recs *s, verdict *vd)
{
	for (size_t i = 0; i < s->n; i++) {
		const rec *e = &s->v[i];
		const rec *a;
		size_t n, j;

		if (i > 0 && rec_cmp(&s->v[i - 1], e) == 0)
			verdict_note(vd, &vd->duplicated, "duplicated: %d/%s",
				     e->o, e->rid);
		if (recs_find(&ls->never, e->o, e->rid, NULL))
			verdict_note(vd, &vd->leaked, "a killed transaction's "
				     "entry is there: %d/%s", e->o, e->rid);
		a = recs_find(&ls->att, e->o, e->rid, &n);
		if (!a) {
			verdict_note(vd, &vd->unexpected,
				     "unexpected (never attempted): %d/%s",
				     e->o, e->rid);
			continue;
		}
		for (j = 0; j < n; j++)
			if (a[j].created == e->created &&
			    strcmp(a[j].payload, e->payload) == 0)
				break;
		if (j == n)
			verdict_note(vd, &vd->torn, "%d/%s holds fields no "
				     "attempt gave: %" PRId64 " %s", e->o,
				     e->rid, e->created, e->payload);
	}
}

/* Acknowledged finalizations against the store and its read path: each one
 * there, readable, read if its mark-read was acknowledged, unread unless
 * somebody tried to mark it. Returns how many distinct ones there were. */
static unsigned long judge_ledger(ef_store *st, const logset *ls,
				  const recs *s, verdict *vd)
{
	unsigned long distinct = 0;

	for (size_t i = 0; i < ls->led.n; i++) {
		const rec *l = &ls->led.v[i];
		char owner[48];
		ef_entry *e = NULL;
		int rc;

		if (i > 0 && rec_cmp(&ls->led.v[i - 1], l) == 0)
			continue;
		distinct++;
		if (!recs_find(s, l->o, l->rid, NULL)) {
			verdict_note(vd, &vd->lost, "lost: %d/%s was "
				     "acknowledged", l->o, l->rid);
			continue;
		}
		owner_spell(owner, sizeof(owner), l->o, 0);
		rc = ef_get_entry(st, owner, l->rid, &e);
		if (rc != EF_OK) {
			verdict_note(vd, &vd->lost, "%d/%s: ef_get_entry: %s",
				     l->o, l->rid, ef_err_name(rc));
			continue;
		}
		if (e->unread && recs_find(&ls->mark_led, l->o, l->rid, NULL))
			verdict_note(vd, &vd->unread_wrong, "%d/%s is unread "
				     "after an acknowledged mark-read", l->o,
				     l->rid);
		if (!e->unread && !ls->all_att[l->o] &&
		    !recs_find(&ls->mark_att, l->o, l->rid, NULL))
			verdict_note(vd, &vd->unread_wrong, "%d/%s is read, "
				     "but nobody marked it", l->o, l->rid);
		ef_entry_free(e);
	}
	return distinct;
}

static void print_violation(const char *what, const char *key, void *ctx)
{
	(void)ctx;
	print_error("check: %s: %s\n", what, key ? key : "");
}

static void assert_check_clean(ef_store *st, unsigned long round,
			       const char *when)
{
	ef_check_opts o = {0};
	ef_check_stats cs;
	int rc;

	o.report = print_violation;
	rc = ef_check(st, &o, &cs);
	if (rc != EF_OK || cs.violations)
		fail_msg("round %lu, %s: ef_check: %s, %" PRIu64 " violations",
			 round, when, ef_err_name(rc), cs.violations);
}

/* After a sweep of the parent's own: the same entries, less every stale
 * (seeded) one. */
static void judge_sweep(ef_store *st, const crash_round *cr, const recs *s,
			crash_totals *tot)
{
	ef_sweep_stats ss;
	recs after;
	size_t fresh = 0;
	int rc;

	rc = ef_sweep(st, &ss);
	if (rc != EF_OK)
		fail_msg("round %lu: ef_sweep: %s: %s", cr->round,
			 ef_err_name(rc), ef_errmsg(st));
	assert_check_clean(st, cr->round, "after the final sweep");
	store_scan(st, &after);
	for (size_t i = 0; i < s->n; i++)
		fresh += strncmp(s->v[i].rid, "old-", 4) != 0;
	for (size_t i = 0; i < after.n; i++) {
		if (strncmp(after.v[i].rid, "old-", 4) == 0)
			fail_msg("round %lu: the sweep left stale %d/%s",
				 cr->round, after.v[i].o, after.v[i].rid);
		if (!recs_find(s, after.v[i].o, after.v[i].rid, NULL))
			fail_msg("round %lu: %d/%s appeared during the sweep",
				 cr->round, after.v[i].o, after.v[i].rid);
	}
	if (after.n != fresh)
		fail_msg("round %lu: the final sweep deleted %zu fresh entries",
			 cr->round, fresh - after.n);
	tot->seeded += SEEDS;
	tot->seeds_gone += SEEDS - (s->n - fresh);
	recs_free(&after);
}

static void round_verify(crash_round *cr, crash_totals *tot)
{
	ef_config cfg = crash_cfg(0, 0, FEED_CAP);
	verdict vd;
	logset ls;
	recs s;
	ef_store *st;

	memset(&vd, 0, sizeof(vd));
	logs_read(cr, &ls);
	assert_int_equal(ls.bad_rc, 0);
	cfg.flags = EF_NOSYNC;
	st = th_open(cr->dir, &cfg);
	assert_check_clean(st, cr->round, "after the kills");
	store_scan(st, &s);
	judge_entries(&ls, &s, &vd);
	tot->acked += judge_ledger(st, &ls, &s, &vd);
	tot->attempted += ls.att.n;
	tot->marks += ls.mark_led.n;
	tot->lost += vd.lost;
	tot->duplicated += vd.duplicated;
	tot->unexpected += vd.unexpected;
	tot->torn += vd.torn;
	tot->leaked += vd.leaked;
	tot->unread_wrong += vd.unread_wrong;
	if (vd.first[0])
		fail_msg("round %lu: lost %lu, duplicated %lu, unexpected %lu, "
			 "torn %lu, leaked %lu, unread wrong %lu; first: %s",
			 cr->round, vd.lost, vd.duplicated, vd.unexpected,
			 vd.torn, vd.leaked, vd.unread_wrong, vd.first);
	if (cr->sweep)
		judge_sweep(st, cr, &s, tot);
	recs_free(&s);
	logs_free(&ls);
	ef_close(st);
}

/* ---- one round -------------------------------------------------------------- */

static void round_plan(crash_round *cr, unsigned long round, const char *tmp)
{
	int mode = (int)(round % 4);

	memset(cr, 0, sizeof(*cr));
	cr->round = round;
	cr->rng = round * 0x2545F4914F6CDD1DULL + 0x5EED;
	cr->durable = round % 8 == 7;
	cr->procs = 2 + (int)(th_rng_next(&cr->rng) % 3);
	cr->threads = th_rng_next(&cr->rng) % 3 == 0 ? 2 : 1;
	cr->group = cr->threads == 2 && th_rng_next(&cr->rng) % 2;
	cr->items = cr->durable ? 6 + (int)(th_rng_next(&cr->rng) % 6)
				: 24 + (int)(th_rng_next(&cr->rng) % 24);
	cr->readers = mode == 1 || mode == 2;
	cr->sweep = mode >= 2;
	cr->holder = round % 3 == 1;
	cr->storm = round % 10 == 9;
	cr->kills = cr->storm ? 8 : 1 + (int)(th_rng_next(&cr->rng) % 3);
	snprintf(cr->dir, sizeof(cr->dir), "%s/store", tmp);
	snprintf(cr->logs, sizeof(cr->logs), "%s", tmp);
	cr->prog_rd = cr->prog_wr = -1;
}

/* Create the store; in sweep rounds, with stale entries (IPs of old days)
 * written as of 100 days ago, for the sweeper to delete. */
static void round_seed(crash_round *cr)
{
	ef_config cfg = crash_cfg(0, 0, FEED_CAP);
	char path[PATH_MAX + 16];
	ef_store *st;
	FILE *att;

	cfg.flags = EF_NOSYNC;
	test_now = SEED_NOW;
	st = th_open(cr->dir, &cfg);
	snprintf(path, sizeof(path), "%s/att.seed", cr->logs);
	att = fopen(path, "w");
	assert_non_null(att);
	for (int i = 0; cr->sweep && i < SEEDS; i++) {
		char owner[48], rid[RID_MAX], ip[32], payload[PAYLOAD_MAX];
		ef_receive r = {0};

		owner_spell(owner, sizeof(owner), i % 2, i);
		snprintf(rid, sizeof(rid), "old-%d", i);
		snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
		snprintf(payload, sizeof(payload), "{\"old\":%d}", i);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = SEED_NOW - i * 3600000LL;
		r.ip = ip;
		r.payload_json = payload;
		assert_int_equal(ef_finalize(st, &r), EF_OK);
		fprintf(att, "F %d %s %" PRId64 " %s 0\n", i % 2, rid,
			r.created_ms, payload);
	}
	assert_int_equal(fclose(att), 0);
	ef_close(st);
	test_now = T0;
}

/* Fork the workers (and sweeper), kill at random points of the progress,
 * then let the survivors finish. */
static void round_run(crash_round *cr, crash_totals *tot)
{
	unsigned long expected, gap, target = 0;
	int pfd[2], events = cr->kills + cr->holder;
	int holder_at = cr->holder ? (int)(th_rng_next(&cr->rng) % (uint64_t)events)
				   : -1;

	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(fcntl(pfd[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(pfd[1], F_SETFL, O_NONBLOCK), 0);
	cr->prog_rd = pfd[0];
	cr->prog_wr = pfd[1];
	lk_map(cr->dir, &cr->lk);
	snprintf(cr->where, sizeof(cr->where), "round %lu", cr->round);
	stall_moved(&cr->sw);
	for (int p = 0; p < cr->procs; p++)
		spawn_worker(cr, p);
	if (cr->sweep)
		spawn_sweeper(cr);

	expected = (unsigned long)(slots(cr) * cr->items);
	gap = cr->storm ? 3 : 2 * expected / (unsigned long)(events + 1) + 1;
	for (int ev = 0; ev < events; ev++) {
		target += th_rng_next(&cr->rng) % gap;
		wait_progress(cr, target);
		th_sleep_us((long)(th_rng_next(&cr->rng) % 400));
		if (ev == holder_at)
			kill_holder(cr, tot);
		else
			kill_one(cr, tot);
	}
	while (cr->nkids > 0)
		pump(cr, 20);
	lk_unmap(&cr->lk);
	close(pfd[0]);
	close(pfd[1]);
	if (cr->failed)
		fail_msg("round %lu: %d processes that were not killed saw an "
			 "error (see above)", cr->round, cr->failed);
}

static void crash_round_once(unsigned long round, crash_totals *tot)
{
	crash_round cr;

	test_tmp = th_tmpdir();
	round_plan(&cr, round, test_tmp);
	round_seed(&cr);
	round_run(&cr, tot);
	tot->rescues += cr.sw.rescues;
	round_verify(&cr, tot);
	tot->rounds++;
	tot->durable += (unsigned long)cr.durable;
	tot->with_sweep += (unsigned long)cr.sweep;
	tot->with_reads += (unsigned long)cr.readers;
	tot->with_threads += cr.threads > 1;
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

static void totals_print(const crash_totals *t)
{
	printf("crash: %lu rounds (%lu durable, %lu with a sweeper, %lu "
	       "marking read, %lu with two threads a process)\n",
	       t->rounds, t->durable, t->with_sweep, t->with_reads,
	       t->with_threads);
	printf("crash: %lu kills with SIGKILL (%lu workers, %lu sweepers), "
	       "%lu of them mid-write (holding LMDB's write lock), %lu "
	       "mid-read (holding a snapshot)%s\n",
	       t->kills, t->kills_worker, t->kills_sweeper, t->mid_write,
	       t->mid_read, lk_layout_ok == 1 ? "" : " [not counted]");
	printf("crash: %lu more killed inside a write transaction that had "
	       "applied a finalization; %lu finalizations by another process "
	       "right after went through\n", t->holders, t->probes);
	printf("crash: %lu finalizations attempted, %lu reservations "
	       "acknowledged, %lu marked read; %lu stale entries seeded, %lu "
	       "deleted while processes were killed (sweepers, trims), the "
	       "rest by a final sweep\n",
	       t->attempted, t->acked, t->marks, t->seeded, t->seeds_gone);
	printf("crash: lost %lu, duplicated %lu, unexpected %lu, torn %lu, "
	       "leaked from killed transactions %lu, unread markers wrong "
	       "%lu\n", t->lost, t->duplicated, t->unexpected, t->torn,
	       t->leaked, t->unread_wrong);
	printf("crash: %lu times a survivor slept on a free LMDB mutex (a "
	       "wake-up lost to a kill) until the harness woke it\n",
	       t->rescues);
	fflush(stdout);
}

static void test_crash_kill9_workers_lose_nothing(void **state)
{
	unsigned long rounds = th_env_ulong("EF_CRASH_ROUNDS", ROUNDS_DEFAULT);
	unsigned long first = th_env_ulong("EF_CRASH_FIRST", 0);
	crash_totals tot;

	(void)state;
	memset(&tot, 0, sizeof(tot));
	lk_calibrate();
	for (unsigned long r = first; r < first + rounds; r++) {
		crash_round_once(r, &tot);
		if (rounds >= 2000 && (r - first + 1) % 1000 == 0) {
			printf("crash: %lu of %lu rounds done\n", r - first + 1,
			       rounds);
			totals_print(&tot);
		}
	}
	totals_print(&tot);
	assert_int_equal(tot.rounds, rounds);
	assert_int_equal(tot.lost + tot.duplicated + tot.unexpected + tot.torn +
				 tot.leaked + tot.unread_wrong, 0);
	assert_true(tot.kills >= rounds);
	if (rounds >= 100) {
		assert_true(tot.holders >= rounds / 4);
		if (lk_layout_ok == 1)
			assert_true(tot.mid_write > 0);
	}
}

/* ---- readers killed holding a snapshot, under churn ------------------------- */

#define CHURN_CAP 16u      /* entries kept per owner: the live data is small */
#define CHURN_WARMUP 2000  /* finalizations before the first reader */
#define CHURN_BETWEEN 64   /* finalizations between two reader kills */
#define CHURN_PINNED 640   /* finalizations under a reader never cleared */
#define READERS_BOUND 8u   /* reader slots ever used at once */

/* The writer: finalizes new reservations (the cap deletes as many old ones)
 * until @stop_fd says stop; one ledger line per acknowledged one, and
 * *@count (shared memory) says how many so far. */
static int churn_writer(const char *dir, const char *ledger,
			uint64_t *count, int stop_fd)
{
	ef_config cfg = crash_cfg(0, 0, CHURN_CAP);
	ef_store *st = NULL;
	FILE *led = fopen(ledger, "w");
	int rc;

	if (!led)
		return CHILD_ELOG;
	rc = ef_open(&st, dir, &cfg);
	if (rc != EF_OK) {
		fprintf(stderr, "writer: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	for (int n = 0;; n++) {
		char owner[48], rid[RID_MAX], payload[PAYLOAD_MAX];
		ef_receive r = {0};

		if (n % 64 == 0 && stop_requested(stop_fd))
			break;
		owner_spell(owner, sizeof(owner), n % OWNERS, n);
		snprintf(rid, sizeof(rid), "c%d", n);
		snprintf(payload, sizeof(payload), "{\"n\":%d}", n);
		r.owner = owner;
		r.reservation_id = rid;
		r.created_ms = T0 - 2 * DAY + n;
		r.ip = n % 2 ? "192.0.2.9" : NULL;
		r.payload_json = payload;
		rc = ef_finalize(st, &r);
		if (rc != EF_OK) {
			fprintf(stderr, "writer: ef_finalize(%s): %s: %s\n", rid,
				ef_err_name(rc), ef_errmsg(st));
			fclose(led);
			return CHILD_EFINALIZE;
		}
		if (clog_line(led, 0, "%d\n", n)) {
			fclose(led);
			return CHILD_ELOG;
		}
		__atomic_store_n(count, (uint64_t)n + 1, __ATOMIC_RELEASE);
	}
	fclose(led);
	ef_close(st);
	return CHILD_OK;
}

/* Inside a read transaction: walk some entries, say so, wait for the kill. */
static int reader_hold_txn(store_txn *t, void *p)
{
	int fd = *(int *)p;
	store_cur *c;
	store_val k, v;
	int rc = store_cur_open(t, &c);

	for (int i = 0; rc == EF_OK && i < 8; i++)
		rc = i ? store_cur_next(c, &k, &v)
		       : store_cur_seek(c, KEY_P_ENTRY, strlen(KEY_P_ENTRY), &k,
					&v);
	put_byte(fd, 'r');
	for (;;)
		pause();
	return rc; /* not reached */
}

/* A reader: @hold: stop inside one read transaction; else read pages in a
 * loop (to be killed wherever it is). */
static int churn_reader(const char *dir, int sig_fd, int hold)
{
	ef_config cfg = crash_cfg(0, 0, CHURN_CAP);
	ef_store *st = NULL;
	int rc = ef_open(&st, dir, &cfg);

	if (rc != EF_OK) {
		fprintf(stderr, "reader: ef_open: %s: %s\n", ef_err_name(rc),
			ef_errmsg(NULL));
		return CHILD_EOPEN;
	}
	if (hold) {
		rc = store_read(st->env, reader_hold_txn, &sig_fd);
		fprintf(stderr, "reader: store_read returned: %s\n",
			ef_err_name(rc));
		return CHILD_EREAD;
	}
	for (int i = 0;; i++) {
		char owner[48];
		uint64_t unread;
		ef_page pg;

		owner_spell(owner, sizeof(owner), i % OWNERS, i);
		rc = ef_feed_page(st, owner, NULL, 16, &pg);
		if (rc == EF_OK) {
			ef_page_free(&pg);
			rc = ef_unread_count(st, owner, &unread);
		}
		if (rc != EF_OK) {
			fprintf(stderr, "reader: %s: %s\n", ef_err_name(rc),
				ef_errmsg(st));
			return CHILD_EREAD;
		}
		if (i == 0)
			put_byte(sig_fd, 'r');
	}
}

typedef struct churn {
	char dir[PATH_MAX];
	char ledger[PATH_MAX + 16];
	uint64_t *count;   /* the writer's acknowledged finalizations (shared) */
	int stop[2];
	pid_t writer;
	lockview lk;
	stall sw;
} churn;

static uint64_t churn_writes(const churn *c)
{
	return __atomic_load_n(c->count, __ATOMIC_ACQUIRE);
}

/* Wait until the writer has acknowledged @n more finalizations. */
static void churn_wait(churn *c, uint64_t n)
{
	uint64_t last = churn_writes(c), target = last + n, now;
	int status;

	while ((now = churn_writes(c)) < target) {
		if (now != last) {
			last = now;
			stall_moved(&c->sw);
		} else if (waitpid(c->writer, &status, WNOHANG) == c->writer) {
			fail_msg("the writer exited early (status 0x%x)", status);
		} else {
			stall_watch(&c->sw, &c->lk, "reader churn");
		}
		th_sleep_us(500);
	}
}

/* Start a reader; return once it reads (@hold: inside the read
 * transaction it stays in). */
static pid_t reader_start(churn *c, int hold)
{
	int sig[2], status;
	stall rsw = {0, 0};
	pid_t pid;

	assert_int_equal(pipe(sig), 0);
	pid = th_fork(CHILD_ALARM_S);
	if (pid == 0) {
		close(sig[0]);
		close(c->stop[1]);
		_exit(churn_reader(c->dir, sig[1], hold));
	}
	close(sig[1]);
	stall_moved(&rsw);
	while (!get_byte(sig[0], 100)) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			fail_msg("a reader exited (status 0x%x)", status);
		stall_watch(&rsw, &c->lk, "a reader's start");
	}
	c->sw.rescues += rsw.rescues;
	close(sig[0]);
	return pid;
}

/* Stop reader @pid, see in lock.mdb whether it holds a snapshot, SIGKILL
 * it. 1 if it held one, else 0. */
static int reader_kill(churn *c, pid_t pid, int hold)
{
	int status, reading;

	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	if (!WIFSTOPPED(status))
		fail_msg("a reader exited (status 0x%x)", status);
	reading = lk_layout_ok == 1 && lk_reading(&c->lk, pid);
	if (hold && lk_layout_ok == 1 && !reading)
		fail_msg("reader %ld stopped inside a read transaction, but "
			 "lock.mdb shows no snapshot of it", (long)pid);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	stall_moved(&c->sw);
	return reading;
}

typedef struct newest {
	int last[OWNERS][CHURN_CAP]; /* ring of the newest per owner */
	int count[OWNERS];
} newest;

static void newest_line(const char *line, void *ctx)
{
	newest *nw = ctx;
	int n = atoi(line), o = n % OWNERS;

	nw->last[o][nw->count[o]++ % CHURN_CAP] = n;
}

/* Readers killed while they hold a read transaction, one after another
 * while a writer keeps replacing the entries: every killed reader's slot is
 * reclaimed (the reader table never fills, its high-water mark stays
 * small), the pages the writer frees are reused (data.mdb does not grow),
 * the writer never sees an error, and the newest entries are all there. */
static void test_crash_killed_readers_slots_reclaimed_file_bounded(void **state)
{
	unsigned long kills = th_env_ulong("EF_CRASH_READERS", READERS_DEFAULT);

	if (kills < 1)
		kills = 1; /* the first reader, which measures what one costs */
	ef_config cfg = crash_cfg(0, 0, CHURN_CAP);
	unsigned long held = 0;
	uint64_t rng = 0xC0FFEE;
	off_t size0, size_half = 0, size1;
	uint64_t w0, w_half = 0, w1;
	double pinned_per_write, grown_per_write;
	pid_t pid;
	ef_stat_info si;
	newest nw;
	ef_store *st;
	churn c;
	int status;

	(void)state;
	lk_calibrate();
	test_tmp = th_tmpdir();
	memset(&c, 0, sizeof(c));
	snprintf(c.dir, sizeof(c.dir), "%s/store", test_tmp);
	snprintf(c.ledger, sizeof(c.ledger), "%s/led.writer", test_tmp);
	st = th_open(c.dir, &cfg);
	ef_close(st);
	lk_map(c.dir, &c.lk);
	c.count = mmap(NULL, sizeof(*c.count), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(c.count != MAP_FAILED);
	*c.count = 0;
	assert_int_equal(pipe(c.stop), 0);
	c.writer = th_fork(CHILD_ALARM_S);
	if (c.writer == 0) {
		close(c.stop[1]);
		_exit(churn_writer(c.dir, c.ledger, c.count, c.stop[0]));
	}
	close(c.stop[0]);
	stall_moved(&c.sw);

	churn_wait(&c, CHURN_WARMUP);

	/* What a reader that is never cleared costs: one that stays alive
	 * inside its read transaction while the writer goes on. */
	pid = reader_start(&c, 1);
	size0 = file_size(c.dir, "data.mdb");
	w0 = churn_writes(&c);
	churn_wait(&c, CHURN_PINNED);
	pinned_per_write = (double)(file_size(c.dir, "data.mdb") - size0) /
			   (double)(churn_writes(&c) - w0);
	held += (unsigned long)reader_kill(&c, pid, 1);

	/* Readers killed in a read transaction (even), or anywhere while
	 * they read pages (odd), one after another. */
	for (unsigned long i = 0; i + 1 < kills; i++) {
		int hold = i % 2 == 0;

		pid = reader_start(&c, hold);
		if (!hold)
			th_sleep_us((long)(th_rng_next(&rng) % 1500));
		held += (unsigned long)reader_kill(&c, pid, hold);
		churn_wait(&c, CHURN_BETWEEN);
		if (i + 1 == kills / 2) {
			size_half = file_size(c.dir, "data.mdb");
			w_half = churn_writes(&c);
		}
	}
	churn_wait(&c, CHURN_BETWEEN);
	size1 = file_size(c.dir, "data.mdb");
	w1 = churn_writes(&c);
	if (w_half == 0) {
		size_half = size1;
		w_half = w1;
	}
	close(c.stop[1]);
	assert_int_equal(waitpid(c.writer, &status, 0), c.writer);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK);
	lk_unmap(&c.lk);

	st = th_open(c.dir, &cfg);
	assert_int_equal(ef_stat(st, &si), EF_OK);
	grown_per_write = (double)(size1 - size_half) /
			  (double)(w1 - w_half + 1);
	printf("crash: %lu readers killed (%lu seen holding a snapshot%s), "
	       "%" PRIu64 " finalizations meanwhile; reader slots ever used: "
	       "%u of %u; data.mdb %lld bytes after warm-up, %lld after half "
	       "the kills, %lld after all: %.0f bytes a write in the second "
	       "half, where a reader never cleared costs %.0f; %lu lost "
	       "wake-ups ended by the harness\n",
	       kills, held, lk_layout_ok == 1 ? "" : ": not counted",
	       churn_writes(&c), si.readers_used, si.max_readers,
	       (long long)size0, (long long)size_half, (long long)size1,
	       grown_per_write, pinned_per_write, c.sw.rescues);
	fflush(stdout);
	if (lk_layout_ok == 1)
		assert_true(held >= kills / 2);
	/* Every killed reader's slot was reclaimed and used again. */
	assert_true(si.readers_used <= READERS_BOUND);
	/* A dead reader pins its snapshot until its slot is cleared (by the
	 * next ef_open, or a writer's periodic check), and the writes
	 * meanwhile take new pages; once it is cleared, the pages freed are
	 * used again. So the file grows with the longest such spell, not with
	 * the number of writes: in the second half of the kills it grows by
	 * a small part of what a reader never cleared costs per write. */
	assert_true(pinned_per_write > 0);
	if (grown_per_write > pinned_per_write / 4)
		fail_msg("data.mdb keeps growing: %lld bytes after warm-up, "
			 "%lld after half the kills, %lld "
			 "after all (%.0f bytes a write; a reader never cleared "
			 "costs %.0f)", (long long)size0, (long long)size_half,
			 (long long)size1, grown_per_write, pinned_per_write);
	th_assert_consistent(st);

	memset(&nw, 0, sizeof(nw));
	each_line(c.ledger, newest_line, &nw);
	for (int o = 0; o < OWNERS; o++) {
		char owner[48], rid[RID_MAX];

		assert_true(nw.count[o] >= (int)CHURN_CAP);
		owner_spell(owner, sizeof(owner), o, 0);
		for (unsigned i = 0; i < CHURN_CAP; i++) {
			ef_entry *e = NULL;

			snprintf(rid, sizeof(rid), "c%d", nw.last[o][i]);
			if (ef_get_entry(st, owner, rid, &e) != EF_OK)
				fail_msg("%s: acknowledged %s is missing", owner,
					 rid);
			ef_entry_free(e);
		}
	}
	assert_int_equal(th_count_prefix(st, KEY_P_ENTRY),
			 OWNERS * CHURN_CAP);
	ef_close(st);
	munmap(c.count, sizeof(*c.count));
	th_cleanup(test_tmp);
	test_tmp = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_kill9_workers_lose_nothing),
		cmocka_unit_test(
			test_crash_killed_readers_slots_reclaimed_file_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

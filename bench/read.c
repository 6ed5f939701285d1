/*
 * read.c - the "read" scenario: page latency of a hot store, edgefeed
 * against lmdb-raw (with and without the unread-marker look-ups that the
 * same schema needs), sqlite and sqlite-best (its best schema for pages):
 *   newest  the first page (limit 50) of a random owner;
 *   deep    page 11 (entries 501-550) from its cursor;
 *   busy    the first page while other processes finalize, durable, into
 *           the same owners (their ledger, and the loaded entries', is
 *           checked at the end).
 * edgefeed-redis and edgefeed-redis1 read the same store on a Redis Cluster
 * (3 masters, 1 master): a page is one owner's, so one master's.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define FEED_CAP_ALL 100000000u
#define ID_LOAD (0xC3ULL << 56)

typedef struct read_sys {
	const char *label;
	const bsys_ops *sys;
	int unread;
} read_sys;

static const read_sys systems[] = {
	{"edgefeed", &bsys_edgefeed, 0},
	{"lmdb-raw", &bsys_lmdb, 0},
	{"lmdb-raw+unread", &bsys_lmdb, 1},
	{"sqlite", &bsys_sqlite, 0},
	{"sqlite-best", &bsys_sqlite_best, 0},
	{"edgefeed-redis", &bsys_edgefeed_redis, 0},
	{"edgefeed-redis1", &bsys_edgefeed_redis1, 0},
};

typedef struct load_ctx {
	int64_t base;
	uint32_t owners;
	uint64_t per_owner;
} load_ctx;

/* Entry i: owner i % owners, one minute apart, newest last. */
static void read_gen(void *p, uint64_t i, uint64_t *id, uint32_t *owner,
		     int64_t *created)
{
	load_ctx *c = p;

	*id = ID_LOAD | i;
	*owner = (uint32_t)(i % c->owners);
	*created = c->base - (int64_t)(c->per_owner - i / c->owners) * 60000;
}

typedef struct read_pt {
	double newest50, newest99, deep50, deep99, busy50, busy99, writers;
} read_pt;

/* The reader that runs in the parent beside the writers. */
typedef struct busy_ctx {
	const read_sys *rs;
	const char *dir;
	uint32_t owners;
	double seconds;
	int count;
	lat lt;
	int rc;
} busy_ctx;

static void busy_read(void *p)
{
	busy_ctx *b = p;
	bs_cfg bc = {0};
	void *proc, *th;
	uint64_t rng = 88172645463325252ULL;
	double end = now_s() + b->seconds;

	bc.feed_cap = FEED_CAP_ALL;
	bc.unread = b->rs->unread;
	if (b->rs->sys->open(&proc, b->dir, &bc) != 0) {
		b->rc = BS_ERR;
		return;
	}
	if (b->rs->sys->thread(proc, &th) == 0) {
		for (int i = 0; b->rc == 0 &&
				(b->seconds > 0 ? now_s() < end : i < b->count);
		     i++)
			b->rc = timed_page(b->rs->sys, th,
					   (uint32_t)(wl_rand(&rng) % b->owners),
					   "", 50, &b->lt);
		b->rs->sys->thread_done(th);
	} else {
		b->rc = BS_ERR;
	}
	b->rs->sys->close(proc);
}

/* The cursor after page @pages - 1 of owner @o (so that the next page is
 * page number @pages, counted from 0). */
static int deep_cursor(const bsys_ops *sys, void *th, uint32_t o, int pages,
		       char cur[BS_CURSOR_MAX])
{
	char name[BS_NAME_MAX], next[BS_CURSOR_MAX];
	size_t got;

	wl_owner(o, name);
	cur[0] = '\0';
	for (int p = 0; p < pages; p++) {
		if (sys->page(th, name, cur, 50, NULL, NULL, next, &got) != 0)
			return BS_ERR;
		memcpy(cur, next, BS_CURSOR_MAX);
	}
	return 0;
}

static int hot_reads(bopts *o, const read_sys *rs, void *th, uint32_t owners,
		     char (*cursors)[BS_CURSOR_MAX], read_pt *pt)
{
	lat a = {0}, b = {0};
	uint64_t rng = 0x2545F4914F6CDD1DULL;
	int n = o->quick ? 200 : 5000, rc = 0;

	for (int i = 0; rc == 0 && i < n; i++)
		rc = timed_page(rs->sys, th, (uint32_t)(wl_rand(&rng) % owners),
				"", 50, &a);
	for (int i = 0; rc == 0 && i < n / 2; i++) {
		uint32_t ow = (uint32_t)(wl_rand(&rng) % owners);
		rc = timed_page(rs->sys, th, ow, cursors[ow], 50, &b);
	}
	pt->newest50 = lat_pct(&a, 50);
	pt->newest99 = lat_pct(&a, 99);
	pt->deep50 = lat_pct(&b, 50);
	pt->deep99 = lat_pct(&b, 99);
	lat_free(&a);
	lat_free(&b);
	return rc;
}

/* Readers beside durable writers; checks the ledger of both. */
static int busy_reads(bopts *o, const read_sys *rs, const char *dir,
		      uint32_t owners, led *loaded, read_pt *pt, int rep)
{
	run_cfg c = {0};
	run_res r;
	busy_ctx b = {0};
	int rc;

	c.sys = rs->sys;
	c.bc.durable = 1;
	c.bc.feed_cap = FEED_CAP_ALL;
	c.procs = 2;
	c.threads = 1;
	c.owners = owners;
	c.seconds = o->quick ? 0 : o->seconds;
	c.per_worker = o->quick ? 50 : 0;
	c.dup_frac = 0.1;
	c.seed = (uint64_t)rep + 101;
	c.id_base = (uint64_t)(0x10 + rep) << 56;
	b.rs = rs;
	b.dir = dir;
	b.owners = owners;
	b.seconds = c.seconds;
	b.count = 200;
	rc = run_conc(&c, dir, loaded, owners, busy_read, &b, &r);
	if (rc == 0 && (b.rc != 0 || !led_clean(&r.led))) {
		fprintf(stderr, "edgefeed-bench: read: %s: ledger lost %llu "
			"duplicated %llu unexpected %llu\n", rs->label,
			(unsigned long long)r.led.lost,
			(unsigned long long)r.led.duplicated,
			(unsigned long long)r.led.unexpected);
		o->failures++;
	}
	pt->busy50 = lat_pct(&b.lt, 50);
	pt->busy99 = lat_pct(&b.lt, 99);
	pt->writers = r.ops_s;
	lat_free(&b.lt);
	return rc ? rc : b.rc;
}

static void emit(const read_sys *rs, uint32_t owners, uint64_t per,
		 const read_pt *pts, int n, int rep)
{
	json_t *row = json_object(), *cfg = json_object();
	double v[7][16];

	for (int i = 0; i < n; i++) {
		const double *f = &pts[i].newest50;
		for (int k = 0; k < 7; k++)
			v[k][i] = f[k];
	}
	json_object_set_new(row, "scenario", json_string("read"));
	json_object_set_new(row, "system", json_string(rs->label));
	json_object_set_new(row, "rep", rep ? json_integer(rep)
					    : json_string("median"));
	json_object_set_new(cfg, "owners", json_integer(owners));
	json_object_set_new(cfg, "entriesPerOwner", json_integer((json_int_t)per));
	json_object_set_new(cfg, "limit", json_integer(50));
	json_object_set_new(cfg, "unreadLookups",
			    json_boolean(rs->sys != &bsys_lmdb || rs->unread));
	json_object_set_new(cfg, "busyWriters", json_string("2x1 durable"));
	if (rs->sys->masters) {
		json_object_set_new(cfg, "masters",
				    json_integer(rs->sys->masters));
		json_object_set_new(cfg, "replicas", json_integer(0));
		json_object_set_new(cfg, "redis",
				    json_string(bcl_redis_version()));
	}
	json_object_set_new(row, "config", cfg);
	json_object_set_new(row, "newestP50Us", json_real(median_of(v[0], (size_t)n)));
	json_object_set_new(row, "newestP99Us", json_real(median_of(v[1], (size_t)n)));
	json_object_set_new(row, "deepP50Us", json_real(median_of(v[2], (size_t)n)));
	json_object_set_new(row, "deepP99Us", json_real(median_of(v[3], (size_t)n)));
	json_object_set_new(row, "busyP50Us", json_real(median_of(v[4], (size_t)n)));
	json_object_set_new(row, "busyP99Us", json_real(median_of(v[5], (size_t)n)));
	json_object_set_new(row, "writersOpsPerSec",
			    json_real(median_of(v[6], (size_t)n)));
	row_emit(row);
	if (!rep)
		table_line("%-16s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.0f",
			   rs->label, median_of(v[0], (size_t)n),
			   median_of(v[1], (size_t)n), median_of(v[2], (size_t)n),
			   median_of(v[3], (size_t)n), median_of(v[4], (size_t)n),
			   median_of(v[5], (size_t)n), median_of(v[6], (size_t)n));
}

static int one_system(bopts *o, const read_sys *rs)
{
	uint32_t owners = o->quick ? 20 : 200;
	uint64_t per = o->quick ? 200 : 1000;
	load_ctx lc = {wall_ms(), owners, per};
	char *dir = dir_new(o->dir, "read"), store[4200];
	char (*cursors)[BS_CURSOR_MAX] = calloc(owners, BS_CURSOR_MAX);
	bs_cfg bc = {0};
	void *proc = NULL, *th = NULL;
	read_pt pts[16];
	led l = {0};
	int rc = dir && cursors ? 0 : BS_ERR, reps = o->reps < 16 ? o->reps : 16;

	bc.feed_cap = FEED_CAP_ALL;
	bc.unread = rs->unread;
	if (rc == 0) {
		snprintf(store, sizeof(store), "%s/store", dir);
		rc = mkdir_store(store);
	}
	if (rc == 0 && (rc = rs->sys->open(&proc, store, &bc)) == 0 &&
	    (rc = rs->sys->thread(proc, &th)) == 0) {
		rc = load_gen(rs->sys, th, 0, (uint64_t)owners * per, read_gen,
			      &lc, &l);
		for (uint32_t ow = 0; rc == 0 && ow < owners; ow++)
			rc = deep_cursor(rs->sys, th, ow, o->quick ? 2 : 10,
					 cursors[ow]);
		for (int r = 0; rc == 0 && r < reps; r++)
			rc = hot_reads(o, rs, th, owners, cursors, &pts[r]);
	}
	if (th)
		rs->sys->thread_done(th);
	if (proc)
		rs->sys->close(proc);
	/* the busy runs fork: no handle may be open here */
	for (int r = 0; rc == 0 && r < reps; r++) {
		rc = busy_reads(o, rs, store, owners, &l, &pts[r], r);
		if (rc == 0)
			emit(rs, owners, per, &pts[r], 1, r + 1);
	}
	if (rc == 0)
		emit(rs, owners, per, pts, reps, 0);
	else
		o->failures++;
	bcl_drop(o, rs->sys);
	dir_remove(dir);
	free(dir);
	free(cursors);
	led_free(&l);
	return rc;
}

int scen_read(bopts *o)
{
	enum { NSYS = sizeof(systems) / sizeof(*systems) };
	int rc = 0, run[NSYS];

	/* clusters first, so that their messages come before the table */
	for (size_t i = 0; i < NSYS; i++)
		run[i] = sys_selected(o, systems[i].label) &&
			 bcl_up(o, systems[i].sys);
	table_head("read: page latency, limit 50 (median of runs, us)",
		   "system            new-p50   new-p99  deep-p50  deep-p99  "
		   "busy-p50  busy-p99 writers/s");
	for (size_t i = 0; i < NSYS; i++)
		if (run[i] && one_system(o, &systems[i]) != 0)
			rc = BS_ERR;
	return rc;
}

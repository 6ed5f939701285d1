/*
 * scale.c - the "scale" scenario: how finalize and newest-page latency move
 *   (a) as the store grows (10^4 .. --scale-max entries, 100 per owner),
 *       for edgefeed, lmdb-raw and sqlite;
 *   (b) as one owner's feed grows (10 .. 10^4 entries), for edgefeed,
 *       lmdb-raw, sqlite and legacy-txn (whose cost is the array).
 * Stores are filled without sync (edgefeed through ef_finalize, the others
 * in batches), then measured: finalize without sync, finalize durable
 * (store reopened), and newest-50 pages, each point --reps times. The
 * ledger of everything written is checked at the end of each store.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define PER_OWNER 100
#define FEED_CAP_ALL 100000000u
#define DAY_MS (24LL * 3600 * 1000)
#define ID_LOAD (0xA1ULL << 56)
#define ID_MEAS (0xB2ULL << 56)

typedef struct scale_sys {
	const char *label;
	const bsys_ops *sys;
} scale_sys;

static const scale_sys store_systems[] = {
	{"edgefeed", &bsys_edgefeed},
	{"lmdb-raw", &bsys_lmdb},
	{"sqlite", &bsys_sqlite},
};

static const scale_sys owner_systems[] = {
	{"edgefeed", &bsys_edgefeed},
	{"lmdb-raw", &bsys_lmdb},
	{"sqlite", &bsys_sqlite},
	{"legacy-txn", &bsys_legacy_txn},
};

/* Store growth: entry i belongs to owner i / PER_OWNER, within 60 days. */
typedef struct grow_ctx {
	int64_t base;
} grow_ctx;

static void grow_gen(void *p, uint64_t i, uint64_t *id, uint32_t *owner,
		     int64_t *created)
{
	grow_ctx *c = p;

	*id = ID_LOAD | i;
	*owner = (uint32_t)(i / PER_OWNER);
	*created = c->base - (int64_t)(wl_mix(i) % (uint64_t)(60 * DAY_MS));
}

/* One owner's feed: entry i of owner first + i / size, oldest first, one
 * minute apart (the legacy array is newest first: the last added leads). */
typedef struct feed_ctx {
	int64_t base;
	uint32_t first;
	uint64_t size;
} feed_ctx;

static void feed_gen(void *p, uint64_t i, uint64_t *id, uint32_t *owner,
		     int64_t *created)
{
	feed_ctx *c = p;
	uint64_t j = i % c->size;

	*id = ID_LOAD | (uint64_t)c->first << 24 | i;
	*owner = c->first + (uint32_t)(i / c->size);
	*created = c->base - (int64_t)(c->size - j) * 60000;
}

typedef struct point {
	double fin_nosync, fin_durable, page_p50, page_p99, fin_p99;
} point;

static int reopen(const bsys_ops *sys, const char *dir, int durable,
		  void **proc, void **th)
{
	bs_cfg bc = {0};

	if (*th)
		sys->thread_done(*th);
	if (*proc)
		sys->close(*proc);
	*th = *proc = NULL;
	bc.durable = durable;
	bc.feed_cap = FEED_CAP_ALL;
	if (sys->open(proc, dir, &bc) != 0)
		return BS_ERR;
	if (sys->thread(*proc, th) != 0) {
		sys->close(*proc);
		*proc = NULL;
		return BS_ERR;
	}
	return 0;
}

/* Measure one point: @nf nosync finalizations and @nd durable ones to
 * owners [first, first + owners), and @np newest pages of them. */
static int measure(const bsys_ops *sys, const char *dir, void **proc,
		   void **th, uint32_t first, uint32_t owners, int nf, int nd,
		   int np, uint64_t *next_id, led *l, point *pt)
{
	lat fn = {0}, fd = {0}, pg = {0};
	uint64_t rng = wl_mix(*next_id) | 1;
	int rc = 0;

	for (int i = 0; rc == 0 && i < nf; i++)
		rc = timed_finalize(sys, *th, ID_MEAS | (*next_id)++,
				    first + (uint32_t)(wl_rand(&rng) % owners),
				    l, &fn) == BS_ERR;
	for (int i = 0; rc == 0 && i < np; i++)
		rc = timed_page(sys, *th,
				first + (uint32_t)(wl_rand(&rng) % owners), "",
				50, &pg);
	if (rc == 0 && nd > 0) {
		rc = reopen(sys, dir, 1, proc, th);
		for (int i = 0; rc == 0 && i < nd; i++)
			rc = timed_finalize(sys, *th, ID_MEAS | (*next_id)++,
					    first + (uint32_t)(wl_rand(&rng) %
							       owners),
					    l, &fd) == BS_ERR;
		if (rc == 0)
			rc = reopen(sys, dir, 0, proc, th);
	}
	pt->fin_nosync = lat_pct(&fn, 50);
	pt->fin_p99 = lat_pct(&fn, 99);
	pt->fin_durable = lat_pct(&fd, 50);
	pt->page_p50 = lat_pct(&pg, 50);
	pt->page_p99 = lat_pct(&pg, 99);
	lat_free(&fn);
	lat_free(&fd);
	lat_free(&pg);
	return rc ? BS_ERR : 0;
}

/* A row of @n points: one run (@rep its number) or their median (@rep 0). */
static void emit(const char *kind, const char *label, uint64_t entries,
		 uint64_t feed, const point *pts, int n, int rep)
{
	json_t *row = json_object(), *cfg = json_object();
	double a[5][16];

	for (int i = 0; i < n; i++) {
		a[0][i] = pts[i].fin_nosync;
		a[1][i] = pts[i].fin_p99;
		a[2][i] = pts[i].fin_durable;
		a[3][i] = pts[i].page_p50;
		a[4][i] = pts[i].page_p99;
	}
	json_object_set_new(row, "scenario", json_string("scale"));
	json_object_set_new(row, "system", json_string(label));
	json_object_set_new(row, "rep", rep ? json_integer(rep)
					    : json_string("median"));
	json_object_set_new(cfg, "sweep", json_string(kind));
	json_object_set_new(cfg, "storeEntries", json_integer((json_int_t)entries));
	json_object_set_new(cfg, "ownerEntries", json_integer((json_int_t)feed));
	json_object_set_new(row, "config", cfg);
	json_object_set_new(row, "finalizeNosyncP50Us",
			    json_real(median_of(a[0], (size_t)n)));
	json_object_set_new(row, "finalizeNosyncP99Us",
			    json_real(median_of(a[1], (size_t)n)));
	json_object_set_new(row, "finalizeDurableP50Us",
			    json_real(median_of(a[2], (size_t)n)));
	json_object_set_new(row, "pageP50Us",
			    json_real(median_of(a[3], (size_t)n)));
	json_object_set_new(row, "pageP99Us",
			    json_real(median_of(a[4], (size_t)n)));
	row_emit(row);
	if (!rep)
		table_line("%-10s %-6s %10llu %7llu %10.1f %10.1f %10.1f "
			   "%9.1f %9.1f", label, kind,
			   (unsigned long long)entries, (unsigned long long)feed,
			   median_of(a[0], (size_t)n), median_of(a[1], (size_t)n),
			   median_of(a[2], (size_t)n), median_of(a[3], (size_t)n),
			   median_of(a[4], (size_t)n));
}

static int check(bopts *o, const scale_sys *s, void *th, led *l,
		 uint32_t owners)
{
	led_result r;
	json_t *row;

	if (led_verify(s->sys, th, l, owners, &r) != 0 || !led_clean(&r)) {
		fprintf(stderr, "edgefeed-bench: scale: %s: ledger: lost %llu "
			"duplicated %llu unexpected %llu\n", s->label,
			(unsigned long long)r.lost,
			(unsigned long long)r.duplicated,
			(unsigned long long)r.unexpected);
		o->failures++;
	}
	row = json_object();
	json_object_set_new(row, "scenario", json_string("scale"));
	json_object_set_new(row, "system", json_string(s->label));
	json_object_set_new(row, "rep", json_string("ledger"));
	json_object_set_new(row, "acked", json_integer((json_int_t)r.acked));
	json_object_set_new(row, "found", json_integer((json_int_t)r.found));
	json_object_set_new(row, "lost", json_integer((json_int_t)r.lost));
	json_object_set_new(row, "duplicated",
			    json_integer((json_int_t)r.duplicated));
	json_object_set_new(row, "unexpected",
			    json_integer((json_int_t)r.unexpected));
	json_object_set_new(row, "ledgerClean", json_boolean(led_clean(&r)));
	row_emit(row);
	return 0;
}

/* The end of a sweep: check the ledger of owners 0..@owners-1 (when the
 * sweep went well), close, remove the store. Returns @rc. */
static int finish(bopts *o, const scale_sys *s, int rc, uint32_t owners,
		  void *proc, void *th, char *dir, led *l)
{
	if (rc == 0)
		check(o, s, th, l, owners);
	if (th)
		s->sys->thread_done(th);
	if (proc)
		s->sys->close(proc);
	dir_remove(dir);
	free(dir);
	led_free(l);
	return rc;
}

static int store_sweep(bopts *o, const scale_sys *s)
{
	char *dir = dir_new(o->dir, "scale");
	void *proc = NULL, *th = NULL;
	grow_ctx g = {wall_ms()};
	uint64_t have = 0, next_id = 0;
	led l = {0};
	int rc = dir ? reopen(s->sys, dir, 0, &proc, &th) : BS_ERR;
	int nf = o->quick ? 50 : 1000, nd = o->quick ? 5 : 200;

	for (uint64_t size = o->quick ? 1000 : 10000;
	     rc == 0 && size <= o->scale_max; size *= 10) {
		point pts[16];
		double t0 = now_s();
		rc = load_gen(s->sys, th, have, size, grow_gen, &g, &l);
		have = size;
		fprintf(stderr, "scale: %s: %llu entries loaded in %.1f s\n",
			s->label, (unsigned long long)size, now_s() - t0);
		for (int r = 0; rc == 0 && r < o->reps && r < 16; r++) {
			rc = measure(s->sys, dir, &proc, &th, 0,
				     (uint32_t)(size / PER_OWNER), nf, nd, nf,
				     &next_id, &l, &pts[r]);
			if (rc == 0)
				emit("store", s->label, size, PER_OWNER,
				     &pts[r], 1, r + 1);
		}
		if (rc == 0)
			emit("store", s->label, size, PER_OWNER, pts,
			     o->reps < 16 ? o->reps : 16, 0);
	}
	return finish(o, s, rc, (uint32_t)(have / PER_OWNER), proc, th, dir,
		      &l);
}

static int owner_sweep(bopts *o, const scale_sys *s)
{
	char *dir = dir_new(o->dir, "scale");
	void *proc = NULL, *th = NULL;
	feed_ctx f = {wall_ms(), 0, 0};
	uint64_t next_id = 0;
	led l = {0};
	int rc = dir ? reopen(s->sys, dir, 0, &proc, &th) : BS_ERR;
	uint64_t top = o->quick ? 1000 : 10000;

	for (uint64_t size = 10; rc == 0 && size <= top; size *= 10) {
		/* k owners of this size, 100 finalizations over them */
		uint32_t k = size >= 1000 ? 1 : (uint32_t)(1000 / size);
		int rounds = (int)((100 + k - 1) / k), nf = rounds * (int)k;
		point pts[16];

		f.size = size;
		rc = load_gen(s->sys, th, 0, size * k, feed_gen, &f, &l);
		for (int r = 0; rc == 0 && r < o->reps && r < 16; r++)
			rc = measure(s->sys, dir, &proc, &th, f.first, k,
				     o->quick ? 10 : nf, 0, o->quick ? 20 : 200,
				     &next_id, &l, &pts[r]);
		if (rc == 0)
			emit("owner", s->label, 0, size, pts,
			     o->reps < 16 ? o->reps : 16, 0);
		f.first += k;
	}
	return finish(o, s, rc, f.first, proc, th, dir, &l);
}

int scen_scale(bopts *o)
{
	int rc = 0;

	table_head("scale: latency as the store and one owner's feed grow "
		   "(median of runs, us)",
		   "system     sweep     entries   feed  fin-nosync fin-ns-p99 "
		   "fin-durab  page-p50  page-p99");
	for (size_t i = 0; i < sizeof(store_systems) / sizeof(*store_systems);
	     i++)
		if (sys_selected(o, store_systems[i].label) &&
		    store_sweep(o, &store_systems[i]) != 0) {
			o->failures++;
			rc = BS_ERR;
		}
	for (size_t i = 0; i < sizeof(owner_systems) / sizeof(*owner_systems);
	     i++)
		if (sys_selected(o, owner_systems[i].label) &&
		    owner_sweep(o, &owner_systems[i]) != 0) {
			o->failures++;
			rc = BS_ERR;
		}
	return rc;
}

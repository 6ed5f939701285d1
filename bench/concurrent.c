/*
 * concurrent.c - the "concurrent" scenario: every system, durable and not,
 * P processes x T threads, owners uniform and one hot owner, duplicate
 * retries mixed in; finalizations per second, latency percentiles, and the
 * ledger check of every run. The cluster systems (edgefeed on Redis Cluster,
 * 3 masters and 1) run in the durable half only: their durability is the
 * cluster's appendfsync (always), which EF_NOSYNC does not change.
 *
 * Repetitions go round the whole matrix (not one configuration three times
 * in a row), so that a burst of load from elsewhere on the machine hits
 * one repetition of many configurations rather than every repetition of
 * one; the row of a configuration then gives the median of its runs.
 * Within a repetition the systems of one shape run back to back, and a
 * ratio between two systems is best taken per repetition (paired), which
 * the per-run rows allow.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run.h"

typedef struct variant {
	const char *label;    /* the row's "system" */
	const bsys_ops *sys;
	int gc;               /* EF_GROUP_COMMIT */
} variant;

static const variant variants[] = {
	{"edgefeed", &bsys_edgefeed, 0},
	{"edgefeed-gc", &bsys_edgefeed, 1},
	{"lmdb-raw", &bsys_lmdb, 0},
	{"sqlite", &bsys_sqlite, 0},
	{"edgefeed-redis", &bsys_edgefeed_redis, 0},
	{"edgefeed-redis1", &bsys_edgefeed_redis1, 0},
	{"legacy-txn", &bsys_legacy_txn, 0},
	{"legacy-lock", &bsys_legacy_lock, 0},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

typedef struct shape {
	int procs, threads, hot, durable;
} shape;

/* Where a run's CPU went, over its timed window (probe_during). */
typedef struct cpu_use {
	int ok;             /* measured */
	double busy;        /* share of all cores' time busy, 0..1 */
	double iowait;      /* share idle waiting for the disk, 0..1 */
	double redis_cores; /* cores' worth used by the cluster's nodes */
	double flushes;     /* flushes of the store's disk per second (-1:
			     * unknown) */
} cpu_use;

/* One configuration and its runs. */
typedef struct cell {
	const variant *v;
	shape s;
	run_res r[16];
	cpu_use cpu[16];
	int nr;
	int failed;
} cell;

typedef struct probe_ctx {
	const bsys_ops *sys;
	double seconds;
	cpu_use *out;
} probe_ctx;

#define OWNERS_DEFAULT 1000
#define FEED_CAP_ALL 100000000u /* never evict: the ledger sees everything */

static const int full_uniform[][2] = {{1, 1}, {1, 4}, {1, 16}, {2, 1},
				      {4, 1}, {8, 1}, {4, 4}};
static const int full_hot[][2] = {{1, 1}, {1, 16}, {2, 1}, {8, 1}};
static const int quick_uniform[][2] = {{1, 1}, {2, 2}};
static const int quick_hot[][2] = {{2, 2}};

/* Parse "1x1,1x16" into @out (at most @cap); returns the count or -1. */
static int parse_writers(const char *s, int out[][2], int cap)
{
	int n = 0;

	while (s && *s && n < cap) {
		char *end;
		long p = strtol(s, &end, 10), t;
		if (*end != 'x')
			return -1;
		t = strtol(end + 1, &end, 10);
		if (p < 1 || t < 1 || p * t > 256)
			return -1;
		out[n][0] = (int)p;
		out[n][1] = (int)t;
		n++;
		if (*end != ',' && *end)
			return -1;
		s = *end ? end + 1 : end;
	}
	return n;
}

static const char *sync_name(const cell *c)
{
	if (c->v->sys == &bsys_sqlite)
		return c->s.durable ? "FULL" : "NORMAL";
	if (c->v->sys->masters)
		return "always"; /* appendfsync */
	return c->s.durable ? "durable" : "nosync";
}

static json_t *cell_config(const cell *c, const bopts *o, uint32_t owners,
			   double dup)
{
	json_t *cfg = json_object();

	json_object_set_new(cfg, "durable", json_boolean(c->s.durable));
	json_object_set_new(cfg, "sync", json_string(sync_name(c)));
	json_object_set_new(cfg, "groupCommit", json_boolean(c->v->gc));
	json_object_set_new(cfg, "procs", json_integer(c->s.procs));
	json_object_set_new(cfg, "threads", json_integer(c->s.threads));
	json_object_set_new(cfg, "writers",
			    json_integer(c->s.procs * c->s.threads));
	json_object_set_new(cfg, "owners", json_integer(owners));
	json_object_set_new(cfg, "distribution",
			    json_string(c->s.hot ? "hot" : "uniform"));
	json_object_set_new(cfg, "dupFraction", json_real(dup));
	if (c->v->sys->masters) {
		json_object_set_new(cfg, "masters",
				    json_integer(c->v->sys->masters));
		json_object_set_new(cfg, "replicas", json_integer(0));
		json_object_set_new(cfg, "redis",
				    json_string(bcl_redis_version()));
	}
	if (o->quick)
		json_object_set_new(cfg, "callsPerWorker",
				    json_integer(o->quick_n));
	else
		json_object_set_new(cfg, "seconds", json_real(o->seconds));
	return cfg;
}

static void res_fields(json_t *row, double ops, double p50, double p99,
		       double p999, const led_result *l)
{
	json_object_set_new(row, "opsPerSec", json_real(ops));
	json_object_set_new(row, "p50Us", json_real(p50));
	json_object_set_new(row, "p99Us", json_real(p99));
	json_object_set_new(row, "p999Us", json_real(p999));
	json_object_set_new(row, "calls", json_integer((json_int_t)l->attempted));
	json_object_set_new(row, "acked", json_integer((json_int_t)l->acked));
	json_object_set_new(row, "errors", json_integer((json_int_t)l->errors));
	json_object_set_new(row, "lost", json_integer((json_int_t)l->lost));
	json_object_set_new(row, "duplicated",
			    json_integer((json_int_t)l->duplicated));
	json_object_set_new(row, "unexpected",
			    json_integer((json_int_t)l->unexpected));
	json_object_set_new(row, "doubleCreated",
			    json_integer((json_int_t)l->double_created));
	json_object_set_new(row, "ledgerClean", json_boolean(led_clean(l)));
}

static void nap_until(double t)
{
	for (double left = t - now_s(); left > 0; left = t - now_s()) {
		struct timespec ts = {(time_t)left,
				      (long)((left - (double)(time_t)left) * 1e9)};
		if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
			return;
	}
}

/* In the parent while the workers run (run_conc's during): the machine's
 * CPU, and the cluster's, over the timed window, which starts 5 ms after
 * this is called. On 2 cores the cluster's nodes and the workers share
 * the CPU: this says how much of it each took, and whether it was all. */
static void probe_during(void *p)
{
	probe_ctx *pc = p;
	cpu_snap a, b;
	double t0 = now_s(), ra = 0, rb = 0, dt;
	uint64_t fa = 0, fb = 0;
	int cl = pc->sys->masters > 0, fok;

	fok = disk_flushes(&fa) == 0;
	pc->out->ok = cpu_sample(&a) == 0 && (!cl || bcl_cpu(pc->sys, &ra) == 0);
	nap_until(t0 + pc->seconds);
	pc->out->ok = pc->out->ok && cpu_sample(&b) == 0 &&
		      (!cl || bcl_cpu(pc->sys, &rb) == 0);
	fok = fok && disk_flushes(&fb) == 0 && fb >= fa;
	dt = now_s() - t0;
	pc->out->flushes = fok && dt > 0 ? (double)(fb - fa) / dt : -1;
	if (!pc->out->ok || b.total <= a.total || dt <= 0) {
		pc->out->ok = 0;
		return;
	}
	pc->out->busy = (b.busy - a.busy) / (b.total - a.total);
	pc->out->iowait = (b.iowait - a.iowait) / (b.total - a.total);
	pc->out->redis_cores = (rb - ra) / dt;
}

/* Where the CPU went: the machine's shares (other work on it included),
 * and per finalize call the CPU of the worker processes (the library or
 * the client, from fork to exit) and of the cluster's nodes. */
static void cpu_fields(json_t *row, const bsys_ops *sys, const cpu_use *u,
		       double workers_us)
{
	json_object_set_new(row, "workersCpuUsPerCall", json_real(workers_us));
	if (!u->ok)
		return;
	json_object_set_new(row, "cpuBusy", json_real(u->busy));
	json_object_set_new(row, "ioWait", json_real(u->iowait));
	if (u->flushes >= 0)
		json_object_set_new(row, "diskFlushesPerSec",
				    json_real(u->flushes));
	if (sys->masters)
		json_object_set_new(row, "redisCores",
				    json_real(u->redis_cores));
}

static double workers_us(const run_res *r)
{
	return r->calls ? r->workers_cpu_s * 1e6 / (double)r->calls : 0;
}

static int run_cell(bopts *o, cell *c, uint32_t owners, double dup, int rep)
{
	run_cfg rc = {0};
	run_res *r = &c->r[c->nr];
	cpu_use *cpu = &c->cpu[c->nr];
	probe_ctx pc = {c->v->sys, o->seconds, cpu};
	char *dir = dir_new(o->dir, "conc");
	char store[4200];
	json_t *row;
	int ok;

	if (!dir)
		return BS_ERR;
	snprintf(store, sizeof(store), "%s/store", dir);
	rc.sys = c->v->sys;
	rc.bc.durable = c->s.durable;
	rc.bc.group_commit = c->v->gc;
	rc.bc.feed_cap = FEED_CAP_ALL;
	rc.procs = c->s.procs;
	rc.threads = c->s.threads;
	rc.owners = owners;
	rc.hot = c->s.hot;
	rc.seconds = o->quick ? 0 : o->seconds;
	rc.per_worker = o->quick_n;
	rc.dup_frac = dup;
	rc.seed = (uint64_t)rep * 7919 + 1;
	ok = mkdir_store(store) == 0 && run_prepare(rc.sys, &rc.bc, store) == 0 &&
	     run_conc(&rc, store, NULL, owners,
		      rc.seconds > 0 ? probe_during : NULL, &pc, r) == 0;
	bcl_drop(o, rc.sys);
	dir_remove(dir);
	free(dir);
	if (!ok) {
		c->failed = 1;
		o->failures++;
		return BS_ERR;
	}
	c->nr++;
	if (c->v->sys != &bsys_legacy_lock && !led_clean(&r->led)) {
		c->failed = 1;
		o->failures++;
	}
	row = json_object();
	json_object_set_new(row, "scenario", json_string("concurrent"));
	json_object_set_new(row, "system", json_string(c->v->label));
	json_object_set_new(row, "rep", json_integer(rep + 1));
	json_object_set_new(row, "config", cell_config(c, o, owners, dup));
	res_fields(row, r->ops_s, r->p50, r->p99, r->p999, &r->led);
	cpu_fields(row, c->v->sys, cpu, workers_us(r));
	json_object_set_new(row, "seconds", json_real(r->secs));
	row_emit(row);
	return 0;
}

/* The medians of the runs' CPU shares (of those measured). */
static cpu_use cpu_median(const cell *c)
{
	double busy[16], io[16], cores[16], fl[16];
	cpu_use m = {0};
	size_t n = 0, nf = 0;

	for (int i = 0; i < c->nr; i++) {
		if (!c->cpu[i].ok)
			continue;
		busy[n] = c->cpu[i].busy;
		io[n] = c->cpu[i].iowait;
		cores[n++] = c->cpu[i].redis_cores;
		if (c->cpu[i].flushes >= 0)
			fl[nf++] = c->cpu[i].flushes;
	}
	if (n) {
		m.ok = 1;
		m.busy = median_of(busy, n);
		m.iowait = median_of(io, n);
		m.redis_cores = median_of(cores, n);
		m.flushes = nf ? median_of(fl, nf) : -1;
	}
	return m;
}

/* The median row of a configuration; lost, duplicated, unexpected and
 * double are summed over its runs. */
static void cell_median(const bopts *o, const cell *c, uint32_t owners,
			double dup)
{
	double ops[16], p50[16], p99[16], p999[16], wus[16];
	led_result sum = {0};
	cpu_use cpu = cpu_median(c);
	json_t *row;

	if (!c->nr)
		return;
	for (int i = 0; i < c->nr; i++) {
		const led_result *l = &c->r[i].led;
		ops[i] = c->r[i].ops_s;
		p50[i] = c->r[i].p50;
		p99[i] = c->r[i].p99;
		p999[i] = c->r[i].p999;
		wus[i] = workers_us(&c->r[i]);
		sum.attempted += l->attempted;
		sum.acked += l->acked;
		sum.errors += l->errors;
		sum.lost += l->lost;
		sum.duplicated += l->duplicated;
		sum.unexpected += l->unexpected;
		sum.double_created += l->double_created;
	}
	row = json_object();
	json_object_set_new(row, "scenario", json_string("concurrent"));
	json_object_set_new(row, "system", json_string(c->v->label));
	json_object_set_new(row, "rep", json_string("median"));
	json_object_set_new(row, "runs", json_integer(c->nr));
	json_object_set_new(row, "config", cell_config(c, o, owners, dup));
	res_fields(row, median_of(ops, (size_t)c->nr),
		   median_of(p50, (size_t)c->nr), median_of(p99, (size_t)c->nr),
		   median_of(p999, (size_t)c->nr), &sum);
	cpu_fields(row, c->v->sys, &cpu, median_of(wus, (size_t)c->nr));
	row_emit(row);
	table_line("%-15s %-7s %-7s %3dx%-3d %10.0f %9.0f %9.0f %9.0f %7llu "
		   "%5llu %5llu %5llu%s",
		   c->v->label, sync_name(c), c->s.hot ? "hot" : "uniform",
		   c->s.procs, c->s.threads, median_of(ops, (size_t)c->nr),
		   median_of(p50, (size_t)c->nr), median_of(p99, (size_t)c->nr),
		   median_of(p999, (size_t)c->nr),
		   (unsigned long long)sum.acked, (unsigned long long)sum.lost,
		   (unsigned long long)sum.duplicated,
		   (unsigned long long)(sum.unexpected + sum.double_created),
		   c->failed ? "  FAILED" : "");
}

/* The shapes to run: the matrix, or --writers; uniform ones in @uni,
 * hot-owner ones in @hot. 0, or BS_ERR on a bad --writers. */
static int plan_shapes(const bopts *o, int uni[32][2], int *nu,
		       int hot[32][2], int *nh)
{
	if (o->writers) {
		*nu = *nh = parse_writers(o->writers, uni, 32);
		if (*nu < 0) {
			fprintf(stderr, "edgefeed-bench: --writers: expected "
				"PxT[,PxT...], e.g. 1x1,1x16\n");
			return BS_ERR;
		}
		memcpy(hot, uni, sizeof(int[2]) * (size_t)*nu);
	} else {
		const int(*u)[2] = o->quick ? quick_uniform : full_uniform;
		const int(*h)[2] = o->quick ? quick_hot : full_hot;
		*nu = o->quick ? 2 : 7;
		*nh = o->quick ? 1 : 4;
		memcpy(uni, u, sizeof(int[2]) * (size_t)*nu);
		memcpy(hot, h, sizeof(int[2]) * (size_t)*nh);
	}
	if (o->dist == 1)
		*nh = 0;
	if (o->dist == 2)
		*nu = 0;
	return 0;
}

/* Every configuration, in run order: the systems of one shape back to
 * back, so that the ratios between them compare runs under the same
 * load. Starts the clusters the cells need (bcl_up). Returns the number
 * of cells (at most NVARIANTS * 2 * (nu + nh)). */
static int make_cells(bopts *o, int uni[32][2], int nu,
		      int hot[32][2], int nh, cell *cells)
{
	int n = 0;

	for (int d = 1; d >= 0; d--) {
		if ((o->sync == 1 && !d) || (o->sync == 2 && d))
			continue;
		for (int i = 0; i < nu + nh; i++) {
			for (size_t v = 0; v < NVARIANTS; v++) {
				const bsys_ops *sys = variants[v].sys;
				cell *c;

				if (!sys_selected(o, variants[v].label) ||
				    (sys->masters && !d) || !bcl_up(o, sys))
					continue;
				c = &cells[n++];
				c->v = &variants[v];
				c->s.hot = i >= nu;
				c->s.procs = c->s.hot ? hot[i - nu][0] : uni[i][0];
				c->s.threads = c->s.hot ? hot[i - nu][1] : uni[i][1];
				c->s.durable = d;
			}
		}
	}
	return n;
}

int scen_concurrent(bopts *o)
{
	int uni[32][2], hot[32][2], nu, nh, ncell;
	uint32_t owners = o->owners ? o->owners : OWNERS_DEFAULT;
	cell *cells;

	if (plan_shapes(o, uni, &nu, hot, &nh) != 0)
		return BS_ERR;
	cells = calloc(NVARIANTS * 2 * (size_t)(nu + nh), sizeof(*cells));
	if (!cells)
		return BS_ERR;
	ncell = make_cells(o, uni, nu, hot, nh, cells);
	for (int rep = 0; rep < o->reps && rep < 16; rep++) {
		for (int i = 0; i < ncell; i++) {
			fprintf(stderr, "\rconcurrent: rep %d/%d, %d/%d %-12s",
				rep + 1, o->reps, i + 1, ncell,
				cells[i].v->label);
			run_cell(o, &cells[i], owners, o->dup_frac, rep);
		}
	}
	fprintf(stderr, "\n");
	table_head("concurrent: finalizations (median of runs; lost, dup, "
		   "unexp summed over runs)",
		   "system          sync    owners   PxT     calls/s   p50 us"
		   "   p99 us  p999 us   acked  lost   dup unexp");
	for (size_t v = 0; v < NVARIANTS; v++)
		for (int i = 0; i < ncell; i++)
			if (cells[i].v == &variants[v])
				cell_median(o, &cells[i], owners, o->dup_frac);
	free(cells);
	return 0;
}

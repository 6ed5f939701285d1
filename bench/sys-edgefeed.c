/*
 * sys-edgefeed.c - the system under test, through the public API only
 * (include/edgefeed.h). One ef_store per process, shared by its threads.
 *
 * edgefeed-redis and edgefeed-redis1 are the same calls on a store on a
 * Redis Cluster of 3 masters or of 1 (cluster.c runs them): ef_open is
 * given the cluster's redis:// address with a store name of the run's
 * own instead of the directory.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "edgefeed.h"

static int ef_open_(void **proc, const char *dir, const bs_cfg *cfg)
{
	ef_config c = {0};
	ef_store *st;

	c.flags = (cfg->durable ? 0 : EF_NOSYNC) |
		  (cfg->group_commit ? EF_GROUP_COMMIT : EF_NO_GROUP_COMMIT);
	c.feed_cap = cfg->feed_cap;
	c.map_size = (size_t)64 << 20;
	if (ef_open(&st, dir, &c) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: %s\n",
			ef_errmsg(NULL));
		return BS_ERR;
	}
	*proc = st;
	return 0;
}

/* On a cluster, EF_NOSYNC and group commit make no difference: each write
 * is as durable as the cluster's appendfsync (always, here), and Redis
 * batches the fsyncs of its clients itself. */
static int ef_open_cluster(void **proc, const char *dir, const bs_cfg *cfg,
			   int masters)
{
	char addr[2048];
	ef_config c = {0};
	ef_store *st;

	if (bcl_address(masters, dir, addr, sizeof(addr)) != 0)
		return BS_ERR;
	c.flags = cfg->durable ? 0 : EF_NOSYNC;
	c.feed_cap = cfg->feed_cap;
	if (ef_open(&st, addr, &c) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed on %d master%s: %s\n",
			masters, masters == 1 ? "" : "s", ef_errmsg(NULL));
		return BS_ERR;
	}
	*proc = st;
	return 0;
}

static int ef_open_redis(void **proc, const char *dir, const bs_cfg *cfg)
{
	return ef_open_cluster(proc, dir, cfg, 3);
}

static int ef_open_redis1(void **proc, const char *dir, const bs_cfg *cfg)
{
	return ef_open_cluster(proc, dir, cfg, 1);
}

static void ef_close_(void *proc)
{
	ef_close(proc);
}

static int ef_thread(void *proc, void **th)
{
	*th = proc;
	return 0;
}

static void ef_thread_done(void *th)
{
	(void)th;
}

static int ef_finalize_(void *th, const bs_rec *r)
{
	ef_receive rc = {r->owner, r->rid, r->created_ms, r->ip, r->payload};
	int rv = ef_finalize(th, &rc);

	if (rv == EF_OK)
		return BS_OK;
	if (rv == EF_EXISTS)
		return BS_EXISTS;
	fprintf(stderr, "edgefeed-bench: edgefeed: finalize: %s\n",
		ef_errmsg(th));
	return BS_ERR;
}

static int ef_load(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	/* no batch call in the public API: group commit batches the
	 * concurrent callers, a lone loader writes one by one */
	for (size_t i = 0; i < n; i++) {
		rcs[i] = ef_finalize_(th, &recs[i]);
		if (rcs[i] == BS_ERR)
			return BS_ERR;
	}
	return 0;
}

/* A receive of a load and where it came from. */
typedef struct load_ix {
	const char *owner;
	size_t i;
} load_ix;

/* Receives ix[at .. at+n-1]: one owner's, one ef_finalize_batch. */
typedef struct load_unit {
	size_t at, n;
} load_unit;

/* A chunk of a load on a cluster, shared by the threads that write it. */
typedef struct load_job {
	ef_store *st;
	const bs_rec *recs;
	const load_ix *ix;       /* the chunk sorted by owner */
	const load_unit *units;
	size_t nunits;
	int *rcs;                /* by position in recs */
	size_t next;             /* the next unit nobody took (atomic) */
	int failed;              /* (atomic) */
} load_job;

#define LOAD_THREADS 8

static int cmp_ix(const void *a, const void *b)
{
	const load_ix *x = a, *y = b;
	int c = strcmp(x->owner, y->owner);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int load_unit_run(load_job *j, const load_unit *u)
{
	ef_receive rs[EF_BATCH_MAX];
	int out[EF_BATCH_MAX];

	assert(u->n >= 1 && u->n <= EF_BATCH_MAX);
	for (size_t k = 0; k < u->n; k++) {
		const bs_rec *r = &j->recs[j->ix[u->at + k].i];
		rs[k] = (ef_receive){r->owner, r->rid, r->created_ms, r->ip,
				     r->payload};
	}
	if (ef_finalize_batch(j->st, rs, u->n, out) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: batch: %s\n",
			ef_errmsg(j->st));
		return BS_ERR;
	}
	for (size_t k = 0; k < u->n; k++) {
		int *rc = &j->rcs[j->ix[u->at + k].i];
		*rc = out[k] == EF_OK ? BS_OK : out[k] == EF_EXISTS ? BS_EXISTS
								    : BS_ERR;
		if (*rc == BS_ERR) {
			fprintf(stderr, "edgefeed-bench: edgefeed: batch: %s: "
				"%s\n", ef_strerror(out[k]), ef_errmsg(j->st));
			return BS_ERR;
		}
	}
	return 0;
}

static void *load_worker(void *p)
{
	load_job *j = p;

	for (;;) {
		size_t u = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		if (u >= j->nunits ||
		    __atomic_load_n(&j->failed, __ATOMIC_RELAXED))
			break;
		if (load_unit_run(j, &j->units[u]) != 0)
			__atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Cut the sorted chunk into units: runs of one owner, at most
 * EF_BATCH_MAX long. Returns their count. */
static size_t load_units(const load_ix *ix, size_t n, load_unit *units)
{
	size_t nu = 0;

	for (size_t i = 0; i < n;) {
		size_t m = 1;
		while (i + m < n && m < EF_BATCH_MAX &&
		       strcmp(ix[i + m].owner, ix[i].owner) == 0)
			m++;
		units[nu++] = (load_unit){i, m};
		i += m;
	}
	return nu;
}

/*
 * A load on a cluster: ef_finalize_batch commits a run of one owner's
 * receives as one transaction (one group, one MULTI/EXEC, one fsync), so
 * the chunk is sorted by owner (call order within one) and each owner's
 * run is one batch; LOAD_THREADS threads of this handle write the runs of
 * different owners at once, so that Redis syncs many in one fsync, as it
 * does for many clients. Not timed: it only fills the store.
 */
static int ef_load_cluster(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	load_job j = {th, recs, NULL, NULL, 0, rcs, 0, 0};
	load_ix *ix = malloc((n ? n : 1) * sizeof(*ix));
	load_unit *units = malloc((n ? n : 1) * sizeof(*units));
	pthread_t tid[LOAD_THREADS];
	int started = 0;

	if (!ix || !units) {
		free(ix);
		free(units);
		return BS_ERR;
	}
	for (size_t i = 0; i < n; i++)
		ix[i] = (load_ix){recs[i].owner, i};
	qsort(ix, n, sizeof(*ix), cmp_ix);
	j.ix = ix;
	j.units = units;
	j.nunits = load_units(ix, n, units);
	/* fewer threads if some cannot be made: this one works too */
	while (started < LOAD_THREADS - 1 &&
	       pthread_create(&tid[started], NULL, load_worker, &j) == 0)
		started++;
	load_worker(&j);
	for (int t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	free(ix);
	free(units);
	return j.failed ? BS_ERR : 0;
}

static int ef_page_(void *th, const char *owner, const char *cursor,
		    size_t limit, bs_entry_fn fn, void *ctx,
		    char next[BS_CURSOR_MAX], size_t *count)
{
	ef_page p;
	int rc = ef_feed_page(th, owner, cursor[0] ? cursor : NULL, limit, &p);

	next[0] = '\0';
	*count = 0;
	if (rc != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: page: %s\n",
			ef_errmsg(th));
		return BS_ERR;
	}
	for (size_t i = 0; fn && i < p.count; i++)
		fn(ctx, p.entries[i].reservation_id,
		   strlen(p.entries[i].reservation_id), p.entries[i].created_ms);
	*count = p.count;
	if (p.next_cursor)
		snprintf(next, BS_CURSOR_MAX, "%s", p.next_cursor);
	ef_page_free(&p);
	return 0;
}

static int ef_count(void *th, uint64_t *n)
{
	ef_stat_info si;

	if (ef_stat(th, &si) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: stat: %s\n",
			ef_errmsg(th));
		return BS_ERR;
	}
	*n = si.entries;
	return 0;
}

/*
 * The count of a cluster store: ef_stat cannot give it there today (it
 * reads meta:format inside every owner's group, which the cluster engine
 * refuses: "key 'meta:format' is outside the transaction's group"), so the
 * entries are counted by ef_check, which walks every group as well and
 * checks DESIGN.md's invariants on the way: a violation fails the run.
 */
static int ef_count_cluster(void *th, uint64_t *n)
{
	ef_check_stats cs;

	if (ef_check(th, NULL, &cs) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: check: %s\n",
			ef_errmsg(th));
		return BS_ERR;
	}
	if (cs.violations) {
		fprintf(stderr, "edgefeed-bench: edgefeed: check: %llu "
			"violations\n", (unsigned long long)cs.violations);
		return BS_ERR;
	}
	*n = cs.entries;
	return 0;
}

static int ef_compact_(void *proc, const char *dir)
{
	ef_compact_stats cs;

	(void)dir;
	if (ef_compact(proc, &cs) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: compact: %s\n",
			ef_errmsg(proc));
		return BS_ERR;
	}
	return 0;
}

const bsys_ops bsys_edgefeed = {
	"edgefeed", ef_open_, ef_close_, ef_thread, ef_thread_done,
	ef_finalize_, ef_load, ef_page_, ef_count, ef_compact_, 0,
};

/* No compaction on a cluster (the size scenario does not run them). */
const bsys_ops bsys_edgefeed_redis = {
	"edgefeed-redis", ef_open_redis, ef_close_, ef_thread, ef_thread_done,
	ef_finalize_, ef_load_cluster, ef_page_, ef_count_cluster, NULL, 3,
};

const bsys_ops bsys_edgefeed_redis1 = {
	"edgefeed-redis1", ef_open_redis1, ef_close_, ef_thread,
	ef_thread_done, ef_finalize_, ef_load_cluster, ef_page_,
	ef_count_cluster, NULL, 1,
};

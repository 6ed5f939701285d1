/*
 * run.h - one measured run of concurrent finalizations: P processes x T
 * threads against one store, with duplicate retries, a ledger per worker
 * and the check at the end. concurrent.c runs the matrix of the issue with
 * it; read.c uses it for the writers that run beside its readers.
 */
#ifndef EF_BENCH_RUN_H
#define EF_BENCH_RUN_H

#include "bench.h"

typedef struct run_cfg {
	const bsys_ops *sys;
	bs_cfg bc;
	int procs, threads;
	uint32_t owners;      /* owners 0..owners-1 */
	int hot;              /* every finalization to owner 0 */
	double seconds;       /* timed run; 0: count mode */
	uint32_t per_worker;  /* count mode: finalize calls per worker */
	double dup_frac;      /* share of calls that retry another worker's */
	uint64_t seed;
	uint64_t id_base;     /* or-ed into every new reservation id (bits
			       * 56-63: keeps the ids of runs on one store
			       * apart) */
} run_cfg;

typedef struct run_res {
	double ops_s;         /* finalize calls per second, all workers */
	double p50, p99, p999; /* latency of one call, microseconds */
	double secs;          /* from the start signal to the last call */
	uint64_t calls, exists;
	double workers_cpu_s; /* CPU seconds (user + system) of the worker
			       * processes, from fork to exit */
	led_result led;       /* the ledger check */
} run_res;

/* A store of @sys in @dir, made once before any worker forks. */
int run_prepare(const bsys_ops *sys, const bs_cfg *bc, const char *dir);

/*
 * Run @c against the store in @dir (made by run_prepare, maybe filled) and
 * check the ledger: the workers' acknowledgements plus @prior (what was
 * written to the store before, may be NULL; the run's acknowledgements are
 * added to it) against every owner in 0..@check_owners-1.
 * @during, if not NULL, is called in the parent while the workers run
 * (with @ctx); it returns when it is done, before the workers are waited
 * for. 0, or BS_ERR if the run could not be made.
 */
int run_conc(const run_cfg *c, const char *dir, led *prior,
	     uint32_t check_owners, void (*during)(void *ctx), void *ctx,
	     run_res *out);

#endif

/*
 * run.c - P processes x T threads finalizing against one store (run.h).
 *
 * The parent forks the workers before it opens anything, waits until every
 * thread has its handle, then starts them all at once. Each call is timed
 * and written to the worker's ledger. A share of the calls (dup_frac)
 * repeats a reservation that another worker (another process when there
 * is one) published just before its own call, so retries race the original
 * call or follow it, as a retried request lands on another worker. Each
 * process writes its ledger and timings to a file; the parent merges them
 * and reads the whole store back to check the ledger.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

#define MAXW 256    /* workers in one run */
#define RING 1024   /* reservations each worker publishes for retries */

/* Shared by the parent and every worker (MAP_SHARED). */
typedef struct shm {
	int ready;              /* threads holding their handle */
	int go;                 /* start signal */
	int failed;             /* a worker could not open */
	double t_start;         /* monotonic start time */
	uint64_t pubn[MAXW];    /* reservations published by each worker */
	uint64_t pub[MAXW][RING];
} shm;

typedef struct worker {
	const run_cfg *c;
	shm *sh;
	void *proc;
	int p, t;
	led l;
	lat lt;
	uint64_t calls, exists;
	double t_end;           /* monotonic time of its last call */
	int rc;
} worker;

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* A reservation another worker published, or 0. */
static uint64_t pick_retry(worker *w, uint64_t *rng)
{
	const run_cfg *c = w->c;
	int p = w->p, t = w->t, me = w->p * c->threads + w->t, o;
	uint64_t n, k;

	if (c->procs > 1) {
		p = (int)(wl_rand(rng) % (uint64_t)(c->procs - 1));
		p += p >= w->p;
		t = (int)(wl_rand(rng) % (uint64_t)c->threads);
	} else if (c->threads > 1) {
		t = (int)(wl_rand(rng) % (uint64_t)(c->threads - 1));
		t += t >= w->t;
	}
	o = p * c->threads + t;
	n = __atomic_load_n(&w->sh->pubn[o], __ATOMIC_ACQUIRE);
	if (!n || (o == me && n < 2))
		return 0;
	k = wl_rand(rng) % (n < RING ? n : RING);
	return __atomic_load_n(&w->sh->pub[o][(n - 1 - k) % RING],
			       __ATOMIC_RELAXED);
}

static int worker_go(worker *w, void *th)
{
	const run_cfg *c = w->c;
	int me = w->p * c->threads + w->t;
	uint64_t rng = wl_mix(c->seed ^ (uint64_t)(me + 1)) | 1, seq = 0;
	double end;
	wl_item it;

	__atomic_fetch_add(&w->sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&w->sh->go, __ATOMIC_ACQUIRE))
		nap_us(200);
	if (__atomic_load_n(&w->sh->failed, __ATOMIC_ACQUIRE))
		return BS_ERR;
	while (now_s() < w->sh->t_start) /* everybody starts together */
		;
	end = w->sh->t_start + c->seconds;
	while (c->seconds > 0 ? now_s() < end : w->calls < c->per_worker) {
		uint64_t id = 0;
		uint32_t owner;
		double t0;
		int rc;

		if ((double)(wl_rand(&rng) % 1000000) < c->dup_frac * 1e6)
			id = pick_retry(w, &rng);
		if (!id) {
			uint64_t *n = &w->sh->pubn[me];
			id = c->id_base | (uint64_t)(w->p + 1) << 48 |
			     (uint64_t)(w->t + 1) << 40 | seq++;
			w->sh->pub[me][*n % RING] = id;
			__atomic_store_n(n, *n + 1, __ATOMIC_RELEASE);
		}
		owner = c->hot ? 0 : (uint32_t)(wl_mix(id) % c->owners);
		wl_make(&it, id, owner, wall_ms());
		t0 = now_s();
		rc = c->sys->finalize(th, &it.rec);
		w->t_end = now_s();
		if (lat_add(&w->lt, (w->t_end - t0) * 1e6) ||
		    led_add(&w->l, id, owner, rc))
			return BS_ERR;
		w->calls++;
		w->exists += rc == BS_EXISTS;
	}
	return 0;
}

static void *worker_main(void *p)
{
	worker *w = p;
	void *th = NULL;

	if (w->c->sys->thread(w->proc, &th) != 0) {
		__atomic_store_n(&w->sh->failed, 1, __ATOMIC_RELEASE);
		__atomic_fetch_add(&w->sh->ready, 1, __ATOMIC_SEQ_CST);
		w->rc = BS_ERR;
		return NULL;
	}
	w->rc = worker_go(w, th);
	w->c->sys->thread_done(th);
	return NULL;
}

/* Write what the process's workers saw: per worker a header (calls,
 * exists, samples, t_end), the acks, the samples. */
static int dump(const char *path, worker *ws, int n)
{
	FILE *f = fopen(path, "wb");
	int ok = f != NULL;

	for (int i = 0; ok && i < n; i++) {
		uint64_t h[3] = {ws[i].calls, ws[i].exists, ws[i].lt.n};
		ok = fwrite(h, sizeof(h), 1, f) == 1 &&
		     fwrite(&ws[i].t_end, sizeof(double), 1, f) == 1 &&
		     fwrite(ws[i].l.a, sizeof(led_ack), ws[i].l.n, f) ==
			     ws[i].l.n &&
		     fwrite(ws[i].lt.us, sizeof(float), ws[i].lt.n, f) ==
			     ws[i].lt.n;
	}
	if (f && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : BS_ERR;
}

static int child(const run_cfg *c, shm *sh, const char *dir, int p,
		 const char *out)
{
	worker ws[MAXW];
	pthread_t tid[MAXW];
	void *proc = NULL;
	int rc = 0;

	memset(ws, 0, sizeof(ws));
	if (c->sys->open(&proc, dir, &c->bc) != 0) {
		__atomic_store_n(&sh->failed, 1, __ATOMIC_RELEASE);
		__atomic_fetch_add(&sh->ready, c->threads, __ATOMIC_SEQ_CST);
		return 1;
	}
	for (int t = 0; t < c->threads; t++) {
		ws[t].c = c;
		ws[t].sh = sh;
		ws[t].proc = proc;
		ws[t].p = p;
		ws[t].t = t;
		if (pthread_create(&tid[t], NULL, worker_main, &ws[t]) != 0) {
			__atomic_store_n(&sh->failed, 1, __ATOMIC_RELEASE);
			__atomic_fetch_add(&sh->ready, c->threads - t,
					   __ATOMIC_SEQ_CST);
			c->sys->close(proc);
			return 1; /* workers started are stopped by exit */
		}
	}
	for (int t = 0; t < c->threads; t++) {
		pthread_join(tid[t], NULL);
		rc |= ws[t].rc;
	}
	c->sys->close(proc);
	if (dump(out, ws, c->threads) != 0)
		rc = BS_ERR;
	for (int t = 0; t < c->threads; t++) {
		led_free(&ws[t].l);
		lat_free(&ws[t].lt);
	}
	return rc ? 1 : 0;
}

/* Read one process's file into the ledger and samples. */
static int collect(const char *path, int threads, led *l, lat *lt,
		   run_res *out, double *t_end)
{
	FILE *f = fopen(path, "rb");
	int ok = f != NULL;

	for (int i = 0; ok && i < threads; i++) {
		uint64_t h[3];
		double te;
		led_ack a;
		float s;

		ok = fread(h, sizeof(h), 1, f) == 1 &&
		     fread(&te, sizeof(te), 1, f) == 1;
		if (!ok)
			break;
		out->calls += h[0];
		out->exists += h[1];
		if (te > *t_end)
			*t_end = te;
		for (uint64_t k = 0; ok && k < h[0]; k++)
			ok = fread(&a, sizeof(a), 1, f) == 1 &&
			     led_add(l, a.rid, a.owner, a.rc) == 0;
		for (uint64_t k = 0; ok && k < h[2]; k++)
			ok = fread(&s, sizeof(s), 1, f) == 1 &&
			     lat_add(lt, s) == 0;
	}
	if (f)
		fclose(f);
	return ok ? 0 : BS_ERR;
}

int run_prepare(const bsys_ops *sys, const bs_cfg *bc, const char *dir)
{
	void *proc;

	if (sys->open(&proc, dir, bc) != 0)
		return BS_ERR;
	sys->close(proc);
	return 0;
}

/* Wait until every worker thread holds its handle (or failed). */
static int wait_ready(shm *sh, int n, pid_t *pids, int procs)
{
	for (int i = 0; i < 600000; i++) {
		if (__atomic_load_n(&sh->ready, __ATOMIC_SEQ_CST) >= n)
			return __atomic_load_n(&sh->failed, __ATOMIC_SEQ_CST)
				       ? BS_ERR
				       : 0;
		for (int p = 0; p < procs; p++)
			if (waitpid(pids[p], NULL, WNOHANG) == pids[p]) {
				pids[p] = -1;
				return BS_ERR;
			}
		nap_us(100);
	}
	return BS_ERR;
}

static int verify(const run_cfg *c, const char *dir, led *l,
		  uint32_t owners, run_res *out)
{
	void *proc, *th;
	int rc;

	if (c->sys->open(&proc, dir, &c->bc) != 0)
		return BS_ERR;
	rc = c->sys->thread(proc, &th);
	if (rc == 0) {
		rc = led_verify(c->sys, th, l, owners, &out->led);
		c->sys->thread_done(th);
	}
	c->sys->close(proc);
	return rc;
}

/* Fork the workers; a failed fork marks the run failed (the workers
 * already forked then see it and stop). */
static int spawn(const run_cfg *c, shm *sh, const char *dir, pid_t *pids)
{
	char path[4200];

	fflush(NULL);
	for (int p = 0; p < c->procs; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			snprintf(path, sizeof(path), "%s.ledger-%d", dir, p);
			_exit(child(c, sh, dir, p, path));
		}
		if (pids[p] < 0) {
			for (int q = p; q < c->procs; q++)
				pids[q] = -1;
			__atomic_store_n(&sh->failed, 1, __ATOMIC_RELEASE);
			return BS_ERR;
		}
	}
	return 0;
}

/* Wait for the workers, then read (and remove) their files. */
static int gather(const run_cfg *c, const char *dir, pid_t *pids, led *l,
		  lat *lt, run_res *out, double *t_end)
{
	char path[4200];
	int rc = 0;

	for (int p = 0; p < c->procs; p++) {
		int st = 0;
		if (pids[p] > 0 &&
		    (waitpid(pids[p], &st, 0) != pids[p] || !WIFEXITED(st) ||
		     WEXITSTATUS(st) != 0))
			rc = BS_ERR;
	}
	for (int p = 0; p < c->procs; p++) {
		snprintf(path, sizeof(path), "%s.ledger-%d", dir, p);
		if (rc == 0)
			rc = collect(path, c->threads, l, lt, out, t_end);
		unlink(path);
	}
	return rc;
}

/* CPU seconds of the children waited for so far. */
static double children_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int run_conc(const run_cfg *c, const char *dir, led *prior,
	     uint32_t check_owners, void (*during)(void *ctx), void *ctx,
	     run_res *out)
{
	const int n = c->procs * c->threads;
	pid_t pids[MAXW];
	led l = {0}, *L = prior ? prior : &l;
	lat lt = {0};
	double t_end = 0, cpu0 = children_cpu_s();
	int rc;
	shm *sh;

	memset(out, 0, sizeof(*out));
	if (n < 1 || n > MAXW || c->procs > MAXW)
		return BS_ERR;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return BS_ERR;
	rc = spawn(c, sh, dir, pids);
	if (rc == 0)
		rc = wait_ready(sh, n, pids, c->procs);
	if (rc != 0)
		__atomic_store_n(&sh->failed, 1, __ATOMIC_RELEASE);
	sh->t_start = now_s() + 0.005;
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	if (rc == 0 && during)
		during(ctx);
	if (gather(c, dir, pids, L, &lt, out, &t_end) != 0)
		rc = BS_ERR;
	out->workers_cpu_s = children_cpu_s() - cpu0;
	if (rc == 0) {
		out->secs = t_end - sh->t_start;
		out->ops_s = out->secs > 0 ? (double)out->calls / out->secs : 0;
		out->p50 = lat_pct(&lt, 50);
		out->p99 = lat_pct(&lt, 99);
		out->p999 = lat_pct(&lt, 99.9);
		rc = verify(c, dir, L, check_owners, out);
	}
	if (rc != 0)
		fprintf(stderr, "edgefeed-bench: %s: the run failed (%d x %d)\n",
			c->sys->name, c->procs, c->threads);
	munmap(sh, sizeof(*sh));
	led_free(&l);
	lat_free(&lt);
	return rc;
}

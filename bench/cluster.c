/*
 * cluster.c - the Redis Clusters that the cluster systems (edgefeed-redis,
 * edgefeed-redis1) run on (bench.h: bcl_*).
 *
 * A scenario that selects a cluster system asks for its cluster first
 * (bcl_up); the first time, scripts/redis-cluster.sh starts it in a new
 * directory under --dir, on the same file system as the other systems'
 * stores: MASTERS masters, no replicas, AOF with appendfsync always, so a
 * write is acknowledged only once its master has fsynced it. It then
 * serves every run of the process. A run's store has a name of its own
 * (store=), made from the process's nonce and the run's store directory,
 * so that the run's workers, forked with that directory, all find it and
 * no run ever sees another's entries; after the run the cluster is emptied
 * (bcl_drop) so that the next one starts as empty as a new directory.
 * At the end, at exit, and on SIGINT, SIGTERM or SIGHUP, the process that
 * started the clusters stops them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif

#define BCL_MAX 4          /* clusters of distinct sizes in one process */
#define BCL_NODES 16       /* nodes of one cluster */
#define BCL_ADDR_MAX 1024
#define FLUSH_WAIT_S 60.0  /* longest wait for an AOF rewrite */

typedef struct bcl {
	int masters;             /* its size; 0: a free slot */
	int state;               /* 0: not tried; 1: up; -1: unusable */
	char *dir;               /* its nodes' files (dir_new) */
	char addr[BCL_ADDR_MAX]; /* redis://127.0.0.1:PORT,... */
	int ports[BCL_NODES];
	pid_t pids[BCL_NODES];   /* its redis-server processes (the
				  * signal handler kills these) */
	int nodes;
} bcl;

static bcl clusters[BCL_MAX];
static pid_t owner;            /* the process that starts and stops them */
static char nonce[48];         /* in every store name of this process */
static char version[32];
static int hooked;             /* atexit and signal handlers installed */
static int quick_said;         /* said which cluster --quick leaves out */

void bcl_init(void)
{
	owner = getpid();
	snprintf(nonce, sizeof(nonce), "%ld-%" PRIx64, (long)owner,
		 (uint64_t)wall_ms());
}

/* ---- helpers ------------------------------------------------------------ */

/* The path of @name on $PATH, into @out; 0, or -1 if none is executable. */
static int which(const char *name, char *out, size_t cap)
{
	const char *p = getenv("PATH");

	if (!p || !*p)
		p = "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		int w = snprintf(out, cap, "%.*s/%s", (int)n, p, name);
		if (n && w > 0 && (size_t)w < cap && access(out, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -1;
}

/* Run @argv (argv[0] a path) with its stdout into @out (NUL-terminated,
 * cut to @cap - 1; NULL: dropped) and its stderr ours. 0 if it exited 0. */
static int run_argv(char *const argv[], char *out, size_t cap)
{
	char sink[512], *buf = out ? out : sink;
	size_t len = out ? cap : sizeof(sink), n = 0;
	int fd[2], st = 0;
	pid_t pid;

	if (pipe2(fd, O_CLOEXEC) != 0) {
		fprintf(stderr, "edgefeed-bench: pipe: %s\n", strerror(errno));
		return BS_ERR;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (dup2(fd[1], STDOUT_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "edgefeed-bench: cannot run '%s': %s\n",
			argv[0], strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		fprintf(stderr, "edgefeed-bench: fork: %s\n", strerror(errno));
		close(fd[0]);
		return BS_ERR;
	}
	for (;;) { /* read to the end, keeping what fits */
		char tmp[512];
		ssize_t r = read(fd[0], n + 1 < len ? buf + n : tmp,
				 n + 1 < len ? len - 1 - n : sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n + 1 < len)
			n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return BS_ERR;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : BS_ERR;
}

/* scripts/redis-cluster.sh VERB DIR [MASTERS 0]; its stdout into @out. */
static int script(const char *verb, const bcl *c, char *out, size_t cap)
{
	const char *root = getenv("EF_SOURCE_ROOT");
	char path[4096], m[16];
	char *argv[] = {path, (char *)verb, c->dir, m, "0", NULL};

	snprintf(path, sizeof(path), "%s/scripts/redis-cluster.sh",
		 root && *root ? root : BENCH_SOURCE_ROOT);
	snprintf(m, sizeof(m), "%d", c->masters);
	if (strcmp(verb, "start") != 0)
		argv[3] = NULL;
	return run_argv(argv, out, cap);
}

const char *bcl_redis_version(void)
{
	char path[4096], out[256], *v;
	char *argv[] = {path, "--version", NULL};

	if (version[0])
		return version;
	snprintf(version, sizeof(version), "unknown");
	if (which("redis-server", path, sizeof(path)) == 0 &&
	    run_argv(argv, out, sizeof(out)) == 0 &&
	    (v = strstr(out, " v=")) != NULL) {
		v += 3;
		snprintf(version, sizeof(version), "%.*s",
			 (int)strcspn(v, " \n"), v);
	}
	return version;
}

/* ---- stopping ----------------------------------------------------------- */

/* Async-signal-safe: kill() and raise() only. */
static void on_signal(int sig)
{
	if (getpid() == owner)
		for (int i = 0; i < BCL_MAX; i++)
			for (int k = 0; k < clusters[i].nodes; k++)
				if (clusters[i].pids[k] > 0)
					kill(clusters[i].pids[k], SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void hook(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	if (hooked)
		return;
	hooked = 1;
	if (atexit(bcl_stop_all) != 0)
		fprintf(stderr, "edgefeed-bench: atexit failed: the clusters "
			"are stopped at the end only\n");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) != 0)
			fprintf(stderr, "edgefeed-bench: sigaction: %s\n",
				strerror(errno));
}

static void stop_one(bcl *c)
{
	if (c->state != 1)
		return;
	if (script("stop", c, NULL, 0) != 0)
		fprintf(stderr, "edgefeed-bench: redis-cluster.sh stop %s "
			"failed; its nodes may still run\n", c->dir);
	else
		fprintf(stderr, "edgefeed-bench: stopped the cluster of %d "
			"master%s\n", c->masters, c->masters == 1 ? "" : "s");
	c->state = -1;
	c->nodes = 0;
	dir_remove(c->dir);
	free(c->dir);
	c->dir = NULL;
}

void bcl_stop_all(void)
{
	if (getpid() != owner) /* a forked worker leaving by exit() */
		return;
	for (int i = 0; i < BCL_MAX; i++)
		stop_one(&clusters[i]);
}

/* ---- starting ----------------------------------------------------------- */

/* Ports and pids of the nodes of @c, from its address and pid files. */
static int nodes_of(bcl *c)
{
	const char *p = c->addr + strlen("redis://");

	c->nodes = 0;
	while (*p && c->nodes < BCL_NODES) {
		const char *colon = strchr(p, ':');
		char path[4200];
		FILE *f;
		long pid = 0;

		if (!colon)
			return BS_ERR;
		c->ports[c->nodes] = atoi(colon + 1);
		snprintf(path, sizeof(path), "%s/%d/redis.pid", c->dir,
			 c->ports[c->nodes]);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
			fprintf(stderr, "edgefeed-bench: no pid in %s\n", path);
			if (f)
				fclose(f);
			return BS_ERR;
		}
		fclose(f);
		c->pids[c->nodes++] = (pid_t)pid;
		p = colon + strcspn(colon, ",");
		p += *p == ',';
	}
	return c->nodes == c->masters ? 0 : BS_ERR;
}

static int start(bcl *c, const bopts *o)
{
	double t0 = now_s();
	int rc;

	if (getpid() != owner) {
		fprintf(stderr, "edgefeed-bench: a cluster is started by the "
			"main process only\n");
		return BS_ERR;
	}
	c->dir = dir_new(o->dir, "redis");
	if (!c->dir)
		return BS_ERR;
	fprintf(stderr, "edgefeed-bench: starting a Redis Cluster of %d "
		"master%s (no replicas, appendfsync always) in %s\n",
		c->masters, c->masters == 1 ? "" : "s", c->dir);
	hook();
	rc = script("start", c, c->addr, sizeof(c->addr));
	c->addr[strcspn(c->addr, "\n")] = '\0';
	if (rc == 0 && strncmp(c->addr, "redis://", 8) != 0)
		rc = BS_ERR;
	c->state = 1; /* from here on, stop_one stops what the script made */
	if (rc == 0)
		rc = nodes_of(c);
	if (rc != 0) {
		fprintf(stderr, "edgefeed-bench: the cluster of %d master%s "
			"did not start (see above)\n", c->masters,
			c->masters == 1 ? "" : "s");
		stop_one(c);
		return BS_ERR;
	}
	fprintf(stderr, "edgefeed-bench: %s up in %.1f s (redis-server %s)\n",
		c->addr, now_s() - t0, bcl_redis_version());
	return 0;
}

static bcl *find(int masters, int add)
{
	for (int i = 0; i < BCL_MAX; i++)
		if (clusters[i].masters == masters)
			return &clusters[i];
	for (int i = 0; add && i < BCL_MAX; i++)
		if (!clusters[i].masters) {
			clusters[i].masters = masters;
			return &clusters[i];
		}
	return NULL;
}

int bcl_up(bopts *o, const bsys_ops *sys)
{
	int named = o->systems && sys_selected(o, sys->name);
	char path[4096];
	bcl *c;

	if (!sys->masters)
		return 1;
	/* --quick (the test suite's smoke run) starts one cluster, not one
	 * per size: the 3 masters route across nodes, 1 adds no code path */
	if (o->quick && !named && sys != &bsys_edgefeed_redis) {
		if (!quick_said)
			fprintf(stderr, "edgefeed-bench: %s: not in --quick "
				"unless --systems names it\n", sys->name);
		quick_said = 1;
		return 0;
	}
	c = find(sys->masters, 1);
	if (!c)
		return 0;
	if (c->state)
		return c->state == 1;
	c->state = -1;
	if (which("redis-server", path, sizeof(path)) != 0 ||
	    which("redis-cli", path, sizeof(path)) != 0) {
		fprintf(stderr, "edgefeed-bench: %s skipped: redis-server or "
			"redis-cli not found on PATH (scripts/deps.sh installs "
			"them)\n", sys->name);
		if (named)
			o->failures++;
		return 0;
	}
	if (start(c, o) != 0) {
		fprintf(stderr, "edgefeed-bench: %s skipped: no cluster\n",
			sys->name);
		o->failures++;
		return 0;
	}
	return 1;
}

/* FNV-1a, 64 bits: a store name from a directory. */
static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

int bcl_address(int masters, const char *dir, char *out, size_t cap)
{
	bcl *c = find(masters, 0);
	int n;

	if (!c || c->state != 1) {
		fprintf(stderr, "edgefeed-bench: no cluster of %d master%s is "
			"running\n", masters, masters == 1 ? "" : "s");
		return BS_ERR;
	}
	n = snprintf(out, cap, "%s?store=efb-%s-%016" PRIx64, c->addr, nonce,
		     fnv(dir));
	if (n < 0 || (size_t)n >= cap) {
		fprintf(stderr, "edgefeed-bench: store address too long\n");
		return BS_ERR;
	}
	return 0;
}

/* ---- measuring ---------------------------------------------------------- */

/* utime + stime of process @pid, in clock ticks; -1 if unknown. */
static long long proc_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the name may hold spaces and parentheses: fields follow the last
	 * ')'; utime and stime are fields 14 and 15 (state is 3) */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			 "%*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

int bcl_cpu(const bsys_ops *sys, double *out)
{
	bcl *c = sys->masters ? find(sys->masters, 0) : NULL;
	double tick = (double)sysconf(_SC_CLK_TCK);
	long long sum = 0;

	if (!c || c->state != 1 || tick <= 0)
		return BS_ERR;
	for (int k = 0; k < c->nodes; k++) {
		long long t = proc_ticks(c->pids[k]);
		if (t < 0)
			return BS_ERR;
		sum += t;
	}
	*out = (double)sum / tick;
	return 0;
}

/* ---- emptying ----------------------------------------------------------- */

/* Run @cmd; 0 if it answers the status @want (any status if NULL). */
static int cmd_ok(redisContext *r, const char *cmd, const char *want)
{
	redisReply *rep = redisCommand(r, cmd);
	int ok = rep && rep->type == REDIS_REPLY_STATUS &&
		 (!want || strcmp(rep->str, want) == 0);

	if (!ok)
		fprintf(stderr, "edgefeed-bench: %s: %s\n", cmd,
			rep && rep->str ? rep->str : r->errstr);
	freeReplyObject(rep);
	return ok ? 0 : BS_ERR;
}

/* Is an AOF rewrite running or due on @r? 1, 0, or BS_ERR. */
static int rewriting(redisContext *r)
{
	redisReply *rep = redisCommand(r, "INFO persistence");
	int busy = BS_ERR;

	if (rep && rep->type == REDIS_REPLY_STRING)
		busy = !!strstr(rep->str, "aof_rewrite_in_progress:1") ||
		       !!strstr(rep->str, "aof_rewrite_scheduled:1");
	else
		fprintf(stderr, "edgefeed-bench: INFO persistence: %s\n",
			rep && rep->str ? rep->str : r->errstr);
	freeReplyObject(rep);
	return busy;
}

/* Empty one node and rewrite its AOF (so that it does not grow with
 * every run and rewrite itself in the middle of a later one). */
static int flush_node(int port)
{
	struct timeval tv = {10, 0};
	struct timespec nap = {0, 20 * 1000000};
	redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);
	double end = now_s() + FLUSH_WAIT_S;
	redisReply *rep;
	int rc = BS_ERR, busy;

	if (!r || r->err) {
		fprintf(stderr, "edgefeed-bench: node %d: %s\n", port,
			r ? r->errstr : "out of memory");
		goto out;
	}
	if (redisSetTimeout(r, tv) != REDIS_OK ||
	    cmd_ok(r, "FLUSHALL", "OK") != 0)
		goto out;
	/* its error, a rewrite already running or scheduled, will do too */
	rep = redisCommand(r, "BGREWRITEAOF");
	if (!rep) {
		fprintf(stderr, "edgefeed-bench: node %d: BGREWRITEAOF: %s\n",
			port, r->errstr);
		goto out;
	}
	freeReplyObject(rep);
	while ((busy = rewriting(r)) == 1 && now_s() < end)
		nanosleep(&nap, NULL);
	rc = busy == 0 ? 0 : BS_ERR;
	if (busy == 1)
		fprintf(stderr, "edgefeed-bench: node %d: AOF rewrite still "
			"running after %.0f s\n", port, FLUSH_WAIT_S);
out:
	if (r)
		redisFree(r);
	return rc;
}

void bcl_drop(bopts *o, const bsys_ops *sys)
{
	bcl *c;

	if (!sys->masters)
		return;
	c = find(sys->masters, 0);
	if (!c || c->state != 1)
		return;
	for (int k = 0; k < c->nodes; k++)
		if (flush_node(c->ports[k]) != 0) {
			fprintf(stderr, "edgefeed-bench: %s: the cluster could "
				"not be emptied after a run\n", sys->name);
			o->failures++;
			return;
		}
}

/*
 * edgefeed-bench - concurrent finalizations and page reads: edgefeed
 * against raw LMDB, the legacy JSON arrays it replaces and SQLite, and
 * edgefeed on a Redis Cluster that the benchmark starts itself, each run
 * checked with a ledger of acknowledged finalizations.
 *
 *   edgefeed-bench [OPTIONS] [concurrent|scale|read|size|all ...]
 *
 * Results: one JSON object per line on stdout (every configuration's runs
 * and their median); the tables and progress on stderr. Exit 0 when every
 * ledger that must be clean is (legacy-lock is expected to lose entries
 * and only counted), 1 otherwise, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench-version.h"

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: edgefeed-bench [OPTIONS] [concurrent|scale|read|size|"
		"all ...]\n"
		"  --quick             small sizes, fixed call counts: checks "
		"the ledgers only\n"
		"  --dir DIR           where the stores are made ($TMPDIR or "
		"/tmp)\n"
		"  --reps N            runs of each configuration (3; --quick: "
		"1)\n"
		"  --seconds S         length of a timed run (1.5)\n"
		"  --systems A,B       only these (edgefeed, edgefeed-gc, "
		"lmdb-raw,\n"
		"                      lmdb-raw+unread, sqlite, sqlite-best "
		"(read),\n"
		"                      legacy-txn, legacy-lock, "
		"edgefeed-redis,\n"
		"                      edgefeed-redis1)\n"
		"                      edgefeed-redis(1): edgefeed on a Redis "
		"Cluster of 3 (1)\n"
		"                      masters, no replicas, appendfsync "
		"always, started\n"
		"                      under --dir by "
		"scripts/redis-cluster.sh; concurrent\n"
		"                      (durable only) and read; skipped when "
		"redis-server\n"
		"                      is missing (a failure if named "
		"here)\n"
		"  --writers PxT,...   concurrent: processes x threads "
		"(default: the matrix)\n"
		"  --dist uniform|hot  concurrent: one owner distribution only\n"
		"  --sync durable|nosync  concurrent: one durability only\n"
		"  --owners N          concurrent: owners of the uniform "
		"distribution (1000)\n"
		"  --dup F             concurrent: share of duplicate retries "
		"(0.1)\n"
		"  --quick-n N         --quick: calls per worker (100)\n"
		"  --scale-max N       scale: largest store, entries (1000000)\n"
		"  --size-entries N    size: entries written (100000)\n"
		"  --version, --help\n");
	return rc;
}

int sys_selected(const bopts *o, const char *name)
{
	const char *p = o->systems;
	size_t n = strlen(name);

	if (!p)
		return 1;
	while (*p) {
		size_t m = strcspn(p, ",");
		if (m == n && !strncmp(p, name, n))
			return 1;
		p += m + (p[m] == ',');
	}
	return 0;
}

static int pick(const char *arg, const char *a, const char *b, int *out)
{
	if (!strcmp(arg, a))
		*out = 1;
	else if (!strcmp(arg, b))
		*out = 2;
	else
		return -1;
	return 0;
}

static int parse(int argc, char **argv, bopts *o, int *which)
{
	static const struct option lo[] = {
		{"quick", no_argument, 0, 'q'},
		{"dir", required_argument, 0, 'd'},
		{"reps", required_argument, 0, 'r'},
		{"seconds", required_argument, 0, 's'},
		{"systems", required_argument, 0, 'S'},
		{"writers", required_argument, 0, 'w'},
		{"dist", required_argument, 0, 'D'},
		{"sync", required_argument, 0, 'y'},
		{"owners", required_argument, 0, 'o'},
		{"dup", required_argument, 0, 'u'},
		{"quick-n", required_argument, 0, 'n'},
		{"scale-max", required_argument, 0, 'm'},
		{"size-entries", required_argument, 0, 'z'},
		{"version", no_argument, 0, 'V'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	int c, reps = 0;
	long long scale = 0, size = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'q': o->quick = 1; break;
		case 'd': o->dir = optarg; break;
		case 'r': reps = atoi(optarg); break;
		case 's': o->seconds = atof(optarg); break;
		case 'S': o->systems = optarg; break;
		case 'w': o->writers = optarg; break;
		case 'D':
			if (pick(optarg, "uniform", "hot", &o->dist))
				return 2;
			break;
		case 'y':
			if (pick(optarg, "durable", "nosync", &o->sync))
				return 2;
			break;
		case 'o': o->owners = (uint32_t)atol(optarg); break;
		case 'u': o->dup_frac = atof(optarg); break;
		case 'n': o->quick_n = (uint32_t)atol(optarg); break;
		case 'm': scale = atoll(optarg); break;
		case 'z': size = atoll(optarg); break;
		case 'V': printf("edgefeed-bench %s\n", BENCH_COMMIT); exit(0);
		case 'h': exit(usage(0));
		default: return 2;
		}
	}
	o->reps = reps > 0 ? reps : o->quick ? 1 : 3;
	o->scale_max = scale > 0 ? (uint64_t)scale : o->quick ? 10000 : 1000000;
	o->size_entries = size > 0 ? (uint64_t)size : o->quick ? 2000 : 100000;
	if (!o->quick_n)
		o->quick_n = 100;
	if (o->seconds <= 0 || o->dup_frac < 0 || o->dup_frac > 1 ||
	    reps < 0 || reps > 16)
		return 2;
	for (int i = optind; i < argc; i++) {
		static const char *names[] = {"concurrent", "scale", "read",
					      "size", "all"};
		int k = 0;
		while (k < 5 && strcmp(argv[i], names[k]))
			k++;
		if (k == 5)
			return 2;
		*which |= k == 4 ? 15 : 1 << k;
	}
	if (!*which)
		*which = 15;
	return 0;
}

int main(int argc, char **argv)
{
	bopts o;
	int which = 0, rc;
	double t0 = now_s();

	memset(&o, 0, sizeof(o));
	o.seconds = 1.5;
	o.dup_frac = 0.1;
	o.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR")
						      : "/tmp";
	if ((rc = parse(argc, argv, &o, &which)) != 0) {
		fprintf(stderr, "edgefeed-bench: bad usage (see --help)\n");
		return usage(rc);
	}
	machine_init(o.dir);
	bcl_init();
	fprintf(stderr, "edgefeed-bench %s: stores in %s (%s)%s\n",
		BENCH_COMMIT, o.dir, machine_fs(),
		o.quick ? ", quick: ledgers only" : "");
	if (which & 1)
		scen_concurrent(&o);
	if (which & 2)
		scen_scale(&o);
	if (which & 4)
		scen_read(&o);
	if (which & 8)
		scen_size(&o);
	bcl_stop_all();
	fprintf(stderr, "\nedgefeed-bench: %.0f s, %d check%s failed\n",
		now_s() - t0, o.failures, o.failures == 1 ? "" : "s");
	return o.failures ? 1 : 0;
}

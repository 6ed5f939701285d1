/*
 * size-model.c - what LMDB needs to hold the key schema of DESIGN.md, with
 * values of chosen sizes, in the insert order of `edgefeed-bench size`.
 *
 * Issue 12 asks for at most 1.5x SQLite's bytes per entry in a live store
 * and 1.0x after compaction. This model says where that can and cannot
 * hold without running edgefeed: it writes the same keys edgefeed writes
 * (entry, uniqueness index, unread marker; the same owners, reservation
 * ids and creation times as the size scenario), each value a given number
 * of filler bytes, one transaction per entry as a finalize does, then
 * copies every pair in key order with MDB_APPEND (what a compaction can at
 * best reach: full pages). It prints, per configuration, the bytes per
 * entry of the live and of the packed file, the bytes each entry's keys
 * and values take (the part no page layout can remove) and the live pages'
 * fill.
 *
 * Usage: size-model DIR [ENTRIES [OWNERS]]   (DIR: an empty scratch folder)
 */
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NODE_COST (8 + 2) /* LMDB leaf node header + its slot in the page */
#define PAGE 4096
#define PAGE_HDR 16

typedef struct model {
	const char *what;   /* the configuration, as the table prints it */
	size_t rec;         /* entry record bytes */
	size_t ival;        /* index and marker value bytes */
	int kinds;          /* 1 entry, 2 index, 4 unread marker */
	int ascending;      /* entry keys sort oldest first (not the schema's) */
	int binary;         /* not the schema: 1-byte prefixes, a 4-byte owner
			     * number, an 8-byte binary sort */
} model;

/* Filled in after measuring today's records (docs/BENCHMARKS.md, issue 12):
 * version 2 is 197 bytes in the size scenario (created_ms 8, a 50-byte
 * sealed IP, the reservation id again with its length, a 109-byte payload
 * with its 4-byte length); version 3 as issue 12 sketches it drops the id
 * and created_ms (both in the key) and the payload length shrinks to a
 * varint: 164; a compact payload (field names by number) another ~40. */
static const model models[] = {
	{.what = "schema today, record v2 (197 B)", .rec = 197, .ival = 13,
	 .kinds = 7},
	{.what = "record v3 (164 B)", .rec = 164, .ival = 13, .kinds = 7},
	{.what = "record v3 + compact payload (124 B)", .rec = 124, .ival = 13,
	 .kinds = 7},
	{.what = "keys only (empty values)", .kinds = 7},
	{.what = "entry keys only, record v2", .rec = 197, .kinds = 1},
	{.what = "index keys only", .ival = 13, .kinds = 2},
	{.what = "marker keys only", .ival = 13, .kinds = 4},
	{.what = "record v3, entry keys oldest first (not the schema)",
	 .rec = 164, .ival = 13, .kinds = 7, .ascending = 1},
	{.what = "record v3, binary keys (not the schema)", .rec = 164,
	 .ival = 8, .kinds = 7, .binary = 1},
	{.what = "record v3 + compact payload, binary keys (not the schema)",
	 .rec = 124, .ival = 8, .kinds = 7, .binary = 1},
};

static uint64_t mix(uint64_t x) /* as bench/util.c's wl_mix */
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int check(int rc, const char *what)
{
	if (rc != MDB_SUCCESS)
		fprintf(stderr, "size-model: %s: %s\n", what, mdb_strerror(rc));
	return rc;
}

static int env_new(const char *dir, MDB_env **env)
{
	int rc = check(mdb_env_create(env), "mdb_env_create");

	if (rc == 0)
		rc = check(mdb_env_set_mapsize(*env, (size_t)8 << 30),
			   "mapsize");
	if (rc == 0)
		rc = check(mdb_env_open(*env, dir, MDB_NOSYNC, 0600), dir);
	if (rc != 0 && *env) {
		mdb_env_close(*env);
		*env = NULL;
	}
	return rc;
}

typedef struct tally {
	double keys, vals, nodes; /* bytes over all entries */
} tally;

static int put(MDB_txn *t, MDB_dbi d, const char *k, int klen, size_t vlen,
	       tally *ty)
{
	static char filler[1024];
	MDB_val K = {(size_t)klen, (void *)k}, V = {vlen, filler};

	ty->keys += klen;
	ty->vals += (double)vlen;
	ty->nodes += NODE_COST;
	return check(mdb_put(t, d, &K, &V, 0), "mdb_put");
}

/* The schema's keys (DESIGN.md), text; the sort oldest first if asked. */
static int text_keys(MDB_txn *t, MDB_dbi d, const model *m, uint32_t o,
		     int64_t sort, const char *rid, tally *ty)
{
	char owner[64], k[512];
	int rc = 0;

	snprintf(owner, sizeof(owner), "user%07" PRIu32 "@example.com", o);
	if (m->kinds & 1)
		rc = put(t, d, k, snprintf(k, sizeof(k),
			 "recentReceive:%s:%013" PRId64 ":%s", owner, sort,
			 rid), m->rec, ty);
	if (rc == 0 && (m->kinds & 2))
		rc = put(t, d, k, snprintf(k, sizeof(k), "receiveIndex:%s:%s",
			 owner, rid), m->ival, ty);
	if (rc == 0 && (m->kinds & 4))
		rc = put(t, d, k, snprintf(k, sizeof(k), "unread:%s:%s", owner,
			 rid), m->ival, ty);
	return rc;
}

/* Not the schema: a 1-byte prefix, the owner's number (4 bytes) and the
 * sort (8 bytes) big-endian, so that they order as the text does. */
static int binary_keys(MDB_txn *t, MDB_dbi d, const model *m, uint32_t o,
		       int64_t sort, const char *rid, tally *ty)
{
	char k[1 + 4 + 8 + 32];
	size_t rl = strlen(rid);
	int rc;

	for (int j = 0; j < 4; j++)
		k[1 + j] = (char)(o >> (24 - 8 * j));
	for (int j = 0; j < 8; j++)
		k[5 + j] = (char)((uint64_t)sort >> (56 - 8 * j));
	memcpy(k + 13, rid, rl);
	k[0] = 'r';
	rc = put(t, d, k, (int)(13 + rl), m->rec, ty);
	memmove(k + 5, rid, rl);
	k[0] = 'i';
	if (rc == 0)
		rc = put(t, d, k, (int)(5 + rl), m->ival, ty);
	k[0] = 'u';
	if (rc == 0)
		rc = put(t, d, k, (int)(5 + rl), m->ival, ty);
	return rc;
}

/* One finalize's keys, in one transaction. */
static int one(MDB_env *env, const model *m, uint64_t n, uint64_t i,
	       uint32_t owners, tally *ty)
{
	uint64_t id = (uint64_t)1 << 60 | i;
	uint32_t o = (uint32_t)(mix(id) % owners);
	int64_t created = 1796000000000LL - (int64_t)(n - i) * 10;
	int64_t sort = m->ascending ? created : 9999999999999LL - created;
	char rid[32];
	MDB_txn *t;
	MDB_dbi d;
	int rc;

	snprintf(rid, sizeof(rid), "rsv-%016" PRIx64, id);
	rc = check(mdb_txn_begin(env, NULL, 0, &t), "mdb_txn_begin");
	if (rc)
		return rc;
	rc = check(mdb_dbi_open(t, NULL, 0, &d), "mdb_dbi_open");
	if (rc == 0)
		rc = (m->binary ? binary_keys : text_keys)(t, d, m, o, sort,
							   rid, ty);
	if (rc == 0)
		return check(mdb_txn_commit(t), "mdb_txn_commit");
	mdb_txn_abort(t);
	return rc;
}

/* Every pair of @from into the empty @to, in order, with MDB_APPEND. */
static int pack(MDB_env *from, MDB_env *to)
{
	MDB_txn *rt = NULL, *wt = NULL;
	MDB_cursor *c = NULL;
	MDB_dbi rd, wd;
	MDB_val k, v;
	int rc = check(mdb_txn_begin(from, NULL, MDB_RDONLY, &rt), "read txn");

	if (rc == 0)
		rc = check(mdb_txn_begin(to, NULL, 0, &wt), "write txn");
	if (rc == 0)
		rc = check(mdb_dbi_open(rt, NULL, 0, &rd), "dbi");
	if (rc == 0)
		rc = check(mdb_dbi_open(wt, NULL, 0, &wd), "dbi");
	if (rc == 0)
		rc = check(mdb_cursor_open(rt, rd, &c), "cursor");
	for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
		rc = mdb_cursor_get(c, &k, &v, op);
		if (rc == MDB_NOTFOUND) {
			rc = check(mdb_txn_commit(wt), "commit");
			wt = NULL;
			break;
		}
		if (check(rc, "mdb_cursor_get") == 0)
			rc = check(mdb_put(wt, wd, &k, &v, MDB_APPEND), "append");
	}
	if (c)
		mdb_cursor_close(c);
	if (wt)
		mdb_txn_abort(wt);
	if (rt)
		mdb_txn_abort(rt);
	return rc;
}

static double pages(MDB_env *env, MDB_stat *s)
{
	mdb_env_stat(env, s);
	return (double)(s->ms_branch_pages + s->ms_leaf_pages +
			s->ms_overflow_pages);
}

static int run(const char *dir, const model *m, uint64_t n, uint32_t owners)
{
	char live[4096], packed[4096];
	MDB_env *a = NULL, *b = NULL;
	tally ty = {0, 0, 0};
	MDB_stat s;
	double lp, pp;
	int rc;

	snprintf(live, sizeof(live), "%s/live", dir);
	snprintf(packed, sizeof(packed), "%s/packed", dir);
	if ((mkdir(live, 0700) != 0 || mkdir(packed, 0700) != 0)) {
		perror("size-model: mkdir");
		return 1;
	}
	rc = env_new(live, &a);
	for (uint64_t i = 0; rc == 0 && i < n; i++)
		rc = one(a, m, n, i, owners, &ty);
	if (rc == 0)
		rc = env_new(packed, &b);
	if (rc == 0)
		rc = pack(a, b);
	if (rc == 0) {
		lp = pages(a, &s);
		double fill = (ty.keys + ty.vals + ty.nodes) /
			      ((double)s.ms_leaf_pages * (PAGE - PAGE_HDR));
		pp = pages(b, &s);
		printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |\n",
		       m->what, lp * PAGE / (double)n, pp * PAGE / (double)n,
		       ty.keys / (double)n, ty.vals / (double)n,
		       (ty.keys + ty.vals + ty.nodes) / (double)n, fill);
	}
	if (a)
		mdb_env_close(a);
	if (b)
		mdb_env_close(b);
	/* the scratch files go; the folders are the caller's */
	const char *files[] = {"live/data.mdb", "live/lock.mdb",
			       "packed/data.mdb", "packed/lock.mdb", "live",
			       "packed"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		if (remove(p) != 0)
			perror(p);
	}
	return rc != 0;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
	uint32_t owners = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 1000;

	if (argc < 2 || argc > 4 || n == 0 || owners == 0) {
		fprintf(stderr, "usage: size-model DIR [ENTRIES [OWNERS]]\n");
		return 2;
	}
	printf("%" PRIu64 " entries, %" PRIu32 " owners, LMDB %s\n\n", n,
	       owners, mdb_version(NULL, NULL, NULL));
	printf("| configuration | live B/entry | packed B/entry | key B | "
	       "value B | keys+values+nodes B | live fill |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
		if (run(argv[1], &models[i], n, owners) != 0)
			return 1;
	return 0;
}

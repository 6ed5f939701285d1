/*
 * bench.h - what the files of edgefeed-bench share: the systems under test
 * (one interface, five implementations), the workload generator, the
 * ledger of acknowledged finalizations, latency statistics and result rows.
 *
 * The edgefeed system goes through include/edgefeed.h only. The others
 * (raw LMDB, the legacy JSON arrays, SQLite) are written here by hand
 * against their C APIs, each doing the same job as ef_finalize and
 * ef_feed_page as closely as its design allows.
 */
#ifndef EF_BENCH_H
#define EF_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- systems ------------------------------------------------------------ */

/* Results of bsys_ops.finalize. */
#define BS_OK 0      /* written */
#define BS_EXISTS 1  /* a duplicate: nothing written */
#define BS_ERR (-1)  /* failed; the message went to stderr */

/* Limits of the benchmark's own strings. */
#define BS_CURSOR_MAX 512
#define BS_NAME_MAX 64

/* How a store is opened. */
typedef struct bs_cfg {
	int durable;           /* sync every commit (sqlite: FULL, else NORMAL) */
	int group_commit;      /* edgefeed: EF_GROUP_COMMIT */
	int unread;            /* lmdb-raw: look up the unread marker per entry */
	uint32_t feed_cap;     /* edgefeed: entries kept per owner */
} bs_cfg;

/* One finalization. Strings are borrowed for the call. */
typedef struct bs_rec {
	const char *owner;     /* canonical (lowercase) owner */
	const char *rid;       /* reservation id */
	int64_t created_ms;    /* milliseconds since the epoch, never 0 */
	const char *ip;        /* IPv4 text, or NULL */
	const char *payload;   /* a JSON object, or NULL */
} bs_rec;

/* Called for each entry a page returns, newest first. */
typedef void (*bs_entry_fn)(void *ctx, const char *rid, size_t rid_len,
			    int64_t created_ms);

/*
 * A system under test. A process opens it once (open), each thread takes
 * its own handle from that (thread: may return the process handle itself
 * when it is thread-safe), and every call goes through a thread handle.
 * A cluster system (masters > 0) keeps its store on a Redis Cluster that
 * cluster.c runs; its @dir only names the store (bcl_address).
 */
typedef struct bsys_ops {
	const char *name;
	int (*open)(void **proc, const char *dir, const bs_cfg *cfg);
	void (*close)(void *proc);
	int (*thread)(void *proc, void **th);
	void (*thread_done)(void *th);
	/* BS_OK, BS_EXISTS or BS_ERR */
	int (*finalize)(void *th, const bs_rec *r);
	/* Write @n finalizations quickly (one transaction where the system
	 * has them); @rcs gets each result. 0 or BS_ERR. */
	int (*load)(void *th, const bs_rec *recs, size_t n, int *rcs);
	/*
	 * One page of @owner's feed, newest first: @cursor "" for the first,
	 * else a @next of an earlier page; @next gets "" at the end. Each
	 * entry is materialized (rid, time, IP, payload, unread flag) as a
	 * client would need it, and passed to @fn if not NULL.
	 */
	int (*page)(void *th, const char *owner, const char *cursor,
		    size_t limit, bs_entry_fn fn, void *ctx,
		    char next[BS_CURSOR_MAX], size_t *count);
	/* Entries in the whole store (every owner). */
	int (*count)(void *th, uint64_t *n);
	/* Make the store as small as it can be, for the size scenario (may
	 * be NULL). Needs the store to itself. */
	int (*compact)(void *proc, const char *dir);
	/* Masters of the Redis Cluster it runs on; 0: its store is files in
	 * the directory it is given. */
	int masters;
} bsys_ops;

extern const bsys_ops bsys_edgefeed;
extern const bsys_ops bsys_lmdb;
extern const bsys_ops bsys_legacy_txn;
extern const bsys_ops bsys_legacy_lock;
extern const bsys_ops bsys_sqlite;
extern const bsys_ops bsys_sqlite_best; /* WITHOUT ROWID, page order */
extern const bsys_ops bsys_edgefeed_redis;  /* on a cluster of 3 masters */
extern const bsys_ops bsys_edgefeed_redis1; /* on a cluster of 1 master */

/* The system called @name, or NULL. */
const bsys_ops *bsys_find(const char *name);

/* ---- workload ----------------------------------------------------------- */

/* A finalization's identity: a 64-bit number, written "rsv-<16 hex>". */
#define RID_TEXT_MAX 24

/* Owner names: "user<7 digits>@example.com". */
void wl_owner(uint32_t idx, char out[BS_NAME_MAX]);
void wl_rid(uint64_t id, char out[RID_TEXT_MAX]);
/* Parse a reservation id made by wl_rid; 0 on success. */
int wl_rid_parse(const char *s, size_t len, uint64_t *id);

/* Everything one finalization carries, with room for its strings. */
typedef struct wl_item {
	char owner[BS_NAME_MAX];
	char rid[RID_TEXT_MAX];
	char ip[20];
	char payload[160];
	bs_rec rec;
} wl_item;

/* Fill @it for reservation @id of owner @owner, created at @created_ms. */
void wl_make(wl_item *it, uint64_t id, uint32_t owner, int64_t created_ms);

uint64_t wl_mix(uint64_t x); /* a 64-bit hash (splitmix64 finalizer) */
uint64_t wl_rand(uint64_t *state); /* xorshift-style PRNG, state != 0 */

/* ---- ledger ------------------------------------------------------------- */

/* One finalization as the caller saw it. */
typedef struct led_ack {
	uint64_t rid;
	uint32_t owner;
	int8_t rc;    /* BS_OK, BS_EXISTS, BS_ERR */
} led_ack;

typedef struct led {
	led_ack *a;
	size_t n, cap;
} led;

int led_add(led *l, uint64_t rid, uint32_t owner, int rc);
void led_free(led *l);

/* What the verification found. */
typedef struct led_result {
	uint64_t attempted;     /* finalize calls */
	uint64_t acked;         /* distinct reservations acknowledged (OK or
				 * EXISTS) */
	uint64_t errors;        /* calls that failed */
	uint64_t created_acks;  /* calls answered "written" */
	uint64_t lost;          /* acknowledged, not in the store */
	uint64_t duplicated;    /* extra copies of a reservation in the store */
	uint64_t unexpected;    /* in the store, never acknowledged, or under
				 * another owner */
	uint64_t double_created;/* reservations answered "written" twice */
	uint64_t found;         /* entries read back */
} led_result;

/*
 * Read every owner 0..@owners-1 back through @sys's pages (limit 1000) and
 * compare with the ledger; the store's total count catches entries of
 * other owners. @l is sorted in place.
 */
int led_verify(const bsys_ops *sys, void *th, led *l, uint32_t owners,
	       led_result *out);
/* Is the result clean (nothing lost, duplicated, unexpected, double)? */
int led_clean(const led_result *r);

/* ---- statistics, rows, machine ------------------------------------------ */

double now_s(void);               /* monotonic seconds */
int64_t wall_ms(void);            /* realtime milliseconds */

typedef struct lat {
	float *us;       /* samples, microseconds */
	size_t n, cap;
} lat;

int lat_add(lat *l, double us);
void lat_free(lat *l);
/* Percentile @p in [0, 100] (sorts the samples); 0 when empty. */
double lat_pct(lat *l, double p);

double median_of(double *v, size_t n); /* sorts @v */

/* The machine's CPU time so far, from /proc/stat, in seconds of all its
 * cores: busy (user, system, interrupts, steal), iowait, and everything. */
typedef struct cpu_snap {
	double busy, iowait, total;
} cpu_snap;
/* 0, or -1 if /proc/stat cannot be read. */
int cpu_sample(cpu_snap *s);

/* Flush requests completed so far by the block device of the store
 * directory (/proc/diskstats; every fsync of a journaling file system
 * makes one). 0, or -1 if unknown. */
int disk_flushes(uint64_t *out);

/* Context added to every result row. */
void machine_init(const char *dir);
/* A row: scenario and system fields set by the caller, then the machine,
 * the commit, the load average and the time are added; printed as one
 * JSON line on stdout. @obj is a jansson json_t * (kept out of this
 * header's types); it is consumed. */
void row_emit(void *obj);
const char *machine_fs(void);

/* ---- files -------------------------------------------------------------- */

/* A new empty directory under @base named @tag-XXXXXX; NULL on failure. */
char *dir_new(const char *base, const char *tag);
/* Remove a directory tree (the benchmark's own stores only). */
void dir_remove(const char *dir);
/* mkdir @path (0700); 0 or BS_ERR with the reason on stderr. */
int mkdir_store(const char *path);
/* Bytes of the files in @dir: apparent (st_size) and allocated (blocks). */
void dir_bytes(const char *dir, uint64_t *apparent, uint64_t *allocated);

/* ---- loading ------------------------------------------------------------ */

/* Makes finalization @i of a load: its id, owner and time. */
typedef void (*gen_fn)(void *ctx, uint64_t i, uint64_t *id, uint32_t *owner,
		       int64_t *created_ms);

/* Write finalizations @from..@to-1 of @gen through @sys->load in chunks,
 * adding each answer to @l. 0 or BS_ERR. */
int load_gen(const bsys_ops *sys, void *th, uint64_t from, uint64_t to,
	     gen_fn gen, void *ctx, led *l);

/* Time one finalize call of a new reservation @id; adds it to @l and the
 * latency to @lt. Returns the call's result. */
int timed_finalize(const bsys_ops *sys, void *th, uint64_t id,
		   uint32_t owner, led *l, lat *lt);
/* Time one newest-first page of @owner (limit 50 unless @limit) from
 * @cursor ("" for the first); adds the latency to @lt. */
int timed_page(const bsys_ops *sys, void *th, uint32_t owner,
	       const char *cursor, size_t limit, lat *lt);

/* ---- scenarios ---------------------------------------------------------- */

/* Options every scenario reads. */
typedef struct bopts {
	const char *dir;         /* where stores are made */
	int quick;               /* small sizes, ledgers only */
	int reps;                /* repetitions of each measured configuration */
	double seconds;          /* length of a timed run */
	const char *systems;     /* comma list, or NULL for all */
	uint64_t scale_max;      /* largest store of the scale scenario */
	uint64_t size_entries;   /* entries of the size scenario */
	uint32_t quick_n;        /* finalizations per worker in --quick */
	uint32_t owners;         /* concurrent: owners (0: 1000) */
	double dup_frac;         /* concurrent: share of duplicate retries */
	const char *writers;     /* concurrent: "PxT,..." or NULL for all */
	int dist;                /* concurrent: 0 both, 1 uniform, 2 hot */
	int sync;                /* concurrent: 0 both, 1 durable, 2 nosync */
	int failures;            /* ledgers that were not clean (to exit 1) */
} bopts;

int sys_selected(const bopts *o, const char *name);

int scen_concurrent(bopts *o);
int scen_scale(bopts *o);
int scen_read(bopts *o);
int scen_size(bopts *o);

/* ---- the Redis Clusters of the cluster systems (cluster.c) ------------- */

/* Make this process the one that starts and stops clusters (main, before
 * any scenario). */
void bcl_init(void);
/*
 * Can @sys run? Yes for a system of files. A cluster system needs its
 * cluster: started here the first time (scripts/redis-cluster.sh, MASTERS
 * masters, no replicas, appendfsync always, files under @o->dir). Without
 * redis-server it is skipped with a message (a failure, counted in @o,
 * only when --systems named it); a cluster that does not start is a
 * failure. --quick runs edgefeed-redis only, unless --systems names
 * others. 1: run it; 0: skip it.
 */
int bcl_up(bopts *o, const bsys_ops *sys);
/* The store address of the cluster of @masters masters for a run whose
 * store directory is @dir: every process of the run, given the same @dir,
 * gets the same store, and no other run's. 0, or BS_ERR (no such cluster
 * is up, or @cap too small) with the reason on stderr. */
int bcl_address(int masters, const char *dir, char *out, size_t cap);
/* After a run of @sys: empty its cluster (FLUSHALL and an AOF rewrite on
 * every node), so the next run starts from what a new store directory
 * gives the other systems. No-op for a system of files; a failure is
 * counted in @o. */
void bcl_drop(bopts *o, const bsys_ops *sys);
/* CPU seconds (user + system) that the nodes of @sys's cluster have used
 * since they started, into @out. 0, or BS_ERR if no cluster is up or a
 * node's /proc entry cannot be read. */
int bcl_cpu(const bsys_ops *sys, double *out);
/* Stop every cluster this process started and remove its files
 * (idempotent; also run at exit). */
void bcl_stop_all(void);
/* The version of redis-server ("7.0.15"), or "unknown". */
const char *bcl_redis_version(void);

/* Table printing to stderr. */
void table_head(const char *title, const char *cols);
void table_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif

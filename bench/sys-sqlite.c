/*
 * sys-sqlite.c - the embedded database a user would otherwise pick: SQLite
 * in WAL mode, one row per entry, UNIQUE(owner, reservation) making the
 * write idempotent (INSERT OR IGNORE), an index for newest-first pages,
 * the unread flag a column. synchronous=FULL when durable, else NORMAL.
 * One connection per thread; a short busy handler (50-150 us naps) so
 * that waiting writers are not slowed by SQLite's default millisecond
 * sleeps.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define BUSY_MAX_US 60000000LL /* give up after a minute of waiting */

static const char *schema =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS receives("
	" owner TEXT NOT NULL, reservation TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL, ip TEXT, payload TEXT,"
	" unread INTEGER NOT NULL DEFAULT 1,"
	" UNIQUE(owner, reservation));"
	"CREATE INDEX IF NOT EXISTS receives_feed"
	" ON receives(owner, created_ms, reservation);";

/* "sqlite-best" (issue 12's yardstick for a page): the rows themselves in
 * page order (WITHOUT ROWID, the primary key what a page scans), so a page
 * is one range scan with no look-up into the table; the IP is plain text
 * and nothing but the unread column is read. The unique index keeps writes
 * idempotent. */
static const char *schema_best =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS receives("
	" owner TEXT NOT NULL, created_ms INTEGER NOT NULL,"
	" reservation TEXT NOT NULL, ip TEXT, payload TEXT,"
	" unread INTEGER NOT NULL DEFAULT 1,"
	" PRIMARY KEY(owner, created_ms, reservation)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX IF NOT EXISTS receives_once"
	" ON receives(owner, reservation);";

typedef struct sq_proc {
	char path[4096];
	int durable;
} sq_proc;

typedef struct sq {
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *rollback, *ins, *first, *after, *count;
} sq;

static int sq_err(sqlite3 *db, const char *what)
{
	fprintf(stderr, "edgefeed-bench: sqlite: %s: %s\n", what,
		db ? sqlite3_errmsg(db) : "out of memory");
	return BS_ERR;
}

static int sq_busy(void *ctx, int n)
{
	struct timespec ts = {0, (50 + (long)(wl_mix((uint64_t)n) % 100)) * 1000};

	(void)ctx;
	if ((long long)n * 100 > BUSY_MAX_US)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static int sq_connect(const char *path, sqlite3 **db)
{
	if (sqlite3_open_v2(path, db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		sq_err(*db, "open");
		sqlite3_close(*db);
		*db = NULL;
		return BS_ERR;
	}
	sqlite3_busy_handler(*db, sq_busy, NULL);
	return 0;
}

static int sq_open_schema(void **proc, const char *dir, const bs_cfg *cfg,
			  const char *sql)
{
	sq_proc *p = calloc(1, sizeof(*p));
	sqlite3 *db;

	if (!p)
		return BS_ERR;
	snprintf(p->path, sizeof(p->path), "%s/feed.sqlite", dir);
	p->durable = cfg->durable;
	if (sq_connect(p->path, &db) != 0) {
		free(p);
		return BS_ERR;
	}
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		sq_err(db, "schema");
		sqlite3_close(db);
		free(p);
		return BS_ERR;
	}
	sqlite3_close(db);
	*proc = p;
	return 0;
}

static int sq_open(void **proc, const char *dir, const bs_cfg *cfg)
{
	return sq_open_schema(proc, dir, cfg, schema);
}

static int sq_open_best(void **proc, const char *dir, const bs_cfg *cfg)
{
	return sq_open_schema(proc, dir, cfg, schema_best);
}

static void sq_close(void *proc)
{
	free(proc);
}

static void sq_thread_done(void *th)
{
	sq *s = th;

	if (!s)
		return;
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->first);
	sqlite3_finalize(s->after);
	sqlite3_finalize(s->count);
	sqlite3_close(s->db);
	free(s);
}

static int prep(sq *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK)
		return sq_err(s->db, sql);
	return 0;
}

static int sq_thread(void *proc, void **th)
{
	sq_proc *p = proc;
	sq *s = calloc(1, sizeof(*s));

	*th = NULL;
	if (!s || sq_connect(p->path, &s->db) != 0) {
		free(s);
		return BS_ERR;
	}
	if (sqlite3_exec(s->db,
			 p->durable ? "PRAGMA synchronous=FULL"
				    : "PRAGMA synchronous=NORMAL",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    prep(s, "BEGIN IMMEDIATE", &s->begin) ||
	    prep(s, "COMMIT", &s->commit) || prep(s, "ROLLBACK", &s->rollback) ||
	    prep(s, "INSERT OR IGNORE INTO receives(owner, reservation,"
		    " created_ms, ip, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
		 &s->ins) ||
	    prep(s, "SELECT reservation, created_ms, ip, payload, unread"
		    " FROM receives WHERE owner = ?1"
		    " ORDER BY created_ms DESC, reservation DESC LIMIT ?2",
		 &s->first) ||
	    prep(s, "SELECT reservation, created_ms, ip, payload, unread"
		    " FROM receives WHERE owner = ?1"
		    " AND (created_ms, reservation) < (?3, ?4)"
		    " ORDER BY created_ms DESC, reservation DESC LIMIT ?2",
		 &s->after) ||
	    prep(s, "SELECT count(*) FROM receives", &s->count)) {
		sq_err(s->db, "prepare");
		sq_thread_done(s);
		return BS_ERR;
	}
	*th = s;
	return 0;
}

/* Run a statement without rows to its end. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static int sq_insert(sq *s, const bs_rec *r)
{
	int rc;

	sqlite3_bind_text(s->ins, 1, r->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->ins, 2, r->rid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->ins, 3, r->created_ms);
	if (r->ip)
		sqlite3_bind_text(s->ins, 4, r->ip, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->ins, 4);
	if (r->payload)
		sqlite3_bind_text(s->ins, 5, r->payload, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->ins, 5);
	rc = run(s->ins);
	if (rc)
		return sq_err(s->db, "insert");
	return sqlite3_changes(s->db) ? BS_OK : BS_EXISTS;
}

static int sq_txn(sq *s, const bs_rec *recs, size_t n, int *rcs)
{
	int rc;

	if ((rc = run(s->begin)))
		return sq_err(s->db, "begin");
	for (size_t i = 0; i < n; i++) {
		rcs[i] = sq_insert(s, &recs[i]);
		if (rcs[i] == BS_ERR) {
			run(s->rollback);
			return BS_ERR;
		}
	}
	while ((rc = run(s->commit)) == SQLITE_BUSY)
		;
	if (rc) {
		run(s->rollback);
		return sq_err(s->db, "commit");
	}
	return 0;
}

static int sq_finalize(void *th, const bs_rec *r)
{
	int res = BS_ERR;

	if (sq_txn(th, r, 1, &res) != 0)
		return BS_ERR;
	return res;
}

static int sq_load(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	return sq_txn(th, recs, n, rcs);
}

static int sq_page(void *th, const char *owner, const char *cursor,
		   size_t limit, bs_entry_fn fn, void *ctx,
		   char next[BS_CURSOR_MAX], size_t *count)
{
	sq *s = th;
	sqlite3_stmt *st = cursor[0] ? s->after : s->first;
	char rid[256], ip[64], payload[512];
	int64_t created = 0;
	int rc, unread;

	next[0] = '\0';
	*count = 0;
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit + 1);
	if (cursor[0]) {
		const char *c = strchr(cursor, ':');
		if (!c)
			return BS_ERR;
		sqlite3_bind_int64(st, 3, strtoll(cursor, NULL, 10));
		sqlite3_bind_text(st, 4, c + 1, -1, SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*count == limit) {
			snprintf(next, BS_CURSOR_MAX, "%" PRId64 ":%s", created,
				 rid);
			break;
		}
		snprintf(rid, sizeof(rid), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		created = sqlite3_column_int64(st, 1);
		snprintf(ip, sizeof(ip), "%s",
			 sqlite3_column_type(st, 2) == SQLITE_NULL
				 ? ""
				 : (const char *)sqlite3_column_text(st, 2));
		snprintf(payload, sizeof(payload), "%s",
			 sqlite3_column_type(st, 3) == SQLITE_NULL
				 ? ""
				 : (const char *)sqlite3_column_text(st, 3));
		unread = sqlite3_column_int(st, 4);
		(void)unread;
		if (fn)
			fn(ctx, rid, strlen(rid), created);
		(*count)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(s->db, "page");
	return 0;
}

static int sq_count(void *th, uint64_t *n)
{
	sq *s = th;
	int rc = sqlite3_step(s->count);

	*n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s->count, 0) : 0;
	sqlite3_reset(s->count);
	return rc == SQLITE_ROW ? 0 : sq_err(s->db, "count");
}

static int sq_compact(void *proc, const char *dir)
{
	sq_proc *p = proc;
	sqlite3 *db;
	int rc;

	(void)dir;
	if (sq_connect(p->path, &db) != 0)
		return BS_ERR;
	rc = sqlite3_exec(db, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);", NULL,
			  NULL, NULL);
	if (rc != SQLITE_OK)
		sq_err(db, "vacuum");
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : BS_ERR;
}

const bsys_ops bsys_sqlite = {
	"sqlite", sq_open, sq_close, sq_thread, sq_thread_done,
	sq_finalize, sq_load, sq_page, sq_count, sq_compact, 0,
};

const bsys_ops bsys_sqlite_best = {
	"sqlite-best", sq_open_best, sq_close, sq_thread, sq_thread_done,
	sq_finalize, sq_load, sq_page, sq_count, sq_compact, 0,
};

/*
 * edgefeed.h - the one public header of libedgefeed.
 *
 * edgefeed keeps each owner's recent-receives feed in an LMDB store, one
 * record per entry, written idempotently, so that many worker processes
 * finalizing uploads at once never lose or duplicate an entry.
 *
 * Conventions, for every function below:
 *  - Fallible functions return int: EF_OK (0), a named non-error status
 *    (EF_EXISTS), or a negative EF_E* code. ef_errmsg() then tells what
 *    exactly was wrong, for the calling thread.
 *  - Strings are NUL-terminated UTF-8. Inputs are borrowed for the duration
 *    of the call only.
 *  - Results are either owned by the caller (freed by the named ef_*_free,
 *    which all accept NULL) or borrowed (the comment says how long they live).
 *  - Threads: one ef_store may be used by any number of threads at once.
 *  - fork(): never use an ef_store in a child created after ef_open(); the
 *    child opens its own (ef_open again) and may leave the inherited handle
 *    alone (do not ef_close it in the child).
 */
#ifndef EDGEFEED_H
#define EDGEFEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EF_BUILDING_LIBRARY) && defined(__GNUC__)
#define EF_EXPORT __attribute__((visibility("default")))
#else
#define EF_EXPORT
#endif

#define EF_VERSION_STRING "0.1.0"

/*
 * The error table: one X-macro list makes the enum, ef_strerror() and
 * ef_err_name(), so they can never drift apart.
 *   X(name, value, text)
 */
#define EF_ERRNO_MAP(X)                                                        \
	X(OK, 0, "success")                                                    \
	X(EXISTS, 1, "already exists")                                         \
	X(EINVAL, -1, "invalid argument")                                      \
	X(ENOTFOUND, -2, "not found")                                          \
	X(EBUSY, -3, "resource busy")                                          \
	X(ECORRUPT, -4, "store is corrupt")                                    \
	X(ENOMEM, -5, "out of memory")                                         \
	X(EIO, -6, "input/output error")                                       \
	X(EFULL, -7, "no space left (disk or map full)")                       \
	X(EVERSION, -8, "store format is newer than this library")

typedef enum ef_errno {
#define EF__ENUM(name, value, text) EF_##name = (value),
	EF_ERRNO_MAP(EF__ENUM)
#undef EF__ENUM
} ef_errno;

/* Flags for ef_config.flags. */
#define EF_NOSYNC 0x1u /* do not fsync on commit: fast, not durable on power loss */
#define EF_RDONLY 0x2u /* open read-only: every write returns EF_EINVAL */
/* Group commit: concurrent ef_finalize calls of this handle's threads share
 * one write transaction and one sync; each caller still returns only once
 * its finalization is committed, with its own result. A lone caller waits
 * for nobody. */
#define EF_GROUP_COMMIT 0x4u

/* Limits of the contract (DESIGN.md). */
#define EF_PAYLOAD_MAX 16384u     /* bytes of payload JSON */
#define EF_OWNER_KEY_MAX 320u     /* bytes of the escaped owner */
#define EF_RESERVATION_KEY_MAX 160u /* bytes of the escaped reservation id */
#define EF_CREATED_MAX 9999999999999LL /* largest created_ms */
#define EF_PAGE_LIMIT_MAX 1000u
#define EF_PAGE_LIMIT_DEFAULT 50u

/* Defaults of ef_config (a field left 0 takes its default). */
#define EF_DEFAULT_MAP_SIZE ((size_t)4 << 20)
#define EF_DEFAULT_FEED_CAP 100u
#define EF_DEFAULT_FEED_TTL_MS (90LL * 24 * 3600 * 1000)
#define EF_DEFAULT_IP_RETENTION_MS (30LL * 24 * 3600 * 1000)

/* Size of a buffer that holds any ef_time_format() result, with its NUL. */
#define EF_TIME_BUFSZ 32u

/** An opaque store handle; see ef_open(). */
typedef struct ef_store ef_store;

/**
 * A clock: returns the current time in milliseconds since the Unix epoch.
 * Called from any thread that uses the store; it must be thread-safe.
 */
typedef int64_t (*ef_clock_fn)(void *ctx);

/**
 * Store configuration. Zero-initialize it ({0}) and set what you need; every
 * field left 0 (or NULL) takes its default.
 */
typedef struct ef_config {
	size_t map_size;          /* initial LMDB map size; it grows by itself */
	uint32_t feed_cap;        /* newest entries kept per owner (default 100) */
	int64_t feed_ttl_ms;      /* entries older than this are stale (90 days) */
	int64_t ip_retention_ms;  /* IPs are returned only this long (30 days) */
	unsigned flags;           /* EF_NOSYNC, EF_RDONLY, EF_GROUP_COMMIT */
	ef_clock_fn clock_ms;     /* injectable clock; NULL: the system clock */
	void *clock_ctx;          /* passed to clock_ms */
} ef_config;

/** One finalized reservation, as given to ef_finalize(). */
typedef struct ef_receive {
	const char *owner;          /* required; canonicalized (trim, lowercase) */
	const char *reservation_id; /* required; taken as given (case-sensitive) */
	int64_t created_ms;         /* 0: now (the store's clock) */
	const char *ip;             /* IPv4 or IPv6 text, or NULL */
	const char *payload_json;   /* a JSON object of at most 16 KiB, or NULL */
} ef_receive;

/** One feed entry in an ef_page. All strings are owned by the page. */
typedef struct ef_entry {
	char *reservation_id; /* as finalized */
	int64_t created_ms;   /* milliseconds since the Unix epoch */
	char *ip;             /* canonical text; NULL if absent or past retention */
	char *payload_json;   /* byte-for-byte as given; NULL if none was given */
	int unread;           /* 1 if the owner has not marked it read */
} ef_entry;

/** A page of an owner's feed, newest first. Free with ef_page_free(). */
typedef struct ef_page {
	ef_entry *entries;  /* count entries */
	size_t count;
	char *next_cursor;  /* pass to ef_feed_page for the next page; NULL at the end */
} ef_page;

/* ---- opening and closing ---------------------------------------------- */

/**
 * Open (creating it if missing) the store in directory @dir.
 *
 * @param out  receives the handle; on failure it is set to NULL and nothing
 *             needs freeing.
 * @param dir  store directory; created (mode 0700) if it does not exist.
 * @param cfg  configuration, or NULL for every default. Copied.
 * @return EF_OK; EF_EINVAL (@dir is not a directory, or a bad cfg field);
 *         EF_ENOTFOUND (EF_RDONLY and there is no store at @dir);
 *         EF_EIO (cannot create or open: permission, I/O); EF_EVERSION (a store
 *         written by a newer format); EF_ECORRUPT; EF_ENOMEM. For the detail of
 *         a failed open, call ef_errmsg(NULL) on the same thread.
 *
 * Holds a shared lock on the store for as long as it is open (so that
 * compaction never runs under a live handle) and clears the reader slots of
 * dead processes. Thread-safe; the handle may be shared by threads.
 */
EF_EXPORT int ef_open(ef_store **out, const char *dir, const ef_config *cfg);

/** Close a store. Accepts NULL. No other thread may be using it. */
EF_EXPORT void ef_close(ef_store *st);

/* ---- writing ------------------------------------------------------------ */

/**
 * Record that reservation @r->reservation_id finalized for @r->owner, in one
 * atomic write transaction together with its uniqueness index and unread
 * marker, then enforce the owner's cap and staleness in the same transaction.
 *
 * @return EF_OK (written); EF_EXISTS (the reservation is already in the
 *         owner's feed: nothing changed, first write wins); EF_EINVAL (bad
 *         input: nothing written, ef_errmsg names the field); EF_EFULL (disk
 *         full); EF_EIO; EF_ENOMEM.
 * Thread-safe. Durable when it returns unless the store has EF_NOSYNC.
 */
EF_EXPORT int ef_finalize(ef_store *st, const ef_receive *r);

/* ---- reading ------------------------------------------------------------ */

/**
 * Read one page of @owner's feed, newest first.
 *
 * @param cursor  NULL for the first page, else a next_cursor of an earlier page.
 * @param limit   1..1000; 0 means the default (50).
 * @param out     receives the page (owned by the caller: ef_page_free()).
 *                On failure it is left empty and needs no freeing.
 * @return EF_OK (possibly with 0 entries); EF_EINVAL (bad owner, limit or
 *         cursor); EF_ENOMEM; EF_ECORRUPT; EF_EIO.
 *
 * Paging is stable: entries finalized between pages never make a client see
 * an entry twice or skip an older one. Stale and over-cap entries are never
 * returned. An entry's ip is NULL once it is past ip_retention.
 */
EF_EXPORT int ef_feed_page(ef_store *st, const char *owner, const char *cursor,
			   size_t limit, ef_page *out);

/** Free a page's contents (not the ef_page itself). Accepts NULL. */
EF_EXPORT void ef_page_free(ef_page *page);

/**
 * Look up one entry of @owner's feed by reservation id (an indexed read).
 * @param out  receives a new entry, owned by the caller: ef_entry_free().
 * @return EF_OK; EF_ENOTFOUND (no such entry, or it is stale); EF_EINVAL.
 * The read rules of ef_feed_page apply to its ip.
 */
EF_EXPORT int ef_get_entry(ef_store *st, const char *owner,
			   const char *reservation_id, ef_entry **out);

/** Free an entry from ef_get_entry(). Accepts NULL. */
EF_EXPORT void ef_entry_free(ef_entry *e);

/**
 * The canonical spelling of an owner (trimmed, ASCII lowercased), the one
 * identity every path uses, into @buf of @cap bytes.
 * @return EF_OK; EF_EINVAL (not a valid owner, or @cap too small).
 */
EF_EXPORT int ef_canonical_owner(const char *owner, char *buf, size_t cap);

/**
 * Number of unread entries that a full read of @owner's feed would return.
 * @return EF_OK; EF_EINVAL; EF_EIO; EF_ECORRUPT.
 */
EF_EXPORT int ef_unread_count(ef_store *st, const char *owner, uint64_t *out);

/**
 * Mark one entry read. Idempotent.
 * @return EF_OK (read now, whether or not it was unread before);
 *         EF_ENOTFOUND (the owner has no such reservation); EF_EINVAL.
 */
EF_EXPORT int ef_mark_read(ef_store *st, const char *owner,
			   const char *reservation_id);

/**
 * Mark every entry of @owner read. Idempotent.
 * @return EF_OK; EF_EINVAL; EF_EIO.
 */
EF_EXPORT int ef_mark_all_read(ef_store *st, const char *owner);

/* ---- maintenance -------------------------------------------------------- */

/* Flags for ef_maint_lock(). */
#define EF_LOCK_NOWAIT 0x1u /* return EF_EBUSY at once instead of waiting */

/**
 * Called once, before blocking, when another process holds the maintenance
 * lock. @holder describes it ("pid 1234 (edgefeed seed --reset)"); borrowed
 * for the call only.
 */
typedef void (*ef_wait_fn)(const char *holder, void *ctx);

/** A held maintenance lock; see ef_maint_lock(). */
typedef struct ef_maint ef_maint;

/**
 * Take the store's maintenance lock, which serializes long operations (seed,
 * migrate, sweep, compact) across processes. It is held by the process and
 * released by ef_maint_unlock(), or by the kernel if the process dies.
 *
 * @param what    a short description of the holder's job, shown to waiters.
 * @param on_wait called before waiting (may be NULL).
 * @param out     receives the held lock; NULL on failure.
 * @return EF_OK; EF_EBUSY (held elsewhere and EF_LOCK_NOWAIT); EF_EIO.
 */
EF_EXPORT int ef_maint_lock(ef_store *st, const char *what, unsigned flags,
			    ef_wait_fn on_wait, void *ctx, ef_maint **out);

/** Release a maintenance lock. Accepts NULL. */
EF_EXPORT void ef_maint_unlock(ef_maint *lk);

/** Result of ef_reset(). */
typedef struct ef_reset_stats {
	uint64_t keys_deleted; /* feed keys removed (entries, indexes, markers, legacy) */
	uint64_t batches;      /* write transactions used */
} ef_reset_stats;

/**
 * Remove every feed record (entries, index keys, unread markers and legacy
 * arrays) in batches of short write transactions. The caller should hold the
 * maintenance lock. @stats may be NULL.
 * @return EF_OK; EF_EIO; EF_EFULL.
 */
EF_EXPORT int ef_reset(ef_store *st, ef_reset_stats *stats);

/**
 * Progress of a long operation: @done of @total units. Called from the
 * operation's thread; keep it quick.
 */
typedef void (*ef_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/** Options of ef_seed(). Zero-initialize, then set. */
typedef struct ef_seed_opts {
	uint32_t owners;       /* owners user0000@example.com ... (>= 1) */
	uint32_t receives;     /* receives per owner (>= 1) */
	int reset;             /* first remove every feed record (ef_reset) */
	uint64_t rng_seed;     /* same seed and now_ms: same data */
	int64_t now_ms;        /* times are over the 60 days before it; 0: now */
	unsigned lock_flags;   /* EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;    /* see ef_maint_lock() */
	void *wait_ctx;
	ef_progress_fn progress; /* may be NULL */
	void *progress_ctx;
} ef_seed_opts;

/** Result of ef_seed(). */
typedef struct ef_seed_stats {
	uint64_t created;       /* finalizations that returned EF_OK */
	uint64_t duplicates;    /* that returned EF_EXISTS */
	uint64_t reset_deleted; /* keys removed by the reset */
	uint32_t owners;
} ef_seed_stats;

/**
 * Make deterministic, realistic demo data through the finalize path:
 * owners "user0042@example.com", reservation ids derived from the seed,
 * documentation-range IPs (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32), times over the 60 days before now_ms, and a payload with
 * fileName, size, senderEmail and linkId. Holds the maintenance lock for its
 * whole run; finalizations are written in batches of short transactions.
 * @return EF_OK; EF_EINVAL (owners or receives 0); EF_EBUSY (lock held and
 *         EF_LOCK_NOWAIT); a store error.
 */
EF_EXPORT int ef_seed(ef_store *st, const ef_seed_opts *opts,
		      ef_seed_stats *stats);

/** Options of ef_migrate(). Zero-initialize, then set. */
typedef struct ef_migrate_opts {
	uint32_t batch;          /* legacy owners per write transaction (0: 16) */
	int dry_run;             /* compute everything, write nothing */
	unsigned lock_flags;     /* EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;      /* see ef_maint_lock() */
	void *wait_ctx;
	ef_progress_fn progress; /* owners done / total; may be NULL */
	void *progress_ctx;
} ef_migrate_opts;

/** What ef_migrate() did (or, with dry_run, would do). */
typedef struct ef_migrate_stats {
	uint64_t owners;          /* legacy arrays converted */
	uint64_t elements;        /* elements in them */
	uint64_t migrated;        /* entries written */
	uint64_t duplicates;      /* elements merged: a reservation repeated in
				   * an array, or already finalized */
	uint64_t quarantined;     /* elements (or whole values) moved to quarantine */
	uint64_t kept_without_ip; /* migrated, but their ip was not an address */
	uint64_t markers_kept;    /* unread markers of migrated entries */
	uint64_t orphan_markers;  /* markers of these owners without an entry */
	uint64_t batches;         /* write transactions */
} ef_migrate_stats;

/**
 * Convert every legacy array (recentReceives:<owner>) into per-entry records
 * through the finalize logic: each owner in one write transaction (several
 * owners per transaction, up to opts->batch), then the legacy key deleted.
 * What cannot be converted is kept byte-for-byte in a quarantine record
 * (quarantine:<owner>:<hash>) with the reasons. Existing unread markers are
 * kept; none are created. Re-running does nothing new. Holds the
 * maintenance lock. @opts and @stats may be NULL.
 * @return EF_OK; EF_EBUSY (lock held and EF_LOCK_NOWAIT); a store error.
 */
EF_EXPORT int ef_migrate(ef_store *st, const ef_migrate_opts *opts,
			 ef_migrate_stats *stats);

/** Called by ef_check() once per violation: @what says which invariant,
 * @key the key involved (printable; borrowed for the call). */
typedef void (*ef_violation_fn)(const char *what, const char *key, void *ctx);

/** Options of ef_check(). */
typedef struct ef_check_opts {
	int strict;              /* also flag what a sweep would delete: owners
				  * over their cap, markers of stale entries */
	ef_violation_fn report;  /* may be NULL */
	void *report_ctx;
	ef_progress_fn progress; /* keys done / total; may be NULL */
	void *progress_ctx;
} ef_check_opts;

/** What ef_check() looked at and found. */
typedef struct ef_check_stats {
	uint64_t keys;        /* every key read */
	uint64_t entries;
	uint64_t index_keys;
	uint64_t markers;
	uint64_t legacy_arrays;
	uint64_t quarantined;
	uint64_t violations;  /* 0: every invariant holds */
} ef_check_stats;

/**
 * Verify every invariant of DESIGN.md under one read transaction (a
 * consistent snapshot, while workers write): keys in canonical form, every
 * record decodes and agrees with its key, every entry has its index (same
 * createdSort) and every index its entry, every unread marker an entry, the
 * format version present. @opts and @stats may be NULL.
 * @return EF_OK (check the violations count); a store error.
 */
EF_EXPORT int ef_check(ef_store *st, const ef_check_opts *opts,
		       ef_check_stats *stats);

/* ---- Workers KV bulk import and export ------------------------------------ */

/*
 * Why an element of a bulk file was not imported. One X-macro list makes
 * the enum and ef_import_skip_name(), so they cannot drift apart.
 *   X(name, JSON name)
 *   UNKNOWN_PREFIX  not a key of a feed family (meta: keys too)
 *   BAD_KEY         a feed key, but malformed
 *   NOT_STRING      "value" is not a string
 *   BAD_BASE64      "base64" is not a boolean, or the value does not decode
 *   BAD_VALUE       the value is not what its key family holds
 *   MISMATCH        a record disagrees with its key
 *   CONFLICT        the store holds another entry for the reservation
 *                   (first write wins)
 *   NO_ENTRY        an index key or unread marker whose entry is neither
 *                   in the file nor in the store
 */
#define EF_IMPORT_SKIP_MAP(X)                                                  \
	X(UNKNOWN_PREFIX, "unknownPrefix")                                     \
	X(BAD_KEY, "badKey")                                                   \
	X(NOT_STRING, "valueNotString")                                        \
	X(BAD_BASE64, "badBase64")                                             \
	X(BAD_VALUE, "badValue")                                               \
	X(MISMATCH, "keyMismatch")                                             \
	X(CONFLICT, "conflict")                                                \
	X(NO_ENTRY, "noEntry")

typedef enum ef_import_skip {
#define EF__SKIP_ENUM(name, json) EF_IMPORT_SKIP_##name,
	EF_IMPORT_SKIP_MAP(EF__SKIP_ENUM)
#undef EF__SKIP_ENUM
	EF_IMPORT_SKIP_COUNT
} ef_import_skip;

/** The JSON name of a skip reason ("badKey"); never NULL ("unknown"). */
EF_EXPORT const char *ef_import_skip_name(int reason);

/**
 * Called once for each element that ef_import_kvbulk() does not take.
 * @element  its index in the file's array (0-based, as jq '.[N]')
 * @key      its "key", @key_len bytes (may hold any UTF-8, even NUL)
 * @reason   an ef_import_skip
 * @detail   what exactly was wrong
 * Strings are borrowed for the call only.
 */
typedef void (*ef_import_skip_fn)(uint64_t element, const char *key,
				  size_t key_len, int reason,
				  const char *detail, void *ctx);

/** Options of ef_import_kvbulk(). Zero-initialize, then set. */
typedef struct ef_import_opts {
	uint32_t batch;            /* elements per write transaction (0: 1000) */
	unsigned lock_flags;       /* EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;        /* see ef_maint_lock() */
	void *wait_ctx;
	ef_progress_fn progress;   /* elements done / total; may be NULL */
	void *progress_ctx;
	ef_import_skip_fn on_skip; /* may be NULL (the counts still say) */
	void *skip_ctx;
} ef_import_opts;

/** What ef_import_kvbulk() did. */
typedef struct ef_import_stats {
	uint64_t elements;        /* elements read */
	uint64_t legacy_arrays;   /* legacy arrays stored under a key of their own */
	uint64_t legacy_merged;   /* legacy arrays merged into another array of
				   * the same owner (another spelling of it) */
	uint64_t merged_owners;   /* owners whose legacy arrays were merged */
	uint64_t entries;         /* entry records written, with their index keys */
	uint64_t index_keys;      /* index keys found to match their entry */
	uint64_t markers;         /* unread markers written */
	uint64_t quarantine_records; /* quarantine records of the file, stored
				      * (or already there) */
	uint64_t quarantined;     /* legacy values that could not merge, kept in
				   * new quarantine records */
	uint64_t ips_dropped;     /* IPs past ip_retention, left out */
	uint64_t unchanged;       /* elements the store already held */
	uint64_t skipped;         /* elements not taken: see on_skip */
	uint64_t skipped_by_reason[EF_IMPORT_SKIP_COUNT];
	uint64_t batches;         /* write transactions */
} ef_import_stats;

/**
 * Import a Workers KV bulk file (a JSON array of {"key", "value",
 * "base64", "expiration", "expiration_ttl", "metadata"}) into the store:
 *  - legacy arrays (recentReceives:<owner>): the owner canonicalized, the
 *    raw owner of the old worker's keys accepted; arrays of one owner under
 *    several spellings are merged into one (elements concatenated, leaving
 *    out those the array already holds); a value that cannot merge (not a
 *    JSON array) is kept byte for byte in a quarantine record instead;
 *  - entry records (recentReceive:<owner>:<createdSort>:<reservationId>,
 *    value: the record bytes, base64): the record must decode and agree
 *    with its key; it is written again through the finalize encoding, with
 *    its index key, its IP (from "metadata": {"ip"}) sealed under this
 *    store's keys; no marker is made and no trim is done;
 *  - index keys (receiveIndex:) are checked against their entry, unread
 *    markers (unread:) written when their entry (a record, or an element of
 *    a legacy array) is in the file or the store, and quarantine records
 *    (quarantine:) stored again.
 * IPs past ip_retention at the store's clock are left out. Whatever cannot
 * be taken is counted and reported through opts->on_skip, never dropped
 * silently; the rest is imported. Writes go in batches of short write
 * transactions; re-importing the same file changes nothing. Holds the
 * maintenance lock.
 *
 * The file is read as a stream, one element at a time (at most 64 MiB of
 * JSON each). A regular file is read twice: first to check the structure of
 * the whole file and count its elements, so that a malformed file writes
 * nothing and progress knows its total; other files (a pipe) are read once,
 * and their progress total grows with the elements done.
 *
 * @param path   the file; borrowed for the call.
 * @param opts   may be NULL (the defaults).
 * @param stats  may be NULL; filled also on failure (what was done).
 * @return EF_OK; EF_EINVAL (a malformed file: not JSON, not an array, an
 *         element that is not an object or lacks "key" (a string) or
 *         "value"; ef_errmsg names the path, line, column, byte offset and
 *         element index); EF_ENOTFOUND, EF_EIO (cannot read the file);
 *         EF_EBUSY (lock held and EF_LOCK_NOWAIT); a store error.
 */
EF_EXPORT int ef_import_kvbulk(ef_store *st, const char *path,
			       const ef_import_opts *opts,
			       ef_import_stats *stats);

/** Options of ef_export_kvbulk(). Zero-initialize, then set. */
typedef struct ef_export_opts {
	ef_progress_fn progress; /* keys done / total; may be NULL */
	void *progress_ctx;
} ef_export_opts;

/** What ef_export_kvbulk() wrote. */
typedef struct ef_export_stats {
	uint64_t elements;        /* elements written */
	uint64_t entries;
	uint64_t index_keys;
	uint64_t markers;
	uint64_t legacy_arrays;
	uint64_t quarantine_records;
	uint64_t ips_dropped;     /* IPs past ip_retention left out: of entries,
				   * legacy elements and quarantined values */
	uint64_t unparsed;        /* legacy or quarantined values written as
				   * they are because they are not JSON (any IP
				   * in them could not be found) */
	uint64_t left_out;        /* records that do not decode, keys that are
				   * not UTF-8: not written */
	uint64_t other_keys;      /* meta: keys: not part of the format */
} ef_export_stats;

/**
 * Write the store's feed records to @out in the Workers KV bulk format,
 * from one read snapshot, in key order: entry records (value: the record
 * bytes in base64, "base64": true; the IP, while within retention at the
 * store's clock, as "metadata": {"ip"}), index keys, unread markers,
 * legacy arrays still present and quarantine records. IPs past retention
 * never leave: records are written without any IP, legacy elements and
 * quarantined values lose their "ip" (an element without a reservationId
 * gets the id the feed gives it, so it stays the same entry). Importing the
 * file into an empty store reproduces every feed page.
 *
 * @param out    an open stream; written, flushed, not closed.
 * @param opts   may be NULL. @stats may be NULL.
 * @return EF_OK; EF_EIO (cannot write @out); EF_ENOMEM; a store error.
 * Does not block writers (it holds a read snapshot while it writes).
 */
EF_EXPORT int ef_export_kvbulk(ef_store *st, FILE *out,
			       const ef_export_opts *opts,
			       ef_export_stats *stats);

/* ---- IP retention: sweep and compact ------------------------------------ */

/** Options of ef_sweep_ex(). Zero-initialize, then set. */
typedef struct ef_sweep_opts {
	int64_t now_ms;          /* sweep as of this time; 0: the store's clock */
	uint32_t batch;          /* work per write transaction: entries deleted
				  * or rewritten, owners and markers examined
				  * (0: 256) */
	unsigned lock_flags;     /* EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;      /* see ef_maint_lock() */
	void *wait_ctx;
	ef_progress_fn progress; /* keys examined / total, after each
				  * transaction; may be NULL */
	void *progress_ctx;
} ef_sweep_opts;

/** What ef_sweep_ex() did. */
typedef struct ef_sweep_stats {
	uint64_t keys_destroyed;   /* window keys destroyed: every IP sealed
				    * under them is unrecoverable */
	uint64_t keyring_wiped;    /* damaged keyring slots overwritten */
	uint64_t entries_deleted;  /* stale and over-cap entries, each with its
				    * index key and unread marker */
	uint64_t markers_dropped;  /* unread markers without an entry */
	uint64_t records_resealed; /* version-1 records (plaintext IP) rewritten:
				    * IP sealed, or dropped if past retention */
	uint64_t batches;          /* write transactions committed */
	int64_t now_ms;            /* the time it swept as of */
} ef_sweep_stats;

/**
 * Enforce retention on the whole store, as of opts->now_ms:
 *  1. destroy the key of every time window (UTC day) wholly past
 *     ip_retention, overwriting it in the keyring file and syncing: every IP
 *     sealed under it (live records, LMDB's freed pages, quarantine records,
 *     copies of data.mdb) can no longer be opened by anyone;
 *  2. delete stale and over-cap entries with their index keys and markers,
 *     and rewrite version-1 records so no plaintext IP stays live;
 *  3. drop unread markers whose entry does not exist (nor is in the owner's
 *     legacy array).
 * Holds the maintenance lock; works in short write transactions (opts->batch)
 * so workers keep writing meanwhile. Safe to interrupt at any point (even
 * kill -9) and run again. Other threads may use @st meanwhile; progress is
 * called from the calling thread. @opts and @stats may be NULL.
 * @return EF_OK; EF_EBUSY (lock held and EF_LOCK_NOWAIT); EF_EINVAL
 *         (read-only store); EF_EIO (keyring or store); EF_EFULL.
 */
EF_EXPORT int ef_sweep_ex(ef_store *st, const ef_sweep_opts *opts,
			  ef_sweep_stats *stats);

/** ef_sweep_ex() with every option at its default. */
EF_EXPORT int ef_sweep(ef_store *st, ef_sweep_stats *stats);

/** What ef_compact() did. */
typedef struct ef_compact_stats {
	uint64_t bytes_before; /* size of data.mdb before */
	uint64_t bytes_after;  /* and after */
	uint64_t keys;         /* records copied */
} ef_compact_stats;

/**
 * Rewrite data.mdb so that it holds only its live records: a fresh copy made
 * record by record (so no byte of a freed page, nor a stale byte inside a
 * live page, is carried over), synced, then renamed over data.mdb; the old
 * file's blocks are overwritten with zeros before they are released. This is
 * how plaintext from before sealing (legacy arrays, version-1 records) leaves
 * the file once migrate and sweep removed it from the live records.
 *
 * Needs the store to itself: it refuses at once with EF_EBUSY while any
 * other handle (in any process) has the store open, or another maintenance
 * job runs. No other thread may use @st during the call; on success @st is
 * open on the new file. If it fails after the old file was closed (an
 * EF_EIO, EF_ENOMEM or EF_ECORRUPT that ef_errmsg says happened while
 * reopening), @st can only be closed. @stats may be NULL.
 * @return EF_OK; EF_EBUSY; EF_EINVAL (read-only store); EF_EIO; EF_EFULL.
 */
EF_EXPORT int ef_compact(ef_store *st, ef_compact_stats *stats);

/** Store statistics; see ef_stat(). */
typedef struct ef_stat_info {
	uint64_t entries;        /* recentReceive: records */
	uint64_t index_keys;     /* receiveIndex: keys */
	uint64_t unread_markers; /* unread: keys */
	uint64_t legacy_arrays;  /* recentReceives: keys */
	uint64_t quarantined;    /* quarantine: records */
	uint64_t owners;         /* distinct owners with entries */
	uint64_t other_keys;     /* meta: and anything else */
	uint64_t map_size;       /* current map size, bytes */
	uint64_t map_used;       /* bytes of the map in use (last page) */
	uint64_t page_size;
	uint32_t format_version;
	uint32_t max_readers;
	uint32_t readers_used;
} ef_stat_info;

/** Count what the store holds, under one read transaction. */
EF_EXPORT int ef_stat(ef_store *st, ef_stat_info *out);

/* ---- errors and helpers ------------------------------------------------- */

/** Text of an error code; never NULL ("unknown error" for unknown codes). */
EF_EXPORT const char *ef_strerror(int rc);

/** Name of an error code ("EF_EINVAL"); never NULL. */
EF_EXPORT const char *ef_err_name(int rc);

/**
 * Detail of the calling thread's last error on @st (e.g. "owner: invalid
 * UTF-8 at byte 5"), or of its last failed ef_open() when @st is NULL.
 * Borrowed: valid until the thread's next call on the store. Never NULL ("").
 */
EF_EXPORT const char *ef_errmsg(const ef_store *st);

/**
 * Parse a time: epoch milliseconds ("1700000000000") or ISO-8601
 * ("2026-05-06T02:58:52.123Z", "2026-05-06T04:58:52+02:00", fraction
 * optional). @return EF_OK, or EF_EINVAL if it is neither or out of range
 * [0, EF_CREATED_MAX].
 */
EF_EXPORT int ef_time_parse(const char *text, int64_t *out_ms);

/**
 * Format @ms as ISO-8601 UTC with milliseconds ("2026-05-06T02:58:52.123Z")
 * into @buf of EF_TIME_BUFSZ bytes. @return EF_OK or EF_EINVAL (out of range).
 */
EF_EXPORT int ef_time_format(int64_t ms, char buf[EF_TIME_BUFSZ]);

/** The library's version, e.g. "0.1.0". */
EF_EXPORT const char *ef_version(void);

#ifdef __cplusplus
}
#endif

#endif /* EDGEFEED_H */

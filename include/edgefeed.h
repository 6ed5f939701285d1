/**
 * @file edgefeed.h
 * @brief The one public header of libedgefeed.
 *
 * edgefeed keeps each owner's recent-receives feed in an LMDB store, one
 * record per entry, written idempotently, so that many worker processes
 * finalizing uploads at once never lose or duplicate an entry.
 *
 * Link it with `cc app.c $(pkg-config --cflags --libs edgefeed)`.
 * `examples/worker.c` in the source tree is a complete pre-forking worker.
 *
 * @par Return codes
 * Every fallible function returns int: #EF_OK (0), a named non-error status
 * (#EF_EXISTS), or a negative `EF_E*` code (#ef_errno). ef_strerror() names a
 * code; ef_errmsg() tells, for the calling thread, what exactly was wrong
 * ("owner: invalid UTF-8 at byte 5"). Besides the codes each function lists,
 * any function that reads or writes the store may return a *store error*:
 *  - #EF_ENOMEM: an allocation failed;
 *  - #EF_EIO: the file system or LMDB failed (an LMDB panic: ef_errmsg() then
 *    says "the store must be reopened": ef_close() it and ef_open() again);
 *  - #EF_EFULL: the disk (or quota) is full, or the map cannot grow;
 *  - #EF_ECORRUPT: a page or record of the store does not decode;
 *  - #EF_EBUSY: LMDB's reader table is full (4096 concurrent readers, after
 *    the slots of dead processes were cleared).
 * A function that fails changes nothing in the store unless its comment
 * says otherwise (the long operations commit in batches).
 *
 * @par Strings and ownership
 * Strings are NUL-terminated UTF-8. Inputs are borrowed for the duration of
 * the call only: the library copies what it keeps. Results are either owned
 * by the caller (freed by the named `ef_*_free`, which all accept NULL) or
 * borrowed (the comment says how long they live). Output structs passed by
 * pointer are filled by the library; the caller allocates them.
 *
 * @par Threads
 * One ::ef_store may be used by any number of threads at once: every
 * function taking an ::ef_store is thread-safe, except ef_close() and
 * ef_compact(), during which no other thread may use the handle. Open one
 * handle per store per process and share it among the threads: LMDB does
 * not support one environment opened twice in one process (closing either
 * handle drops the locks the other relies on). Callbacks (progress, wait,
 * skip and violation reports) run on the calling thread; the clock
 * (ef_config.clock_ms) runs on whichever thread uses the store.
 *
 * @par Processes and fork()
 * Any number of processes may open the same store directory at once; their
 * writers take turns (txn.lock in the store directory, then LMDB's writer
 * lock: a process killed at any point never leaves the others waiting),
 * and each finalize is one transaction.
 * Never use an ::ef_store in a child created by fork() after ef_open(): the
 * child calls ef_open() itself. The child must not ef_close() the inherited
 * handle either: LMDB supports an environment only in the process that
 * opened it, and another of the parent's threads may have held one of the
 * handle's locks at the moment of the fork. Leave it alone (or, simplest,
 * have the parent open its handle only after forking its workers, or
 * ef_close() it before forking). Do not
 * fork() while holding an ::ef_maint: the child would share the lock. The
 * lock files, the keyring and data.mdb are close-on-exec (data.mdb set so
 * right after LMDB opens it); LMDB's own lock.mdb descriptor is not
 * reachable through its API and stays inheritable across exec() (harmless:
 * its locks are fcntl locks of the opening process).
 */
#ifndef EDGEFEED_H
#define EDGEFEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Marks the functions the shared library exports. Empty for users of the
 * library; it only matters while the library itself is built.
 */
#if defined(EF_BUILDING_LIBRARY) && defined(__GNUC__)
#define EF_EXPORT __attribute__((visibility("default")))
#else
#define EF_EXPORT
#endif

/** The version of this header, "MAJOR.MINOR.PATCH"; ef_version() gives the
 * library's. */
#define EF_VERSION_STRING "0.1.0"

/**
 * @defgroup errors Return codes and errors
 * @{
 */

/**
 * The error table: one X-macro list makes the enum #ef_errno, ef_strerror()
 * and ef_err_name(), so they can never drift apart.
 * Each row is `X(name, value, text)`: the code `EF_<name>` has @p value,
 * ef_strerror() returns @p text and ef_err_name() returns "EF_<name>".
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

/**
 * Return codes. 0 and positive values are successes; errors are negative.
 * The values are part of the ABI and never change.
 */
typedef enum ef_errno {
#define EF__ENUM(name, value, text) EF_##name = (value),
	EF_ERRNO_MAP(EF__ENUM)
#undef EF__ENUM
} ef_errno;

/** @var EF_OK
 * 0: success. */
/** @var EF_EXISTS
 * 1: a non-error status: ef_finalize() found the reservation already in
 * the owner's feed and changed nothing (first write wins). A duplicate
 * finalization is a success for the caller. */
/** @var EF_EINVAL
 * -1: an argument is invalid (a NULL pointer, a bad owner, reservation id,
 * time, IP, payload, limit or cursor, a bad ef_config field), a write on a
 * store opened with #EF_RDONLY, or a malformed import file. Nothing was
 * written; ef_errmsg() names the field and what is wrong with it. */
/** @var EF_ENOTFOUND
 * -2: the thing asked for does not exist: no such entry (ef_get_entry(),
 * ef_mark_read()), no store in the directory (ef_open() with #EF_RDONLY
 * or #EF_NOCREATE), no such file (ef_import_kvbulk()). */
/** @var EF_EBUSY
 * -3: someone else has what is needed: the maintenance lock is held and
 * #EF_LOCK_NOWAIT (or the handle's #EF_NOWAIT) was given; a compaction
 * holds the store and ef_open() was given #EF_NOWAIT; ef_compact() found
 * the store open elsewhere; or LMDB's reader table is full. Retrying later
 * may succeed. */
/** @var EF_ECORRUPT
 * -4: the store holds a record or page that does not decode. ef_check()
 * reports what is wrong. */
/** @var EF_ENOMEM
 * -5: an allocation failed. Nothing was changed. */
/** @var EF_EIO
 * -6: an I/O or LMDB error (permission, a failing disk, a lock file that
 * cannot be opened); ef_errmsg() has the system's message. Also a store
 * directory or store file that is not to be trusted (see ef_open()):
 * ef_errmsg() names the path and why ("unsafe store file '/d/keyring': a
 * symbolic link ..."). */
/** @var EF_EFULL
 * -7: no space left: the disk or a quota is full, or the memory map cannot
 * grow any further. Nothing of the failed write was kept. */
/** @var EF_EVERSION
 * -8: the store was written by a newer format than this library reads
 * (ef_errmsg() says which); it was not modified. Upgrade the library. */

/** @} */

/**
 * @defgroup config Configuration, limits and defaults
 * @{
 */

/** ef_config.flags: do not fsync on commit. Fast, but the last commits
 * may be lost (never half-applied) on power loss or an OS crash. */
#define EF_NOSYNC 0x1u
/** ef_config.flags: open read-only; every write returns #EF_EINVAL. Opening
 * creates nothing, and fails with #EF_ENOTFOUND where there is no store. */
#define EF_RDONLY 0x2u
/** ef_config.flags: group commit, which is the default (this flag only says
 * so; #EF_NO_GROUP_COMMIT turns it off). Concurrent ef_finalize() calls of
 * every process and thread that has the store open share one write
 * transaction and one sync, through a commit queue of shared memory in the
 * store directory (the file commit.queue); each caller still returns only
 * once its own finalization is committed and synced, with its own result
 * (#EF_OK or #EF_EXISTS, exactly as without it). A lone caller waits for
 * nobody. It survives kill -9 of any participant (docs/RELIABILITY.md), and
 * where the queue cannot be used (full, or its file cannot be made or
 * mapped) a call commits on its own instead of waiting. With #EF_NOSYNC
 * there is no sync to share and every call commits at once. */
#define EF_GROUP_COMMIT 0x4u
/** ef_config.flags: open an existing store only. Where @p dir holds no
 * store (no such directory, a directory without data.mdb, a file, a link
 * to nothing), ef_open() fails with #EF_ENOTFOUND ("no store at 'DIR'")
 * and creates nothing: no directory, no file. For tools that read or
 * maintain a store, so that a mistyped path is reported, not made. */
#define EF_NOCREATE 0x8u
/** ef_config.flags: never wait for another process's exclusive hold on the
 * store. Where ef_open() would wait for a compaction to finish (it holds
 * open.lock exclusively), it fails at once with #EF_EBUSY, ef_errmsg()
 * naming the lock and the holder; and the handle takes the maintenance lock
 * as if #EF_LOCK_NOWAIT were always given (ef_maint_lock() and the long
 * operations fail with #EF_EBUSY instead of waiting). */
#define EF_NOWAIT 0x10u
/**
 * ef_config.flags: seal IPs with XChaCha20-Poly1305 even where the CPU has
 * AES-GCM instructions. By default a store seals with AES-256-GCM where
 * crypto_aead_aes256gcm_is_available() (x86-64 with AES-NI and PCLMUL), an
 * IP reveal then costing about a tenth; what is sealed so opens only on
 * such a CPU (elsewhere those IPs read as absent, entries are unharmed).
 * Give this flag to every handle of a store whose files may move to a CPU
 * without them. Both forms are always read where they can be.
 */
#define EF_SEAL_PORTABLE 0x20u
/** ef_config.flags: no group commit: each ef_finalize() commits (and syncs)
 * its own write transaction, as before issue 13. Together with
 * #EF_GROUP_COMMIT: #EF_EINVAL. */
#define EF_NO_GROUP_COMMIT 0x40u

/** Largest payload, in bytes of JSON (ef_receive.payload_json). */
#define EF_PAYLOAD_MAX 16384u
/** Largest owner, in bytes once ':', '%' and space are escaped as %XX. */
#define EF_OWNER_KEY_MAX 320u
/** Largest reservation id, in bytes once escaped like the owner. */
#define EF_RESERVATION_KEY_MAX 160u
/** Largest created_ms (and time ef_time_parse() accepts): 9999999999999,
 * in the year 2286. */
#define EF_CREATED_MAX 9999999999999LL
/** How far a time given to the store may be ahead of the clock: 5 minutes,
 * for clocks of machines that disagree a little. A created_ms further ahead
 * of the store's clock is refused (ef_finalize(); migration and import
 * quarantine or skip it), and so is a maintenance time further ahead of the
 * real clock (ef_sweep_ex(), ef_seed(), and every job under ef_maint_lock()
 * while the store's clock is ahead). */
#define EF_CLOCK_SKEW_MS (5LL * 60 * 1000)
/** Largest page ef_feed_page() returns. */
#define EF_PAGE_LIMIT_MAX 1000u
/** Page size of ef_feed_page() when its limit is 0. */
#define EF_PAGE_LIMIT_DEFAULT 50u

/** Default ef_config.map_size: 4 MiB to start with; the map grows by itself
 * (also when another process grew it). */
#define EF_DEFAULT_MAP_SIZE ((size_t)4 << 20)
/** Default ef_config.feed_cap: the newest 100 entries of each owner. */
#define EF_DEFAULT_FEED_CAP 100u
/** Default ef_config.feed_ttl_ms: 90 days. */
#define EF_DEFAULT_FEED_TTL_MS (90LL * 24 * 3600 * 1000)
/** Default ef_config.ip_retention_ms: 30 days. */
#define EF_DEFAULT_IP_RETENTION_MS (30LL * 24 * 3600 * 1000)

/** Size of a buffer that holds any ef_time_format() result, with its NUL. */
#define EF_TIME_BUFSZ 32u

/**
 * An open store: opaque. Made by ef_open(), freed by ef_close(). Shared by
 * the threads of one process; never used across fork() (see the file's
 * notes on processes).
 */
typedef struct ef_store ef_store;

/**
 * A clock, for ef_config.clock_ms: returns the current time in milliseconds
 * since the Unix epoch. Called from any thread that uses the store, so it
 * must be thread-safe; it must not call back into the library.
 * @param ctx  ef_config.clock_ctx, as given.
 * @return milliseconds since 1970-01-01T00:00:00Z.
 */
typedef int64_t (*ef_clock_fn)(void *ctx);

/**
 * Called once, before blocking, when another process holds a lock that the
 * caller needs: the maintenance lock (ef_maint_lock() and the long
 * operations), or open.lock, which a compaction holds exclusively while
 * ef_open() waits for it (ef_config.on_wait). Not called where the caller
 * asked not to wait (#EF_LOCK_NOWAIT, #EF_NOWAIT): that fails at once with
 * #EF_EBUSY instead.
 * @param holder  describes the holder ("pid 1234 (edgefeed compact)"), or
 *                "another process" when it cannot be told; borrowed for
 *                the call only.
 * @param ctx     the context given with the callback.
 */
typedef void (*ef_wait_fn)(const char *holder, void *ctx);

/**
 * Store configuration, for ef_open(). Zero-initialize it (`= {0}`) and set
 * what you need; every field left 0 (or NULL) takes its default. ef_open()
 * copies it. All processes sharing a store should use the same feed_cap,
 * feed_ttl_ms and ip_retention_ms: they are applied by whoever reads or
 * writes, and are not stored.
 */
typedef struct ef_config {
	size_t map_size;          /**< initial LMDB map size in bytes (default
				   * #EF_DEFAULT_MAP_SIZE); it grows by itself */
	uint32_t feed_cap;        /**< newest entries kept per owner (default
				   * #EF_DEFAULT_FEED_CAP) */
	int64_t feed_ttl_ms;      /**< entries older than this are stale (default
				   * #EF_DEFAULT_FEED_TTL_MS); negative: #EF_EINVAL */
	int64_t ip_retention_ms;  /**< IPs are returned, and kept readable, only
				   * this long (default #EF_DEFAULT_IP_RETENTION_MS);
				   * negative: #EF_EINVAL */
	unsigned flags;           /**< #EF_NOSYNC, #EF_RDONLY, #EF_GROUP_COMMIT,
				   * #EF_NO_GROUP_COMMIT, #EF_NOCREATE,
				   * #EF_NOWAIT, #EF_SEAL_PORTABLE; other bits:
				   * #EF_EINVAL */
	ef_clock_fn clock_ms;     /**< injectable clock (tests, replays); NULL:
				   * the system's real-time clock. Maintenance
				   * refuses to act on it while it is ahead of
				   * the system's clock (CLOCK_REALTIME, the
				   * "real" clock, never this one) by more than
				   * #EF_CLOCK_SKEW_MS: inject past times */
	void *clock_ctx;          /**< passed to clock_ms; must outlive the store */
	ef_wait_fn on_wait;       /**< called once before ef_open() waits for a
				   * compaction that holds the store (see
				   * ef_wait_fn); NULL: wait without a word */
	void *wait_ctx;           /**< passed to on_wait */
} ef_config;

/** @} */

/**
 * @defgroup feed Finalizing and reading feeds
 * @{
 */

/**
 * One finalized reservation, as given to ef_finalize(). Every pointer is
 * borrowed for the call only.
 */
typedef struct ef_receive {
	const char *owner;          /**< required; canonicalized (ASCII white
				     * space trimmed, ASCII lowercased): see
				     * ef_canonical_owner() */
	const char *reservation_id; /**< required; taken as given (case-sensitive),
				     * valid UTF-8, no control characters, at
				     * most #EF_RESERVATION_KEY_MAX bytes escaped */
	int64_t created_ms;         /**< milliseconds since the epoch, in
				     * [1, #EF_CREATED_MAX] and at most
				     * #EF_CLOCK_SKEW_MS ahead of the store's
				     * clock; 0: now (the store's clock), so the
				     * epoch itself cannot be given */
	const char *ip;             /**< IPv4 or IPv6 text, or NULL; stored sealed,
				     * and not at all if already past retention */
	const char *payload_json;   /**< a JSON object of at most #EF_PAYLOAD_MAX
				     * bytes, kept byte for byte; or NULL */
} ef_receive;

/**
 * One feed entry, in an ::ef_page or from ef_get_entry(). All strings are
 * owned by the page (or entry) and live until ef_page_free() (or
 * ef_entry_free()).
 */
typedef struct ef_entry {
	char *reservation_id; /**< as finalized */
	int64_t created_ms;   /**< milliseconds since the Unix epoch */
	char *ip;             /**< canonical text; NULL if none was given or it
			       * is past ip_retention */
	char *payload_json;   /**< byte for byte as given; NULL if none was given */
	int unread;           /**< 1 until the owner marks it read, else 0 */
} ef_entry; /* its strings share one allocation: free them only through
	     * ef_page_free() or ef_entry_free(), never one by one */

/**
 * A page of an owner's feed, newest first, filled by ef_feed_page(). The
 * caller owns the struct; its contents are freed by ef_page_free().
 */
typedef struct ef_page {
	ef_entry *entries;  /**< @c count entries, newest first */
	size_t count;       /**< number of entries (0 on an empty feed) */
	char *next_cursor;  /**< pass to ef_feed_page() for the next page; NULL
			     * when there is none */
} ef_page;

/** @} */

/**
 * @defgroup open Opening and closing
 * @{
 */

/* ---- opening and closing ---------------------------------------------- */

/**
 * Open (creating it if missing, unless #EF_RDONLY or #EF_NOCREATE) the
 * store in directory @p dir.
 *
 * @param out  receives the handle; on failure it is set to NULL and nothing
 *             needs freeing.
 * @param dir  store directory; created (mode 0700; not its parents) if it
 *             does not exist (not with #EF_RDONLY or #EF_NOCREATE).
 *             Borrowed; the handle keeps a copy.
 * @param cfg  configuration, or NULL for every default. Copied.
 * @return #EF_OK; #EF_EINVAL (@p out is NULL, @p dir is empty, or not a
 *         directory where the store would be created, or a bad @p cfg
 *         field); #EF_ENOTFOUND (#EF_RDONLY or #EF_NOCREATE, and there is no
 *         store at @p dir: no such directory, a directory without
 *         data.mdb, a file; nothing was created); #EF_EIO (cannot create or open:
 *         permission, I/O; or an unsafe store directory or file, see
 *         below); #EF_EFULL; #EF_EVERSION (a store written by a
 *         newer format); #EF_EBUSY (#EF_NOWAIT, and a compaction holds
 *         the store); #EF_ECORRUPT; #EF_ENOMEM. For the detail of a
 *         failed open, call ef_errmsg(NULL) on the same thread.
 *
 * Trusts the store directory and its files (data.mdb, lock.mdb, open.lock,
 * maint.lock, txn.lock, keyring) only as ssh trusts its key files: each
 * must be owned by the effective uid or root, writable by neither group
 * nor others, and, for a file, a regular file and no symbolic link (the
 * library opens its files with O_NOFOLLOW and makes them with O_EXCL, mode
 * 0600). Anything else is refused with #EF_EIO before a byte of it is read
 * or written, here or, for the maintenance lock and the keyring, where they
 * are first used (an unusable keyring costs IPs, never entries or reads).
 *
 * Holds a shared lock on the store (open.lock) for as long as it is open,
 * so that compaction never runs under a live handle. While a compaction
 * holds it, ef_open() waits, first calling ef_config.on_wait with the
 * holder; with #EF_NOWAIT it fails with #EF_EBUSY instead. It also clears
 * the reader slots of dead processes. Thread-safe; the
 * handle may be shared by all the threads of the process. Open each store
 * once per process, and after fork(), in the child.
 *
 * A @p dir that starts with "redis://" is not a path: it opens the store on
 * Redis Cluster that the address names,
 * redis://HOST:PORT[,HOST:PORT...][?OPTION=VALUE&...] (options store=,
 * wait=, wait_ms=, timeout_ms=, retry_ms=, redirects=, user=, password=;
 * docs/CLUSTER.md). The same calls work there with the same semantics;
 * what differs: store-wide work (ef_check, ef_export_kvbulk, ef_stat,
 * ef_sweep) sees each owner in one consistent state rather than the whole
 * store at one instant; durability is the cluster's (appendfsync, and
 * wait= for replicas), so EF_NOSYNC and group commit do not apply;
 * ef_feed_page_try() always refuses; ef_compact() rewrites every node's
 * append-only file. Errors: #EF_EINVAL for a malformed address (the message
 * names the part, never the password); #EF_EIO when no node answers;
 * #EF_ENOTFOUND (#EF_RDONLY or #EF_NOCREATE) when the cluster holds no store
 * of that name.
 */
EF_EXPORT int ef_open(ef_store **out, const char *dir, const ef_config *cfg);

/**
 * Close a store and free the handle.
 * @param st  the handle, or NULL (nothing is done).
 * No other thread may be using @p st, and every ::ef_maint taken on it
 * should be released first. Results already returned (pages, entries) stay
 * valid: they are owned by the caller. Never call it in a forked child on
 * a handle inherited from the parent.
 */
EF_EXPORT void ef_close(ef_store *st);

/** @} */

/**
 * @addtogroup feed
 * @{
 */

/* ---- writing ------------------------------------------------------------ */

/**
 * Record that reservation @p r->reservation_id finalized for @p r->owner, in
 * one atomic write transaction together with its uniqueness index and
 * unread marker, then enforce the owner's cap and staleness in the same
 * transaction.
 *
 * @param st  the store.
 * @param r   the receive; every field is validated before anything is
 *            written. Borrowed for the call.
 * @return #EF_OK (written); #EF_EXISTS (the reservation is already in the
 *         owner's feed, as an entry or in a legacy array: nothing changed,
 *         first write wins, even if @p r carries other fields); #EF_EINVAL
 *         (bad input, or a read-only store: nothing written, ef_errmsg
 *         names the field, e.g. "ip: '1.2.3' is not an IPv4 or IPv6
 *         address"; "created_ms: ... is ahead of the store's clock" beyond
 *         #EF_CLOCK_SKEW_MS); #EF_EIO (also: the keyring that seals IPs
 *         cannot be used, or the key of the IP's day was destroyed while
 *         the day is within ip_retention, by a sweep with a clock ahead:
 *         nothing written, ef_errmsg names the day; finalize without the
 *         ip to keep the entry); #EF_EFULL; #EF_ENOMEM; or another store
 *         error. An IP already past retention is not an error: the entry
 *         is written without it.
 *
 * A crash at any point leaves all of the finalization or none of it. A
 * duplicate finalization from any process, at any time, leaves exactly one
 * entry. An entry already stale or beyond the owner's cap when it is
 * finalized is written and trimmed at once: ef_get_entry() then finds
 * nothing. Thread-safe. Durable when it returns unless the store has
 * #EF_NOSYNC.
 */
EF_EXPORT int ef_finalize(ef_store *st, const ef_receive *r);

/** Most receives ef_finalize_batch() takes in one call. */
#define EF_BATCH_MAX 256u

/**
 * Finalize @p n receives at once, in one write transaction and one sync:
 * for a caller that has many at hand together (an event loop's calls of
 * one turn). Each gets the result that ef_finalize() would have given it,
 * called for each in order: a later receive of a reservation that an
 * earlier one of the batch finalized is #EF_EXISTS, and a bad receive
 * fails alone (the others are written). With group commit (the default)
 * the receives join the store's commit queue together, so that the calls
 * and batches of other threads and processes share the transaction and its
 * sync; a batch that finds nobody else commits at once.
 *
 * @param st   the store.
 * @param rs   @p n receives, as for ef_finalize() (created_ms 0: now).
 * @param n    1..#EF_BATCH_MAX.
 * @param rcs  @p n results: #EF_OK, #EF_EXISTS or an error, as
 *             ef_finalize() returns them. ef_errmsg() keeps the detail of
 *             the last error only: call ef_finalize() for one receive to
 *             learn its detail.
 * @return #EF_OK (look at @p rcs); #EF_EINVAL (NULL @p st, @p rs or
 *         @p rcs, or @p n outside 1..#EF_BATCH_MAX: no result is set).
 *         Durable when it returns unless the store has #EF_NOSYNC.
 *         Thread-safe.
 */
EF_EXPORT int ef_finalize_batch(ef_store *st, const ef_receive *rs, size_t n,
				int *rcs);

/* ---- reading ------------------------------------------------------------ */

/**
 * Read one page of @p owner's feed, newest first.
 *
 * @param st      the store.
 * @param owner   the owner, in any spelling that canonicalizes to it.
 * @param cursor  NULL (or "") for the first page, else the next_cursor of
 *                an earlier page of the same owner. Borrowed.
 * @param limit   at most this many entries, 1..#EF_PAGE_LIMIT_MAX; 0 means
 *                #EF_PAGE_LIMIT_DEFAULT.
 * @param out     receives the page (its contents owned by the caller: free
 *                them with ef_page_free()). On failure it is left empty
 *                and needs no freeing.
 * @return #EF_OK (possibly with 0 entries); #EF_EINVAL (NULL @p st or
 *         @p out, a bad owner, limit or cursor); #EF_ENOMEM; #EF_ECORRUPT;
 *         #EF_EIO; or another store error.
 *
 * Paging is stable: entries finalized between pages never make a client see
 * an entry twice or skip an older one. Stale and over-cap entries are never
 * returned. An entry's ip is NULL once it is past ip_retention. While the
 * owner still has a legacy array, its elements are merged in. Reads one
 * snapshot, never blocks writers. Thread-safe.
 */
EF_EXPORT int ef_feed_page(ef_store *st, const char *owner, const char *cursor,
			   size_t limit, ef_page *out);

/**
 * ef_feed_page(), but only if it can be read without waiting: for an event
 * loop that reads on its own thread and must never sleep on a lock or a
 * sync (the Node.js binding reads pages this way, and on #EF_EBUSY on its
 * worker threads).
 *
 * It never syncs a file and never waits for a lock: a lock that another
 * thread or process holds (a free read transaction of this handle to
 * renew, the keyring while it is written, the map while it is resized)
 * makes it return #EF_EBUSY at once, with nothing to free. A handle has no
 * read transaction to renew until it has read once without this call (or
 * after a burst of reads by many threads), so the first call usually
 * returns #EF_EBUSY.
 *
 * @param st      the store.
 * @param owner   as for ef_feed_page().
 * @param cursor  as for ef_feed_page().
 * @param limit   as for ef_feed_page().
 * @param out     as for ef_feed_page(); left empty on #EF_EBUSY.
 * @return what ef_feed_page() returns, or #EF_EBUSY (read it with
 *         ef_feed_page() where waiting is fine). Thread-safe.
 */
EF_EXPORT int ef_feed_page_try(ef_store *st, const char *owner,
			       const char *cursor, size_t limit, ef_page *out);

/**
 * Free a page's contents (not the ::ef_page itself, which the caller owns)
 * and set it empty, so freeing twice is harmless.
 * @param page  the page, or NULL (nothing is done).
 */
EF_EXPORT void ef_page_free(ef_page *page);

/**
 * Look up one entry of @p owner's feed by reservation id (an indexed read,
 * never a scan).
 * @param st              the store.
 * @param owner           the owner, in any spelling.
 * @param reservation_id  the reservation, exactly as finalized.
 * @param out             receives a new entry, owned by the caller: free it
 *                        with ef_entry_free(). NULL on failure.
 * @return #EF_OK; #EF_ENOTFOUND (no such entry, or it is stale or beyond
 *         the owner's cap); #EF_EINVAL (NULL @p st or @p out, a bad owner or
 *         reservation id); or a store error.
 * The read rules of ef_feed_page() apply to its ip and unread fields.
 * Thread-safe.
 */
EF_EXPORT int ef_get_entry(ef_store *st, const char *owner,
			   const char *reservation_id, ef_entry **out);

/**
 * Free an entry from ef_get_entry() (the struct and its strings).
 * @param e  the entry, or NULL (nothing is done).
 */
EF_EXPORT void ef_entry_free(ef_entry *e);

/**
 * Write the canonical spelling of an owner (ASCII white space trimmed,
 * ASCII letters lowercased), the one identity every path uses, into @p buf.
 * Needs no store; thread-safe.
 * @param owner  the owner as given (valid UTF-8, no control characters).
 * @param buf    receives the canonical owner, NUL-terminated.
 * @param cap    size of @p buf; #EF_OWNER_KEY_MAX + 1 bytes always suffice.
 * @return #EF_OK; #EF_EINVAL (NULL @p buf, not a valid owner, or @p cap too
 *         small); for an invalid owner, ef_errmsg(NULL) on the same thread
 *         says why.
 */
EF_EXPORT int ef_canonical_owner(const char *owner, char *buf, size_t cap);

/**
 * Count the unread entries that a full read of @p owner's feed would return
 * (markers of stale or over-cap entries not deleted yet do not count).
 * @param st     the store.
 * @param owner  the owner, in any spelling.
 * @param out    receives the count (0 when the owner has no entry).
 * @return #EF_OK; #EF_EINVAL (NULL @p st or @p out, a bad owner); #EF_EIO;
 *         #EF_ECORRUPT; or another store error. Thread-safe.
 */
EF_EXPORT int ef_unread_count(ef_store *st, const char *owner, uint64_t *out);

/**
 * Mark one entry read. Idempotent.
 * @param st              the store.
 * @param owner           the owner, in any spelling.
 * @param reservation_id  the reservation, exactly as finalized.
 * @return #EF_OK (read now, whether or not it was unread before);
 *         #EF_ENOTFOUND (the owner has no such reservation); #EF_EINVAL
 *         (bad arguments, or a read-only store); or a store error.
 * Thread-safe.
 */
EF_EXPORT int ef_mark_read(ef_store *st, const char *owner,
			   const char *reservation_id);

/**
 * Mark every entry of @p owner read, in one write transaction. Idempotent;
 * an owner without entries is not an error.
 * @param st     the store.
 * @param owner  the owner, in any spelling.
 * @return #EF_OK; #EF_EINVAL (bad arguments, or a read-only store); #EF_EIO;
 *         or another store error. Thread-safe.
 */
EF_EXPORT int ef_mark_all_read(ef_store *st, const char *owner);

/** @} */

/**
 * @defgroup maint Maintenance: lock, reset, seed, migrate, check
 * @{
 */

/* ---- maintenance -------------------------------------------------------- */

/** Flag of ef_maint_lock() and the lock_flags of the long operations:
 * return #EF_EBUSY at once instead of waiting for the lock. */
#define EF_LOCK_NOWAIT 0x1u

/** A held maintenance lock: opaque; see ef_maint_lock(). */
typedef struct ef_maint ef_maint;

/**
 * Take the store's maintenance lock, which serializes long operations (seed,
 * migrate, import, sweep, compact) across processes. It is held by the
 * process (a flock on maint.lock in the store directory) and released by
 * ef_maint_unlock(), or by the kernel if the process dies. It does not keep
 * workers from finalizing or reading.
 *
 * The long operations take it themselves: take it only to run a job of
 * your own (e.g. ef_reset()), and do not call them while holding it (they
 * would wait for it forever, or fail with #EF_EBUSY under #EF_LOCK_NOWAIT).
 *
 * @param st       the store.
 * @param what     a short description of the holder's job, shown to
 *                 waiters; NULL: "maintenance". Borrowed.
 * @param flags    0 (wait) or #EF_LOCK_NOWAIT; a handle opened with
 *                 #EF_NOWAIT never waits, whatever @p flags say.
 * @param on_wait  called before waiting (may be NULL).
 * @param ctx      passed to @p on_wait.
 * @param out      receives the held lock, released by ef_maint_unlock();
 *                 NULL on failure.
 * @return #EF_OK; #EF_EBUSY (held elsewhere and #EF_LOCK_NOWAIT; ef_errmsg
 *         names the holder); #EF_EINVAL (NULL @p st or @p out; or the
 *         store's clock is ahead of the real one, the system's, by more
 *         than #EF_CLOCK_SKEW_MS: every long operation acts as of it, so
 *         none runs, and ef_errmsg names clock_ms); #EF_EIO; #EF_ENOMEM.
 * Thread-safe, but a lock is the process's: a second thread taking it waits
 * like another process would. Do not fork() while holding it.
 */
EF_EXPORT int ef_maint_lock(ef_store *st, const char *what, unsigned flags,
			    ef_wait_fn on_wait, void *ctx, ef_maint **out);

/**
 * Release a maintenance lock and free it.
 * @param lk  the lock, or NULL (nothing is done).
 */
EF_EXPORT void ef_maint_unlock(ef_maint *lk);

/** Result of ef_reset(). */
typedef struct ef_reset_stats {
	uint64_t keys_deleted; /**< feed keys removed (entries, indexes, markers,
				* legacy arrays) */
	uint64_t batches;      /**< write transactions used */
} ef_reset_stats;

/**
 * Remove every feed record (entries, index keys, unread markers and legacy
 * arrays) in batches of short write transactions, so workers keep writing
 * meanwhile (what they write during the reset may or may not survive it).
 * The caller should hold the maintenance lock. If it fails, the batches
 * already committed stay removed; running it again finishes the job.
 * @param st     the store.
 * @param stats  receives what was done; may be NULL.
 * @return #EF_OK; #EF_EINVAL (NULL @p st, or a read-only store); #EF_EIO;
 *         #EF_EFULL; or another store error.
 */
EF_EXPORT int ef_reset(ef_store *st, ef_reset_stats *stats);

/**
 * Progress of a long operation: @p done of @p total units (the unit is
 * named by the operation's options). Called from the operation's thread;
 * keep it quick, and do not call the library from it.
 * @param done   units done so far.
 * @param total  units in all (it may grow while the operation runs).
 * @param ctx    the context given with the callback.
 */
typedef void (*ef_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/** Options of ef_seed(). Zero-initialize, then set. */
typedef struct ef_seed_opts {
	uint32_t owners;       /**< owners user0000@example.com ... (1..10000000) */
	uint32_t receives;     /**< receives per owner (1..1000000) */
	int reset;             /**< nonzero: first remove every feed record
				* (ef_reset()) */
	uint64_t rng_seed;     /**< same seed and now_ms: same data */
	int64_t now_ms;        /**< times are over the 60 days before it; 0: now;
				* at most #EF_CLOCK_SKEW_MS ahead of the real
				* clock */
	unsigned lock_flags;   /**< 0 or #EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;    /**< see ef_maint_lock(); may be NULL */
	void *wait_ctx;        /**< passed to on_wait */
	ef_progress_fn progress; /**< receives done / total; may be NULL */
	void *progress_ctx;    /**< passed to progress */
} ef_seed_opts;

/** Result of ef_seed(). */
typedef struct ef_seed_stats {
	uint64_t created;       /**< finalizations that returned #EF_OK */
	uint64_t duplicates;    /**< that returned #EF_EXISTS */
	uint64_t reset_deleted; /**< keys removed by the reset */
	uint32_t owners;        /**< owners seeded */
} ef_seed_stats;

/**
 * Make deterministic, realistic demo data through the finalize path:
 * owners "user0042@example.com", reservation ids derived from the seed,
 * documentation-range IPs (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32), times over the 60 days before now_ms, and a payload with
 * fileName, size, senderEmail and linkId. Holds the maintenance lock for its
 * whole run; finalizations are written in batches of short transactions
 * (on failure, the batches already committed stay).
 * @param st     the store.
 * @param opts   what to make; required.
 * @param stats  receives what was done; may be NULL.
 * @return #EF_OK; #EF_EINVAL (NULL @p st or @p opts, owners or receives out
 *         of range, a read-only store, now_ms or the store's clock ahead of
 *         the real clock beyond #EF_CLOCK_SKEW_MS); #EF_EBUSY (lock held and
 *         #EF_LOCK_NOWAIT); or a store error.
 */
EF_EXPORT int ef_seed(ef_store *st, const ef_seed_opts *opts,
		      ef_seed_stats *stats);

/** Options of ef_migrate(). Zero-initialize, then set. */
typedef struct ef_migrate_opts {
	uint32_t batch;          /**< legacy owners per write transaction
				  * (0: 16) */
	int dry_run;             /**< nonzero: compute everything, write nothing */
	unsigned lock_flags;     /**< 0 or #EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;      /**< see ef_maint_lock(); may be NULL */
	void *wait_ctx;          /**< passed to on_wait */
	ef_progress_fn progress; /**< owners done / total; may be NULL */
	void *progress_ctx;      /**< passed to progress */
} ef_migrate_opts;

/** What ef_migrate() did (or, with dry_run, would do). */
typedef struct ef_migrate_stats {
	uint64_t owners;          /**< legacy arrays converted */
	uint64_t elements;        /**< elements in them */
	uint64_t migrated;        /**< entries written */
	uint64_t duplicates;      /**< elements merged: a reservation repeated in
				   * an array, or already finalized */
	uint64_t quarantined;     /**< elements (or whole values) moved to
				   * quarantine */
	uint64_t kept_without_ip; /**< migrated, but their ip was not an address */
	uint64_t markers_kept;    /**< unread markers of migrated entries */
	uint64_t orphan_markers;  /**< markers of these owners without an entry */
	uint64_t batches;         /**< write transactions */
} ef_migrate_stats;

/**
 * Convert every legacy array (`recentReceives:<owner>`) into per-entry records
 * through the finalize logic: each owner in one write transaction (several
 * owners per transaction, up to opts->batch), then the legacy key deleted.
 * What cannot be converted is kept byte-for-byte in a quarantine record
 * (`quarantine:<owner>:<hash>`) with the reasons. Existing unread markers are
 * kept; none are created. A legacy key whose owner is not spelled as
 * edgefeed spells it (the rule of ef_import_kvbulk(); an old writer may
 * have written `recentReceives:Alice@X`) is never merged into an owner's
 * feed: its whole value goes to a quarantine record under no owner
 * (`quarantine:-:<hash>`), the reason saying what is wrong with the key.
 * Re-running does nothing new, and picks up arrays
 * an old writer recreated; a crash leaves each owner fully migrated or not
 * at all. Holds the maintenance lock; workers keep writing meanwhile.
 * @param st     the store.
 * @param opts   options; NULL for the defaults.
 * @param stats  receives what was done (or would be); may be NULL.
 * @return #EF_OK; #EF_EBUSY (lock held and #EF_LOCK_NOWAIT); #EF_EINVAL (a
 *         read-only store, or its clock ahead of the real one: see
 *         ef_maint_lock()); #EF_EIO (also: the keyring cannot seal an IP);
 *         or a store error. An element dated more than #EF_CLOCK_SKEW_MS
 *         ahead of the store's clock is quarantined, not migrated.
 */
EF_EXPORT int ef_migrate(ef_store *st, const ef_migrate_opts *opts,
			 ef_migrate_stats *stats);

/**
 * Called by ef_check() once per violation.
 * @param what  which invariant is broken (a short English phrase).
 * @param key   the key involved, printable (other bytes as \\xNN, every IP
 *              address in it masked with '*'), or NULL; borrowed for the
 *              call.
 * @param ctx   ef_check_opts.report_ctx.
 */
typedef void (*ef_violation_fn)(const char *what, const char *key, void *ctx);

/** Options of ef_check(). Zero-initialize, then set. */
typedef struct ef_check_opts {
	int strict;              /**< nonzero: also flag what a sweep would
				  * delete (owners over their cap, markers of
				  * stale entries) */
	ef_violation_fn report;  /**< called per violation; may be NULL */
	void *report_ctx;        /**< passed to report */
	ef_progress_fn progress; /**< keys done / total; may be NULL */
	void *progress_ctx;      /**< passed to progress */
} ef_check_opts;

/** What ef_check() looked at and found. */
typedef struct ef_check_stats {
	uint64_t keys;        /**< every key read */
	uint64_t entries;     /**< entry records */
	uint64_t index_keys;  /**< receiveIndex: keys */
	uint64_t markers;     /**< unread markers */
	uint64_t legacy_arrays; /**< legacy arrays still present */
	uint64_t quarantined; /**< quarantine records */
	uint64_t violations;  /**< 0: every invariant holds */
} ef_check_stats;

/**
 * Verify every invariant of DESIGN.md under one read transaction (a
 * consistent snapshot, while workers write): keys in canonical form, every
 * record decodes and agrees with its key, every entry has its index (same
 * createdSort) and every index its entry, every unread marker an entry, the
 * format version present, sealed IPs open with their window's key, the
 * keyring file sound. Works on a read-only handle; changes nothing.
 * @param st     the store.
 * @param opts   options; NULL for the defaults.
 * @param stats  receives what was found; may be NULL.
 * @return #EF_OK (look at the violations count: a violation is not an
 *         error of the call); a store error.
 */
EF_EXPORT int ef_check(ef_store *st, const ef_check_opts *opts,
		       ef_check_stats *stats);

/** @} */

/**
 * @defgroup kvbulk Workers KV bulk import and export
 * @{
 */

/* ---- Workers KV bulk import and export ------------------------------------ */

/**
 * Why an element of a bulk file was not imported. One X-macro list makes
 * the enum #ef_import_skip and ef_import_skip_name(), so they cannot drift
 * apart. Each row is `X(name, JSON name)`:
 *  - UNKNOWN_PREFIX "unknownPrefix": not a key of a feed family (meta: keys
 *    too)
 *  - BAD_KEY "badKey": a feed key, but malformed
 *  - NOT_STRING "valueNotString": "value" is not a string
 *  - BAD_BASE64 "badBase64": "base64" is not a boolean, or the value does
 *    not decode
 *  - BAD_VALUE "badValue": the value is not what its key family holds
 *  - MISMATCH "keyMismatch": a record disagrees with its key
 *  - CONFLICT "conflict": the store holds another entry for the
 *    reservation (first write wins)
 *  - NO_ENTRY "noEntry": an index key or unread marker whose entry is
 *    neither in the file nor in the store
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

/** Reasons for skipping an element of a bulk file (see
 * #EF_IMPORT_SKIP_MAP); they index ef_import_stats.skipped_by_reason. */
typedef enum ef_import_skip {
#define EF__SKIP_ENUM(name, json) EF_IMPORT_SKIP_##name,
	EF_IMPORT_SKIP_MAP(EF__SKIP_ENUM)
#undef EF__SKIP_ENUM
	EF_IMPORT_SKIP_COUNT
} ef_import_skip;

/** @var EF_IMPORT_SKIP_UNKNOWN_PREFIX
 * "unknownPrefix": not a key of a feed family (meta: keys too). */
/** @var EF_IMPORT_SKIP_BAD_KEY
 * "badKey": a feed key, but malformed. */
/** @var EF_IMPORT_SKIP_NOT_STRING
 * "valueNotString": "value" is not a string. */
/** @var EF_IMPORT_SKIP_BAD_BASE64
 * "badBase64": "base64" is not a boolean, or the value does not decode. */
/** @var EF_IMPORT_SKIP_BAD_VALUE
 * "badValue": the value is not what its key family holds. */
/** @var EF_IMPORT_SKIP_MISMATCH
 * "keyMismatch": a record disagrees with its key. */
/** @var EF_IMPORT_SKIP_CONFLICT
 * "conflict": the store holds another entry for the reservation (first
 * write wins). */
/** @var EF_IMPORT_SKIP_NO_ENTRY
 * "noEntry": an index key or unread marker whose entry is neither in the
 * file nor in the store. */
/** @var EF_IMPORT_SKIP_COUNT
 * The number of reasons (not a reason). */

/**
 * The JSON name of a skip reason ("badKey"), as the CLI's skippedReasons
 * prints it.
 * @param reason  an ::ef_import_skip.
 * @return a static string; never NULL ("unknown" for an unknown reason).
 */
EF_EXPORT const char *ef_import_skip_name(int reason);

/**
 * Called once for each element that ef_import_kvbulk() does not take.
 * Strings are borrowed for the call only.
 * @param element  its index in the file's array (0-based, as jq '.[N]').
 * @param key      its "key", @p key_len bytes (may hold any UTF-8, even NUL;
 *                 not NUL-terminated), every IP address in it masked with
 *                 '*' (a namespace may hold keys such as "ratelimit:<IP>").
 * @param key_len  length of @p key in bytes.
 * @param reason   an ::ef_import_skip.
 * @param detail   what exactly was wrong, NUL-terminated.
 * @param ctx      ef_import_opts.skip_ctx.
 */
typedef void (*ef_import_skip_fn)(uint64_t element, const char *key,
				  size_t key_len, int reason,
				  const char *detail, void *ctx);

/** Options of ef_import_kvbulk(). Zero-initialize, then set. */
typedef struct ef_import_opts {
	uint32_t batch;            /**< elements per write transaction (0: 1000) */
	unsigned lock_flags;       /**< 0 or #EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;        /**< see ef_maint_lock(); may be NULL */
	void *wait_ctx;            /**< passed to on_wait */
	ef_progress_fn progress;   /**< elements done / total; may be NULL */
	void *progress_ctx;        /**< passed to progress */
	ef_import_skip_fn on_skip; /**< may be NULL (the counts still say) */
	void *skip_ctx;            /**< passed to on_skip */
} ef_import_opts;

/** What ef_import_kvbulk() did. */
typedef struct ef_import_stats {
	uint64_t elements;        /**< elements read */
	uint64_t legacy_arrays;   /**< legacy arrays stored under a key of their own */
	uint64_t legacy_merged;   /**< legacy arrays merged into the array the
				   * store (or the file) already held under the
				   * same key */
	uint64_t merged_owners;   /**< owners whose legacy arrays were merged */
	uint64_t entries;         /**< entry records written, with their index keys */
	uint64_t index_keys;      /**< index keys found to match their entry */
	uint64_t markers;         /**< unread markers written */
	uint64_t quarantine_records; /**< quarantine records of the file, stored
				      * (or already there) */
	uint64_t quarantined;     /**< legacy values that could not merge, kept in
				   * new quarantine records */
	uint64_t ips_dropped;     /**< IPs past ip_retention, left out */
	uint64_t unchanged;       /**< elements the store already held */
	uint64_t skipped;         /**< elements not taken: see on_skip */
	uint64_t skipped_by_reason[EF_IMPORT_SKIP_COUNT]; /**< skipped, by
				   * ::ef_import_skip */
	uint64_t batches;         /**< write transactions */
	uint64_t trimmed;         /**< elements left out by the feed's cap and
				   * staleness rule, as ef_finalize()'s trim
				   * would delete them at once: entries beyond
				   * the owner's feed_cap newest or older than
				   * feed_ttl_ms (not written), and the index
				   * keys and unread markers of such entries */
	uint64_t trim_deleted;    /**< entries of the store (or of this import)
				   * that newer imported entries pushed beyond
				   * feed_cap, or that were past feed_ttl_ms,
				   * deleted by the trim with their index keys
				   * and markers, as a finalization does */
} ef_import_stats;

/**
 * Import a Workers KV bulk file (a JSON array of {"key", "value",
 * "base64", "expiration", "expiration_ttl", "metadata"}) into the store:
 *  - legacy arrays (`recentReceives:<owner>`): an array already under the
 *    same key is merged with (elements concatenated, leaving out those it
 *    already holds); a value that cannot merge (not a JSON array) is kept
 *    byte for byte in a quarantine record instead;
 *  - entry records (`recentReceive:<owner>:<createdSort>:<reservationId>`,
 *    value: the record bytes, base64): the record must decode and agree
 *    with its key; it is written again as ef_finalize() writes an entry
 *    (the same encoding and the same write path), with its index key, its
 *    IP (from "metadata": {"ip"}) sealed under this store's keys, but no
 *    marker (markers come as keys of their own). As for a finalization,
 *    a reservation that already has an entry, or is an element of the
 *    owner's legacy array, is not written again (#EF_IMPORT_SKIP_CONFLICT,
 *    first write wins; the same record under the same key is counted as
 *    unchanged), and each owner's feed is trimmed to its feed_cap newest
 *    entries within feed_ttl_ms: an imported entry that the trim would
 *    delete at once is not written and is counted in
 *    ef_import_stats.trimmed (so are its index key and marker in the
 *    file), and entries of the store that newer imported ones push out
 *    are deleted, with their index keys and markers, and counted in
 *    ef_import_stats.trim_deleted. Of 150 entries of one owner (key order)
 *    for a feed_cap of 100, the newest 100 are written, 50 are trimmed;
 *    importing the file again writes nothing and trims the same 50;
 *  - index keys (receiveIndex:) are checked against their entry, unread
 *    markers (unread:) written when their entry (a record, or an element of
 *    a legacy array) is in the file or the store, and quarantine records
 *    (quarantine:) stored again.
 * A key names an owner only in the spelling that edgefeed itself writes
 * for that owner: canonical (trimmed, lower case) with ':', '%' and ' '
 * escaped as %3A, %25, %20 and nothing else escaped. So no two keys ever
 * name one owner, and an exported key names its owner again. A key of any
 * other spelling (`Alice@x`, `alice@x%20`, `alice@x%0A`, `a%3ab`, a raw
 * ':' or space), which a looser reading would take for another owner's,
 * is skipped as #EF_IMPORT_SKIP_BAD_KEY, the detail saying what and at
 * which byte, and never merged into that owner's feed.
 * IPs past ip_retention at the store's clock are left out; an entry dated
 * more than #EF_CLOCK_SKEW_MS ahead of it is skipped (badValue). A legacy value
 * that holds an IP address at any depth, or is not JSON, is stored sealed
 * (each address readable while within retention, shredded with its day;
 * docs/RETENTION.md), and so is an imported entry's payload that holds one.
 * Whatever cannot
 * be taken is counted and reported through opts->on_skip, never dropped
 * silently; the rest is imported. Writes go in batches of short write
 * transactions; re-importing the same file changes nothing. Holds the
 * maintenance lock.
 *
 * The file is read as a stream, one element at a time (at most 64 MiB of
 * JSON each), twice: first to check the structure of the whole file and
 * count its elements, so that a malformed file writes nothing and progress
 * knows its total. An input that cannot be read twice (a pipe, a FIFO, a
 * socket, @p path "-" for the standard input) is read once, by the check,
 * and each byte read is kept in a spool, which the import then reads: a
 * temporary file without a name in the store directory (for a store on
 * Redis Cluster, in $TMPDIR, else /tmp) (O_TMPFILE, or
 * mkstemp and unlinked at once), mode 0600, closed and so gone when the
 * call returns, whatever it returns. So such an input too writes nothing
 * unless it is well-formed, and a malformed one is read only up to where
 * it goes wrong. While the call runs, the spool holds what the input
 * holds, IPs included; the file system frees its blocks, without
 * overwriting them.
 *
 * @param st     the store.
 * @param path   the file, or "-" for the standard input (read, not closed);
 *               borrowed for the call.
 * @param opts   may be NULL (the defaults).
 * @param stats  may be NULL; filled also on failure (what was done).
 * @return #EF_OK; #EF_EINVAL (a malformed file: not JSON, not an array, an
 *         element that is not an object or lacks "key" (a string) or
 *         "value"; ef_errmsg names the path, line, column, byte offset and
 *         element index; or a read-only store); #EF_ENOTFOUND, #EF_EIO
 *         (cannot read the file, or cannot spool an input that cannot be
 *         read twice); #EF_EBUSY (lock held and #EF_LOCK_NOWAIT); or a
 *         store error. On a store error after the first batch (a full
 *         disk), the batches committed stay; importing the file again
 *         completes it.
 */
EF_EXPORT int ef_import_kvbulk(ef_store *st, const char *path,
			       const ef_import_opts *opts,
			       ef_import_stats *stats);

/** Options of ef_export_kvbulk(). Zero-initialize, then set. */
typedef struct ef_export_opts {
	ef_progress_fn progress; /**< keys done / total; may be NULL */
	void *progress_ctx;      /**< passed to progress */
} ef_export_opts;

/** What ef_export_kvbulk() wrote. */
typedef struct ef_export_stats {
	uint64_t elements;        /**< elements written */
	uint64_t entries;         /**< entry records */
	uint64_t index_keys;      /**< receiveIndex: keys */
	uint64_t markers;         /**< unread markers */
	uint64_t legacy_arrays;   /**< legacy arrays */
	uint64_t quarantine_records; /**< quarantine records */
	uint64_t ips_dropped;     /**< IPs past ip_retention left out: of entries,
				   * legacy elements and quarantined values */
	uint64_t unparsed;        /**< legacy or quarantined values that are not
				   * JSON: written as they are while their seal
				   * is within retention (any IP in them cannot
				   * be found), left out once it is shredded */
	uint64_t left_out;        /**< records that do not decode, keys that are
				   * not UTF-8: not written */
	uint64_t other_keys;      /**< meta: keys: not part of the format */
} ef_export_stats;

/**
 * Write the store's feed records to @p out in the Workers KV bulk format,
 * from one read snapshot, in key order: entry records (value: the record
 * bytes in base64, "base64": true; the IP, while within retention at the
 * store's clock, as "metadata": {"ip"}), index keys, unread markers,
 * legacy arrays still present and quarantine records. IPs past retention
 * never leave: records are written without any IP, legacy elements and
 * quarantined values lose every IP address they hold at any depth (an
 * element without a reservationId
 * gets the id the feed gives it, so it stays the same entry). Importing the
 * file into an empty store reproduces every feed page.
 *
 * @param st     the store (a read-only handle will do).
 * @param out    an open stream; written, flushed, not closed. On failure it
 *               may hold part of the file.
 * @param opts   may be NULL.
 * @param stats  may be NULL.
 * @return #EF_OK; #EF_EIO (cannot write @p out); #EF_ENOMEM; or a store
 *         error.
 * Does not block writers (it holds a read snapshot while it writes).
 * The file holds IPs within retention: keep it private.
 */
EF_EXPORT int ef_export_kvbulk(ef_store *st, FILE *out,
			       const ef_export_opts *opts,
			       ef_export_stats *stats);

/** @} */

/**
 * @defgroup retention IP retention: sweep and compact; statistics
 * @{
 */

/* ---- IP retention: sweep and compact ------------------------------------ */

/** Options of ef_sweep_ex(). Zero-initialize, then set. */
typedef struct ef_sweep_opts {
	int64_t now_ms;          /**< sweep as of this time; 0: the store's clock.
				  * Either at most #EF_CLOCK_SKEW_MS ahead of
				  * the real clock (the system's) */
	uint32_t batch;          /**< work per write transaction: entries deleted
				  * or rewritten, owners and markers examined
				  * (0: 256) */
	unsigned lock_flags;     /**< 0 or #EF_LOCK_NOWAIT */
	ef_wait_fn on_wait;      /**< see ef_maint_lock(); may be NULL */
	void *wait_ctx;          /**< passed to on_wait */
	ef_progress_fn progress; /**< keys examined / total, after each
				  * transaction; may be NULL */
	void *progress_ctx;      /**< passed to progress */
} ef_sweep_opts;

/** What ef_sweep_ex() did. */
typedef struct ef_sweep_stats {
	uint64_t keys_destroyed;   /**< window keys destroyed: every IP sealed
				    * under them is unrecoverable */
	uint64_t keyring_wiped;    /**< damaged keyring slots overwritten */
	uint64_t entries_deleted;  /**< stale and over-cap entries, each with its
				    * index key and unread marker */
	uint64_t markers_dropped;  /**< unread markers without an entry */
	uint64_t records_resealed; /**< version-1 records (plaintext IP) rewritten:
				    * IP sealed, or dropped if past retention */
	uint64_t batches;          /**< write transactions committed */
	int64_t now_ms;            /**< the time it swept as of */
	uint64_t legacy_sealed;    /**< legacy values that held IP addresses in
				    * plaintext (or bytes that are not JSON),
				    * rewritten in their sealed form */
	uint64_t aof_rewritten;    /**< on Redis Cluster: nodes whose
				    * append-only file was rewritten after the
				    * sweep changed anything, so that what it
				    * destroyed leaves their disks' live files
				    * (docs/CLUSTER.md); 0 on LMDB */
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
 *     legacy array);
 *  4. rewrite legacy values that hold IP addresses in plaintext (at any
 *     depth) or bytes that are not JSON in their sealed form, so that
 *     what retention shreds covers legacy data too.
 * Holds the maintenance lock; works in short write transactions (opts->batch)
 * so workers keep writing meanwhile. Safe to interrupt at any point (even
 * kill -9) and run again. Other threads may use @p st meanwhile; progress is
 * called from the calling thread. Run it daily.
 * @param st     the store.
 * @param opts   options; NULL for the defaults.
 * @param stats  receives what was done; may be NULL.
 * @return #EF_OK; #EF_EBUSY (lock held and #EF_LOCK_NOWAIT); #EF_EINVAL
 *         (read-only store; or its "now" is ahead of the real clock by more
 *         than #EF_CLOCK_SKEW_MS: a sweep as of a later time would destroy
 *         the keys of days still within retention, so nothing is done and
 *         ef_errmsg names now_ms, or clock_ms for the store's clock);
 *         #EF_EIO (keyring or store); #EF_EFULL; or another store error.
 */
EF_EXPORT int ef_sweep_ex(ef_store *st, const ef_sweep_opts *opts,
			  ef_sweep_stats *stats);

/**
 * ef_sweep_ex() with every option at its default (now, waiting for the
 * lock, no progress).
 * @param st     the store.
 * @param stats  receives what was done; may be NULL.
 * @return as ef_sweep_ex().
 */
EF_EXPORT int ef_sweep(ef_store *st, ef_sweep_stats *stats);

/** What ef_compact() did. */
typedef struct ef_compact_stats {
	uint64_t bytes_before; /**< size of data.mdb before */
	uint64_t bytes_after;  /**< and after */
	uint64_t keys;         /**< records copied */
} ef_compact_stats;

/**
 * Rewrite data.mdb so that it holds only its live records: a fresh copy made
 * record by record (so no byte of a freed page, nor a stale byte inside a
 * live page, is carried over), synced, then renamed over data.mdb; the old
 * file's blocks are overwritten with zeros before they are released. This is
 * how plaintext from before sealing (legacy arrays, version-1 records) leaves
 * the file once migrate and sweep removed it from the live records.
 *
 * Needs the store to itself: it refuses at once with #EF_EBUSY while any
 * other handle (in any process) has the store open, or another maintenance
 * job runs. No other thread may use @p st during the call; on success @p st
 * is open on the new file. If it fails after the old file was closed (an
 * #EF_EIO, #EF_ENOMEM or #EF_ECORRUPT that ef_errmsg says happened while
 * reopening), @p st can only be closed.
 * @param st     the store: the only handle open on it, anywhere.
 * @param stats  receives what was done; may be NULL.
 * @return #EF_OK; #EF_EBUSY; #EF_EINVAL (read-only store); #EF_EIO;
 *         #EF_EFULL; or another store error.
 */
EF_EXPORT int ef_compact(ef_store *st, ef_compact_stats *stats);

/** Store statistics; see ef_stat(). */
typedef struct ef_stat_info {
	uint64_t entries;        /**< recentReceive: records */
	uint64_t index_keys;     /**< receiveIndex: keys */
	uint64_t unread_markers; /**< unread: keys */
	uint64_t legacy_arrays;  /**< recentReceives: keys */
	uint64_t quarantined;    /**< quarantine: records */
	uint64_t owners;         /**< distinct owners with entries */
	uint64_t other_keys;     /**< meta: (the format, and one entry count
				  * per owner: meta:entries:OWNER) and
				  * anything else */
	uint64_t map_size;       /**< current map size, bytes */
	uint64_t map_used;       /**< bytes of the map in use (last page) */
	uint64_t page_size;      /**< LMDB page size, bytes */
	uint32_t format_version; /**< the store's format (0: never written) */
	uint32_t max_readers;    /**< size of LMDB's reader table */
	uint32_t readers_used;   /**< reader slots in use, all processes */
} ef_stat_info;

/**
 * Count what the store holds, under one read transaction (a scan of every
 * key: cost grows with the store). Thread-safe; works on a read-only handle.
 * @param st   the store.
 * @param out  receives the statistics.
 * @return #EF_OK; #EF_EINVAL (NULL @p st or @p out); or a store error.
 */
EF_EXPORT int ef_stat(ef_store *st, ef_stat_info *out);

/** @} */

/**
 * @addtogroup errors
 * @{
 */

/* ---- errors and helpers ------------------------------------------------- */

/**
 * The text of a return code ("invalid argument").
 * @param rc  an ::ef_errno value (any int is accepted).
 * @return a static string; never NULL ("unknown error" for unknown codes).
 * Thread-safe; needs no store.
 */
EF_EXPORT const char *ef_strerror(int rc);

/**
 * The name of a return code ("EF_EINVAL").
 * @param rc  an ::ef_errno value (any int is accepted).
 * @return a static string; never NULL ("EF_UNKNOWN" for unknown codes).
 * Thread-safe; needs no store.
 */
EF_EXPORT const char *ef_err_name(int rc);

/**
 * The detail of the calling thread's last error on @p st (such as "owner:
 * invalid UTF-8 at byte 5"), or of its last failed ef_open() when @p st is
 * NULL. Each thread has its own: read it on the thread that got the error.
 * @param st  the store, or NULL for ef_open()'s errors.
 * @return a NUL-terminated message, "" if there is none; never NULL.
 *         Borrowed: valid until the thread's next call on the store (copy
 *         it to keep it). It may be "" after a call that failed without
 *         detail; ef_strerror() of the code then says enough.
 */
EF_EXPORT const char *ef_errmsg(const ef_store *st);

/** @} */

/**
 * @defgroup helpers Times and version
 * @{
 */

/**
 * Parse a time: epoch milliseconds ("1700000000000") or ISO-8601
 * ("2026-05-06T02:58:52.123Z", "2026-05-06T04:58:52+02:00", fraction
 * optional; digits past the milliseconds are cut, not rounded). A leap
 * second ":60" is taken only at 23:59:60 UTC of June 30 or December 31 (in
 * any offset that names that instant), and reads as :59 of that minute.
 * It says nothing about the clock: a time far ahead parses; the calls that
 * take it refuse it (see #EF_CLOCK_SKEW_MS). Thread-safe; needs no store.
 * @param text    the time, NUL-terminated.
 * @param out_ms  receives milliseconds since the epoch.
 * @return #EF_OK, or #EF_EINVAL if it is neither, or out of range
 *         [0, #EF_CREATED_MAX].
 */
EF_EXPORT int ef_time_parse(const char *text, int64_t *out_ms);

/**
 * Format @p ms as ISO-8601 UTC with milliseconds
 * ("2026-05-06T02:58:52.123Z"). Thread-safe; needs no store.
 * @param ms   milliseconds since the epoch, in [0, #EF_CREATED_MAX].
 * @param buf  receives the NUL-terminated text; #EF_TIME_BUFSZ bytes.
 * @return #EF_OK or #EF_EINVAL (out of range).
 */
EF_EXPORT int ef_time_format(int64_t ms, char buf[EF_TIME_BUFSZ]);

/**
 * The library's version, such as "0.1.0" (#EF_VERSION_STRING of the headers it
 * was built with; compare them to detect a mismatch at run time).
 * @return a static string; never NULL.
 */
EF_EXPORT const char *ef_version(void);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* EDGEFEED_H */

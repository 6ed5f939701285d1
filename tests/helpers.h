/*
 * helpers.h - shared helpers of the cmocka tests: fresh stores in mkdtemp
 * directories, an injectable clock, and a byte-exact dump of a store.
 */
#ifndef EF_TESTS_HELPERS_H
#define EF_TESTS_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "edgefeed.h"

/* A new empty directory under $TMPDIR (or /tmp); malloc'd path. */
char *th_tmpdir(void);

/* The suites of feed semantics run on both engines: LMDB, and Redis
 * Cluster when $EF_TEST_REDIS holds the address of a test cluster (meson
 * registers them again as redis/NAME, run by tests/with-cluster.sh). */
int th_redis(void);

/* A fresh, empty store's location: a new directory, or on the test
 * cluster a new store name (?store=test-RANDOM); malloc'd, th_cleanup. */
char *th_store(void);

/* A path for a file of the test beside store @store ("<store><suffix>"),
 * or in $TMPDIR for a store on the cluster; malloc'd. */
char *th_scratch(const char *store, const char *suffix);

/* Skip the calling test on the cluster: what it proves is LMDB's alone
 * (files in the store directory, the map, the commit queue). */
void th_lmdb_only(void);

/* Remove a directory tree (best effort) and free @dir; a store on the
 * test cluster is left to the cluster's end. */
void th_cleanup(char *dir);

/* A test clock: ef_config.clock_ms = th_clock, clock_ctx = &an int64_t. */
int64_t th_clock(void *ctx);

/* Open a store, asserting success; @cfg may be NULL. */
ef_store *th_open(const char *dir, const ef_config *cfg);

/* Every key and value of the store, in key order, one "key\tHEXVALUE\n" a
 * record; malloc'd. Two equal dumps mean byte-for-byte equal contents,
 * except that a sealed IP (random nonce) shows as what it opens to. */
char *th_dump(ef_store *st);

/* Number of keys that start with @prefix. */
size_t th_count_prefix(ef_store *st, const char *prefix);

/* Assert that ef_check finds no violation (printing any it finds). */
void th_assert_consistent(ef_store *st);

/* Write a raw key (bypassing the feed layer), asserting success. */
void th_put_raw(ef_store *st, const char *key, const void *val, size_t vlen);

/* Delete a raw key (bypassing the feed layer), asserting it existed. */
void th_del_raw(ef_store *st, const char *key);

/* Call @fn with the name and whole content of each regular file directly
 * in @dir (the content is freed after the call). */
typedef void (*th_file_fn)(const char *name, const unsigned char *buf,
			   size_t len, void *ctx);
void th_each_file(const char *dir, th_file_fn fn, void *ctx);

/* The name of a file directly in @dir whose bytes contain @needle (@len
 * bytes), or NULL; malloc'd. */
char *th_dir_find(const char *dir, const void *needle, size_t len);

/* Path of a built program, from the environment variable @var (set by
 * meson), asserting it is set. */
const char *th_program(const char *var);

/* Run @argv (argv[0] a path), capture stdout and stderr into malloc'd
 * strings (either out-param may be NULL), return the exit code (or 128+sig). */
int th_run(char *const argv[], char **out, char **err);

/* th_run of "$EDGEFEED_BIN --db @dir" and up to 12 more arguments (then
 * NULL). */
int th_cli(const char *dir, char **out, char **err, ...);

/* fork() for a multi-process test, asserting it worked: stdout and stderr
 * are flushed first; in the child, cmocka's handlers of fatal signals are
 * undone (a crash must kill the child, not resume the runner in it) and
 * alarm(@alarm_s) bounds its life. */
pid_t th_fork(unsigned alarm_s);

/* splitmix64: the next number of the stream whose state is *@s. */
uint64_t th_rng_next(uint64_t *s);

/* Sleep @us microseconds (resumed after a signal). */
void th_sleep_us(long us);

/* The environment variable @name as a number, or @dflt if unset/empty. */
unsigned long th_env_ulong(const char *name, unsigned long dflt);

#endif

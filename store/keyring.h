/*
 * keyring.h - the window keys that seal IPs, kept in a small file in the
 * store directory, outside LMDB, so that destroying a key really overwrites
 * it (LMDB is copy-on-write and would keep the old page).
 *
 * A window is one UTC day: window w covers created_ms in
 * [w * KEYRING_WINDOW_MS, (w + 1) * KEYRING_WINDOW_MS). Each window has at
 * most one key, random, made by the first process that needs it under an
 * exclusive flock of the file, so that every process agrees on it.
 *
 * File "keyring" (mode 0600): a 64-byte header, then 64-byte slots.
 *
 *   header  0  16  magic "edgefeed-keyring"
 *          16   4  format version (1), big-endian
 *          20   4  slot size (64), big-endian
 *          24   8  generation, big-endian: changes with every change of a
 *                  slot, so a process knows when its cached keys are stale
 *          32  16  reserved, zero
 *          48  16  BLAKE2b-128 of bytes 0..47
 *   slot    0   1  state: 0 free (the whole slot is zero), 1 live,
 *                  2 destroyed (the key bytes are zero)
 *           1   3  reserved, zero
 *           4   4  window number, big-endian
 *           8  32  key (zero once destroyed)
 *          40   8  reserved, zero
 *          48  16  BLAKE2b-128 of bytes 0..47
 *
 * A slot whose check does not match is damaged: it is never used, and the
 * next sweep overwrites it with zeros. A damaged header is rewritten (with
 * a new random generation) by the next writer; the slots behind it are
 * judged one by one. A missing, truncated or garbage file never fails a
 * read: the keys it does not hold simply read as absent.
 *
 * Locks: readers hold LOCK_SH while reading the file, writers LOCK_EX while
 * changing it (flock on the file itself). Lock order: a writer may take the
 * keyring lock while inside an LMDB write transaction, never the reverse.
 *
 * Keys in memory live in sodium_malloc'd memory (guarded, mlock'd where the
 * system allows) and are wiped when dropped; callers that copy a key wipe
 * their copy with sodium_memzero().
 */
#ifndef EF_STORE_KEYRING_H
#define EF_STORE_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "edgefeed.h"

#define KEYRING_FILE "keyring"
#define KEYRING_KEYBYTES 32u
#define KEYRING_WINDOW_MS (24LL * 3600 * 1000)

/* A positive status of keyring_get: the window's key was destroyed. */
#define KEYRING_DESTROYED 110

typedef struct keyring keyring;

/* The window of a time (created_ms >= 0). */
uint32_t keyring_window(int64_t created_ms);

/*
 * A handle on the keyring of store directory @dir; no file is touched until
 * a key is needed. @rdonly: never create or change the file; a key that
 * does not exist yet is then made in memory only (see keyring_get).
 * @nosync: do not fsync after creating a key (destroying always syncs).
 */
int keyring_open(keyring **out, const char *dir, int rdonly, int nosync,
		 uint64_t err_id);

/* The same on a store on Redis Cluster (store/redis/rkeyring.c): the keys
 * live in the cluster, where every host finds them. */
struct store_env;
int keyring_open_env(keyring **out, struct store_env *env, int rdonly,
		     uint64_t err_id);

/* Wipe every cached key and close. Accepts NULL. */
void keyring_close(keyring *kr);

/*
 * Copy the key of window @win into @key.
 * @create: if the window has no key yet, make one (under LOCK_EX, appended
 *          and synced before returning). On a read-only handle the key is
 *          made in memory only, for sealing that never reaches the disk.
 * @return EF_OK; EF_ENOTFOUND (no key and !@create, or the file is missing
 *         or damaged); KEYRING_DESTROYED; EF_EIO, EF_EFULL (cannot write the
 *         file); EF_EVERSION (a newer keyring format).
 * Thread-safe.
 */
int keyring_get(keyring *kr, uint32_t win, int create,
		uint8_t key[KEYRING_KEYBYTES]);

/*
 * The key made in memory for @win by keyring_get on a read-only handle,
 * if any: EF_OK or EF_ENOTFOUND.
 */
int keyring_get_ephemeral(keyring *kr, uint32_t win,
			  uint8_t key[KEYRING_KEYBYTES]);

/*
 * Destroy (overwrite in place, then fsync) the key of every window below
 * @before, and overwrite every damaged slot with zeros. Safe to interrupt:
 * re-running finishes the job. Counts go to *destroyed and *wiped.
 * @return EF_OK (also when there is no file); EF_EIO; EF_EVERSION.
 */
int keyring_destroy_before(keyring *kr, uint32_t before, uint64_t *destroyed,
			   uint64_t *wiped);

/* What the file holds, for check and tests. */
typedef struct keyring_health {
	int present;        /* the file exists */
	int header_ok;      /* its header is valid (and of a known version) */
	uint64_t live;      /* slots with a usable key */
	uint64_t destroyed; /* slots of destroyed windows */
	uint64_t damaged;   /* slots (or a trailing part) that fail their check */
	uint64_t gen;       /* the header's generation */
} keyring_health;

int keyring_health_get(keyring *kr, keyring_health *out);

/* Number of live slots of window @win (more than 1 would mean two processes
 * made two keys for one window), or a negative error. For tests. */
long keyring_count_window(keyring *kr, uint32_t win);

#endif

/*
 * test-retention.c - sealed IPs and the keyring: what is sealed opens only
 * in its place and time, one key per window shared by every process, and a
 * missing or damaged keyring costs IPs, never entries.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include <sodium.h>

#include "store/keyring.h"
#include "tests/retention-fixture.h"

static const char AD[] = "receiveIndex:a@x:r1";

/* Seal and open through @st, whose sealed bytes take @overhead bytes
 * more than the message (the scheme it writes). */
static void round_trip(ef_store *st, size_t overhead)
{
	uint8_t sealed[IPSEAL_LEN(17)], out[64];
	const uint8_t msg[17] = {4, 203, 0, 113, 77};
	size_t n, m;

	assert_int_equal(ipseal_seal(st, T0 - 1000, T0, AD, strlen(AD), msg,
				     sizeof(msg), sealed, &n),
			 EF_OK);
	assert_int_equal(n, sizeof(msg) + overhead);
	assert_int_equal(ipseal_plain_len(sealed, n), sizeof(msg));
	assert_int_equal(ipseal_open(st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_OK);
	assert_int_equal(m, sizeof(msg));
	assert_memory_equal(out, msg, sizeof(msg));
	/* another place (associated data) does not open */
	assert_int_equal(ipseal_open(st, T0 - 1000, T0, "receiveIndex:a@x:r2",
				     19, sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	/* another day than the one it was sealed for does not open */
	assert_int_equal(ipseal_open(st, T0 - 1000 - DAY, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	/* past retention at the reader's now: absent */
	assert_int_equal(ipseal_open(st, T0 - 1000,
				     T0 - 1000 + EF_DEFAULT_IP_RETENTION_MS,
				     AD, strlen(AD), sealed, n, out,
				     sizeof(out), &m),
			 EF_ENOTFOUND);
	/* one flipped bit: absent, never garbage */
	sealed[n - 1] ^= 1;
	assert_int_equal(ipseal_open(st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	sealed[n - 1] ^= 1;
	/* too small a buffer is the caller's error */
	assert_int_equal(ipseal_open(st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, 3, &m),
			 EF_EINVAL);
	/* cut short: not sealed bytes */
	assert_int_equal(ipseal_open(st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, 20, out, sizeof(out), &m),
			 EF_ENOTFOUND);
}

/* Both schemes: AES-256-GCM where the CPU has it (the default), and
 * XChaCha20-Poly1305 with EF_SEAL_PORTABLE or where it has not. */
static void test_ipseal_round_trip_binds_place_and_time(void **state)
{
	fx *f = *state;
	ef_store *portable = fx_open(f, EF_NOSYNC | EF_SEAL_PORTABLE, 0);

	round_trip(f->st, crypto_aead_aes256gcm_is_available() ? 33 : 45);
	round_trip(portable, 45);
	ef_close(portable);
}

/* Each handle opens what the other sealed, whichever scheme. */
static void test_ipseal_schemes_open_each_other(void **state)
{
	fx *f = *state;
	ef_store *portable = fx_open(f, EF_NOSYNC | EF_SEAL_PORTABLE, 0);

	rf_fin(f->st, "a@x", "fast", T0 - 1000, "203.0.113.5");
	rf_fin(portable, "a@x", "slow", T0 - 1000, "2001:db8::5");
	rf_assert_ip(portable, "a@x", "fast", "203.0.113.5");
	rf_assert_ip(f->st, "a@x", "slow", "2001:db8::5");
	ef_close(portable);
}

/* A page asks the keyring once per window (ipseal_memo): entries of several
 * days and both schemes in one page each show their own IP, and a window
 * destroyed before the page shows none. */
static char *page_ip(ef_store *st, const char *rid)
{
	ef_page p;
	char *ip = NULL;

	assert_int_equal(ef_feed_page(st, "a@x", NULL, 100, &p), EF_OK);
	for (size_t i = 0; i < p.count; i++)
		if (strcmp(p.entries[i].reservation_id, rid) == 0 &&
		    p.entries[i].ip)
			ip = strdup(p.entries[i].ip);
	ef_page_free(&p);
	return ip;
}

static void test_page_reveals_each_window_and_scheme(void **state)
{
	fx *f = *state;
	ef_store *portable = fx_open(f, EF_NOSYNC | EF_SEAL_PORTABLE, 0);
	uint64_t destroyed = 0, wiped = 0;
	char rid[16], ip[32], *got;

	for (int i = 0; i < 12; i++) {
		snprintf(rid, sizeof(rid), "r%02d", i);
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		rf_fin(i % 3 ? f->st : portable, "a@x", rid,
		       T0 - (i / 2) * DAY - 1000, ip);
	}
	for (int i = 0; i < 12; i++) {
		snprintf(rid, sizeof(rid), "r%02d", i);
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		got = page_ip(f->st, rid);
		assert_non_null(got);
		assert_string_equal(got, ip);
		free(got);
	}
	/* the two oldest days' keys go: their IPs, and only theirs */
	assert_int_equal(keyring_destroy_before(f->st->keyring,
						keyring_window(T0 - 4 * DAY) + 1,
						&destroyed, &wiped),
			 EF_OK);
	assert_int_equal(destroyed, 2);
	for (int i = 0; i < 12; i++) {
		snprintf(rid, sizeof(rid), "r%02d", i);
		got = page_ip(f->st, rid);
		if (i / 2 >= 4)
			assert_null(got);
		else
			assert_non_null(got);
		free(got);
	}
	ef_close(portable);
}

/* A key schedule kept for speed never outlives its key: once the window's
 * key is destroyed, nothing sealed under it opens in this handle either. */
static void test_ipseal_cached_schedule_dies_with_its_key(void **state)
{
	fx *f = *state;
	uint64_t destroyed = 0, wiped = 0;

	rf_fin(f->st, "a@x", "r1", T0 - 1000, "203.0.113.5");
	rf_assert_ip(f->st, "a@x", "r1", "203.0.113.5"); /* cached now */
	assert_int_equal(keyring_destroy_before(f->st->keyring,
						keyring_window(T0) + 1,
						&destroyed, &wiped),
			 EF_OK);
	assert_true(destroyed >= 1);
	rf_assert_ip(f->st, "a@x", "r1", NULL);
}

static void test_ipseal_past_retention_seals_nothing(void **state)
{
	fx *f = *state;
	uint8_t sealed[IPSEAL_LEN(4)];
	size_t n = 99;

	assert_int_equal(ipseal_seal(f->st, T0 - EF_DEFAULT_IP_RETENTION_MS, T0,
				     AD, strlen(AD), "abcd", 4, sealed, &n),
			 IPSEAL_EXPIRED);
	assert_int_equal(n, 0);
	assert_int_equal(ipseal_seal(f->st, -1, T0, AD, strlen(AD), "abcd", 4,
				     sealed, &n),
			 EF_EINVAL);
}

static void test_keyring_one_key_per_window_and_destroy(void **state)
{
	fx *f = *state;
	uint8_t k1[32], k2[32], k3[32];
	uint32_t w = keyring_window(T0);
	uint64_t destroyed, wiped;
	keyring_health h;
	struct stat sb;
	char path[4096];

	th_lmdb_only(); /* the store's files are LMDB's */

	assert_int_equal(keyring_get(f->st->keyring, w, 0, k1), EF_ENOTFOUND);
	assert_int_equal(keyring_get(f->st->keyring, w, 1, k1), EF_OK);
	assert_int_equal(keyring_get(f->st->keyring, w, 1, k2), EF_OK);
	assert_memory_equal(k1, k2, 32);
	assert_int_equal(keyring_get(f->st->keyring, w + 1, 1, k3), EF_OK);
	assert_memory_not_equal(k1, k3, 32);
	snprintf(path, sizeof(path), "%s/%s", f->dir, KEYRING_FILE);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(keyring_destroy_before(f->st->keyring, w + 1,
						&destroyed, &wiped),
			 EF_OK);
	assert_int_equal(destroyed, 1);
	assert_int_equal(wiped, 0);
	assert_int_equal(keyring_get(f->st->keyring, w, 1, k2),
			 KEYRING_DESTROYED);
	assert_int_equal(keyring_get(f->st->keyring, w + 1, 0, k2), EF_OK);
	assert_memory_equal(k2, k3, 32);
	/* again: nothing left to do */
	assert_int_equal(keyring_destroy_before(f->st->keyring, w + 1,
						&destroyed, &wiped),
			 EF_OK);
	assert_int_equal(destroyed, 0);
	assert_int_equal(keyring_health_get(f->st->keyring, &h), EF_OK);
	assert_true(h.present && h.header_ok);
	assert_int_equal(h.live, 1);
	assert_int_equal(h.destroyed, 1);
	assert_int_equal(h.damaged, 0);
}

/* No file of @dir holds the text or binary forms of the test IPs. */
static void assert_no_plaintext_ips(const char *dir)
{
	static const unsigned char v4[4] = {203, 0, 113, 77};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
					     0,    0,    0,    0,    0, 0, 0, 0x77};
	const struct {
		const void *p;
		size_t n;
	} forms[] = {{"203.0.113.77", 12}, {v4, 4}, {"2001:db8::77", 12},
		     {v6, 16}};

	for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
		char *where = th_dir_find(dir, forms[i].p, forms[i].n);
		if (where)
			fail_msg("form %zu of a test IP is in '%s'", i, where);
	}
}

static void test_finalize_writes_no_plaintext_ip(void **state)
{
	fx *f = *state;

	th_lmdb_only(); /* the store's files are LMDB's */

	/* durable writes, and the store closed: everything is on disk */
	ef_close(f->st);
	f->st = fx_open(f, 0, 0);
	rf_fin(f->st, "a@x", "v4", T0 - 1000, "203.0.113.77");
	rf_fin(f->st, "a@x", "v6", T0 - 2000, "2001:db8::77");
	rf_assert_ip(f->st, "a@x", "v4", "203.0.113.77");
	rf_assert_ip(f->st, "a@x", "v6", "2001:db8::77");
	ef_close(f->st);
	f->st = NULL;
	/* the scan can see a form where there is one */
	{
		char *where = th_dir_find(f->dir, "receiveIndex:a@x:v6", 19);
		assert_string_equal(where, "data.mdb");
		free(where);
	}
	assert_no_plaintext_ips(f->dir);
	f->st = fx_open(f, EF_NOSYNC, 0);
	rf_assert_ip(f->st, "a@x", "v4", "203.0.113.77");
}

static void test_ip_read_rule_uses_the_readers_clock(void **state)
{
	fx *f = *state;
	const int64_t ret = EF_DEFAULT_IP_RETENTION_MS;

	rf_fin(f->st, "a@x", "r", T0, "203.0.113.77");
	rf_assert_ip(f->st, "a@x", "r", "203.0.113.77");
	f->now = T0 + ret - 1;
	rf_assert_ip(f->st, "a@x", "r", "203.0.113.77");
	f->now = T0 + ret; /* exactly at retention: gone */
	rf_assert_ip(f->st, "a@x", "r", NULL);
	f->now = T0 + 2 * ret;
	rf_assert_ip(f->st, "a@x", "r", NULL);
	/* a read rule only: until a sweep, an earlier clock sees it again */
	f->now = T0 + 1;
	rf_assert_ip(f->st, "a@x", "r", "203.0.113.77");
}

static void test_ip_past_retention_when_finalized_is_not_kept(void **state)
{
	fx *f = *state;
	const int64_t old = T0 - EF_DEFAULT_IP_RETENTION_MS - DAY;

	rf_fin(f->st, "a@x", "old", old, "203.0.113.77");
	/* neither the IP nor a key for its window was written */
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(old)),
			 0);
	f->now = old + 1;
	rf_assert_ip(f->st, "a@x", "old", NULL);
}

static void test_version1_records_read_as_before(void **state)
{
	fx *f = *state;

	rf_put_v1(f->st, "old-format", T0 - DAY,
		  (const uint8_t[]){198, 51, 100, 9});
	rf_assert_ip(f->st, "a@x", "old-format", "198.51.100.9");
	f->now = T0 - DAY + EF_DEFAULT_IP_RETENTION_MS;
	rf_assert_ip(f->st, "a@x", "old-format", NULL);
	th_assert_consistent(f->st);
}

static void keyring_path(const fx *f, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", f->dir, KEYRING_FILE);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Two entries in two windows, then the store closed. */
static void two_windows(fx *f)
{
	rf_fin(f->st, "a@x", "d1", T0 - 2 * DAY, "203.0.113.77");
	rf_fin(f->st, "a@x", "d2", T0, "2001:db8::77");
	ef_close(f->st);
	f->st = NULL;
}

static void only_keyring(const char *what, const char *key, void *ctx)
{
	(void)key;
	if (!strstr(what, "keyring"))
		fail_msg("check: a violation that is not the keyring's: %s",
			 what);
	(*(int *)ctx)++;
}

/* Check reports the keyring's damage (when an IP was lost to it) and
 * nothing else. */
static void check_says_keyring(ef_store *st, int lost)
{
	ef_check_opts o = {0};
	ef_check_stats cs;
	int n = 0;

	o.report = only_keyring;
	o.report_ctx = &n;
	assert_int_equal(ef_check(st, &o, &cs), EF_OK);
	if (lost)
		assert_true(n > 0);
}

/* After damage: entries all there, IPs as @want1/@want2, a new finalize
 * works and shows its IP, and check says what the keyring lost. */
static void after_damage(fx *f, const char *want1, const char *want2)
{
	ef_page p;

	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	ef_page_free(&p);
	rf_assert_ip(f->st, "a@x", "d1", want1);
	rf_assert_ip(f->st, "a@x", "d2", want2);
	rf_fin(f->st, "a@x", "new", T0 + 1, "192.0.2.1");
	rf_assert_ip(f->st, "a@x", "new", "192.0.2.1");
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(T0)),
			 1);
	check_says_keyring(f->st, !want1 || !want2);
}

struct key_states {
	ef_store *st;
	int live, missing, other;
};

static int state_txn(store_txn *t, void *p)
{
	struct key_states *ks = p;
	store_cur *c;
	store_val k, v;
	rec_entry r;
	int rc, ksr;

	ks->live = ks->missing = ks->other = 0;
	assert_int_equal(store_cur_open(t, &c), EF_OK);
	for (rc = store_cur_seek(c, KEY_P_ENTRY, strlen(KEY_P_ENTRY), &k, &v);
	     rc == EF_OK && store_has_prefix(&k, KEY_P_ENTRY,
					     strlen(KEY_P_ENTRY));
	     rc = store_cur_next(c, &k, &v)) {
		assert_int_equal(rec_decode(v.data, v.len, &r), EF_OK);
		if (r.ip_kind != REC_IP_SEALED)
			continue;
		ksr = ipseal_key_state(ks->st, r.ip, r.ip_len);
		ks->live += ksr == EF_OK;
		ks->missing += ksr == EF_ENOTFOUND;
		ks->other += ksr != EF_OK && ksr != EF_ENOTFOUND;
	}
	return EF_OK;
}

static void test_keyring_missing_costs_ips_not_entries(void **state)
{
	fx *f = *state;
	char path[4096];
	keyring_health h;
	struct key_states ks = {0};

	th_lmdb_only(); /* the store's files are LMDB's */

	two_windows(f);
	keyring_path(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	/* what check can tell: no keyring, and sealed IPs without a key */
	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(keyring_health_get(f->st->keyring, &h), EF_OK);
	assert_false(h.present);
	ks.st = f->st;
	assert_int_equal(store_read(f->st->env, state_txn, &ks), EF_OK);
	assert_int_equal(ks.missing, 2);
	assert_int_equal(ks.live + ks.other, 0);
	ef_close(f->st);
	after_damage(f, NULL, NULL);
}

static void test_keyring_truncated_costs_ips_not_entries(void **state)
{
	fx *f = *state;
	char path[4096];
	keyring_health h;

	th_lmdb_only(); /* the store's files are LMDB's */

	two_windows(f);
	keyring_path(f, path, sizeof(path));
	/* the header, the first window's slot, part of the second's */
	assert_int_equal(truncate(path, 64 + 64 + 20), 0);
	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(keyring_health_get(f->st->keyring, &h), EF_OK);
	assert_true(h.present && h.header_ok);
	assert_int_equal(h.live, 1);
	assert_int_equal(h.damaged, 1);
	ef_close(f->st);
	after_damage(f, "203.0.113.77", NULL);
}

static void test_keyring_garbage_costs_ips_not_entries(void **state)
{
	fx *f = *state;
	char path[4096];
	unsigned char junk[1000];
	keyring_health h;

	th_lmdb_only(); /* the store's files are LMDB's */

	two_windows(f);
	keyring_path(f, path, sizeof(path));
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 7);
	write_file(path, junk, sizeof(junk));
	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(keyring_health_get(f->st->keyring, &h), EF_OK);
	assert_true(h.present && !h.header_ok);
	assert_int_equal(h.live, 0);
	assert_true(h.damaged > 0);
	ef_close(f->st);
	after_damage(f, NULL, NULL);
}

static void test_keyring_short_or_empty_file(void **state)
{
	fx *f = *state;
	char path[4096];

	th_lmdb_only(); /* the store's files are LMDB's */

	two_windows(f);
	keyring_path(f, path, sizeof(path));
	write_file(path, "edgefeed", 8);
	after_damage(f, NULL, NULL);
	ef_close(f->st);
	write_file(path, "", 0);
	f->st = fx_open(f, EF_NOSYNC, 0);
	rf_assert_ip(f->st, "a@x", "d1", NULL);
	rf_assert_ip(f->st, "a@x", "new", NULL);
}

/* A keyring that cannot be opened at all (here: a directory in its place):
 * finalizing an IP fails and says why, nothing is half-written; entries
 * without an IP still go in, reads show no IP, sweep refuses to pretend. */
static void test_keyring_unusable_is_an_error_not_a_loss(void **state)
{
	fx *f = *state;
	char path[4096];
	ef_receive r = {"a@x", "with-ip", T0, "203.0.113.77", NULL};
	ef_entry *e;
	ef_page p;

	th_lmdb_only(); /* the store's files are LMDB's */

	rf_fin(f->st, "a@x", "before", T0, "192.0.2.1");
	ef_close(f->st);
	keyring_path(f, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	f->st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(ef_finalize(f->st, &r), EF_EIO);
	assert_non_null(strstr(ef_errmsg(f->st), "keyring"));
	assert_int_equal(ef_get_entry(f->st, "a@x", "with-ip", &e), EF_ENOTFOUND);
	rf_fin(f->st, "a@x", "no-ip", T0, NULL);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_null(p.entries[0].ip);
	assert_null(p.entries[1].ip);
	ef_page_free(&p);
	assert_int_equal(ef_sweep(f->st, NULL), EF_EIO);
	assert_non_null(strstr(ef_errmsg(f->st), "keyring"));
	ef_close(f->st);
	assert_int_equal(rmdir(path), 0);
	f->st = fx_open(f, EF_NOSYNC, 0);
}

static void test_read_only_store_cannot_sweep_or_compact(void **state)
{
	fx *f = *state;
	ef_store *ro = fx_open(f, EF_RDONLY, 0);

	assert_int_equal(ef_sweep(ro, NULL), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(ro), "read-only"));
	assert_int_equal(ef_compact(ro, NULL), EF_EINVAL);
	assert_int_equal(ef_sweep(NULL, NULL), EF_EINVAL);
	assert_int_equal(ef_compact(NULL, NULL), EF_EINVAL);
	ef_close(ro);
}

/* Read-only handles never write the keyring, yet can seal (e.g. for
 * dual-read of legacy arrays) with keys kept in memory. */
static void test_keyring_read_only_handle_writes_nothing(void **state)
{
	fx *f = *state;
	ef_store *ro;
	uint8_t sealed[IPSEAL_LEN(4)], out[4];
	size_t n, m;
	char path[4096];
	struct stat sb;

	rf_fin(f->st, "a@x", "r", T0, NULL); /* a store, and no keyring yet */
	ro = fx_open(f, EF_RDONLY, 0);
	assert_int_equal(ipseal_seal(ro, T0, T0, AD, strlen(AD), "abcd", 4,
				     sealed, &n),
			 EF_OK);
	assert_int_equal(ipseal_open(ro, T0, T0, AD, strlen(AD), sealed, n, out,
				     sizeof(out), &m),
			 EF_OK);
	assert_memory_equal(out, "abcd", 4);
	keyring_path(f, path, sizeof(path));
	assert_int_equal(stat(path, &sb), -1);
	/* no other handle can open it: the key never left memory */
	assert_int_equal(ipseal_open(f->st, T0, T0, AD, strlen(AD), sealed, n,
				     out, sizeof(out), &m),
			 EF_ENOTFOUND);
	ef_close(ro);
}

/* ---- several processes make one window's key at once ---- */

#define RACERS 8

static int racer(const char *dir, int idx, int go_fd)
{
	ef_store *st;
	char rid[16], ip[32], c;
	ef_receive r = {"a@x", rid, T0 + idx, ip, NULL};
	int64_t now = T0 + 3600 * 1000;
	ef_config cfg = {0};

	alarm(60);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &now;
	if (ef_open(&st, dir, &cfg) != EF_OK)
		return 2;
	snprintf(rid, sizeof(rid), "race%d", idx);
	snprintf(ip, sizeof(ip), "192.0.2.%d", idx + 1);
	(void)!read(go_fd, &c, 1); /* returns at EOF: all start together */
	r.created_ms = T0 + idx;
	if (ef_finalize(st, &r) != EF_OK) {
		fprintf(stderr, "racer %d: %s\n", idx, ef_errmsg(st));
		return 1;
	}
	ef_close(st);
	return 0;
}

static void test_keyring_processes_agree_on_one_key(void **state)
{
	fx *f = *state;
	pid_t pids[RACERS];
	int go[2], status;
	ef_store *st;

	ef_close(f->st); /* no handle across fork() */
	f->st = NULL;
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < RACERS; i++) {
		fflush(NULL);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			signal(SIGABRT, SIG_DFL);
			close(go[1]);
			_exit(racer(f->dir, i, go[0]));
		}
	}
	close(go[0]);
	close(go[1]); /* go */
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	f->st = st = fx_open(f, EF_NOSYNC, 0);
	assert_int_equal(keyring_count_window(st->keyring, keyring_window(T0)),
			 1);
	/* each sealed under the one key there is: all open */
	for (int i = 0; i < RACERS; i++) {
		char rid[16], ip[32];

		snprintf(rid, sizeof(rid), "race%d", i);
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		rf_assert_ip(st, "a@x", rid, ip);
	}
}

/* A day's key destroyed while the day is within retention at the real
 * clock (what a sweep with a clock ahead did before such sweeps were
 * refused): a finalize with an IP of that day fails with EF_EIO and says
 * why and what to do, writing nothing; never an entry silently without
 * its IP. Without an IP, or for an IP past retention, it succeeds. */
static void test_finalize_into_a_destroyed_day_within_retention_fails(
	void **state)
{
	fx *f = *state;
	ef_store *st;
	ef_config cfg = {0};
	uint64_t destroyed, wiped;
	struct timespec ts;
	int64_t now;
	ef_receive r = {"a@x", "r1", 0, "192.0.2.1", NULL};
	const int64_t within[] = {0, 1, DAY, RET - 2 * DAY}; /* now - x */
	char *ip;

	ef_close(f->st);
	f->st = NULL;
	cfg.flags = EF_NOSYNC; /* the real clock */
	st = th_open(f->dir, &cfg);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (size_t i = 0; i < sizeof(within) / sizeof(within[0]); i++) {
		ef_receive k = {"k@x", "k", now - within[i], "192.0.2.9", NULL};
		char rid[16];

		snprintf(rid, sizeof(rid), "k%zu", i);
		k.reservation_id = rid;
		assert_int_equal(ef_finalize(st, &k), EF_OK); /* makes keys */
	}
	/* every day up to tomorrow's, as a sweep 30 days ahead would */
	assert_int_equal(keyring_destroy_before(st->keyring,
						keyring_window(now) + 2,
						&destroyed, &wiped),
			 EF_OK);
	for (size_t i = 0; i < sizeof(within) / sizeof(within[0]); i++) {
		r.created_ms = within[i] ? now - within[i] : 0;
		assert_int_equal(ef_finalize(st, &r), EF_EIO);
		assert_non_null(strstr(ef_errmsg(st), "destroyed"));
		assert_non_null(strstr(ef_errmsg(st), "clock ahead"));
		assert_null(strstr(ef_errmsg(st), "192.0.2.1"));
		assert_int_equal(th_count_prefix(st, "recentReceive:a@x:"), 0);
	}
	r.created_ms = now - RET - DAY; /* past retention: kept, no IP */
	r.reservation_id = "old";
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	r.created_ms = now;
	r.reservation_id = "plain";
	r.ip = NULL;
	assert_int_equal(ef_finalize(st, &r), EF_OK);
	ip = rf_ip_of(st, "a@x", "old");
	assert_null(ip);
	assert_int_equal(th_count_prefix(st, "recentReceive:a@x:"), 2);
	ef_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_ipseal_schemes_open_each_other, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ipseal_cached_schedule_dies_with_its_key, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_page_reveals_each_window_and_scheme, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ipseal_round_trip_binds_place_and_time, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ipseal_past_retention_seals_nothing, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_one_key_per_window_and_destroy, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_writes_no_plaintext_ip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ip_read_rule_uses_the_readers_clock, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_ip_past_retention_when_finalized_is_not_kept,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_version1_records_read_as_before, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_missing_costs_ips_not_entries, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_truncated_costs_ips_not_entries, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_garbage_costs_ips_not_entries, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_short_or_empty_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_unusable_is_an_error_not_a_loss, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_read_only_store_cannot_sweep_or_compact, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_read_only_handle_writes_nothing, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_processes_agree_on_one_key, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_finalize_into_a_destroyed_day_within_retention_fails,
			fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

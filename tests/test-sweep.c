/*
 * test-sweep.c - ef_sweep and `edgefeed sweep`: stale and over-cap entries
 * go with their index keys and markers, orphan markers go, window keys past
 * retention are destroyed for good (no key in any file of the store opens
 * a swept IP), version-1 records are resealed, and a sweep killed with
 * SIGKILL at any point leaves a consistent store that a re-run finishes.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "store/keyring.h"
#include "tests/retention-fixture.h"

static void reopen(fx *f, uint32_t cap)
{
	ef_close(f->st);
	f->st = fx_open(f, EF_NOSYNC, cap);
}

static void sweep_at(fx *f, int64_t now, ef_sweep_stats *s)
{
	ef_sweep_opts o = {0};
	int rc;

	o.now_ms = now;
	o.batch = 7; /* many small transactions */
	rc = ef_sweep_ex(f->st, &o, s);
	if (rc != EF_OK)
		fail_msg("sweep: %s %s", ef_err_name(rc), ef_errmsg(f->st));
}

static void test_sweep_deletes_stale_and_over_cap_entries(void **state)
{
	fx *f = *state;
	ef_sweep_stats s;
	char rid[16];

	/* a: 12 fresh entries (cap 5 later); b: 4, of which 3 turn stale */
	for (int i = 0; i < 12; i++) {
		snprintf(rid, sizeof(rid), "a%02d", i);
		rf_fin(f->st, "a@x", rid, T0 - i * 1000, NULL);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(rid, sizeof(rid), "b%02d", i);
		rf_fin(f->st, "b@x", rid, T0 - i * 20 * DAY, NULL);
	}
	assert_int_equal(ef_mark_read(f->st, "a@x", "a00"), EF_OK);
	reopen(f, 5);
	f->now = T0 + 60 * DAY;
	sweep_at(f, 0, &s); /* 0: the store's clock */
	assert_true(s.now_ms == T0 + 60 * DAY);
	/* a keeps its 5 newest; b keeps b00 and b01 (80 days, within 90) */
	assert_int_equal(s.entries_deleted, 7 + 2);
	assert_int_equal(s.markers_dropped, 0);
	assert_true(s.batches > 1);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:a@x:"), 5);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:a@x:"), 5);
	assert_int_equal(th_count_prefix(f->st, "unread:a@x:"), 4);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:b@x:"), 2);
	assert_int_equal(th_count_prefix(f->st, "receiveIndex:b@x:"), 2);
	assert_int_equal(th_count_prefix(f->st, "unread:b@x:"), 2);
	th_assert_consistent(f->st);
	/* again: nothing left to do */
	sweep_at(f, 0, &s);
	assert_int_equal(s.entries_deleted + s.markers_dropped +
				 s.keys_destroyed + s.batches,
			 0);
}

static void test_sweep_drops_orphan_markers_only(void **state)
{
	fx *f = *state;
	ef_sweep_stats s;
	uint64_t n;
	static const char legacy[] =
		"[{\"reservationId\":\"leg\",\"createdAt\":1790000000000}]";

	rf_fin(f->st, "a@x", "kept", T0, NULL);
	th_put_raw(f->st, "unread:a@x:ghost", "8209999999999", 13);
	th_put_raw(f->st, "unread:c@x:ghost", "8209999999999", 13);
	/* an index without its entry does not make a marker's entry */
	th_put_raw(f->st, "receiveIndex:d@x:half", "8209999999999", 13);
	th_put_raw(f->st, "unread:d@x:half", "8209999999999", 13);
	/* a marker of an element of a legacy array is not an orphan */
	th_put_raw(f->st, "recentReceives:b@x", legacy, strlen(legacy));
	th_put_raw(f->st, "unread:b@x:leg", "8209999999999", 13);
	sweep_at(f, T0, &s);
	assert_int_equal(s.markers_dropped, 3);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 2);
	assert_int_equal(ef_unread_count(f->st, "b@x", &n), EF_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ef_unread_count(f->st, "a@x", &n), EF_OK);
	assert_int_equal(n, 1);
}

/* Malformed keys (check reports them) are left alone, and keys of the
 * largest size LMDB takes do not stop a sweep from moving on. */
static void test_sweep_skips_what_it_does_not_understand(void **state)
{
	fx *f = *state;
	ef_sweep_opts o = {0};
	ef_sweep_stats s;
	char big[512];

	rf_fin(f->st, "a@x", "r1", T0, NULL);
	th_put_raw(f->st, "recentReceive:bad", "x", 1);
	memset(big, 'x', 511);
	big[511] = '\0';
	memcpy(big, "recentReceive:", 14);
	th_put_raw(f->st, big, "x", 1);
	memcpy(big, "unread:", 7);
	th_put_raw(f->st, big, "x", 1);
	o.now_ms = T0;
	o.batch = 1;
	assert_int_equal(ef_sweep_ex(f->st, &o, &s), EF_OK);
	assert_int_equal(s.entries_deleted + s.markers_dropped, 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 3);
	assert_int_equal(th_count_prefix(f->st, "unread:"), 2);
}

static void test_sweep_destroys_keys_not_just_hides_ips(void **state)
{
	fx *f = *state;
	ef_sweep_stats s;
	char *ip;

	rf_fin(f->st, "a@x", "old", T0, "203.0.113.77");
	rf_fin(f->st, "a@x", "older", T0 - DAY, "2001:db8::77");
	f->now = T0 + 20 * DAY;
	rf_fin(f->st, "a@x", "young", T0 + 20 * DAY, "192.0.2.1");
	/* the day of "old" ends 1 ms before this is past retention */
	sweep_at(f, T0 - T0 % DAY + DAY + RET - 2, &s);
	assert_int_equal(s.keys_destroyed, 1); /* only the day of "older" */
	sweep_at(f, T0 - T0 % DAY + DAY + RET - 1, &s);
	assert_int_equal(s.keys_destroyed, 1);
	assert_int_equal(s.entries_deleted, 0);
	/* a reader whose clock is inside the window: the key is gone */
	f->now = T0 + 1;
	ip = rf_ip_of(f->st, "a@x", "old");
	assert_null(ip);
	ip = rf_ip_of(f->st, "a@x", "older");
	assert_null(ip);
	/* a day within retention keeps its key */
	ip = rf_ip_of(f->st, "a@x", "young");
	assert_string_equal(ip, "192.0.2.1");
	free(ip);
	/* a late finalize into a destroyed day keeps no IP, and makes no key */
	rf_fin(f->st, "a@x", "late", T0 + 2, "203.0.113.78");
	ip = rf_ip_of(f->st, "a@x", "late");
	assert_null(ip);
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(T0)),
			 0);
	th_assert_consistent(f->st);
}

static void test_sweep_cli_feed_with_earlier_clock_shows_no_ip(void **state)
{
	fx *f = *state;
	char *out, *err, soon[EF_TIME_BUFSZ], later[EF_TIME_BUFSZ];

	/* finalized at the test clock, swept as of a later day that is still
	 * in the past of the real clock (a sweep never runs ahead of it) */
	rf_fin(f->st, "a@x", "r1", T0, "203.0.113.77");
	ef_time_format(T0 + 1000, soon);
	ef_time_format(T0 + RET + 2 * DAY, later);
	ef_close(f->st);
	f->st = NULL;
	assert_int_equal(th_cli(f->dir, &out, NULL, "feed", "--owner", "a@x",
			     "--now", soon, NULL),
			 0);
	assert_non_null(strstr(out, "\"ip\":\"203.0.113.77\""));
	free(out);
	assert_int_equal(th_cli(f->dir, &out, &err, "sweep", "--now", later, NULL),
			 0);
	assert_non_null(strstr(out, "\"keysDestroyed\":1"));
	assert_non_null(strstr(out, later));
	assert_non_null(strstr(err, "1 day key(s) destroyed"));
	free(out);
	free(err);
	assert_int_equal(th_cli(f->dir, &out, NULL, "feed", "--owner", "a@x",
			     "--now", soon, NULL),
			 0);
	assert_non_null(strstr(out, "\"reservationId\":\"r1\""));
	assert_non_null(strstr(out, "\"ip\":null"));
	free(out);
	f->st = fx_open(f, EF_NOSYNC, 1000);
}

static void test_sweep_cli_usage_and_busy(void **state)
{
	fx *f = *state;
	ef_maint *lk;
	char *out, *err;

	assert_int_equal(th_cli(f->dir, NULL, &err, "sweep", "--now", "yesterday",
			     NULL),
			 2);
	assert_non_null(strstr(err, "--now"));
	free(err);
	assert_int_equal(th_cli(f->dir, NULL, &err, "sweep", "extra", NULL), 2);
	assert_non_null(strstr(err, "extra"));
	free(err);
	assert_int_equal(th_cli(f->dir, &out, NULL, "sweep", "--help", NULL), 0);
	assert_non_null(strstr(out, "sweep [--now MS|ISO] [--no-wait]"));
	free(out);
	assert_int_equal(ef_maint_lock(f->st, "test holder", 0, NULL, NULL, &lk),
			 EF_OK);
	assert_int_equal(th_cli(f->dir, &out, &err, "sweep", "--no-wait", NULL),
			 75);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "test holder"));
	free(out);
	free(err);
	ef_maint_unlock(lk);
	assert_int_equal(th_cli(f->dir, NULL, NULL, "sweep", "--no-wait", NULL),
			 0);
}

/* ---- no 32-byte window of any file opens a swept IP ---- */

typedef struct key_hunt {
	const uint8_t *sealed;
	size_t slen;
	const char *ad;
	long found;      /* windows that open it */
	uint64_t tried;
} key_hunt;

static void hunt_file(const char *name, const unsigned char *buf, size_t len,
		      void *p)
{
	key_hunt *h = p;
	uint8_t out[64];
	size_t n;

	(void)name;
	for (size_t i = 0; i + 32 <= len; i++, h->tried++)
		if (ipseal_open_key(buf + i, h->ad, strlen(h->ad), h->sealed,
				    h->slen, out, sizeof(out), &n) == EF_OK)
			h->found++;
}

struct raw_ctx {
	const char *rid;
	uint8_t *buf;
	size_t len;
};

static int raw_txn(store_txn *t, void *p)
{
	struct raw_ctx *c = p;
	key_buf k;
	key_part o, r;
	store_val v;
	rec_entry rec;
	char sort[KEY_SORT_LEN + 1];
	int rc;

	assert_int_equal(key_owner(0, "o", "a@x", &o), EF_OK);
	assert_int_equal(key_reservation(0, "r", c->rid, &r), EF_OK);
	key_index(&k, &o, &r);
	rc = store_get(t, k.s, k.len, &v);
	assert_int_equal(rc, EF_OK);
	memcpy(sort, v.data, KEY_SORT_LEN);
	sort[KEY_SORT_LEN] = '\0';
	key_entry(&k, &o, sort, &r);
	assert_int_equal(store_get(t, k.s, k.len, &v), EF_OK);
	assert_int_equal(rec_decode(v.data, v.len, &rec), EF_OK);
	assert_int_equal(rec.ip_kind, REC_IP_SEALED);
	memcpy(c->buf, rec.ip, rec.ip_len);
	c->len = rec.ip_len;
	return EF_OK;
}

static void test_sweep_no_key_in_any_file_opens_a_swept_ip(void **state)
{
	fx *f = *state;
	uint8_t sealed[IP_SEALED_LEN];
	struct raw_ctx rc = {"r1", sealed, 0};
	key_hunt h = {0};
	ef_sweep_stats s;

	th_lmdb_only(); /* the store's files are LMDB's */

	rf_fin(f->st, "a@x", "r1", T0, "203.0.113.77");
	assert_int_equal(store_read(f->st->env, raw_txn, &rc), EF_OK);
	h.sealed = sealed;
	h.slen = rc.len;
	h.ad = "receiveIndex:a@x:r1";
	/* the hunt finds the key while it exists: it is in the keyring */
	th_each_file(f->dir, hunt_file, &h);
	assert_int_equal(h.found, 1);
	sweep_at(f, T0 + RET + DAY, &s);
	assert_int_equal(s.keys_destroyed, 1);
	ef_close(f->st); /* everything on disk */
	f->st = NULL;
	h.found = 0;
	h.tried = 0;
	th_each_file(f->dir, hunt_file, &h);
	assert_true(h.tried > 100000); /* data.mdb, lock.mdb, keyring, ... */
	assert_int_equal(h.found, 0);
	f->st = fx_open(f, EF_NOSYNC, 1000);
}

static void test_sweep_reseals_version1_records(void **state)
{
	fx *f = *state;
	static const uint8_t ip1[4] = {198, 51, 100, 9}, ip2[4] = {198, 51, 100, 10};
	ef_sweep_stats s;
	char *ip, *dump;

	rf_put_v1(f->st, "v1-young", T0 - DAY, ip1);
	rf_put_v1(f->st, "v1-old", T0 - RET - DAY, ip2);
	sweep_at(f, T0, &s);
	assert_int_equal(s.records_resealed, 2);
	ip = rf_ip_of(f->st, "a@x", "v1-young");
	assert_string_equal(ip, "198.51.100.9");
	free(ip);
	f->now = T0 - RET; /* an earlier clock: dropped, not hidden */
	ip = rf_ip_of(f->st, "a@x", "v1-old");
	assert_null(ip);
	dump = th_dump(f->st);
	assert_non_null(strstr(dump, "[sealed ip 198.51.100.9]"));
	assert_null(strstr(dump, "c6336409")); /* 198.51.100.9 in hex */
	assert_null(strstr(dump, "c633640a"));
	free(dump);
	th_assert_consistent(f->st);
	sweep_at(f, T0, &s);
	assert_int_equal(s.records_resealed, 0);
}

/* ---- kill -9 during a sweep ---- */

#define K_OWNERS 40
#define K_PER 16
#define K_CAP 6
#define K_NOW (T0 + 20 * DAY)

static void k_owner(char *buf, size_t cap, int o)
{
	snprintf(buf, cap, "user%02d@example.com", o);
}

static void k_ip(char *buf, size_t cap, int o, int i)
{
	snprintf(buf, cap, "192.0.2.%d", 1 + (o * K_PER + i) % 250);
}

/* Entries, markers and IPs that a sweep at K_NOW with cap K_CAP has plenty
 * to do with: over-cap and stale entries, orphan markers, old windows. */
static void kill_fill(ef_store *st)
{
	char owner[32], rid[32], ip[32], key[96];

	for (int o = 0; o < K_OWNERS; o++) {
		k_owner(owner, sizeof(owner), o);
		for (int i = 0; i < K_PER; i++) {
			snprintf(rid, sizeof(rid), "r%02d", i);
			k_ip(ip, sizeof(ip), o, i);
			rf_fin(st, owner, rid, T0 - (int64_t)i * 7 * DAY - o, ip);
		}
		snprintf(key, sizeof(key), "unread:%s:ghost", owner);
		th_put_raw(st, key, "8209999999999", 13);
	}
}

static ef_store *kill_open(const char *dir, int64_t *now)
{
	ef_config cfg = {0};
	ef_store *st = NULL;

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = now;
	cfg.feed_cap = K_CAP;
	cfg.flags = EF_NOSYNC; /* SIGKILL loses no page cache */
	return ef_open(&st, dir, &cfg) == EF_OK ? st : NULL;
}

/* In the child: after transaction hook_at, tell the parent; then wait for
 * the kill right there (hook_pause), or run on and be killed anywhere. */
static int hook_at, hook_pause, hook_fd, hook_calls;

static void kill_hook(uint64_t done, uint64_t total, void *ctx)
{
	(void)done, (void)total, (void)ctx;
	if (++hook_calls != hook_at)
		return;
	(void)!write(hook_fd, "k", 1);
	if (hook_pause)
		pause();
}

static int kill_child(const char *dir)
{
	int64_t now = K_NOW;
	ef_store *st = kill_open(dir, &now);
	ef_sweep_opts o = {0};

	if (!st)
		return 2;
	o.batch = 3;
	o.progress = kill_hook;
	return ef_sweep_ex(st, &o, NULL) == EF_OK ? 0 : 1;
}

/* Start a sweep of @dir in a child and SIGKILL it after transaction @at.
 * Returns 1 if it was killed, 0 if it finished first. */
static int killed_sweep(const char *dir, int at, int pause_there)
{
	int p[2], status;
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);
		close(p[0]);
		hook_at = at;
		hook_pause = pause_there;
		hook_fd = p[1];
		alarm(60);
		_exit(kill_child(dir));
	}
	close(p[1]);
	(void)!read(p[0], &c, 1); /* EOF too if it ended first */
	kill(pid, SIGKILL);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		assert_int_equal(WEXITSTATUS(status), 0);
	return WIFSIGNALED(status);
}

/* A violation other than an orphan marker put there on purpose. */
static void not_a_ghost(const char *what, const char *key, void *ctx)
{
	if (!key || !strstr(key, ":ghost")) {
		print_error("check: %s: %s\n", what, key ? key : "");
		(*(int *)ctx)++;
	}
}

/* The store is consistent (but for ghost markers not swept yet), and what
 * must survive any sweep at K_NOW is there, IPs and all. */
static void kill_check_survivors(ef_store *st)
{
	char owner[32], rid[32], ip[32];
	ef_check_opts co = {0};
	int bad = 0;

	co.report = not_a_ghost;
	co.report_ctx = &bad;
	assert_int_equal(ef_check(st, &co, NULL), EF_OK);
	assert_int_equal(bad, 0);
	for (int o = 0; o < K_OWNERS; o++) {
		k_owner(owner, sizeof(owner), o);
		for (int i = 0; i < K_CAP; i++) {
			char *got;

			snprintf(rid, sizeof(rid), "r%02d", i);
			k_ip(ip, sizeof(ip), o, i);
			got = rf_ip_of(st, owner, rid);
			/* within retention at K_NOW: 20 and 27 days old */
			if (i < 2)
				assert_string_equal(got, ip);
			else
				assert_null(got);
			free(got);
		}
	}
}

static void test_sweep_killed_midway_then_rerun(void **state)
{
	fx *f = *state;
	static const struct {
		int at, pause_there;
	} rounds[] = {{1, 1}, {5, 1}, {2, 0}, {30, 0}, {60, 1}};
	char *ref_dir = th_tmpdir(), *want, *got;
	int64_t now = K_NOW;
	ef_store *st;
	int killed = 0;

	/* the reference: the same store, swept in one go */
	st = kill_open(ref_dir, &f->now);
	kill_fill(st);
	ef_close(st);
	st = kill_open(ref_dir, &now);
	assert_int_equal(ef_sweep(st, NULL), EF_OK);
	want = th_dump(st);
	ef_close(st);
	th_cleanup(ref_dir);

	kill_fill(f->st);
	ef_close(f->st);
	f->st = NULL;
	for (size_t r = 0; r < sizeof(rounds) / sizeof(*rounds); r++) {
		killed += killed_sweep(f->dir, rounds[r].at,
				       rounds[r].pause_there);
		st = kill_open(f->dir, &now);
		assert_non_null(st);
		kill_check_survivors(st);
		ef_close(st);
	}
	assert_true(killed >= 3); /* the paused ones at least */
	st = kill_open(f->dir, &now);
	assert_int_equal(ef_sweep(st, NULL), EF_OK);
	kill_check_survivors(st);
	got = th_dump(st);
	assert_string_equal(got, want);
	free(got);
	free(want);
	ef_close(st);
	f->st = fx_open(f, EF_NOSYNC, 1000);
}

/* ---- a sweep while another process finalizes ---- */

#define W_COUNT 300

static int worker_child(const char *dir, int go_fd)
{
	int64_t now = K_NOW;
	ef_store *st = kill_open(dir, &now);
	char owner[32], c;

	if (!st)
		return 2;
	(void)!read(go_fd, &c, 1);
	for (int i = 0; i < W_COUNT; i++) {
		ef_receive r = {owner, "w", K_NOW - i, "198.51.100.1", NULL};

		snprintf(owner, sizeof(owner), "worker%03d@example.com", i);
		if (ef_finalize(st, &r) != EF_OK)
			return 1;
	}
	ef_close(st);
	return 0;
}

static void test_sweep_while_a_worker_finalizes(void **state)
{
	fx *f = *state;
	int64_t now = K_NOW;
	int go[2], status;
	ef_store *st;
	pid_t pid;

	kill_fill(f->st);
	ef_close(f->st);
	f->st = NULL;
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGABRT, SIG_DFL);
		close(go[1]);
		alarm(60);
		_exit(worker_child(f->dir, go[0]));
	}
	close(go[0]);
	st = kill_open(f->dir, &now);
	close(go[1]); /* go: both at once */
	assert_int_equal(ef_sweep(st, NULL), EF_OK);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(th_count_prefix(st, "recentReceive:worker"), W_COUNT);
	assert_int_equal(th_count_prefix(st, "unread:worker"), W_COUNT);
	kill_check_survivors(st);
	ef_close(st);
	f->st = fx_open(f, EF_NOSYNC, 1000);
}

/* The system's clock, ms: what "real" means to the maintenance guard. */
static int64_t real_ms(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A sweep as of a time ahead of the real clock beyond EF_CLOCK_SKEW_MS
 * destroys nothing: refused, naming now_ms; within the skew it runs. */
static void test_sweep_refuses_a_now_ahead_of_the_real_clock(void **state)
{
	fx *f = *state;
	const int64_t ahead[] = {
		real_ms() + EF_CLOCK_SKEW_MS + 60000, real_ms() + 3600 * 1000,
		real_ms() + RET + 2 * DAY,
		7258118400000LL, /* 2200-01-01T00:00:00Z */
		EF_CREATED_MAX, INT64_MAX,
	};
	ef_sweep_opts o = {0};
	ef_sweep_stats s;
	char *ip;

	rf_fin(f->st, "a@x", "r1", T0, "203.0.113.77");
	for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
		o.now_ms = ahead[i];
		assert_int_equal(ef_sweep_ex(f->st, &o, &s), EF_EINVAL);
		assert_non_null(strstr(ef_errmsg(f->st), "now_ms: "));
		assert_non_null(strstr(ef_errmsg(f->st), "real clock"));
		assert_int_equal(s.keys_destroyed + s.entries_deleted, 0);
	}
	ip = rf_ip_of(f->st, "a@x", "r1");
	assert_string_equal(ip, "203.0.113.77");
	free(ip);
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(T0)),
			 1);
	o.now_ms = real_ms() + EF_CLOCK_SKEW_MS - 60000;
	assert_int_equal(ef_sweep_ex(f->st, &o, &s), EF_OK);
}

/* An injected store clock ahead of the real one: no job under the
 * maintenance lock acts on it (sweep, migrate, seed), naming clock_ms. */
static void test_sweep_refuses_a_store_clock_ahead_of_the_real_clock(
	void **state)
{
	fx *f = *state;
	ef_seed_opts so = {0};
	ef_sweep_stats s;
	ef_maint *lk;
	char *ip;

	rf_fin(f->st, "a@x", "r1", T0, "203.0.113.77");
	th_put_raw(f->st, "recentReceives:b@x", "[]", 2);
	so.owners = so.receives = 1;
	f->now = 7258118400000LL; /* 2200 */
	assert_int_equal(ef_sweep(f->st, &s), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->st), "clock_ms: "));
	assert_int_equal(ef_migrate(f->st, NULL, NULL), EF_EINVAL);
	assert_int_equal(ef_seed(f->st, &so, NULL), EF_EINVAL);
	assert_int_equal(ef_maint_lock(f->st, "t", 0, NULL, NULL, &lk),
			 EF_EINVAL);
	assert_null(lk);
	f->now = real_ms() + EF_CLOCK_SKEW_MS + 60000;
	assert_int_equal(ef_sweep(f->st, &s), EF_EINVAL);
	f->now = T0;
	ip = rf_ip_of(f->st, "a@x", "r1");
	assert_string_equal(ip, "203.0.113.77");
	free(ip);
	assert_int_equal(th_count_prefix(f->st, "recentReceive"), 2);
	f->now = real_ms() + 60000; /* within the skew */
	assert_int_equal(ef_sweep(f->st, &s), EF_OK);
}

/* ef_seed's "now": its entries and their day keys are never dated ahead
 * of the real clock beyond the skew. */
static void test_seed_refuses_a_now_ahead_of_the_real_clock(void **state)
{
	fx *f = *state;
	ef_seed_opts so = {0};
	int64_t later = real_ms() + 2 * DAY;

	so.owners = so.receives = 2;
	so.now_ms = later;
	assert_int_equal(ef_seed(f->st, &so, NULL), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->st), "now_ms: "));
	so.reset = 1;
	assert_int_equal(ef_seed(f->st, &so, NULL), EF_EINVAL);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 0);
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(later)),
			 0);
	so.now_ms = T0;
	assert_int_equal(ef_seed(f->st, &so, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_sweep_deletes_stale_and_over_cap_entries, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_drops_orphan_markers_only, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_skips_what_it_does_not_understand, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_destroys_keys_not_just_hides_ips, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_cli_feed_with_earlier_clock_shows_no_ip,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sweep_cli_usage_and_busy,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_no_key_in_any_file_opens_a_swept_ip, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_reseals_version1_records, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_killed_midway_then_rerun, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_while_a_worker_finalizes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_refuses_a_now_ahead_of_the_real_clock,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_sweep_refuses_a_store_clock_ahead_of_the_real_clock,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_seed_refuses_a_now_ahead_of_the_real_clock, fx_setup,
			fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

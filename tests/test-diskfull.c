/*
 * test-diskfull.c - a store on a small tmpfs fills up: finalize fails with
 * EF_EFULL and a message that says so, the store stays consistent and
 * readable, nothing acknowledged is lost, nothing of a failed finalization
 * is written, and once space is freed writes succeed again.
 *
 * Needs root (mount(2) of a tmpfs); without it, or if the mount fails, the
 * test is skipped and says why. .ci/run runs as root, so CI never skips it.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed/feed.h"

#define T0 1790000000000LL
#define FS_OPTS "size=8m,mode=0700"
#define FILLER_BYTES (1 << 20) /* written first, deleted to free space */
#define PAD 1500               /* payload bytes: a few entries a page */
#define OWNERS 8
#define FILL_MAX 100000        /* 8 MiB must fill long before this */
#define AFTER 50               /* finalizations once space is free again */

typedef struct fx {
	char *mnt;           /* mount point (a mkdtemp directory) */
	int mounted;
	char why[256];       /* why the test is skipped */
	char dir[PATH_MAX];  /* the store, on the tmpfs */
	char filler[PATH_MAX];
	ef_store *st;
	int64_t now;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mnt = th_tmpdir();
	f->now = T0;
	if (geteuid() != 0)
		snprintf(f->why, sizeof(f->why),
			 "not root: cannot mount a small tmpfs to fill");
	else if (mount("tmpfs", f->mnt, "tmpfs", MS_NOSUID | MS_NODEV,
		       FS_OPTS) != 0)
		snprintf(f->why, sizeof(f->why), "mount -t tmpfs -o %s %s: %s",
			 FS_OPTS, f->mnt, strerror(errno));
	else
		f->mounted = 1;
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->mnt);
	snprintf(f->filler, sizeof(f->filler), "%s/filler", f->mnt);
	*state = f;
	return 0;
}

/* Runs after a failed assertion too: the tmpfs never outlives the test. */
static int teardown(void **state)
{
	fx *f = *state;

	ef_close(f->st);
	if (f->mounted && umount2(f->mnt, 0) != 0 &&
	    umount2(f->mnt, MNT_DETACH) != 0)
		print_error("umount %s: %s\n", f->mnt, strerror(errno));
	th_cleanup(f->mnt);
	free(f);
	return 0;
}

static void write_filler(const char *path, size_t bytes)
{
	char buf[65536];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	memset(buf, 0xA5, sizeof(buf));
	for (size_t done = 0; done < bytes; done += sizeof(buf))
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(close(fd), 0);
}

static ef_store *df_open(fx *f)
{
	ef_config cfg = {0};

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.feed_cap = FILL_MAX; /* nothing is trimmed */
	return th_open(f->dir, &cfg); /* durable: every commit synced */
}

/* Finalization @i: its owner, reservation id, payload (about PAD bytes)
 * and, for one in four, an IP (all of one day: one keyring window). */
typedef struct df_item {
	char owner[32];
	char rid[32];
	char ip[32];
	char payload[PAD + 64];
	ef_receive r;
} df_item;

static void df_make(int i, df_item *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->owner, sizeof(d->owner), "owner%d@example.com", i % OWNERS);
	snprintf(d->rid, sizeof(d->rid), "d%06d", i);
	snprintf(d->ip, sizeof(d->ip), "192.0.2.%d", 1 + i % 200);
	snprintf(d->payload, sizeof(d->payload), "{\"n\":%d,\"pad\":\"%0*d\"}",
		 i, PAD, i);
	d->r.owner = d->owner;
	d->r.reservation_id = d->rid;
	d->r.created_ms = T0 - 1000 - i;
	d->r.ip = i % 4 == 0 ? d->ip : NULL;
	d->r.payload_json = d->payload;
}

/* The acknowledged finalizations (kept in memory, outside the store). */
typedef struct ledger {
	int *n;
	size_t len, cap;
} ledger;

static void ledger_add(ledger *l, int i)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->n = realloc(l->n, l->cap * sizeof(*l->n));
		assert_non_null(l->n);
	}
	l->n[l->len++] = i;
}

/* Every acknowledged finalization is there, as written; nothing else is;
 * ef_check finds nothing wrong. */
static void ledger_verify(ef_store *st, const ledger *l, const char *when)
{
	for (size_t k = 0; k < l->len; k++) {
		ef_entry *e = NULL;
		df_item d;
		int rc;

		df_make(l->n[k], &d);
		rc = ef_get_entry(st, d.owner, d.rid, &e);
		if (rc != EF_OK)
			fail_msg("%s: acknowledged %s/%s: %s: %s", when, d.owner,
				 d.rid, ef_err_name(rc), ef_errmsg(st));
		assert_non_null(e->payload_json);
		assert_string_equal(e->payload_json, d.payload);
		assert_true(e->created_ms == d.r.created_ms);
		if (d.r.ip) {
			assert_non_null(e->ip);
			assert_string_equal(e->ip, d.ip);
		}
		ef_entry_free(e);
	}
	assert_int_equal(th_count_prefix(st, "recentReceive:"), l->len);
	assert_int_equal(th_count_prefix(st, "receiveIndex:"), l->len);
	assert_int_equal(th_count_prefix(st, "unread:"), l->len);
	th_assert_consistent(st);
}

/*
 * What a full disk answers: EF_EFULL, saying so. Also when the pages of a
 * commit only partly fit: the kernel then writes what fits, and LMDB
 * (mdb_page_flush) turns that short write into EIO, which edgefeed must
 * still report as the full disk it is. Nothing may be written, lost or left
 * inconsistent either way, which the callers check.
 */
static int is_full(ef_store *st, int rc)
{
	if (rc != EF_EFULL)
		return 0;
	if (!strstr(ef_errmsg(st), "No space left on device"))
		fail_msg("EF_EFULL says \"%s\": want it to say the disk is "
			 "full", ef_errmsg(st));
	return 1;
}

/* What one fill did. */
typedef struct df_result {
	size_t acked;       /* acknowledged before the first failure */
	int first_rc;       /* the first failure */
	char first_msg[256];
} df_result;

/* Finalize new items from *@next until the disk is full; returns the
 * number of the one that failed. */
static int fill_up(ef_store *st, int *next, ledger *l, df_result *res)
{
	for (; *next < FILL_MAX; (*next)++) {
		df_item d;
		int rc;

		df_make(*next, &d);
		rc = ef_finalize(st, &d.r);
		if (rc == EF_OK) {
			ledger_add(l, *next);
			continue;
		}
		res->acked = l->len;
		res->first_rc = rc;
		snprintf(res->first_msg, sizeof(res->first_msg), "%s",
			 ef_errmsg(st));
		if (!is_full(st, rc))
			fail_msg("finalize %s on a filling disk: %s: %s (want "
				 "EF_OK or EF_EFULL)", d.rid, ef_err_name(rc),
				 ef_errmsg(st));
		return (*next)++;
	}
	fail_msg("%d finalizations and the disk is still not full", FILL_MAX);
	return -1;
}

/* Still full: every write fails the same clean way (or succeeds, when it
 * finds a freed page), the one that failed too; reads and check work, and
 * so does a reopen. Returns the failed one, or -1 if it went in since. */
static int while_full(fx *f, int failed, int *next, ledger *l)
{
	ef_page pg;
	df_item d;

	for (int k = 0; k < 20; k++) {
		int i = k % 2 && failed >= 0 ? failed : (*next)++;
		int rc;

		df_make(i, &d);
		rc = ef_finalize(f->st, &d.r);
		if (rc == EF_OK) {
			ledger_add(l, i);
			if (i == failed)
				failed = -1;
		} else if (!is_full(f->st, rc)) {
			fail_msg("finalize %s on a full disk: %s: %s", d.rid,
				 ef_err_name(rc), ef_errmsg(f->st));
		}
	}
	assert_int_equal(ef_feed_page(f->st, "owner0@example.com", NULL, 10, &pg),
			 EF_OK);
	assert_int_equal(pg.count, 10);
	ef_page_free(&pg);
	ledger_verify(f->st, l, "while the disk is full");
	ef_close(f->st);
	f->st = df_open(f);
	ledger_verify(f->st, l, "reopened on the full disk");
	return failed;
}

/* Free space: the failed finalization was not half-written (EF_OK, not
 * EF_EXISTS), and writes go on, also after a reopen. */
static void after_free(fx *f, int failed, int next, ledger *l)
{
	df_item d;
	int rc;

	assert_int_equal(unlink(f->filler), 0);
	if (failed >= 0) {
		df_make(failed, &d);
		rc = ef_finalize(f->st, &d.r);
		if (rc != EF_OK)
			fail_msg("finalize %s once space is free: %s: %s",
				 d.rid, ef_err_name(rc), ef_errmsg(f->st));
		ledger_add(l, failed);
	}
	for (int k = 0; k < AFTER; k++, next++) {
		df_make(next, &d);
		rc = ef_finalize(f->st, &d.r);
		if (rc != EF_OK)
			fail_msg("finalize %s once space is free: %s: %s",
				 d.rid, ef_err_name(rc), ef_errmsg(f->st));
		ledger_add(l, next);
	}
	ledger_verify(f->st, l, "after space was freed");
	ef_close(f->st);
	f->st = df_open(f);
	ledger_verify(f->st, l, "reopened after space was freed");
}

/* One whole run on a fresh store: fill up behind a filler of @filler
 * bytes, check while full, free the filler, check again; remove the
 * store. */
static void df_scenario(fx *f, size_t filler, df_result *res)
{
	ledger l = {NULL, 0, 0};
	int next = 0, failed;

	memset(res, 0, sizeof(*res));
	write_filler(f->filler, filler);
	f->st = df_open(f);
	failed = fill_up(f->st, &next, &l, res);
	assert_true(res->acked > 100);
	failed = while_full(f, failed, &next, &l);
	after_free(f, failed, next, &l);
	ef_close(f->st);
	f->st = NULL;
	th_cleanup(strdup(f->dir));
	free(l.n);
}

static void skip_unless_mounted(const fx *f)
{
	if (!f->mounted) {
		print_message("skipped: %s\n", f->why);
		skip();
	}
}

/* The plain case: the first failure is EF_EFULL and says so. */
static void test_diskfull_finalize_efull_consistent_then_recovers(void **state)
{
	fx *f = *state;
	df_result res;

	skip_unless_mounted(f);
	df_scenario(f, FILLER_BYTES, &res);
	print_message("disk full after %zu finalizations: %s: %s\n",
		      res.acked, ef_err_name(res.first_rc), res.first_msg);
	assert_int_equal(res.first_rc, EF_EFULL);
	if (!strstr(res.first_msg, "No space left on device"))
		fail_msg("EF_EFULL says \"%s\": want it to say the disk is "
			 "full", res.first_msg);
}

/* The disk fills at other points of the file (fillers of other sizes), so
 * that commits are cut at other page boundaries: each time, nothing is
 * lost, nothing half-written, the store consistent, and it recovers. */
static void test_diskfull_fills_at_many_points(void **state)
{
	static const unsigned steps[] = {1, 2, 3, 5, 11, 41};
	fx *f = *state;
	df_result res;

	skip_unless_mounted(f);
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		size_t filler = FILLER_BYTES + (size_t)steps[i] * 65536;

		df_scenario(f, filler, &res);
		print_message("filler %zu bytes: full after %zu "
			      "finalizations: %s: %s\n", filler, res.acked,
			      ef_err_name(res.first_rc), res.first_msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_diskfull_finalize_efull_consistent_then_recovers,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_diskfull_fills_at_many_points, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

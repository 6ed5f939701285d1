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
#include <unistd.h>

#include "feed/feed.h"
#include "store/keyring.h"

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL /* 2026-09-21T... */

typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

static ef_store *fx_open(fx *f, unsigned flags)
{
	ef_config cfg = {0};

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = flags;
	cfg.feed_cap = 1000;
	return th_open(f->dir, &cfg);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->dir = th_tmpdir();
	f->now = T0;
	f->st = fx_open(f, EF_NOSYNC);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	ef_close(f->st);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

static const char AD[] = "receiveIndex:a@x:r1";

static void test_ipseal_round_trip_binds_place_and_time(void **state)
{
	fx *f = *state;
	uint8_t sealed[IPSEAL_LEN(17)], out[64];
	const uint8_t msg[17] = {4, 203, 0, 113, 77};
	size_t n, m;

	assert_int_equal(ipseal_seal(f->st, T0 - 1000, T0, AD, strlen(AD), msg,
				     sizeof(msg), sealed, &n),
			 EF_OK);
	assert_int_equal(n, IPSEAL_LEN(17));
	assert_int_equal(ipseal_open(f->st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_OK);
	assert_int_equal(m, sizeof(msg));
	assert_memory_equal(out, msg, sizeof(msg));
	/* another place (associated data) does not open */
	assert_int_equal(ipseal_open(f->st, T0 - 1000, T0, "receiveIndex:a@x:r2",
				     19, sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	/* another day than the one it was sealed for does not open */
	assert_int_equal(ipseal_open(f->st, T0 - 1000 - DAY, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	/* past retention at the reader's now: absent */
	assert_int_equal(ipseal_open(f->st, T0 - 1000,
				     T0 - 1000 + EF_DEFAULT_IP_RETENTION_MS,
				     AD, strlen(AD), sealed, n, out,
				     sizeof(out), &m),
			 EF_ENOTFOUND);
	/* one flipped bit: absent, never garbage */
	sealed[n - 1] ^= 1;
	assert_int_equal(ipseal_open(f->st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, sizeof(out), &m),
			 EF_ENOTFOUND);
	/* too small a buffer is the caller's error */
	assert_int_equal(ipseal_open(f->st, T0 - 1000, T0, AD, strlen(AD),
				     sealed, n, out, 3, &m),
			 EF_EINVAL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_ipseal_round_trip_binds_place_and_time, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_ipseal_past_retention_seals_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_keyring_one_key_per_window_and_destroy, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * retention-fixture.h - what the retention tests (test-retention.c,
 * test-sweep.c, test-compact.c) share: times, a finalize that must succeed,
 * the IP an entry shows, and a version-1 record as older versions wrote it.
 * Static functions: include it in one test file each.
 */
#ifndef EF_TESTS_RETENTION_FIXTURE_H
#define EF_TESTS_RETENTION_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "tests/helpers.h"

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL /* 2026-09-21T14:13:20Z */
#define RET EF_DEFAULT_IP_RETENTION_MS

/* A fresh store in a mkdtemp directory, with a test clock at T0. */
typedef struct fx {
	char *dir;
	ef_store *st;
	int64_t now;
} fx;

/* Open f->dir with the test clock, @flags, and cap @cap (0: 1000). */
static inline ef_store *fx_open(fx *f, unsigned flags, uint32_t cap)
{
	ef_config cfg = {0};

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = flags;
	cfg.feed_cap = cap ? cap : 1000;
	return th_open(f->dir, &cfg);
}

static inline int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->dir = th_store();
	f->now = T0;
	f->st = fx_open(f, EF_NOSYNC, 0);
	*state = f;
	return 0;
}

static inline int fx_teardown(void **state)
{
	fx *f = *state;

	ef_close(f->st);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

static inline void rf_fin(ef_store *st, const char *owner, const char *rid,
			  int64_t created, const char *ip)
{
	ef_receive r = {owner, rid, created, ip, "{\"fileName\":\"a.pdf\"}"};
	int rc = ef_finalize(st, &r);

	if (rc != EF_OK)
		fail_msg("finalize %s/%s: %s %s", owner, rid, ef_err_name(rc),
			 ef_errmsg(st));
}

/* The IP that @owner's entry @rid shows now (NULL if none); malloc'd. */
static inline char *rf_ip_of(ef_store *st, const char *owner, const char *rid)
{
	ef_entry *e;
	char *ip;

	assert_int_equal(ef_get_entry(st, owner, rid, &e), EF_OK);
	ip = e->ip ? strdup(e->ip) : NULL;
	ef_entry_free(e);
	return ip;
}

static inline void rf_assert_ip(ef_store *st, const char *owner,
				const char *rid, const char *want)
{
	char *ip = rf_ip_of(st, owner, rid);

	if (want)
		assert_string_equal(ip, want);
	else if (ip)
		fail_msg("%s: ip %s, expected none", rid, ip);
	free(ip);
}

/* Entry a@x/@rid as a version-1 record (plaintext IPv4 @ip), with its
 * index key, written raw. */
static inline void rf_put_v1(ef_store *st, const char *rid, int64_t created,
			     const uint8_t ip[4])
{
	char key[128], sort[KEY_SORT_LEN + 1];
	uint8_t rec[64], *p = rec;
	size_t n = strlen(rid);

	assert_int_equal(key_created_sort(created, sort), EF_OK);
	*p++ = 1; /* version */
	*p++ = 0; /* flags: no payload */
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)((uint64_t)created >> (8 * i));
	*p++ = REC_IP_V4;
	memcpy(p, ip, 4);
	p += 4;
	*p++ = 0;
	*p++ = (uint8_t)n;
	memcpy(p, rid, n);
	p += n;
	memset(p, 0, 4); /* payload length */
	p += 4;
	snprintf(key, sizeof(key), "recentReceive:a@x:%s:%s", sort, rid);
	th_put_raw(st, key, rec, (size_t)(p - rec));
	snprintf(key, sizeof(key), "receiveIndex:a@x:%s", rid);
	th_put_raw(st, key, sort, KEY_SORT_LEN);
}

#endif

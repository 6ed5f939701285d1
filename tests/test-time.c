/*
 * test-time.c - ef_time_parse() and ef_time_format(): epoch milliseconds and
 * ISO-8601 (UTC or an offset, fraction optional), range [0, EF_CREATED_MAX],
 * a leap second only where one can be; and the times the store is given:
 * none ahead of its clock beyond EF_CLOCK_SKEW_MS, none replaced by another.
 */
#include "tests/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/feed.h"
#include "store/keyring.h"
#include "tests/retention-fixture.h"

/* xorshift64*, fixed seed: failures reproduce */
static uint64_t rng_state = 0x7133D00Dull;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t rng_below(uint64_t n)
{
	return rng_next() % n;
}

/*
 * An independent model of the calendar (H. Hinnant's civil_from_days), to
 * check ef_time_format() against something other than gmtime.
 */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* "YYYY-MM-DDTHH:MM:SS" of @ms (may be negative), without fraction or zone;
 * the milliseconds in *frac. */
static void model_datetime(int64_t ms, char *out, size_t cap, unsigned *frac)
{
	int64_t secs = floor_div(ms, 1000), days = floor_div(secs, 86400);
	int64_t sod = secs - days * 86400, y;
	unsigned mo, d;

	civil_from_days(days, &y, &mo, &d);
	snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02u", (long long)y, mo,
		 d, (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60),
		 (unsigned)(sod % 60));
	*frac = (unsigned)(ms - secs * 1000);
}

static void parses_to(const char *text, int64_t want)
{
	int64_t got = -12345;
	int rc = ef_time_parse(text, &got);

	if (rc != EF_OK)
		fail_msg("'%s' rejected (%d), want %lld", text, rc,
			 (long long)want);
	if (got != want)
		fail_msg("'%s' parsed to %lld, want %lld", text,
			 (long long)got, (long long)want);
}

static void rejects(const char *text)
{
	int64_t got = -12345;

	if (ef_time_parse(text, &got) != EF_EINVAL)
		fail_msg("'%s' accepted as %lld", text ? text : "(null)",
			 (long long)got);
}

static void formats_to(int64_t ms, const char *want)
{
	char buf[EF_TIME_BUFSZ];

	assert_int_equal(ef_time_format(ms, buf), EF_OK);
	assert_string_equal(buf, want);
}

/* ---- parse -------------------------------------------------------------- */

static void test_time_parse_epoch_ms(void **state)
{
	(void)state;
	parses_to("0", 0);
	parses_to("1", 1);
	parses_to("1700000000000", 1700000000000LL);
	parses_to("1778036332123", 1778036332123LL);
	parses_to("9999999999999", EF_CREATED_MAX);
	parses_to("0000000000042", 42); /* zero-padded, like a sort key */
}

static void test_time_parse_iso_utc(void **state)
{
	(void)state;
	parses_to("1970-01-01T00:00:00Z", 0);
	parses_to("1970-01-01T00:00:00.000Z", 0);
	parses_to("1970-01-01T00:00:00.001Z", 1);
	parses_to("2026-05-06T02:58:52.123Z", 1778036332123LL);
	parses_to("2026-05-06T02:58:52Z", 1778036332000LL);
	parses_to("2023-11-14T22:13:20Z", 1700000000000LL);
	parses_to("2000-02-29T00:00:00Z", 951782400000LL);  /* leap day */
	parses_to("2024-02-29T12:34:56Z", 1709210096000LL);
	parses_to("2286-11-20T17:46:39.999Z", EF_CREATED_MAX);
}

static void test_time_parse_iso_fraction_truncates(void **state)
{
	static const struct {
		const char *frac;
		int64_t ms;
	} cases[] = {
		{"1", 100},         {"12", 120},        {"123", 123},
		{"1234", 123},      {"12345", 123},     {"123456", 123},
		{"1234567", 123},   {"12345678", 123},  {"123456789", 123},
		{"9", 900},         {"99", 990},        {"999", 999},
		{"9999", 999},      {"999999999", 999}, /* truncated, not rounded */
		{"0", 0},           {"000000001", 0},   {"05", 50},
	};
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "2026-05-06T02:58:52.%sZ",
			 cases[i].frac);
		parses_to(text, 1778036332000LL + cases[i].ms);
		snprintf(text, sizeof(text), "2026-05-06T04:58:52.%s+02:00",
			 cases[i].frac);
		parses_to(text, 1778036332000LL + cases[i].ms);
	}
}

static void test_time_parse_iso_offsets(void **state)
{
	(void)state;
	parses_to("2026-05-06T04:58:52.123+02:00", 1778036332123LL);
	parses_to("2026-05-06T04:58:52.123+0200", 1778036332123LL);
	parses_to("2026-05-06T04:58:52.123+02", 1778036332123LL);
	parses_to("2026-05-05T21:28:52.123-0530", 1778036332123LL);
	parses_to("2026-05-05T21:28:52.123-05:30", 1778036332123LL);
	parses_to("2026-05-06T02:58:52.123+00:00", 1778036332123LL);
	parses_to("2026-05-06T02:58:52.123-00:00", 1778036332123LL);
	parses_to("2026-05-07T02:57:52.123+23:59", 1778036332123LL);
	parses_to("2026-05-05T03:00:52.123-23:58", 1778036332123LL);
	/* the instant counts, not the local date: in range although the
	 * local year is 1969, or the local time is past the last UTC ms */
	parses_to("1969-12-31T19:00:00-05:00", 0);
	parses_to("1970-01-01T01:00:00+01:00", 0);
	parses_to("2286-11-20T19:46:39.999+02:00", EF_CREATED_MAX);
}

static void test_time_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"abc",
		"0x10",
		"1e3",
		"+1700000000000",
		"1700000000000x",  /* trailing garbage */
		"1700000000000 ",
		" 1700000000000",
		"17000000.00000",
		"-1",              /* negative */
		"-1700000000000",
		"10000000000000",  /* EF_CREATED_MAX + 1 */
		"99999999999999",
		"99999999999999999999999", /* would overflow int64 */
		"2026-02-30T00:00:00Z",  /* no such day */
		"2025-02-29T00:00:00Z",  /* not a leap year */
		"2100-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2026-13-01T00:00:00Z",  /* month 13 */
		"2026-00-10T00:00:00Z",
		"2026-05-00T00:00:00Z",
		"2026-05-32T00:00:00Z",
		"2026-05-06T24:00:00Z",  /* hour 24 */
		"2026-05-06T23:60:00Z",
		"2026-05-06T23:59:61Z",
		"2026-05-06T02:58:52",   /* missing zone */
		"2026-05-06T02:58:52.123",
		"2026-05-06",
		"2026-05-06T",
		"2026-05-06T02:58:52Zx",  /* trailing garbage */
		"2026-05-06T02:58:52Z ",
		"2026-05-06T02:58:52.123ZZ",
		"2026-05-06T02:58:52+02:00x",
		"2026-05-06T02:58:52+02:00Z",
		"2026-05-06T02:58:52.Z",  /* empty fraction */
		"2026-05-06T02:58:52.12aZ",
		"2026-05-06T02:58:52+24:00",
		"2026-05-06T02:58:52+02:60",
		"2026-05-06T02:58:52+2",
		"2026-05-06T02:58:52+02:0",
		"2026-05-06T02:58:52+020",
		"2026-05-06T02:58:52UTC",
		"2026-05-06X02:58:52Z",
		"26-05-06T02:58:52Z",
		"2026-5-6T02:58:52Z",
		"2026-05-06T2:58:52Z",
		"1969-12-31T23:59:59.999Z", /* before the epoch */
		"1969-06-01T00:00:00Z",
		"1970-01-01T00:30:00+01:00",
		"2286-11-20T17:46:40.000Z", /* past EF_CREATED_MAX */
		"9999-12-31T23:59:59Z",
		"0000-01-01T00:00:00Z",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		rejects(bad[i]);
	rejects(NULL);
}

/* ISO-8601 has "+hh:mm", "+hhmm" and "+hh"; "+hh:" is none of them. */
static void test_time_parse_rejects_dangling_offset_colon(void **state)
{
	(void)state;
	rejects("2026-05-06T04:58:52+02:");
}

/* ---- format ------------------------------------------------------------- */

static void test_time_format_known(void **state)
{
	(void)state;
	formats_to(0, "1970-01-01T00:00:00.000Z");
	formats_to(1, "1970-01-01T00:00:00.001Z");
	formats_to(999, "1970-01-01T00:00:00.999Z");
	formats_to(1778036332123LL, "2026-05-06T02:58:52.123Z");
	formats_to(1700000000000LL, "2023-11-14T22:13:20.000Z");
	formats_to(951782400000LL, "2000-02-29T00:00:00.000Z");
	formats_to(EF_CREATED_MAX, "2286-11-20T17:46:39.999Z");
}

static void test_time_format_rejects_out_of_range(void **state)
{
	static const int64_t bad[] = {-1, -1000, EF_CREATED_MAX + 1, INT64_MIN,
				      INT64_MAX};
	char buf[EF_TIME_BUFSZ];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(ef_time_format(bad[i], buf), EF_EINVAL);
	}
}

/* ---- round trips -------------------------------------------------------- */

static int64_t rand_ms(void)
{
	switch (rng_below(8)) {
	case 0:
		return (int64_t)rng_below(100000);
	case 1:
		return EF_CREATED_MAX - (int64_t)rng_below(100000);
	default:
		return (int64_t)rng_below((uint64_t)EF_CREATED_MAX + 1);
	}
}

static void test_time_round_trip_random(void **state)
{
	char buf[EF_TIME_BUFSZ], want[64], dt[48];
	unsigned frac;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		int64_t x = rand_ms(), back = -1;

		assert_int_equal(ef_time_format(x, buf), EF_OK);
		model_datetime(x, dt, sizeof(dt), &frac);
		snprintf(want, sizeof(want), "%s.%03uZ", dt, frac);
		if (strcmp(buf, want) != 0)
			fail_msg("format(%lld) = '%s', want '%s'",
				 (long long)x, buf, want);
		assert_int_equal(strlen(buf), 24);
		assert_int_equal(ef_time_parse(buf, &back), EF_OK);
		if (back != x)
			fail_msg("parse('%s') = %lld, want %lld", buf,
				 (long long)back, (long long)x);
	}
}

/* The same instants written with a random offset, fraction length and
 * zone spelling all parse back to the instant (fraction truncated). */
static void test_time_parse_random_spellings(void **state)
{
	char text[96], dt[48], fr[16];
	unsigned frac;

	(void)state;
	for (int i = 0; i < 50000; i++) {
		int64_t x = rand_ms(), back = -1;
		long off_min = (long)rng_below(2 * 1440 - 1) - 1439;
		unsigned hh = (unsigned)(labs(off_min) / 60);
		unsigned mm = (unsigned)(labs(off_min) % 60);
		int digits = (int)rng_below(10); /* 0: no fraction */
		int64_t want;
		char zone[16];

		model_datetime(x + off_min * 60000, dt, sizeof(dt), &frac);
		if (rng_below(4) == 0) {
			snprintf(zone, sizeof(zone), "Z");
			model_datetime(x, dt, sizeof(dt), &frac);
			off_min = 0;
		} else {
			const char *form = (const char *[]){
				"%c%02u:%02u", "%c%02u%02u"}[rng_below(2)];

			snprintf(zone, sizeof(zone), form,
				 off_min < 0 ? '-' : '+', hh, mm);
			if (mm == 0 && rng_below(2))
				snprintf(zone, sizeof(zone), "%c%02u",
					 off_min < 0 ? '-' : '+', hh);
		}
		/* the fraction: its first 3 digits are the ms, the rest noise */
		snprintf(fr, sizeof(fr), "%03u%06u", frac,
			 (unsigned)rng_below(1000000));
		fr[digits] = '\0';
		want = floor_div(x, 1000) * 1000;
		if (digits > 0) {
			unsigned kept = 0;

			for (int d = 0; d < 3; d++)
				kept = kept * 10 +
				       (unsigned)(d < digits ? fr[d] - '0' : 0);
			want += kept;
		}
		snprintf(text, sizeof(text), "%s%s%s%s", dt, digits ? "." : "",
			 fr, zone);
		if (ef_time_parse(text, &back) != EF_OK)
			fail_msg("'%s' rejected, want %lld", text,
				 (long long)want);
		if (back != want)
			fail_msg("'%s' parsed to %lld, want %lld", text,
				 (long long)back, (long long)want);
	}
}

/* ---- leap seconds ------------------------------------------------------- */

/* 23:59:60 UTC of June 30 or December 31 (where IERS puts leap seconds),
 * read as :59 of the same minute; in any offset that names that instant. */
static void test_time_parse_leap_second_only_at_a_half_year_end(void **state)
{
	static const char *const bad[] = {
		"2026-05-06T12:30:60Z",     /* any minute */
		"2026-05-06T23:59:60Z",     /* the end of an ordinary day */
		"2016-12-31T23:58:60Z",
		"2016-12-31T22:59:60Z",
		"2016-12-30T23:59:60Z",
		"2016-06-29T23:59:60Z",
		"2017-01-01T00:00:60Z",
		"2016-12-31T23:59:60+01:00", /* 22:59:60 UTC */
		"2016-06-30T23:59:60-05:00", /* 04:59:60 UTC, July 1 */
		"2016-12-31T23:59:60.999+00:30",
		"2016-12-31T23:59:61Z",
		"1970-01-01T00:00:60Z",
	};

	(void)state;
	parses_to("2016-12-31T23:59:60Z", 1483228799000LL);
	parses_to("2016-12-31T23:59:60.500Z", 1483228799500LL);
	parses_to("2015-06-30T23:59:60Z", 1435708799000LL);
	parses_to("2015-06-30T23:59:60.1234+00:00", 1435708799123LL);
	parses_to("2017-01-01T08:59:60+09:00", 1483228799000LL); /* Tokyo */
	parses_to("2016-12-31T18:59:60-05:00", 1483228799000LL);
	parses_to("2017-01-01T05:29:60+0530", 1483228799000LL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		rejects(bad[i]);
}

/* ---- times the store is given ------------------------------------------ */

#define MIN (60LL * 1000)

static int fin_at(fx *f, const char *rid, int64_t created, const char *ip)
{
	ef_receive r = {"a@x", rid, created, ip, NULL};
	return ef_finalize(f->st, &r);
}

/* Ahead of the store's clock by more than EF_CLOCK_SKEW_MS: refused, naming
 * created_ms, writing nothing (no entry, no key for that day); within the
 * skew: kept. In every spelling a caller may have parsed. */
static void test_finalize_refuses_created_ahead_of_the_clock(void **state)
{
	fx *f = *state;
	static const char *const ahead[] = {
		"9999999999999",
		"2286-11-20T17:46:39.999Z",
		"2200-01-01T00:00:00Z",
		"2026-09-22T00:00:00Z",
		"1790000300001",            /* T0 + 5 min + 1 ms */
		"2026-09-21T14:18:20.001Z", /* the same, in ISO */
		"2026-09-22T04:18:20.001+14:00",
		"2026-09-21T14:19:00+00:00",
		"2026-09-21T14:13:20-14:00", /* T0's wall time, 14 h later */
	};
	int64_t t;

	for (size_t i = 0; i < sizeof(ahead) / sizeof(ahead[0]); i++) {
		assert_int_equal(ef_time_parse(ahead[i], &t), EF_OK);
		assert_int_equal(fin_at(f, "r", t, "192.0.2.1"), EF_EINVAL);
		if (!strstr(ef_errmsg(f->st), "created_ms"))
			fail_msg("%s: message '%s' does not name created_ms",
				 ahead[i], ef_errmsg(f->st));
		assert_int_equal(keyring_count_window(f->st->keyring,
						      keyring_window(t)),
				 0);
	}
	assert_int_equal(th_count_prefix(f->st, ""), 1); /* meta:format */
	assert_int_equal(fin_at(f, "skew", T0 + EF_CLOCK_SKEW_MS, NULL), EF_OK);
	assert_int_equal(fin_at(f, "now", 0, NULL), EF_OK);
	f->now = INT64_MIN; /* a clock gone wrong: refused, no overflow */
	assert_int_equal(fin_at(f, "r", EF_CREATED_MAX, NULL), EF_EINVAL);
	f->now = EF_CREATED_MAX; /* a clock at the end of the range */
	assert_int_equal(fin_at(f, "last", EF_CREATED_MAX, NULL), EF_OK);
}

static void put_legacy(fx *f, const char *json)
{
	th_put_raw(f->st, "recentReceives:a@x", json, strlen(json));
}

/* A legacy element dated ahead of the clock beyond the skew is neither shown
 * by dual-read nor migrated: it is quarantined; one within the skew is. */
static void test_migrate_quarantines_a_created_at_ahead_of_the_clock(
	void **state)
{
	fx *f = *state;
	ef_migrate_stats ms;
	ef_page p;
	char json[512];

	snprintf(json, sizeof(json),
		 "[{\"reservationId\":\"ok\",\"createdAt\":%lld},"
		 "{\"reservationId\":\"soon\",\"createdAt\":%lld},"
		 "{\"reservationId\":\"late\",\"createdAt\":%lld,"
		 "\"ip\":\"198.51.100.9\"},"
		 "{\"reservationId\":\"far\",\"createdAt\":"
		 "\"2286-11-20T17:46:39.999Z\"},"
		 "{\"reservationId\":\"max\",\"createdAt\":9999999999999},"
		 "{\"reservationId\":\"zone\",\"createdAt\":"
		 "\"2026-09-21T14:13:20-14:00\"}]",
		 (long long)(T0 - DAY), (long long)(T0 + MIN),
		 (long long)(T0 + EF_CLOCK_SKEW_MS + 1));
	put_legacy(f, json);
	assert_int_equal(ef_feed_page(f->st, "a@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_string_equal(p.entries[0].reservation_id, "soon");
	assert_string_equal(p.entries[1].reservation_id, "ok");
	ef_page_free(&p);
	assert_int_equal(ef_migrate(f->st, NULL, &ms), EF_OK);
	assert_int_equal(ms.migrated, 2);
	assert_int_equal(ms.quarantined, 4);
	assert_int_equal(th_count_prefix(f->st, "recentReceive:"), 2);
	assert_int_equal(keyring_count_window(f->st->keyring,
					      keyring_window(T0 + DAY)),
			 0);
}

/* ef_seed's own times: a "now" of 1970 makes entries at the epoch, not at
 * the clock's now (0 given by a caller is a time, not "now"). */
static void test_seed_keeps_an_epoch_time_as_given(void **state)
{
	fx *f = *state;
	ef_seed_opts o = {0};
	ef_page p;

	o.owners = 1;
	o.receives = 4;
	o.now_ms = 1000;
	assert_int_equal(ef_seed(f->st, &o, NULL), EF_OK);
	f->now = 1000;
	assert_int_equal(ef_feed_page(f->st, "user0000@example.com", NULL, 10,
				      &p),
			 EF_OK);
	assert_int_equal(p.count, 4);
	for (size_t i = 0; i < p.count; i++)
		assert_true(p.entries[i].created_ms == 0); /* 1000 - days */
	ef_page_free(&p);
}

static void note_skip(uint64_t element, const char *key, size_t key_len,
		      int reason, const char *detail, void *ctx)
{
	int *ahead = ctx;

	(void)element;
	(void)key;
	(void)key_len;
	if (reason == EF_IMPORT_SKIP_BAD_VALUE && strstr(detail, "created_ms"))
		++*ahead;
}

/* An exported entry dated ahead of the importing store's clock (made by a
 * store whose clock was there) is skipped with a reason, not imported. */
static void test_import_skips_an_entry_ahead_of_the_clock(void **state)
{
	fx *f = *state;
	ef_import_opts io = {0};
	ef_import_stats is;
	ef_store *dst;
	ef_config cfg = {0};
	char path[600], *dir = th_tmpdir();
	FILE *out;
	int ahead = 0;

	f->now = 7258118400000LL; /* 2200: a store with a clock that far */
	rf_fin(f->st, "a@x", "ahead", f->now, "192.0.2.1");
	f->now = T0;
	rf_fin(f->st, "a@x", "ok", T0 - 1000, "192.0.2.2");
	snprintf(path, sizeof(path), "%s/export.json", dir);
	out = fopen(path, "w");
	assert_non_null(out);
	assert_int_equal(ef_export_kvbulk(f->st, out, NULL, NULL), EF_OK);
	assert_int_equal(fclose(out), 0);
	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	dst = th_open(dir, &cfg);
	io.on_skip = note_skip;
	io.skip_ctx = &ahead;
	assert_int_equal(ef_import_kvbulk(dst, path, &io, &is), EF_OK);
	assert_int_equal(is.entries, 1);
	assert_int_equal(ahead, 1);
	assert_int_equal(th_count_prefix(dst, "recentReceive:"), 1);
	assert_int_equal(keyring_count_window(dst->keyring,
					      keyring_window(7258118400000LL)),
			 0);
	ef_close(dst);
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_parse_epoch_ms),
		cmocka_unit_test(test_time_parse_iso_utc),
		cmocka_unit_test(test_time_parse_iso_fraction_truncates),
		cmocka_unit_test(test_time_parse_iso_offsets),
		cmocka_unit_test(test_time_parse_rejects),
		cmocka_unit_test(test_time_parse_rejects_dangling_offset_colon),
		cmocka_unit_test(test_time_format_known),
		cmocka_unit_test(test_time_format_rejects_out_of_range),
		cmocka_unit_test(test_time_round_trip_random),
		cmocka_unit_test(test_time_parse_random_spellings),
		cmocka_unit_test(test_time_parse_leap_second_only_at_a_half_year_end),
		cmocka_unit_test_setup_teardown(
			test_finalize_refuses_created_ahead_of_the_clock,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_migrate_quarantines_a_created_at_ahead_of_the_clock,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_seed_keeps_an_epoch_time_as_given, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_import_skips_an_entry_ahead_of_the_clock, fx_setup,
			fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-keys.c - the key codec of DESIGN.md "Key schema" (feed/keys.h):
 * canonicalization, escaping, validation, key layout, splitting, and the
 * ordering and prefix properties that the feed relies on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edgefeed.h"
#include "store/error.h"
#include "feed/keys.h"

/* ---- helpers ----------------------------------------------------------- */

/* xorshift64*: a fixed seed per test, so a failure reproduces exactly */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
}

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

/* Random component material: the three escaped bytes, ASCII letters and
 * digits of both cases, and multi-byte UTF-8 (2, 3 and 4 bytes). */
static const char *const tokens[] = {
	":", "%", " ", "a", "b", "z", "A", "M", "Z", "0", "9", "@", ".",
	"-", "_", "~", "!", "\xC3\xA9" /* é */, "\xE2\x82\xAC" /* € */,
	"\xF0\x9F\x98\x80" /* 😀 */, "\xC3\x89" /* É */,
};
#define NTOKENS (sizeof(tokens) / sizeof(tokens[0]))

static int needs_esc(unsigned char c)
{
	return c == ':' || c == '%' || c == ' ';
}

/* Escaped size of [s, s+n): an independent model of the codec. */
static size_t esc_len(const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++)
		o += needs_esc((unsigned char)s[i]) ? 3 : 1;
	return o;
}

/* Escape [s, s+n) into @out (NUL-terminated); returns the length. */
static size_t esc(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (needs_esc(c))
			o += (size_t)sprintf(out + o, "%%%02X", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return o;
}

/* Canonical owner per DESIGN: trim ASCII white space, lowercase ASCII. */
static size_t canon_owner(const char *s, char *out)
{
	size_t n = strlen(s), b = 0, o = 0;
	const char *ws = " \t\n\v\f\r";

	while (b < n && strchr(ws, s[b]))
		b++;
	while (n > b && strchr(ws, s[n - 1]))
		n--;
	for (size_t i = b; i < n; i++) {
		char c = s[i];
		out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
	return o;
}

/*
 * A random component of 1.. tokens whose escaped size stays within @max;
 * without @with_esc, no ':', '%' or ' '. Usually short, sometimes up to the
 * limit. Returns the raw length.
 */
static size_t rand_component(char *buf, size_t max, int with_esc)
{
	size_t n = 0, e = 0;
	size_t want = rng_below(4) == 0 ? 1 + rng_below(200) : 1 + rng_below(8);

	for (size_t i = 0; i < want; i++) {
		const char *t = tokens[rng_below(NTOKENS)];
		size_t tl = strlen(t), te = esc_len(t, tl);

		if (!with_esc && needs_esc((unsigned char)t[0]))
			continue;
		if (e + te > max)
			break;
		memcpy(buf + n, t, tl);
		n += tl, e += te;
	}
	if (n == 0)
		buf[n++] = 'x';
	buf[n] = '\0';
	return n;
}

/* A random owner whose canonical form is not empty; @canon receives it. */
static void rand_owner(char *raw, char *canon)
{
	do
		rand_component(raw, EF_OWNER_KEY_MAX, 1);
	while (canon_owner(raw, canon) == 0);
}

/* Lexicographic byte order, as LMDB's default comparator: -1, 0, 1. */
static int lexcmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int starts_with(const key_buf *k, const key_buf *prefix)
{
	return k->len >= prefix->len && memcmp(k->s, prefix->s, prefix->len) == 0;
}

static void assert_view(key_view v, const char *want)
{
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.p, want, v.len);
}

static void assert_key(const key_buf *k, const char *want)
{
	assert_int_equal(k->len, strlen(want));
	assert_string_equal(k->s, want);
}

/* Unescape @v and compare with @want. */
static void assert_unescapes_to(key_view v, const char *want, size_t want_len)
{
	char tmp[EF_OWNER_KEY_MAX + 1];
	long n = key_unescape(v, tmp, sizeof(tmp));

	assert_int_equal(n, (long)want_len);
	assert_memory_equal(tmp, want, want_len);
}

static uint64_t err_id;

static int setup_id(void **state)
{
	(void)state;
	err_id = ef__err_new_id();
	return 0;
}

/* The last rejection's message starts with "<field>: " and contains every
 * given fragment (a NULL-terminated list). */
static void assert_msg(const char *field, ...)
{
	const char *msg = ef__err_get(err_id);
	size_t fl = strlen(field);
	va_list ap;
	const char *frag;

	if (strncmp(msg, field, fl) != 0 || strncmp(msg + fl, ": ", 2) != 0)
		fail_msg("message '%s' does not name field '%s'", msg, field);
	va_start(ap, field);
	while ((frag = va_arg(ap, const char *)) != NULL)
		if (!strstr(msg, frag))
			fail_msg("message '%s' lacks '%s'", msg, frag);
	va_end(ap);
}

static void reject_owner_n(const char *text, size_t len)
{
	key_part p;

	ef__err_clear(err_id);
	if (key_owner_n(err_id, "owner", text, len, &p) != EF_EINVAL)
		fail_msg("owner of %zu bytes accepted as '%s'", len, p.s);
}

static void reject_owner(const char *text)
{
	reject_owner_n(text, text ? strlen(text) : 0);
}

static void reject_rid_n(const char *text, size_t len)
{
	key_part p;

	ef__err_clear(err_id);
	if (key_reservation_n(err_id, "reservationId", text, len, &p) !=
	    EF_EINVAL)
		fail_msg("reservation id of %zu bytes accepted as '%s'", len,
			 p.s);
}

static void reject_rid(const char *text)
{
	reject_rid_n(text, text ? strlen(text) : 0);
}

static void accept_owner(const char *text, const char *want)
{
	key_part p;
	int rc = key_owner(err_id, "owner", text, &p);

	if (rc != EF_OK)
		fail_msg("owner '%s' rejected: %s", text, ef__err_get(err_id));
	assert_int_equal(p.len, strlen(want));
	assert_string_equal(p.s, want);
}

static void accept_rid(const char *text, const char *want)
{
	key_part p;
	int rc = key_reservation(err_id, "reservationId", text, &p);

	if (rc != EF_OK)
		fail_msg("rid '%s' rejected: %s", text, ef__err_get(err_id));
	assert_int_equal(p.len, strlen(want));
	assert_string_equal(p.s, want);
}

/* @head, then @unit @times times, then @tail, into @buf (big enough). */
static char *repeat_tail(char *buf, const char *head, const char *unit,
			 size_t times, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);

	memcpy(buf, head, hl);
	for (size_t i = 0; i < times; i++)
		memcpy(buf + hl + i * ul, unit, ul);
	memcpy(buf + hl + times * ul, tail, tl + 1);
	return buf;
}

static char *repeat(char *buf, const char *unit, size_t times)
{
	return repeat_tail(buf, "", unit, times, "");
}

/* ---- owner canonicalization and escaping ------------------------------- */

static void test_owner_trims_and_lowercases(void **state)
{
	(void)state;
	accept_owner("  Alice@Example.COM \t", "alice@example.com");
	accept_owner("alice@example.com", "alice@example.com");
	accept_owner("\r\n\v\fBOB@X\f\v\n\r", "bob@x");
	accept_owner("x", "x");
	/* non-ASCII is kept byte for byte: É stays upper case */
	accept_owner("\xC3\x89lise@EXAMPLE.com", "\xC3\x89lise@example.com");
	accept_owner("\xF0\x9F\x98\x80@X", "\xF0\x9F\x98\x80@x");
	/* every ASCII letter, both cases */
	accept_owner("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		     "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
	/* characters next to the letter ranges are not letters */
	accept_owner("@[`{", "@[`{");
}

static void test_owner_escapes_colon_percent_space(void **state)
{
	(void)state;
	accept_owner("a:b", "a%3Ab");
	accept_owner("a%b", "a%25b");
	/* an interior space is escaped, only the ends are trimmed */
	accept_owner("  a b  ", "a%20b");
	accept_owner("A:B%C D@X", "a%3Ab%25c%20d@x");
	accept_owner(":%", "%3A%25");
	/* an escape-looking owner is escaped again, never decoded (and,
	 * being an owner, lowercased first: 'A' is a letter) */
	accept_owner("a@x%3Ay", "a@x%253ay");
	accept_owner("a@x%3ay", "a@x%253ay");
	accept_owner("%20", "%2520");
}

static void test_owner_n_reads_only_len_bytes(void **state)
{
	key_part p;

	(void)state;
	assert_int_equal(key_owner_n(err_id, "owner", "AbcXYZ", 3, &p), EF_OK);
	assert_string_equal(p.s, "abc");
	assert_int_equal(key_owner_n(err_id, "owner", " Ab ", 4, &p), EF_OK);
	assert_string_equal(p.s, "ab");
	assert_int_equal(key_reservation_n(err_id, "rid", "AbcXYZ", 3, &p),
			 EF_OK);
	assert_string_equal(p.s, "Abc");
	/* an embedded NUL is a control character */
	reject_owner_n("ab\0cd", 5);
	assert_msg("owner", "control character", "0x00", "byte 2", NULL);
	reject_rid_n("ab\0cd", 5);
	assert_msg("reservationId", "control character", "0x00", "byte 2",
		   NULL);
}

/* ---- rejections -------------------------------------------------------- */

static void test_owner_rejects_missing_and_empty(void **state)
{
	(void)state;
	reject_owner(NULL);
	assert_msg("owner", "missing", NULL);
	reject_owner("");
	assert_msg("owner", "empty", NULL);
	reject_owner(" ");
	assert_msg("owner", "empty", NULL);
	reject_owner(" \t\r\n\v\f ");
	assert_msg("owner", "empty", NULL);
}

static void test_owner_rejects_invalid_utf8(void **state)
{
	(void)state;
	reject_owner("hello\xC0\xAF@x"); /* overlong '/' */
	assert_msg("owner", "invalid UTF-8 at byte 5", NULL);
	assert_string_equal(ef__err_get(err_id),
			    "owner: invalid UTF-8 at byte 5");
	reject_owner("ab\xED\xA0\x80"); /* surrogate U+D800 */
	assert_msg("owner", "invalid UTF-8 at byte 2", NULL);
	reject_owner("abc\xE2\x82"); /* truncated € */
	assert_msg("owner", "invalid UTF-8 at byte 3", NULL);
	reject_owner("\xF0\x9F\x98"); /* truncated 😀 */
	assert_msg("owner", "invalid UTF-8 at byte 0", NULL);
	reject_owner("a\xF4\x90\x80\x80"); /* U+110000 */
	assert_msg("owner", "invalid UTF-8 at byte 1", NULL);
	reject_owner("abcd\x80z"); /* bare continuation byte */
	assert_msg("owner", "invalid UTF-8 at byte 4", NULL);
	reject_owner("\xC3\xA9\xFF"); /* never a UTF-8 byte */
	assert_msg("owner", "invalid UTF-8 at byte 2", NULL);
	/* offsets count in the caller's text, before trimming */
	reject_owner("  ab\xC0\xAF");
	assert_msg("owner", "invalid UTF-8 at byte 4", NULL);
	reject_owner(" \tab\x01");
	assert_msg("owner", "control character 0x01 at byte 4", NULL);
}

static void test_reservation_rejects_invalid_utf8(void **state)
{
	(void)state;
	reject_rid("r-1\xC0\xAF");
	assert_msg("reservationId", "invalid UTF-8 at byte 3", NULL);
	reject_rid("\xED\xA0\x80");
	assert_msg("reservationId", "invalid UTF-8 at byte 0", NULL);
	reject_rid("xy\xC3");
	assert_msg("reservationId", "invalid UTF-8 at byte 2", NULL);
	reject_rid("\xF4\x90\x80\x80");
	assert_msg("reservationId", "invalid UTF-8 at byte 0", NULL);
	reject_rid("abcde\xBF");
	assert_msg("reservationId", "invalid UTF-8 at byte 5", NULL);
}

static void test_owner_rejects_control_characters(void **state)
{
	(void)state;
	reject_owner("abc\x01");
	assert_msg("owner", "control character", "0x01", "byte 3", NULL);
	reject_owner("a\x1F" "b");
	assert_msg("owner", "control character", "0x1F", "byte 1", NULL);
	reject_owner("\x7F" "ab");
	assert_msg("owner", "control character", "0x7F", "byte 0", NULL);
	/* white space inside the owner (not at its ends) is not trimmed */
	reject_owner("a\nb");
	assert_msg("owner", "control character", "0x0A", NULL);
	reject_owner("a\tb");
	assert_msg("owner", "control character", "0x09", NULL);
}

static void test_reservation_rejects_control_characters(void **state)
{
	(void)state;
	reject_rid("r\x01");
	assert_msg("reservationId", "control character", "0x01", "byte 1",
		   NULL);
	reject_rid("\x1F");
	assert_msg("reservationId", "control character", "0x1F", "byte 0",
		   NULL);
	reject_rid("ab\x7F");
	assert_msg("reservationId", "control character", "0x7F", "byte 2",
		   NULL);
	reject_rid("res\nid");
	assert_msg("reservationId", "control character", "0x0A", "byte 3",
		   NULL);
	/* a reservation id is not trimmed: edge \n and \t are rejected too */
	reject_rid("abc\n");
	assert_msg("reservationId", "control character", "0x0A", NULL);
	reject_rid("\tabc");
	assert_msg("reservationId", "control character", "0x09", NULL);
}

static void test_reservation_rejects_missing_and_empty(void **state)
{
	(void)state;
	reject_rid(NULL);
	assert_msg("reservationId", "missing", NULL);
	reject_rid("");
	assert_msg("reservationId", "empty", NULL);
}

static void test_reject_names_given_field(void **state)
{
	key_part p;

	(void)state;
	assert_int_equal(key_owner(err_id, "recipient", "", &p), EF_EINVAL);
	assert_msg("recipient", "empty", NULL);
	assert_int_equal(key_reservation(err_id, "items[3].reservationId",
					 "a\x01", &p),
			 EF_EINVAL);
	assert_msg("items[3].reservationId", "control character", NULL);
}

static void test_owner_length_limit(void **state)
{
	char buf[1024], want[1024];
	key_part p;

	(void)state;
	/* exactly 320 escaped bytes: accepted */
	accept_owner(repeat(buf, "a", 320), repeat(want, "a", 320));
	accept_owner(repeat(buf, "A", 320), repeat(want, "a", 320));
	/* trimming happens before the length check */
	repeat_tail(buf, "  ", "a", 320, " \t");
	accept_owner(buf, want);
	/* 106 ':' (318) + "ab" = 320 escaped bytes */
	repeat_tail(buf, "", ":", 106, "ab");
	assert_int_equal(key_owner(err_id, "owner", buf, &p), EF_OK);
	assert_int_equal(p.len, 320);
	/* 80 4-byte characters = 320 bytes */
	assert_int_equal(key_owner(err_id, "owner",
				   repeat(buf, "\xF0\x9F\x98\x80", 80), &p),
			 EF_OK);
	assert_int_equal(p.len, 320);

	/* 321 */
	reject_owner(repeat(buf, "a", 321));
	assert_msg("owner", "too long", NULL);
	/* 107 ':' escape to 321 bytes although the raw owner is 107 */
	reject_owner(repeat(buf, ":", 107));
	assert_msg("owner", "too long", NULL);
	repeat_tail(buf, "", ":", 106, "abc");
	reject_owner(buf);
	assert_msg("owner", "too long", NULL);
	repeat_tail(buf, "", "\xF0\x9F\x98\x80", 80, "a");
	reject_owner(buf);
	assert_msg("owner", "too long", NULL);
	reject_owner(repeat(buf, "%", 200));
	assert_msg("owner", "too long", NULL);
}

static void test_reservation_length_limit(void **state)
{
	char buf[1024], want[1024];
	key_part p;

	(void)state;
	accept_rid(repeat(buf, "R", 160), repeat(want, "R", 160));
	reject_rid(repeat(buf, "R", 161));
	assert_msg("reservationId", "too long", NULL);
	/* 53 '%' (159) + 'x' = 160 escaped bytes */
	repeat_tail(buf, "", "%", 53, "x");
	assert_int_equal(key_reservation(err_id, "rid", buf, &p), EF_OK);
	assert_int_equal(p.len, 160);
	reject_rid(repeat(buf, "%", 54)); /* 162 */
	assert_msg("reservationId", "too long", NULL);
	repeat_tail(buf, "", " ", 53, "xy"); /* 161 */
	reject_rid(buf);
	assert_msg("reservationId", "too long", NULL);
	/* 80 two-byte characters = 160 bytes; one more byte is too many */
	accept_rid(repeat(buf, "\xC3\xA9", 80), repeat(want, "\xC3\xA9", 80));
	repeat_tail(buf, "", "\xC3\xA9", 80, "x");
	reject_rid(buf);
	assert_msg("reservationId", "too long", NULL);
}

/* ---- reservation ids ---------------------------------------------------- */

static void test_reservation_taken_as_given(void **state)
{
	key_part a, b;

	(void)state;
	accept_rid("Res-ABC", "Res-ABC");
	accept_rid(" r ", "%20r%20"); /* not trimmed: the spaces are escaped */
	accept_rid(" ", "%20");
	accept_rid("a:b%c d", "a%3Ab%25c%20d");
	accept_rid("\xC3\x89t\xC3\xA9", "\xC3\x89t\xC3\xA9");
	/* case-sensitive: two ids that differ in case are two keys */
	assert_int_equal(key_reservation(err_id, "rid", "abc", &a), EF_OK);
	assert_int_equal(key_reservation(err_id, "rid", "ABC", &b), EF_OK);
	assert_string_not_equal(a.s, b.s);
}

/* ---- created sort ------------------------------------------------------- */

static void test_created_sort_bounds(void **state)
{
	char s[KEY_SORT_LEN + 1];
	int64_t ms = -5;

	(void)state;
	assert_int_equal(key_created_sort(0, s), EF_OK);
	assert_string_equal(s, "9999999999999");
	assert_int_equal(key_created_sort(EF_CREATED_MAX, s), EF_OK);
	assert_string_equal(s, "0000000000000");
	assert_int_equal(key_created_sort(1, s), EF_OK);
	assert_string_equal(s, "9999999999998");
	assert_int_equal(key_created_sort(1700000000000LL, s), EF_OK);
	assert_string_equal(s, "8299999999999");
	assert_int_equal(key_created_sort(EF_CREATED_MAX - 42, s), EF_OK);
	assert_string_equal(s, "0000000000042");
	assert_int_equal(key_created_sort(-1, s), EF_EINVAL);
	assert_int_equal(key_created_sort(EF_CREATED_MAX + 1, s), EF_EINVAL);
	assert_int_equal(key_created_sort(INT64_MIN, s), EF_EINVAL);
	assert_int_equal(key_created_sort(INT64_MAX, s), EF_EINVAL);

	assert_int_equal(key_created_from_sort("9999999999999", 13, &ms), EF_OK);
	assert_int_equal(ms, 0);
	assert_int_equal(key_created_from_sort("0000000000000", 13, &ms), EF_OK);
	assert_int_equal(ms, EF_CREATED_MAX);
}

static void test_created_sort_round_trip(void **state)
{
	char s[KEY_SORT_LEN + 1];
	int64_t back;

	(void)state;
	rng_seed(0x5EED0001);
	for (int i = 0; i < 20000; i++) {
		int64_t ms = (int64_t)rng_below((uint64_t)EF_CREATED_MAX + 1);

		if (i < 4)
			ms = (int64_t[]){0, 1, EF_CREATED_MAX - 1,
					 EF_CREATED_MAX}[i];
		assert_int_equal(key_created_sort(ms, s), EF_OK);
		assert_int_equal(strlen(s), KEY_SORT_LEN);
		assert_int_equal(key_created_from_sort(s, KEY_SORT_LEN, &back),
				 EF_OK);
		assert_int_equal(back, ms);
	}
}

static void test_created_from_sort_rejects(void **state)
{
	static const char *const bad[] = {
		"999999999999",   /* 12 digits */
		"99999999999999", /* 14 digits */
		"",
		"12345678901a3",
		"-000000000001",
		"+000000000001",
		" 000000000001",
		"000000000000 ",
		"00000000000:0",
	};
	int64_t ms = 77;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (key_created_from_sort(bad[i], strlen(bad[i]), &ms) !=
		    EF_EINVAL)
			fail_msg("sort '%s' accepted", bad[i]);
	}
	/* the length is what counts, not a NUL */
	assert_int_equal(key_created_from_sort("9999999999999", 12, &ms),
			 EF_EINVAL);
	assert_int_equal(ms, 77);
}

/* ---- key layout --------------------------------------------------------- */

static void test_key_layout_sample(void **state)
{
	key_part o, r;
	key_buf k;
	char sort[KEY_SORT_LEN + 1];

	(void)state;
	assert_int_equal(key_owner(err_id, "owner", " Alice@Example.com ", &o),
			 EF_OK);
	assert_int_equal(key_reservation(err_id, "rid", "R:1 %", &r), EF_OK);
	assert_int_equal(key_created_sort(1700000000000LL, sort), EF_OK);

	key_entry(&k, &o, sort, &r);
	assert_key(&k, "recentReceive:alice@example.com:8299999999999:"
		       "R%3A1%20%25");
	key_entry_prefix(&k, &o);
	assert_key(&k, "recentReceive:alice@example.com:");
	key_index(&k, &o, &r);
	assert_key(&k, "receiveIndex:alice@example.com:R%3A1%20%25");
	key_unread(&k, &o, &r);
	assert_key(&k, "unread:alice@example.com:R%3A1%20%25");
	key_unread_prefix(&k, &o);
	assert_key(&k, "unread:alice@example.com:");
	key_legacy(&k, &o);
	assert_key(&k, "recentReceives:alice@example.com");
	key_meta(&k, "format");
	assert_key(&k, "meta:format");
}

static void test_key_longest_fits(void **state)
{
	char owner[400], rid[200];
	char sort[KEY_SORT_LEN + 1];
	key_part o, r;
	key_buf k;
	key_view vo, vs, vr;

	(void)state;
	/* 106 ':' + "ab" = 320 escaped; 53 '%' + "z" = 160 escaped */
	repeat_tail(owner, "", ":", 106, "ab");
	repeat_tail(rid, "", "%", 53, "z");
	assert_int_equal(key_owner(err_id, "owner", owner, &o), EF_OK);
	assert_int_equal(key_reservation(err_id, "rid", rid, &r), EF_OK);
	assert_int_equal(o.len, EF_OWNER_KEY_MAX);
	assert_int_equal(r.len, EF_RESERVATION_KEY_MAX);
	assert_int_equal(key_created_sort(EF_CREATED_MAX, sort), EF_OK);

	key_entry(&k, &o, sort, &r);
	assert_int_equal(k.len, strlen(KEY_P_ENTRY) + 320 + 1 + 13 + 1 + 160);
	assert_true(k.len <= KEY_MAX);
	assert_int_equal(strlen(k.s), k.len);
	assert_int_equal(key_split_entry(k.s, k.len, &vo, &vs, &vr), EF_OK);
	assert_memory_equal(vo.p, o.s, o.len);
	assert_int_equal(vo.len, o.len);
	assert_view(vs, "0000000000000");
	assert_memory_equal(vr.p, r.s, r.len);
	assert_int_equal(vr.len, r.len);
	assert_unescapes_to(vo, owner, strlen(owner));
	assert_unescapes_to(vr, rid, strlen(rid));

	key_index(&k, &o, &r);
	assert_int_equal(k.len, strlen(KEY_P_INDEX) + 320 + 1 + 160);
	assert_int_equal(key_split_pair(k.s, k.len, KEY_P_INDEX, &vo, &vr),
			 EF_OK);
	assert_unescapes_to(vo, owner, strlen(owner));
	assert_unescapes_to(vr, rid, strlen(rid));
	key_unread(&k, &o, &r);
	assert_int_equal(key_split_pair(k.s, k.len, KEY_P_UNREAD, &vo, &vr),
			 EF_OK);
	assert_unescapes_to(vr, rid, strlen(rid));
	key_legacy(&k, &o);
	assert_int_equal(k.len, strlen(KEY_P_LEGACY) + 320);
}

/* ---- round trips -------------------------------------------------------- */

static void test_key_split_round_trip(void **state)
{
	char raw_o[1400], canon[1400], rid[800], want[1400];
	char sort[KEY_SORT_LEN + 1];
	key_part o, r;
	key_buf k;
	key_view vo, vs, vr;
	int64_t back;

	(void)state;
	rng_seed(0x5EED0002);
	for (int i = 0; i < 5000; i++) {
		size_t cl, rl;
		int64_t ms = (int64_t)rng_below((uint64_t)EF_CREATED_MAX + 1);

		rand_owner(raw_o, canon);
		cl = strlen(canon);
		rl = rand_component(rid, EF_RESERVATION_KEY_MAX, 1);
		if (key_owner(err_id, "owner", raw_o, &o) != EF_OK)
			fail_msg("owner '%s': %s", raw_o, ef__err_get(err_id));
		if (key_reservation(err_id, "rid", rid, &r) != EF_OK)
			fail_msg("rid '%s': %s", rid, ef__err_get(err_id));
		/* the codec's escaping agrees with the model */
		assert_int_equal(o.len, esc(canon, cl, want));
		assert_string_equal(o.s, want);
		assert_int_equal(r.len, esc(rid, rl, want));
		assert_string_equal(r.s, want);

		assert_int_equal(key_created_sort(ms, sort), EF_OK);
		key_entry(&k, &o, sort, &r);
		assert_true(k.len <= KEY_MAX);
		assert_int_equal(key_split_entry(k.s, k.len, &vo, &vs, &vr),
				 EF_OK);
		assert_unescapes_to(vo, canon, cl);
		assert_unescapes_to(vr, rid, rl);
		assert_int_equal(key_created_from_sort(vs.p, vs.len, &back),
				 EF_OK);
		assert_int_equal(back, ms);
		assert_true(key_view_valid(vo));
		assert_true(key_view_valid(vr));

		key_index(&k, &o, &r);
		assert_int_equal(key_split_pair(k.s, k.len, KEY_P_INDEX, &vo,
						&vr),
				 EF_OK);
		assert_unescapes_to(vo, canon, cl);
		assert_unescapes_to(vr, rid, rl);

		key_unread(&k, &o, &r);
		assert_int_equal(key_split_pair(k.s, k.len, KEY_P_UNREAD, &vo,
						&vr),
				 EF_OK);
		assert_unescapes_to(vo, canon, cl);
		assert_unescapes_to(vr, rid, rl);
	}
}

static void test_key_unescape_bounds(void **state)
{
	char out[8];
	key_view v = {"a%3Ab", 5};

	(void)state;
	assert_int_equal(key_unescape(v, out, sizeof(out)), 3);
	assert_string_equal(out, "a:b");
	/* exactly room for the text and its NUL; one byte less fails */
	assert_int_equal(key_unescape(v, out, 4), 3);
	assert_int_equal(key_unescape(v, out, 3), -1);
	assert_int_equal(key_unescape(v, out, 0), -1);
	v = (key_view){"a%3", 3};
	assert_int_equal(key_unescape(v, out, sizeof(out)), -1);
	v = (key_view){"a%", 2};
	assert_int_equal(key_unescape(v, out, sizeof(out)), -1);
	v = (key_view){"%3a", 3};
	assert_int_equal(key_unescape(v, out, sizeof(out)), -1);
	v = (key_view){"%41", 3};
	assert_int_equal(key_unescape(v, out, sizeof(out)), -1);
	v = (key_view){"a b", 3};
	assert_int_equal(key_unescape(v, out, sizeof(out)), -1);
}

/* ---- ordering ----------------------------------------------------------- */

static int64_t rand_created(void)
{
	switch (rng_below(8)) {
	case 0:
		return 0;
	case 1:
		return EF_CREATED_MAX;
	case 2:
		return 1700000000000LL + (int64_t)rng_below(1000);
	default:
		return (int64_t)rng_below((uint64_t)EF_CREATED_MAX + 1);
	}
}

/* The second of a pair: often the same millisecond, sometimes one apart. */
static int64_t rand_created_near(int64_t c1)
{
	switch (rng_below(4)) {
	case 0:
	case 1:
		return c1;
	case 2:
		if (c1 < EF_CREATED_MAX && rng_below(2))
			return c1 + 1;
		return c1 > 0 ? c1 - 1 : c1 + 1;
	default:
		return rand_created();
	}
}

/* The second reservation id: equal, extended, or independent. */
static size_t rand_rid_near(const char *r1, size_t l1, char *r2, int with_esc)
{
	switch (rng_below(6)) {
	case 0:
		memcpy(r2, r1, l1 + 1);
		return l1;
	case 1: {
		/* r1 extended by one token: a prefix relation */
		const char *t = tokens[rng_below(NTOKENS)];
		size_t tl;

		if (!with_esc && needs_esc((unsigned char)t[0]))
			t = "a";
		tl = strlen(t);
		memcpy(r2, r1, l1 + 1);
		if (esc_len(r1, l1) + esc_len(t, tl) > EF_RESERVATION_KEY_MAX)
			return l1;
		memcpy(r2 + l1, t, tl + 1);
		return l1 + tl;
	}
	default:
		return rand_component(r2, EF_RESERVATION_KEY_MAX, with_esc);
	}
}

static void make_entry(key_buf *k, const key_part *o, int64_t ms,
		       const char *rid, key_part *r)
{
	char sort[KEY_SORT_LEN + 1];

	assert_int_equal(key_created_sort(ms, sort), EF_OK);
	if (key_reservation(err_id, "rid", rid, r) != EF_OK)
		fail_msg("rid '%s': %s", rid, ef__err_get(err_id));
	key_entry(k, o, sort, r);
}

static void test_key_order_created_desc_then_rid(void **state)
{
	char raw_o[1400], canon[1400], r1[800], r2[800], e1[800], e2[800];
	key_part o, p1, p2;
	key_buf k1, k2;
	int equal_ms = 0;

	(void)state;
	rng_seed(0x5EED0003);
	for (int i = 0; i < 20000; i++) {
		size_t l1, l2, el1, el2;
		int64_t c1, c2;
		int want, got;

		if (i % 100 == 0) {
			rand_owner(raw_o, canon);
			assert_int_equal(key_owner(err_id, "owner", raw_o, &o),
					 EF_OK);
		}
		c1 = rand_created();
		c2 = rand_created_near(c1);
		l1 = rand_component(r1, EF_RESERVATION_KEY_MAX, 1);
		l2 = rand_rid_near(r1, l1, r2, 1);
		make_entry(&k1, &o, c1, r1, &p1);
		make_entry(&k2, &o, c2, r2, &p2);

		el1 = esc(r1, l1, e1);
		el2 = esc(r2, l2, e2);
		if (c1 != c2) {
			want = c1 > c2 ? -1 : 1; /* newest first */
		} else {
			want = lexcmp(e1, el1, e2, el2);
			equal_ms++;
		}
		got = lexcmp(k1.s, k1.len, k2.s, k2.len);
		if (got != want)
			fail_msg("order of (%lld, '%s') vs (%lld, '%s'): got "
				 "%d, want %d", (long long)c1, r1,
				 (long long)c2, r2, got, want);
	}
	assert_true(equal_ms > 5000); /* ties were exercised */
}

static void test_key_order_unescaped_ids_by_raw_bytes(void **state)
{
	char r1[800], r2[800];
	key_part o, p1, p2;
	key_buf k1, k2;

	(void)state;
	rng_seed(0x5EED0004);
	assert_int_equal(key_owner(err_id, "owner", "o@x", &o), EF_OK);
	for (int i = 0; i < 10000; i++) {
		size_t l1 = rand_component(r1, EF_RESERVATION_KEY_MAX, 0);
		size_t l2 = rand_rid_near(r1, l1, r2, 0);
		int64_t ms = rand_created();

		make_entry(&k1, &o, ms, r1, &p1);
		make_entry(&k2, &o, ms, r2, &p2);
		/* no escapes: the key component is the raw id */
		assert_string_equal(p1.s, r1);
		assert_int_equal(lexcmp(k1.s, k1.len, k2.s, k2.len),
				 lexcmp(r1, l1, r2, l2));
	}
}

static void test_key_order_escaped_ids_by_escaped_bytes(void **state)
{
	key_part o, p1, p2;
	key_buf k1, k2;

	(void)state;
	/* raw ' ' (0x20) < '!' (0x21), but escaped "%20" ('%' 0x25) > '!':
	 * the tie order is that of the key component, the escaped bytes */
	assert_int_equal(key_owner(err_id, "owner", "o@x", &o), EF_OK);
	make_entry(&k1, &o, 5, "a b", &p1);
	make_entry(&k2, &o, 5, "a!b", &p2);
	assert_true(lexcmp(k1.s, k1.len, k2.s, k2.len) > 0);
	/* ':' (0x3A) > '0' raw; "%3A" < "0" escaped */
	make_entry(&k1, &o, 5, "a:", &p1);
	make_entry(&k2, &o, 5, "a0", &p2);
	assert_true(lexcmp(k1.s, k1.len, k2.s, k2.len) < 0);
	/* a newer entry sorts first whatever its id */
	make_entry(&k1, &o, 6, "zzz", &p1);
	make_entry(&k2, &o, 5, "!", &p2);
	assert_true(lexcmp(k1.s, k1.len, k2.s, k2.len) < 0);
}

/* ---- prefix isolation --------------------------------------------------- */

static void test_key_prefix_isolation(void **state)
{
	static const char *const owners[] = {"a@x", "a@x:y", "a@x%3Ay", "s",
					     "a@x:", "A@X%", "a@x:y:z"};
	static const char *const rids[] = {"y", "y:z", "3Ay", ":", "%", "r",
					   "%3Ay:1", " "};
	enum { NO = sizeof(owners) / sizeof(owners[0]) };
	enum { NR = sizeof(rids) / sizeof(rids[0]) };
	key_part o[NO], r;
	key_buf ep[NO], up[NO], ip[NO], k;
	char sort[KEY_SORT_LEN + 1];

	(void)state;
	for (int i = 0; i < NO; i++) {
		assert_int_equal(key_owner(err_id, "owner", owners[i], &o[i]),
				 EF_OK);
		key_entry_prefix(&ep[i], &o[i]);
		key_unread_prefix(&up[i], &o[i]);
		/* there is no key_index_prefix; build it from the layout */
		ip[i].len = (size_t)snprintf(ip[i].s, sizeof(ip[i].s), "%s%s:",
					     KEY_P_INDEX, o[i].s);
	}
	assert_string_equal(o[0].s, "a@x");
	assert_string_equal(o[1].s, "a@x%3Ay");
	assert_string_equal(o[2].s, "a@x%253ay"); /* lowercased, then escaped */
	for (int i = 0; i < NO; i++)
		for (int j = 0; j < NO; j++)
			if (i != j)
				assert_string_not_equal(o[i].s, o[j].s);

	assert_int_equal(key_created_sort(1700000000000LL, sort), EF_OK);
	for (int i = 0; i < NO; i++) {
		for (int n = 0; n < NR + 1; n++) {
			key_buf keys[5];

			assert_int_equal(key_reservation(err_id, "rid",
							 n < NR ? rids[n] : "x",
							 &r),
					 EF_OK);
			key_entry(&keys[0], &o[i], sort, &r);
			key_index(&keys[1], &o[i], &r);
			key_unread(&keys[2], &o[i], &r);
			key_legacy(&keys[3], &o[i]);
			key_meta(&keys[4], n < NR ? rids[n] : "x");
			/* each key is in its own owner's range */
			assert_true(starts_with(&keys[0], &ep[i]));
			assert_true(starts_with(&keys[1], &ip[i]));
			assert_true(starts_with(&keys[2], &up[i]));
			for (int j = 0; j < NO; j++) {
				if (i == j)
					continue;
				for (int t = 0; t < 5; t++) {
					k = keys[t];
					if (starts_with(&k, &ep[j]) ||
					    starts_with(&k, &up[j]) ||
					    starts_with(&k, &ip[j]))
						fail_msg("key '%s' of owner "
							 "'%s' is in the range "
							 "of owner '%s'",
							 k.s, owners[i],
							 owners[j]);
				}
			}
		}
	}
	/* the legacy prefix "recentReceives:" and the entry prefix
	 * "recentReceive:" never reach into each other */
	key_legacy(&k, &o[3]); /* owner "s" */
	assert_true(strncmp(k.s, KEY_P_ENTRY, strlen(KEY_P_ENTRY)) != 0);
	key_entry_prefix(&k, &o[3]);
	assert_true(strncmp(k.s, KEY_P_LEGACY, strlen(KEY_P_LEGACY)) != 0);
}

/* ---- splitting malformed keys ------------------------------------------- */

static void test_key_split_entry_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"receiveIndex:a@x:8299999999999:r",    /* wrong prefix */
		"recentReceives:a@x:8299999999999:r",  /* legacy prefix */
		"RecentReceive:a@x:8299999999999:r",   /* prefix case */
		"recentReceive",                       /* prefix short */
		"recentReceive:",                      /* nothing */
		"recentReceive:a@x",                   /* no ':' */
		"recentReceive:a@x:8299999999999",     /* no rid ':' */
		"recentReceive:a@x:8299999999999r",    /* no ':' before rid */
		"recentReceive:a@x:829999999999:r",    /* 12-digit sort */
		"recentReceive:a@x:82999999999990:r",  /* 14-digit sort */
		"recentReceive:a@x:82999999x9999:r",   /* non-digit sort */
		"recentReceive:a@x:-299999999999:r",   /* sign in sort */
		"recentReceive:a%3ab:8299999999999:r", /* lowercase hex */
		"recentReceive:a@x:8299999999999:r%3a",
		"recentReceive:a%41:8299999999999:r",  /* needless escape */
		"recentReceive:a@x:8299999999999:%41",
		"recentReceive:a%:8299999999999:r",    /* cut escape */
		"recentReceive:a@x:8299999999999:r%2",
		"recentReceive:a%zz:8299999999999:r",  /* not hex */
		"recentReceive:a b:8299999999999:r",   /* raw space */
		"recentReceive:a@x:8299999999999:r s",
		"recentReceive::8299999999999:r",      /* empty owner */
		"recentReceive:a@x:8299999999999:",    /* empty rid */
		"recentReceive:a@x:8299999999999:r:s", /* raw ':' in rid */
		"recentReceive:a@x:8299999999999:r\x01",
		"recentReceive:a\x7F:8299999999999:r",
		"recentReceive:a\xC0\xAF:8299999999999:r", /* bad UTF-8 */
		"recentReceive:a@x:8299999999999:\xED\xA0\x80",
	};
	key_view vo, vs, vr;
	key_buf k;
	char rid[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (key_split_entry(bad[i], strlen(bad[i]), &vo, &vs, &vr) !=
		    EF_EINVAL)
			fail_msg("malformed entry key '%s' accepted", bad[i]);

	/* the well-formed neighbour is accepted */
	assert_int_equal(key_split_entry("recentReceive:a@x:8299999999999:r",
					 33, &vo, &vs, &vr),
			 EF_OK);
	assert_view(vo, "a@x");
	assert_view(vs, "8299999999999");
	assert_view(vr, "r");

	/* a rid component over 160 bytes, or an owner over 320 */
	k.len = (size_t)snprintf(k.s, sizeof(k.s),
				 "recentReceive:a@x:8299999999999:%s",
				 repeat(rid, "r", 161));
	assert_int_equal(key_split_entry(k.s, k.len, &vo, &vs, &vr), EF_EINVAL);
	k.len = (size_t)snprintf(k.s, sizeof(k.s),
				 "recentReceive:a@x:8299999999999:%s",
				 repeat(rid, "r", 160));
	assert_int_equal(key_split_entry(k.s, k.len, &vo, &vs, &vr), EF_OK);
	{
		char own[400];

		k.len = (size_t)snprintf(k.s, sizeof(k.s),
					 "recentReceive:%s:8299999999999:r",
					 repeat(own, "o", 321));
		assert_int_equal(key_split_entry(k.s, k.len, &vo, &vs, &vr),
				 EF_EINVAL);
	}
	/* the length given is what counts: a valid key cut short */
	assert_int_equal(key_split_entry("recentReceive:a@x:8299999999999:r",
					 32, &vo, &vs, &vr),
			 EF_EINVAL);
}

static void test_key_split_pair_rejects_malformed(void **state)
{
	static const struct {
		const char *prefix;
		const char *key;
	} bad[] = {
		{KEY_P_INDEX, "unread:a@x:r"},          /* wrong prefix */
		{KEY_P_UNREAD, "receiveIndex:a@x:r"},
		{KEY_P_UNREAD, "unread"},               /* short */
		{KEY_P_UNREAD, "unread:"},
		{KEY_P_UNREAD, "unread:a@x"},           /* no ':' */
		{KEY_P_UNREAD, "unread::r"},            /* empty owner */
		{KEY_P_UNREAD, "unread:a@x:"},          /* empty rid */
		{KEY_P_UNREAD, "unread:a@x:r:s"},       /* raw ':' in rid */
		{KEY_P_UNREAD, "unread:a%3ab:r"},       /* lowercase hex */
		{KEY_P_INDEX, "receiveIndex:a@x:r%3a"},
		{KEY_P_INDEX, "receiveIndex:%41:r"},    /* needless escape */
		{KEY_P_INDEX, "receiveIndex:a@x:%41"},
		{KEY_P_INDEX, "receiveIndex:a b:r"},    /* raw space */
		{KEY_P_INDEX, "receiveIndex:a@x:r s"},
		{KEY_P_INDEX, "receiveIndex:a@x:r%"},   /* raw '%' */
		{KEY_P_INDEX, "receiveIndex:a@x:\x01"},
		{KEY_P_INDEX, "receiveIndex:a@x:\xC3"}, /* bad UTF-8 */
	};
	key_view vo, vr;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (key_split_pair(bad[i].key, strlen(bad[i].key),
				   bad[i].prefix, &vo, &vr) != EF_EINVAL)
			fail_msg("malformed key '%s' accepted", bad[i].key);

	assert_int_equal(key_split_pair("unread:a%3Ab:r%20s", 18, KEY_P_UNREAD,
					&vo, &vr),
			 EF_OK);
	assert_view(vo, "a%3Ab");
	assert_view(vr, "r%20s");
}

/* ---- UTF-8 -------------------------------------------------------------- */

static void test_utf8_valid_accepts_multibyte(void **state)
{
	static const char *const good[] = {
		"",
		"plain ASCII",
		"\xC2\x80",             /* U+0080, smallest 2-byte */
		"\xDF\xBF",             /* U+07FF */
		"\xE0\xA0\x80",         /* U+0800, smallest 3-byte */
		"\xED\x9F\xBF",         /* U+D7FF, below the surrogates */
		"\xEE\x80\x80",         /* U+E000, above them */
		"\xEF\xBF\xBF",         /* U+FFFF */
		"\xF0\x90\x80\x80",     /* U+10000, smallest 4-byte */
		"\xF4\x8F\xBF\xBF",     /* U+10FFFF, the largest */
		"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!",
	};
	size_t bad_at = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const unsigned char *s = (const unsigned char *)good[i];

		if (!utf8_valid(s, strlen(good[i]), &bad_at))
			fail_msg("valid UTF-8 #%zu rejected at %zu", i, bad_at);
		assert_true(utf8_valid(s, strlen(good[i]), NULL));
	}
	assert_int_equal(bad_at, 12345); /* untouched on success */
	/* NUL is a valid code point when the length says so */
	assert_true(utf8_valid((const unsigned char *)"a\0b", 3, NULL));
}

static void test_utf8_valid_reports_first_bad_offset(void **state)
{
	static const struct {
		const char *s;
		size_t at;
	} bad[] = {
		{"ab\xC0\xAF", 2},            /* overlong 2-byte */
		{"\xC1\xBF", 0},
		{"xyz\xE0\x80\xAF", 3},       /* overlong 3-byte */
		{"\xF0\x8F\xBF\xBF", 0},      /* overlong 4-byte */
		{"\xC3\xA9\xED\xA0\x80", 2},  /* high surrogate */
		{"\xED\xBF\xBF", 0},          /* low surrogate */
		{"a\xF4\x90\x80\x80", 1},     /* U+110000 */
		{"\xF5\x80\x80\x80", 0},
		{"\xF8\x88\x80\x80\x80", 0},  /* 5-byte form */
		{"\xFE", 0},
		{"\xFF", 0},
		{"abc\x80", 3},               /* bare continuation */
		{"\xC3\xA9\xA9", 2},
		{"ab\xE2\x82", 2},            /* truncated at the end */
		{"\xF0\x9F\x98", 0},
		{"\xC3", 0},
		{"\xE2\x28\xA1", 0},          /* bad continuation */
		{"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xC3(", 9},
		{"ok\xC3\xA9\x80\xC0", 4},    /* the first of two */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t at = 999;

		if (utf8_valid((const unsigned char *)bad[i].s,
			       strlen(bad[i].s), &at))
			fail_msg("invalid UTF-8 #%zu accepted", i);
		if (at != bad[i].at)
			fail_msg("invalid UTF-8 #%zu: bad at %zu, want %zu", i,
				 at, bad[i].at);
		assert_false(utf8_valid((const unsigned char *)bad[i].s,
					strlen(bad[i].s), NULL));
	}
	/* a valid sequence cut by the length */
	{
		size_t at = 999;

		assert_false(utf8_valid((const unsigned char *)"a\xE2\x82\xAC",
					3, &at));
		assert_int_equal(at, 1);
	}
}

/* ---- the owner a key names (key_owner_from_key) -------------------------- */

/* @key (a whole component, NUL-free) names owner key part @want. */
static void key_names(const char *key, const char *want)
{
	key_part p;

	if (key_owner_from_key(err_id, key, strlen(key), &p) != EF_OK)
		fail_msg("key component '%s' rejected: %s", key,
			 ef__err_get(err_id));
	assert_int_equal(p.len, strlen(want));
	assert_string_equal(p.s, want);
}

/* @key (@len bytes) names no owner; the message says where, never what:
 * @secret (a part of the key) does not appear in it. */
static void key_names_none(const char *key, size_t len, const char *secret)
{
	key_part p;

	ef__err_clear(err_id);
	if (key_owner_from_key(err_id, key, len, &p) != EF_EINVAL)
		fail_msg("key component of %zu bytes taken as owner '%s'", len,
			 p.s);
	assert_msg("owner in the key", NULL);
	if (secret && strstr(ef__err_get(err_id), secret))
		fail_msg("message '%s' quotes the key", ef__err_get(err_id));
}

static void test_key_owner_from_key_takes_the_spelling_it_writes(void **state)
{
	(void)state;
	key_names("victim@x.com", "victim@x.com");
	/* escapes are read: the key finalize writes for owner "a:b" */
	key_names("a%3Ab", "a%3Ab");
	key_names("50%25%20off@x", "50%25%20off@x");
	key_names("%3A%25", "%3A%25");
	key_names("a%2520", "a%2520"); /* owner "a%20", not "a " */
	/* Unicode white space is not ASCII white space: its own owner */
	key_names("victim@x.com\xC2\xA0", "victim@x.com\xC2\xA0");
	key_names("\xE3\x80\x80victim@x.com", "\xE3\x80\x80victim@x.com");
	key_names("\xC3\x89t\xC3\xA9@x", "\xC3\x89t\xC3\xA9@x"); /* É: not ASCII */
}

static void test_key_owner_from_key_refuses_other_spellings(void **state)
{
	static const char *const spellings[] = {
		/* white space that the owner's trim would drop */
		"victim@x.com%20", "%20victim@x.com", "%20victim@x.com%20",
		"victim@x.com%20%20",
		/* escapes of bytes that are never escaped */
		"victim@x.com%09", "victim@x.com%0A", "victim@x.com%0D",
		"victim@x.com%0B", "victim@x.com%0C", "victim%40x.com",
		"%76ictim@x.com", "victim@x.com%C2%A0", "victim@x.com%00",
		/* escapes spelled otherwise than edgefeed spells them */
		"a%3ab", "a%3", "a%2", "a%", "%", "a%G0", "a%%3A",
		/* raw bytes that edgefeed escapes */
		"victim@x.com ", " victim@x.com", "a:b", "a b", "a%b",
		/* upper-case letters: the owner is lowercased */
		"Victim@X.com", "VICTIM@X.COM", "victiM@x.com",
		/* control bytes, invalid UTF-8 */
		"victim@x.com\t", "\nvictim@x.com", "vic\x7Ftim", "victim\xC3",
		"victim\xFF@x",
		/* nothing left */
		"%20", "%20%20%20",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(spellings) / sizeof(*spellings); i++) {
		const char *k = spellings[i];
		key_names_none(k, strlen(k), strstr(k, "victim") ? "victim"
								 : NULL);
	}
	key_names_none("", 0, NULL);
	key_names_none("vic\0tim", 7, "vic");
	/* the message says where: a byte offset */
	key_names_none("victim@x.com%0A", 15, "victim");
	assert_msg("owner in the key", "byte 12", NULL);
	key_names_none("Victim@x.com", 12, "ictim");
	assert_msg("owner in the key", "byte 0", "upper-case", NULL);
	key_names_none("victim@x.com%20", 15, "victim");
	assert_msg("owner in the key", "white space", NULL);
}

/* Every owner's key names it again: an exported key re-imports to the
 * same owner. */
static void test_key_owner_from_key_round_trips_every_owner(void **state)
{
	char raw[4 * EF_OWNER_KEY_MAX], canon[4 * EF_OWNER_KEY_MAX];
	key_part o, back;

	(void)state;
	rng_seed(0x0E2C0DE);
	for (int i = 0; i < 20000; i++) {
		rand_owner(raw, canon);
		if (key_owner(err_id, "owner", raw, &o) != EF_OK)
			continue; /* too long once escaped */
		if (key_owner_from_key(err_id, o.s, o.len, &back) != EF_OK)
			fail_msg("the key '%s' of owner '%s' names no owner: %s",
				 o.s, raw, ef__err_get(err_id));
		assert_int_equal(back.len, o.len);
		assert_memory_equal(back.s, o.s, o.len);
	}
}

/* Injective: a key names an owner only as the key that owner has, so two
 * keys never name one owner. Random components, escapes of every kind. */
static void test_key_owner_from_key_is_injective(void **state)
{
	static const char *const bits[] = {
		"a", "A", "z", "@", ".", "%3A", "%25", "%20", "%3a", "%41",
		"%09", "%0A", " ", ":", "%", "\xC2\xA0", "\xC3\x89", "\t",
	};
	char k[256];
	key_part p, again;
	size_t n;
	int taken = 0;

	(void)state;
	rng_seed(0x1213);
	for (int i = 0; i < 50000; i++) {
		n = 0;
		for (uint64_t j = 1 + rng_below(6); j > 0; j--)
			n += (size_t)sprintf(k + n, "%s",
					     bits[rng_below(sizeof(bits) /
							    sizeof(*bits))]);
		if (key_owner_from_key(err_id, k, n, &p) != EF_OK)
			continue;
		taken++;
		/* the owner's own key is the key itself, byte for byte */
		if (p.len != n || memcmp(p.s, k, n) != 0)
			fail_msg("key '%s' names owner key '%s'", k, p.s);
		assert_int_equal(key_owner_from_key(err_id, p.s, p.len, &again),
				 EF_OK);
	}
	assert_true(taken > 1000); /* the test reached both sides */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup(f, setup_id)
		T(test_owner_trims_and_lowercases),
		T(test_owner_escapes_colon_percent_space),
		T(test_owner_n_reads_only_len_bytes),
		T(test_owner_rejects_missing_and_empty),
		T(test_owner_rejects_invalid_utf8),
		T(test_reservation_rejects_invalid_utf8),
		T(test_owner_rejects_control_characters),
		T(test_reservation_rejects_control_characters),
		T(test_reservation_rejects_missing_and_empty),
		T(test_reject_names_given_field),
		T(test_owner_length_limit),
		T(test_reservation_length_limit),
		T(test_reservation_taken_as_given),
		T(test_created_sort_bounds),
		T(test_created_sort_round_trip),
		T(test_created_from_sort_rejects),
		T(test_key_layout_sample),
		T(test_key_longest_fits),
		T(test_key_split_round_trip),
		T(test_key_unescape_bounds),
		T(test_key_order_created_desc_then_rid),
		T(test_key_order_unescaped_ids_by_raw_bytes),
		T(test_key_order_escaped_ids_by_escaped_bytes),
		T(test_key_prefix_isolation),
		T(test_key_split_entry_rejects_malformed),
		T(test_key_split_pair_rejects_malformed),
		T(test_utf8_valid_accepts_multibyte),
		T(test_utf8_valid_reports_first_bad_offset),
		T(test_key_owner_from_key_takes_the_spelling_it_writes),
		T(test_key_owner_from_key_refuses_other_spellings),
		T(test_key_owner_from_key_round_trips_every_owner),
		T(test_key_owner_from_key_is_injective),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-legacy-retention.c - IP retention on the side paths of legacy data
 * (issue 11, classes 1 and 2): whatever form a legacy array takes in the
 * store (imported and not migrated, migrated, quarantined, merged, kept in
 * plaintext by an older version), an IP address at any depth of it, or in
 * bytes that are not JSON at all, is never written to the store in
 * plaintext, reads while within retention, and after sweep (and compact)
 * is in no file of the store directory, in no export and in no message.
 */
#define _GNU_SOURCE /* memmem */
#include "tests/retention-fixture.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <sodium.h>
#include <unistd.h>

#include "feed/ipscan.h"
#include "feed/legacy.h"

/* Every address the bulk file below holds, each in one place only. */
static const char *const ips[] = {
	"198.51.100.7",     /* the element's own "ip" (the issue's example) */
	"198.51.100.8",     /* nested object */
	"198.51.100.9",     /* array of hops, inside objects */
	"198.51.100.10",    /* an X-Forwarded-For list, second */
	"203.0.113.11",     /* an object key */
	"2001:db8::12",     /* IPv6 in a nested value */
	"2001:db8:0:0:1:0:0:13", /* IPv6, long form */
	"198.51.100.14",    /* a bare string element (not an object) */
	"198.51.100.15",    /* element without createdAt (quarantined) */
	"198.51.100.16",    /* a legacy value that is an object */
	"203.0.113.17",     /* a value cut off inside a string */
	"203.0.113.18",     /* a value with bytes that are not UTF-8 */
	"198.51.100.19",    /* an address spelled with JSON escapes */
	"198.51.100.20",    /* with a port, in a nested array */
};
#define NIPS (sizeof(ips) / sizeof(*ips))

static char *legacy_values(int64_t created, char **cut, char **bin,
			   size_t *binlen)
{
	char *arr;
	int n;

	n = asprintf(&arr,
		     "[{\"reservationId\":\"v\",\"createdAt\":%lld,"
		     "\"ip\":\"198.51.100.7\",\"fileName\":\"a.pdf\","
		     "\"client\":{\"addr\":{\"v4\":\"198.51.100.8\"}},"
		     "\"hops\":[{\"at\":\"edge\",\"ip\":\"198.51.100.9\"}],"
		     "\"xff\":\"192.0.2.1, 198.51.100.10\","
		     "\"seen\":{\"203.0.113.11\":true},"
		     "\"peer\":[\"2001:db8::12\",\"x\"],"
		     "\"peer6\":\"[2001:db8:0:0:1:0:0:13]:443\","
		     "\"esc\":\"198\\u002e51\\u002e100\\u002e19\","
		     "\"deep\":[[[\"198.51.100.20:8443\"]]]},"
		     "\"198.51.100.14\","
		     "{\"reservationId\":\"nodate\",\"ip\":\"198.51.100.15\"},"
		     "{\"reservationId\":\"plain\",\"createdAt\":%lld}]",
		     (long long)created, (long long)created);
	assert_true(n > 0);
	n = asprintf(cut, "[{\"reservationId\":\"c\",\"createdAt\":%lld,"
			  "\"ip\":\"203.0.113.17",
		     (long long)created);
	assert_true(n > 0);
	/* not UTF-8, and not JSON: only base64 carries it in a bulk file */
	*binlen = (size_t)asprintf(bin, "\xff\xfe{\"ip\":\"203.0.113.18\"}");
	return arr;
}

static char *b64(const void *p, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(cap);

	assert_non_null(out);
	sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* A bulk file of the legacy values above, created at @created. */
static char *bulk_file(fx *f, int64_t created)
{
	char *cut, *bin, *path, *enc, *obj, *arr;
	size_t binlen;

	arr = legacy_values(created, &cut, &bin, &binlen);
	enc = b64(bin, binlen);
	json_t *file = json_array();
	FILE *fp;

	assert_true(asprintf(&obj, "{\"reservationId\":\"o\",\"createdAt\":%lld,"
				   "\"meta\":{\"ip\":\"198.51.100.16\"}}",
			     (long long)created) > 0);
	json_array_append_new(file, json_pack("{s:s,s:s}", "key",
					      "recentReceives:v@x.com", "value",
					      arr));
	json_array_append_new(file, json_pack("{s:s,s:s}", "key",
					      "recentReceives:cut@x.com",
					      "value", cut));
	json_array_append_new(file, json_pack("{s:s,s:s,s:b}", "key",
					      "recentReceives:bin@x.com",
					      "value", enc, "base64", 1));
	json_array_append_new(file, json_pack("{s:s,s:s}", "key",
					      "recentReceives:obj@x.com",
					      "value", obj));
	path = th_scratch(f->dir, ".bulk.json");
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(json_dumpf(file, fp, 0), 0);
	assert_int_equal(fclose(fp), 0);
	json_decref(file);
	free(arr), free(cut), free(bin), free(enc), free(obj);
	return path;
}

static void import_at(fx *f, int64_t created)
{
	char *path = bulk_file(f, created);
	ef_import_stats is;

	assert_int_equal(ef_import_kvbulk(f->st, path, NULL, &is), EF_OK);
	assert_int_equal(is.legacy_arrays, 4);
	unlink(path);
	free(path);
}

/* No text and no binary form of any address of @ips in any file of the
 * store directory. */
static void assert_no_ip_in_files(fx *f)
{
	if (th_redis()) /* the nodes' files: tests/test-redis-retention.c */
		return;
	for (size_t i = 0; i < NIPS; i++) {
		uint8_t bin[16];
		int v6 = strchr(ips[i], ':') != NULL;
		char *where = th_dir_find(f->dir, ips[i], strlen(ips[i]));

		if (where)
			fail_msg("%s in plaintext in '%s'", ips[i], where);
		assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, ips[i], bin),
				 1);
		where = th_dir_find(f->dir, bin, v6 ? 16 : 4);
		if (where)
			fail_msg("%s in binary in '%s'", ips[i], where);
	}
}

/* The same with every file closed (LMDB's and the keyring's), then open
 * the store again. */
static void assert_files_hold_no_ip(fx *f)
{
	ef_close(f->st);
	f->st = NULL;
	assert_no_ip_in_files(f);
	f->st = fx_open(f, EF_NOSYNC, 0);
}

/* Append @s, and what it decodes to when it is base64, to @out. */
static void add_decoded(FILE *out, const char *s)
{
	size_t n = strlen(s), len;
	unsigned char *raw = malloc(n + 1);

	assert_non_null(raw);
	fprintf(out, "%s\n", s);
	if (sodium_base642bin(raw, n + 1, s, n, NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0) {
		fwrite(raw, 1, len, out);
		fputc('\n', out);
	}
	free(raw);
}

/* An export at the store's clock, as one string: the file, then every
 * value decoded (base64 values, and a quarantine record's rawBase64). */
static char *export_text(fx *f)
{
	char *file = NULL, *buf = NULL;
	size_t flen = 0, len = 0, i;
	FILE *mem = open_memstream(&file, &flen), *out;
	json_t *arr, *el;

	assert_non_null(mem);
	assert_int_equal(ef_export_kvbulk(f->st, mem, NULL, NULL), EF_OK);
	assert_int_equal(fclose(mem), 0);
	out = open_memstream(&buf, &len);
	assert_non_null(out);
	fprintf(out, "%s\n", file);
	arr = json_loads(file, 0, NULL);
	assert_non_null(arr);
	json_array_foreach(arr, i, el) {
		const char *v = json_string_value(json_object_get(el, "value"));
		json_t *q = json_loads(v, 0, NULL);
		const char *raw = json_string_value(json_object_get(q, "rawBase64"));

		add_decoded(out, v);
		if (raw)
			add_decoded(out, raw);
		json_decref(q);
	}
	json_decref(arr);
	free(file);
	assert_int_equal(fclose(out), 0);
	return buf;
}

/* Does any address of @ips show in @text (JSON; escapes decoded by a look
 * at every string would be stronger: the texts here hold no escapes)? */
static void assert_no_ip_in(const char *what, const char *text)
{
	for (size_t i = 0; i < NIPS; i++)
		if (strstr(text, ips[i]))
			fail_msg("%s holds %s", what, ips[i]);
}

static void sweep_at(fx *f, int64_t now)
{
	ef_sweep_opts o = {0};
	ef_sweep_stats s;

	o.now_ms = now;
	assert_int_equal(ef_sweep_ex(f->st, &o, &s), EF_OK);
}

static void compact(fx *f)
{
	ef_compact_stats cs;

	assert_int_equal(ef_compact(f->st, &cs), EF_OK);
}

/* Written sealed: no address reaches data.mdb even before any sweep. */
static void test_legacy_import_writes_no_plaintext_ip(void **state)
{
	fx *f = *state;

	import_at(f, T0 - DAY);
	assert_files_hold_no_ip(f);
}

/* Within retention, dual-read shows the element's IP and the addresses in
 * its payload, and an export carries them (it is within retention). */
static void test_legacy_dual_read_shows_ips_within_retention(void **state)
{
	fx *f = *state;
	ef_entry *e;
	char *text;

	import_at(f, T0 - DAY);
	assert_int_equal(ef_get_entry(f->st, "v@x.com", "v", &e), EF_OK);
	assert_string_equal(e->ip, "198.51.100.7");
	assert_non_null(strstr(e->payload_json, "198.51.100.8"));
	assert_non_null(strstr(e->payload_json, "2001:db8::12"));
	assert_non_null(strstr(e->payload_json, "\"a.pdf\""));
	ef_entry_free(e);
	text = export_text(f);
	assert_non_null(strstr(text, "198.51.100.9"));
	free(text);
	th_assert_consistent(f->st);
}

/* The issue's reproduction and its variants: import, sweep past
 * retention, compact: no address in any file, any export or any read. */
static void test_legacy_ips_gone_after_sweep_and_compact(void **state)
{
	fx *f = *state;
	ef_entry *e;
	char *text;

	import_at(f, T0 - 3600 * 1000);
	f->now = T0 + 40 * DAY;
	sweep_at(f, f->now);
	compact(f);
	assert_int_equal(ef_get_entry(f->st, "v@x.com", "v", &e), EF_OK);
	assert_null(e->ip);
	assert_non_null(strstr(e->payload_json, "\"a.pdf\"")); /* the rest */
	assert_no_ip_in("a payload past retention", e->payload_json);
	ef_entry_free(e);
	text = export_text(f);
	assert_no_ip_in("an export past retention", text);
	free(text);
	assert_files_hold_no_ip(f);
	th_assert_consistent(f->st);
}

/* Migrated (entries, and quarantine records for what does not convert),
 * then past retention: the same. */
static void test_legacy_migrated_ips_gone_after_sweep(void **state)
{
	fx *f = *state;
	ef_migrate_stats ms;
	char *text;

	import_at(f, T0 - 3600 * 1000);
	assert_int_equal(ef_migrate(f->st, NULL, &ms), EF_OK);
	assert_true(ms.quarantined > 0);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	assert_files_hold_no_ip(f); /* sealed, also when migrated */
	f->now = T0 + 40 * DAY;
	sweep_at(f, f->now);
	compact(f);
	text = export_text(f);
	assert_no_ip_in("an export of migrated data", text);
	free(text);
	assert_files_hold_no_ip(f);
	th_assert_consistent(f->st);
}

/* A legacy array kept in plaintext (an older version imported it so, or
 * it reached the store another way): sweep seals it, reads go on. */
static void test_legacy_plaintext_value_sealed_by_sweep(void **state)
{
	fx *f = *state;
	char *arr, *cut, *bin;
	ef_sweep_stats s;
	size_t binlen;
	ef_entry *e;

	arr = legacy_values(T0 - DAY, &cut, &bin, &binlen);
	th_put_raw(f->st, "recentReceives:v@x.com", arr, strlen(arr));
	th_put_raw(f->st, "recentReceives:cut@x.com", cut, strlen(cut));
	assert_int_equal(ef_sweep(f->st, &s), EF_OK);
	assert_int_equal(s.legacy_sealed, 2);
	assert_int_equal(ef_sweep(f->st, &s), EF_OK);
	assert_int_equal(s.legacy_sealed, 0); /* once */
	compact(f);
	assert_files_hold_no_ip(f);
	assert_int_equal(ef_get_entry(f->st, "v@x.com", "v", &e), EF_OK);
	assert_string_equal(e->ip, "198.51.100.7");
	ef_entry_free(e);
	free(arr), free(cut), free(bin);
}

/* Merging an imported array into the one the store holds keeps both
 * sealed, and a second import of the same file changes nothing. */
static void test_legacy_reimport_changes_nothing(void **state)
{
	fx *f = *state;
	char *d1, *d2, *path = bulk_file(f, T0 - DAY);
	ef_import_stats is;

	assert_int_equal(ef_import_kvbulk(f->st, path, NULL, &is), EF_OK);
	d1 = th_dump(f->st);
	assert_int_equal(ef_import_kvbulk(f->st, path, NULL, &is), EF_OK);
	d2 = th_dump(f->st);
	assert_string_equal(d1, d2);
	assert_int_equal(is.unchanged, 4);
	unlink(path);
	free(path), free(d1), free(d2);
}

/* Class 2: no reason, message or finding quotes input that may hold an
 * IP; they say where and what. */
static void test_legacy_reasons_quote_no_input(void **state)
{
	fx *f = *state;
	ef_receive r = {"a@x", "r1", T0, NULL,
			"{\"note\":\"203.0.113.77"};

	import_at(f, T0 - DAY);
	assert_int_equal(ef_migrate(f->st, NULL, NULL), EF_OK);
	/* the quarantine records' reasons are plaintext: they quote nothing */
	assert_files_hold_no_ip(f);
	assert_int_equal(ef_finalize(f->st, &r), EF_EINVAL);
	assert_null(strstr(ef_errmsg(f->st), "203.0.113"));
	assert_non_null(strstr(ef_errmsg(f->st), "byte"));
	r.payload_json = NULL;
	r.ip = "203.0.113.77x";
	assert_int_equal(ef_finalize(f->st, &r), EF_EINVAL);
	assert_null(strstr(ef_errmsg(f->st), "203.0.113"));
	r.ip = "::ffff:203.0.113.78%";
	assert_int_equal(ef_finalize(f->st, &r), EF_EINVAL);
	assert_null(strstr(ef_errmsg(f->st), "203.0.113"));
}

/* Moving bytes whose age is unknown (a value that is not JSON) from the
 * legacy key into quarantine does not give them longer to live: they go
 * with the window they were stored under, not the migration's. */
static void test_legacy_quarantine_keeps_the_first_window(void **state)
{
	fx *f = *state;
	char *text;

	import_at(f, T0 - DAY);
	f->now = T0 + 25 * DAY;
	assert_int_equal(ef_migrate(f->st, NULL, NULL), EF_OK);
	f->now = T0 + 32 * DAY; /* 32 days after the import, 7 after migrate */
	sweep_at(f, f->now);
	text = export_text(f);
	assert_no_ip_in("an export 32 days after the import", text);
	free(text);
	assert_files_hold_no_ip(f);
}

/* A quarantine record from a file keeps its reasons, but not one that
 * quotes an address (an older version wrote jansson's text into them),
 * and its bytes keep the time they were quarantined. */
static void test_legacy_imported_quarantine_reasons_withheld(void **state)
{
	fx *f = *state;
	static const char raw[] = "[{\"ip\":\"203.0.113.17";
	char *rec, *enc = b64(raw, strlen(raw)), *path, *text;
	json_t *file = json_array();
	FILE *fp;

	assert_true(asprintf(&rec, "{\"version\":1,\"owner\":\"q@x.com\","
				   "\"legacyKey\":\"recentReceives:q@x.com\","
				   "\"quarantinedMs\":%lld,\"bytes\":%zu,"
				   "\"reasons\":[{\"index\":null,\"reason\":"
				   "\"invalid JSON near '\\\"203.0.113.17'\","
				   "\"migrated\":false}],\"rawBase64\":\"%s\"}",
			     (long long)(T0 - 2 * DAY), strlen(raw), enc) > 0);
	json_array_append_new(file, json_pack("{s:s,s:s}", "key",
		"quarantine:q@x.com:0123456789abcdef0123456789abcdef", "value",
		rec));
	path = th_scratch(f->dir, ".q.json");
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(json_dumpf(file, fp, 0), 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(ef_import_kvbulk(f->st, path, NULL, NULL), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "quarantine:"), 1);
	assert_files_hold_no_ip(f);
	f->now = T0 + 29 * DAY; /* 31 days after it was quarantined */
	sweep_at(f, f->now);
	text = export_text(f);
	assert_no_ip_in("an export of the quarantine record", text);
	free(text);
	unlink(path);
	json_decref(file);
	free(rec), free(enc), free(path);
}

/* Reports of an import quote no address: a skipped key (a namespace may
 * hold "ratelimit:<IP>" keys) is shown masked, and a malformed file's
 * message says where and what. */
static void skip_key(uint64_t element, const char *key, size_t key_len,
		     int reason, const char *detail, void *ctx)
{
	(void)element, (void)reason;
	if (ipscan_text(key, key_len) || ipscan_text(detail, strlen(detail)))
		fail_msg("a skip report quotes an address");
	*(int *)ctx += memchr(key, '*', key_len) != NULL;
}

static void test_legacy_import_reports_quote_no_address(void **state)
{
	fx *f = *state;
	static const char bad[] =
		"[{\"key\":\"k\",\"value\":\"203.0.113.7\\x\"}]";
	static const char skips[] =
		"[{\"key\":\"ratelimit:203.0.113.9\",\"value\":\"1\"},"
		"{\"key\":\"unread:a@x:[2001:db8::9]\",\"value\":\"1\"},"
		"{\"key\":\"recentReceives:Zed@198.51.100.1\",\"value\":\"[]\"}]";
	char *path;
	int masked = 0;
	ef_import_opts o = {.on_skip = skip_key, .skip_ctx = &masked};
	FILE *fp;

	path = th_scratch(f->dir, ".r.json");
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(bad, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(ef_import_kvbulk(f->st, path, &o, NULL), EF_EINVAL);
	assert_null(strstr(ef_errmsg(f->st), "203.0.113"));
	assert_non_null(strstr(ef_errmsg(f->st), "invalid JSON"));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(skips, fp);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(ef_import_kvbulk(f->st, path, &o, NULL), EF_OK);
	assert_int_equal(masked, 3);
	unlink(path);
	free(path);
}

/* check tells a malformed sealed value from one whose seals are shredded,
 * and migrate quarantines it instead of failing. */
static void count_violation(const char *what, const char *key, void *ctx)
{
	(void)key;
	*(int *)ctx += strstr(what, "sealed value is malformed") != NULL;
}

static void test_legacy_check_reports_a_malformed_sealed_value(void **state)
{
	fx *f = *state;
	static const char bad[] = "\0EFL\1\1\0\0\0\7[]";
	int found = 0;
	ef_check_opts o = {.report = count_violation, .report_ctx = &found};
	ef_check_stats cs;
	ef_migrate_stats ms;

	import_at(f, T0 - DAY);
	th_put_raw(f->st, "recentReceives:bad@x.com", bad, sizeof(bad) - 1);
	assert_int_equal(ef_check(f->st, &o, &cs), EF_OK);
	assert_int_equal(found, 1);
	assert_int_equal(ef_migrate(f->st, NULL, &ms), EF_OK);
	assert_int_equal(th_count_prefix(f->st, "recentReceives:"), 0);
	th_assert_consistent(f->st);
}

/* A value cut inside a string: jansson's text quotes the token; the
 * reason says where and what instead. */
static void test_legacy_reason_of_cut_value_quotes_nothing(void **state)
{
	fx *f = *state;
	static const char cut[] = "[{\"reservationId\":\"c\",\"ip\":\"203.0.113.77";
	legacy_array a;
	key_part owner;

	assert_int_equal(key_owner(0, "owner", "cut@x.com", &owner), EF_OK);
	assert_int_equal(legacy_parse(f->st, &owner, cut, strlen(cut), T0, 0,
				      &a),
			 EF_OK);
	assert_int_equal(a.nissues, 1);
	assert_null(strstr(a.issues[0].reason, "203.0.113"));
	assert_non_null(strstr(a.issues[0].reason, "(byte 40)"));
	assert_non_null(strstr(a.issues[0].reason, "ends too early"));
	legacy_free(&a);
}

/* The rule that finds addresses: what it must find, what it leaves. */
static void test_ipscan_finds_addresses_as_tokens(void **state)
{
	static const char *const hold[] = {
		"198.51.100.7", "ip=198.51.100.7;", "198.51.100.7:443",
		"192.0.2.1, 198.51.100.10", "[2001:db8::7]:443", "fe80::1%eth0",
		"::ffff:198.51.100.7", "::1", "2001:db8:0:0:1:0:0:13",
		"for=\"[2001:db8::1]\"", "0.0.0.0", "255.255.255.255",
		"x2001:db8::7",
	};
	static const char *const clean[] = {
		"a.pdf", "2026-09-21T10:00:00Z", "12:30:45", "1.2.3",
		"256.1.1.1", "1.2.3.4567", "deadbeef", "aa:bb:cc:dd:ee:ff", "",
		"v1.2", "10:20",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(hold) / sizeof(*hold); i++)
		if (!ipscan_text(hold[i], strlen(hold[i])))
			fail_msg("'%s' holds an address", hold[i]);
	for (size_t i = 0; i < sizeof(clean) / sizeof(*clean); i++)
		if (ipscan_text(clean[i], strlen(clean[i])))
			fail_msg("'%s' holds no address", clean[i]);
}

static void test_ipscan_redacts_at_any_depth(void **state)
{
	json_t *j = json_loads(
		"{\"a\":{\"b\":[{\"c\":\"1.2.3.4\"},\"5.6.7.8\",7],"
		"\"9.9.9.9\":1},\"keep\":\"x\",\"d\":[[\"::1\"]]}",
		0, NULL);
	char *s;

	(void)state;
	assert_non_null(j);
	assert_true(ipscan_json(j));
	assert_int_equal(ipscan_redact(j), 4);
	assert_false(ipscan_json(j));
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"a\":{\"b\":[{},null,7]},\"d\":[[null]],"
			       "\"keep\":\"x\"}");
	free(s);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipscan_finds_addresses_as_tokens),
		cmocka_unit_test(test_ipscan_redacts_at_any_depth),
		cmocka_unit_test_setup_teardown(
			test_legacy_import_writes_no_plaintext_ip, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_dual_read_shows_ips_within_retention,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_ips_gone_after_sweep_and_compact, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_migrated_ips_gone_after_sweep, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_plaintext_value_sealed_by_sweep, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_reimport_changes_nothing, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_reasons_quote_no_input, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_reason_of_cut_value_quotes_nothing,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_quarantine_keeps_the_first_window,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_imported_quarantine_reasons_withheld,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_import_reports_quote_no_address,
			fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_legacy_check_reports_a_malformed_sealed_value,
			fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test-kvbulk.c - Workers KV bulk import and export: a round trip gives
 * the same pages, re-importing changes nothing, spellings of one owner
 * merge, every skip is reported, a malformed file is refused with its
 * position, no IP past retention leaves, and a large file streams.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "feed/legacy.h"

#define DAY (24LL * 3600 * 1000)
#define T0 1790000000000LL /* 2026-09-21T14:13:20Z */

typedef struct fx {
	char *dir;  /* holds the stores "src", "dst" and the files */
	char *src_dir, *dst_dir;
	ef_store *src, *dst;
	int64_t now;
} fx;

static ef_store *fx_open(fx *f, const char *dir)
{
	ef_config cfg = {0};

	cfg.clock_ms = th_clock;
	cfg.clock_ctx = &f->now;
	cfg.flags = EF_NOSYNC;
	return th_open(dir, &cfg);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	f->dir = th_tmpdir();
	f->now = T0;
	assert_true(asprintf(&f->src_dir, "%s/src", f->dir) > 0);
	/* on the test cluster, every import here goes from LMDB (src) to
	 * the cluster (dst), and every comparison is across engines */
	if (th_redis())
		f->dst_dir = th_store();
	else
		assert_true(asprintf(&f->dst_dir, "%s/dst", f->dir) > 0);
	f->src = fx_open(f, f->src_dir);
	f->dst = fx_open(f, f->dst_dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	ef_close(f->src);
	ef_close(f->dst);
	free(f->src_dir);
	free(f->dst_dir);
	th_cleanup(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static char *path_in(const fx *f, const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
	return p;
}

static char *write_text(const fx *f, const char *name, const char *text,
			size_t len)
{
	char *p = path_in(f, name);
	FILE *out = fopen(p, "wb");

	assert_non_null(out);
	assert_int_equal(fwrite(text, 1, len, out), len);
	assert_int_equal(fclose(out), 0);
	return p;
}

/* Write @arr (taken) as a bulk file. */
static char *write_json(const fx *f, const char *name, json_t *arr)
{
	char *p = path_in(f, name);

	assert_int_equal(json_dump_file(arr, p, JSON_INDENT(1)), 0);
	json_decref(arr);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *in = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(in);
	assert_int_equal(fseek(in, 0, SEEK_END), 0);
	n = ftell(in);
	rewind(in);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, in), (size_t)n);
	buf[n] = '\0';
	fclose(in);
	if (len)
		*len = (size_t)n;
	return buf;
}

static char *b64(const void *raw, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len,
					       sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(cap);

	sodium_bin2base64(out, cap, raw, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

static unsigned char *unb64(const char *s, size_t *len)
{
	size_t cap = strlen(s) / 4 * 3 + 3;
	unsigned char *out = malloc(cap);

	assert_int_equal(sodium_base642bin(out, cap, s, strlen(s), NULL, len,
					   NULL, sodium_base64_VARIANT_ORIGINAL),
			 0);
	return out;
}

/* A record (no IP) in base64, as an export writes it. */
static char *record_b64(int64_t created, const char *rid, const char *payload)
{
	rec_entry e = {0};
	uint8_t *buf;
	size_t len;
	char *out;

	e.created_ms = created;
	e.rid = rid;
	e.rid_len = strlen(rid);
	if (payload) {
		e.has_payload = 1;
		e.payload = payload;
		e.payload_len = strlen(payload);
	}
	assert_int_equal(rec_encode(&e, &buf, &len), EF_OK);
	out = b64(buf, len);
	free(buf);
	return out;
}

/* "recentReceive:<owner>:<createdSort>:<rid>" (parts need no escape). */
static char *entry_key(const char *owner, int64_t created, const char *rid)
{
	char sort[KEY_SORT_LEN + 1], *k;

	assert_int_equal(key_created_sort(created, sort), EF_OK);
	assert_true(asprintf(&k, "recentReceive:%s:%s:%s", owner, sort, rid) >
		    0);
	return k;
}

static json_t *elem(const char *key, const char *value, int base64)
{
	json_t *e = json_pack("{s:s, s:s}", "key", key, "value", value);
	if (base64)
		json_object_set_new(e, "base64", json_true());
	return e;
}

/* An entry element: the record in base64, its key, its index key. */
static void add_entry(json_t *arr, const char *owner, int64_t created,
		      const char *rid, const char *payload)
{
	char *k = entry_key(owner, created, rid), *v = record_b64(created, rid,
								    payload);
	json_array_append_new(arr, elem(k, v, 1));
	free(k);
	free(v);
}

/* Every page of @owner's feed at @limit, with its cursor, then the unread
 * count, as JSON text: two stores give the same text only if a client
 * paging them sees the same thing. */
static char *pages(ef_store *st, const char *owner, size_t limit)
{
	json_t *all = json_array();
	char *cursor = NULL, *text;
	uint64_t unread;

	do {
		json_t *page = json_array();
		ef_page p;

		assert_int_equal(ef_feed_page(st, owner, cursor, limit, &p),
				 EF_OK);
		for (size_t i = 0; i < p.count; i++) {
			const ef_entry *e = &p.entries[i];
			json_array_append_new(
				page, json_pack("[s, I, s?, s?, b]",
						e->reservation_id,
						(json_int_t)e->created_ms, e->ip,
						e->payload_json, e->unread));
		}
		json_array_append_new(all, json_pack("{s:o, s:s?}", "entries",
						     page, "next",
						     p.next_cursor));
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		ef_page_free(&p);
	} while (cursor);
	assert_int_equal(ef_unread_count(st, owner, &unread), EF_OK);
	json_array_append_new(all, json_integer((json_int_t)unread));
	text = json_dumps(all, JSON_COMPACT);
	json_decref(all);
	return text;
}

static void assert_same_pages(ef_store *a, ef_store *b, const char *owner)
{
	static const size_t limits[] = {1, 7, 1000};

	for (size_t i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
		char *x = pages(a, owner, limits[i]), *y = pages(b, owner,
								 limits[i]);
		assert_string_equal(x, y);
		free(x);
		free(y);
	}
}

/* Two dumps (th_dump) are equal; else fail naming the first line apart. */
static void assert_same_dump(const char *a, const char *b)
{
	size_t i = 0, line = 0;

	while (a[i] && a[i] == b[i])
		i++;
	if (!a[i] && !b[i])
		return;
	while (i > 0 && a[i - 1] != '\n')
		i--;
	for (size_t j = 0; j < i; j++)
		line += a[j] == '\n';
	fail_msg("dumps differ at line %zu:\n< %.300s\n> %.300s", line + 1,
		 a + i, b + i);
}

static char *export_file(fx *f, ef_store *st, const char *name,
			 ef_export_stats *es)
{
	char *p = path_in(f, name);
	FILE *out = fopen(p, "wb");

	assert_non_null(out);
	assert_int_equal(ef_export_kvbulk(st, out, NULL, es), EF_OK);
	assert_int_equal(fclose(out), 0);
	return p;
}

/* Skips seen through on_skip. */
typedef struct seen {
	int n;
	uint64_t element[64];
	int reason[64];
	char key[64][200];
	char detail[64][300];
} seen;

static void on_skip(uint64_t element, const char *key, size_t key_len,
		    int reason, const char *detail, void *ctx)
{
	seen *s = ctx;

	assert_non_null(detail);
	assert_true(*detail != '\0');
	assert_true(s->n < 64);
	s->element[s->n] = element;
	s->reason[s->n] = reason;
	snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s", (int)key_len, key);
	snprintf(s->detail[s->n], sizeof(s->detail[0]), "%s", detail);
	s->n++;
}

static ef_import_stats import(ef_store *st, const char *path, seen *sk)
{
	ef_import_opts o = {0};
	ef_import_stats s;
	int rc;

	o.on_skip = on_skip;
	o.skip_ctx = sk;
	rc = ef_import_kvbulk(st, path, &o, &s);
	if (rc != EF_OK)
		fail_msg("import %s: %s: %s", path, ef_strerror(rc),
			 ef_errmsg(st));
	return s;
}

static void put_legacy(ef_store *st, const char *owner_key, const char *json)
{
	char key[600];

	snprintf(key, sizeof(key), "recentReceives:%s", owner_key);
	th_put_raw(st, key, json, strlen(json));
}

/* Seed @st with feeds that have every kind of record: entries with and
 * without IPs (some sealed while within retention and past it by now),
 * read and unread, a legacy array (with elements without a reservation id
 * and IPs past retention), an old-design marker, a quarantine record. */
static void seed_everything(fx *f, ef_store *st)
{
	ef_seed_opts so = {0};
	ef_seed_stats ss;
	ef_page p;
	char legacy[1024];

	so.owners = 4;
	so.receives = 30;
	so.rng_seed = 7;
	so.now_ms = T0;
	assert_int_equal(ef_seed(st, &so, &ss), EF_OK);
	assert_int_equal(ef_mark_all_read(st, "user0000@example.com"), EF_OK);
	assert_int_equal(ef_feed_page(st, "user0001@example.com", NULL, 3, &p),
			 EF_OK);
	for (size_t i = 0; i < p.count; i += 2)
		assert_int_equal(ef_mark_read(st, "user0001@example.com",
					      p.entries[i].reservation_id),
				 EF_OK);
	ef_page_free(&p);
	/* an element that cannot migrate: migrate keeps the whole value,
	 * byte for byte, in quarantine, IP and all */
	put_legacy(st, "q@example.com",
		   "[{\"reservationId\":\"q1\",\"createdAt\":\"yesterday\","
		   "\"ip\":\"192.0.2.99\"}]");
	assert_int_equal(ef_migrate(st, NULL, NULL), EF_OK);
	snprintf(legacy, sizeof(legacy),
		 "[{\"reservationId\":\"l-new\",\"createdAt\":%lld,"
		 "\"ip\":\"203.0.113.5\",\"fileName\":\"n.pdf\"},"
		 "{\"reservationId\":\"l-old\",\"createdAt\":%lld,"
		 "\"ip\":\"198.51.100.77\",\"size\":5},"
		 "{\"createdAt\":%lld,\"ip\":\"198.51.100.78\",\"anon\":1},"
		 "{\"createdAt\":%lld,\"ip\":\"203.0.113.6\",\"anon\":2},"
		 "42]",
		 (long long)(T0 - DAY), (long long)(T0 - 40 * DAY),
		 (long long)(T0 - 41 * DAY), (long long)(T0 - 2 * DAY));
	put_legacy(st, "legacy@example.com", legacy);
	th_put_raw(st, "unread:legacy@example.com:l-new", "x", 1);
	(void)f;
}

static const char *const owners[] = {
	"user0000@example.com", "user0001@example.com", "user0002@example.com",
	"user0003@example.com", "legacy@example.com",   "q@example.com",
};

/* ---- round trip --------------------------------------------------------- */

static void test_kvbulk_round_trip_reproduces_every_page(void **state)
{
	fx *f = *state;
	ef_export_stats es;
	ef_import_stats is;
	seen sk = {0};
	char *file;

	seed_everything(f, f->src);
	/* time passes: some IPs sealed within retention are past it now */
	f->now = T0 + 15 * DAY;
	file = export_file(f, f->src, "all.json", &es);
	assert_int_equal(es.entries, 120);
	assert_int_equal(es.index_keys, 120);
	assert_int_equal(es.legacy_arrays, 1);
	assert_int_equal(es.quarantine_records, 1);
	assert_true(es.ips_dropped > 0);
	assert_int_equal(es.left_out, 0);
	is = import(f->dst, file, &sk);
	assert_int_equal(sk.n, 0);
	assert_int_equal(is.skipped, 0);
	assert_int_equal(is.entries, 120);
	assert_int_equal(is.index_keys, 120);
	assert_int_equal(is.markers, es.markers);
	assert_int_equal(is.legacy_arrays, 1);
	assert_int_equal(is.quarantine_records, 1);
	assert_int_equal(is.elements, es.elements);
	for (size_t i = 0; i < sizeof(owners) / sizeof(*owners); i++)
		assert_same_pages(f->src, f->dst, owners[i]);
	assert_int_equal(th_count_prefix(f->dst, "unread:"),
			 th_count_prefix(f->src, "unread:"));
	assert_int_equal(th_count_prefix(f->dst, "quarantine:"), 1);
	th_assert_consistent(f->dst);
	/* and the legacy array still migrates to the same pages */
	assert_int_equal(ef_migrate(f->src, NULL, NULL), EF_OK);
	assert_int_equal(ef_migrate(f->dst, NULL, NULL), EF_OK);
	assert_same_pages(f->src, f->dst, "legacy@example.com");
	free(file);
}

static void test_kvbulk_reimport_changes_nothing(void **state)
{
	fx *f = *state;
	ef_import_stats is;
	seen sk = {0};
	char *file, *d1, *d2;

	seed_everything(f, f->src);
	file = export_file(f, f->src, "all.json", NULL);
	import(f->dst, file, &sk);
	d1 = th_dump(f->dst);
	is = import(f->dst, file, &sk);
	d2 = th_dump(f->dst);
	assert_same_dump(d1, d2);
	assert_int_equal(sk.n, 0);
	assert_int_equal(is.entries + is.markers + is.legacy_arrays +
				 is.legacy_merged + is.quarantined,
			 0);
	/* index keys are checked, quarantine records are put again (a no-op
	 * on the same bytes); the rest is all found unchanged */
	assert_int_equal(is.unchanged,
			 is.elements - is.index_keys - is.quarantine_records);
	/* the same file into the store it came from changes nothing either */
	free(d1);
	d1 = th_dump(f->src);
	import(f->src, file, &sk);
	free(d2);
	d2 = th_dump(f->src);
	assert_same_dump(d1, d2);
	free(d1);
	free(d2);
	free(file);
}

/* ---- owners ------------------------------------------------------------- */

/* The stored bytes of @key (a th_dump line "KEY\tHEX"): malloc'd, *n. */
static uint8_t *stored_value(ef_store *st, const char *key, size_t *n)
{
	char *dump = th_dump(st), *line = strstr(dump, key), *tab, *end;
	uint8_t *raw;

	assert_non_null(line);
	tab = strchr(line, '\t');
	end = strchr(tab, '\n');
	raw = malloc((size_t)(end - tab) / 2 + 1);
	assert_non_null(raw);
	*n = 0;
	for (char *h = tab + 1; h + 1 < end; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		raw[(*n)++] = (uint8_t)v;
	}
	free(dump);
	return raw;
}

/* The legacy value of @key as the store reads it now (its sealed form
 * opened where retention allows). */
static const char *legacy_value(ef_store *st, const char *key, char *buf,
				size_t cap)
{
	size_t n, vlen;
	uint8_t *raw = stored_value(st, key, &n), *view;
	key_buf k;

	k.len = strlen(key) - 1; /* without the tab */
	memcpy(k.s, key, k.len);
	k.s[k.len] = '\0';
	assert_int_equal(legacy_value_view(st, &k, raw, n, feed_now(st), &view,
					   &vlen),
			 EF_OK);
	assert_true(vlen < cap);
	memcpy(buf, view, vlen);
	buf[vlen] = '\0';
	free(view);
	free(raw);
	return buf;
}

/* Do the stored bytes of @key hold @needle? */
static int stored_has(ef_store *st, const char *key, const char *needle)
{
	size_t n;
	uint8_t *raw = stored_value(st, key, &n);
	int has = memmem(raw, n, needle, strlen(needle)) != NULL;

	free(raw);
	return has;
}

/* Keys that a lenient reading would take for victim@x.com's: percent-
 * encoded white space, escapes of bytes never escaped, raw white space,
 * upper-case letters. */
static const char *const victim_spellings[] = {
	"victim@x.com%20",    "%20victim@x.com",   "victim@x.com%09",
	"victim@x.com%0A",    "victim@x.com%0D",   "victim@x.com%0B",
	"victim@x.com%0C",    "victim@x.com ",     " victim@x.com",
	"victim@x.com\t",     "Victim@X.com",      "VICTIM@X.COM",
	"victim%40x.com",     "%76ictim@x.com",    "victim@x.com%20%20",
};
#define NSPELLINGS (sizeof(victim_spellings) / sizeof(*victim_spellings))

static const char victim_array[] =
	"[{\"reservationId\":\"v1\",\"createdAt\":1789990000000,"
	"\"fileName\":\"mine.pdf\"}]";

/* A file of the victim's array and an attacker's under each spelling; the
 * victim's first or last. */
static char *spellings_file(const fx *f, const char *name, int victim_first,
			    int with_victim)
{
	json_t *arr = json_array();
	char key[200], val[200];

	if (with_victim && victim_first)
		json_array_append_new(arr, elem("recentReceives:victim@x.com",
						victim_array, 0));
	for (size_t i = 0; i < NSPELLINGS; i++) {
		snprintf(key, sizeof(key), "recentReceives:%s",
			 victim_spellings[i]);
		snprintf(val, sizeof(val),
			 "[{\"reservationId\":\"evil%zu\",\"createdAt\":"
			 "1789990000001,\"fileName\":\"pwn.exe\"}]", i);
		json_array_append_new(arr, elem(key, val, 0));
	}
	if (with_victim && !victim_first)
		json_array_append_new(arr, elem("recentReceives:victim@x.com",
						victim_array, 0));
	return write_json(f, name, arr);
}

/* Every spelling was skipped as badKey, by element index, with a detail
 * that does not quote the key. */
static void assert_spellings_skipped(const seen *sk, uint64_t first)
{
	assert_int_equal(sk->n, NSPELLINGS);
	for (int i = 0; i < sk->n; i++) {
		assert_int_equal(sk->element[i], first + (uint64_t)i);
		assert_int_equal(sk->reason[i], EF_IMPORT_SKIP_BAD_KEY);
		assert_non_null(strstr(sk->detail[i], "owner in the key"));
		if (strstr(sk->detail[i], "ictim") ||
		    strstr(sk->detail[i], "ICTIM"))
			fail_msg("detail quotes the key: %s", sk->detail[i]);
	}
}

static void test_kvbulk_owner_spellings_never_merge(void **state)
{
	fx *f = *state;
	char buf[2048], *first, *last, *only, *text, *d1, *d2;
	ef_import_stats is;
	seen sk = {0};

	first = spellings_file(f, "first.json", 1, 1);
	last = spellings_file(f, "last.json", 0, 1);
	only = spellings_file(f, "only.json", 0, 0);
	is = import(f->dst, first, &sk);
	assert_spellings_skipped(&sk, 1);
	assert_int_equal(is.legacy_arrays, 1);
	assert_int_equal(is.legacy_merged + is.merged_owners + is.quarantined,
			 0);
	assert_int_equal(th_count_prefix(f->dst, "recentReceives:"), 1);
	assert_int_equal(th_count_prefix(f->dst, "quarantine:"), 0);
	/* the victim's array byte for byte, its feed without the attacker's */
	assert_string_equal(legacy_value(f->dst,
					 "recentReceives:victim@x.com\t", buf,
					 sizeof(buf)),
			    victim_array);
	text = pages(f->dst, "victim@x.com", 10);
	assert_null(strstr(text, "evil"));
	assert_non_null(strstr(text, "\"v1\""));
	free(text);
	/* the victim's key last: the same store, byte for byte */
	memset(&sk, 0, sizeof(sk));
	import(f->src, last, &sk);
	assert_spellings_skipped(&sk, 0);
	d1 = th_dump(f->dst);
	d2 = th_dump(f->src);
	assert_same_dump(d1, d2);
	free(d2);
	/* the victim already in the store: no byte changes */
	memset(&sk, 0, sizeof(sk));
	is = import(f->dst, only, &sk);
	assert_spellings_skipped(&sk, 0);
	d2 = th_dump(f->dst);
	assert_same_dump(d1, d2);
	/* and the migration moves the victim's own elements only */
	assert_int_equal(ef_migrate(f->dst, NULL, NULL), EF_OK);
	text = pages(f->dst, "victim@x.com", 10);
	assert_null(strstr(text, "evil"));
	assert_non_null(strstr(text, "\"v1\""));
	free(text);
	free(d1);
	free(d2);
	free(first);
	free(last);
	free(only);
}

/* Import element @key (a legacy array of one element @rid) into @st;
 * 1 if it was taken, 0 if skipped as badKey. */
static int import_one_legacy(fx *f, ef_store *st, const char *key,
			     const char *rid)
{
	json_t *arr = json_array();
	char val[200], *file;
	seen sk = {0};

	snprintf(val, sizeof(val),
		 "[{\"reservationId\":\"%s\",\"createdAt\":1789990000000}]",
		 rid);
	json_array_append_new(arr, elem(key, val, 0));
	file = write_json(f, "one.json", arr);
	import(st, file, &sk);
	free(file);
	if (sk.n)
		assert_int_equal(sk.reason[0], EF_IMPORT_SKIP_BAD_KEY);
	return sk.n == 0;
}

static int feed_has(ef_store *st, const char *owner, const char *rid)
{
	char *text = pages(st, owner, 1000), want[100];
	int has;

	snprintf(want, sizeof(want), "\"%s\"", rid);
	has = strstr(text, want) != NULL;
	free(text);
	return has;
}

static void test_kvbulk_key_names_the_owner_finalize_writes(void **state)
{
	fx *f = *state;
	ef_receive r = {"A:B ", "f1", T0 - DAY, NULL, NULL};
	ef_export_stats es;
	char *file;

	/* %3A is how finalize writes ':' in the owner "a:b" */
	assert_true(import_one_legacy(f, f->dst, "recentReceives:a%3Ab", "l1"));
	assert_int_equal(ef_finalize(f->dst, &r), EF_OK);
	assert_true(feed_has(f->dst, "a:b", "l1"));
	assert_true(feed_has(f->dst, "a:b", "f1"));
	/* the owner "a%3Ab" that finalize writes is another one */
	assert_false(feed_has(f->dst, "a%3Ab", "l1"));
	assert_true(import_one_legacy(f, f->dst, "recentReceives:a%253ab",
				      "l4"));
	assert_true(feed_has(f->dst, "a%3Ab", "l4"));
	assert_false(feed_has(f->dst, "a:b", "l4"));
	/* spellings that name no owner: lower-case hex, a raw ':', an escape
	 * of a letter, nothing once trimmed, nothing at all */
	assert_false(import_one_legacy(f, f->dst, "recentReceives:a%3ab", "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:a:b", "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:a%253Ab",
				       "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:%61%3Ab",
				       "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:%20", "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:%20%20",
				       "x"));
	assert_false(import_one_legacy(f, f->dst, "recentReceives:", "x"));
	assert_false(feed_has(f->dst, "a:b", "x"));
	assert_false(feed_has(f->dst, "a%3Ab", "x"));
	/* Unicode white space is no ASCII white space: an owner of its own */
	assert_false(import_one_legacy(f, f->dst, "recentReceives:a:b\xC2\xA0",
				       "u"));
	assert_true(import_one_legacy(f, f->dst,
				      "recentReceives:a%3Ab\xC2\xA0", "u"));
	assert_false(feed_has(f->dst, "a:b", "u"));
	assert_true(feed_has(f->dst, "a:b\xC2\xA0", "u"));
	assert_int_equal(th_count_prefix(f->dst, "recentReceives:"), 3);
	/* an export re-imports to the same owners */
	file = export_file(f, f->dst, "names.json", &es);
	import(f->src, file, &(seen){0});
	assert_same_pages(f->dst, f->src, "a:b");
	assert_same_pages(f->dst, f->src, "a%3Ab");
	assert_same_pages(f->dst, f->src, "a:b\xC2\xA0");
	th_assert_consistent(f->src);
	free(file);
}

/* The other key families follow the same rule. */
static void test_kvbulk_every_family_takes_only_canonical_owners(void **state)
{
	fx *f = *state;
	static const char *const owners_bad[] = {"D@x", "d@x%20", "%20d@x",
						 "d@x%0A", "d%40x"};
	json_t *arr = json_array();
	char key[300], sort[KEY_SORT_LEN + 1], *file;
	ef_import_stats is;
	seen sk = {0};

	key_created_sort(T0, sort);
	add_entry(arr, "d@x", T0, "r1", NULL); /* the victim's */
	for (size_t i = 0; i < sizeof(owners_bad) / sizeof(*owners_bad);
	     i++) {
		const char *o = owners_bad[i];
		char rid[20];
		snprintf(rid, sizeof(rid), "evil%zu", i);
		add_entry(arr, o, T0, rid, NULL);
		snprintf(key, sizeof(key), "receiveIndex:%s:r1", o);
		json_array_append_new(arr, elem(key, sort, 0));
		snprintf(key, sizeof(key), "unread:%s:r1", o);
		json_array_append_new(arr, elem(key, sort, 0));
		snprintf(key, sizeof(key), "quarantine:%s:"
			 "0123456789abcdef0123456789abcdef", o);
		json_array_append_new(arr, elem(key, "{}", 0));
	}
	file = write_json(f, "families.json", arr);
	is = import(f->dst, file, &sk);
	assert_int_equal(is.entries, 1);
	assert_int_equal(sk.n, 4 * 5);
	for (int i = 0; i < sk.n; i++)
		assert_int_equal(sk.reason[i], EF_IMPORT_SKIP_BAD_KEY);
	assert_int_equal(th_count_prefix(f->dst, "recentReceive:"), 1);
	assert_int_equal(th_count_prefix(f->dst, "unread:"), 0);
	assert_int_equal(th_count_prefix(f->dst, "quarantine:"), 0);
	assert_false(feed_has(f->dst, "d@x", "evil0"));
	th_assert_consistent(f->dst);
	free(file);
}

static void test_kvbulk_quarantined_bytes_survive(void **state)
{
	fx *f = *state;
	json_t *arr = json_array(), *q;
	seen sk = {0};
	char *file, *dump, *val;
	ef_export_stats es;
	FILE *out;
	size_t n;
	unsigned char *raw;
	char *hex;

	/* the same key twice (a hand-made file): the second value cannot
	 * merge with the first */
	json_array_append_new(arr, elem("recentReceives:c@x", "[1,2]", 0));
	json_array_append_new(arr, elem("recentReceives:c@x", "\x01 junk", 0));
	file = write_json(f, "q.json", arr);
	import(f->dst, file, &sk);
	free(file);
	/* the export shows the quarantine record with the original bytes */
	out = open_memstream(&val, &n);
	assert_int_equal(ef_export_kvbulk(f->dst, out, NULL, &es), EF_OK);
	fclose(out);
	arr = json_loads(val, 0, NULL);
	assert_non_null(arr);
	q = NULL;
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (strncmp(json_string_value(json_object_get(
				    json_array_get(arr, i), "key")),
			    "quarantine:c@x:", 15) == 0)
			q = json_loads(json_string_value(json_object_get(
					       json_array_get(arr, i), "value")),
				       0, NULL);
	assert_non_null(q);
	raw = unb64(json_string_value(json_object_get(q, "rawBase64")), &n);
	assert_int_equal(n, 6);
	assert_memory_equal(raw, "\x01 junk", 6);
	assert_string_equal(json_string_value(json_object_get(q, "legacyKey")),
			    "recentReceives:c@x");
	free(raw);
	json_decref(q);
	json_decref(arr);
	free(val);
	/* the dump holds it too (hex of "\x01 junk" within the record) */
	dump = th_dump(f->dst);
	hex = strstr(dump, "quarantine:c@x:");
	assert_non_null(hex);
	free(dump);
}

/* ---- skips -------------------------------------------------------------- */

static void test_kvbulk_every_skip_reason_is_reported(void **state)
{
	fx *f = *state;
	ef_receive r = {"a@x", "r10", T0 - 2 * DAY, NULL, NULL};
	json_t *arr = json_array(), *e;
	ef_import_stats is;
	seen sk = {0};
	char *file, *k, *v, sort[KEY_SORT_LEN + 1];
	static const struct {
		uint64_t element;
		int reason;
	} want[] = {
		{0, EF_IMPORT_SKIP_UNKNOWN_PREFIX},
		{1, EF_IMPORT_SKIP_UNKNOWN_PREFIX},
		{2, EF_IMPORT_SKIP_BAD_KEY},
		{3, EF_IMPORT_SKIP_BAD_KEY},
		{4, EF_IMPORT_SKIP_NOT_STRING},
		{5, EF_IMPORT_SKIP_BAD_BASE64},
		{6, EF_IMPORT_SKIP_BAD_BASE64},
		{7, EF_IMPORT_SKIP_BAD_VALUE},
		{8, EF_IMPORT_SKIP_MISMATCH},
		{9, EF_IMPORT_SKIP_MISMATCH},
		{10, EF_IMPORT_SKIP_CONFLICT},
		{11, EF_IMPORT_SKIP_NO_ENTRY},
		{12, EF_IMPORT_SKIP_NO_ENTRY},
		{13, EF_IMPORT_SKIP_BAD_VALUE},
		{15, EF_IMPORT_SKIP_BAD_VALUE},
	};

	assert_int_equal(ef_finalize(f->dst, &r), EF_OK);
	json_array_append_new(arr, elem("somethingElse:1", "x", 0));
	json_array_append_new(arr, elem("meta:format", "1", 0));
	json_array_append_new(arr, elem("recentReceive:a@x:123:r1", "AA==", 1));
	json_array_append_new(arr, elem("recentReceives:\x01" "bad", "[]", 0));
	e = elem("unread:a@x:r1", "x", 0);
	json_object_set_new(e, "value", json_integer(5));
	json_array_append_new(arr, e);
	k = entry_key("a@x", T0, "r5");
	json_array_append_new(arr, elem(k, "!!!not base64", 1));
	e = elem(k, "x", 0);
	json_object_set_new(e, "base64", json_string("yes"));
	json_array_append_new(arr, e);
	json_array_append_new(arr, elem(k, "Z2FyYmFnZQ==", 1)); /* garbage */
	free(k);
	k = entry_key("a@x", T0, "r8"); /* created elsewhen in the record */
	v = record_b64(T0 - 1, "r8", NULL);
	json_array_append_new(arr, elem(k, v, 1));
	free(k), free(v);
	k = entry_key("a@x", T0, "r9"); /* another id in the record */
	v = record_b64(T0, "other", NULL);
	json_array_append_new(arr, elem(k, v, 1));
	free(k), free(v);
	k = entry_key("a@x", T0 - DAY, "r10"); /* r10 is in the store */
	v = record_b64(T0 - DAY, "r10", NULL);
	json_array_append_new(arr, elem(k, v, 1));
	free(k), free(v);
	key_created_sort(T0, sort);
	json_array_append_new(arr, elem("receiveIndex:a@x:nope", sort, 0));
	json_array_append_new(arr, elem("unread:a@x:nope", sort, 0));
	json_array_append_new(arr, elem("receiveIndex:a@x:r1", "abc", 0));
	add_entry(arr, "a@x", T0, "ok", "{\"fine\":true}"); /* 14: taken */
	k = entry_key("a@x", T0, "r15");
	v = record_b64(T0, "r15", "[1]"); /* a payload is an object */
	json_array_append_new(arr, elem(k, v, 1));
	free(k), free(v);
	file = write_json(f, "skips.json", arr);
	is = import(f->dst, file, &sk);
	assert_int_equal(sk.n, sizeof(want) / sizeof(*want));
	assert_int_equal(is.skipped, sk.n);
	/* each once, with its reason (index keys and markers waiting for
	 * their entry are reported last, when the whole file is in) */
	for (size_t j = 0; j < sizeof(want) / sizeof(*want); j++) {
		int found = 0;
		for (int i = 0; i < sk.n; i++)
			if (sk.element[i] == want[j].element) {
				assert_int_equal(sk.reason[i], want[j].reason);
				found++;
			}
		assert_int_equal(found, 1);
	}
	assert_string_equal(sk.key[0], "somethingElse:1");
	assert_string_equal(sk.key[sk.n - 2], "receiveIndex:a@x:nope");
	for (int i = 0; i < EF_IMPORT_SKIP_COUNT; i++) {
		uint64_t n = 0;
		for (size_t j = 0; j < sizeof(want) / sizeof(*want); j++)
			n += want[j].reason == i;
		assert_true(n > 0); /* the test covers every reason */
		assert_int_equal(is.skipped_by_reason[i], n);
		assert_string_not_equal(ef_import_skip_name(i), "unknown");
	}
	assert_string_equal(ef_import_skip_name(-1), "unknown");
	/* the rest was imported: the good entry, and nothing of the others */
	assert_int_equal(is.entries, 1);
	assert_int_equal(th_count_prefix(f->dst, "recentReceive:"), 2);
	assert_int_equal(th_count_prefix(f->dst, "receiveIndex:"), 2);
	assert_int_equal(th_count_prefix(f->dst, "unread:"), 1); /* r10's */
	th_assert_consistent(f->dst);
	free(file);
}

static void test_kvbulk_markers_wait_for_their_entry(void **state)
{
	fx *f = *state;
	json_t *arr = json_array();
	ef_import_stats is;
	seen sk = {0};
	char *file, sort[KEY_SORT_LEN + 1], key[200];
	ef_entry *e;

	/* key order puts index keys before their entries; markers may come
	 * first in a file in any order; a legacy element counts as entry */
	key_created_sort(T0, sort);
	json_array_append_new(arr, elem("receiveIndex:d@x:r1", sort, 0));
	json_array_append_new(arr, elem("unread:d@x:r1", sort, 0));
	json_array_append_new(arr, elem("unread:d@x:l1", "x", 0));
	add_entry(arr, "d@x", T0, "r1", NULL);
	json_array_append_new(arr, elem("recentReceives:d@x",
					"[{\"reservationId\":\"l1\","
					"\"createdAt\":1789990000000}]", 0));
	file = write_json(f, "order.json", arr);
	is = import(f->dst, file, &sk);
	assert_int_equal(sk.n, 0);
	assert_int_equal(is.index_keys, 1);
	assert_int_equal(is.markers, 2);
	snprintf(key, sizeof(key), "unread:d@x:r1");
	assert_int_equal(th_count_prefix(f->dst, key), 1);
	assert_int_equal(ef_get_entry(f->dst, "d@x", "r1", &e), EF_OK);
	assert_true(e->unread);
	ef_entry_free(e);
	assert_int_equal(ef_get_entry(f->dst, "d@x", "l1", &e), EF_OK);
	assert_true(e->unread);
	ef_entry_free(e);
	th_assert_consistent(f->dst);
	free(file);
}

/* ---- one write path: the finalize rules hold for imported entries ------- */

#define CAP_N 150 /* entries of one owner in the file: more than feed_cap */

/* The file of CAP_N entries of cap@x, one a minute, plus one past
 * feed_ttl, each with its index key and marker, in key order (index keys,
 * entries newest first, markers); with @reverse, only the entries, oldest
 * first. */
static char *cap_file(const fx *f, const char *name, int reverse)
{
	json_t *arr = json_array(), *idx = json_array(), *mk = json_array();
	char rid[32], key[200], sort[KEY_SORT_LEN + 1];

	for (int i = 0; i <= CAP_N; i++) {
		int j = reverse ? CAP_N - i : i;
		int64_t ms = j == CAP_N ? T0 - 100 * DAY : T0 - j * 60000LL;

		snprintf(rid, sizeof(rid), "r%03d", j);
		assert_int_equal(key_created_sort(ms, sort), EF_OK);
		snprintf(key, sizeof(key), "receiveIndex:cap@x:%s", rid);
		json_array_append_new(idx, elem(key, sort, 0));
		snprintf(key, sizeof(key), "unread:cap@x:%s", rid);
		json_array_append_new(mk, elem(key, sort, 0));
		add_entry(arr, "cap@x", ms, rid, "{\"n\":1}");
	}
	if (!reverse) {
		json_array_extend(idx, arr);
		json_array_extend(idx, mk);
		json_decref(arr);
		arr = json_incref(idx);
	}
	json_decref(idx);
	json_decref(mk);
	return write_json(f, name, arr);
}

static void test_kvbulk_import_trims_to_the_cap(void **state)
{
	fx *f = *state;
	char *file = cap_file(f, "cap.json", 0), *rev, *d1, *d2;
	ef_import_stats is;
	seen sk = {0};
	ef_entry *e;

	is = import(f->dst, file, &sk);
	assert_int_equal(sk.n, 0);
	/* the newest feed_cap are kept; the rest, and the stale one, are
	 * trimmed as a finalization trims them, with their keys, and said */
	assert_int_equal(is.entries, 100);
	assert_int_equal(is.index_keys, 100);
	assert_int_equal(is.markers, 100);
	assert_int_equal(is.trimmed, 3 * (CAP_N + 1 - 100));
	assert_int_equal(is.trim_deleted, 0);
	assert_int_equal(th_count_prefix(f->dst, "recentReceive:cap@x:"), 100);
	assert_int_equal(th_count_prefix(f->dst, "receiveIndex:cap@x:"), 100);
	assert_int_equal(th_count_prefix(f->dst, "unread:cap@x:"), 100);
	assert_int_equal(ef_get_entry(f->dst, "cap@x", "r099", &e), EF_OK);
	assert_true(e->unread);
	ef_entry_free(e);
	assert_int_equal(ef_get_entry(f->dst, "cap@x", "r100", &e),
			 EF_ENOTFOUND);
	th_assert_consistent(f->dst);
	/* a trim does not make a second import differ */
	d1 = th_dump(f->dst);
	is = import(f->dst, file, &sk);
	d2 = th_dump(f->dst);
	assert_same_dump(d1, d2);
	assert_int_equal(sk.n, 0);
	assert_int_equal(is.entries + is.markers, 0);
	assert_int_equal(is.trimmed, 3 * (CAP_N + 1 - 100));
	assert_int_equal(is.batches, 0);
	/* oldest first, each newer entry pushes the oldest out */
	rev = cap_file(f, "rev.json", 1);
	is = import(f->src, rev, &sk);
	assert_int_equal(sk.n, 0);
	assert_int_equal(is.entries, CAP_N);
	assert_int_equal(is.trim_deleted, CAP_N - 100);
	assert_int_equal(is.trimmed, 1); /* the stale one */
	assert_int_equal(th_count_prefix(f->src, "recentReceive:cap@x:"), 100);
	th_assert_consistent(f->src);
	assert_int_equal(ef_mark_all_read(f->dst, "cap@x"), EF_OK);
	assert_same_pages(f->src, f->dst, "cap@x");
	free(d1);
	free(d2);
	free(rev);
	free(file);
}

static void test_kvbulk_entry_in_legacy_array_is_not_written_twice(void **state)
{
	fx *f = *state;
	json_t *arr = json_array();
	ef_import_stats is;
	seen sk = {0};
	char *file, legacy[200];
	ef_page p;

	snprintf(legacy, sizeof(legacy),
		 "[{\"reservationId\":\"l1\",\"createdAt\":%lld}]",
		 (long long)(T0 - DAY));
	put_legacy(f->dst, "l@x", legacy);
	add_entry(arr, "l@x", T0 - DAY, "l1", "{\"from\":\"file\"}");
	add_entry(arr, "l@x", T0 - DAY, "l2", NULL);
	file = write_json(f, "dup.json", arr);
	is = import(f->dst, file, &sk);
	/* first write wins, as for ef_finalize: the array's element stays */
	assert_int_equal(is.entries, 1);
	assert_int_equal(sk.n, 1);
	assert_int_equal(sk.element[0], 0);
	assert_int_equal(sk.reason[0], EF_IMPORT_SKIP_CONFLICT);
	assert_non_null(strstr(sk.detail[0], "legacy array"));
	assert_int_equal(th_count_prefix(f->dst, "recentReceive:l@x:"), 1);
	assert_int_equal(ef_feed_page(f->dst, "l@x", NULL, 10, &p), EF_OK);
	assert_int_equal(p.count, 2);
	assert_string_equal(p.entries[0].reservation_id, "l1");
	assert_null(p.entries[0].payload_json);
	assert_string_equal(p.entries[1].reservation_id, "l2");
	ef_page_free(&p);
	th_assert_consistent(f->dst);
	free(file);
}

/* ---- malformed files ---------------------------------------------------- */

static void test_kvbulk_malformed_file_names_the_position(void **state)
{
	fx *f = *state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"", "line 1 column 1 (byte 0): the file is empty"},
		{"hello", "line 1 column 1 (byte 0): not a JSON array"},
		{"{\"key\":\"a\",\"value\":\"b\"}",
		 "line 1 column 1 (byte 0): not a JSON array"},
		{"[\n{\"key\":\"a\",\"value\":\"b\"},\n 7]",
		 "line 3 column 2 (byte 28), element 1: not a JSON object"},
		{"[\n{\"key\":\"unread:a@x:r\",\"value\":\"b\"},\n"
		 "{\"key\":\"recentReceives:x\"}\n]",
		 "line 3 column 1 (byte 38), element 1: \"value\" is missing"},
		{"[{\"value\":\"b\"}]",
		 "line 1 column 2 (byte 1), element 0: \"key\" is missing"},
		{"[{\"key\":1,\"value\":\"b\"}]",
		 "line 1 column 2 (byte 1), element 0: \"key\" is not a string"},
		{"[{\"key\":\"a\",\"value\":\"b\"},\n  {\"key\": 12x}]",
		 "line 2 column 13 (byte 38), element 1: invalid JSON"},
		{"[{\"key\":\"a\",\"value\":\"b\"} x",
		 "line 1 column 26 (byte 25), after element 0: ',' or ']'"},
		{"[{\"key\":\"a\",\"value\":\"b\"},]",
		 "line 1 column 26 (byte 25), element 1: an element was "
		 "expected"},
		{"[{\"key\":\"a\",\"value\":\"b\"}",
		 "line 1 column 25 (byte 24), after element 0: the file ends"},
		{"[{\"key\":\"a\",\"value\":\"b\"}] x",
		 "line 1 column 27 (byte 26): data after the end"},
		{"[{\"key\":\"a\",\"key\":\"b\",\"value\":\"c\"}]",
		 "line 1 column 17 (byte 16), element 0: invalid JSON: "
		 "a key appears twice"},
		/* columns count characters: \xc3\xa9 is one */
		{"[{\"key\":\"\xc3\xa9\",\"value\":\"b\"}\xc3\xa9]",
		 "line 1 column 25 (byte 25), after element 0"},
		/* good elements first: none of them may be written */
		{"[{\"key\":\"recentReceives:m@x\",\"value\":\"[]\"},\n"
		 "{\"key\":\"recentReceives:n@x\",\"value\":\"[]\"},\n"
		 "{\"key\":\"recentReceives:o@x\"}]",
		 "line 3 column 1 (byte 87), element 2: \"value\" is missing"},
	};
	ef_import_opts one = {0};
	const char *bin = th_program("EDGEFEED_BIN");
	char *db = path_in(f, "cli-db");

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char name[32], *file, *out, *err, *want;
		snprintf(name, sizeof(name), "bad%zu.json", i);
		file = write_text(f, name, cases[i].text,
				  strlen(cases[i].text));
		char *argv[] = {(char *)bin, "--db", db, "import", "--format",
				"kv-bulk", file, NULL};
		assert_int_equal(th_run(argv, &out, &err), 2);
		assert_true(asprintf(&want, "edgefeed: import: %s: %s", file,
				     cases[i].want) > 0);
		if (!strstr(err, want))
			fail_msg("case %zu: stderr '%s' lacks '%s'", i, err,
				 want);
		assert_string_equal(out, "");
		free(want);
		free(out);
		free(err);
		/* the library says the same, and wrote nothing, even in
		 * transactions of one element */
		one.batch = 1;
		assert_int_equal(ef_import_kvbulk(f->dst, file, &one, NULL),
				 EF_EINVAL);
		assert_non_null(strstr(ef_errmsg(f->dst), cases[i].want));
		free(file);
	}
	/* a file malformed at its end writes none of its good elements */
	assert_int_equal(th_count_prefix(f->dst, "recentReceives:"), 0);
	assert_int_equal(th_count_prefix(f->dst, "unread:"), 0);
	free(db);
}

static void test_kvbulk_hostile_input_is_refused_cleanly(void **state)
{
	enum { DEPTH = 100000 };
	static char text[2 * DEPTH + 100]; /* static: no false -Warray-bounds */
	fx *f = *state;
	size_t n = 0;
	char *file;
	ef_import_stats is;

	/* nesting deeper than jansson's limit, in an ignored field */
	n += (size_t)sprintf(text, "[{\"key\":\"a\",\"value\":\"b\",\"m\":");
	memset(text + n, '[', DEPTH);
	n += DEPTH;
	memset(text + n, ']', DEPTH);
	n += DEPTH;
	n += (size_t)sprintf(text + n, "}]");
	file = write_text(f, "deep.json", text, n);
	assert_int_equal(ef_import_kvbulk(f->dst, file, NULL, &is), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->dst), "element 0: invalid JSON"));
	free(file);
	/* invalid UTF-8 in a string */
	file = write_text(f, "utf8.json", "[{\"key\":\"\xff\",\"value\":\"\"}]",
			  24);
	assert_int_equal(ef_import_kvbulk(f->dst, file, NULL, &is), EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->dst), "element 0: invalid JSON"));
	free(file);
	/* a missing file is not a usage error */
	file = path_in(f, "missing.json");
	assert_int_equal(ef_import_kvbulk(f->dst, file, NULL, &is),
			 EF_ENOTFOUND);
	assert_non_null(strstr(ef_errmsg(f->dst), "cannot open"));
	free(file);
}

/* ---- retention ---------------------------------------------------------- */

/* Check every IP of a legacy value (array or object) is within retention. */
static void assert_ips_recent(json_t *v, int64_t now, int *recent)
{
	json_t *el;
	size_t i;

	if (json_is_object(v)) {
		json_t *one = json_array();
		json_array_append(one, v);
		assert_ips_recent(one, now, recent);
		json_decref(one);
		return;
	}
	json_array_foreach(v, i, el) {
		json_t *ca = json_object_get(el, "createdAt");
		int64_t ms = -1;
		if (!json_object_get(el, "ip"))
			continue;
		if (json_is_integer(ca))
			ms = json_integer_value(ca);
		else if (json_is_string(ca) &&
			 ef_time_parse(json_string_value(ca), &ms) != EF_OK)
			ms = -1;
		assert_true(ms > 0 && now - ms < EF_DEFAULT_IP_RETENTION_MS);
		(*recent)++;
	}
}

/* Every element of an export: no record holds an IP; an entry's IP is in
 * metadata only within retention (and is the entry's); legacy and
 * quarantined values keep only recent IPs. */
static void assert_export_retains(ef_store *st, const char *text, int64_t now)
{
	json_t *arr = json_loads(text, 0, NULL), *el;
	int with_ip = 0, without_ip = 0, recent = 0;
	size_t i;

	assert_non_null(arr);
	json_array_foreach(arr, i, el) {
		const char *key = json_string_value(json_object_get(el, "key"));
		const char *val = json_string_value(json_object_get(el, "value"));
		json_t *meta_ip = json_object_get(json_object_get(el,
								  "metadata"),
						  "ip");
		if (strncmp(key, "recentReceive:", 14) == 0) {
			key_view ow, so, rv;
			char owner[400], rid[200];
			unsigned char *raw;
			rec_entry r;
			ef_entry *e;
			size_t n;

			raw = unb64(val, &n);
			assert_int_equal(rec_decode(raw, n, &r), EF_OK);
			assert_int_equal(r.ip_kind, REC_IP_NONE);
			assert_int_equal(key_split_entry(key, strlen(key), &ow,
							 &so, &rv),
					 EF_OK);
			key_unescape(ow, owner, sizeof(owner));
			key_unescape(rv, rid, sizeof(rid));
			assert_int_equal(ef_get_entry(st, owner, rid, &e), EF_OK);
			if (now - r.created_ms < EF_DEFAULT_IP_RETENTION_MS &&
			    e->ip) {
				assert_string_equal(json_string_value(meta_ip),
						    e->ip);
				with_ip++;
			} else {
				assert_null(meta_ip);
				without_ip++;
			}
			ef_entry_free(e);
			free(raw);
		} else if (strncmp(key, "recentReceives:", 15) == 0) {
			json_t *v = json_loads(val, 0, NULL);
			assert_ips_recent(v, now, &recent);
			json_decref(v);
		} else if (strncmp(key, "quarantine:", 11) == 0) {
			json_t *q = json_loads(val, 0, NULL), *v;
			size_t n;
			unsigned char *raw = unb64(
				json_string_value(json_object_get(q, "rawBase64")),
				&n);
			v = json_loadb((char *)raw, n, 0, NULL);
			assert_non_null(v);
			assert_ips_recent(v, now, &recent);
			json_decref(v);
			json_decref(q);
			free(raw);
		}
	}
	assert_true(with_ip > 0);
	assert_true(without_ip > 0);
	assert_true(recent > 0);
	json_decref(arr);
}

static void test_kvbulk_no_ip_past_retention_leaves(void **state)
{
	fx *f = *state;
	ef_export_stats es;
	char *file, *text, buf[2048];

	seed_everything(f, f->src);
	f->now = T0 + 15 * DAY;
	file = export_file(f, f->src, "retention.json", &es);
	text = slurp(file, NULL);
	assert_export_retains(f->src, text, f->now);
	/* what the legacy array and the quarantine held in plaintext */
	assert_null(strstr(text, "198.51.100.77"));
	assert_null(strstr(text, "198.51.100.78"));
	assert_null(strstr(text, "192.0.2.99"));
	assert_non_null(strstr(text, "203.0.113.5"));
	/* and an import at that time lets none in */
	import(f->dst, file, &(seen){0});
	free(text);
	legacy_value(f->dst, "recentReceives:legacy@example.com\t", buf,
		     sizeof(buf));
	assert_null(strstr(buf, "198.51.100."));
	assert_non_null(strstr(buf, "203.0.113.5"));
	/* shown within retention, but sealed at rest */
	assert_false(stored_has(f->dst, "recentReceives:legacy@example.com\t",
				"203.0.113.5"));
	free(file);
}

static void test_kvbulk_import_leaves_out_expired_ips(void **state)
{
	fx *f = *state;
	json_t *arr = json_array(), *e;
	ef_import_stats is;
	char *file, *k, *v, buf[512], legacy[256];
	ef_entry *en;

	k = entry_key("e@x", T0 - 40 * DAY, "old");
	v = record_b64(T0 - 40 * DAY, "old", NULL);
	e = elem(k, v, 1);
	json_object_set_new(e, "metadata", json_pack("{s:s}", "ip",
						     "198.51.100.1"));
	json_array_append_new(arr, e);
	free(k), free(v);
	k = entry_key("e@x", T0 - DAY, "new");
	v = record_b64(T0 - DAY, "new", NULL);
	e = elem(k, v, 1);
	json_object_set_new(e, "metadata", json_pack("{s:s}", "ip",
						     "203.0.113.1"));
	json_array_append_new(arr, e);
	free(k), free(v);
	snprintf(legacy, sizeof(legacy),
		 "[{\"reservationId\":\"l\",\"createdAt\":%lld,"
		 "\"ip\":\"198.51.100.2\"}]", (long long)(T0 - 40 * DAY));
	json_array_append_new(arr, elem("recentReceives:e@x", legacy, 0));
	file = write_json(f, "ips.json", arr);
	is = import(f->dst, file, &(seen){0});
	assert_int_equal(is.ips_dropped, 2);
	assert_int_equal(ef_get_entry(f->dst, "e@x", "old", &en), EF_OK);
	assert_null(en->ip);
	ef_entry_free(en);
	assert_int_equal(ef_get_entry(f->dst, "e@x", "new", &en), EF_OK);
	assert_string_equal(en->ip, "203.0.113.1");
	ef_entry_free(en);
	legacy_value(f->dst, "recentReceives:e@x\t", buf, sizeof(buf));
	assert_null(strstr(buf, "198.51.100.2"));
	assert_non_null(strstr(buf, "\"l\""));
	free(file);
}

/* The same through the command, to a file and to stdout. */
static void test_kvbulk_cli_export_and_import(void **state)
{
	fx *f = *state;
	const char *bin = th_program("EDGEFEED_BIN");
	char *file = path_in(f, "cli.json"), *db = path_in(f, "cli-db");
	static const char two_skips[] =
		"[{\"key\":\"other:1\",\"value\":\"\"},\n"
		"{\"key\":\"unread:a@x:zz\",\"value\":\"x\"}]";
	char *out, *err, *text, now[40];
	json_t *sum;
	size_t len;

	seed_everything(f, f->src);
	ef_close(f->src); /* the command opens the store itself */
	f->src = NULL;
	snprintf(now, sizeof(now), "%lld", (long long)(T0 + 15 * DAY));
	{
		char *argv[] = {(char *)bin, "--db", f->src_dir, "export",
				"--now", now, "--output", file, NULL};
		assert_int_equal(th_run(argv, &out, &err), 0);
	}
	sum = json_loads(out, 0, NULL);
	assert_non_null(sum);
	assert_int_equal(json_integer_value(json_object_get(sum, "entries")),
			 120);
	assert_true(json_integer_value(json_object_get(sum, "ipsDropped")) > 0);
	json_decref(sum);
	free(out);
	free(err);
	text = slurp(file, &len);
	f->src = fx_open(f, f->src_dir);
	f->now = T0 + 15 * DAY;
	assert_export_retains(f->src, text, f->now);
	free(text);
	/* to stdout: the same bytes, the summary on stderr */
	{
		char *argv[] = {(char *)bin, "--db", f->src_dir, "export",
				"--format", "kv-bulk", "--now", now, NULL};
		assert_int_equal(th_run(argv, &out, &err), 0);
	}
	text = slurp(file, NULL);
	assert_string_equal(out, text);
	assert_non_null(strstr(err, "\"entries\":120"));
	free(text);
	free(out);
	free(err);
	/* import: a JSON summary, one stderr line per skipped key */
	{
		char *argv[] = {(char *)bin, "--db", db, "import", "--format",
				"kv-bulk", file, NULL};
		assert_int_equal(th_run(argv, &out, &err), 0);
	}
	sum = json_loads(out, 0, NULL);
	assert_non_null(sum);
	/* at the real clock, the oldest of them are past feed_ttl: trimmed,
	 * with their index keys and markers, and said so */
	assert_true(json_integer_value(json_object_get(sum, "entries")) > 0);
	assert_true(json_integer_value(json_object_get(sum, "entries")) +
			    json_integer_value(json_object_get(sum, "trimmed")) >=
		    120);
	assert_non_null(json_object_get(sum, "trimDeleted"));
	assert_int_equal(json_integer_value(json_object_get(sum, "skipped")), 0);
	json_decref(sum);
	free(out);
	free(err);
	text = write_text(f, "two-skips.json",
			  two_skips, strlen(two_skips));
	{
		char *argv[] = {(char *)bin, "--db", db, "import", "--format",
				"kv-bulk", text, NULL};
		assert_int_equal(th_run(argv, &out, &err), 0);
	}
	assert_non_null(strstr(err, "element 0: skipped \"other:1\" "
				    "(unknownPrefix)"));
	assert_non_null(strstr(err, "element 1: skipped \"unread:a@x:zz\" "
				    "(noEntry)"));
	assert_non_null(strstr(out, "\"skipped\":2"));
	free(out);
	free(err);
	/* usage */
	{
		char *argv[] = {(char *)bin, "--db", db, "import", file, NULL};
		assert_int_equal(th_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "--format: missing"));
		free(err);
	}
	{
		char *argv[] = {(char *)bin, "--db", db, "export", "--format",
				"csv", NULL};
		assert_int_equal(th_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "'csv' is not a format"));
		free(err);
	}
	{
		char *argv[] = {(char *)bin, "import", "--help", NULL};
		assert_int_equal(th_run(argv, &out, NULL), 0);
		assert_non_null(strstr(out, "usage: edgefeed [--db DIR] import "
					    "--format kv-bulk FILE"));
		free(out);
	}
	free(text);
	free(file);
	free(db);
}

/* ---- large files and pipes ---------------------------------------------- */

typedef struct prog {
	uint64_t calls, last_done, last_total;
	int monotonic;
} prog;

static void on_progress(uint64_t done, uint64_t total, void *ctx)
{
	prog *p = ctx;

	if (done < p->last_done || done > total)
		p->monotonic = 0;
	p->calls++;
	p->last_done = done;
	p->last_total = total;
}

/* 25,000 entries (500 owners, 50 each, some with an IP) and their
 * markers: 50,000 elements. */
static char *write_large(fx *f)
{
	char *p = path_in(f, "large.json"), sort[KEY_SORT_LEN + 1];
	FILE *out = fopen(p, "wb");

	assert_non_null(out);
	fputs("[\n", out);
	for (int o = 0; o < 500; o++) {
		for (int i = 0; i < 50; i++) {
			int64_t created = T0 - (int64_t)(o * 50 + i) * 60000;
			char rid[32], owner[32], *v;
			snprintf(owner, sizeof(owner), "owner%03d@example.com",
				 o);
			snprintf(rid, sizeof(rid), "rsv-%d-%d", o, i);
			key_created_sort(created, sort);
			v = record_b64(created, rid, "{\"fileName\":\"f.bin\"}");
			fprintf(out,
				"%s{\"key\":\"recentReceive:%s:%s:%s\",\"value\":"
				"\"%s\",\"base64\":true%s},\n"
				"{\"key\":\"unread:%s:%s\",\"value\":\"%s\"}",
				o + i ? ",\n" : "", owner, sort, rid, v,
				i % 5 ? "" : ",\"metadata\":{\"ip\":\"192.0.2.1\"}",
				owner, rid, sort);
			free(v);
		}
	}
	fputs("\n]\n", out);
	assert_int_equal(fclose(out), 0);
	return p;
}

static void test_kvbulk_large_file_streams_with_progress(void **state)
{
	fx *f = *state;
	ef_import_opts o = {0};
	ef_import_stats is;
	prog pr = {0, 0, 0, 1};
	struct timespec t0, t1;
	char *file = write_large(f);
	double secs;
	ef_entry *e;

	o.progress = on_progress;
	o.progress_ctx = &pr;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ef_import_kvbulk(f->dst, file, &o, &is), EF_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("50000 elements imported in %.2f s\n", secs);
	assert_true(secs < 120);
	assert_int_equal(is.elements, 50000);
	assert_int_equal(is.entries, 25000);
	assert_int_equal(is.markers, 25000);
	assert_int_equal(is.skipped, 0);
	assert_true(is.batches >= 50); /* short transactions */
	assert_true(pr.monotonic);
	assert_true(pr.calls >= 50);
	assert_int_equal(pr.last_done, 50000);
	assert_int_equal(pr.last_total, 50000);
	assert_int_equal(th_count_prefix(f->dst, "recentReceive:"), 25000);
	assert_int_equal(ef_get_entry(f->dst, "owner000@example.com",
				      "rsv-0-0", &e),
			 EF_OK);
	assert_string_equal(e->ip, "192.0.2.1");
	assert_true(e->unread);
	ef_entry_free(e);
	free(file);
}

static void test_kvbulk_pipe_is_read_once(void **state)
{
	fx *f = *state;
	char *fifo = path_in(f, "pipe"), *text;
	const char *bulk = "[{\"key\":\"recentReceives:p@x\",\"value\":"
			   "\"[{\\\"reservationId\\\":\\\"p1\\\","
			   "\\\"createdAt\\\":1789990000000}]\"}]";
	ef_import_opts o = {0};
	ef_import_stats is;
	prog pr = {0, 0, 0, 1};
	int status;
	pid_t pid;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *w = fopen(fifo, "wb");
		fputs(bulk, w);
		fclose(w);
		_exit(0);
	}
	o.progress = on_progress;
	o.progress_ctx = &pr;
	assert_int_equal(ef_import_kvbulk(f->dst, fifo, &o, &is), EF_OK);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(is.legacy_arrays, 1);
	assert_int_equal(pr.last_done, 1);
	assert_int_equal(pr.last_total, 1); /* spooled: known ahead */
	text = pages(f->dst, "p@x", 10);
	assert_non_null(strstr(text, "\"p1\""));
	free(text);
	free(fifo);
}

/* ---- inputs that cannot be read twice ------------------------------------ */

#define PIPE_ELEMS 4000 /* several batches of the default 1000 */

/* A bulk file of PIPE_ELEMS legacy arrays (malloc'd, *len bytes), then
 * @tail, which makes it malformed or not. */
static char *pipe_text(const char *tail, size_t *len)
{
	size_t cap = (size_t)PIPE_ELEMS * 160 + strlen(tail) + 16, n = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	n += (size_t)sprintf(t + n, "[\n");
	for (int i = 0; i < PIPE_ELEMS; i++)
		n += (size_t)sprintf(t + n,
				     "%s{\"key\":\"recentReceives:p%04d@x\","
				     "\"value\":\"[{\\\"reservationId\\\":"
				     "\\\"r%d\\\",\\\"createdAt\\\":"
				     "1789990000000}]\"}",
				     i ? ",\n" : "", i, i);
	n += (size_t)sprintf(t + n, "%s", tail);
	*len = n;
	return t;
}

/* Write @len bytes of @text to @fd, then close it; a reader that stops
 * early ends it (SIGPIPE is ignored by the caller). 1 if all was
 * written. */
static int write_all(int fd, const char *text, size_t len)
{
	size_t o = 0;
	ssize_t w;

	while (o < len && (w = write(fd, text + o, len - o)) > 0)
		o += (size_t)w;
	close(fd);
	return o == len;
}

/* A child that writes @text to @fd and exits; it closes @other, the
 * reading end, so that a reader that stops early is seen. */
static pid_t writer_start(int fd, int other, const char *text, size_t len)
{
	pid_t pid = th_fork(60);

	if (pid == 0) {
		close(other);
		signal(SIGPIPE, SIG_IGN);
		_exit(write_all(fd, text, len) ? 0 : 3);
	}
	return pid;
}

/* 0 if the writer wrote all, 3 if its reader stopped early. */
static int writer_wait(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

enum { VIA_FIFO, VIA_DEV_FD, VIA_STDIN, VIA_COUNT };

/* Import @text through a pipe of kind @via into @st: a FIFO, a pipe as
 * /dev/fd/N, or a pipe as the standard input ("-"). */
static int import_via(fx *f, ef_store *st, int via, const char *text,
		      size_t len, ef_import_opts *o, ef_import_stats *s)
{
	char path[64], *fifo = path_in(f, "fifo");
	int fds[2], saved = -1, rc;
	pid_t pid;

	if (via == VIA_FIFO) {
		unlink(fifo);
		assert_int_equal(mkfifo(fifo, 0600), 0);
		pid = th_fork(60);
		if (pid == 0) {
			int fd = open(fifo, O_WRONLY);
			signal(SIGPIPE, SIG_IGN);
			if (fd >= 0)
				write_all(fd, text, len);
			_exit(fd < 0);
		}
		rc = ef_import_kvbulk(st, fifo, o, s);
		writer_wait(pid);
		free(fifo);
		return rc;
	}
	free(fifo);
	assert_int_equal(pipe(fds), 0);
	pid = writer_start(fds[1], fds[0], text, len);
	close(fds[1]);
	if (via == VIA_STDIN) {
		saved = dup(0);
		assert_true(saved >= 0 && dup2(fds[0], 0) == 0);
		snprintf(path, sizeof(path), "-");
	} else {
		snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
	}
	rc = ef_import_kvbulk(st, path, o, s);
	close(fds[0]);
	if (saved >= 0) {
		assert_int_equal(dup2(saved, 0), 0);
		close(saved);
	}
	writer_wait(pid);
	return rc;
}

/* The names of the files in @dir, sorted, one a line (malloc'd); but the
 * maintenance lock, which the first import creates. */
static char *dir_names(const char *dir)
{
	char *cmd, *out, *err;
	int rc;

	assert_true(asprintf(&cmd, "ls -A '%s' | grep -vx maint.lock", dir) >
		    0);
	{
		char *argv[] = {"/bin/sh", "-c", cmd, NULL};
		rc = th_run(argv, &out, &err);
	}
	assert_int_equal(rc, 0);
	free(cmd);
	free(err);
	return out;
}

static void test_kvbulk_malformed_pipe_writes_nothing(void **state)
{
	fx *f = *state;
	static const char *const tails[] = {
		",\n{\"key\":\"recentReceives:cut@x\",\"value\":\"[{\\\"res",
		"\n",                     /* no ']' */
		",\n]",                   /* an element expected */
		"\n] trailing",           /* data after the end */
		",\n42\n]",               /* not an object */
		",\n{\"key\":\"recentReceives:z@x\"}\n]", /* no "value" */
	};
	ef_receive r = {"p0001@x", "mine", T0 - DAY, "192.0.2.1", NULL};
	char *before, *names, *after, *text;
	ef_import_stats is;
	size_t len;

	th_lmdb_only(); /* it counts the files of the store directory */

	/* the store holds something of its own, and an owner of the file */
	assert_int_equal(ef_finalize(f->dst, &r), EF_OK);
	before = th_dump(f->dst);
	names = dir_names(f->dst_dir);
	for (size_t t = 0; t < sizeof(tails) / sizeof(*tails); t++) {
		text = pipe_text(tails[t], &len);
		for (int via = 0; via < VIA_COUNT; via++) {
			ef_import_opts o = {0};
			o.batch = 1 + (uint32_t)(t % 3) * 499;
			if (import_via(f, f->dst, via, text, len, &o, &is) !=
			    EF_EINVAL)
				fail_msg("tail %zu via %d: not refused", t,
					 via);
			assert_int_equal(is.legacy_arrays + is.batches, 0);
			after = th_dump(f->dst);
			assert_same_dump(before, after);
			free(after);
			after = dir_names(f->dst_dir);
			assert_string_equal(names, after); /* no spool left */
			free(after);
		}
		free(text);
	}
	/* where it went wrong is said as for a file: the stdin's name */
	text = pipe_text("\n", &len);
	assert_int_equal(import_via(f, f->dst, VIA_STDIN, text, len, NULL, &is),
			 EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->dst), "standard input: line "));
	assert_non_null(strstr(ef_errmsg(f->dst), "the file ends"));
	free(text);
	free(before);
	free(names);
}

static void test_kvbulk_large_pipe_imports_whole(void **state)
{
	fx *f = *state;
	prog pr = {0, 0, 0, 1};
	ef_import_opts o = {0};
	ef_import_stats is;
	char *text, *names, *after, *a, *b;
	size_t len;

	th_lmdb_only(); /* it counts the files of the store directory */

	text = pipe_text("\n]\n", &len);
	names = dir_names(f->dst_dir);
	o.progress = on_progress;
	o.progress_ctx = &pr;
	assert_int_equal(import_via(f, f->dst, VIA_STDIN, text, len, &o, &is),
			 EF_OK);
	assert_int_equal(is.legacy_arrays, PIPE_ELEMS);
	assert_true(is.batches >= PIPE_ELEMS / 1000);
	/* read whole before the first write: the total is known ahead */
	assert_int_equal(pr.last_total, PIPE_ELEMS);
	assert_true(pr.monotonic);
	after = dir_names(f->dst_dir);
	assert_string_equal(names, after);
	free(after);
	assert_true(feed_has(f->dst, "p3999@x", "r3999"));
	/* a FIFO and /dev/fd/N give the same store */
	assert_int_equal(import_via(f, f->src, VIA_FIFO, text, len, NULL, &is),
			 EF_OK);
	a = th_dump(f->dst);
	b = th_dump(f->src);
	assert_same_dump(a, b);
	assert_int_equal(import_via(f, f->src, VIA_DEV_FD, text, len, NULL,
				    &is),
			 EF_OK);
	assert_int_equal(is.unchanged, PIPE_ELEMS);
	free(a);
	free(b);
	free(names);
	free(text);
}

/* Garbage through a pipe is refused where it starts to be garbage: the
 * spool takes what the check read, not the whole input (an endless one,
 * /dev/zero, would fill the disk). */
static void test_kvbulk_garbage_pipe_is_refused_early(void **state)
{
	fx *f = *state;
	const size_t len = (size_t)32 << 20;
	char *text, *names, *after;
	int fds[2];
	pid_t pid;

	th_lmdb_only(); /* it counts the files of the store directory */
	text = malloc(len);

	assert_non_null(text);
	memset(text, 'x', len);
	memcpy(text, "[{\"key\":}", 9); /* malformed at byte 8 */
	names = dir_names(f->dst_dir);
	assert_int_equal(pipe(fds), 0);
	pid = writer_start(fds[1], fds[0], text, len);
	close(fds[1]);
	{
		char path[32];
		snprintf(path, sizeof(path), "/dev/fd/%d", fds[0]);
		assert_int_equal(ef_import_kvbulk(f->dst, path, NULL, NULL),
				 EF_EINVAL);
		assert_non_null(strstr(ef_errmsg(f->dst), "(byte 8)"));
	}
	close(fds[0]);
	assert_int_equal(writer_wait(pid), 3); /* stopped: not read whole */
	/* and a device without end */
	assert_int_equal(ef_import_kvbulk(f->dst, "/dev/zero", NULL, NULL),
			 EF_EINVAL);
	assert_non_null(strstr(ef_errmsg(f->dst), "/dev/zero: line 1 column 1 "
						  "(byte 0)"));
	after = dir_names(f->dst_dir);
	assert_string_equal(names, after);
	free(after);
	free(names);
	free(text);
}

/* The spool cannot be written (a file size limit stands in for a full
 * disk): EF_EFULL, saying so, and nothing written, nothing left behind. */
static void test_kvbulk_spool_that_cannot_be_written_writes_nothing(void **state)
{
	fx *f = *state;
	char *before, *names, *after, *text;
	int status;
	size_t len;
	pid_t pid;

	th_lmdb_only(); /* it counts the files of the store directory */

	text = pipe_text("\n]\n", &len);
	before = th_dump(f->dst);
	names = dir_names(f->dst_dir);
	pid = th_fork(60);
	if (pid == 0) {
		struct rlimit rl = {64 << 10, 64 << 10};
		ef_store *st = fx_open(f, f->dst_dir); /* its own handle */
		int rc;

		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(10);
		rc = import_via(f, st, VIA_DEV_FD, text, len, NULL, NULL);
		if (rc != EF_EFULL)
			_exit(11);
		if (!strstr(ef_errmsg(st), "cannot copy it into a temporary "
					   "file"))
			_exit(12);
		ef_close(st);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	after = th_dump(f->dst);
	assert_same_dump(before, after);
	free(after);
	after = dir_names(f->dst_dir);
	assert_string_equal(names, after);
	free(after);
	free(names);
	free(before);
	free(text);
}

/* `edgefeed import ... -` with the standard input a pipe, a socket, or
 * bash's process substitution. */
static int cli_import_stdin(const char *db, int kind, const char *text,
			    size_t len)
{
	const char *bin = th_program("EDGEFEED_BIN");
	int fds[2], status;
	pid_t w, c;

	if (kind == 0)
		assert_int_equal(pipe(fds), 0);
	else
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	/* the socket's reading end is fds[0], writing end fds[1] */
	w = writer_start(fds[1], fds[0], text, len);
	close(fds[1]);
	c = th_fork(60);
	if (c == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(fds[0], 0);
		close(fds[0]);
		dup2(null, 1);
		dup2(null, 2);
		execl(bin, bin, "--db", db, "import", "--format", "kv-bulk",
		      "-", (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	assert_int_equal(waitpid(c, &status, 0), c);
	writer_wait(w);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_kvbulk_cli_malformed_stdin_writes_nothing(void **state)
{
	fx *f = *state;
	const char *bin = th_program("EDGEFEED_BIN");
	char *db = path_in(f, "cli-db"), *bad, *good, *file, *cmd, *d0, *d1;
	size_t blen, glen;
	ef_store *st;

	bad = pipe_text(",\n{\"key\":\"recentReceives:cut@x\",\"va", &blen);
	good = pipe_text("\n]", &glen);
	{
		char *argv[] = {(char *)bin, "--db", db, "init", NULL};
		assert_int_equal(th_run(argv, NULL, NULL), 0);
	}
	st = fx_open(f, db);
	d0 = th_dump(st);
	ef_close(st);
	assert_int_equal(cli_import_stdin(db, 0, bad, blen), 2);
	assert_int_equal(cli_import_stdin(db, 1, bad, blen), 2);
	file = write_text(f, "cut.json", bad, blen);
	assert_true(asprintf(&cmd, "'%s' --db '%s' import --format kv-bulk "
			     "<(cat '%s')", bin, db, file) > 0);
	{
		char *argv[] = {"/bin/bash", "-c", cmd, NULL};
		assert_int_equal(th_run(argv, NULL, NULL), 2);
	}
	st = fx_open(f, db);
	d1 = th_dump(st);
	ef_close(st);
	assert_same_dump(d0, d1);
	/* and a good one through a socket is imported whole */
	assert_int_equal(cli_import_stdin(db, 1, good, glen), 0);
	st = fx_open(f, db);
	assert_int_equal(th_count_prefix(st, "recentReceives:"), PIPE_ELEMS);
	ef_close(st);
	free(d0);
	free(d1);
	free(cmd);
	free(file);
	free(bad);
	free(good);
	free(db);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The elements of bulk file @path, each as compact JSON, sorted. */
static char **sorted_elements(const char *path, size_t *n)
{
	json_error_t err;
	json_t *arr = json_load_file(path, 0, &err);
	char **v;

	assert_non_null(arr);
	*n = json_array_size(arr);
	v = calloc(*n + 1, sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < *n; i++) {
		v[i] = json_dumps(json_array_get(arr, i),
				  JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(v[i]);
	}
	json_decref(arr);
	qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

/* The same operations on two stores (on the test cluster: one on LMDB,
 * one on the cluster) export the same records. */
static void test_kvbulk_same_operations_export_the_same_records(void **state)
{
	fx *f = *state;
	ef_store *both[2] = {f->src, f->dst};
	ef_export_stats es;
	char *pa, *pb, **a, **b;
	size_t na, nb;

	for (int s = 0; s < 2; s++) {
		ef_store *st = both[s];
		for (int i = 0; i < 40; i++) {
			char owner[32], rid[32], ip[32], pl[64];
			ef_receive r = {owner, rid, T0 - i * 3600000LL,
					i % 3 ? ip : NULL, i % 2 ? pl : NULL};
			snprintf(owner, sizeof(owner), "Owner%d@X.com ", i % 7);
			snprintf(rid, sizeof(rid), "r:%d %%", i);
			snprintf(ip, sizeof(ip), "203.0.113.%d", i);
			snprintf(pl, sizeof(pl), "{\"n\":%d,\"s\":\"\u00e9\"}", i);
			assert_int_equal(ef_finalize(st, &r), EF_OK);
			assert_int_equal(ef_finalize(st, &r), EF_EXISTS);
		}
		assert_int_equal(ef_mark_read(st, "owner1@x.com", "r:8 %"),
				 EF_OK);
		assert_int_equal(ef_mark_all_read(st, "owner2@x.com"), EF_OK);
	}
	pa = export_file(f, f->src, "a.json", &es);
	pb = export_file(f, f->dst, "b.json", &es);
	a = sorted_elements(pa, &na);
	b = sorted_elements(pb, &nb);
	assert_int_equal(na, nb);
	assert_true(na > 80);
	for (size_t i = 0; i < na; i++) {
		assert_string_equal(a[i], b[i]);
		free(a[i]);
		free(b[i]);
	}
	free(a);
	free(b);
	free(pa);
	free(pb);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_kvbulk_round_trip_reproduces_every_page),
		T(test_kvbulk_same_operations_export_the_same_records),
		T(test_kvbulk_reimport_changes_nothing),
		T(test_kvbulk_owner_spellings_never_merge),
		T(test_kvbulk_key_names_the_owner_finalize_writes),
		T(test_kvbulk_every_family_takes_only_canonical_owners),
		T(test_kvbulk_quarantined_bytes_survive),
		T(test_kvbulk_every_skip_reason_is_reported),
		T(test_kvbulk_markers_wait_for_their_entry),
		T(test_kvbulk_import_trims_to_the_cap),
		T(test_kvbulk_entry_in_legacy_array_is_not_written_twice),
		T(test_kvbulk_malformed_file_names_the_position),
		T(test_kvbulk_hostile_input_is_refused_cleanly),
		T(test_kvbulk_no_ip_past_retention_leaves),
		T(test_kvbulk_import_leaves_out_expired_ips),
		T(test_kvbulk_cli_export_and_import),
		T(test_kvbulk_large_file_streams_with_progress),
		T(test_kvbulk_pipe_is_read_once),
		T(test_kvbulk_malformed_pipe_writes_nothing),
		T(test_kvbulk_large_pipe_imports_whole),
		T(test_kvbulk_garbage_pipe_is_refused_early),
		T(test_kvbulk_spool_that_cannot_be_written_writes_nothing),
		T(test_kvbulk_cli_malformed_stdin_writes_nothing),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

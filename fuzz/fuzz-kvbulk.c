/*
 * fuzz-kvbulk.c - libFuzzer target: the Workers KV bulk import
 * (migrate/kvread.c, kvitem.c, kvapply.c, kvbulk.c). The input is written
 * to a file and imported by ef_import_kvbulk into a scratch store that
 * already holds entries (IPs sealed, one past retention), unread markers
 * and a legacy array, so that keys, base64, records, legacy merges, IP
 * sealing, quarantine and conflicts with the store all run. The clock is
 * fixed: a run depends on its input only.
 *
 * Properties, for any input:
 *  - the import returns EF_OK or EF_EINVAL (a malformed file), never
 *    crashes or leaks;
 *  - it accepts exactly the files that are a JSON array of objects with a
 *    string "key" and a "value" (jansson on the whole file decides, but for
 *    an element nested as deep as jansson's limit), and reads every element;
 *  - a malformed file writes nothing, counts nothing, and its message gives
 *    the path and a position inside the file;
 *  - every element is counted once (a legacy value that displaces a value
 *    of the store that cannot merge, twice), every skip is reported once;
 *  - the store holds what the counts say (entries beyond an owner's
 *    feed_cap or past feed_ttl trimmed, as a finalization trims them, and
 *    counted), and ef_check finds no violation;
 *  - no IP address is in the store in plaintext: entries' payloads, legacy
 *    values (sealed, or holding none) and quarantine reasons and redacted
 *    values hold none, and a legacy value read when every window is past
 *    retention shows none (issue 11);
 *  - importing the same file again changes no byte of the store;
 *  - no two keys of a file land on one owner: each feed key taken is in
 *    the store as the file spells it (a key names one owner, its own).
 * After each run the store is put back as it was (and checked to be so);
 * once the keyring has grown large (sealing makes a key per day), the
 * store is made again.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed/ipscan.h"
#include "feed/legacy.h"
#include "fuzz/fuzz-store.h"

#define NOW_MS 1795500000000LL /* 2026-11-24T04:40:00Z */
#define DAY_MS (24LL * 3600 * 1000)
#define KEYRING_MAX (64 + 256 * 64) /* bytes: a header and 256 windows */
#define BASE_MAX 32                 /* keys of the base store */

/* The legacy array and marker of the base store, imported at setup. */
static const char base_file[] =
	"[{\"key\":\"recentReceives:carol@example.com\",\"value\":"
	"\"[{\\\"reservationId\\\":\\\"c1\\\",\\\"createdAt\\\":"
	"\\\"2026-11-20T10:00:00Z\\\",\\\"ip\\\":\\\"192.0.2.10\\\"},"
	"{\\\"createdAt\\\":1795200000000}]\"},"
	"{\"key\":\"unread:carol@example.com:c1\",\"value\":\"1\"}]";

/* A key and value of the base store. */
typedef struct fz_rec {
	char *key;
	size_t klen;
	char *val;
	size_t vlen;
} fz_rec;

/* The store as every run starts from it. */
typedef struct fz_base {
	ef_store *st;
	char keyring[64];           /* its keyring file */
	fz_rec recs[BASE_MAX];      /* its records, in key order */
	size_t n;
	uint8_t digest[32];         /* of every key and value */
	ef_check_stats counts;      /* what ef_check counts in it */
} fz_base;

/* What the callbacks of one import saw. */
typedef struct fz_seen {
	uint64_t skips;         /* on_skip calls */
	uint64_t last_element;  /* largest element index of a skip, + 1 */
	uint64_t done;          /* last progress */
	uint8_t skipped[512];   /* bit per element < 4096: skipped */
} fz_seen;

static fz_base base;
static char input[64]; /* the file imported */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz-kvbulk: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errmsg: %s)\n", ef_errmsg(base.st));
	abort();
}

static int64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return NOW_MS;
}

static void write_input(const uint8_t *data, size_t size)
{
	int fd = open(input, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) ||
	    close(fd) != 0)
		fail("cannot write %s", input);
}

/* ---- the store's contents ------------------------------------------------ */

static void digest_add(crypto_generichash_state *h, const store_val *v)
{
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)v->len >> (8 * i));
	crypto_generichash_update(h, len, sizeof(len));
	crypto_generichash_update(h, v->data, v->len);
}

static int digest_txn(store_txn *t, void *p)
{
	crypto_generichash_state h;
	store_cur *cur;
	store_val k, v;
	int rc;

	crypto_generichash_init(&h, NULL, 0, 32);
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		digest_add(&h, &k);
		digest_add(&h, &v);
	}
	store_cur_close(cur);
	crypto_generichash_final(&h, p, 32);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static void digest(uint8_t out[32])
{
	if (store_read(base.st->env, digest_txn, out) != EF_OK)
		fail("cannot read the store");
}

/* What one ef_check reported. */
typedef struct fz_report {
	uint64_t count;
	char first[600];             /* the first violation */
} fz_report;

static void report_violation(const char *what, const char *key, void *ctx)
{
	fz_report *r = ctx;

	if (r->count++ == 0)
		snprintf(r->first, sizeof(r->first), "%s: %s", what,
			 key ? key : "-");
}

/* ef_check finds nothing wrong. (It once called a marker an orphan when
 * its value, kept from the file, looked like another createdSort: found
 * by this target, fixed in feed/check.c.) */
static void check(ef_check_stats *cs)
{
	fz_report r = {0};
	ef_check_opts o = {.report = report_violation, .report_ctx = &r};

	if (ef_check(base.st, &o, cs) != EF_OK)
		fail("ef_check failed");
	if (r.count)
		fail("ef_check found %llu violation(s), the first: %s",
		     (unsigned long long)r.count, r.first);
}

/* ---- retention: no IP address at rest in plaintext --------------------- */

#define LATER_MS (NOW_MS + 3650 * DAY_MS) /* every window past retention */

/* A stored legacy value is sealed or holds no address; read at LATER_MS,
 * when every window is past retention, it shows none. */
static void plain_legacy(const store_val *k, const store_val *v)
{
	uint8_t *view;
	size_t vlen;
	key_buf lk;
	json_t *j;
	int rc;

	if (legacy_value_needs_seal(v->data, v->len) != 0)
		fail("a legacy value holds an IP address in plaintext");
	memcpy(lk.s, k->data, k->len);
	lk.s[k->len] = '\0';
	lk.len = k->len;
	rc = legacy_value_view(base.st, &lk, v->data, v->len, LATER_MS, &view,
			       &vlen);
	if (rc == EF_ENOTFOUND)
		return; /* not JSON: shredded whole */
	if (rc != EF_OK)
		fail("a stored legacy value does not read (%s)",
		     ef_err_name(rc));
	j = json_loadb((const char *)view, vlen, 0, NULL);
	if (!j || ipscan_json(j))
		fail("a legacy value shows an IP address past retention");
	json_decref(j);
	free(view);
}

/* A quarantine record's plaintext (reasons, redacted) holds no address. */
static void plain_quarantine(const store_val *v)
{
	json_t *q = json_loadb(v->data, v->len, 0, NULL), *r, *red;
	size_t i;

	json_array_foreach(json_object_get(q, "reasons"), i, r)
		if (ipscan_json(json_object_get(r, "reason")))
			fail("a quarantine reason quotes an IP address");
	red = json_object_get(q, "redacted");
	if (json_is_string(red)) {
		json_t *j = json_loadb(json_string_value(red),
				       json_string_length(red), JSON_DECODE_ANY,
				       NULL);
		if (ipscan_json(j))
			fail("a quarantine record's redacted value holds an "
			     "IP address");
		json_decref(j);
	}
	json_decref(q);
}

static int plain_txn(store_txn *t, void *p)
{
	store_cur *cur;
	store_val k, v;
	rec_entry r;
	int rc;

	(void)p;
	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		if (store_has_prefix(&k, KEY_P_ENTRY, strlen(KEY_P_ENTRY)) &&
		    rec_decode(v.data, v.len, &r) == EF_OK &&
		    ipscan_text(r.payload, r.payload_len))
			fail("an entry's payload holds an IP address in "
			     "plaintext");
		else if (store_has_prefix(&k, KEY_P_LEGACY,
					  strlen(KEY_P_LEGACY)))
			plain_legacy(&k, &v);
		else if (store_has_prefix(&k, KEY_P_QUARANTINE,
					  strlen(KEY_P_QUARANTINE)))
			plain_quarantine(&v);
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Whatever the file held, no IP address is in the store in plaintext (keys
 * aside: they name owners), and none shows past retention. */
static void check_no_plaintext_ip(void)
{
	if (store_read(base.st->env, plain_txn, NULL) != EF_OK)
		fail("cannot read the store");
}

/* Is @k one of the base store's keys? Both lists are in store order, so
 * *j only moves forward. */
static int base_has(const store_val *k, size_t *j)
{
	const fz_rec *r = base.recs;

	while (*j < base.n && store_keycmp(k, r[*j].key, r[*j].klen) > 0)
		(*j)++;
	return *j < base.n && store_keycmp(k, r[*j].key, r[*j].klen) == 0;
}

/* Delete up to @max keys that the base store does not hold; *n gets how
 * many. The keys are copied first: a write ends the cursor's values. */
static int reset_some(store_txn *t, size_t max, size_t *n)
{
	char *del[64];
	size_t dlen[64], j = 0;
	store_cur *cur;
	store_val k;
	int rc;

	*n = 0;
	if ((rc = store_cur_open(t, &cur)) != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, NULL); rc == EF_OK && *n < max;
	     rc = store_cur_next(cur, &k, NULL)) {
		if (base_has(&k, &j))
			continue;
		if (!(del[*n] = malloc(k.len)))
			abort();
		memcpy(del[*n], k.data, k.len);
		dlen[(*n)++] = k.len;
	}
	store_cur_close(cur);
	if (rc == EF_ENOTFOUND)
		rc = EF_OK;
	for (size_t i = 0; i < *n; i++) {
		if (rc == EF_OK)
			rc = store_del(t, del[i], dlen[i]);
		free(del[i]);
	}
	return rc;
}

/* May the import change base record @r? Legacy arrays (merges) and entry
 * counts (entries added for an owner of the base store; ef_check holds
 * them to the records). */
static int may_change(const fz_rec *r)
{
	static const char *const prefixes[] = {KEY_P_LEGACY, KEY_P_COUNT};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
		if (r->klen >= strlen(prefixes[i]) &&
		    memcmp(r->key, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/*
 * Back to the base store: delete the keys the import added, write back
 * the records it changed. Of those, only may_change() ones may change;
 * *(const fz_rec **)@p gets another, or NULL. store_write may run this
 * again: it looks afresh each time.
 */
static int reset_txn(store_txn *t, void *p)
{
	const fz_rec **changed = p;
	store_val v;
	size_t n;
	int rc;

	*changed = NULL;
	do
		rc = reset_some(t, 64, &n);
	while (rc == EF_OK && n == 64);
	for (size_t i = 0; rc == EF_OK && i < base.n; i++) {
		const fz_rec *r = &base.recs[i];
		rc = store_get(t, r->key, r->klen, &v);
		if (rc == EF_OK && v.len == r->vlen &&
		    memcmp(v.data, r->val, v.len) == 0)
			continue;
		if (rc != EF_OK && rc != EF_ENOTFOUND)
			break;
		if (rc == EF_ENOTFOUND || !may_change(r))
			*changed = r;
		rc = store_put(t, r->key, r->klen, r->val, r->vlen, 0);
	}
	return rc;
}

static void reset(void)
{
	const fz_rec *changed;
	uint8_t d[32];

	if (store_write(base.st->env, reset_txn, &changed) != EF_OK)
		fail("cannot reset the store");
	if (changed)
		fail("the import changed or deleted %.*s, a record of the "
		     "store", (int)changed->klen, changed->key);
	digest(d);
	if (memcmp(d, base.digest, sizeof(d)) != 0)
		fail("the store is not as it was after the reset");
}

static void *dup_val(const store_val *v)
{
	char *d = malloc(v->len ? v->len : 1);

	if (!d)
		abort();
	memcpy(d, v->data, v->len);
	return d;
}

static void recs_free(void)
{
	for (size_t i = 0; i < base.n; i++) {
		free(base.recs[i].key);
		free(base.recs[i].val);
	}
	base.n = 0;
}

static int recs_txn(store_txn *t, void *p)
{
	store_cur *cur;
	store_val k, v;
	int rc;

	(void)p;
	recs_free();
	if ((rc = store_cur_open(t, &cur)) != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		fz_rec *r = &base.recs[base.n];
		if (base.n++ == BASE_MAX)
			abort();
		r->key = dup_val(&k);
		r->klen = k.len;
		r->val = dup_val(&v);
		r->vlen = v.len;
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

static void base_drop(void)
{
	fuzz_store_drop(base.st);
	recs_free();
	memset(&base, 0, sizeof(base));
}

static void base_finalize(const char *owner, const char *rid, int64_t ms,
			  const char *ip, const char *payload)
{
	ef_receive r = {owner, rid, ms, ip, payload};

	if (ef_finalize(base.st, &r) != EF_OK)
		fail("cannot seed the store");
}

/* A store at NOW_MS: two entries of alice (one read), one of bob whose IP
 * is past retention, carol's legacy array with a marker. */
static void base_make(void)
{
	ef_config cfg = {.flags = EF_NOSYNC, .clock_ms = fixed_clock};
	ef_import_stats s;

	base.st = fuzz_store_new(&cfg);
	snprintf(base.keyring, sizeof(base.keyring), "%s/keyring",
		 base.st->dir);
	base_finalize("alice@example.com", "r1", NOW_MS - 5 * DAY_MS,
		      "203.0.113.7", "{\"fileName\":\"a.txt\"}");
	base_finalize("alice@example.com", "r 2:x%", NOW_MS - 4 * DAY_MS,
		      "2001:db8::1", NULL);
	base_finalize("Bob@Example.com", "b1", NOW_MS - 40 * DAY_MS,
		      "198.51.100.2", "{\"n\":[1,{\"d\":null}]}");
	if (ef_mark_read(base.st, "alice@example.com", "r1") != EF_OK)
		fail("cannot seed the store");
	write_input((const uint8_t *)base_file, sizeof(base_file) - 1);
	if (ef_import_kvbulk(base.st, input, NULL, &s) != EF_OK ||
	    s.legacy_arrays != 1 || s.markers != 1)
		fail("cannot import the base file");
	if (store_read(base.st->env, recs_txn, NULL) != EF_OK)
		fail("cannot read the store");
	digest(base.digest);
	check(&base.counts);
}

static void cleanup(void)
{
	base_drop();
	unlink(input);
}

/* The base store; made again once its keyring holds many windows. */
static ef_store *fz_store(void)
{
	struct stat sb;
	int fd;

	if (!base.st) {
		snprintf(input, sizeof(input), "%s/edgefeed-fuzz-kvbulk-XXXXXX",
			 fuzz_tmpdir());
		if ((fd = mkstemp(input)) < 0)
			abort();
		close(fd);
		atexit(cleanup);
		base_make();
	} else if (stat(base.keyring, &sb) == 0 && sb.st_size > KEYRING_MAX) {
		base_drop();
		base_make();
	}
	return base.st;
}

/* ---- the properties ------------------------------------------------------ */

static void on_skip(uint64_t element, const char *key, size_t key_len,
		    int reason, const char *detail, void *ctx)
{
	fz_seen *seen = ctx;

	(void)key, (void)key_len;
	if (reason < 0 || reason >= EF_IMPORT_SKIP_COUNT ||
	    strcmp(ef_import_skip_name(reason), "unknown") == 0)
		fail("skip reason %d", reason);
	if (!detail || !*detail)
		fail("skip of element %llu without a detail",
		     (unsigned long long)element);
	seen->skips++;
	if (element < 8 * sizeof(seen->skipped))
		seen->skipped[element / 8] |= (uint8_t)(1u << element % 8);
	if (element + 1 > seen->last_element)
		seen->last_element = element + 1;
}

static void on_progress(uint64_t done, uint64_t total, void *ctx)
{
	fz_seen *seen = ctx;

	if (done > total || done < seen->done)
		fail("progress %llu of %llu after %llu",
		     (unsigned long long)done, (unsigned long long)total,
		     (unsigned long long)seen->done);
	seen->done = done;
}

static int import(const char *what, uint32_t batch, ef_import_stats *s,
		  fz_seen *seen)
{
	ef_import_opts o = {.batch = batch, .on_skip = on_skip,
			    .skip_ctx = seen, .progress = on_progress,
			    .progress_ctx = seen};
	uint64_t by_reason = 0;
	int rc;

	memset(seen, 0, sizeof(*seen));
	rc = ef_import_kvbulk(base.st, input, &o, s);
	if (rc != EF_OK && rc != EF_EINVAL)
		fail("%s import: %s", what, ef_err_name(rc));
	for (int i = 0; i < EF_IMPORT_SKIP_COUNT; i++)
		by_reason += s->skipped_by_reason[i];
	if (s->skipped != by_reason || s->skipped != seen->skips ||
	    seen->last_element > s->elements)
		fail("%s import: %llu skipped, %llu by reason, %llu reported "
		     "(up to element %llu of %llu)", what,
		     (unsigned long long)s->skipped,
		     (unsigned long long)by_reason,
		     (unsigned long long)seen->skips,
		     (unsigned long long)seen->last_element,
		     (unsigned long long)s->elements);
	return rc;
}

/*
 * Is @data a well-formed bulk file (after an optional UTF-8 BOM)? 1 with
 * *count elements, 0, or -1 when only jansson's nesting limit stands in
 * the way (the reader parses each element on its own, one level less deep).
 */
static int well_formed(const uint8_t *data, size_t size, size_t *count)
{
	json_error_t je;
	json_t *a, *el, *key;
	size_t i;
	int ok;

	if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
		data += 3;
		size -= 3;
	}
	a = json_loadb((const char *)data, size,
		       JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
	if (!a)
		return json_error_code(&je) == json_error_stack_overflow ? -1
									 : 0;
	ok = json_is_array(a);
	json_array_foreach(a, i, el) {
		key = json_object_get(el, "key");
		ok = ok && json_is_string(key) && json_object_get(el, "value");
	}
	*count = json_array_size(a);
	json_decref(a);
	return ok;
}

/* The message of a malformed file: "PATH: line L column C (byte B)...". */
static void check_position(const uint8_t *data, size_t size)
{
	const char *msg = ef_errmsg(base.st);
	size_t plen = strlen(input), lines = 1;
	unsigned long long line, col, byte;

	if (strncmp(msg, input, plen) != 0 ||
	    sscanf(msg + plen, ": line %llu column %llu (byte %llu)", &line,
		   &col, &byte) != 3)
		fail("the message of a malformed file has no position");
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (byte > size || line < 1 || line > lines || col < 1 ||
	    col > size + 1)
		fail("position line %llu column %llu byte %llu in a file of "
		     "%zu bytes, %zu lines", line, col, byte, size, lines);
}

static int has_txn(store_txn *t, void *p)
{
	json_t *key = p;

	return store_get(t, json_string_value(key), json_string_length(key),
			 NULL);
}

/* Each element of a feed family that was not skipped is in the store
 * under its own key, byte for byte: no key lands on another's owner. */
static void check_keys_kept(const uint8_t *data, size_t size,
			    const fz_seen *seen)
{
	static const char *const fams[] = {KEY_P_LEGACY, KEY_P_ENTRY,
					   KEY_P_INDEX, KEY_P_UNREAD};
	json_t *a, *key;
	size_t i, bom = size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0;

	a = json_loadb((const char *)data + 3 * bom, size - 3 * bom,
		       JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
	for (i = 0; i < json_array_size(a) && i < 8 * sizeof(seen->skipped);
	     i++) {
		key = json_object_get(json_array_get(a, i), "key");
		for (size_t f = 0; f < 4 && !(seen->skipped[i / 8] >> i % 8 & 1);
		     f++)
			if (json_string_length(key) > strlen(fams[f]) &&
			    !strncmp(json_string_value(key), fams[f],
				     strlen(fams[f])) &&
			    store_read(base.st->env, has_txn, key) != EF_OK)
				fail("element %zu was taken, but its key is "
				     "not in the store", i);
	}
	json_decref(a);
}

/* The store after a successful import holds what @s says it wrote. */
static void check_counts(const ef_import_stats *s)
{
	const ef_check_stats *b = &base.counts;
	uint64_t each = s->legacy_arrays + s->legacy_merged + s->entries +
			s->index_keys + s->markers + s->quarantine_records +
			s->quarantined + s->unchanged + s->trimmed + s->skipped;
	uint64_t q = s->quarantine_records + s->quarantined;
	ef_check_stats cs;

	/* one count an element, but for a value that displaces one */
	if (each < s->elements || each > s->elements + s->quarantined)
		fail("%llu elements, %llu counted",
		     (unsigned long long)s->elements, (unsigned long long)each);
	if (s->merged_owners > s->legacy_merged)
		fail("%llu merged owners, %llu merges",
		     (unsigned long long)s->merged_owners,
		     (unsigned long long)s->legacy_merged);
	check(&cs);
	/* the trim deletes entries with their index keys and markers (the
	 * entries trimmed at once were never written) */
	if (cs.entries + s->trim_deleted != b->entries + s->entries ||
	    cs.index_keys + s->trim_deleted != b->index_keys + s->entries ||
	    cs.markers > b->markers + s->markers ||
	    cs.markers + s->trim_deleted < b->markers + s->markers)
		fail("the store holds %llu entries, %llu index keys, %llu "
		     "markers; %llu, %llu, %llu were there and %llu entries, "
		     "%llu markers written",
		     (unsigned long long)cs.entries,
		     (unsigned long long)cs.index_keys,
		     (unsigned long long)cs.markers,
		     (unsigned long long)b->entries,
		     (unsigned long long)b->index_keys,
		     (unsigned long long)b->markers,
		     (unsigned long long)s->entries,
		     (unsigned long long)s->markers);
	if (cs.legacy_arrays < b->legacy_arrays + (s->legacy_arrays > 0) ||
	    cs.legacy_arrays > b->legacy_arrays + s->legacy_arrays)
		fail("the store holds %llu legacy arrays; %llu were there, "
		     "%llu stored", (unsigned long long)cs.legacy_arrays,
		     (unsigned long long)b->legacy_arrays,
		     (unsigned long long)s->legacy_arrays);
	if (cs.quarantined < b->quarantined + (q > 0) ||
	    cs.quarantined > b->quarantined + q)
		fail("the store holds %llu quarantine records; %llu were "
		     "there, %llu stored", (unsigned long long)cs.quarantined,
		     (unsigned long long)b->quarantined,
		     (unsigned long long)q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ef_import_stats zero;
	uint8_t before[32], after[32];
	ef_import_stats s, again;
	fz_seen seen;
	size_t count = 0;
	int rc, wf;

	fz_store();
	write_input(data, size);
	/* small batches: deferral and settling span several transactions */
	rc = import("first", 3, &s, &seen);
	wf = well_formed(data, size, &count);
	if ((wf == 1 && rc != EF_OK) || (wf == 0 && rc == EF_OK) ||
	    (wf == 1 && s.elements != count))
		fail("the import says %s with %llu elements; jansson: %s, %zu "
		     "elements", ef_err_name(rc),
		     (unsigned long long)s.elements,
		     wf == 1 ? "well-formed"
			     : wf == 0 ? "malformed" : "nested too deep",
		     count);
	if (rc == EF_EINVAL) {
		if (memcmp(&s, &zero, sizeof(s)) != 0)
			fail("a malformed file counted something");
		check_position(data, size);
		digest(after);
		if (memcmp(after, base.digest, sizeof(after)) != 0)
			fail("a malformed file changed the store");
		return 0;
	}
	check_counts(&s);
	check_no_plaintext_ip();
	check_keys_kept(data, size, &seen);
	if (s.entries + s.markers + s.legacy_arrays + s.legacy_merged +
		    s.quarantine_records + s.quarantined == 0) {
		reset();
		return 0;
	}
	/* again, in one batch: nothing may change */
	digest(before);
	if (import("second", 0, &again, &seen) != EF_OK ||
	    again.elements != s.elements)
		fail("the second import of the same file failed");
	digest(after);
	if (memcmp(before, after, sizeof(after)) != 0)
		fail("importing the same file again changed the store");
	reset();
	return 0;
}

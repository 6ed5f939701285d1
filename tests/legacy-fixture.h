/*
 * legacy-fixture.h - a store of the old design, as it is found in the wild,
 * for the migration tests that need many owners: per owner one JSON array
 * (newest first) of realistic elements (ISO-8601 times with and without a
 * fraction or with an offset, epoch milliseconds, IPv4, IPv6, no IP, payload
 * fields), with a reservation repeated, elements without a reservation id,
 * invalid IPs, malformed elements (not an object, a bad createdAt, a
 * reservationId that is not a string, nesting too deep, a payload too big),
 * unread markers of the old design and orphan markers; and the model of
 * what each array must become.
 *
 * Header-only (static functions), so a test includes it without a build
 * change. The model is built in the parent, before any fork(): a child only
 * reads it. Functions that assert are for the parent only (they say so).
 */
#ifndef EF_TESTS_LEGACY_FIXTURE_H
#define EF_TESTS_LEGACY_FIXTURE_H

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feed/feed.h"
#include "migrate/migrate.h"
#include "tests/helpers.h"

#define LF_FN static __attribute__((unused))

#define LF_RID_MAX 96
#define LF_OWNER_MAX 64
#define LF_FEED_CAP 1000u /* large enough that no test entry is trimmed */

/* lf_build() flags */
#define LF_MIXED_CASE 0x1u /* the last owner's array is keyed in mixed case
			    * ("recentReceives:Owner5@Example.COM") */
#define LF_JUNK_VALUE 0x2u /* one more legacy key, whose value is not even
			    * UTF-8, let alone JSON */

/* A convertible element, as its entry must read after migration. */
typedef struct lf_elem {
	char rid[LF_RID_MAX]; /* reservation id; legacy-<hash> if it had none */
	int64_t created_ms;
	char ip[48];          /* canonical text; "" if none or not an address */
	char *payload;        /* compact JSON of the other fields, or NULL */
	int marker;           /* an unread marker of the old design exists */
} lf_elem;

typedef struct lf_owner {
	char key_owner[LF_OWNER_MAX]; /* the owner as spelled in the legacy key */
	char owner[LF_OWNER_MAX];     /* canonical (no byte needs escaping) */
	char *value;                  /* the legacy value, byte for byte */
	size_t len;
	lf_elem *el;                  /* convertible: first occurrences, in
				       * array order */
	size_t n;
	size_t total;           /* elements in the array (0: not an array) */
	size_t dups;            /* later occurrences of a reservation */
	size_t quarantined;     /* elements (or the whole value) quarantined */
	size_t kept_without_ip; /* migrated, without their invalid ip */
	size_t markers;         /* markers of convertible elements */
	size_t orphans;         /* markers of reservations that do not exist */
} lf_owner;

typedef struct lf_fixture {
	lf_owner *o;
	size_t n;           /* legacy keys */
	size_t convertible; /* sum of o[].n */
} lf_fixture;

/* ---- building --------------------------------------------------------- */

/* ISO-8601 UTC, with milliseconds (@frac) or seconds only, or local time at
 * +@offset_h hours with an offset and no fraction. */
LF_FN void lf_iso(int64_t ms, int frac, int offset_h, char *buf, size_t cap)
{
	time_t s = (time_t)(ms / 1000) + (time_t)offset_h * 3600;
	char base[40];
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(buf, cap, "%s.%03dZ", base, (int)(ms % 1000));
	else if (offset_h)
		snprintf(buf, cap, "%s+%02d:00", base, offset_h);
	else
		snprintf(buf, cap, "%sZ", base);
}

/* Escape a key component as the store does (':', '%', ' ' as %XX). */
LF_FN void lf_escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s && o + 4 < cap; s++) {
		if (*s == ':' || *s == '%' || *s == ' ')
			o += (size_t)snprintf(out + o, cap - o, "%%%02X",
					      (unsigned char)*s);
		else
			out[o++] = *s;
	}
	out[o] = '\0';
}

/* Element @i of owner @o: its reservation id, in one of three shapes. */
LF_FN void lf_rid(size_t o, size_t i, char *buf, size_t cap)
{
	if (i % 25 == 9)
		snprintf(buf, cap, "r: 100%% %zu/%zu", o, i); /* needs escaping */
	else if (i % 30 == 21)
		snprintf(buf, cap, "r\xc3\xa9sa-%zu-%zu", o, i); /* UTF-8 */
	else
		snprintf(buf, cap, "rsv-%zu-%zu", o, i);
}

/* Newest first, 37 minutes apart: the oldest of 80 is two days old. */
LF_FN int64_t lf_created(int64_t now, size_t o, size_t i)
{
	int64_t t = now - (int64_t)(i + 1) * 37 * 60000 - (int64_t)o * 1000;

	/* the formats without a fraction need whole seconds */
	return i % 4 == 0 || i % 4 == 2 ? t + (int64_t)((i * 7 + o * 13) % 1000)
					: t;
}

/* "legacy-" + hex BLAKE2b of the element's canonical JSON (DESIGN.md). */
LF_FN void lf_legacy_id(json_t *el, char *buf, size_t cap)
{
	unsigned char h[crypto_generichash_BYTES];
	char hex[2 * crypto_generichash_BYTES + 1];
	char *canon = json_dumps(el, JSON_COMPACT | JSON_SORT_KEYS |
					     JSON_ENCODE_ANY);

	assert_non_null(canon);
	crypto_generichash(h, sizeof(h), (const unsigned char *)canon,
			   strlen(canon), NULL, 0);
	free(canon);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	snprintf(buf, cap, "legacy-%s", hex);
}

/* A malformed element (variant @v): what cannot migrate. */
LF_FN json_t *lf_malformed(size_t o, size_t i, size_t v, int64_t created)
{
	char rid[LF_RID_MAX];
	json_t *el, *deep;

	switch (v % 6) {
	case 0:
		return json_integer(42);
	case 1:
		return json_string("an element that is a string");
	case 2:
		snprintf(rid, sizeof(rid), "bad-time-%zu-%zu", o, i);
		return json_pack("{s:s, s:s}", "reservationId", rid,
				 "createdAt", "yesterday");
	case 3:
		return json_pack("{s:i, s:I}", "reservationId", 7, "createdAt",
				 (json_int_t)created);
	case 4:
		deep = json_integer(1);
		for (int d = 0; d < 40; d++)
			deep = json_pack("[o]", deep);
		snprintf(rid, sizeof(rid), "deep-%zu-%zu", o, i);
		return json_pack("{s:s, s:I, s:o}", "reservationId", rid,
				 "createdAt", (json_int_t)created, "x", deep);
	default: {
		char *big = malloc(EF_PAYLOAD_MAX + 100);

		assert_non_null(big);
		memset(big, 'a', EF_PAYLOAD_MAX + 99);
		big[EF_PAYLOAD_MAX + 99] = '\0';
		snprintf(rid, sizeof(rid), "huge-%zu-%zu", o, i);
		el = json_pack("{s:s, s:I, s:s}", "reservationId", rid,
			       "createdAt", (json_int_t)created, "note", big);
		free(big);
		return el;
	}
	}
}

/* createdAt of element @i, in one of the four shapes found in the wild. */
LF_FN json_t *lf_created_json(int64_t created, size_t i)
{
	char t[48];

	switch (i % 4) {
	case 0:
		lf_iso(created, 1, 0, t, sizeof(t));
		break;
	case 1:
		lf_iso(created, 0, 2, t, sizeof(t));
		break;
	case 2:
		return json_integer((json_int_t)created);
	default:
		lf_iso(created, 0, 0, t, sizeof(t));
		break;
	}
	return json_string(t);
}

/* A convertible element @i of owner @o; fills @x with what it becomes.
 * @bad_ip: an ip that is not an address (kept without it). */
LF_FN json_t *lf_good(size_t o, size_t i, int64_t now, int with_rid,
		      int bad_ip, lf_elem *x)
{
	json_t *el = json_object(), *payload = json_object();
	char rid[LF_RID_MAX], ip[48] = "", buf[64];
	int64_t created = lf_created(now, o, i);

	assert_non_null(el);
	assert_non_null(payload);
	memset(x, 0, sizeof(*x));
	lf_rid(o, i, rid, sizeof(rid));
	if (with_rid)
		json_object_set_new(el, "reservationId", json_string(rid));
	json_object_set_new(el, "createdAt", lf_created_json(created, i));
	if (bad_ip)
		json_object_set_new(el, "ip", json_string("999.1.2.3"));
	else if (i % 3 == 0)
		snprintf(ip, sizeof(ip), "203.0.113.%zu", i % 250 + 1);
	else if (i % 3 == 1)
		snprintf(ip, sizeof(ip), "2001:db8::%zx", o * 256 + i + 1);
	if (ip[0])
		json_object_set_new(el, "ip", json_string(ip));
	if (i % 11 != 5) {
		snprintf(buf, sizeof(buf), "report-%zu-%zu.pdf", o, i);
		json_object_set_new(payload, "fileName", json_string(buf));
		json_object_set_new(payload, "size",
				    json_integer((json_int_t)(1000 * i + o)));
		if (i % 2) {
			snprintf(buf, sizeof(buf), "sender%zu@example.org",
				 i % 7);
			json_object_set_new(payload, "senderEmail",
					    json_string(buf));
		}
		if (i % 3 == 0) {
			snprintf(buf, sizeof(buf), "lnk-%zu-%zu", o, i);
			json_object_set_new(payload, "linkId", json_string(buf));
		}
	}
	json_object_update(el, payload);
	if (with_rid)
		snprintf(x->rid, sizeof(x->rid), "%s", rid);
	else
		lf_legacy_id(el, x->rid, sizeof(x->rid));
	x->created_ms = created;
	snprintf(x->ip, sizeof(x->ip), "%s", ip);
	if (json_object_size(payload) > 0) {
		x->payload = json_dumps(payload, JSON_COMPACT);
		assert_non_null(x->payload);
	}
	json_decref(payload);
	return el;
}

/* Owner @o's array of @elems elements (parent only: asserts). */
LF_FN void lf_owner_build(lf_owner *w, size_t o, size_t elems, int64_t now,
			  int mixed)
{
	json_t *arr = json_array();

	assert_non_null(arr);
	snprintf(w->owner, sizeof(w->owner), "owner%zu@example.com", o);
	if (mixed)
		snprintf(w->key_owner, sizeof(w->key_owner),
			 "Owner%zu@Example.COM", o);
	else
		snprintf(w->key_owner, sizeof(w->key_owner), "%s", w->owner);
	w->el = calloc(elems, sizeof(*w->el));
	assert_non_null(w->el);
	for (size_t i = 0; i < elems; i++) {
		int64_t created = lf_created(now, o, i);
		json_t *el;

		if (i % 20 == 7) {
			el = lf_malformed(o, i, i / 20 + o, created);
			w->quarantined++;
		} else if (i % 20 == 13) {
			/* element i-3 again, with other fields: first wins */
			char rid[LF_RID_MAX];

			lf_rid(o, i - 3, rid, sizeof(rid));
			el = json_pack("{s:s, s:I, s:s}", "reservationId", rid,
				       "createdAt", (json_int_t)created,
				       "fileName", "dup.bin");
			w->dups++;
		} else {
			lf_elem *x = &w->el[w->n++];
			int bad_ip = i % 20 == 17;

			el = lf_good(o, i, now, i % 40 != 3, bad_ip, x);
			w->kept_without_ip += (size_t)bad_ip;
			x->marker = i % 10 == 4;
			w->markers += (size_t)x->marker;
		}
		assert_non_null(el);
		assert_int_equal(json_array_append_new(arr, el), 0);
	}
	w->total = elems;
	w->orphans = 1;
	w->value = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_non_null(w->value);
	w->len = strlen(w->value);
	json_decref(arr);
}

/* A fixture of @owners owners with @elems elements each (parent only). */
LF_FN void lf_build(lf_fixture *f, size_t owners, size_t elems, int64_t now,
		    unsigned flags)
{
	static const char junk[] = "\xff\xfe{\"not\": json";
	size_t n = owners + ((flags & LF_JUNK_VALUE) ? 1 : 0);

	memset(f, 0, sizeof(*f));
	f->o = calloc(n, sizeof(*f->o));
	assert_non_null(f->o);
	f->n = n;
	for (size_t o = 0; o < owners; o++) {
		lf_owner_build(&f->o[o], o, elems, now,
			       (flags & LF_MIXED_CASE) && o + 1 == owners);
		f->convertible += f->o[o].n;
	}
	if (flags & LF_JUNK_VALUE) {
		lf_owner *w = &f->o[owners];

		snprintf(w->owner, sizeof(w->owner), "junk@example.com");
		snprintf(w->key_owner, sizeof(w->key_owner), "%s", w->owner);
		w->len = sizeof(junk) - 1;
		w->value = malloc(w->len);
		assert_non_null(w->value);
		memcpy(w->value, junk, w->len);
		w->quarantined = 1;
	}
}

LF_FN void lf_free(lf_fixture *f)
{
	for (size_t o = 0; o < f->n; o++) {
		for (size_t i = 0; i < f->o[o].n; i++)
			free(f->o[o].el[i].payload);
		free(f->o[o].el);
		free(f->o[o].value);
	}
	free(f->o);
	memset(f, 0, sizeof(*f));
}

/* Sums over the fixture. */
typedef struct lf_sums {
	uint64_t elements, convertible, dups, quarantined, kept_without_ip;
	uint64_t markers, orphans, with_issues;
} lf_sums;

LF_FN lf_sums lf_sum(const lf_fixture *f)
{
	lf_sums s = {0};

	for (size_t o = 0; o < f->n; o++) {
		const lf_owner *w = &f->o[o];

		s.elements += w->total;
		s.convertible += w->n;
		s.dups += w->dups;
		s.quarantined += w->quarantined;
		s.kept_without_ip += w->kept_without_ip;
		s.markers += w->markers;
		s.orphans += w->orphans;
		s.with_issues += w->quarantined + w->kept_without_ip > 0;
	}
	return s;
}

/* ---- writing the old store ---------------------------------------------- */

static int lf_store_txn(store_txn *t, void *p)
{
	const lf_fixture *f = p;
	char key[600], esc[3 * LF_RID_MAX];
	int rc;

	for (size_t o = 0; o < f->n; o++) {
		const lf_owner *w = &f->o[o];

		snprintf(key, sizeof(key), "%s%s", KEY_P_LEGACY, w->key_owner);
		rc = store_put(t, key, strlen(key), w->value, w->len, 0);
		for (size_t i = 0; rc == EF_OK && i < w->n; i++) {
			if (!w->el[i].marker)
				continue;
			lf_escape(w->el[i].rid, esc, sizeof(esc));
			snprintf(key, sizeof(key), "%s%s:%s", KEY_P_UNREAD,
				 w->owner, esc);
			rc = store_put(t, key, strlen(key), "1", 1, 0);
		}
		if (rc == EF_OK && w->orphans) {
			snprintf(key, sizeof(key), "%s%s:gone-%zu", KEY_P_UNREAD,
				 w->owner, o);
			rc = store_put(t, key, strlen(key), "1", 1, 0);
		}
		if (rc != EF_OK)
			return rc;
	}
	return EF_OK;
}

/* Write the legacy keys and markers, in one transaction (parent only). */
LF_FN void lf_store(ef_store *st, const lf_fixture *f)
{
	assert_int_equal(store_write(st->env, lf_store_txn, (void *)f), EF_OK);
}

/* ---- reading it back ------------------------------------------------------ */

/* Index of the convertible element of owner @w with reservation @rid, or -1. */
LF_FN long lf_find(const lf_owner *w, const char *rid)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->el[i].rid, rid) == 0)
			return (long)i;
	return -1;
}

/* Does entry @e read as element @x? 1, or 0 with the reason in @why. No
 * cmocka: usable in a child. */
LF_FN int lf_entry_matches(const lf_elem *x, const ef_entry *e, char *why,
			   size_t cap)
{
	json_t *a, *b;
	int same;

	if (strcmp(e->reservation_id, x->rid) != 0) {
		snprintf(why, cap, "reservation '%s', want '%s'",
			 e->reservation_id, x->rid);
		return 0;
	}
	if (e->created_ms != x->created_ms) {
		snprintf(why, cap, "'%s': created_ms %lld, want %lld", x->rid,
			 (long long)e->created_ms, (long long)x->created_ms);
		return 0;
	}
	if (x->ip[0] ? !e->ip || strcmp(e->ip, x->ip) != 0 : e->ip != NULL) {
		snprintf(why, cap, "'%s': ip %s, want %s", x->rid,
			 e->ip ? e->ip : "(none)", x->ip[0] ? x->ip : "(none)");
		return 0;
	}
	if (!x->payload || !e->payload_json) {
		same = !x->payload && !e->payload_json;
	} else {
		a = json_loads(x->payload, 0, NULL);
		b = json_loads(e->payload_json, 0, NULL);
		same = a && b && json_equal(a, b);
		json_decref(a);
		json_decref(b);
	}
	if (!same) {
		snprintf(why, cap, "'%s': payload %s, want %s", x->rid,
			 e->payload_json ? e->payload_json : "(none)",
			 x->payload ? x->payload : "(none)");
		return 0;
	}
	return 1;
}

/* Every page of @owner's feed (limit @limit) and its unread count, as one
 * JSON text (parent only). Two equal texts: the same feed, field by field. */
LF_FN char *lf_feed_text(ef_store *st, const char *owner, size_t limit)
{
	json_t *all = json_array();
	char *cursor = NULL, *out;
	uint64_t unread = 0;
	int rc;

	assert_non_null(all);
	for (;;) {
		ef_page p;

		rc = ef_feed_page(st, owner, cursor, limit, &p);
		if (rc != EF_OK)
			fail_msg("ef_feed_page(%s): %s: %s", owner,
				 ef_err_name(rc), ef_errmsg(st));
		for (size_t i = 0; i < p.count; i++) {
			ef_entry *e = &p.entries[i];

			json_array_append_new(
				all, json_pack("{s:s, s:I, s:s?, s:s?, s:b}",
					       "id", e->reservation_id, "ms",
					       (json_int_t)e->created_ms, "ip",
					       e->ip, "payload", e->payload_json,
					       "unread", e->unread));
		}
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		ef_page_free(&p);
		if (!cursor)
			break;
	}
	assert_int_equal(ef_unread_count(st, owner, &unread), EF_OK);
	json_array_append_new(all, json_integer((json_int_t)unread));
	out = json_dumps(all, JSON_COMPACT);
	assert_non_null(out);
	json_decref(all);
	return out;
}

/* Call @fn for every entry of @owner's feed, all pages, checking that it
 * goes strictly newest first (parent only). Returns the number of entries. */
typedef void (*lf_entry_fn)(const ef_entry *e, void *ctx);

LF_FN size_t lf_feed_walk(ef_store *st, const char *owner, lf_entry_fn fn,
			  void *ctx)
{
	int64_t prev = INT64_MAX;
	char prev_rid[LF_RID_MAX * 2] = "";
	char *cursor = NULL;
	size_t count = 0;
	int rc;

	do {
		ef_page p;

		rc = ef_feed_page(st, owner, cursor, 37, &p);
		if (rc != EF_OK)
			fail_msg("ef_feed_page(%s): %s: %s", owner,
				 ef_err_name(rc), ef_errmsg(st));
		for (size_t i = 0; i < p.count; i++) {
			const ef_entry *e = &p.entries[i];

			if (e->created_ms > prev)
				fail_msg("%s: '%s' comes after the newer '%s'",
					 owner, e->reservation_id, prev_rid);
			prev = e->created_ms;
			snprintf(prev_rid, sizeof(prev_rid), "%s",
				 e->reservation_id);
			fn(e, ctx);
			count++;
		}
		free(cursor);
		cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
		ef_page_free(&p);
	} while (cursor);
	return count;
}

/* ---- the raw keys: one pass over the whole store -------------------------- */

typedef struct lf_owner_tally {
	size_t legacy;     /* recentReceives: keys spelled as the fixture's */
	size_t entries;    /* recentReceive:<owner>: */
	size_t index;      /* receiveIndex:<owner>: */
	size_t markers;    /* unread:<owner>: */
	size_t quarantine; /* quarantine:<owner>: */
} lf_owner_tally;

typedef struct lf_tally {
	const lf_fixture *f;
	lf_owner_tally *per;     /* per fixture owner */
	size_t entries, index, markers, legacy, quarantine, other;
	size_t foreign;          /* keys of owners not in the fixture */
	size_t bad;              /* entries and index keys that disagree */
	char first_bad[300];
} lf_tally;

static long lf_owner_of(const lf_fixture *f, const char *p, size_t len,
			int key_spelling)
{
	for (size_t o = 0; o < f->n; o++) {
		const char *s = key_spelling ? f->o[o].key_owner : f->o[o].owner;

		if (strlen(s) == len && memcmp(s, p, len) == 0)
			return (long)o;
	}
	return -1;
}

static void lf_bad(lf_tally *t, const char *what, const store_val *k)
{
	if (t->bad++ == 0)
		snprintf(t->first_bad, sizeof(t->first_bad), "%s: %.*s", what,
			 (int)k->len, (const char *)k->data);
}

/* An entry key: its index must hold its createdSort. */
static int lf_tally_entry(store_txn *txn, lf_tally *t, const store_val *k,
			  size_t **slot)
{
	key_view ow, so, rid;
	store_val iv;
	key_buf ik;
	long o;
	int rc;

	t->entries++;
	if (key_split_entry(k->data, k->len, &ow, &so, &rid) != EF_OK) {
		lf_bad(t, "malformed entry key", k);
		return EF_OK;
	}
	o = lf_owner_of(t->f, ow.p, ow.len, 0);
	*slot = o < 0 ? NULL : &t->per[o].entries;
	key_pair_views(&ik, KEY_P_INDEX, ow, rid);
	rc = store_get(txn, ik.s, ik.len, &iv);
	if (rc == EF_ENOTFOUND)
		lf_bad(t, "entry without its index", k);
	else if (rc != EF_OK)
		return rc;
	else if (iv.len != so.len || memcmp(iv.data, so.p, so.len) != 0)
		lf_bad(t, "index with another createdSort than its entry", k);
	return EF_OK;
}

/* An index key: the entry at its createdSort must exist. */
static int lf_tally_index(store_txn *txn, lf_tally *t, const store_val *k,
			  const store_val *v, size_t **slot)
{
	key_view ow, rid;
	key_buf ek;
	long o;
	int rc, n;

	t->index++;
	if (key_split_pair(k->data, k->len, KEY_P_INDEX, &ow, &rid) != EF_OK ||
	    v->len != KEY_SORT_LEN) {
		lf_bad(t, "malformed index key", k);
		return EF_OK;
	}
	o = lf_owner_of(t->f, ow.p, ow.len, 0);
	*slot = o < 0 ? NULL : &t->per[o].index;
	n = snprintf(ek.s, sizeof(ek.s), "%s%.*s:%.*s:%.*s", KEY_P_ENTRY,
		     (int)ow.len, ow.p, (int)v->len, (const char *)v->data,
		     (int)rid.len, rid.p);
	ek.len = (size_t)n;
	rc = store_get(txn, ek.s, ek.len, NULL);
	if (rc == EF_ENOTFOUND)
		lf_bad(t, "index without its entry", k);
	else if (rc != EF_OK)
		return rc;
	return EF_OK;
}

/* The owner part of "<prefix><owner>[:...]". */
static long lf_tally_owner(const lf_tally *t, const store_val *k,
			   const char *prefix, int key_spelling)
{
	const char *p = (const char *)k->data + strlen(prefix);
	size_t len = k->len - strlen(prefix);
	const char *colon = memchr(p, ':', len);

	if (colon && !key_spelling)
		len = (size_t)(colon - p);
	return lf_owner_of(t->f, p, len, key_spelling);
}

static int lf_tally_txn(store_txn *txn, void *p)
{
	lf_tally *t = p;
	store_cur *c;
	store_val k, v;
	int rc;

	rc = store_cur_open(txn, &c);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(c, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(c, &k, &v)) {
		size_t *slot = NULL, dummy = 0;
		long o;

		if (store_has_prefix(&k, KEY_P_ENTRY, strlen(KEY_P_ENTRY))) {
			rc = lf_tally_entry(txn, t, &k, &slot);
		} else if (store_has_prefix(&k, KEY_P_INDEX,
					    strlen(KEY_P_INDEX))) {
			rc = lf_tally_index(txn, t, &k, &v, &slot);
		} else if (store_has_prefix(&k, KEY_P_UNREAD,
					    strlen(KEY_P_UNREAD))) {
			t->markers++;
			o = lf_tally_owner(t, &k, KEY_P_UNREAD, 0);
			slot = o < 0 ? NULL : &t->per[o].markers;
		} else if (store_has_prefix(&k, KEY_P_LEGACY,
					    strlen(KEY_P_LEGACY))) {
			t->legacy++;
			o = lf_tally_owner(t, &k, KEY_P_LEGACY, 1);
			slot = o < 0 ? NULL : &t->per[o].legacy;
		} else if (store_has_prefix(&k, KEY_P_QUARANTINE,
					    strlen(KEY_P_QUARANTINE))) {
			t->quarantine++;
			o = lf_tally_owner(t, &k, KEY_P_QUARANTINE, 0);
			slot = o < 0 ? NULL : &t->per[o].quarantine;
		} else {
			t->other++;
			slot = &dummy;
		}
		if (rc != EF_OK)
			break;
		if (slot)
			(*slot)++;
		else
			t->foreign++;
	}
	store_cur_close(c);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Count every key of the store by family and fixture owner, and check that
 * every entry has its index (same createdSort) and every index its entry
 * (parent only). Free with lf_tally_free(). */
LF_FN void lf_tally_take(ef_store *st, const lf_fixture *f, lf_tally *t)
{
	memset(t, 0, sizeof(*t));
	t->f = f;
	t->per = calloc(f->n, sizeof(*t->per));
	assert_non_null(t->per);
	assert_int_equal(store_read(st->env, lf_tally_txn, t), EF_OK);
}

LF_FN void lf_tally_free(lf_tally *t)
{
	free(t->per);
	t->per = NULL;
}

/* ---- quarantine ----------------------------------------------------------- */

struct lf_q_ctx {
	const char *prefix;
	char *val; /* malloc'd value of the first key with the prefix, or NULL */
	key_buf key; /* that key */
};

static int lf_q_txn(store_txn *txn, void *p)
{
	struct lf_q_ctx *c = p;
	store_cur *cur;
	store_val k, v;
	int rc;

	free(c->val);
	c->val = NULL;
	rc = store_cur_open(txn, &cur);
	if (rc != EF_OK)
		return rc;
	rc = store_cur_seek(cur, c->prefix, strlen(c->prefix), &k, &v);
	if (rc == EF_OK && store_has_prefix(&k, c->prefix, strlen(c->prefix))) {
		c->val = calloc(1, v.len + 1);
		if (c->val)
			memcpy(c->val, v.data, v.len);
		memcpy(c->key.s, k.data, k.len);
		c->key.len = k.len;
	}
	store_cur_close(cur);
	return rc == EF_OK || rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Owner @w's quarantine record, if it must have one: the original value
 * byte for byte, and one reason per issue (parent only). */
LF_FN void lf_check_quarantine(ef_store *st, const lf_owner *w)
{
	struct lf_q_ctx c = {NULL, NULL, {{0}, 0}};
	char prefix[128];
	size_t n = 0, quarantined = 0, kept = 0, i;
	uint8_t *raw;
	json_t *j, *reasons, *r;

	snprintf(prefix, sizeof(prefix), "%s%s:", KEY_P_QUARANTINE, w->owner);
	c.prefix = prefix;
	assert_int_equal(store_read(st->env, lf_q_txn, &c), EF_OK);
	if (w->quarantined + w->kept_without_ip == 0) {
		if (c.val)
			fail_msg("%s: a quarantine record without issues",
				 w->owner);
		return;
	}
	if (!c.val)
		fail_msg("%s: no quarantine record", w->owner);
	j = json_loads(c.val, 0, NULL);
	assert_non_null(j);
	/* the original bytes, opened from their sealed form */
	assert_int_equal(quarantine_raw(st, c.key.s, c.key.len, j,
					feed_now(st), &raw, &n),
			 EF_OK);
	assert_int_equal(n, w->len);
	assert_memory_equal(raw, w->value, w->len);
	reasons = json_object_get(j, "reasons");
	json_array_foreach(reasons, i, r) {
		if (json_is_true(json_object_get(r, "migrated")))
			kept++;
		else
			quarantined++;
	}
	if (quarantined != w->quarantined || kept != w->kept_without_ip)
		fail_msg("%s: quarantine reasons: %zu not migrated and %zu "
			 "migrated without ip, want %zu and %zu: %s",
			 w->owner, quarantined, kept, w->quarantined,
			 w->kept_without_ip, c.val);
	free(raw);
	json_decref(j);
	free(c.val);
}

/* ---- the library's own checker ------------------------------------------- */

struct lf_check_ctx {
	size_t unexpected;
	char first[400];
};

/* Every violation is unexpected except the orphan markers the fixture
 * planted (unread:<owner>:gone-<n>). */
static void lf_violation(const char *what, const char *key, void *ctx)
{
	struct lf_check_ctx *c = ctx;

	if (key && strstr(what, "marker: no entry") && strstr(key, ":gone-"))
		return;
	if (c->unexpected++ == 0)
		snprintf(c->first, sizeof(c->first), "%s: %s", what,
			 key ? key : "");
}

/* ef_check finds nothing but the planted orphans (parent only). */
LF_FN void lf_check_invariants(ef_store *st)
{
	struct lf_check_ctx c = {0, ""};
	ef_check_opts o = {0};
	ef_check_stats cs;

	o.report = lf_violation;
	o.report_ctx = &c;
	assert_int_equal(ef_check(st, &o, &cs), EF_OK);
	if (c.unexpected)
		fail_msg("ef_check: %zu violations; first: %s", c.unexpected,
			 c.first);
}

#endif

/*
 * keys.c - canonicalization, escaping and the layout of every key.
 */
#include "feed/keys.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/error.h"
#include "store/store.h"

int utf8_valid(const unsigned char *s, size_t len, size_t *bad_at)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			goto bad;
		}
		if (len - i <= n)
			goto bad;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		/* overlong forms, UTF-16 surrogates and code points past
		 * U+10FFFF are not UTF-8 (RFC 3629) */
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			goto bad;
		i += n + 1;
	}
	return 1;
bad:
	if (bad_at)
		*bad_at = i;
	return 0;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

static int needs_escape(unsigned char c)
{
	return c == ':' || c == '%' || c == ' ';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Validate [s, s+len) as a key component and escape it into @out. @skip
 * bytes were trimmed before @s: messages give offsets in the caller's text. */
static int part_make(uint64_t id, const char *field, const unsigned char *s,
		     size_t len, size_t skip, size_t max, int lower,
		     key_part *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t bad, o = 0;

	out->len = 0;
	out->s[0] = '\0';
	if (len == 0)
		return ef__err(id, EF_EINVAL, skip ? "%s: empty once white space "
						     "is trimmed"
						   : "%s: empty",
			       field);
	if (!utf8_valid(s, len, &bad))
		return ef__err(id, EF_EINVAL, "%s: invalid UTF-8 at byte %zu",
			       field, skip + bad);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c < 0x20 || c == 0x7F)
			return ef__err(id, EF_EINVAL,
				       "%s: control character 0x%02X at byte %zu",
				       field, c, skip + i);
		if (lower && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (o + (needs_escape(c) ? 3 : 1) > max)
			return ef__err(id, EF_EINVAL,
				       "%s: too long (more than %zu bytes once "
				       "':', '%%' and ' ' are escaped)",
				       field, max);
		if (needs_escape(c)) {
			out->s[o++] = '%';
			out->s[o++] = hex[c >> 4];
			out->s[o++] = hex[c & 0xF];
		} else {
			out->s[o++] = (char)c;
		}
	}
	out->s[o] = '\0';
	out->len = o;
	return EF_OK;
}

int key_owner_n(uint64_t id, const char *field, const char *text, size_t len,
		key_part *out)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t skip = 0;

	if (!text) {
		out->len = 0;
		out->s[0] = '\0';
		return ef__err(id, EF_EINVAL, "%s: missing", field);
	}
	while (len > 0 && is_space(s[0]))
		s++, len--, skip++;
	while (len > 0 && is_space(s[len - 1]))
		len--;
	return part_make(id, field, s, len, skip, EF_OWNER_KEY_MAX, 1, out);
}

#define KEY_OWNER_FIELD "owner in the key"

/* Where the component @v stops being a spelling that key_owner writes,
 * before canonicalization: a raw byte that is escaped, or an escape that
 * is not %3A, %25 or %20. EF_OK if there is none. */
static int key_escapes_check(uint64_t id, key_view v)
{
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c == '%') {
			int hi = v.len - i >= 3 ? hexval(v.p[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(v.p[i + 2]) : -1;
			if (lo < 0 || !needs_escape((unsigned char)(hi << 4 | lo)))
				return ef__err(id, EF_EINVAL,
					       "%s: byte %zu: '%%' starts none "
					       "of the escapes %%3A, %%25, %%20 "
					       "(the only ones, upper-case hex)",
					       KEY_OWNER_FIELD, i);
			i += 2;
		} else if (c == ':' || c == ' ') {
			return ef__err(id, EF_EINVAL,
				       "%s: byte %zu: a raw %s (edgefeed writes "
				       "it as %s)", KEY_OWNER_FIELD, i,
				       c == ':' ? "':'" : "space",
				       c == ':' ? "%3A" : "%20");
		} else if (c < 0x20 || c == 0x7F) {
			return ef__err(id, EF_EINVAL,
				       "%s: byte %zu: control character 0x%02X",
				       KEY_OWNER_FIELD, i, c);
		}
	}
	return EF_OK;
}

int key_owner_from_key(uint64_t id, const char *text, size_t len,
		       key_part *out)
{
	char raw[EF_OWNER_KEY_MAX + 1];
	key_view v = {text, len};
	size_t i = 0;
	long n;
	int rc;

	out->len = 0;
	out->s[0] = '\0';
	if (len == 0 || len > EF_OWNER_KEY_MAX)
		return ef__err(id, EF_EINVAL, "%s: %s", KEY_OWNER_FIELD,
			       len ? "longer than an owner's key" : "empty");
	if ((rc = key_escapes_check(id, v)) != EF_OK)
		return rc;
	/* escapes are ASCII: the key is UTF-8 if and only if the owner is */
	if (!utf8_valid((const unsigned char *)text, len, &i))
		return ef__err(id, EF_EINVAL, "%s: invalid UTF-8 at byte %zu",
			       KEY_OWNER_FIELD, i);
	i = 0;
	n = key_unescape(v, raw, sizeof(raw));
	assert(n >= 0); /* key_escapes_check let only valid escapes pass */
	rc = key_owner_n(id, KEY_OWNER_FIELD, raw, (size_t)n, out);
	if (rc != EF_OK)
		return rc;
	if (out->len == len && memcmp(out->s, text, len) == 0)
		return EF_OK;
	/* canonicalization changed it: trimmed, or letters lowercased */
	while (out->len == len && i < len && out->s[i] == text[i])
		i++;
	out->len = 0;
	out->s[0] = '\0';
	if (i < len && text[i] >= 'A' && text[i] <= 'Z')
		return ef__err(id, EF_EINVAL,
			       "%s: byte %zu: an upper-case letter (owners "
			       "are lower case: the key would name another "
			       "owner's feed)", KEY_OWNER_FIELD, i);
	return ef__err(id, EF_EINVAL,
		       "%s: white space (%%20) at its start or end (owners "
		       "are trimmed: the key would name another owner's "
		       "feed)", KEY_OWNER_FIELD);
}

int key_owner(uint64_t id, const char *field, const char *text, key_part *out)
{
	return key_owner_n(id, field, text, text ? strlen(text) : 0, out);
}

int key_reservation_n(uint64_t id, const char *field, const char *text,
		      size_t len, key_part *out)
{
	if (!text) {
		out->len = 0;
		out->s[0] = '\0';
		return ef__err(id, EF_EINVAL, "%s: missing", field);
	}
	return part_make(id, field, (const unsigned char *)text, len, 0,
			 EF_RESERVATION_KEY_MAX, 0, out);
}

int key_reservation(uint64_t id, const char *field, const char *text,
		    key_part *out)
{
	return key_reservation_n(id, field, text, text ? strlen(text) : 0, out);
}

int key_created_sort(int64_t created_ms, char out[KEY_SORT_LEN + 1])
{
	if (created_ms < 0 || created_ms > EF_CREATED_MAX)
		return EF_EINVAL;
	snprintf(out, KEY_SORT_LEN + 1, "%013" PRId64,
		 (int64_t)EF_CREATED_MAX - created_ms);
	return EF_OK;
}

int key_created_from_sort(const char *sort, size_t len, int64_t *created_ms)
{
	int64_t v = 0;

	if (len != KEY_SORT_LEN)
		return EF_EINVAL;
	for (size_t i = 0; i < KEY_SORT_LEN; i++) { /* once per entry read */
		unsigned d = (unsigned)(unsigned char)sort[i] - '0';

		if (d > 9)
			return EF_EINVAL;
		v = v * 10 + (int64_t)d;
	}
	*created_ms = EF_CREATED_MAX - v;
	return EF_OK;
}

/* Append pieces into @k; the callers' sizes are bounded by the part limits,
 * so the total always fits KEY_MAX (asserted by the tests at the limits). */
static void kb_cat(key_buf *k, const char *s, size_t n)
{
	if (k->len + n > KEY_MAX)
		n = KEY_MAX - k->len; /* unreachable with valid parts */
	memcpy(k->s + k->len, s, n);
	k->len += n;
	k->s[k->len] = '\0';
}

static void kb_start(key_buf *k, const char *prefix)
{
	k->len = 0;
	k->s[0] = '\0';
	kb_cat(k, prefix, strlen(prefix));
}

void key_entry_prefix(key_buf *k, const key_part *owner)
{
	kb_start(k, KEY_P_ENTRY);
	kb_cat(k, owner->s, owner->len);
	kb_cat(k, ":", 1);
}

void key_entry(key_buf *k, const key_part *owner, const char *sort,
	       const key_part *rid)
{
	key_entry_prefix(k, owner);
	kb_cat(k, sort, KEY_SORT_LEN);
	kb_cat(k, ":", 1);
	kb_cat(k, rid->s, rid->len);
}

static void key_pair(key_buf *k, const char *prefix, const key_part *owner,
		     const key_part *rid)
{
	kb_start(k, prefix);
	kb_cat(k, owner->s, owner->len);
	kb_cat(k, ":", 1);
	if (rid)
		kb_cat(k, rid->s, rid->len);
}

/* A page builds one of these per entry (the IP's associated data), so it
 * is three copies and one terminator, not four appends. */
void key_pair_views(key_buf *k, const char *prefix, key_view owner,
		    key_view rid)
{
	size_t pl = strlen(prefix);
	char *p = k->s;

	if (pl + owner.len + 1 + rid.len > KEY_MAX) { /* unreachable with valid
							* parts: as kb_cat */
		kb_start(k, prefix);
		kb_cat(k, owner.p, owner.len);
		kb_cat(k, ":", 1);
		kb_cat(k, rid.p, rid.len);
		return;
	}
	memcpy(p, prefix, pl);
	p += pl;
	memcpy(p, owner.p, owner.len);
	p += owner.len;
	*p++ = ':';
	memcpy(p, rid.p, rid.len);
	p += rid.len;
	*p = '\0';
	k->len = (size_t)(p - k->s);
}

void key_index(key_buf *k, const key_part *owner, const key_part *rid)
{
	key_pair(k, KEY_P_INDEX, owner, rid);
}

void key_unread(key_buf *k, const key_part *owner, const key_part *rid)
{
	key_pair(k, KEY_P_UNREAD, owner, rid);
}

void key_unread_prefix(key_buf *k, const key_part *owner)
{
	key_pair(k, KEY_P_UNREAD, owner, NULL);
}

void key_part_set(key_part *p, key_view v)
{
	assert(v.len <= EF_OWNER_KEY_MAX);
	memcpy(p->s, v.p, v.len);
	p->s[v.len] = '\0';
	p->len = v.len;
}

void key_buf_set(key_buf *k, const void *key, size_t len)
{
	assert(len <= KEY_MAX);
	memcpy(k->s, key, len);
	k->s[len] = '\0';
	k->len = len;
}

void key_legacy(key_buf *k, const key_part *owner)
{
	kb_start(k, KEY_P_LEGACY);
	kb_cat(k, owner->s, owner->len);
}

void key_count(key_buf *k, const key_part *owner)
{
	kb_start(k, KEY_P_COUNT);
	kb_cat(k, owner->s, owner->len);
}

void key_meta(key_buf *k, const char *name)
{
	kb_start(k, KEY_P_META);
	kb_cat(k, name, strlen(name));
}

long key_unescape(key_view v, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c == '%') {
			int hi, lo;

			if (v.len - i < 3)
				return -1;
			hi = hexval(v.p[i + 1]);
			lo = hexval(v.p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (!needs_escape(c))
				return -1; /* only the three escapes exist */
			i += 2;
		} else if (needs_escape(c) || c < 0x20 || c == 0x7F) {
			return -1;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	if (cap == 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

int key_view_valid(key_view v)
{
	char tmp[EF_OWNER_KEY_MAX + 1];
	long n;

	if (v.len == 0 || v.len > EF_OWNER_KEY_MAX)
		return 0;
	n = key_unescape(v, tmp, sizeof(tmp));
	return n > 0 && utf8_valid((const unsigned char *)tmp, (size_t)n, NULL);
}

/* "<prefix><owner>:<rest>": the owner holds no raw ':' (it is escaped), so
 * the first ':' after the prefix ends it. */
static int split_owner(const void *key, size_t klen, const char *prefix,
		       key_view *owner, key_view *rest)
{
	const char *k = key;
	size_t plen = strlen(prefix);
	const char *colon;

	if (klen <= plen || memcmp(k, prefix, plen) != 0)
		return EF_EINVAL;
	k += plen, klen -= plen;
	colon = memchr(k, ':', klen);
	if (!colon)
		return EF_EINVAL;
	owner->p = k;
	owner->len = (size_t)(colon - k);
	rest->p = colon + 1;
	rest->len = klen - owner->len - 1;
	/* no key edgefeed writes has a longer owner; callers copy it into a
	 * key_part */
	return owner->len <= EF_OWNER_KEY_MAX && key_view_valid(*owner)
		       ? EF_OK
		       : EF_EINVAL;
}

static int rid_valid(key_view rid)
{
	return rid.len <= EF_RESERVATION_KEY_MAX && key_view_valid(rid);
}

int key_split_pair(const void *key, size_t klen, const char *prefix,
		   key_view *owner, key_view *rid)
{
	if (split_owner(key, klen, prefix, owner, rid) != EF_OK)
		return EF_EINVAL;
	return rid_valid(*rid) ? EF_OK : EF_EINVAL;
}

int key_split_entry(const void *key, size_t klen, key_view *owner,
		    key_view *sort, key_view *rid)
{
	key_view rest;
	int64_t ms;

	if (split_owner(key, klen, KEY_P_ENTRY, owner, &rest) != EF_OK)
		return EF_EINVAL;
	if (rest.len < KEY_SORT_LEN + 2 || rest.p[KEY_SORT_LEN] != ':')
		return EF_EINVAL;
	sort->p = rest.p;
	sort->len = KEY_SORT_LEN;
	rid->p = rest.p + KEY_SORT_LEN + 1;
	rid->len = rest.len - KEY_SORT_LEN - 1;
	if (key_created_from_sort(sort->p, sort->len, &ms) != EF_OK)
		return EF_EINVAL;
	return rid_valid(*rid) ? EF_OK : EF_EINVAL;
}

int key_split_entry_stored(const void *key, size_t klen, key_view *owner,
			   key_view *sort, key_view *rid)
{
	const char *k = key;
	const size_t plen = sizeof(KEY_P_ENTRY) - 1;
	const char *colon;
	size_t rest;

	if (klen <= plen || memcmp(k, KEY_P_ENTRY, plen) != 0)
		return EF_EINVAL;
	colon = memchr(k + plen, ':', klen - plen);
	if (!colon)
		return EF_EINVAL;
	owner->p = k + plen;
	owner->len = (size_t)(colon - owner->p);
	rest = klen - plen - owner->len - 1;
	if (owner->len == 0 || owner->len > EF_OWNER_KEY_MAX ||
	    rest < KEY_SORT_LEN + 2 || colon[1 + KEY_SORT_LEN] != ':')
		return EF_EINVAL;
	sort->p = colon + 1;
	sort->len = KEY_SORT_LEN;
	rid->p = colon + 2 + KEY_SORT_LEN;
	rid->len = rest - KEY_SORT_LEN - 1;
	return rid->len <= EF_RESERVATION_KEY_MAX ? EF_OK : EF_EINVAL;
}

/* The component of @key after @plen bytes of prefix, up to the next ':'
 * (@to_colon) or to the end, if it names an owner (key_owner_from_key's
 * one rule); else "-", where migrate quarantines what names none. */
static void group_part(const char *key, size_t klen, size_t plen,
		       int to_colon, store_val *g)
{
	const char *p = key + plen, *end = key + klen;
	const char *colon = to_colon ? memchr(p, ':', (size_t)(end - p)) : NULL;
	key_part canon;

	g->data = p;
	g->len = (size_t)((colon ? colon : end) - p);
	if (key_owner_from_key(EF__ERR_QUIET, g->data, g->len, &canon) !=
	    EF_OK) {
		g->data = "-";
		g->len = 1;
	}
}

static int has_p(const char *key, size_t klen, const char *p)
{
	size_t n = strlen(p);
	return klen >= n && memcmp(key, p, n) == 0;
}

int key_group(const void *key, size_t klen, store_val *g)
{
	static const char *const per_owner[] = {KEY_P_ENTRY, KEY_P_INDEX,
						KEY_P_UNREAD, KEY_P_QUARANTINE};
	const char *k = key;

	g->data = "";
	g->len = 0;
	if (has_p(k, klen, KEY_P_COUNT)) {
		group_part(k, klen, strlen(KEY_P_COUNT), 0, g);
		return EF_OK;
	}
	if (has_p(k, klen, KEY_P_LEGACY)) {
		group_part(k, klen, strlen(KEY_P_LEGACY), 0, g);
		return EF_OK;
	}
	for (size_t i = 0; i < sizeof(per_owner) / sizeof(*per_owner); i++)
		if (has_p(k, klen, per_owner[i])) {
			group_part(k, klen, strlen(per_owner[i]), 1, g);
			return EF_OK;
		}
	return EF_OK; /* meta: and anything else: the store's own group */
}

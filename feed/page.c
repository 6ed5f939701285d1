/*
 * page.c - ef_feed_page: newest-first pages with an opaque, stable cursor.
 *
 * The cursor names the position of the last entry returned (its createdSort
 * and escaped reservation id), so the next page starts strictly after it in
 * key order. Keys never move, so entries finalized between pages can neither
 * repeat an entry nor hide an older one.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "feed/iter.h"
#include "store/error.h"
#include "store/nowait.h"

#define CURSOR_VERSION '1'

typedef struct page_ctx {
	ef_store *st;
	key_part owner;
	int has_cursor;
	key_buf after;   /* entry key of the cursor position */
	size_t limit;
	int64_t now;
	ef_page *out;
} page_ctx;

static int cursor_encode(const store_val *k, size_t plen, char **out)
{
	/* the key past the owner prefix: "<sort>:<rid>" */
	const unsigned char *pos = (const unsigned char *)k->data + plen;
	size_t n = k->len - plen;
	unsigned char raw[KEY_MAX + 1];
	size_t cap = sodium_base64_ENCODED_LEN(
		n + 1, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

	raw[0] = CURSOR_VERSION;
	memcpy(raw + 1, pos, n);
	*out = ef__malloc(cap);
	if (!*out)
		return EF_ENOMEM;
	sodium_bin2base64(*out, cap, raw, n + 1,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return EF_OK;
}

static int cursor_decode(page_ctx *c, const char *cursor)
{
	unsigned char raw[KEY_MAX + 1];
	size_t n;
	key_buf k;
	key_view o, s, r;

	if (sodium_base642bin(raw, sizeof(raw), cursor, strlen(cursor), NULL,
			      &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n < 2 || raw[0] != CURSOR_VERSION)
		goto bad;
	key_entry_prefix(&k, &c->owner);
	if (k.len + n - 1 > KEY_MAX)
		goto bad;
	memcpy(k.s + k.len, raw + 1, n - 1);
	k.len += n - 1;
	k.s[k.len] = '\0';
	/* it must be a well-formed entry key of this owner */
	if (key_split_entry(k.s, k.len, &o, &s, &r) != EF_OK)
		goto bad;
	c->after = k;
	c->has_cursor = 1;
	return EF_OK;
bad:
	return ef__err(c->st->err_id, EF_EINVAL,
		       "cursor: not a cursor of this feed (pass the "
		       "nextCursor of an earlier page)");
}

void feed_entry_clear(ef_entry *e)
{
	/* one allocation holds the entry's strings (entry_strings) */
	free(e->reservation_id);
	memset(e, 0, sizeof(*e));
}

void ef_page_free(ef_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->count; i++)
		feed_entry_clear(&page->entries[i]);
	free(page->entries);
	free(page->next_cursor);
	memset(page, 0, sizeof(*page));
}

/* The strings of @e in one allocation: rid, then ip (if any), then the
 * payload (if any), each NUL-terminated. One malloc instead of three per
 * entry, and a page frees in one pass. */
static int entry_strings(ef_entry *e, const rec_entry *r, const char *ip,
			 const char *payload, size_t plen)
{
	size_t iplen = ip ? strlen(ip) : 0;
	size_t n = r->rid_len + 1 + (ip ? iplen + 1 : 0) +
		   (payload ? plen + 1 : 0);
	char *p = ef__malloc(n);

	if (!p)
		return EF_ENOMEM;
	e->reservation_id = p;
	memcpy(p, r->rid, r->rid_len);
	p += r->rid_len;
	*p++ = '\0';
	if (ip) {
		e->ip = p;
		memcpy(p, ip, iplen + 1);
		p += iplen + 1;
	}
	if (payload) {
		e->payload_json = p;
		memcpy(p, payload, plen);
		p[plen] = '\0';
	}
	return EF_OK;
}

/* Is the marker @uk there? Through @markers when given: the markers of one
 * owner are adjacent, and a cursor already on their page finds the next
 * one without a descent from the root. */
static int marker_exists(store_txn *t, store_cur *markers, const key_buf *uk)
{
	store_val k;
	int rc;

	if (!markers)
		return store_get(t, uk->s, uk->len, NULL);
	rc = store_cur_seek(markers, uk->s, uk->len, &k, NULL);
	if (rc == EF_OK && store_keycmp(&k, uk->s, uk->len) != 0)
		rc = EF_ENOTFOUND;
	return rc;
}

int feed_entry_fill(store_txn *t, ef_store *st, store_cur *markers,
		    struct ipseal_memo *memo, const store_val *k,
		    const store_val *v, int64_t now, ef_entry *e)
{
	rec_entry r;
	key_view ow, so, rid;
	key_buf uk;
	char ipbuf[64], *owned = NULL;
	const char *pt = NULL;
	size_t pn = 0;
	int rc, iprc;

	memset(e, 0, sizeof(*e));
	rc = rec_decode(v->data, v->len, &r);
	if (rc != EF_OK ||
	    key_split_entry_stored(k->data, k->len, &ow, &so, &rid))
		return ef__err(st->err_id, rc == EF_EVERSION ? rc : EF_ECORRUPT,
			       "record '%.*s': cannot decode", (int)k->len,
			       (const char *)k->data);
	e->created_ms = r.created_ms;
	rc = r.has_payload ? feed_payload_reveal(st, ow, rid, &r, now, &pt, &pn,
						 &owned)
			   : EF_OK;
	iprc = ip_reveal_entry_memo(st, memo, ow, rid, &r, now, ipbuf,
				    sizeof(ipbuf));
	if (rc == EF_OK && iprc != EF_ENOMEM)
		rc = entry_strings(e, &r, iprc == EF_OK ? ipbuf : NULL, pt, pn);
	else
		rc = EF_ENOMEM;
	free(owned);
	if (rc != EF_OK)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	if (r.unread != REC_UNREAD_UNKNOWN) { /* kept with the marker */
		e->unread = r.unread == REC_UNREAD_YES;
		return EF_OK;
	}
	key_pair_views(&uk, KEY_P_UNREAD, ow, rid);
	rc = marker_exists(t, markers, &uk);
	if (rc != EF_OK && rc != EF_ENOTFOUND) {
		feed_entry_clear(e);
		return rc;
	}
	e->unread = rc == EF_OK;
	return EF_OK;
}

/*
 * Move @it past the cursor. The cap counts every entry ahead of it, so in
 * general that is a walk; but when the owner's records are all of its feed
 * (no legacy element) and its count says they are no more than the cap,
 * none can be beyond it and the cursor's place is one seek away (*rank
 * stays 0: any rank is within the cap).
 */
static int page_seek(store_txn *t, page_ctx *c, feed_iter *it,
		     uint64_t *rank)
{
	uint64_t n;
	int rc;

	if (it->leg.n == 0) {
		rc = feed_count_get(t, &c->owner, &n);
		if (rc == EF_OK && n <= c->st->cfg.feed_cap) {
			/* the cursor's own key, then the page and one more */
			store_cur_hint(it->cur, c->limit + 2);
			return feed_iter_seek_after(it, &c->after);
		}
		if (rc != EF_OK && rc != EF_ENOTFOUND && rc != EF_ECORRUPT)
			return rc;
	}
	rc = EF_OK;
	while (rc == EF_OK && it->valid &&
	       store_keycmp(&it->k, c->after.s, c->after.len) <= 0) {
		(*rank)++;
		rc = feed_iter_next(it);
	}
	return rc;
}

static int page_txn(store_txn *t, void *p)
{
	page_ctx *c = p;
	ef_page *out = c->out;
	struct ipseal_memo *memo;
	store_cur *markers;
	feed_iter it;
	store_val last = {0};
	uint64_t rank = 0;
	int rc;

	ef_page_free(out); /* a re-run starts clean */
	out->entries = ef__calloc(c->limit, sizeof(*out->entries));
	if (!out->entries)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	if (ipseal_memo_new(&memo) != EF_OK)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	rc = store_cur_open(t, &markers);
	if (rc != EF_OK) {
		ipseal_memo_free(memo);
		return rc;
	}
	/* a page reads its limit, and one more to know if there is a next:
	 * from the start, or (with a cursor) once it has moved past it */
	rc = feed_iter_open(&it, t, c->st, &c->owner, c->now,
			    c->has_cursor ? 0 : c->limit + 1);
	if (rc != EF_OK) {
		store_cur_close(markers);
		ipseal_memo_free(memo);
		return rc;
	}
	if (c->has_cursor)
		rc = page_seek(t, c, &it, &rank);
	while (rc == EF_OK && feed_iter_returnable(&it, c->st, rank, c->now)) {
		if (out->count == c->limit) {
			/* another returnable entry follows: hand a cursor
			 * (the snapshot and the iterator keep @last valid) */
			rc = cursor_encode(&last, it.prefix.len,
					   &out->next_cursor);
			if (rc != EF_OK)
				rc = ef__err(c->st->err_id, rc, "out of memory");
			break;
		}
		rc = feed_entry_fill(t, c->st, markers, memo, &it.k, &it.v,
				     c->now, &out->entries[out->count]);
		if (rc != EF_OK)
			break;
		out->count++;
		last = it.k;
		rank++;
		rc = feed_iter_next(&it);
	}
	feed_iter_close(&it);
	store_cur_close(markers);
	ipseal_memo_free(memo);
	if (rc != EF_OK)
		ef_page_free(out);
	return rc;
}

int ef_feed_page(ef_store *st, const char *owner, const char *cursor,
		 size_t limit, ef_page *out)
{
	page_ctx c;
	int rc;

	if (!st || !out)
		return EF_EINVAL;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.out = out;
	c.limit = limit ? limit : EF_PAGE_LIMIT_DEFAULT;
	if (c.limit > EF_PAGE_LIMIT_MAX)
		return ef__err(st->err_id, EF_EINVAL,
			       "limit: %zu is outside 1..%u", limit,
			       EF_PAGE_LIMIT_MAX);
	rc = key_owner(st->err_id, "owner", owner, &c.owner);
	if (rc == EF_OK && cursor && *cursor)
		rc = cursor_decode(&c, cursor);
	if (rc != EF_OK)
		return rc;
	c.now = feed_now(st);
	rc = store_read_in(st->env, &(store_val){c.owner.s, c.owner.len},
			   page_txn, &c);
	if (rc != EF_OK)
		ef_page_free(out);
	else
		ef__err_clear(st->err_id);
	return rc;
}

int ef_feed_page_try(ef_store *st, const char *owner, const char *cursor,
		     size_t limit, ef_page *out)
{
	int rc;

	store_nowait_begin();
	rc = ef_feed_page(st, owner, cursor, limit, out);
	/* a refusal deep down may have been taken for "no IP": not a page */
	if (store_nowait_end() && rc != EF_EINVAL) {
		if (rc == EF_OK)
			ef_page_free(out);
		rc = ef__err(st->err_id, EF_EBUSY, "the page cannot be read "
			     "without waiting for a lock");
	}
	return rc;
}

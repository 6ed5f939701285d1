/*
 * get.c - one entry by reservation id, through the uniqueness index.
 */
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "feed/legacy.h"
#include "store/error.h"

typedef struct get_ctx {
	ef_store *st;
	key_part owner, rid;
	int64_t now;
	ef_entry *out;
} get_ctx;

/* Fill c->out from entry key @k and record @v, if not stale. */
static int get_fill(store_txn *t, get_ctx *c, const store_val *k,
		    const store_val *v)
{
	int rc;

	c->out = ef__calloc(1, sizeof(*c->out));
	if (!c->out)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	rc = feed_entry_fill(t, c->st, NULL, NULL, k, v, c->now, c->out);
	if (rc == EF_OK && feed_is_stale(c->st, c->out->created_ms, c->now))
		rc = EF_ENOTFOUND;
	return rc;
}

/* No record: the owner's legacy array may hold it (dual-read). */
static int get_legacy(store_txn *t, get_ctx *c)
{
	legacy_array a;
	const legacy_elem *e;
	store_val k, v;
	int rc = legacy_load(t, c->st, &c->owner, c->now, &a);

	if (rc != EF_OK)
		return rc;
	e = legacy_find(&a, &c->rid);
	rc = EF_ENOTFOUND;
	if (e) {
		k.data = e->ekey.s;
		k.len = e->ekey.len;
		v.data = e->it.rec;
		v.len = e->it.rec_len;
		rc = get_fill(t, c, &k, &v);
	}
	legacy_free(&a);
	return rc;
}

static int get_txn(store_txn *t, void *p)
{
	get_ctx *c = p;
	char sort[KEY_SORT_LEN + 1];
	key_buf k;
	store_val v, kv;
	int rc;

	ef_entry_free(c->out);
	c->out = NULL;
	key_index(&k, &c->owner, &c->rid);
	rc = store_get(t, k.s, k.len, &v);
	if (rc == EF_OK && v.len != KEY_SORT_LEN)
		return ef__err(c->st->err_id, EF_ECORRUPT,
			       "index '%s': value is not a createdSort", k.s);
	if (rc == EF_OK) {
		memcpy(sort, v.data, KEY_SORT_LEN);
		sort[KEY_SORT_LEN] = '\0';
		key_entry(&k, &c->owner, sort, &c->rid);
		rc = store_get(t, k.s, k.len, &v);
		kv.data = k.s;
		kv.len = k.len;
		if (rc == EF_OK)
			rc = get_fill(t, c, &kv, &v);
	} else if (rc == EF_ENOTFOUND) {
		rc = get_legacy(t, c);
	}
	if (rc == EF_ENOTFOUND)
		return ef__err(c->st->err_id, EF_ENOTFOUND,
			       "reservation '%s' is not in the feed of '%s'",
			       c->rid.s, c->owner.s);
	return rc;
}

int ef_get_entry(ef_store *st, const char *owner, const char *reservation_id,
		 ef_entry **out)
{
	get_ctx c = {0};
	int rc;

	if (!out)
		return EF_EINVAL;
	*out = NULL;
	if (!st)
		return EF_EINVAL;
	c.st = st;
	rc = key_owner(st->err_id, "owner", owner, &c.owner);
	if (rc == EF_OK)
		rc = key_reservation(st->err_id, "reservation_id",
				     reservation_id, &c.rid);
	if (rc != EF_OK)
		return rc;
	c.now = feed_now(st);
	rc = store_read_in(st->env, &(store_val){c.owner.s, c.owner.len},
			   get_txn, &c);
	if (rc != EF_OK) {
		ef_entry_free(c.out);
		return rc;
	}
	ef__err_clear(st->err_id);
	*out = c.out;
	return EF_OK;
}

void ef_entry_free(ef_entry *e)
{
	if (!e)
		return;
	feed_entry_clear(e);
	free(e);
}

int ef_canonical_owner(const char *owner, char *buf, size_t cap)
{
	key_part p;
	key_view v;

	if (!buf || key_owner(EF__ERR_NOSTORE, "owner", owner, &p) != EF_OK)
		return EF_EINVAL;
	v.p = p.s;
	v.len = p.len;
	return key_unescape(v, buf, cap) < 0 ? EF_EINVAL : EF_OK;
}

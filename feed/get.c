/*
 * get.c - one entry by reservation id, through the uniqueness index.
 */
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"

typedef struct get_ctx {
	ef_store *st;
	key_part owner, rid;
	int64_t now;
	ef_entry *out;
} get_ctx;

static int get_txn(store_txn *t, void *p)
{
	get_ctx *c = p;
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
	if (rc != EF_OK)
		goto missing;
	{
		char sort[KEY_SORT_LEN + 1];
		memcpy(sort, v.data, KEY_SORT_LEN);
		sort[KEY_SORT_LEN] = '\0';
		key_entry(&k, &c->owner, sort, &c->rid);
	}
	rc = store_get(t, k.s, k.len, &v);
	if (rc != EF_OK)
		goto missing;
	c->out = calloc(1, sizeof(*c->out));
	if (!c->out)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	kv.data = k.s;
	kv.len = k.len;
	rc = feed_entry_fill(t, c->st, &kv, &v, c->now, c->out);
	if (rc == EF_OK && feed_is_stale(c->st, c->out->created_ms, c->now))
		rc = EF_ENOTFOUND;
	if (rc == EF_ENOTFOUND)
		goto missing;
	return rc;
missing:
	if (rc != EF_ENOTFOUND)
		return rc;
	return ef__err(c->st->err_id, EF_ENOTFOUND,
		       "reservation '%s' is not in the feed of '%s'",
		       c->rid.s, c->owner.s);
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
	rc = store_read(st->env, get_txn, &c);
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

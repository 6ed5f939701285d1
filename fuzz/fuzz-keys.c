/*
 * fuzz-keys.c - libFuzzer target: the key codec (feed/keys.c).
 * Properties: canonicalization is idempotent; escaping round-trips; a key
 * built from valid parts always splits back into them; splitting arbitrary
 * bytes never reads out of bounds; every key of an owner is in the
 * owner's group (key_group: what keeps an owner on one cluster slot), and
 * the group of arbitrary bytes is a part of them, or "-", or empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed/keys.h"
#include "store/store.h"

/* Is the group of @k (@n bytes) exactly the owner @o? */
static int in_owner_group(const void *k, size_t n, const key_part *o)
{
	store_val g;

	return key_group(k, n, &g) == EF_OK && g.len == o->len &&
	       memcmp(g.data, o->s, o->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	key_part o, r, o2;
	key_view ov, sv, rv;
	key_buf k;
	char raw[KEY_MAX + 1];
	size_t half = size / 2;

	/* arbitrary bytes as keys of each family */
	if (key_split_entry(data, size, &ov, &sv, &rv) == EF_OK &&
	    key_split_entry_stored(data, size, &ov, &sv, &rv) != EF_OK)
		abort(); /* the trusting split accepts what the strict one does */
	key_split_entry_stored(data, size, &ov, &sv, &rv);
	key_split_pair(data, size, KEY_P_INDEX, &ov, &rv);
	key_split_pair(data, size, KEY_P_UNREAD, &ov, &rv);
	{
		store_val g;
		if (key_group(data, size, &g) != EF_OK ||
		    (g.len && !(g.len == 1 && memcmp(g.data, "-", 1) == 0) &&
		     ((const uint8_t *)g.data < data ||
		      (const uint8_t *)g.data + g.len > data + size)))
			abort(); /* a view into the key, "-" or "" */
	}
	/* the two halves as an owner and a reservation id */
	if (key_owner_n(0, "owner", (const char *)data, half, &o) != EF_OK ||
	    key_reservation_n(0, "rid", (const char *)data + half, size - half,
			      &r) != EF_OK)
		return 0;
	ov.p = o.s;
	ov.len = o.len;
	if (key_unescape(ov, raw, sizeof(raw)) < 0)
		abort();
	if (key_owner(0, "owner", raw, &o2) != EF_OK || o2.len != o.len ||
	    memcmp(o2.s, o.s, o.len) != 0)
		abort(); /* canonical form is a fixed point */
	key_entry(&k, &o, "0123456789012", &r);
	if (key_split_entry(k.s, k.len, &ov, &sv, &rv) != EF_OK ||
	    ov.len != o.len || memcmp(ov.p, o.s, o.len) != 0 ||
	    rv.len != r.len || memcmp(rv.p, r.s, r.len) != 0)
		abort();
	/* every key of the owner is in its group */
	if (!in_owner_group(k.s, k.len, &o))
		abort();
	key_index(&k, &o, &r);
	if (!in_owner_group(k.s, k.len, &o))
		abort();
	key_unread(&k, &o, &r);
	if (!in_owner_group(k.s, k.len, &o))
		abort();
	key_legacy(&k, &o);
	if (!in_owner_group(k.s, k.len, &o))
		abort();
	key_count(&k, &o);
	if (!in_owner_group(k.s, k.len, &o))
		abort();
	return 0;
}

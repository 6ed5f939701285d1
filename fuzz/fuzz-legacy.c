/*
 * fuzz-legacy.c - libFuzzer target: the legacy array parser and element
 * conversion (feed/legacy.c), as dual-read and migration run them.
 * Properties: never crashes or leaks; every element is accounted for
 * (converted, merged as a duplicate, or an issue).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/legacy.h"
#include "fuzz/fuzz-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ef_store *st = fuzz_store();
	legacy_array a;
	key_part owner;
	size_t lost = 0;

	if (key_owner(st->err_id, "owner", "fuzz@example.com", &owner) != EF_OK)
		abort();
	if (legacy_parse(st, &owner, data, size, 1790000000000LL, 0, &a) !=
	    EF_OK)
		return 0; /* out of memory only */
	for (size_t i = 0; i < a.nissues; i++)
		lost += !a.issues[i].kept && a.issues[i].index >= 0;
	/* converted + merged duplicates + quarantined elements = all */
	if (a.total && a.n + a.duplicates + lost != a.total)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		rec_entry r;
		if (rec_decode(a.elems[i].it.rec, a.elems[i].it.rec_len, &r) !=
		    EF_OK)
			abort();
	}
	legacy_free(&a);
	return 0;
}

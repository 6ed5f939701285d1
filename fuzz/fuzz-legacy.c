/*
 * fuzz-legacy.c - libFuzzer target: the legacy array parser and element
 * conversion (feed/legacy.c), as dual-read and migration run them.
 * Properties: never crashes or leaks; every element is accounted for
 * (converted, merged as a duplicate, or an issue); no converted record
 * keeps an IP address in plaintext (payloads hold them sealed), and no
 * reason quotes one; the value as the store keeps it (legacy_value_encode)
 * is sealed or holds no address, reads back now, and shows no address once
 * every window is past retention (issue 11).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "feed/ipscan.h"
#include "feed/legacy.h"
#include "fuzz/fuzz-store.h"

#define NOW_MS 1790000000000LL
#define LATER_MS (NOW_MS + 3650LL * 24 * 3600 * 1000)

/* The stored form of the value: sealed or without an address; read now
 * it is there, read when every window is past retention it shows none. */
static void check_stored(ef_store *st, const key_part *owner,
			 const uint8_t *data, size_t size)
{
	uint8_t *enc, *view;
	size_t elen, vlen;
	key_buf lk;
	json_t *j;
	int rc;

	key_legacy(&lk, owner);
	rc = legacy_value_encode(st, &lk, data, size, NOW_MS, &enc, &elen);
	if (rc != EF_OK) {
		if (rc != EF_ENOMEM)
			abort();
		return;
	}
	if (legacy_value_needs_seal(enc, elen) == 1)
		abort();
	rc = legacy_value_view(st, &lk, enc, elen, NOW_MS, &view, &vlen);
	if (rc != EF_OK && rc != EF_ENOMEM)
		abort(); /* within retention, every form reads */
	free(view);
	rc = legacy_value_view(st, &lk, enc, elen, LATER_MS, &view, &vlen);
	if (rc == EF_OK) {
		j = json_loadb((const char *)view, vlen, 0, NULL);
		if (!j || ipscan_json(j))
			abort();
		json_decref(j);
		free(view);
	} else if (rc != EF_ENOTFOUND && rc != EF_ENOMEM) {
		abort();
	}
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ef_store *st = fuzz_store();
	legacy_array a;
	key_part owner;
	size_t lost = 0;

	if (key_owner(st->err_id, "owner", "fuzz@example.com", &owner) != EF_OK)
		abort();
	check_stored(st, &owner, data, size);
	if (legacy_parse(st, &owner, data, size, NOW_MS, 0, &a) != EF_OK)
		return 0; /* out of memory only */
	for (size_t i = 0; i < a.nissues; i++) {
		lost += !a.issues[i].kept && a.issues[i].index >= 0;
		if (ipscan_text(a.issues[i].reason, strlen(a.issues[i].reason)))
			abort();
	}
	/* converted + merged duplicates + quarantined elements = all */
	if (a.total && a.n + a.duplicates + lost != a.total)
		abort();
	for (size_t i = 0; i < a.n; i++) {
		rec_entry r;
		if (rec_decode(a.elems[i].it.rec, a.elems[i].it.rec_len, &r) !=
			    EF_OK ||
		    ipscan_text(r.payload, r.payload_len))
			abort();
	}
	legacy_free(&a);
	return 0;
}

/*
 * fuzz-record.c - libFuzzer target: the entry record decoder
 * (feed/record.c). Property: decoding arbitrary bytes never reads out of
 * bounds, and whatever decodes re-encodes (as the current version) into
 * bytes that decode to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rec_entry a, b;
	uint8_t *buf;
	size_t len;

	if (rec_decode(data, size, &a) != EF_OK)
		return 0;
	if (a.ip_kind != REC_IP_NONE && a.ip_kind != REC_IP_SEALED)
		return 0; /* version 1 plaintext IPs are never written again */
	if (rec_encode(&a, &buf, &len) != EF_OK)
		abort();
	if (rec_decode(buf, len, &b) != EF_OK || b.created_ms != a.created_ms ||
	    b.rid_len != a.rid_len || memcmp(b.rid, a.rid, a.rid_len) != 0 ||
	    b.payload_len != a.payload_len ||
	    (a.payload_len && memcmp(b.payload, a.payload, a.payload_len)))
		abort();
	free(buf);
	return 0;
}

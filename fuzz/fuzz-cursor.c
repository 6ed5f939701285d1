/*
 * fuzz-cursor.c - libFuzzer target: the page cursor decoder, through
 * ef_feed_page on a small store. Property: any cursor text gives EF_OK or
 * EF_EINVAL, never a crash, and a page never holds more than its limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ef_store *st = fuzz_store();
	char *cursor = malloc(size + 1);
	ef_page p;
	int rc;

	if (!cursor)
		return 0;
	memcpy(cursor, data, size);
	cursor[size] = '\0';
	rc = ef_feed_page(st, "fuzz@example.com", cursor, 3, &p);
	if (rc != EF_OK && rc != EF_EINVAL)
		abort();
	if (rc == EF_OK && p.count > 3)
		abort();
	ef_page_free(&p);
	free(cursor);
	return 0;
}

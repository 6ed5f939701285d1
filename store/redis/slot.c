/*
 * slot.c - the hash slot of a key (slot.h), as the Redis Cluster
 * specification defines it.
 */
#include <string.h>

#include "store/redis/slot.h"

uint16_t rslot_crc16(const void *p, size_t len)
{
	const unsigned char *s = p;
	unsigned crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (unsigned)s[i] << 8;
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
	}
	return (uint16_t)crc;
}

void rslot_tag(const void *key, size_t len, size_t *off, size_t *n)
{
	const char *k = key;
	const char *open = memchr(k, '{', len);
	const char *close;

	*off = 0;
	*n = len;
	if (!open)
		return;
	close = memchr(open + 1, '}', len - (size_t)(open + 1 - k));
	if (!close || close == open + 1)
		return; /* no '}', or "{}": the whole key is hashed */
	*off = (size_t)(open + 1 - k);
	*n = (size_t)(close - open - 1);
}

unsigned rslot_of(const void *key, size_t len)
{
	size_t off, n;

	rslot_tag(key, len, &off, &n);
	return rslot_crc16((const char *)key + off, n) & (RSLOT_COUNT - 1);
}

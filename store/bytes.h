/*
 * bytes.h - big-endian integers of the stored formats (records, the
 * keyring, sealed bytes, legacy envelopes, entry counts): one pair of
 * helpers below every module that writes them.
 */
#ifndef EF_STORE_BYTES_H
#define EF_STORE_BYTES_H

#include <stdint.h>

/* Write the low @n bytes of @v at @p, most significant first; returns the
 * byte after them. */
static inline uint8_t *be_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* Read @n (<= 8) bytes at @p, most significant first. */
static inline uint64_t be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

#endif

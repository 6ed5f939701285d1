/*
 * record.c - the versioned entry record.
 *
 * Version 1 layout (all integers big-endian):
 *   u8  version (1)
 *   u8  flags   (bit 0: has payload)
 *   i64 created_ms
 *   u8  ip kind (0 none, 4, 6) then 0, 4 or 16 bytes of address
 *   u16 reservation id length, then its bytes (raw, not escaped)
 *   u32 payload length, then its bytes
 */
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"

#define FLAG_PAYLOAD 0x1

static size_t ip_bytes(uint8_t kind)
{
	return kind == REC_IP_V4 ? 4 : kind == REC_IP_V6 ? 16 : 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int rec_encode(const rec_entry *e, uint8_t **out, size_t *len)
{
	size_t ipn = ip_bytes(e->ip_kind);
	size_t n;
	uint8_t *p;

	*out = NULL;
	/* the callers bound rid (160 escaped bytes) and payload (16 KiB), so
	 * neither field overflows its length prefix nor the sum size_t */
	if (e->rid_len > UINT16_MAX || e->payload_len > UINT32_MAX)
		return EF_EINVAL;
	n = 2 + 8 + 1 + ipn + 2 + e->rid_len + 4 + e->payload_len;
	p = malloc(n);
	if (!p)
		return EF_ENOMEM;
	*out = p;
	*len = n;
	*p++ = REC_VERSION;
	*p++ = e->has_payload ? FLAG_PAYLOAD : 0;
	p = put_be(p, (uint64_t)e->created_ms, 8);
	*p++ = e->ip_kind;
	if (ipn)
		memcpy(p, e->ip, ipn);
	p += ipn;
	p = put_be(p, e->rid_len, 2);
	memcpy(p, e->rid, e->rid_len);
	p += e->rid_len;
	p = put_be(p, e->payload_len, 4);
	if (e->payload_len)
		memcpy(p, e->payload, e->payload_len);
	return EF_OK;
}

int rec_decode(const void *buf, size_t len, rec_entry *out)
{
	const uint8_t *p = buf, *end = p + len;
	size_t ipn, n;

	memset(out, 0, sizeof(*out));
	if (len < 1)
		return EF_ECORRUPT;
	if (p[0] != REC_VERSION)
		return p[0] > REC_VERSION ? EF_EVERSION : EF_ECORRUPT;
	if (len < 2 + 8 + 1)
		return EF_ECORRUPT;
	out->has_payload = (p[1] & FLAG_PAYLOAD) != 0;
	out->created_ms = (int64_t)get_be(p + 2, 8);
	out->ip_kind = p[10];
	if (out->ip_kind != REC_IP_NONE && out->ip_kind != REC_IP_V4 &&
	    out->ip_kind != REC_IP_V6)
		return EF_ECORRUPT;
	p += 11;
	ipn = ip_bytes(out->ip_kind);
	if ((size_t)(end - p) < ipn + 2)
		return EF_ECORRUPT;
	out->ip = ipn ? p : NULL;
	p += ipn;
	n = (size_t)get_be(p, 2);
	p += 2;
	if ((size_t)(end - p) < n + 4 || n == 0)
		return EF_ECORRUPT;
	out->rid = (const char *)p;
	out->rid_len = n;
	p += n;
	n = (size_t)get_be(p, 4);
	p += 4;
	if ((size_t)(end - p) != n)
		return EF_ECORRUPT;
	out->payload = (const char *)p;
	out->payload_len = n;
	if (out->created_ms < 0 || out->created_ms > EF_CREATED_MAX)
		return EF_ECORRUPT;
	return EF_OK;
}

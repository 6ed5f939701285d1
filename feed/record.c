/*
 * record.c - the versioned entry record.
 *
 * Version 2, the one written (all integers big-endian):
 *   u8  version (2)
 *   u8  flags   (bit 0: has payload)
 *   i64 created_ms
 *   u8  ip form: 0 none, or 'S' sealed, then
 *       u8 length n and n bytes made by ipseal_seal (ip.c says what is
 *       sealed: the address kind and 16 address bytes, so IPv4 and IPv6
 *       look alike)
 *   u16 reservation id length, then its bytes (raw, not escaped)
 *   u32 payload length, then its bytes
 *   with flag bit 1 (legacy data whose payload holds IP addresses, see
 *   rec_entry.psealed): u32 length, then ipseal_seal bytes of the original
 *   payload; the payload before it is then the one without addresses
 *   flag bit 2: the unread state is known, and bit 3 says it (set: read,
 *   no marker; clear: unread, a marker), kept in the transaction that
 *   writes or deletes the marker (rec_entry.unread); without bit 2 a read
 *   looks the marker up, as before
 *
 * Version 1, still read (written before IPs were sealed):
 *   the same, except the ip form: 0 none, 4 or 6, then 4 or 16 bytes of
 *   plaintext address. Reads treat it as before (shown while within
 *   retention); sweep rewrites such records as version 2.
 *
 * rec_encode never writes a plaintext address: IPs reach LMDB sealed only.
 */
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "store/bytes.h"
#include "feed/feed.h"

#define FLAG_PAYLOAD 0x1
#define FLAG_PSEALED 0x2
#define FLAG_UNREAD_KNOWN 0x4 /* the next bit says the marker's state */
#define FLAG_READ 0x8         /* with FLAG_UNREAD_KNOWN: no marker */
#define FLAGS_UNREAD (FLAG_UNREAD_KNOWN | FLAG_READ)
#define HEAD_LEN (1 + 1 + 8 + 1) /* version, flags, created_ms, ip form */

static size_t ip_bytes(uint8_t kind)
{
	return kind == REC_IP_V4 ? 4 : kind == REC_IP_V6 ? 16 : 0;
}

int rec_encode(const rec_entry *e, uint8_t **out, size_t *len)
{
	size_t ipn = e->ip_kind == REC_IP_SEALED ? 1 + e->ip_len : 0;
	size_t n;
	uint8_t *p;

	*out = NULL;
	/* the callers bound rid (160 escaped bytes) and payload (16 KiB), so
	 * neither field overflows its length prefix nor the sum size_t */
	if (e->rid_len > UINT16_MAX || e->payload_len > UINT32_MAX ||
	    (e->ip_kind != REC_IP_NONE && e->ip_kind != REC_IP_SEALED) ||
	    (e->ip_kind == REC_IP_SEALED && e->ip_len > UINT8_MAX))
		return EF_EINVAL;
	if (e->psealed_len > UINT32_MAX || (e->psealed_len && !e->has_payload))
		return EF_EINVAL;
	n = HEAD_LEN + ipn + 2 + e->rid_len + 4 + e->payload_len +
	    (e->psealed_len ? 4 + e->psealed_len : 0);
	p = ef__malloc(n);
	if (!p)
		return EF_ENOMEM;
	*out = p;
	*len = n;
	*p++ = REC_VERSION;
	*p++ = (uint8_t)((e->has_payload ? FLAG_PAYLOAD : 0) |
			 (e->psealed_len ? FLAG_PSEALED : 0) |
			 (e->unread == REC_UNREAD_YES ? FLAG_UNREAD_KNOWN : 0) |
			 (e->unread == REC_UNREAD_NO ? FLAGS_UNREAD : 0));
	p = be_put(p, (uint64_t)e->created_ms, 8);
	*p++ = e->ip_kind;
	if (ipn) {
		*p++ = (uint8_t)e->ip_len;
		memcpy(p, e->ip, e->ip_len);
		p += e->ip_len;
	}
	p = be_put(p, e->rid_len, 2);
	memcpy(p, e->rid, e->rid_len);
	p += e->rid_len;
	p = be_put(p, e->payload_len, 4);
	if (e->payload_len)
		memcpy(p, e->payload, e->payload_len);
	p += e->payload_len;
	if (e->psealed_len) {
		p = be_put(p, e->psealed_len, 4);
		memcpy(p, e->psealed, e->psealed_len);
	}
	return EF_OK;
}

/* The ip form at @p (up to @end): sets ip_kind, ip, ip_len; returns the
 * bytes it takes, or 0 if malformed. */
static size_t decode_ip(const uint8_t *p, const uint8_t *end, rec_entry *out)
{
	const uint8_t *start = p;
	size_t n;

	out->ip_kind = *p++;
	if (out->ip_kind == REC_IP_NONE)
		return 1;
	if (out->version == 1) {
		n = ip_bytes(out->ip_kind);
		if (n == 0 || (size_t)(end - p) < n)
			return 0;
	} else {
		if (out->ip_kind != REC_IP_SEALED || p == end)
			return 0;
		n = *p++;
		if (n == 0 || (size_t)(end - p) < n)
			return 0;
	}
	out->ip = p;
	out->ip_len = n;
	return (size_t)(p - start) + n;
}

int rec_unread_state(const uint8_t *rec, size_t len)
{
	rec_entry r;

	return rec_decode(rec, len, &r) == EF_OK ? r.unread : REC_UNREAD_UNKNOWN;
}

int rec_set_unread(uint8_t *rec, size_t len, int unread)
{
	if (len < HEAD_LEN || rec[0] != REC_VERSION)
		return EF_EINVAL; /* version 1 has no such flags */
	rec[1] &= (uint8_t)~FLAGS_UNREAD;
	if (unread == REC_UNREAD_YES)
		rec[1] |= FLAG_UNREAD_KNOWN;
	else if (unread == REC_UNREAD_NO)
		rec[1] |= FLAGS_UNREAD;
	return EF_OK;
}

static uint8_t buf_flags(const void *buf)
{
	return ((const uint8_t *)buf)[1];
}

int rec_decode(const void *buf, size_t len, rec_entry *out)
{
	const uint8_t *p = buf, *end = p + len;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (len < 1)
		return EF_ECORRUPT;
	if (p[0] != 1 && p[0] != REC_VERSION)
		return p[0] > REC_VERSION ? EF_EVERSION : EF_ECORRUPT;
	if (len < HEAD_LEN)
		return EF_ECORRUPT;
	out->version = p[0];
	out->has_payload = (p[1] & FLAG_PAYLOAD) != 0;
	out->unread = !(p[1] & FLAG_UNREAD_KNOWN) ? REC_UNREAD_UNKNOWN
		      : (p[1] & FLAG_READ)         ? REC_UNREAD_NO
						   : REC_UNREAD_YES;
	out->created_ms = (int64_t)be_get(p + 2, 8);
	p += HEAD_LEN - 1;
	n = decode_ip(p, end, out);
	if (n == 0)
		return EF_ECORRUPT;
	p += n;
	if ((size_t)(end - p) < 2)
		return EF_ECORRUPT;
	n = (size_t)be_get(p, 2);
	p += 2;
	if ((size_t)(end - p) < n + 4 || n == 0)
		return EF_ECORRUPT;
	out->rid = (const char *)p;
	out->rid_len = n;
	p += n;
	n = (size_t)be_get(p, 4);
	p += 4;
	if ((size_t)(end - p) < n)
		return EF_ECORRUPT;
	out->payload = (const char *)p;
	out->payload_len = n;
	p += n;
	if (buf_flags(buf) & FLAG_PSEALED) {
		if (!out->has_payload || (size_t)(end - p) < 4)
			return EF_ECORRUPT;
		n = (size_t)be_get(p, 4);
		p += 4;
		if (n == 0 || (size_t)(end - p) < n)
			return EF_ECORRUPT;
		out->psealed = p;
		out->psealed_len = n;
		p += n;
	}
	if (p != end)
		return EF_ECORRUPT;
	if (out->created_ms < 0 || out->created_ms > EF_CREATED_MAX)
		return EF_ECORRUPT;
	return EF_OK;
}

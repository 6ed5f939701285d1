/*
 * ipscan.h - IP addresses inside legacy data, at any depth.
 *
 * The old worker's arrays were free-form JSON: besides an element's own
 * "ip", an address may sit in a nested object ({"client":{"addr":...}}), in
 * an array of hops, in an "X-Forwarded-For" list or in an object key. The
 * retention rule of DESIGN.md holds for every one of them, so whatever
 * stores or shows legacy data finds them with one rule:
 *
 *   a JSON string (a value or an object key) holds an IP address when it
 *   contains an IPv4 dotted quad (four decimal parts of at most three digits,
 *   each <= 255) or an IPv6 address (what inet_pton accepts) as a token: a
 *   maximal run of hex digits, '.' and ':'. "198.51.100.7:443",
 *   "for=[2001:db8::7]" and "10.0.0.1, 192.0.2.9" all hold addresses.
 *
 * The rule errs on the side of privacy: a version string "1.2.3.4" holds an
 * address too. Numbers are not addresses (an IPv4 address written as one
 * 32-bit integer is not recognised; docs/RETENTION.md says so).
 */
#ifndef EF_FEED_IPSCAN_H
#define EF_FEED_IPSCAN_H

#include <jansson.h>
#include <stddef.h>

/* Does [s, s + n) hold an IP address (the rule above)? 1 or 0. */
int ipscan_text(const char *s, size_t n);

/* Overwrite every token of [s, s + n) that holds an address with '*' (for
 * a key shown in a message). Returns how many there were. */
size_t ipscan_mask(char *s, size_t n);

/* Does @v hold an IP address at any depth (string values, object keys)? */
int ipscan_json(const json_t *v);

/*
 * Remove every IP address from @v at any depth: an object member whose key
 * or string value holds one is deleted, a string element of an array that
 * holds one becomes null (the other elements keep their places). @v itself,
 * when a string that holds one, cannot be changed: the caller drops it.
 * Returns how many strings were removed, or -1 when out of memory (@v may
 * then be half redacted: the caller throws it away).
 */
long ipscan_redact(json_t *v);

#endif

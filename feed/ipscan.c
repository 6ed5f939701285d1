/*
 * ipscan.c - find and remove IP addresses in legacy JSON (see ipscan.h).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <string.h>

#include "feed/ipscan.h"

#define V6_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int in_token(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F') || c == '.' || c == ':';
}

/* A dotted quad starting at @p (before @end): four parts of 1 to 3
 * digits, each at most 255, the last not followed by another digit. */
static int quad_at(const char *p, const char *end)
{
	for (int part = 0; part < 4; part++) {
		int v = 0, n = 0;

		if (part > 0) {
			if (p == end || *p != '.')
				return 0;
			p++;
		}
		while (p < end && is_digit(*p)) {
			v = v * 10 + (*p++ - '0');
			if (++n > 3)
				return 0;
		}
		if (n == 0 || v > 255)
			return 0;
	}
	return 1;
}

static int has_v4(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_digit(s[i]) && (i == 0 || !is_digit(s[i - 1])) &&
		    quad_at(s + i, s + n))
			return 1;
	return 0;
}

static int v6_at(const char *s, size_t n)
{
	char buf[V6_TEXT_MAX + 1];
	unsigned char bin[16];

	if (n < 2 || n > V6_TEXT_MAX)
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, bin) == 1;
}

/* An IPv6 address between two colon boundaries of the token (a token may
 * carry a port, or letters of a word before it). */
static int has_v6(const char *s, size_t n)
{
	size_t colons = 0;

	for (size_t i = 0; i < n; i++)
		colons += s[i] == ':';
	if (colons < 2)
		return 0;
	for (size_t b = 0; b < n; b++) {
		if (b > 0 && s[b - 1] != ':')
			continue;
		for (size_t e = b + 2; e <= n && e - b <= V6_TEXT_MAX; e++)
			if ((e == n || s[e] == ':') && v6_at(s + b, e - b))
				return 1;
	}
	return 0;
}

/* Call @fn with each token of [s, s + n) that holds an address; stop at
 * its first nonzero return. Returns the number of such tokens seen. */
static size_t each_address(const char *s, size_t n,
			   int (*fn)(char *tok, size_t len, void *ctx),
			   void *ctx)
{
	size_t i = 0, found = 0;

	while (i < n) {
		size_t start;

		while (i < n && !in_token(s[i]))
			i++;
		start = i;
		while (i < n && in_token(s[i]))
			i++;
		if (i > start && (has_v4(s + start, i - start) ||
				  has_v6(s + start, i - start))) {
			found++;
			if (fn((char *)s + start, i - start, ctx))
				break;
		}
	}
	return found;
}

static int stop(char *tok, size_t len, void *ctx)
{
	(void)tok, (void)len, (void)ctx;
	return 1;
}

static int mask(char *tok, size_t len, void *ctx)
{
	(void)ctx;
	memset(tok, '*', len);
	return 0;
}

int ipscan_text(const char *s, size_t n)
{
	return each_address(s, n, stop, NULL) > 0;
}

size_t ipscan_mask(char *s, size_t n)
{
	return each_address(s, n, mask, NULL);
}

static int str_has_ip(const json_t *v)
{
	return json_is_string(v) &&
	       ipscan_text(json_string_value(v), json_string_length(v));
}

int ipscan_json(const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_string(v))
		return str_has_ip(v);
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x)
			if (ipscan_text(k, strlen(k)) || ipscan_json(x))
				return 1;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (ipscan_json(x))
				return 1;
	}
	return 0;
}

static long redact(json_t *v);

static long redact_object(json_t *v)
{
	const char *k;
	json_t *x;
	void *tmp;
	long n = 0, c;

	json_object_foreach_safe(v, tmp, k, x) {
		if (ipscan_text(k, strlen(k)) || str_has_ip(x)) {
			if (json_object_del(v, k) != 0)
				return -1;
			n++;
		} else if ((c = redact(x)) < 0) {
			return -1;
		} else {
			n += c;
		}
	}
	return n;
}

static long redact_array(json_t *v)
{
	json_t *x;
	size_t i;
	long n = 0, c;

	json_array_foreach(v, i, x) {
		if (str_has_ip(x)) {
			if (json_array_set_new(v, i, json_null()) != 0)
				return -1;
			n++;
		} else if ((c = redact(x)) < 0) {
			return -1;
		} else {
			n += c;
		}
	}
	return n;
}

static long redact(json_t *v)
{
	if (json_is_object(v))
		return redact_object(v);
	if (json_is_array(v))
		return redact_array(v);
	return 0;
}

long ipscan_redact(json_t *v)
{
	long n = redact(v);

	assert(n < 0 || json_is_string(v) || !ipscan_json(v));
	return n;
}

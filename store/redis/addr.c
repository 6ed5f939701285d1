/*
 * addr.c - parsing the address of a Redis Cluster store (addr.h).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "edgefeed.h"
#include "store/error.h"
#include "store/redis/addr.h"

#define FIELD "address"

int raddr_is(const char *s)
{
	return s && strncmp(s, RADDR_SCHEME, sizeof(RADDR_SCHEME) - 1) == 0;
}

/* A decimal in [lo, hi], digits only. */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* One HOST:PORT of @n bytes at @s into node @i. */
static int parse_node(uint64_t id, const char *s, size_t n, size_t i,
		      raddr_node *out)
{
	const char *h = s, *colon;
	size_t hn;

	if (n > 0 && s[0] == '[') { /* [IPv6]:PORT */
		const char *close = memchr(s, ']', n);
		if (!close || close + 1 == s + n || close[1] != ':')
			return ef__err(id, EF_EINVAL, FIELD ": node %zu: a "
				       "bracketed host must be followed by "
				       ":PORT", i + 1);
		h = s + 1;
		hn = (size_t)(close - h);
		colon = close + 1;
		for (size_t k = 0; k < hn; k++)
			if (!(host_char(h[k]) || h[k] == ':'))
				return ef__err(id, EF_EINVAL, FIELD ": node %zu:"
					       " not an IPv6 address", i + 1);
	} else {
		colon = NULL;
		for (size_t k = n; k > 0; k--)
			if (s[k - 1] == ':') {
				colon = s + k - 1;
				break;
			}
		if (!colon)
			return ef__err(id, EF_EINVAL, FIELD ": node %zu: no "
				       ":PORT", i + 1);
		hn = (size_t)(colon - s);
		for (size_t k = 0; k < hn; k++)
			if (!host_char(s[k]))
				return ef__err(id, EF_EINVAL, FIELD ": node %zu:"
					       " host: byte %zu is not a letter,"
					       " digit, '.', '-' or '_'", i + 1,
					       k + 1);
	}
	if (hn == 0 || hn > RADDR_HOST_MAX)
		return ef__err(id, EF_EINVAL, FIELD ": node %zu: host: 1 to %d "
			       "bytes", i + 1, RADDR_HOST_MAX);
	memcpy(out->host, h, hn);
	out->host[hn] = '\0';
	if (parse_int(colon + 1, (size_t)(s + n - colon - 1), 1, 65535,
		      &out->port) != 0)
		return ef__err(id, EF_EINVAL, FIELD ": node %zu: port: not a "
			       "number from 1 to 65535", i + 1);
	return EF_OK;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decode @n bytes at @s into @out (capacity @cap, NUL added). */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int a, b;
			if (i + 2 >= n) /* a '%' needs two hex digits */
				return -1;
			a = hexval(s[i + 1]);
			b = hexval(s[i + 2]);
			if (a < 0 || b < 0 || (a == 0 && b == 0))
				return -1; /* no NUL inside a C string */
			c = (char)(a << 4 | b);
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

typedef struct opt {
	const char *name;
	int seen;
} opt;

static int set_num(uint64_t id, const char *name, const char *v, size_t vn,
		   long lo, long hi, int *out)
{
	if (parse_int(v, vn, lo, hi, out) != 0)
		return ef__err(id, EF_EINVAL, FIELD ": %s: not a number from "
			       "%ld to %ld", name, lo, hi);
	return EF_OK;
}

/* One NAME=VALUE of the query. */
static int parse_opt(uint64_t id, const char *s, size_t n, raddr *a,
		     opt *seen, size_t nseen)
{
	const char *eq = memchr(s, '=', n);
	size_t kn = eq ? (size_t)(eq - s) : n, vn;
	const char *v;
	size_t which = nseen;

	for (size_t i = 0; i < nseen; i++)
		if (strlen(seen[i].name) == kn &&
		    memcmp(seen[i].name, s, kn) == 0)
			which = i;
	if (which == nseen)
		return ef__err(id, EF_EINVAL, FIELD ": unknown option '%.*s' "
			       "(user, password, timeout_ms, wait, wait_ms, "
			       "redirects, retry_ms, store)", (int)(kn > 32 ? 32 : kn),
			       s);
	if (!eq)
		return ef__err(id, EF_EINVAL, FIELD ": option %s: no '=VALUE'",
			       seen[which].name);
	if (seen[which].seen++)
		return ef__err(id, EF_EINVAL, FIELD ": option %s given twice",
			       seen[which].name);
	v = eq + 1;
	vn = n - kn - 1;
	switch (which) {
	case 0:
		if (vn == 0 || decode(v, vn, a->user, sizeof(a->user)) != 0)
			return ef__err(id, EF_EINVAL, FIELD ": user: 1 to %d "
				       "bytes, %%XX escapes valid",
				       RADDR_SECRET_MAX);
		return EF_OK;
	case 1:
		if (vn == 0 ||
		    decode(v, vn, a->password, sizeof(a->password)) != 0)
			return ef__err(id, EF_EINVAL, FIELD ": password: 1 to "
				       "%d bytes, %%XX escapes valid",
				       RADDR_SECRET_MAX);
		return EF_OK;
	case 2:
		return set_num(id, "timeout_ms", v, vn, 1, 600000,
			       &a->timeout_ms);
	case 3:
		return set_num(id, "wait", v, vn, 0, 16, &a->wait_replicas);
	case 4:
		return set_num(id, "wait_ms", v, vn, 1, 600000, &a->wait_ms);
	case 5:
		return set_num(id, "redirects", v, vn, 1, 64, &a->redirects);
	case 6:
		return set_num(id, "retry_ms", v, vn, 0, 600000, &a->retry_ms);
	default:
		if (vn == 0 || decode(v, vn, a->store, sizeof(a->store)) != 0)
			return ef__err(id, EF_EINVAL, FIELD ": store: 1 to %d "
				       "bytes, %%XX escapes valid",
				       RADDR_STORE_MAX);
		return EF_OK;
	}
}

static int parse_query(uint64_t id, const char *q, raddr *a)
{
	opt seen[] = {{"user", 0},    {"password", 0},  {"timeout_ms", 0},
		      {"wait", 0},    {"wait_ms", 0},   {"redirects", 0},
		      {"retry_ms", 0}, {"store", 0}};
	const char *end = q + strlen(q);

	if (q == end)
		return ef__err(id, EF_EINVAL, FIELD ": '?' is followed by no "
			       "option");
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		size_t n = amp ? (size_t)(amp - q) : (size_t)(end - q);
		int rc = parse_opt(id, q, n, a, seen,
				   sizeof(seen) / sizeof(seen[0]));
		if (rc != EF_OK)
			return rc;
		q += n + (amp ? 1 : 0);
		if (amp && q == end)
			return ef__err(id, EF_EINVAL, FIELD ": '&' ends the "
				       "options");
	}
	return EF_OK;
}

int raddr_parse(uint64_t id, const char *s, raddr *a)
{
	const char *p, *q, *end;
	const char *env;
	int rc;

	memset(a, 0, sizeof(*a));
	a->timeout_ms = 2000;
	a->wait_ms = 1000;
	a->redirects = 16;
	a->retry_ms = 10000;
	if (!raddr_is(s))
		return ef__err(id, EF_EINVAL, FIELD ": does not start with "
			       "'" RADDR_SCHEME "'");
	p = s + sizeof(RADDR_SCHEME) - 1;
	q = strchr(p, '?');
	end = q ? q : p + strlen(p);
	if (p == end)
		return ef__err(id, EF_EINVAL, FIELD ": no HOST:PORT after '"
			       RADDR_SCHEME "'");
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
		if (a->n == RADDR_NODES_MAX)
			return ef__err(id, EF_EINVAL, FIELD ": more than %d "
				       "nodes", RADDR_NODES_MAX);
		rc = parse_node(id, p, n, a->n, &a->nodes[a->n]);
		if (rc != EF_OK)
			return rc;
		a->n++;
		p += n + (comma ? 1 : 0);
		if (comma && p == end)
			return ef__err(id, EF_EINVAL, FIELD ": node %zu: empty",
				       a->n + 1);
	}
	rc = q ? parse_query(id, q + 1, a) : EF_OK;
	if (rc == EF_OK && !a->password[0] &&
	    (env = getenv("EDGEFEED_REDIS_PASSWORD")) && *env) {
		if (strlen(env) > RADDR_SECRET_MAX)
			rc = ef__err(id, EF_EINVAL, "EDGEFEED_REDIS_PASSWORD: "
				     "longer than %d bytes", RADDR_SECRET_MAX);
		else
			memcpy(a->password, env, strlen(env) + 1);
	}
	if (rc != EF_OK)
		raddr_wipe(a);
	return rc;
}

void raddr_wipe(raddr *a)
{
	sodium_memzero(a->password, sizeof(a->password));
	sodium_memzero(a->user, sizeof(a->user));
}

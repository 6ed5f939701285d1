/*
 * fuzz-redis.c - libFuzzer target: what the cluster client reads from the
 * network and from its caller (store/redis/). The input's first byte picks
 * what the rest is: a RESP reply stream (through hiredis's own reader, as
 * the client gets it) taken as CLUSTER SLOTS replies and as errors; or a
 * store address.
 * Properties: nothing reads out of bounds or leaks; every slot range taken
 * from a map lies in 0..16383 with a host and a port; a redirection names
 * a slot below 16384 and a port in 1..65535; a parsed address has 1..64
 * nodes, each with a host and a port in range, and a failed parse leaves no
 * password behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis/addr.h"
#include "store/redis/reply.h"
#include "store/redis/slot.h"

static rrange ranges[RSLOT_COUNT];
static raddr a;

static void check_reply(const redisReply *r)
{
	raddr_node asked = {"127.0.0.1", 7000}, to;
	size_t n = 0;
	unsigned slot;

	if (rreply_slots(r, &asked, ranges, RSLOT_COUNT, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (ranges[i].first > ranges[i].last ||
			    ranges[i].last >= RSLOT_COUNT ||
			    !ranges[i].host[0] || ranges[i].port < 1 ||
			    ranges[i].port > 65535)
				abort();
	if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ||
	    r->type == REDIS_REPLY_STRING) {
		enum rerr_kind k = rreply_error(r->str, r->len, &slot, &to);
		if ((k == RERR_MOVED || k == RERR_ASK) &&
		    (slot >= RSLOT_COUNT || !to.host[0] || to.port < 1 ||
		     to.port > 65535))
			abort();
	}
	if (r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < r->elements; i++)
			check_reply(r->element[i]);
}

static void replies(const uint8_t *data, size_t size)
{
	/* the functions the client gives its readers: bounded arrays */
	redisReader *rd = redisReaderCreateWithFunctions(rreply_functions());
	void *r;

	if (!rd)
		return;
	if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK)
		while (redisReaderGetReply(rd, &r) == REDIS_OK && r) {
			check_reply(r);
			freeReplyObject(r);
		}
	redisReaderFree(rd);
}

static void address(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (raddr_parse(0, s, &a) == 0) {
		if (a.n < 1 || a.n > RADDR_NODES_MAX)
			abort();
		for (size_t i = 0; i < a.n; i++)
			if (!a.nodes[i].host[0] || a.nodes[i].port < 1 ||
			    a.nodes[i].port > 65535)
				abort();
		raddr_wipe(&a);
	} else if (a.password[0]) {
		abort(); /* a failed parse keeps no secret */
	}
	free(s);
	(void)rslot_of(data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		replies(data + 1, size - 1);
	else
		address(data + 1, size - 1);
	return 0;
}

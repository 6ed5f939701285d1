/*
 * reply.c - reading CLUSTER SLOTS and redirection errors (reply.h).
 *
 * CLUSTER SLOTS answers an array of ranges, each an array of: first slot,
 * last slot (integers), then the master and each replica as an array of
 * endpoint (string), port (integer), node id (string) and, since Redis 7,
 * more. MOVED and ASK errors read "MOVED <slot> <endpoint>:<port>".
 */
#include <pthread.h>
#include <string.h>

#include "store/redis/reply.h"
#include "store/redis/slot.h"

static int copy_host(const char *s, size_t n, char *out)
{
	if (n == 0 || n > RADDR_HOST_MAX || memchr(s, '\0', n))
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* The master of one range into @o; 1 if its endpoint is unknown ("?"). */
static int range_master(const redisReply *m, const raddr_node *asked,
			rrange *o)
{
	const redisReply *h, *p;

	if (m->type != REDIS_REPLY_ARRAY || m->elements < 2)
		return -1;
	h = m->element[0];
	p = m->element[1];
	if ((h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_NIL) ||
	    p->type != REDIS_REPLY_INTEGER || p->integer < 0 ||
	    p->integer > 65535)
		return -1;
	if (h->type == REDIS_REPLY_NIL || h->len == 0) { /* the node asked */
		strcpy(o->host, asked->host);
	} else if (h->len == 1 && h->str[0] == '?') {
		return 1;
	} else if (copy_host(h->str, h->len, o->host) != 0) {
		return -1;
	}
	if (p->integer == 0)
		return 1; /* no port: not reachable as it is */
	o->port = (int)p->integer;
	return 0;
}

int rreply_slots(const redisReply *r, const raddr_node *asked, rrange *out,
		 size_t cap, size_t *n)
{
	*n = 0;
	if (!r || r->type != REDIS_REPLY_ARRAY)
		return -1;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const redisReply *a, *b;
		rrange o;
		int rc;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
			return -1;
		a = e->element[0];
		b = e->element[1];
		if (a->type != REDIS_REPLY_INTEGER ||
		    b->type != REDIS_REPLY_INTEGER || a->integer < 0 ||
		    b->integer < a->integer || b->integer >= RSLOT_COUNT)
			return -1;
		o.first = (unsigned)a->integer;
		o.last = (unsigned)b->integer;
		rc = range_master(e->element[2], asked, &o);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		if (*n == cap)
			return -1; /* more ranges than slots: not a real map */
		out[(*n)++] = o;
	}
	return 0;
}

static int starts(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	return len >= n && memcmp(s, word, n) == 0 &&
	       (len == n || s[n] == ' ');
}

/* "<slot> <endpoint>:<port>" of @len bytes. */
static int redirect_target(const char *s, size_t len, unsigned *slot,
			   raddr_node *to)
{
	const char *sp = memchr(s, ' ', len), *colon = NULL;
	unsigned v = 0;
	long port = 0;

	if (!sp || sp == s || sp - s > 5)
		return -1;
	for (const char *p = s; p < sp; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v >= RSLOT_COUNT)
		return -1;
	for (const char *p = s + len; p > sp + 1; p--)
		if (p[-1] == ':') {
			colon = p - 1;
			break;
		}
	if (!colon || colon == sp + 1 || colon + 1 == s + len ||
	    s + len - colon - 1 > 5)
		return -1;
	for (const char *p = colon + 1; p < s + len; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	if (copy_host(sp + 1, (size_t)(colon - sp - 1), to->host) != 0)
		return -1;
	/* an IPv6 endpoint may come bracketed or not */
	if (to->host[0] == '[') {
		size_t hn = strlen(to->host);
		if (hn < 3 || to->host[hn - 1] != ']')
			return -1;
		memmove(to->host, to->host + 1, hn - 2);
		to->host[hn - 2] = '\0';
	}
	to->port = (int)port;
	*slot = v;
	return 0;
}

enum rerr_kind rreply_error(const char *s, size_t len, unsigned *slot,
			    raddr_node *to)
{
	if (starts(s, len, "MOVED") || starts(s, len, "ASK")) {
		size_t w = s[0] == 'M' ? 6 : 4;
		if (len <= w || redirect_target(s + w, len - w, slot, to) != 0)
			return RERR_OTHER;
		return s[0] == 'M' ? RERR_MOVED : RERR_ASK;
	}
	if (starts(s, len, "TRYAGAIN"))
		return RERR_TRYAGAIN;
	if (starts(s, len, "CLUSTERDOWN") || starts(s, len, "MASTERDOWN") ||
	    starts(s, len, "LOADING") || starts(s, len, "READONLY"))
		return RERR_DOWN;
	return RERR_OTHER;
}

static redisReplyObjectFunctions guarded;      /* hiredis's, one replaced */
static void *(*default_array)(const redisReadTask *, int);
static pthread_once_t guarded_once = PTHREAD_ONCE_INIT;

static void *array_bounded(const redisReadTask *task, int elements)
{
	if (elements < 0 || elements > RREPLY_ELEMENTS_MAX)
		return NULL; /* the reader reports it: nothing allocated */
	return default_array(task, elements);
}

/* hiredis keeps its default functions to itself: take them from a reader */
static void guarded_init(void)
{
	redisReader *r = redisReaderCreate();

	if (!r)
		return;
	guarded = *r->fn;
	default_array = guarded.createArray;
	guarded.createArray = array_bounded;
	redisReaderFree(r);
}

redisReplyObjectFunctions *rreply_functions(void)
{
	pthread_once(&guarded_once, guarded_init);
	return default_array ? &guarded : NULL;
}

/*
 * ledger.c - the ledger of acknowledged finalizations, and its check
 * against what the store holds at the end of a run.
 *
 * Every finalize call a worker makes is written down with its answer. At
 * the end, every owner's feed is read back page by page through the
 * system under test, and the two are compared:
 *   lost        acknowledged (written or duplicate), yet not in the store;
 *   duplicated  a reservation present more than once;
 *   unexpected  present, yet nobody was told so (or under the wrong owner);
 *   double      two callers were both told "written" for one reservation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int led_add(led *l, uint64_t rid, uint32_t owner, int rc)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		led_ack *p = realloc(l->a, cap * sizeof(*p));
		if (!p)
			return -1;
		l->a = p;
		l->cap = cap;
	}
	/* zeroed padding: acks are written to files as they are */
	memset(&l->a[l->n], 0, sizeof(*l->a));
	l->a[l->n].rid = rid;
	l->a[l->n].owner = owner;
	l->a[l->n].rc = (int8_t)rc;
	l->n++;
	return 0;
}

void led_free(led *l)
{
	free(l->a);
	memset(l, 0, sizeof(*l));
}

/* What was read back: reservation and the owner it was found under. */
typedef struct seen {
	uint64_t rid;
	uint32_t owner;
	uint32_t bad;    /* not a reservation id this benchmark makes */
} seen;

typedef struct scan_ctx {
	seen *s;
	size_t n, cap;
	uint32_t owner;
	int oom;
} scan_ctx;

static void on_entry(void *p, const char *rid, size_t len, int64_t created)
{
	scan_ctx *c = p;
	uint64_t id = 0;
	int bad;

	(void)created;
	bad = wl_rid_parse(rid, len, &id) != 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4096;
		seen *q = realloc(c->s, cap * sizeof(*q));
		if (!q) {
			c->oom = 1;
			return;
		}
		c->s = q;
		c->cap = cap;
	}
	c->s[c->n].rid = id;
	c->s[c->n].owner = c->owner;
	c->s[c->n].bad = (uint32_t)bad;
	c->n++;
}

static int cmp_ack(const void *a, const void *b)
{
	const led_ack *x = a, *y = b;
	return (x->rid > y->rid) - (x->rid < y->rid);
}

static int cmp_seen(const void *a, const void *b)
{
	const seen *x = a, *y = b;
	return (x->rid > y->rid) - (x->rid < y->rid);
}

static int read_back(const bsys_ops *sys, void *th, uint32_t owners,
		     scan_ctx *c)
{
	char owner[BS_NAME_MAX], cur[BS_CURSOR_MAX], next[BS_CURSOR_MAX];
	size_t got;

	for (uint32_t o = 0; o < owners; o++) {
		wl_owner(o, owner);
		c->owner = o;
		cur[0] = '\0';
		do {
			if (sys->page(th, owner, cur, 1000, on_entry, c, next,
				      &got) != 0)
				return -1;
			memcpy(cur, next, sizeof(cur));
		} while (cur[0]);
		if (c->oom)
			return -1;
	}
	return 0;
}

/* Walk the sorted acks of one reservation, from @i; returns the next i. */
static size_t one_rid(const led *l, size_t i, led_result *r, int *acked,
		      uint32_t *owner)
{
	uint64_t rid = l->a[i].rid;
	unsigned created = 0;

	*acked = 0;
	*owner = l->a[i].owner;
	for (; i < l->n && l->a[i].rid == rid; i++) {
		r->attempted++;
		if (l->a[i].rc == BS_OK)
			created++;
		if (l->a[i].rc == BS_OK || l->a[i].rc == BS_EXISTS)
			*acked = 1;
		else
			r->errors++;
	}
	r->created_acks += created;
	if (created > 1)
		r->double_created++;
	if (*acked)
		r->acked++;
	return i;
}

int led_verify(const bsys_ops *sys, void *th, led *l, uint32_t owners,
	       led_result *r)
{
	scan_ctx c = {0};
	uint64_t total = 0;
	size_t i = 0, j = 0;

	memset(r, 0, sizeof(*r));
	if (read_back(sys, th, owners, &c) != 0 || sys->count(th, &total)) {
		free(c.s);
		fprintf(stderr, "edgefeed-bench: %s: cannot read the store "
			"back\n", sys->name);
		return -1;
	}
	r->found = c.n;
	/* entries of owners the workload never used */
	if (total > c.n)
		r->unexpected += total - c.n;
	qsort(l->a, l->n, sizeof(*l->a), cmp_ack);
	qsort(c.s, c.n, sizeof(*c.s), cmp_seen);
	for (size_t k = 0; k < c.n; k++) /* ids this benchmark never makes */
		if (c.s[k].bad)
			r->unexpected++;
	while (i < l->n || j < c.n) {
		int acked = 0;
		uint32_t owner = 0;
		uint64_t rid;
		size_t copies = 0, wrong = 0;

		if (j < c.n && c.s[j].bad) {
			j++;
			continue;
		}
		if (i < l->n && (j >= c.n || l->a[i].rid <= c.s[j].rid)) {
			rid = l->a[i].rid;
			i = one_rid(l, i, r, &acked, &owner);
		} else {
			rid = c.s[j].rid;
			owner = UINT32_MAX;
		}
		for (; j < c.n && c.s[j].rid == rid; j++) {
			if (c.s[j].bad)
				continue;
			if (c.s[j].owner != owner)
				wrong++;
			else
				copies++;
		}
		r->unexpected += wrong;
		if (copies > 1)
			r->duplicated += copies - 1;
		if (acked && !copies)
			r->lost++;
		/* present but nobody told: a failed call that wrote anyway */
		if (copies && !acked)
			r->unexpected++;
	}
	free(c.s);
	return 0;
}

int led_clean(const led_result *r)
{
	return !r->lost && !r->duplicated && !r->unexpected &&
	       !r->double_created;
}

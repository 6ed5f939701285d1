/*
 * load.c - filling a store before measuring it, and the timed single calls
 * that the scale, read and size scenarios share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CHUNK 1024

int load_gen(const bsys_ops *sys, void *th, uint64_t from, uint64_t to,
	     gen_fn gen, void *ctx, led *l)
{
	wl_item *its = malloc(CHUNK * sizeof(*its));
	bs_rec *recs = malloc(CHUNK * sizeof(*recs));
	uint64_t *ids = malloc(CHUNK * sizeof(*ids));
	uint32_t *owners = malloc(CHUNK * sizeof(*owners));
	int *rcs = malloc(CHUNK * sizeof(*rcs)), rc = 0;

	if (!its || !recs || !ids || !owners || !rcs)
		rc = BS_ERR;
	for (uint64_t i = from; rc == 0 && i < to;) {
		size_t n = 0;
		for (; n < CHUNK && i < to; n++, i++) {
			int64_t created;
			gen(ctx, i, &ids[n], &owners[n], &created);
			wl_make(&its[n], ids[n], owners[n], created);
			recs[n] = its[n].rec;
		}
		rc = sys->load(th, recs, n, rcs);
		for (size_t k = 0; rc == 0 && k < n; k++)
			rc = led_add(l, ids[k], owners[k], rcs[k]);
	}
	free(its);
	free(recs);
	free(ids);
	free(owners);
	free(rcs);
	return rc;
}

int timed_finalize(const bsys_ops *sys, void *th, uint64_t id,
		   uint32_t owner, led *l, lat *lt)
{
	wl_item it;
	double t0;
	int rc;

	wl_make(&it, id, owner, wall_ms());
	t0 = now_s();
	rc = sys->finalize(th, &it.rec);
	lat_add(lt, (now_s() - t0) * 1e6);
	led_add(l, id, owner, rc);
	return rc;
}

int timed_page(const bsys_ops *sys, void *th, uint32_t owner,
	       const char *cursor, size_t limit, lat *lt)
{
	char name[BS_NAME_MAX], next[BS_CURSOR_MAX];
	size_t got;
	double t0;
	int rc;

	wl_owner(owner, name);
	t0 = now_s();
	rc = sys->page(th, name, cursor, limit ? limit : 50, NULL, NULL, next,
		       &got);
	lat_add(lt, (now_s() - t0) * 1e6);
	return rc;
}

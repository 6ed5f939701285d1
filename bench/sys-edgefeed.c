/*
 * sys-edgefeed.c - the system under test, through the public API only
 * (include/edgefeed.h). One ef_store per process, shared by its threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "edgefeed.h"

static int ef_open_(void **proc, const char *dir, const bs_cfg *cfg)
{
	ef_config c = {0};
	ef_store *st;

	c.flags = (cfg->durable ? 0 : EF_NOSYNC) |
		  (cfg->group_commit ? EF_GROUP_COMMIT : EF_NO_GROUP_COMMIT);
	c.feed_cap = cfg->feed_cap;
	c.map_size = (size_t)64 << 20;
	if (ef_open(&st, dir, &c) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: %s\n",
			ef_errmsg(NULL));
		return BS_ERR;
	}
	*proc = st;
	return 0;
}

static void ef_close_(void *proc)
{
	ef_close(proc);
}

static int ef_thread(void *proc, void **th)
{
	*th = proc;
	return 0;
}

static void ef_thread_done(void *th)
{
	(void)th;
}

static int ef_finalize_(void *th, const bs_rec *r)
{
	ef_receive rc = {r->owner, r->rid, r->created_ms, r->ip, r->payload};
	int rv = ef_finalize(th, &rc);

	if (rv == EF_OK)
		return BS_OK;
	if (rv == EF_EXISTS)
		return BS_EXISTS;
	fprintf(stderr, "edgefeed-bench: edgefeed: finalize: %s\n",
		ef_errmsg(th));
	return BS_ERR;
}

static int ef_load(void *th, const bs_rec *recs, size_t n, int *rcs)
{
	/* no batch call in the public API: group commit batches the
	 * concurrent callers, a lone loader writes one by one */
	for (size_t i = 0; i < n; i++) {
		rcs[i] = ef_finalize_(th, &recs[i]);
		if (rcs[i] == BS_ERR)
			return BS_ERR;
	}
	return 0;
}

static int ef_page_(void *th, const char *owner, const char *cursor,
		    size_t limit, bs_entry_fn fn, void *ctx,
		    char next[BS_CURSOR_MAX], size_t *count)
{
	ef_page p;
	int rc = ef_feed_page(th, owner, cursor[0] ? cursor : NULL, limit, &p);

	next[0] = '\0';
	*count = 0;
	if (rc != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: page: %s\n",
			ef_errmsg(th));
		return BS_ERR;
	}
	for (size_t i = 0; fn && i < p.count; i++)
		fn(ctx, p.entries[i].reservation_id,
		   strlen(p.entries[i].reservation_id), p.entries[i].created_ms);
	*count = p.count;
	if (p.next_cursor)
		snprintf(next, BS_CURSOR_MAX, "%s", p.next_cursor);
	ef_page_free(&p);
	return 0;
}

static int ef_count(void *th, uint64_t *n)
{
	ef_stat_info si;

	if (ef_stat(th, &si) != EF_OK)
		return BS_ERR;
	*n = si.entries;
	return 0;
}

static int ef_compact_(void *proc, const char *dir)
{
	ef_compact_stats cs;

	(void)dir;
	if (ef_compact(proc, &cs) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: edgefeed: compact: %s\n",
			ef_errmsg(proc));
		return BS_ERR;
	}
	return 0;
}

const bsys_ops bsys_edgefeed = {
	"edgefeed", ef_open_, ef_close_, ef_thread, ef_thread_done,
	ef_finalize_, ef_load, ef_page_, ef_count, ef_compact_,
};

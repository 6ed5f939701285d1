/*
 * kvbulk.c - ef_import_kvbulk: a Workers KV bulk file into the store.
 *
 * The file is read as a stream (kvread.c): memory is one element and one
 * batch. Each element becomes an item (kvitem.c); a batch of items is
 * applied in one write transaction (kvapply.c), then its skips are
 * reported. Index keys and unread markers whose entry was not in the store
 * yet are set aside and settled at the end, when every entry of the file
 * is in (a file in key order lists index keys first). kvbulk-int.h is what
 * the three files share.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/ipscan.h"
#include "migrate/kvbulk-int.h"
#include "migrate/migrate.h"
#include "store/alloc.h"
#include "store/error.h"

#define BATCH_DEFAULT 1000
#define BATCH_MAX 100000
#define BATCH_BYTES ((size_t)16 << 20) /* value bytes per transaction */

const char *ef_import_skip_name(int reason)
{
	switch (reason) {
#define EF__SKIP_CASE(name, json)                                              \
	case EF_IMPORT_SKIP_##name:                                            \
		return json;
		EF_IMPORT_SKIP_MAP(EF__SKIP_CASE)
#undef EF__SKIP_CASE
	default:
		return "unknown";
	}
}

/*
 * Room for one more than @n elements of @size in @arr (capacity *cap,
 * doubled from @first when full): @arr, or the array that replaces it, or
 * NULL (out of memory, in the error slot; @arr is kept).
 */
void *kv_grow(imp_ctx *c, void *arr, size_t n, size_t *cap, size_t size,
	      size_t first)
{
	size_t want = *cap ? *cap * 2 : first;
	void *m;

	if (n < *cap)
		return arr;
	/* catch size_t overflow */
	if (want < *cap || want > SIZE_MAX / size ||
	    !(m = ef__realloc(arr, want * size))) {
		ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
		return NULL;
	}
	*cap = want;
	return m;
}

static int skip_add(imp_ctx *c, const kv_item *it, int reason,
		    const char *fmt, va_list ap)
{
	kv_skip *s = kv_grow(c, c->skips, c->nskips, &c->capskips, sizeof(*s),
			     64);

	if (!s)
		return EF_ENOMEM;
	c->skips = s;
	s = &c->skips[c->nskips];
	s->key = kv_dup_bytes(it->key, it->klen);
	if (!s->key)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	/* a key is shown to whoever reads the report: not its addresses */
	ipscan_mask(s->key, it->klen);
	s->element = it->index;
	s->klen = it->klen;
	s->reason = reason;
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	c->nskips++;
	return EF_OK;
}

int kv_skip_item(imp_ctx *c, int in_txn, const kv_item *it, int reason,
		 const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = skip_add(c, it, reason, fmt, ap);
	va_end(ap);
	if (rc != EF_OK || in_txn)
		return rc;
	c->npre = c->nskips;
	return KV_SKIPPED;
}

/* ---- batches ------------------------------------------------------------ */

static int owner_note(imp_ctx *c, const key_part *o)
{
	key_part *n;

	for (size_t i = 0; i < c->nowners; i++)
		if (c->owners[i].len == o->len &&
		    memcmp(c->owners[i].s, o->s, o->len) == 0)
			return EF_OK;
	n = ef__realloc(c->owners, (c->nowners + 1) * sizeof(*n));
	if (!n)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	c->owners = n;
	c->owners[c->nowners++] = *o;
	c->s.merged_owners = c->nowners;
	return EF_OK;
}

static int pending_add(imp_ctx *c, kv_item *it)
{
	kv_item *n = kv_grow(c, c->pending, c->npending, &c->cappending,
			     sizeof(*n), 256);

	if (!n)
		return EF_ENOMEM;
	c->pending = n;
	c->pending[c->npending++] = *it; /* it moves: the batch forgets it */
	memset(it, 0, sizeof(*it));
	return EF_OK;
}

/* The batch's transaction committed (or had nothing to write). */
static int batch_commit(imp_ctx *c)
{
	const kv_txn_stats *b = &c->b;
	int rc = EF_OK;

	c->s.legacy_arrays += b->legacy_arrays;
	c->s.legacy_merged += b->legacy_merged;
	c->s.entries += b->entries;
	c->s.index_keys += b->index_keys;
	c->s.markers += b->markers;
	c->s.quarantine_records += b->quarantine_records;
	c->s.quarantined += b->quarantined;
	c->s.unchanged += b->unchanged;
	c->s.ips_dropped += b->ips_dropped;
	c->s.trimmed += b->trimmed;
	c->s.trim_deleted += b->trim_deleted;
	c->ntrimmed_done = c->ntrimmed;
	for (size_t i = 0; rc == EF_OK && i < c->nmerged; i++)
		rc = owner_note(c, &c->items[c->merged[i]].x->owner);
	for (size_t i = 0; rc == EF_OK && i < c->n; i++)
		if (c->items[i].deferred)
			rc = pending_add(c, &c->items[i]);
	return rc;
}

static int by_element(const void *x, const void *y)
{
	const kv_skip *a = x, *b = y;
	return (a->element > b->element) - (a->element < b->element);
}

/* Report the batch's skips in file order (with @report), and forget them. */
static void skips_done(imp_ctx *c, int report)
{
	if (report && c->nskips) /* qsort wants a base even for 0 */
		qsort(c->skips, c->nskips, sizeof(*c->skips), by_element);
	for (size_t i = 0; i < c->nskips; i++) {
		kv_skip *s = &c->skips[i];
		if (report) {
			c->s.skipped++;
			c->s.skipped_by_reason[s->reason]++;
			if (c->o.on_skip)
				c->o.on_skip(s->element, s->key, s->klen,
					     s->reason, s->detail,
					     c->o.skip_ctx);
		}
		free(s->key);
	}
	c->nskips = c->npre = 0;
}

static void batch_clear(imp_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		kv_item_free(&c->items[i]);
	c->n = 0;
	c->bytes = 0;
}

/* The group (store.h) of an item: where a sharded engine keeps it. */
static store_val item_group(const kv_item *it)
{
	store_val g;
	key_group(it->k, it->k_len, &g);
	return g;
}

static int same_group(const kv_item *a, const kv_item *b)
{
	store_val ga = item_group(a), gb = item_group(b);
	return ga.len == gb.len && memcmp(ga.data, gb.data, ga.len) == 0;
}

/* Write the batch in one transaction, then report it. On a sharded
 * engine a batch holds items of one group only (import_elem, settle). */
static int flush(imp_ctx *c)
{
	uint64_t done = c->s.elements;
	int rc = EF_OK;

	if (c->n > 0) {
		store_val g = item_group(&c->items[0]);
		rc = store_write_in(c->st->env,
				    store_sharded(c->st->env) ? &g : STORE_ALL,
				    kv_batch_txn, c);
		if (rc == EF_OK)
			c->s.batches++;
		else if (rc == FEED_NOCHANGE)
			rc = EF_OK;
		if (rc == EF_OK)
			rc = batch_commit(c);
	}
	skips_done(c, rc == EF_OK);
	batch_clear(c);
	if (rc == EF_OK && c->o.progress)
		c->o.progress(done, c->total > done ? c->total : done,
			      c->o.progress_ctx);
	return rc;
}

static int import_elem(void *p, json_t *el, uint64_t index)
{
	imp_ctx *c = p;
	kv_item *it = &c->items[c->n];
	int rc;

	c->s.elements++;
	rc = kv_item_make(c, el, index, it);
	if (rc != EF_OK) {
		kv_item_free(it);
		if (rc != KV_SKIPPED)
			return rc;
	} else {
		if (c->n > 0 && store_sharded(c->st->env) &&
		    !same_group(&c->items[0], it)) {
			/* another group: the batch so far goes first */
			kv_item held = *it;
			memset(it, 0, sizeof(*it));
			rc = flush(c);
			c->items[0] = held;
			if (rc != EF_OK) {
				c->n = 1;
				batch_clear(c);
				return rc;
			}
		}
		c->bytes += c->items[c->n].vlen;
		c->n++;
	}
	if (c->n == c->batch || c->bytes >= BATCH_BYTES ||
	    c->nskips >= c->batch)
		return flush(c);
	return EF_OK;
}

/* The index keys and markers whose entry was not in the store when they
 * came: every entry of the file is in now, so each is taken or skipped. */
static int settle(imp_ctx *c)
{
	kv_item *all = c->pending;
	size_t n = c->npending, i = 0, m;
	int rc = EF_OK;

	c->pending = NULL;
	c->npending = c->cappending = 0;
	c->final = 1;
	if (c->ntrimmed) /* for entry_trimmed's bsearch */
		qsort(c->trimmed, c->ntrimmed, sizeof(*c->trimmed), kv_by_str);
	while (rc == EF_OK && i < n) {
		m = n - i < c->batch ? n - i : c->batch;
		if (store_sharded(c->st->env)) /* one group a batch */
			for (size_t j = 1; j < m; j++)
				if (!same_group(&all[i], &all[i + j])) {
					m = j;
					break;
				}
		memcpy(c->items, all + i, m * sizeof(*all));
		c->n = m;
		i += m;
		rc = flush(c);
	}
	for (; i < n; i++)
		kv_item_free(&all[i]);
	free(all);
	return rc;
}

static int imp_init(imp_ctx *c, ef_store *st, const ef_import_opts *o)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	if (o)
		c->o = *o;
	c->batch = c->o.batch ? c->o.batch : BATCH_DEFAULT;
	if (c->batch > BATCH_MAX)
		return ef__err(st->err_id, EF_EINVAL,
			       "batch: %u is outside 1..%d", c->o.batch,
			       BATCH_MAX);
	c->items = ef__calloc(c->batch, sizeof(*c->items));
	c->merged = ef__calloc(c->batch, sizeof(*c->merged));
	if (!c->items || !c->merged)
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	c->now = feed_now(st);
	return EF_OK;
}

static void imp_free(imp_ctx *c)
{
	if (c->items)
		batch_clear(c);
	for (size_t i = 0; i < c->npending; i++)
		kv_item_free(&c->pending[i]);
	skips_done(c, 0);
	kv_cache_drop(c);
	free(c->pending);
	free(c->items);
	free(c->merged);
	free(c->skips);
	free(c->owners);
	for (size_t i = 0; i < c->ntrimmed; i++)
		free(c->trimmed[i]);
	free(c->trimmed);
}

static int import_run(imp_ctx *c, kv_reader *r)
{
	uint64_t n;
	int rc;

	/* the structure of the whole file first (kv_open made any input one
	 * that can be read twice): a malformed file writes nothing, and
	 * progress knows the total */
	rc = kv_scan(r, NULL, NULL, &n);
	if (rc == EF_OK)
		rc = kv_rewind(r);
	if (rc != EF_OK)
		return rc;
	c->total = n;
	rc = kv_scan(r, import_elem, c, &n);
	if (rc == EF_OK)
		rc = flush(c);
	if (rc == EF_OK)
		rc = settle(c);
	return rc;
}

int ef_import_kvbulk(ef_store *st, const char *path,
		     const ef_import_opts *opts, ef_import_stats *stats)
{
	ef_maint *lk = NULL;
	kv_reader r = {0};
	imp_ctx c;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (!path)
		return ef__err(st->err_id, EF_EINVAL, "path: missing");
	rc = imp_init(&c, st, opts);
	if (rc == EF_OK) {
		/* a pipe is spooled beside the store; a store on a cluster has
		 * no directory: $TMPDIR then */
		const char *tmp = getenv("TMPDIR");
		const char *spool = !store_sharded(st->env) ? st->dir
				    : tmp && *tmp ? tmp : "/tmp";
		rc = kv_open(&r, st->err_id, path, spool);
	}
	if (rc == EF_OK)
		rc = ef_maint_lock(st, "edgefeed import", c.o.lock_flags,
				   c.o.on_wait, c.o.wait_ctx, &lk);
	if (rc == EF_OK)
		rc = import_run(&c, &r);
	ef_maint_unlock(lk);
	kv_close(&r);
	if (stats)
		*stats = c.s;
	imp_free(&c);
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

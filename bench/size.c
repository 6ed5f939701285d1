/*
 * size.c - the "size" scenario: bytes on disk per entry after the same
 * workload (--size-entries finalizations, one call each, no sync, about
 * 100 per owner, IP and payload on every one), as written and after each
 * system's own compaction (ef_compact, VACUUM, a compacting LMDB copy).
 * The ledger is checked before and after compaction.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define FEED_CAP_ALL 100000000u
#define ID_SIZE (0xD4ULL << 56)

typedef struct size_sys {
	const char *label;
	const bsys_ops *sys;
	const char *data_file;   /* the main file, within the store directory */
} size_sys;

static const size_sys systems[] = {
	{"edgefeed", &bsys_edgefeed, "data.mdb"},
	{"sqlite", &bsys_sqlite, "feed.sqlite"},
	{"lmdb-raw", &bsys_lmdb, "data.mdb"},
	{"legacy-txn", &bsys_legacy_txn, "data.mdb"},
};

typedef struct sz {
	uint64_t dir_app, dir_alloc, data;
} sz;

static void measure(const size_sys *s, const char *dir, sz *out)
{
	char path[4200];
	FILE *f;

	dir_bytes(dir, &out->dir_app, &out->dir_alloc);
	out->data = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, s->data_file);
	if ((f = fopen(path, "rb"))) {
		fseek(f, 0, SEEK_END);
		out->data = (uint64_t)ftell(f);
		fclose(f);
	}
	if (s->sys == &bsys_sqlite) { /* the WAL holds entries too */
		snprintf(path, sizeof(path), "%s/%s-wal", dir, s->data_file);
		if ((f = fopen(path, "rb"))) {
			fseek(f, 0, SEEK_END);
			out->data += (uint64_t)ftell(f);
			fclose(f);
		}
	}
}

static int verify(bopts *o, const size_sys *s, const char *dir,
		  led *l, uint32_t owners, led_result *r)
{
	bs_cfg bc = {0};
	void *proc, *th;
	int rc;

	bc.feed_cap = FEED_CAP_ALL;
	if (s->sys->open(&proc, dir, &bc) != 0)
		return BS_ERR;
	rc = s->sys->thread(proc, &th);
	if (rc == 0) {
		rc = led_verify(s->sys, th, l, owners, r);
		s->sys->thread_done(th);
	}
	s->sys->close(proc);
	if (rc == 0 && !led_clean(r)) {
		fprintf(stderr, "edgefeed-bench: size: %s: ledger: lost %llu "
			"duplicated %llu unexpected %llu\n", s->label,
			(unsigned long long)r->lost,
			(unsigned long long)r->duplicated,
			(unsigned long long)r->unexpected);
		o->failures++;
	}
	return rc;
}

static int fill(const size_sys *s, const char *dir, uint64_t n,
		uint32_t owners, led *l)
{
	bs_cfg bc = {0};
	void *proc, *th;
	int64_t base = wall_ms();
	int rc;

	bc.feed_cap = FEED_CAP_ALL;
	if (s->sys->open(&proc, dir, &bc) != 0)
		return BS_ERR;
	rc = s->sys->thread(proc, &th);
	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		uint64_t id = ID_SIZE | i;
		uint32_t ow = (uint32_t)(wl_mix(id) % owners);
		wl_item it;
		/* recent: every entry keeps its IP */
		wl_make(&it, id, ow, base - (int64_t)(n - i) * 10);
		rc = s->sys->finalize(th, &it.rec);
		if (rc == BS_ERR || led_add(l, id, ow, rc) != 0)
			rc = BS_ERR;
		else
			rc = 0;
	}
	if (th)
		s->sys->thread_done(th);
	s->sys->close(proc);
	return rc;
}

static int compact(const size_sys *s, const char *dir)
{
	bs_cfg bc = {0};
	void *proc;
	int rc;

	if (!s->sys->compact)
		return 0;
	bc.feed_cap = FEED_CAP_ALL;
	if (s->sys->open(&proc, dir, &bc) != 0)
		return BS_ERR;
	rc = s->sys->compact(proc, dir);
	s->sys->close(proc);
	return rc;
}

static void emit(const size_sys *s, uint64_t n, uint32_t owners,
		 const sz *w, const sz *c, const led_result *r)
{
	json_t *row = json_object(), *cfg = json_object();
	double dn = (double)n;

	json_object_set_new(row, "scenario", json_string("size"));
	json_object_set_new(row, "system", json_string(s->label));
	json_object_set_new(cfg, "entries", json_integer((json_int_t)n));
	json_object_set_new(cfg, "owners", json_integer(owners));
	json_object_set_new(row, "config", cfg);
	json_object_set_new(row, "dataBytes", json_integer((json_int_t)w->data));
	json_object_set_new(row, "dirBytes", json_integer((json_int_t)w->dir_app));
	json_object_set_new(row, "dirAllocatedBytes",
			    json_integer((json_int_t)w->dir_alloc));
	json_object_set_new(row, "dataBytesPerEntry", json_real((double)w->data / dn));
	json_object_set_new(row, "dirBytesPerEntry",
			    json_real((double)w->dir_app / dn));
	json_object_set_new(row, "compactedDataBytes",
			    json_integer((json_int_t)c->data));
	json_object_set_new(row, "compactedDataBytesPerEntry",
			    json_real((double)c->data / dn));
	json_object_set_new(row, "compactedDirBytesPerEntry",
			    json_real((double)c->dir_app / dn));
	json_object_set_new(row, "lost", json_integer((json_int_t)r->lost));
	json_object_set_new(row, "duplicated",
			    json_integer((json_int_t)r->duplicated));
	json_object_set_new(row, "unexpected",
			    json_integer((json_int_t)r->unexpected));
	json_object_set_new(row, "ledgerClean", json_boolean(led_clean(r)));
	row_emit(row);
	table_line("%-11s %9llu %10.1f %10.1f %10.1f %10.1f", s->label,
		   (unsigned long long)n, (double)w->data / dn,
		   (double)w->dir_app / dn, (double)c->data / dn,
		   (double)c->dir_app / dn);
}

static int one_system(bopts *o, const size_sys *s)
{
	uint64_t n = o->size_entries;
	uint32_t owners = (uint32_t)(n / 100 ? n / 100 : 1);
	char *dir = dir_new(o->dir, "size");
	led l = {0};
	led_result r1, r2;
	sz w, c;
	int rc = dir ? 0 : BS_ERR;

	if (rc == 0)
		rc = fill(s, dir, n, owners, &l);
	if (rc == 0)
		rc = verify(o, s, dir, &l, owners, &r1);
	if (rc == 0) {
		measure(s, dir, &w);
		rc = compact(s, dir);
	}
	if (rc == 0) {
		measure(s, dir, &c);
		rc = verify(o, s, dir, &l, owners, &r2);
	}
	if (rc == 0) {
		r2.lost += r1.lost;
		r2.duplicated += r1.duplicated;
		r2.unexpected += r1.unexpected;
		emit(s, n, owners, &w, &c, &r2);
	} else {
		o->failures++;
	}
	dir_remove(dir);
	free(dir);
	led_free(&l);
	return rc;
}

int scen_size(bopts *o)
{
	int rc = 0;

	table_head("size: bytes per entry on disk",
		   "system        entries  data B/e   dir B/e  compact-data "
		   "compact-dir");
	for (size_t i = 0; i < sizeof(systems) / sizeof(*systems); i++)
		if (sys_selected(o, systems[i].label) &&
		    one_system(o, &systems[i]) != 0)
			rc = BS_ERR;
	return rc;
}

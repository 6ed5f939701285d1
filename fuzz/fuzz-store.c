/*
 * fuzz-store.c - see fuzz-store.h.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz-store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ef_store *store;

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb, (void)f, (void)w;
	return remove(p);
}

const char *fuzz_tmpdir(void)
{
	return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

ef_store *fuzz_store_new(const ef_config *cfg)
{
	ef_config nosync = {.flags = EF_NOSYNC};
	char dir[64];
	ef_store *st;

	snprintf(dir, sizeof(dir), "%s/edgefeed-fuzz-XXXXXX", fuzz_tmpdir());
	if (!mkdtemp(dir))
		abort();
	if (ef_open(&st, dir, cfg ? cfg : &nosync) != EF_OK)
		abort();
	return st;
}

void fuzz_store_drop(ef_store *st)
{
	char *dir;

	if (!st)
		return;
	dir = strdup(st->dir); /* st->dir goes with the handle */
	ef_close(st);
	if (dir)
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void cleanup(void)
{
	fuzz_store_drop(store);
}

ef_store *fuzz_store(void)
{
	char rid[16];

	if (store)
		return store;
	store = fuzz_store_new(NULL);
	for (int i = 0; i < 8; i++) {
		ef_receive r = {"fuzz@example.com", rid, 0, "192.0.2.1",
				"{\"fileName\":\"f\"}"};
		snprintf(rid, sizeof(rid), "r%d", i);
		if (ef_finalize(store, &r) != EF_OK)
			abort();
	}
	atexit(cleanup);
	return store;
}

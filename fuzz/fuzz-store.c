/*
 * fuzz-store.c - see fuzz-store.h.
 */
#define _GNU_SOURCE
#include "fuzz/fuzz-store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ef_store *store;
static char dir[] = "/tmp/edgefeed-fuzz-XXXXXX";

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb, (void)f, (void)w;
	return remove(p);
}

static void cleanup(void)
{
	ef_close(store);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

ef_store *fuzz_store(void)
{
	ef_config cfg = {0};
	char rid[16];

	if (store)
		return store;
	if (!mkdtemp(dir))
		abort();
	cfg.flags = EF_NOSYNC;
	if (ef_open(&store, dir, &cfg) != EF_OK)
		abort();
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

/*
 * fuzz-store.h - scratch stores for the targets, each in a fresh temporary
 * directory that goes with it.
 */
#ifndef EF_FUZZ_STORE_H
#define EF_FUZZ_STORE_H

#include "feed/feed.h"

/* The shared small store: opened on first use with a few entries of
 * fuzz@example.com, closed and removed at exit. */
ef_store *fuzz_store(void);

/* Where scratch files go: /dev/shm where there is one, since a disk
 * file system writes back a file that is truncated and written again. */
const char *fuzz_tmpdir(void);

/* A new empty store opened with @cfg (NULL: EF_NOSYNC) in a fresh
 * directory under fuzz_tmpdir(). Aborts if it cannot. */
ef_store *fuzz_store_new(const ef_config *cfg);

/* Close @st and remove its directory; NULL is accepted. */
void fuzz_store_drop(ef_store *st);

#endif

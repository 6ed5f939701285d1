/*
 * fuzz-store.h - one small store per fuzzing process, opened on first use
 * in a fresh temporary directory with a few entries, and removed at exit.
 */
#ifndef EF_FUZZ_STORE_H
#define EF_FUZZ_STORE_H

#include "feed/feed.h"

ef_store *fuzz_store(void);

#endif

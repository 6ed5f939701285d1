/*
 * migrate.h - the migrator's internal pieces: quarantine records.
 */
#ifndef EF_MIGRATE_MIGRATE_H
#define EF_MIGRATE_MIGRATE_H

#include "feed/legacy.h"

#define QUARANTINE_VERSION 1

/*
 * Keep @raw (the legacy value of key @lkey, byte for byte) in a quarantine
 * record quarantine:<owner>:<hash of raw>, with the reasons of @a. The same
 * bytes quarantined twice keep the first record. @owner may be NULL when
 * the legacy key's owner is itself unusable ("-" is used).
 */
int quarantine_put(store_txn *txn, ef_store *st, const key_part *owner,
		   const void *lkey, size_t lklen, const void *raw, size_t len,
		   const legacy_array *a, int64_t now);

#endif

/*
 * migrate.h - the migrator's internal pieces: quarantine records.
 */
#ifndef EF_MIGRATE_MIGRATE_H
#define EF_MIGRATE_MIGRATE_H

#include "feed/legacy.h"

/* In the store: version 2 (raw bytes sealed). In a bulk file: version 1
 * (raw bytes in rawBase64, their IPs past retention removed). */
#define QUARANTINE_VERSION 2
#define QUARANTINE_FILE_VERSION 1

/*
 * Keep @raw (the legacy value of key @lkey, byte for byte) in a quarantine
 * record quarantine:<owner>:<hash of raw>, with the reasons of @a. The same
 * bytes quarantined twice keep the first record. @owner may be NULL when
 * the legacy key's owner is itself unusable ("-" is used). The bytes are
 * sealed under the window of their oldest element that holds an address,
 * and no later than @seal_by (the oldest window they were sealed under
 * before, legacy_value_sealed_since; INT64_MAX for none): moving them
 * never gives them longer to live.
 */
int quarantine_put(store_txn *txn, ef_store *st, const key_part *owner,
		   const void *lkey, size_t lklen, const void *raw, size_t len,
		   const legacy_array *a, int64_t now, int64_t seal_by);

struct json_t;

/*
 * The original bytes of quarantine record @rec (its parsed JSON) stored
 * under key @qkey: opened from "sealed" (version 2) or decoded from
 * "rawBase64" (version 1). *raw is malloc'd. EF_ENOTFOUND when they are
 * gone (shredded with their window's key, or sealed past retention): only
 * "redacted" is left then. EF_ECORRUPT if the record is malformed.
 */
int quarantine_raw(ef_store *st, const void *qkey, size_t qklen,
		   struct json_t *rec, int64_t now, uint8_t **raw, size_t *len);

#endif

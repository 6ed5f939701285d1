/*
 * kvbulk.h - the Workers KV bulk format, shared by the import (kvbulk.c,
 * kvitem.c, kvapply.c; their private header is kvbulk-int.h) and the
 * export (kvexport.c).
 *
 * A file is a JSON array of {"key": string, "value": string, "base64":
 * bool, "expiration", "expiration_ttl", "metadata"}; with "base64": true the
 * value is the standard base64 (padded) of the bytes.
 *
 * Entry records never carry an IP in a file: a store seals its IPs under
 * keys that only it holds (feed.h, "IP retention"), so sealed bytes would
 * not open anywhere else. An entry's IP, while within retention, travels
 * as text in the element's "metadata": {"ip": "203.0.113.7"}, and the import
 * seals it again under the keys of the store it writes.
 */
#ifndef EF_MIGRATE_KVBULK_H
#define EF_MIGRATE_KVBULK_H

#include <jansson.h>
#include <stdio.h>

#include "feed/legacy.h"

/* Largest JSON text of one element (hostile input): a legacy value of
 * LEGACY_MAX_BYTES with every byte escaped still fits. */
#define KV_ELEM_MAX ((size_t)64 << 20)

/* ---- kvread.c: the file, element by element ---- */

typedef struct kv_pos {
	uint64_t line; /* 1-based */
	uint64_t col;  /* 1-based, in characters */
	uint64_t byte; /* 0-based offset */
} kv_pos;

typedef struct kv_reader {
	FILE *f;
	const char *path;
	uint64_t err_id;
	int la;         /* the byte read ahead by rd_peek, EOF, or LA_NONE */
	uint64_t line;  /* line of the next byte */
	uint64_t chars; /* characters of that line before the next byte */
	uint64_t off;   /* offset of the next byte */
	size_t budget;  /* bytes the current element may still take */
	int over;       /* the element went over KV_ELEM_MAX */
	int ioerr;      /* errno of a failed read (or spool write), or 0 */
	FILE *spool;    /* an input read once: each byte read is copied here,
			 * and kv_rewind reads this instead; or NULL */
	const char *spool_dir; /* where the spool is, for messages */
	int spool_err;  /* ioerr is the spool's: it could not be written */
} kv_reader;

/* Open @path ("-": the standard input) for reading, so that it can be read
 * twice: of an input that is not a regular file, each byte the first scan
 * reads is copied into a spool, an unnamed temporary file in @spool_dir
 * (mode 0600, removed by kv_close), which kv_rewind then reads. So a
 * malformed input is read only up to where it goes wrong.
 * EF_ENOTFOUND, EF_EIO, ...: the detail in @err_id's slot. kv_close()
 * after, also after a failure of this or anything else. */
int kv_open(kv_reader *r, uint64_t err_id, const char *path,
	    const char *spool_dir);
void kv_close(kv_reader *r);

/* Read the input again from its start (after a whole kv_scan, for an
 * input read through a spool). */
int kv_rewind(kv_reader *r);

/* Called with each element (an object with a string "key" and a "value");
 * the element is released after the call. A non-EF_OK return stops the
 * scan and is returned. */
typedef int (*kv_elem_fn)(void *ctx, json_t *el, uint64_t index);

/*
 * Read the whole array, calling @fn (if not NULL) with each element.
 * EF_EINVAL names the path and position of the first thing malformed
 * ("PATH: line L column C (byte B), element N: ..."); *count gets the
 * elements read.
 */
int kv_scan(kv_reader *r, kv_elem_fn fn, void *ctx, uint64_t *count);


/* ---- kvexport.c ---- */

/* Standard base64 (padded) of @len bytes, NUL-terminated; malloc'd, NULL
 * when out of memory. */
char *kv_base64(const void *raw, size_t len);

/* ---- kvitem.c: what legacy values lose on the way in ---- */

/*
 * Drop the "ip" of each legacy element of @v (an array of objects, or one
 * object) whose createdAt is past ip_retention at @now, or cannot be read
 * (its age is unknown, so it cannot be shown to be within retention).
 * With @owner, an element without a reservationId first gets the id that
 * the feed gives it (legacy_parse), so that losing its ip does not change
 * which entry it is. *dropped counts the IPs dropped.
 * @return EF_OK or EF_ENOMEM.
 */
int kv_scrub_ips(ef_store *st, const key_part *owner, json_t *v, int64_t now,
		 uint64_t *dropped);

/* Parse a legacy value as the feed does (length-bounded, at most
 * LEGACY_MAX_BYTES); NULL if it is not JSON. New reference. */
json_t *kv_legacy_load(const void *data, size_t len);

#endif

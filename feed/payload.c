/*
 * payload.c - the caller's payload: a JSON object, at most 16 KiB, kept
 * byte-for-byte. jansson validates it (including its UTF-8).
 */
#include <jansson.h>

#include "feed/feed.h"
#include "feed/jsonerr.h"
#include "store/alloc.h"
#include "store/error.h"

int payload_check(uint64_t err_id, const char *field, const char *json,
		  size_t len)
{
	json_error_t jerr;
	uint64_t oom;
	json_t *v;
	int ok;

	if (len > EF_PAYLOAD_MAX)
		return ef__err(err_id, EF_EINVAL,
			       "%s: %zu bytes, more than the limit of %u",
			       field, len, EF_PAYLOAD_MAX);
	oom = ef__oom_count();
	v = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
		       &jerr);
	if (!v && ef__oom_count() != oom)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	if (!v)
		return ef__err(err_id, EF_EINVAL,
			       "%s: invalid JSON at line %d column %d (byte "
			       "%d): %s", field, jerr.line, jerr.column,
			       jerr.position, jsonerr_what(&jerr));
	ok = json_is_object(v);
	json_decref(v);
	if (!ok)
		return ef__err(err_id, EF_EINVAL,
			       "%s: must be a JSON object", field);
	return EF_OK;
}

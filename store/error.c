/*
 * error.c - the error table (ef_strerror, ef_err_name) and per-thread detail.
 */
#include "store/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "edgefeed.h"

const char *ef_strerror(int rc)
{
	switch (rc) {
#define EF__TEXT(name, value, text) \
	case EF_##name:             \
		return text;
		EF_ERRNO_MAP(EF__TEXT)
#undef EF__TEXT
	}
	return "unknown error";
}

const char *ef_err_name(int rc)
{
	switch (rc) {
#define EF__NAME(name, value, text) \
	case EF_##name:             \
		return "EF_" #name;
		EF_ERRNO_MAP(EF__NAME)
#undef EF__NAME
	}
	return "EF_UNKNOWN";
}

const char *ef_version(void)
{
	return EF_VERSION_STRING;
}

/*
 * A thread remembers the messages of the last few stores it used; a slot is
 * recycled least recently written first. Four is plenty: a thread rarely
 * juggles more stores, and the cost of losing a message is only its detail.
 */
#define SLOTS 4
#define MSG_MAX 512

struct err_slot {
	uint64_t id;       /* store id + 1; 0 = unused */
	uint64_t stamp;    /* write order, for recycling */
	char msg[MSG_MAX]; /* NUL-terminated detail */
};

static _Thread_local struct err_slot tl_slots[SLOTS];
static _Thread_local uint64_t tl_stamp;
static uint64_t next_id = 1; /* accessed atomically */

uint64_t ef__err_new_id(void)
{
	return __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
}

static struct err_slot *slot_find(uint64_t id, int create)
{
	struct err_slot *old = &tl_slots[0];
	for (int i = 0; i < SLOTS; i++) {
		if (tl_slots[i].id == id + 1)
			return &tl_slots[i];
		if (tl_slots[i].stamp < old->stamp)
			old = &tl_slots[i];
	}
	if (!create)
		return NULL;
	old->id = id + 1;
	old->msg[0] = '\0';
	return old;
}

int ef__err(uint64_t id, int rc, const char *fmt, ...)
{
	struct err_slot *s;
	va_list ap;

	if (id == EF__ERR_QUIET)
		return rc;
	s = slot_find(id, 1);
	s->stamp = ++tl_stamp;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	return rc;
}

void ef__err_clear(uint64_t id)
{
	struct err_slot *s = slot_find(id, 0);
	if (s)
		s->msg[0] = '\0';
}

const char *ef__err_get(uint64_t id)
{
	struct err_slot *s = slot_find(id, 0);
	return s ? s->msg : "";
}

int ef__errno_code(int e)
{
	switch (e) {
	case 0:
		return EF_OK;
	case ENOMEM:
		return EF_ENOMEM;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return EF_EFULL;
	case EWOULDBLOCK:
		return EF_EBUSY;
	case EINVAL:
	case ENOTDIR:
		return EF_EINVAL;
	case ENOENT:
		return EF_ENOTFOUND;
	default:
		return EF_EIO;
	}
}

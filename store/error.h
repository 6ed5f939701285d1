/*
 * error.h - per-thread error detail for ef_errmsg().
 *
 * Each store (and the "no store" of a failed ef_open) has a unique id. A
 * thread keeps the last message of a few stores it used; ef__err() writes
 * one and returns the code, so call sites read `return ef__err(id, EF_EINVAL,
 * "owner: empty")`.
 */
#ifndef EF_STORE_ERROR_H
#define EF_STORE_ERROR_H

#include <stdint.h>

/* The id of the error slot of failed opens (ef_errmsg(NULL)). */
#define EF__ERR_NOSTORE 0u

/* An id whose errors are not kept: for a check whose failure is an
 * answer, not an error to report. */
#define EF__ERR_QUIET UINT64_MAX

/* A fresh id for a new store; never EF__ERR_NOSTORE. */
uint64_t ef__err_new_id(void);

/* Record the detail of an error for the calling thread; returns @rc. */
int ef__err(uint64_t id, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Forget the calling thread's message for @id (a call succeeded). */
void ef__err_clear(uint64_t id);

/* The calling thread's last message for @id, or "". */
const char *ef__err_get(uint64_t id);

/* Map an errno value from a system call to an EF_E* code. */
int ef__errno_code(int e);

#endif

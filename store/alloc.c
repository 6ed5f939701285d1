/*
 * alloc.c - see alloc.h. The hook costs one relaxed atomic load per
 * allocation when off.
 */
#include "store/alloc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fail_at;   /* allocations left before one fails; 0: off */
static int fail_sticky;    /* keep failing once the first has */
static uint64_t failures;  /* failed by the hook */

static int should_fail(void)
{
	uint64_t left = __atomic_load_n(&fail_at, __ATOMIC_RELAXED);

	if (left == 0)
		return 0;
	if (left == 1) {
		if (!__atomic_load_n(&fail_sticky, __ATOMIC_RELAXED))
			__atomic_store_n(&fail_at, 0, __ATOMIC_RELAXED);
		__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
		return 1;
	}
	__atomic_fetch_sub(&fail_at, 1, __ATOMIC_RELAXED);
	return 0;
}

static _Thread_local uint64_t tl_oom; /* this thread's failed allocations */

uint64_t ef__oom_count(void)
{
	return tl_oom;
}

/* Count a failed allocation; returns @p. */
static void *counted(void *p)
{
	if (!p)
		tl_oom++;
	return p;
}

void *ef__malloc(size_t n)
{
	return counted(should_fail() ? NULL : malloc(n));
}

void *ef__calloc(size_t n, size_t size)
{
	return counted(should_fail() ? NULL : calloc(n, size));
}

void *ef__realloc(void *p, size_t n)
{
	return counted(should_fail() ? NULL : realloc(p, n));
}

char *ef__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ef__malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static void init_once(void)
{
	json_set_alloc_funcs(ef__malloc, free);
}

void ef__alloc_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_once);
}

void ef__alloc_fail_at(uint64_t n, int sticky)
{
	__atomic_store_n(&fail_sticky, sticky, __ATOMIC_RELAXED);
	__atomic_store_n(&failures, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fail_at, n, __ATOMIC_RELAXED);
}

uint64_t ef__alloc_failures(void)
{
	return __atomic_load_n(&failures, __ATOMIC_RELAXED);
}

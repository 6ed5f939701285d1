/*
 * alloc.h - the library's allocator, with a test hook that makes the N-th
 * allocation fail (SQLite's out-of-memory loop): every allocation of
 * edgefeed (and of jansson, which it is given to) goes through it.
 */
#ifndef EF_STORE_ALLOC_H
#define EF_STORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *ef__malloc(size_t n);
void *ef__calloc(size_t n, size_t size);
void *ef__realloc(void *p, size_t n);
char *ef__strdup(const char *s);

/* How many allocations failed on this thread so far (real or hooked).
 * jansson reports an allocation that failed mid-parse as a syntax error,
 * so a failed load compares this before and after to tell EF_ENOMEM from
 * EF_EINVAL. */
uint64_t ef__oom_count(void);

/* Route jansson's allocations through ef__malloc (once per process). */
void ef__alloc_init(void);

/* Test hook: make the @n-th allocation from now fail (1: the next one),
 * and every later one too while @sticky; 0 turns it off. Process-wide. */
void ef__alloc_fail_at(uint64_t n, int sticky);
/* Allocations that failed because of the hook since it was set. */
uint64_t ef__alloc_failures(void);

#endif

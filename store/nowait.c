/*
 * nowait.c - the calling thread's "must not wait" mode (nowait.h).
 */
#include <errno.h>

#include "store/nowait.h"

static _Thread_local int nowait_depth, nowait_refused;

void store_nowait_begin(void)
{
	if (nowait_depth++ == 0)
		nowait_refused = 0;
}

int store_nowait_end(void)
{
	if (nowait_depth > 0)
		nowait_depth--;
	return nowait_refused;
}

void store_nowait_refused(void)
{
	if (nowait_depth)
		nowait_refused = 1;
}

int store_nowait(void)
{
	return nowait_depth > 0;
}

int store_mutex_lock(pthread_mutex_t *mu)
{
	if (!nowait_depth)
		return pthread_mutex_lock(mu);
	if (pthread_mutex_trylock(mu) == 0)
		return 0;
	nowait_refused = 1;
	return EBUSY;
}

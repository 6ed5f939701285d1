/*
 * nowait.h - calls that must not wait (ef_feed_page_try): while a thread is
 * inside one, every lock the library would wait for is only tried, and a
 * lock that another thread or process holds fails the call with EF_EBUSY
 * instead. Nothing such a call does syncs a file. An event loop reads this
 * way on its own thread and falls back to a worker thread on EF_EBUSY.
 *
 * The mode is the calling thread's: a call sets it on entry and clears it
 * on every way out (store_nowait_begin/end around the whole call).
 */
#ifndef EF_STORE_NOWAIT_H
#define EF_STORE_NOWAIT_H

#include <pthread.h>

void store_nowait_begin(void);
/* End it: 1 if anything in it found a lock held and did not wait (then
 * the call's result is not to be trusted: some caller deep down may have
 * taken the refusal for "not there"), else 0. */
int store_nowait_end(void);

/* Record that something refused to wait (store_mutex_lock does itself). */
void store_nowait_refused(void);

/* Is the calling thread inside a call that must not wait? */
int store_nowait(void);

/* pthread_mutex_lock, or only a try inside such a call: 0, or EBUSY when
 * another thread holds @mu and the caller must not wait for it. */
int store_mutex_lock(pthread_mutex_t *mu);

#endif

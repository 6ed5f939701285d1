/*
 * lockview.h - LMDB's lock file seen from outside, for the crash tests:
 * who holds the write lock or a snapshot right now, and survivors asleep on
 * a free LMDB mutex (a wake-up lost to a kill), found and woken.
 */
#ifndef EF_TESTS_LOCKVIEW_H
#define EF_TESTS_LOCKVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* lock.mdb, mapped read-only. */
typedef struct lockview {
	const unsigned char *p;
	size_t len;
} lockview;

/* 1 if lock.mdb is laid out as lk_* expect (checked by lk_calibrate() on
 * transactions of its own), 0 if not, -1 before. */
extern int lk_layout_ok;
void lk_calibrate(void);

void lk_map(const char *dir, lockview *lv);
void lk_unmap(lockview *lv);
uint32_t lk_u32(const lockview *lv, size_t off);

/* The last committed transaction id as the lock region says (what the next
 * writer builds on); 0 while an opener initializes the region. */
uint64_t lk_txnid(const lockview *lv);

/* The thread id that holds the write lock, or 0. */
pid_t lk_writer(const lockview *lv);
/* Does a reader slot of process @pid hold a snapshot? */
int lk_reading(const lockview *lv, pid_t pid);

/* Does the thread named by a futex word still exist? */
int tid_alive(uint32_t word);
/* Is thread @tid one of process @pid's? */
int tid_of(pid_t pid, pid_t tid);
pid_t my_tid(void);
int64_t mono_ms(void);

/* Wake every sleeper on an LMDB mutex that is free (or whose holder is
 * gone): woken[0] gets how many slept on the reader table's mutex,
 * woken[1] on the writer's. */
void lk_wake_free(const lockview *lv, long woken[2]);

/* Watch one store for stalls: call stall_watch() while waiting, and
 * stall_moved() whenever something happened. After STALL_MS without
 * progress it wakes sleepers on a free LMDB mutex, says so and fails
 * (with EF_CRASH_STRICT=0: counts a rescue and goes on); after
 * STALL_FAIL_MS it fails. */
#define STALL_MS 2000
#define STALL_FAIL_MS 60000
typedef struct stall {
	int64_t since;         /* when something last happened */
	unsigned long rescues; /* lost wake-ups found and ended */
} stall;
void stall_moved(stall *sw);
void stall_watch(stall *sw, const lockview *lv, const char *where);

#endif

/*
 * lockview.c - where a kill landed, read from LMDB's lock file, and lost
 * wake-ups on its mutexes found and ended (for the crash tests).
 */
#define _GNU_SOURCE
#include "tests/lockview.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "tests/helpers.h"

/*
 * LMDB 0.9 keeps its writer mutex and reader table in lock.mdb, shared by
 * every process: the write mutex (a glibc robust pthread_mutex_t) at byte
 * 64, whose __owner (byte 72) is the thread id of the write lock's holder,
 * and 64-byte reader slots from byte 128 (txnid, then pid; txnid -1 when
 * the slot holds no snapshot), their count at byte 56, the last committed
 * transaction id at byte 48. The parent reads it, with the victim stopped,
 * to tell whether a kill landed inside a write or a read transaction. The layout is not API: lk_calibrate() checks it on a
 * transaction of its own and, if it does not match, the counts are off
 * (reported as such) while everything else still runs.
 */
#define LK_MAGIC 0xBEEFC0DEu
#define LK_TXNID 48
#define LK_NUMREADERS 56
#define LK_WRITER_TID 72
#define LK_READERS 128
#define LK_SLOT 64

int lk_layout_ok = -1;

void lk_map(const char *dir, lockview *lv)
{
	char path[PATH_MAX];
	struct stat sb;
	int fd;

	lv->p = NULL;
	lv->len = 0;
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	lv->len = (size_t)sb.st_size;
	lv->p = mmap(NULL, lv->len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(lv->p != MAP_FAILED);
	close(fd);
}

void lk_unmap(lockview *lv)
{
	if (lv->p)
		munmap((void *)lv->p, lv->len);
	lv->p = NULL;
}

uint32_t lk_u32(const lockview *lv, size_t off)
{
	uint32_t v;

	memcpy(&v, lv->p + off, sizeof(v));
	return v;
}

uint64_t lk_txnid(const lockview *lv)
{
	uint64_t id;

	if (lv->len < LK_READERS || lk_u32(lv, 0) != LK_MAGIC)
		return 0;
	memcpy(&id, lv->p + LK_TXNID, sizeof(id));
	return id;
}

/* The thread id that holds the write lock, or 0. */
pid_t lk_writer(const lockview *lv)
{
	int32_t tid;

	if (lv->len < LK_READERS || lk_u32(lv, 0) != LK_MAGIC)
		return 0;
	memcpy(&tid, lv->p + LK_WRITER_TID, sizeof(tid));
	return (pid_t)tid;
}

/* Does a reader slot of process @pid hold a snapshot? */
int lk_reading(const lockview *lv, pid_t pid)
{
	uint32_t n;

	if (lv->len < LK_READERS || lk_u32(lv, 0) != LK_MAGIC)
		return 0;
	n = lk_u32(lv, LK_NUMREADERS);
	for (uint32_t i = 0; i < n; i++) {
		size_t at = LK_READERS + (size_t)i * LK_SLOT;
		uint64_t txnid;
		int32_t rpid;

		if (at + LK_SLOT > lv->len)
			break;
		memcpy(&txnid, lv->p + at, sizeof(txnid));
		memcpy(&rpid, lv->p + at + 8, sizeof(rpid));
		if (rpid == pid && txnid != UINT64_MAX)
			return 1;
	}
	return 0;
}

/*
 * A lost wake-up. LMDB's mutexes are glibc robust futexes (the reader table
 * mutex at byte 8, the writer mutex at byte 64). When a process is killed
 * just after a futex wake-up was handed to it (as the waiter woken to take
 * the lock, or as the holder between releasing the word and waking a
 * waiter) while a third process takes the free lock on the fast path, the
 * kernel's clean-up of the dead process finds the lock word non-zero and
 * wakes nobody: the other waiters sleep on a mutex that reads free, until
 * another writer happens to contend. A survivor can block for good (seen
 * here, before txn.lock: a sweeper asleep for two minutes after the workers
 * were done). edgefeed now takes txn.lock first, so that nobody ever waits
 * on those mutexes (store/txnlock.h). The tests still watch: after STALL_MS
 * without progress they wake every sleeper on a free LMDB mutex (FUTEX_WAKE
 * on the shared mapping of lock.mdb: harmless when nobody sleeps), say so
 * and fail; with EF_CRASH_STRICT=0 they count it and go on instead. A stall
 * with the lock held, or one that a wake-up does not end, fails after
 * STALL_FAIL_MS.
 */
#define LK_READER_MUTEX 8
#define LK_WRITER_MUTEX 64

/* Does the thread named by a futex word still exist? */
int tid_alive(uint32_t word)
{
	char path[64];
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%lu",
		 (unsigned long)(word & FUTEX_TID_MASK));
	return stat(path, &sb) == 0;
}

/* Wake every sleeper on an LMDB mutex that is free (or whose holder is
 * gone): woken[0] gets how many slept on the reader table's mutex,
 * woken[1] on the writer's. */
void lk_wake_free(const lockview *lv, long woken[2])
{
	static const size_t at[] = {LK_READER_MUTEX, LK_WRITER_MUTEX};

	woken[0] = woken[1] = 0;
	if (lv->len < LK_READERS || lk_u32(lv, 0) != LK_MAGIC)
		return;
	for (size_t i = 0; i < sizeof(at) / sizeof(*at); i++) {
		uint32_t word = lk_u32(lv, at[i]);
		long n;

		if (word != 0 && tid_alive(word))
			continue;
		n = syscall(SYS_futex, (const uint32_t *)(lv->p + at[i]),
			    FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		if (n > 0)
			woken[i] = n;
	}
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stall_moved(stall *sw)
{
	sw->since = mono_ms();
}

void stall_watch(stall *sw, const lockview *lv, const char *where)
{
	int64_t idle = mono_ms() - sw->since;
	long woken[2];

	if (idle < STALL_MS)
		return;
	lk_wake_free(lv, woken);
	if (woken[0] + woken[1] > 0) {
		sw->rescues++;
		printf("crash: %s: no progress for %lld ms; asleep on a free "
		       "LMDB mutex (a wake-up lost to a kill): %ld on the "
		       "writer's, %ld on the reader table's: woken\n", where,
		       (long long)idle, woken[1], woken[0]);
		fflush(stdout);
		if (th_env_ulong("EF_CRASH_STRICT", 1))
			fail_msg("%s: a survivor was blocked on a free LMDB "
				 "mutex for %lld ms", where, (long long)idle);
		stall_moved(sw);
		return;
	}
	if (idle > STALL_FAIL_MS)
		fail_msg("%s: no progress for %lld ms; the write lock is held "
			 "by thread %ld", where, (long long)idle,
			 (long)lk_writer(lv));
}

/* Is thread @tid one of process @pid's? */
int tid_of(pid_t pid, pid_t tid)
{
	char path[64];
	struct stat sb;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld", (long)pid, (long)tid);
	return stat(path, &sb) == 0;
}

pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

typedef struct calib {
	int ok;
	lockview lv;
} calib;

static int calib_w(store_txn *t, void *ctx)
{
	calib *c = ctx;

	(void)t;
	c->ok = lk_writer(&c->lv) == my_tid();
	return FEED_NOCHANGE;
}

static int calib_r(store_txn *t, void *ctx)
{
	calib *c = ctx;

	(void)t;
	c->ok = c->ok && lk_reading(&c->lv, getpid()) &&
		lk_writer(&c->lv) != my_tid();
	return EF_OK;
}

/* Check the lock file layout against a write and a read transaction of our
 * own (once per process). */
void lk_calibrate(void)
{
	char *dir;
	ef_config cfg = {0};
	ef_store *st;
	calib c = {0, {NULL, 0}};

	if (lk_layout_ok >= 0)
		return;
	dir = th_tmpdir();
	cfg.flags = EF_NOSYNC;
	st = th_open(dir, &cfg);
	lk_map(dir, &c.lv);
	(void)store_write(st->env, calib_w, &c);
	assert_int_equal(store_read(st->env, calib_r, &c), EF_OK);
	lk_layout_ok = c.ok && lk_writer(&c.lv) == 0;
	lk_unmap(&c.lv);
	ef_close(st);
	th_cleanup(dir);
	if (!lk_layout_ok)
		printf("crash: lock.mdb is not laid out as LMDB 0.9 on glibc "
		       "lays it out: kills inside transactions are not "
		       "counted\n");
}

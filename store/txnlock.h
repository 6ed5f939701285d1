/*
 * txnlock.h - txn.lock: processes take turns at LMDB's mutexes through a
 * lock the kernel hands over itself.
 *
 * LMDB's writer mutex and reader-table mutex are glibc robust mutexes in
 * lock.mdb. A process killed just after a futex wake-up was handed to it
 * (or between releasing such a mutex and waking a waiter), while a third
 * process takes the free mutex on the fast path, takes the wake-up with it:
 * the other waiters sleep on a mutex that reads free until somebody else
 * contends, and in a store where nothing else writes, for good
 * (docs/RELIABILITY.md, tests/test-lockstorm.c). So an edgefeed process
 * never waits on those mutexes: it first takes txn.lock, a POSIX record
 * lock (fcntl F_SETLKW) on the store directory's txn.lock, which the kernel
 * releases when its holder dies and hands to the next waiter itself. It is
 * held around every call that takes one of LMDB's mutexes: a write
 * transaction from begin to commit or abort, the begin of a read
 * transaction that needs a new reader slot, and clearing dead readers;
 * and around opening the store, whose first opener initializes lock.mdb
 * (store/env.c, store_open).
 *
 * POSIX record locks belong to the process: a forked child does not inherit
 * one, and the kernel drops them when the process dies. They do not keep
 * the threads of one process apart, and closing any descriptor of the file
 * drops them: so a process keeps one descriptor of each txn.lock, shared by
 * all its handles of that store, with a mutex beside it for its threads.
 * Nothing else in the process may open and close txn.lock.
 */
#ifndef EF_STORE_TXNLOCK_H
#define EF_STORE_TXNLOCK_H

#include <stdint.h>

#define TXNLOCK_FILE "txn.lock"

typedef struct txnlock txnlock;

/* This process's txn.lock of the store in @dir (made if missing). When the
 * directory cannot take the file (a read-only handle on a read-only
 * directory), *@out is NULL and EF_OK: LMDB's mutexes then work alone, as
 * they would without edgefeed. EF_ENOMEM, EF_EIO otherwise. */
int txnlock_open(const char *dir, uint64_t err_id, txnlock **out);
void txnlock_close(txnlock *l);

/* Wait for the lock (the other threads of this process, then the other
 * processes), and give it back. NULL: nothing to do. */
void txnlock_take(txnlock *l);
void txnlock_give(txnlock *l);

#endif

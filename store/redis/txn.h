/*
 * txn.h - transactions over one group of keys on Redis Cluster: the unit
 * the Redis engine gives the store seam (an owner's feed is one group).
 *
 * A group lives under one hash tag {T}, so on one slot and one master:
 *   ef:{T}:h   a hash, field = the key (DESIGN.md's schema), value = the
 *              value, byte for byte as LMDB stores it
 *   ef:{T}:z   a sorted set of the same keys, all of score 0, so that
 *              ZRANGEBYLEX walks them in LMDB's order (memcmp, then length)
 *   ef:{T}:t:X a commit token, for the address's retry_ms + timeout_ms
 *              + 1 minute (see rtxn_commit)
 *
 * Isolation is optimistic: the transaction WATCHes both keys before its
 * first read, reads as it goes, buffers its writes, and commits them in
 * one MULTI/EXEC, which Redis refuses if either key changed meanwhile;
 * the caller then runs it again from the start (store.h's re-run rule).
 * A read-only transaction ends with an empty MULTI/EXEC too, so that
 * everything it read is one consistent state of the group.
 *
 * One transaction at a time per client (so per thread): its WATCH state
 * lives on the one connection the client keeps to the group's master, and
 * a second transaction begun on that node before the first ends would mix
 * its keys into the first's WATCH.
 */
#ifndef EF_STORE_REDIS_TXN_H
#define EF_STORE_REDIS_TXN_H

#include <stddef.h>

#include "store/redis/client.h"
#include "store/store.h"

#define RTXN_TAG_MAX 64

/* rtxn_commit's status: the group changed under the transaction (or its
 * slot moved): nothing was written; run it again. */
#define RTXN_RETRY 2

typedef struct rtxn rtxn;
typedef struct rcur rcur;

/* Begin a transaction on the group of hash tag @tag (1..RTXN_TAG_MAX
 * bytes, no braces) through @c. EF_OK; RTXN_RETRY (no master reachable
 * now: the message says why); EF_ENOMEM. */
int rtxn_begin(rclient *c, const char *tag, int write, rtxn **out);

/* Reads see the transaction's own writes. Values are borrowed until the
 * transaction ends. EF_OK, EF_ENOTFOUND, RTXN_RETRY (the group is moving:
 * abort and run again), EF_EIO, EF_ENOMEM. */
int rtxn_get(rtxn *t, const void *k, size_t klen, store_val *v);

/* Buffered until commit. STORE_NOOVERWRITE: EF_EXISTS if the key is
 * there. rtxn_del: EF_ENOTFOUND if it is not. */
int rtxn_put(rtxn *t, const void *k, size_t klen, const void *v,
	     size_t vlen, unsigned flags);
int rtxn_del(rtxn *t, const void *k, size_t klen);

/*
 * Commit: EF_OK (written; with the address's wait=N, also acknowledged by
 * N replicas); RTXN_RETRY (nothing written: run again); EF_EIO (the
 * message says what is known: not written, or written on the master but
 * not acknowledged by enough replicas). The transaction is freed in every
 * case.
 *
 * A commit whose reply is lost (the connection broke after EXEC left)
 * is not guessed at: the transaction also wrote its token key, and the
 * client asks the slot's master whether the token is there: then it was
 * committed (EF_OK); if not, it was not (RTXN_RETRY).
 */
int rtxn_commit(rtxn *t);
void rtxn_abort(rtxn *t); /* NULL is fine */

/* End without writing anything, but say whether what it read was one state
 * of the group: EF_OK (it was), RTXN_RETRY (the group changed meanwhile:
 * what it read may be torn), or an error. Freed in every case. For a
 * transaction that decided not to write (or failed) on what it read. */
int rtxn_verify(rtxn *t);

/* Cursors over the group in key order, merged with the transaction's own
 * writes. Closed with the transaction or by rcur_close. */
int rcur_open(rtxn *t, rcur **out);
void rcur_close(rcur *c);
/* The caller expects to read about @n keys: the next batch fetched is
 * that many (within the batch bounds), not the default first size. */
void rcur_hint(rcur *c, size_t n);
int rcur_seek(rcur *c, const void *k, size_t klen, store_val *ok,
	      store_val *ov); /* first key >= @k */
int rcur_next(rcur *c, store_val *ok, store_val *ov);
int rcur_prev(rcur *c, store_val *ok, store_val *ov);
int rcur_last(rcur *c, store_val *ok, store_val *ov);

/* Test hook: the next commit's EXEC is sent and the connection cut
 * before its reply is read, as a network failure would. */
void rtxn__cut_after_exec(int on);

#endif

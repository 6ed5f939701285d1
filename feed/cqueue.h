/*
 * cqueue.h - the commit queue that the processes (and threads) of one store
 * share for group commit: a mapped file of fixed slots, "commit.queue" in
 * the store directory, next to LMDB's lock file.
 *
 * A caller writes its prepared finalization (fin_item: escaped owner and
 * reservation id, sort key, encoded record with the IP already sealed)
 * into a free slot and waits on the slot's own futex word. One caller at a
 * time leads: it claims every pending slot, applies them in one write
 * transaction (group.c) and completes each slot with its own result, then
 * hands the lead on to a caller still pending. Nothing in this file is
 * durable: the truth is LMDB's, and every slot request carries a random
 * token that the transaction applying it records in the store
 * (group.c: meta:groupCommit:<slot>), so that a request is applied at most
 * once whatever dies where, and a recovering leader or a waiter that gives
 * up reads its result from there instead of applying it again.
 *
 * Locking: no mutex is shared between processes. LMDB's own robust mutexes
 * lost wake-ups under kill -9 here (docs/RELIABILITY.md), and a robust
 * mutex must be made consistent by whoever finds it dead, inside code that
 * can itself be killed. Instead every slot is a small state machine in one
 * 32-bit word changed only by compare-and-swap (so a stale actor's change
 * fails instead of landing), its futex is waited on with a timeout, and a
 * party that does not move is judged by its pid and process start time
 * (which tells a reused pid apart). The lead is a pid in the header, taken
 * by compare-and-swap; a leader found dead is replaced. Safety never rests
 * on the lead being unique: two leaders claim disjoint slots by CAS, and
 * their transactions are serialized by LMDB's writer lock (txn.lock).
 *
 * Slot word: seq << 5 | NUDGE | WAITING | state.
 *   FREE -> FILLING (a caller took it) -> PENDING (ready) -> CLAIMED (in a
 *   leader's batch) -> DONE (result written) -> FREE, seq + 1 (the caller
 *   read it). A dead caller's FILLING, PENDING or DONE slot is reclaimed
 *   (-> FREE: its request was never acknowledged), and a dead
 *   leader's CLAIMED slot is taken over by the next leader, which resolves
 *   it from the store's record of its token.
 */
#ifndef EF_FEED_CQUEUE_H
#define EF_FEED_CQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "feed/feed.h"

#define CQ_FILE "commit.queue"
#define CQ_NSLOTS 128u     /* slots in a queue file */
#define CQ_SLOT_SIZE 20480u /* bytes a slot: room for a 16 KiB payload */

/* Statuses (positive; distinct from FEED_NOCHANGE 100, KV_SKIPPED 101,
 * IPSEAL_EXPIRED 102, FEED_TRIMMED 103, KEYRING_DESTROYED 110). */
#define CQ_FULL 120   /* no free slot, or the request does not fit: commit
		       * without the queue */
#define CQ_DONE 121   /* the request has its result */
#define CQ_LEAD 122   /* the caller leads now: claim, apply, complete */
#define CQ_LOST 123   /* the slot is not the caller's any more (reclaimed,
		       * or the file was found damaged): resolve the request
		       * from the store (group.c) */
#define CQ_ALONE 124  /* nobody else is in the queue: commit on your own,
		       * then cq_alone_end */

typedef struct cqueue cqueue;

/* A caller's hold on its slot. */
typedef struct cq_ticket {
	uint32_t slot;      /* index */
	uint32_t seq;       /* the slot's seq when taken */
	uint8_t token[16];  /* random: names the request in the store */
} cq_ticket;

/* A request claimed by a leader: a private copy of the slot's. */
typedef struct cq_item {
	fin_item it;        /* it.rec points into the leader's buffer */
	int64_t now;        /* the caller's clock */
	uint8_t token[16];
	uint32_t slot;
	uint32_t word;      /* the slot word the claim left */
	int rc;             /* result, set by the leader */
} cq_item;

/* Counters kept in the file (all processes), for tests and the bench. */
typedef struct cq_stats {
	uint64_t batches;   /* transactions committed by leaders */
	uint64_t batched;   /* requests completed by them */
	uint64_t recovered; /* requests of a dead leader resolved from the store */
	uint64_t reclaimed; /* slots of dead callers freed */
	uint64_t alone;     /* requests lone callers committed on their own */
	uint32_t used;      /* slots not FREE right now */
	uint32_t pending;   /* of them, PENDING (waiting for a leader) */
	uint32_t leader;    /* pid of the leading process, 0: none */
} cq_stats;

/*
 * Map the queue file of the store in @dir, making it if missing; a file
 * that is not a valid queue (magic, version, sizes, header checksum, an
 * impossible slot state) is never used: a fresh one is made beside it and
 * renamed over it, so that a process that still has the old one mapped is
 * not disturbed (it sees the old header retired and maps the new file).
 * @tag names the settings a request is applied with (group.c): a leader
 * claims only requests of its own tag.
 * EF_OK with *out; a refusal or failure (EF_EIO, EF_ENOMEM, ...) leaves
 * *out NULL: the caller commits without the queue.
 */
int cqueue_open(const char *dir, uint32_t tag, uint64_t err_id, cqueue **out);
/* Unmap; frees the queues it replaced too (cqueue_renew). NULL: nothing. */
void cqueue_close(cqueue *q);

/* The queue that replaces @q when @q was found damaged or retired (a new
 * mapping of the file now under CQ_FILE), or NULL if none can be had. The
 * old one stays mapped (waiters may still use it) until the new one is
 * closed. Not thread-safe: the caller serializes it. */
cqueue *cqueue_renew(cqueue *q, uint64_t err_id);

/* Put @it (applied at @now) into a free slot: EF_OK with @t; CQ_ALONE (the
 * caller holds a slot, empty, and no other is in use and nobody leads:
 * commit on your own, then cq_alone_end); CQ_FULL (no free slot, or the
 * request does not fit a slot); CQ_LOST (the file is damaged or retired:
 * renew it). */
int cq_submit(cqueue *q, const fin_item *it, int64_t now, cq_ticket *t);

/* Give back the slot of a CQ_ALONE submission, whose caller committed
 * @n requests on its own (counted in cq_stats.alone). */
void cq_alone_end(cqueue *q, const cq_ticket *t, size_t n);

/* Wait for the request of @t: CQ_DONE with *rc and the detail of an error
 * result in @errbuf (@errcap bytes; the slot is free again); CQ_LEAD (the
 * caller leads: cq_claim, apply, cq_complete, cq_lead_end, then wait
 * again); CQ_LOST (resolve it from the store). Never waits on a dead
 * process: a waiter whose leader died takes the lead. */
int cq_wait(cqueue *q, cq_ticket *t, int *rc, char *errbuf, size_t errcap);

/* Leader: claim up to @cap pending requests of the leader's tag, and the
 * claimed ones of dead leaders, into @items (which live until the next
 * cq_claim of @q). Returns how many. */
size_t cq_claim(cqueue *q, cq_item *items, size_t cap);

/* Leader: give the request of @item its result (the slot becomes DONE and
 * its waiter is woken), @errmsg the detail of an error (may be ""). */
void cq_complete(cqueue *q, const cq_item *item, int rc, const char *errmsg);

/* Leader: count a committed batch of @n requests, @recovered of them
 * resolved from the store. */
void cq_count_batch(cqueue *q, size_t n, size_t recovered);

/* Leader: give up the lead, and wake one caller still pending to take it. */
void cq_lead_end(cqueue *q);

/* The counters, and the slots in use now (a scan). */
void cq_stats_get(cqueue *q, cq_stats *out);

/* The counters of the queue file of @dir without joining it (tests, the
 * bench): EF_OK, EF_ENOTFOUND (no valid queue file). */
int cqueue_peek(const char *dir, cq_stats *out);

/* ---- the store's side of a batch (cqbatch.c) ---- */

/* Lead one batch: claim what is pending (@items: room for CQ_NSLOTS),
 * apply it in one write transaction, complete each slot with its result,
 * and hand the lead on. Each request is applied only if the store has no
 * record of its token, and its token is recorded in the same transaction
 * (meta:groupCommit:<slot>). */
void cqb_lead(ef_store *st, cqueue *q, cq_item *items);

/* Resolve the request of @t (prepared as @it, at @now) from the store: its
 * recorded result if it was committed, else apply it now, with its token,
 * in a transaction of its own. Its result, or a store error. */
int cqb_resolve(ef_store *st, const cq_ticket *t, const fin_item *it,
		int64_t now);

/* Test hook: called with the name of each point a participant passes
 * ("filling", "leading", "claimed", "applied", "committed",
 * "completing"); NULL: off.
 * Process-wide. A test makes it stop or kill the process there. */
typedef void (*cq_hook_fn)(const char *point);
void cqueue__hook(cq_hook_fn fn);
void cq__at(const char *point);
/* Test hook: never take the lone caller's way (CQ_ALONE), so that a test
 * of the queue's own mechanics sees every request go through a slot.
 * Process-wide. */
void cqueue__never_alone(int on);
/* Test hook: take the lead (as if leading) so that callers queue up behind
 * it; EF_OK or EF_EBUSY. cq_lead_end gives it back. */
int cqueue__hold_lead(cqueue *q);

#endif

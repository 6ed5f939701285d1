/*
 * cqueue.c - the commit queue file (cqueue.h): layout, open and rebuild,
 * and the slot protocol. What a batch writes in the store is group.c's.
 */
#define _GNU_SOURCE
#include "feed/cqueue.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"
#include "store/error.h"
#include "store/lock.h"
#include "store/storefile.h"

#define CQ_MAGIC 0x51434645u         /* "EFCQ", little-endian */
#define CQ_MAGIC_RETIRED 0x44525445u /* "ETRD": replaced by a rebuild */
#define CQ_VERSION 1u
#define CQ_HDR_SIZE 4096u
#define CQ_FILE_SIZE ((size_t)CQ_HDR_SIZE + (size_t)CQ_NSLOTS * CQ_SLOT_SIZE)
#define CQ_TMP_FILE "commit.queue.new"
#define CQ_WAIT_MS 20        /* a waiter re-checks its leader this often */
#define CQ_SCAN_MS 200       /* reclaim dead callers' slots at most this often */
#define CQ_OPEN_TRIES 8      /* the file replaced under us meanwhile */

/* slot word */
#define S_FREE 0u
#define S_FILLING 1u
#define S_PENDING 2u
#define S_CLAIMED 3u
#define S_DONE 4u
#define S_STATE 0x7u   /* states 5..7 are impossible: a damaged file */
#define S_WAITING 0x8u /* the caller sleeps (or is about to) on the word */
#define S_NUDGE 0x10u  /* a leader that ended asks this caller to lead */
#define S_SEQ_SHIFT 5
#define S_SEQ(w) ((w) >> S_SEQ_SHIFT)
#define S_MAKE(seq, st) ((uint32_t)(seq) << S_SEQ_SHIFT | (st))

/* The file's header. The fields up to sum are fixed at creation and
 * checked (and summed) on every use; the rest changes while it is used. */
struct cq_hdr {
	uint32_t magic;       /* CQ_MAGIC; CQ_MAGIC_RETIRED once replaced */
	uint32_t version;     /* CQ_VERSION */
	uint32_t slot_size;   /* CQ_SLOT_SIZE */
	uint32_t nslots;      /* CQ_NSLOTS */
	uint64_t file_size;   /* CQ_FILE_SIZE */
	uint64_t generation;  /* random: each made file has its own */
	uint8_t sum[16];      /* BLAKE2b-128 of the fields above */
	uint32_t leader;      /* pid of the process that leads; 0: nobody */
	uint32_t pad;
	uint64_t leader_start; /* its start time (a reused pid is not it) */
	uint64_t batches;     /* cq_stats (atomic adds) */
	uint64_t batched;
	uint64_t recovered;
	uint64_t reclaimed;
	uint64_t alone;       /* requests committed by lone callers (was
			       * padding before pairs: version 1 still fits) */
	/* each slot's word and owner, side by side (not in the slots): a scan
	 * of all of them reads 16 cache lines, not 128 pages */
	uint64_t pairs[CQ_NSLOTS] __attribute__((aligned(64)));
};
#define CQ_HDR_FIXED offsetof(struct cq_hdr, sum)
#define CQ_HDR_CHECKED offsetof(struct cq_hdr, leader)

/* A slot. Its request fields are written by its caller while FILLING and
 * read by leaders while CLAIMED; rc and errmsg by its leader while CLAIMED,
 * read by the caller once DONE. */
struct cq_slot {
	/* the slot's word and owner: cq_hdr.pairs[its index] */
	uint64_t owner_start;   /* the caller's start time; 0: unknown yet */
	uint32_t leader_pid;    /* the leader that claimed it */
	uint32_t tag;           /* settings it is applied with (cqueue_open) */
	uint64_t leader_start;
	uint8_t token[16];      /* random: names the request in the store */
	int64_t now;            /* the caller's clock */
	int64_t created_ms;
	int32_t rc;             /* result */
	uint32_t owner_len;     /* escaped owner, bytes */
	uint32_t rid_len;       /* escaped reservation id, bytes */
	uint32_t rec_len;       /* encoded record, bytes */
	char sort[16];          /* createdSort, NUL-terminated */
	char owner[EF_OWNER_KEY_MAX + 1];
	char rid[EF_RESERVATION_KEY_MAX + 1];
	char errmsg[256];       /* the detail of an error result */
	uint8_t rec[];          /* the record: up to CQ_REC_CAP bytes */
};
#define CQ_REC_CAP (CQ_SLOT_SIZE - offsetof(struct cq_slot, rec))

_Static_assert(sizeof(struct cq_hdr) <= CQ_HDR_SIZE, "header fits");
_Static_assert(offsetof(struct cq_hdr, pairs) == 128, "tests/test-cqueue.c");
_Static_assert(CQ_REC_CAP >= EF_PAYLOAD_MAX + 1024, "a 16 KiB payload fits");
_Static_assert(CQ_SLOT_SIZE % 64 == 0, "slots stay aligned");
_Static_assert(EF_RESERVATION_KEY_MAX <= EF_OWNER_KEY_MAX, "key_part holds both");

struct cqueue {
	char *dir;              /* the store directory, owned */
	uint32_t tag;
	int fd;
	uint8_t *map;           /* CQ_FILE_SIZE bytes */
	struct cq_hdr *h;
	struct cq_hdr good;     /* the header as validated at open */
	uint8_t *lbuf;          /* leader: copies of claimed records */
	int64_t last_scan;      /* monotonic ms of the last reclaim scan (atomic) */
	cqueue *prev;           /* queues this one replaced, unmapped at close */
};

static cq_hook_fn hook;

void cqueue__hook(cq_hook_fn fn)
{
	__atomic_store_n(&hook, fn, __ATOMIC_SEQ_CST);
}

void cq__at(const char *point)
{
	cq_hook_fn fn = __atomic_load_n(&hook, __ATOMIC_SEQ_CST);

	if (fn)
		fn(point);
}

/* ---- processes: who is alive ---- */

/* The start time (clock ticks after boot) of @pid and whether it is a
 * zombie, from /proc/<pid>/stat: EF_OK, or EF_ENOTFOUND (no such process,
 * or /proc cannot tell: the caller relies on kill(2) alone). */
static int proc_stat(pid_t pid, uint64_t *start, int *zombie)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return EF_ENOTFOUND;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return EF_ENOTFOUND;
	buf[n] = '\0';
	/* "pid (comm) state ..." where comm may hold anything: after the
	 * last ')' come field 3 (state) up to field 22 (starttime) */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return EF_ENOTFOUND;
	*zombie = p[2] == 'Z' || p[2] == 'X';
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return EF_ENOTFOUND;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return EF_OK;
}

static uint32_t my_pid;    /* this process (after fork, the child's) */
static uint64_t my_start;

static uint32_t self(uint64_t *start)
{
	uint32_t pid = (uint32_t)getpid();

	if (__atomic_load_n(&my_pid, __ATOMIC_ACQUIRE) != pid) {
		uint64_t s = 0;
		int z;

		if (proc_stat((pid_t)pid, &s, &z) != EF_OK)
			s = 0;
		__atomic_store_n(&my_start, s, __ATOMIC_RELAXED);
		__atomic_store_n(&my_pid, pid, __ATOMIC_RELEASE);
	}
	if (start)
		*start = __atomic_load_n(&my_start, __ATOMIC_RELAXED);
	return pid;
}

/* Is the process @pid, started at @start (0: unknown), alive? A zombie is
 * not: it will never move again. This process is. */
static int alive(uint32_t pid, uint64_t start)
{
	uint64_t s;
	int zombie;

	if (pid == 0 || pid > INT_MAX)
		return 0;
	if (pid == self(NULL))
		return 1;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	if (proc_stat((pid_t)pid, &s, &zombie) != EF_OK)
		return 1;
	return !zombie && (start == 0 || s == start);
}

/* ---- futexes ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep while *@w == @val, at most @ms: 1 if the time ran out. Shared
 * futex (not FUTEX_PRIVATE): the word is in a mapping of other processes. */
static int fx_wait(uint32_t *w, uint32_t val, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	return syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0) != 0 &&
	       errno == ETIMEDOUT;
}

static void fx_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static uint32_t ld(const uint32_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

static int cas(uint32_t *w, uint32_t expect, uint32_t want)
{
	return __atomic_compare_exchange_n(w, &expect, want, 0,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* ---- the file ---- */

static struct cq_slot *slot_at(const cqueue *q, uint32_t i)
{
	assert(i < CQ_NSLOTS);
	return (struct cq_slot *)(q->map + CQ_HDR_SIZE +
				  (size_t)i * CQ_SLOT_SIZE);
}

static void hdr_make(struct cq_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = CQ_MAGIC;
	h->version = CQ_VERSION;
	h->slot_size = CQ_SLOT_SIZE;
	h->nslots = CQ_NSLOTS;
	h->file_size = CQ_FILE_SIZE;
	randombytes_buf(&h->generation, sizeof(h->generation));
	crypto_generichash(h->sum, sizeof(h->sum), (const uint8_t *)h,
			   CQ_HDR_FIXED, NULL, 0);
}

/* Is @map (CQ_FILE_SIZE bytes) a queue to be trusted: the header's fixed
 * fields and their sum, and every slot in a possible state? */
static int file_valid(const uint8_t *map)
{
	const struct cq_hdr *h = (const struct cq_hdr *)map;
	uint8_t sum[16];

	if (h->magic != CQ_MAGIC || h->version != CQ_VERSION ||
	    h->slot_size != CQ_SLOT_SIZE || h->nslots != CQ_NSLOTS ||
	    h->file_size != CQ_FILE_SIZE)
		return 0;
	crypto_generichash(sum, sizeof(sum), map, CQ_HDR_FIXED, NULL, 0);
	if (sodium_memcmp(sum, h->sum, sizeof(sum)) != 0)
		return 0;
	for (uint32_t i = 0; i < CQ_NSLOTS; i++) {
		uint64_t p = __atomic_load_n(&h->pairs[i], __ATOMIC_SEQ_CST);
		uint32_t st = (uint32_t)p & S_STATE;
		if (st > S_DONE || (st == S_FREE) != (p >> 32 == 0))
			return 0; /* an impossible state, or owner */
	}
	return 1;
}

/* Give the empty (or to be emptied) file @fd its size and header. */
static int file_init(int fd, const char *dir, uint64_t err_id)
{
	struct cq_hdr h;

	hdr_make(&h);
	if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)CQ_FILE_SIZE) != 0 ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return ef__err(err_id, ef__errno_code(errno),
			       "cannot make '%s/%s': %s", dir, CQ_FILE,
			       strerror(errno));
	return EF_OK;
}

/* Replace the damaged queue file (@fd, held with LOCK_EX) by a fresh one:
 * made under a temporary name, renamed over it; the old one is marked
 * retired for whoever still has it mapped. *@newfd gets the new file. */
static int file_rebuild(const char *dir, int fd, off_t size, uint64_t err_id,
			int *newfd)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	uint32_t retired = CQ_MAGIC_RETIRED;
	int sys_err, rc;

	if (size >= (off_t)sizeof(retired))
		(void)!pwrite(fd, &retired, sizeof(retired), 0);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", dir, CQ_TMP_FILE) >=
		    sizeof(tmp) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, CQ_FILE) >=
		    sizeof(path))
		return ef__err(err_id, EF_EINVAL, "store path too long");
	if (unlink(tmp) != 0 && errno != ENOENT)
		return ef__err(err_id, EF_EIO, "cannot remove '%s': %s", tmp,
			       strerror(errno));
	rc = storefile_open(dir, CQ_TMP_FILE, O_RDWR | O_CREAT, err_id, newfd,
			    &sys_err);
	if (rc != EF_OK)
		return rc;
	rc = file_init(*newfd, dir, err_id);
	if (rc == EF_OK && rename(tmp, path) != 0)
		rc = ef__err(err_id, EF_EIO, "cannot rename '%s': %s", tmp,
			     strerror(errno));
	if (rc != EF_OK) {
		close(*newfd);
		*newfd = -1;
		unlink(tmp);
	}
	return rc;
}

static int file_map(int fd, uint8_t **map)
{
	void *p = mmap(NULL, CQ_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);

	*map = p == MAP_FAILED ? NULL : p;
	return p == MAP_FAILED ? -1 : 0;
}

/*
 * Open, check and map the queue file, under an exclusive flock of it (held
 * only here: openers take turns, users never wait on it). A file replaced
 * between our open and our lock is opened again.
 */
static int file_open(cqueue *q, uint64_t err_id)
{
	struct stat sb;
	int fd = -1, sys_err, rc = EF_EIO;

	for (int tries = 0; tries < CQ_OPEN_TRIES; tries++) {
		rc = storefile_open(q->dir, CQ_FILE, O_RDWR | O_CREAT, err_id,
				    &fd, &sys_err);
		if (rc != EF_OK)
			return rc;
		if (lock_flock(fd, LOCK_EX) != 0) {
			rc = ef__err(err_id, EF_EIO, "cannot lock '%s/%s': %s",
				     q->dir, CQ_FILE, strerror(errno));
			break;
		}
		if (storefile_same(q->dir, CQ_FILE, fd, err_id) != EF_OK) {
			close(fd); /* replaced meanwhile: the new one */
			fd = -1;
			rc = EF_EIO;
			continue;
		}
		rc = fstat(fd, &sb) == 0 ? EF_OK : EF_EIO;
		if (rc == EF_OK && sb.st_size == 0)
			rc = file_init(fd, q->dir, err_id);
		else if (rc == EF_OK && sb.st_size == (off_t)CQ_FILE_SIZE &&
			 file_map(fd, &q->map) == 0 && file_valid(q->map))
			break; /* mapped and trusted */
		if (q->map) {
			munmap(q->map, CQ_FILE_SIZE);
			q->map = NULL;
		}
		if (rc == EF_OK && sb.st_size != 0) {
			int nfd;

			rc = file_rebuild(q->dir, fd, sb.st_size, err_id, &nfd);
			if (rc == EF_OK) {
				close(fd);
				fd = nfd;
			}
		}
		if (rc == EF_OK && file_map(fd, &q->map) != 0)
			rc = ef__err(err_id, EF_EIO, "cannot map '%s/%s': %s",
				     q->dir, CQ_FILE, strerror(errno));
		break;
	}
	if (rc != EF_OK || !q->map) {
		if (fd >= 0)
			close(fd);
		return rc != EF_OK ? rc : EF_EIO;
	}
	lock_flock(fd, LOCK_UN);
	q->fd = fd;
	q->h = (struct cq_hdr *)q->map;
	memcpy(&q->good, q->h, CQ_HDR_CHECKED);
	return EF_OK;
}

int cqueue_open(const char *dir, uint32_t tag, uint64_t err_id, cqueue **out)
{
	cqueue *q = ef__calloc(1, sizeof(*q));
	int rc;

	*out = NULL;
	if (!q)
		return ef__err(err_id, EF_ENOMEM, "out of memory");
	q->fd = -1;
	q->tag = tag;
	q->dir = ef__strdup(dir);
	rc = q->dir ? file_open(q, err_id)
		    : ef__err(err_id, EF_ENOMEM, "out of memory");
	if (rc != EF_OK) {
		cqueue_close(q);
		return rc;
	}
	*out = q;
	return EF_OK;
}

void cqueue_close(cqueue *q)
{
	while (q) {
		cqueue *prev = q->prev;

		if (q->map)
			munmap(q->map, CQ_FILE_SIZE);
		if (q->fd >= 0)
			close(q->fd);
		free(q->lbuf);
		free(q->dir);
		free(q);
		q = prev;
	}
}

cqueue *cqueue_renew(cqueue *q, uint64_t err_id)
{
	cqueue *n;

	if (cqueue_open(q->dir, q->tag, err_id, &n) != EF_OK)
		return NULL;
	n->prev = q;
	return n;
}

/* Is the header still the one we validated? A rebuild retires it; damage
 * shows here too. Never trust a queue whose header changed. */
static int hdr_ok(const cqueue *q)
{
	return memcmp(q->h, &q->good, CQ_HDR_CHECKED) == 0;
}

int cqueue_peek(const char *dir, cq_stats *out)
{
	cqueue q;
	struct stat sb;
	int sys_err, ok;

	memset(&q, 0, sizeof(q));
	memset(out, 0, sizeof(*out));
	if (storefile_check(dir, CQ_FILE, EF__ERR_NOSTORE, &sb) != EF_OK ||
	    sb.st_nlink == 0 || sb.st_size != (off_t)CQ_FILE_SIZE ||
	    storefile_open(dir, CQ_FILE, O_RDWR, EF__ERR_NOSTORE, &q.fd,
			   &sys_err) != EF_OK)
		return EF_ENOTFOUND;
	ok = file_map(q.fd, &q.map) == 0 && file_valid(q.map);
	if (ok) {
		q.h = (struct cq_hdr *)q.map;
		cq_stats_get(&q, out);
	}
	if (q.map)
		munmap(q.map, CQ_FILE_SIZE);
	close(q.fd);
	return ok ? EF_OK : EF_ENOTFOUND;
}

/* ---- slots ---- */

/* A slot's word and its owner's pid change together, by one 64-bit CAS:
 * a slot is never FILLING (or later) without the pid of who fills it, so
 * that a caller that dies at any instant leaves a slot that names it. */
static uint64_t *pair_of(const cqueue *q, uint32_t i)
{
	assert(i < CQ_NSLOTS);
	return &q->h->pairs[i];
}

static uint64_t pld(const uint64_t *pp)
{
	return __atomic_load_n(pp, __ATOMIC_SEQ_CST);
}

static int pcas(uint64_t *pp, uint64_t expect, uint64_t want)
{
	return __atomic_compare_exchange_n(pp, &expect, want, 0,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

#define P_WORD(p) ((uint32_t)(p))
#define P_PID(p) ((uint32_t)((p) >> 32))
#define P_MAKE(w, pid) ((uint64_t)(pid) << 32 | (uint32_t)(w))

/* The futex: the word's half of the pair. */
static uint32_t *fword(uint64_t *pp)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)pp;
#else
	return (uint32_t *)pp + 1;
#endif
}

/* Free @s, held as @p (DONE by its caller, or FILLING by a reclaimer):
 * its record wiped, then FREE with the next seq and no owner. 1 if done. */
static int slot_free(struct cq_slot *s, uint64_t *pp, uint64_t p)
{
	uint32_t w = P_WORD(p);

	sodium_memzero(s->rec, s->rec_len <= CQ_REC_CAP ? s->rec_len
							: CQ_REC_CAP);
	s->rec_len = 0;
	s->owner_start = 0; /* the next caller's pid is judged by kill() until
			     * it writes its own */
	return pcas(pp, p, P_MAKE(S_MAKE(S_SEQ(w) + 1, S_FREE), 0));
}

/* Free the slots of dead callers (FILLING, PENDING, DONE), at most every
 * CQ_SCAN_MS (any thread of this process), or now when @force. A dead
 * caller's pending request is dropped: nobody was told it is done. The
 * reclaimer first takes the slot as its own (FILLING, its pid), so that a
 * reclaimer that dies half-way leaves a slot to reclaim again. */
static void reclaim(cqueue *q, int force)
{
	int64_t now = mono_ms(), last = __atomic_load_n(&q->last_scan,
							__ATOMIC_RELAXED);
	uint32_t me = self(NULL);

	if (!force && now - last < CQ_SCAN_MS)
		return;
	if (!__atomic_compare_exchange_n(&q->last_scan, &last, now, 0,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return; /* another thread scans */
	for (uint32_t i = 0; i < CQ_NSLOTS; i++) {
		uint64_t *pp = pair_of(q, i), p = pld(pp), mine;
		uint32_t st = P_WORD(p) & S_STATE;
		struct cq_slot *s;

		if (st != S_FILLING && st != S_PENDING && st != S_DONE)
			continue;
		s = slot_at(q, i);
		if (alive(P_PID(p), s->owner_start))
			continue;
		mine = P_MAKE(S_MAKE(S_SEQ(P_WORD(p)) + 1, S_FILLING), me);
		if (pcas(pp, p, mine) && slot_free(s, pp, mine))
			__atomic_add_fetch(&q->h->reclaimed, 1, __ATOMIC_RELAXED);
	}
}

static __thread uint32_t rng_state;

static uint32_t next_start(void)
{
	if (!rng_state)
		rng_state = randombytes_random() | 1u;
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % CQ_NSLOTS;
}

static void slot_fill(struct cq_slot *s, uint32_t tag, const fin_item *it,
		      int64_t now, cq_ticket *t)
{
	uint64_t start;

	self(&start);
	s->owner_start = start;
	cq__at("filling");
	randombytes_buf(t->token, sizeof(t->token));
	memcpy(s->token, t->token, sizeof(t->token));
	s->tag = tag;
	s->now = now;
	s->created_ms = it->created_ms;
	s->rc = 0;
	s->errmsg[0] = '\0';
	s->owner_len = (uint32_t)it->owner.len;
	memcpy(s->owner, it->owner.s, it->owner.len + 1);
	s->rid_len = (uint32_t)it->rid.len;
	memcpy(s->rid, it->rid.s, it->rid.len + 1);
	memcpy(s->sort, it->sort, KEY_SORT_LEN + 1);
	s->rec_len = (uint32_t)it->rec_len;
	memcpy(s->rec, it->rec, it->rec_len);
}

/* Is slot @mine the only one in use, with nobody leading? Then its caller
 * commits on its own: a lone writer pays nothing for the queue (no copy
 * into the slot, no token record). Its FILLING slot shows it busy, so a
 * caller arriving meanwhile queues and leads the next batch, behind its
 * transaction in LMDB's writer lock. Racing callers may both see each
 * other and both queue: then they batch as before. */
static int never_alone; /* test hook */

void cqueue__never_alone(int on)
{
	never_alone = on;
}

static int alone(cqueue *q, uint32_t mine)
{
	if (never_alone || ld(&q->h->leader) != 0)
		return 0;
	for (uint32_t i = 0; i < CQ_NSLOTS; i++)
		if (i != mine &&
		    (P_WORD(pld(pair_of(q, i))) & S_STATE) != S_FREE)
			return 0;
	return 1;
}

void cq_alone_end(cqueue *q, const cq_ticket *t, size_t n)
{
	uint64_t *pp = pair_of(q, t->slot), p = pld(pp);

	__atomic_add_fetch(&q->h->alone, n, __ATOMIC_RELAXED);
	if (P_WORD(p) == S_MAKE(t->seq, S_FILLING) && P_PID(p) == self(NULL))
		(void)slot_free(slot_at(q, t->slot), pp, p);
	/* else reclaimed meanwhile (judged dead: cannot be); nothing to do */
}

int cq_submit(cqueue *q, const fin_item *it, int64_t now, cq_ticket *t)
{
	uint32_t first, me = self(NULL);

	if (!hdr_ok(q))
		return CQ_LOST;
	if (it->rec_len > CQ_REC_CAP || it->owner.len > EF_OWNER_KEY_MAX ||
	    it->rid.len > EF_RESERVATION_KEY_MAX)
		return CQ_FULL; /* does not fit: commit it on its own */
	first = next_start();
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < CQ_NSLOTS; k++) {
			uint32_t i = (first + k) % CQ_NSLOTS;
			uint64_t *pp = pair_of(q, i), p = pld(pp), fill;
			uint32_t seq = S_SEQ(P_WORD(p));

			if ((P_WORD(p) & S_STATE) != S_FREE)
				continue;
			fill = P_MAKE(S_MAKE(seq, S_FILLING), me);
			if (!pcas(pp, p, fill))
				continue;
			if (alone(q, i)) {
				t->slot = i;
				t->seq = seq;
				return CQ_ALONE;
			}
			slot_fill(slot_at(q, i), q->tag, it, now, t);
			if (!pcas(pp, fill, P_MAKE(S_MAKE(seq, S_PENDING), me)))
				return CQ_LOST; /* judged dead: cannot be */
			t->slot = i;
			t->seq = seq;
			return EF_OK;
		}
		reclaim(q, 1); /* full: dead callers' slots, then once more */
	}
	return CQ_FULL;
}

/* Take the lead: from nobody, or (@check_dead) from a dead process. */
static int try_lead(cqueue *q, int check_dead)
{
	uint64_t start;
	uint32_t me = self(&start), cur = ld(&q->h->leader);

	if (cur == me)
		return 0; /* another thread of ours leads */
	if (cur != 0 && (!check_dead ||
			 alive(cur, __atomic_load_n(&q->h->leader_start,
						    __ATOMIC_SEQ_CST))))
		return 0;
	if (!cas(&q->h->leader, cur, me))
		return 0;
	__atomic_store_n(&q->h->leader_start, start, __ATOMIC_SEQ_CST);
	return 1;
}

/* The caller of @s reads its result and frees the slot. */
static int slot_take_result(struct cq_slot *s, uint64_t *pp, uint64_t p,
			    int *rc, char *errbuf, size_t errcap)
{
	*rc = s->rc;
	if (errcap) {
		size_t n = strnlen(s->errmsg, sizeof(s->errmsg) - 1);
		if (n >= errcap)
			n = errcap - 1;
		memcpy(errbuf, s->errmsg, n);
		errbuf[n] = '\0';
	}
	slot_free(s, pp, p);
	return CQ_DONE;
}

int cq_wait(cqueue *q, cq_ticket *t, int *rc, char *errbuf, size_t errcap)
{
	struct cq_slot *s = slot_at(q, t->slot);
	uint64_t *pp = pair_of(q, t->slot);
	uint32_t me = self(NULL);
	int timed_out = 0;

	for (;;) {
		uint64_t p = pld(pp);
		uint32_t w = P_WORD(p), st = w & S_STATE;

		if (!hdr_ok(q) || S_SEQ(w) != t->seq || P_PID(p) != me ||
		    (st != S_PENDING && st != S_CLAIMED && st != S_DONE))
			return CQ_LOST;
		if (st == S_DONE)
			return slot_take_result(s, pp, p, rc, errbuf, errcap);
		if (st == S_PENDING && (w & S_NUDGE) &&
		    !pcas(pp, p, P_MAKE(w & ~S_NUDGE, me)))
			continue;
		if (st == S_PENDING && try_lead(q, timed_out))
			return CQ_LEAD;
		if (st == S_CLAIMED && timed_out &&
		    !alive(__atomic_load_n(&s->leader_pid, __ATOMIC_SEQ_CST),
			   s->leader_start) &&
		    try_lead(q, 1))
			return CQ_LEAD; /* its leader died: take it over */
		if (timed_out)
			reclaim(q, 0);
		if (!(w & S_WAITING)) {
			w = (w & ~S_NUDGE) | S_WAITING;
			if (!pcas(pp, p, P_MAKE(w, me)))
				continue;
		}
		timed_out = fx_wait(fword(pp), w, CQ_WAIT_MS);
	}
}

/* Copy the request of @s into @item (its record into @buf); 0 if a field
 * is out of range (a damaged slot). */
static int slot_copy(const struct cq_slot *s, uint8_t *buf, cq_item *item)
{
	fin_item *it = &item->it;

	if (s->owner_len == 0 || s->owner_len > EF_OWNER_KEY_MAX ||
	    s->rid_len == 0 || s->rid_len > EF_RESERVATION_KEY_MAX ||
	    s->rec_len == 0 || s->rec_len > CQ_REC_CAP)
		return 0;
	memset(it, 0, sizeof(*it));
	memcpy(it->owner.s, s->owner, s->owner_len);
	it->owner.s[s->owner_len] = '\0';
	it->owner.len = s->owner_len;
	memcpy(it->rid.s, s->rid, s->rid_len);
	it->rid.s[s->rid_len] = '\0';
	it->rid.len = s->rid_len;
	memcpy(it->sort, s->sort, KEY_SORT_LEN);
	it->sort[KEY_SORT_LEN] = '\0';
	for (unsigned i = 0; i < KEY_SORT_LEN; i++)
		if (it->sort[i] < '0' || it->sort[i] > '9')
			return 0;
	it->created_ms = s->created_ms;
	memcpy(buf, s->rec, s->rec_len);
	it->rec = buf;
	it->rec_len = s->rec_len;
	item->now = s->now;
	memcpy(item->token, s->token, sizeof(item->token));
	return 1;
}

/* Claim slot @i (held as @p: PENDING; or CLAIMED by a dead leader when
 * @orphan) into @item. 1 if it is ours and copied. */
static int claim_one(cqueue *q, uint32_t i, uint64_t p, int orphan,
		     uint8_t *buf, cq_item *item)
{
	struct cq_slot *s = slot_at(q, i);
	uint64_t *pp = pair_of(q, i);
	uint32_t w = P_WORD(p);
	uint32_t claimed = S_MAKE(S_SEQ(w), S_CLAIMED) | (w & S_WAITING);
	uint64_t start;
	uint32_t me = self(&start);

	if (orphan)
		claimed = w;
	else if (!pcas(pp, p, P_MAKE(claimed, P_PID(p))))
		return 0;
	s->leader_start = start;
	__atomic_store_n(&s->leader_pid, me, __ATOMIC_SEQ_CST);
	item->slot = i;
	item->word = claimed;
	item->rc = 0;
	/* still ours after the copy (its caller may have set WAITING)? */
	if (slot_copy(s, buf, item) &&
	    ((P_WORD(pld(pp)) ^ claimed) & ~(S_WAITING | S_NUDGE)) == 0)
		return 1;
	/* damaged: its caller resolves it from the store (it has it) */
	cq_complete(q, item, CQ_LOST, "");
	return 0;
}

size_t cq_claim(cqueue *q, cq_item *items, size_t cap)
{
	uint32_t me = self(NULL);
	size_t n = 0;

	if (!hdr_ok(q))
		return 0;
	if (!q->lbuf) {
		q->lbuf = ef__malloc((size_t)CQ_NSLOTS * CQ_REC_CAP);
		if (!q->lbuf)
			return 0; /* the callers lead again, or time out */
	}
	if (cap > CQ_NSLOTS)
		cap = CQ_NSLOTS;
	reclaim(q, 0);
	for (uint32_t i = 0; i < CQ_NSLOTS && n < cap; i++) {
		uint64_t p = pld(pair_of(q, i));
		uint32_t st = P_WORD(p) & S_STATE, lp;
		struct cq_slot *s;
		int orphan;

		if (st != S_PENDING && st != S_CLAIMED)
			continue;
		s = slot_at(q, i);
		if (s->tag != q->tag)
			continue;
		lp = __atomic_load_n(&s->leader_pid, __ATOMIC_SEQ_CST);
		orphan = st == S_CLAIMED;
		if (orphan && (lp == me || alive(lp, s->leader_start)))
			continue; /* a live leader's */
		if (claim_one(q, i, p, orphan, q->lbuf + n * CQ_REC_CAP,
			      &items[n]))
			n++;
	}
	return n;
}

void cq_complete(cqueue *q, const cq_item *item, int rc, const char *errmsg)
{
	struct cq_slot *s = slot_at(q, item->slot);
	uint64_t *pp = pair_of(q, item->slot), p;
	uint32_t w;

	cq__at("completing");
	s->rc = rc;
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", errmsg ? errmsg : "");
	do {
		p = pld(pp);
		w = P_WORD(p);
		if (S_SEQ(w) != S_SEQ(item->word) ||
		    (w & S_STATE) != S_CLAIMED)
			return; /* not ours any more */
	} while (!pcas(pp, p, P_MAKE(S_MAKE(S_SEQ(w), S_DONE), P_PID(p))));
	if (w & S_WAITING)
		fx_wake(fword(pp));
}

void cq_count_batch(cqueue *q, size_t n, size_t recovered)
{
	__atomic_add_fetch(&q->h->batches, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&q->h->batched, (uint64_t)n, __ATOMIC_RELAXED);
	__atomic_add_fetch(&q->h->recovered, (uint64_t)recovered,
			   __ATOMIC_RELAXED);
}

/* Nudge one PENDING slot (of another tag than ours if @other, which a
 * leader of ours would leave behind): 1 if one was. */
static int nudge_one(cqueue *q, int other)
{
	for (uint32_t i = 0; i < CQ_NSLOTS; i++) {
		uint64_t *pp = pair_of(q, i), p = pld(pp);
		uint32_t w = P_WORD(p);

		if ((w & S_STATE) != S_PENDING ||
		    (other && slot_at(q, i)->tag == q->tag))
			continue;
		if (pcas(pp, p, P_MAKE((w & ~S_WAITING) | S_NUDGE, P_PID(p)))) {
			if (w & S_WAITING)
				fx_wake(fword(pp));
			return 1;
		}
	}
	return 0;
}

void cq_lead_end(cqueue *q)
{
	uint32_t me = self(NULL);

	cas(&q->h->leader, me, 0);
	/* hand the lead on: one caller still pending leads the next batch
	 * (the others sleep on until their own result); callers of other
	 * settings first, whom no leader of ours would ever take */
	if (!nudge_one(q, 1))
		nudge_one(q, 0);
}

void cq_stats_get(cqueue *q, cq_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->batches = __atomic_load_n(&q->h->batches, __ATOMIC_RELAXED);
	out->batched = __atomic_load_n(&q->h->batched, __ATOMIC_RELAXED);
	out->recovered = __atomic_load_n(&q->h->recovered, __ATOMIC_RELAXED);
	out->reclaimed = __atomic_load_n(&q->h->reclaimed, __ATOMIC_RELAXED);
	out->alone = __atomic_load_n(&q->h->alone, __ATOMIC_RELAXED);
	out->leader = ld(&q->h->leader);
	for (uint32_t i = 0; i < CQ_NSLOTS; i++) {
		uint32_t st = P_WORD(pld(pair_of(q, i))) & S_STATE;
		out->used += st != S_FREE;
		out->pending += st == S_PENDING;
	}
}

int cqueue__hold_lead(cqueue *q)
{
	return try_lead(q, 0) ? EF_OK : EF_EBUSY;
}

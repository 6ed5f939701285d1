/*
 * seed.c - ef_seed: deterministic demo data through the finalize path.
 *
 * Every field of receive j of owner o comes from one BLAKE2b hash of
 * (rng_seed, o, j) (libsodium crypto_generichash), so a seed and a "now"
 * always make the same store, whatever order or batching writes it.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "feed/feed.h"
#include "store/error.h"

#define SEED_BATCH 256             /* finalizations per write transaction */
#define SEED_SPAN_MS (60LL * 24 * 3600 * 1000) /* the last 60 days */

static const char *const file_names[] = {
	"report", "invoice", "holiday-photos", "contract", "slides",
	"dataset", "backup", "recording", "thesis", "design-mockups",
};
static const char *const file_exts[] = {".pdf", ".zip", ".jpg", ".docx",
					".mp4", ".csv"};

static uint64_t le64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* Fill the text fields of one demo receive from its hash @h. */
static void seed_fields(uint32_t o, const unsigned char h[32], int64_t now,
			char *owner, char *rid, char *ip, char *payload,
			int64_t *created)
{
	static const char *const v4[] = {"192.0.2", "198.51.100", "203.0.113"};
	char hex[17];

	snprintf(owner, 32, "user%04" PRIu32 "@example.com", o);
	sodium_bin2hex(hex, sizeof(hex), h, 8);
	snprintf(rid, 32, "rsv-%s", hex);
	*created = now - (int64_t)(le64(h + 8) % (uint64_t)SEED_SPAN_MS);
	if (*created < 0)
		*created = 0;
	if (h[16] % 4 == 3)
		snprintf(ip, 64, "2001:db8:%x:%x::%x", h[17], h[18], h[19] + 1);
	else
		snprintf(ip, 64, "%s.%u", v4[h[17] % 3], 1u + h[18] % 254);
	sodium_bin2hex(hex, sizeof(hex), h + 26, 4);
	snprintf(payload, 512,
		 "{\"fileName\":\"%s-%u%s\",\"size\":%" PRIu32
		 ",\"senderEmail\":\"sender%02u@example.org\","
		 "\"linkId\":\"lnk-%s\"}",
		 file_names[h[20] % 10], h[21], file_exts[h[22] % 6],
		 (uint32_t)(le64(h + 8) >> 40) % 50000000u, h[25] % 50u, hex);
}

static int seed_prepare(ef_store *st, const ef_seed_opts *o, uint64_t seq,
			int64_t now, fin_item *it)
{
	uint32_t owner = (uint32_t)(seq / o->receives);
	uint32_t j = (uint32_t)(seq % o->receives);
	unsigned char in[16 + 8 + 8], h[32];
	char own[32], rid[32], ip[64], payload[512];
	ef_receive r;

	memcpy(in, "edgefeed-seed-v1", 16);
	for (int i = 0; i < 8; i++)
		in[16 + i] = (unsigned char)(o->rng_seed >> (8 * i));
	for (int i = 0; i < 4; i++) {
		in[24 + i] = (unsigned char)(owner >> (8 * i));
		in[28 + i] = (unsigned char)(j >> (8 * i));
	}
	crypto_generichash(h, sizeof(h), in, sizeof(in), NULL, 0);
	seed_fields(owner, h, now, own, rid, ip, payload, &r.created_ms);
	r.owner = own;
	r.reservation_id = rid;
	r.ip = ip;
	r.payload_json = payload;
	return fin_prepare(st, &r, now, it);
}

static int seed_run(ef_store *st, const ef_seed_opts *o, int64_t now,
		    ef_seed_stats *s)
{
	uint64_t total = (uint64_t)o->owners * o->receives, seq = 0;
	fin_item *items = ef__calloc(SEED_BATCH, sizeof(*items));
	fin_req *reqs = ef__calloc(SEED_BATCH, sizeof(*reqs));
	size_t n;
	int rc = EF_OK;

	if (!items || !reqs) {
		free(items);
		free(reqs);
		return ef__err(st->err_id, EF_ENOMEM, "out of memory");
	}
	while (rc == EF_OK && seq < total) {
		for (n = 0; n < SEED_BATCH && seq < total; n++, seq++) {
			rc = seed_prepare(st, o, seq, now, &items[n]);
			if (rc != EF_OK)
				break;
			reqs[n].it = &items[n];
			reqs[n].now = now;
		}
		if (rc == EF_OK)
			fin_batch(st, reqs, n);
		for (size_t i = 0; i < n; i++) {
			if (rc == EF_OK && reqs[i].rc < 0)
				rc = reqs[i].rc;
			else if (rc == EF_OK && reqs[i].rc == EF_OK)
				s->created++;
			else if (rc == EF_OK && reqs[i].rc == EF_EXISTS)
				s->duplicates++;
			fin_item_free(&items[i]);
		}
		if (rc == EF_OK && o->progress)
			o->progress(seq, total, o->progress_ctx);
	}
	free(items);
	free(reqs);
	return rc;
}

int ef_seed(ef_store *st, const ef_seed_opts *o, ef_seed_stats *stats)
{
	ef_seed_stats s = {0};
	ef_reset_stats rs;
	ef_maint *lk = NULL;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st || !o)
		return EF_EINVAL;
	if (o->owners == 0 || o->owners > 10000000)
		return ef__err(st->err_id, EF_EINVAL,
			       "owners: %" PRIu32 " is outside 1..10000000",
			       o->owners);
	if (o->receives == 0 || o->receives > 1000000)
		return ef__err(st->err_id, EF_EINVAL,
			       "receives: %" PRIu32 " is outside 1..1000000",
			       o->receives);
	/* the lock refuses a store clock ahead of the real one */
	rc = feed_maint_not_ahead(st, "now_ms", o->now_ms);
	if (rc == EF_OK)
		rc = ef_maint_lock(st, o->reset ? "edgefeed seed --reset"
						: "edgefeed seed",
				   o->lock_flags, o->on_wait, o->wait_ctx, &lk);
	if (rc != EF_OK)
		return rc;
	if (o->reset) {
		rc = ef_reset(st, &rs);
		s.reset_deleted = rs.keys_deleted;
	}
	if (rc == EF_OK)
		rc = seed_run(st, o, o->now_ms ? o->now_ms : feed_now(st), &s);
	ef_maint_unlock(lk);
	s.owners = o->owners;
	if (stats)
		*stats = s;
	return rc;
}

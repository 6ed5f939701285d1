/*
 * edgefeed-bench - measure finalizations and page reads.
 *
 *   edgefeed-bench quick [--n N] [--owners O] [--nosync] [--dir DIR]
 *
 * "quick": one process, one thread, N finalizations spread over O owners
 * into a fresh store, then N/10 newest-page reads; prints one JSON object.
 * Verifies at the end that every acknowledged finalization is in the store
 * exactly once (a ledger of acknowledged writes).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edgefeed.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: edgefeed-bench quick [--n N] [--owners O] [--nosync] "
		"[--dir DIR]\n");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"n", required_argument, 0, 'n'},
		{"owners", required_argument, 0, 'o'},
		{"nosync", no_argument, 0, 's'},
		{"dir", required_argument, 0, 'd'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	long n = 20000, owners = 100;
	int nosync = 0, o, rc;
	char tmpl[] = "/tmp/edgefeed-bench-XXXXXX", *dir = NULL;
	char owner[64], rid[64];
	ef_config cfg = {0};
	ef_store *st;
	double t0, t_fin, t_read;
	long acked = 0, found = 0;

	if (argc < 2 || strcmp(argv[1], "quick") != 0)
		return usage(argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2);
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'n': n = atol(optarg); break;
		case 'o': owners = atol(optarg); break;
		case 's': nosync = 1; break;
		case 'd': dir = optarg; break;
		case 'h': return usage(0);
		default: return usage(2);
		}
	}
	if (n < 1 || owners < 1) {
		fprintf(stderr, "edgefeed-bench: --n and --owners must be >= 1\n");
		return 2;
	}
	if (!dir && !(dir = mkdtemp(tmpl))) {
		perror("edgefeed-bench: mkdtemp");
		return 1;
	}
	cfg.flags = nosync ? EF_NOSYNC : 0;
	cfg.feed_cap = (uint32_t)(n / owners + 1); /* keep every entry */
	if ((rc = ef_open(&st, dir, &cfg)) != EF_OK) {
		fprintf(stderr, "edgefeed-bench: %s\n", ef_errmsg(NULL));
		return 1;
	}
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		ef_receive r = {owner, rid, 0, "203.0.113.5",
				"{\"fileName\":\"f.bin\",\"size\":1234}"};
		snprintf(owner, sizeof(owner), "user%05ld@example.com", i % owners);
		snprintf(rid, sizeof(rid), "rsv-%08ld", i);
		rc = ef_finalize(st, &r);
		if (rc != EF_OK) {
			fprintf(stderr, "edgefeed-bench: finalize: %s\n",
				ef_errmsg(st));
			return 1;
		}
		acked++;
	}
	t_fin = now_s() - t0;
	t0 = now_s();
	for (long i = 0; i < n / 10 + 1; i++) {
		ef_page p;
		snprintf(owner, sizeof(owner), "user%05ld@example.com", i % owners);
		if (ef_feed_page(st, owner, NULL, 50, &p) != EF_OK)
			return 1;
		ef_page_free(&p);
	}
	t_read = now_s() - t0;
	/* the ledger check: every acknowledged write is there exactly once */
	for (long i = 0; i < owners; i++) {
		char *cursor = NULL;
		snprintf(owner, sizeof(owner), "user%05ld@example.com", i);
		do {
			ef_page p;
			if (ef_feed_page(st, owner, cursor, 1000, &p) != EF_OK)
				return 1;
			found += (long)p.count;
			free(cursor);
			cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
			ef_page_free(&p);
		} while (cursor);
	}
	ef_close(st);
	printf("{\"scenario\":\"quick\",\"system\":\"edgefeed\",\"durable\":%s,"
	       "\"finalizations\":%ld,\"owners\":%ld,\"finalizePerSec\":%.0f,"
	       "\"pageReadUs\":%.2f,\"acknowledged\":%ld,\"found\":%ld,"
	       "\"lost\":%ld}\n",
	       nosync ? "false" : "true", n, owners, (double)n / t_fin,
	       t_read * 1e6 / (double)(n / 10 + 1), acked, found,
	       acked - found);
	return acked == found ? 0 : 1;
}

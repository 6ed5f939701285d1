/*
 * cmd_retention.c - `edgefeed sweep` (retention: window keys, stale and
 * over-cap entries, orphan markers) and `edgefeed compact` (a data.mdb that
 * holds only live records).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int help(const char *cmd, const char *text)
{
	printf("usage: edgefeed [--db DIR] %s\n\n%s", cli_usage_of(cmd), text);
	return EXIT_OK;
}

static const char sweep_help[] =
	"Enforce retention on the whole store, in short transactions while\n"
	"workers write: destroy the key of every day whose IPs are past\n"
	"retention (they can then never be read again, from any copy),\n"
	"delete stale and over-cap entries with their index keys and unread\n"
	"markers, drop markers without an entry, and seal legacy arrays\n"
	"that hold IP addresses in plaintext. Safe to interrupt and run\n"
	"again; run it daily (e.g. from cron). On Redis Cluster it then\n"
	"rewrites every node's append-only file, where what it destroyed\n"
	"would stay until then.\n"
	"\n"
	"  --now MS|ISO  sweep as of this time (default: now); at most 5\n"
	"                minutes ahead of the real clock (exit 2 otherwise)\n"
	"  --no-wait     exit 75 at once if another maintenance job runs\n"
	"\n"
	"Prints {\"now\",\"keysDestroyed\",\"keyringSlotsWiped\",\n"
	"\"entriesDeleted\",\"markersDropped\",\"recordsResealed\",\n"
	"\"legacySealed\",\"batches\",\"aofRewritten\"} (nodes whose file was\n"
	"rewritten; 0 on LMDB).\n";

int cmd_sweep(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"now", required_argument, 0, 'n'},
		{"no-wait", no_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_sweep_opts so = {0};
	ef_sweep_stats ss;
	char when[EF_TIME_BUFSZ];
	ef_store *st;
	int o, rc;

	optind = 0; /* glibc: full re-initialization */
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			if ((rc = cli_time(c, "--now", optarg, &c->now_ms)))
				return rc;
			break;
		case 'W': so.lock_flags |= EF_LOCK_NOWAIT, c->nowait = 1; break;
		case 'h': return help("sweep", sweep_help);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	so.now_ms = c->now_ms;
	so.on_wait = out_waiting;
	so.wait_ctx = (void *)c->cmd;
	so.progress = out_progress;
	so.progress_ctx = "keys";
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_sweep_ex(st, &so, &ss);
	out_progress_end();
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	ef_time_format(ss.now_ms, when);
	fprintf(stderr, "edgefeed: sweep: as of %s: %llu day key(s) destroyed, "
		"%llu entries deleted, %llu orphan marker(s) dropped\n", when,
		(unsigned long long)ss.keys_destroyed,
		(unsigned long long)ss.entries_deleted,
		(unsigned long long)ss.markers_dropped);
	return out_print(json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "now",
		when,
		"nowMs",
		(json_int_t)ss.now_ms, "keysDestroyed",
		(json_int_t)ss.keys_destroyed, "keyringSlotsWiped",
		(json_int_t)ss.keyring_wiped, "entriesDeleted",
		(json_int_t)ss.entries_deleted, "markersDropped",
		(json_int_t)ss.markers_dropped, "recordsResealed",
		(json_int_t)ss.records_resealed, "legacySealed",
		(json_int_t)ss.legacy_sealed, "batches",
		(json_int_t)ss.batches, "aofRewritten",
		(json_int_t)ss.aof_rewritten));
}

static const char compact_help[] =
	"Rewrite data.mdb so that it holds only its live records (no freed\n"
	"page, no stale byte of a deleted record), swapped in atomically; the\n"
	"old file is overwritten with zeros. Run it after migrate and sweep to\n"
	"clear plaintext that older versions wrote. It needs the store to\n"
	"itself: while any other process has it open, it exits 75 at once.\n"
	"On Redis Cluster: rewrite every node's append-only file from its\n"
	"data (BGREWRITEAOF, masters and replicas) and wait for each; workers\n"
	"go on meanwhile. bytesBefore/bytesAfter are then the files' sizes.\n"
	"\n"
	"Prints {\"bytesBefore\",\"bytesAfter\",\"keys\"}.\n";

int cmd_compact(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	ef_compact_stats cs;
	ef_store *st;
	int o, rc;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		if (o == 'h')
			return help("compact", compact_help);
		return cli_bad_option(c, o, lo, argv);
	}
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_compact(st, &cs);
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	return out_print(json_pack("{s:I, s:I, s:I}", "bytesBefore",
				   (json_int_t)cs.bytes_before, "bytesAfter",
				   (json_int_t)cs.bytes_after, "keys",
				   (json_int_t)cs.keys));
}

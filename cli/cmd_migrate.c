/*
 * cmd_migrate.c - `edgefeed migrate`: legacy arrays into per-entry records.
 */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"

int cmd_migrate(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"batch", required_argument, 0, 'b'},
		{"dry-run", no_argument, 0, 'n'},
		{"no-wait", no_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_migrate_opts mo = {0};
	ef_migrate_stats ms;
	uint64_t batch = 16;
	ef_store *st;
	int o, rc;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'b':
			if ((rc = cli_uint(c, "--batch", optarg, 1, 1024, &batch)))
				return rc;
			break;
		case 'n': mo.dry_run = 1; break;
		case 'W': mo.lock_flags |= EF_LOCK_NOWAIT, c->nowait = 1; break;
		case 'h':
			printf("usage: edgefeed [--db DIR] %s\n",
			       cli_usage_lines[CLI_USAGE_MIGRATE]);
			return EXIT_OK;
		default:
			return cli_bad_option(c, o, lo, argv);
		}
	}
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	mo.batch = (uint32_t)batch;
	mo.on_wait = out_waiting;
	mo.wait_ctx = (void *)c->cmd;
	mo.progress = out_progress;
	mo.progress_ctx = "owners";
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_migrate(st, &mo, &ms);
	out_progress_end();
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	if (ms.quarantined)
		fprintf(stderr, "edgefeed: migrate: %llu element(s) could not "
			"migrate and were kept in quarantine: records",
			(unsigned long long)ms.quarantined);
	if (ms.quarantined)
		fputc('\n', stderr);
	return out_print(json_pack(
		"{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "dryRun",
		mo.dry_run, "owners", (json_int_t)ms.owners, "elements",
		(json_int_t)ms.elements, "migrated", (json_int_t)ms.migrated,
		"duplicatesMerged", (json_int_t)ms.duplicates, "quarantined",
		(json_int_t)ms.quarantined, "keptWithoutIp",
		(json_int_t)ms.kept_without_ip, "markersKept",
		(json_int_t)ms.markers_kept, "orphanMarkers",
		(json_int_t)ms.orphan_markers, "batches",
		(json_int_t)ms.batches));
}

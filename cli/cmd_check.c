/*
 * cmd_check.c - `edgefeed check`: verify every invariant; exit 4 on any
 * violation.
 */
#include <getopt.h>

#include "cli.h"

static void print_violation(const char *what, const char *key, void *ctx)
{
	(void)ctx;
	out_print(json_pack("{s:s, s:s?}", "violation", what, "key", key));
}

int cmd_check(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"strict", no_argument, 0, 's'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_check_opts co = {0};
	ef_check_stats cs;
	ef_store *st;
	int o, rc;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 's': co.strict = 1; break;
		case 'h':
			printf("usage: edgefeed [--db DIR] %s\n",
			       cli_usage_lines[CLI_USAGE_CHECK]);
			return EXIT_OK;
		default:
			return cli_bad_option(c, o, lo, argv);
		}
	}
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	co.report = print_violation;
	co.progress = out_progress;
	co.progress_ctx = "keys";
	if ((rc = cli_open(c, EF_RDONLY, &st)))
		return rc;
	rc = ef_check(st, &co, &cs);
	out_progress_end();
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	rc = out_print(json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				 "ok", cs.violations == 0, "violations",
				 (json_int_t)cs.violations, "keys",
				 (json_int_t)cs.keys, "entries",
				 (json_int_t)cs.entries, "indexKeys",
				 (json_int_t)cs.index_keys, "unreadMarkers",
				 (json_int_t)cs.markers, "legacyArrays",
				 (json_int_t)cs.legacy_arrays, "quarantined",
				 (json_int_t)cs.quarantined));
	if (rc != EXIT_OK)
		return rc;
	if (cs.violations)
		fprintf(stderr, "edgefeed: check: %llu violation(s), one JSON "
			"line each on stdout (see CHECK in edgefeed(1))\n",
			(unsigned long long)cs.violations);
	return cs.violations ? EXIT_CHECK : EXIT_OK;
}

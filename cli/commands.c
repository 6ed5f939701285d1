/*
 * commands.c - one function per command: parse its options, call the
 * library, print the result.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Usage lines; main.c prints them all for --help. */
const char *const cli_usage_lines[] = {
	"init",
	"finalize --owner O --reservation R [--created MS|ISO] [--ip IP] "
	"[--payload JSON]",
	"feed --owner O [--limit N] [--cursor C] [--now MS|ISO]",
	"unread --owner O [--now MS|ISO]",
	"mark-read --owner O (--reservation R | --all)",
	"stat",
	"seed --owners N --receives M [--reset] [--rng-seed S] [--now MS|ISO] "
	"[--no-wait]",
	"migrate [--batch N] [--dry-run] [--no-wait]",
	"check [--strict]",
	"sweep [--now MS|ISO] [--no-wait]",
	"compact",
	"import --format kv-bulk FILE [--batch N] [--no-wait]",
	"export [--format kv-bulk] [--output FILE] [--now MS|ISO]",
	NULL,
};

const char *cli_usage_of(const char *cmd)
{
	size_t n = strlen(cmd);

	for (size_t i = 0; cli_usage_lines[i]; i++)
		if (strncmp(cli_usage_lines[i], cmd, n) == 0 &&
		    (cli_usage_lines[i][n] == ' ' || !cli_usage_lines[i][n]))
			return cli_usage_lines[i];
	return cmd;
}

static int cmd_help(const cli *c, const char *line)
{
	printf("usage: edgefeed [--db DIR] %s\n", line);
	(void)c;
	return EXIT_OK;
}

/* getopt_long from the start of a command's own argv. */
static void opts_reset(void)
{
	optind = 0; /* glibc: full re-initialization */
	opterr = 0;
}

static int extra_args(const cli *c, int argc, char **argv)
{
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	return EXIT_OK;
}

int cmd_init(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	ef_store *st;
	ef_stat_info si;
	int o, rc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		if (o == 'h')
			return cmd_help(c, cli_usage_lines[0]);
		return cli_bad_option(c, o, lo, argv);
	}
	if ((rc = extra_args(c, argc, argv)) || (rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_stat(st, &si);
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	return out_print(json_pack("{s:s, s:i, s:I}", "db", c->db, "format",
				   (int)si.format_version, "entries",
				   (json_int_t)si.entries));
}

int cmd_finalize(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"owner", required_argument, 0, 'o'},
		{"reservation", required_argument, 0, 'r'},
		{"created", required_argument, 0, 'c'},
		{"ip", required_argument, 0, 'i'},
		{"payload", required_argument, 0, 'p'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_receive r = {0};
	ef_store *st;
	ef_entry *e = NULL;
	int o, rc, frc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'o': r.owner = optarg; break;
		case 'r': r.reservation_id = optarg; break;
		case 'c':
			if ((rc = cli_time(c, "--created", optarg,
					   &r.created_ms)))
				return rc;
			break;
		case 'i': r.ip = optarg; break;
		case 'p': r.payload_json = optarg; break;
		case 'h': return cmd_help(c, cli_usage_lines[1]);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if ((rc = extra_args(c, argc, argv)))
		return rc;
	if (!r.owner)
		return cli_usage_error(c, "--owner: missing (the owner, e.g. "
				       "--owner alice@example.com)");
	if (!r.reservation_id)
		return cli_usage_error(c, "--reservation: missing (the "
				       "reservation id, e.g. --reservation "
				       "rsv-1)");
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	frc = ef_finalize(st, &r);
	if (frc != EF_OK && frc != EF_EXISTS) {
		rc = cli_ef_error(c, st, frc);
		ef_close(st);
		return rc;
	}
	/* show what the store holds: on a duplicate, the first write */
	rc = ef_get_entry(st, r.owner, r.reservation_id, &e);
	if (rc != EF_OK && rc != EF_ENOTFOUND) {
		rc = cli_ef_error(c, st, rc);
		ef_close(st);
		return rc;
	}
	ef_close(st);
	if (!e)
		fprintf(stderr, "edgefeed: finalize: warning: the entry is older "
			"than the feed's time to live or beyond the owner's "
			"cap, so it was not kept\n");
	rc = out_print(json_pack("{s:s, s:o}", "status",
				 frc == EF_OK ? "created" : "duplicate",
				 "entry", e ? out_entry(e) : json_null()));
	ef_entry_free(e);
	return rc;
}

int cmd_feed(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"owner", required_argument, 0, 'o'},
		{"limit", required_argument, 0, 'l'},
		{"cursor", required_argument, 0, 'c'},
		{"now", required_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *owner = NULL, *cursor = NULL;
	uint64_t limit = EF_PAGE_LIMIT_DEFAULT;
	ef_store *st;
	ef_page page;
	json_t *list;
	int o, rc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'o': owner = optarg; break;
		case 'c': cursor = optarg; break;
		case 'l':
			if ((rc = cli_uint(c, "--limit", optarg, 1,
					   EF_PAGE_LIMIT_MAX, &limit)))
				return rc;
			break;
		case 'n':
			if ((rc = cli_time(c, "--now", optarg, &c->now_ms)))
				return rc;
			break;
		case 'h': return cmd_help(c, cli_usage_lines[2]);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if ((rc = extra_args(c, argc, argv)))
		return rc;
	if (!owner)
		return cli_usage_error(c, "--owner: missing (the owner, e.g. "
				       "--owner alice@example.com)");
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_feed_page(st, owner, cursor, (size_t)limit, &page);
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	list = json_array();
	for (size_t i = 0; list && i < page.count; i++)
		json_array_append_new(list, out_entry(&page.entries[i]));
	rc = out_print(json_pack("{s:o, s:o}", "entries", list, "nextCursor",
				 page.next_cursor
					 ? json_string(page.next_cursor)
					 : json_null()));
	ef_page_free(&page);
	return rc;
}

/* Print {"owner": canonical, "unread": N}. */
static int print_unread(cli *c, ef_store *st, const char *owner,
			const char *rid)
{
	char canon[400];
	uint64_t n;
	int rc = ef_unread_count(st, owner, &n);

	if (rc != EF_OK)
		return cli_ef_error(c, st, rc);
	if (ef_canonical_owner(owner, canon, sizeof(canon)) != EF_OK)
		canon[0] = '\0';
	if (rid)
		return out_print(json_pack("{s:s, s:s, s:I}", "owner", canon,
					   "reservationId", rid, "unread",
					   (json_int_t)n));
	return out_print(json_pack("{s:s, s:I}", "owner", canon, "unread",
				   (json_int_t)n));
}

int cmd_unread(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"owner", required_argument, 0, 'o'},
		{"now", required_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *owner = NULL;
	ef_store *st;
	int o, rc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'o': owner = optarg; break;
		case 'n':
			if ((rc = cli_time(c, "--now", optarg, &c->now_ms)))
				return rc;
			break;
		case 'h': return cmd_help(c, cli_usage_lines[3]);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if ((rc = extra_args(c, argc, argv)))
		return rc;
	if (!owner)
		return cli_usage_error(c, "--owner: missing (the owner, e.g. "
				       "--owner alice@example.com)");
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = print_unread(c, st, owner, NULL);
	ef_close(st);
	return rc;
}

int cmd_mark_read(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"owner", required_argument, 0, 'o'},
		{"reservation", required_argument, 0, 'r'},
		{"all", no_argument, 0, 'a'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *owner = NULL, *rid = NULL;
	int all = 0, o, rc;
	ef_store *st;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'o': owner = optarg; break;
		case 'r': rid = optarg; break;
		case 'a': all = 1; break;
		case 'h': return cmd_help(c, cli_usage_lines[4]);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if ((rc = extra_args(c, argc, argv)))
		return rc;
	if (!owner)
		return cli_usage_error(c, "--owner: missing (the owner, e.g. "
				       "--owner alice@example.com)");
	if (!rid == !all)
		return cli_usage_error(c, "give exactly one of --reservation R "
				       "(one entry) and --all (every entry)");
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = all ? ef_mark_all_read(st, owner) : ef_mark_read(st, owner, rid);
	rc = rc == EF_OK ? print_unread(c, st, owner, rid)
			 : cli_ef_error(c, st, rc);
	ef_close(st);
	return rc;
}

int cmd_stat(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	ef_stat_info s;
	ef_store *st;
	int o, rc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		if (o == 'h')
			return cmd_help(c, cli_usage_lines[5]);
		return cli_bad_option(c, o, lo, argv);
	}
	if ((rc = extra_args(c, argc, argv)) ||
	    (rc = cli_open(c, EF_RDONLY, &st)))
		return rc;
	rc = ef_stat(st, &s);
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	return out_print(json_pack(
		"{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, "
		"s:i}",
		"db", c->db, "format", (int)s.format_version, "entries",
		(json_int_t)s.entries, "indexKeys", (json_int_t)s.index_keys,
		"unreadMarkers", (json_int_t)s.unread_markers, "legacyArrays",
		(json_int_t)s.legacy_arrays, "owners", (json_int_t)s.owners,
		"otherKeys", (json_int_t)s.other_keys, "mapSize",
		(json_int_t)s.map_size, "mapUsed", (json_int_t)s.map_used,
		"pageSize", (json_int_t)s.page_size, "maxReaders",
		(int)s.max_readers, "readersUsed", (int)s.readers_used));
}

int cmd_seed(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"owners", required_argument, 0, 'o'},
		{"receives", required_argument, 0, 'r'},
		{"reset", no_argument, 0, 'R'},
		{"rng-seed", required_argument, 0, 's'},
		{"now", required_argument, 0, 'n'},
		{"no-wait", no_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_seed_opts so = {0};
	ef_seed_stats ss;
	uint64_t owners = 0, receives = 0, seed = 0;
	ef_store *st;
	int o, rc;

	opts_reset();
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'o':
			rc = cli_uint(c, "--owners", optarg, 1, 10000000, &owners);
			break;
		case 'r':
			rc = cli_uint(c, "--receives", optarg, 1, 1000000,
				      &receives);
			break;
		case 's':
			rc = cli_uint(c, "--rng-seed", optarg, 0, UINT64_MAX,
				      &seed);
			break;
		case 'n': rc = cli_time(c, "--now", optarg, &c->now_ms); break;
		case 'R': so.reset = 1, rc = EXIT_OK; break;
		case 'W':
			so.lock_flags |= EF_LOCK_NOWAIT, c->nowait = 1;
			rc = EXIT_OK;
			break;
		case 'h': return cmd_help(c, cli_usage_lines[6]);
		default: return cli_bad_option(c, o, lo, argv);
		}
		if (rc)
			return rc;
	}
	if ((rc = extra_args(c, argc, argv)))
		return rc;
	if (!owners)
		return cli_usage_error(c, "--owners: missing (how many demo "
				       "owners, e.g. --owners 20)");
	if (!receives)
		return cli_usage_error(c, "--receives: missing (receives per "
				       "owner, e.g. --receives 40)");
	so.owners = (uint32_t)owners;
	so.receives = (uint32_t)receives;
	so.rng_seed = seed;
	so.now_ms = c->now_ms;
	so.on_wait = out_waiting;
	so.wait_ctx = (void *)c->cmd;
	so.progress = out_progress;
	so.progress_ctx = "receives";
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_seed(st, &so, &ss);
	out_progress_end();
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	fprintf(stderr, "created %llu entries for %u owners\n",
		(unsigned long long)ss.created, ss.owners);
	return out_print(json_pack(
		"{s:i, s:i, s:I, s:I, s:I, s:b}", "owners", (int)ss.owners,
		"receivesPerOwner", (int)receives, "created",
		(json_int_t)ss.created, "duplicates", (json_int_t)ss.duplicates,
		"resetDeleted", (json_int_t)ss.reset_deleted, "reset",
		so.reset));
}

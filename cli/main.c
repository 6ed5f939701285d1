/*
 * main.c - edgefeed [--db DIR] COMMAND [OPTIONS]: global options and
 * dispatch.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* creates: the command writes on purpose and makes a missing store; the
 * others open an existing one only (EF_NOCREATE, see cli_open). */
static const struct {
	const char *name;
	int (*fn)(cli *, int, char **);
	int creates;
	const char *what;
} commands[] = {
	{"init", cmd_init, 1, "create the store (if missing) and show its format"},
	{"finalize", cmd_finalize, 1, "record a finalized reservation (idempotent)"},
	{"feed", cmd_feed, 0, "print one page of an owner's feed, newest first"},
	{"unread", cmd_unread, 0, "print an owner's unread count"},
	{"mark-read", cmd_mark_read, 0, "mark one entry, or all, read"},
	{"stat", cmd_stat, 0, "count what the store holds"},
	{"seed", cmd_seed, 1, "make deterministic demo data"},
	{"migrate", cmd_migrate, 0, "convert legacy JSON arrays into entries"},
	{"check", cmd_check, 0, "verify every invariant (exit 4 on a violation)"},
	{"sweep", cmd_sweep, 0, "enforce retention: shred old IPs, delete old entries"},
	{"compact", cmd_compact, 0, "rewrite data.mdb with only its live records"},
	{"import", cmd_import, 1, "load a Workers KV bulk file (legacy arrays, entries)"},
	{"export", cmd_export, 0, "write the feed records as a Workers KV bulk file"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: edgefeed [--db DIR] [--no-wait] COMMAND [OPTIONS]\n"
		"\n"
		"Keeps each owner's recent-receives feed in an LMDB store,\n"
		"one record per entry, written idempotently; or the same\n"
		"store on Redis Cluster.\n"
		"\n"
		"Options:\n"
		"  --db DIR     the store directory (default: $EDGEFEED_DB, else\n"
		"               ./edgefeed.db); only init, finalize, seed and\n"
		"               import create it, the others need a store there.\n"
		"               Or a store on Redis Cluster:\n"
		"               redis://HOST:PORT[,HOST:PORT...][?OPTIONS]\n"
		"               (store=NAME, wait=N, password=..., timeout_ms=N:\n"
		"               docs/CLUSTER.md); the password is better given\n"
		"               in $EDGEFEED_REDIS_PASSWORD\n"
		"  --no-wait    never wait for another process's hold on the\n"
		"               store: exit 75 at once while compact holds it\n"
		"               (open.lock) or another job holds the\n"
		"               maintenance lock (maint.lock); without it, a\n"
		"               command says whom it waits for, then waits\n"
		"  --help       show this help; COMMAND --help shows one command\n"
		"  --version    show the version\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
	fprintf(f, "\nUsage of each command:\n");
	for (size_t i = 0; cli_usage_lines[i]; i++)
		fprintf(f, "  edgefeed %s\n", cli_usage_lines[i]);
	fprintf(f,
		"\n"
		"Times (MS|ISO) are epoch milliseconds or ISO-8601, e.g.\n"
		"2026-05-06T02:58:52.123Z. Results are JSON on stdout; messages\n"
		"and progress go to stderr.\n"
		"\n"
		"Exit codes: 0 success (a duplicate finalize too), 1 failure,\n"
		"2 bad usage or bad input, 4 check found an inconsistency,\n"
		"75 busy with --no-wait (compact holds the store, or another job\n"
		"the maintenance lock).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"db", required_argument, 0, 'd'},
		{"no-wait", no_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	cli c = {0};
	int o;

	c.db = getenv("EDGEFEED_DB");
	if (!c.db || !*c.db)
		c.db = "./edgefeed.db";
	opterr = 0;
	/* '+': stop at the command; its options are its own */
	while ((o = getopt_long(argc, argv, "+:h", lo, NULL)) != -1) {
		switch (o) {
		case 'd':
			c.db = optarg;
			break;
		case 'W':
			c.nowait = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("edgefeed %s\n", ef_version());
			return EXIT_OK;
		case ':':
			fprintf(stderr, "edgefeed: --db: needs a value (the "
				"store directory: edgefeed --db DIR COMMAND)\n");
			return EXIT_USAGE;
		default:
			fprintf(stderr, "edgefeed: '%.*s' is not an option before "
				"the command (those are --db DIR, --no-wait, "
				"--help, --version); a command's own options go "
				"after it: edgefeed [--db DIR] [--no-wait] COMMAND "
				"[OPTIONS]\n",
				(int)strcspn(argv[optind - 1], "="),
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		fprintf(stderr, "\nedgefeed: a COMMAND is needed\n");
		return EXIT_USAGE;
	}
	if (!*c.db) {
		fprintf(stderr, "edgefeed: --db: empty path (the store "
			"directory, e.g. --db /var/lib/edgefeed)\n");
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			c.cmd = commands[i].name;
			c.creates = commands[i].creates;
			return commands[i].fn(&c, argc - optind, argv + optind);
		}
	}
	fprintf(stderr, "edgefeed: '%s' is not a command; the commands are",
		argv[optind]);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(stderr, "%s %s", i ? "," : "", commands[i].name);
	fprintf(stderr, " (see edgefeed --help)\n");
	return EXIT_USAGE;
}

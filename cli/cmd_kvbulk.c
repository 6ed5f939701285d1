/*
 * cmd_kvbulk.c - `edgefeed import --format kv-bulk FILE` and `edgefeed
 * export [--format kv-bulk] [--output FILE]`: the Workers KV bulk format
 * (a JSON array of {"key", "value", "base64", ...}).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define KEY_SHOWN_MAX 200 /* characters of a skipped key in a message */

static int help(const char *cmd, const char *text)
{
	printf("usage: edgefeed [--db DIR] %s\n\n%s", cli_usage_of(cmd), text);
	return EXIT_OK;
}

static int format_ok(const cli *c, const char *f)
{
	if (strcmp(f, "kv-bulk") == 0)
		return EXIT_OK;
	return cli_usage_error(c, "--format: '%s' is not a format (the one "
			       "format is kv-bulk)", f);
}

/* ---- import ------------------------------------------------------------- */

static const char import_text[] =
	"Import a Workers KV bulk file (a JSON array of {\"key\", \"value\",\n"
	"\"base64\", ...}, as wrangler kv bulk get or an export writes it):\n"
	"legacy arrays (recentReceives:), entries (recentReceive:), index\n"
	"keys, unread markers and quarantine records. A key names an owner\n"
	"only as edgefeed spells it (lower case, trimmed, ':' '%' ' ' as\n"
	"%3A %25 %20): any other spelling (Alice@x, alice@x%20) is skipped,\n"
	"never merged into another owner's feed. Each element that cannot\n"
	"be taken is reported on stderr (element index, key, reason) and\n"
	"skipped. Entries are written as finalize writes them: one per\n"
	"reservation (one already in the owner's legacy array is a\n"
	"conflict), each owner trimmed to its 100 newest entries within 90\n"
	"days; the entries left out, with their index keys and markers,\n"
	"count as \"trimmed\", the store's entries that newer ones push out\n"
	"as \"trimDeleted\". Re-importing a file changes nothing. Prints a\n"
	"JSON summary.\n"
	"FILE - is the standard input. A pipe, FIFO or socket is checked\n"
	"whole through a temporary file without a name in the store\n"
	"directory (mode 0600, gone when the import ends; it holds the\n"
	"input's IPs meanwhile), so that a malformed one writes nothing.\n"
	"\n"
	"  --format kv-bulk  the file's format (required)\n"
	"  --batch N         elements per write transaction (default 1000)\n"
	"  --no-wait         exit 75 if another maintenance job runs\n"
	"\n"
	"Exit codes: 0 imported (skipped elements are reported, not fatal),\n"
	"1 failure, 2 bad usage or a malformed file, which writes nothing (the\n"
	"message gives its line, column, byte offset and element index),\n"
	"75 lock busy.\n";

typedef struct skip_ctx {
	const cli *c;
	const char *file;
} skip_ctx;

static void print_skip(uint64_t element, const char *key, size_t key_len,
		       int reason, const char *detail, void *ctx)
{
	const skip_ctx *s = ctx;
	json_t *k = json_stringn(key, key_len);
	char *shown = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;

	fprintf(stderr, "edgefeed: %s: %s: element %llu: skipped %.*s%s (%s): "
		"%s\n", s->c->cmd, s->file, (unsigned long long)element,
		KEY_SHOWN_MAX, shown ? shown : "a key",
		shown && strlen(shown) > KEY_SHOWN_MAX ? "..." : "",
		ef_import_skip_name(reason), detail);
	free(shown);
	json_decref(k);
}

static json_t *import_summary(const char *file, const ef_import_stats *s)
{
	json_t *reasons = json_object();

	for (int i = 0; reasons && i < EF_IMPORT_SKIP_COUNT; i++)
		json_object_set_new(reasons, ef_import_skip_name(i),
				    json_integer((json_int_t)
							 s->skipped_by_reason[i]));
	return json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:I, s:o, s:I}",
		"file", file, "elements", (json_int_t)s->elements,
		"legacyArrays", (json_int_t)s->legacy_arrays, "legacyMerged",
		(json_int_t)s->legacy_merged, "mergedOwners",
		(json_int_t)s->merged_owners, "entries", (json_int_t)s->entries,
		"indexKeys", (json_int_t)s->index_keys, "markers",
		(json_int_t)s->markers, "quarantineRecords",
		(json_int_t)s->quarantine_records, "quarantined",
		(json_int_t)s->quarantined, "ipsDropped",
		(json_int_t)s->ips_dropped, "unchanged",
		(json_int_t)s->unchanged, "trimmed", (json_int_t)s->trimmed,
		"trimDeleted", (json_int_t)s->trim_deleted, "skipped",
		(json_int_t)s->skipped,
		"skippedReasons", reasons, "batches", (json_int_t)s->batches);
}

int cmd_import(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"format", required_argument, 0, 'f'},
		{"batch", required_argument, 0, 'b'},
		{"no-wait", no_argument, 0, 'W'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	ef_import_opts io = {0};
	ef_import_stats is;
	skip_ctx sc = {c, NULL};
	uint64_t batch = 1000;
	const char *format = NULL;
	ef_store *st;
	int o, rc;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'f': format = optarg; break;
		case 'b':
			if ((rc = cli_uint(c, "--batch", optarg, 1, 100000,
					   &batch)))
				return rc;
			break;
		case 'W': io.lock_flags |= EF_LOCK_NOWAIT, c->nowait = 1; break;
		case 'h':
			return help("import", import_text);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if (!format)
		return cli_usage_error(c, "--format: missing (the one format "
				       "is kv-bulk: --format kv-bulk)");
	if ((rc = format_ok(c, format)))
		return rc;
	if (optind >= argc)
		return cli_usage_error(c, "FILE: missing (the bulk file to "
				       "import, e.g. import --format kv-bulk "
				       "kv.json)");
	if (optind + 1 < argc)
		return cli_extra_arg(c, argv[optind + 1]);
	sc.file = argv[optind];
	io.batch = (uint32_t)batch;
	io.on_wait = out_waiting;
	io.wait_ctx = (void *)c->cmd;
	io.progress = out_progress;
	io.progress_ctx = "elements";
	io.on_skip = print_skip;
	io.skip_ctx = &sc;
	if ((rc = cli_open(c, 0, &st)))
		return rc;
	rc = ef_import_kvbulk(st, sc.file, &io, &is);
	out_progress_end();
	if ((rc = cli_finish(c, st, rc)) != EXIT_OK)
		return rc;
	return out_print(import_summary(sc.file, &is));
}

/* ---- export ------------------------------------------------------------- */

static const char export_text[] =
	"Write the store's feed records as a Workers KV bulk file: entries\n"
	"(the record in base64; its IP, while within retention, as\n"
	"\"metadata\": {\"ip\"}), index keys, unread markers, legacy arrays and\n"
	"quarantine records, from one snapshot. IPs past retention never\n"
	"leave. Importing the file into an empty store gives the same feeds.\n"
	"\n"
	"  --format kv-bulk  the file's format (the default and only one)\n"
	"  --output FILE     write FILE (mode 0600, complete or not at all)\n"
	"                    instead of stdout\n"
	"  --now MS|ISO      the time that retention is judged at\n"
	"\n"
	"The JSON summary goes to stdout with --output, else to stderr.\n";

static json_t *export_summary(const char *file, const ef_export_stats *s)
{
	return json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I}",
			 "output", file, "elements", (json_int_t)s->elements,
			 "entries", (json_int_t)s->entries, "indexKeys",
			 (json_int_t)s->index_keys, "markers",
			 (json_int_t)s->markers, "legacyArrays",
			 (json_int_t)s->legacy_arrays, "quarantineRecords",
			 (json_int_t)s->quarantine_records, "ipsDropped",
			 (json_int_t)s->ips_dropped, "unparsed",
			 (json_int_t)s->unparsed, "leftOut",
			 (json_int_t)s->left_out, "otherKeys",
			 (json_int_t)s->other_keys);
}

/* Export into a temporary file beside @path, synced, then renamed over it:
 * FILE is complete or untouched. */
static int export_to_file(const cli *c, ef_store *st, const char *path,
			  const ef_export_opts *eo, ef_export_stats *es)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 16);
	FILE *f = NULL;
	int fd, rc;

	if (!tmp)
		return cli_fail(c, "out of memory");
	snprintf(tmp, n + 16, "%s.tmp-XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || !(f = fdopen(fd, "wb"))) {
		rc = cli_fail(c, "--output: cannot create '%s' (written "
			      "first as '%s'): %s; its directory must exist "
			      "and be writable", path, tmp, strerror(errno));
		if (fd >= 0)
			close(fd), unlink(tmp);
		free(tmp);
		return rc;
	}
	rc = ef_export_kvbulk(st, f, eo, es);
	if (rc != EF_OK)
		rc = cli_ef_error(c, st, rc);
	else if (fsync(fileno(f)) != 0)
		rc = cli_fail(c, "--output: cannot sync '%s': %s", tmp,
			      strerror(errno));
	if (fclose(f) != 0 && rc == EXIT_OK)
		rc = cli_fail(c, "--output: cannot write '%s': %s", tmp,
			      strerror(errno));
	if (rc == EXIT_OK && rename(tmp, path) != 0)
		rc = cli_fail(c, "--output: cannot rename '%s' to '%s': %s",
			      tmp, path, strerror(errno));
	if (rc != EXIT_OK)
		unlink(tmp);
	free(tmp);
	return rc;
}

int cmd_export(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"format", required_argument, 0, 'f'},
		{"output", required_argument, 0, 'o'},
		{"now", required_argument, 0, 'n'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	const char *output = NULL;
	ef_export_opts eo = {0};
	ef_export_stats es;
	ef_store *st;
	json_t *sum;
	int o, rc;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, lo, NULL)) != -1) {
		switch (o) {
		case 'f':
			if ((rc = format_ok(c, optarg)))
				return rc;
			break;
		case 'o': output = optarg; break;
		case 'n':
			if ((rc = cli_time(c, "--now", optarg, &c->now_ms)))
				return rc;
			break;
		case 'h':
			return help("export", export_text);
		default: return cli_bad_option(c, o, lo, argv);
		}
	}
	if (optind < argc)
		return cli_extra_arg(c, argv[optind]);
	if (output && !*output)
		return cli_usage_error(c, "--output: empty path");
	if (output && strcmp(output, "-") == 0)
		output = NULL;
	eo.progress = out_progress;
	eo.progress_ctx = "keys";
	if ((rc = cli_open(c, EF_RDONLY, &st)))
		return rc;
	if (output) {
		rc = export_to_file(c, st, output, &eo, &es);
	} else {
		rc = ef_export_kvbulk(st, stdout, &eo, &es);
		rc = rc == EF_OK ? EXIT_OK : cli_ef_error(c, st, rc);
	}
	out_progress_end();
	ef_close(st);
	if (rc != EXIT_OK)
		return rc;
	sum = export_summary(output, &es);
	if (output)
		return out_print(sum);
	/* stdout holds the file: the summary goes to stderr */
	if (sum && json_dumpf(sum, stderr, JSON_COMPACT | JSON_PRESERVE_ORDER) ==
			   0)
		fputc('\n', stderr);
	json_decref(sum);
	return EXIT_OK;
}

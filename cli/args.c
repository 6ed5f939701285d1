/*
 * args.c - argument parsing helpers and error reporting of the CLI.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void vmsg(const cli *c, const char *fmt, va_list ap)
{
	fprintf(stderr, "edgefeed: ");
	if (c && c->cmd)
		fprintf(stderr, "%s: ", c->cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_usage_error(const cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int cli_fail(const cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	return EXIT_FAIL;
}

/* The long option whose val is @val, or NULL. */
static const struct option *long_of(const struct option *lo, int val)
{
	for (; lo && lo->name; lo++)
		if (lo->val == val)
			return lo;
	return NULL;
}

int cli_bad_option(const cli *c, int o, const struct option *lo, char **argv)
{
	const char *arg = argv[optind - 1];
	const char *usage = cli_usage_of(c->cmd);
	const struct option *l = optopt ? long_of(lo, optopt) : NULL;
	int len = (int)strcspn(arg, "=");

	if (o == ':' && l)
		return cli_usage_error(c, "--%s: needs a value (usage: edgefeed "
				       "[--db DIR] %s)", l->name, usage);
	if (o == ':')
		return cli_usage_error(c, "-%c: needs a value (usage: edgefeed "
				       "[--db DIR] %s)", optopt, usage);
	if (l && strncmp(arg, "--", 2) == 0)
		return cli_usage_error(c, "--%s: takes no value, but was given "
				       "'%s' (usage: edgefeed [--db DIR] %s)",
				       l->name, arg + len + (arg[len] == '='),
				       usage);
	if (optopt && strncmp(arg, "--", 2) != 0)
		return cli_usage_error(c, "'-%c' is not an option of %s (usage: "
				       "edgefeed [--db DIR] %s)", optopt, c->cmd,
				       usage);
	return cli_usage_error(c, "'%.*s' is not an option of %s (usage: "
			       "edgefeed [--db DIR] %s)", len, arg, c->cmd,
			       usage);
}

int cli_extra_arg(const cli *c, const char *arg)
{
	return cli_usage_error(c, "unexpected argument '%s' (usage: edgefeed "
			       "[--db DIR] %s)", arg, cli_usage_of(c->cmd));
}

int cli_uint(const cli *c, const char *opt, const char *text, uint64_t min,
	     uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!text || *text < '0' || *text > '9')
		goto bad;
	v = strtoull(text, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return EXIT_OK;
bad:
	return cli_usage_error(c, "%s: '%s' is not a whole number in %" PRIu64
			       "..%" PRIu64, opt, text ? text : "", min, max);
}

int cli_time(const cli *c, const char *opt, const char *text, int64_t *out)
{
	if (ef_time_parse(text, out) != EF_OK)
		return cli_usage_error(c,
				       "%s: not a time (epoch milliseconds, or "
				       "ISO-8601 like 2026-05-06T02:58:52.123Z; "
				       "a leap second :60 only at 23:59:60 UTC "
				       "of June 30 or December 31)", opt);
	/* the library reads 0 as "now": an explicit epoch would silently
	 * become another time */
	if (*out == 0)
		return cli_usage_error(c,
				       "%s: 1970-01-01T00:00:00.000Z (0) is "
				       "taken to mean \"now\"; give the real "
				       "time, or leave %s out for now", opt, opt);
	return EXIT_OK;
}

/* API field names as the CLI spells them. */
static const struct {
	const char *api, *opt;
} field_names[] = {
	{"owner:", "--owner:"},
	{"reservation_id:", "--reservation:"},
	{"created_ms:", "--created:"},
	{"now_ms:", "--now:"},
	{"ip:", "--ip:"},
	{"payload_json:", "--payload:"},
	{"limit:", "--limit:"},
	{"cursor:", "--cursor:"},
	{"owners:", "--owners:"},
	{"receives:", "--receives:"},
};

/* What to do about a message that does not say it itself: (code, start of
 * the message as shown, command or NULL for any, the hint). */
static const struct {
	int rc;
	const char *msg, *cmd, *hint;
} hints[] = {
	{EF_EINVAL, "--owner: empty", NULL,
	 "an owner needs a character besides white space, e.g. "
	 "--owner alice@example.com"},
	{EF_EINVAL, "--reservation: empty", NULL,
	 "give the reservation id, e.g. --reservation rsv-1"},
	{EF_EINVAL, "--owner: control character", NULL,
	 "owners may not hold control characters (bytes below 0x20, or 0x7f)"},
	{EF_EINVAL, "--reservation: control character", NULL,
	 "reservation ids may not hold control characters (bytes below 0x20, "
	 "or 0x7f)"},
	{EF_EBUSY, "the maintenance lock is held", "compact",
	 "compact waits for no one: run it again once that job is done"},
	{EF_EBUSY, "the maintenance lock is held", NULL,
	 "--no-wait: run it again later, or without --no-wait to wait its turn"},
	{EF_EBUSY, "the store is held exclusively", NULL,
	 "--no-wait: run it again once it is done, or without --no-wait to "
	 "wait for it"},
	{EF_EBUSY, "the store is open", NULL,
	 "compact needs the store to itself: stop the workers and every other "
	 "edgefeed command using it, then run compact again"},
	{EF_ENOTFOUND, "no store at", NULL,
	 "create one with 'edgefeed --db DIR init' (or --db redis://...), or "
	 "give an existing store with --db or EDGEFEED_DB"},
	{EF_EINVAL, "cannot open store", NULL,
	 "--db must name the store's directory, or a path where one can be "
	 "created"},
};

/* Print @msg (or the code's text) with its hint, if it has one. */
static void fail_hinted(const cli *c, int rc, const char *msg)
{
	if (!*msg)
		msg = ef_strerror(rc);
	for (size_t i = 0; i < sizeof(hints) / sizeof(*hints); i++) {
		if (hints[i].rc == rc &&
		    strncmp(msg, hints[i].msg, strlen(hints[i].msg)) == 0 &&
		    (!hints[i].cmd || strcmp(hints[i].cmd, c->cmd) == 0)) {
			cli_fail(c, "%s (%s)", msg, hints[i].hint);
			return;
		}
	}
	cli_fail(c, "%s", msg);
}

int cli_ef_error(const cli *c, ef_store *st, int rc)
{
	const char *msg = ef_errmsg(st);
	const char *shown = msg;
	char buf[600];

	for (size_t i = 0; i < sizeof(field_names) / sizeof(*field_names); i++) {
		size_t n = strlen(field_names[i].api);
		if (strncmp(msg, field_names[i].api, n) == 0) {
			snprintf(buf, sizeof(buf), "%s%s", field_names[i].opt,
				 msg + n);
			shown = buf;
			break;
		}
	}
	fail_hinted(c, rc, shown);
	if (rc == EF_EINVAL)
		return EXIT_USAGE;
	if (rc == EF_EBUSY)
		return EXIT_BUSY;
	return EXIT_FAIL;
}

int cli_finish(const cli *c, ef_store *st, int rc)
{
	int code = rc == EF_OK ? EXIT_OK : cli_ef_error(c, st, rc);

	ef_close(st);
	return code;
}

static int64_t fixed_clock(void *ctx)
{
	return *(const int64_t *)ctx;
}

/* Tell stderr, before ef_open waits, who holds the store (an ef_wait_fn). */
static void open_waiting(const char *holder, void *ctx)
{
	const cli *c = ctx;

	fprintf(stderr,
		"edgefeed: %s: waiting for open.lock: the store is held "
		"exclusively by %s (a compaction needs it to itself); "
		"--no-wait exits 75 instead\n", c->cmd ? c->cmd : "", holder);
	fflush(stderr);
}

int cli_open(const cli *c, unsigned flags, ef_store **st)
{
	ef_config cfg = {0};
	int rc;

	cfg.flags = flags | (c->creates ? 0 : EF_NOCREATE) |
		    (c->nowait ? EF_NOWAIT : 0);
	cfg.on_wait = open_waiting;
	cfg.wait_ctx = (void *)c;
	if (c->now_ms) {
		cfg.clock_ms = fixed_clock;
		cfg.clock_ctx = (void *)&c->now_ms;
	}
	rc = ef_open(st, c->db, &cfg);
	if (rc != EF_OK) {
		fail_hinted(c, rc, ef_errmsg(NULL));
		if (rc == EF_EBUSY)
			return EXIT_BUSY;
		return rc == EF_EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	return EXIT_OK;
}

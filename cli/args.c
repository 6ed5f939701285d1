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
	if (ef_time_parse(text, out) == EF_OK)
		return EXIT_OK;
	return cli_usage_error(c,
			       "%s: '%s' is not a time (epoch milliseconds, or "
			       "ISO-8601 like 2026-05-06T02:58:52.123Z)",
			       opt, text);
}

/* API field names as the CLI spells them. */
static const struct {
	const char *api, *opt;
} field_names[] = {
	{"owner:", "--owner:"},
	{"reservation_id:", "--reservation:"},
	{"created_ms:", "--created:"},
	{"ip:", "--ip:"},
	{"payload_json:", "--payload:"},
	{"limit:", "--limit:"},
	{"cursor:", "--cursor:"},
	{"owners:", "--owners:"},
	{"receives:", "--receives:"},
};

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
	if (*shown)
		cli_fail(c, "%s", shown);
	else
		cli_fail(c, "%s", ef_strerror(rc));
	if (rc == EF_EINVAL)
		return EXIT_USAGE;
	if (rc == EF_EBUSY)
		return EXIT_BUSY;
	return EXIT_FAIL;
}

static int64_t fixed_clock(void *ctx)
{
	return *(const int64_t *)ctx;
}

int cli_open(const cli *c, unsigned flags, ef_store **st)
{
	ef_config cfg = {0};
	int rc;

	cfg.flags = flags;
	if (c->now_ms) {
		cfg.clock_ms = fixed_clock;
		cfg.clock_ctx = (void *)&c->now_ms;
	}
	rc = ef_open(st, c->db, &cfg);
	if (rc != EF_OK) {
		cli_fail(c, "%s", ef_errmsg(NULL));
		return rc == EF_EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	return EXIT_OK;
}

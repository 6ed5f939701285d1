/*
 * cli.h - the edgefeed command: argument helpers, output, commands.
 * Thin by design: it parses arguments and calls the public API only.
 */
#ifndef EF_CLI_CLI_H
#define EF_CLI_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "edgefeed.h"

/* Exit codes of DESIGN.md "CLI contract". */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_CHECK 4
#define EXIT_BUSY 75

typedef struct cli {
	const char *db;      /* store directory */
	const char *cmd;     /* command name, for messages */
	int creates;         /* the command may create a missing store */
	int nowait;          /* --no-wait: exit 75 rather than wait (global,
			      * or a maintenance command's own) */
	int64_t now_ms;      /* --now, or 0 */
} cli;

/* ---- args.c ---- */
/* Print "edgefeed: CMD: fmt..." to stderr. Returns EXIT_USAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print "edgefeed: CMD: fmt..." to stderr. Returns EXIT_FAIL. */
int cli_fail(const cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long's option string for every command: ':' first, so that a
 * missing value (':') is told apart from an unknown option ('?'). */
#define CLI_OPTSTRING ":h"
/* Report what getopt_long returned as @o (':' or '?') for @c's options @lo:
 * the option that needs a value, takes none, or does not exist, with the
 * command's usage line. Returns EXIT_USAGE. */
int cli_bad_option(const cli *c, int o, const struct option *lo, char **argv);
/* Report an argument the command does not take. Returns EXIT_USAGE. */
int cli_extra_arg(const cli *c, const char *arg);
/* A whole number in [min, max] for option @opt; EXIT_OK or EXIT_USAGE. */
int cli_uint(const cli *c, const char *opt, const char *text, uint64_t min,
	     uint64_t max, uint64_t *out);
/* A time (epoch ms or ISO-8601) for option @opt; EXIT_USAGE, naming @opt
 * but not quoting @text, if it is none or is 0 (which the library reads as
 * "now": an explicit epoch is refused rather than replaced). */
int cli_time(const cli *c, const char *opt, const char *text, int64_t *out);
/* Report a library error: the exit code it maps to (EINVAL: 2, EBUSY: 75,
 * else 1) after printing the message, with API field names translated to
 * the CLI's options. */
int cli_ef_error(const cli *c, ef_store *st, int rc);
/* Close @st after the library call that returned @rc: EXIT_OK, or the
 * exit code of the error (reported as cli_ef_error does). */
int cli_finish(const cli *c, ef_store *st, int rc);
/* Open the store for a command (honours --now through the clock). A
 * command that does not create (!c->creates) opens with EF_NOCREATE: where
 * there is no store it says so, with the next step, and exits 1. While
 * compact holds the store: with c->nowait (EF_NOWAIT) exit 75 at once;
 * else say on stderr whom it waits for, then wait. */
int cli_open(const cli *c, unsigned flags, ef_store **st);

/* ---- output.c ---- */
/* The JSON of one entry (camelCase, like the original worker). New ref. */
json_t *out_entry(const ef_entry *e);
/* Print @j to stdout on one line and release it. EXIT_OK or EXIT_FAIL. */
int out_print(json_t *j);
/* A progress line or bar on stderr (a bar when stderr is a terminal). */
void out_progress(uint64_t done, uint64_t total, void *ctx);
void out_progress_end(void);
/* Tell stderr whom we wait for (an ef_wait_fn). */
void out_waiting(const char *holder, void *ctx);

/* ---- commands.c ---- */
int cmd_init(cli *c, int argc, char **argv);
int cmd_finalize(cli *c, int argc, char **argv);
int cmd_feed(cli *c, int argc, char **argv);
int cmd_unread(cli *c, int argc, char **argv);
int cmd_mark_read(cli *c, int argc, char **argv);
int cmd_stat(cli *c, int argc, char **argv);
int cmd_seed(cli *c, int argc, char **argv);

/* ---- cmd_check.c ---- */
int cmd_check(cli *c, int argc, char **argv);

/* ---- cmd_migrate.c ---- */
int cmd_migrate(cli *c, int argc, char **argv);

/* ---- cmd_retention.c ---- */
int cmd_sweep(cli *c, int argc, char **argv);
int cmd_compact(cli *c, int argc, char **argv);

/* ---- cmd_kvbulk.c ---- */
int cmd_import(cli *c, int argc, char **argv);
int cmd_export(cli *c, int argc, char **argv);

/* Usage lines (commands.c), indexed for the commands in other files. */
extern const char *const cli_usage_lines[];
/* @cmd's usage line, found by name: lines of commands in other files are
 * added concurrently, so an index can go stale. @cmd if it has none. */
const char *cli_usage_of(const char *cmd);
#define CLI_USAGE_MIGRATE 7
#define CLI_USAGE_CHECK 8

#endif

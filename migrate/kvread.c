/*
 * kvread.c - a Workers KV bulk file read as a stream, element by element.
 *
 * The array's punctuation ('[', ',', ']') is read here; each element goes
 * to jansson through a callback that hands over one byte at a time, so that
 * jansson (JSON_DISABLE_EOF_CHECK) stops at the element's closing '}'
 * without reading ahead, and the reader counts every byte for positions:
 * line, column (in characters, as jansson counts), byte offset. Memory is
 * one element, at most KV_ELEM_MAX bytes of JSON.
 *
 * An input that cannot be read twice (a pipe, a FIFO, a socket, the
 * standard input) goes through a spool: a file without a name in the
 * store directory (O_TMPFILE; else mkstemp, unlinked at once), mode 0600,
 * gone when the reader closes it, on every path. Each byte that the first
 * scan (the check of the whole structure) reads is copied into it, and
 * the second scan (the import) reads the spool: all of the input is
 * checked before anything is written, and a malformed input is read only
 * up to where it goes wrong (an endless one fills no disk).
 */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp, asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate/kvbulk.h"
#include "feed/jsonerr.h"
#include "store/error.h"

#define LA_NONE (-2) /* nothing read ahead */

static int rd_peek(kv_reader *r)
{
	if (r->la == LA_NONE) {
		r->la = getc_unlocked(r->f);
		if (r->la == EOF && ferror(r->f) && !r->ioerr)
			r->ioerr = errno ? errno : EIO;
	}
	return r->la;
}

static int rd_get(kv_reader *r)
{
	int c = rd_peek(r);

	if (c == EOF)
		return EOF;
	if (r->spool && putc_unlocked(c, r->spool) == EOF) {
		/* the spool cannot take it: a read error from now on */
		r->ioerr = errno ? errno : EIO;
		r->spool_err = 1;
		r->la = EOF;
		return EOF;
	}
	r->la = LA_NONE;
	r->off++;
	if (c == '\n')
		r->line++, r->chars = 0;
	else if ((c & 0xC0) != 0x80) /* not a UTF-8 continuation byte */
		r->chars++;
	return c;
}

static kv_pos rd_here(const kv_reader *r)
{
	kv_pos p = {r->line, r->chars + 1, r->off};
	return p;
}

/* The last byte read. */
static kv_pos rd_last(const kv_reader *r)
{
	kv_pos p = {r->line, r->chars ? r->chars : 1, r->off ? r->off - 1 : 0};
	return p;
}

/* Where jansson found an error in the element that starts at @start: its
 * line, column and position count from the element's first byte, and
 * point at the offending token; at the end of the file, the end. */
static kv_pos rd_jansson(const kv_reader *r, const kv_pos *start,
			 const json_error_t *je)
{
	kv_pos p;

	if (r->la == EOF || je->line < 1 || je->column < 1 || je->position < 1)
		return r->la == EOF ? rd_here(r) : rd_last(r);
	p.line = start->line + (uint64_t)je->line - 1;
	p.col = je->line == 1 ? start->col + (uint64_t)je->column - 1
			      : (uint64_t)je->column;
	p.byte = start->byte + (uint64_t)je->position - 1;
	return p;
}

static int is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void rd_skip_ws(kv_reader *r)
{
	while (is_ws(rd_peek(r)))
		rd_get(r);
}

/* jansson's input: one byte per call, so it never reads past the '}'. */
static size_t rd_feed(void *buf, size_t len, void *data)
{
	kv_reader *r = data;
	int c;

	if (len == 0)
		return 0;
	if (r->budget == 0) {
		r->over = 1;
		return (size_t)-1;
	}
	c = rd_get(r);
	if (c == EOF)
		return r->ioerr ? (size_t)-1 : 0;
	r->budget--;
	*(unsigned char *)buf = (unsigned char)c;
	return 1;
}

/* "PATH: line L column C (byte B)[, element N | , after element N]: ..." */
static int rd_err(const kv_reader *r, const kv_pos *at, int64_t elem,
		  int after, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int rd_err(const kv_reader *r, const kv_pos *at, int64_t elem,
		  int after, const char *fmt, ...)
{
	char where[64] = "", what[400];
	va_list ap;

	if (elem >= 0)
		snprintf(where, sizeof(where), ", %selement %lld",
			 after ? "after " : "", (long long)elem);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ef__err(r->err_id, EF_EINVAL,
		       "%s: line %llu column %llu (byte %llu)%s: %s", r->path,
		       (unsigned long long)at->line,
		       (unsigned long long)at->col,
		       (unsigned long long)at->byte, where, what);
}

static int rd_ioerr(const kv_reader *r)
{
	if (r->spool_err)
		return ef__err(r->err_id, ef__errno_code(r->ioerr),
			       "%s: cannot copy it into a temporary file in "
			       "'%s' (an input that cannot be read twice is "
			       "kept there until it is imported): %s",
			       r->path, r->spool_dir, strerror(r->ioerr));
	return ef__err(r->err_id, ef__errno_code(r->ioerr), "%s: cannot read: %s",
		       r->path, strerror(r->ioerr));
}

static void rd_reset(kv_reader *r)
{
	r->la = LA_NONE;
	r->line = 1;
	r->chars = 0;
	r->off = 0;
	r->ioerr = 0;
	r->spool_err = 0;
}

/* A new file without a name in @dir, mode 0600, open for reading and
 * writing; -1 with errno. */
static int spool_create(const char *dir)
{
	char *tmpl;
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
			errno != EINVAL))
		return fd;
#endif
	/* no O_TMPFILE here: a name for an instant, never one that exists
	 * (O_EXCL), unlinked before a byte is written */
	if (asprintf(&tmpl, "%s/.import-spool-XXXXXX", dir) < 0)
		return -1;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0 && unlink(tmpl) != 0) {
		int e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	free(tmpl);
	return fd;
}

/* A spool for r->f, an input that cannot be read twice. */
static int spool_open(kv_reader *r, const char *dir)
{
	int fd = spool_create(dir);

	r->spool_dir = dir;
	if (fd >= 0 && (r->spool = fdopen(fd, "w+b")) != NULL) {
		setvbuf(r->spool, NULL, _IOFBF, (size_t)1 << 20);
		return EF_OK;
	}
	r->ioerr = errno ? errno : EIO;
	r->spool_err = 1;
	if (fd >= 0)
		close(fd);
	return rd_ioerr(r);
}

/* The file at @path, or a copy of the standard input for "-". */
static FILE *input_open(const char *path)
{
	int fd;
	FILE *f;

	if (strcmp(path, "-") != 0)
		return fopen(path, "rbe"); /* e: close-on-exec */
	fd = fcntl(0, F_DUPFD_CLOEXEC, 0); /* closing it leaves fd 0 open */
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "rb");
	if (!f)
		close(fd);
	return f;
}

int kv_open(kv_reader *r, uint64_t err_id, const char *path,
	    const char *spool_dir)
{
	struct stat sb;

	memset(r, 0, sizeof(*r));
	r->path = strcmp(path, "-") == 0 ? "standard input" : path;
	r->err_id = err_id;
	rd_reset(r);
	r->f = input_open(path);
	if (!r->f) {
		int e = errno;
		return ef__err(err_id, e == ENOENT ? EF_ENOTFOUND
						   : ef__errno_code(e),
			       "%s: cannot open: %s", r->path, strerror(e));
	}
	setvbuf(r->f, NULL, _IOFBF, (size_t)1 << 20);
	if (fstat(fileno(r->f), &sb) == 0 && S_ISREG(sb.st_mode))
		return EF_OK;
	return spool_open(r, spool_dir);
}

int kv_rewind(kv_reader *r)
{
	if (r->spool) {
		/* the input was read once, into the spool: read that now */
		if (fflush(r->spool) != 0) {
			r->ioerr = errno ? errno : EIO;
			r->spool_err = 1;
			return rd_ioerr(r);
		}
		fclose(r->f);
		r->f = r->spool;
		r->spool = NULL;
	}
	if (fseek(r->f, 0, SEEK_SET) != 0) {
		r->ioerr = errno;
		return rd_ioerr(r);
	}
	clearerr(r->f);
	rd_reset(r);
	return EF_OK;
}

/* ---- the array, element by element ------------------------------------- */


static int scan_open(kv_reader *r)
{
	kv_pos at;
	int c;

	if (rd_peek(r) == 0xEF) { /* a UTF-8 byte order mark */
		rd_get(r);
		if (rd_get(r) != 0xBB || rd_get(r) != 0xBF) {
			at = rd_last(r);
			return rd_err(r, &at, -1, 0, "not JSON");
		}
		r->chars = 0;
	}
	rd_skip_ws(r);
	at = rd_here(r);
	c = rd_get(r);
	if (c == EOF)
		return r->ioerr ? rd_ioerr(r)
				: rd_err(r, &at, -1, 0,
					 "the file is empty; a JSON array "
					 "('[') was expected");
	if (c != '[')
		return rd_err(r, &at, -1, 0, "not a JSON array ('[' expected)");
	return EF_OK;
}

/* Read element @i into *out (a new reference). */
static int scan_element(kv_reader *r, uint64_t i, json_t **out)
{
	kv_pos at = rd_here(r), bad;
	const char *bad_field;
	json_error_t je;
	json_t *el, *key;
	int c = rd_peek(r);

	*out = NULL;
	if (c == EOF)
		return r->ioerr ? rd_ioerr(r)
				: rd_err(r, &at, (int64_t)i, 0,
					 "the file ends inside the array "
					 "(']' expected)");
	if (c != '{')
		return rd_err(r, &at, (int64_t)i, 0, "not a JSON object");
	r->budget = KV_ELEM_MAX;
	r->over = 0;
	el = json_load_callback(rd_feed, r,
				JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL |
					JSON_REJECT_DUPLICATES,
				&je);
	if (!el) {
		if (r->ioerr)
			return rd_ioerr(r);
		if (r->over)
			return rd_err(r, &at, (int64_t)i, 0,
				      "larger than the limit of %zu MiB",
				      KV_ELEM_MAX >> 20);
		bad = rd_jansson(r, &at, &je);
		return rd_err(r, &bad, (int64_t)i, 0, "invalid JSON: %s",
			      jsonerr_what(&je));
	}
	key = json_object_get(el, "key");
	bad_field = !key ? "\"key\" is missing"
		    : !json_is_string(key) ? "\"key\" is not a string"
		    : !json_object_get(el, "value") ? "\"value\" is missing"
						    : NULL;
	if (bad_field) {
		json_decref(el);
		return rd_err(r, &at, (int64_t)i, 0, "%s", bad_field);
	}
	*out = el;
	return EF_OK;
}

/* After the array's ']': only white space may follow. */
static int scan_close(kv_reader *r)
{
	kv_pos at;

	rd_skip_ws(r);
	at = rd_here(r);
	if (rd_get(r) != EOF)
		return rd_err(r, &at, -1, 0,
			      "data after the end of the array");
	return r->ioerr ? rd_ioerr(r) : EF_OK;
}

int kv_scan(kv_reader *r, kv_elem_fn fn, void *ctx, uint64_t *count)
{
	json_t *el;
	kv_pos at;
	int rc, c;

	*count = 0;
	rc = scan_open(r);
	if (rc != EF_OK)
		return rc;
	rd_skip_ws(r);
	if (rd_peek(r) == ']') {
		rd_get(r);
		return scan_close(r);
	}
	for (uint64_t i = 0;; i++) {
		rc = scan_element(r, i, &el);
		if (rc != EF_OK)
			return rc;
		rc = fn ? fn(ctx, el, i) : EF_OK;
		json_decref(el);
		if (rc != EF_OK)
			return rc;
		*count = i + 1;
		rd_skip_ws(r);
		at = rd_here(r);
		c = rd_get(r);
		if (c == ']')
			break;
		if (c == EOF && r->ioerr)
			return rd_ioerr(r);
		if (c != ',')
			return rd_err(r, &at, (int64_t)i, 1, "%s",
				      c == EOF ? "the file ends before the "
						 "array's ']'"
					       : "',' or ']' expected");
		rd_skip_ws(r);
		if (rd_peek(r) == ']') {
			at = rd_here(r);
			return rd_err(r, &at, (int64_t)i + 1, 0,
				      "an element was expected after ','");
		}
	}
	return scan_close(r);
}

void kv_close(kv_reader *r)
{
	if (r->f)
		fclose(r->f);
	if (r->spool)
		fclose(r->spool); /* unnamed: closing it removes it */
	r->f = NULL;
	r->spool = NULL;
}

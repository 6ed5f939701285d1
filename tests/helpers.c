/*
 * helpers.c - see helpers.h.
 */
#define _GNU_SOURCE
#include "tests/helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <ftw.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "feed/feed.h"
#include "migrate/migrate.h"

char *th_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&path, "%s/edgefeed-test-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(path));
	return path;
}

int th_redis(void)
{
	const char *a = getenv("EF_TEST_REDIS");
	return a && *a;
}

char *th_store(void)
{
	const char *a = getenv("EF_TEST_REDIS");
	unsigned char raw[8];
	char hex[17], *out;

	if (!a || !*a)
		return th_tmpdir();
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	assert_true(asprintf(&out, "%s%sstore=test-%s", a,
			     strchr(a, '?') ? "&" : "?", hex) > 0);
	return out;
}

char *th_scratch(const char *store, const char *suffix)
{
	static unsigned n;
	const char *base = getenv("TMPDIR");
	char *out;

	if (!th_redis()) {
		assert_true(asprintf(&out, "%s%s", store, suffix) > 0);
		return out;
	}
	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&out, "%s/edgefeed-scratch-%ld-%u%s", base,
			     (long)getpid(), n++, suffix) > 0);
	return out;
}

void th_lmdb_only(void)
{
	if (th_redis())
		skip();
}

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

void th_cleanup(char *dir)
{
	if (!dir)
		return;
	if (strncmp(dir, "redis://", 8) == 0) { /* a store on the test cluster */
		free(dir);
		return;
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

int64_t th_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

ef_store *th_open(const char *dir, const ef_config *cfg)
{
	ef_store *st = NULL;
	int rc = ef_open(&st, dir, cfg);

	if (rc != EF_OK)
		fail_msg("ef_open(%s): %s: %s", dir, ef_strerror(rc),
			 ef_errmsg(NULL));
	return st;
}

struct dump_ctx {
	ef_store *st;
	char *buf;
	size_t len, cap;
	const char *prefix;
	size_t count;
};

static void dump_cat(struct dump_ctx *d, const char *s, size_t n)
{
	if (d->len + n + 1 > d->cap) {
		d->cap = (d->len + n + 1) * 2;
		d->buf = realloc(d->buf, d->cap);
		assert_non_null(d->buf);
	}
	memcpy(d->buf + d->len, s, n);
	d->len += n;
	d->buf[d->len] = '\0';
}

static void dump_hex(struct dump_ctx *d, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char b = ((const unsigned char *)p)[i];
		dump_cat(d, &hex[b >> 4], 1);
		dump_cat(d, &hex[b & 15], 1);
	}
}

/* A value in hex; in an entry record, the sealed IP (random nonce) shows as
 * what it opens to at its own time, so equal dumps mean equal contents. */
/* A quarantine record with its sealed bytes shown opened (nonces are
 * random, so the sealed form never compares equal between stores). */
static int dump_quarantine(struct dump_ctx *d, const store_val *k,
			   const store_val *v)
{
	json_t *j = json_loadb(v->data, v->len, 0, NULL);
	uint8_t *raw = NULL;
	size_t n = 0;
	char *text;
	int rc;

	if (!json_is_string(json_object_get(j, "sealed"))) {
		json_decref(j);
		return 0;
	}
	rc = quarantine_raw(d->st, k->data, k->len, j, feed_now(d->st), &raw,
			    &n);
	{
		json_t *shown = rc != EF_OK ? json_string("(cannot open)")
					    : json_stringn((const char *)raw, n);
		if (!shown) { /* not UTF-8: its bytes in hex */
			char *hex = malloc(2 * n + 1);
			assert_non_null(hex);
			for (size_t i = 0; i < n; i++)
				sprintf(hex + 2 * i, "%02x", raw[i]);
			shown = json_string(hex);
			free(hex);
		}
		json_object_set_new(j, "sealed", shown);
	}
	free(raw);
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	assert_non_null(text);
	dump_cat(d, "[quarantine ", 12);
	dump_cat(d, text, strlen(text));
	dump_cat(d, "]", 1);
	free(text);
	return 1;
}

static void dump_value(struct dump_ctx *d, const store_val *k,
		       const store_val *v)
{
	key_view ow, so, rid;
	rec_entry r;
	char ip[64] = "none";
	size_t at;

	if (store_has_prefix(k, KEY_P_QUARANTINE, strlen(KEY_P_QUARANTINE)) &&
	    d->st && dump_quarantine(d, k, v))
		return;
	if (!store_has_prefix(k, KEY_P_ENTRY, strlen(KEY_P_ENTRY)) ||
	    key_split_entry(k->data, k->len, &ow, &so, &rid) != EF_OK ||
	    rec_decode(v->data, v->len, &r) != EF_OK ||
	    r.ip_kind != REC_IP_SEALED) {
		dump_hex(d, v->data, v->len);
		return;
	}
	ip_reveal_entry(d->st, ow, rid, &r, r.created_ms, ip, sizeof(ip));
	at = (size_t)(r.ip - (const uint8_t *)v->data);
	dump_hex(d, v->data, at);
	dump_cat(d, "[sealed ip ", 11);
	dump_cat(d, ip, strlen(ip));
	dump_cat(d, "]", 1);
	dump_hex(d, r.ip + r.ip_len, v->len - at - r.ip_len);
}

static int dump_txn(store_txn *t, void *p)
{
	struct dump_ctx *d = p;
	store_cur *c;
	store_val k, v;
	int rc;

	dump_cat(d, "", 0); /* d->len and d->count: dump_group_txn's */
	assert_int_equal(store_cur_open(t, &c), EF_OK);
	for (rc = store_cur_seek(c, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(c, &k, &v)) {
		if (d->prefix) {
			if (store_has_prefix(&k, d->prefix, strlen(d->prefix)))
				d->count++;
			continue;
		}
		dump_cat(d, k.data, k.len);
		dump_cat(d, "\t", 1);
		dump_value(d, &k, &v);
		dump_cat(d, "\n", 1);
	}
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* Run dump_txn over every group; a run that is run again starts over
 * from what the groups before it left. */
struct dump_all {
	struct dump_ctx *d;
	size_t len0;
	size_t count0;
};

static int dump_group_txn(store_txn *t, void *p)
{
	struct dump_all *a = p;

	a->d->len = a->len0;
	if (a->d->buf)
		a->d->buf[a->len0] = '\0';
	a->d->count = a->count0;
	return dump_txn(t, a->d);
}

static int dump_group(const store_val *g, void *p)
{
	struct dump_all *a = p;

	a->len0 = a->d->len;
	a->count0 = a->d->count;
	return store_read_in(a->d->st->env, g, dump_group_txn, a);
}

static int line_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Groups come one after the other: put the lines in key order ('\t' sorts
 * before every byte a key may hold, so a key before its extensions). */
static char *dump_sorted(char *buf)
{
	size_t n = 0, len = buf ? strlen(buf) : 0, o = 0;
	char **lines, *out, *p;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	lines = calloc(n + 1, sizeof(*lines));
	out = malloc(len + 1);
	assert_non_null(lines);
	assert_non_null(out);
	n = 0;
	for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n"))
		lines[n++] = p;
	qsort(lines, n, sizeof(*lines), line_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(out + o, lines[i], l);
		out[o + l] = '\n';
		o += l + 1;
	}
	out[o] = '\0';
	free(lines);
	free(buf);
	return out;
}

char *th_dump(ef_store *st)
{
	struct dump_ctx d = {0};
	struct dump_all a = {&d, 0, 0};

	d.st = st;
	assert_int_equal(store_each_group(st->env, dump_group, &a), EF_OK);
	return store_sharded(st->env) ? dump_sorted(d.buf) : d.buf;
}

size_t th_count_prefix(ef_store *st, const char *prefix)
{
	struct dump_ctx d = {0};
	struct dump_all a = {&d, 0, 0};

	d.st = st;
	d.prefix = prefix;
	assert_int_equal(store_each_group(st->env, dump_group, &a), EF_OK);
	free(d.buf);
	return d.count;
}

static void print_violation(const char *what, const char *key, void *ctx)
{
	(void)ctx;
	print_error("check: %s: %s\n", what, key ? key : "");
}

void th_assert_consistent(ef_store *st)
{
	ef_check_opts o = {0};
	ef_check_stats cs;

	o.report = print_violation;
	assert_int_equal(ef_check(st, &o, &cs), EF_OK);
	assert_int_equal(cs.violations, 0);
}

struct put_ctx {
	const char *key;
	const void *val;
	size_t vlen;
};

static int put_txn(store_txn *t, void *p)
{
	struct put_ctx *c = p;
	return store_put(t, c->key, strlen(c->key), c->val, c->vlen, 0);
}

void th_put_raw(ef_store *st, const char *key, const void *val, size_t vlen)
{
	struct put_ctx c = {key, val, vlen};
	store_val g;

	key_group(key, strlen(key), &g);
	assert_int_equal(store_write_in(st->env, &g, put_txn, &c), EF_OK);
}

static int del_txn(store_txn *t, void *p)
{
	return store_del(t, p, strlen(p));
}

void th_del_raw(ef_store *st, const char *key)
{
	store_val g;

	key_group(key, strlen(key), &g);
	assert_int_equal(store_write_in(st->env, &g, del_txn, (void *)key),
			 EF_OK);
}

void th_each_file(const char *dir, th_file_fn fn, void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char *path, *buf;
		struct stat sb;
		size_t len;
		ssize_t n;
		int fd;

		assert_true(asprintf(&path, "%s/%s", dir, de->d_name) > 0);
		if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			free(path);
			continue;
		}
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		buf = malloc((size_t)sb.st_size + 1);
		assert_non_null(buf);
		len = 0;
		while (len < (size_t)sb.st_size &&
		       (n = read(fd, buf + len, (size_t)sb.st_size - len)) > 0)
			len += (size_t)n;
		close(fd);
		fn(de->d_name, (const unsigned char *)buf, len, ctx);
		free(buf);
		free(path);
	}
	closedir(d);
}

struct find_ctx {
	const void *needle;
	size_t len;
	char *found;
};

static void find_one(const char *name, const unsigned char *buf, size_t len,
		     void *p)
{
	struct find_ctx *c = p;

	if (!c->found && memmem(buf, len, c->needle, c->len))
		c->found = strdup(name);
}

char *th_dir_find(const char *dir, const void *needle, size_t len)
{
	struct find_ctx c = {needle, len, NULL};

	th_each_file(dir, find_one, &c);
	return c.found;
}

const char *th_program(const char *var)
{
	const char *p = getenv(var);

	if (!p || !*p)
		fail_msg("environment variable %s is not set (run the tests "
			 "with meson test)", var);
	return p;
}

static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

int th_run(char *const argv[], char **out, char **err)
{
	char opath[] = "/tmp/edgefeed-out-XXXXXX";
	char epath[] = "/tmp/edgefeed-err-XXXXXX";
	int ofd = mkstemp(opath), efd = mkstemp(epath), status;
	pid_t pid;

	assert_true(ofd >= 0 && efd >= 0);
	unlink(opath);
	unlink(epath);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	if (out)
		*out = slurp(ofd);
	if (err)
		*err = slurp(efd);
	close(ofd);
	close(efd);
	return WIFEXITED(status) ? WEXITSTATUS(status)
				 : 128 + WTERMSIG(status);
}

int th_cli(const char *dir, char **out, char **err, ...)
{
	char *argv[16];
	va_list ap;
	int i = 0;

	argv[i++] = (char *)th_program("EDGEFEED_BIN");
	argv[i++] = "--db";
	argv[i++] = (char *)dir;
	va_start(ap, err);
	while (i < 15 && (argv[i] = va_arg(ap, char *)) != NULL)
		i++;
	va_end(ap);
	argv[i] = NULL;
	return th_run(argv, out, err);
}

pid_t th_fork(unsigned alarm_s)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS,
				   SIGABRT};
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
			signal(sigs[i], SIG_DFL);
		alarm(alarm_s);
	}
	return pid;
}

uint64_t th_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void th_sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

unsigned long th_env_ulong(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtoul(s, NULL, 10) : dflt;
}

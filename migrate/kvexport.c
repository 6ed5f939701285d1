/*
 * kvexport.c - ef_export_kvbulk: the store's feed records as a Workers KV
 * bulk file (kvbulk.h), from one read snapshot, in key order; on a sharded
 * engine (Redis Cluster) from one snapshot of each group, group by group.
 *
 * IPs past retention never leave: a record is written without any IP (its
 * IP, while within retention, goes as text in "metadata"), and legacy
 * arrays and quarantined values lose the "ip" of their elements past
 * retention. Keys of other families (meta:) are not part of the format.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"
#include "migrate/kvbulk.h"
#include "migrate/migrate.h"
#include "store/error.h"

#define PROGRESS_EVERY 4096 /* keys between two progress calls */

typedef struct exp_ctx {
	ef_store *st;
	FILE *out;
	ef_export_opts o;
	int64_t now;        /* one clock reading for the whole export */
	ef_export_stats s;
	uint64_t total;     /* keys of the exported families, for progress */
	uint64_t done;
} exp_ctx;

enum { FAM_OTHER, FAM_ENTRY, FAM_INDEX, FAM_MARKER, FAM_LEGACY,
       FAM_QUARANTINE };

static int family(const store_val *k)
{
	static const struct {
		const char *prefix;
		int fam;
	} fams[] = {{KEY_P_ENTRY, FAM_ENTRY},   {KEY_P_INDEX, FAM_INDEX},
		    {KEY_P_UNREAD, FAM_MARKER}, {KEY_P_LEGACY, FAM_LEGACY},
		    {KEY_P_QUARANTINE, FAM_QUARANTINE}};

	for (size_t i = 0; i < sizeof(fams) / sizeof(*fams); i++)
		if (store_has_prefix(k, fams[i].prefix, strlen(fams[i].prefix)))
			return fams[i].fam;
	return FAM_OTHER;
}

static int write_fail(exp_ctx *c)
{
	int e = errno ? errno : EIO;
	return ef__err(c->st->err_id, ef__errno_code(e) == EF_EFULL ? EF_EFULL
								    : EF_EIO,
		       "cannot write the export: %s", strerror(e));
}

char *kv_base64(const void *raw, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len,
					       sodium_base64_VARIANT_ORIGINAL);
	char *out = ef__malloc(cap);

	if (out)
		sodium_bin2base64(out, cap, raw, len,
				  sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* {"key", "value"[, "base64": true][, "metadata": @meta]}; takes @meta. A
 * value that JSON text cannot carry as it is (not UTF-8, or a NUL) goes in
 * base64. The key is UTF-8 (export_one). */
static int emit(exp_ctx *c, const store_val *k, const void *val, size_t vlen,
		int b64, json_t *meta)
{
	json_t *el = json_object(), *jk = json_stringn(k->data, k->len), *jv;
	char *enc = NULL;
	int rc = EF_OK;

	if (!b64 && (memchr(val, '\0', vlen) || !utf8_valid(val, vlen, NULL)))
		b64 = 1;
	if (b64)
		enc = kv_base64(val, vlen);
	jv = b64 ? (enc ? json_string(enc) : NULL) : json_stringn(val, vlen);
	free(enc);
	if (!el || !jk || !jv || json_object_set(el, "key", jk) ||
	    json_object_set(el, "value", jv) ||
	    (b64 && json_object_set_new(el, "base64", json_true())) ||
	    (meta && json_object_set(el, "metadata", meta))) {
		rc = ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
		goto out;
	}
	if ((c->s.elements && fputs(",\n", c->out) == EOF) ||
	    json_dumpf(el, c->out, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
		rc = write_fail(c);
		goto out;
	}
	c->s.elements++;
out:
	json_decref(el);
	json_decref(jk);
	json_decref(jv);
	json_decref(meta);
	return rc;
}

static int export_entry(exp_ctx *c, const store_val *k, const store_val *v)
{
	key_view ow, so, rv;
	json_t *meta = NULL;
	rec_entry r;
	char ip[64], *payload = NULL;
	uint8_t *rec;
	size_t len;
	int rc;

	if (key_split_entry(k->data, k->len, &ow, &so, &rv) != EF_OK ||
	    rec_decode(v->data, v->len, &r) != EF_OK) {
		c->s.left_out++; /* what IP it holds cannot be told: it stays */
		return EF_OK;
	}
	rc = ip_reveal_entry(c->st, ow, rv, &r, c->now, ip, sizeof(ip));
	if (rc == EF_OK && !(meta = json_pack("{s:s}", "ip", ip)))
		rc = EF_ENOMEM;
	if (rc == EF_ENOMEM)
		return ef__err(c->st->err_id, rc, "out of memory");
	if (rc != EF_OK && r.ip_kind != REC_IP_NONE)
		c->s.ips_dropped++; /* past retention, or its key is gone */
	/* sealed bytes open in this store only: the record leaves without;
	 * a sealed payload leaves as it reads now */
	r.ip_kind = REC_IP_NONE;
	r.ip = NULL;
	r.ip_len = 0;
	rc = r.has_payload ? feed_payload_reveal(c->st, ow, rv, &r, c->now,
						 &r.payload, &r.payload_len,
						 &payload)
			   : EF_OK;
	r.psealed = NULL;
	r.psealed_len = 0;
	if (rc == EF_OK)
		rc = rec_encode(&r, &rec, &len);
	free(payload);
	if (rc != EF_OK) {
		json_decref(meta);
		return ef__err(c->st->err_id, rc, "cannot encode a record");
	}
	rc = emit(c, k, rec, len, 1, meta);
	free(rec);
	c->s.entries += rc == EF_OK;
	return rc;
}

/*
 * @data without the IPs past retention of its elements: *out is a new
 * string, or NULL when nothing had to go (*dropped 0) or it is not JSON
 * (*unparsed 1: what it holds cannot be told, it leaves as it is).
 */
static int scrubbed(exp_ctx *c, const key_part *owner, const void *data,
		    size_t len, char **out, uint64_t *dropped, int *unparsed)
{
	json_t *j = kv_legacy_load(data, len);
	int rc;

	*out = NULL;
	*dropped = 0;
	*unparsed = j == NULL;
	if (!j)
		return EF_OK;
	rc = kv_scrub_ips(c->st, owner, j, c->now, dropped);
	if (rc == EF_OK && *dropped > 0 &&
	    !(*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY)))
		rc = EF_ENOMEM;
	json_decref(j);
	c->s.ips_dropped += *dropped;
	c->s.unparsed += (uint64_t)*unparsed;
	return rc == EF_OK ? EF_OK
			   : ef__err(c->st->err_id, rc, "out of memory");
}

static int export_legacy(exp_ctx *c, const store_val *k, const store_val *v)
{
	const size_t plen = strlen(KEY_P_LEGACY);
	uint64_t dropped;
	key_part owner;
	char *text;
	int rc, unparsed;
	int has_owner = key_owner_from_key(c->st->err_id,
					   (const char *)k->data + plen,
					   k->len - plen, &owner) == EF_OK;
	key_buf lk;
	uint8_t *view;
	size_t vlen;

	key_buf_set(&lk, k->data, k->len);
	rc = legacy_value_view(c->st, &lk, v->data, v->len, c->now, &view,
			       &vlen);
	if (rc == EF_ENOTFOUND || rc == EF_ECORRUPT) {
		/* not JSON, and shredded: nothing of it may leave */
		c->s.unparsed++;
		return EF_OK;
	}
	if (rc != EF_OK)
		return rc;
	rc = scrubbed(c, has_owner ? &owner : NULL, view, vlen, &text,
		      &dropped, &unparsed);
	if (rc == EF_OK)
		rc = emit(c, k, text ? text : (const char *)view,
			  text ? strlen(text) : vlen, 0, NULL);
	free(text);
	sodium_memzero(view, vlen);
	free(view);
	c->s.legacy_arrays += rc == EF_OK;
	return rc;
}

/* A quarantine record whose original bytes lose their IPs past retention:
 * rawBase64 and bytes say the new bytes, ipsDropped how many went. */
static int quarantine_scrubbed(exp_ctx *c, json_t *j, char **out)
{
	json_t *raw = json_object_get(j, "rawBase64");
	size_t n = json_string_length(raw), len, cap = n / 4 * 3 + 3;
	uint8_t *bytes = ef__malloc(cap);
	uint64_t dropped = 0;
	char *text = NULL, *enc;
	int rc = EF_OK, unparsed = 1;

	*out = NULL;
	if (!bytes)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	if (sodium_base642bin(bytes, cap, json_string_value(raw), n, NULL,
			      &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0)
		rc = scrubbed(c, NULL, bytes, len, &text, &dropped, &unparsed);
	else
		c->s.unparsed++;
	free(bytes);
	if (rc != EF_OK || !text)
		return rc;
	enc = kv_base64(text, strlen(text));
	if (!enc || json_object_set_new(j, "rawBase64", json_string(enc)) ||
	    json_object_set_new(j, "bytes", json_integer((json_int_t)strlen(text))) ||
	    json_object_set_new(j, "ipsDropped", json_integer((json_int_t)dropped)) ||
	    !(*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	free(enc);
	free(text);
	return rc;
}

/* Turn a stored quarantine record (version 2: sealed) into the portable
 * version 1 of a bulk file: "rawBase64" with the original bytes, or, once
 * retention shredded them, with the redacted value ("redacted": true). */
static int quarantine_portable(exp_ctx *c, const store_val *k, json_t *j)
{
	json_t *red = json_object_get(j, "redacted");
	uint8_t *raw = NULL;
	size_t len = 0;
	char *enc;
	int rc = EF_OK, gone = 0;

	if (json_integer_value(json_object_get(j, "version")) ==
	    QUARANTINE_FILE_VERSION)
		return EF_OK;
	rc = quarantine_raw(c->st, k->data, k->len, j, c->now, &raw, &len);
	if (rc == EF_ENOTFOUND || rc == EF_ECORRUPT) {
		gone = 1;
		rc = EF_OK;
		if (json_is_string(red)) {
			len = json_string_length(red);
			raw = ef__malloc(len + 1);
			if (raw)
				memcpy(raw, json_string_value(red), len);
			else
				rc = EF_ENOMEM;
		}
	}
	if (rc != EF_OK)
		return ef__err(c->st->err_id, rc, "quarantine record: %s",
			       ef_strerror(rc));
	enc = kv_base64(raw ? raw : (const uint8_t *)"", len);
	free(raw);
	if (!enc ||
	    json_object_set_new(j, "version",
				json_integer(QUARANTINE_FILE_VERSION)) ||
	    json_object_set_new(j, "rawBase64", json_string(enc)) ||
	    json_object_set_new(j, "bytes", json_integer((json_int_t)len)) ||
	    (gone && json_object_set_new(j, "redacted", json_true()))) {
		free(enc);
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	}
	free(enc);
	json_object_del(j, "sealed");
	json_object_del(j, "sealedMs");
	if (!gone)
		json_object_del(j, "redacted");
	return EF_OK;
}

static int export_quarantine(exp_ctx *c, const store_val *k,
			     const store_val *v)
{
	json_t *j = json_loadb(v->data, v->len, 0, NULL);
	char *text = NULL;
	int rc = j ? quarantine_portable(c, k, j) : EF_OK;

	if (rc == EF_OK && json_is_string(json_object_get(j, "rawBase64")))
		rc = quarantine_scrubbed(c, j, &text);
	else if (rc == EF_OK)
		c->s.unparsed++;
	/* bytes that are not JSON have no IP field to scrub: the portable
	 * record as it is */
	if (rc == EF_OK && !text && j &&
	    !(text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	json_decref(j);
	if (rc == EF_OK)
		rc = emit(c, k, text ? text : v->data,
			  text ? strlen(text) : v->len, 0, NULL);
	free(text);
	c->s.quarantine_records += rc == EF_OK;
	return rc;
}

static int export_one(exp_ctx *c, const store_val *k, const store_val *v)
{
	int fam = family(k);

	/* a JSON string holds UTF-8 only; feed keys are (the key codec
	 * checks), so this is a key written by something else */
	if (fam != FAM_OTHER && !utf8_valid(k->data, k->len, NULL)) {
		c->s.left_out++;
		return EF_OK;
	}
	switch (fam) {
	case FAM_ENTRY:
		return export_entry(c, k, v);
	case FAM_INDEX:
		c->s.index_keys++;
		return emit(c, k, v->data, v->len, 0, NULL);
	case FAM_MARKER:
		c->s.markers++;
		return emit(c, k, v->data, v->len, 0, NULL);
	case FAM_LEGACY:
		return export_legacy(c, k, v);
	case FAM_QUARANTINE:
		return export_quarantine(c, k, v);
	default:
		c->s.other_keys++;
		return EF_OK;
	}
}

/* Walk every key of the snapshot: count (@write 0) or export them. */
static int walk(store_txn *t, exp_ctx *c, int write)
{
	store_cur *cur;
	store_val k, v;
	int rc;

	rc = store_cur_open(t, &cur);
	if (rc != EF_OK)
		return rc;
	for (rc = store_cur_seek(cur, "", 0, &k, &v); rc == EF_OK;
	     rc = store_cur_next(cur, &k, &v)) {
		if (!write) {
			c->total += family(&k) != FAM_OTHER;
			continue;
		}
		rc = export_one(c, &k, &v);
		if (rc != EF_OK)
			break;
		if (family(&k) != FAM_OTHER && ++c->done % PROGRESS_EVERY == 0 &&
		    c->o.progress)
			c->o.progress(c->done, c->total, c->o.progress_ctx);
	}
	store_cur_close(cur);
	return rc == EF_ENOTFOUND ? EF_OK : rc;
}

/* The end of the array, flushed, and the last progress call. */
static int export_end(exp_ctx *c)
{
	if (fputs(c->s.elements ? "\n]\n" : "]\n", c->out) == EOF ||
	    fflush(c->out) != 0 || ferror(c->out))
		return write_fail(c);
	if (c->o.progress)
		c->o.progress(c->total, c->total, c->o.progress_ctx);
	return EF_OK;
}

static int export_txn(store_txn *t, void *p)
{
	exp_ctx *c = p;
	int rc;

	/* store_read runs this once: writing to the stream here is safe */
	rc = walk(t, c, 0);
	if (rc == EF_OK && fputs("[\n", c->out) == EOF)
		rc = write_fail(c);
	if (rc == EF_OK)
		rc = walk(t, c, 1);
	return rc == EF_OK ? export_end(c) : rc;
}

/* ---- on a sharded engine: group by group ---- */

typedef struct exp_group {
	exp_ctx *c;
	FILE *out;             /* the caller's stream */
	ef_export_stats s0;    /* c->s before the group's run */
	uint64_t done0;
	char *buf;             /* the group's output, kept until its run stood */
	size_t len;
} exp_group;

static int count_group_txn(store_txn *t, void *p)
{
	exp_group *x = p;
	x->c->total = x->done0; /* done0 holds the total so far, here */
	return walk(t, x->c, 0);
}

static int count_group(const store_val *g, void *p)
{
	exp_group *x = p;
	int rc;

	x->done0 = x->c->total;
	rc = store_read_in(x->c->st->env, g, count_group_txn, x);
	return rc;
}

/* A run of a group's transaction may be re-run: it writes into memory,
 * from the counts it began with, and what it wrote reaches the stream once
 * the run stood. */
static int group_txn(store_txn *t, void *p)
{
	exp_group *x = p;
	exp_ctx *c = x->c;
	FILE *mem;
	int rc;

	c->s = x->s0;
	c->done = x->done0;
	free(x->buf);
	x->buf = NULL;
	x->len = 0;
	mem = open_memstream(&x->buf, &x->len);
	if (!mem)
		return ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	c->out = mem;
	rc = walk(t, c, 1);
	c->out = x->out;
	if (fclose(mem) != 0 && rc == EF_OK)
		rc = ef__err(c->st->err_id, EF_ENOMEM, "out of memory");
	return rc;
}

static int export_group(const store_val *g, void *p)
{
	exp_group *x = p;
	exp_ctx *c = x->c;
	int rc;

	x->s0 = c->s;
	x->done0 = c->done;
	rc = store_read_in(c->st->env, g, group_txn, x);
	if (rc == EF_OK && x->len &&
	    fwrite(x->buf, 1, x->len, x->out) != x->len)
		rc = write_fail(c);
	free(x->buf);
	x->buf = NULL;
	x->len = 0;
	return rc;
}

static int export_sharded(exp_ctx *c)
{
	exp_group x = {c, c->out, {0}, 0, NULL, 0};
	int rc;

	rc = store_each_group(c->st->env, count_group, &x);
	if (rc == EF_OK && fputs("[\n", c->out) == EOF)
		rc = write_fail(c);
	if (rc == EF_OK)
		rc = store_each_group(c->st->env, export_group, &x);
	return rc == EF_OK ? export_end(c) : rc;
}

int ef_export_kvbulk(ef_store *st, FILE *out, const ef_export_opts *opts,
		     ef_export_stats *stats)
{
	exp_ctx c;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!st)
		return EF_EINVAL;
	if (!out)
		return ef__err(st->err_id, EF_EINVAL, "out: missing");
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.out = out;
	if (opts)
		c.o = *opts;
	c.now = feed_now(st);
	rc = store_sharded(st->env) ? export_sharded(&c)
				    : store_read(st->env, export_txn, &c);
	if (stats)
		*stats = c.s;
	if (rc == EF_OK)
		ef__err_clear(st->err_id);
	return rc;
}

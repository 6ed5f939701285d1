/*
 * test-errors.c - the error table (ef_strerror, ef_err_name, the codes of
 * EF_ERRNO_MAP) and the per-thread detail behind ef_errmsg().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgefeed.h"
#include "store/error.h"
#include "tests/helpers.h"

/* ---- the table ---------------------------------------------------------- */

static const struct {
	int code;         /* the enum constant */
	int value;        /* the value the table gives */
	const char *name; /* "EF_" #name */
	const char *text; /* the table's text */
} table[] = {
#define EF__ROW(name, value, text) {EF_##name, value, "EF_" #name, text},
	EF_ERRNO_MAP(EF__ROW)
#undef EF__ROW
};
#define NCODES (sizeof(table) / sizeof(table[0]))

/* Every code DESIGN.md "Return codes" names, with its required sign. */
static const struct {
	const char *name;
	int sign;
} design[] = {
	{"EF_OK", 0},         {"EF_EXISTS", 1},    {"EF_EINVAL", -1},
	{"EF_ENOTFOUND", -1}, {"EF_EBUSY", -1},    {"EF_ECORRUPT", -1},
	{"EF_ENOMEM", -1},    {"EF_EIO", -1},      {"EF_EFULL", -1},
	{"EF_EVERSION", -1},
};

static void test_errors_table(void **state)
{
	static const int unknown[] = {-999, 42, 2, -9, 1000, INT_MIN, INT_MAX};

	(void)state;
	assert_int_equal(EF_OK, 0);
	assert_int_equal(EF_EXISTS, 1);
	for (size_t i = 0; i < NCODES; i++) {
		const char *text = ef_strerror(table[i].code);
		const char *name = ef_err_name(table[i].code);

		assert_int_equal(table[i].code, table[i].value);
		assert_non_null(text);
		assert_non_null(name);
		assert_string_equal(text, table[i].text);
		assert_string_equal(name, table[i].name);
		assert_true(strlen(text) > 0);
		/* a status is >= 0; only EF_OK and EF_EXISTS are */
		if (table[i].code >= 0)
			assert_true(table[i].code == EF_OK ||
				    table[i].code == EF_EXISTS);
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(table[i].code, table[j].code);
			assert_string_not_equal(table[i].name, table[j].name);
			assert_string_not_equal(table[i].text, table[j].text);
		}
	}
	/* the table holds exactly the codes of the contract, with their sign */
	assert_int_equal(NCODES, sizeof(design) / sizeof(design[0]));
	for (size_t d = 0; d < sizeof(design) / sizeof(design[0]); d++) {
		size_t i = 0;

		while (i < NCODES && strcmp(table[i].name, design[d].name) != 0)
			i++;
		if (i == NCODES)
			fail_msg("%s is missing from EF_ERRNO_MAP",
				 design[d].name);
		if ((table[i].code > 0) - (table[i].code < 0) != design[d].sign)
			fail_msg("%s = %d has the wrong sign", design[d].name,
				 table[i].code);
	}
	for (size_t u = 0; u < sizeof(unknown) / sizeof(unknown[0]); u++) {
		assert_string_equal(ef_strerror(unknown[u]), "unknown error");
		assert_string_equal(ef_err_name(unknown[u]), "EF_UNKNOWN");
	}
}

/* ---- per-thread detail -------------------------------------------------- */

struct peek {
	uint64_t id;
	char seen[600];    /* what the other thread read before writing */
	char own[600];     /* what it read after writing its own message */
	char nostore[600]; /* its ef_errmsg(NULL) */
};

static void *peek_thread(void *arg)
{
	struct peek *p = arg;

	snprintf(p->seen, sizeof(p->seen), "%s", ef__err_get(p->id));
	ef__err(p->id, EF_EIO, "y: %d", 7);
	snprintf(p->own, sizeof(p->own), "%s", ef__err_get(p->id));
	snprintf(p->nostore, sizeof(p->nostore), "%s", ef_errmsg(NULL));
	return NULL;
}

static void run_peek(struct peek *p)
{
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, peek_thread, p), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_err_detail_records_message(void **state)
{
	uint64_t id = ef__err_new_id();

	(void)state;
	assert_string_equal(ef__err_get(id), "");
	assert_int_equal(ef__err(id, EF_EINVAL, "x: %d", 5), EF_EINVAL);
	assert_string_equal(ef__err_get(id), "x: 5");
	/* ef__err returns whatever code it is given, statuses included */
	assert_int_equal(ef__err(id, EF_EXISTS, "dup"), EF_EXISTS);
	assert_int_equal(ef__err(id, EF_ENOMEM, "%s", "oom"), EF_ENOMEM);
	assert_string_equal(ef__err_get(id), "oom");
}

static void test_err_detail_is_per_thread(void **state)
{
	struct peek p = {0};

	(void)state;
	p.id = ef__err_new_id();
	assert_int_equal(ef__err(p.id, EF_EINVAL, "x: %d", 5), EF_EINVAL);
	run_peek(&p);
	assert_string_equal(p.seen, "");
	assert_string_equal(p.own, "y: 7");
	/* the other thread's message did not reach this one */
	assert_string_equal(ef__err_get(p.id), "x: 5");
}

static void test_err_clear(void **state)
{
	uint64_t a = ef__err_new_id(), b = ef__err_new_id();

	(void)state;
	ef__err(a, EF_EINVAL, "a: bad");
	ef__err(b, EF_EINVAL, "b: bad");
	ef__err_clear(a);
	assert_string_equal(ef__err_get(a), "");
	assert_string_equal(ef__err_get(b), "b: bad"); /* only @a */
	ef__err_clear(a); /* twice is harmless */
	ef__err_clear(ef__err_new_id()); /* an id never written, too */
	assert_string_equal(ef__err_get(a), "");
	/* a cleared slot takes a new message */
	ef__err(a, EF_EIO, "a: again");
	assert_string_equal(ef__err_get(a), "a: again");
}

#define ID_THREADS 4
#define IDS_PER_THREAD 2000

static void *take_ids(void *arg)
{
	uint64_t *ids = arg;

	for (int i = 0; i < IDS_PER_THREAD; i++)
		ids[i] = ef__err_new_id();
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_err_new_id_distinct(void **state)
{
	uint64_t *ids = calloc(ID_THREADS * IDS_PER_THREAD, sizeof(*ids));
	pthread_t t[ID_THREADS];

	(void)state;
	assert_non_null(ids);
	/* taken by several threads at once */
	for (int i = 0; i < ID_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, take_ids,
						ids + i * IDS_PER_THREAD),
				 0);
	for (int i = 0; i < ID_THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	qsort(ids, ID_THREADS * IDS_PER_THREAD, sizeof(*ids), cmp_u64);
	for (size_t i = 0; i < ID_THREADS * IDS_PER_THREAD; i++) {
		assert_int_not_equal(ids[i], EF__ERR_NOSTORE);
		if (i > 0 && ids[i] == ids[i - 1])
			fail_msg("id %llu handed out twice",
				 (unsigned long long)ids[i]);
	}
	free(ids);
}

struct many {
	uint64_t ids[6];
	char last[600];   /* message of the most recent id */
	char second[600]; /* of the one before it */
	char again[600];  /* of ids[0], rewritten after all the others */
};

static void *many_thread(void *arg)
{
	struct many *m = arg;

	for (int i = 0; i < 6; i++)
		ef__err(m->ids[i], EF_EINVAL, "store %d: failed", i);
	snprintf(m->last, sizeof(m->last), "%s", ef__err_get(m->ids[5]));
	snprintf(m->second, sizeof(m->second), "%s", ef__err_get(m->ids[4]));
	ef__err(m->ids[0], EF_EIO, "store 0: again");
	snprintf(m->again, sizeof(m->again), "%s", ef__err_get(m->ids[0]));
	return NULL;
}

static void test_err_detail_survives_many_ids(void **state)
{
	struct many m;
	pthread_t t;

	(void)state;
	for (int i = 0; i < 6; i++)
		m.ids[i] = ef__err_new_id();
	/* a fresh thread, so its slots start empty */
	assert_int_equal(pthread_create(&t, NULL, many_thread, &m), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(m.last, "store 5: failed");
	/* a thread alternating between two stores keeps both messages */
	assert_string_equal(m.second, "store 4: failed");
	assert_string_equal(m.again, "store 0: again");

	/* the same on this thread, whose slots are already in use */
	many_thread(&m);
	assert_string_equal(m.last, "store 5: failed");
	assert_string_equal(m.second, "store 4: failed");
	assert_string_equal(m.again, "store 0: again");
}

static void test_err_detail_long_message_truncated(void **state)
{
	uint64_t id = ef__err_new_id();
	char *big = malloc(5001);
	const char *msg;

	(void)state;
	assert_non_null(big);
	memset(big, 'm', 5000);
	big[5000] = '\0';
	assert_int_equal(ef__err(id, EF_EINVAL, "owner: %s", big), EF_EINVAL);
	msg = ef__err_get(id);
	assert_true(strlen(msg) > 100 && strlen(msg) < 5000);
	assert_memory_equal(msg, "owner: mmm", 10);
	free(big);
}

static void test_errmsg_failed_open(void **state)
{
	char *dir = th_tmpdir();
	char path[4096];
	ef_store *st = (ef_store *)(uintptr_t)1; /* must be reset to NULL */
	struct peek p = {0};
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/regular-file", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a store\n", f);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(ef_open(&st, path, NULL), EF_EINVAL);
	assert_null(st);
	if (!strstr(ef_errmsg(NULL), "not a directory"))
		fail_msg("ef_errmsg(NULL) = '%s'", ef_errmsg(NULL));
	assert_non_null(strstr(ef_errmsg(NULL), path)); /* names the path */
	/* another thread did not fail an open: its detail is its own */
	p.id = ef__err_new_id();
	run_peek(&p);
	assert_null(strstr(p.nostore, "not a directory"));
	/* and this thread's is still there */
	assert_non_null(strstr(ef_errmsg(NULL), "not a directory"));
	th_cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_table),
		cmocka_unit_test(test_err_detail_records_message),
		cmocka_unit_test(test_err_detail_is_per_thread),
		cmocka_unit_test(test_err_clear),
		cmocka_unit_test(test_err_new_id_distinct),
		cmocka_unit_test(test_err_detail_survives_many_ids),
		cmocka_unit_test(test_err_detail_long_message_truncated),
		cmocka_unit_test(test_errmsg_failed_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

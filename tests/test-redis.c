/*
 * test-redis.c - the parts of the Redis Cluster client that need no
 * server: key slots, the store address, and what replies say about the
 * cluster (slot maps, redirections). test-redis-cluster.c checks them
 * against real servers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "store/error.h"
#include "store/redis/addr.h"
#include "store/redis/reply.h"
#include "store/redis/slot.h"

static void test_slot_crc16_matches_the_spec_check_value(void **state)
{
	(void)state;
	assert_int_equal(rslot_crc16("123456789", 9), 0x31C3);
	assert_int_equal(rslot_crc16("", 0), 0);
}

static void test_slot_hashes_the_tag_as_the_spec_says(void **state)
{
	size_t off, n;

	(void)state;
	/* the specification's own examples */
	assert_int_equal(rslot_of("{user1000}.following", 20),
			 rslot_of("{user1000}.followers", 20));
	assert_int_equal(rslot_of("{user1000}.following", 20),
			 rslot_of("user1000", 8));
	rslot_tag("foo{}{bar}", 10, &off, &n); /* empty tag: whole key */
	assert_int_equal(off, 0);
	assert_int_equal(n, 10);
	rslot_tag("foo{{bar}}zap", 13, &off, &n); /* tag "{bar" */
	assert_int_equal(off, 4);
	assert_int_equal(n, 4);
	rslot_tag("foo{bar}{zap}", 13, &off, &n); /* the first tag only */
	assert_int_equal(off, 4);
	assert_int_equal(n, 3);
	rslot_tag("foo{bar", 7, &off, &n); /* no '}': whole key */
	assert_int_equal(off, 0);
	assert_int_equal(n, 7);
	rslot_tag("}foo{bar}", 9, &off, &n); /* a '}' before the '{' */
	assert_int_equal(off, 5);
	assert_int_equal(n, 3);
	/* bytes after a NUL count: keys are binary */
	assert_int_not_equal(rslot_of("a\0b", 3), rslot_of("a", 1));
	assert_true(rslot_of("\xff\xfe", 2) < RSLOT_COUNT);
}

static raddr a; /* large: not on the stack */

static void test_addr_parses_nodes_and_options(void **state)
{
	(void)state;
	unsetenv("EDGEFEED_REDIS_PASSWORD");
	assert_int_equal(raddr_parse(1, "redis://127.0.0.1:7000", &a), EF_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.nodes[0].host, "127.0.0.1");
	assert_int_equal(a.nodes[0].port, 7000);
	assert_int_equal(a.timeout_ms, 2000);
	assert_int_equal(a.wait_replicas, 0);
	assert_int_equal(a.redirects, 16);
	assert_int_equal(a.retry_ms, 10000);
	assert_string_equal(a.password, "");

	assert_int_equal(raddr_parse(1, "redis://h1:1,[::1]:7001,my-host.ex_"
				     "ample:65535?timeout_ms=500&wait=2&wait_"
				     "ms=30&password=p%26w%3Dd&user=ops&redir"
				     "ects=3&retry_ms=0", &a), EF_OK);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.nodes[0].host, "h1");
	assert_int_equal(a.nodes[0].port, 1);
	assert_string_equal(a.nodes[1].host, "::1");
	assert_int_equal(a.nodes[1].port, 7001);
	assert_string_equal(a.nodes[2].host, "my-host.ex_ample");
	assert_int_equal(a.nodes[2].port, 65535);
	assert_int_equal(a.timeout_ms, 500);
	assert_int_equal(a.wait_replicas, 2);
	assert_int_equal(a.wait_ms, 30);
	assert_string_equal(a.password, "p&w=d");
	assert_string_equal(a.user, "ops");
	assert_int_equal(a.redirects, 3);
	assert_int_equal(a.retry_ms, 0);
	raddr_wipe(&a);
	assert_string_equal(a.password, "");
	assert_true(raddr_is("redis://x"));
	assert_false(raddr_is("/var/lib/edgefeed"));
	assert_false(raddr_is("rediss://x:1"));
	assert_false(raddr_is(NULL));
}

/* Every bad part is refused with EF_EINVAL and a message that names it. */
static void test_addr_rejects_each_bad_part_naming_it(void **state)
{
	static const struct {
		const char *in, *names;
	} bad[] = {
		{"redis:/x:1", "does not start"},
		{"redis://", "no HOST:PORT"},
		{"redis://?wait=1", "no HOST:PORT"},
		{"redis://host", "node 1: no :PORT"},
		{"redis://host:", "node 1: port"},
		{"redis://host:0", "node 1: port"},
		{"redis://host:65536", "node 1: port"},
		{"redis://host:-1", "node 1: port"},
		{"redis://host:+80", "node 1: port"},
		{"redis://host:80x", "node 1: port"},
		{"redis://host:0000000000080", "node 1: port"},
		{"redis://:80", "node 1: host"},
		{"redis://a:1,", "node 2: empty"},
		{"redis://a:1,,b:2", "node 2"},
		{"redis://a:1,b c:2", "node 2: host: byte 2"},
		{"redis://a:1,b/c:2", "node 2: host"},
		{"redis://[::1:80", "node 1: a bracketed host"},
		{"redis://[::1]80", "node 1: a bracketed host"},
		{"redis://[::1]:", "node 1: port"},
		{"redis://[]:80", "node 1: host"},
		{"redis://[::g/1]:80", "node 1: not an IPv6"},
		{"redis://a:1?", "'?' is followed by no option"},
		{"redis://a:1?&wait=1", "unknown option ''"},
		{"redis://a:1?wait", "option wait: no '=VALUE'"},
		{"redis://a:1?wait=17", "wait: not a number from 0 to 16"},
		{"redis://a:1?wait=-1", "wait: not a number"},
		{"redis://a:1?wait=1&wait=2", "option wait given twice"},
		{"redis://a:1?timeout_ms=0", "timeout_ms: not a number from 1"},
		{"redis://a:1?timeout_ms=600001", "timeout_ms"},
		{"redis://a:1?timeout_ms=", "timeout_ms"},
		{"redis://a:1?wait_ms=0", "wait_ms"},
		{"redis://a:1?redirects=0", "redirects"},
		{"redis://a:1?retry_ms=1e3", "retry_ms"},
		{"redis://a:1?wait=1&", "'&' ends the options"},
		{"redis://a:1?Wait=1", "unknown option 'Wait'"},
		{"redis://a:1?password=", "password: 1 to"},
		{"redis://a:1?password=%zz", "password: 1 to"},
		{"redis://a:1?password=%0", "password: 1 to"},
		{"redis://a:1?password=%00x", "password: 1 to"},
		{"redis://a:1?user=", "user: 1 to"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = raddr_parse(7, bad[i].in, &a);
		const char *msg = ef__err_get(7);

		if (rc != EF_EINVAL || !strstr(msg, bad[i].names))
			fail_msg("'%s': rc %d, message '%s', wanted '%s'",
				 bad[i].in, rc, msg, bad[i].names);
		assert_string_equal(a.password, "");
	}
}

static void test_addr_limits_nodes_and_host_length(void **state)
{
	static char s[16 * (RADDR_NODES_MAX + 2) + RADDR_HOST_MAX + 64];
	size_t o;

	(void)state;
	o = (size_t)sprintf(s, "redis://");
	for (int i = 0; i < RADDR_NODES_MAX; i++)
		o += (size_t)sprintf(s + o, "%sh%d:%d", i ? "," : "", i,
				     i + 1);
	assert_int_equal(raddr_parse(1, s, &a), EF_OK);
	assert_int_equal(a.n, RADDR_NODES_MAX);
	sprintf(s + o, ",x:1");
	assert_int_equal(raddr_parse(1, s, &a), EF_EINVAL);
	assert_non_null(strstr(ef__err_get(1), "more than"));
	o = (size_t)sprintf(s, "redis://");
	memset(s + o, 'h', RADDR_HOST_MAX);
	memcpy(s + o + RADDR_HOST_MAX, ":1", 3);
	assert_int_equal(raddr_parse(1, s, &a), EF_OK);
	assert_int_equal(strlen(a.nodes[0].host), RADDR_HOST_MAX);
	memset(s + o, 'h', RADDR_HOST_MAX + 1);
	memcpy(s + o + RADDR_HOST_MAX + 1, ":1", 3);
	assert_int_equal(raddr_parse(1, s, &a), EF_EINVAL);
	assert_non_null(strstr(ef__err_get(1), "host: 1 to 255"));
}

static void test_addr_errors_never_show_the_password(void **state)
{
	(void)state;
	assert_int_equal(raddr_parse(3, "redis://a:1?password=s3cr3tXYZ&wait"
				     "=99", &a), EF_EINVAL);
	assert_null(strstr(ef__err_get(3), "s3cr3tXYZ"));
	assert_string_equal(a.password, ""); /* wiped on failure */
	assert_int_equal(raddr_parse(3, "redis://a:1?password=s3cr3tXYZ&pass"
				     "word=s3cr3tXYZ", &a), EF_EINVAL);
	assert_null(strstr(ef__err_get(3), "s3cr3tXYZ"));
}

static void test_addr_takes_the_password_from_the_environment(void **state)
{
	char big[RADDR_SECRET_MAX + 2];

	(void)state;
	setenv("EDGEFEED_REDIS_PASSWORD", "from-env", 1);
	assert_int_equal(raddr_parse(1, "redis://a:1", &a), EF_OK);
	assert_string_equal(a.password, "from-env");
	/* the address wins over the variable */
	assert_int_equal(raddr_parse(1, "redis://a:1?password=given", &a),
			 EF_OK);
	assert_string_equal(a.password, "given");
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("EDGEFEED_REDIS_PASSWORD", big, 1);
	assert_int_equal(raddr_parse(1, "redis://a:1", &a), EF_EINVAL);
	assert_non_null(strstr(ef__err_get(1), "EDGEFEED_REDIS_PASSWORD"));
	assert_null(strstr(ef__err_get(1), "ppppp"));
	unsetenv("EDGEFEED_REDIS_PASSWORD");
	raddr_wipe(&a);
}

/* The reply hiredis makes of RESP bytes @resp (asserting it is one). */
static redisReply *parse_resp(const char *resp, size_t len)
{
	redisReader *rd = redisReaderCreate();
	void *r = NULL;

	assert_non_null(rd);
	assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
	assert_non_null(r);
	redisReaderFree(rd);
	return r;
}

#define RESP(s) parse_resp(s, sizeof(s) - 1)

static void test_reply_slots_reads_a_cluster_slots_reply(void **state)
{
	static rrange out[RSLOT_COUNT];
	raddr_node asked = {"10.0.0.9", 7009};
	size_t n;
	/* Redis 7: master and replica with a fourth (metadata) element; a
	 * range with an empty endpoint; a range whose master is unknown */
	redisReply *r = RESP(
		"*3\r\n"
		"*4\r\n:0\r\n:5460\r\n"
		"*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nabc\r\n*0\r\n"
		"*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$3\r\ndef\r\n*0\r\n"
		"*3\r\n:5461\r\n:10922\r\n"
		"*3\r\n$0\r\n\r\n:7001\r\n$3\r\nghi\r\n"
		"*3\r\n:10923\r\n:16383\r\n"
		"*3\r\n$1\r\n?\r\n:7002\r\n$3\r\njkl\r\n");

	(void)state;
	assert_int_equal(rreply_slots(r, &asked, out, RSLOT_COUNT, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].first, 0);
	assert_int_equal(out[0].last, 5460);
	assert_string_equal(out[0].host, "127.0.0.1");
	assert_int_equal(out[0].port, 7000);
	assert_int_equal(out[1].first, 5461);
	assert_int_equal(out[1].last, 10922);
	assert_string_equal(out[1].host, "10.0.0.9"); /* the node asked */
	assert_int_equal(out[1].port, 7001);
	freeReplyObject(r);
}

#define B(x) {x, sizeof(x) - 1}

static void test_reply_slots_rejects_malformed_maps(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		B("+OK\r\n"),
		B("-ERR This instance has cluster support disabled\r\n"),
		B("*1\r\n:0\r\n"),
		B("*1\r\n*2\r\n:0\r\n:1\r\n"),
		B("*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n"),
		B("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n"),
		B("*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n"),
		B("*1\r\n*3\r\n$1\r\n0\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n"),
		B("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n:1\r\n:1\r\n"),
		B("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n:65536\r\n"),
		B("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\na\r\n$4\r\n7000\r\n"),
		B("*1\r\n*3\r\n:0\r\n:3\r\n*1\r\n$1\r\na\r\n"),
		B("*1\r\n*3\r\n:0\r\n:3\r\n$1\r\na\r\n"),
		/* a NUL inside the endpoint */
		B("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$3\r\na\0b\r\n:1\r\n"),
	};
	static rrange out[4];
	raddr_node asked = {"h", 1};
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redisReply *r = parse_resp(bad[i].s, bad[i].len);

		if (rreply_slots(r, &asked, out, 4, &n) != -1)
			fail_msg("reply %zu was taken for a slot map", i);
		freeReplyObject(r);
	}
	assert_int_equal(rreply_slots(NULL, &asked, out, 4, &n), -1);
}

static void test_reply_error_classifies_redirects(void **state)
{
	static const struct {
		const char *s;
		enum rerr_kind kind;
		unsigned slot;
		const char *host;
		int port;
	} cases[] = {
		{"MOVED 3999 127.0.0.1:6381", RERR_MOVED, 3999, "127.0.0.1",
		 6381},
		{"ASK 0 10.1.2.3:1", RERR_ASK, 0, "10.1.2.3", 1},
		{"MOVED 16383 ::1:7000", RERR_MOVED, 16383, "::1", 7000},
		{"ASK 5 [fe80::1]:7000", RERR_ASK, 5, "fe80::1", 7000},
		{"MOVED 12 node-a.example:7000", RERR_MOVED, 12,
		 "node-a.example", 7000},
		{"MOVED 16384 127.0.0.1:6381", RERR_OTHER, 0, NULL, 0},
		{"MOVED 1 127.0.0.1:0", RERR_OTHER, 0, NULL, 0},
		{"MOVED 1 127.0.0.1:65536", RERR_OTHER, 0, NULL, 0},
		{"MOVED 1 127.0.0.1", RERR_OTHER, 0, NULL, 0},
		{"MOVED 1 :7000", RERR_OTHER, 0, NULL, 0},
		{"MOVED x 127.0.0.1:1", RERR_OTHER, 0, NULL, 0},
		{"MOVED  127.0.0.1:1", RERR_OTHER, 0, NULL, 0},
		{"MOVED", RERR_OTHER, 0, NULL, 0},
		{"MOVEDX 1 a:1", RERR_OTHER, 0, NULL, 0},
		{"ASK 1 [::1:7000", RERR_OTHER, 0, NULL, 0},
		{"TRYAGAIN Multiple keys request during rehashing of slot",
		 RERR_TRYAGAIN, 0, NULL, 0},
		{"CLUSTERDOWN The cluster is down", RERR_DOWN, 0, NULL, 0},
		{"CLUSTERDOWN Hash slot not served", RERR_DOWN, 0, NULL, 0},
		{"MASTERDOWN Link with MASTER is down", RERR_DOWN, 0, NULL, 0},
		{"LOADING Redis is loading the dataset in memory", RERR_DOWN,
		 0, NULL, 0},
		{"READONLY You can't write against a read only replica.",
		 RERR_DOWN, 0, NULL, 0},
		{"ERR wrong number of arguments", RERR_OTHER, 0, NULL, 0},
		{"WRONGTYPE Operation against a key", RERR_OTHER, 0, NULL, 0},
		{"", RERR_OTHER, 0, NULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		raddr_node to = {"", 0};
		unsigned slot = 99999;
		enum rerr_kind k = rreply_error(cases[i].s,
						strlen(cases[i].s), &slot, &to);

		if (k != cases[i].kind)
			fail_msg("'%s': kind %d, wanted %d", cases[i].s, k,
				 cases[i].kind);
		if (!cases[i].host)
			continue;
		assert_int_equal(slot, cases[i].slot);
		assert_string_equal(to.host, cases[i].host);
		assert_int_equal(to.port, cases[i].port);
	}
}

/* A reply that announces a huge array is refused before anything is
 * allocated (hiredis 0.14 alone would calloc 16 GB for this one). */
static void test_reply_huge_array_is_refused_not_allocated(void **state)
{
	static const char huge[] = "*2000000000\r\n:1\r\n";
	static const char fine[] = "*3\r\n:1\r\n:2\r\n$1\r\nx\r\n";
	redisReader *rd = redisReaderCreateWithFunctions(rreply_functions());
	void *r = NULL;

	(void)state;
	assert_non_null(rd);
	assert_int_equal(redisReaderFeed(rd, huge, sizeof(huge) - 1), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &r), REDIS_ERR);
	assert_null(r);
	redisReaderFree(rd);
	rd = redisReaderCreateWithFunctions(rreply_functions());
	assert_int_equal(redisReaderFeed(rd, fine, sizeof(fine) - 1), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
	assert_non_null(r);
	assert_int_equal(((redisReply *)r)->elements, 3);
	freeReplyObject(r);
	redisReaderFree(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slot_crc16_matches_the_spec_check_value),
		cmocka_unit_test(test_slot_hashes_the_tag_as_the_spec_says),
		cmocka_unit_test(test_addr_parses_nodes_and_options),
		cmocka_unit_test(test_addr_rejects_each_bad_part_naming_it),
		cmocka_unit_test(test_addr_limits_nodes_and_host_length),
		cmocka_unit_test(test_addr_errors_never_show_the_password),
		cmocka_unit_test(
			test_addr_takes_the_password_from_the_environment),
		cmocka_unit_test(test_reply_slots_reads_a_cluster_slots_reply),
		cmocka_unit_test(test_reply_slots_rejects_malformed_maps),
		cmocka_unit_test(test_reply_error_classifies_redirects),
		cmocka_unit_test(
			test_reply_huge_array_is_refused_not_allocated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * worker.c - a small pre-forking HTTP worker on top of libedgefeed: the way
 * to share one store among processes and threads.
 *
 *   cc -std=c11 -pthread worker.c -o worker $(pkg-config --cflags --libs edgefeed)
 *   ./worker --db /var/lib/edgefeed [--workers 4] [--threads 4] [--port 8080]
 *
 * It listens on 127.0.0.1 only (--port 0: any free port; the first line on
 * stdout says which) and serves, one request per connection:
 *
 *   POST /finalize?owner=O&reservation=R[&ip=IP]   body: payload JSON, or empty
 *        201 {"status":"created"}  200 {"status":"duplicate"}
 *   GET  /feed?owner=O[&limit=N][&cursor=C]
 *        200 {"entries":[{"reservationId","createdMs","ip","unread","payload"}],
 *             "nextCursor":"..."|null}
 *   GET  /unread?owner=O                            200 {"unread":N}
 *   POST /mark-read?owner=O[&reservation=R]          (no R: every entry)
 *
 * Errors are {"error":"..."} with 400 (bad input), 404, 503 (busy) or 500.
 * Every response carries "X-Worker: <pid>", the process that served it.
 *
 * The rules it follows (include/edgefeed.h, "Processes and fork()"):
 *  - the parent opens the store once to create it and to report a bad
 *    directory before forking, then closes it: no child inherits a handle;
 *  - each child calls ef_open() itself, after fork(), and shares that one
 *    handle among all of its threads (one handle per store per process);
 *  - ef_errmsg() is read on the thread that got the error;
 *  - a duplicate finalization (EF_EXISTS) is a success, not an error: LMDB
 *    serializes writers of all processes, so two workers finalizing the
 *    same reservation at once leave exactly one entry.
 *  - ef_open(..., NULL) gives group commit (the default): the finalizations
 *    of all children and threads waiting at once share one synced commit,
 *    each still answered with its own result (EF_NO_GROUP_COMMIT: off).
 *
 * SIGTERM or SIGINT to the parent stops the children (each finishes the
 * requests it holds, joins its threads and closes its store) and exits 0.
 * A child that dies otherwise is replaced. Uses only libc (POSIX sockets
 * and threads) besides libedgefeed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <edgefeed.h>

#define MAX_WORKERS 64
#define MAX_THREADS 64
#define HEAD_MAX 8192                  /* request line and headers */
#define BODY_MAX EF_PAYLOAD_MAX        /* the payload JSON */
#define PARAM_MAX 1024                 /* a decoded query parameter */
#define POLL_MS 200                    /* how often a thread checks for stop */

/* ---- a growing output buffer, for JSON responses ------------------------ */

typedef struct buf {
	char *p;
	size_t len, cap;
	int oom; /* an append failed: the response becomes a 500 */
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_fmt(buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string (or null). The library hands out valid UTF-8. */
static void buf_json_str(buf *b, const char *s)
{
	if (!s) {
		buf_str(b, "null");
		return;
	}
	buf_str(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			buf_add(b, esc, 2);
		} else if (c < 0x20) {
			buf_fmt(b, "\\u%04x", c);
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_str(b, "\"");
}

/* ---- requests ----------------------------------------------------------- */

typedef struct request {
	const char *method; /* in the caller's head buffer */
	const char *path;
	const char *query;  /* after '?'; "" if none */
	char *body;         /* NUL-terminated; NULL if empty */
} request;

/* Value of query parameter @name, percent-decoded, into @out. 1 if found. */
static int query_get(const char *q, const char *name, char *out, size_t cap)
{
	size_t nlen = strlen(name);

	while (*q) {
		const char *end = q + strcspn(q, "&");
		if ((size_t)(end - q) > nlen && strncmp(q, name, nlen) == 0 &&
		    q[nlen] == '=') {
			size_t o = 0;
			for (const char *p = q + nlen + 1; p < end && o + 1 < cap;
			     p++) {
				unsigned hi, lo;
				if (*p == '+') {
					out[o++] = ' ';
				} else if (*p == '%' && end - p >= 3 &&
					   sscanf(p + 1, "%1x%1x", &hi, &lo) == 2) {
					out[o++] = (char)(hi << 4 | lo);
					p += 2;
				} else {
					out[o++] = *p;
				}
			}
			out[o] = '\0';
			return 1;
		}
		q = *end ? end + 1 : end;
	}
	return 0;
}

/* The Content-Length of a request head, 0 if it has none. */
static size_t content_length(const char *head)
{
	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n"))
		if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
			return strtoul(l + 17, NULL, 10);
	return 0;
}

/* Read a request from @fd: its head into @head (HEAD_MAX bytes, split in
 * place into method, path and query), its body into a new buffer.
 * 0 on success, -1 on a malformed or oversized request. */
static int request_read(int fd, char *head, request *rq)
{
	size_t len = 0, clen, have;
	char *eoh = NULL, *sp, *target, *q;
	ssize_t n;

	memset(rq, 0, sizeof(*rq));
	while (!eoh) {
		if (len + 1 >= HEAD_MAX)
			return -1;
		n = read(fd, head + len, HEAD_MAX - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		head[len] = '\0';
		eoh = strstr(head, "\r\n\r\n");
	}
	eoh[2] = '\0'; /* keep the last header's CRLF for content_length */
	clen = content_length(head);
	if (clen > BODY_MAX)
		return -1;
	if (clen) {
		if (!(rq->body = malloc(clen + 1)))
			return -1;
		have = len - (size_t)(eoh + 4 - head);
		have = have < clen ? have : clen;
		memcpy(rq->body, eoh + 4, have);
		for (; have < clen; have += (size_t)n)
			if ((n = read(fd, rq->body + have, clen - have)) <= 0)
				return -1;
		rq->body[clen] = '\0';
	}
	/* "METHOD TARGET HTTP/1.x": cut it into pieces in place */
	if (!(sp = strchr(head, ' ')))
		return -1;
	*sp = '\0';
	target = sp + 1;
	if (!(sp = strchr(target, ' ')))
		return -1;
	*sp = '\0';
	rq->method = head;
	rq->path = target;
	rq->query = "";
	if ((q = strchr(target, '?'))) {
		*q = '\0';
		rq->query = q + 1;
	}
	return 0;
}

/* ---- responses ---------------------------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int status, const buf *b)
{
	const char *reason = status == 200 ? "OK" : status == 201 ? "Created"
			   : status == 400 ? "Bad Request"
			   : status == 404 ? "Not Found"
			   : status == 503 ? "Service Unavailable"
					   : "Internal Server Error";
	static const char oom[] = "{\"error\":\"out of memory\"}\n";
	const char *body = b->oom ? oom : b->p ? b->p : "";
	size_t len = b->oom ? strlen(oom) : b->len;
	char head[256];
	int n;

	if (b->oom)
		status = 500, reason = "Internal Server Error";
	n = snprintf(head, sizeof(head),
		     "HTTP/1.0 %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nX-Worker: %ld\r\n"
		     "Connection: close\r\n\r\n",
		     status, reason, len, (long)getpid());
	write_all(fd, head, (size_t)n);
	write_all(fd, body, len);
}

/* An error of the library: its detail, read on this thread (ef_errmsg is
 * per thread), and the HTTP status it maps to. */
static int fail(ef_store *st, int rc, buf *b)
{
	const char *detail = ef_errmsg(st);

	buf_str(b, "{\"error\":");
	buf_json_str(b, *detail ? detail : ef_strerror(rc));
	buf_str(b, "}\n");
	switch (rc) {
	case EF_EINVAL: return 400;
	case EF_ENOTFOUND: return 404;
	case EF_EBUSY: return 503;
	default: return 500;
	}
}

static int bad_request(buf *b, const char *what)
{
	buf_str(b, "{\"error\":");
	buf_json_str(b, what);
	buf_str(b, "}\n");
	return 400;
}

/* ---- the routes --------------------------------------------------------- */

static int do_finalize(ef_store *st, const request *rq, buf *b)
{
	char owner[PARAM_MAX], rid[PARAM_MAX], ip[64];
	ef_receive r = {0};
	int rc;

	if (!query_get(rq->query, "owner", owner, sizeof(owner)) ||
	    !query_get(rq->query, "reservation", rid, sizeof(rid)))
		return bad_request(b, "owner and reservation are required");
	r.owner = owner;
	r.reservation_id = rid;
	r.ip = query_get(rq->query, "ip", ip, sizeof(ip)) ? ip : NULL;
	r.payload_json = rq->body; /* validated by the library */
	rc = ef_finalize(st, &r);
	if (rc == EF_OK || rc == EF_EXISTS) {
		buf_str(b, rc == EF_OK ? "{\"status\":\"created\"}\n"
				       : "{\"status\":\"duplicate\"}\n");
		return rc == EF_OK ? 201 : 200;
	}
	return fail(st, rc, b);
}

static int do_feed(ef_store *st, const request *rq, buf *b)
{
	char owner[PARAM_MAX], cursor[PARAM_MAX], limit[16];
	size_t n = 0;
	ef_page page;
	int rc;

	if (!query_get(rq->query, "owner", owner, sizeof(owner)))
		return bad_request(b, "owner is required");
	if (query_get(rq->query, "limit", limit, sizeof(limit)))
		n = strtoul(limit, NULL, 10);
	rc = ef_feed_page(st, owner,
			  query_get(rq->query, "cursor", cursor, sizeof(cursor))
				  ? cursor
				  : NULL,
			  n, &page);
	if (rc != EF_OK)
		return fail(st, rc, b);
	buf_str(b, "{\"entries\":[");
	for (size_t i = 0; i < page.count; i++) {
		const ef_entry *e = &page.entries[i];
		buf_str(b, i ? ",{\"reservationId\":" : "{\"reservationId\":");
		buf_json_str(b, e->reservation_id);
		buf_fmt(b, ",\"createdMs\":%lld,\"ip\":", (long long)e->created_ms);
		buf_json_str(b, e->ip);
		buf_fmt(b, ",\"unread\":%s,\"payload\":%s}",
			e->unread ? "true" : "false",
			e->payload_json ? e->payload_json : "null");
	}
	buf_str(b, "],\"nextCursor\":");
	buf_json_str(b, page.next_cursor);
	buf_str(b, "}\n");
	ef_page_free(&page);
	return 200;
}

static int do_unread(ef_store *st, const request *rq, buf *b)
{
	char owner[PARAM_MAX];
	uint64_t n;
	int rc;

	if (!query_get(rq->query, "owner", owner, sizeof(owner)))
		return bad_request(b, "owner is required");
	rc = ef_unread_count(st, owner, &n);
	if (rc != EF_OK)
		return fail(st, rc, b);
	buf_fmt(b, "{\"unread\":%llu}\n", (unsigned long long)n);
	return 200;
}

static int do_mark_read(ef_store *st, const request *rq, buf *b)
{
	char owner[PARAM_MAX], rid[PARAM_MAX];
	int rc;

	if (!query_get(rq->query, "owner", owner, sizeof(owner)))
		return bad_request(b, "owner is required");
	rc = query_get(rq->query, "reservation", rid, sizeof(rid))
		     ? ef_mark_read(st, owner, rid)
		     : ef_mark_all_read(st, owner);
	if (rc != EF_OK)
		return fail(st, rc, b);
	return do_unread(st, rq, b);
}

static void serve(ef_store *st, int fd)
{
	char head[HEAD_MAX];
	request rq;
	buf b = {0};
	int status;

	if (request_read(fd, head, &rq) != 0) {
		status = bad_request(&b, "malformed request");
	} else if (strcmp(rq.method, "POST") == 0 &&
		   strcmp(rq.path, "/finalize") == 0) {
		status = do_finalize(st, &rq, &b);
	} else if (strcmp(rq.method, "GET") == 0 &&
		   strcmp(rq.path, "/feed") == 0) {
		status = do_feed(st, &rq, &b);
	} else if (strcmp(rq.method, "GET") == 0 &&
		   strcmp(rq.path, "/unread") == 0) {
		status = do_unread(st, &rq, &b);
	} else if (strcmp(rq.method, "POST") == 0 &&
		   strcmp(rq.path, "/mark-read") == 0) {
		status = do_mark_read(st, &rq, &b);
	} else {
		buf_str(&b, "{\"error\":\"no such route\"}\n");
		status = 404;
	}
	respond(fd, status, &b);
	free(rq.body);
	free(b.p);
}

/* ---- a child: one store handle, several threads ------------------------- */

static int listen_fd = -1;
static atomic_int stopping;

static void on_stop(int sig)
{
	(void)sig;
	atomic_store(&stopping, 1);
}

static void *thread_main(void *arg)
{
	ef_store *st = arg; /* shared by every thread of this process */
	const struct timeval rcv = {.tv_sec = 5}; /* a stalled client */
	struct pollfd p = {.fd = listen_fd, .events = POLLIN};

	while (!atomic_load(&stopping)) {
		int fd;

		/* poll with a timeout so that a stop is noticed; the socket
		 * is non-blocking: another thread or process may have taken
		 * the connection first */
		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
		serve(st, fd);
		close(fd);
	}
	return NULL;
}

static int child_main(const char *dir, int threads)
{
	pthread_t tid[MAX_THREADS];
	struct sigaction sa = {0};
	sigset_t all;
	ef_store *st;
	int rc, started = 0;

	/* SIGTERM or SIGINT: finish the requests in hand, then leave */
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);

	/* after fork(): this process opens its own handle */
	rc = ef_open(&st, dir, NULL);
	if (rc != EF_OK) {
		fprintf(stderr, "worker %ld: cannot open '%s': %s\n",
			(long)getpid(), dir, ef_errmsg(NULL));
		return 1;
	}
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&tid[i], NULL, thread_main, st) != 0)
			break;
		started++;
	}
	if (started < threads)
		atomic_store(&stopping, 1);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	/* every thread is done with the handle: only now close it */
	ef_close(st);
	return started == threads ? 0 : 1;
}

/* ---- the parent --------------------------------------------------------- */

static pid_t spawn(const char *dir, int threads)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int rc = child_main(dir, threads);
		close(listen_fd);
		exit(rc); /* exit, not _exit: leak checkers see the child too */
	}
	if (pid > 0)
		printf("worker %ld started\n", (long)pid);
	else
		perror("worker: fork");
	fflush(stdout);
	return pid > 0 ? pid : 0;
}

static int open_listener(int port)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
	a.sin_port = htons((uint16_t)port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
	return fd;
}

/* Reap the children that died; start another in each one's place. */
static void replace_dead(pid_t *pids, int workers, const char *dir,
			 int threads)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < workers; i++) {
			if (pids[i] != pid)
				continue;
			fprintf(stderr, "worker %ld died (status %d); starting "
				"another\n", (long)pid, status);
			pids[i] = spawn(dir, threads);
		}
	}
}

/* Stop the children and wait for them. The number that failed. */
static int stop_all(pid_t *pids, int workers)
{
	int failed = 0;

	for (int i = 0; i < workers; i++)
		if (pids[i])
			kill(pids[i], SIGTERM);
	for (int i = 0; i < workers; i++) {
		int status = 0;
		pid_t rc;

		if (!pids[i])
			continue;
		while ((rc = waitpid(pids[i], &status, 0)) < 0 && errno == EINTR)
			;
		if (rc != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed;
}

static int usage(void)
{
	fprintf(stderr, "usage: worker --db DIR [--workers N (1..%d)] "
		"[--threads N (1..%d)] [--port P (0: any)]\n", MAX_WORKERS,
		MAX_THREADS);
	return 2;
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int workers = 2, threads = 4, port = 8080, sig, failed;
	pid_t pids[MAX_WORKERS] = {0};
	sigset_t set;
	ef_store *st;

	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		if (strcmp(argv[i], "--db") == 0)
			dir = v;
		else if (strcmp(argv[i], "--workers") == 0)
			workers = atoi(v);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(v);
		else if (strcmp(argv[i], "--port") == 0)
			port = atoi(v);
		else
			return usage();
	}
	if (!dir || workers < 1 || workers > MAX_WORKERS || threads < 1 ||
	    threads > MAX_THREADS || port < 0 || port > 65535)
		return usage();

	/* create the store and report a bad directory now, then close it:
	 * the children open their own, and inherit no handle */
	if (ef_open(&st, dir, NULL) != EF_OK) {
		fprintf(stderr, "worker: cannot open '%s': %s\n", dir,
			ef_errmsg(NULL));
		return 1;
	}
	ef_close(st);

	if ((listen_fd = open_listener(port)) < 0) {
		perror("worker: 127.0.0.1");
		return 1;
	}
	/* the parent takes its signals synchronously (sigwait), so none is
	 * lost between two waits; each child unblocks them for itself */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < workers; i++)
		pids[i] = spawn(dir, threads);
	while (sigwait(&set, &sig) == 0 && sig == SIGCHLD)
		replace_dead(pids, workers, dir, threads);
	failed = stop_all(pids, workers);
	close(listen_fd);
	printf("stopped%s\n", failed ? " (a worker failed)" : "");
	return failed ? 1 : 0;
}

/*
 * output.c - JSON results on stdout, progress and messages on stderr.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

json_t *out_entry(const ef_entry *e)
{
	char when[EF_TIME_BUFSZ];
	json_t *j = json_object(), *payload = json_null();

	if (!j)
		return NULL;
	ef_time_format(e->created_ms, when);
	if (e->payload_json) {
		json_error_t err;
		/* the library keeps it byte-for-byte and it was validated as
		 * a JSON object on the way in */
		json_t *p = json_loads(e->payload_json,
				       JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		if (p) {
			json_decref(payload);
			payload = p;
		}
	}
	json_object_set_new(j, "reservationId", json_string(e->reservation_id));
	json_object_set_new(j, "createdAt", json_string(when));
	json_object_set_new(j, "createdMs", json_integer(e->created_ms));
	json_object_set_new(j, "ip", e->ip ? json_string(e->ip) : json_null());
	json_object_set_new(j, "unread", json_boolean(e->unread));
	json_object_set_new(j, "payload", payload);
	return j;
}

int out_print(json_t *j)
{
	int rc;

	if (!j) {
		fprintf(stderr, "edgefeed: out of memory\n");
		return EXIT_FAIL;
	}
	rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	fputc('\n', stdout);
	if (rc != 0 || fflush(stdout) != 0) {
		fprintf(stderr, "edgefeed: cannot write the result\n");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static struct {
	int started;
	struct timespec t0;
	double last;  /* elapsed seconds at the last line */
	int shown;    /* a line was printed */
} prog;

static double elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - prog.t0.tv_sec) +
	       (double)(now.tv_nsec - prog.t0.tv_nsec) / 1e9;
}

void out_progress(uint64_t done, uint64_t total, void *ctx)
{
	const char *what = ctx ? ctx : "done";
	int tty = isatty(2);
	double t, rate, eta;

	if (!prog.started) {
		clock_gettime(CLOCK_MONOTONIC, &prog.t0);
		prog.started = 1;
		prog.last = 0;
		prog.shown = 0;
	}
	t = elapsed();
	/* a terminal gets a bar redrawn ~10 times a second; a log gets a
	 * line every 2 seconds, and the last one if it got any before */
	if (t - prog.last < (tty ? 0.1 : 2.0) &&
	    (done < total || !prog.shown))
		return;
	prog.shown = 1;
	prog.last = t;
	rate = t > 0 ? (double)done / t : 0;
	eta = rate > 0 ? (double)(total - done) / rate : 0;
	if (tty) {
		int width = 30, fill = total ? (int)(width * done / total) : width;
		fprintf(stderr, "\r[%.*s%*s] %llu/%llu %s  %.0f/s  ETA %.0fs ",
			fill, "==============================", width - fill, "",
			(unsigned long long)done, (unsigned long long)total,
			what, rate, eta);
	} else {
		fprintf(stderr, "edgefeed: %llu/%llu %s (%.0f/s, ETA %.0fs)\n",
			(unsigned long long)done, (unsigned long long)total,
			what, rate, eta);
	}
	fflush(stderr);
}

void out_progress_end(void)
{
	if (prog.started && prog.shown && isatty(2))
		fputc('\n', stderr);
	prog.started = 0;
}

void out_waiting(const char *holder, void *ctx)
{
	const char *cmd = ctx;
	fprintf(stderr,
		"edgefeed: %s: waiting for the maintenance lock, held by %s\n",
		cmd ? cmd : "", holder);
	fflush(stderr);
}

/*
 * time.c - the two time spellings of the contract: epoch milliseconds and
 * ISO-8601 (UTC "Z" or a +HH:MM offset, fraction optional). A leap second
 * (":60") is taken only where one can be: 23:59:60 UTC of June 30 or
 * December 31; it reads as :59 of the same minute (epoch time has no
 * 61st second).
 */
#define _DEFAULT_SOURCE /* timegm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgefeed.h"

static int digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*s)[i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

static int expect(const char **s, char c)
{
	if (**s != c)
		return -1;
	(*s)++;
	return 0;
}

static int parse_ms(const char *s, int64_t *out)
{
	int64_t v = 0;

	if (!*s)
		return EF_EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return EF_EINVAL;
		v = v * 10 + (*s - '0');
		if (v > EF_CREATED_MAX)
			return EF_EINVAL;
	}
	*out = v;
	return EF_OK;
}

/* "+HH:MM", "+HHMM", "+HH", "Z" -> seconds east of UTC */
static int parse_zone(const char *s, long *off)
{
	int sign, hh, mm = 0;

	if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
		*off = 0;
		return 0;
	}
	if (s[0] != '+' && s[0] != '-')
		return -1;
	sign = s[0] == '-' ? -1 : 1;
	s++;
	if (digits(&s, 2, &hh))
		return -1;
	if (*s == ':') {
		s++; /* "+02:" must go on with minutes */
		if (digits(&s, 2, &mm))
			return -1;
	} else if (*s && digits(&s, 2, &mm)) {
		return -1;
	}
	if (*s || hh > 23 || mm > 59)
		return -1;
	*off = sign * (hh * 3600L + mm * 60L);
	return 0;
}

/* Is the UTC second @t (the :59 that a ":60" reads as) the last one of
 * June 30 or December 31, where IERS puts leap seconds? */
static int leap_second_may_follow(time_t t)
{
	struct tm u;

	if (!gmtime_r(&t, &u) || u.tm_hour != 23 || u.tm_min != 59)
		return 0;
	return (u.tm_mon == 5 && u.tm_mday == 30) ||
	       (u.tm_mon == 11 && u.tm_mday == 31);
}

int ef_time_parse(const char *text, int64_t *out_ms)
{
	const char *s = text;
	struct tm tm = {0}, chk;
	int y, mo, d, h, mi, sec, ms = 0;
	long off;
	time_t t;
	int64_t v;

	if (!text)
		return EF_EINVAL;
	if (!strchr(text, '-'))
		return parse_ms(text, out_ms);
	if (digits(&s, 4, &y) || expect(&s, '-') || digits(&s, 2, &mo) ||
	    expect(&s, '-') || digits(&s, 2, &d))
		return EF_EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return EF_EINVAL;
	s++;
	if (digits(&s, 2, &h) || expect(&s, ':') || digits(&s, 2, &mi) ||
	    expect(&s, ':') || digits(&s, 2, &sec))
		return EF_EINVAL;
	if (*s == '.' || *s == ',') {
		int n = 0;
		s++;
		/* milliseconds: the first three digits; finer ones truncate */
		for (; *s >= '0' && *s <= '9'; s++, n++)
			if (n < 3)
				ms = ms * 10 + (*s - '0');
		if (n == 0)
			return EF_EINVAL;
		for (; n < 3; n++)
			ms *= 10;
	}
	if (parse_zone(s, &off))
		return EF_EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return EF_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec; /* a leap second reads as :59 */
	t = timegm(&tm);
	/* timegm normalizes Feb 30 into March: reject what moved */
	if (!gmtime_r(&t, &chk) || chk.tm_mday != d || chk.tm_mon != mo - 1)
		return EF_EINVAL;
	if (sec == 60 && !leap_second_may_follow((time_t)(t - off)))
		return EF_EINVAL;
	v = ((int64_t)t - off) * 1000 + ms;
	if (v < 0 || v > EF_CREATED_MAX)
		return EF_EINVAL;
	*out_ms = v;
	return EF_OK;
}

int ef_time_format(int64_t ms, char buf[EF_TIME_BUFSZ])
{
	time_t t;
	struct tm tm;

	if (ms < 0 || ms > EF_CREATED_MAX) {
		buf[0] = '\0';
		return EF_EINVAL;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	/* the range check bounds every field; the modulos tell the compiler */
	snprintf(buf, EF_TIME_BUFSZ, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
		 (unsigned)(tm.tm_year + 1900) % 10000u,
		 (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
		 (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
		 (unsigned)tm.tm_sec % 100u, (unsigned)(ms % 1000));
	return EF_OK;
}

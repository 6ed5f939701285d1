/*
 * util.c - the workload generator, latency statistics, the machine a row
 * was measured on, and the benchmark's own store directories.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench-version.h"

/* ---- workload ----------------------------------------------------------- */

uint64_t wl_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t wl_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void wl_owner(uint32_t idx, char out[BS_NAME_MAX])
{
	snprintf(out, BS_NAME_MAX, "user%07" PRIu32 "@example.com", idx);
}

void wl_rid(uint64_t id, char out[RID_TEXT_MAX])
{
	snprintf(out, RID_TEXT_MAX, "rsv-%016" PRIx64, id);
}

int wl_rid_parse(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;

	if (len != 20 || memcmp(s, "rsv-", 4) != 0)
		return -1;
	for (size_t i = 4; i < len; i++) {
		int c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return 0;
}

void wl_make(wl_item *it, uint64_t id, uint32_t owner, int64_t created_ms)
{
	uint64_t h = wl_mix(id);

	wl_owner(owner, it->owner);
	wl_rid(id, it->rid);
	snprintf(it->ip, sizeof(it->ip), "203.0.113.%u",
		 (unsigned)(h % 250) + 1);
	snprintf(it->payload, sizeof(it->payload),
		 "{\"fileName\":\"upload-%06u.pdf\",\"size\":%u,"
		 "\"senderEmail\":\"sender%03u@example.net\","
		 "\"linkId\":\"lnk-%08x\"}",
		 (unsigned)(h % 1000000), (unsigned)(h >> 40) % 50000000u,
		 (unsigned)(h >> 20) % 1000u, (unsigned)(h >> 8));
	it->rec.owner = it->owner;
	it->rec.rid = it->rid;
	it->rec.created_ms = created_ms;
	it->rec.ip = it->ip;
	it->rec.payload = it->payload;
}

/* ---- statistics --------------------------------------------------------- */

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lat_add(lat *l, double us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		float *p = realloc(l->us, cap * sizeof(*p));
		if (!p)
			return -1;
		l->us = p;
		l->cap = cap;
	}
	l->us[l->n++] = (float)us;
	return 0;
}

void lat_free(lat *l)
{
	free(l->us);
	memset(l, 0, sizeof(*l));
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double lat_pct(lat *l, double p)
{
	size_t i;

	if (!l->n)
		return 0;
	qsort(l->us, l->n, sizeof(*l->us), cmp_float);
	i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
	return l->us[i < l->n ? i : l->n - 1];
}

double median_of(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- machine and rows --------------------------------------------------- */

int cpu_sample(cpu_snap *s)
{
	unsigned long long v[8] = {0};
	double tick = (double)sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return -1;
	/* user nice system idle iowait irq softirq steal (guest is in user) */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5 || tick <= 0)
		return -1;
	s->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
	s->iowait = (double)v[4] / tick;
	s->total = s->busy + s->iowait + (double)v[3] / tick;
	return 0;
}

static struct {
	char cpu[128];
	long cores;
	char fs[64];
	char dev[64];      /* the block device of the store directory
			    * ("vda"), "" if unknown */
	char kernel[128];
} mach;

static void cpu_model(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(mach.cpu, sizeof(mach.cpu), "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			c++;
			while (*c == ' ' || *c == '\t')
				c++;
			c[strcspn(c, "\n")] = '\0';
			snprintf(mach.cpu, sizeof(mach.cpu), "%s", c);
			break;
		}
	}
	fclose(f);
}

/* The file system type of the longest mount point that holds @dir. */
static void fs_type(const char *dir)
{
	char real[PATH_MAX], line[1024], mnt[512], type[64], dev[256];
	size_t best = 0;
	FILE *f;

	snprintf(mach.fs, sizeof(mach.fs), "unknown");
	if (!realpath(dir, real) || !(f = fopen("/proc/mounts", "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t n;
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) != 3)
			continue;
		n = strlen(mnt);
		if (strncmp(real, mnt, n) == 0 &&
		    (real[n] == '/' || real[n] == '\0' || n == 1) &&
		    n >= best) {
			best = n;
			snprintf(mach.fs, sizeof(mach.fs), "%s", type);
			snprintf(mach.dev, sizeof(mach.dev), "%.63s",
				 strncmp(dev, "/dev/", 5) ? "" : dev + 5);
		}
	}
	fclose(f);
}

int disk_flushes(uint64_t *out)
{
	char line[512], name[64];
	unsigned long long f[17];
	FILE *fp;
	int found = 0;

	if (!mach.dev[0] || !(fp = fopen("/proc/diskstats", "r")))
		return -1;
	while (!found && fgets(line, sizeof(line), fp)) {
		/* major minor name, then 17 counters (Linux 5.5+); the 16th
		 * is flush requests completed */
		int n = sscanf(line, "%*u %*u %63s %llu %llu %llu %llu %llu %llu "
			       "%llu %llu %llu %llu %llu %llu %llu %llu %llu "
			       "%llu %llu", name, &f[0], &f[1], &f[2], &f[3],
			       &f[4], &f[5], &f[6], &f[7], &f[8], &f[9],
			       &f[10], &f[11], &f[12], &f[13], &f[14], &f[15],
			       &f[16]);
		if (n >= 17 && strcmp(name, mach.dev) == 0) {
			*out = f[15];
			found = 1;
		}
	}
	fclose(fp);
	return found ? 0 : -1;
}

void machine_init(const char *dir)
{
	struct utsname u;

	cpu_model();
	mach.cores = sysconf(_SC_NPROCESSORS_ONLN);
	fs_type(dir);
	if (uname(&u) == 0)
		snprintf(mach.kernel, sizeof(mach.kernel), "%.40s %.80s",
			 u.sysname, u.release);
}

const char *machine_fs(void)
{
	return mach.fs;
}

static double loadavg1(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double v = -1;

	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

void row_emit(void *obj)
{
	json_t *o = obj, *m = json_object();
	char *s;

	json_object_set_new(m, "cpu", json_string(mach.cpu));
	json_object_set_new(m, "cores", json_integer(mach.cores));
	json_object_set_new(m, "filesystem", json_string(mach.fs));
	json_object_set_new(m, "kernel", json_string(mach.kernel));
	json_object_set_new(m, "load1", json_real(loadavg1()));
	json_object_set_new(o, "machine", m);
	json_object_set_new(o, "commit", json_string(BENCH_COMMIT));
	json_object_set_new(o, "timeMs", json_integer(wall_ms()));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

void table_head(const char *title, const char *cols)
{
	fprintf(stderr, "\n== %s\n%s\n", title, cols);
}

void table_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- files -------------------------------------------------------------- */

char *dir_new(const char *base, const char *tag)
{
	size_t n = strlen(base) + strlen(tag) + 16;
	char *p = malloc(n);

	if (!p)
		return NULL;
	snprintf(p, n, "%s/%s-XXXXXX", base, tag);
	if (!mkdtemp(p)) {
		fprintf(stderr, "edgefeed-bench: cannot make a directory in "
			"'%s': %s\n", base, strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

static void walk(const char *dir, int rm, uint64_t *app, uint64_t *alloc)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	struct stat sb;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			walk(path, rm, app, alloc);
			if (rm)
				rmdir(path);
			continue;
		}
		if (app)
			*app += (uint64_t)sb.st_size;
		if (alloc)
			*alloc += (uint64_t)sb.st_blocks * 512;
		if (rm)
			unlink(path);
	}
	closedir(d);
}

void dir_remove(const char *dir)
{
	if (!dir)
		return;
	walk(dir, 1, NULL, NULL);
	rmdir(dir);
}

void dir_bytes(const char *dir, uint64_t *apparent, uint64_t *allocated)
{
	*apparent = *allocated = 0;
	walk(dir, 0, apparent, allocated);
}

int mkdir_store(const char *path)
{
	if (mkdir(path, 0700) != 0) {
		fprintf(stderr, "edgefeed-bench: cannot make '%s': %s\n", path,
			strerror(errno));
		return BS_ERR;
	}
	return 0;
}

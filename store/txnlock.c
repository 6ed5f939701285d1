/*
 * txnlock.c - txn.lock (see txnlock.h): one POSIX record lock a store and
 * process, in a registry of this process's lock files.
 */
#define _GNU_SOURCE
#include "store/txnlock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgefeed.h"
#include "store/alloc.h"
#include "store/error.h"
#include "store/storefile.h"

struct txnlock {
	struct txnlock *next;
	dev_t dev;
	ino_t ino;
	pid_t pid;       /* the process it belongs to */
	int fd;
	short type;      /* F_WRLCK; F_RDLCK on a descriptor opened read-only */
	unsigned refs;   /* handles using it */
	pthread_mutex_t mu; /* the threads of this process take turns */
};

/* This process's lock files. An entry made by another process (inherited
 * across fork) is never used, closed or freed here: its descriptor is on
 * the same file, and closing it would drop this process's own locks. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static txnlock *reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* A fork while another thread holds reg_mu must not leave it locked in the
 * child (which may open a store of its own). */
static void reg_prepare(void)
{
	pthread_mutex_lock(&reg_mu);
}

static void reg_after(void)
{
	pthread_mutex_unlock(&reg_mu);
}

static void reg_init(void)
{
	pthread_atfork(reg_prepare, reg_after, reg_after);
}

static txnlock *reg_find(dev_t dev, ino_t ino, pid_t pid)
{
	for (txnlock *l = reg; l; l = l->next)
		if (l->dev == dev && l->ino == ino && l->pid == pid)
			return l;
	return NULL;
}

/* Open txn.lock (storefile.h: no link followed): read-write, made if
 * missing, else read-only if it is there. EF_OK; or the code of a refusal
 * or failure, with *sys_err the errno of a failed open (0: refused). */
static int open_lockfile(const char *dir, uint64_t err_id, int *fd,
			 short *type, int *sys_err)
{
	int rc = storefile_open(dir, TXNLOCK_FILE, O_RDWR | O_CREAT, err_id, fd,
				sys_err);

	*type = F_WRLCK;
	if (rc != EF_OK && (*sys_err == EACCES || *sys_err == EROFS ||
			    *sys_err == EPERM)) {
		rc = storefile_open(dir, TXNLOCK_FILE, O_RDONLY, err_id, fd,
				    sys_err);
		*type = F_RDLCK;
	}
	return rc;
}

int txnlock_open(const char *dir, uint64_t err_id, txnlock **out)
{
	pid_t pid = getpid();
	struct stat sb;
	txnlock *l;
	short type;
	int fd, sys_err, rc;

	*out = NULL;
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_mu);
	/* known already: never open (and close) a second descriptor. Looked
	 * up without following a link: a link is refused, never matched. */
	rc = storefile_check(dir, TXNLOCK_FILE, err_id, &sb);
	if (rc != EF_OK)
		goto done;
	if (sb.st_nlink && (l = reg_find(sb.st_dev, sb.st_ino, pid))) {
		l->refs++;
		*out = l;
		goto done;
	}
	rc = open_lockfile(dir, err_id, &fd, &type, &sys_err);
	if (rc != EF_OK) {
		if (sys_err == ENOENT || sys_err == EACCES ||
		    sys_err == EROFS || sys_err == EPERM) {
			ef__err_clear(err_id);
			rc = EF_OK; /* no lock file to be had: LMDB alone */
		}
		goto done;
	}
	if (fstat(fd, &sb) != 0) {
		rc = ef__err(err_id, EF_EIO, "cannot stat lock file '%s/%s': %s",
			     dir, TXNLOCK_FILE, strerror(errno));
		close(fd);
		goto done;
	}
	if ((l = reg_find(sb.st_dev, sb.st_ino, pid))) {
		/* the file was made between stat and open by a handle of ours:
		 * closing this descriptor drops the locks this process holds
		 * on it, so do it while no thread of ours holds one */
		pthread_mutex_lock(&l->mu);
		close(fd);
		pthread_mutex_unlock(&l->mu);
		l->refs++;
		*out = l;
		goto done;
	}
	l = ef__calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		rc = ef__err(err_id, EF_ENOMEM, "out of memory");
		goto done;
	}
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l);
		close(fd);
		rc = ef__err(err_id, EF_ENOMEM, "cannot create a lock");
		goto done;
	}
	l->dev = sb.st_dev;
	l->ino = sb.st_ino;
	l->pid = pid;
	l->fd = fd;
	l->type = type;
	l->refs = 1;
	l->next = reg;
	reg = l;
	*out = l;
done:
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

void txnlock_close(txnlock *l)
{
	txnlock **pp;

	if (!l)
		return;
	pthread_mutex_lock(&reg_mu);
	if (l->pid != getpid() || --l->refs > 0) {
		pthread_mutex_unlock(&reg_mu);
		return;
	}
	for (pp = &reg; *pp && *pp != l; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = l->next;
	pthread_mutex_unlock(&reg_mu);
	close(l->fd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static int setlk(txnlock *l, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	return fcntl(l->fd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl);
}

void txnlock_take(txnlock *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (setlk(l, l->type) == 0 ||
		    (errno != EINTR && errno != EDEADLK))
			return; /* held, or not to be had: LMDB's mutex alone */
		if (errno == EDEADLK) {
			/* The kernel sees deadlocks between processes, not
			 * threads: with two stores, thread 1 of A holding X
			 * while thread 2 waits for Y that B holds, and B
			 * waiting for X, reads as a cycle that is none (thread
			 * 1 waits for nothing). The holder lets go soon. */
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		/* EINTR: again */
	}
}

void txnlock_give(txnlock *l)
{
	if (!l)
		return;
	setlk(l, F_UNLCK);
	pthread_mutex_unlock(&l->mu);
}

/*
 * The users file editor behind `pushmaild user add|passwd|del|list`: line
 * edits applied to a copy that replaces the file by rename(2), under an
 * flock(2) on a lock file so two editors never lose each other's change.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "auth/userfile.h"
#include "base/xmalloc.h"

/* Largest users file the editor reads. */
#define USERFILE_MAX (64 << 20)

enum userfile_op {
	USERFILE_ADD,
	USERFILE_PASSWD,
	USERFILE_DEL,
};

struct userfile_buf {
	char *data;
	size_t len;
	size_t cap;
};

static void
userfile_buf_add(struct userfile_buf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void
userfile_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/*
 * Reads path into a new string (*text, *len); a missing file reads as
 * empty and sets *st_out->st_mode to 0. Returns 0 or -1 with errno set.
 */
static int
userfile_read(const char *path, char **text, size_t *len, struct stat *st)
{
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*text = xstrdup("");
	*len = 0;
	memset(st, 0, sizeof(*st));
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, st) < 0 || st->st_size > USERFILE_MAX) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	*text = xrealloc(*text, (size_t)st->st_size + 1);
	while (*len < (size_t)st->st_size &&
	    (n = read(fd, *text + *len, (size_t)st->st_size - *len)) > 0)
		*len += (size_t)n;
	(*text)[*len] = '\0';
	close(fd);
	return n < 0 ? -1 : 0;
}

/* 1 when line (len bytes, no line end) is the entry of user. */
static int
userfile_line_is(const char *line, size_t len, const char *user)
{
	const char *colon = memchr(line, ':', len);
	size_t ulen = strlen(user);

	return colon != NULL && (size_t)(colon - line) == ulen &&
	    strncasecmp(line, user, ulen) == 0;
}

/* The user name of an entry line as a new lower-case string, or NULL. */
static char *
userfile_line_name(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t skip = strspn(line, " \t");
	char *name;

	if (skip >= len || line[skip] == '#' || colon == NULL)
		return NULL;
	name = xstrndup(line, (size_t)(colon - line));
	userfile_lower(name);
	return name;
}

/*
 * Copies text into out with the change applied: line by line, each with
 * its own line end. Returns 1 when user's line was found, else 0.
 */
static int
userfile_apply(const char *text, size_t len, enum userfile_op op,
    const char *user, const char *hash, struct userfile_buf *out)
{
	const char *pos = text, *end = text + len;
	int found = 0;

	while (pos < end) {
		const char *nl = memchr(pos, '\n', (size_t)(end - pos));
		size_t llen = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
		size_t whole = llen + (nl != NULL);
		const char *rest;

		if (!userfile_line_is(pos, llen, user)) {
			userfile_buf_add(out, pos, whole);
		} else if (found++ == 0 && op == USERFILE_PASSWD) {
			/* Keep ":uid:gid:..." after the old password. */
			rest = memchr(pos + strlen(user) + 1, ':',
			    llen - strlen(user) - 1);
			rest = rest ? rest : pos + llen;
			userfile_buf_add(out, user, strlen(user));
			userfile_buf_add(out, ":", 1);
			userfile_buf_add(out, hash, strlen(hash));
			userfile_buf_add(out, rest,
			    (size_t)(pos + whole - rest));
		} else if (op != USERFILE_DEL) {
			userfile_buf_add(out, pos, whole);
		}
		pos += whole;
	}
	return found > 0;
}

/* Writes all of buf to fd; 0 or -1. */
static int
userfile_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the temporary file beside path; returns its fd, sets *tmp. */
static int
userfile_temp(const char *path, char **tmp)
{
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash != NULL)
		*tmp = xasprintf("%.*s/.%s.XXXXXX", (int)(slash - path), path,
		    slash + 1);
	else
		*tmp = xasprintf(".%s.XXXXXX", path);
	fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		free(*tmp);
		*tmp = NULL;
	}
	return fd;
}

/* fsyncs the directory holding path so the rename is durable. */
static int
userfile_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? xstrdup(".") :
	    slash == path         ? xstrdup("/") :
	                            xstrndup(path, (size_t)(slash - path));
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = -1;

	free(dir);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/* Replaces path with buf: temp file, fsync, rename, directory fsync. */
static int
userfile_replace(const char *path, const struct userfile_buf *buf,
    const struct stat *old)
{
	char *tmp;
	int fd = userfile_temp(path, &tmp), saved;

	if (fd < 0)
		return -1;
	/*
	 * Keep the owner when root edits the file of an unprivileged daemon;
	 * anyone else may not change it, and the file stays theirs.
	 */
	if ((old->st_mode != 0 && fchown(fd, old->st_uid, old->st_gid) < 0 &&
	        errno != EPERM) ||
	    fchmod(fd, 0600) < 0 ||
	    userfile_write_all(fd, buf->data, buf->len) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		saved = errno;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		goto fail;
	}
	free(tmp);
	return userfile_sync_dir(path);
fail:
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

static int
userfile_lock(const char *path)
{
	char *lock = xasprintf("%s.lock", path);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	free(lock);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Checks user and hash; returns the lower-case user or NULL with err. */
static char *
userfile_check_args(const char *user, const char *hash, char *err,
    size_t errlen)
{
	char *name = xstrdup(user);

	userfile_lower(name);
	if (!userdb_name_valid(name)) {
		snprintf(err, errlen, "invalid user name \"%.64s\"", user);
		free(name);
		return NULL;
	}
	for (const char *p = hash; p != NULL && *p != '\0'; p++) {
		if (*p == ':' || (unsigned char)*p < ' ' || *p == 0x7f) {
			snprintf(err, errlen, "invalid password hash");
			free(name);
			return NULL;
		}
	}
	return name;
}

/* The edit under the lock: read, apply, check, replace. */
static int
userfile_edit_locked(const char *path, enum userfile_op op, const char *user,
    const char *hash, char *err, size_t errlen)
{
	struct userfile_buf out = {0};
	struct stat st;
	char *text;
	size_t len;
	int found, r = -1;

	if (userfile_read(path, &text, &len, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(text);
		return -1;
	}
	userfile_buf_add(&out, "", 0);
	found = userfile_apply(text, len, op, user, hash, &out);
	if (op == USERFILE_ADD && !found) {
		if (out.len > 0 && out.data[out.len - 1] != '\n')
			userfile_buf_add(&out, "\n", 1);
		userfile_buf_add(&out, user, strlen(user));
		userfile_buf_add(&out, ":", 1);
		userfile_buf_add(&out, hash, strlen(hash));
		userfile_buf_add(&out, "\n", 1);
	}
	if (op == USERFILE_ADD && found)
		snprintf(err, errlen, "user %s already exists", user);
	else if (op != USERFILE_ADD && !found)
		snprintf(err, errlen, "no such user %s", user);
	else if (userfile_replace(path, &out, &st) < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else
		r = 0;
	xfree_secret(text, len + 1);
	xfree_secret(out.data, out.cap);
	return r;
}

static int
userfile_edit(const char *path, enum userfile_op op, const char *user,
    const char *hash, char *err, size_t errlen)
{
	char *name = userfile_check_args(user, hash, err, errlen);
	int lock, r;

	if (name == NULL)
		return -1;
	lock = userfile_lock(path);
	if (lock < 0) {
		snprintf(err, errlen, "%s.lock: %s", path, strerror(errno));
		free(name);
		return -1;
	}
	r = userfile_edit_locked(path, op, name, hash, err, errlen);
	close(lock);
	free(name);
	return r;
}

int
userfile_add(const char *path, const char *user, const char *hash, char *err,
    size_t errlen)
{
	return userfile_edit(path, USERFILE_ADD, user, hash, err, errlen);
}

int
userfile_passwd(const char *path, const char *user, const char *hash, char *err,
    size_t errlen)
{
	return userfile_edit(path, USERFILE_PASSWD, user, hash, err, errlen);
}

int
userfile_del(const char *path, const char *user, char *err, size_t errlen)
{
	return userfile_edit(path, USERFILE_DEL, user, NULL, err, errlen);
}

int
userfile_list(const char *path, char ***names, size_t *n, char *err,
    size_t errlen)
{
	struct stat st;
	char *text, *pos, *end;
	size_t len;

	*names = NULL;
	*n = 0;
	if (userfile_read(path, &text, &len, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(text);
		return -1;
	}
	for (pos = text, end = text + len; pos < end;) {
		char *nl = memchr(pos, '\n', (size_t)(end - pos));
		size_t llen = nl ? (size_t)(nl - pos) : (size_t)(end - pos);
		char *name = userfile_line_name(pos, llen);

		if (name != NULL) {
			*names = xreallocarray(*names, *n + 1, sizeof(**names));
			(*names)[(*n)++] = name;
		}
		pos += llen + (nl != NULL);
	}
	xfree_secret(text, len + 1);
	return 0;
}

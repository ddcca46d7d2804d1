/*
 * The Maildir++ side of the store: user and folder names mapped to safe
 * directory names, unique message file names carrying UID, size and flags,
 * writing a message into tmp/, and directory syncs.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "store/store_int.h"

#define STORE_FOLDER_MAX 1024

/*
 * A user name becomes a directory name, so it is held to a small alphabet
 * and may not begin with a dot: no "..", no "/", no hidden names.
 */
int
store_maildir_user_ok(const char *user)
{
	size_t len = strlen(user);

	if (len == 0 || len > STORE_USER_MAX || !isalnum((unsigned char)*user))
		return 0;
	for (const char *p = user; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x80 || !(isalnum(c) || strchr("._@+-", c) != NULL))
			return 0;
	}
	return 1;
}

static int
store_maildir_safe_char(unsigned char c)
{
	return c < 0x80 && (isalnum(c) || strchr(" -_+=@,#&!()'", c) != NULL);
}

/*
 * Maps an IMAP name ("A/B", UTF-8) to its Maildir++ folder (".A.B"), with
 * every byte outside a small safe set written as %XX, so that no name can
 * hold a '.', '/' or control byte of its own. INBOX is the root ("").
 * Returns NULL for an empty name or an empty component.
 */
char *
store_maildir_folder_dir(const char *mailbox)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(mailbox), o = 0;
	char *out;

	if (strcasecmp(mailbox, "INBOX") == 0)
		return xstrdup("");
	if (n == 0 || n > STORE_FOLDER_MAX || mailbox[0] == '/' ||
	    mailbox[n - 1] == '/' || strstr(mailbox, "//") != NULL)
		return NULL;
	out = xmalloc(3 * n + 2);
	out[o++] = '.';
	for (const char *p = mailbox; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '/') {
			out[o++] = '.';
		} else if (store_maildir_safe_char(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static int
store_maildir_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The inverse of store_maildir_folder_dir(), for folders found on disk.
 * Returns NULL when dir is not a folder name this mapping produces.
 */
char *
store_maildir_folder_name(const char *dir)
{
	size_t n = strlen(dir), o = 0;
	char *out;

	if (n == 0)
		return xstrdup("INBOX");
	if (dir[0] != '.' || n < 2 || n > 3 * STORE_FOLDER_MAX)
		return NULL;
	out = xmalloc(n);
	for (const char *p = dir + 1; *p != '\0'; p++) {
		int hi, lo;

		if (*p == '.') {
			if (o == 0 || out[o - 1] == '/' || p[1] == '\0')
				goto bad;
			out[o++] = '/';
		} else if (*p == '%') {
			if ((hi = store_maildir_hex(p[1])) < 0 ||
			    (lo = store_maildir_hex(p[2])) < 0 ||
			    hi * 16 + lo == 0)
				goto bad;
			out[o++] = (char)(hi * 16 + lo);
			p += 2;
		} else if (store_maildir_safe_char((unsigned char)*p)) {
			out[o++] = *p;
		} else {
			goto bad;
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Creates path and its cur/, new/ and tmp/ (mode 0700); 0 or -1. */
int
store_maildir_mkdirs(const char *path)
{
	static const char *const subs[] = {"", "/cur", "/new", "/tmp"};

	for (size_t i = 0; i < 4; i++) {
		char *p = xasprintf("%s%s", path, subs[i]);
		int r = mkdir(p, 0700);
		int err = errno;

		free(p);
		if (r < 0 && err != EEXIST) {
			errno = err;
			return -1;
		}
	}
	return 0;
}

/* Makes the entries of a directory durable; 0 or -1 with errno. */
int
store_maildir_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r, err;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	err = errno;
	close(fd);
	errno = err;
	return r;
}

/*
 * A name unique to this process and moment:
 * "<sec>.M<usec>P<pid>Q<counter>.<host>". The UID and size follow once
 * known (store_maildir_final()).
 */
char *
store_maildir_unique(struct store *store)
{
	struct timeval tv;
	uint64_t q = atomic_fetch_add(&store->seq, 1) + 1;

	gettimeofday(&tv, NULL);
	return xasprintf("%lld.M%06ldP%ldQ%llu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), (unsigned long long)q,
	    store->host);
}

char *
store_maildir_final(const char *unique, uint32_t uid, uint64_t size)
{
	return xasprintf("%s,U=%u,S=%llu", unique, uid,
	    (unsigned long long)size);
}

/* The ":2," info letters of flags, in ASCII order; out holds 6 bytes. */
void
store_maildir_flag_letters(unsigned flags, char out[8])
{
	size_t o = 0;

	if (flags & STORE_FLAG_DRAFT)
		out[o++] = 'D';
	if (flags & STORE_FLAG_FLAGGED)
		out[o++] = 'F';
	if (flags & STORE_FLAG_ANSWERED)
		out[o++] = 'R';
	if (flags & STORE_FLAG_SEEN)
		out[o++] = 'S';
	if (flags & STORE_FLAG_DELETED)
		out[o++] = 'T';
	out[o] = '\0';
}

/* The flags in a file name's ":2," info; 0 when there is none. */
unsigned
store_maildir_flags_parse(const char *name)
{
	const char *info = strstr(name, ":2,");
	unsigned flags = 0;

	if (info == NULL)
		return 0;
	for (const char *p = info + 3; *p != '\0'; p++) {
		switch (*p) {
		case 'D':
			flags |= STORE_FLAG_DRAFT;
			break;
		case 'F':
			flags |= STORE_FLAG_FLAGGED;
			break;
		case 'R':
			flags |= STORE_FLAG_ANSWERED;
			break;
		case 'S':
			flags |= STORE_FLAG_SEEN;
			break;
		case 'T':
			flags |= STORE_FLAG_DELETED;
			break;
		}
	}
	return flags;
}

/* Copies s with CR, LF and other control bytes replaced by '?'. */
static char *
store_maildir_header_value(const char *s)
{
	char *out = xstrdup(s);

	for (char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

/* The Return-Path and Delivered-To lines prepended to a delivery. */
char *
store_maildir_prefix(const char *return_path, const char *delivered_to)
{
	char *rp = store_maildir_header_value(return_path);
	char *dt = store_maildir_header_value(delivered_to);
	char *out =
	    xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", rp, dt);

	free(rp);
	free(dt);
	return out;
}

static int
store_maildir_write_all(int fd, const char *prefix, const char *data,
    size_t len)
{
	struct iovec iov[2] = {{(void *)prefix, strlen(prefix)},
	    {(void *)data, len}};
	int i = 0;

	while (i < 2) {
		ssize_t n = writev(fd, iov + i, 2 - i);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		while (i < 2 && (size_t)n >= iov[i].iov_len)
			n -= (ssize_t)iov[i++].iov_len;
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Creates a new file at path holding prefix and data; its descriptor, or
 * -1 with errno set and nothing left behind.
 */
static int
store_maildir_create(const char *path, const char *prefix, const char *data,
    size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int err;

	if (fd < 0)
		return -1;
	if (store_maildir_write_all(fd, prefix, data, len) < 0) {
		err = errno;
		close(fd);
		unlink(path);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * Writes prefix and data to a new file at path and, when datasync is set,
 * fdatasyncs it. On failure the file is removed and -1 returned with errno
 * set.
 */
int
store_maildir_write(const char *path, const char *prefix, const char *data,
    size_t len, int datasync)
{
	int fd = store_maildir_create(path, prefix, data, len);
	int err;

	if (fd < 0)
		return -1;
	if (datasync && fdatasync(fd) < 0) {
		err = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		err = errno;
		goto fail;
	}
	return 0;
fail:
	unlink(path);
	errno = err;
	return -1;
}

int
store_maildir_write_start(const char *path, const char *prefix,
    const char *data, size_t len)
{
	int fd = store_maildir_create(path, prefix, data, len);

	/* Only a head start: the fdatasync that follows decides. */
	if (fd >= 0)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	return fd;
}

/* Reads a folder's saved UIDVALIDITY; 0, or -1 when absent or garbled. */
int
store_maildir_uidvalidity_read(const char *folder, uint32_t *out)
{
	char *path = xasprintf("%s/" STORE_UIDVALIDITY_FILE, folder);
	FILE *f = fopen(path, "re");
	unsigned long v = 0;
	int r = -1;

	free(path);
	if (f == NULL)
		return -1;
	if (fscanf(f, "%lu", &v) == 1 && v > 0 && v <= UINT32_MAX) {
		*out = (uint32_t)v;
		r = 0;
	}
	fclose(f);
	return r;
}

/* Saves a folder's UIDVALIDITY durably (file and directory synced). */
int
store_maildir_uidvalidity_write(const char *folder, uint32_t v)
{
	char *tmp = xasprintf("%s/" STORE_UIDVALIDITY_FILE ".tmp", folder);
	char *path = xasprintf("%s/" STORE_UIDVALIDITY_FILE, folder);
	char *line = xasprintf("%u\n", v);
	int r;

	unlink(tmp);
	r = store_maildir_write(tmp, "", line, strlen(line), 1);
	if (r == 0)
		r = rename(tmp, path);
	if (r == 0)
		r = store_maildir_fsync_dir(folder);
	free(tmp);
	free(path);
	free(line);
	return r;
}

enum store_status
store_maildir_errno_status(int err)
{
	return err == ENOSPC || err == EDQUOT ? STORE_ERR_NOSPACE :
	                                        STORE_ERR_IO;
}

int
store_maildir_read(const char *path, char **data, size_t *len)
{
	struct stat sb;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -1;
	}
	*data = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, *data + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	(*data)[got] = '\0';
	*len = got;
	return 0;
}

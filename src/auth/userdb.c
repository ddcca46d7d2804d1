/*
 * The users file (Dovecot passwd-file format) and the aliases file: parsing
 * with file:line errors, address resolution (RFC 5321 section 4.5.1
 * postmaster, "+detail" sub-addresses, nested aliases) and reloading when
 * inotify reports that either file was replaced or rewritten.
 */
#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"

/* Largest users or aliases file we read. */
#define USERDB_FILE_MAX (64 << 20)
/* Aliases nested deeper than this are not followed. */
#define USERDB_ALIAS_DEPTH 8
/* Names visited in one resolution, against alias fan-out blowing up. */
#define USERDB_EXPAND_MAX 4096
/* Longest user@domain: local part 64, '@', domain 253 (RFC 5321 4.5.3.1). */
#define USERDB_NAME_MAX (64 + 1 + 253)

struct userdb_entry {
	struct userdb_user pub;
	unsigned line;
};

struct userdb_alias {
	char *name;
	char **targets;
	size_t ntargets;
	unsigned line;
};

/* One loaded generation of both files; replaced whole on reload. */
struct userdb_data {
	struct userdb_entry *users; /* file order */
	size_t nusers;
	struct userdb_entry **sorted; /* by name */
	struct userdb_alias *aliases; /* by name */
	size_t naliases;
	char **domains; /* sorted, unique */
	size_t ndomains;
};

struct userdb {
	char *users_path;
	char *aliases_path;
	char *postmaster;
	uint64_t default_quota;
	struct userdb_data *data;

	int ifd;
	int users_wd;
	int aliases_wd;
	struct event *ev;
	userdb_change_cb cb;
	void *cb_arg;
};

struct userdb_parse {
	const char *path;
	unsigned line;
	char *err;
	size_t errlen;
};

static int userdb_fail(struct userdb_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
userdb_fail(struct userdb_parse *p, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->path, p->line, why);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, why);
	return -1;
}

static void
userdb_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* 1 when the local part of len bytes at s is one we accept. */
static int
userdb_local_valid(const char *s, size_t len)
{
	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f || strchr(":/\\\",<>()[];@", c))
			return 0;
		if (c == '.' && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

/* 1 when s is a domain of LDH labels (RFC 1035 2.3.1, RFC 1123 2.1). */
static int
userdb_domain_valid(const char *s)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) ||
		    (s[i] == '-' && label > 0)) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

int
userdb_name_valid(const char *name)
{
	const char *at = strchr(name, '@');

	return at != NULL && userdb_local_valid(name, (size_t)(at - name)) &&
	    userdb_domain_valid(at + 1);
}

/* Parses SIZE with an optional K, M, G or T suffix (powers of 1024). */
static int
userdb_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0') {
		const char *units = "kmgt", *u = strchr(units, tolower(*s));

		if (u == NULL || s[1] != '\0')
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
	}
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* Reads the extra fields ("key=value key=value") of one user. */
static int
userdb_parse_extra(struct userdb_parse *p, char *extra, uint64_t *quota)
{
	char *tok;

	while ((tok = strsep(&extra, " \t")) != NULL) {
		if (strncmp(tok, "quota=", 6) != 0)
			continue;
		if (userdb_parse_size(tok + 6, quota) < 0)
			return userdb_fail(p, "bad quota \"%.64s\"", tok + 6);
	}
	return 0;
}

/* Parses "user@domain:password[:uid:gid:gecos:home:shell:extra]". */
static int
userdb_parse_user(struct userdb_parse *p, char *line, uint64_t default_quota,
    struct userdb_entry *e)
{
	char *name = strsep(&line, ":"), *password = strsep(&line, ":");
	uint64_t quota = default_quota;

	/* uid, gid, gecos, home and shell are Dovecot's; we skip them. */
	for (int i = 0; i < 5 && line != NULL; i++)
		strsep(&line, ":");
	userdb_lower(name);
	if (!userdb_name_valid(name))
		return userdb_fail(p, "bad user name \"%.64s\"", name);
	if (password == NULL)
		return userdb_fail(p, "no password field");
	if (line != NULL && userdb_parse_extra(p, line, &quota) < 0)
		return -1;
	e->pub.name = xstrdup(name);
	e->pub.password = xstrdup(password);
	e->pub.quota = quota;
	e->line = p->line;
	return 0;
}

/* Parses "alias@domain: user@domain[, user@domain...]". */
static int
userdb_parse_alias(struct userdb_parse *p, char *line, struct userdb_alias *a)
{
	char *name = strsep(&line, ":"), *tok;

	memset(a, 0, sizeof(*a));
	userdb_lower(name);
	if (!userdb_name_valid(name))
		return userdb_fail(p, "bad alias name \"%.64s\"", name);
	if (line == NULL)
		return userdb_fail(p, "no ':' after the alias name");
	while ((tok = strsep(&line, ", \t")) != NULL) {
		if (*tok == '\0')
			continue;
		userdb_lower(tok);
		if (!userdb_name_valid(tok))
			return userdb_fail(p, "bad alias target \"%.64s\"",
			    tok);
		a->targets = xreallocarray(a->targets, a->ntargets + 1,
		    sizeof(*a->targets));
		a->targets[a->ntargets++] = xstrdup(tok);
	}
	if (a->ntargets == 0)
		return userdb_fail(p, "alias without targets");
	a->name = xstrdup(name);
	a->line = p->line;
	return 0;
}

static void
userdb_alias_clear(struct userdb_alias *a)
{
	for (size_t i = 0; i < a->ntargets; i++)
		free(a->targets[i]);
	free(a->targets);
	free(a->name);
}

static void
userdb_data_free(struct userdb_data *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nusers; i++) {
		free(d->users[i].pub.name);
		xfree_secret_str(d->users[i].pub.password);
	}
	for (size_t i = 0; i < d->naliases; i++)
		userdb_alias_clear(&d->aliases[i]);
	free(d->users);
	free(d->sorted);
	free(d->aliases);
	free(d->domains); /* points into user names */
	free(d);
}

/*
 * Takes the next line of [*pos, end) into a new string without its line
 * end; NULL at the end. Sets *has_nul when the line held a NUL byte.
 */
static char *
userdb_next_line(const char **pos, const char *end, int *has_nul)
{
	const char *start = *pos, *nl;
	size_t len;

	if (start >= end)
		return NULL;
	nl = memchr(start, '\n', (size_t)(end - start));
	len = nl ? (size_t)(nl - start) : (size_t)(end - start);
	*pos = start + len + (nl != NULL);
	*has_nul = memchr(start, '\0', len) != NULL;
	if (len > 0 && start[len - 1] == '\r')
		len--;
	return xstrndup(start, len);
}

/* 1 when line is blank or a '#' comment. */
static int
userdb_line_ignored(const char *line)
{
	line += strspn(line, " \t");
	return *line == '\0' || *line == '#';
}

static int
userdb_parse_line(struct userdb_parse *p, struct userdb_data *d, char *line,
    int aliases, uint64_t default_quota)
{
	if (aliases) {
		d->aliases = xreallocarray(d->aliases, d->naliases + 1,
		    sizeof(*d->aliases));
		if (userdb_parse_alias(p, line, &d->aliases[d->naliases]) < 0) {
			userdb_alias_clear(&d->aliases[d->naliases]);
			return -1;
		}
		d->naliases++;
		return 0;
	}
	d->users = xreallocarray(d->users, d->nusers + 1, sizeof(*d->users));
	if (userdb_parse_user(p, line, default_quota, &d->users[d->nusers]) < 0)
		return -1;
	d->nusers++;
	return 0;
}

/* Parses the text of one file into d (users or aliases). */
static int
userdb_parse_text(struct userdb_parse *p, struct userdb_data *d,
    const char *text, size_t len, int aliases, uint64_t default_quota)
{
	const char *pos = text, *end = text + len;
	char *line;
	int has_nul, r = 0;

	p->line = 0;
	while (r == 0 && (line = userdb_next_line(&pos, end, &has_nul))) {
		p->line++;
		if (has_nul)
			r = userdb_fail(p, "NUL byte in line");
		else if (!userdb_line_ignored(line))
			r = userdb_parse_line(p, d, line, aliases,
			    default_quota);
		free(line);
	}
	return r;
}

static int
userdb_entry_cmp(const void *a, const void *b)
{
	const struct userdb_entry *const *x = a, *const *y = b;

	return strcmp((*x)->pub.name, (*y)->pub.name);
}

static int
userdb_alias_cmp(const void *a, const void *b)
{
	const struct userdb_alias *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int
userdb_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts users and aliases, rejects duplicates, collects the domains. */
static int
userdb_index(struct userdb_parse *users, struct userdb_parse *aliases,
    struct userdb_data *d)
{
	d->sorted = xcalloc(d->nusers, sizeof(*d->sorted));
	d->domains = xcalloc(d->nusers, sizeof(*d->domains));
	for (size_t i = 0; i < d->nusers; i++) {
		d->sorted[i] = &d->users[i];
		d->domains[i] = strchr(d->users[i].pub.name, '@') + 1;
	}
	qsort(d->sorted, d->nusers, sizeof(*d->sorted), userdb_entry_cmp);
	for (size_t i = 1; i < d->nusers; i++) {
		if (strcmp(d->sorted[i - 1]->pub.name, d->sorted[i]->pub.name))
			continue;
		users->line = d->sorted[i]->line > d->sorted[i - 1]->line ?
		    d->sorted[i]->line :
		    d->sorted[i - 1]->line;
		return userdb_fail(users, "duplicate user \"%s\"",
		    d->sorted[i]->pub.name);
	}
	/* qsort() and bsearch() want an array even when it is empty. */
	if (d->aliases == NULL)
		d->aliases = xcalloc(1, sizeof(*d->aliases));
	qsort(d->aliases, d->naliases, sizeof(*d->aliases), userdb_alias_cmp);
	for (size_t i = 1; i < d->naliases; i++) {
		if (strcmp(d->aliases[i - 1].name, d->aliases[i].name))
			continue;
		aliases->line = d->aliases[i].line > d->aliases[i - 1].line ?
		    d->aliases[i].line :
		    d->aliases[i - 1].line;
		return userdb_fail(aliases, "duplicate alias \"%s\"",
		    d->aliases[i].name);
	}
	qsort(d->domains, d->nusers, sizeof(*d->domains), userdb_str_cmp);
	for (size_t i = 0; i < d->nusers; i++) {
		if (d->ndomains == 0 ||
		    strcmp(d->domains[d->ndomains - 1], d->domains[i]) != 0)
			d->domains[d->ndomains++] = d->domains[i];
	}
	return 0;
}

/* Reads a whole file; *text is NULL (and 0 returned) if it is missing. */
static int
userdb_read_file(struct userdb_parse *p, int may_be_missing, char **text,
    size_t *len)
{
	struct stat st;
	ssize_t n = 0;
	int fd;

	*text = NULL;
	*len = 0;
	fd = open(p->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && may_be_missing)
		return 0;
	if (fd < 0)
		return userdb_fail(p, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size > USERDB_FILE_MAX) {
		close(fd);
		return userdb_fail(p, "too large or unreadable");
	}
	*text = xmalloc((size_t)st.st_size + 1);
	while (*len < (size_t)st.st_size &&
	    (n = read(fd, *text + *len, (size_t)st.st_size - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	if (n < 0) {
		free(*text);
		*text = NULL;
		return userdb_fail(p, "%s", strerror(errno));
	}
	return 0;
}

/* Parses one file (users or aliases) from disk into d. */
static int
userdb_load_file(struct userdb_parse *p, struct userdb_data *d, int aliases,
    uint64_t default_quota)
{
	char *text;
	size_t len;
	int r;

	p->line = 0;
	if (p->path == NULL)
		return 0;
	if (userdb_read_file(p, aliases, &text, &len) < 0)
		return -1;
	if (text == NULL)
		return 0;
	r = userdb_parse_text(p, d, text, len, aliases, default_quota);
	xfree_secret(text, len + 1);
	return r;
}

/* Loads both files into a new generation; NULL with err on failure. */
static struct userdb_data *
userdb_load(struct userdb *db, char *err, size_t errlen)
{
	struct userdb_data *d = xcalloc(1, sizeof(*d));
	struct userdb_parse up = {db->users_path, 0, err, errlen};
	struct userdb_parse ap = {db->aliases_path, 0, err, errlen};

	if (userdb_load_file(&up, d, 0, db->default_quota) < 0 ||
	    userdb_load_file(&ap, d, 1, 0) < 0 ||
	    userdb_index(&up, &ap, d) < 0) {
		userdb_data_free(d);
		return NULL;
	}
	return d;
}

int
userdb_check_text(const char *text, size_t len, int aliases, char *err,
    size_t errlen)
{
	struct userdb_data *d = xcalloc(1, sizeof(*d));
	struct userdb_parse p = {aliases ? "aliases" : "users", 0, err, errlen};
	int r;

	r = userdb_parse_text(&p, d, text, len, aliases, 0);
	if (r == 0)
		r = userdb_index(&p, &p, d);
	userdb_data_free(d);
	return r;
}

static struct userdb_entry *
userdb_find_user(struct userdb_data *d, const char *name)
{
	struct userdb_entry key = {.pub.name = (char *)name}, *kp = &key;
	struct userdb_entry **e;

	e = bsearch(&kp, d->sorted, d->nusers, sizeof(*d->sorted),
	    userdb_entry_cmp);
	return e ? *e : NULL;
}

static struct userdb_alias *
userdb_find_alias(struct userdb_data *d, const char *name)
{
	struct userdb_alias key = {.name = (char *)name};

	return bsearch(&key, d->aliases, d->naliases, sizeof(*d->aliases),
	    userdb_alias_cmp);
}

static int
userdb_domain_local(struct userdb_data *d, const char *domain)
{
	return bsearch(&domain, d->domains, d->ndomains, sizeof(*d->domains),
	           userdb_str_cmp) != NULL;
}

struct userdb *
userdb_open(const char *users_path, const char *aliases_path,
    const char *postmaster, uint64_t default_quota, char *err, size_t errlen)
{
	struct userdb *db = xcalloc(1, sizeof(*db));

	db->users_path = xstrdup(users_path);
	db->aliases_path = aliases_path ? xstrdup(aliases_path) : NULL;
	db->default_quota = default_quota;
	db->ifd = db->users_wd = db->aliases_wd = -1;
	if (postmaster != NULL) {
		db->postmaster = xstrdup(postmaster);
		userdb_lower(db->postmaster);
	}
	db->data = userdb_load(db, err, errlen);
	if (db->data != NULL && db->postmaster != NULL &&
	    userdb_find_user(db->data, db->postmaster) == NULL) {
		snprintf(err, errlen, "postmaster \"%.64s\" is not in %s",
		    db->postmaster, users_path);
		userdb_free(&db);
	}
	if (db != NULL && db->data == NULL)
		userdb_free(&db);
	return db;
}

void
userdb_free(struct userdb **dbp)
{
	struct userdb *db = *dbp;

	if (db == NULL)
		return;
	if (db->ev != NULL)
		event_free(db->ev);
	if (db->ifd >= 0)
		close(db->ifd);
	userdb_data_free(db->data);
	free(db->users_path);
	free(db->aliases_path);
	free(db->postmaster);
	free(db);
	*dbp = NULL;
}

/* Tells the change callback about every user added, removed or changed. */
static void
userdb_diff(struct userdb *db, struct userdb_data *old, struct userdb_data *d)
{
	size_t i = 0, j = 0;

	while (i < old->nusers || j < d->nusers) {
		struct userdb_entry *a =
		    i < old->nusers ? old->sorted[i] : NULL;
		struct userdb_entry *b = j < d->nusers ? d->sorted[j] : NULL;
		int c = a == NULL ? 1 :
		    b == NULL     ? -1 :
		                    strcmp(a->pub.name, b->pub.name);

		if (c < 0) {
			db->cb(a->pub.name, db->cb_arg);
			i++;
		} else if (c > 0) {
			db->cb(b->pub.name, db->cb_arg);
			j++;
		} else {
			if (strcmp(a->pub.password, b->pub.password) != 0)
				db->cb(b->pub.name, db->cb_arg);
			i++;
			j++;
		}
	}
}

int
userdb_reload(struct userdb *db)
{
	struct userdb_data *d, *old = db->data;
	char err[512], q[600];

	d = userdb_load(db, err, sizeof(err));
	if (d == NULL) {
		log_warn("event=userdb-reload error=%s action=kept-old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return -1;
	}
	db->data = d;
	if (db->cb != NULL)
		userdb_diff(db, old, d);
	userdb_data_free(old);
	log_info("event=userdb-reload users=%zu aliases=%zu domains=%zu",
	    d->nusers, d->naliases, d->ndomains);
	return 0;
}

/* 1 when an inotify event names one of our files. */
static int
userdb_event_ours(struct userdb *db, const struct inotify_event *ev)
{
	const char *path;

	if (ev->mask & IN_Q_OVERFLOW)
		return 1;
	if (ev->len == 0)
		return 0;
	if (ev->wd == db->users_wd) {
		path = strrchr(db->users_path, '/');
		if (strcmp(ev->name, path ? path + 1 : db->users_path) == 0)
			return 1;
	}
	if (ev->wd == db->aliases_wd && db->aliases_path != NULL) {
		path = strrchr(db->aliases_path, '/');
		if (strcmp(ev->name, path ? path + 1 : db->aliases_path) == 0)
			return 1;
	}
	return 0;
}

static void
userdb_on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct userdb *db = arg;
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;
	ssize_t n;

	/* Several events (a rename, then a close) make one reload. */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			changed |= userdb_event_ours(db, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
	if (n < 0 && errno != EAGAIN)
		log_warn("event=userdb-watch error=\"%s\"", strerror(errno));
	if (changed)
		userdb_reload(db);
}

/* Watches the directory holding path; returns the watch descriptor. */
static int
userdb_watch_dir(int ifd, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int wd;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	wd = inotify_add_watch(ifd, dir,
	    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
	        IN_DELETE | IN_ONLYDIR);
	if (wd < 0)
		log_warn("event=userdb-watch dir=\"%s\" error=\"%s\"", dir,
		    strerror(errno));
	free(dir);
	return wd;
}

int
userdb_watch(struct userdb *db, struct event_base *base, userdb_change_cb cb,
    void *arg)
{
	if (db->ifd >= 0)
		return -1;
	db->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (db->ifd < 0)
		return -1;
	db->users_wd = userdb_watch_dir(db->ifd, db->users_path);
	if (db->aliases_path != NULL)
		db->aliases_wd = userdb_watch_dir(db->ifd, db->aliases_path);
	if (db->users_wd < 0 || (db->aliases_path && db->aliases_wd < 0)) {
		close(db->ifd);
		db->ifd = -1;
		return -1;
	}
	db->cb = cb;
	db->cb_arg = arg;
	db->ev = event_new(base, db->ifd, EV_READ | EV_PERSIST,
	    userdb_on_inotify, db);
	event_add(db->ev, NULL);
	return 0;
}

/* A resolution in progress: the users found and the alias path taken. */
struct userdb_expand {
	struct userdb_data *d;
	char **names;
	size_t n;
	const char *path[USERDB_ALIAS_DEPTH];
	size_t depth;
	size_t steps;
};

static void
userdb_expand_add(struct userdb_expand *x, const char *user)
{
	for (size_t i = 0; i < x->n; i++)
		if (strcmp(x->names[i], user) == 0)
			return;
	x->names = xreallocarray(x->names, x->n + 1, sizeof(*x->names));
	x->names[x->n++] = xstrdup(user);
}

static int
userdb_expand_on_path(struct userdb_expand *x, const char *name)
{
	for (size_t i = 0; i < x->depth; i++)
		if (strcmp(x->path[i], name) == 0)
			return 1;
	return 0;
}

/*
 * Adds the users that name reaches. An alias wins over a user of the same
 * name, except where the alias names itself (directly or in a loop): then
 * the user's own mailbox is meant.
 */
static void
userdb_expand(struct userdb_expand *x, const char *name)
{
	struct userdb_alias *a = userdb_find_alias(x->d, name);
	struct userdb_entry *u;

	if (++x->steps > USERDB_EXPAND_MAX)
		return;
	if (a != NULL && x->depth < USERDB_ALIAS_DEPTH &&
	    !userdb_expand_on_path(x, a->name)) {
		x->path[x->depth++] = a->name;
		for (size_t i = 0; i < a->ntargets; i++)
			userdb_expand(x, a->targets[i]);
		x->depth--;
		return;
	}
	u = userdb_find_user(x->d, name);
	if (u != NULL)
		userdb_expand_add(x, u->pub.name);
}

/* The user postmaster reaches when no alias or user of that name does. */
static struct userdb_entry *
userdb_postmaster(struct userdb *db)
{
	struct userdb_entry *u = NULL;

	if (db->postmaster != NULL)
		u = userdb_find_user(db->data, db->postmaster);
	if (u == NULL && db->data->nusers > 0)
		u = &db->data->users[0];
	return u;
}

/* Resolves a lower-case local@domain of a local domain. */
static void
userdb_resolve_local(struct userdb *db, struct userdb_expand *x, char *addr,
    char *at)
{
	char *plus = memchr(addr, '+', (size_t)(at - addr));
	struct userdb_entry *pm;

	userdb_expand(x, addr);
	if (x->n == 0 && plus != NULL && plus > addr) {
		/* alice+lists@example.org falls back to alice@example.org */
		memmove(plus, at, strlen(at) + 1);
		userdb_expand(x, addr);
		at = plus;
	}
	if (x->n == 0 && at - addr == 10 &&
	    strncmp(addr, "postmaster", 10) == 0 &&
	    (pm = userdb_postmaster(db)) != NULL)
		userdb_expand_add(x, pm->pub.name);
}

enum userdb_resolve
userdb_resolve(struct userdb *db, const char *address, char ***users,
    size_t *nusers)
{
	struct userdb_expand x = {.d = db->data};
	struct userdb_entry *pm = userdb_postmaster(db);
	char *addr, *at;
	enum userdb_resolve r = USERDB_NO_SUCH_USER;

	*users = NULL;
	*nusers = 0;
	if (strcasecmp(address, "postmaster") == 0 && pm != NULL)
		addr =
		    xasprintf("postmaster@%s", strchr(pm->pub.name, '@') + 1);
	else
		addr = xstrdup(address);
	userdb_lower(addr);
	at = strrchr(addr, '@');
	if (at != NULL && !userdb_domain_local(db->data, at + 1))
		r = USERDB_NOT_LOCAL;
	else if (at != NULL)
		userdb_resolve_local(db, &x, addr, at);
	free(addr);
	if (x.n > 0) {
		*users = x.names;
		*nusers = x.n;
		r = USERDB_LOCAL;
	}
	return r;
}

void
userdb_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

const struct userdb_user *
userdb_lookup(struct userdb *db, const char *name)
{
	char key[USERDB_NAME_MAX + 1];
	struct userdb_entry *e;
	size_t len = strlen(name);

	if (len > USERDB_NAME_MAX)
		return NULL;
	memcpy(key, name, len + 1);
	userdb_lower(key);
	e = userdb_find_user(db->data, key);
	return e ? &e->pub : NULL;
}

int
userdb_may_send_as(struct userdb *db, const char *user, const char *address)
{
	const struct userdb_user *u = userdb_lookup(db, user);
	char **names;
	size_t n;
	int ok;

	if (u == NULL ||
	    userdb_resolve(db, address, &names, &n) != USERDB_LOCAL)
		return 0;
	ok = n == 1 && strcmp(names[0], u->name) == 0;
	userdb_names_free(names, n);
	return ok;
}

size_t
userdb_count(struct userdb *db)
{
	return db->data->nusers;
}

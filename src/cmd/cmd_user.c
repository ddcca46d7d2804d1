/*
 * `pushmaild user add|passwd|del|list`: manages the users file; a running
 * daemon picks the changes up by itself.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/userdb.h"
#include "auth/userfile.h"
#include "base/xmalloc.h"
#include "cmd/cmd.h"
#include "net/worker.h"
#include "store/store.h"

#define USER_MAX_PASSWORD 1024

static int
user_read_line(const char *prompt, int echo_off, char *buf, size_t size)
{
	struct termios old, quiet;
	int tty = isatty(0), ok;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	if (tty && echo_off && tcgetattr(0, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSAFLUSH, &quiet);
	} else {
		echo_off = 0;
	}
	ok = fgets(buf, (int)size, stdin) != NULL;
	if (echo_off) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* Reads a new password: prompted twice on a terminal, else one line. */
static char *
user_read_password(void)
{
	char a[USER_MAX_PASSWORD], b[USER_MAX_PASSWORD];
	char *p = NULL;

	if (user_read_line("New password: ", 1, a, sizeof(a)) < 0 ||
	    a[0] == '\0') {
		fprintf(stderr, "pushmaild: no password given\n");
	} else if (isatty(0) &&
	    (user_read_line("Again: ", 1, b, sizeof(b)) < 0 ||
	        strcmp(a, b) != 0)) {
		fprintf(stderr, "pushmaild: the passwords differ\n");
	} else {
		p = xstrdup(a);
	}
	explicit_bzero(a, sizeof(a));
	explicit_bzero(b, sizeof(b));
	return p;
}

static char *
user_hash_from_stdin(void)
{
	char *password = user_read_password();
	char *hash;

	if (password == NULL)
		return NULL;
	hash = auth_hash_password(password);
	xfree_secret_str(password);
	if (hash == NULL)
		fprintf(stderr, "pushmaild: password hashing failed\n");
	return hash;
}

/* Makes the user's Maildir and index with the standard mailboxes. */
static int
user_create_store(const struct settings *s, const char *name)
{
	struct event_base *base = event_base_new();
	struct worker_pool *io = worker_pool_new(base, "io", 1, 0, 0);
	char err[512], *dir = xasprintf("%s/mail", s->data_dir);
	struct store *store = store_new(base, io, dir, err, sizeof(err));
	int r = -1;

	if (store != NULL)
		r = store_user_create(store, name, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "pushmaild: %s\n", err);
	store_free(&store);
	worker_pool_free(&io);
	event_base_free(base);
	free(dir);
	return r;
}

static int
user_add(const struct settings *s, const char *name)
{
	char err[512], *hash, *lower = xstrdup(name);
	int r = -1;

	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	hash = user_hash_from_stdin();
	if (hash != NULL && user_create_store(s, lower) == 0) {
		r = userfile_add(s->users_file, lower, hash, err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "pushmaild: %s\n", err);
	}
	free(hash);
	free(lower);
	return r < 0 ? 1 : 0;
}

static int
user_passwd(const struct settings *s, const char *name)
{
	char err[512], *hash = user_hash_from_stdin();
	int r = -1;

	if (hash != NULL) {
		r = userfile_passwd(s->users_file, name, hash, err,
		    sizeof(err));
		if (r < 0)
			fprintf(stderr, "pushmaild: %s\n", err);
	}
	free(hash);
	return r < 0 ? 1 : 0;
}

static int
user_list(const struct settings *s)
{
	char err[512], **names;
	size_t n;

	if (userfile_list(s->users_file, &names, &n, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushmaild: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	userdb_names_free(names, n);
	return 0;
}

int
cmd_user(struct settings *s, int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	char err[512];

	if (cmd_mkdir_data_dir(s, err, sizeof(err)) < 0) {
		fprintf(stderr, "pushmaild: %s\n", err);
		return 1;
	}
	if (strcmp(verb, "list") == 0 && argc == 1)
		return user_list(s);
	if (argc != 2) {
		fprintf(stderr,
		    "usage: pushmaild user add|passwd|del NAME, "
		    "or pushmaild user list\n");
		return 64;
	}
	if (strcmp(verb, "add") == 0)
		return user_add(s, argv[1]);
	if (strcmp(verb, "passwd") == 0)
		return user_passwd(s, argv[1]);
	if (strcmp(verb, "del") == 0) {
		if (userfile_del(s->users_file, argv[1], err, sizeof(err)) <
		    0) {
			fprintf(stderr, "pushmaild: %s\n", err);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "pushmaild: unknown user command \"%s\"\n", verb);
	return 64;
}

/*
 * `pushmaild deliver`: a local delivery agent for other MTAs. It hands the
 * message on stdin to the running daemon over the local LMTP socket (RFC
 * 2033), or writes it to the store itself when no daemon runs. Exit codes
 * follow sysexits(3): 0 stored, 67 unknown user, 69 refused, 75 try later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/userdb.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "cmd/cmd.h"
#include "net/worker.h"
#include "store/store.h"

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_NOUSER_ 67
#define EX_UNAVAILABLE_ 69
#define EX_TEMPFAIL_ 75

struct deliver {
	const char *sender;
	char **rcpts;
	int nrcpts;
	char *msg; /* CRLF line ends */
	size_t len;
	int status;
};

/* Reads stdin, drops an mbox "From " line and turns LF into CRLF. */
static int
deliver_read_message(struct deliver *d, uint64_t max)
{
	size_t cap = 65536, n = 0;
	char *raw = xmalloc(cap);
	size_t r;

	while ((r = fread(raw + n, 1, cap - n, stdin)) > 0) {
		n += r;
		if (n > max) {
			free(raw);
			fprintf(stderr,
			    "pushmaild deliver: message larger "
			    "than max_message_size\n");
			return EX_UNAVAILABLE_;
		}
		if (n == cap)
			raw = xrealloc(raw, cap *= 2);
	}
	d->msg = xmalloc(n * 2 + 1);
	d->len = 0;
	r = 0;
	if (n >= 5 && memcmp(raw, "From ", 5) == 0) {
		char *nl = memchr(raw, '\n', n);

		r = nl ? (size_t)(nl - raw) + 1 : n;
	}
	for (; r < n; r++) {
		if (raw[r] == '\n' &&
		    (d->len == 0 || d->msg[d->len - 1] != '\r'))
			d->msg[d->len++] = '\r';
		d->msg[d->len++] = raw[r];
	}
	if (d->len > 0 && d->msg[d->len - 1] != '\n') {
		d->msg[d->len++] = '\r';
		d->msg[d->len++] = '\n';
	}
	free(raw);
	return EX_OK_;
}

/* Reads one whole (possibly multi-line) reply; returns its code or -1. */
static int
deliver_reply(FILE *f, char *text, size_t textlen)
{
	char line[1024];

	while (fgets(line, sizeof(line), f) != NULL) {
		if (strlen(line) < 4)
			return -1;
		if (line[3] == ' ') {
			line[strcspn(line, "\r\n")] = '\0';
			snprintf(text, textlen, "%s", line);
			return atoi(line);
		}
	}
	return -1;
}

static int
deliver_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
deliver_send_body(FILE *f, const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (msg + i)) + 1 : len - i;

		if (msg[i] == '.')
			fputc('.', f);
		fwrite(msg + i, 1, n, f);
		i += n;
	}
	fputs(".\r\n", f);
}

/* Folds one recipient's reply code into the process exit status. */
static void
deliver_note(struct deliver *d, const char *rcpt, int code, const char *text)
{
	int st = EX_OK_;

	if (code >= 200 && code < 300)
		return;
	fprintf(stderr, "pushmaild deliver: %s: %s\n", rcpt, text);
	if (code >= 500 && strstr(text, "5.1.1") != NULL)
		st = EX_NOUSER_;
	else if (code >= 500)
		st = EX_UNAVAILABLE_;
	else
		st = EX_TEMPFAIL_;
	/* A temporary failure wins, so the sending MTA tries again. */
	if (d->status != EX_TEMPFAIL_)
		d->status = st;
}

static int
deliver_lmtp_session(struct deliver *d, FILE *f, const char *hostname)
{
	char text[1024];
	int ok[d->nrcpts], naccepted = 0;

	if (deliver_reply(f, text, sizeof(text)) != 220)
		return -1;
	fprintf(f, "LHLO %s\r\n", hostname);
	fflush(f);
	if (deliver_reply(f, text, sizeof(text)) != 250)
		return -1;
	fprintf(f, "MAIL FROM:<%s>\r\n", d->sender);
	fflush(f);
	if (deliver_reply(f, text, sizeof(text)) != 250) {
		deliver_note(d, d->sender, 550, text);
		return 0;
	}
	for (int i = 0; i < d->nrcpts; i++) {
		int code;

		fprintf(f, "RCPT TO:<%s>\r\n", d->rcpts[i]);
		fflush(f);
		code = deliver_reply(f, text, sizeof(text));
		ok[i] = code >= 200 && code < 300;
		naccepted += ok[i];
		if (!ok[i])
			deliver_note(d, d->rcpts[i], code < 0 ? 451 : code,
			    text);
	}
	if (naccepted == 0)
		return 0;
	fputs("DATA\r\n", f);
	fflush(f);
	if (deliver_reply(f, text, sizeof(text)) != 354)
		return -1;
	deliver_send_body(f, d->msg, d->len);
	fflush(f);
	for (int i = 0; i < d->nrcpts; i++) {
		int code;

		if (!ok[i])
			continue;
		code = deliver_reply(f, text, sizeof(text));
		deliver_note(d, d->rcpts[i], code < 0 ? 451 : code, text);
	}
	fputs("QUIT\r\n", f);
	fflush(f);
	return 0;
}

/* Returns 0 when the daemon took the message, -1 when it is not running. */
static int
deliver_via_lmtp(struct deliver *d, const struct settings *s)
{
	int fd = s->lmtp_socket[0] ? deliver_connect(s->lmtp_socket) : -1;
	FILE *f;
	int r;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "r+");
	r = deliver_lmtp_session(d, f, s->hostname);
	fclose(f);
	if (r < 0) {
		fprintf(stderr,
		    "pushmaild deliver: LMTP dialogue with the "
		    "daemon failed\n");
		d->status = EX_TEMPFAIL_;
	}
	return 0;
}

static void
deliver_store_done(struct store_delivery *sd, void *arg)
{
	struct event_base *base = arg;

	event_base_loopbreak(base);
}

static void
deliver_offline_result(struct deliver *d, struct store_delivery *sd)
{
	static const char *const text[] = {
	    [STORE_OK] = "250 2.0.0 ok",
	    [STORE_ERR_QUOTA] = "552 5.2.2 mailbox full",
	    [STORE_ERR_NOSPACE] = "452 4.3.1 insufficient system storage",
	    [STORE_ERR_IO] = "451 4.3.0 local error in processing",
	};
	static const int code[] = {250, 552, 452, 451};

	for (size_t i = 0; i < sd->nrcpts; i++)
		deliver_note(d, sd->rcpts[i].delivered_to,
		    code[sd->rcpts[i].status], text[sd->rcpts[i].status]);
}

/* Adds the rcpt's users to sd; returns 0, or -1 after noting why not. */
static int
deliver_resolve(struct deliver *d, struct userdb *db, struct store_delivery *sd,
    const char *rcpt)
{
	char **users;
	size_t n;
	enum userdb_resolve r = userdb_resolve(db, rcpt, &users, &n);

	if (r != USERDB_LOCAL) {
		deliver_note(d, rcpt, 550,
		    r == USERDB_NO_SUCH_USER ? "550 5.1.1 no such user" :
		                               "550 5.1.2 not a local domain");
		return -1;
	}
	sd->rcpts =
	    xreallocarray(sd->rcpts, sd->nrcpts + n, sizeof(*sd->rcpts));
	for (size_t i = 0; i < n; i++) {
		const struct userdb_user *u = userdb_lookup(db, users[i]);
		struct store_rcpt *sr = &sd->rcpts[sd->nrcpts++];

		memset(sr, 0, sizeof(*sr));
		sr->user = xstrdup(users[i]);
		sr->delivered_to = xstrdup(rcpt);
		sr->quota = u ? u->quota : 0;
	}
	userdb_names_free(users, n);
	return 0;
}

static int
deliver_offline(struct deliver *d, const struct settings *s)
{
	struct store_delivery *sd = xcalloc(1, sizeof(*sd));
	struct event_base *base = event_base_new();
	struct worker_pool *io = worker_pool_new(base, "io", 1, 0, 0);
	char err[512], *dir = xasprintf("%s/mail", s->data_dir);
	struct store *store = store_new(base, io, dir, err, sizeof(err));
	struct userdb *db = userdb_open(s->users_file, s->aliases_file,
	    s->postmaster, s->default_quota, err, sizeof(err));

	free(dir);
	if (store == NULL || db == NULL) {
		fprintf(stderr, "pushmaild deliver: %s\n", err);
		d->status = EX_TEMPFAIL_;
		goto out;
	}
	store_set_fsync_mode(store, s->fsync_mode);
	for (int i = 0; i < d->nrcpts; i++)
		deliver_resolve(d, db, sd, d->rcpts[i]);
	if (sd->nrcpts > 0) {
		sd->return_path = xstrdup(d->sender);
		sd->data = d->msg;
		sd->len = d->len;
		d->msg = NULL;
		sd->internaldate = time(NULL);
		sd->done = deliver_store_done;
		sd->arg = base;
		store_deliver(store, sd);
		event_base_dispatch(base);
		deliver_offline_result(d, sd);
	}
out:
	store_delivery_free(&sd);
	userdb_free(&db);
	store_free(&store);
	worker_pool_free(&io);
	event_base_free(base);
	return 0;
}

static int
deliver_run(struct deliver *d, const struct settings *s)
{
	char err[512];

	for (int tries = 0; tries < 50; tries++) {
		int lock;

		if (deliver_via_lmtp(d, s) == 0)
			return d->status;
		lock = cmd_lock_data_dir(s, 0, err, sizeof(err));
		if (lock >= 0) {
			deliver_offline(d, s);
			close(lock);
			return d->status;
		}
		/* The daemon holds the lock but is not listening yet. */
		usleep(100 * 1000);
	}
	fprintf(stderr, "pushmaild deliver: %s\n", err);
	return EX_TEMPFAIL_;
}

int
cmd_deliver(struct settings *s, int argc, char **argv)
{
	struct deliver d = {.sender = ""};
	int opt, r;

	optind = 1;
	while ((opt = getopt(argc, argv, "f:")) != -1) {
		if (opt != 'f') {
			fprintf(stderr,
			    "usage: pushmaild deliver [-f sender] "
			    "rcpt...\n");
			return EX_USAGE_;
		}
		d.sender = optarg;
	}
	if (optind >= argc) {
		fprintf(stderr,
		    "usage: pushmaild deliver [-f sender] rcpt...\n");
		return EX_USAGE_;
	}
	d.rcpts = argv + optind;
	d.nrcpts = argc - optind;
	r = deliver_read_message(&d, s->max_message_size);
	if (r == EX_OK_)
		r = deliver_run(&d, s);
	free(d.msg);
	return r;
}

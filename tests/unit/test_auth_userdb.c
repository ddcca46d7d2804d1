/*
 * Unit tests for the users and aliases files: parsing with line numbers,
 * address resolution, sending rights, and reloading through inotify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/userdb.h"
#include "base/xmalloc.h"
#include "check.h"

static char dir[] = "/tmp/pm-userdb-XXXXXX";
static char users_path[256], aliases_path[256];

/* Replaces path with text the way editors and our CLI do: by rename. */
static void
put_file(const char *path, const char *text)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

static const char users_text[] =
    "# users\n"
    "Alice@Example.org:{PLAIN}a:1000:1000::/home/a::quota=10M\n"
    "\n"
    "bob@example.org:{CRYPT}$y$x:::::\r\n"
    "carol@example.net:{PLAIN}c:::::: quota=512 other=1\n"
    "dave@example.org:{PLAIN}d";

static const char aliases_text[] =
    "# aliases\n"
    "team@example.org: alice@example.org, BOB@example.org,alice@example.org\n"
    "all@example.org: team@example.org carol@example.net\n"
    "loop1@example.org: loop2@example.org\n"
    "loop2@example.org: loop1@example.org\n"
    "alice@example.org: alice@example.org, archive@example.org\n"
    "archive@example.org: dave@example.org\n"
    "postmaster@example.net: carol@example.net\n"
    "ghost@example.org: nobody@example.org\n";

static struct userdb *
open_db(const char *postmaster)
{
	char err[256] = "";
	struct userdb *db;

	db = userdb_open(users_path, aliases_path, postmaster, 1 << 20, err,
	    sizeof(err));
	if (db == NULL)
		CHECK_FAIL("userdb_open: %s", err);
	return db;
}

static void
test_parse_good(void)
{
	struct userdb *db;
	const struct userdb_user *u;

	put_file(users_path, users_text);
	put_file(aliases_path, aliases_text);
	db = open_db(NULL);
	if (db == NULL)
		return;
	CHECK_INT(userdb_count(db), 4);
	u = userdb_lookup(db, "ALICE@example.ORG");
	CHECK(u != NULL);
	CHECK_STR(u->name, "alice@example.org");
	CHECK_STR(u->password, "{PLAIN}a");
	CHECK_INT(u->quota, 10 << 20);
	u = userdb_lookup(db, "bob@example.org");
	CHECK_STR(u->password, "{CRYPT}$y$x");
	CHECK_INT(u->quota, 1 << 20);
	CHECK_INT(userdb_lookup(db, "carol@example.net")->quota, 512);
	CHECK_STR(userdb_lookup(db, "dave@example.org")->password, "{PLAIN}d");
	CHECK(userdb_lookup(db, "eve@example.org") == NULL);
	userdb_free(&db);
	CHECK(db == NULL);
}

/* Checks that text fails to parse with the given error text. */
static void
check_bad(const char *text, int aliases, const char *want)
{
	char err[256] = "";

	if (userdb_check_text(text, strlen(text), aliases, err, sizeof(err)) !=
	    -1)
		CHECK_FAIL("accepted: %s", text);
	else if (strstr(err, want) == NULL)
		CHECK_FAIL("error \"%s\", expected \"%s\"", err, want);
}

static void
test_parse_bad(void)
{
	char err[256] = "";
	struct userdb *db;

	check_bad("a@b.c:x\nnoat:x\n", 0, "users:2: bad user name");
	check_bad("#\n.alice@b.c:x\n", 0, "users:2: bad user name");
	check_bad("al ice@b.c:x\n", 0, "users:1: bad user name");
	check_bad("a/b@b.c:x\n", 0, "users:1: bad user name");
	check_bad("a..b@b.c:x\n", 0, "users:1: bad user name");
	check_bad("a\x01@b.c:x\n", 0, "users:1: bad user name");
	check_bad("a@-b.c:x\n", 0, "users:1: bad user name");
	check_bad("a@b..c:x\n", 0, "users:1: bad user name");
	check_bad("a@b@c:x\n", 0, "users:1: bad user name");
	check_bad("a@b.c\n", 0, "users:1: no password field");
	check_bad("a@b.c:x:::::: quota=12Q\n", 0, "users:1: bad quota");
	check_bad("a@b.c:x:::::: quota=99999999999999999999\n", 0,
	    "users:1: bad quota");
	check_bad("a@b.c:x\n\nA@B.C:y\n", 0, "users:3: duplicate user");
	CHECK_INT(userdb_check_text("a@b.c:x\nb@b.c:\0\n", 15, 0, err,
	              sizeof(err)),
	    -1);
	CHECK_STR(err, "users:2: NUL byte in line");
	check_bad("x@b.c\n", 1, "aliases:1: no ':'");
	check_bad("x@b.c:\n", 1, "aliases:1: alias without targets");
	check_bad("x@b.c: a@b.c, bad\n", 1, "aliases:1: bad alias target");
	check_bad("x@b.c: a@b.c\n#\nX@b.c: a@b.c\n", 1, "aliases:3: duplicate");
	CHECK_INT(userdb_check_text("", 0, 0, err, sizeof(err)), 0);

	/* Through userdb_open the error names the file. */
	put_file(users_path, "a@b.c:x\nbad line\n");
	db = userdb_open(users_path, NULL, NULL, 0, err, sizeof(err));
	CHECK(db == NULL);
	CHECK(strstr(err, users_path) != NULL && strstr(err, ":2: ") != NULL);
	/* A missing users file is an error; missing aliases are not. */
	db = userdb_open("/nonexistent/users", NULL, NULL, 0, err, sizeof(err));
	CHECK(db == NULL);
	put_file(users_path, users_text);
	db = userdb_open(users_path, "/nonexistent/aliases", NULL, 0, err,
	    sizeof(err));
	CHECK(db != NULL);
	userdb_free(&db);
	/* The configured postmaster must exist. */
	db = userdb_open(users_path, NULL, "nobody@example.org", 0, err,
	    sizeof(err));
	CHECK(db == NULL);
	CHECK(strstr(err, "postmaster") != NULL);
}

/* Resolves address and compares with the expected names, space-joined. */
static void
check_resolve(struct userdb *db, const char *address, enum userdb_resolve want,
    const char *want_users)
{
	char **names, joined[512] = "";
	size_t n;
	enum userdb_resolve r = userdb_resolve(db, address, &names, &n);

	for (size_t i = 0; i < n; i++) {
		strcat(joined, i ? " " : "");
		strcat(joined, names[i]);
	}
	if (r != want || strcmp(joined, want_users) != 0)
		CHECK_FAIL("%s: %d \"%s\", expected %d \"%s\"", address, r,
		    joined, want, want_users);
	if (r != USERDB_LOCAL && (names != NULL || n != 0))
		CHECK_FAIL("%s: names set on failure", address);
	userdb_names_free(names, n);
}

static void
test_resolve(void)
{
	struct userdb *db;

	put_file(users_path, users_text);
	put_file(aliases_path, aliases_text);
	db = open_db(NULL);
	if (db == NULL)
		return;
	check_resolve(db, "BOB@Example.Org", USERDB_LOCAL, "bob@example.org");
	check_resolve(db, "bob+lists@example.org", USERDB_LOCAL,
	    "bob@example.org");
	check_resolve(db, "bob+a+b@example.org", USERDB_LOCAL,
	    "bob@example.org");
	check_resolve(db, "+x@example.org", USERDB_NO_SUCH_USER, "");
	check_resolve(db, "eve+x@example.org", USERDB_NO_SUCH_USER, "");
	/* Several targets, one listed twice, one nested alias. */
	check_resolve(db, "team@example.org", USERDB_LOCAL,
	    "alice@example.org dave@example.org bob@example.org");
	check_resolve(db, "all@example.org", USERDB_LOCAL,
	    "alice@example.org dave@example.org bob@example.org "
	    "carol@example.net");
	check_resolve(db, "team+x@EXAMPLE.org", USERDB_LOCAL,
	    "alice@example.org dave@example.org bob@example.org");
	/* An alias naming itself means the user's own mailbox as well. */
	check_resolve(db, "alice@example.org", USERDB_LOCAL,
	    "alice@example.org dave@example.org");
	check_resolve(db, "loop1@example.org", USERDB_NO_SUCH_USER, "");
	check_resolve(db, "ghost@example.org", USERDB_NO_SUCH_USER, "");
	check_resolve(db, "eve@example.org", USERDB_NO_SUCH_USER, "");
	check_resolve(db, "eve@example.com", USERDB_NOT_LOCAL, "");
	check_resolve(db, "bob@", USERDB_NOT_LOCAL, "");
	check_resolve(db, "bob", USERDB_NO_SUCH_USER, "");
	check_resolve(db, "", USERDB_NO_SUCH_USER, "");
	/* Postmaster: an alias, else the first user. */
	check_resolve(db, "PostMaster@example.net", USERDB_LOCAL,
	    "carol@example.net");
	check_resolve(db, "postmaster@example.org", USERDB_LOCAL,
	    "alice@example.org");
	check_resolve(db, "Postmaster", USERDB_LOCAL, "alice@example.org");
	check_resolve(db, "postmaster@nowhere.org", USERDB_NOT_LOCAL, "");
	userdb_free(&db);

	/* A configured postmaster wins over the first user. */
	db = open_db("Bob@example.org");
	check_resolve(db, "postmaster@example.org", USERDB_LOCAL,
	    "bob@example.org");
	check_resolve(db, "postmaster", USERDB_LOCAL, "bob@example.org");
	check_resolve(db, "postmaster@example.net", USERDB_LOCAL,
	    "carol@example.net");
	userdb_free(&db);
}

static void
test_may_send_as(void)
{
	struct userdb *db;

	put_file(users_path, users_text);
	put_file(aliases_path, aliases_text);
	db = open_db(NULL);
	if (db == NULL)
		return;
	CHECK_INT(userdb_may_send_as(db, "bob@example.org", "BOB@example.org"),
	    1);
	CHECK_INT(userdb_may_send_as(db, "bob@example.org",
	              "bob+x@example.org"),
	    1);
	CHECK_INT(userdb_may_send_as(db, "dave@example.org",
	              "archive@example.org"),
	    1);
	CHECK_INT(userdb_may_send_as(db, "carol@example.net",
	              "postmaster@example.net"),
	    1);
	/* team reaches several users; alice's alias reaches dave too. */
	CHECK_INT(userdb_may_send_as(db, "bob@example.org", "team@example.org"),
	    0);
	CHECK_INT(userdb_may_send_as(db, "alice@example.org",
	              "alice@example.org"),
	    0);
	CHECK_INT(userdb_may_send_as(db, "bob@example.org", "dave@example.org"),
	    0);
	CHECK_INT(userdb_may_send_as(db, "bob@example.org", "bob@other.org"),
	    0);
	CHECK_INT(userdb_may_send_as(db, "eve@example.org", "eve@example.org"),
	    0);
	userdb_free(&db);
}

struct changes {
	char seen[512];
	int calls;
};

static void
on_change(const char *user, void *arg)
{
	struct changes *c = arg;

	strcat(c->seen, c->seen[0] ? " " : "");
	strcat(c->seen, user);
	c->calls++;
}

/* Runs the loop until want change callbacks have run or ms pass. */
static void
run_until(struct event_base *base, struct changes *c, int want, int ms)
{
	for (int i = 0; i < ms / 10 && c->calls < want; i++) {
		struct timeval tv = {0, 10000};

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static void
test_watch_reload(void)
{
	struct event_base *base = event_base_new();
	struct changes c = {"", 0};
	struct userdb *db;

	put_file(users_path,
	    "a@x.org:{PLAIN}1\nb@x.org:{PLAIN}2\n"
	    "c@x.org:{PLAIN}3\n");
	unlink(aliases_path);
	db = open_db(NULL);
	if (db == NULL)
		return;
	CHECK_INT(userdb_watch(db, base, on_change, &c), 0);
	CHECK_INT(userdb_watch(db, base, on_change, &c), -1);

	/* b removed, c's password changed, d added; a untouched. */
	put_file(users_path,
	    "a@x.org:{PLAIN}1\nc@x.org:{PLAIN}changed\n"
	    "d@x.org:{PLAIN}4\n");
	run_until(base, &c, 3, 3000);
	CHECK_STR(c.seen, "b@x.org c@x.org d@x.org");
	CHECK(userdb_lookup(db, "b@x.org") == NULL);
	CHECK(userdb_lookup(db, "d@x.org") != NULL);

	/* A broken file is ignored and the old contents stay. */
	c.seen[0] = '\0';
	c.calls = 0;
	put_file(users_path, "a@x.org:{PLAIN}1\nbroken\n");
	run_until(base, &c, 1, 300);
	CHECK_INT(c.calls, 0);
	CHECK(userdb_lookup(db, "d@x.org") != NULL);

	/* An aliases file appearing is picked up too (no user changes). */
	put_file(aliases_path, "sales@x.org: a@x.org, d@x.org\n");
	put_file(users_path, "a@x.org:{PLAIN}1\nd@x.org:{PLAIN}4\n");
	run_until(base, &c, 1, 3000);
	CHECK_STR(c.seen, "c@x.org");
	CHECK_INT(userdb_reload(db), 0);
	check_resolve(db, "sales@x.org", USERDB_LOCAL, "a@x.org d@x.org");
	userdb_free(&db);
	event_base_free(base);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(users_path, sizeof(users_path), "%s/users", dir);
	snprintf(aliases_path, sizeof(aliases_path), "%s/aliases", dir);
	CHECK_RUN(test_parse_good);
	CHECK_RUN(test_parse_bad);
	CHECK_RUN(test_resolve);
	CHECK_RUN(test_may_send_as);
	CHECK_RUN(test_watch_reload);
	unlink(users_path);
	unlink(aliases_path);
	rmdir(dir);
	return check_summary();
}

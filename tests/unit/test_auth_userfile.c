/* Unit tests for the users-file editor: add, passwd, del and list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "auth/userfile.h"
#include "base/xmalloc.h"
#include "check.h"

static char dir[] = "/tmp/pm-userfile-XXXXXX";
static char path[256];

static char *
slurp(void)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
spit(const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static void
test_add_to_missing_file(void)
{
	char err[256] = "";
	struct stat st;

	unlink(path);
	CHECK_INT(userfile_add(path, "Alice@Example.org", "{PLAIN}a", err,
	              sizeof(err)),
	    0);
	CHECK_STR(slurp(), "alice@example.org:{PLAIN}a\n");
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(userfile_add(path, "ALICE@example.org", "{PLAIN}b", err,
	              sizeof(err)),
	    -1);
	CHECK(strstr(err, "already exists") != NULL);
	CHECK_STR(slurp(), "alice@example.org:{PLAIN}a\n");
}

static void
test_edits_keep_other_lines(void)
{
	char err[256] = "";

	spit("# our users\n"
	     "Bob@example.org:{PLAIN}old:1:2:gecos:/home/b::quota=1G\n"
	     "\n"
	     "carol@example.org:{PLAIN}c\r\n"
	     "dave@example.org:{PLAIN}d");
	chmod(path, 0644);
	CHECK_INT(userfile_passwd(path, "bob@EXAMPLE.org", "{CRYPT}$y$new", err,
	              sizeof(err)),
	    0);
	CHECK_INT(userfile_add(path, "eve@example.org", "{PLAIN}e", err,
	              sizeof(err)),
	    0);
	CHECK_INT(userfile_passwd(path, "dave@example.org", "{PLAIN}d2", err,
	              sizeof(err)),
	    0);
	CHECK_STR(slurp(),
	    "# our users\n"
	    "bob@example.org:{CRYPT}$y$new:1:2:gecos:/home/b::"
	    "quota=1G\n"
	    "\n"
	    "carol@example.org:{PLAIN}c\r\n"
	    "dave@example.org:{PLAIN}d2\n"
	    "eve@example.org:{PLAIN}e\n");
	CHECK_INT(userfile_del(path, "carol@example.org", err, sizeof(err)), 0);
	CHECK_STR(slurp(),
	    "# our users\n"
	    "bob@example.org:{CRYPT}$y$new:1:2:gecos:/home/b::"
	    "quota=1G\n"
	    "\n"
	    "dave@example.org:{PLAIN}d2\n"
	    "eve@example.org:{PLAIN}e\n");
}

static void
test_errors(void)
{
	char err[256] = "";
	char *before;

	spit("a@x.org:{PLAIN}1\n");
	before = xstrdup(slurp());
	CHECK_INT(userfile_passwd(path, "b@x.org", "{PLAIN}2", err,
	              sizeof(err)),
	    -1);
	CHECK(strstr(err, "no such user") != NULL);
	CHECK_INT(userfile_del(path, "b@x.org", err, sizeof(err)), -1);
	CHECK_INT(userfile_add(path, "bad name@x.org", "{PLAIN}2", err,
	              sizeof(err)),
	    -1);
	CHECK(strstr(err, "invalid user name") != NULL);
	CHECK_INT(userfile_add(path, "b@x.org", "{PLAIN}a:b", err, sizeof(err)),
	    -1);
	CHECK_INT(userfile_add(path, "b@x.org", "{PLAIN}a\nc@x.org:x", err,
	              sizeof(err)),
	    -1);
	CHECK_INT(userfile_add("/nonexistent/dir/users", "b@x.org", "{PLAIN}b",
	              err, sizeof(err)),
	    -1);
	CHECK_STR(slurp(), before);
	free(before);
}

static void
test_list_and_parse(void)
{
	char err[256] = "", **names;
	size_t n;
	struct userdb *db;

	spit("# c\nZed@x.org:{PLAIN}1\n  # indented comment\n");
	CHECK_INT(userfile_add(path, "amy@x.org", "{PLAIN}2", err, sizeof(err)),
	    0);
	CHECK_INT(userfile_list(path, &names, &n, err, sizeof(err)), 0);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(names[0], "zed@x.org");
		CHECK_STR(names[1], "amy@x.org");
	}
	userdb_names_free(names, n);
	/* What the editor writes, the userdb reads. */
	db = userdb_open(path, NULL, NULL, 0, err, sizeof(err));
	CHECK(db != NULL);
	if (db != NULL)
		CHECK_INT(userdb_count(db), 2);
	userdb_free(&db);
	unlink(path);
	CHECK_INT(userfile_list(path, &names, &n, err, sizeof(err)), 0);
	CHECK_INT(n, 0);
	userdb_names_free(names, n);
}

int
main(void)
{
	char lock[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/users", dir);
	CHECK_RUN(test_add_to_missing_file);
	CHECK_RUN(test_edits_keep_other_lines);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_list_and_parse);
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
	unlink(path);
	if (rmdir(dir) < 0) {
		fprintf(stderr, "temporary files left in %s\n", dir);
		check_failed++;
	}
	return check_summary();
}

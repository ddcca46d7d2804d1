/*
 * Unit tests for the pure part of the Maildir watcher: taking file names
 * that other programs leave in new/ and cur/ apart (base name, ":2," flag
 * letters, the ",U=" UID) and the store's own name for a message's state.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/store_int.h"
#include "store/store_watch.h"

static void
test_name_ours(void)
{
	struct store_watch_name n;
	const char *name = "1700000000.M1P2Q3.host,U=42,S=1234:2,FS";

	CHECK_INT(store_watch_name_parse(name, &n), 0);
	CHECK_INT(n.base_len, strlen("1700000000.M1P2Q3.host,U=42,S=1234"));
	CHECK_INT(n.uid, 42);
	CHECK_INT(n.flags, STORE_FLAG_FLAGGED | STORE_FLAG_SEEN);

	CHECK_INT(store_watch_name_parse("1.M1P2Q3.h,U=7,S=9", &n), 0);
	CHECK_INT(n.base_len, strlen("1.M1P2Q3.h,U=7,S=9"));
	CHECK_INT(n.uid, 7);
	CHECK_INT(n.flags, 0);

	/* The UID may end the base name. */
	CHECK_INT(store_watch_name_parse("x,U=9:2,", &n), 0);
	CHECK_INT(n.uid, 9);
	CHECK_INT(n.base_len, 5);
}

static void
test_name_foreign(void)
{
	struct store_watch_name n;

	/* procmail, mutt, Dovecot: no UID, letters we do not know. */
	CHECK_INT(store_watch_name_parse("1700000000.12345_1.mx", &n), 0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(n.flags, 0);
	CHECK_INT(n.base_len, strlen("1700000000.12345_1.mx"));
	CHECK_INT(store_watch_name_parse("123.mx,S=99,W=101:2,DFPRSTab", &n),
	    0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(n.flags,
	    STORE_FLAG_DRAFT | STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED |
	        STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	CHECK_INT(n.base_len, strlen("123.mx,S=99,W=101"));

	/* ",U=" only counts in the base, with digits, not 0. */
	CHECK_INT(store_watch_name_parse("abc:2,S,U=5", &n), 0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(store_watch_name_parse("abc,U=x5", &n), 0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(store_watch_name_parse("abc,U=0,S=1", &n), 0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(store_watch_name_parse("abc,U=12x,S=1", &n), 0);
	CHECK_INT(n.uid, 0);
	CHECK_INT(store_watch_name_parse("abc,U=99999999999,S=1", &n), 0);
	CHECK_INT(n.uid, 0);
	/* Another info than ":2," is part of the base. */
	CHECK_INT(store_watch_name_parse("abc:1,S", &n), 0);
	CHECK_INT(n.base_len, 7);
	CHECK_INT(n.flags, 0);
}

static void
test_name_refused(void)
{
	struct store_watch_name n;
	char long_name[STORE_WATCH_NAME_MAX + 2];

	CHECK_INT(store_watch_name_parse("", &n), -1);
	CHECK_INT(store_watch_name_parse(".", &n), -1);
	CHECK_INT(store_watch_name_parse("..", &n), -1);
	CHECK_INT(store_watch_name_parse(".hidden", &n), -1);
	CHECK_INT(store_watch_name_parse("a/b", &n), -1);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	CHECK_INT(store_watch_name_parse(long_name, &n), -1);
	long_name[STORE_WATCH_NAME_MAX] = '\0';
	CHECK_INT(store_watch_name_parse(long_name, &n), 0);
}

static void
test_canonical(void)
{
	char *s = store_watch_canonical("b,U=1,S=2", 0, STORE_FLAG_SEEN);
	struct store_watch_name n;

	CHECK_STR(s, "b,U=1,S=2");
	free(s);
	s = store_watch_canonical("b,U=1,S=2", 1, 0);
	CHECK_STR(s, "b,U=1,S=2:2,");
	free(s);
	s = store_watch_canonical("b,U=1,S=2", 1,
	    STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_DELETED);
	CHECK_STR(s, "b,U=1,S=2:2,DST");
	/* It parses back to the same state. */
	CHECK_INT(store_watch_name_parse(s, &n), 0);
	CHECK_INT(n.flags,
	    STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_DELETED);
	CHECK_INT(n.uid, 1);
	CHECK_INT(n.base_len, strlen("b,U=1,S=2"));
	free(s);
}

int
main(void)
{
	CHECK_RUN(test_name_ours);
	CHECK_RUN(test_name_foreign);
	CHECK_RUN(test_name_refused);
	CHECK_RUN(test_canonical);
	return check_summary();
}

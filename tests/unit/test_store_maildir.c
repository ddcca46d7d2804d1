/*
 * Unit tests for the store's Maildir names: hostile folder and user names
 * cannot leave the user's directory, and file-name flags round-trip.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/store_int.h"

static void
check_folder(const char *name, const char *want)
{
	char *dir = store_maildir_folder_dir(name);

	if (want == NULL) {
		CHECK(dir == NULL);
	} else {
		CHECK_STR(dir, want);
	}
	free(dir);
}

/* A mapped name is one path component: no '/', never "." or "..". */
static void
check_contained(const char *name)
{
	char *dir = store_maildir_folder_dir(name);
	char *back;

	if (dir == NULL)
		return;
	CHECK(strchr(dir, '/') == NULL);
	CHECK(strcmp(dir, ".") != 0 && strcmp(dir, "..") != 0);
	CHECK(strstr(dir, "..") == NULL);
	for (const char *p = dir; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	back = store_maildir_folder_name(dir);
	if (strcasecmp(name, "INBOX") != 0)
		CHECK_STR(back, name);
	free(back);
	free(dir);
}

static void
test_folder_names(void)
{
	static const char *const hostile[] = {"..", "a/../b", ".", "...",
	    "a/./b", ".hidden", "x%2Fy", "tab\there", "nl\r\nx", "\x7f",
	    "caf\xc3\xa9", "../../etc/passwd", "a/b/c", "Sent", "%"};

	check_folder("INBOX", "");
	check_folder("inbox", "");
	check_folder("Sent", ".Sent");
	check_folder("A/B", ".A.B");
	check_folder("..", ".%2E%2E");
	check_folder("a/../b", ".a.%2E%2E.b");
	check_folder("a.b", ".a%2Eb");
	check_folder("50%", ".50%25");
	check_folder("/x", NULL);
	check_folder("x/", NULL);
	check_folder("a//b", NULL);
	check_folder("", NULL);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		check_contained(hostile[i]);
}

static void
test_folder_parse(void)
{
	char *s;

	CHECK(store_maildir_folder_name("..") == NULL);
	CHECK(store_maildir_folder_name(".a..b") == NULL);
	CHECK(store_maildir_folder_name(".a.") == NULL);
	CHECK(store_maildir_folder_name(".%00") == NULL);
	CHECK(store_maildir_folder_name(".%zz") == NULL);
	CHECK(store_maildir_folder_name(".a/b") == NULL);
	CHECK(store_maildir_folder_name("cur") == NULL);
	s = store_maildir_folder_name(".A.B%2Ec");
	CHECK_STR(s, "A/B.c");
	free(s);
}

static void
test_user_names(void)
{
	CHECK(store_maildir_user_ok("alice"));
	CHECK(store_maildir_user_ok("bob.smith@example.org"));
	CHECK(!store_maildir_user_ok(""));
	CHECK(!store_maildir_user_ok(".."));
	CHECK(!store_maildir_user_ok(".alice"));
	CHECK(!store_maildir_user_ok("a/b"));
	CHECK(!store_maildir_user_ok("../etc"));
	CHECK(!store_maildir_user_ok("a\nb"));
	CHECK(!store_maildir_user_ok("caf\xc3\xa9"));
}

static void
test_flags(void)
{
	char letters[8];
	unsigned all = STORE_FLAG_SEEN | STORE_FLAG_ANSWERED |
	    STORE_FLAG_FLAGGED | STORE_FLAG_DELETED | STORE_FLAG_DRAFT;

	store_maildir_flag_letters(all, letters);
	CHECK_STR(letters, "DFRST");
	store_maildir_flag_letters(STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
	    letters);
	CHECK_STR(letters, "FS");
	CHECK_INT(store_maildir_flags_parse("1.M2P3Q4.h,U=1,S=5:2,DFRST"), all);
	CHECK_INT(store_maildir_flags_parse("1.M2P3Q4.h,U=1,S=5"), 0);
}

static void
test_prefix(void)
{
	char *p = store_maildir_prefix("a@b\r\nBcc: x", "u@example.org");

	CHECK_STR(p,
	    "Return-Path: <a@b??Bcc: x>\r\nDelivered-To: u@example.org\r\n");
	free(p);
}

int
main(void)
{
	CHECK_RUN(test_folder_names);
	CHECK_RUN(test_folder_parse);
	CHECK_RUN(test_user_names);
	CHECK_RUN(test_flags);
	CHECK_RUN(test_prefix);
	return check_summary();
}

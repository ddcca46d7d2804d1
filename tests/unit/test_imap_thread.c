/*
 * Unit tests of imap_thread: base subjects (RFC 5256 section 2.1), and
 * ORDEREDSUBJECT and REFERENCES threading with missing parents, loops,
 * duplicate Message-IDs and threads joined by subject alone.
 */
#include <stdlib.h>

#include "check.h"
#include "imap/imap_thread.h"

static void
check_base(const char *in, const char *want, int want_reply)
{
	int reply = -1;
	char *got = imap_thread_base_subject(in, &reply);

	CHECK_STR(got, want);
	CHECK_INT(reply, want_reply);
	free(got);
}

static void
test_base_subject(void)
{
	check_base("Re: hello", "HELLO", 1);
	check_base("RE: Re: [list] Fwd: hello (fwd)", "HELLO", 1);
	check_base("[list] hello", "HELLO", 0);
	check_base("[list]", "[LIST]", 0);
	check_base("[list]   ", "[LIST]", 0);
	check_base("[Fwd: hello world]", "HELLO WORLD", 1);
	check_base("[Fwd: Re: [x] hi (fwd)]", "HI", 1);
	check_base("  hello\t  world  ", "HELLO WORLD", 0);
	check_base("Re[2]: hi", "HI", 1);
	check_base("fw: hi", "HI", 1);
	check_base("Reply: x", "REPLY: X", 0);
	check_base("Re:", "", 1);
	check_base(NULL, "", 0);
	check_base("", "", 0);
	check_base("Gr\xc3\xbc\xc3\x9f"
	           "e",
	    "GR\xc3\xbc\xc3\x9f"
	    "E",
	    0);
	check_base("[a][b] re: [c] x", "X", 1);
}

/* A message with only a subject and a date. */
#define MSG(id, subj, date)                      \
	{                                        \
		id, NULL, NULL, NULL, subj, date \
	}

static void
check_thread(char *got, const char *want)
{
	CHECK_STR(got, want);
	free(got);
}

static void
test_orderedsubject(void)
{
	struct imap_thread_msg m[] = {
	    MSG(1, "B", 100),
	    MSG(2, "a", 50),
	    MSG(3, "Re: b", 90),
	    MSG(4, "A", 200),
	    MSG(5, "re: a", 60),
	};

	check_thread(imap_thread_orderedsubject(m, 4), "(2 4)(3 1)");
	check_thread(imap_thread_orderedsubject(m, 5), "(2 (5)(4))(3 1)");
	check_thread(imap_thread_orderedsubject(m, 0), "");
}

static void
test_references_conversation(void)
{
	struct imap_thread_msg m[] = {
	    {1, "<a@x>", NULL, NULL, "topic", 10},
	    {2, "<b@x>", "<a@x>", NULL, "Re: topic", 20},
	    {3, "<c@x>", "<a@x>\r\n <b@x>", NULL, "Re: topic", 30},
	    {4, "<d@x>", "<a@x> <missing@x>", NULL, "Re: topic", 40},
	    {5, "<e@x>", NULL, "<b@x> (your message)", "Re: topic", 25},
	};

	check_thread(imap_thread_references(m, 5), "(1 (2 (5)(3))(4))");
	check_thread(imap_thread_references(m, 0), "");
}

static void
test_references_missing_parent(void)
{
	struct imap_thread_msg two[] = {
	    {7, "<b@x>", "<a@x>", NULL, "x", 10},
	    {9, "<c@x>", "<a@x>", NULL, "y", 20},
	};
	struct imap_thread_msg one[] = {
	    {1, "<b@x>", "<gone@x> <a@x>", NULL, "x", 10},
	};

	/* A dummy at the root keeps two children, gives way to one. */
	check_thread(imap_thread_references(two, 2), "((7)(9))");
	check_thread(imap_thread_references(one, 1), "(1)");
}

static void
test_references_loops(void)
{
	struct imap_thread_msg m[] = {
	    {1, "<a@x>", "<b@x>", NULL, "", 10},
	    {2, "<b@x>", "<a@x>", NULL, "", 20},
	    {3, "<c@x>", "<c@x>", NULL, "", 30},
	    {4, "<d@x>", "<a@x> <d@x> <a@x> <e@x>", NULL, "", 40},
	};

	check_thread(imap_thread_references(m, 2), "(2 1)");
	check_thread(imap_thread_references(m + 2, 1), "(3)");
	/* 4 names a, itself, a again and a new e: it ends below a. */
	check_thread(imap_thread_references(m, 4), "(2 1 4)(3)");
}

static void
test_references_duplicates(void)
{
	struct imap_thread_msg m[] = {
	    {1, "<a@x>", NULL, NULL, "one", 10},
	    {2, "<a@x>", NULL, NULL, "two", 20},
	    {3, "<c@x>", "<a@x>", NULL, "three", 30},
	    {4, NULL, NULL, NULL, "four", 5},
	    {5, "<>", NULL, NULL, "five", 6},
	};

	check_thread(imap_thread_references(m, 5), "(4)(5)(1 3)(2)");
}

static void
test_references_subject(void)
{
	struct imap_thread_msg m[] = {
	    {1, "<a@x>", NULL, NULL, "Hello", 10},
	    {2, "<b@x>", NULL, NULL, "Re: hello", 20},
	    {3, "<c@x>", NULL, NULL, "hello", 30},
	    {4, "<d@x>", NULL, NULL, "other", 5},
	};
	struct imap_thread_msg r[] = {
	    {1, "<a@x>", NULL, NULL, "Re: Hello", 10},
	    {2, "<b@x>", NULL, NULL, "hello", 20},
	};

	check_thread(imap_thread_references(m, 4), "(4)((1 2)(3))");
	/* The original wins the table; the earlier reply goes below it. */
	check_thread(imap_thread_references(r, 2), "(2 1)");
}

int
main(void)
{
	CHECK_RUN(test_base_subject);
	CHECK_RUN(test_orderedsubject);
	CHECK_RUN(test_references_conversation);
	CHECK_RUN(test_references_missing_parent);
	CHECK_RUN(test_references_loops);
	CHECK_RUN(test_references_duplicates);
	CHECK_RUN(test_references_subject);
	return check_summary();
}

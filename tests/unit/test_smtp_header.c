/* Unit tests for the From: field reader used by submission. */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_header.h"
#include "check.h"

/* The addresses of msg's From: joined by ",", or "-" when refused. */
static void
check_from(const char *msg, const char *want)
{
	char **addrs, got[512] = "";
	size_t n;

	if (smtp_header_from(msg, strlen(msg), &addrs, &n) < 0) {
		CHECK_STR("-", want);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(got, ",");
		strcat(got, addrs[i]);
	}
	smtp_header_addrs_free(addrs, n);
	CHECK_STR(got, want);
}

static void
test_from(void)
{
	check_from("From: a@b.c\r\n\r\nbody", "a@b.c");
	check_from("Subject: x\r\nfrom:   <a@b.c>  \r\n\r\n", "a@b.c");
	check_from("From: \"Doe, John\" <j@x.org>\r\n\r\n", "j@x.org");
	check_from("From: John (the <boss>) <j@x.org>\r\n\r\n", "j@x.org");
	check_from("From: a@x.org, \"B\" <b@x.org>\r\n\r\n", "a@x.org,b@x.org");
	check_from("From: Jo\r\n <j@x.org>\r\n\r\n", "j@x.org");
	check_from("From: team: a@x.org, b@x.org;\r\n\r\n", "a@x.org,b@x.org");
	check_from("From: <@route.example:j@x.org>\r\n\r\n", "j@x.org");
	check_from("From: \"q uoted\"@x.org\r\n\r\n", "\"q uoted\"@x.org");
	check_from("From: j@x.org\n\nbody", "j@x.org");
}

static void
test_refused(void)
{
	check_from("Subject: none\r\n\r\nFrom: a@b.c\r\n", "-");
	check_from("From: a@b.c\r\nFrom: d@e.f\r\n\r\n", "-");
	check_from("From: nobody\r\n\r\n", "-");
	check_from("From: \r\n\r\n", "-");
	check_from("From: <a@b.c\r\n\r\n", "-");
	check_from("", "-");
	check_from("From:", "-");
}

int
main(void)
{
	CHECK_RUN(test_from);
	CHECK_RUN(test_refused);
	return check_summary();
}

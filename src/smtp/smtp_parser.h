/*
 * The SMTP, submission and LMTP command-line parser: one line in (line end
 * removed), one struct out, no I/O. Implements the command syntax of RFC 5321
 * section 4.1 with the mailbox grammar of 4.1.2, the SIZE (RFC 1870),
 * BODY (RFC 6152), SMTPUTF8 (RFC 6531), AUTH (RFC 4954) and BDAT (RFC 3030)
 * arguments.
 */
#ifndef SMTP_SMTP_PARSER_H
#define SMTP_SMTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 section 4.5.3.1: local part and path limits, in octets. */
#define SMTP_LOCAL_PART_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256

enum smtp_verb {
	SMTP_CMD_UNKNOWN,
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_LHLO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
};

enum smtp_body {
	SMTP_BODY_NONE, /* no BODY= parameter */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_cmd {
	enum smtp_verb verb;
	/*
	 * HELO/EHLO/LHLO: the client's name; VRFY, EXPN, HELP, NOOP: the rest
	 * of the line (may be empty); AUTH: the mechanism, upper-cased.
	 */
	char *arg;
	/* AUTH: the initial response as sent ("=" for an empty one), or NULL. */
	char *initial;
	/*
	 * MAIL/RCPT: "local@domain" without angle brackets or source route,
	 * a quoted local part unquoted when it is a valid dot-string; "" for
	 * the null reverse-path; "postmaster" for RCPT TO:<Postmaster>.
	 */
	char *path;
	int path_utf8; /* path holds non-ASCII (valid UTF-8) bytes */
	int has_size;  /* MAIL: SIZE= given */
	uint64_t size; /* MAIL: its value; BDAT: the chunk size */
	enum smtp_body body;
	int smtputf8; /* MAIL: the SMTPUTF8 parameter */
	int last;     /* BDAT: LAST */
	/*
	 * When smtp_parse() fails: the whole reply to send, code, enhanced
	 * status and text, without CRLF (a static string).
	 */
	const char *error;
};

/*
 * Parses one command line of len bytes (without its CRLF; may hold any
 * byte). Verbs and keywords are case-insensitive. Fills cmd, whose strings
 * the caller frees with smtp_cmd_clear(). Returns 0, or -1 with cmd->error
 * set (cmd->verb tells which command it was, SMTP_CMD_UNKNOWN if none).
 * Whether a command is allowed in the session's state, and whether a
 * non-ASCII path is allowed without SMTPUTF8 on RCPT, is for the caller.
 */
int smtp_parse(const char *line, size_t len, struct smtp_cmd *cmd);

/* Frees the strings of cmd and zeroes it. */
void smtp_cmd_clear(struct smtp_cmd *cmd);

/*
 * Checks len bytes for well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). Returns 1 when valid, else 0.
 */
int smtp_utf8_valid(const unsigned char *s, size_t len);

#endif

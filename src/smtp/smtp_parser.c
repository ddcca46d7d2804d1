/*
 * The SMTP command-line parser: verbs and arguments of RFC 5321 section
 * 4.1.1, paths and mailboxes of 4.1.2 (quoted local parts, address literals,
 * source routes), with RFC 6531 UTF-8 and the MAIL parameters SIZE, BODY
 * and SMTPUTF8. Bytes in, struct out; no I/O.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "smtp/smtp_parser.h"

#define SMTP_HELO_MAX 255
#define SMTP_MECH_MAX 20

#define ERR_UNKNOWN "500 5.5.1 Command unrecognized"
#define ERR_NUL "500 5.5.2 NUL byte in command"
#define ERR_UTF8 "500 5.5.2 Invalid UTF-8 in command"
#define ERR_UTF8_ADDR "553 5.6.7 Malformed UTF-8 in address"
#define ERR_NEED_UTF8 "553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define ERR_MAIL "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]"
#define ERR_RCPT "501 5.5.4 Syntax: RCPT TO:<address>"
#define ERR_SENDER "501 5.1.7 Bad sender address syntax"
#define ERR_RECIPIENT "501 5.1.3 Bad recipient address syntax"
#define ERR_PARAM "555 5.5.4 Unsupported parameter"
#define ERR_PARAM_SYNTAX "501 5.5.4 Malformed parameter"
#define ERR_PARAM_DUP "501 5.5.4 Duplicate parameter"
#define ERR_SIZE "501 5.5.4 Bad SIZE value"
#define ERR_BODY "555 5.5.4 Unsupported BODY value"
#define ERR_NOARGS "501 5.5.4 No parameters allowed"
#define ERR_HELO "501 5.5.4 Syntax: EHLO hostname"
#define ERR_VRFY "501 5.5.4 Syntax: VRFY address"
#define ERR_BDAT "501 5.5.4 Syntax: BDAT size [LAST]"
#define ERR_AUTH "501 5.5.4 Syntax: AUTH mechanism [initial-response]"

/* A read position in the line. */
struct smtp_cur {
	const char *p;
	const char *end;
};

/* A path being assembled: "local@domain". */
struct smtp_pathbuf {
	char s[SMTP_PATH_MAX + 1];
	size_t len;
};

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
    {"HELO", SMTP_CMD_HELO},
    {"EHLO", SMTP_CMD_EHLO},
    {"LHLO", SMTP_CMD_LHLO},
    {"MAIL", SMTP_CMD_MAIL},
    {"RCPT", SMTP_CMD_RCPT},
    {"DATA", SMTP_CMD_DATA},
    {"BDAT", SMTP_CMD_BDAT},
    {"RSET", SMTP_CMD_RSET},
    {"NOOP", SMTP_CMD_NOOP},
    {"QUIT", SMTP_CMD_QUIT},
    {"VRFY", SMTP_CMD_VRFY},
    {"EXPN", SMTP_CMD_EXPN},
    {"HELP", SMTP_CMD_HELP},
    {"STARTTLS", SMTP_CMD_STARTTLS},
    {"AUTH", SMTP_CMD_AUTH},
};

/* The length of the UTF-8 sequence at s, or 0 when it is malformed. */
static size_t
smtp_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (len < n)
		return 0;
	/* The second byte's range rules out overlongs and surrogates. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

int
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = smtp_utf8_seq(s + i, len - i);

		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

void
smtp_cmd_clear(struct smtp_cmd *cmd)
{
	free(cmd->arg);
	free(cmd->initial);
	free(cmd->path);
	memset(cmd, 0, sizeof(*cmd));
}

static int
smtp_fail(struct smtp_cmd *cmd, const char *error)
{
	cmd->error = error;
	return -1;
}

static void
smtp_skip_sp(struct smtp_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* Consumes the ASCII word w (case-insensitive) if the input starts so. */
static int
smtp_take_word(struct smtp_cur *c, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, w, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

static int
smtp_path_add(struct smtp_pathbuf *pb, const char *s, size_t n)
{
	if (pb->len + n > SMTP_PATH_MAX)
		return -1;
	memcpy(pb->s + pb->len, s, n);
	pb->len += n;
	pb->s[pb->len] = '\0';
	return 0;
}

/* RFC 5322 atext, widened by RFC 6531 to any non-ASCII byte. */
static int
smtp_is_atext(unsigned char c)
{
	return isalnum(c) || c >= 0x80 ||
	    (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
smtp_is_letdig(unsigned char c)
{
	return (c < 0x80 && isalnum(c)) || c >= 0x80;
}

/*
 * Domain = sub-domain *("." sub-domain); a sub-domain starts and ends with
 * a letter or digit and may hold hyphens; non-ASCII bytes count as letters
 * (U-labels, RFC 6531 section 3.3).
 */
static int
smtp_parse_domain(struct smtp_cur *c, struct smtp_pathbuf *pb)
{
	const char *start = c->p;

	for (;;) {
		const char *label = c->p;

		while (c->p < c->end &&
		    (smtp_is_letdig((unsigned char)*c->p) || *c->p == '-'))
			c->p++;
		if (c->p == label || *label == '-' || c->p[-1] == '-')
			return -1;
		if (c->p < c->end && *c->p == '.' && c->p + 1 < c->end) {
			c->p++;
			continue;
		}
		break;
	}
	if ((size_t)(c->p - start) > SMTP_DOMAIN_MAX)
		return -1;
	return smtp_path_add(pb, start, (size_t)(c->p - start));
}

/* The part of an address literal between the brackets. */
static int
smtp_literal_valid(const char *s, size_t n)
{
	char tmp[64];
	unsigned char addr[16];
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1;
	if (isdigit((unsigned char)tmp[0]) && strchr(tmp, ':') == NULL)
		return inet_pton(AF_INET, tmp, addr) == 1;
	/* General-address-literal: Standardized-tag ":" 1*dcontent. */
	for (i = 0; i < n && (isalnum((unsigned char)s[i]) || s[i] == '-'); i++)
		;
	if (i == 0 || i >= n - 1 || s[i] != ':' || s[i - 1] == '-')
		return 0;
	for (i++; i < n; i++)
		if (s[i] < 33 || s[i] > 126 || s[i] == '[' || s[i] == '\\' ||
		    s[i] == ']')
			return 0;
	return 1;
}

static int
smtp_parse_literal(struct smtp_cur *c, struct smtp_pathbuf *pb)
{
	const char *start = c->p;
	const char *close = memchr(start, ']', (size_t)(c->end - start));

	if (close == NULL ||
	    !smtp_literal_valid(start + 1, (size_t)(close - start - 1)))
		return -1;
	c->p = close + 1;
	return smtp_path_add(pb, start, (size_t)(c->p - start));
}

/* Whether s (n bytes) is a Dot-string: atoms separated by single dots. */
static int
smtp_is_dot_string(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' ? s[i + 1] == '.' : !smtp_is_atext(s[i]))
			return 0;
	}
	return 1;
}

/*
 * Quoted-string = DQUOTE *(qtextSMTP / "\" %d32-126) DQUOTE. When its
 * content is a plain Dot-string it is stored without quotes, since the two
 * forms name the same mailbox (RFC 5321 section 4.1.2).
 */
static int
smtp_parse_quoted(struct smtp_cur *c, struct smtp_pathbuf *pb)
{
	char raw[SMTP_PATH_MAX + 1];
	size_t rawlen = 0;
	const char *start = c->p++;

	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p;

		if (ch == '\\') {
			if (++c->p == c->end || *c->p < 32 || *c->p > 126)
				return -1;
			ch = (unsigned char)*c->p;
		} else if (ch < 32 || ch == 127) {
			return -1;
		}
		if (rawlen == SMTP_PATH_MAX)
			return -1;
		raw[rawlen++] = (char)ch;
		c->p++;
	}
	if (c->p == c->end)
		return -1;
	c->p++;
	if (smtp_is_dot_string(raw, rawlen))
		return rawlen > SMTP_LOCAL_PART_MAX ?
		    -1 :
		    smtp_path_add(pb, raw, rawlen);
	if ((size_t)(c->p - start) - 2 > SMTP_LOCAL_PART_MAX)
		return -1;
	return smtp_path_add(pb, start, (size_t)(c->p - start));
}

static int
smtp_parse_local(struct smtp_cur *c, struct smtp_pathbuf *pb)
{
	const char *start = c->p;

	if (c->p < c->end && *c->p == '"')
		return smtp_parse_quoted(c, pb);
	while (c->p < c->end &&
	    (smtp_is_atext((unsigned char)*c->p) || *c->p == '.'))
		c->p++;
	if (!smtp_is_dot_string(start, (size_t)(c->p - start)) ||
	    (size_t)(c->p - start) > SMTP_LOCAL_PART_MAX)
		return -1;
	return smtp_path_add(pb, start, (size_t)(c->p - start));
}

/* A-d-l = At-domain *("," At-domain) ":"; accepted and ignored. */
static int
smtp_skip_route(struct smtp_cur *c)
{
	struct smtp_pathbuf ignored;

	if (c->p == c->end || *c->p != '@')
		return 0;
	for (;;) {
		ignored.len = 0;
		if (c->p == c->end || *c->p++ != '@' ||
		    smtp_parse_domain(c, &ignored) < 0 || c->p == c->end)
			return -1;
		if (*c->p == ':') {
			c->p++;
			return 0;
		}
		if (*c->p++ != ',')
			return -1;
	}
}

/*
 * Path = "<" [A-d-l ":"] Mailbox ">", or "<>" when null is allowed, or
 * "<Postmaster>" when postmaster is allowed. Sets cmd->path.
 */
static int
smtp_parse_path(struct smtp_cur *c, struct smtp_cmd *cmd, int null_ok,
    int postmaster_ok)
{
	struct smtp_pathbuf pb = {.len = 0};
	const char *start;

	if (c->p == c->end || *c->p++ != '<')
		return -1;
	start = c->p;
	if (null_ok && c->p < c->end && *c->p == '>') {
		c->p++;
		cmd->path = xstrdup("");
		return 0;
	}
	if (postmaster_ok && smtp_take_word(c, "postmaster>")) {
		cmd->path = xstrdup("postmaster");
		return 0;
	}
	c->p = start;
	if (smtp_skip_route(c) < 0 || smtp_parse_local(c, &pb) < 0)
		return -1;
	if (c->p == c->end || *c->p++ != '@' || smtp_path_add(&pb, "@", 1) < 0)
		return -1;
	if (c->p < c->end && *c->p == '[' ? smtp_parse_literal(c, &pb) < 0 :
	                                    smtp_parse_domain(c, &pb) < 0)
		return -1;
	if (c->p == c->end || *c->p++ != '>')
		return -1;
	cmd->path = xstrndup(pb.s, pb.len);
	for (size_t i = 0; i < pb.len; i++)
		if ((unsigned char)pb.s[i] >= 0x80)
			cmd->path_utf8 = 1;
	return 0;
}

/* Parses a decimal number of at most 20 digits without overflow. */
static int
smtp_parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Applies one MAIL parameter: key (klen bytes) and value (NULL if none). */
static int
smtp_mail_param(struct smtp_cmd *cmd, const char *key, size_t klen,
    const char *val, size_t vlen)
{
	if (klen == 4 && strncasecmp(key, "SIZE", 4) == 0) {
		if (cmd->has_size)
			return smtp_fail(cmd, ERR_PARAM_DUP);
		if (val == NULL || smtp_parse_u64(val, vlen, &cmd->size) < 0)
			return smtp_fail(cmd, ERR_SIZE);
		cmd->has_size = 1;
	} else if (klen == 4 && strncasecmp(key, "BODY", 4) == 0) {
		if (cmd->body != SMTP_BODY_NONE)
			return smtp_fail(cmd, ERR_PARAM_DUP);
		if (val != NULL && vlen == 4 &&
		    strncasecmp(val, "7BIT", 4) == 0)
			cmd->body = SMTP_BODY_7BIT;
		else if (val != NULL && vlen == 8 &&
		    strncasecmp(val, "8BITMIME", 8) == 0)
			cmd->body = SMTP_BODY_8BITMIME;
		else
			return smtp_fail(cmd, ERR_BODY);
	} else if (klen == 8 && strncasecmp(key, "SMTPUTF8", 8) == 0) {
		if (cmd->smtputf8)
			return smtp_fail(cmd, ERR_PARAM_DUP);
		if (val != NULL)
			return smtp_fail(cmd, ERR_PARAM_SYNTAX);
		cmd->smtputf8 = 1;
	} else {
		return smtp_fail(cmd, ERR_PARAM);
	}
	return 0;
}

/*
 * esmtp-param *(SP esmtp-param), where esmtp-param = esmtp-keyword
 * ["=" esmtp-value]; RCPT takes none of ours, so any is unsupported there.
 */
static int
smtp_parse_params(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	while (smtp_skip_sp(c), c->p < c->end) {
		const char *key = c->p, *val = NULL;
		size_t klen, vlen = 0;

		while (c->p < c->end &&
		    (isalnum((unsigned char)*c->p) ||
		        (*c->p == '-' && c->p != key)))
			c->p++;
		klen = (size_t)(c->p - key);
		if (c->p < c->end && *c->p == '=') {
			val = ++c->p;
			while (c->p < c->end && (unsigned char)*c->p > ' ' &&
			    *c->p != '=' && *c->p != 127)
				c->p++;
			vlen = (size_t)(c->p - val);
		}
		if (klen == 0 || (val != NULL && vlen == 0) ||
		    (c->p < c->end && *c->p != ' ' && *c->p != '\t'))
			return smtp_fail(cmd, ERR_PARAM_SYNTAX);
		if (cmd->verb == SMTP_CMD_RCPT)
			return smtp_fail(cmd, ERR_PARAM);
		if (smtp_mail_param(cmd, key, klen, val, vlen) < 0)
			return -1;
	}
	return 0;
}

static int
smtp_parse_mail_rcpt(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	int mail = cmd->verb == SMTP_CMD_MAIL;

	if (c->p == c->end || *c->p++ != ' ' ||
	    !smtp_take_word(c, mail ? "FROM:" : "TO:"))
		return smtp_fail(cmd, mail ? ERR_MAIL : ERR_RCPT);
	/* RFC 5321 has no space here, but many clients send one. */
	smtp_skip_sp(c);
	if (smtp_parse_path(c, cmd, mail, !mail) < 0)
		return smtp_fail(cmd, mail ? ERR_SENDER : ERR_RECIPIENT);
	if (c->p < c->end && *c->p != ' ' && *c->p != '\t')
		return smtp_fail(cmd, mail ? ERR_SENDER : ERR_RECIPIENT);
	if (smtp_parse_params(c, cmd) < 0)
		return -1;
	if (mail && cmd->path_utf8 && !cmd->smtputf8)
		return smtp_fail(cmd, ERR_NEED_UTF8);
	return 0;
}

/* The rest of the line after one space, trailing blanks removed. */
static size_t
smtp_rest(struct smtp_cur *c, const char **out)
{
	const char *end = c->end;

	smtp_skip_sp(c);
	while (end > c->p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*out = c->p;
	return (size_t)(end - c->p);
}

static int
smtp_parse_helo(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	const char *s;
	size_t n = smtp_rest(c, &s);

	if (n == 0 || n > SMTP_HELO_MAX)
		return smtp_fail(cmd, ERR_HELO);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return smtp_fail(cmd, ERR_HELO);
	cmd->arg = xstrndup(s, n);
	return 0;
}

static int
smtp_parse_bdat(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	const char *s;
	size_t n;
	const char *sp;

	n = smtp_rest(c, &s);
	sp = memchr(s, ' ', n);
	if (sp != NULL) {
		struct smtp_cur last = {sp, s + n};

		smtp_skip_sp(&last);
		if ((size_t)(last.end - last.p) != 4 ||
		    strncasecmp(last.p, "LAST", 4) != 0)
			return smtp_fail(cmd, ERR_BDAT);
		cmd->last = 1;
		n = (size_t)(sp - s);
	}
	if (smtp_parse_u64(s, n, &cmd->size) < 0)
		return smtp_fail(cmd, ERR_BDAT);
	return 0;
}

static int
smtp_parse_auth(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	const char *s, *sp;
	size_t n = smtp_rest(c, &s), mlen;

	sp = memchr(s, ' ', n);
	mlen = sp != NULL ? (size_t)(sp - s) : n;
	if (mlen == 0 || mlen > SMTP_MECH_MAX)
		return smtp_fail(cmd, ERR_AUTH);
	for (size_t i = 0; i < mlen; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return smtp_fail(cmd, ERR_AUTH);
	cmd->arg = xstrndup(s, mlen);
	for (char *p = cmd->arg; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	if (sp != NULL) {
		struct smtp_cur ir = {sp, s + n};
		const char *v;
		size_t vlen = smtp_rest(&ir, &v);

		if (vlen == 0 || memchr(v, ' ', vlen) != NULL)
			return smtp_fail(cmd, ERR_AUTH);
		cmd->initial = xstrndup(v, vlen);
	}
	return 0;
}

static int
smtp_parse_args(struct smtp_cur *c, struct smtp_cmd *cmd)
{
	const char *s;
	size_t n;

	switch (cmd->verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
	case SMTP_CMD_LHLO:
		return smtp_parse_helo(c, cmd);
	case SMTP_CMD_MAIL:
	case SMTP_CMD_RCPT:
		return smtp_parse_mail_rcpt(c, cmd);
	case SMTP_CMD_BDAT:
		return smtp_parse_bdat(c, cmd);
	case SMTP_CMD_AUTH:
		return smtp_parse_auth(c, cmd);
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		if (smtp_rest(c, &s) != 0)
			return smtp_fail(cmd, ERR_NOARGS);
		return 0;
	case SMTP_CMD_VRFY:
	case SMTP_CMD_EXPN:
	case SMTP_CMD_NOOP:
	case SMTP_CMD_HELP:
		n = smtp_rest(c, &s);
		if (n == 0 && cmd->verb == SMTP_CMD_VRFY)
			return smtp_fail(cmd, ERR_VRFY);
		cmd->arg = xstrndup(s, n);
		return 0;
	case SMTP_CMD_UNKNOWN:
		break;
	}
	return smtp_fail(cmd, ERR_UNKNOWN);
}

static enum smtp_verb
smtp_parse_verb(struct smtp_cur *c)
{
	const char *start = c->p;
	size_t n;

	while (c->p < c->end && *c->p != ' ')
		c->p++;
	n = (size_t)(c->p - start);
	for (size_t i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]);
	     i++) {
		if (strlen(smtp_verbs[i].name) == n &&
		    strncasecmp(smtp_verbs[i].name, start, n) == 0)
			return smtp_verbs[i].verb;
	}
	return SMTP_CMD_UNKNOWN;
}

int
smtp_parse(const char *line, size_t len, struct smtp_cmd *cmd)
{
	struct smtp_cur c = {line, line + len};
	int addr;

	memset(cmd, 0, sizeof(*cmd));
	/* Tolerate a stray CR left by a bare-CR line end. */
	while (c.end > c.p && c.end[-1] == '\r')
		c.end--;
	cmd->verb = smtp_parse_verb(&c);
	if (cmd->verb == SMTP_CMD_UNKNOWN)
		return smtp_fail(cmd, ERR_UNKNOWN);
	addr = cmd->verb == SMTP_CMD_MAIL || cmd->verb == SMTP_CMD_RCPT;
	if (memchr(line, '\0', len) != NULL)
		return smtp_fail(cmd, ERR_NUL);
	if (!smtp_utf8_valid((const unsigned char *)line, len))
		return smtp_fail(cmd, addr ? ERR_UTF8_ADDR : ERR_UTF8);
	if (smtp_parse_args(&c, cmd) < 0) {
		const char *error = cmd->error;
		enum smtp_verb verb = cmd->verb;

		smtp_cmd_clear(cmd);
		cmd->verb = verb;
		cmd->error = error;
		return -1;
	}
	return 0;
}

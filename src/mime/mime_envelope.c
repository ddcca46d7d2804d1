/*
 * The IMAP ENVELOPE (RFC 3501 section 7.4.2) of a header: the ten fields as
 * nstrings and address lists, parsed from RFC 5322 section 3.4 syntax (with
 * groups and the obsolete route of section 4.4), strings kept undecoded.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mime/mime.h"

/* Dovecot's placeholders for the parts an address is missing. */
#define MIME_ENVELOPE_NO_MAILBOX "MISSING_MAILBOX"
#define MIME_ENVELOPE_NO_DOMAIN "MISSING_DOMAIN"

enum mime_envelope_tok {
	MIME_TOK_ATOM,
	MIME_TOK_QUOTED,  /* s is the content between the quotes */
	MIME_TOK_COMMENT, /* s is the content between the parentheses */
	MIME_TOK_LITERAL, /* a domain literal, brackets included */
	MIME_TOK_SPECIAL, /* one of < > @ , ; : */
};

struct mime_envelope_token {
	enum mime_envelope_tok type;
	const char *s;
	size_t len;
};

struct mime_envelope_tokens {
	struct mime_envelope_token *v;
	size_t n;
};

/* Returns the length of the quoted string, comment or literal at s. */
static size_t
mime_envelope_span(const char *s, size_t len, char open, char close)
{
	size_t i;
	int depth = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len)
			i++;
		else if (s[i] == open && (open != close || i == 0))
			depth++;
		else if (s[i] == close && --depth == 0)
			return i + 1;
	}
	return len;
}

static int
mime_envelope_is_special(char c)
{
	return c != '\0' && strchr("<>@,;:()\"[]", c) != NULL;
}

static void
mime_envelope_push(struct mime_envelope_tokens *t, enum mime_envelope_tok type,
    const char *s, size_t len)
{
	t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
	t->v[t->n].type = type;
	t->v[t->n].s = s;
	t->v[t->n].len = len;
	t->n++;
}

/* Takes the value apart into RFC 5322 lexical tokens. */
static void
mime_envelope_lex(const char *s, size_t len, struct mime_envelope_tokens *t)
{
	size_t i = 0, n;

	while (i < len) {
		char c = s[i];

		if (isspace((unsigned char)c)) {
			i++;
		} else if (c == '"' || c == '(') {
			n = mime_envelope_span(s + i, len - i, c,
			    c == '"' ? '"' : ')');
			mime_envelope_push(t,
			    c == '"' ? MIME_TOK_QUOTED : MIME_TOK_COMMENT,
			    s + i + 1,
			    n >= 2 && s[i + n - 1] == (c == '"' ? '"' : ')') ?
			        n - 2 :
			        n - 1);
			i += n;
		} else if (c == '[') {
			n = mime_envelope_span(s + i, len - i, '[', ']');
			mime_envelope_push(t, MIME_TOK_LITERAL, s + i, n);
			i += n;
		} else if (mime_envelope_is_special(c)) {
			mime_envelope_push(t, MIME_TOK_SPECIAL, s + i, 1);
			i++;
		} else {
			for (n = i; n < len && !isspace((unsigned char)s[n]) &&
			     !mime_envelope_is_special(s[n]);
			     n++)
				;
			mime_envelope_push(t, MIME_TOK_ATOM, s + i, n - i);
			i = n;
		}
	}
}

/* One address being put together from its tokens. */
struct mime_envelope_addr {
	struct mime_buf name;
	struct mime_buf route;
	struct mime_buf mailbox;
	struct mime_buf host;
	const struct mime_envelope_token *comment;
};

static int
mime_envelope_is(const struct mime_envelope_token *tok, char c)
{
	return tok->type == MIME_TOK_SPECIAL && tok->s[0] == c;
}

/* Appends a display-name word: quoted strings lose quotes and escapes. */
static void
mime_envelope_add_word(struct mime_buf *name,
    const struct mime_envelope_token *tok)
{
	size_t i;

	if (name->len > 0)
		mime_buf_addc(name, ' ');
	if (tok->type != MIME_TOK_QUOTED) {
		mime_buf_add(name, tok->s, tok->len);
		return;
	}
	for (i = 0; i < tok->len; i++) {
		if (tok->s[i] == '\\' && i + 1 < tok->len)
			i++;
		mime_buf_addc(name, tok->s[i]);
	}
}

/* Appends a token of an addr-spec or route as it was written. */
static void
mime_envelope_add_raw(struct mime_buf *buf,
    const struct mime_envelope_token *tok)
{
	if (tok->type == MIME_TOK_QUOTED)
		mime_buf_addc(buf, '"');
	mime_buf_add(buf, tok->s, tok->len);
	if (tok->type == MIME_TOK_QUOTED)
		mime_buf_addc(buf, '"');
}

static void
mime_envelope_phrase(struct mime_envelope_addr *a,
    const struct mime_envelope_token *v, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++) {
		if (v[i].type == MIME_TOK_COMMENT)
			a->comment = &v[i];
		else if (v[i].type != MIME_TOK_SPECIAL)
			mime_envelope_add_word(&a->name, &v[i]);
	}
}

/* Reads local-part "@" domain from tokens from..to (exclusive). */
static void
mime_envelope_spec(struct mime_envelope_addr *a,
    const struct mime_envelope_token *v, size_t from, size_t to)
{
	struct mime_buf *part = &a->mailbox;
	size_t i;

	for (i = from; i < to; i++) {
		if (v[i].type == MIME_TOK_COMMENT)
			a->comment = &v[i];
		else if (mime_envelope_is(&v[i], '@') && part == &a->mailbox)
			part = &a->host;
		else if (v[i].type != MIME_TOK_SPECIAL)
			mime_envelope_add_raw(part, &v[i]);
	}
}

static void
mime_envelope_add_spec(struct mime_buf *specs, const char *mailbox,
    const char *host)
{
	size_t start = specs->len, i;

	if (start > 0)
		mime_buf_addc(specs, ',');
	mime_buf_adds(specs, mailbox);
	if (host != NULL)
		mime_buf_printf(specs, "@%s", host);
	for (i = start; i < specs->len; i++)
		specs->data[i] = (char)tolower((unsigned char)specs->data[i]);
}

static void
mime_envelope_reset(struct mime_envelope_addr *a)
{
	free(a->name.data);
	free(a->route.data);
	free(a->mailbox.data);
	free(a->host.data);
	memset(a, 0, sizeof(*a));
}

/* Writes the address (if it holds anything) and resets it. */
static int
mime_envelope_emit(struct mime_envelope_addr *a, struct mime_buf *out,
    struct mime_buf *specs)
{
	int written = 0;

	if (a->name.len == 0 && a->comment != NULL)
		mime_buf_add(&a->name, a->comment->s, a->comment->len);
	if (a->mailbox.len > 0 || a->host.len > 0 || a->name.len > 0) {
		mime_buf_addc(out, '(');
		mime_buf_add_nstring(out, a->name.len ? a->name.data : NULL);
		mime_buf_addc(out, ' ');
		mime_buf_add_nstring(out, a->route.len ? a->route.data : NULL);
		mime_buf_addc(out, ' ');
		mime_buf_add_nstring(out,
		    a->mailbox.len ? a->mailbox.data :
		                     MIME_ENVELOPE_NO_MAILBOX);
		mime_buf_addc(out, ' ');
		mime_buf_add_nstring(out,
		    a->host.len ? a->host.data : MIME_ENVELOPE_NO_DOMAIN);
		mime_buf_addc(out, ')');
		if (specs != NULL)
			mime_envelope_add_spec(specs,
			    a->mailbox.len ? a->mailbox.data : "",
			    a->host.len ? a->host.data : NULL);
		written = 1;
	}
	mime_envelope_reset(a);
	return written;
}

/*
 * Returns the index of the first "," ";" ":" or "<" at or after i, setting
 * *at if an "@" comes before it.
 */
static size_t
mime_envelope_stop(const struct mime_envelope_tokens *t, size_t i, int *at)
{
	*at = 0;
	for (; i < t->n; i++) {
		if (t->v[i].type != MIME_TOK_SPECIAL)
			continue;
		if (strchr(",;:<", t->v[i].s[0]) != NULL)
			break;
		if (t->v[i].s[0] == '@')
			*at = 1;
	}
	return i;
}

/*
 * Reads "<[route:]addr-spec>" from the token after "<"; returns the index
 * of the next "," or ";" (or the end), taking a trailing comment as the
 * name if there is none.
 */
static size_t
mime_envelope_angle(const struct mime_envelope_tokens *t, size_t i,
    struct mime_envelope_addr *a)
{
	size_t end;

	if (i < t->n && mime_envelope_is(&t->v[i], '@')) {
		for (; i < t->n && !mime_envelope_is(&t->v[i], ':') &&
		     !mime_envelope_is(&t->v[i], '>');
		     i++)
			mime_envelope_add_raw(&a->route, &t->v[i]);
		if (i < t->n && mime_envelope_is(&t->v[i], ':'))
			i++;
	}
	for (end = i; end < t->n && !mime_envelope_is(&t->v[end], '>'); end++)
		;
	mime_envelope_spec(a, t->v, i, end);
	for (; end < t->n && !mime_envelope_is(&t->v[end], ',') &&
	     !mime_envelope_is(&t->v[end], ';');
	     end++) {
		if (t->v[end].type == MIME_TOK_COMMENT)
			a->comment = &t->v[end];
	}
	return end;
}

/* Writes the addresses and group markers of the token list to out. */
static int
mime_envelope_list(const struct mime_envelope_tokens *t, struct mime_buf *out,
    struct mime_buf *specs)
{
	struct mime_envelope_addr a = {0};
	size_t i = 0, k;
	int count = 0, in_group = 0, at;

	while (i < t->n) {
		if (mime_envelope_is(&t->v[i], ',')) {
			i++;
			continue;
		}
		if (mime_envelope_is(&t->v[i], ';')) {
			if (in_group)
				mime_buf_adds(out, "(NIL NIL NIL NIL)");
			count += in_group;
			in_group = 0;
			i++;
			continue;
		}
		k = mime_envelope_stop(t, i, &at);
		if (k < t->n && mime_envelope_is(&t->v[k], ':') && !at &&
		    !in_group) {
			mime_envelope_phrase(&a, t->v, i, k);
			mime_buf_adds(out, "(NIL NIL ");
			mime_buf_add_string(out, a.name.data ? a.name.data : "",
			    a.name.len);
			mime_buf_adds(out, " NIL)");
			mime_envelope_reset(&a);
			count++;
			in_group = 1;
			i = k + 1;
			continue;
		}
		if (k < t->n && mime_envelope_is(&t->v[k], '<')) {
			mime_envelope_phrase(&a, t->v, i, k);
			i = mime_envelope_angle(t, k + 1, &a);
		} else {
			mime_envelope_spec(&a, t->v, i, k);
			i = k > i ? k : i + 1;
		}
		count += mime_envelope_emit(&a, out, specs);
	}
	if (in_group) {
		mime_buf_adds(out, "(NIL NIL NIL NIL)");
		count++;
	}
	return count;
}

int
mime_envelope_addresses(const char *value, size_t len, struct mime_buf *env,
    struct mime_buf *specs)
{
	struct mime_envelope_tokens t = {0};
	struct mime_buf list = {0};
	int count;

	mime_envelope_lex(value, len, &t);
	count = mime_envelope_list(&t, &list, specs);
	if (count == 0) {
		mime_buf_adds(env, "NIL");
	} else {
		mime_buf_addc(env, '(');
		mime_buf_add(env, list.data, list.len);
		mime_buf_addc(env, ')');
	}
	free(list.data);
	free(t.v);
	return count;
}

enum mime_envelope_field {
	MIME_ENV_DATE,
	MIME_ENV_SUBJECT,
	MIME_ENV_FROM,
	MIME_ENV_SENDER,
	MIME_ENV_REPLY_TO,
	MIME_ENV_TO,
	MIME_ENV_CC,
	MIME_ENV_BCC,
	MIME_ENV_IN_REPLY_TO,
	MIME_ENV_MESSAGE_ID,
	MIME_ENV_COUNT,
};

static const char *const mime_envelope_names[MIME_ENV_COUNT] = {"date",
    "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
    "message-id"};

/* Finds the first occurrence of each envelope field in the header. */
static void
mime_envelope_fields(const char *hdr, size_t len,
    struct mime_header_field *fields, int *present)
{
	struct mime_header_field f;
	size_t pos = 0;
	int i;

	memset(present, 0, MIME_ENV_COUNT * sizeof(*present));
	while (mime_header_next(hdr, len, &pos, &f)) {
		for (i = 0; i < MIME_ENV_COUNT; i++) {
			if (!present[i] &&
			    strlen(mime_envelope_names[i]) == f.name_len &&
			    strncasecmp(f.name, mime_envelope_names[i],
			        f.name_len) == 0) {
				fields[i] = f;
				present[i] = 1;
			}
		}
	}
}

static void
mime_envelope_nstring(struct mime_buf *env, const struct mime_header_field *f,
    int present)
{
	char *v;

	if (!present) {
		mime_buf_adds(env, "NIL");
		return;
	}
	v = mime_header_unfold(f->value, f->value_len);
	mime_buf_add_string(env, v, strlen(v));
	free(v);
}

/* Writes an address field into its own buffer; returns the count. */
static int
mime_envelope_addr_field(struct mime_buf *out,
    const struct mime_header_field *f, int present)
{
	if (!present) {
		mime_buf_adds(out, "NIL");
		return 0;
	}
	return mime_envelope_addresses(f->value, f->value_len, out, NULL);
}

void
mime_envelope_build(const char *hdr, size_t len, struct mime_buf *env)
{
	struct mime_header_field fields[MIME_ENV_COUNT];
	struct mime_buf from = {0}, addr = {0};
	int present[MIME_ENV_COUNT], i;

	mime_envelope_fields(hdr, len, fields, present);
	mime_buf_addc(env, '(');
	mime_envelope_nstring(env, &fields[MIME_ENV_DATE], present[0]);
	mime_buf_addc(env, ' ');
	mime_envelope_nstring(env, &fields[MIME_ENV_SUBJECT], present[1]);
	mime_envelope_addr_field(&from, &fields[MIME_ENV_FROM], present[2]);
	for (i = MIME_ENV_FROM; i <= MIME_ENV_BCC; i++) {
		mime_buf_addc(env, ' ');
		addr.len = 0;
		if (i == MIME_ENV_FROM ||
		    (mime_envelope_addr_field(&addr, &fields[i], present[i]) ==
		            0 &&
		        (i == MIME_ENV_SENDER || i == MIME_ENV_REPLY_TO)))
			mime_buf_add(env, from.data, from.len);
		else
			mime_buf_add(env, addr.data, addr.len);
	}
	for (i = MIME_ENV_IN_REPLY_TO; i <= MIME_ENV_MESSAGE_ID; i++) {
		mime_buf_addc(env, ' ');
		mime_envelope_nstring(env, &fields[i], present[i]);
	}
	mime_buf_addc(env, ')');
	free(from.data);
	free(addr.data);
}

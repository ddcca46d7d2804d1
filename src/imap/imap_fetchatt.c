/*
 * FETCH attribute parsing: fetch-att, section, section-binary and partial
 * of RFC 9051 section 9 (RFC 3516 BINARY), and the fetch modifiers of
 * RFC 7162 (CHANGEDSINCE, VANISHED).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mime/mime.h"
#include "imap/imap_fetchatt.h"

struct fetch_simple {
	const char *name;
	unsigned flags;
};

static const struct fetch_simple fetch_simple[] = {
    {"FLAGS", IMAP_FETCH_FLAGS},
    {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
    {"ENVELOPE", IMAP_FETCH_ENVELOPE},
    {"BODY", IMAP_FETCH_BODY},
    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
    {"UID", IMAP_FETCH_UID},
    {"MODSEQ", IMAP_FETCH_MODSEQ},
    {"RFC822", IMAP_FETCH_RFC822},
    {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER},
    {"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT},
};

#define FETCH_FAST \
	(IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE)
#define FETCH_ALL (FETCH_FAST | IMAP_FETCH_ENVELOPE)
#define FETCH_FULL (FETCH_ALL | IMAP_FETCH_BODY)

/* A cursor over the text of one fetch-att atom. */
struct fcur {
	const char *s;
	size_t len;
	size_t i;
};

/* Takes word (case-insensitive) at the cursor if it is there. */
static int
fcur_word(struct fcur *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->i < n || strncasecmp(c->s + c->i, word, n) != 0)
		return 0;
	c->i += n;
	return 1;
}

static int
fcur_char(struct fcur *c, char ch)
{
	if (c->i < c->len && c->s[c->i] == ch) {
		c->i++;
		return 1;
	}
	return 0;
}

/* number64 (nz: no zero value) at the cursor. */
static int
fcur_number(struct fcur *c, int nz, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = c->i;

	while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		v = v * 10 + (uint64_t)(c->s[c->i++] - '0');
		if (v > max)
			return -1;
	}
	if (c->i == start || (nz && v == 0))
		return -1;
	*out = v;
	return 0;
}

/* RFC 5322 ftext: a header field name may use these. */
static int
is_ftext(unsigned char ch)
{
	return ch >= 33 && ch <= 126 && ch != ':';
}

/* One header-fld-name: an atom or a quoted string inside the brackets. */
static int
fcur_field(struct fcur *c, struct mime_buf *b)
{
	int quoted = fcur_char(c, '"');
	size_t start = b->len;

	while (c->i < c->len) {
		unsigned char ch = (unsigned char)c->s[c->i];

		if (!quoted && (ch == ' ' || ch == ')'))
			break;
		c->i++;
		if (quoted && ch == '"') {
			quoted = 0;
			break;
		}
		if (quoted && ch == '\\' && c->i < c->len)
			ch = (unsigned char)c->s[c->i++];
		if (!is_ftext(ch))
			return -1;
		mime_buf_addc(b, (char)ch);
	}
	return quoted || b->len == start ? -1 : 0;
}

/* " (" header-list ")" after HEADER.FIELDS[.NOT]. */
static int
fetch_header_list(struct fcur *c, struct imap_fetch_section *sec)
{
	struct mime_buf b = {0};

	if (!fcur_char(c, ' ') || !fcur_char(c, '('))
		return -1;
	do {
		if (fcur_field(c, &b) < 0) {
			free(b.data);
			return -1;
		}
		sec->fields = xreallocarray(sec->fields, sec->nfields + 1,
		    sizeof(*sec->fields));
		sec->fields[sec->nfields++] = mime_buf_finish(&b);
	} while (fcur_char(c, ' '));
	return fcur_char(c, ')') ? 0 : -1;
}

/* section-msgtext, or MIME when allowed (after a part number). */
static int
fetch_section_text(struct fcur *c, struct imap_fetch_section *sec, int mime)
{
	if (fcur_word(c, "HEADER.FIELDS.NOT")) {
		sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
		return fetch_header_list(c, sec);
	}
	if (fcur_word(c, "HEADER.FIELDS")) {
		sec->text = IMAP_SECTION_HEADER_FIELDS;
		return fetch_header_list(c, sec);
	}
	if (fcur_word(c, "HEADER"))
		sec->text = IMAP_SECTION_HEADER;
	else if (fcur_word(c, "TEXT"))
		sec->text = IMAP_SECTION_TEXT;
	else if (mime && fcur_word(c, "MIME"))
		sec->text = IMAP_SECTION_MIME;
	else
		return -1;
	return 0;
}

/* The inside of "[...]"; binary allows only a part path. */
static int
fetch_section(struct fcur *c, struct imap_fetch_section *sec, int binary)
{
	uint64_t v;

	if (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		do {
			if (sec->nparts == IMAP_SECTION_MAX_PARTS ||
			    c->s[c->i] == '0' ||
			    fcur_number(c, 1, UINT32_MAX, &v) < 0)
				return -1;
			sec->parts[sec->nparts++] = (uint32_t)v;
		} while (fcur_char(c, '.') && c->i < c->len &&
		    c->s[c->i] >= '0' && c->s[c->i] <= '9');
		/* A "." that was not followed by a digit introduces text. */
		if (c->s[c->i - 1] == '.')
			return binary ? -1 : fetch_section_text(c, sec, 1);
		return 0;
	}
	if (binary || (c->i < c->len && c->s[c->i] == ']'))
		return 0;
	return fetch_section_text(c, sec, 0);
}

/* Writes a field name as an atom if it is one, else quoted. */
static void
fetch_name_field(struct mime_buf *b, const char *f)
{
	size_t i;

	for (i = 0; f[i] != '\0'; i++)
		if (strchr("(){%*\"\\]", f[i]) != NULL)
			break;
	if (f[i] == '\0')
		mime_buf_adds(b, f);
	else
		mime_buf_add_string(b, f, strlen(f));
}

static const char *const section_words[] = {
    "",
    "HEADER",
    "HEADER.FIELDS",
    "HEADER.FIELDS.NOT",
    "TEXT",
    "MIME",
};

/* Builds sec->name, the item name for the FETCH response. */
static void
fetch_section_name(struct imap_fetch_section *sec)
{
	static const char *const kinds[] = {"BODY[", "BINARY[", "BINARY.SIZE["};
	struct mime_buf b = {0};
	size_t i;

	mime_buf_adds(&b, kinds[sec->kind]);
	for (i = 0; i < sec->nparts; i++)
		mime_buf_printf(&b, "%s%u", i ? "." : "", sec->parts[i]);
	if (sec->nparts > 0 && sec->text != IMAP_SECTION_ALL)
		mime_buf_addc(&b, '.');
	mime_buf_adds(&b, section_words[sec->text]);
	for (i = 0; i < sec->nfields; i++) {
		mime_buf_adds(&b, i ? " " : " (");
		fetch_name_field(&b, sec->fields[i]);
	}
	if (sec->nfields > 0)
		mime_buf_addc(&b, ')');
	mime_buf_addc(&b, ']');
	if (sec->partial)
		mime_buf_printf(&b, "<%llu>", (unsigned long long)sec->origin);
	sec->name = mime_buf_finish(&b);
}

static void
fetch_section_clear(struct imap_fetch_section *sec)
{
	size_t i;

	for (i = 0; i < sec->nfields; i++)
		free(sec->fields[i]);
	free(sec->fields);
	free(sec->name);
}

/* The item kind before "[": BODY, BODY.PEEK, BINARY, ... */
static int
fetch_kind(struct fcur *c, struct imap_fetch_section *sec)
{
	if (fcur_word(c, "BODY.PEEK["))
		sec->peek = 1;
	else if (fcur_word(c, "BINARY.PEEK["))
		sec->peek = 1, sec->kind = IMAP_FETCH_KIND_BINARY;
	else if (fcur_word(c, "BINARY.SIZE["))
		sec->kind = IMAP_FETCH_KIND_BINARY_SIZE;
	else if (fcur_word(c, "BINARY["))
		sec->kind = IMAP_FETCH_KIND_BINARY;
	else if (!fcur_word(c, "BODY["))
		return -1;
	return 0;
}

/* A fetch-att with a section, the whole atom. */
static int
fetch_section_att(const char *s, size_t len, struct imap_fetch_section *sec)
{
	struct fcur c = {s, len, 0};

	memset(sec, 0, sizeof(*sec));
	if (fetch_kind(&c, sec) < 0 ||
	    fetch_section(&c, sec, sec->kind != IMAP_FETCH_KIND_BODY) < 0 ||
	    !fcur_char(&c, ']'))
		goto fail;
	if (sec->kind != IMAP_FETCH_KIND_BINARY_SIZE && fcur_char(&c, '<')) {
		sec->partial = 1;
		if (fcur_number(&c, 0, INT64_MAX, &sec->origin) < 0 ||
		    !fcur_char(&c, '.') ||
		    fcur_number(&c, 1, INT64_MAX, &sec->length) < 0 ||
		    !fcur_char(&c, '>'))
			goto fail;
	}
	if (c.i != c.len)
		goto fail;
	fetch_section_name(sec);
	return 0;
fail:
	fetch_section_clear(sec);
	return -1;
}

/* One fetch-att (not a macro) into out. */
static int
fetch_att(const struct imap_arg *arg, struct imap_fetchatt *out)
{
	struct imap_fetch_section sec;
	size_t i;

	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	for (i = 0; i < sizeof(fetch_simple) / sizeof(fetch_simple[0]); i++) {
		if (strcasecmp(arg->str, fetch_simple[i].name) == 0) {
			out->flags |= fetch_simple[i].flags;
			return 0;
		}
	}
	if (fetch_section_att(arg->str, arg->len, &sec) < 0)
		return -1;
	out->sections = xreallocarray(out->sections, out->nsections + 1,
	    sizeof(*out->sections));
	out->sections[out->nsections++] = sec;
	return 0;
}

/* mod-sequence-value: a positive 63-bit number (RFC 7162 section 7). */
static int
fetch_modseq(const struct imap_arg *arg, uint64_t *out)
{
	struct fcur c;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return -1;
	c = (struct fcur){arg->str, arg->len, 0};
	return fcur_number(&c, 1, INT64_MAX, out) < 0 || c.i != c.len ? -1 : 0;
}

/* The fetch-modifier list: "(" fetch-modifier *(SP fetch-modifier) ")". */
static int
fetch_modifiers(const struct imap_arg *arg, struct imap_fetchatt *out,
    const char **error)
{
	size_t i;

	*error = "Invalid FETCH modifier";
	if (arg->type != IMAP_ARG_LIST || arg->count == 0)
		return -1;
	for (i = 0; i < arg->count; i++) {
		if (imap_arg_atom_is(&arg->list[i], "CHANGEDSINCE") &&
		    !out->changedsince && i + 1 < arg->count) {
			if (fetch_modseq(&arg->list[++i], &out->modseq) < 0)
				return -1;
			out->changedsince = 1;
			out->flags |= IMAP_FETCH_MODSEQ;
		} else if (imap_arg_atom_is(&arg->list[i], "VANISHED") &&
		    !out->vanished) {
			out->vanished = 1;
		} else {
			return -1;
		}
	}
	*error = "VANISHED needs CHANGEDSINCE";
	return out->vanished && !out->changedsince ? -1 : 0;
}

/* The attribute argument: a macro, one fetch-att or a list of them. */
static int
fetch_atts(const struct imap_arg *arg, struct imap_fetchatt *out)
{
	size_t i;

	if (imap_arg_atom_is(arg, "ALL"))
		out->flags = FETCH_ALL;
	else if (imap_arg_atom_is(arg, "FAST"))
		out->flags = FETCH_FAST;
	else if (imap_arg_atom_is(arg, "FULL"))
		out->flags = FETCH_FULL;
	else if (arg->type != IMAP_ARG_LIST)
		return fetch_att(arg, out);
	else if (arg->count == 0)
		return -1;
	for (i = 0; arg->type == IMAP_ARG_LIST && i < arg->count; i++)
		if (fetch_att(&arg->list[i], out) < 0)
			return -1;
	return 0;
}

int
imap_fetchatt_parse(const struct imap_arg *args, size_t nargs,
    struct imap_fetchatt *out, const char **error)
{
	memset(out, 0, sizeof(*out));
	*error = "Invalid FETCH attribute";
	if (nargs < 1 || nargs > 2 || fetch_atts(&args[0], out) < 0)
		goto fail;
	if (nargs == 2 && fetch_modifiers(&args[1], out, error) < 0)
		goto fail;
	return 0;
fail:
	imap_fetchatt_clear(out);
	return -1;
}

void
imap_fetchatt_clear(struct imap_fetchatt *out)
{
	size_t i;

	for (i = 0; i < out->nsections; i++)
		fetch_section_clear(&out->sections[i]);
	free(out->sections);
	memset(out, 0, sizeof(*out));
}

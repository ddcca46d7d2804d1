/*
 * The MIME tree of a message (RFC 2045 section 5, RFC 2046 section 5) walked
 * once at delivery: BODY and BODYSTRUCTURE as RFC 3501 section 7.4.2 formats
 * them, and the part map BODY[section] (RFC 3501 section 6.4.5) is served from.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mime/mime.h"

/* Beyond these, the rest of a message is described as one opaque part. */
#define MIME_MAX_DEPTH 32
#define MIME_MAX_PARTS 10000

/* Section paths are at most MIME_MAX_DEPTH numbers of five digits. */
#define MIME_SECTION_MAX (MIME_MAX_DEPTH * 8 + 8)

struct mime_ctx {
	const char *msg;
	struct mime_buf body; /* BODY */
	struct mime_buf bs;   /* BODYSTRUCTURE */
	struct mime_buf map;
	unsigned parts;
};

/* The Content-* fields of one part. */
struct mime_part_info {
	char *type; /* upper case */
	char *subtype;
	struct mime_params params;
	char *id;
	char *description;
	char *encoding; /* upper case */
	char *md5;
	char *disposition; /* upper case */
	struct mime_params disposition_params;
	char *language;
	char *location;
};

static void
mime_upper(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)toupper((unsigned char)*s);
}

static void
mime_part_info_deinit(struct mime_part_info *info)
{
	free(info->type);
	free(info->subtype);
	mime_param_deinit(&info->params);
	free(info->id);
	free(info->description);
	free(info->encoding);
	free(info->md5);
	free(info->disposition);
	mime_param_deinit(&info->disposition_params);
	free(info->language);
	free(info->location);
}

/* A text part without parameters is us-ascii (RFC 2045 section 5.2). */
static void
mime_part_add_charset(struct mime_part_info *info)
{
	info->params.v = xmalloc(sizeof(*info->params.v));
	info->params.v[0].name = xstrdup("CHARSET");
	info->params.v[0].value = xstrdup("us-ascii");
	info->params.n = 1;
}

/* Sets the type RFC 2045 section 5.2 implies when there is none. */
static void
mime_part_default_type(struct mime_part_info *info, int digest)
{
	free(info->type);
	free(info->subtype);
	mime_param_deinit(&info->params);
	info->type = xstrdup(digest ? "MESSAGE" : "TEXT");
	info->subtype = xstrdup(digest ? "RFC822" : "PLAIN");
	if (!digest)
		mime_part_add_charset(info);
}

static void
mime_part_content_type(struct mime_part_info *info, const char *value)
{
	char *main_part = mime_param_parse(value, &info->params);
	char *slash = strchr(main_part, '/');

	if (slash != NULL && slash != main_part && slash[1] != '\0' &&
	    strchr(slash + 1, '/') == NULL) {
		info->subtype = xstrdup(slash + 1);
		*slash = '\0';
		info->type = xstrdup(main_part);
		mime_upper(info->type);
		mime_upper(info->subtype);
	}
	free(main_part);
}

static int
mime_field_is(const struct mime_header_field *f, const char *name)
{
	return strlen(name) == f->name_len &&
	    strncasecmp(f->name, name, f->name_len) == 0;
}

/* Keeps the first occurrence of a field: sets *slot if it is unset. */
static void
mime_field_take(char **slot, const struct mime_header_field *f)
{
	if (*slot == NULL)
		*slot = mime_header_unfold(f->value, f->value_len);
}

static void
mime_part_read_field(struct mime_part_info *info, char **content_type,
    char **disposition, const struct mime_header_field *f)
{
	if (f->name_len < 8 || strncasecmp(f->name, "content-", 8) != 0)
		return;
	if (mime_field_is(f, "content-type"))
		mime_field_take(content_type, f);
	else if (mime_field_is(f, "content-id"))
		mime_field_take(&info->id, f);
	else if (mime_field_is(f, "content-description"))
		mime_field_take(&info->description, f);
	else if (mime_field_is(f, "content-transfer-encoding"))
		mime_field_take(&info->encoding, f);
	else if (mime_field_is(f, "content-md5"))
		mime_field_take(&info->md5, f);
	else if (mime_field_is(f, "content-disposition"))
		mime_field_take(disposition, f);
	else if (mime_field_is(f, "content-language"))
		mime_field_take(&info->language, f);
	else if (mime_field_is(f, "content-location"))
		mime_field_take(&info->location, f);
}

/* Reads the MIME header of a part, filling in RFC 2045 defaults. */
static void
mime_part_read(struct mime_part_info *info, const char *hdr, size_t len,
    int digest)
{
	struct mime_header_field f;
	char *content_type = NULL, *disposition = NULL;
	size_t pos = 0;

	memset(info, 0, sizeof(*info));
	while (mime_header_next(hdr, len, &pos, &f))
		mime_part_read_field(info, &content_type, &disposition, &f);
	if (content_type != NULL)
		mime_part_content_type(info, content_type);
	if (info->type == NULL)
		mime_part_default_type(info, digest);
	else if (info->params.n == 0 && strcmp(info->type, "TEXT") == 0)
		mime_part_add_charset(info);
	if (disposition != NULL) {
		info->disposition =
		    mime_param_parse(disposition, &info->disposition_params);
		mime_upper(info->disposition);
		if (info->disposition[0] == '\0') {
			free(info->disposition);
			info->disposition = NULL;
		}
	}
	if (info->encoding == NULL || info->encoding[0] == '\0') {
		free(info->encoding);
		info->encoding = xstrdup("7BIT");
	}
	mime_upper(info->encoding);
	free(content_type);
	free(disposition);
}

static uint32_t
mime_count_lines(const char *s, size_t len)
{
	uint32_t n = 0;
	const char *end = s + len;

	while ((s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		n++;
		s++;
	}
	return n;
}

static void
mime_write_params(struct mime_buf *out, const struct mime_params *params)
{
	size_t i;

	if (params->n == 0) {
		mime_buf_adds(out, "NIL");
		return;
	}
	mime_buf_addc(out, '(');
	for (i = 0; i < params->n; i++) {
		if (i > 0)
			mime_buf_addc(out, ' ');
		mime_buf_add_nstring(out, params->v[i].name);
		mime_buf_addc(out, ' ');
		mime_buf_add_nstring(out, params->v[i].value);
	}
	mime_buf_addc(out, ')');
}

/* Writes Content-Language as a list of tags (RFC 3282), or NIL. */
static void
mime_write_language(struct mime_buf *out, const char *value)
{
	const char *p = value, *start;
	size_t n = 0;

	for (; p != NULL && *p != '\0';) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		for (start = p;
		     *p != '\0' && *p != ',' && !isspace((unsigned char)*p);
		     p++)
			;
		if (p == start)
			continue;
		mime_buf_adds(out, n++ == 0 ? "(" : " ");
		mime_buf_add_string(out, start, (size_t)(p - start));
	}
	mime_buf_adds(out, n == 0 ? "NIL" : ")");
}

/* The disposition, language and location that end every extension. */
static void
mime_write_ext_tail(struct mime_buf *out, const struct mime_part_info *info)
{
	mime_buf_addc(out, ' ');
	if (info->disposition == NULL) {
		mime_buf_adds(out, "NIL");
	} else {
		mime_buf_addc(out, '(');
		mime_buf_add_nstring(out, info->disposition);
		mime_buf_addc(out, ' ');
		mime_write_params(out, &info->disposition_params);
		mime_buf_addc(out, ')');
	}
	mime_buf_addc(out, ' ');
	mime_write_language(out, info->language);
	mime_buf_addc(out, ' ');
	mime_buf_add_nstring(out, info->location);
}

/* Writes '("TYPE" "SUBTYPE" params id description encoding size'. */
static void
mime_write_basic(struct mime_buf *out, const struct mime_part_info *info,
    size_t size)
{
	mime_buf_addc(out, '(');
	mime_buf_add_nstring(out, info->type);
	mime_buf_addc(out, ' ');
	mime_buf_add_nstring(out, info->subtype);
	mime_buf_addc(out, ' ');
	mime_write_params(out, &info->params);
	mime_buf_addc(out, ' ');
	mime_buf_add_nstring(out, info->id);
	mime_buf_addc(out, ' ');
	mime_buf_add_nstring(out, info->description);
	mime_buf_addc(out, ' ');
	mime_buf_add_nstring(out, info->encoding);
	mime_buf_printf(out, " %zu", size);
}

static void
mime_map_add(struct mime_ctx *c, const char *section, size_t hs, size_t bs,
    size_t end)
{
	mime_buf_printf(&c->map, "%s %zu %zu %zu\n", section, hs, bs, end);
}

static void
mime_section_child(char *out, const char *section, unsigned n)
{
	snprintf(out, MIME_SECTION_MAX, "%s%s%u", section,
	    section[0] != '\0' ? "." : "", n);
}

static void mime_part(struct mime_ctx *c, size_t hs, size_t bs, size_t end,
    const char *section, int message_body, int digest, unsigned depth);

/* Describes a part we do not look into as application/octet-stream. */
static void
mime_part_opaque(struct mime_part_info *info)
{
	free(info->type);
	free(info->subtype);
	mime_param_deinit(&info->params);
	info->type = xstrdup("APPLICATION");
	info->subtype = xstrdup("OCTET-STREAM");
}

/* Writes the same text to BODY and BODYSTRUCTURE. */
static void
mime_both(struct mime_ctx *c, const char *s)
{
	mime_buf_adds(&c->body, s);
	mime_buf_adds(&c->bs, s);
}

/*
 * Writes a message/rfc822 part's envelope, structure and line count
 * (RFC 3501 section 7.4.2, body-type-msg).
 */
static void
mime_leaf_message(struct mime_ctx *c, size_t hs, size_t bs, size_t end,
    const char *section, unsigned depth)
{
	size_t ihs = mime_header_size(c->msg + bs, end - bs);
	struct mime_buf env = {0};
	char lines[16];

	mime_buf_printf(&c->map, "%s %zu %zu %zu %zu\n", section, hs, bs, end,
	    bs + ihs);
	mime_envelope_build(c->msg + bs, ihs, &env);
	mime_both(c, " ");
	mime_both(c, env.data);
	mime_both(c, " ");
	free(env.data);
	mime_part(c, bs, bs + ihs, end, section, 1, 0, depth + 1);
	snprintf(lines, sizeof(lines), " %u",
	    mime_count_lines(c->msg + bs, end - bs));
	mime_both(c, lines);
}

/* Writes a part that is not multipart. */
static void
mime_leaf(struct mime_ctx *c, struct mime_part_info *info, size_t hs, size_t bs,
    size_t end, const char *section, unsigned depth)
{
	int message = strcmp(info->type, "MESSAGE") == 0 &&
	    strcmp(info->subtype, "RFC822") == 0;
	char lines[16];

	if ((message && depth >= MIME_MAX_DEPTH) ||
	    strcmp(info->type, "MULTIPART") == 0) {
		mime_part_opaque(info);
		message = 0;
	}
	mime_write_basic(&c->body, info, end - bs);
	mime_write_basic(&c->bs, info, end - bs);
	if (message) {
		mime_leaf_message(c, hs, bs, end, section, depth);
	} else {
		mime_map_add(c, section, hs, bs, end);
		if (strcmp(info->type, "TEXT") == 0) {
			snprintf(lines, sizeof(lines), " %u",
			    mime_count_lines(c->msg + bs, end - bs));
			mime_both(c, lines);
		}
	}
	mime_buf_addc(&c->bs, ' ');
	mime_buf_add_nstring(&c->bs, info->md5);
	mime_write_ext_tail(&c->bs, info);
	mime_both(c, ")");
}

/*
 * Whether the line is a boundary delimiter (RFC 2046 section 5.1.1):
 * "--" boundary, then "--" for the close delimiter or only white space.
 */
static int
mime_is_delimiter(const char *line, size_t len, const char *boundary,
    size_t blen, int *close)
{
	size_t i;

	if (len < blen + 2 || line[0] != '-' || line[1] != '-' ||
	    memcmp(line + 2, boundary, blen) != 0)
		return 0;
	i = blen + 2;
	*close = len - i >= 2 && line[i] == '-' && line[i + 1] == '-';
	if (*close)
		return 1;
	for (; i < len; i++) {
		if (!isspace((unsigned char)line[i]))
			return 0;
	}
	return 1;
}

/* The line end before a delimiter belongs to it, not to the part. */
static size_t
mime_before_eol(const char *msg, size_t start, size_t pos)
{
	if (pos > start && msg[pos - 1] == '\n')
		pos--;
	if (pos > start && msg[pos - 1] == '\r')
		pos--;
	return pos;
}

static void
mime_child(struct mime_ctx *c, size_t start, size_t end, const char *section,
    unsigned n, int digest, unsigned depth)
{
	char child[MIME_SECTION_MAX];
	size_t hs = mime_header_size(c->msg + start, end - start);

	mime_section_child(child, section, n);
	mime_part(c, start, start + hs, end, child, 0, digest, depth + 1);
}

/*
 * Splits a multipart body at its delimiters and writes each part. A missing
 * close delimiter ends the last part at the end of the body; past the part
 * budget, the rest is one part. Returns the number of parts.
 */
static unsigned
mime_multipart_split(struct mime_ctx *c, size_t bs, size_t end,
    const char *section, const char *boundary, int digest, unsigned depth)
{
	size_t pos = bs, start = SIZE_MAX, next, blen = strlen(boundary);
	const char *nl;
	unsigned n = 0;
	int close;

	while (pos < end) {
		nl = memchr(c->msg + pos, '\n', end - pos);
		next = nl != NULL ? (size_t)(nl - c->msg) + 1 : end;
		if (mime_is_delimiter(c->msg + pos, next - pos, boundary, blen,
		        &close)) {
			if (start != SIZE_MAX)
				mime_child(c, start,
				    mime_before_eol(c->msg, start, pos),
				    section, ++n, digest, depth);
			start = close ? SIZE_MAX : next;
			if (close || c->parts >= MIME_MAX_PARTS)
				break;
		}
		pos = next;
	}
	if (start != SIZE_MAX)
		mime_child(c, start, end, section, ++n, digest, depth);
	return n;
}

/* A multipart without parts still needs one body (RFC 3501 body-type-mpart). */
static void
mime_multipart_empty(struct mime_ctx *c, size_t end, const char *section)
{
	char child[MIME_SECTION_MAX];
	const char *part =
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0";

	mime_section_child(child, section, 1);
	mime_map_add(c, child, end, end, end);
	mime_buf_printf(&c->body, "%s)", part);
	mime_buf_printf(&c->bs, "%s NIL NIL NIL NIL)", part);
}

static void
mime_multipart(struct mime_ctx *c, const struct mime_part_info *info, size_t bs,
    size_t end, const char *section, unsigned depth)
{
	const char *boundary = mime_param_get(&info->params, "BOUNDARY");
	int digest = strcmp(info->subtype, "DIGEST") == 0;

	mime_both(c, "(");
	if (mime_multipart_split(c, bs, end, section, boundary, digest,
	        depth) == 0)
		mime_multipart_empty(c, end, section);
	mime_both(c, " ");
	mime_buf_add_nstring(&c->body, info->subtype);
	mime_buf_add_nstring(&c->bs, info->subtype);
	mime_buf_addc(&c->bs, ' ');
	mime_write_params(&c->bs, &info->params);
	mime_write_ext_tail(&c->bs, info);
	mime_both(c, ")");
}

/*
 * Writes one entity. A message body (the whole message, or what a
 * message/rfc822 part encloses) that is not multipart is part
 * "section.1"; the parts of a multipart are "section.N".
 */
static void
mime_part(struct mime_ctx *c, size_t hs, size_t bs, size_t end,
    const char *section, int message_body, int digest, unsigned depth)
{
	struct mime_part_info info;
	char own[MIME_SECTION_MAX];
	const char *boundary;

	mime_part_read(&info, c->msg + hs, bs - hs, digest);
	boundary = mime_param_get(&info.params, "BOUNDARY");
	if (strcmp(info.type, "MULTIPART") == 0 && boundary != NULL &&
	    boundary[0] != '\0' && depth < MIME_MAX_DEPTH &&
	    c->parts++ < MIME_MAX_PARTS) {
		if (!message_body)
			mime_map_add(c, section, hs, bs, end);
		mime_multipart(c, &info, bs, end, section, depth);
	} else {
		if (message_body)
			mime_section_child(own, section, 1);
		else
			snprintf(own, sizeof(own), "%s", section);
		if (c->parts++ >= MIME_MAX_PARTS)
			mime_part_opaque(&info);
		mime_leaf(c, &info, hs, bs, end, own, depth);
	}
	mime_part_info_deinit(&info);
}

/* The addr-specs of an address field for search, or NULL if absent. */
static char *
mime_addr_specs(const char *hdr, size_t len, const char *name)
{
	char *value = mime_header_get(hdr, len, name);
	struct mime_buf env = {0}, specs = {0};

	if (value == NULL)
		return NULL;
	mime_envelope_addresses(value, strlen(value), &env, &specs);
	free(env.data);
	free(value);
	return mime_buf_finish(&specs);
}

/* Fills the decoded header values SEARCH, SORT and THREAD use. */
static void
mime_parse_search(const char *hdr, size_t len, struct mime_info *out)
{
	char *v;

	if ((v = mime_header_get(hdr, len, "subject")) != NULL) {
		out->subject = mime_rfc2047_decode(v, strlen(v));
		free(v);
	}
	out->from = mime_addr_specs(hdr, len, "from");
	out->to = mime_addr_specs(hdr, len, "to");
	out->cc = mime_addr_specs(hdr, len, "cc");
	out->message_id = mime_header_get(hdr, len, "message-id");
	out->in_reply_to = mime_header_get(hdr, len, "in-reply-to");
	out->references = mime_header_get(hdr, len, "references");
	out->date = -1;
	if ((v = mime_header_get(hdr, len, "date")) != NULL) {
		if (mime_date_parse(v, &out->date, NULL) < 0)
			out->date = -1;
		free(v);
	}
}

void
mime_parse(const char *msg, size_t len, struct mime_info *out)
{
	struct mime_ctx c = {.msg = msg};
	struct mime_buf env = {0};

	memset(out, 0, sizeof(*out));
	out->header_size = mime_header_size(msg, len);
	out->lines = mime_count_lines(msg, len);
	mime_buf_printf(&c.map, "0 0 %zu %zu\n", out->header_size, len);
	mime_part(&c, 0, out->header_size, len, "", 1, 0, 0);
	mime_envelope_build(msg, out->header_size, &env);
	out->envelope = mime_buf_finish(&env);
	out->body = mime_buf_finish(&c.body);
	out->bodystructure = mime_buf_finish(&c.bs);
	out->partmap = mime_buf_finish(&c.map);
	mime_parse_search(msg, out->header_size, out);
}

void
mime_info_deinit(struct mime_info *info)
{
	free(info->envelope);
	free(info->body);
	free(info->bodystructure);
	free(info->partmap);
	free(info->subject);
	free(info->from);
	free(info->to);
	free(info->cc);
	free(info->message_id);
	free(info->in_reply_to);
	free(info->references);
	memset(info, 0, sizeof(*info));
	info->date = -1;
}

/* Whether section is "" or numbers > 0 joined by dots. */
static int
mime_section_valid(const char *s)
{
	if (*s == '\0')
		return 1;
	for (;;) {
		if (*s < '1' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s == '\0')
			return 1;
		if (*s++ != '.')
			return 0;
	}
}

/*
 * Finds the line of section in the map and reads its offsets into off (the
 * fourth is SIZE_MAX when the line has none). Returns 0 or -1.
 */
static int
mime_partmap_line(const char *map, const char *section, size_t off[4])
{
	const char *want = section[0] != '\0' ? section : "0", *nl;
	size_t wlen = strlen(want);
	char *p;
	int n;

	if (!mime_section_valid(section))
		return -1;
	for (; map != NULL; map = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(map, '\n');
		if (strncmp(map, want, wlen) != 0 || map[wlen] != ' ')
			continue;
		off[3] = SIZE_MAX;
		p = (char *)map + wlen;
		for (n = 0; n < 4 && *p == ' '; n++)
			off[n] = strtoull(p + 1, &p, 10);
		return n >= 3 ? 0 : -1;
	}
	return -1;
}

int
mime_partmap_find(const char *partmap, const char *section,
    size_t *header_start, size_t *body_start, size_t *end)
{
	size_t off[4];

	if (mime_partmap_line(partmap, section, off) < 0)
		return -1;
	*header_start = off[0];
	*body_start = off[1];
	*end = off[2];
	return 0;
}

int
mime_partmap_find_message(const char *partmap, const char *section,
    size_t *header_start, size_t *text_start, size_t *end)
{
	size_t off[4];

	if (mime_partmap_line(partmap, section, off) < 0)
		return -1;
	if (section[0] == '\0') {
		*header_start = off[0];
		*text_start = off[1];
	} else if (off[3] != SIZE_MAX) {
		*header_start = off[1];
		*text_start = off[3];
	} else {
		return -1;
	}
	*end = off[2];
	return 0;
}

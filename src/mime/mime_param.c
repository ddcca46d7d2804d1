/*
 * Parameter lists of Content-Type (RFC 2045 section 5.1) and
 * Content-Disposition (RFC 2183), with RFC 2231 section 3 continuations
 * ("name*0", "name*1*") joined and extended values kept encoded.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mime/mime.h"

#define MIME_PARAM_MAX 64

/* A parameter as written, before continuations are joined. */
struct mime_param_raw {
	char *name; /* upper case, without the "*N*" suffix */
	char *value;
	long index; /* -1 when it had no "*N" */
	int extended;
};

static const char *
mime_param_skip(const char *p)
{
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (depth == 0 && *p != '(' && !isspace((unsigned char)*p))
			break;
		if (depth > 0 && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
	}
	return p;
}

/* Reads a quoted string or a token at *pp into out. */
static void
mime_param_value(const char **pp, struct mime_buf *out)
{
	const char *p = *pp;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			mime_buf_addc(out, *p);
		}
		if (*p == '"')
			p++;
	} else {
		while (*p != '\0' && *p != ';' && !isspace((unsigned char)*p))
			mime_buf_addc(out, *p++);
	}
	*pp = p;
}

/* Splits "NAME*3*" into its name, index and extended flag. */
static void
mime_param_name(struct mime_param_raw *raw, const char *s, size_t len)
{
	const char *star = memchr(s, '*', len);
	size_t i, n = star != NULL ? (size_t)(star - s) : len;

	raw->name = xstrndup(s, n);
	for (i = 0; i < n; i++)
		raw->name[i] = (char)toupper((unsigned char)raw->name[i]);
	raw->index = -1;
	raw->extended = len > 0 && s[len - 1] == '*';
	if (star != NULL && n + 1 < len && isdigit((unsigned char)s[n + 1])) {
		raw->index = 0;
		for (i = n + 1; i < len && isdigit((unsigned char)s[i]); i++)
			if (raw->index < 100000)
				raw->index = raw->index * 10 + (s[i] - '0');
	}
}

/* Reads one "name=value" at *pp; returns 0, or -1 if there was none. */
static int
mime_param_one(const char **pp, struct mime_param_raw *raw)
{
	const char *p = mime_param_skip(*pp), *name = p;
	struct mime_buf value = {0};
	size_t name_len;

	while (*p != '\0' && *p != '=' && *p != ';')
		p++;
	name_len = (size_t)(p - name);
	while (name_len > 0 && isspace((unsigned char)name[name_len - 1]))
		name_len--;
	if (*p != '=' || name_len == 0) {
		*pp = p;
		return -1;
	}
	p = mime_param_skip(p + 1);
	mime_param_value(&p, &value);
	*pp = p;
	mime_param_name(raw, name, name_len);
	raw->value = mime_buf_finish(&value);
	return 0;
}

static int
mime_param_cmp_index(const void *a, const void *b)
{
	const struct mime_param_raw *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return 0;
}

static void
mime_param_add(struct mime_params *params, char *name, char *value)
{
	params->v = xreallocarray(params->v, params->n + 1, sizeof(*params->v));
	params->v[params->n].name = name;
	params->v[params->n].value = value;
	params->n++;
}

/* Appends a plain segment to an extended value, percent-encoding it. */
static void
mime_param_add_encoded(struct mime_buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("!#$&+-.^_`|~", c) != NULL)
			mime_buf_addc(out, (char)c);
		else
			mime_buf_printf(out, "%%%02X", c);
	}
}

/*
 * Joins the segments of raw[first]'s name (RFC 2231 section 3) into one
 * parameter and marks them used.
 */
static void
mime_param_join(struct mime_params *params, struct mime_param_raw *raw,
    size_t n, size_t first, char *used)
{
	struct mime_param_raw seg[MIME_PARAM_MAX];
	struct mime_buf value = {0};
	size_t i, nseg = 0;
	int extended;

	for (i = first; i < n; i++) {
		if (!used[i] && (raw[i].index >= 0 || raw[i].extended) &&
		    strcmp(raw[i].name, raw[first].name) == 0) {
			seg[nseg++] = raw[i];
			used[i] = 1;
		}
	}
	qsort(seg, nseg, sizeof(*seg), mime_param_cmp_index);
	extended = seg[0].extended;
	for (i = 0; i < nseg; i++) {
		if (extended && !seg[i].extended)
			mime_param_add_encoded(&value, seg[i].value);
		else
			mime_buf_adds(&value, seg[i].value);
	}
	mime_param_add(params,
	    xasprintf("%s%s", raw[first].name, extended ? "*" : ""),
	    mime_buf_finish(&value));
}

static void
mime_param_collect(struct mime_params *params, struct mime_param_raw *raw,
    size_t n)
{
	char used[MIME_PARAM_MAX] = {0};
	size_t i;

	for (i = 0; i < n; i++) {
		if (used[i])
			continue;
		if (raw[i].index < 0 && !raw[i].extended) {
			mime_param_add(params, xstrdup(raw[i].name),
			    xstrdup(raw[i].value));
			used[i] = 1;
		} else {
			mime_param_join(params, raw, n, i, used);
		}
	}
}

char *
mime_param_parse(const char *value, struct mime_params *params)
{
	struct mime_param_raw raw[MIME_PARAM_MAX];
	struct mime_buf main_part = {0};
	const char *p = value;
	size_t i, n = 0;

	memset(params, 0, sizeof(*params));
	while (*(p = mime_param_skip(p)) != '\0' && *p != ';')
		mime_buf_addc(&main_part, *p++);
	while (*p == ';' && n < MIME_PARAM_MAX) {
		p++;
		if (mime_param_one(&p, &raw[n]) == 0)
			n++;
		while (*p != '\0' && *p != ';')
			p++;
	}
	mime_param_collect(params, raw, n);
	for (i = 0; i < n; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
	return mime_buf_finish(&main_part);
}

const char *
mime_param_get(const struct mime_params *params, const char *name)
{
	size_t i;

	for (i = 0; i < params->n; i++) {
		if (strcmp(params->v[i].name, name) == 0)
			return params->v[i].value;
	}
	return NULL;
}

void
mime_param_deinit(struct mime_params *params)
{
	size_t i;

	for (i = 0; i < params->n; i++) {
		free(params->v[i].name);
		free(params->v[i].value);
	}
	free(params->v);
	memset(params, 0, sizeof(*params));
}

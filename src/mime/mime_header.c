/*
 * Header fields of a message or MIME part (RFC 5322 section 2.2): where the
 * header ends, stepping through fields, unfolding (section 2.2.3).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mime/mime.h"

size_t
mime_header_size(const char *msg, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t line_len;

		if (nl == NULL)
			break;
		line_len = (size_t)(nl - (msg + pos));
		if (line_len == 0 || (line_len == 1 && msg[pos] == '\r'))
			return pos + line_len + 1;
		pos += line_len + 1;
	}
	return len;
}

/* Returns the offset just past the line at pos (its LF included). */
static size_t
mime_header_line_end(const char *hdr, size_t len, size_t pos)
{
	const char *nl = memchr(hdr + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - hdr) + 1 : len;
}

static int
mime_header_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int
mime_header_next(const char *hdr, size_t len, size_t *pos,
    struct mime_header_field *field)
{
	while (*pos < len) {
		size_t start = *pos,
		       end = mime_header_line_end(hdr, len, start);
		const char *colon;

		/* The field runs on over continuation lines. */
		while (end < len && mime_header_is_wsp(hdr[end]))
			end = mime_header_line_end(hdr, len, end);
		*pos = end;
		colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL || mime_header_is_wsp(hdr[start]))
			continue;
		field->name = hdr + start;
		field->name_len = (size_t)(colon - field->name);
		while (field->name_len > 0 &&
		    mime_header_is_wsp(field->name[field->name_len - 1]))
			field->name_len--;
		if (field->name_len == 0)
			continue;
		field->value = colon + 1;
		field->value_len = (size_t)(hdr + end - field->value);
		while (field->value_len > 0 &&
		    (field->value[field->value_len - 1] == '\n' ||
		        field->value[field->value_len - 1] == '\r'))
			field->value_len--;
		return 1;
	}
	return 0;
}

char *
mime_header_unfold(const char *value, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (value[i] != '\r' && value[i] != '\n')
			out[n++] = value[i];
	}
	while (n > 0 && mime_header_is_wsp(out[n - 1]))
		n--;
	out[n] = '\0';
	for (i = 0; i < n && mime_header_is_wsp(out[i]); i++)
		;
	if (i > 0)
		memmove(out, out + i, n - i + 1);
	return out;
}

char *
mime_header_get(const char *hdr, size_t len, const char *name)
{
	struct mime_header_field f;
	size_t pos = 0, name_len = strlen(name);

	while (mime_header_next(hdr, len, &pos, &f)) {
		if (f.name_len == name_len &&
		    strncasecmp(f.name, name, name_len) == 0)
			return mime_header_unfold(f.value, f.value_len);
	}
	return NULL;
}

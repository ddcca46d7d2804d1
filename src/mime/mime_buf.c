/*
 * The growable string the mime files build their output in, and the one
 * place that writes an IMAP string (RFC 3501 section 4.3: quoted or literal).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "mime/mime.h"

/* Longest value sent as a quoted string; longer ones go as literals. */
#define MIME_QUOTED_MAX 1024

static void
mime_buf_reserve(struct mime_buf *buf, size_t more)
{
	size_t need = buf->len + more + 1;

	if (need <= buf->cap)
		return;
	if (buf->cap == 0)
		buf->cap = 64;
	while (buf->cap < need)
		buf->cap *= 2;
	buf->data = xrealloc(buf->data, buf->cap);
}

void
mime_buf_add(struct mime_buf *buf, const void *p, size_t len)
{
	mime_buf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, p, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
mime_buf_adds(struct mime_buf *buf, const char *s)
{
	mime_buf_add(buf, s, strlen(s));
}

void
mime_buf_addc(struct mime_buf *buf, char c)
{
	mime_buf_add(buf, &c, 1);
}

void
mime_buf_printf(struct mime_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	mime_buf_reserve(buf, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t)n;
}

char *
mime_buf_finish(struct mime_buf *buf)
{
	char *s = buf->data != NULL ? buf->data : xstrdup("");

	memset(buf, 0, sizeof(*buf));
	return s;
}

static int
mime_buf_quotable(const char *s, size_t len)
{
	size_t i;

	if (len > MIME_QUOTED_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			return 0;
	}
	return 1;
}

void
mime_buf_add_string(struct mime_buf *buf, const char *s, size_t len)
{
	size_t i, n = 0;

	if (mime_buf_quotable(s, len)) {
		mime_buf_addc(buf, '"');
		for (i = 0; i < len; i++) {
			if (s[i] == '"' || s[i] == '\\')
				mime_buf_addc(buf, '\\');
			mime_buf_addc(buf, s[i]);
		}
		mime_buf_addc(buf, '"');
		return;
	}
	for (i = 0; i < len; i++)
		n += s[i] != '\0';
	mime_buf_printf(buf, "{%zu}\r\n", n);
	for (i = 0; i < len; i++) {
		if (s[i] != '\0')
			mime_buf_addc(buf, s[i]);
	}
}

void
mime_buf_add_nstring(struct mime_buf *buf, const char *s)
{
	if (s == NULL)
		mime_buf_adds(buf, "NIL");
	else
		mime_buf_add_string(buf, s, strlen(s));
}

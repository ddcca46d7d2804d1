/*
 * The DATA and BDAT body reader. Only a real <CRLF>.<CRLF> ends DATA (RFC
 * 5321 section 4.1.1.4); a bare LF or CR never counts as a line end for the
 * end marker, so "\n.\n" and the like cannot smuggle a second message. Lines
 * that start with a dot lose it (section 4.5.2).
 */
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "smtp/smtp_data.h"

#define SMTP_DATA_INITIAL 16384

enum smtp_data_state {
	D_BOL,      /* at the start of a line, after CRLF or at the start */
	D_BOL_BARE, /* at the start of a line, after a bare LF or CR */
	D_TEXT,     /* inside a line */
	D_CR,       /* after a CR inside a line */
	D_DOT,      /* after CRLF "." */
	D_DOT_BARE, /* after a bare line end and "." */
	D_DOT_CR,   /* after CRLF ".\r" */
	D_END,      /* after <CRLF>.<CRLF> */
};

void
smtp_data_init(struct smtp_data *d, uint64_t max, int normalize)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
	d->max = max;
	d->normalize = normalize;
}

void
smtp_data_set_bdat(struct smtp_data *d)
{
	d->bdat = 1;
	if (d->state == D_BOL)
		d->state = D_TEXT;
}

/* Appends n bytes to the message, keeping them while within the limits. */
static void
smtp_data_put(struct smtp_data *d, const char *s, size_t n)
{
	size_t want;

	d->size += n;
	if (d->size > d->max || (d->bare && !d->normalize))
		return;
	want = d->len + n + 1;
	if (want > d->cap) {
		size_t cap = d->cap ? d->cap : SMTP_DATA_INITIAL;

		while (cap < want)
			cap *= 2;
		if (d->max < cap - 1)
			cap = (size_t)d->max + 1;
		d->buf = xrealloc(d->buf, cap);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, s, n);
	d->len += n;
	d->buf[d->len] = '\0';
}

/* A bare LF or CR: noted, and a CRLF in normalize mode. */
static void
smtp_data_bare(struct smtp_data *d)
{
	d->bare = 1;
	if (d->normalize)
		smtp_data_put(d, "\r\n", 2);
	d->state = d->bdat ? D_TEXT : D_BOL_BARE;
}

/* Takes the run of plain bytes at in; returns how many. */
static size_t
smtp_data_text(struct smtp_data *d, const char *in, size_t len)
{
	size_t n = 0;

	while (n < len && in[n] != '\r' && in[n] != '\n')
		n++;
	if (n > 0) {
		smtp_data_put(d, in, n);
		return n;
	}
	if (in[0] == '\r')
		d->state = D_CR;
	else
		smtp_data_bare(d);
	return 1;
}

int
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len && d->state != D_END) {
		char c = in[i];

		switch (d->state) {
		case D_BOL:
		case D_BOL_BARE:
			if (c == '.' && !d->bdat) {
				d->state =
				    d->state == D_BOL ? D_DOT : D_DOT_BARE;
				i++;
			} else {
				d->state = D_TEXT;
			}
			break;
		case D_TEXT:
			i += smtp_data_text(d, in + i, len - i);
			break;
		case D_CR:
			if (c == '\n') {
				smtp_data_put(d, "\r\n", 2);
				d->state = d->bdat ? D_TEXT : D_BOL;
				i++;
			} else {
				/* The byte after a bare CR starts a line. */
				smtp_data_bare(d);
			}
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOT_CR;
				i++;
				break;
			}
			/* "..": unstuff; ".x": the dot goes (4.5.2). */
			if (c == '.' || c == '\n')
				smtp_data_put(d, ".", 1);
			i += c == '.';
			d->state = D_TEXT;
			break;
		case D_DOT_BARE:
			/* Not a line after CRLF: only ".." is unstuffed. */
			smtp_data_put(d, ".", 1);
			i += c == '.';
			d->state = D_TEXT;
			break;
		case D_DOT_CR:
			if (c == '\n') {
				d->state = D_END;
				i++;
			} else {
				d->state = D_CR;
			}
			break;
		}
	}
	*used = i;
	return d->state == D_END;
}

int
smtp_data_finish(struct smtp_data *d)
{
	if (d->state == D_CR)
		smtp_data_bare(d);
	return 0;
}

int
smtp_data_too_big(const struct smtp_data *d)
{
	return d->size > d->max;
}

char *
smtp_data_take(struct smtp_data *d, size_t *len)
{
	char *buf = d->buf;

	if (buf == NULL)
		buf = xstrdup("");
	*len = d->len;
	d->buf = NULL;
	d->len = d->cap = 0;
	return buf;
}

void
smtp_data_deinit(struct smtp_data *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

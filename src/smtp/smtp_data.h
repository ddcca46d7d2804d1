/*
 * The message body reader for DATA (RFC 5321 sections 4.1.1.4 and 4.5.2)
 * and BDAT (RFC 3030): a byte-level state machine with dot-unstuffing, the
 * end only at <CRLF>.<CRLF>, a size bound and the bare LF/CR rules that
 * defeat SMTP smuggling. Pure: bytes in, message buffer out.
 */
#ifndef SMTP_SMTP_DATA_H
#define SMTP_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

struct smtp_data {
	int state;     /* position in the line-end grammar */
	int bdat;      /* BDAT: no dot rules, no end marker */
	int normalize; /* bare LF and bare CR become CRLF */
	uint64_t max;  /* bytes kept at most */
	uint64_t size; /* message bytes seen so far (kept or not) */
	int bare;      /* a bare LF or bare CR was seen */
	char *buf;     /* the message, CRLF line ends, unstuffed */
	size_t len;
	size_t cap;
};

/*
 * Starts reading one message of at most max bytes. With normalize, bare LF
 * and bare CR are turned into CRLF; otherwise they are only noted (->bare)
 * and nothing more is kept, since the message will be refused.
 */
void smtp_data_init(struct smtp_data *d, uint64_t max, int normalize);

/* Switches d to BDAT mode: every byte is message content. */
void smtp_data_set_bdat(struct smtp_data *d);

/*
 * DATA: feeds len bytes. Returns 1 when <CRLF>.<CRLF> ended the message,
 * with *used the bytes taken (the end included; the rest belongs to the
 * next command), or 0 when all len bytes were taken and more are needed.
 * BDAT: takes all len bytes and returns 0.
 */
int smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    size_t *used);

/*
 * BDAT LAST: settles a CR left pending by the last chunk (a bare CR) and
 * returns 0.
 */
int smtp_data_finish(struct smtp_data *d);

/* 1 when the message went over max (its bytes were counted, not kept). */
int smtp_data_too_big(const struct smtp_data *d);

/*
 * Takes the message buffer (NUL-terminated, malloc'd; the caller frees it)
 * and its length; d keeps nothing.
 */
char *smtp_data_take(struct smtp_data *d, size_t *len);

/* Frees what d holds. */
void smtp_data_deinit(struct smtp_data *d);

#endif

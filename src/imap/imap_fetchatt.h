/*
 * FETCH attributes: the fetch-att grammar of RFC 3501 / RFC 9051 section 9
 * (macros, sections, partials), BINARY items of RFC 3516, MODSEQ and the
 * CHANGEDSINCE / VANISHED modifiers of RFC 7162 (sections 3.1.4 and 3.2.6).
 */
#ifndef IMAP_IMAP_FETCHATT_H
#define IMAP_IMAP_FETCHATT_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parser.h"

/* Simple items, as bits of imap_fetchatt.flags. */
#define IMAP_FETCH_FLAGS 0x0001
#define IMAP_FETCH_INTERNALDATE 0x0002
#define IMAP_FETCH_RFC822_SIZE 0x0004
#define IMAP_FETCH_ENVELOPE 0x0008
#define IMAP_FETCH_BODY 0x0010 /* BODY without a section: no extensions */
#define IMAP_FETCH_BODYSTRUCTURE 0x0020
#define IMAP_FETCH_UID 0x0040
#define IMAP_FETCH_MODSEQ 0x0080
#define IMAP_FETCH_RFC822 0x0100        /* like BODY[], sets \Seen */
#define IMAP_FETCH_RFC822_HEADER 0x0200 /* like BODY.PEEK[HEADER] */
#define IMAP_FETCH_RFC822_TEXT 0x0400   /* like BODY[TEXT], sets \Seen */

/* The deepest part number path accepted ("1.2.3..."). */
#define IMAP_SECTION_MAX_PARTS 32

enum imap_fetch_kind {
	IMAP_FETCH_KIND_BODY,        /* BODY[...] or BODY.PEEK[...] */
	IMAP_FETCH_KIND_BINARY,      /* BINARY[...] or BINARY.PEEK[...] */
	IMAP_FETCH_KIND_BINARY_SIZE, /* BINARY.SIZE[...] */
};

enum imap_section_text {
	IMAP_SECTION_ALL, /* the part (or message) itself: BODY[], BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME, /* only after a part number */
};

struct imap_fetch_section {
	enum imap_fetch_kind kind;
	int peek;                               /* .PEEK: do not set \Seen */
	uint32_t parts[IMAP_SECTION_MAX_PARTS]; /* each >= 1 */
	size_t nparts;
	enum imap_section_text text;
	char **fields; /* HEADER.FIELDS[.NOT]: names as sent, nfields >= 1 */
	size_t nfields;
	int partial; /* <origin.length> given */
	uint64_t origin;
	uint64_t length; /* >= 1 */
	/*
	 * The item name for the response: keywords upper-cased, no .PEEK, the
	 * partial as "<origin>" (RFC 9051 section 7.5.2), e.g.
	 * "BODY[1.HEADER.FIELDS (From To)]<0>".
	 */
	char *name;
};

struct imap_fetchatt {
	unsigned flags;
	struct imap_fetch_section *sections;
	size_t nsections;
	int changedsince; /* the CHANGEDSINCE modifier was given */
	uint64_t modseq;  /* its value */
	int vanished;     /* the VANISHED modifier (needs CHANGEDSINCE) */
};

/*
 * Parses the arguments that follow the sequence set of FETCH / UID FETCH:
 * a fetch-att atom or macro (ALL, FAST, FULL), or a parenthesised list of
 * fetch-att, then optionally a parenthesised list of modifiers
 * (CHANGEDSINCE n, VANISHED). Keywords are case-insensitive. CHANGEDSINCE
 * also sets IMAP_FETCH_MODSEQ (RFC 7162 section 3.1.4.1). Adding UID for
 * UID FETCH, and refusing VANISHED outside UID FETCH or without QRESYNC,
 * is for the caller. Returns 0 with out filled (free it with
 * imap_fetchatt_clear()), or -1 with *error a static text for BAD and out
 * left empty.
 */
int imap_fetchatt_parse(const struct imap_arg *args, size_t nargs,
    struct imap_fetchatt *out, const char **error);

/* Frees what out holds and zeroes it. */
void imap_fetchatt_clear(struct imap_fetchatt *out);

#endif

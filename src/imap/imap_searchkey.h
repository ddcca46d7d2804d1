/*
 * SEARCH programs: the search-key grammar of RFC 3501 / RFC 9051 section 9
 * parsed into a tree, with MODSEQ (RFC 7162 section 3.1.5), the CHARSET
 * prefix, ESEARCH RETURN options (RFC 4731, RFC 9051) and SAVE (RFC 5182).
 */
#ifndef IMAP_IMAP_SEARCHKEY_H
#define IMAP_IMAP_SEARCHKEY_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"

/* Nesting of NOT, OR and parentheses; deeper programs are refused. */
#define IMAP_SEARCH_MAX_DEPTH 64
/* Nodes in one program. */
#define IMAP_SEARCH_MAX_KEYS 10000

/*
 * Node types. The tree is normalised: UN<flag> keys are NOT over FLAG, NEW
 * is AND(FLAG \Recent, NOT FLAG \Seen), OLD is NOT FLAG \Recent, BCC / CC /
 * FROM / SUBJECT / TO are HEADER with the field name upper-cased.
 */
enum imap_skey_type {
	IMAP_SKEY_AND, /* all children match; also the program itself */
	IMAP_SKEY_OR,  /* two children */
	IMAP_SKEY_NOT, /* one child */
	IMAP_SKEY_ALL,
	IMAP_SKEY_SEQSET, /* set: message numbers, unresolved */
	IMAP_SKEY_UID,    /* set: UIDs, unresolved */
	IMAP_SKEY_FLAG,   /* str: "\Seen" etc. (capitalised so) or a keyword */
	IMAP_SKEY_HEADER, /* field, str: substring (may be "": field present) */
	IMAP_SKEY_BODY,   /* str */
	IMAP_SKEY_TEXT,   /* str: header or body */
	IMAP_SKEY_DATE,   /* INTERNALDATE vs date, by cmp (day resolution) */
	IMAP_SKEY_SENTDATE, /* the Date: field vs date, by cmp */
	IMAP_SKEY_SIZE,     /* RFC822.SIZE vs num, by cmp (LT or GT) */
	IMAP_SKEY_MODSEQ,   /* MODSEQ >= num; field / entry_type if given */
};

enum imap_skey_cmp {
	IMAP_SKEY_LT, /* BEFORE, SENTBEFORE, SMALLER */
	IMAP_SKEY_EQ, /* ON, SENTON */
	IMAP_SKEY_GE, /* SINCE, SENTSINCE */
	IMAP_SKEY_GT, /* LARGER */
};

enum imap_skey_entry {
	IMAP_SKEY_ENTRY_NONE,
	IMAP_SKEY_ENTRY_PRIV,
	IMAP_SKEY_ENTRY_SHARED,
	IMAP_SKEY_ENTRY_ALL,
};

struct imap_search_date {
	int year;  /* 4 digits */
	int month; /* 1-12 */
	int day;   /* valid for the month */
};

struct imap_skey {
	enum imap_skey_type type;
	char *str;
	size_t len;  /* of str: strings may hold NUL when sent as literal8 */
	char *field; /* HEADER: field name; MODSEQ: entry name or NULL */
	enum imap_skey_cmp cmp;
	struct imap_search_date date;
	uint64_t num;
	enum imap_skey_entry entry_type;
	struct imap_seqset set;
	struct imap_skey *child; /* AND, OR, NOT */
	size_t nchild;
};

/* ESEARCH RETURN options, bits of imap_search.ret. */
#define IMAP_SEARCH_RET_MIN 0x1
#define IMAP_SEARCH_RET_MAX 0x2
#define IMAP_SEARCH_RET_ALL 0x4
#define IMAP_SEARCH_RET_COUNT 0x8
#define IMAP_SEARCH_RET_SAVE 0x10

struct imap_search {
	struct imap_skey *root; /* an AND node */
	int esearch;            /* RETURN was given: answer with ESEARCH */
	unsigned ret; /* RETURN () means ALL, so esearch implies ret != 0 */
	int utf8;     /* CHARSET UTF-8 was given (else US-ASCII) */
};

enum imap_search_err {
	IMAP_SEARCH_ERR_NONE,
	IMAP_SEARCH_ERR_SYNTAX,      /* BAD */
	IMAP_SEARCH_ERR_BADCHARSET,  /* NO [BADCHARSET (UTF-8 US-ASCII)] */
	IMAP_SEARCH_ERR_TOO_COMPLEX, /* BAD: depth or key count exceeded */
};

/* Flags for imap_searchkey_parse(). */
#define IMAP_SEARCH_REV2 0x1 /* IMAP4rev2: RECENT, NEW and OLD are errors */

/*
 * Parses the arguments after SEARCH / UID SEARCH: [RETURN (opts)]
 * [CHARSET astring] 1*search-key. Keywords are case-insensitive; dates
 * are d-MMM-yyyy, quoted or not. Recursion is bounded by
 * IMAP_SEARCH_MAX_DEPTH. Returns 0 with out filled (free it with
 * imap_searchkey_clear()), or -1 with *err and *text (static, for the
 * response) set and out empty.
 */
int imap_searchkey_parse(const struct imap_arg *args, size_t nargs,
    unsigned flags, struct imap_search *out, enum imap_search_err *err,
    const char **text);

/* Frees the tree and zeroes out. */
void imap_searchkey_clear(struct imap_search *out);

#endif

/*
 * The incremental IMAP command tokenizer: bytes in as they arrive, one
 * command (tag, name, argument tree) out, no I/O and no global state.
 * Implements the command framing of RFC 3501 and RFC 9051 section 9
 * (atoms, quoted strings, literals, lists, NIL), non-synchronising
 * literals of RFC 7888 (LITERAL+ and LITERAL-), literal8 of RFC 3516 and
 * UTF-8 quoted strings of RFC 6855.
 */
#ifndef IMAP_IMAP_PARSER_H
#define IMAP_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 7888 section 5: the largest non-synchronising literal with LITERAL-. */
#define IMAP_LITERAL_MINUS_MAX 4096

enum imap_arg_type {
	/*
	 * An atom in the wide sense: any run of printable ASCII except
	 * SP ( ) { and ", so it also holds flags (\Seen), sequence sets,
	 * list wildcards and "]". A "[" opens a section that runs to the
	 * next "]" and may hold SP, parentheses and quoted strings, so
	 * BODY.PEEK[HEADER.FIELDS (From To)]<0.100> is one atom, kept
	 * byte for byte; imap_fetchatt parses it.
	 */
	IMAP_ARG_ATOM,
	IMAP_ARG_NIL,     /* the atom NIL in any case; str holds it */
	IMAP_ARG_STRING,  /* a quoted string, escapes removed */
	IMAP_ARG_LITERAL, /* literal or literal8 contents */
	IMAP_ARG_LIST,    /* a parenthesised list */
};

struct imap_arg {
	enum imap_arg_type type;
	/* Atom, NIL, string, literal: the bytes, NUL-terminated. */
	char *str;
	size_t len;
	int literal8; /* a literal8 (~{n}): may hold NUL bytes */
	/* List: the elements. */
	struct imap_arg *list;
	size_t count;
};

/*
 * One command. name is the command name upper-cased ("UID" for UID
 * FETCH: the subcommand is args[0]). Everything belongs to the command.
 */
struct imap_cmd {
	char *tag;
	char *name;
	struct imap_arg *args;
	size_t nargs;
};

enum imap_perr {
	IMAP_PERR_NONE,
	IMAP_PERR_SYNTAX,          /* BAD; the connection goes on */
	IMAP_PERR_LINE_TOO_LONG,   /* BAD; the rest of the line is skipped */
	IMAP_PERR_LITERAL_TOO_BIG, /* NO [TOOBIG] (or BAD for LITERAL-) */
	IMAP_PERR_TOO_MANY_ARGS,   /* BAD */
	IMAP_PERR_TOO_DEEP,        /* BAD: lists nested too deeply */
	IMAP_PERR_REFUSED,         /* the caller refused a literal */
};

/* Bounds chosen by the caller; zero fields take the default. */
struct imap_parser_limits {
	size_t line_max; /* bytes of one command without literal data: 64 KiB */
	uint64_t literal_max; /* one literal: 64 MiB */
	/*
	 * All literals of one command together (a MULTIAPPEND, RFC 3502):
	 * twice literal_max. A literal that would cross it fails like one
	 * over literal_max.
	 */
	uint64_t literal_total_max;
	/*
	 * A refused or too big non-synchronising literal up to this size is
	 * read and dropped; a bigger one makes the error fatal (RFC 7888
	 * section 4 allows closing the connection instead): 64 MiB.
	 */
	uint64_t skip_max;
	size_t args_max; /* arguments and list elements in a command: 10000 */
	unsigned depth_max; /* list nesting: 32 */
};

/* Flags for imap_parser_new(); imap_parser_set_flags() changes them. */
#define IMAP_PARSER_UTF8 0x1 /* UTF8=ACCEPT or IMAP4rev2: UTF-8 in quotes */
#define IMAP_PARSER_LITERAL_MINUS 0x2 /* LITERAL-: {n+} only up to 4096 */

struct imap_parser;

/* A literal announced at the end of a line, before any of its bytes. */
struct imap_literal_info {
	uint64_t size;
	int sync;     /* "{n}": the client waits for "+ " before sending */
	int literal8; /* "~{n}" (BINARY, RFC 3516) */
	const char *command; /* its command's name, or NULL before it */
};

/*
 * Creates a parser. limits may be NULL for the defaults; the parser keeps
 * a copy. Free it with imap_parser_free(), which accepts NULL and sets
 * *p to NULL.
 */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits,
    unsigned flags);
void imap_parser_free(struct imap_parser **p);
void imap_parser_set_flags(struct imap_parser *p, unsigned flags);

/*
 * Feeds len bytes. *used is set to how many were consumed; the caller
 * keeps the rest and passes it again on the next call. Returns:
 *   1: a command is complete; *cmd is the caller's and is freed with
 *      imap_cmd_free(). *used stops just after its line end.
 *   0: all bytes consumed and more are needed, or a literal was announced
 *      and waits for a decision: imap_parser_literal() then says so, and
 *      *used stops just after the announcement's line end. Until the
 *      caller calls imap_parser_literal_accept() or _refuse(), further
 *      calls consume nothing and return 0.
 *  -1: this command failed; imap_parser_error() describes it. Unless the
 *      error is fatal the parser drops the rest of the command (the rest
 *      of the line, and a non-synchronising literal announced at its end)
 *      on the following calls and then reads the next command.
 * A line ends with CRLF; a bare LF is accepted too. Empty lines are
 * ignored. Never calls back; keeps no pointer to data.
 */
int imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *used, struct imap_cmd **cmd);

/*
 * Returns the literal waiting for a decision (the parser's memory, valid
 * until the next call), or NULL. Announcements over limits.literal_max and
 * LITERAL- violations never get here: they fail with
 * IMAP_PERR_LITERAL_TOO_BIG.
 */
const struct imap_literal_info *imap_parser_literal(
    const struct imap_parser *p);

/*
 * Accept the pending literal: the caller sends "+ " first if it is
 * synchronising, then feeds its bytes. Returns 0, or -1 if none pends.
 */
int imap_parser_literal_accept(struct imap_parser *p);

/*
 * Refuse the pending literal: the command is dropped; for a
 * non-synchronising literal its bytes and the rest of the command line
 * will be skipped, then parsing resumes at the next command. The error
 * (IMAP_PERR_REFUSED, with the tag) stays readable with
 * imap_parser_error(). Returns 0, or -1 if none pends.
 */
int imap_parser_literal_refuse(struct imap_parser *p);

struct imap_parser_error {
	enum imap_perr code;
	const char *text;    /* short, for "tag BAD text"; static */
	const char *tag;     /* NULL when no tag was readable: answer "* BAD" */
	const char *command; /* the command's name, or NULL before it */
	int fatal;           /* the connection cannot continue: close it */
};

/*
 * The last error; tag points into the parser and is valid until the next
 * call to imap_parser_feed().
 */
const struct imap_parser_error *imap_parser_error(const struct imap_parser *p);

/*
 * Reads one plain line (IDLE's "DONE", an AUTHENTICATE response) through
 * the same buffering and line limit, between commands only. Returns 1 with
 * *line (without the line end, NUL-terminated, the caller frees it; it may
 * hold a secret, so free it with xfree_secret_str()), 0 when more input is
 * needed, -1 when the line exceeds limits.line_max (the rest of it is then
 * skipped by later calls of either function). While a line is half read,
 * imap_parser_feed() consumes nothing; finish it with this function.
 */
int imap_parser_line(struct imap_parser *p, const char *data, size_t len,
    size_t *used, char **line);

/* Frees a command and its argument tree; accepts NULL, sets *cmd NULL. */
void imap_cmd_free(struct imap_cmd **cmd);

/*
 * Argument helpers. imap_arg_astring() returns the string of an atom, NIL,
 * quoted string or literal (astring and nstring both accept all; the
 * caller checks NIL with arg->type), else NULL. imap_arg_atom_is()
 * compares an atom case-insensitively.
 */
const char *imap_arg_astring(const struct imap_arg *arg);
int imap_arg_atom_is(const struct imap_arg *arg, const char *word);

#endif

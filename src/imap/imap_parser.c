/*
 * The incremental IMAP command tokenizer: a byte-level state machine that
 * builds the argument tree of one command at a time. Implements the framing
 * of RFC 3501 / RFC 9051 section 9 (tag, atoms, quoted strings, literals,
 * lists), RFC 7888 non-synchronising literals, RFC 3516 literal8 and RFC 6855
 * UTF-8 quoted strings.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "imap/imap_parser.h"
#include "imap/imap_utf7.h"

enum imap_pstate {
	ST_TAG,       /* at the start of a command, or in its tag */
	ST_NAME,      /* in the command name */
	ST_ARG,       /* an argument must start here */
	ST_AFTER_ARG, /* after an argument: SP, ")" or the line end */
	ST_ATOM,
	ST_BRACKET, /* inside "[...]" of an atom */
	ST_TILDE,   /* after "~": literal8 or an atom */
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_LIT_NUM,   /* after "{" */
	ST_LIT_CLOSE, /* after "+": "}" must follow */
	ST_LIT_CR,    /* after "}": the line end must follow */
	ST_LIT_LF,
	ST_LIT_WAIT, /* waiting for the caller's decision */
	ST_LIT_DATA,
	ST_CR,        /* CR at the end of a command line */
	ST_SKIP_LINE, /* dropping the rest of a failed command */
	ST_SKIP_LIT,  /* dropping a non-synchronising literal */
	ST_LINE,      /* imap_parser_line() collecting */
	ST_DEAD,      /* a fatal error happened */
};

/* One open list (level 0 is the command's argument list). */
struct imap_plevel {
	struct imap_arg *items;
	size_t n;
	size_t cap;
};

struct imap_parser {
	struct imap_parser_limits lim;
	unsigned flags;
	enum imap_pstate st;
	int after_sp; /* ST_ARG was entered by SP, not by "(" */

	char *tag;
	char *name;
	struct imap_plevel *stack; /* depth_max + 1 levels */
	unsigned depth;
	size_t nargs;
	size_t line_len;

	char *tok; /* the token being read */
	size_t tok_len;
	size_t tok_cap;
	int br_quote; /* in a quoted string inside "[...]" */
	int br_esc;
	char *br_head; /* the "[...]" atom before a literal inside it */
	size_t br_head_len;

	uint64_t lit_num;
	int lit_digits;
	int lit_plus;
	int lit8;
	int lit_nul;        /* a NUL byte arrived in a plain literal */
	uint64_t lit_total; /* bytes of the command's accepted literals */
	uint64_t lit_left;
	struct imap_literal_info pending;

	uint64_t skip_left;
	int skip_lit; /* how far "{n+}" was seen at the end of a skipped line */
	uint64_t skip_num;

	struct imap_parser_error err;
	char *err_tag;
	char *err_name;
};

/* Result of one step of the machine. */
enum imap_step {
	STEP_MORE,
	STEP_CMD,
	STEP_ERROR,
	STEP_WAIT,
};

static void
imap_parser_defaults(struct imap_parser_limits *l)
{
	if (l->line_max == 0)
		l->line_max = 64 * 1024;
	if (l->literal_max == 0)
		l->literal_max = 64 * 1024 * 1024;
	if (l->literal_total_max == 0)
		l->literal_total_max = l->literal_max <= UINT64_MAX / 2 ?
		    l->literal_max * 2 :
		    UINT64_MAX;
	if (l->skip_max == 0)
		l->skip_max = 64 * 1024 * 1024;
	if (l->args_max == 0)
		l->args_max = 10000;
	if (l->depth_max == 0)
		l->depth_max = 32;
}

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *limits, unsigned flags)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	if (limits != NULL)
		p->lim = *limits;
	imap_parser_defaults(&p->lim);
	p->flags = flags;
	p->stack = xcalloc(p->lim.depth_max + 1, sizeof(*p->stack));
	p->st = ST_TAG;
	return p;
}

void
imap_parser_set_flags(struct imap_parser *p, unsigned flags)
{
	p->flags = flags;
}

static void
imap_arg_clear(struct imap_arg *a)
{
	size_t i;

	for (i = 0; i < a->count; i++)
		imap_arg_clear(&a->list[i]);
	free(a->list);
	free(a->str);
}

/* Drops the command being built. */
static void
imap_parser_reset(struct imap_parser *p)
{
	unsigned d;
	size_t i;

	for (d = 0; d <= p->depth; d++) {
		for (i = 0; i < p->stack[d].n; i++)
			imap_arg_clear(&p->stack[d].items[i]);
		free(p->stack[d].items);
		memset(&p->stack[d], 0, sizeof(p->stack[d]));
	}
	free(p->tag);
	free(p->name);
	p->tag = p->name = NULL;
	p->depth = 0;
	p->nargs = 0;
	p->line_len = 0;
	p->tok_len = 0;
	p->after_sp = 0;
	p->lit_total = 0;
	free(p->br_head);
	p->br_head = NULL;
	p->br_head_len = 0;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	imap_parser_reset(p);
	free(p->stack);
	/* The token buffer may still hold a LOGIN password. */
	xfree_secret(p->tok, p->tok_cap);
	free(p->err_tag);
	free(p->err_name);
	free(p);
	*pp = NULL;
}

void
imap_cmd_free(struct imap_cmd **cmdp)
{
	struct imap_cmd *cmd = *cmdp;
	size_t i;

	if (cmd == NULL)
		return;
	for (i = 0; i < cmd->nargs; i++)
		imap_arg_clear(&cmd->args[i]);
	free(cmd->args);
	free(cmd->tag);
	free(cmd->name);
	free(cmd);
	*cmdp = NULL;
}

static void
tok_add(struct imap_parser *p, const char *s, size_t n)
{
	if (p->tok_len + n + 1 > p->tok_cap) {
		p->tok_cap = p->tok_cap ? p->tok_cap : 64;
		while (p->tok_len + n + 1 > p->tok_cap)
			p->tok_cap *= 2;
		p->tok = xrealloc(p->tok, p->tok_cap);
	}
	memcpy(p->tok + p->tok_len, s, n);
	p->tok_len += n;
	p->tok[p->tok_len] = '\0';
}

/* Takes the token as a new string and empties the buffer. */
static char *
tok_take(struct imap_parser *p)
{
	char *s = xmalloc(p->tok_len + 1);

	if (p->tok_len > 0)
		memcpy(s, p->tok, p->tok_len);
	s[p->tok_len] = '\0';
	p->tok_len = 0;
	return s;
}

/*
 * Records an error for the current command and chooses how to go on:
 * next is the state that drops the rest of the command.
 */
static enum imap_step
imap_parser_fail(struct imap_parser *p, enum imap_perr code, const char *text,
    enum imap_pstate next)
{
	free(p->err_tag);
	free(p->err_name);
	p->err_tag = p->tag != NULL ? xstrdup(p->tag) : NULL;
	p->err_name = p->name != NULL ? xstrdup(p->name) : NULL;
	p->err.command = p->err_name;
	p->err.code = code;
	p->err.text = text;
	p->err.tag = p->err_tag;
	p->err.fatal = next == ST_DEAD;
	imap_parser_reset(p);
	p->skip_lit = 0;
	p->skip_num = 0;
	p->st = next;
	return STEP_ERROR;
}

static enum imap_step
imap_parser_push(struct imap_parser *p, struct imap_arg *arg)
{
	struct imap_plevel *lv = &p->stack[p->depth];

	if (p->nargs >= p->lim.args_max) {
		imap_arg_clear(arg);
		return imap_parser_fail(p, IMAP_PERR_TOO_MANY_ARGS,
		    "Too many arguments", ST_SKIP_LINE);
	}
	if (lv->n == lv->cap) {
		lv->cap = lv->cap ? lv->cap * 2 : 4;
		lv->items = xreallocarray(lv->items, lv->cap, sizeof(*arg));
	}
	lv->items[lv->n++] = *arg;
	p->nargs++;
	p->st = ST_AFTER_ARG;
	return STEP_MORE;
}

/* Ends the token as an argument of the given type. */
static enum imap_step
imap_parser_push_tok(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg arg;

	memset(&arg, 0, sizeof(arg));
	arg.type = type;
	arg.len = p->tok_len;
	arg.str = tok_take(p);
	arg.literal8 = type == IMAP_ARG_LITERAL && p->lit8;
	if (type == IMAP_ARG_ATOM && strcasecmp(arg.str, "NIL") == 0)
		arg.type = IMAP_ARG_NIL;
	return imap_parser_push(p, &arg);
}

static enum imap_step
imap_parser_open(struct imap_parser *p)
{
	if (p->depth >= p->lim.depth_max)
		return imap_parser_fail(p, IMAP_PERR_TOO_DEEP,
		    "Lists nested too deeply", ST_SKIP_LINE);
	if (p->nargs >= p->lim.args_max)
		return imap_parser_fail(p, IMAP_PERR_TOO_MANY_ARGS,
		    "Too many arguments", ST_SKIP_LINE);
	p->depth++;
	p->nargs++;
	memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
	p->st = ST_ARG;
	p->after_sp = 0;
	return STEP_MORE;
}

static enum imap_step
imap_parser_close(struct imap_parser *p)
{
	struct imap_plevel lv = p->stack[p->depth];
	struct imap_arg arg;

	if (p->depth == 0)
		return imap_parser_fail(p, IMAP_PERR_SYNTAX, "Unexpected ')'",
		    ST_SKIP_LINE);
	memset(&p->stack[p->depth], 0, sizeof(lv));
	p->depth--;
	memset(&arg, 0, sizeof(arg));
	arg.type = IMAP_ARG_LIST;
	arg.list = lv.items;
	arg.count = lv.n;
	/* The list itself was counted when it was opened. */
	p->nargs--;
	return imap_parser_push(p, &arg);
}

/* The command line ended: hand the command out. */
static enum imap_step
imap_parser_finish(struct imap_parser *p, struct imap_cmd **cmd)
{
	struct imap_cmd *c;

	if (p->depth > 0)
		return imap_parser_fail(p, IMAP_PERR_SYNTAX, "Unclosed list",
		    ST_TAG);
	c = xcalloc(1, sizeof(*c));
	c->tag = p->tag;
	c->name = p->name;
	c->args = p->stack[0].items;
	c->nargs = p->stack[0].n;
	memset(&p->stack[0], 0, sizeof(p->stack[0]));
	p->tag = p->name = NULL;
	imap_parser_reset(p);
	p->st = ST_TAG;
	*cmd = c;
	return STEP_CMD;
}

/* RFC 3501 ATOM-CHAR: printable ASCII but atom-specials. */
static int
is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* A tag is 1*<any ASTRING-CHAR except "+">. */
static int
is_tag_char(unsigned char c)
{
	return (is_atom_char(c) || c == ']') && c != '+';
}

/* Our wide atom: printable ASCII but SP ( ) { " (see imap_parser.h). */
static int
is_wide_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){\"", c) == NULL;
}

static enum imap_step
imap_parser_tag(struct imap_parser *p, unsigned char c)
{
	if (is_tag_char(c)) {
		tok_add(p, (const char *)&c, 1);
		return STEP_MORE;
	}
	if ((c == '\r' || c == '\n') && p->tok_len == 0) {
		/* An empty line: ignored, like most servers do. */
		p->line_len = 0;
		return STEP_MORE;
	}
	if (c == ' ' && p->tok_len > 0) {
		p->tag = tok_take(p);
		p->st = ST_NAME;
		return STEP_MORE;
	}
	if ((c == '\r' || c == '\n') && p->tok_len > 0) {
		p->tag = tok_take(p);
		return imap_parser_fail(p, IMAP_PERR_SYNTAX, "Missing command",
		    c == '\n' ? ST_TAG : ST_SKIP_LINE);
	}
	p->tok_len = 0;
	return imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid tag",
	    c == '\n' ? ST_TAG : ST_SKIP_LINE);
}

static enum imap_step
imap_parser_name(struct imap_parser *p, unsigned char c, struct imap_cmd **cmd)
{
	size_t i;

	if (is_atom_char(c)) {
		tok_add(p, (const char *)&c, 1);
		return STEP_MORE;
	}
	if (p->tok_len == 0 || (c != ' ' && c != '\r' && c != '\n')) {
		const char *text =
		    p->tok_len == 0 ? "Missing command" : "Invalid command";

		return imap_parser_fail(p, IMAP_PERR_SYNTAX, text,
		    c == '\n' ? ST_TAG : ST_SKIP_LINE);
	}
	for (i = 0; i < p->tok_len; i++)
		if (p->tok[i] >= 'a' && p->tok[i] <= 'z')
			p->tok[i] -= 'a' - 'A';
	p->name = tok_take(p);
	if (c == ' ') {
		p->st = ST_ARG;
		p->after_sp = 1;
		return STEP_MORE;
	}
	if (c == '\r') {
		p->st = ST_CR;
		return STEP_MORE;
	}
	return imap_parser_finish(p, cmd);
}

/* The first byte of an argument. */
static enum imap_step
imap_parser_arg(struct imap_parser *p, unsigned char c)
{
	if (c == '(')
		return imap_parser_open(p);
	if (c == ')' && !p->after_sp)
		return imap_parser_close(p);
	if (c == '"') {
		p->st = ST_QUOTED;
		return STEP_MORE;
	}
	if (c == '{' || c == '~') {
		p->lit8 = c == '~';
		p->lit_num = 0;
		p->lit_digits = 0;
		p->lit_plus = 0;
		p->st = c == '~' ? ST_TILDE : ST_LIT_NUM;
		return STEP_MORE;
	}
	if (is_wide_atom_char(c)) {
		tok_add(p, (const char *)&c, 1);
		p->st = c == '[' ? ST_BRACKET : ST_ATOM;
		p->br_quote = p->br_esc = 0;
		return STEP_MORE;
	}
	return imap_parser_fail(p, IMAP_PERR_SYNTAX,
	    c == '\r' || c == '\n' ? "Missing argument" : "Invalid argument",
	    c == '\n' ? ST_TAG : ST_SKIP_LINE);
}

/* After an argument: SP, ")" or the end of the line. */
static enum imap_step
imap_parser_after(struct imap_parser *p, unsigned char c, struct imap_cmd **cmd)
{
	if (c == ' ') {
		p->st = ST_ARG;
		p->after_sp = 1;
		return STEP_MORE;
	}
	if (c == ')')
		return imap_parser_close(p);
	if (c == '\r') {
		p->st = ST_CR;
		return STEP_MORE;
	}
	if (c == '\n')
		return imap_parser_finish(p, cmd);
	return imap_parser_fail(p, IMAP_PERR_SYNTAX,
	    "Missing space between arguments", ST_SKIP_LINE);
}

static enum imap_step
imap_parser_atom(struct imap_parser *p, unsigned char c, struct imap_cmd **cmd)
{
	enum imap_step r;

	if (is_wide_atom_char(c)) {
		tok_add(p, (const char *)&c, 1);
		if (c == '[') {
			p->st = ST_BRACKET;
			p->br_quote = p->br_esc = 0;
		}
		return STEP_MORE;
	}
	if (c != ' ' && c != ')' && c != '\r' && c != '\n')
		return imap_parser_fail(p, IMAP_PERR_SYNTAX,
		    "Invalid character in atom", ST_SKIP_LINE);
	r = imap_parser_push_tok(p, IMAP_ARG_ATOM);
	if (r != STEP_MORE)
		return r;
	return imap_parser_after(p, c, cmd);
}

/* Inside "[...]": SP, parentheses and quoted strings belong to the atom. */
static enum imap_step
imap_parser_bracket(struct imap_parser *p, unsigned char c)
{
	if (c < 0x20 || c >= 0x7f)
		return imap_parser_fail(p, IMAP_PERR_SYNTAX,
		    "Unterminated section", c == '\n' ? ST_TAG : ST_SKIP_LINE);
	tok_add(p, (const char *)&c, 1);
	if (p->br_esc) {
		p->br_esc = 0;
	} else if (p->br_quote) {
		p->br_esc = c == '\\';
		p->br_quote = c != '"';
	} else if (c == '"') {
		p->br_quote = 1;
	} else if (c == ']') {
		p->st = ST_ATOM;
	} else if (c == '{') {
		/*
		 * A header-fld-name may be a literal (RFC 9051 section 9,
		 * header-list): the atom so far waits while it is read, and
		 * the name joins it as a quoted string.
		 */
		p->tok[--p->tok_len] = '\0';
		p->br_head = tok_take(p);
		p->br_head_len = strlen(p->br_head);
		p->lit8 = 0;
		p->lit_num = 0;
		p->lit_digits = 0;
		p->lit_plus = 0;
		p->st = ST_LIT_NUM;
	} else if (c == '[') {
		return imap_parser_fail(p, IMAP_PERR_SYNTAX,
		    "Invalid character in section", ST_SKIP_LINE);
	}
	return STEP_MORE;
}

static enum imap_step
imap_parser_quoted(struct imap_parser *p, unsigned char c)
{
	if (p->st == ST_QUOTED_ESC) {
		if (c != '"' && c != '\\')
			return imap_parser_fail(p, IMAP_PERR_SYNTAX,
			    "Invalid escape in quoted string", ST_SKIP_LINE);
		tok_add(p, (const char *)&c, 1);
		p->st = ST_QUOTED;
		return STEP_MORE;
	}
	if (c == '\\') {
		p->st = ST_QUOTED_ESC;
		return STEP_MORE;
	}
	if (c == '"') {
		if (!imap_utf7_valid_utf8((const unsigned char *)p->tok,
		        p->tok_len))
			return imap_parser_fail(p, IMAP_PERR_SYNTAX,
			    "Invalid UTF-8 in quoted string", ST_SKIP_LINE);
		return imap_parser_push_tok(p, IMAP_ARG_STRING);
	}
	if (c == '\0' || c == '\r' || c == '\n' ||
	    (c >= 0x80 && !(p->flags & IMAP_PARSER_UTF8)))
		return imap_parser_fail(p, IMAP_PERR_SYNTAX,
		    "Invalid character in quoted string",
		    c == '\n' ? ST_TAG : ST_SKIP_LINE);
	tok_add(p, (const char *)&c, 1);
	return STEP_MORE;
}

/* "{" number64 ["+"] "}" CRLF, RFC 9051 and RFC 7888. */
static enum imap_step
imap_parser_lithdr(struct imap_parser *p, unsigned char c)
{
	enum imap_pstate next = c == '\n' ? ST_TAG : ST_SKIP_LINE;

	if (p->st == ST_LIT_NUM && c >= '0' && c <= '9') {
		if (p->lit_num > (UINT64_C(0x7fffffffffffffff) - 9) / 10)
			return imap_parser_fail(p, IMAP_PERR_SYNTAX,
			    "Literal size too large", next);
		p->lit_num = p->lit_num * 10 + (c - '0');
		p->lit_digits++;
		return STEP_MORE;
	}
	if (p->st == ST_LIT_NUM && p->lit_digits > 0 && c == '+') {
		p->lit_plus = 1;
		p->st = ST_LIT_CLOSE;
		return STEP_MORE;
	}
	if ((p->st == ST_LIT_NUM && p->lit_digits > 0 && c == '}') ||
	    (p->st == ST_LIT_CLOSE && c == '}')) {
		p->st = ST_LIT_CR;
		return STEP_MORE;
	}
	if (p->st == ST_LIT_CR && c == '\r') {
		p->st = ST_LIT_LF;
		return STEP_MORE;
	}
	if ((p->st == ST_LIT_CR || p->st == ST_LIT_LF) && c == '\n')
		return STEP_WAIT;
	return imap_parser_fail(p, IMAP_PERR_SYNTAX, "Invalid literal", next);
}

/* The announcement is complete: check limits, then ask the caller. */
static enum imap_step
imap_parser_announced(struct imap_parser *p)
{
	int too_big = p->lit_num > p->lim.literal_max ||
	    p->lit_num > p->lim.literal_total_max - p->lit_total;

	if (p->lit_plus && (p->flags & IMAP_PARSER_LITERAL_MINUS) &&
	    p->lit_num > IMAP_LITERAL_MINUS_MAX)
		too_big = 1;
	if (too_big && !p->lit_plus)
		return imap_parser_fail(p, IMAP_PERR_LITERAL_TOO_BIG,
		    "Literal too big", ST_TAG);
	if (too_big) {
		p->skip_left = p->lit_num;
		return imap_parser_fail(p, IMAP_PERR_LITERAL_TOO_BIG,
		    "Literal too big",
		    p->lit_num > p->lim.skip_max ? ST_DEAD : ST_SKIP_LIT);
	}
	if (p->nargs >= p->lim.args_max) {
		p->skip_left = p->lit_num;
		return imap_parser_fail(p, IMAP_PERR_TOO_MANY_ARGS,
		    "Too many arguments", p->lit_plus ? ST_SKIP_LIT : ST_TAG);
	}
	p->pending.size = p->lit_num;
	p->pending.command = p->name;
	p->pending.sync = !p->lit_plus;
	p->pending.literal8 = p->lit8;
	p->st = ST_LIT_WAIT;
	return STEP_WAIT;
}

/*
 * Drops bytes to the end of the line; a line that ends with "{n+}" is
 * followed by n literal bytes which are dropped too, so that they are not
 * taken for commands.
 */
static void
imap_parser_skip(struct imap_parser *p, unsigned char c)
{
	if (c == '\n') {
		if (p->skip_lit == 3) {
			p->skip_left = p->skip_num;
			p->st = ST_SKIP_LIT;
		} else {
			p->st = ST_TAG;
		}
		p->skip_lit = 0;
		return;
	}
	if (c == '{') {
		p->skip_lit = 1;
		p->skip_num = 0;
	} else if (p->skip_lit == 1 && c >= '0' && c <= '9' &&
	    p->skip_num < UINT64_C(1) << 60) {
		p->skip_num = p->skip_num * 10 + (c - '0');
	} else if (p->skip_lit == 1 && c == '+') {
		p->skip_lit = 2;
	} else if (p->skip_lit == 2 && c == '}') {
		p->skip_lit = 3;
	} else if (!(p->skip_lit == 3 && c == '\r')) {
		p->skip_lit = 0;
	}
}

/* Copies literal bytes in bulk; returns how many were taken. */
static size_t
imap_parser_litdata(struct imap_parser *p, const char *data, size_t len)
{
	size_t n = len < p->lit_left ? len : (size_t)p->lit_left;

	if (!p->lit8 && memchr(data, '\0', n) != NULL)
		p->lit_nul = 1;
	tok_add(p, data, n);
	p->lit_left -= n;
	return n;
}

/*
 * A literal inside "[...]" ends: it becomes a quoted string of the atom,
 * which goes on; only what a quoted string can hold is taken.
 */
static enum imap_step
imap_parser_litdone_bracket(struct imap_parser *p)
{
	char *lit = tok_take(p);
	enum imap_step r = STEP_MORE;

	tok_add(p, p->br_head, p->br_head_len);
	free(p->br_head);
	p->br_head = NULL;
	p->br_head_len = 0;
	tok_add(p, "\"", 1);
	for (const char *c = lit; *c != '\0'; c++) {
		unsigned char u = (unsigned char)*c;

		if (u < 0x20 || u >= 0x7f) {
			r = imap_parser_fail(p, IMAP_PERR_SYNTAX,
			    "Invalid header field name", ST_SKIP_LINE);
			break;
		}
		if (u == '"' || u == '\\')
			tok_add(p, "\\", 1);
		tok_add(p, c, 1);
	}
	free(lit);
	if (r != STEP_MORE)
		return r;
	tok_add(p, "\"", 1);
	p->br_quote = p->br_esc = 0;
	p->st = ST_BRACKET;
	return STEP_MORE;
}

static enum imap_step
imap_parser_litdone(struct imap_parser *p)
{
	if (p->lit_nul)
		return imap_parser_fail(p, IMAP_PERR_SYNTAX, "NUL in literal",
		    ST_SKIP_LINE);
	if (p->br_head != NULL)
		return imap_parser_litdone_bracket(p);
	return imap_parser_push_tok(p, IMAP_ARG_LITERAL);
}

/* One byte through the states that read a command. */
static enum imap_step
imap_parser_byte(struct imap_parser *p, unsigned char c, struct imap_cmd **cmd)
{
	enum imap_step r;

	switch (p->st) {
	case ST_TAG:
		return imap_parser_tag(p, c);
	case ST_NAME:
		return imap_parser_name(p, c, cmd);
	case ST_ARG:
		return imap_parser_arg(p, c);
	case ST_AFTER_ARG:
		return imap_parser_after(p, c, cmd);
	case ST_ATOM:
		return imap_parser_atom(p, c, cmd);
	case ST_BRACKET:
		return imap_parser_bracket(p, c);
	case ST_TILDE:
		if (c == '{') {
			p->st = ST_LIT_NUM;
			return STEP_MORE;
		}
		tok_add(p, "~", 1);
		p->st = ST_ATOM;
		return imap_parser_atom(p, c, cmd);
	case ST_QUOTED:
	case ST_QUOTED_ESC:
		return imap_parser_quoted(p, c);
	case ST_LIT_NUM:
	case ST_LIT_CLOSE:
	case ST_LIT_CR:
	case ST_LIT_LF:
		r = imap_parser_lithdr(p, c);
		return r == STEP_WAIT ? imap_parser_announced(p) : r;
	case ST_CR:
		if (c == '\n')
			return imap_parser_finish(p, cmd);
		return imap_parser_fail(p, IMAP_PERR_SYNTAX, "CR without LF",
		    ST_SKIP_LINE);
	case ST_SKIP_LINE:
		imap_parser_skip(p, c);
		return STEP_MORE;
	default:
		/* ST_LIT_WAIT, ST_LIT_DATA, ST_SKIP_LIT, ST_LINE are handled
		 * by the callers in bulk. */
		return STEP_MORE;
	}
}

/* States where a byte counts toward limits.line_max. */
static int
imap_parser_counts(const struct imap_parser *p)
{
	return p->st != ST_SKIP_LINE && p->st != ST_SKIP_LIT &&
	    p->st != ST_LIT_DATA && p->st != ST_LINE;
}

/* Handles the states that take many bytes at once; returns bytes taken. */
static size_t
imap_parser_bulk(struct imap_parser *p, const char *data, size_t len)
{
	size_t n;

	if (p->st == ST_SKIP_LIT) {
		n = len < p->skip_left ? len : (size_t)p->skip_left;
		p->skip_left -= n;
		if (p->skip_left == 0)
			p->st = ST_SKIP_LINE;
		return n;
	}
	return imap_parser_litdata(p, data, len);
}

int
imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *used, struct imap_cmd **cmd)
{
	size_t i = 0;
	enum imap_step r = STEP_MORE;

	*cmd = NULL;
	while (i < len && r == STEP_MORE) {
		if (p->st == ST_DEAD || p->st == ST_LIT_WAIT ||
		    p->st == ST_LINE)
			break;
		if (p->st == ST_SKIP_LIT || p->st == ST_LIT_DATA) {
			i += imap_parser_bulk(p, data + i, len - i);
			if (p->st == ST_LIT_DATA && p->lit_left == 0)
				r = imap_parser_litdone(p);
			continue;
		}
		if (imap_parser_counts(p) && ++p->line_len > p->lim.line_max) {
			r = imap_parser_fail(p, IMAP_PERR_LINE_TOO_LONG,
			    "Command line too long", ST_SKIP_LINE);
			/* The byte is dropped with the rest of the line. */
			imap_parser_skip(p, (unsigned char)data[i++]);
			break;
		}
		r = imap_parser_byte(p, (unsigned char)data[i++], cmd);
	}
	*used = i;
	if (p->st == ST_DEAD)
		return -1;
	return r == STEP_CMD ? 1 : r == STEP_ERROR ? -1 : 0;
}

const struct imap_literal_info *
imap_parser_literal(const struct imap_parser *p)
{
	return p->st == ST_LIT_WAIT ? &p->pending : NULL;
}

int
imap_parser_literal_accept(struct imap_parser *p)
{
	if (p->st != ST_LIT_WAIT)
		return -1;
	p->lit_left = p->pending.size;
	p->lit_total += p->pending.size;
	p->lit_nul = 0;
	p->tok_len = 0;
	p->st = ST_LIT_DATA;
	/* An empty literal is complete at once (never fails: its argument
	 * was counted when it was announced). */
	if (p->lit_left == 0)
		(void)imap_parser_litdone(p);
	return 0;
}

int
imap_parser_literal_refuse(struct imap_parser *p)
{
	if (p->st != ST_LIT_WAIT)
		return -1;
	p->skip_left = p->pending.size;
	if (p->pending.sync)
		imap_parser_fail(p, IMAP_PERR_REFUSED, "Literal refused",
		    ST_TAG);
	else
		imap_parser_fail(p, IMAP_PERR_REFUSED, "Literal refused",
		    p->skip_left > p->lim.skip_max ? ST_DEAD : ST_SKIP_LIT);
	return 0;
}

const struct imap_parser_error *
imap_parser_error(const struct imap_parser *p)
{
	return &p->err;
}

/* Finishes skipping in line mode; returns bytes taken. */
static size_t
imap_parser_line_skip(struct imap_parser *p, const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && (p->st == ST_SKIP_LINE || p->st == ST_SKIP_LIT)) {
		if (p->st == ST_SKIP_LIT)
			i += imap_parser_bulk(p, data + i, len - i);
		else
			imap_parser_skip(p, (unsigned char)data[i++]);
	}
	return i;
}

int
imap_parser_line(struct imap_parser *p, const char *data, size_t len,
    size_t *used, char **line)
{
	size_t i = imap_parser_line_skip(p, data, len);
	const char *lf;
	size_t n;

	*line = NULL;
	*used = i;
	if (p->st == ST_TAG && p->tok_len == 0)
		p->st = ST_LINE;
	if (p->st != ST_LINE)
		return p->st == ST_SKIP_LINE || p->st == ST_SKIP_LIT ? 0 : -1;
	lf = memchr(data + i, '\n', len - i);
	n = lf != NULL ? (size_t)(lf - (data + i)) : len - i;
	if (p->tok_len + n > p->lim.line_max) {
		xfree_secret(p->tok, p->tok_cap);
		p->tok = NULL;
		p->tok_len = p->tok_cap = 0;
		p->st = ST_SKIP_LINE;
		p->err.code = IMAP_PERR_LINE_TOO_LONG;
		p->err.text = "Line too long";
		p->err.tag = NULL;
		p->err.fatal = 0;
		return -1;
	}
	tok_add(p, data + i, n);
	*used = i + n + (lf != NULL);
	if (lf == NULL)
		return 0;
	if (p->tok_len > 0 && p->tok[p->tok_len - 1] == '\r')
		p->tok[--p->tok_len] = '\0';
	*line = tok_take(p);
	memset(p->tok, 0, p->tok_cap);
	p->st = ST_TAG;
	return 1;
}

const char *
imap_arg_astring(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return NULL;
	return arg->str;
}

int
imap_arg_atom_is(const struct imap_arg *arg, const char *word)
{
	return arg != NULL &&
	    (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	    strcasecmp(arg->str, word) == 0;
}

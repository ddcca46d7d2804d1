/*
 * Internal to imap/: the server's state that sessions read, and the
 * per-connection session (the state machine of RFC 9051 section 3) that
 * imap_server starts and, at shutdown, closes.
 */
#ifndef IMAP_IMAP_SESSION_H
#define IMAP_IMAP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_server.h"

struct auth_request;
struct conn;
struct imap_arg;
struct imap_cmd;
struct imap_idle;
struct wheel;
struct wheel_timer;
struct imap_parser;
struct imap_catchup;
struct imap_search;
struct imap_seqset;
struct store_expunge;
struct store_view;
struct hub_sub;

/* RFC 9051 section 3 states, as bits so commands can list where they run. */
#define IMAP_STATE_NOAUTH 0x1
#define IMAP_STATE_AUTH 0x2
#define IMAP_STATE_SELECTED 0x4

/* What the session reads next. */
enum imap_phase {
	IMAP_PHASE_CMD,     /* commands */
	IMAP_PHASE_AUTH,    /* a line answering AUTHENTICATE's "+ " */
	IMAP_PHASE_BUSY,    /* waiting for auth; input paused */
	IMAP_PHASE_CLOSING, /* the last response is being flushed */
	IMAP_PHASE_IDLE,    /* IDLE: only the "DONE" line is read */
};

/* Extensions the client turned on with ENABLE (RFC 5161). */
#define IMAP_ENABLED_IMAP4REV2 0x1
#define IMAP_ENABLED_CONDSTORE 0x2
#define IMAP_ENABLED_QRESYNC 0x4
#define IMAP_ENABLED_UTF8 0x8

/*
 * The selected mailbox (RFC 9051 section 3.3): what this session last told
 * the client, so updates are computed from the shared view when the client
 * may hear them. No copy of the message list.
 */
struct imap_selected {
	struct store_view *view; /* one reference held */
	struct hub_sub *sub;     /* (user, mailbox id) */
	uint64_t modseq;         /* flags and expunges reported up to here */
	uint32_t exists;         /* the last EXISTS reported */
	uint32_t uidnext;        /* messages below it have been announced */
	uint32_t recent;         /* the last RECENT reported */
	uint32_t recent_lo;      /* \Recent for us from this UID on ... */
	uint32_t recent_hi;      /* ... to below this one, which grows with
	                            the news while our claim is the newest */
	uint32_t recent_gen;     /* the claim generation of our SELECT */
	int readonly;            /* EXAMINE */
	/*
	 * Beyond the view's expunge window (imap_select.c): the index's
	 * expunges since modseq, up to behind_modseq, while the client has
	 * not heard them; and the read of them in flight.
	 */
	struct store_expunge *behind;
	size_t nbehind;
	uint64_t behind_modseq;
	struct imap_catchup *catchup;
};

/*
 * An operation in flight on the I/O pool while input is paused. The
 * request embeds this first; the session sets s to NULL when it ends
 * first, and the completion then only cleans up.
 */
struct imap_async {
	struct imap_session *s;
};

/*
 * Kept small: an idle logged-in session is this struct, its conn and no
 * parser (the parser exists only while a command is being read).
 */
struct imap_session {
	struct imap_server *srv; /* NULL once closed by the server */
	struct imap_session *next, *prev;
	struct conn *conn;          /* NULL once the connection is gone */
	struct imap_parser *parser; /* NULL between commands */
	uint32_t sid;
	unsigned state; /* one IMAP_STATE_* bit */
	enum imap_phase phase;
	unsigned enabled; /* IMAP_ENABLED_* */
	int in_run;       /* inside a handler: defer the free */
	int mailbox_op;   /* our DELETE or RENAME is in flight */
	int dead;         /* ended while in_run */
	unsigned ncmds, nbad;
	const char *close_reason; /* static, for the disconnect line */
	char *user;               /* once authenticated */
	char *tag;                /* the LOGIN or AUTHENTICATE in progress */
	struct auth_request *auth_req;
	struct imap_async *async; /* SELECT, LIST, FETCH, SEARCH... in flight */
	struct imap_selected *sel; /* NULL unless selected */
	struct imap_idle *idle;    /* NULL unless in IDLE */
	/* SEARCHRES "$" (imap_search.c); NULL while nothing is saved */
	struct imap_searchres *saved;
};

/* The saved SEARCH result of RFC 5182: UIDs, ascending. */
struct imap_searchres {
	size_t n;
	uint32_t uids[];
};

struct imap_server {
	struct event_base *base;
	struct imap_settings set; /* strings owned, defaults filled in */
	struct imap_env env;
	struct imap_session *sessions; /* open sessions, linked */
	size_t nsessions;
	struct wheel *idle_wheel; /* IDLE keepalives (imap_idle.c) */
};

/*
 * Starts a session on conn (owned by the session from now on): greets and
 * reads. The session links itself into srv and unlinks when it ends.
 */
void imap_session_start(struct imap_server *srv, struct conn *conn);

/* Closes a session at server shutdown: everything goes at once. */
void imap_session_close(struct imap_session *s);

/* Queues one response line (CRLF added); nothing once the conn is gone. */
void imap_session_printf(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Answers "tag BAD text" (or "* BAD" with a NULL tag) and counts a client
 * error; after the last one allowed "* BYE" follows and the session closes.
 */
void imap_session_bad(struct imap_session *s, const char *tag,
    const char *text);

/* Answers "tag NO text" and counts it like imap_session_bad(). */
void imap_session_fail(struct imap_session *s, const char *tag,
    const char *text);

/*
 * Writes "* BYE text" and closes once it is flushed; reason (static) goes
 * into the disconnect log line.
 */
void imap_session_bye(struct imap_session *s, const char *reason,
    const char *text);

/* Stops reading while auth works, and resumes it. */
void imap_session_busy(struct imap_session *s);
void imap_session_idle(struct imap_session *s);

/* 1 when LOGIN and AUTHENTICATE may run on this connection now. */
int imap_session_plaintext_ok(struct imap_session *s);

/* Writes the capability list, without line end, after a prefix. */
void imap_session_capability(struct imap_session *s, const char *prefix,
    const char *suffix);

/*
 * Reads one plain line between commands (an AUTHENTICATE response, IDLE's
 * DONE) like imap_parser_line(): 1 with *line (free it with
 * xfree_secret_str()), 0 when more input is needed, -1 when it is too
 * long. *progress says whether input was consumed.
 */
int imap_session_line(struct imap_session *s, char **line, int *progress);

/* Handles buffered input until it runs out or the session must wait. */
void imap_session_run(struct imap_session *s);

/* Frees the session and everything it holds (the conn included). */
void imap_session_free(struct imap_session *s);

/* imap_command.c: runs one parsed command in the session's state. */
void imap_command_run(struct imap_session *s, struct imap_cmd *cmd);

/* imap_auth.c: LOGIN, AUTHENTICATE and its response line, cleanup. */
void imap_auth_login(struct imap_session *s, struct imap_cmd *cmd);
void imap_auth_authenticate(struct imap_session *s, struct imap_cmd *cmd);
void imap_auth_response(struct imap_session *s, const char *line);
void imap_auth_clear(struct imap_session *s);

/*
 * imap_select.c: SELECT, EXAMINE, CLOSE, UNSELECT, and the untagged
 * updates of the selected mailbox. imap_select_updates() writes what
 * changed since the client last heard (EXPUNGE only when expunge_ok, RFC
 * 3501 section 7.4.1); imap_select_expunge_ok() is that rule for a
 * command name. imap_select_clear() drops the selection silently.
 */
void imap_select_select(struct imap_session *s, struct imap_cmd *cmd);
void imap_select_close(struct imap_session *s, struct imap_cmd *cmd);
void imap_select_unselect(struct imap_session *s, struct imap_cmd *cmd);
void imap_select_updates(struct imap_session *s, int expunge_ok);
int imap_select_expunge_ok(const char *command);

/*
 * Once QRESYNC is on, a UID command may carry expunges as VANISHED (RFC
 * 7162 section 3.2.10): writes the updates withheld before it; otherwise
 * does nothing.
 */
void imap_select_uid_updates(struct imap_session *s);
void imap_select_clear(struct imap_session *s);

/*
 * The session's own numbering (RFC 3501 section 2.3.1.2) while expunges
 * are withheld (section 7.4.1): the list the client knows is the view's
 * messages it heard of plus the expunged ones it has not heard gone.
 * imap_select_seq() is the client's sequence number of uid, a message it
 * knows. imap_select_resolve() resolves a parsed set (uid: UIDs, else
 * sequence numbers) against that list into the UIDs still in the view,
 * ascending (*out, the caller frees it); returns 0, or -1 for a set that
 * names a number beyond the list (BAD). imap_select_fetch_flags() writes
 * "* n FETCH (FLAGS (...))" for uid, with UID when with_uid, and UID and
 * MODSEQ once CONDSTORE is on; nothing when uid has left the view.
 */
uint32_t imap_select_seq(struct imap_session *s, uint32_t uid);
int imap_select_resolve(struct imap_session *s, const struct imap_seqset *set,
    int uid, uint32_t **out, size_t *n);
void imap_select_fetch_flags(struct imap_session *s, uint32_t uid,
    int with_uid);

/* Whether uid is \Recent for this session (RFC 3501 section 2.3.2). */
int imap_select_is_recent(const struct imap_selected *sel, uint32_t uid);

/*
 * Writes name (UTF-8) as an IMAP mailbox name: modified UTF-7 unless
 * UTF8=ACCEPT or IMAP4rev2 is on, quoted. Decodes a client's name the
 * other way: returns 0 with *out (the caller frees it) or -1.
 */
void imap_select_put_name(struct imap_session *s, const char *name);
int imap_select_name_in(struct imap_session *s, const char *in, char **out);

/* imap_list.c: LIST, LSUB (RFC 9051 6.3.9, RFC 5258) and STATUS. */
void imap_list_list(struct imap_session *s, struct imap_cmd *cmd);
void imap_list_lsub(struct imap_session *s, struct imap_cmd *cmd);
void imap_list_status(struct imap_session *s, struct imap_cmd *cmd);

/*
 * imap_idle.c: IDLE (RFC 2177). imap_idle_input() reads the DONE line;
 * imap_idle_free() ends an IDLE without answering.
 */
void imap_idle_start(struct imap_session *s, struct imap_cmd *cmd);
int imap_idle_input(struct imap_session *s);
void imap_idle_free(struct imap_session *s);
/* The keepalive timer of every idling session of srv fires here. */
void imap_idle_on_timer(struct wheel_timer *t, void *arg);

/*
 * Called in IDLE when the selected view is waking (store_view.h): the
 * updates are written once it is whole again.
 */
void imap_idle_wait_view(struct imap_session *s);

/*
 * imap_fetch.c: FETCH and UID FETCH (RFC 9051 section 6.4.5); they pause
 * input until the last message is written. imap_fetch_uid() runs the UID
 * command: UID FETCH here, UID STORE and UID EXPUNGE in imap_store.c.
 */
void imap_fetch_fetch(struct imap_session *s, struct imap_cmd *cmd);
void imap_fetch_uid(struct imap_session *s, struct imap_cmd *cmd);

/*
 * imap_store.c: STORE (RFC 3501 section 6.4.6), EXPUNGE (6.4.3), UID
 * EXPUNGE (RFC 4315 section 2.1) and the expunge of CLOSE (6.4.2). Each
 * pauses input until the store has committed. For the UID forms args
 * start after the subcommand name. imap_store_close() expunges the
 * \Deleted messages silently, then leaves the mailbox and answers.
 */
void imap_store_store(struct imap_session *s, struct imap_cmd *cmd);
void imap_store_expunge(struct imap_session *s, struct imap_cmd *cmd);
void imap_store_uid_store(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs);
void imap_store_uid_expunge(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs);
void imap_store_close(struct imap_session *s, struct imap_cmd *cmd);

/*
 * imap_append.c: APPEND (RFC 3501 section 6.3.11) and MULTIAPPEND (RFC
 * 3502) with APPENDUID (RFC 4315 section 3); pauses input until the store
 * has committed every message or none. CHECK (RFC 3501 section 6.4.1)
 * answers OK at once: what commands change is durable when they answer.
 */
void imap_append_append(struct imap_session *s, struct imap_cmd *cmd);
void imap_append_check(struct imap_session *s, struct imap_cmd *cmd);

/*
 * imap_mailbox.c: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE; each
 * pauses input until the store answers.
 */
void imap_mailbox_create(struct imap_session *s, struct imap_cmd *cmd);
void imap_mailbox_delete(struct imap_session *s, struct imap_cmd *cmd);
void imap_mailbox_rename(struct imap_session *s, struct imap_cmd *cmd);
void imap_mailbox_subscribe(struct imap_session *s, struct imap_cmd *cmd);
void imap_mailbox_unsubscribe(struct imap_session *s, struct imap_cmd *cmd);

/*
 * imap_copy.c: COPY and MOVE (RFC 3501 section 6.4.7, RFC 6851) with
 * COPYUID (RFC 4315 section 3); each pauses input until the store has
 * committed the copies (and, for MOVE, expunged the sources). For the UID
 * forms args start after the subcommand name; move picks MOVE.
 */
void imap_copy_copy(struct imap_session *s, struct imap_cmd *cmd);
void imap_copy_move(struct imap_session *s, struct imap_cmd *cmd);
void imap_copy_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int move);

/*
 * imap_search.c: SEARCH and UID SEARCH (RFC 9051 section 6.4.4, ESEARCH
 * of RFC 4731). Keys the view answers run at once; header, body, size and
 * date keys pause input while the store reads. For UID SEARCH args start
 * after the subcommand name.
 */
void imap_search_search(struct imap_session *s, struct imap_cmd *cmd);
void imap_search_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs);

/*
 * The search engine SEARCH, SORT and THREAD share. imap_search_run() takes
 * over prog (leaving it empty), resolves its sets (answering BAD with tag
 * and returning -1 when one names no message) and returns 0; it then
 * tests the messages the client knows and calls cb exactly once, maybe
 * before it returns, with the matching UIDs ascending (valid during the
 * call) or with fail, the text after "NO". s is NULL in cb when the
 * session or its selection went meanwhile. Input is paused while the
 * store works and resumes after cb, unless cb has set s->async to an
 * operation of its own.
 */
typedef void (*imap_search_done_cb)(struct imap_session *s,
    const uint32_t *uids, size_t n, const char *fail, void *arg);
int imap_search_run(struct imap_session *s, const char *tag,
    struct imap_search *prog, imap_search_done_cb cb, void *arg);

/*
 * SEARCHRES (RFC 5182). imap_search_resolve() is imap_select_resolve()
 * that also takes "$": the saved UIDs still in the view and known to the
 * client. imap_search_forget() empties the saved result (SELECT, EXAMINE,
 * CLOSE, UNSELECT, and when the session ends).
 */
int imap_search_resolve(struct imap_session *s, const struct imap_seqset *set,
    int uid, uint32_t **out, size_t *n);
void imap_search_forget(struct imap_session *s);

/*
 * imap_sort.c: SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM and
 * DISPLAYTO) and their UID forms; args of the UID forms start after the
 * subcommand name. They pause input while the search and the index read
 * run.
 */
void imap_sort_sort(struct imap_session *s, struct imap_cmd *cmd);
void imap_sort_thread(struct imap_session *s, struct imap_cmd *cmd);
void imap_sort_uid(struct imap_session *s, struct imap_cmd *cmd,
    const struct imap_arg *args, size_t nargs, int thread);

#endif

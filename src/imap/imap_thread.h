/*
 * The pure algorithms of SORT and THREAD (RFC 5256): base subject
 * extraction (section 2.1), and threading a list of messages by
 * ORDEREDSUBJECT and REFERENCES (sections 3 and 4) into the nested
 * thread-list of the THREAD response. No I/O; fuzzable.
 */
#ifndef IMAP_IMAP_THREAD_H
#define IMAP_IMAP_THREAD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the base subject of subject (UTF-8, RFC 2047 already decoded;
 * NULL counts as "") as a new string the caller frees: white space runs
 * folded to one space, "(fwd)" trailers, "Re:", "Fw:", "Fwd:" and
 * "[blob]" leaders and "[Fwd: ...]" wrappers removed (RFC 5256 section
 * 2.1), and ASCII letters upper-cased, so two base subjects compare equal
 * under i;unicode-casemap when their bytes do (approximately: non-ASCII
 * letters are compared as they are, not case-folded). Sets *reply, if not
 * NULL, to 1 when a reply or forward marker was removed, else 0.
 */
char *imap_thread_base_subject(const char *subject, int *reply);

/* One message to thread. Strings may be NULL; nothing is taken over. */
struct imap_thread_msg {
	uint32_t id;             /* what the answer names: seq or UID, > 0 */
	const char *message_id;  /* the Message-ID field value, raw */
	const char *references;  /* the References field value, raw */
	const char *in_reply_to; /* the In-Reply-To field value, raw */
	const char *subject;     /* decoded subject */
	int64_t date;            /* sent date, or INTERNALDATE without one */
};

/*
 * Threads msgs[0..n), given in ascending id order (ties of equal dates go
 * to the lower id), and returns the thread-list of the THREAD response
 * (RFC 5256 section 5: "(1 2)(3 (4)(5))", "" for n == 0) as a new string
 * the caller frees. ORDEREDSUBJECT groups by base subject; REFERENCES is
 * the full algorithm of section 4 (message-ID links without loops, dummy
 * parents pruned, root threads merged by subject). Neither recurses on
 * the depth of a thread.
 */
char *imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n);
char *imap_thread_references(const struct imap_thread_msg *msgs, size_t n);

#endif

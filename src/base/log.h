/*
 * Logging: one line per event, "TIME LEVEL key=value ...", written with a single
 * write(2) so lines from worker threads never interleave. Session events start
 * with sid=, proto= and event=; client-supplied values go through log_quote().
 */
#ifndef BASE_LOG_H
#define BASE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/*
 * Sets the lowest level written and the descriptor lines go to (stderr by
 * default). Call before threads start.
 */
void log_init(enum log_level min, int fd);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s, enum log_level *out);

/* Whether a line at this level would be written (to skip costly formatting). */
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

/* Logs at error level and exits with status 1; for start-up failures only. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

/*
 * Writes s (len bytes, which may hold any byte) into out as a double-quoted
 * string with quotes, backslashes and control or non-ASCII bytes escaped, cut
 * with "..." to fit size. Returns out, always NUL-terminated. size >= 8.
 */
const char *log_quote(char *out, size_t size, const char *s, size_t len);

/* Returns a new session id, unique in this process, for sid= fields. */
uint32_t log_sid_next(void);

/* Format for a session id: printf("sid=" LOG_SID_FMT, sid). */
#define LOG_SID_FMT "%08x"

#endif

/*
 * The configuration file: "key = value" lines, '#' comments, and sections that
 * open with "[kind name]" (for example "[listener smtp]"). This module only
 * parses; what each key means is decided by its user, which reports unknown
 * keys and bad values with config_entry's file and line.
 */
#ifndef BASE_CONFIG_H
#define BASE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config_entry {
	char *key;
	char *value;
	int line;
	int used; /* set by config_get(); unused keys are errors */
};

struct config_section {
	char *kind; /* NULL for the top of the file */
	char *name;
	int line;
	struct config_entry *entries;
	size_t nentries;
};

struct config {
	char *path;
	struct config_section *sections; /* sections[0] is the top */
	size_t nsections;
};

/*
 * Parses the file at path. Returns a config the caller frees with
 * config_free(), or NULL with a "file:line: message" in err.
 */
struct config *config_load(const char *path, char *err, size_t errlen);
/* Parses text already in memory, named path in messages. */
struct config *config_parse(const char *path, const char *text, size_t len,
    char *err, size_t errlen);
void config_free(struct config **cfg);

/* Returns the entry for key in sec (last one wins) and marks it used. */
struct config_entry *config_get(struct config_section *sec, const char *key);

/*
 * Value parsers. Each returns 0, or -1 after writing "file:line: key: why"
 * into err. Sizes accept K, M and G suffixes (powers of 1024); durations
 * accept s, m, h and d suffixes and return seconds; booleans accept
 * yes/no/true/false/on/off/1/0.
 */
int config_size(const struct config *cfg, const struct config_entry *e,
    uint64_t *out, char *err, size_t errlen);
int config_duration(const struct config *cfg, const struct config_entry *e,
    uint64_t *out, char *err, size_t errlen);
int config_bool(const struct config *cfg, const struct config_entry *e,
    int *out, char *err, size_t errlen);
int config_uint(const struct config *cfg, const struct config_entry *e,
    uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen);

/* Finds the first entry of sec not marked used, or NULL. */
struct config_entry *config_unused(struct config_section *sec);

#endif

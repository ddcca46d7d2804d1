/* Parser for the key = value configuration file with [kind name] sections. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/xmalloc.h"

#define CONFIG_MAX_SIZE (1024 * 1024)

static char *
config_trim(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static struct config_section *
config_add_section(struct config *cfg, char *kind, char *name, int line)
{
	struct config_section *sec;

	cfg->sections = xreallocarray(cfg->sections, cfg->nsections + 1,
	    sizeof(*cfg->sections));
	sec = &cfg->sections[cfg->nsections++];
	memset(sec, 0, sizeof(*sec));
	sec->kind = kind;
	sec->name = name;
	sec->line = line;
	return sec;
}

static int
config_parse_header(struct config *cfg, char *s, int line, char *err,
    size_t errlen)
{
	char *end = strchr(s, ']');
	char *kind, *name, *sp;

	if (end == NULL || config_trim(end + 1, end + 1 + strlen(end + 1))[0]) {
		snprintf(err, errlen, "%s:%d: malformed section header",
		    cfg->path, line);
		return -1;
	}
	kind = config_trim(s + 1, end);
	sp = kind + strcspn(kind, " \t");
	name = config_trim(sp, sp + strlen(sp));
	*sp = '\0';
	if (*kind == '\0' || *name == '\0') {
		snprintf(err, errlen,
		    "%s:%d: a section needs a kind and a name, "
		    "as in [listener smtp]",
		    cfg->path, line);
		return -1;
	}
	config_add_section(cfg, xstrdup(kind), xstrdup(name), line);
	return 0;
}

static int
config_parse_line(struct config *cfg, char *s, int line, char *err,
    size_t errlen)
{
	struct config_section *sec = &cfg->sections[cfg->nsections - 1];
	struct config_entry *e;
	char *eq, *key, *value;

	s = config_trim(s, s + strlen(s));
	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[')
		return config_parse_header(cfg, s, line, err, errlen);
	eq = strchr(s, '=');
	if (eq == NULL) {
		snprintf(err, errlen, "%s:%d: expected key = value", cfg->path,
		    line);
		return -1;
	}
	key = config_trim(s, eq);
	value = config_trim(eq + 1, eq + 1 + strlen(eq + 1));
	if (*key == '\0') {
		snprintf(err, errlen, "%s:%d: missing key before '='",
		    cfg->path, line);
		return -1;
	}
	sec->entries = xreallocarray(sec->entries, sec->nentries + 1,
	    sizeof(*sec->entries));
	e = &sec->entries[sec->nentries++];
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	e->line = line;
	e->used = 0;
	return 0;
}

struct config *
config_parse(const char *path, const char *text, size_t len, char *err,
    size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	size_t pos = 0;
	int line = 0;

	cfg->path = xstrdup(path);
	config_add_section(cfg, NULL, NULL, 0);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *copy = xstrndup(text + pos, n);
		int r;

		line++;
		if (strlen(copy) != n) {
			snprintf(err, errlen, "%s:%d: NUL byte in line", path,
			    line);
			r = -1;
		} else {
			r = config_parse_line(cfg, copy, line, err, errlen);
		}
		free(copy);
		if (r < 0) {
			config_free(&cfg);
			return NULL;
		}
		pos += n + 1;
	}
	return cfg;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	FILE *f = fopen(path, "r");
	char *text;
	size_t len;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	text = xmalloc(CONFIG_MAX_SIZE);
	len = fread(text, 1, CONFIG_MAX_SIZE, f);
	if (ferror(f) || len == CONFIG_MAX_SIZE) {
		snprintf(err, errlen, "%s: %s", path,
		    ferror(f) ? strerror(errno) : "file too large");
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	cfg = config_parse(path, text, len, err, errlen);
	free(text);
	return cfg;
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nsections; i++) {
		struct config_section *sec = &cfg->sections[i];

		for (size_t j = 0; j < sec->nentries; j++) {
			free(sec->entries[j].key);
			free(sec->entries[j].value);
		}
		free(sec->entries);
		free(sec->kind);
		free(sec->name);
	}
	free(cfg->sections);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

struct config_entry *
config_get(struct config_section *sec, const char *key)
{
	struct config_entry *found = NULL;

	for (size_t i = 0; i < sec->nentries; i++) {
		if (strcmp(sec->entries[i].key, key) == 0) {
			sec->entries[i].used = 1;
			found = &sec->entries[i];
		}
	}
	return found;
}

struct config_entry *
config_unused(struct config_section *sec)
{
	for (size_t i = 0; i < sec->nentries; i++) {
		if (!sec->entries[i].used)
			return &sec->entries[i];
	}
	return NULL;
}

static int
config_error(const struct config *cfg, const struct config_entry *e,
    const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: %s: %s", cfg->path, e->line, e->key, why);
	return -1;
}

static int
config_number(const char *s, const char *suffixes, const uint64_t *mult,
    uint64_t *out)
{
	char *end;
	unsigned long long v;
	const char *p;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end == '\0') {
		*out = v;
		return 0;
	}
	p = strchr(suffixes, tolower((unsigned char)*end));
	if (p == NULL || end[1] != '\0')
		return -1;
	if (v > UINT64_MAX / mult[p - suffixes])
		return -1;
	*out = v * mult[p - suffixes];
	return 0;
}

int
config_size(const struct config *cfg, const struct config_entry *e,
    uint64_t *out, char *err, size_t errlen)
{
	static const uint64_t mult[] = {1024, 1024 * 1024,
	    1024ULL * 1024 * 1024};

	if (config_number(e->value, "kmg", mult, out) < 0)
		return config_error(cfg, e,
		    "expected a size such as 512K, "
		    "50M or 2G",
		    err, errlen);
	return 0;
}

int
config_duration(const struct config *cfg, const struct config_entry *e,
    uint64_t *out, char *err, size_t errlen)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400};

	if (config_number(e->value, "smhd", mult, out) < 0)
		return config_error(cfg, e,
		    "expected a duration such as 30s, "
		    "5m, 4h or 5d",
		    err, errlen);
	return 0;
}

int
config_bool(const struct config *cfg, const struct config_entry *e, int *out,
    char *err, size_t errlen)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(e->value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(e->value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return config_error(cfg, e, "expected yes or no", err, errlen);
}

int
config_uint(const struct config *cfg, const struct config_entry *e,
    uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	static const uint64_t none[] = {1};
	char why[96];

	if (config_number(e->value, "", none, out) < 0 || *out < min ||
	    *out > max) {
		snprintf(why, sizeof(why),
		    "expected a number from %llu to %llu",
		    (unsigned long long)min, (unsigned long long)max);
		return config_error(cfg, e, why, err, errlen);
	}
	return 0;
}

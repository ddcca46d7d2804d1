/* Unit tests for the configuration parser. */
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "check.h"

static struct config *
parse(const char *text, char *err, size_t errlen)
{
	return config_parse("t.conf", text, strlen(text), err, errlen);
}

static void
test_sections(void)
{
	char err[256];
	struct config *cfg =
	    parse("# top\ndata_dir = /var/mail\n\n"
	          "[listener smtp]\n  address = 127.0.0.1:25 \n",
	        err, sizeof(err));
	struct config_entry *e;

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK_INT(cfg->nsections, 2);
	e = config_get(&cfg->sections[0], "data_dir");
	CHECK(e != NULL && strcmp(e->value, "/var/mail") == 0);
	CHECK_STR(cfg->sections[1].kind, "listener");
	CHECK_STR(cfg->sections[1].name, "smtp");
	e = config_get(&cfg->sections[1], "address");
	CHECK(e != NULL && e->line == 5);
	CHECK_STR(e ? e->value : NULL, "127.0.0.1:25");
	CHECK(config_unused(&cfg->sections[1]) == NULL);
	config_free(&cfg);
	CHECK(cfg == NULL);
}

static void
test_errors(void)
{
	char err[256];

	CHECK(parse("a = 1\nnovalue\n", err, sizeof(err)) == NULL);
	CHECK_STR(err, "t.conf:2: expected key = value");
	CHECK(parse("[listener]\n", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "t.conf:1:") == err);
	CHECK(parse("[a b\n", err, sizeof(err)) == NULL);
	CHECK(parse(" = x\n", err, sizeof(err)) == NULL);
}

static void
test_values(void)
{
	char err[256];
	struct config *cfg =
	    parse("s = 50M\nd = 4m\nb = yes\nn = 7\nbad = 5X\n", err,
	        sizeof(err));
	struct config_section *top = &cfg->sections[0];
	uint64_t v;
	int b;

	CHECK(config_size(cfg, config_get(top, "s"), &v, err, 256) == 0);
	CHECK_INT(v, 50 * 1024 * 1024);
	CHECK(config_duration(cfg, config_get(top, "d"), &v, err, 256) == 0);
	CHECK_INT(v, 240);
	CHECK(config_bool(cfg, config_get(top, "b"), &b, err, 256) == 0);
	CHECK_INT(b, 1);
	CHECK(config_uint(cfg, config_get(top, "n"), 1, 10, &v, err, 256) == 0);
	CHECK_INT(v, 7);
	CHECK(config_uint(cfg, config_get(top, "n"), 8, 10, &v, err, 256) < 0);
	CHECK(config_size(cfg, config_get(top, "bad"), &v, err, 256) < 0);
	CHECK(strstr(err, "t.conf:5: bad:") == err);
	config_free(&cfg);
}

int
main(void)
{
	CHECK_RUN(test_sections);
	CHECK_RUN(test_errors);
	CHECK_RUN(test_values);
	return check_summary();
}

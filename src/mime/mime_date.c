/*
 * The Date field: RFC 5322 section 3.3 date-time with the obsolete syntax of
 * section 4.3 (two- and three-digit years, alphabetic zones, comments and
 * white space anywhere), turned into UTC without touching the process zone.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mime/mime.h"

struct mime_date_zone {
	const char *name;
	int minutes;
};

static const struct mime_date_zone mime_date_zones[] = {
    {"UT", 0},
    {"UTC", 0},
    {"GMT", 0},
    {"Z", 0},
    {"EST", -300},
    {"EDT", -240},
    {"CST", -360},
    {"CDT", -300},
    {"MST", -420},
    {"MDT", -360},
    {"PST", -480},
    {"PDT", -420},
};

static const char mime_date_months[12][4] = {"jan", "feb", "mar", "apr", "may",
    "jun", "jul", "aug", "sep", "oct", "nov", "dec"};

/* Skips white space and (nested) comments; commas are left in place. */
static const char *
mime_date_skip(const char *p)
{
	int depth;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

/* Reads 1 to maxd digits; returns the number of digits or 0. */
static int
mime_date_number(const char **pp, int maxd, int *out)
{
	const char *p = *pp;
	int n = 0, v = 0;

	while (n < maxd && isdigit((unsigned char)p[n])) {
		v = v * 10 + (p[n] - '0');
		n++;
	}
	if (n == 0 || isdigit((unsigned char)p[n]))
		return 0;
	*pp = p + n;
	*out = v;
	return n;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t
mime_date_days(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int
mime_date_month(const char **pp)
{
	int i;

	for (i = 0; i < 12; i++) {
		if (strncasecmp(*pp, mime_date_months[i], 3) == 0 &&
		    !isalpha((unsigned char)(*pp)[3])) {
			*pp += 3;
			return i + 1;
		}
	}
	return -1;
}

/*
 * Reads the zone: +hhmm/-hhmm, a named zone, or a military letter (which
 * RFC 5322 section 4.3 says to take as +0000). Absent means +0000.
 */
static int
mime_date_zone(const char *p, int *minutes)
{
	size_t i, n = 0;
	int v;

	*minutes = 0;
	if (*p == '+' || *p == '-') {
		const char *q = p + 1;

		if (mime_date_number(&q, 4, &v) != 4 || v % 100 > 59)
			return -1;
		*minutes = (v / 100 * 60 + v % 100) * (*p == '-' ? -1 : 1);
		return 0;
	}
	while (isalpha((unsigned char)p[n]))
		n++;
	for (i = 0; i < sizeof(mime_date_zones) / sizeof(*mime_date_zones);
	     i++) {
		if (strlen(mime_date_zones[i].name) == n &&
		    strncasecmp(p, mime_date_zones[i].name, n) == 0) {
			*minutes = mime_date_zones[i].minutes;
			return 0;
		}
	}
	return n <= 1 ? 0 : -1;
}

static int
mime_date_time(const char **pp, int *hour, int *min, int *sec)
{
	const char *p = *pp;

	*sec = 0;
	if (mime_date_number(&p, 2, hour) == 0 || *p++ != ':' ||
	    mime_date_number(&p, 2, min) == 0)
		return -1;
	if (*p == ':') {
		p++;
		if (mime_date_number(&p, 2, sec) == 0)
			return -1;
	}
	if (*hour > 23 || *min > 59 || *sec > 60)
		return -1;
	*pp = p;
	return 0;
}

int
mime_date_parse(const char *s, time_t *out, int *tz_minutes)
{
	const char *p = mime_date_skip(s);
	int day, month, year, ny, hour, min, sec, zone;

	/* An optional day name and comma. */
	if (isalpha((unsigned char)*p)) {
		while (isalpha((unsigned char)*p))
			p++;
		p = mime_date_skip(p);
		if (*p == ',')
			p = mime_date_skip(p + 1);
	}
	if (mime_date_number(&p, 2, &day) == 0 || day < 1 || day > 31)
		return -1;
	p = mime_date_skip(p);
	if ((month = mime_date_month(&p)) < 0)
		return -1;
	p = mime_date_skip(p);
	if ((ny = mime_date_number(&p, 4, &year)) == 0)
		return -1;
	if (ny == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ny == 3)
		year += 1900;
	p = mime_date_skip(p);
	if (mime_date_time(&p, &hour, &min, &sec) < 0)
		return -1;
	if (mime_date_zone(mime_date_skip(p), &zone) < 0)
		return -1;
	*out = (time_t)(mime_date_days(year, month, day) * 86400 + hour * 3600 +
	    min * 60 + sec - zone * 60);
	if (tz_minutes != NULL)
		*tz_minutes = zone;
	return 0;
}

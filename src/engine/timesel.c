/*
 * timesel.c - time-addressed selections: the grammar of a "when"
 * (timesel.h) parsed into points, and a selection resolved on a
 * partition to its byte range through the index's offset and time
 * lookups (binary searches of the index alone, no data read).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "partition.h"
#include "timesel.h"

/* Exactly n decimal digits at *s (advanced past them). */
static int digits(const char **s, int n, int *out)
{
	int v = 0;

	while (n--) {
		if (**s < '0' || **s > '9')
			return -EINVAL;
		v = v * 10 + (*(*s)++ - '0');
	}
	*out = v;
	return 0;
}

/* A whole unsigned decimal number in [s, e), no sign, no overflow. */
static int number(const char *s, const char *e, uint64_t *out)
{
	uint64_t v = 0;

	if (s == e)
		return -EINVAL;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil), independent of TZ. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int month_days(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
				   31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Seconds since the epoch of a broken-down local time (the process's
 * TZ), for the offline tool's zone-less times; -EINVAL if it does not
 * exist. */
static int local_seconds(int y, int mo, int d, int h, int mi, int sec,
			 int64_t *out)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31))
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

/* YYYY-MM-DD[THH:MM[:SS[.f{1,3}]]](Z|[+-]HH[[:]MM]|nothing)
 * filling all of [s, e); nothing is accepted only as the flags say. */
static int parse_iso(const char *s, const char *e, int flags, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0;
	int sign = 0, n, local = 0;
	int64_t secs;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d))
		return -EINVAL;
	if (s < e && *s == 'T') {
		s++;
		if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
			return -EINVAL;
		if (s < e && *s == ':') {
			s++;
			if (digits(&s, 2, &sec))
				return -EINVAL;
			if (s < e && *s == '.') {
				s++;
				for (n = 0; n < 3 && s < e && *s >= '0' &&
					    *s <= '9';
				     n++)
					frac = frac * 10 + (*s++ - '0');
				if (n == 0)
					return -EINVAL;
				while (n++ < 3)
					frac *= 10;
			}
		}
	}
	if (s < e && *s == 'Z') {
		s++;
	} else if (s < e && (*s == '+' || *s == '-')) {
		sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &oh))
			return -EINVAL;
		if (s < e && *s == ':')
			s++;
		if (s < e && digits(&s, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
	} else if (flags & TIMESEL_NOZONE_LOCAL) {
		local = 1;
	} else if (!(flags & TIMESEL_NOZONE_UTC)) {
		return -EINVAL; /* a time without a zone is ambiguous */
	}
	if (s != e || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	if (local) {
		if (local_seconds(y, mo, d, h, mi, sec, &secs))
			return -EINVAL;
	} else {
		secs = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 +
		       sec;
	}
	*ms = secs * 1000 + frac - (int64_t)sign * (oh * 60 + om) * 60000;
	return 0;
}

/* One point filling [s, e). */
static int parse_point(const char *s, const char *e, int flags,
		       struct timesel_point *pt)
{
	/* Longest suffix first: "ms" before "s" and "m". */
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {{"ms", 1},		{"s", 1000},	 {"m", 60000},
		     {"h", 3600000},	{"d", 86400000}, {"w", 604800000}};
	size_t i, len;
	uint64_t v;

	if (e - s >= 3 && *s == '-') {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			len = strlen(units[i].unit);
			if ((size_t)(e - s) > len + 1 &&
			    !memcmp(e - len, units[i].unit, len))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]) ||
		    number(s + 1, e - len, &v) ||
		    v > (uint64_t)INT64_MAX / (uint64_t)units[i].ms)
			return -EINVAL;
		pt->kind = TIMESEL_REL;
		pt->v = (int64_t)v * units[i].ms;
		return 0;
	}
	pt->kind = TIMESEL_ABS;
	if (number(s, e, &v) == 0) {
		if (v > (uint64_t)INT64_MAX)
			return -EINVAL;
		pt->v = (int64_t)v;
		return 0;
	}
	return parse_iso(s, e, flags, &pt->v);
}

int timesel_parse_point(const char *s, struct timesel_point *pt)
{
	return parse_point(s, s + strlen(s), 0, pt);
}

int timesel_parse_ms(const char *s, int flags, int64_t now_ms, int64_t *out)
{
	struct timesel_point pt;

	if (!s || parse_point(s, s + strlen(s), flags, &pt))
		return -EINVAL;
	*out = timesel_ms(&pt, now_ms);
	return 0;
}

int timesel_parse(const char *s, struct timesel *out)
{
	const char *dots = strstr(s, ".."), *end = s + strlen(s);
	const char *first_end = dots ? dots : end;
	struct timesel sel;

	memset(&sel, 0, sizeof(sel));
	sel.bounded = dots != NULL;
	if (dots && strstr(dots + 2, ".."))
		return -EINVAL;
	if (!strncmp(s, "offset:", 7)) {
		sel.by_offset = 1;
		if (number(s + 7, first_end, &sel.off_from) ||
		    (dots && (number(dots + 2, end, &sel.off_to) ||
			      sel.off_to < sel.off_from)))
			return -EINVAL;
	} else {
		if (parse_point(s, first_end, 0, &sel.from) ||
		    (dots && parse_point(dots + 2, end, 0, &sel.to)))
			return -EINVAL;
		/* Two absolute points in the wrong order select nothing,
		 * ever: a typo, not a view. */
		if (dots && sel.from.kind == TIMESEL_ABS &&
		    sel.to.kind == TIMESEL_ABS && sel.to.v < sel.from.v)
			return -EINVAL;
	}
	*out = sel;
	return 0;
}

int64_t timesel_ms(const struct timesel_point *pt, int64_t now_ms)
{
	return pt->kind == TIMESEL_REL ? now_ms - pt->v : pt->v;
}

/* Where message offset off starts: clamped to the retained messages,
 * the log's end past the newest. */
static uint64_t byte_of_offset(struct partition *p,
			       const struct partition_info *info, uint64_t off)
{
	uint64_t byte;

	if (off < info->start_offset)
		off = info->start_offset;
	if (off >= info->next_offset ||
	    partition_offset_to_byte(p, off, &byte) < 0)
		return info->end_byte;
	return byte;
}

/* Where the first message appended at or after ms starts (the log's end
 * if none is). */
static uint64_t byte_of_time(struct partition *p,
			     const struct partition_info *info, int64_t ms)
{
	uint64_t off, byte;

	if (partition_time_to_offset(p, ms, &off, &byte) < 0)
		return info->end_byte;
	return byte;
}

void timesel_resolve(struct partition *p, const struct timesel *sel,
		     int64_t now_ms, uint64_t *start, uint64_t *end)
{
	struct partition_info info;

	partition_get_info(p, &info);
	if (sel->by_offset) {
		*start = byte_of_offset(p, &info, sel->off_from);
		*end = sel->bounded ? byte_of_offset(p, &info, sel->off_to)
				    : UINT64_MAX;
	} else {
		*start = byte_of_time(p, &info,
				      timesel_ms(&sel->from, now_ms));
		*end = sel->bounded
			       ? byte_of_time(p, &info,
					      timesel_ms(&sel->to, now_ms))
			       : UINT64_MAX;
	}
	if (*end < *start)
		*end = *start;
}

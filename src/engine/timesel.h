/*
 * timesel.h - the names of time-addressed views (MNT/.at/<when>, fluxctl
 * cat --since/--until): parsing a "when" into a selection of messages by
 * append time or by message offset, and resolving it on a partition to
 * the byte range it shows.  Pure parsing plus index lookups; no FUSE.
 *
 * The grammar (fluxfs(8), "Time-addressed views"):
 *   when  := point | point ".." point | "offset:" N | "offset:" N ".." M
 *   point := ISO-8601 date, or date and time, UTC ("Z") or with an
 *            offset (+HH:MM, +HHMM, +HH, -...), to the minute, second or
 *            millisecond:
 *            2026-12-06T10:00Z, 2026-12-06T10:00:30.250+01:00
 *          | epoch milliseconds (digits only)
 *          | relative: "-" N ("ms" | "s" | "m" | "h" | "d" | "w"), before
 *            "now"
 * A time without a zone is ambiguous and refused, except where a caller
 * says what it means (timesel_parse_ms): the offline tool's
 * --time takes it as local time, a group reset as UTC.  The one grammar
 * serves the views, fluxctl and group resets alike.
 * A range's first point is inclusive and its second exclusive, both
 * meaning "the first message whose time is >= the point", as Kafka's
 * offsetsForTimes.
 */
#ifndef FLUXFS_TIMESEL_H
#define FLUXFS_TIMESEL_H

#include <stdint.h>

struct partition;

enum timesel_kind { TIMESEL_ABS, TIMESEL_REL };

struct timesel_point {
	enum timesel_kind kind;
	int64_t v; /* ms since the epoch, or ms before now (REL) */
};

struct timesel {
	int by_offset;	   /* offset:N[..M] */
	int bounded;	   /* a range: the second point or M is set */
	uint64_t off_from; /* by_offset */
	uint64_t off_to;
	struct timesel_point from, to; /* by time */
};

/* Parse s; 0, or -EINVAL if s is not in the grammar above (also: an
 * empty range's ends reversed, numbers that overflow). */
int timesel_parse(const char *s, struct timesel *out);

/* One point (no range, no offset) filling s; 0 or -EINVAL. */
int timesel_parse_point(const char *s, struct timesel_point *pt);

/* What a time without a zone means to timesel_parse_ms. */
#define TIMESEL_NOZONE_UTC 1   /* UTC */
#define TIMESEL_NOZONE_LOCAL 2 /* the process's local time (TZ) */
/* One point as ms since the epoch (relative ones from now_ms), a time
 * without a zone read as flags say (0: refused); 0 or -EINVAL. */
int timesel_parse_ms(const char *s, int flags, int64_t now_ms, int64_t *out);

/* A point as ms since the epoch, relative points measured from now_ms. */
int64_t timesel_ms(const struct timesel_point *pt, int64_t now_ms);

/* The bytes sel selects of partition p, relative points measured from
 * now_ms: [*start, *end), *end UINT64_MAX when open-ended (up to the
 * log's end, growing).  Both on message boundaries; a start below the
 * log's start (retention) is the log's start; a selection past the
 * newest message starts (and, bounded, ends) at the log's end. */
void timesel_resolve(struct partition *p, const struct timesel *sel,
		     int64_t now_ms, uint64_t *start, uint64_t *end);

#endif

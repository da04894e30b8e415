/*
 * tz: every piece of time-zone code in Cronix (STYLE.md rule 15).
 *
 *   - a TZif reader (RFC 8536, versions 1 to 4): the 64-bit block of v2+
 *     files, every count and index checked against the file before use;
 *   - the POSIX TZ footer ("EST5EDT,M3.2.0,M11.1.0") that gives the
 *     offsets after the last transition: its transitions up to 2300 are
 *     added to the table at load, later years are evaluated lazily;
 *   - periods of constant UTC offset, for the cron search (cron.c);
 *   - zone lookup by IANA name, a process-wide cache, the default zone and
 *     host-zone detection ($TZ, /etc/timezone, /etc/localtime);
 *   - RFC 3339 formatting and parsing.
 *
 * Nothing here calls setenv("TZ"), tzset or localtime: a zone is plain data
 * read once and shared read-only between threads afterwards. Files with
 * leap-second records ("right/" zones) are refused: their transition times
 * are not unix time.
 *
 * Footer semantics. Each year y of a footer rule yields two events, "DST
 * starts" at start(y) and "DST ends" at end(y), as UTC instants. The state
 * at t is the kind of the last event at or before t in time order (ties:
 * earlier year first, then start before end), standard time when there is
 * none. This covers northern rules (start < end), southern ones (DST across
 * the year end), negative DST (Europe/Dublin) and zic's "DST all year"
 * encoding (end(y) == start(y + 1)). A year's events lie within nine days
 * of the year itself (day 0..365 plus a rule time of at most +-167 h, minus
 * an offset below 24 h), which bounds the years a time window needs. The
 * rules repeat every 400 Gregorian years, so a scan that finds no offset
 * change in 402 years will never find one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cron/cron.h"

#define TZ_MAX_FILE (256 * 1024) /* largest real zone file is ~3.5 KiB */
#define TZ_MAX_NAME 128
#define TZ_ABBR_LEN 16
/* |UTC offset| must stay below 24 h: RFC 3339 can print nothing larger and
 * no zone has come close (the record is Asia/Manila's LMT before 1845,
 * -15:56:08). */
#define TZ_MAX_OFFSET (24 * 3600 - 1)
#define TZ_MAX_RULE_HOURS 167 /* RFC 8536 3.3.1 (version 3) */
#define TZ_MAX_FOOTER 512
#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_HEADER_LEN 44

/* Footer rules are evaluated for these years only; outside them the state
 * simply stays what the last event made it (consistently everywhere). */
#define FOOT_MIN_YEAR (-1000000)
#define FOOT_MAX_YEAR 1000000
#define FOOT_SLACK (9 * 86400)      /* events lie this close to their year */
#define FOOT_CHUNK (366 * 86400)    /* scan window */
#define FOOT_LOOKBACK (400 * 86400) /* > longest gap between two events */
#define FOOT_MAX_SCAN 402           /* chunks: one 400-year cycle and more */
#define FOOT_MAX_EVENTS 24
/* Footer transitions up to this year are precomputed into the table at
 * load (binary search); later instants use the lazy footer code. */
#define FOOT_TABLE_END_YEAR 2300

struct tz_type {
  int32_t off; /* seconds east of UTC */
  int is_dst;
  char abbr[TZ_ABBR_LEN];
};

enum rule_kind { RULE_JULIAN1, RULE_DAY0, RULE_MWD };

struct tz_rule {
  enum rule_kind kind;
  int day;      /* Jn: 1..365; n: 0..365; Mm.w.d: d = 0..6 (Sunday = 0) */
  int week;     /* Mm.w.d: 1..5, 5 = last */
  int month;    /* Mm.w.d: 1..12 */
  int32_t time; /* local time of day, seconds, -167 h..167 h */
};

struct tz_footer {
  struct tz_type std, dst;
  int has_dst; /* a DST part with rules */
  int changes; /* the rules ever change the offset */
  struct tz_rule start, end;
};

struct cx_tz {
  char name[TZ_MAX_NAME + 1];
  size_t n;       /* transitions */
  int64_t *trans; /* n instants, strictly ascending */
  uint16_t *tidx; /* n type indexes, each < ntypes */
  size_t ntypes;  /* >= 1 */
  struct tz_type *types;
  size_t nchg;  /* transitions that change the offset ... */
  int64_t *chg; /* ... their instants, ascending */
  int has_footer;
  struct tz_footer foot;
  struct cx_tz *next; /* cache list */
};

struct foot_event {
  int64_t t;
  int year;
  int kind; /* 1 = DST starts, 0 = DST ends */
};

/* ---- small helpers ----------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b)
{
  return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
  return a > b ? a : b;
}

/* Year of instant t, with t clamped to where years fit an int easily. */
static int year_of(int64_t t)
{
  static const int64_t lim = (int64_t)2000000 * 366 * 86400;
  struct cx_civil c;
  cx_civil_from_seconds(max64(-lim, min64(lim, t)), &c);
  return c.year;
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
  uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
  return (int64_t)v; /* two's complement on every platform we build for */
}

/* ---- footer: POSIX TZ rules -------------------------------------------- */

/* Days since the epoch of the day rule r names in year y. */
static int64_t rule_day(const struct tz_rule *r, int y)
{
  int64_t jan1 = cx_days_from_civil(y, 1, 1);
  switch (r->kind) {
  case RULE_JULIAN1:
    return jan1 + r->day - 1 + (cx_is_leap_year(y) && r->day >= 60);
  case RULE_DAY0:
    return jan1 + r->day;
  case RULE_MWD:
  default: {
    int64_t first = cx_days_from_civil(y, r->month, 1);
    int wday_first = (int)(((first % 7) + 11) % 7); /* 1970-01-01: Thu */
    int64_t d = first + (r->day - wday_first + 7) % 7 + (r->week - 1) * 7;
    while (d >= first + cx_days_in_month(y, r->month))
      d -= 7;
    return d;
  }
  }
}

static void foot_year_events(const struct tz_footer *f, int y,
                             struct foot_event ev[2])
{
  ev[0].t = rule_day(&f->start, y) * 86400 + f->start.time - f->std.off;
  ev[0].year = y;
  ev[0].kind = 1;
  ev[1].t = rule_day(&f->end, y) * 86400 + f->end.time - f->dst.off;
  ev[1].year = y;
  ev[1].kind = 0;
}

static int event_before(const struct foot_event *a, const struct foot_event *b)
{
  if (a->t != b->t)
    return a->t < b->t;
  if (a->year != b->year)
    return a->year < b->year;
  return a->kind > b->kind; /* start, then end */
}

/* The events with a <= t <= b in time order; the window must span at most
 * a few years (FOOT_MAX_EVENTS). Returns how many. */
static size_t foot_list(const struct tz_footer *f, int64_t a, int64_t b,
                        struct foot_event *out)
{
  size_t n = 0;
  if (b < a)
    return 0;
  int y0 = year_of(a) - 2, y1 = year_of(b) + 1;
  if (y0 < FOOT_MIN_YEAR)
    y0 = FOOT_MIN_YEAR;
  if (y1 > FOOT_MAX_YEAR)
    y1 = FOOT_MAX_YEAR;
  for (int y = y0; y <= y1 && n + 2 <= FOOT_MAX_EVENTS; y++) {
    struct foot_event ev[2];
    foot_year_events(f, y, ev);
    for (int k = 0; k < 2; k++) {
      if (ev[k].t < a || ev[k].t > b)
        continue;
      size_t i = n++;
      while (i > 0 && event_before(&ev[k], &out[i - 1])) {
        out[i] = out[i - 1];
        i--;
      }
      out[i] = ev[k];
    }
  }
  return n;
}

/* First and last instants any footer event can have. */
static int64_t foot_first_t(void)
{
  return cx_days_from_civil(FOOT_MIN_YEAR, 1, 1) * 86400 - FOOT_SLACK;
}

static int64_t foot_last_t(void)
{
  return cx_days_from_civil(FOOT_MAX_YEAR + 1, 1, 1) * 86400 + FOOT_SLACK;
}

/* 1 if DST is in effect at t under the footer rules. */
static int foot_state(const struct tz_footer *f, int64_t t)
{
  struct foot_event ev[FOOT_MAX_EVENTS];
  if (!f->has_dst || t < foot_first_t())
    return 0;
  t = min64(t, foot_last_t());
  size_t n = foot_list(f, t - FOOT_LOOKBACK, t, ev);
  return n > 0 ? ev[n - 1].kind : 0;
}

static const struct tz_type *foot_type(const struct tz_footer *f, int64_t t)
{
  return foot_state(f, t) ? &f->dst : &f->std;
}

/* The first instant > t where the footer changes the offset, or
 * INT64_MAX. */
static int64_t foot_next_change(const struct tz_footer *f, int64_t t)
{
  struct foot_event ev[FOOT_MAX_EVENTS];
  if (!f->changes)
    return INT64_MAX;
  int cur = foot_state(f, t);
  int64_t lo = max64(t, foot_first_t() - 1); /* exclusive */
  for (int k = 0; k < FOOT_MAX_SCAN && lo < foot_last_t(); k++) {
    int64_t hi = lo + FOOT_CHUNK;
    size_t n = foot_list(f, lo + 1, hi, ev);
    for (size_t i = 0; i < n; i++) {
      if (i + 1 < n && ev[i + 1].t == ev[i].t)
        continue; /* the last event of a group decides */
      if (ev[i].kind != cur)
        return ev[i].t;
    }
    lo = hi;
  }
  return INT64_MAX;
}

/* The last instant c with floor < c <= t where the footer changes the
 * offset, or INT64_MIN. */
static int64_t foot_prev_change(const struct tz_footer *f, int64_t t,
                                int64_t floor)
{
  struct foot_event ev[FOOT_MAX_EVENTS];
  if (!f->changes)
    return INT64_MIN;
  int64_t hi = min64(t, foot_last_t()); /* inclusive */
  for (int k = 0; k < FOOT_MAX_SCAN && hi > floor && hi >= foot_first_t();
       k++) {
    int64_t lo = hi - FOOT_CHUNK + 1;
    size_t n = foot_list(f, lo, hi, ev);
    for (size_t i = n; i-- > 0;) {
      if (i + 1 < n && ev[i + 1].t == ev[i].t)
        continue;   /* not the last of its group */
      size_t g = i; /* first event of the group */
      while (g > 0 && ev[g - 1].t == ev[i].t)
        g--;
      if (ev[i].t <= floor)
        return INT64_MIN;
      int before = g > 0 ? ev[g - 1].kind : foot_state(f, ev[i].t - 1);
      if (ev[i].kind != before)
        return ev[i].t;
      i = g;
      if (i == 0)
        break;
    }
    hi = lo - 1;
  }
  return INT64_MIN;
}

/* ---- footer: parsing --------------------------------------------------- */

struct tzs {
  const char *p;
  const char *what; /* for messages */
};

static int parse_num(struct tzs *s, int max, int *out)
{
  int v = 0, digits = 0;
  while (*s->p >= '0' && *s->p <= '9') {
    v = v * 10 + (*s->p - '0');
    s->p++;
    if (++digits > 3 || v > max)
      return -1;
  }
  if (digits == 0)
    return -1;
  *out = v;
  return 0;
}

/* Consumes ch if it is next; returns 1 if it was. */
static int skip_char(struct tzs *s, char ch)
{
  if (*s->p != ch)
    return 0;
  s->p++;
  return 1;
}

/* [+-]hh[:mm[:ss]] -> seconds; hours up to max_h. */
static int parse_hms(struct tzs *s, int max_h, int32_t *out)
{
  int sign = 1, h, m = 0, sec = 0;
  if (*s->p == '+' || *s->p == '-') {
    sign = *s->p == '-' ? -1 : 1;
    s->p++;
  }
  if (parse_num(s, max_h, &h) != 0)
    return -1;
  if (*s->p == ':') {
    s->p++;
    if (parse_num(s, 59, &m) != 0)
      return -1;
    if (*s->p == ':') {
      s->p++;
      if (parse_num(s, 59, &sec) != 0)
        return -1;
    }
  }
  *out = sign * (h * 3600 + m * 60 + sec);
  return 0;
}

/* A zone abbreviation: 3+ letters, or <...> of letters, digits, + and -. */
static int parse_abbr(struct tzs *s, char out[TZ_ABBR_LEN])
{
  size_t n = 0;
  if (*s->p == '<') {
    s->p++;
    while ((*s->p >= 'A' && *s->p <= 'Z') || (*s->p >= 'a' && *s->p <= 'z') ||
           (*s->p >= '0' && *s->p <= '9') || *s->p == '+' || *s->p == '-') {
      if (n + 1 >= TZ_ABBR_LEN)
        return -1;
      out[n++] = *s->p++;
    }
    if (*s->p != '>')
      return -1;
    s->p++;
  } else {
    while ((*s->p >= 'A' && *s->p <= 'Z') || (*s->p >= 'a' && *s->p <= 'z')) {
      if (n + 1 >= TZ_ABBR_LEN)
        return -1;
      out[n++] = *s->p++;
    }
  }
  out[n] = '\0';
  return n >= 3 ? 0 : -1;
}

/* POSIX offsets count west ("EST5" is UTC-5); we keep seconds east. */
static int parse_offset(struct tzs *s, int32_t *east)
{
  int32_t west;
  if (parse_hms(s, 24, &west) != 0 || west > TZ_MAX_OFFSET ||
      west < -TZ_MAX_OFFSET)
    return -1;
  *east = -west;
  return 0;
}

static int parse_rule(struct tzs *s, struct tz_rule *r)
{
  int a, b, c;
  if (*s->p == 'J') {
    s->p++;
    if (parse_num(s, 365, &a) != 0 || a < 1)
      return -1;
    r->kind = RULE_JULIAN1;
    r->day = a;
  } else if (*s->p == 'M') {
    s->p++;
    if (parse_num(s, 12, &a) != 0 || a < 1 || !skip_char(s, '.') ||
        parse_num(s, 5, &b) != 0 || b < 1 || !skip_char(s, '.') ||
        parse_num(s, 6, &c) != 0)
      return -1;
    r->kind = RULE_MWD;
    r->month = a;
    r->week = b;
    r->day = c;
  } else {
    if (parse_num(s, 365, &a) != 0)
      return -1;
    r->kind = RULE_DAY0;
    r->day = a;
  }
  r->time = 2 * 3600;
  if (*s->p == '/') {
    s->p++;
    if (parse_hms(s, TZ_MAX_RULE_HOURS, &r->time) != 0)
      return -1;
  }
  return 0;
}

/* Parses a POSIX TZ string (RFC 8536 3.3 footer). Returns 0, or -1 with
 * *what naming the part that is wrong and *pos its byte offset. */
static int footer_parse(const char *str, struct tz_footer *f, const char **what,
                        size_t *pos)
{
  struct tzs s = {str, "standard time name"};
  memset(f, 0, sizeof *f);
  if (parse_abbr(&s, f->std.abbr) != 0)
    goto bad;
  s.what = "standard offset";
  if (parse_offset(&s, &f->std.off) != 0)
    goto bad;
  if (*s.p == '\0')
    return 0;
  s.what = "DST name";
  if (parse_abbr(&s, f->dst.abbr) != 0)
    goto bad;
  f->dst.is_dst = 1;
  f->dst.off = f->std.off + 3600;
  s.what = "DST offset";
  if (*s.p != ',' && *s.p != '\0' && parse_offset(&s, &f->dst.off) != 0)
    goto bad;
  if (f->dst.off > TZ_MAX_OFFSET)
    goto bad;
  if (*s.p == '\0') {
    /* No rules: the US rules, as glibc and tzcode assume. */
    f->start = (struct tz_rule){RULE_MWD, 0, 2, 3, 2 * 3600};
    f->end = (struct tz_rule){RULE_MWD, 0, 1, 11, 2 * 3600};
  } else {
    s.what = "DST start rule";
    if (*s.p != ',')
      goto bad;
    s.p++;
    if (parse_rule(&s, &f->start) != 0)
      goto bad;
    s.what = "DST end rule";
    if (*s.p != ',')
      goto bad;
    s.p++;
    if (parse_rule(&s, &f->end) != 0)
      goto bad;
    s.what = "text after the rules";
    if (*s.p != '\0')
      goto bad;
  }
  f->has_dst = 1;
  return 0;
bad:
  *what = s.what;
  *pos = (size_t)(s.p - str);
  return -1;
}

static void footer_finish(struct tz_footer *f)
{
  f->changes = 0;
  if (!f->has_dst || f->std.off == f->dst.off)
    return;
  /* The rules repeat every 400 years: one cycle tells if they ever change
   * the offset (zic writes "DST all year" as a rule that never does). */
  f->changes = 1;
  if (foot_next_change(f, cx_days_from_civil(2000, 1, 1) * 86400) == INT64_MAX)
    f->changes = 0;
}

/* ---- TZif -------------------------------------------------------------- */

struct tzif_counts {
  uint32_t isut, isstd, leap, time, type, chr;
};

static void zone_free(struct cx_tz *z)
{
  if (z == NULL)
    return;
  cx_free(z->trans);
  cx_free(z->tidx);
  cx_free(z->types);
  cx_free(z->chg);
  cx_free(z);
}

/* Bytes of a data block with these counts and time size tsz (4 or 8). */
static uint64_t tzif_block_len(const struct tzif_counts *c, unsigned tsz)
{
  return (uint64_t)c->time * tsz + c->time + (uint64_t)c->type * 6 + c->chr +
         (uint64_t)c->leap * (tsz + 4) + c->isstd + c->isut;
}

static int tzif_header(const unsigned char *p, size_t left,
                       struct tzif_counts *c, int *version, char *err,
                       const char *name)
{
  if (left < TZ_HEADER_LEN) {
    cx_err_set(err, "time zone '%s': truncated TZif header (%zu bytes)", name,
               left);
    return CX_EPARSE;
  }
  if (memcmp(p, "TZif", 4) != 0) {
    cx_err_set(err, "time zone '%s': not a TZif file (bad magic)", name);
    return CX_EPARSE;
  }
  if (p[4] != 0 && (p[4] < '2' || p[4] > '9')) {
    cx_err_set(err, "time zone '%s': unknown TZif version byte 0x%02x", name,
               p[4]);
    return CX_EPARSE;
  }
  *version = p[4] == 0 ? 1 : p[4] - '0';
  c->isut = be32(p + 20);
  c->isstd = be32(p + 24);
  c->leap = be32(p + 28);
  c->time = be32(p + 32);
  c->type = be32(p + 36);
  c->chr = be32(p + 40);
  if (c->type == 0 || c->type > 256) {
    cx_err_set(err, "time zone '%s': typecnt %u out of range 1..256", name,
               c->type);
    return CX_EPARSE;
  }
  if (c->chr == 0) {
    cx_err_set(err, "time zone '%s': charcnt is 0", name);
    return CX_EPARSE;
  }
  if ((c->isut != 0 && c->isut != c->type) ||
      (c->isstd != 0 && c->isstd != c->type)) {
    cx_err_set(err,
               "time zone '%s': isutcnt %u / isstdcnt %u must be 0 or "
               "typecnt %u",
               name, c->isut, c->isstd, c->type);
    return CX_EPARSE;
  }
  uint64_t need = tzif_block_len(c, *version == 1 ? 4 : 8);
  if (need > left - TZ_HEADER_LEN) {
    cx_err_set(err,
               "time zone '%s': truncated TZif data (needs %llu bytes, "
               "%zu left)",
               name, (unsigned long long)need, left - TZ_HEADER_LEN);
    return CX_EPARSE;
  }
  return 0;
}

/* Fills z's table from one data block (already bounds-checked). */
static int tzif_data(const unsigned char *p, const struct tzif_counts *c,
                     unsigned tsz, struct cx_tz *z, char *err)
{
  const unsigned char *times = p;
  const unsigned char *idx = times + (size_t)c->time * tsz;
  const unsigned char *ttinfo = idx + c->time;
  const unsigned char *chars = ttinfo + (size_t)c->type * 6;
  const unsigned char *flags = chars + c->chr + (size_t)c->leap * (tsz + 4);

  if (c->leap != 0) {
    cx_err_set(err,
               "time zone '%s': has %u leap-second records; leap-second "
               "(\"right/\") zones are not supported",
               z->name, c->leap);
    return CX_EPARSE;
  }
  for (size_t i = 0; i < (size_t)c->isstd + c->isut; i++) {
    if (flags[i] > 1) {
      cx_err_set(err, "time zone '%s': isstd/isut indicator %u is not 0 or 1",
                 z->name, flags[i]);
      return CX_EPARSE;
    }
  }
  z->n = c->time;
  z->ntypes = c->type;
  z->trans = cx_malloc(z->n * sizeof *z->trans);
  z->tidx = cx_malloc(z->n * sizeof *z->tidx);
  z->types = cx_calloc(z->ntypes, sizeof *z->types);
  z->chg = cx_malloc(z->n * sizeof *z->chg);
  if (!z->trans || !z->tidx || !z->types || !z->chg) {
    cx_err_set(err, "time zone '%s': out of memory", z->name);
    return -ENOMEM;
  }
  for (size_t i = 0; i < z->n; i++) {
    z->trans[i] =
        tsz == 8 ? be64(times + i * 8) : (int64_t)(int32_t)be32(times + i * 4);
    if (i > 0 && z->trans[i] <= z->trans[i - 1]) {
      cx_err_set(err,
                 "time zone '%s': transition %zu is not after the one "
                 "before it",
                 z->name, i);
      return CX_EPARSE;
    }
    if (idx[i] >= c->type) {
      cx_err_set(err, "time zone '%s': transition %zu uses type %u of %u",
                 z->name, i, idx[i], c->type);
      return CX_EPARSE;
    }
    z->tidx[i] = idx[i];
  }
  for (size_t i = 0; i < z->ntypes; i++) {
    const unsigned char *e = ttinfo + i * 6;
    int32_t off = (int32_t)be32(e);
    unsigned ai = e[5];
    if (off > TZ_MAX_OFFSET || off < -TZ_MAX_OFFSET) {
      cx_err_set(err,
                 "time zone '%s': type %zu has UTC offset %d s, beyond "
                 "+-24 h",
                 z->name, i, (int)off);
      return CX_EPARSE;
    }
    if (e[4] > 1) {
      cx_err_set(err, "time zone '%s': type %zu has isdst %u", z->name, i,
                 e[4]);
      return CX_EPARSE;
    }
    if (ai >= c->chr || memchr(chars + ai, '\0', c->chr - ai) == NULL) {
      cx_err_set(err,
                 "time zone '%s': type %zu abbreviation index %u is "
                 "outside the %u-byte string table",
                 z->name, i, ai, c->chr);
      return CX_EPARSE;
    }
    z->types[i].off = off;
    z->types[i].is_dst = e[4];
    snprintf(z->types[i].abbr, sizeof z->types[i].abbr, "%s",
             (const char *)chars + ai);
  }
  return 0;
}

/* Appends the footer's transitions from the last table transition up to
 * FOOT_TABLE_END_YEAR to the table, so that lookups there are binary
 * searches (about 20 ns instead of about 1 us). Zones without transitions
 * keep the lazy path. Returns 0 or -ENOMEM (z stays consistent). */
static int zone_extend(struct cx_tz *z)
{
  struct foot_event ev[FOOT_MAX_EVENTS];
  if (!z->has_footer || !z->foot.has_dst || z->n == 0)
    return 0;
  int64_t last = z->trans[z->n - 1];
  int64_t end = cx_days_from_civil(FOOT_TABLE_END_YEAR, 1, 1) * 86400;
  int last_year = year_of(last);
  if (last >= end || last_year < FOOT_TABLE_END_YEAR - 1000)
    return 0; /* nothing to add, or too much: stay lazy */
  size_t cap = z->n + 2 * (size_t)(FOOT_TABLE_END_YEAR - last_year + 4);
  int64_t *trans = cx_realloc(z->trans, cap * sizeof *trans);
  if (trans == NULL)
    return -ENOMEM;
  z->trans = trans;
  uint16_t *tidx = cx_realloc(z->tidx, cap * sizeof *tidx);
  if (tidx == NULL)
    return -ENOMEM;
  z->tidx = tidx;
  int64_t *chg = cx_realloc(z->chg, cap * sizeof *chg);
  if (chg == NULL)
    return -ENOMEM;
  z->chg = chg;
  struct tz_type *types = cx_realloc(z->types, (z->ntypes + 2) * sizeof *types);
  if (types == NULL)
    return -ENOMEM;
  z->types = types;

  uint16_t std_i = (uint16_t)z->ntypes, dst_i = (uint16_t)(z->ntypes + 1);
  z->types[std_i] = z->foot.std;
  z->types[dst_i] = z->foot.dst;
  z->ntypes += 2;
  int cur = foot_state(&z->foot, last);
  z->tidx[z->n - 1] = cur ? dst_i : std_i; /* the footer rules from here */
  for (int64_t lo = last; lo < end - 1; lo += FOOT_CHUNK) {
    size_t k = foot_list(&z->foot, lo + 1, min64(lo + FOOT_CHUNK, end - 1), ev);
    for (size_t i = 0; i < k && z->n < cap; i++) {
      if ((i + 1 < k && ev[i + 1].t == ev[i].t) || ev[i].kind == cur)
        continue; /* not the last of its group, or no change of state */
      cur = ev[i].kind;
      z->trans[z->n] = ev[i].t;
      z->tidx[z->n] = cur ? dst_i : std_i;
      z->n++;
    }
  }
  return 0;
}

/* Offset-changing transitions, once the footer is known: the last
 * transition's offset is the footer's when there is one. */
static void zone_index_changes(struct cx_tz *z)
{
  int32_t prev = z->types[0].off;
  z->nchg = 0;
  for (size_t i = 0; i < z->n; i++) {
    int32_t off = z->types[z->tidx[i]].off;
    if (i == z->n - 1 && z->has_footer)
      off = foot_type(&z->foot, z->trans[i])->off;
    if (off != prev)
      z->chg[z->nchg++] = z->trans[i];
    prev = off;
  }
}

/* Parses a whole TZif file into z (z->name set by the caller). */
static int tzif_parse(const unsigned char *p, size_t len, struct cx_tz *z,
                      char *err)
{
  struct tzif_counts c;
  int version, version2, rc;

  rc = tzif_header(p, len, &c, &version, err, z->name);
  if (rc != 0)
    return rc;
  if (version == 1)
    return tzif_data(p + TZ_HEADER_LEN, &c, 4, z, err);

  size_t off = TZ_HEADER_LEN + (size_t)tzif_block_len(&c, 4);
  rc = tzif_header(p + off, len - off, &c, &version2, err, z->name);
  if (rc != 0)
    return rc;
  if (version2 == 1) {
    cx_err_set(err, "time zone '%s': second TZif header has version 1",
               z->name);
    return CX_EPARSE;
  }
  rc = tzif_data(p + off + TZ_HEADER_LEN, &c, 8, z, err);
  if (rc != 0)
    return rc;

  /* Footer: "\n" TZ-string "\n". */
  off += TZ_HEADER_LEN + (size_t)tzif_block_len(&c, 8);
  const unsigned char *nl;
  if (off >= len || p[off] != '\n' ||
      (nl = memchr(p + off + 1, '\n', len - off - 1)) == NULL) {
    cx_err_set(err,
               "time zone '%s': missing or unterminated TZ string "
               "footer",
               z->name);
    return CX_EPARSE;
  }
  size_t flen = (size_t)(nl - (p + off + 1));
  if (flen > TZ_MAX_FOOTER || memchr(p + off + 1, '\0', flen) != NULL) {
    cx_err_set(err, "time zone '%s': TZ string footer too long or has a NUL",
               z->name);
    return CX_EPARSE;
  }
  if (flen > 0) {
    char foot[TZ_MAX_FOOTER + 1];
    const char *what;
    size_t pos;
    memcpy(foot, p + off + 1, flen);
    foot[flen] = '\0';
    if (footer_parse(foot, &z->foot, &what, &pos) != 0) {
      cx_err_set(err,
                 "time zone '%s': TZ string footer \"%s\": bad %s at "
                 "byte %zu",
                 z->name, foot, what, pos);
      return CX_EPARSE;
    }
    footer_finish(&z->foot);
    z->has_footer = 1;
  }
  return 0;
}

/* ---- queries ----------------------------------------------------------- */

static struct tz_type utc_type = {0, 0, "UTC"};
static struct cx_tz tz_utc = {.name = "UTC", .ntypes = 1, .types = &utc_type};

/* Number of table transitions at or before t. */
static size_t trans_upto(const int64_t *a, size_t n, int64_t t)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* 1 if the footer rules decide the offset at t. */
static int in_footer(const struct cx_tz *z, int64_t t)
{
  return z->has_footer && (z->n == 0 || t >= z->trans[z->n - 1]);
}

static const struct tz_type *type_at(const struct cx_tz *z, int64_t t)
{
  if (in_footer(z, t))
    return foot_type(&z->foot, t);
  size_t i = trans_upto(z->trans, z->n, t);
  return i == 0 ? &z->types[0] : &z->types[z->tidx[i - 1]];
}

const char *cx_tz_name(const struct cx_tz *tz)
{
  return tz ? tz->name : tz_utc.name;
}

int32_t cx_tz_offset(const struct cx_tz *tz, int64_t t)
{
  return type_at(tz ? tz : &tz_utc, t)->off;
}

void cx_tz_period_at(const struct cx_tz *tz, int64_t t,
                     struct cx_tz_period *out)
{
  const struct cx_tz *z = tz ? tz : &tz_utc;
  const struct tz_type *ty = type_at(z, t);
  int64_t start, end;

  if (in_footer(z, t)) {
    int64_t floor = z->n > 0 ? z->trans[z->n - 1] : INT64_MIN;
    end = foot_next_change(&z->foot, t);
    start = foot_prev_change(&z->foot, t, floor);
    if (start == INT64_MIN && z->nchg > 0)
      start = z->chg[z->nchg - 1]; /* all table changes are <= floor <= t */
  } else {
    size_t j = trans_upto(z->chg, z->nchg, t);
    start = j > 0 ? z->chg[j - 1] : INT64_MIN;
    if (j < z->nchg)
      end = z->chg[j];
    else if (z->has_footer)
      end = foot_next_change(&z->foot, z->trans[z->n - 1]);
    else
      end = INT64_MAX;
  }
  out->start = start;
  out->end = end;
  out->offset = ty->off;
  out->is_dst = ty->is_dst;
  memcpy(out->abbr, ty->abbr, sizeof out->abbr);
}

/* ---- loading ----------------------------------------------------------- */

static int name_valid(const char *name, char *err)
{
  size_t n = strnlen(name, TZ_MAX_NAME + 1);
  if (n > TZ_MAX_NAME) {
    cx_err_set(err, "time zone name longer than %d bytes", TZ_MAX_NAME);
    return CX_EPARSE;
  }
  if (name[0] == '/' || strstr(name, "..") != NULL) {
    cx_err_set(err,
               "time zone '%s': must be a relative IANA name like "
               "Europe/London",
               name);
    return CX_EPARSE;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
          (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '+' ||
          ch == '-')) {
      cx_err_set(err,
                 "time zone '%.*s': character %zu is not allowed (only "
                 "letters, digits, '/', '_', '+', '-')",
                 (int)n, name, i + 1);
      return CX_EPARSE;
    }
  }
  return 0;
}

/* Reads the whole of path into *data (cx_free it). */
static int read_file(const char *path, const char *name, unsigned char **data,
                     size_t *len, char *err)
{
  int fd = -1, rc = 0;
  unsigned char *buf = NULL;
  struct stat st;
  size_t got = 0;

  /* O_NONBLOCK: a FIFO planted in the database must not hang us. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    cx_err_set(err, "unknown time zone '%s' (%s: %s)", name, path,
               strerror(errno));
    rc = CX_ENOTFOUND;
    goto out;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    cx_err_set(err, "unknown time zone '%s' (%s is not a zone file)", name,
               path);
    rc = CX_ENOTFOUND;
    goto out;
  }
  buf = cx_malloc(TZ_MAX_FILE + 1);
  if (buf == NULL) {
    rc = -ENOMEM;
    cx_err_set(err, "time zone '%s': out of memory", name);
    goto out;
  }
  for (;;) {
    ssize_t r = read(fd, buf + got, TZ_MAX_FILE + 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      cx_err_set(err, "time zone '%s': reading %s: %s", name, path,
                 strerror(errno));
      rc = CX_ENOTFOUND;
      goto out;
    }
    if (r == 0)
      break;
    got += (size_t)r;
    if (got > TZ_MAX_FILE) {
      cx_err_set(err, "time zone '%s': %s is larger than %d bytes", name, path,
                 TZ_MAX_FILE);
      rc = CX_EPARSE;
      goto out;
    }
  }
  *data = buf;
  *len = got;
  buf = NULL;
out:
  cx_free(buf);
  if (fd >= 0)
    close(fd);
  return rc;
}

/* Loads the zone file at path as a zone called name. */
static int zone_load(const char *path, const char *name, struct cx_tz **out,
                     char *err)
{
  unsigned char *data = NULL;
  size_t len = 0;
  struct cx_tz *z = NULL;
  int rc;

  *out = NULL;
  rc = read_file(path, name, &data, &len, err);
  if (rc != 0)
    goto out;
  z = cx_calloc(1, sizeof *z);
  if (z == NULL) {
    rc = -ENOMEM;
    cx_err_set(err, "time zone '%s': out of memory", name);
    goto out;
  }
  snprintf(z->name, sizeof z->name, "%s", name);
  rc = tzif_parse(data, len, z, err);
  if (rc != 0)
    goto out;
  rc = zone_extend(z);
  if (rc != 0) {
    cx_err_set(err, "time zone '%s': out of memory", name);
    goto out;
  }
  zone_index_changes(z);
  *out = z;
  z = NULL;
out:
  zone_free(z);
  cx_free(data);
  return rc;
}

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cx_tz *tz_cache;         /* loaded zones, under tz_lock */
static const struct cx_tz *tz_default; /* cx_tz_set_default */
static const struct cx_tz *tz_host;    /* detected on first use */

/* Finds or loads a validated name. Caller holds tz_lock. */
static int zone_get_locked(const char *name, const struct cx_tz **out,
                           char *err)
{
  char path[PATH_MAX];
  struct cx_tz *z;
  int rc;

  if (strcmp(name, "UTC") == 0) {
    *out = &tz_utc; /* built in: works without a tz database */
    return 0;
  }
  for (z = tz_cache; z != NULL; z = z->next) {
    if (strcmp(z->name, name) == 0) {
      *out = z;
      return 0;
    }
  }
  const char *dir = getenv("TZDIR");
  if (dir == NULL || dir[0] == '\0')
    dir = TZ_DEFAULT_DIR;
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof path) {
    cx_err_set(err, "time zone '%s': path under TZDIR too long", name);
    return CX_ENOTFOUND;
  }
  rc = zone_load(path, name, &z, err);
  if (rc != 0)
    return rc;
  z->next = tz_cache;
  tz_cache = z;
  *out = z;
  return 0;
}

/* Loads a file outside TZDIR (the host's /etc/localtime) as "localtime". */
static int zone_get_file_locked(const char *path, const struct cx_tz **out)
{
  struct cx_tz *z;
  char err[CX_ERR_LEN];
  for (z = tz_cache; z != NULL; z = z->next) {
    if (strcmp(z->name, "localtime") == 0) {
      *out = z;
      return 0;
    }
  }
  int rc = zone_load(path, "localtime", &z, err);
  if (rc != 0) {
    if (rc != CX_ENOTFOUND)
      CX_LOG(CX_LOG_WARN, "tz", "host zone %s: %s", path, err);
    return rc;
  }
  z->next = tz_cache;
  tz_cache = z;
  *out = z;
  return 0;
}

/* A host zone given as a POSIX TZ string ("JST-9", "EST5EDT,M3.2.0,M11.1.0")
 * rather than a file, as glibc also accepts in $TZ. Named "localtime". */
static int zone_from_posix_locked(const char *rule, const struct cx_tz **out)
{
  struct cx_tz *z = NULL;
  const char *what;
  size_t pos;
  struct tz_footer f;

  if (strlen(rule) > TZ_MAX_FOOTER || footer_parse(rule, &f, &what, &pos) != 0)
    return CX_EPARSE;
  z = cx_calloc(1, sizeof *z);
  if (z != NULL) {
    z->trans = cx_malloc(0);
    z->tidx = cx_malloc(0);
    z->chg = cx_malloc(0);
    z->types = cx_calloc(1, sizeof *z->types);
  }
  if (z == NULL || !z->trans || !z->tidx || !z->chg || !z->types) {
    zone_free(z);
    return -ENOMEM;
  }
  snprintf(z->name, sizeof z->name, "localtime");
  z->ntypes = 1;
  z->types[0] = f.std;
  footer_finish(&f);
  z->foot = f;
  z->has_footer = 1;
  z->next = tz_cache;
  tz_cache = z;
  *out = z;
  return 0;
}

/* Tries one candidate name for the host zone. */
static int host_try(const char *name, const char *source,
                    const struct cx_tz **out)
{
  char err[CX_ERR_LEN];
  int rc = name_valid(name, err);
  if (rc == 0)
    rc = zone_get_locked(name, out, err);
  if (rc != 0)
    CX_LOG(CX_LOG_WARN, "tz", "host zone from %s ignored: %s", source, err);
  return rc;
}

/* The part of a path after its last "zoneinfo/", or NULL. */
static const char *after_zoneinfo(const char *path)
{
  const char *hit = NULL, *p = path;
  while ((p = strstr(p, "zoneinfo/")) != NULL) {
    hit = p + strlen("zoneinfo/");
    p = hit;
  }
  return hit;
}

/* The host's zone; never fails (UTC at worst). Caller holds tz_lock. */
static const struct cx_tz *host_zone_locked(void)
{
  const struct cx_tz *z = NULL;
  char buf[TZ_MAX_NAME + 64];

  const char *tz = getenv("TZ");
  if (tz != NULL) {
    if (tz[0] == ':')
      tz++;
    if (tz[0] == '\0')
      return &tz_utc; /* TZ="" means UTC, as in glibc */
    if (tz[0] == '/') {
      const char *rel = after_zoneinfo(tz);
      if (rel != NULL && host_try(rel, "$TZ", &z) == 0)
        return z;
      if (zone_get_file_locked(tz, &z) == 0)
        return z;
    } else {
      char err[CX_ERR_LEN];
      if (name_valid(tz, err) == 0 && zone_get_locked(tz, &z, err) == 0)
        return z;
      if (zone_from_posix_locked(tz, &z) == 0)
        return z;
      CX_LOG(CX_LOG_WARN, "tz", "host zone from $TZ ignored: %s", err);
    }
  }

  int fd = open("/etc/timezone", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r > 0) {
      buf[r] = '\0';
      buf[strcspn(buf, " \t\r\n")] = '\0';
      if (buf[0] != '\0' && host_try(buf, "/etc/timezone", &z) == 0)
        return z;
    }
  }

  ssize_t r = readlink("/etc/localtime", buf, sizeof buf - 1);
  if (r > 0) {
    buf[r] = '\0';
    const char *rel = after_zoneinfo(buf);
    if (rel != NULL && host_try(rel, "/etc/localtime", &z) == 0)
      return z;
  }
  if (zone_get_file_locked("/etc/localtime", &z) == 0)
    return z;
  return &tz_utc;
}

int cx_tz_get(const char *name, const struct cx_tz **out, char *err)
{
  int rc = 0;
  *out = NULL;
  if (name != NULL && name[0] != '\0') {
    rc = name_valid(name, err);
    if (rc != 0)
      return rc;
  }
  pthread_mutex_lock(&tz_lock);
  if (name != NULL && name[0] != '\0') {
    rc = zone_get_locked(name, out, err);
  } else if (tz_default != NULL) {
    *out = tz_default;
  } else {
    if (tz_host == NULL)
      tz_host = host_zone_locked();
    *out = tz_host;
  }
  pthread_mutex_unlock(&tz_lock);
  return rc;
}

int cx_tz_set_default(const char *name, char *err)
{
  const struct cx_tz *z = NULL;
  if (name != NULL && name[0] != '\0') {
    int rc = cx_tz_get(name, &z, err);
    if (rc != 0)
      return rc;
  }
  pthread_mutex_lock(&tz_lock);
  tz_default = z;
  pthread_mutex_unlock(&tz_lock);
  return 0;
}

void cx_tz_cleanup(void)
{
  pthread_mutex_lock(&tz_lock);
  while (tz_cache != NULL) {
    struct cx_tz *z = tz_cache;
    tz_cache = z->next;
    zone_free(z);
  }
  tz_default = NULL;
  tz_host = NULL;
  pthread_mutex_unlock(&tz_lock);
}

/* ---- RFC 3339 ---------------------------------------------------------- */

#define RFC3339_LEN 25 /* "2026-03-08T03:00:00-04:00" */
#define RFC3339_MAX_INPUT 64

size_t cx_time_format(int64_t t, const struct cx_tz *tz, char *buf, size_t len)
{
  /* Years 0000..9999 only. The wide bounds just keep t + offset from
   * overflowing; the year check below is the real limit. */
  static const int64_t lo = -62167219200 - 2 * 86400; /* ~0000-01-01 */
  static const int64_t hi = 253402300799 + 2 * 86400; /* ~9999-12-31 */
  struct cx_civil c;

  if (len > 0)
    buf[0] = '\0';
  if (len <= RFC3339_LEN || t < lo || t > hi)
    return 0;
  /* RFC 3339 offsets have no seconds: round the offset to the minute and
   * print the clock for that offset, so the string names exactly t. */
  int32_t off = tz ? cx_tz_offset(tz, t) : 0;
  int32_t mins = off >= 0 ? (off + 30) / 60 : -((-off + 30) / 60);
  int32_t amins = mins < 0 ? -mins : mins;
  cx_civil_from_seconds(t + (int64_t)mins * 60, &c);
  if (c.year < 0 || c.year > 9999)
    return 0;
  int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", c.year,
                   c.month, c.day, c.hour, c.min, c.sec, mins < 0 ? '-' : '+',
                   (int)(amins / 60), (int)(amins % 60));
  return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* Exactly n digits at s. */
static int digits(const char *s, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int cx_time_parse(const char *s, int64_t *t)
{
  int year, mon, day, hour, min, sec, oh = 0, om = 0, sign = 1;
  if (s == NULL || strnlen(s, RFC3339_MAX_INPUT + 1) > RFC3339_MAX_INPUT)
    return CX_EPARSE;
  if (digits(s, 4, &year) || s[4] != '-' || digits(s + 5, 2, &mon) ||
      s[7] != '-' || digits(s + 8, 2, &day))
    return CX_EPARSE;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
    return CX_EPARSE;
  if (digits(s + 11, 2, &hour) || s[13] != ':' || digits(s + 14, 2, &min) ||
      s[16] != ':' || digits(s + 17, 2, &sec))
    return CX_EPARSE;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return CX_EPARSE;
    while (*p >= '0' && *p <= '9')
      p++; /* dropped: floor to the second */
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p == '-' ? -1 : 1;
    if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om))
      return CX_EPARSE;
    p += 6;
  } else {
    return CX_EPARSE;
  }
  if (*p != '\0')
    return CX_EPARSE;
  /* Leap second 60 is refused: unix time cannot name it. */
  if (mon < 1 || mon > 12 || day < 1 || day > cx_days_in_month(year, mon) ||
      hour > 23 || min > 59 || sec > 59 || oh > 23 || om > 59)
    return CX_EPARSE;
  *t = cx_days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 +
       sec - sign * (oh * 3600 + om * 60);
  return 0;
}

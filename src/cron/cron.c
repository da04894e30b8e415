/*
 * cron.c: the cron expression engine -- parse, next fire, check (SPEC §8).
 *
 * Parsing fills bitsets, one per field (sec, min, hour, dom 1..31,
 * month 1..12, dow 0..6, year 1970..2199), plus the Quartz day extras as
 * small bitsets: L-N offsets (L = L-0), NW days, LW, NL weekdays and N#K
 * (weekday x occurrence). Everything lives in one allocation; the parse does
 * exactly one cx_malloc.
 *
 * The next fire is found in two layers:
 *   - next_match(L): the smallest civil time (local seconds read as if UTC)
 *     >= L whose fields match, found field by field -- year, month, the
 *     32-bit mask of matching days of that month, then hour, minute and
 *     second by bit search. Never steps second by second; gives up past a
 *     year limit.
 *   - cx_cron_next walks the zone's periods of constant UTC offset from
 *     cx_tz_period_at. Within a period local time is a plain shift of real
 *     time, so one next_match answers it; what remains is the DST rule at
 *     the edges (ISC rule for "fixed time" expressions, real time for the
 *     others), see cx_cron_next.
 *
 * @every d fires at anchor + k*d, k >= 1, independent of any zone. Go
 * duration syntax; the total is truncated to whole seconds (as robfig/cron
 * and the seed's library do) after checking it is at least 1 s.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "cron/cron.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, F_YEAR, F_COUNT };

#define YEAR_MIN 1970
#define YEAR_MAX 2199
#define MAX_LIST_ITEMS 128
#define NO_MATCH INT64_MIN
/* cx_cron_next answers for `after` in [year 1, year 9999]. */
#define T_MIN (-62135596800LL)
#define T_MAX 253402300799LL

struct cx_cron {
  const struct cx_tz *tz;
  int64_t every; /* > 0: @every, seconds */
  int64_t anchor;
  uint64_t sec, min;
  uint64_t years[4]; /* bit y - YEAR_MIN */
  uint32_t hour;
  uint32_t dom;     /* bits 1..31 */
  uint32_t lminus;  /* bit n: "L-n" (L = L-0) */
  uint32_t wdays;   /* bit n: "nW" */
  uint32_t wk[7];   /* days matching dow when the 1st is weekday i */
  uint16_t month;   /* bits 1..12 */
  uint8_t dow;      /* bits 0..6 */
  uint8_t dow_last; /* bit n: "nL" */
  uint8_t nth[7];   /* nth[n] bit k-1: "n#k" */
  uint8_t lw, dom_star, dow_star, fixed, has_year, dom_ext, dow_ext;
};

struct field {
  const char *name;
  int min, max; /* accepted values (dow: 0..7) */
  int span;     /* largest step */
  const char *const *names;
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may",
                                          "jun", "jul", "aug", "sep", "oct",
                                          "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat", NULL};

static const struct field fields[F_COUNT] = {
    {"second", 0, 59, 60, NULL},
    {"minute", 0, 59, 60, NULL},
    {"hour", 0, 23, 24, NULL},
    {"dom", 1, 31, 31, NULL},
    {"month", 1, 12, 12, month_names},
    {"dow", 0, 7, 7, day_names},
    {"year", YEAR_MIN, YEAR_MAX, YEAR_MAX - YEAR_MIN + 1, NULL},
};

/* ---- small helpers ------------------------------------------------------ */

static int lower(int ch)
{
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

static int is_digit(int ch)
{
  return ch >= '0' && ch <= '9';
}

static int is_alpha(int ch)
{
  ch = lower(ch);
  return ch >= 'a' && ch <= 'z';
}

static int is_space(int ch)
{
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' ||
         ch == '\f';
}

/* Lowest set bit >= from, or -1. */
static int next_bit(uint64_t mask, int from)
{
  if (from >= 64)
    return -1;
  mask &= ~0ULL << from;
  return mask ? __builtin_ctzll(mask) : -1;
}

static int weekday(int y, int m, int d)
{
  int64_t days = cx_days_from_civil(y, m, d);
  return (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
}

/* ---- parsing ------------------------------------------------------------ */

/* Where a field is being parsed: for messages. */
struct cursor {
  const struct field *f;
  const char *item; /* the list item, not NUL-terminated */
  size_t len;
  size_t pos;
};

static int peek(const struct cursor *k)
{
  return k->pos < k->len ? (unsigned char)k->item[k->pos] : 0;
}

/* Reads a run of digits (at most 4) into *v. */
static int read_number(struct cursor *k, int *v, const char *what, char *err)
{
  size_t start = k->pos;
  int n = 0;
  while (is_digit(peek(k))) {
    if (k->pos - start >= 4) {
      while (is_digit(peek(k)))
        k->pos++;
      cx_err_set(err, "%s: number '%.*s' is too long", k->f->name,
                 (int)(k->pos - start), k->item + start);
      return CX_EPARSE;
    }
    n = n * 10 + (peek(k) - '0');
    k->pos++;
  }
  if (k->pos == start) {
    int ch = peek(k);
    if (ch == 0)
      cx_err_set(err, "%s: expected %s at the end of '%.*s'", k->f->name, what,
                 (int)k->len, k->item);
    else
      cx_err_set(err, "%s: expected %s, got '%c' in '%.*s'", k->f->name, what,
                 ch, (int)k->len, k->item);
    return CX_EPARSE;
  }
  *v = n;
  return 0;
}

/* Reads a value: a number or (for month/dow) a 3-letter name; checks the
 * field's range. range_end: a dow name "sun" at a range's end means 7. */
static int read_value(struct cursor *k, int *v, int range_end, char *err)
{
  const struct field *f = k->f;
  if (is_alpha(peek(k))) {
    size_t start = k->pos;
    while (is_alpha(peek(k)))
      k->pos++;
    size_t n = k->pos - start;
    if (f->names != NULL && n == 3) {
      for (int i = 0; f->names[i] != NULL; i++) {
        const char *name = f->names[i];
        if (lower(k->item[start]) == name[0] &&
            lower(k->item[start + 1]) == name[1] &&
            lower(k->item[start + 2]) == name[2]) {
          *v = f->names == month_names ? i + 1 : i;
          if (range_end && f->names == day_names && i == 0)
            *v = 7;
          return 0;
        }
      }
    }
    if (f->names != NULL)
      cx_err_set(err, "%s: unknown name '%.*s'", f->name,
                 (int)(n > 32 ? 32 : n), k->item + start);
    else
      cx_err_set(err, "%s: unexpected '%.*s' (numbers only here)", f->name,
                 (int)(n > 32 ? 32 : n), k->item + start);
    return CX_EPARSE;
  }
  int rc = read_number(k, v, "a number", err);
  if (rc != 0)
    return rc;
  if (*v < f->min || *v > f->max) {
    cx_err_set(err, "%s: value %d out of range %d-%d", f->name, *v, f->min,
               f->max);
    return CX_EPARSE;
  }
  return 0;
}

static int at_end(const struct cursor *k, char *err)
{
  if (k->pos == k->len)
    return 0;
  cx_err_set(err, "%s: unexpected '%c' in '%.*s'", k->f->name, k->item[k->pos],
             (int)k->len, k->item);
  return CX_EPARSE;
}

/* Bits lo..hi (< 64) every step. */
static uint64_t range_mask(int lo, int hi, int step)
{
  if (step == 1)
    return (hi == 63 ? ~0ULL : (1ULL << (hi + 1)) - 1) & (~0ULL << lo);
  uint64_t m = 0;
  for (int v = lo; v <= hi; v += step)
    m |= 1ULL << v;
  return m;
}

static void set_bits(struct cx_cron *c, int fi, int lo, int hi, int step)
{
  if (fi == F_YEAR) {
    for (int v = lo; v <= hi; v += step)
      c->years[(v - YEAR_MIN) / 64] |= 1ULL << ((v - YEAR_MIN) % 64);
    return;
  }
  uint64_t m = range_mask(lo, hi, step);
  switch (fi) {
  case F_SEC:
    c->sec |= m;
    break;
  case F_MIN:
    c->min |= m;
    break;
  case F_HOUR:
    c->hour |= (uint32_t)m;
    break;
  case F_DOM:
    c->dom |= (uint32_t)m;
    break;
  case F_MONTH:
    c->month |= (uint16_t)m;
    break;
  default: /* dow: 7 is Sunday */
    c->dow |= (uint8_t)((m | m >> 7) & 0x7F);
    break;
  }
}

/* dom extras: L, L-N, LW, NW. Returns 1 if the item was one (rc in *rc). */
static int parse_dom_extra(struct cursor *k, struct cx_cron *c, int *rc,
                           char *err)
{
  const char *s = k->item;
  size_t n = k->len;
  if (lower(s[0]) == 'l') {
    *rc = CX_EPARSE;
    if (n == 1) {
      c->lminus |= 1U;
    } else if (n == 2 && lower(s[1]) == 'w') {
      c->lw = 1;
    } else if (s[1] == '-') {
      int v;
      k->pos = 2;
      if ((*rc = read_number(k, &v, "a day offset after 'L-'", err)) != 0)
        return 1;
      if ((*rc = at_end(k, err)) != 0)
        return 1;
      if (v > 30) {
        cx_err_set(err, "dom: offset %d in 'L-%d' must be 0..30", v, v);
        *rc = CX_EPARSE;
        return 1;
      }
      c->lminus |= 1U << v;
    } else {
      cx_err_set(err, "dom: expected L, LW or L-N, got '%.*s'", (int)n, s);
      return 1;
    }
    *rc = 0;
    c->dom_ext = 1;
    return 1;
  }
  if (n >= 2 && lower(s[n - 1]) == 'w') {
    int v;
    struct cursor sub = *k;
    sub.len = n - 1;
    sub.pos = 0;
    *rc = read_value(&sub, &v, 0, err);
    if (*rc == 0 && sub.pos != sub.len) {
      cx_err_set(err, "dom: 'W' takes a single day, got '%.*s'", (int)n, s);
      *rc = CX_EPARSE;
    }
    if (*rc != 0)
      return 1;
    c->wdays |= 1U << v;
    c->dom_ext = 1;
    return 1;
  }
  return 0;
}

/* dow extras: NL, N#K. Returns 1 if the item was one (rc in *rc). */
static int parse_dow_extra(struct cursor *k, struct cx_cron *c, int *rc,
                           char *err)
{
  const char *s = k->item;
  size_t n = k->len;
  const char *hash = memchr(s, '#', n);
  int v, nth;
  if (hash != NULL) {
    struct cursor sub = *k;
    sub.len = (size_t)(hash - s);
    sub.pos = 0;
    if (sub.len == 0) {
      cx_err_set(err, "dow: expected a day before '#' in '%.*s'", (int)n, s);
      *rc = CX_EPARSE;
      return 1;
    }
    if ((*rc = read_value(&sub, &v, 0, err)) != 0)
      return 1;
    if ((*rc = at_end(&sub, err)) != 0)
      return 1;
    k->pos = sub.len + 1;
    if ((*rc = read_number(k, &nth, "an occurrence after '#'", err)) != 0)
      return 1;
    if ((*rc = at_end(k, err)) != 0)
      return 1;
    if (nth < 1 || nth > 5) {
      cx_err_set(err, "dow: occurrence %d in '%.*s' must be 1..5", nth, (int)n,
                 s);
      *rc = CX_EPARSE;
      return 1;
    }
    c->nth[v % 7] |= (uint8_t)(1U << (nth - 1));
    c->dow_ext = 1;
    return 1;
  }
  if (lower(s[n - 1]) != 'l')
    return 0;
  if (n == 1) {
    cx_err_set(err, "dow: 'L' needs a day before it (5L = last Friday)");
    *rc = CX_EPARSE;
    return 1;
  }
  /* "5L" or "friL": a day then L. A bare name ending in 'l' is not one. */
  struct cursor sub = *k;
  sub.len = n - 1;
  sub.pos = 0;
  if (!is_digit(s[0]) && n != 4)
    return 0;
  if ((*rc = read_value(&sub, &v, 0, err)) != 0)
    return 1;
  if ((*rc = at_end(&sub, err)) != 0)
    return 1;
  c->dow_last |= (uint8_t)(1U << (v % 7));
  c->dow_ext = 1;
  return 1;
}

/* One list item: *, N, N-M, with an optional /S. */
static int parse_item(struct cursor *k, int fi, struct cx_cron *c, char *err)
{
  const struct field *f = k->f;
  int lo, hi, step = 1, rc;
  if (k->item[0] == '?') {
    if (fi != F_DOM && fi != F_DOW) {
      cx_err_set(err, "%s: '?' is only allowed in dom and dow", f->name);
      return CX_EPARSE;
    }
    cx_err_set(err, "%s: '?' must be the whole field", f->name);
    return CX_EPARSE;
  }
  if (fi == F_DOM && parse_dom_extra(k, c, &rc, err))
    return rc;
  if (fi == F_DOW && parse_dow_extra(k, c, &rc, err))
    return rc;
  if (peek(k) == '*') {
    k->pos++;
    lo = f->min;
    hi = fi == F_DOW ? 6 : f->max;
    if (peek(k) != '/')
      goto set;
  } else {
    if ((rc = read_value(k, &lo, 0, err)) != 0)
      return rc;
    hi = lo;
    if (peek(k) == '-') {
      k->pos++;
      if ((rc = read_value(k, &hi, 1, err)) != 0)
        return rc;
      if (lo > hi) {
        cx_err_set(err, "%s: range %d-%d is reversed", f->name, lo, hi);
        return CX_EPARSE;
      }
    } else if (peek(k) == '/') {
      hi = fi == F_DOW ? 6 : f->max;
      if (lo > hi)
        hi = lo; /* "7/2" in dow: just Sunday */
    }
  }
  if (peek(k) == '/') {
    k->pos++;
    if ((rc = read_number(k, &step, "a step number", err)) != 0)
      return rc;
    if (step < 1 || step > f->span) {
      cx_err_set(err, "%s: step %d must be 1..%d", f->name, step, f->span);
      return CX_EPARSE;
    }
  }
set:
  if ((rc = at_end(k, err)) != 0)
    return rc;
  set_bits(c, fi, lo, hi, step);
  return 0;
}

static int parse_field(const char *s, size_t n, int fi, struct cx_cron *c,
                       char *err)
{
  const struct field *f = &fields[fi];
  if (n == 1 && s[0] == '?') {
    if (fi != F_DOM && fi != F_DOW) {
      cx_err_set(err, "%s: '?' is only allowed in dom and dow", f->name);
      return CX_EPARSE;
    }
    set_bits(c, fi, f->min, fi == F_DOW ? 6 : f->max, 1);
    return 0;
  }
  size_t i = 0;
  int items = 0;
  for (;;) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    if (j == i) {
      cx_err_set(err, "%s: empty list item in '%.*s'", f->name, (int)n, s);
      return CX_EPARSE;
    }
    if (++items > MAX_LIST_ITEMS) {
      cx_err_set(err, "%s: more than %d list items", f->name, MAX_LIST_ITEMS);
      return CX_EPARSE;
    }
    struct cursor k = {f, s + i, j - i, 0};
    int rc = parse_item(&k, fi, c, err);
    if (rc != 0)
      return rc;
    if (j == n)
      return 0;
    i = j + 1;
  }
}

/* Go duration: [+]([0-9]*(.[0-9]*)?unit)+ with units ns us µs ms s m h.
 * Sets *secs to the total truncated to whole seconds. */
static int parse_duration(const char *s, size_t n, int64_t *secs, char *err)
{
  static const struct {
    const char *unit;
    uint64_t ns;
  } units[] = {{"ns", 1ULL},           {"us", 1000ULL},
               {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
               {"\xce\xbcs", 1000ULL}, /* U+03BC Greek mu */
               {"ms", 1000000ULL},     {"s", 1000000000ULL},
               {"m", 60000000000ULL},  {"h", 3600000000000ULL}};
  const uint64_t max_ns = (uint64_t)INT64_MAX;
  uint64_t total = 0;
  size_t i = 0;
  if (n == 0) {
    cx_err_set(err, "@every: missing duration (e.g. 1h30m)");
    return CX_EPARSE;
  }
  if (s[0] == '-') {
    cx_err_set(err, "@every: duration must be at least 1s");
    return CX_EPARSE;
  }
  if (s[0] == '+')
    i++;
  if (n - i == 1 && s[i] == '0') {
    cx_err_set(err, "@every: duration must be at least 1s");
    return CX_EPARSE;
  }
  if (i == n)
    goto bad;
  while (i < n) {
    uint64_t whole = 0, frac = 0, scale = 1;
    size_t start = i;
    int digits = 0;
    while (i < n && is_digit(s[i])) {
      if (whole > max_ns / 10)
        goto overflow;
      whole = whole * 10 + (uint64_t)(s[i] - '0');
      i++;
      digits++;
    }
    if (i < n && s[i] == '.') {
      i++;
      while (i < n && is_digit(s[i])) {
        if (scale < 1000000000000000000ULL) { /* extra digits are dropped */
          frac = frac * 10 + (uint64_t)(s[i] - '0');
          scale *= 10;
        }
        i++;
        digits++;
      }
    }
    if (digits == 0)
      goto bad;
    size_t u = 0, ulen = 0;
    for (size_t t = 0; t < CX_ARRAY_LEN(units); t++) {
      size_t l = strlen(units[t].unit);
      /* Longest match first: "ms" before "m". */
      if (l > ulen && l <= n - i && memcmp(s + i, units[t].unit, l) == 0) {
        u = t;
        ulen = l;
      }
    }
    if (ulen == 0) {
      if (i == n)
        cx_err_set(err, "@every: missing unit in '%.*s' (ns us ms s m h)",
                   (int)(n > 64 ? 64 : n), s);
      else
        cx_err_set(err, "@every: unknown unit at '%.*s'",
                   (int)(n - start > 32 ? 32 : n - start), s + start);
      return CX_EPARSE;
    }
    i += ulen;
    uint64_t unit = units[u].ns;
    if (whole > max_ns / unit)
      goto overflow;
    uint64_t v = whole * unit;
    /* frac / scale of a unit, truncated; frac < scale <= 1e18, unit <=
     * 3.6e12: compute in 128 bits. */
    v += (uint64_t)((unsigned __int128)frac * unit / scale);
    if (v > max_ns || total > max_ns - v)
      goto overflow;
    total += v;
  }
  if (total < 1000000000ULL) {
    cx_err_set(err, "@every: duration must be at least 1s");
    return CX_EPARSE;
  }
  *secs = (int64_t)(total / 1000000000ULL);
  return 0;
bad:
  cx_err_set(err, "@every: invalid duration '%.*s' (e.g. 1h30m, 45s)",
             (int)(n > 64 ? 64 : n), s);
  return CX_EPARSE;
overflow:
  cx_err_set(err, "@every: duration '%.*s' is too large",
             (int)(n > 64 ? 64 : n), s);
  return CX_EPARSE;
}

static const struct {
  const char *name;
  const char *expr;
} descriptors[] = {
    {"yearly", "0 0 1 1 *"},  {"annually", "0 0 1 1 *"},
    {"monthly", "0 0 1 * *"}, {"weekly", "0 0 * * 0"},
    {"daily", "0 0 * * *"},   {"midnight", "0 0 * * *"},
    {"hourly", "0 * * * *"},
};

/* Splits s[0..n) on whitespace into at most 8 fields. */
static int split_fields(const char *s, size_t n, const char *start[8],
                        size_t len[8])
{
  int count = 0;
  size_t i = 0;
  while (i < n) {
    while (i < n && is_space(s[i]))
      i++;
    if (i == n)
      break;
    size_t j = i;
    while (j < n && !is_space(s[j]))
      j++;
    if (count < 8) {
      start[count] = s + i;
      len[count] = j - i;
    }
    count++;
    i = j;
  }
  return count;
}

static int parse_fields(const char *s, size_t n, struct cx_cron *c, char *err)
{
  const char *start[8];
  size_t len[8];
  int count = split_fields(s, n, start, len);
  if (count < 5 || count > 7) {
    cx_err_set(err, "expected 5, 6 or 7 fields, got %d", count);
    return CX_EPARSE;
  }
  int first = count == 5 ? F_MIN : F_SEC;
  if (count == 5)
    c->sec = 1;
  for (int i = 0; i < count; i++) {
    int rc = parse_field(start[i], len[i], first + i, c, err);
    if (rc != 0)
      return rc;
  }
  c->has_year = count == 7;
  const char *dom = start[F_DOM - first], *dow = start[F_DOW - first];
  c->dom_star = dom[0] == '*' || (len[F_DOM - first] == 1 && dom[0] == '?');
  c->dow_star = dow[0] == '*' || (len[F_DOW - first] == 1 && dow[0] == '?');
  c->fixed = start[F_MIN - first][0] != '*' && start[F_HOUR - first][0] != '*';
  /* wk[w]: day d matches when weekday (w + d - 1) % 7 is in dow: rotate
   * the 7 weekday bits by w, then repeat the week across the month. */
  for (int w = 0; w < 7; w++) {
    uint64_t r = ((uint64_t)c->dow >> w | (uint64_t)c->dow << (7 - w)) & 0x7F;
    uint64_t m = r | r << 7 | r << 14 | r << 21 | r << 28;
    c->wk[w] = (uint32_t)(m << 1);
  }
  return 0;
}

static int parse_body(const char *s, size_t n, const struct cx_cron_opts *opts,
                      struct cx_cron *c, char *err)
{
  while (n > 0 && is_space(s[0])) {
    s++;
    n--;
  }
  while (n > 0 && is_space(s[n - 1]))
    n--;
  if (n == 0) {
    cx_err_set(err, "empty expression");
    return CX_EPARSE;
  }
  if (s[0] != '@')
    return parse_fields(s, n, c, err);
  size_t w = 1;
  while (w < n && !is_space(s[w]))
    w++;
  const char *word = s + 1;
  size_t wlen = w - 1;
  const char *rest = s + w;
  size_t rlen = n - w;
  while (rlen > 0 && is_space(rest[0])) {
    rest++;
    rlen--;
  }
  if (wlen == 5 && strncasecmp(word, "every", 5) == 0) {
    int rc = parse_duration(rest, rlen, &c->every, err);
    if (rc != 0)
      return rc;
    c->anchor = opts ? opts->anchor : 0;
    return 0;
  }
  if (wlen == 6 && strncasecmp(word, "reboot", 6) == 0) {
    cx_err_set(err, "@reboot is not supported: cronix jobs fire on a "
                    "schedule, not at boot");
    return CX_EPARSE;
  }
  for (size_t i = 0; i < CX_ARRAY_LEN(descriptors); i++) {
    if (strlen(descriptors[i].name) == wlen &&
        strncasecmp(word, descriptors[i].name, wlen) == 0) {
      if (rlen > 0) {
        cx_err_set(err, "@%s takes no arguments, got '%.*s'",
                   descriptors[i].name, (int)(rlen > 32 ? 32 : rlen), rest);
        return CX_EPARSE;
      }
      const char *e = descriptors[i].expr;
      return parse_fields(e, strlen(e), c, err);
    }
  }
  cx_err_set(err, "unknown descriptor '@%.*s'", (int)(wlen > 32 ? 32 : wlen),
             word);
  return CX_EPARSE;
}

int cx_cron_parse(const char *expr, const struct cx_cron_opts *opts,
                  struct cx_cron **out, char *err)
{
  struct cx_cron *c = NULL;
  char zone[128];
  const char *zname = opts ? opts->timezone : NULL;
  int rc;
  *out = NULL;
  if (expr == NULL) {
    cx_err_set(err, "empty expression");
    return CX_EPARSE;
  }
  size_t n = strnlen(expr, CX_CRON_MAX_EXPR + 1);
  if (n > CX_CRON_MAX_EXPR) {
    cx_err_set(err, "expression longer than %d bytes", CX_CRON_MAX_EXPR);
    return CX_EPARSE;
  }
  const char *s = expr;
  while (n > 0 && is_space(*s)) {
    s++;
    n--;
  }
  size_t plen = 0;
  if (n >= 8 && strncasecmp(s, "CRON_TZ=", 8) == 0)
    plen = 8;
  else if (n >= 3 && strncasecmp(s, "TZ=", 3) == 0)
    plen = 3;
  if (plen > 0) {
    size_t e = plen;
    while (e < n && !is_space(s[e]))
      e++;
    if (e == plen) {
      cx_err_set(err, "timezone: missing zone name after '%.*s'", (int)plen, s);
      return CX_EPARSE;
    }
    if (e - plen >= sizeof zone) {
      cx_err_set(err, "timezone: zone name longer than %zu bytes",
                 sizeof zone - 1);
      return CX_EPARSE;
    }
    memcpy(zone, s + plen, e - plen);
    zone[e - plen] = '\0';
    zname = zone;
    s += e;
    n -= e;
  }
  c = cx_malloc(sizeof *c);
  if (c == NULL) {
    cx_err_set(err, "out of memory");
    return -ENOMEM;
  }
  memset(c, 0, sizeof *c);
  rc = parse_body(s, n, opts, c, err);
  if (rc != 0)
    goto fail;
  rc = cx_tz_get(zname, &c->tz, err);
  if (rc != 0) {
    rc = CX_EPARSE;
    goto fail;
  }
  *out = c;
  return 0;
fail:
  cx_free(c);
  return rc;
}

void cx_cron_free(struct cx_cron *c)
{
  cx_free(c);
}

const struct cx_tz *cx_cron_tz(const struct cx_cron *c)
{
  return c->tz;
}

int cx_cron_is_fixed_time(const struct cx_cron *c)
{
  return c->fixed;
}

/* ---- matching ----------------------------------------------------------- */

/* Bits 1..31: the days of (y, m) the expression fires on. */
static uint32_t day_mask(const struct cx_cron *c, int y, int m)
{
  int dim = cx_days_in_month(y, m);
  int w1 = weekday(y, m, 1);
  uint32_t valid = dim == 31 ? 0xFFFFFFFEU : (1U << (dim + 1)) - 2;
  uint32_t dm = c->dom, wm = c->wk[w1];
  if (c->dom_ext) {
    for (uint32_t b = c->lminus; b; b &= b - 1) {
      int d = dim - __builtin_ctz(b);
      if (d >= 1)
        dm |= 1U << d;
    }
    for (uint32_t b = c->wdays; b; b &= b - 1) {
      int d = __builtin_ctz(b);
      if (d > dim)
        continue;
      int w = (w1 + d - 1) % 7;
      if (w == 6) /* Saturday: the Friday before, or Monday if at the 1st */
        d = d > 1 ? d - 1 : d + 2;
      else if (w == 0) /* Sunday: the Monday after, or Friday if last */
        d = d < dim ? d + 1 : d - 2;
      dm |= 1U << d;
    }
    if (c->lw) {
      int w = (w1 + dim - 1) % 7;
      int d = w == 6 ? dim - 1 : w == 0 ? dim - 2 : dim;
      dm |= 1U << d;
    }
  }
  if (c->dow_ext) {
    int wl = (w1 + dim - 1) % 7;
    for (int n = 0; n < 7; n++) {
      if (c->dow_last & (1U << n))
        wm |= 1U << (dim - (wl - n + 7) % 7);
      for (uint32_t b = c->nth[n]; b; b &= b - 1) {
        int d = 1 + (n - w1 + 7) % 7 + 7 * __builtin_ctz(b);
        if (d <= dim)
          wm |= 1U << d;
      }
    }
  }
  return (c->dom_star || c->dow_star ? dm & wm : dm | wm) & valid;
}

/* Smallest (H, M, S) >= (h, mi, s) in the time bitsets. 0 or -1. */
static int find_time(const struct cx_cron *c, int h, int mi, int s, int *oh,
                     int *om, int *os)
{
  int H = next_bit(c->hour, h);
  if (H < 0)
    return -1;
  if (H > h)
    mi = s = 0;
  for (;;) {
    int M = next_bit(c->min, mi);
    if (M >= 0) {
      int S = next_bit(c->sec, M > mi ? 0 : s);
      if (S >= 0) {
        *oh = H;
        *om = M;
        *os = S;
        return 0;
      }
      mi = M + 1;
      s = 0;
      continue;
    }
    H = next_bit(c->hour, H + 1);
    if (H < 0)
      return -1;
    mi = s = 0;
  }
}

static int next_year(const struct cx_cron *c, int y)
{
  if (y < YEAR_MIN)
    y = YEAR_MIN;
  for (int i = (y - YEAR_MIN) / 64; i < 4 && y <= YEAR_MAX; i++) {
    int b = next_bit(c->years[i], (y - YEAR_MIN) % 64);
    if (b >= 0)
      return YEAR_MIN + i * 64 + b;
    y = YEAR_MIN + (i + 1) * 64;
  }
  return -1;
}

/* Smallest matching civil time >= L (local seconds), or NO_MATCH when none
 * falls in a year <= max_year. */
static int64_t next_match(const struct cx_cron *c, int64_t L, int max_year)
{
  struct cx_civil t;
  cx_civil_from_seconds(L, &t);
  int y = t.year, mo = t.month, d = t.day;
  int same_day = 1; /* candidate day is L's own day: time must be >= L's */
  for (;;) {
    if (c->has_year) {
      int ny = next_year(c, y);
      if (ny < 0)
        return NO_MATCH;
      if (ny != y) {
        y = ny;
        mo = d = 1;
        same_day = 0;
      }
    }
    if (y > max_year)
      return NO_MATCH;
    int nm = next_bit(c->month, mo);
    if (nm < 0) {
      y++;
      mo = d = 1;
      same_day = 0;
      continue;
    }
    if (nm != mo) {
      mo = nm;
      d = 1;
      same_day = 0;
    }
    uint32_t days = day_mask(c, y, mo) & (uint32_t)(~0ULL << d);
    for (; days; days &= days - 1) {
      int nd = __builtin_ctz(days);
      int H, M, S;
      int rc = same_day && nd == d
                   ? find_time(c, t.hour, t.min, t.sec, &H, &M, &S)
                   : find_time(c, 0, 0, 0, &H, &M, &S);
      same_day = 0;
      if (rc == 0)
        return cx_days_from_civil(y, mo, nd) * 86400 + H * 3600 + M * 60 + S;
    }
    same_day = 0;
    d = 1;
    if (++mo > 12) {
      mo = 1;
      y++;
    }
  }
}

static int next_every(const struct cx_cron *c, int64_t after, int64_t *next)
{
  int64_t d = c->every, k;
  if (after < c->anchor) {
    k = 1;
  } else {
    /* after - anchor fits: after is bounded by T_MIN..T_MAX, anchor any. */
    __int128 diff = (__int128)after - c->anchor;
    __int128 kk = diff / d + 1;
    if (kk > INT64_MAX)
      return CX_ENEVER;
    k = (int64_t)kk;
  }
  __int128 t = (__int128)c->anchor + (__int128)k * d;
  if (t > T_MAX || t - after > (__int128)CX_CRON_HORIZON_YEARS * 366 * 86400)
    return CX_ENEVER;
  *next = (int64_t)t;
  return 0;
}

int cx_cron_next(const struct cx_cron *c, int64_t after, int64_t *next)
{
  if (after < T_MIN || after >= T_MAX)
    return CX_ENEVER;
  if (c->every > 0)
    return next_every(c, after, next);
  struct cx_civil t;
  cx_civil_from_seconds(after, &t);
  int max_year = t.year + CX_CRON_HORIZON_YEARS;
  int64_t horizon = after + (int64_t)CX_CRON_HORIZON_YEARS * 366 * 86400;
  int64_t a = after + 1;
  int64_t prev_llo = INT64_MAX, prev_m = INT64_MIN;
  struct cx_tz_period p;
  cx_tz_period_at(c->tz, a, &p);
  for (;;) {
    int64_t o = p.offset;
    int64_t lo = a > p.start ? a : p.start;
    int64_t llo = lo + o;
    if (c->fixed && p.start != INT64_MIN) {
      /* Fall back: local times in [start+o, start+op) were already shown
       * by the previous period; a fixed-time job fired there. */
      int32_t op = cx_tz_offset(c->tz, p.start - 1);
      if (op > o && p.start + op > llo)
        llo = p.start + op;
    }
    /* The smallest match >= prev_llo was prev_m, so for any start in
     * [prev_llo, prev_m] it is still prev_m: no need to search again. */
    int64_t m = llo >= prev_llo && llo <= prev_m ? prev_m
                                                 : next_match(c, llo, max_year);
    if (m == NO_MATCH)
      return CX_ENEVER;
    prev_llo = llo;
    prev_m = m;
    if (p.end == INT64_MAX || m < p.end + o) {
      *next = m - o;
      return 0;
    }
    struct cx_tz_period q;
    cx_tz_period_at(c->tz, p.end, &q);
    /* Spring forward: a fixed-time match in the skipped local interval
     * fires at the first instant after the jump. */
    if (c->fixed && q.offset > o && m < p.end + q.offset) {
      *next = p.end;
      return 0;
    }
    if (q.start > horizon || q.start <= p.start)
      return CX_ENEVER;
    p = q;
  }
}

int cx_cron_check(const char *expr, const struct cx_cron_opts *opts,
                  int64_t now, char *err)
{
  struct cx_cron *c;
  int64_t next;
  int rc = cx_cron_parse(expr, opts, &c, err);
  if (rc != 0)
    return rc;
  rc = cx_cron_next(c, now, &next);
  if (rc == CX_ENEVER) {
    char when[40];
    cx_time_format(now, c->tz, when, sizeof when);
    cx_err_set(err, "never fires after %s (searched %d years)", when,
               CX_CRON_HORIZON_YEARS);
  }
  cx_cron_free(c);
  return rc;
}

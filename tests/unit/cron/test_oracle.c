/*
 * cron: oracle test. A small generator writes random valid expressions and,
 * alongside, its own description of what each field means (plain arrays,
 * not our bitsets). A brute-force matcher then steps real instants one by
 * one -- a minute at a time for 5-field expressions, a second at a time
 * for 6-field ones -- over a bounded window, reads the local time through
 * cx_tz_offset, and finds the first matching instant. cx_cron_next must
 * agree: the same instant, or nothing inside the window.
 *
 * Zones: UTC, and America/New_York with wildcard-mode expressions (minute
 * or hour starting with '*'), where "real time" semantics apply and a
 * brute force over instants is the definition. Fixed-time expressions in
 * New York and Lord Howe are checked against the ISC rule's definition
 * instead: each matching local minute fires at its first occurrence, or at
 * the end of the gap it falls in. Deterministic seeds.
 */
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"
#include "support/test.h"
#include "unit/cron/crontest.h"
#include "util/util.h"

struct model {
  int six;                  /* 6 fields: seconds present */
  unsigned char set[6][64]; /* sec min hour dom month dow (dow 0..6) */
  int dom_star, dow_star;
  int dom_last[32]; /* L-n offsets */
  int dom_w[32];    /* nW days */
  int dom_lw;
  int dow_last[7];   /* nL */
  int dow_nth[7][6]; /* n#k */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}

static const char *const mon_names[] = {"jan", "feb", "mar", "apr",
                                        "may", "jun", "jul", "aug",
                                        "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

/* Writes value v of field fi, sometimes as a name. "sun" means 0, except
 * at a range's end where it means 7. */
static int put_value(char *b, size_t n, int fi, int v, int range_end)
{
  if (fi == 4 && rnd(3) == 0)
    return snprintf(b, n, "%s", mon_names[v - 1]);
  if (fi == 5 && (range_end ? v != 0 : v != 7) && rnd(3) == 0)
    return snprintf(b, n, "%s", dow_names[v % 7]);
  return snprintf(b, n, "%d", v);
}

static void mark(struct model *m, int fi, int lo, int hi, int step)
{
  for (int v = lo; v <= hi; v += step)
    m->set[fi][fi == 5 ? v % 7 : v] = 1;
}

enum { ANY, STAR, NO_STAR };

/* One field; shape: ANY, STAR (starts with '*'), NO_STAR (does not). */
static int gen_field(char *b, size_t n, int fi, struct model *m, int shape)
{
  int star_only = shape == STAR;
  static const int lo_of[6] = {0, 0, 0, 1, 1, 0};
  static const int hi_of[6] = {59, 59, 23, 31, 12, 6};
  int lo = lo_of[fi], hi = hi_of[fi], span = hi - lo + 1;
  int k = star_only          ? (int)rnd(2)
          : shape == NO_STAR ? 2 + (int)rnd(8)
                             : (int)rnd(10);
  if (fi == 3 && !star_only && rnd(5) == 0) { /* dom extras / ? */
    switch (rnd(5)) {
    case 0:
      m->dom_last[0] = 1;
      return snprintf(b, n, "L");
    case 1: {
      int o = (int)rnd(6);
      m->dom_last[o] = 1;
      return snprintf(b, n, "L-%d", o);
    }
    case 2: {
      int d = 1 + (int)rnd(31);
      m->dom_w[d] = 1;
      return snprintf(b, n, "%dW", d);
    }
    case 3:
      m->dom_lw = 1;
      return snprintf(b, n, "LW");
    default:
      m->dom_star = 1;
      mark(m, fi, 1, 31, 1);
      return snprintf(b, n, "?");
    }
  }
  if (fi == 5 && !star_only && rnd(5) == 0) { /* dow extras / ? */
    int d = (int)rnd(8);
    switch (rnd(3)) {
    case 0:
      m->dow_last[d % 7] = 1;
      return snprintf(b, n, "%dL", d);
    case 1: {
      int kk = 1 + (int)rnd(5);
      m->dow_nth[d % 7][kk] = 1;
      return snprintf(b, n, "%d#%d", d, kk);
    }
    default:
      m->dow_star = 1;
      mark(m, fi, 0, 6, 1);
      return snprintf(b, n, "?");
    }
  }
  if (fi == 5 && k >= 2)
    hi = 7; /* dow values may use 7 */
  switch (k) {
  case 0:
    if (fi == 3)
      m->dom_star = 1;
    if (fi == 5)
      m->dow_star = 1;
    mark(m, fi, lo, hi, 1);
    return snprintf(b, n, "*");
  case 1: {
    int s = 1 + (int)rnd((uint32_t)(span / 2 + 1));
    if (fi == 3)
      m->dom_star = 1;
    if (fi == 5)
      m->dow_star = 1;
    mark(m, fi, lo, hi, s);
    return snprintf(b, n, "*/%d", s);
  }
  case 2:
  case 3: {
    int v = lo + (int)rnd((uint32_t)(hi - lo + 1));
    mark(m, fi, v, v, 1);
    return put_value(b, n, fi, v, 0);
  }
  case 4:
  case 5: {
    int a = lo + (int)rnd((uint32_t)(hi - lo + 1));
    int z = a + (int)rnd((uint32_t)(hi - a + 1));
    int len = put_value(b, n, fi, a, 0);
    len += snprintf(b + len, n - (size_t)len, "-");
    len += put_value(b + len, n - (size_t)len, fi, z, 1);
    if (k == 5) {
      int s = 1 + (int)rnd((uint32_t)span);
      len += snprintf(b + len, n - (size_t)len, "/%d", s);
      mark(m, fi, a, z, s);
    } else {
      mark(m, fi, a, z, 1);
    }
    return len;
  }
  case 6: {
    int a = lo + (int)rnd((uint32_t)(hi - lo + 1));
    int s = 1 + (int)rnd((uint32_t)span);
    int top = fi == 5 ? (a == 7 ? 7 : 6) : hi;
    mark(m, fi, a, top, s);
    return snprintf(b, n, "%d/%d", a, s);
  }
  default: { /* list of 2..3 singles */
    int len = 0, items = 2 + (int)rnd(2);
    for (int i = 0; i < items; i++) {
      int v = lo + (int)rnd((uint32_t)(hi - lo + 1));
      mark(m, fi, v, v, 1);
      if (i)
        len += snprintf(b + len, n - (size_t)len, ",");
      len += put_value(b + len, n - (size_t)len, fi, v, 0);
    }
    return len;
  }
  }
}

enum { MODE_ANY, MODE_WILDCARD, MODE_FIXED };

/* Builds an expression. MODE_WILDCARD: minute or hour starts with '*';
 * MODE_FIXED: neither does (5 fields, so the brute force steps minutes). */
static void gen_expr(char *b, size_t n, struct model *m, int mode)
{
  memset(m, 0, sizeof *m);
  m->six = mode != MODE_FIXED && rnd(3) == 0;
  int star_field = mode == MODE_WILDCARD ? 1 + (int)rnd(2) : -1;
  int len = 0;
  if (!m->six)
    m->set[0][0] = 1;
  for (int fi = m->six ? 0 : 1; fi < 6; fi++) {
    if (len)
      len += snprintf(b + len, n - (size_t)len, " ");
    /* Keep day and month fields loose so fires land inside the window. */
    int loose = (fi == 3 || fi == 4) && rnd(3) != 0;
    int shape = fi == star_field || loose ? STAR : ANY;
    if (mode == MODE_FIXED && (fi == 1 || fi == 2))
      shape = NO_STAR;
    len += gen_field(b + len, n - (size_t)len, fi, m, shape);
  }
}

/* ---- the brute-force matcher -------------------------------------------- */

static int weekday_of(int y, int mo, int d)
{
  int64_t days = cx_days_from_civil(y, mo, d);
  return (int)(((days % 7) + 11) % 7);
}

/* Nearest weekday to day d inside the month, searched by distance. */
static int nearest_weekday(int y, int mo, int d, int dim)
{
  for (int dist = 0; dist < 3; dist++) {
    int cand[2] = {d - dist, d + dist};
    for (int i = 0; i < 2; i++) {
      int c = cand[i];
      if (c < 1 || c > dim)
        continue;
      int w = weekday_of(y, mo, c);
      if (w != 0 && w != 6)
        return c;
    }
  }
  return -1;
}

static int day_matches(const struct model *m, int y, int mo, int d)
{
  int dim = cx_days_in_month(y, mo);
  int w = weekday_of(y, mo, d);
  int dom = m->set[3][d];
  for (int o = 0; o < 32; o++)
    if (m->dom_last[o] && d == dim - o)
      dom = 1;
  for (int x = 1; x <= 31; x++)
    if (m->dom_w[x] && x <= dim && nearest_weekday(y, mo, x, dim) == d)
      dom = 1;
  if (m->dom_lw && nearest_weekday(y, mo, dim, dim) == d)
    dom = 1;
  int dow = m->set[5][w];
  if (m->dow_last[w] && d + 7 > dim)
    dow = 1;
  if (m->dow_nth[w][(d - 1) / 7 + 1])
    dow = 1;
  return m->dom_star || m->dow_star ? dom && dow : dom || dow;
}

static int instant_matches(const struct model *m, const struct cx_tz *tz,
                           int64_t t)
{
  struct cx_civil c;
  cx_civil_from_seconds(t + cx_tz_offset(tz, t), &c);
  return m->set[0][c.sec] && m->set[1][c.min] && m->set[2][c.hour] &&
         m->set[4][c.month] && day_matches(m, c.year, c.month, c.day);
}

/* First matching instant in (after, limit], or -1. */
static int64_t brute_next(const struct model *m, const struct cx_tz *tz,
                          int64_t after, int64_t limit)
{
  int step = m->six ? 1 : 60;
  int64_t t = after + 1;
  if (!m->six)
    t = (t + 59) / 60 * 60; /* zones here have whole-minute offsets */
  for (; t <= limit; t += step)
    if (instant_matches(m, tz, t))
      return t;
  return -1;
}

/* Where local time L first occurs, or -- L in a gap -- the first instant
 * after the jump. Tries the offsets in force 14 h either side. */
static int64_t local_to_instant(const struct cx_tz *tz, int64_t L)
{
  int32_t cand[2] = {cx_tz_offset(tz, L - 50400), cx_tz_offset(tz, L + 50400)};
  int64_t best = INT64_MAX;
  for (int i = 0; i < 2; i++) {
    int64_t t = L - cand[i];
    if (cx_tz_offset(tz, t) == cand[i] && t < best)
      best = t;
  }
  if (best != INT64_MAX)
    return best;
  struct cx_tz_period p;
  cx_tz_period_at(tz, L - (cand[0] < cand[1] ? cand[0] : cand[1]), &p);
  return p.start;
}

/* The ISC rule by its definition: every matching local minute maps to an
 * instant as above; the fire is the smallest mapped instant in
 * (after, limit]. Local minutes are enumerated one by one. */
static int64_t brute_fixed(const struct model *m, const struct cx_tz *tz,
                           int64_t after, int64_t limit)
{
  int64_t best = -1;
  int64_t L = (after + cx_tz_offset(tz, after) - 3 * 3600) / 60 * 60;
  int64_t end = limit + cx_tz_offset(tz, limit) + 3 * 3600;
  for (; L <= end; L += 60) {
    struct cx_civil c;
    cx_civil_from_seconds(L, &c);
    if (!(m->set[1][c.min] && m->set[2][c.hour] && m->set[4][c.month] &&
          day_matches(m, c.year, c.month, c.day)))
      continue;
    int64_t t = local_to_instant(tz, L);
    if (t > after && t <= limit && (best < 0 || t < best))
      best = t;
  }
  return best;
}

static void run_oracle(const char *zone, int mode, int count,
                       const int64_t *bases, int nbases)
{
  const struct cx_tz *tz = NULL;
  char err[CX_ERR_LEN] = "";
  ASSERT_MSG(cx_tz_get(zone, &tz, err) == 0, "%s", err);
  int checked = 0, fired = 0;
  for (int i = 0; i < count; i++) {
    char expr[256];
    struct model m;
    gen_expr(expr, sizeof expr, &m, mode);
    struct cx_cron_opts o = {zone, 0};
    struct cx_cron *c = NULL;
    int rc = cx_cron_parse(expr, &o, &c, err);
    ASSERT_MSG(rc == 0, "generated '%s' did not parse: %s", expr, err);
    if (mode != MODE_ANY)
      ASSERT_EQ(cx_cron_is_fixed_time(c), mode == MODE_FIXED);
    int64_t window = m.six ? 3 * 3600 : (mode == MODE_FIXED ? 2 : 4) * 86400;
    int64_t t = bases[rnd((uint32_t)nbases)] + (int64_t)rnd(2 * 86400) - 86400 -
                (m.six ? 0 : (int64_t)rnd(2) * 86400);
    int64_t limit = t + window;
    for (int k = 0; k < 4; k++) {
      int64_t want = mode == MODE_FIXED ? brute_fixed(&m, tz, t, limit)
                                        : brute_next(&m, tz, t, limit);
      int64_t got = 0;
      rc = cx_cron_next(c, t, &got);
      checked++;
      if (want < 0) {
        ASSERT_MSG(rc == CX_ENEVER || got > limit,
                   "'%s' [%s] after %s: brute force finds nothing up to %s, "
                   "engine says %s",
                   expr, zone, ct_utc(t), ct_utc(limit), ct_utc(got));
        break;
      }
      ASSERT_MSG(rc == 0 && got == want,
                 "'%s' [%s] after %s: brute force %s, engine rc=%d %s", expr,
                 zone, ct_utc(t), ct_utc(want), rc, ct_utc(got));
      fired++;
      t = got;
    }
    cx_cron_free(c);
  }
  /* The generator must produce fires often enough to mean something. */
  ASSERT_MSG(fired > checked / 3, "%s: only %d fires in %d checks", zone, fired,
             checked);
}

static const int64_t utc_bases[] = {
    1767225600LL, /* 2026-01-01 */
    1709164800LL, /* 2024-02-29 */
    4107542400LL, /* 2100-02-28 */
    951782400LL,  /* 2000-02-29 */
};

/* Around New York's transitions, where real time matters most. */
static const int64_t ny_bases[] = {
    1772953200LL, /* 2026-03-08T07:00Z spring forward */
    1793512800LL, /* 2026-11-01T06:00Z fall back */
    1331449200LL, /* 2012-03-11T07:00Z */
    1352008800LL, /* 2012-11-04T06:00Z */
    1767225600LL, /* 2026-01-01, no transition */
};

TEST_TIMEOUT(cron_oracle_utc, 120)
{
  rng_state = 0x243f6a8885a308d3ULL;
  run_oracle("UTC", MODE_ANY, 1500, utc_bases, (int)CX_ARRAY_LEN(utc_bases));
}

TEST_TIMEOUT(cron_oracle_new_york_wildcard, 120)
{
  rng_state = 0x13198a2e03707344ULL;
  run_oracle("America/New_York", MODE_WILDCARD, 1500, ny_bases,
             (int)CX_ARRAY_LEN(ny_bases));
}

/* Fixed-time expressions in zones with DST: the ISC rule, checked against
 * its definition over local minutes. */
TEST_TIMEOUT(cron_oracle_new_york_fixed_time, 120)
{
  rng_state = 0xa4093822299f31d0ULL;
  run_oracle("America/New_York", MODE_FIXED, 600, ny_bases,
             (int)CX_ARRAY_LEN(ny_bases));
}

static const int64_t lord_howe_bases[] = {
    1775314800LL, /* 2026-04-04T15:00Z: 02:00 -> 01:30 */
    1791041400LL, /* 2026-10-03T15:30Z: 02:00 -> 02:30 */
};

TEST_TIMEOUT(cron_oracle_lord_howe_fixed_time, 120)
{
  rng_state = 0x082efa98ec4e6c89ULL;
  run_oracle("Australia/Lord_Howe", MODE_FIXED, 300, lord_howe_bases,
             (int)CX_ARRAY_LEN(lord_howe_bases));
}

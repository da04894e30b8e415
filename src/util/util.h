/*
 * util: the small pieces every Cronix module shares.
 *
 *   - error codes: 0 is success, negative is failure; system failures are
 *     -errno, Cronix's own codes sit below -4000 (CX_ERRNO_MAP);
 *   - logging: CX_LOG(level, component, fmt, ...), one line per event;
 *   - allocation: cx_malloc & co., which a test can make fail on the Nth call;
 *   - clocks: a monotonic clock for durations, the wall clock for calendars;
 *   - calendar arithmetic on proleptic Gregorian dates (no time zones here:
 *     those live in src/cron/tz.c only);
 *   - a growable byte buffer.
 *
 * Everything here is thread-safe unless a comment says otherwise.
 */
#ifndef CX_UTIL_H
#define CX_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------ */

/* Append-only: never renumber or remove a code. */
#define CX_ERRNO_MAP(X)                                                        \
  X(PARSE, -4001, "invalid input")                                             \
  X(NOTFOUND, -4002, "not found")                                              \
  X(EXISTS, -4003, "already exists")                                           \
  X(UNAVAIL, -4004, "service unavailable")                                     \
  X(NEVER, -4005, "schedule never fires")                                      \
  X(TOOBIG, -4006, "too large")                                                \
  X(CONFLICT, -4007, "conflict")                                               \
  X(AUTH, -4008, "authentication failed")                                      \
  X(LEASE, -4009, "lease lost")                                                \
  X(COMPACTED, -4010, "revision compacted")                                    \
  X(PROTO, -4011, "protocol error")                                            \
  X(NOTIMPL, -4012, "not implemented yet")

enum cx_err {
#define CX__ERR_ENUM(name, code, msg) CX_E##name = (code),
  CX_ERRNO_MAP(CX__ERR_ENUM)
#undef CX__ERR_ENUM
};

/* Length of the optional caller-supplied detail buffers (`char err[]`). */
#define CX_ERR_LEN 256

/* Text for a code (a Cronix code or -errno). Never NULL; static storage. */
const char *cx_strerror(int err);
/* Symbolic name: "CX_EPARSE", "ENOENT", ... Never NULL. */
const char *cx_err_name(int err);
/* snprintf into an optional err buffer (NULL is allowed and ignored). */
void cx_err_set(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- logging ----------------------------------------------------------- */

enum cx_log_level {
  CX_LOG_DEBUG = 0,
  CX_LOG_INFO = 1,
  CX_LOG_WARN = 2,
  CX_LOG_ERROR = 3,
  CX_LOG_OFF = 4
};

extern volatile int
    cx__log_level; /* read by CX_LOG; set via cx_log_set_level */

/* Logs one line "TIME LEVEL component: message" to the log fd (stderr by
 * default). The level is checked before the arguments are evaluated. */
#define CX_LOG(level, component, ...)                                          \
  do {                                                                         \
    if ((level) >= cx__log_level)                                              \
      cx_log_write((level), (component), __VA_ARGS__);                         \
  } while (0)

void cx_log_write(enum cx_log_level level, const char *component,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cx_log_set_level(enum cx_log_level level);
/* Parses "debug|info|warn|error|off"; returns 0 or CX_EPARSE. */
int cx_log_level_parse(const char *s, enum cx_log_level *out);
/* Sends log lines to fd (not closed by the logger). */
void cx_log_set_fd(int fd);
/* Async-signal-safe: writes msg and a newline to the log fd as is. */
void cx_log_signal_safe(const char *msg);

/* ---- allocation -------------------------------------------------------- */

/* All Cronix allocations go through these. cx_malloc(0) returns a unique
 * pointer. They return NULL on failure; callers handle it. */
void *cx_malloc(size_t n);
void *cx_calloc(size_t count, size_t size);
void *cx_realloc(void *p, size_t n);
void cx_free(void *p);
char *cx_strdup(const char *s);
char *cx_strndup(const char *s, size_t n);
/* Test hook: the nth allocation from now (1 = the next) and all after it
 * fail, until reset with 0. */
void cx_alloc_fail_after(long n);

/* ---- clocks ------------------------------------------------------------ */

typedef int64_t cx_mono; /* microseconds on CLOCK_MONOTONIC */

cx_mono cx_mono_now(void);
/* Wall clock (CLOCK_REALTIME): milliseconds / seconds since the epoch. */
int64_t cx_wall_ms(void);
int64_t cx_wall_s(void);
/* Sleeps for us microseconds, resuming after signals. */
void cx_sleep_us(int64_t us);

/* ---- calendar (proleptic Gregorian, no zones) -------------------------- */

struct cx_civil {
  int year;  /* e.g. 2026 */
  int month; /* 1..12 */
  int day;   /* 1..31 */
  int hour, min, sec;
  int wday; /* 0 = Sunday */
};

/* Days since 1970-01-01 of a date; valid for any int year. */
int64_t cx_days_from_civil(int year, int month, int day);
/* Breaks seconds since the epoch (taken as a wall-clock reading) down. */
void cx_civil_from_seconds(int64_t s, struct cx_civil *out);
/* The inverse of cx_civil_from_seconds (wday ignored). */
int64_t cx_civil_to_seconds(const struct cx_civil *c);
int cx_is_leap_year(int year);
int cx_days_in_month(int year, int month);

/* ---- byte buffer ------------------------------------------------------- */

/* A growable, always NUL-terminated byte buffer. Zero-initialise it
 * ({0}); free with cx_buf_free. On allocation failure the buffer is marked
 * failed: later appends do nothing and cx_buf_failed() returns 1, so a
 * caller can check once at the end. */
struct cx_buf {
  char *data; /* NULL until the first append */
  size_t len;
  size_t cap;
  int failed;
};

void cx_buf_append(struct cx_buf *b, const void *data, size_t len);
void cx_buf_puts(struct cx_buf *b, const char *s);
void cx_buf_printf(struct cx_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cx_buf_reset(struct cx_buf *b); /* len = 0, keeps memory */
void cx_buf_free(struct cx_buf *b);
int cx_buf_failed(const struct cx_buf *b);
/* Hands the data to the caller (free with cx_free) and empties b. Never
 * NULL unless the buffer failed. */
char *cx_buf_steal(struct cx_buf *b);

/* ---- small helpers ----------------------------------------------------- */

#define CX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CX_CONTAINER_OF(ptr, type, member)                                     \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Parses a decimal integer in [min, max] taking the whole string. Returns 0,
 * or CX_EPARSE (empty, junk, or out of range). */
int cx_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- secrets in URLs --------------------------------------------------- */

/* Flags of cx_url_redact. PATH: also mask the last path segment, every
 * query value and the fragment (a webhook's token: .../hook/<token>,
 * ?access_token=...). LIST: url is a comma list, each item masked. */
#define CX_URL_REDACT_PATH 1u
#define CX_URL_REDACT_LIST 2u

/* Copies url into out (outlen bytes, always NUL-terminated, cut when
 * longer) with the password of its user info ("scheme://user:PASS@host/")
 * replaced by "***". The authority ends at the first '/' or '?', so a
 * password holding '@', ':' or '#' is masked whole. A cut never shows
 * what was masked. Text that is not a URL is copied as is. Use it for
 * every message that names a URL. Thread-safe; never allocates. */
void cx_url_redact(const char *url, unsigned flags, char *out, size_t outlen);

#endif

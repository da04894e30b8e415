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
 *   - a growable byte buffer;
 *   - UTF-8 checking and cleaning (one strict decoder for all modules);
 *   - random bytes and hex tokens (one source: getrandom);
 *   - condition variables timed on CLOCK_MONOTONIC.
 *
 * Everything here is thread-safe unless a comment says otherwise.
 */
#ifndef CX_UTIL_H
#define CX_UTIL_H

#include <pthread.h>
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

/* Initialises cv to time its waits on CLOCK_MONOTONIC, so that a step of
 * the wall clock neither stretches nor cuts a wait. 0 or -errno. */
int cx_cond_init_mono(pthread_cond_t *cv);
/* Waits on cv (initialised with cx_cond_init_mono, mu held) until the
 * cx_mono deadline until, or for ms milliseconds. Spurious and early
 * wake-ups are the caller's loop's to handle. */
void cx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, cx_mono until);
void cx_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

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

/* ---- UTF-8 (utf8.c) ---------------------------------------------------- */

/* Valid means RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF. NUL is a valid one-byte character here; callers that refuse it
 * check for it themselves. */

/* U+FFFD, the replacement character, as UTF-8. */
#define CX_UTF8_REPL "\xEF\xBF\xBD"

/* Length (1..4) of the valid sequence at s (n bytes left), 0 if there is
 * none (or n is 0). cp (may be NULL) gets its code point. */
size_t cx_utf8_next(const char *s, size_t n, uint32_t *cp);
/* 1 if s[0..n) is valid UTF-8. */
int cx_utf8_valid(const char *s, size_t n);
/* Characters in s[0..n): the bytes that are not continuation bytes. */
size_t cx_utf8_chars(const char *s, size_t n);
/* The start of the character holding s[i], i.e. the largest j <= i that
 * does not split a sequence (n if i >= n). */
size_t cx_utf8_floor(const char *s, size_t n, size_t i);
/* The smallest j >= i that is not a continuation byte (at most n). */
size_t cx_utf8_ceil(const char *s, size_t n, size_t i);
/* Appends s[0..n) to out, each byte that starts no valid sequence replaced
 * by repl (a NUL-terminated text, e.g. CX_UTF8_REPL or "?"), stopping
 * before the character that would make the appended part longer than max
 * bytes (SIZE_MAX: no limit). */
void cx_utf8_clean(struct cx_buf *out, const char *s, size_t n,
                   const char *repl, size_t max);

/* ---- random (rand.c) --------------------------------------------------- */

/* Fills buf with n bytes from getrandom(2). 0 or -errno (then buf holds
 * no usable randomness: the caller decides whether to fail). */
int cx_random_bytes(void *buf, size_t n);
/* n random bytes (n <= 64) as 2n lowercase hex digits and a NUL into out.
 * 0, -EINVAL (n too big) or -errno. */
int cx_random_hex(char *out, size_t n);
/* Writes in[0..n) as 2n lowercase hex digits and a NUL into out. */
void cx_hex(const void *in, size_t n, char *out);

/* ---- small helpers ----------------------------------------------------- */

#define CX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CX_CONTAINER_OF(ptr, type, member)                                     \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Parses a decimal integer in [min, max] taking the whole string. Returns 0,
 * or CX_EPARSE (empty, junk, or out of range). */
int cx_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- node labels and job selectors (labels.c) ------------------------- */

#define CX_LABELS_MAX 16 /* labels of a node, terms of a selector, in (...) */
#define CX_LABEL_MAX 63  /* bytes of a key or a value */
#define CX_LABELS_TEXT 1024 /* bytes of a labels or selector text */

/* A node's labels: keys and values of letters, digits, '.', '_', '-'. */
struct cx_labels {
  size_t n;
  struct cx_label {
    char key[CX_LABEL_MAX + 1], value[CX_LABEL_MAX + 1];
  } v[CX_LABELS_MAX];
};

/* Parses "zone=a, role=db" ("" = none; a key at most once). 0 or
 * CX_EPARSE with the reason in err. */
int cx_labels_parse(const char *text, struct cx_labels *out, char *err);
/* The value of key, or NULL. */
const char *cx_labels_get(const struct cx_labels *l, const char *key);
/* Checks a selector: comma-separated terms, all of which must hold:
 * `key=v`, `key!=v` (also true without the key), `key in (a,b)`. "" holds
 * everywhere. 0 or CX_EPARSE with the reason in err. */
int cx_selector_check(const char *sel, char *err);
/* 1 when every term of sel holds for l (NULL or "" sel: 1); an invalid
 * selector matches nothing. */
int cx_selector_match(const char *sel, const struct cx_labels *l);

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

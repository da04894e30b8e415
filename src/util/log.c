/*
 * Logging: one line per event, "2026-11-24T09:30:00.123Z INFO  node: ...".
 * A line is formatted into a stack buffer and written with one write(2), so
 * lines from different threads never interleave.
 *
 * Messages carry user input (usernames, job names, paths), so the message
 * part is made inert here, once for every caller: CR and LF fold to a space
 * (one event, one line) and every other control byte (< 0x20, 0x7f) is
 * written as \xNN, so no escape sequence reaches a terminal or a log viewer
 * and no line can be forged.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile int cx__log_level = CX_LOG_INFO;
static volatile int log_fd = 2;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void cx_log_set_level(enum cx_log_level level)
{
  cx__log_level = (int)level;
}

void cx_log_set_fd(int fd)
{
  log_fd = fd;
}

int cx_log_level_parse(const char *s, enum cx_log_level *out)
{
  static const char *const names[] = {"debug", "info", "warn", "error", "off"};
  for (size_t i = 0; i < CX_ARRAY_LEN(names); i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = (enum cx_log_level)i;
      return 0;
    }
  }
  return CX_EPARSE;
}

static void write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return; /* nowhere left to report it */
    }
    p += w;
    n -= (size_t)w;
  }
}

void cx_log_write(enum cx_log_level level, const char *component,
                  const char *fmt, ...)
{
  char line[2048], msg[1536];
  struct cx_civil c;
  int saved_errno = errno;
  int64_t ms = cx_wall_ms();
  va_list ap;
  int n;

  if ((int)level < 0 || level > CX_LOG_ERROR)
    level = CX_LOG_ERROR;
  cx_civil_from_seconds(ms / 1000, &c);
  n = snprintf(line, sizeof line,
               "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ", c.year, c.month,
               c.day, c.hour, c.min, c.sec, (int)(ms % 1000),
               level_names[level], component);
  if (n < 0 || (size_t)n > sizeof line - 64)
    n = 0; /* cannot happen with the components we have; keep it a line */
  va_start(ap, fmt);
  int m = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t mlen = m < 0 ? 0 : (size_t)m, len = (size_t)n;
  if (mlen > sizeof msg - 1)
    mlen = sizeof msg - 1; /* truncated */
  /* Escaped, the message fills the line after the prefix; what does not
   * fit is cut. */
  for (size_t i = 0; i < mlen && len + 5 < sizeof line; i++) {
    unsigned char ch = (unsigned char)msg[i];
    if (ch == '\n' || ch == '\r')
      line[len++] = ' ';
    else if (ch < 0x20 || ch == 0x7f)
      len += (size_t)snprintf(line + len, 5, "\\x%02x", ch);
    else
      line[len++] = (char)ch;
  }
  line[len++] = '\n';
  write_all(log_fd, line, len);
  errno = saved_errno;
}

void cx_log_signal_safe(const char *msg)
{
  int saved_errno = errno;
  write_all(log_fd, msg, strlen(msg));
  write_all(log_fd, "\n", 1);
  errno = saved_errno;
}

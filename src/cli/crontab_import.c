/*
 * `cronix job import-crontab FILE|-`: a crontab(5) file (cronie's man page
 * is the reference) as Cronix jobs, applied like a jobs file without
 * --prune, so importing the same file twice creates nothing new.
 *
 *   - blank lines and lines starting with '#' (after blanks) are skipped;
 *     "# Name: x" names the job of the next line;
 *   - NAME=value lines (blanks around '=' allowed, value optionally
 *     quoted) apply to the lines below: CRON_TZ and TZ become the job's
 *     timezone, SHELL wraps the command (exec SHELL -c '...'), MAILTO is
 *     ignored with a warning (Cronix alerts users, not addresses), every
 *     other name goes into the job's env;
 *   - a job line is exactly five time fields and the command (a command
 *     starting with a digit is still the command), or @yearly, @annually,
 *     @monthly, @weekly, @daily, @midnight, @hourly and the command;
 *     @reboot is skipped with a warning: Cronix has no boot trigger;
 *   - with --system (/etc/crontab and the files of /etc/cron.d) a user
 *     field follows the time fields; it is kept in the job's note, since
 *     every job runs as the node's user;
 *   - in the command an unescaped '%' ends the command and the rest is its
 *     standard input, each further '%' a newline; "\%" is a literal '%'.
 *
 * A job without "# Name:" is named from its command and a hash of its
 * line, so the same line gets the same name on every import.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/remote-int.h"
#include "cron/cron.h"
#include "util/util.h"

#define MAX_LINE 65536
#define MAX_JOBS 10000

struct imp {
  struct rc_ctx *c;
  json_t *env;      /* NAME=value lines so far (object) */
  char tz[160];     /* CRON_TZ / TZ so far, else --tz */
  char shell[1024]; /* SHELL so far */
  char name[200];   /* "# Name:" for the next job line */
  json_t *jobs;     /* the result */
  json_t *names;    /* names used (object) */
  int errors, warnings, lineno;
  const char *node;
  int paused;
  int system; /* /etc/crontab format: a user field before the command */
};

static void report(struct imp *m, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct imp *m, const char *what, const char *fmt, ...)
{
  va_list ap;
  printf("line %d: %s", m->lineno, what);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

static int is_name_char(int ch, int first)
{
  return ch == '_' || isalpha(ch) || (!first && isdigit(ch));
}

/* Appends s to b as one single-quoted shell word. */
static void sh_quote(struct cx_buf *b, const char *s)
{
  cx_buf_puts(b, "'");
  for (; *s; s++) {
    if (*s == '\'')
      cx_buf_puts(b, "'\\''");
    else
      cx_buf_append(b, s, 1);
  }
  cx_buf_puts(b, "'");
}

/* A NAME=value line: 1 when it was one (handled), 0 when not. */
static int env_line(struct imp *m, const char *p)
{
  size_t n = 0;
  while (is_name_char((unsigned char)p[n], n == 0))
    n++;
  if (n == 0)
    return 0;
  const char *q = p + n;
  while (*q == ' ' || *q == '\t')
    q++;
  if (*q != '=')
    return 0;
  q++;
  while (*q == ' ' || *q == '\t')
    q++;
  char name[128], value[4096];
  size_t vlen = strlen(q);
  while (vlen > 0 && (q[vlen - 1] == ' ' || q[vlen - 1] == '\t'))
    vlen--;
  if (vlen >= 2 && (q[0] == '"' || q[0] == '\'') && q[vlen - 1] == q[0]) {
    q++;
    vlen -= 2;
  }
  if (n >= sizeof name || vlen >= sizeof value) {
    report(m, "error: ", "variable or value too long");
    m->errors++;
    return 1;
  }
  memcpy(name, p, n);
  name[n] = '\0';
  memcpy(value, q, vlen);
  value[vlen] = '\0';
  if (strcmp(name, "CRON_TZ") == 0 || strcmp(name, "TZ") == 0) {
    const struct cx_tz *tz;
    char err[CX_ERR_LEN];
    if (value[0] != '\0' && cx_tz_get(value, &tz, err) != 0) {
      report(m, "error: ", "%s: %s", name, err);
      m->errors++;
    } else if (strlen(value) >= sizeof m->tz) {
      report(m, "error: ", "%s: too long", name);
      m->errors++;
    } else {
      memcpy(m->tz, value, strlen(value) + 1);
    }
  } else if (strcmp(name, "SHELL") == 0) {
    if (strlen(value) >= sizeof m->shell) {
      report(m, "error: ", "SHELL: too long");
      m->errors++;
    } else {
      memcpy(m->shell, value, strlen(value) + 1);
    }
  } else if (strcmp(name, "MAILTO") == 0 || strcmp(name, "MAILFROM") == 0) {
    report(m, "warning: ",
           "%s ignored: Cronix sends no mail to addresses; use "
           "--notify email with users (cronix job edit)",
           name);
    m->warnings++;
  } else {
    json_object_set_new(m->env, name, json_string(value));
  }
  return 1;
}

/* Splits the crontab command into the shell line (cmd) and standard
 * input (in, with in_set) by the '%' rules. */
static void split_percent(const char *s, struct cx_buf *cmd, struct cx_buf *in,
                          int *in_set)
{
  *in_set = 0;
  for (; *s; s++) {
    struct cx_buf *to = *in_set ? in : cmd;
    if (s[0] == '\\' && s[1] == '%') {
      cx_buf_puts(to, "%");
      s++;
    } else if (*s == '%') {
      if (*in_set)
        cx_buf_puts(in, "\n");
      *in_set = 1;
    } else {
      cx_buf_append(to, s, 1);
    }
  }
  cx_buf_puts(cmd, "");
  cx_buf_puts(in, "");
}

/* 32-bit FNV-1a: a short stable tag for a line. */
static uint32_t fnv(const char *s)
{
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* "backup-sh-1a2b3c4d" from the command's words and the line's hash. */
static void derive_name(const char *cmd, const char *line, char *out,
                        size_t cap)
{
  size_t n = 0;
  int dash = 1, first_word = 1;
  for (const char *p = cmd; *p && n < 40 && n + 1 < cap; p++) {
    int ch = (unsigned char)*p;
    if (ch == ' ' || ch == '\t')
      first_word = 0;
    if (isalnum(ch)) {
      out[n++] = (char)tolower(ch);
      dash = 0;
    } else if (ch == '/' && first_word) {
      n = 0; /* the program's last path element: /usr/bin/backup -> backup */
      dash = 1;
    } else if (!dash) {
      out[n++] = '-';
      dash = 1;
    }
  }
  while (n > 0 && out[n - 1] == '-')
    n--;
  snprintf(out + n, cap - n, "%scron-%08x", n > 0 ? "-" : "", fnv(line));
}

static void job_line(struct imp *m, const char *p, const char *line)
{
  char spec[CX_CRON_MAX_EXPR + 1], err[CX_ERR_LEN], name[300];
  const char *rest = p;
  size_t slen = 0;
  if (*p == '@') {
    size_t n = strcspn(p, " \t");
    static const char *const ok[] = {"@yearly", "@annually", "@monthly",
                                     "@weekly", "@daily",    "@midnight",
                                     "@hourly"};
    int known = 0;
    if (n == 7 && strncmp(p, "@reboot", 7) == 0) {
      report(m, "skipped: ",
             "@reboot: Cronix has no boot-time trigger (run it from a "
             "systemd unit instead)");
      m->warnings++;
      m->name[0] = '\0';
      return;
    }
    for (size_t i = 0; i < CX_ARRAY_LEN(ok); i++)
      known |= strlen(ok[i]) == n && strncmp(ok[i], p, n) == 0;
    if (!known) {
      report(m, "error: ", "unknown '%.*s'", (int)(n > 40 ? 40 : n), p);
      m->errors++;
      return;
    }
    memcpy(spec, p, n);
    slen = n;
    rest = p + n;
  } else {
    /* Exactly five fields; everything after the fifth is the command,
     * even when it starts with a digit. */
    for (int f = 0; f < 5; f++) {
      while (*rest == ' ' || *rest == '\t')
        rest++;
      size_t n = strcspn(rest, " \t");
      if (n == 0 || slen + n + 1 >= sizeof spec) {
        report(m, "error: ", "five time fields and a command expected");
        m->errors++;
        return;
      }
      if (f > 0)
        spec[slen++] = ' ';
      memcpy(spec + slen, rest, n);
      slen += n;
      rest += n;
    }
  }
  spec[slen] = '\0';
  while (*rest == ' ' || *rest == '\t')
    rest++;
  char user[64] = "";
  if (m->system) {
    size_t n = strcspn(rest, " \t");
    if (n == 0 || n >= sizeof user) {
      report(m, "error: ", "a user field (1..63 bytes) expected after '%s'",
             spec);
      m->errors++;
      return;
    }
    memcpy(user, rest, n);
    user[n] = '\0';
    rest += n;
    while (*rest == ' ' || *rest == '\t')
      rest++;
  }
  if (*rest == '\0') {
    report(m, "error: ", "no command after '%s'", spec);
    m->errors++;
    return;
  }
  struct cx_cron_opts o = {.timezone = m->tz, .anchor = cx_wall_s()};
  if (cx_cron_check(spec, &o, cx_wall_s(), err) != 0) {
    report(m, "error: ", "%s", err);
    m->errors++;
    return;
  }
  struct cx_buf cmd = {0}, in = {0}, full = {0};
  int in_set;
  split_percent(rest, &cmd, &in, &in_set);
  if (in_set) {
    cx_buf_puts(&full, "printf '%s' ");
    sh_quote(&full, in.data);
    cx_buf_puts(&full, " | ");
  }
  if (m->shell[0] != '\0' && strcmp(m->shell, "/bin/sh") != 0) {
    cx_buf_puts(&full, "exec ");
    sh_quote(&full, m->shell);
    cx_buf_puts(&full, " -c ");
    sh_quote(&full, cmd.data);
  } else if (in_set) {
    cx_buf_printf(&full, "( %s\n)", cmd.data);
  } else {
    cx_buf_puts(&full, cmd.data);
  }
  if (m->name[0] != '\0')
    snprintf(name, sizeof name, "%s", m->name);
  else
    derive_name(cmd.data, line, name, sizeof name);
  m->name[0] = '\0';
  /* The same line twice: the second gets "-2", and so on. */
  char unique[320];
  snprintf(unique, sizeof unique, "%s", name);
  for (int k = 2; json_object_get(m->names, unique) != NULL; k++)
    snprintf(unique, sizeof unique, "%s-%d", name, k);
  json_object_set_new(m->names, unique, json_true());

  json_t *job = json_pack("{s:s, s:i, s:s, s:s}", "name", unique, "type", 1,
                          "command", full.data ? full.data : "", "spec", spec);
  if (job == NULL) {
    report(m, "error: ", "not valid UTF-8");
    m->errors++;
  } else {
    if (m->tz[0] != '\0')
      json_object_set_new(job, "timezone", json_string(m->tz));
    json_object_set_new(job, "env", json_deep_copy(m->env));
    json_object_set_new(job, "allocation", json_integer(1));
    json_object_set_new(job, "run_on", json_string(m->node ? m->node : ""));
    json_object_set_new(job, "enabled", json_boolean(!m->paused));
    if (user[0] != '\0') {
      /* Cronix runs every job as the node's user: keep the crontab's
       * user visible rather than pretend. */
      char note[128];
      snprintf(note, sizeof note, "crontab user: %s", user);
      json_object_set_new(job, "note", json_string(note));
    }
    struct cx_cron *cr = NULL;
    int64_t next;
    char when[64] = "-";
    if (cx_cron_parse(spec, &o, &cr, NULL) == 0 &&
        cx_cron_next(cr, cx_wall_s(), &next) == 0)
      cx_time_format(next, cx_cron_tz(cr), when, sizeof when);
    cx_cron_free(cr);
    report(m, "", "job '%s': %s%s%s, next %s", unique, spec,
           m->tz[0] ? " in " : "", m->tz, when);
    json_array_append_new(m->jobs, job);
  }
  cx_buf_free(&cmd);
  cx_buf_free(&in);
  cx_buf_free(&full);
}

static void one_line(struct imp *m, char *line)
{
  char *p = line;
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p == '\0')
    return;
  if (*p == '#') {
    const char *q = p + 1;
    while (*q == ' ' || *q == '\t')
      q++;
    if (strncmp(q, "Name:", 5) == 0) {
      q += 5;
      while (*q == ' ' || *q == '\t')
        q++;
      size_t n = strlen(q);
      while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\t'))
        n--;
      snprintf(m->name, sizeof m->name, "%.*s", (int)n, q);
    }
    return;
  }
  if (env_line(m, p))
    return;
  if (json_array_size(m->jobs) >= MAX_JOBS) {
    report(m, "error: ", "more than %d jobs", MAX_JOBS);
    m->errors++;
    return;
  }
  job_line(m, p, line);
}

/* The node to pin the jobs to: --node, else the only alive node. */
static int pick_node(struct rc_ctx *c, const char **node, char *buf, size_t cap)
{
  json_t *list = NULL, *q = json_pack("{s:i}", "status", 1);
  if (*node != NULL)
    return json_decref(q), 0;
  int rc = rc_list_all(c, "/node/search", q, &list);
  json_decref(q);
  if (rc != 0)
    return rc;
  size_t n = json_array_size(list);
  if (n == 1) {
    snprintf(buf, cap, "%s", rc_str(json_array_get(list, 0), "uuid"));
    *node = buf;
  } else {
    rc = rc_fail(c, 2,
                 n == 0 ? "no alive node to pin the jobs to: start one or "
                          "give --node UUID"
                        : "several alive nodes: name one with --node UUID "
                          "(cronix node ls)");
  }
  json_decref(list);
  return rc;
}

static const char import_usage[] =
    "usage: cronix job import-crontab FILE|- [--node UUID] [--paused]\n"
    "                                 [--tz ZONE] [--system] [--dry-run]\n"
    "\n"
    "Each job line of a crontab(5) file becomes a job pinned to --node\n"
    "(default: the only alive node). Every line gets a report; lines that\n"
    "cannot be imported are errors (exit 2, nothing is imported). Jobs are\n"
    "applied by name, so importing the same file twice creates nothing\n"
    "new. --tz is the zone of lines before any CRON_TZ= (default: the\n"
    "server's system.default_timezone). --dry-run shows the jobs and their\n"
    "next fire times and changes nothing. --system reads /etc/crontab and\n"
    "/etc/cron.d files: a user field after the time fields (kept in the\n"
    "job's note; jobs run as the node's user).\n";

int rc_job_import_crontab(struct rc_ctx *c, int argc, char **argv)
{
  struct rc_list pos = {0};
  const char *node = NULL, *tz = NULL;
  int paused = 0, dry = 0, sys = 0;
  const struct rc_opt opts[] = {
      {"--node", NULL, RC_VALUE, &node},    {"--tz", NULL, RC_VALUE, &tz},
      {"--paused", NULL, RC_FLAG, &paused}, {"--dry-run", NULL, RC_FLAG, &dry},
      {"--system", NULL, RC_FLAG, &sys},    {NULL, NULL, 0, NULL},
  };
  char node_buf[128], err[CX_ERR_LEN];
  int rc = rc_parse(c, argc, argv, 1, opts, &pos, import_usage);
  if (rc != 0)
    return rc;
  if (pos.n != 1)
    return rc_fail(c, 2, "one FILE (or - for stdin) expected");
  const struct cx_tz *zone;
  if (tz != NULL && cx_tz_get(tz, &zone, err) != 0)
    return rc_fail(c, 2, "--tz: %s", err);
  FILE *f = strcmp(pos.v[0], "-") == 0 ? stdin : fopen(pos.v[0], "re");
  if (f == NULL)
    return rc_fail(c, 2, "%s: %s", pos.v[0], strerror(errno));
  if ((rc = pick_node(c, &node, node_buf, sizeof node_buf)) != 0) {
    if (f != stdin)
      fclose(f);
    return rc;
  }
  struct imp m = {.c = c,
                  .env = json_object(),
                  .jobs = json_array(),
                  .names = json_object(),
                  .node = node,
                  .paused = paused,
                  .system = sys};
  if (sys)
    printf("--system: each line's user goes into the job's note; the jobs "
           "run as the node's user\n");
  snprintf(m.tz, sizeof m.tz, "%s", tz ? tz : "");
  char *line = cx_malloc(MAX_LINE + 2);
  while (line != NULL && fgets(line, MAX_LINE + 2, f) != NULL) {
    m.lineno++;
    size_t n = strlen(line);
    if (n > MAX_LINE) {
      report(&m, "error: ", "longer than %d bytes", MAX_LINE);
      m.errors++;
      int ch;
      while ((ch = fgetc(f)) != EOF && ch != '\n')
        ;
      continue;
    }
    line[strcspn(line, "\r\n")] = '\0';
    one_line(&m, line);
  }
  cx_free(line);
  if (f != stdin)
    fclose(f);
  if (m.errors > 0) {
    rc = rc_fail(c, 2, "%d line%s cannot be imported: nothing was changed",
                 m.errors, m.errors == 1 ? "" : "s");
  } else {
    printf("%zu job%s from %s%s\n", json_array_size(m.jobs),
           json_array_size(m.jobs) == 1 ? "" : "s", pos.v[0],
           m.warnings ? " (see the warnings above)" : "");
    rc = rc_apply_jobs(c, m.jobs, dry, 0);
  }
  json_decref(m.env);
  json_decref(m.jobs);
  json_decref(m.names);
  return rc;
}

/*
 * The settings table and the three sources that fill it: defaults, an INI
 * file, and CRONIX_* environment variables (flags go through cx_config_set).
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1024 * 1024)
#define MAX_LINE 4096
#define MAX_VALUE 4096

#define SX(name, field, def, doc, show)                                        \
  {                                                                            \
    name, CX_CONFIG_STRING, offsetof(struct cx_config, field), def, 0, 0,      \
        NULL, doc, show                                                        \
  }
#define S(name, field, def, doc) SX(name, field, def, doc, CX_CONFIG_PLAIN)
#define I(name, field, def, min, max, unit, doc)                               \
  {                                                                            \
    name, CX_CONFIG_INT, offsetof(struct cx_config, field), def, min, max,     \
        unit, doc, CX_CONFIG_PLAIN                                             \
  }
#define B(name, field, def, doc)                                               \
  {                                                                            \
    name, CX_CONFIG_BOOL, offsetof(struct cx_config, field), def, 0, 1, NULL,  \
        doc, CX_CONFIG_PLAIN                                                   \
  }

static const struct cx_config_setting settings[] = {
    S("server.listen", listen, "127.0.0.1:8089",
      "admin HTTP address, host:port (flag --listen)"),
    S("server.data_dir", data_dir, "./var",
      "SQLite file, node id file, spool, initial admin credentials "
      "(flag --data-dir)"),
    SX("server.public_url", public_url, "",
       "base URL of the admin as users reach it, for links in alerts",
       CX_CONFIG_URL),
    I("server.http_threads", http_threads, "4", 1, 256, NULL,
      "HTTP worker threads of the admin"),
    I("server.auth_cache_ttl", auth_cache_ttl, "1s", 0, 60, "s",
      "how long an admin trusts a token it has checked; another admin "
      "process's logout or role change takes effect within this (0 = off)"),
    I("server.session_ttl", session_ttl, "24h", 60, 366 * 86400, "s",
      "how long a login session lasts"),
    I("server.initial_token_ttl", initial_token_ttl, "24h", 0, 366 * 86400, "s",
      "how long the first admin's token (initial-admin.txt) works; changing "
      "that admin's password revokes it sooner (0 = no expiry)"),
    B("server.metrics_public", metrics_public, "true",
      "serve /metrics without a token"),
    S("server.tls_cert", tls_cert, "",
      "PEM certificate (chain) file: with tls_key, the admin serves HTTPS "
      "only, with HSTS; empty = plain HTTP"),
    S("server.tls_key", tls_key, "", "PEM private key file of tls_cert"),
    S("server.web_root", web_root, "",
      "serve the web console from this directory instead of the copy built "
      "into the binary (for developing it); empty = built in"),
    SX("store.url", store_url, "",
       "sqlite://PATH or mysql://user:pass@host:3306/db; empty = "
       "sqlite://<data_dir>/cronix.db (flag --store)",
       CX_CONFIG_URL),
    SX("etcd.endpoints", etcd_endpoints, "",
       "comma list of http(s)://host:port; empty = in-process coordination "
       "(standalone only) (flag --etcd)",
       CX_CONFIG_URLS),
    S("etcd.prefix", etcd_prefix, "/cronix", "key prefix in etcd"),
    S("etcd.username", etcd_username, "", "etcd user (auth enabled)"),
    SX("etcd.password", etcd_password, "", "etcd password", CX_CONFIG_HIDDEN),
    S("etcd.ca", etcd_ca, "", "CA file to verify etcd's TLS certificate"),
    S("etcd.cert", etcd_cert, "", "client certificate for etcd TLS"),
    S("etcd.key", etcd_key, "", "client key for etcd TLS"),
    I("node.ttl", node_ttl, "5s", 2, 3600, "s",
      "node lease TTL; keep-alive every TTL/3"),
    I("node.max_concurrent", node_max_concurrent, "64", 1, 100000, NULL,
      "runs at once on a node; more wait in a queue"),
    S("node.shell", node_shell, "/bin/sh",
      "cmd jobs run as `shell -c command`"),
    I("node.output_limit", node_output_limit, "64KiB", 1024, 64 * 1024 * 1024,
      "bytes", "captured output kept per run (head and tail)"),
    I("node.retry_base", node_retry_base, "60s", 1, 86400, "s",
      "growing retry wait: attempt k waits k x this when retry_interval = 0"),
    I("node.kill_grace", node_kill_grace, "5s", 0, 3600, "s",
      "SIGTERM to SIGKILL grace when a run is killed or times out"),
    I("node.shutdown_grace", node_shutdown_grace, "30s", 0, 86400, "s",
      "on SIGTERM, how long running runs may take before they are killed"),
    S("node.workdir", node_workdir, "/",
      "default working directory of cmd jobs (not data_dir: it holds the "
      "database and credentials)"),
    S("node.run_as", node_run_as, "",
      "user cmd jobs run as; empty = 'cronix' when the node runs as root "
      "(it must exist: useradd --system cronix), else the node's own user; "
      "'root' only when said here (read at start)"),
    S("node.run_as_allow", node_run_as_allow, "",
      "comma list of users a job's run_as may name (set by admins only; "
      "read at start)"),
    S("node.cgroup", node_cgroup, "auto",
      "auto (a cgroup per run under the node's own, v2 or v1 pids, when "
      "writable), off, or a cgroup directory to make runs' cgroups in "
      "(read at start)"),
    S("node.listen", node_listen, "",
      "address of the node's live-output listener for the admins, "
      "host:port (flag --listen of `cronix node`); empty = none; needs "
      "cluster.secret"),
    S("node.labels", node_labels, "",
      "labels jobs select nodes by (a job's node_selector): comma list of "
      "key=value, letters, digits, '.', '_', '-', at most 16 of at most 63 "
      "bytes each, e.g. zone=a, role=db"),
    SX("cluster.secret", cluster_secret, "",
       "secret the admins and nodes share: the admins send it to the "
       "nodes' live-output listeners (at least 16 bytes)",
       CX_CONFIG_HIDDEN),
    B("system.cmd_auto_allocation", cmd_auto_allocation, "false",
      "may shell (cmd) jobs be placed automatically?"),
    S("system.default_timezone", default_timezone, "",
      "IANA zone for jobs with no timezone; empty = the host's zone"),
    I("system.log_retention_days", log_retention_days, "30", 1, 36500, NULL,
      "run logs older than this are deleted in small batches"),
    I("system.audit_retention_days", audit_retention_days, "180", 1, 36500,
      NULL, "audit log rows older than this are deleted in small batches"),
    S("log.level", log_level, "info", "debug, info, warn or error"),
    SX("notify.email.smtp_url", email_smtp_url, "",
       "smtp://host:587 (STARTTLS) or smtps://host:465 (implicit TLS)",
       CX_CONFIG_URL),
    S("notify.email.username", email_username, "", "SMTP user"),
    SX("notify.email.password", email_password, "", "SMTP password",
       CX_CONFIG_HIDDEN),
    S("notify.email.from", email_from, "", "sender address of alerts"),
    S("notify.email.starttls", email_starttls, "try",
      "smtp:// only: try, required or off"),
    B("notify.email.tls_verify", email_tls_verify, "true",
      "verify the mail server's certificate"),
    S("notify.email.ca_file", email_ca_file, "",
      "CA file for the mail server's certificate"),
    SX("notify.feishu.webhook_url", feishu_webhook_url, "",
       "Feishu/Lark custom bot webhook URL (its last path segment is the "
       "bot's token)",
       CX_CONFIG_WEBHOOK),
    SX("notify.feishu.secret", feishu_secret, "",
       "signing secret of the bot (optional)", CX_CONFIG_HIDDEN),
    I("notify.timeout", notify_timeout, "10s", 1, 600, "s",
      "timeout of one delivery attempt"),
    I("notify.retries", notify_retries, "3", 0, 20, NULL,
      "retries of a failed delivery, with growing waits"),
    I("notify.queue_size", notify_queue_size, "1000", 1, 1000000, NULL,
      "alerts waiting to be sent; when full the oldest is dropped"),
};

const struct cx_config_setting *cx_config_settings(size_t *count)
{
  *count = CX_ARRAY_LEN(settings);
  return settings;
}

static const struct cx_config_setting *find_setting(const char *name)
{
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++)
    if (strcmp(settings[i].name, name) == 0)
      return &settings[i];
  return NULL;
}

/* Parses an integer with an optional unit suffix. */
static int parse_int(const struct cx_config_setting *s, const char *v,
                     int64_t *out)
{
  char num[32];
  size_t n = 0;
  int64_t mult = 1, x;

  while (v[n] != '\0' &&
         (isdigit((unsigned char)v[n]) || (n == 0 && v[n] == '-')))
    n++;
  if (n == 0 || n >= sizeof num)
    return CX_EPARSE;
  memcpy(num, v, n);
  num[n] = '\0';
  const char *suffix = v + n;
  while (*suffix == ' ')
    suffix++;
  if (*suffix != '\0') {
    static const struct {
      const char *unit, *suffix;
      int64_t mult;
    } units[] = {
        {"s", "s", 1},
        {"s", "m", 60},
        {"s", "h", 3600},
        {"s", "d", 86400},
        {"bytes", "k", 1024},
        {"bytes", "KiB", 1024},
        {"bytes", "K", 1024},
        {"bytes", "M", 1 << 20},
        {"bytes", "MiB", 1 << 20},
        {"bytes", "B", 1},
    };
    mult = 0;
    for (size_t i = 0; s->unit != NULL && i < CX_ARRAY_LEN(units); i++)
      if (strcmp(units[i].unit, s->unit) == 0 &&
          strcmp(units[i].suffix, suffix) == 0)
        mult = units[i].mult;
    if (mult == 0)
      return CX_EPARSE;
  }
  if (cx_parse_int64(num, INT64_MIN / (1 << 20), INT64_MAX / (1 << 20), &x) !=
      0)
    return CX_EPARSE;
  x *= mult;
  if (x < s->min || x > s->max)
    return CX_EPARSE;
  *out = x;
  return 0;
}

static int parse_bool(const char *v, int *out)
{
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < CX_ARRAY_LEN(yes); i++) {
    if (strcasecmp(v, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(v, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return CX_EPARSE;
}

static int apply(struct cx_config *c, const struct cx_config_setting *s,
                 const char *value, char *err)
{
  char *base = (char *)c + s->offset;

  if (strlen(value) > MAX_VALUE) {
    cx_err_set(err, "%s: value longer than %d bytes", s->name, MAX_VALUE);
    return CX_EPARSE;
  }
  for (const char *p = value; *p; p++) {
    if ((unsigned char)*p < 0x20 && *p != '\t') {
      cx_err_set(err, "%s: control character in value", s->name);
      return CX_EPARSE;
    }
  }
  switch (s->type) {
  case CX_CONFIG_STRING: {
    char *dup = cx_strdup(value);
    if (dup == NULL)
      return -ENOMEM;
    cx_free(*(char **)base);
    *(char **)base = dup;
    return 0;
  }
  case CX_CONFIG_INT:
    if (parse_int(s, value, (int64_t *)base) != 0) {
      cx_err_set(err, "%s: '%s' is not %s in %lld..%lld%s%s", s->name, value,
                 s->unit ? "a number (with an optional unit)" : "an integer",
                 (long long)s->min, (long long)s->max, s->unit ? " " : "",
                 s->unit ? s->unit : "");
      return CX_EPARSE;
    }
    return 0;
  case CX_CONFIG_BOOL:
    if (parse_bool(value, (int *)base) != 0) {
      cx_err_set(err, "%s: '%s' is not a boolean (true/false)", s->name, value);
      return CX_EPARSE;
    }
    return 0;
  }
  return CX_EPARSE;
}

int cx_config_set(struct cx_config *c, const char *name, const char *value,
                  char *err)
{
  const struct cx_config_setting *s = find_setting(name);
  if (s == NULL) {
    cx_err_set(err, "unknown setting '%s'", name);
    return CX_ENOTFOUND;
  }
  return apply(c, s, value, err);
}

int cx_config_init(struct cx_config *c)
{
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++) {
    int rc = apply(c, &settings[i], settings[i].def, NULL);
    if (rc != 0) {
      cx_config_free(c);
      return rc == CX_EPARSE ? -EINVAL : rc;
    }
  }
  return 0;
}

void cx_config_free(struct cx_config *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++) {
    if (settings[i].type == CX_CONFIG_STRING) {
      char **p = (char **)((char *)c + settings[i].offset);
      cx_free(*p);
      *p = NULL;
    }
  }
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* The value after '=': quoted ("..." or '...', taken literally up to the
 * same quote) or bare, where ';' or '#' at its start or after a space or
 * tab begins a comment, so `url = http://x/#a` keeps its fragment and
 * `ttl = 5s ; why` is 5s. Cuts s in place; *out points into it. Returns
 * NULL, or why the value is malformed. */
static const char *value_text(char *s, char **out)
{
  s = trim(s);
  if (*s == '"' || *s == '\'') {
    char *end = strchr(s + 1, *s);
    if (end == NULL)
      return "unterminated quoted value";
    char *rest = end + 1;
    while (*rest == ' ' || *rest == '\t')
      rest++;
    if (*rest != '\0' && *rest != ';' && *rest != '#')
      return "text after the closing quote (a comment starts with ; or #)";
    *end = '\0';
    *out = s + 1;
    return NULL;
  }
  for (char *p = s; *p != '\0'; p++) {
    if ((*p == ';' || *p == '#') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
      *p = '\0';
      break;
    }
  }
  *out = trim(s);
  return NULL;
}

int cx_config_load_file(struct cx_config *c, const char *path, char *err)
{
  char section[128] = "", line[MAX_LINE + 2], name[256];
  long total = 0;
  int lineno = 0, rc = 0;
  FILE *f = fopen(path, "re");

  if (f == NULL) {
    rc = -errno;
    cx_err_set(err, "%s: %s", path, strerror(errno));
    return rc;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    lineno++;
    size_t len = strlen(line);
    total += (long)len;
    if (total > MAX_FILE) {
      cx_err_set(err, "%s: larger than %d bytes", path, MAX_FILE);
      rc = CX_ETOOBIG;
      goto out;
    }
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      cx_err_set(err, "%s:%d: line longer than %d bytes", path, lineno,
                 MAX_LINE);
      rc = CX_EPARSE;
      goto out;
    }
    if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
      cx_err_set(err, "%s:%d: NUL byte", path, lineno);
      rc = CX_EPARSE;
      goto out;
    }
    line[strcspn(line, "\n")] = '\0';
    char *p = trim(line);
    if (*p == '\0' || *p == '#' || *p == ';')
      continue;
    if (*p == '[') {
      char *end = strchr(p, ']');
      if (end == NULL || trim(end + 1)[0] != '\0' ||
          (size_t)(end - p - 1) >= sizeof section) {
        cx_err_set(err, "%s:%d: malformed section header", path, lineno);
        rc = CX_EPARSE;
        goto out;
      }
      *end = '\0';
      snprintf(section, sizeof section, "%s", trim(p + 1));
      /* The section must be the prefix of some setting. */
      size_t sl = strlen(section);
      int known = 0;
      for (size_t i = 0; i < CX_ARRAY_LEN(settings) && !known; i++)
        known = strncmp(settings[i].name, section, sl) == 0 &&
                settings[i].name[sl] == '.' &&
                strchr(settings[i].name + sl + 1, '.') == NULL;
      if (!known) {
        cx_err_set(err, "%s:%d: unknown section [%s]", path, lineno, section);
        rc = CX_EPARSE;
        goto out;
      }
      continue;
    }
    char *eq = strchr(p, '=');
    if (eq == NULL) {
      cx_err_set(err, "%s:%d: expected key = value", path, lineno);
      rc = CX_EPARSE;
      goto out;
    }
    *eq = '\0';
    char *key = trim(p), *value = NULL;
    const char *why = value_text(eq + 1, &value);
    if (why != NULL) {
      cx_err_set(err, "%s:%d: %s", path, lineno, why);
      rc = CX_EPARSE;
      goto out;
    }
    if (key[0] == '\0' ||
        strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key)) {
      cx_err_set(err, "%s:%d: bad key '%s' (letters, digits and _ only)", path,
                 lineno, key);
      rc = CX_EPARSE;
      goto out;
    }
    if (section[0] == '\0') {
      cx_err_set(err, "%s:%d: '%s' outside any [section]", path, lineno, key);
      rc = CX_EPARSE;
      goto out;
    }
    snprintf(name, sizeof name, "%s.%s", section, key);
    char detail[CX_ERR_LEN];
    rc = cx_config_set(c, name, value, detail);
    if (rc != 0) {
      cx_err_set(err, "%s:%d: %s", path, lineno, detail);
      goto out;
    }
  }
  if (ferror(f)) {
    rc = -EIO;
    cx_err_set(err, "%s: read error", path);
  }
out:
  fclose(f);
  return rc;
}

void cx_config_env_name(const char *name, char *buf, size_t len)
{
  size_t n = (size_t)snprintf(buf, len, "CRONIX_");
  for (const char *p = name; *p && n + 1 < len; p++)
    buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
  buf[n < len ? n : len - 1] = '\0';
}

int cx_config_load_env(struct cx_config *c, char *err)
{
  char env[128], detail[CX_ERR_LEN];
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++) {
    cx_config_env_name(settings[i].name, env, sizeof env);
    const char *v = getenv(env);
    if (v == NULL)
      continue;
    int rc = apply(c, &settings[i], v, detail);
    if (rc != 0) {
      cx_err_set(err, "%s: %s", env, detail);
      return rc;
    }
  }
  return 0;
}

int cx_config_finish(struct cx_config *c, char *err)
{
  enum cx_log_level level;
  if (cx_log_level_parse(c->log_level, &level) != 0) {
    cx_err_set(err, "log.level: '%s' is not debug, info, warn or error",
               c->log_level);
    return CX_EPARSE;
  }
  if (strcmp(c->email_starttls, "try") != 0 &&
      strcmp(c->email_starttls, "required") != 0 &&
      strcmp(c->email_starttls, "off") != 0) {
    cx_err_set(err, "notify.email.starttls: '%s' is not try, required or off",
               c->email_starttls);
    return CX_EPARSE;
  }
  if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
    cx_err_set(err,
               "%s: set both server.tls_cert and server.tls_key, or "
               "neither",
               c->tls_cert[0] ? "server.tls_key" : "server.tls_cert");
    return CX_EPARSE;
  }
  if (c->node_listen[0] != '\0' && strlen(c->cluster_secret) < 16) {
    /* A listener anyone could read job output from is refused at start. */
    cx_err_set(err, "node.listen: set cluster.secret (at least 16 bytes) "
                    "for the listener to check");
    return CX_EPARSE;
  }
  struct cx_labels labels;
  char why[CX_ERR_LEN];
  if (cx_labels_parse(c->node_labels, &labels, why) != 0) {
    cx_err_set(err, "node.labels: %s", why);
    return CX_EPARSE;
  }
  if (c->cluster_secret[0] != '\0' && strlen(c->cluster_secret) < 16) {
    cx_err_set(err, "cluster.secret: at least 16 bytes");
    return CX_EPARSE;
  }
  if (c->data_dir[0] == '\0') {
    cx_err_set(err, "server.data_dir: must not be empty");
    return CX_EPARSE;
  }
  if (c->store_url[0] == '\0') {
    struct cx_buf b = {0};
    cx_buf_printf(&b, "sqlite://%s/cronix.db", c->data_dir);
    char *url = cx_buf_steal(&b);
    if (url == NULL)
      return -ENOMEM;
    cx_free(c->store_url);
    c->store_url = url;
  }
  return 0;
}

/* Writes "[section]" headers as the table moves from one to the next. */
static void write_section(FILE *f, const char *name, char *current, size_t len)
{
  const char *dot = strrchr(name, '.');
  size_t sl = (size_t)(dot - name);
  if (strlen(current) != sl || strncmp(current, name, sl) != 0) {
    snprintf(current, len, "%.*s", (int)sl, name);
    fprintf(f, "\n[%s]\n", current);
  }
}

void cx_config_write_sample(FILE *f)
{
  char section[128] = "", env[128];
  fputs("# Cronix configuration: every setting, with its default.\n"
        "# Precedence, lowest first: defaults, this file (--config FILE),\n"
        "# environment variables (shown per setting), command-line flags.\n"
        "# Generated by `cronix config sample`; a test keeps it in step.\n"
        "#\n"
        "# Syntax: `key = value` under `[section]`. A line starting with # or\n"
        "# ; is a comment, and so is the rest of a line from a # or ; that\n"
        "# follows a space or tab (`ttl = 5s   ; why`). A # or ; right after\n"
        "# other text stays in the value (`http://host/#frag`). To keep\n"
        "# ` #`, ` ;` or edge spaces in a value, quote it: \"...\" or '...',\n"
        "# taken literally up to the same quote (no escapes).\n",
        f);
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++) {
    const struct cx_config_setting *s = &settings[i];
    write_section(f, s->name, section, sizeof section);
    cx_config_env_name(s->name, env, sizeof env);
    fprintf(f, "# %s (%s)\n", s->doc, env);
    fprintf(f, "%s = %s\n", strrchr(s->name, '.') + 1, s->def);
  }
}

/* Writes v so that value_text reads it back unchanged: quoted when it
 * holds what would otherwise be a comment, a quote or edge spaces. */
static void write_string(FILE *f, const char *v)
{
  size_t n = strlen(v);
  int quote = n > 0 && (strchr("\"';# \t", v[0]) != NULL || v[n - 1] == ' ' ||
                        v[n - 1] == '\t');
  for (size_t i = 1; i < n && !quote; i++)
    quote =
        (v[i] == ';' || v[i] == '#') && (v[i - 1] == ' ' || v[i - 1] == '\t');
  if (!quote)
    fputs(v, f);
  else if (strchr(v, '"') == NULL)
    fprintf(f, "\"%s\"", v);
  else if (strchr(v, '\'') == NULL)
    fprintf(f, "'%s'", v);
  else
    fputs(v, f); /* both quotes inside: no INI form; set it in CRONIX_* */
}

void cx_config_write(const struct cx_config *c, FILE *f)
{
  char section[128] = "";
  for (size_t i = 0; i < CX_ARRAY_LEN(settings); i++) {
    const struct cx_config_setting *s = &settings[i];
    const char *base = (const char *)c + s->offset;
    write_section(f, s->name, section, sizeof section);
    fprintf(f, "%s = ", strrchr(s->name, '.') + 1);
    switch (s->type) {
    case CX_CONFIG_STRING: {
      const char *v = *(char *const *)base;
      char masked[MAX_VALUE + 1];
      if (s->show == CX_CONFIG_HIDDEN && v[0] != '\0') {
        fputs("(set, hidden)", f);
      } else if (s->show != CX_CONFIG_PLAIN && s->show != CX_CONFIG_HIDDEN) {
        /* A list is split at commas; a single URL is not, so a ',' in its
         * password cannot cut the password out of the masked part. */
        cx_url_redact(v,
                      s->show == CX_CONFIG_URLS      ? CX_URL_REDACT_LIST
                      : s->show == CX_CONFIG_WEBHOOK ? CX_URL_REDACT_PATH
                                                     : 0,
                      masked, sizeof masked);
        write_string(f, masked);
      } else {
        write_string(f, v);
      }
      break;
    }
    case CX_CONFIG_INT:
      fprintf(f, "%lld", (long long)*(const int64_t *)base);
      break;
    case CX_CONFIG_BOOL:
      fputs(*(const int *)base ? "true" : "false", f);
      break;
    }
    fputc('\n', f);
  }
}

/*
 * store: parsing and redacting store URLs (store.h, cx_store_open).
 *
 *   sqlite://PATH
 *   mysql://[user[:pass]@]host[:port]/db[?opt=v&...]   (or mariadb://)
 *
 * Every rejection names what is wrong; no message ever contains the
 * password.
 */
#include "store/store-int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define URL_MAX 4096

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) into a new string. CX_EPARSE on a bad escape or
 * an escaped NUL. */
static int decode(const char *s, size_t n, char **out, const char *what,
                  char *err)
{
  char *o = cx_malloc(n + 1);
  size_t j = 0;
  if (o == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      o[j++] = s[i];
      continue;
    }
    int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
    int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      cx_free(o);
      cx_err_set(err, "store url: bad percent-escape in the %s", what);
      return CX_EPARSE;
    }
    o[j++] = (char)(hi * 16 + lo);
    i += 2;
  }
  o[j] = '\0';
  *out = o;
  return 0;
}

static int parse_secs(const char *name, const char *v, int *out, char *err)
{
  int64_t x;
  if (cx_parse_int64(v, 1, 3600, &x) != 0) {
    cx_err_set(err, "store url: %s must be 1..3600 seconds", name);
    return CX_EPARSE;
  }
  *out = (int)x;
  return 0;
}

static int set_option(struct cx__url *u, const char *key, char *val, char *err)
{
  int64_t x;
  if (strcmp(key, "tls") == 0) {
    if (strcmp(val, "off") == 0)
      u->tls = 0;
    else if (strcmp(val, "required") == 0)
      u->tls = 1;
    else if (strcmp(val, "verify") == 0)
      u->tls = 2;
    else {
      cx_err_set(err, "store url: tls must be off, required or verify");
      return CX_EPARSE;
    }
  } else if (strcmp(key, "ca") == 0 || strcmp(key, "cert") == 0 ||
             strcmp(key, "key") == 0) {
    char **slot = key[0] == 'c' ? (key[1] == 'a' ? &u->ca : &u->cert) : &u->key;
    if (*val == '\0') {
      cx_err_set(err, "store url: %s is empty", key);
      return CX_EPARSE;
    }
    cx_free(*slot);
    *slot = cx_strdup(val);
    if (*slot == NULL)
      return -ENOMEM;
  } else if (strcmp(key, "connect_timeout") == 0) {
    return parse_secs(key, val, &u->connect_timeout, err);
  } else if (strcmp(key, "read_timeout") == 0) {
    return parse_secs(key, val, &u->read_timeout, err);
  } else if (strcmp(key, "write_timeout") == 0) {
    return parse_secs(key, val, &u->write_timeout, err);
  } else if (strcmp(key, "pool") == 0) {
    if (cx_parse_int64(val, 1, 64, &x) != 0) {
      cx_err_set(err, "store url: pool must be 1..64");
      return CX_EPARSE;
    }
    u->pool = (int)x;
  } else {
    cx_err_set(err,
               "store url: unknown option \"%.40s\" (known: tls, ca, "
               "cert, key, connect_timeout, read_timeout, "
               "write_timeout, pool)",
               key);
    return CX_EPARSE;
  }
  return 0;
}

static int parse_query(struct cx__url *u, const char *q, char *err)
{
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    const char *eq = memchr(q, '=', n);
    char *key = NULL, *val = NULL;
    int rc;
    if (n == 0) {
      q += 1;
      continue;
    }
    if (eq == NULL) {
      cx_err_set(err, "store url: option \"%.*s\" has no value",
                 (int)(n > 40 ? 40 : n), q);
      return CX_EPARSE;
    }
    rc = decode(q, (size_t)(eq - q), &key, "option name", err);
    if (rc == 0)
      rc = decode(eq + 1, n - (size_t)(eq - q) - 1, &val, "option value", err);
    if (rc == 0)
      rc = set_option(u, key, val, err);
    cx_free(key);
    cx_free(val);
    if (rc != 0)
      return rc;
    q += n + (amp ? 1 : 0);
  }
  return 0;
}

static int parse_mysql(struct cx__url *u, const char *p, char *err)
{
  int rc;
  const char *q = strchr(p, '?');
  const char *end = q ? q : p + strlen(p);
  const char *slash = memchr(p, '/', (size_t)(end - p));
  if (slash == NULL) {
    cx_err_set(err, "store url: mysql URL needs a database name "
                    "(mysql://user:pass@host:3306/cronix)");
    return CX_EPARSE;
  }
  /* Credentials: the last '@' before the path (a password may hold '@'
   * only percent-encoded, but be lenient). */
  const char *at = NULL;
  for (const char *c = p; c < slash; c++)
    if (*c == '@')
      at = c;
  const char *hp = p;
  if (at != NULL) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
    rc = decode(p, ulen, &u->user, "user name", err);
    if (rc != 0)
      return rc;
    if (colon != NULL) {
      rc = decode(colon + 1, (size_t)(at - colon - 1), &u->pass, "password",
                  err);
      if (rc != 0)
        return rc;
    }
    hp = at + 1;
  }
  /* Host and port. */
  const char *hend = slash;
  const char *portp = NULL;
  if (*hp == '[') {
    const char *rb = memchr(hp, ']', (size_t)(slash - hp));
    if (rb == NULL) {
      cx_err_set(err, "store url: unclosed '[' in the host");
      return CX_EPARSE;
    }
    u->host = cx_strndup(hp + 1, (size_t)(rb - hp - 1));
    if (rb + 1 < slash) {
      if (rb[1] != ':') {
        cx_err_set(err, "store url: junk after the ']' of the host");
        return CX_EPARSE;
      }
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(hp, ':', (size_t)(slash - hp));
    if (colon != NULL) {
      portp = colon + 1;
      hend = colon;
    }
    u->host = cx_strndup(hp, (size_t)(hend - hp));
  }
  if (u->host == NULL)
    return -ENOMEM;
  if (u->host[0] == '\0') {
    cx_err_set(err, "store url: the host is missing");
    return CX_EPARSE;
  }
  if (strpbrk(u->host, "@:/ ") != NULL && hp[0] != '[') {
    cx_err_set(err, "store url: bad host name");
    return CX_EPARSE;
  }
  if (portp != NULL) {
    char buf[8];
    size_t n = (size_t)(slash - portp);
    int64_t port;
    if (n == 0 || n >= sizeof buf) {
      cx_err_set(err, "store url: port must be 1..65535");
      return CX_EPARSE;
    }
    memcpy(buf, portp, n);
    buf[n] = '\0';
    if (cx_parse_int64(buf, 1, 65535, &port) != 0 || buf[0] == '+' ||
        buf[0] == '-') {
      cx_err_set(err, "store url: port must be 1..65535");
      return CX_EPARSE;
    }
    u->port = (unsigned)port;
  }
  rc = decode(slash + 1, (size_t)(end - slash - 1), &u->db, "database name",
              err);
  if (rc != 0)
    return rc;
  if (u->db[0] == '\0' || strchr(u->db, '/') != NULL) {
    cx_err_set(err, "store url: mysql URL needs a database name "
                    "(mysql://user:pass@host:3306/cronix)");
    return CX_EPARSE;
  }
  if (q != NULL)
    return parse_query(u, q + 1, err);
  return 0;
}

int cx__url_parse(const char *url, struct cx__url *u, char *err)
{
  int rc;
  memset(u, 0, sizeof *u);
  u->port = 3306;
  u->connect_timeout = 5;
  u->read_timeout = 30;
  u->write_timeout = 30;
  u->pool = 4;
  if (url == NULL || url[0] == '\0') {
    cx_err_set(err, "store url: empty (want sqlite://PATH or "
                    "mysql://user:pass@host:port/db)");
    return CX_EPARSE;
  }
  if (strlen(url) > URL_MAX) {
    cx_err_set(err, "store url: longer than %d bytes", URL_MAX);
    return CX_EPARSE;
  }
  for (const char *c = url; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
      cx_err_set(err, "store url: control character at offset %d",
                 (int)(c - url));
      return CX_EPARSE;
    }
  if (strncmp(url, "sqlite://", 9) == 0) {
    u->scheme = CX__SQLITE;
    if (url[9] == '\0') {
      cx_err_set(err, "store url: sqlite URL needs a path "
                      "(sqlite:///var/lib/cronix/cronix.db)");
      return CX_EPARSE;
    }
    u->path = cx_strdup(url + 9);
    return u->path ? 0 : -ENOMEM;
  }
  if (strncmp(url, "mysql://", 8) == 0 || strncmp(url, "mariadb://", 10) == 0) {
    u->scheme = CX__MYSQL;
    rc = parse_mysql(u, url + (url[1] == 'y' ? 8 : 10), err);
    if (rc != 0)
      cx__url_free(u);
    return rc;
  }
  const char *colon = strstr(url, "://");
  /* Quote the scheme only when it looks like one (no credentials in it). */
  size_t slen = colon ? strspn(url, "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
                      : 0;
  if (colon != NULL && url + slen == colon && slen > 0 && slen <= 20)
    cx_err_set(err,
               "store url: unknown scheme \"%.*s\" (want sqlite or "
               "mysql)",
               (int)slen, url);
  else if (colon != NULL)
    cx_err_set(err, "store url: malformed scheme (want sqlite://PATH or "
                    "mysql://user:pass@host:port/db)");
  else
    cx_err_set(err, "store url: no scheme (want sqlite://PATH or "
                    "mysql://user:pass@host:port/db)");
  return CX_EPARSE;
}

void cx__url_free(struct cx__url *u)
{
  if (u == NULL)
    return;
  cx_free(u->path);
  cx_free(u->user);
  cx_free(u->pass);
  cx_free(u->host);
  cx_free(u->db);
  cx_free(u->ca);
  cx_free(u->cert);
  cx_free(u->key);
  memset(u, 0, sizeof *u);
}

void cx_store_url_redact(const char *url, char *out, size_t outlen)
{
  /* A SQLite path may hold ':' and '@' and has no password. */
  if (url != NULL && strncmp(url, "sqlite://", 9) == 0 && outlen > 0)
    snprintf(out, outlen, "%s", url);
  else
    cx_url_redact(url, 0, out, outlen);
}

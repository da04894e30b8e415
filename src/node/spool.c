/*
 * node/spool: how a node records runs (SPEC §9.7). A finished run goes to
 * the store (claim with its claim_token, then finish); when the store is
 * unreachable, or records are already waiting, it is appended as one JSON
 * line to <data_dir>/spool.jsonl (fdatasync'ed). The maintenance thread
 * flushes the file in order once the store answers: each line is sent as
 * claim (the same token: a line sent twice, e.g. after a crash between the
 * send and the rewrite of the file, is recognised and stored once) then
 * finish, then the run's attempts (stored by (run, attempt): once as
 * well). Output bytes are kept hex-encoded, so binary output survives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/node-int.h"
#include "store/store.h"

#define LOGC "node"
#define SPOOL_MAX_FILE ((size_t)1 << 30)

void cx__noded_token(char out[33])
{
  if (cx_random_hex(out, 16) == 0)
    return;
  /* no entropy source: time and a counter */
  static atomic_ullong ctr;
  uint64_t v[2] = {(uint64_t)cx_mono_now() ^ (uint64_t)getpid() << 40,
                   atomic_fetch_add(&ctr, 1) ^ (uint64_t)cx_wall_ms()};
  cx_hex(v, sizeof v, out);
}

static size_t count_lines(int fd)
{
  char buf[65536];
  size_t k = 0;
  ssize_t got;
  off_t off = 0;
  while ((got = pread(fd, buf, sizeof buf, off)) > 0) {
    for (ssize_t i = 0; i < got; i++)
      k += buf[i] == '\n';
    off += got;
  }
  return k;
}

int cx__noded_spool_open(struct cx_noded *n, char *err)
{
  snprintf(n->sp_path, sizeof n->sp_path, "%s/%s", n->data_dir, CX_NODED_SPOOL);
  n->sp_fd = open(n->sp_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (n->sp_fd < 0) {
    int rc = -errno;
    cx_err_set(err, "%s: %s", n->sp_path, strerror(errno));
    n->sp_fd = -1;
    return rc;
  }
  n->sp_pending = count_lines(n->sp_fd);
  if (n->sp_pending)
    CX_LOG(CX_LOG_INFO, LOGC, "spool %s holds %llu records to send", n->sp_path,
           (unsigned long long)n->sp_pending);
  return 0;
}

void cx__noded_spool_close(struct cx_noded *n)
{
  if (n->sp_fd > 0)
    close(n->sp_fd);
  n->sp_fd = -1;
}

/* ---- one record to the store --------------------------------------------- */

/* Claim (unless claimed) then finish. A fire claimed by another node in the
 * meantime is kept as an unscheduled row saying so. */
static int store_put(struct cx_noded *n, struct cx_run *r, int claimed,
                     char *err)
{
  int rc;
  int64_t id = r->id;
  if (!claimed) {
    rc = cx_store_run_claim(n->store, r, &id, err);
    if (rc == CX_EEXISTS && r->status &&
        (strcmp(r->status, "skipped") == 0 || strcmp(r->status, "missed") == 0))
      return 0; /* nothing ran here; the fire belongs to its claimer */
    if (rc == CX_EEXISTS) {
      CX_LOG(CX_LOG_WARN, LOGC,
             "job %lld fire %lld ran here while the store was down but was "
             "claimed elsewhere: recorded as a duplicate",
             (long long)r->job_id, (long long)r->scheduled_at);
      struct cx_buf b = {0};
      cx_buf_printf(&b,
                    "[duplicate: fire %lld was also claimed by another node "
                    "while the store was unreachable]\n",
                    (long long)r->scheduled_at);
      if (r->output_len)
        cx_buf_append(&b, r->output, r->output_len);
      if (cx_buf_failed(&b))
        return -ENOMEM;
      struct cx_run d = *r;
      d.has_scheduled_at = 0;
      d.output = b.data;
      d.output_len = b.len;
      /* A token derived from the original, so re-sends stay idempotent. */
      d.claim_token[0] = r->claim_token[0] == 'f' ? 'e' : 'f';
      rc = cx_store_run_claim(n->store, &d, &id, err);
      if (rc == 0) {
        d.id = id;
        r->id = id; /* its attempts go with this row */
        rc = cx_store_run_finish(n->store, &d, err);
      }
      cx_buf_free(&b);
      return rc;
    }
    if (rc != 0)
      return rc;
  }
  r->id = id;
  return cx_store_run_finish(n->store, r, err);
}

/* The run's record, then its attempts. */
static int store_put_all(struct cx_noded *n, struct cx_run *r, int claimed,
                         struct cx_run_attempt *att, size_t natt, char *err)
{
  int rc = store_put(n, r, claimed, err);
  for (size_t i = 0; rc == 0 && i < natt && r->id > 0; i++) {
    att[i].run_id = r->id;
    rc = cx_store_run_attempt_put(n->store, &att[i], err);
  }
  return rc;
}

static void hex_enc(struct cx_buf *b, const char *p, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  char chunk[512];
  size_t k = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    chunk[k++] = hex[c >> 4];
    chunk[k++] = hex[c & 15];
    if (k == sizeof chunk) {
      cx_buf_append(b, chunk, k);
      k = 0;
    }
  }
  cx_buf_append(b, chunk, k);
}

static int hex_val(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* ,"attempt_list":[{...,"output_hex":"..."},...] of the natt attempts. */
static void attempts_enc(struct cx_buf *b, const struct cx_run_attempt *att,
                         size_t natt)
{
  cx_buf_puts(b, ",\"attempt_list\":[");
  for (size_t i = 0; i < natt; i++) {
    const struct cx_run_attempt *a = &att[i];
    json_t *o = json_pack(
        "{s:i,s:I,s:I,s:s,s:i}", "attempt", a->attempt, "start_time",
        (json_int_t)a->start_time, "end_time", (json_int_t)a->end_time,
        "status", a->status ? a->status : "failed", "exit_code", a->exit_code);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (o)
      json_decref(o);
    if (text == NULL) {
      b->failed = 1;
      return;
    }
    if (i > 0)
      cx_buf_puts(b, ",");
    cx_buf_append(b, text, strlen(text) - 1);
    free(text);
    cx_buf_puts(b, ",\"output_hex\":\"");
    if (a->output && a->output_len)
      hex_enc(b, a->output, a->output_len);
    cx_buf_puts(b, "\"}");
  }
  cx_buf_puts(b, "]");
}

/* Appends r and its natt attempts to the spool (spmu held). */
static int spool_append(struct cx_noded *n, const struct cx_run *r,
                        const struct cx_run_attempt *att, size_t natt)
{
  struct cx_buf out = {0};
  json_t *o = json_pack(
      "{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:b,s:s,s:i,s:i,s:s,"
      "s:b}",
      "job_id", (json_int_t)r->job_id, "name", r->name ? r->name : "",
      "node_uuid", r->node_uuid ? r->node_uuid : "", "hostname",
      r->hostname ? r->hostname : "", "ip", r->ip ? r->ip : "", "command",
      r->command ? r->command : "", "spec", r->spec ? r->spec : "", "trigger",
      r->trigger ? r->trigger : "cron", "has_scheduled_at", r->has_scheduled_at,
      "scheduled_at", (json_int_t)r->scheduled_at, "start_time",
      (json_int_t)r->start_time, "end_time", (json_int_t)r->end_time, "success",
      r->success, "status", r->status ? r->status : "failed", "exit_code",
      r->exit_code, "attempts", r->attempts, "claim_token", r->claim_token,
      "per_node", r->per_node);
  if (o == NULL)
    return -ENOMEM;
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text == NULL)
    return -ENOMEM;
  /* Splice the hex output in before the closing brace. */
  size_t tl = strlen(text);
  cx_buf_append(&out, text, tl - 1);
  free(text);
  cx_buf_puts(&out, ",\"output_hex\":\"");
  if (r->output && r->output_len)
    hex_enc(&out, r->output, r->output_len);
  cx_buf_puts(&out, "\"");
  if (natt > 0)
    attempts_enc(&out, att, natt);
  cx_buf_puts(&out, "}\n");
  if (cx_buf_failed(&out))
    return -ENOMEM;
  int rc = 0;
  size_t off = 0;
  while (off < out.len) {
    ssize_t w = write(n->sp_fd, out.data + off, out.len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = -errno;
      break;
    }
    off += (size_t)w;
  }
  if (rc == 0 && fdatasync(n->sp_fd) != 0)
    rc = -errno;
  cx_buf_free(&out);
  if (rc != 0) {
    CX_LOG(CX_LOG_ERROR, LOGC, "spool %s: %s: run of job %lld LOST", n->sp_path,
           strerror(-rc), (long long)r->job_id);
    return rc;
  }
  n->sp_pending++;
  n->sp_spooled++;
  return 0;
}

int cx__noded_record(struct cx_noded *n, struct cx_run *r, int claimed,
                     struct cx_run_attempt *att, size_t natt)
{
  char err[CX_ERR_LEN] = "";
  int rc;
  pthread_mutex_lock(&n->spmu);
  if (n->sp_pending > 0) {
    rc = spool_append(n, r, att, natt);
    pthread_mutex_unlock(&n->spmu);
    return rc;
  }
  pthread_mutex_unlock(&n->spmu);
  rc = store_put_all(n, r, claimed, att, natt, err);
  if (rc == 0)
    return 0;
  if (rc == CX_EUNAVAIL) {
    CX_LOG(CX_LOG_WARN, LOGC,
           "store unreachable (%s): spooling run of job %lld", err,
           (long long)r->job_id);
    pthread_mutex_lock(&n->spmu);
    rc = spool_append(n, r, att, natt);
    pthread_mutex_unlock(&n->spmu);
    return rc;
  }
  CX_LOG(CX_LOG_ERROR, LOGC, "run of job %lld not recorded: %s",
         (long long)r->job_id, err);
  return rc;
}

void cx__noded_record_bad(struct cx_noded *n, int64_t id, const char *why)
{
  struct cx_run r;
  char name[64];
  memset(&r, 0, sizeof r);
  snprintf(name, sizeof name, "job %lld", (long long)id);
  r.job_id = id;
  r.name = name;
  r.node_uuid = n->uuid;
  r.hostname = n->hostname;
  r.ip = n->ip;
  r.trigger = "cron";
  r.start_time = r.end_time = cx_wall_ms();
  r.status = "failed";
  r.exit_code = -1;
  r.output = (char *)why;
  r.output_len = strlen(why);
  cx__noded_token(r.claim_token);
  cx__noded_record(n, &r, 0, NULL, 0);
}

/* ---- flush --------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static int64_t jint(json_t *o, const char *k)
{
  return (int64_t)json_integer_value(json_object_get(o, k));
}

/* The bytes of o's "output_hex" into a new buffer (*out, *len); a bad
 * digit ends them. 0 or -ENOMEM. */
static int hex_member(json_t *o, char **out, size_t *len)
{
  const char *hx = jstr(o, "output_hex");
  size_t hl = strlen(hx) / 2;
  char *b = cx_malloc(hl + 1);
  *out = b;
  *len = 0;
  if (b == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < hl; i++) {
    int x = hex_val(hx[2 * i]), y = hex_val(hx[2 * i + 1]);
    if (x < 0 || y < 0) {
      hl = i;
      break;
    }
    b[i] = (char)(x << 4 | y);
  }
  b[hl] = '\0';
  *len = hl;
  return 0;
}

static void attempts_free_spooled(struct cx_run_attempt *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    cx_free(v[i].output);
  cx_free(v);
}

/* The "attempt_list" of a spool line (strings borrowed from o, outputs
 * owned: free with attempts_free_spooled). At most 1000 are read. */
static int attempts_dec(json_t *o, struct cx_run_attempt **out, size_t *n)
{
  json_t *l = json_object_get(o, "attempt_list");
  size_t k = json_is_array(l) ? json_array_size(l) : 0;
  *out = NULL;
  *n = 0;
  if (k == 0)
    return 0;
  if (k > 1000)
    k = 1000;
  struct cx_run_attempt *v = cx_calloc(k, sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < k; i++) {
    json_t *e = json_array_get(l, i);
    v[i].attempt = (int)jint(e, "attempt");
    v[i].start_time = jint(e, "start_time");
    v[i].end_time = jint(e, "end_time");
    v[i].status = (char *)jstr(e, "status");
    v[i].exit_code = (int)jint(e, "exit_code");
    if (hex_member(e, &v[i].output, &v[i].output_len) != 0) {
      attempts_free_spooled(v, i);
      return -ENOMEM;
    }
  }
  *out = v;
  *n = k;
  return 0;
}

/* Sends one line. CX_EUNAVAIL = keep it and stop; anything else = done. */
static int flush_line(struct cx_noded *n, const char *line, size_t len)
{
  char err[CX_ERR_LEN] = "";
  json_error_t jerr;
  json_t *o = json_loadb(line, len, 0, &jerr);
  if (!json_is_object(o)) {
    CX_LOG(CX_LOG_ERROR, LOGC, "spool: dropping a corrupt line (%s)",
           jerr.text);
    if (o)
      json_decref(o);
    return 0;
  }
  struct cx_run r;
  memset(&r, 0, sizeof r);
  r.job_id = jint(o, "job_id");
  r.name = (char *)jstr(o, "name");
  r.node_uuid = (char *)jstr(o, "node_uuid");
  r.hostname = (char *)jstr(o, "hostname");
  r.ip = (char *)jstr(o, "ip");
  r.command = (char *)jstr(o, "command");
  r.spec = (char *)jstr(o, "spec");
  r.trigger = (char *)jstr(o, "trigger");
  r.has_scheduled_at = json_is_true(json_object_get(o, "has_scheduled_at"));
  r.scheduled_at = jint(o, "scheduled_at");
  r.start_time = jint(o, "start_time");
  r.end_time = jint(o, "end_time");
  r.success = json_is_true(json_object_get(o, "success"));
  r.status = (char *)jstr(o, "status");
  r.exit_code = (int)jint(o, "exit_code");
  r.attempts = (int)jint(o, "attempts");
  r.per_node = json_is_true(json_object_get(o, "per_node"));
  snprintf(r.claim_token, sizeof r.claim_token, "%s", jstr(o, "claim_token"));
  struct cx_run_attempt *att = NULL;
  size_t natt = 0;
  int rc = hex_member(o, &r.output, &r.output_len);
  if (rc == 0)
    rc = attempts_dec(o, &att, &natt);
  if (rc == 0)
    rc = store_put_all(n, &r, 0, att, natt, err);
  attempts_free_spooled(att, natt);
  cx_free(r.output);
  json_decref(o);
  if (rc == CX_EUNAVAIL || rc == -ENOMEM)
    return CX_EUNAVAIL;
  if (rc != 0)
    CX_LOG(CX_LOG_ERROR, LOGC, "spool: record of job %lld refused: %s",
           (long long)r.job_id, err);
  return 0;
}

int cx_noded_flush(struct cx_noded *n)
{
  int rc = 0;
  pthread_mutex_lock(&n->spmu);
  if (n->sp_pending == 0 || n->sp_fd < 0) {
    pthread_mutex_unlock(&n->spmu);
    return 0;
  }
  struct stat st;
  if (fstat(n->sp_fd, &st) != 0 || (size_t)st.st_size > SPOOL_MAX_FILE) {
    pthread_mutex_unlock(&n->spmu);
    return -EFBIG;
  }
  size_t size = (size_t)st.st_size, got = 0;
  char *buf = cx_malloc(size + 1);
  if (buf == NULL) {
    pthread_mutex_unlock(&n->spmu);
    return -ENOMEM;
  }
  while (got < size) {
    ssize_t r = pread(n->sp_fd, buf + got, size - got, (off_t)got);
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  size_t pos = 0, done = 0, left = 0;
  while (pos < got) {
    char *nl = memchr(buf + pos, '\n', got - pos);
    if (nl == NULL)
      break; /* a torn last line (crash mid-write): never acknowledged */
    size_t len = (size_t)(nl - (buf + pos));
    if (flush_line(n, buf + pos, len) != 0)
      break;
    done++;
    pos += len + 1;
  }
  for (size_t i = pos; i < got; i++)
    left += buf[i] == '\n';
  if (pos > 0) {
    /* Keep what was not sent: rewrite the file with the rest. */
    char tmp[2200];
    snprintf(tmp, sizeof tmp, "%s.tmp", n->sp_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t off = pos;
    while (fd >= 0 && off < got) {
      ssize_t w = write(fd, buf + off, got - off);
      if (w <= 0)
        break;
      off += (size_t)w;
    }
    if (fd >= 0 && off == got && fsync(fd) == 0 &&
        rename(tmp, n->sp_path) == 0) {
      close(fd);
      close(n->sp_fd);
      n->sp_fd =
          open(n->sp_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    } else {
      rc = -EIO;
      left += done; /* still in the file: sent again later, stored once */
      CX_LOG(CX_LOG_ERROR, LOGC,
             "spool rewrite failed; records will be "
             "sent again (stored once)");
      if (fd >= 0)
        close(fd);
    }
  }
  n->sp_pending = left;
  n->sp_flushed += done;
  if (done)
    CX_LOG(CX_LOG_INFO, LOGC, "spool: %zu records sent, %zu left", done, left);
  pthread_mutex_unlock(&n->spmu);
  cx_free(buf);
  return rc != 0 ? rc : (int)(left > INT32_MAX ? INT32_MAX : left);
}

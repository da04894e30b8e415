/*
 * admin: sessions and users (SPEC §4) -- POST /login, POST /logout and the
 * /user/... routes, plus cx_admin_user_create, which `cronix user add` shares
 * so a user made from the shell passes exactly the checks of /user/add.
 *
 * Decisions (the reference got each of these wrong, crony_spec §8.26-27):
 *   - Login answers the same 401/1101 "wrong username or password" for an
 *     unknown user and a wrong password, and spends the same slow hash on
 *     both (an unknown user is checked against a dummy hash), so neither
 *     the reply nor its timing tells which names exist. Failures are logged
 *     with the username and remote address, never the password.
 *   - Guessing is throttled in memory, per admin process, on two keys:
 *     a username *from one client address* (LOCK_AFTER failures), and a
 *     client address whatever the names (ADDR_LOCK_AFTER failures, which
 *     slows spraying one password over many names). Failures count in a
 *     row within FAIL_WINDOW_S of each other; past the threshold the key is
 *     locked for LOCK_BASE_S, doubling with every further failure up to
 *     LOCK_MAX_S; while either key is locked, /login answers 401/1101 "too
 *     many failed logins" without checking the password. A name is never
 *     locked for everybody, so nobody can lock `admin` out from elsewhere:
 *     the owner's address keeps its own count. IPv6 addresses count per
 *     /64 (one host usually holds a whole /64). Behind a reverse proxy
 *     every client has the proxy's address and they share the counts.
 *     Unknown names are tracked alike (a lock does not reveal that a name
 *     exists). A success clears the (name, address) count. Keys live in a
 *     fixed table of 4-way buckets (keyed by a randomly seeded hash) whose
 *     oldest unlocked entry makes room for a new key, so spraying cannot
 *     evict a lock; it can push out a key with a few failures not yet
 *     locked, which costs the sprayer thousands of slow hashes per reset.
 *     Refusing rather than sleeping keeps the HTTP worker threads free.
 *     Several admins each keep their own count.
 *   - Roles: /user/... needs admin, except /user/change_pw (anyone, for
 *     themselves, with old_password; an admin may set another user's
 *     password without it) and /user/find of one's own id (or no id).
 *   - /user/update never takes a password (400 naming "password": use
 *     change_pw, so a password can never be stored unhashed).
 *   - A password change (change_pw, by the user or by an admin) ends every
 *     SESSION of that user except the one that asked for it (self-change
 *     only), on this admin at once (cache flushed), elsewhere within
 *     server.auth_cache_ttl. API tokens stay: they are not obtained with
 *     the password (only `cronix user add --token` makes them), so a
 *     password that leaked could not have minted one, and automation
 *     should survive a routine password rotation. Deleting the user ends
 *     them all. If ending the sessions fails after the new hash is stored,
 *     the reply is 503/1302 saying the password did change; repeating the
 *     change retries.
 *   - Nobody can delete or demote the last admin (409/1202). The check and
 *     the change run under one process-wide lock; two admin processes
 *     demoting the last two admins at the same instant could still race.
 *   - Replies never carry password hashes; unknown body fields are 400.
 *   - /logout revokes the token it was called with, whatever its kind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "admin/admin-int.h"

#define LOCK_AFTER 5       /* failures of one name from one address */
#define ADDR_LOCK_AFTER 20 /* failures from one address, any names */
#define FAIL_WINDOW_S (15 * 60)
#define LOCK_BASE_S 60
#define LOCK_MAX_S (15 * 60)
#define LOCK_SLOTS 1024
#define LOCK_WAYS 4 /* slots per bucket */
#define MAX_IDS 100

/* ---- field rules (shared with `cronix user add`) ----------------------- */

static int check_username(const char *s, char *err)
{
  size_t n = strlen(s), chars = 0, len;
  if (n == 0) {
    cx_err_set(err, "username: must not be empty");
    return CX_EPARSE;
  }
  if (s[0] == ' ' || s[n - 1] == ' ') {
    cx_err_set(err, "username: must not start or end with a space");
    return CX_EPARSE;
  }
  for (size_t i = 0; i < n; i += len) {
    uint32_t cp = 0;
    len = cx_utf8_next(s + i, n - i, &cp);
    if (len == 0) {
      cx_err_set(err, "username: not valid UTF-8");
      return CX_EPARSE;
    }
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 ||
        cp == 0x2029) {
      cx_err_set(err, "username: control characters are not allowed");
      return CX_EPARSE;
    }
    if (++chars > 64) {
      cx_err_set(err, "username: longer than 64 characters");
      return CX_EPARSE;
    }
  }
  return 0;
}

static int check_password(const char *s, char *err)
{
  size_t n = strlen(s);
  if (n < 8 || n > 1024) {
    cx_err_set(err, "password: must be 8..1024 bytes (got %zu)", n);
    return CX_EPARSE;
  }
  return 0;
}

static int is_alnum(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* local@domain, as notifications accept it: the local part is 1..64 bytes
 * of RFC 5322 atext with single inner dots, the domain dot-separated
 * labels of letters, digits and inner hyphens. "" = no email. */
static int check_email(const char *s, char *err)
{
  size_t n = strlen(s);
  const char *at = strrchr(s, '@');
  if (n == 0)
    return 0;
  if (n > 254 || at == NULL || at == s || at - s > 64)
    goto bad;
  for (const char *p = s; p < at; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '.') {
      if (p == s || p + 1 == at || p[1] == '.')
        goto bad;
    } else if (!is_alnum(c) && strchr("!#$%&'*+/=?^_`{|}~-", c) == NULL) {
      goto bad;
    }
  }
  const char *label = at + 1;
  for (const char *p = at + 1;; p++) {
    if (*p == '.' || *p == '\0') {
      size_t ll = (size_t)(p - label);
      if (ll == 0 || ll > 63 || label[0] == '-' || p[-1] == '-')
        goto bad;
      if (*p == '\0')
        break;
      label = p + 1;
    } else if (!is_alnum((unsigned char)*p) && *p != '-') {
      goto bad;
    }
  }
  return 0;
bad:
  cx_err_set(err, "email: not an address of the form name@example.com");
  return CX_EPARSE;
}

/* Feishu open_id / user_id: letters, digits, '_' and '-'. "" = none. */
static int check_feishu_id(const char *s, char *err)
{
  size_t n = strlen(s);
  if (n > 128) {
    cx_err_set(err, "feishu_id: longer than 128 bytes");
    return CX_EPARSE;
  }
  for (size_t i = 0; i < n; i++)
    if (!is_alnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') {
      cx_err_set(err, "feishu_id: only letters, digits, '_' and '-'");
      return CX_EPARSE;
    }
  return 0;
}

/* The robots' ids (issue 14): each in the spec and in struct cx_user. */
static const struct contact {
  const char *name;
  size_t spec_off, user_off, max;
  const char *chars; /* allowed besides letters and digits */
} contacts[] = {
    {"mobile", offsetof(struct cx_admin_user_spec, mobile),
     offsetof(struct cx_user, mobile), 32, "+-"},
    {"dingtalk_id", offsetof(struct cx_admin_user_spec, dingtalk_id),
     offsetof(struct cx_user, dingtalk_id), 128, "_-.@$"},
    {"wecom_id", offsetof(struct cx_admin_user_spec, wecom_id),
     offsetof(struct cx_user, wecom_id), 128, "_-.@"},
    {"slack_id", offsetof(struct cx_admin_user_spec, slack_id),
     offsetof(struct cx_user, slack_id), 64, ""},
};
#define SPEC_FIELD(spec, c) (*(const char **)((char *)(spec) + (c)->spec_off))
#define USER_FIELD(u, c) (*(char **)((char *)(u) + (c)->user_off))

static int check_contact(const struct contact *c, const char *s, char *err)
{
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++)
    if (!is_alnum((unsigned char)s[i]) && strchr(c->chars, s[i]) == NULL) {
      cx_err_set(err, "%s: only letters, digits%s%s", c->name,
                 c->chars[0] ? " and " : "", c->chars);
      return CX_EPARSE;
    }
  if (n > c->max) {
    cx_err_set(err, "%s: longer than %zu bytes", c->name, c->max);
    return CX_EPARSE;
  }
  return 0;
}

/* Reads the contacts of a /user/add or /user/update body into spec; -1
 * after replying. */
static int read_contacts(struct cx_http_req *req, const json_t *body,
                         struct cx_admin_user_spec *spec)
{
  for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++)
    if (cx__admin_json_str(req, body, contacts[i].name, 1024,
                           &SPEC_FIELD(spec, &contacts[i])) < 0)
      return -1;
  return 0;
}

static int check_role(const char *s, char *err)
{
  if (cx__admin_role_parse(s) == CX_ROLE_NONE) {
    cx_err_set(err, "role: must be admin, operator or viewer");
    return CX_EPARSE;
  }
  return 0;
}

/* Checks every field of spec that is set; on failure names it. */
static int check_spec(const struct cx_admin_user_spec *u, int need_all,
                      char *field, char *err)
{
  static const char *const names[] = {"username", "password", "email",
                                      "feishu_id", "role"};
  const char *vals[] = {u->username, u->password, u->email, u->feishu_id,
                        u->role};
  int (*const fns[])(const char *, char *) = {
      check_username, check_password, check_email, check_feishu_id, check_role};
  for (size_t i = 0; i < CX_ARRAY_LEN(names); i++) {
    int rc = 0;
    if (vals[i] != NULL)
      rc = fns[i](vals[i], err);
    else if (need_all && (i < 2 || i == 4)) {
      cx_err_set(err, "%s: required", names[i]);
      rc = CX_EPARSE;
    }
    if (rc != 0) {
      snprintf(field, CX_ADMIN_FIELD_LEN, "%s", names[i]);
      return rc;
    }
  }
  for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++) {
    const char *v = SPEC_FIELD(u, &contacts[i]);
    if (v != NULL && check_contact(&contacts[i], v, err) != 0) {
      snprintf(field, CX_ADMIN_FIELD_LEN, "%s", contacts[i].name);
      return CX_EPARSE;
    }
  }
  return 0;
}

int cx_admin_user_check(const struct cx_admin_user_spec *spec, char *field,
                        char *err)
{
  field[0] = '\0';
  return check_spec(spec, 1, field, err);
}

int cx_admin_user_create(struct cx_store *store,
                         const struct cx_admin_user_spec *spec, int64_t *id,
                         char *field, char *err)
{
  char hash[CX_STORE_HASH_LEN];
  int rc = cx_admin_user_check(spec, field, err);
  if (rc != 0)
    return rc;
  if ((rc = cx_store_password_hash(spec->password, hash, err)) != 0)
    return rc;
  struct cx_user u = {0};
  u.username = (char *)spec->username;
  u.password_hash = hash;
  u.email = (char *)(spec->email ? spec->email : "");
  u.feishu_id = (char *)(spec->feishu_id ? spec->feishu_id : "");
  u.role = (char *)spec->role;
  for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++)
    USER_FIELD(&u, &contacts[i]) = (char *)SPEC_FIELD(spec, &contacts[i]);
  rc = cx_store_user_create(store, &u, err);
  explicit_bzero(hash, sizeof hash);
  if (rc == CX_EEXISTS) {
    snprintf(field, CX_ADMIN_FIELD_LEN, "username");
    cx_err_set(err, "username: '%s' is taken", spec->username);
  }
  if (rc == 0 && id != NULL)
    *id = u.id;
  return rc;
}

/* ---- login throttling ------------------------------------------------- */

struct lock_slot {
  /* "a <address>" or "n <address> <username>"; "" = free. Usernames reach
   * /login with up to 256 bytes, addresses are numeric (<= 45 bytes). */
  char name[320];
  int fails;
  int64_t last_fail; /* unix s */
  int64_t until;     /* locked before this instant */
};

static struct {
  pthread_mutex_t mu;
  uint64_t seed;
  struct lock_slot slot[LOCK_SLOTS];
} g_lock = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Serialises "is this the last admin?" checks with the change they guard. */
static pthread_mutex_t g_admins_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_dummy_hash[CX_STORE_HASH_LEN];

static void init_once(void)
{
  uint64_t seed = 0;
  if (cx_random_bytes(&seed, sizeof seed) != 0)
    seed = (uint64_t)cx_mono_now();
  g_lock.seed = seed | 1;
  /* Unknown users are checked against this, so they cost the same time. */
  if (cx_store_password_hash("cronix-dummy-password", g_dummy_hash, NULL) != 0)
    g_dummy_hash[0] = '\0';
}

/* The slot tracking name, or (create) a slot for it: a free one, else the
 * one of its bucket with the oldest failure that is not locked now. NULL
 * when absent (or, creating, when every slot of the bucket is locked). */
static struct lock_slot *lock_slot_of(const char *name, int create, int64_t now)
{
  uint64_t h = g_lock.seed;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  h ^= h >> 29;
  struct lock_slot *b =
                       &g_lock.slot[(h % (LOCK_SLOTS / LOCK_WAYS)) * LOCK_WAYS],
                   *victim = NULL;
  for (int i = 0; i < LOCK_WAYS; i++) {
    if (strcmp(b[i].name, name) == 0 && b[i].name[0] != '\0')
      return &b[i];
    if (b[i].until <= now &&
        (victim == NULL || b[i].last_fail < victim->last_fail))
      victim = &b[i];
  }
  if (!create || victim == NULL)
    return NULL;
  memset(victim, 0, sizeof *victim);
  snprintf(victim->name, sizeof victim->name, "%s", name);
  return victim;
}

/* The throttling keys of a login: by client address (an IPv6 address cut
 * to its /64) and by username from that address. */
struct lock_keys {
  char addr[64];
  char pair[sizeof((struct lock_slot *)0)->name];
};

static void lock_keys_make(const char *remote, const char *name,
                           struct lock_keys *k)
{
  unsigned char v6[16];
  if (strchr(remote, ':') != NULL && inet_pton(AF_INET6, remote, v6) == 1) {
    memset(v6 + 8, 0, 8);
    char net[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, v6, net, sizeof net);
    snprintf(k->addr, sizeof k->addr, "a %s/64", net);
  } else {
    snprintf(k->addr, sizeof k->addr, "a %.48s", remote);
  }
  snprintf(k->pair, sizeof k->pair, "n %s %s", k->addr + 2, name);
}

/* Seconds a key stays locked (0 = may try now); under g_lock.mu. */
static int64_t key_remaining(const char *key, int64_t now)
{
  struct lock_slot *s = lock_slot_of(key, 0, now);
  return s != NULL && s->until > now ? s->until - now : 0;
}

/* Seconds this login stays refused (0 = may try now); *by_addr tells
 * which lock holds it. */
static int64_t lock_remaining(const struct lock_keys *k, int64_t now,
                              int *by_addr)
{
  pthread_mutex_lock(&g_lock.mu);
  int64_t pair = key_remaining(k->pair, now);
  int64_t addr = key_remaining(k->addr, now);
  pthread_mutex_unlock(&g_lock.mu);
  *by_addr = addr > pair;
  return addr > pair ? addr : pair;
}

/* Counts a failure of key; locked from its after-th failure in a row. */
static void key_fail(const char *key, int after, int64_t now)
{
  struct lock_slot *s = lock_slot_of(key, 1, now);
  if (s == NULL)
    return;
  if (now - s->last_fail > FAIL_WINDOW_S)
    s->fails = 0;
  s->fails++;
  s->last_fail = now;
  if (s->fails >= after) {
    int64_t d = LOCK_BASE_S;
    for (int i = after; i < s->fails && d < LOCK_MAX_S; i++)
      d *= 2;
    s->until = now + (d < LOCK_MAX_S ? d : LOCK_MAX_S);
  }
}

/* A success clears the name's count from this address (not the address's
 * count: one good password does not excuse spraying the others). */
static void lock_record(const struct lock_keys *k, int ok, int64_t now)
{
  pthread_mutex_lock(&g_lock.mu);
  if (ok) {
    struct lock_slot *s = lock_slot_of(k->pair, 0, now);
    if (s != NULL)
      memset(s, 0, sizeof *s);
  } else {
    key_fail(k->pair, LOCK_AFTER, now);
    key_fail(k->addr, ADDR_LOCK_AFTER, now);
  }
  pthread_mutex_unlock(&g_lock.mu);
}

/* ---- helpers ------------------------------------------------------------ */

static json_t *user_json(const struct cx_user *u)
{
  json_t *o = json_pack(
      "{s:I, s:s, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t)u->id,
      "username", u->username, "email", u->email ? u->email : "", "feishu_id",
      u->feishu_id ? u->feishu_id : "", "role", u->role, "created",
      (json_int_t)u->created, "updated", (json_int_t)u->updated);
  for (size_t i = 0; o != NULL && i < CX_ARRAY_LEN(contacts); i++) {
    const char *v = USER_FIELD(u, &contacts[i]);
    json_object_set_new(o, contacts[i].name, json_string(v ? v : ""));
  }
  return o;
}

static json_t *user_item(const void *item, int64_t arg)
{
  (void)arg;
  return user_json(item);
}

/* Replies a page of n items (size bytes each), fn(item, arg) making each
 * one's JSON. */
static void reply_items(struct cx_http_req *req, const void *items, size_t n,
                        size_t size, json_t *(*fn)(const void *, int64_t),
                        int64_t arg, int64_t total, int page, int page_size)
{
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < n; i++)
    if (json_array_append_new(list, fn((const char *)items + i * size, arg)) !=
        0) {
      json_decref(list);
      list = NULL;
    }
  if (list == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx__admin_reply_page(req, list, total, page, page_size);
}

static void reply_user(struct cx_http_req *req, const struct cx_user *u)
{
  json_t *j = user_json(u);
  if (j == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, j);
}

/* Reads a required string member; -1 after replying. */
static int need_str(struct cx_http_req *req, const json_t *body,
                    const char *name, size_t max, const char **out)
{
  int rc = cx__admin_json_str(req, body, name, max, out);
  if (rc == 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, name, "%s: required", name);
    return -1;
  }
  return rc < 0 ? -1 : 0;
}

/* Reads the required `id` member (1..INT64_MAX); -1 after replying. */
static int need_id(struct cx_http_req *req, const json_t *body, int64_t *id)
{
  int rc = cx__admin_json_int(req, body, "id", 1, INT64_MAX, id);
  if (rc == 0)
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "id", "id: required");
  return rc == 1 ? 0 : -1;
}

/* Reads user id into u; on failure replies (404 naming it, or 503) and
 * returns -1. */
static int find_user(struct cx_admin *a, struct cx_http_req *req, int64_t id,
                     struct cx_user *u)
{
  char err[CX_ERR_LEN] = "", what[64];
  int rc = cx_store_user_find(a->store, id, u, err);
  if (rc == 0)
    return 0;
  snprintf(what, sizeof what, "user %lld", (long long)id);
  cx__admin_reply_backend_error(req, rc, what, err);
  return -1;
}

/* Number of admins among all users, excluding the ids in skip. */
static int count_admins(struct cx_store *st, const int64_t *skip, size_t nskip,
                        int64_t *out, char *err)
{
  int64_t n = 0;
  for (int page = 1;; page++) {
    struct cx_user_list l;
    int rc = cx_store_user_search(st, NULL, page, CX_STORE_PAGE_MAX, &l, err);
    if (rc != 0)
      return rc;
    for (size_t i = 0; i < l.n; i++) {
      int skipped = 0;
      for (size_t k = 0; k < nskip; k++)
        skipped |= skip[k] == l.items[i].id;
      if (!skipped && cx__admin_role_parse(l.items[i].role) == CX_ROLE_ADMIN)
        n++;
    }
    size_t got = l.n;
    cx_user_list_free(&l);
    if (got < CX_STORE_PAGE_MAX)
      break;
  }
  *out = n;
  return 0;
}

/* ---- audit rows (audit.c) ---------------------------------------------- */

static struct cx__admin_who user_who(const struct cx_user *u)
{
  struct cx__admin_who w = {0};
  w.user_id = u->id;
  snprintf(w.username, sizeof w.username, "%s", u->username);
  return w;
}

/* Ends this thread's store transaction with the audit row of a change to
 * user u (target "user <id>"; before/after borrowed, may be NULL): see
 * cx__admin_audit_commit. */
static int audit_user(struct cx_admin *a, struct cx_http_req *req,
                      struct cx__admin_who who, int rc, const char *kind,
                      const struct cx_user *u, const json_t *before,
                      const json_t *after, char *err)
{
  char target[48];
  struct cx__actor actor = cx__admin_actor(req, &who);
  snprintf(target, sizeof target, "user %lld", (long long)u->id);
  return cx__admin_audit_commit(a, rc, &actor, kind, target, before, after,
                                err);
}

/* A failed login changes nothing but is recorded (who typed which name,
 * from where); a failure to record it is logged only. */
static void audit_login_failed(struct cx_admin *a, struct cx_http_req *req,
                               const char *name)
{
  char err[CX_ERR_LEN] = "";
  struct cx__actor actor = {0, name, cx_http_req_remote(req)};
  if (cx__admin_audit(a, &actor, "login.fail", NULL, NULL, NULL, NULL, err))
    CX_LOG(CX_LOG_ERROR, "admin", "audit: failed login not recorded: %s", err);
}

/* ---- /login, /logout ---------------------------------------------------- */

static void h_login(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"username", "password", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  const char *name = NULL, *pw = NULL;
  char err[CX_ERR_LEN] = "", token[CX_STORE_TOKEN_LEN];
  struct cx_user u = {0};
  int64_t now = cx_wall_s();

  pthread_once(&g_once, init_once);
  if (cx__admin_json_only(req, body, allowed) < 0 ||
      need_str(req, body, "username", 256, &name) < 0 ||
      need_str(req, body, "password", 1024, &pw) < 0)
    return;
  struct lock_keys keys;
  int by_addr = 0;
  lock_keys_make(cx_http_req_remote(req), name, &keys);
  int64_t left = lock_remaining(&keys, now, &by_addr);
  if (left > 0) {
    CX_LOG(CX_LOG_WARN, "admin",
           "login refused for '%.64s' from %s: %s locked "
           "for %lld s after failed attempts",
           name, cx_http_req_remote(req),
           by_addr ? "the address is" : "this user from this address is",
           (long long)left);
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "too many failed logins %s; retry in %lld s",
                        by_addr ? "from this address"
                                : "for this user from this address",
                        (long long)left);
    return;
  }
  int rc = CX_ENOTFOUND;
  if (strlen(name) <= 64 && check_username(name, NULL) == 0)
    rc = cx_store_user_find_by_name(a->store, name, &u, err);
  if (rc != 0 && rc != CX_ENOTFOUND && rc != CX_EPARSE && rc != CX_ETOOBIG) {
    /* Nobody is authenticated yet: the detail goes to the log only. */
    CX_LOG(CX_LOG_ERROR, "admin", "login: user lookup: %s", err);
    cx__admin_reply_backend_error(req, rc, "user", NULL);
    return;
  }
  int ok =
      cx_store_password_verify(pw, rc == 0 ? u.password_hash : g_dummy_hash) &&
      rc == 0;
  lock_record(&keys, ok, now);
  if (!ok) {
    CX_LOG(CX_LOG_WARN, "admin", "login failed for '%.64s' from %s", name,
           cx_http_req_remote(req));
    audit_login_failed(a, req, name);
    cx_user_clear(&u);
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, NULL,
                        "wrong username or password");
    return;
  }
  int64_t expires = now + a->cfg->session_ttl;
  rc = cx_store_token_generate(token);
  if (rc == 0 && (rc = cx_store_tx_begin(a->store, err)) == 0) {
    rc = cx_store_token_create(a->store, token, u.id, "session", expires, err);
    rc = audit_user(a, req, user_who(&u), rc, "login", &u, NULL, NULL, err);
  }
  if (rc != 0) {
    cx_user_clear(&u);
    cx__admin_reply_backend_error(req, rc, "session", err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin", "login: user %lld '%s' from %s", (long long)u.id,
         u.username, cx_http_req_remote(req));
  json_t *data = json_pack("{s:s, s:I, s:o}", "token", token, "expires",
                           (json_int_t)expires, "user", user_json(&u));
  explicit_bzero(token, sizeof token);
  cx_user_clear(&u);
  if (data == NULL)
    cx_http_reply_error(req, CX_HTTP_INTERNAL, NULL, "out of memory");
  else
    cx_http_reply_ok(req, data);
}

static void h_logout(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  char err[CX_ERR_LEN] = "";
  struct cx__admin_who who;
  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) < 0)
    return;
  int rc = cx_store_tx_begin(a->store, err);
  if (rc == 0) {
    struct cx_user self = {.id = who.user_id};
    rc = cx_store_token_delete(a->store, who.token, err);
    rc = audit_user(a, req, who, rc, "logout", &self, NULL, NULL, err);
  }
  cx__admin_auth_flush(a);
  if (rc != 0 && rc != CX_ENOTFOUND) {
    cx__admin_reply_backend_error(req, rc, "token", err);
    return;
  }
  cx_http_reply_ok(req, NULL);
}

/* ---- /user/... ---------------------------------------------------------- */

static void h_user_add(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {
      "username", "password",    "email",    "feishu_id", "role",
      "mobile",   "dingtalk_id", "wecom_id", "slack_id",  NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  struct cx_admin_user_spec spec = {0};
  char err[CX_ERR_LEN] = "", field[CX_ADMIN_FIELD_LEN] = "";
  int64_t id = 0;
  struct cx__admin_who who;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, &who) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      cx__admin_json_str(req, body, "username", 1024, &spec.username) < 0 ||
      cx__admin_json_str(req, body, "password", 1024, &spec.password) < 0 ||
      cx__admin_json_str(req, body, "email", 1024, &spec.email) < 0 ||
      cx__admin_json_str(req, body, "feishu_id", 1024, &spec.feishu_id) < 0 ||
      cx__admin_json_str(req, body, "role", 64, &spec.role) < 0 ||
      read_contacts(req, body, &spec) < 0)
    return;
  struct cx_user u = {0};
  int rc = cx_store_tx_begin(a->store, err);
  if (rc == 0) {
    rc = cx_admin_user_create(a->store, &spec, &id, field, err);
    if (rc == 0)
      rc = cx_store_user_find(a->store, id, &u, err);
    json_t *after = rc == 0 ? user_json(&u) : NULL;
    rc = audit_user(a, req, who, rc, "user.add", &u, NULL, after, err);
    json_decref(after);
  }
  if (rc == CX_EPARSE || rc == CX_ETOOBIG || rc == -EINVAL) {
    cx_user_clear(&u);
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field[0] ? field : NULL, "%s",
                        err);
    return;
  }
  if (rc == CX_EEXISTS) {
    cx_user_clear(&u);
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "username", "%s", err);
    return;
  }
  if (rc != 0) {
    cx_user_clear(&u);
    cx__admin_reply_backend_error(req, rc, "user", err);
    return;
  }
  reply_user(req, &u);
  cx_user_clear(&u);
}

/* Reads `id` or `ids` of /user/del into ids[MAX_IDS]; -1 after replying. */
static int read_ids(struct cx_http_req *req, const json_t *body, int64_t *ids,
                    size_t *n)
{
  json_t *arr = json_object_get(body, "ids");
  *n = 0;
  if (json_object_get(body, "id") != NULL) {
    if (arr != NULL) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "ids",
                          "give either id or ids, not both");
      return -1;
    }
    if (need_id(req, body, &ids[0]) < 0)
      return -1;
    *n = 1;
    return 0;
  }
  if (!json_is_array(arr) || json_array_size(arr) == 0 ||
      json_array_size(arr) > MAX_IDS) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "ids",
                        "ids: required, an array of 1..%d user ids", MAX_IDS);
    return -1;
  }
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *v = json_array_get(arr, i);
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
      cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "ids",
                          "ids: item %zu is not a positive integer", i);
      return -1;
    }
    int64_t id = json_integer_value(v);
    int dup = 0;
    for (size_t k = 0; k < *n; k++)
      dup |= ids[k] == id;
    if (!dup)
      ids[(*n)++] = id;
  }
  return 0;
}

static void h_user_del(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"id", "ids", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  int64_t ids[MAX_IDS], admins = 0;
  size_t n = 0;
  char err[CX_ERR_LEN] = "", what[64];
  int rc = 0, removes_admin = 0;
  struct cx__admin_who who;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, &who) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      read_ids(req, body, ids, &n) < 0)
    return;
  pthread_mutex_lock(&g_admins_mu);
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct cx_user u = {0};
    rc = cx_store_user_find(a->store, ids[i], &u, err);
    if (rc == 0)
      removes_admin |= cx__admin_role_parse(u.role) == CX_ROLE_ADMIN;
    snprintf(what, sizeof what, "user %lld", (long long)ids[i]);
    cx_user_clear(&u);
  }
  if (rc == 0 && removes_admin)
    rc = count_admins(a->store, ids, n, &admins, err);
  if (rc == 0 && removes_admin && admins == 0) {
    pthread_mutex_unlock(&g_admins_mu);
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "ids",
                        "that would delete the last admin");
    return;
  }
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct cx_user u = {0};
    snprintf(what, sizeof what, "user %lld", (long long)ids[i]);
    if ((rc = cx_store_tx_begin(a->store, err)) != 0)
      break;
    rc = cx_store_user_find(a->store, ids[i], &u, err);
    json_t *before = rc == 0 ? user_json(&u) : NULL;
    if (rc == 0)
      rc = cx_store_user_delete(a->store, ids[i], err);
    rc = audit_user(a, req, who, rc, "user.del", &u, before, NULL, err);
    json_decref(before);
    cx_user_clear(&u);
  }
  cx__admin_auth_flush(a);
  pthread_mutex_unlock(&g_admins_mu);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin", "deleted %zu user(s)", n);
  cx_http_reply_ok(req, json_pack("{s:I}", "deleted", (json_int_t)n));
}

static void h_user_update(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {
      "id",      "username", "email",       "feishu_id", "role",     "created",
      "updated", "mobile",   "dingtalk_id", "wecom_id",  "slack_id", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  struct cx_admin_user_spec spec = {0};
  char err[CX_ERR_LEN] = "", field[CX_ADMIN_FIELD_LEN] = "";
  struct cx_user u = {0};
  int64_t id = 0, admins = 0;
  struct cx__admin_who who;
  json_t *before = NULL;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, &who) < 0)
    return;
  if (json_object_get(body, "password") != NULL) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "password",
                        "password: not changed here, use /user/change_pw");
    return;
  }
  if (cx__admin_json_only(req, body, allowed) < 0 ||
      need_id(req, body, &id) < 0 ||
      cx__admin_json_str(req, body, "username", 1024, &spec.username) < 0 ||
      cx__admin_json_str(req, body, "email", 1024, &spec.email) < 0 ||
      cx__admin_json_str(req, body, "feishu_id", 1024, &spec.feishu_id) < 0 ||
      cx__admin_json_str(req, body, "role", 64, &spec.role) < 0 ||
      read_contacts(req, body, &spec) < 0)
    return;
  if (check_spec(&spec, 0, field, err) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, field, "%s", err);
    return;
  }
  pthread_mutex_lock(&g_admins_mu);
  int rc = cx_store_user_find(a->store, id, &u, err);
  if (rc == 0 && spec.role != NULL &&
      cx__admin_role_parse(u.role) == CX_ROLE_ADMIN &&
      cx__admin_role_parse(spec.role) != CX_ROLE_ADMIN) {
    rc = count_admins(a->store, &id, 1, &admins, err);
    if (rc == 0 && admins == 0) {
      pthread_mutex_unlock(&g_admins_mu);
      cx_user_clear(&u);
      cx_http_reply_error(req, CX_HTTP_CONFLICT, "role",
                          "role: cannot demote the last admin");
      return;
    }
  }
  char *keep[3] = {u.username, u.email, u.feishu_id};
  char *keep_role = u.role, *keep_contact[CX_ARRAY_LEN(contacts)];
  for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++)
    keep_contact[i] = USER_FIELD(&u, &contacts[i]);
  if (rc == 0 && (before = user_json(&u)) == NULL)
    rc = -ENOMEM;
  if (rc == 0 && (rc = cx_store_tx_begin(a->store, err)) == 0) {
    for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++)
      if (SPEC_FIELD(&spec, &contacts[i]) != NULL)
        USER_FIELD(&u, &contacts[i]) = (char *)SPEC_FIELD(&spec, &contacts[i]);
    if (spec.username)
      u.username = (char *)spec.username;
    if (spec.email)
      u.email = (char *)spec.email;
    if (spec.feishu_id)
      u.feishu_id = (char *)spec.feishu_id;
    if (spec.role)
      u.role = (char *)spec.role;
    rc = cx_store_user_update(a->store, &u, err);
    json_t *after = rc == 0 ? user_json(&u) : NULL;
    rc = audit_user(a, req, who, rc, "user.update", &u, before, after, err);
    json_decref(after);
    cx__admin_auth_flush(a);
  }
  json_decref(before);
  pthread_mutex_unlock(&g_admins_mu);
  if (rc == 0) {
    /* The reply's strings are the request's: put ours back before freeing
     * after replying. */
    reply_user(req, &u);
  } else if (rc == CX_EEXISTS) {
    cx_http_reply_error(req, CX_HTTP_CONFLICT, "username",
                        "username: '%s' is taken", u.username);
  } else {
    char what[64];
    snprintf(what, sizeof what, "user %lld", (long long)id);
    cx__admin_reply_backend_error(req, rc, what, err);
  }
  u.username = keep[0];
  u.email = keep[1];
  u.feishu_id = keep[2];
  u.role = keep_role;
  for (size_t i = 0; i < CX_ARRAY_LEN(contacts); i++)
    USER_FIELD(&u, &contacts[i]) = keep_contact[i];
  cx_user_clear(&u);
}

static void h_user_change_pw(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"id", "old_password", "new_password",
                                        NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  struct cx__admin_who who;
  const char *old_pw = NULL, *new_pw = NULL;
  char err[CX_ERR_LEN] = "", hash[CX_STORE_HASH_LEN];
  int64_t id = 0;
  struct cx_user u = {0};

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      cx__admin_json_int(req, body, "id", 1, INT64_MAX, &id) < 0 ||
      cx__admin_json_str(req, body, "old_password", 1024, &old_pw) < 0 ||
      need_str(req, body, "new_password", 1024, &new_pw) < 0)
    return;
  if (id == 0)
    id = who.user_id;
  int self = id == who.user_id;
  if (!self && who.role < CX_ROLE_ADMIN) {
    cx_http_reply_error(req, CX_HTTP_FORBIDDEN, "id",
                        "only an admin may change another user's password");
    return;
  }
  if (self && old_pw == NULL) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "old_password",
                        "old_password: required to change your own password");
    return;
  }
  if (check_password(new_pw, err) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "new_password", "new_%s", err);
    return;
  }
  if (find_user(a, req, id, &u) < 0)
    return;
  if (self && !cx_store_password_verify(old_pw, u.password_hash)) {
    cx_user_clear(&u);
    CX_LOG(CX_LOG_WARN, "admin",
           "change_pw: wrong old password for user %lld "
           "from %s",
           (long long)id, cx_http_req_remote(req));
    cx_http_reply_error(req, CX_HTTP_UNAUTHORIZED, "old_password",
                        "old_password: wrong password");
    return;
  }
  int rc = cx_store_password_hash(new_pw, hash, err);
  char *old_hash = u.password_hash;
  if (rc == 0 && (rc = cx_store_tx_begin(a->store, err)) == 0) {
    u.password_hash = hash;
    rc = cx_store_user_update(a->store, &u, err);
    u.password_hash = old_hash;
    rc = audit_user(a, req, who, rc, "user.password", &u, NULL, NULL, err);
  }
  explicit_bzero(hash, sizeof hash);
  cx_user_clear(&u);
  if (rc != 0) {
    cx__admin_auth_flush(a);
    cx__admin_reply_backend_error(req, rc, "user", err);
    return;
  }
  /* After the new hash is stored, so a login with the old password that
   * raced the change loses its session too; before the flush, so this
   * admin's cache cannot keep one alive. */
  const char *keep = self ? who.token : NULL;
  int64_t ended = 0;
  rc = cx_store_token_delete_user(a->store, id, "session", keep, &ended, err);
  /* The first admin's token was written to a file: a new password means
   * the file's secrets are dead, even the one this request came with. */
  int64_t initial = 0;
  if (rc == 0)
    rc = cx_store_token_delete_user(a->store, id, "initial", NULL, &initial,
                                    err);
  ended += initial;
  cx__admin_auth_flush(a);
  if (rc != 0) {
    CX_LOG(CX_LOG_ERROR, "admin",
           "password of user %lld changed, but its other sessions "
           "could not be ended: %s",
           (long long)id, err);
    cx_http_reply_error(req, CX_HTTP_UNAVAIL, NULL,
                        "the password was changed, but the user's other "
                        "sessions could not be ended (%s); change it again "
                        "to retry",
                        err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin",
         "password of user %lld changed by user %lld; %lld other "
         "session(s) ended",
         (long long)id, (long long)who.user_id, (long long)ended);
  cx_http_reply_ok(req, NULL);
}

static void h_user_find(struct cx_http_req *req, void *ctx)
{
  struct cx_admin *a = ctx;
  struct cx__admin_who who;
  int64_t id = 0;
  struct cx_user u = {0};

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) < 0)
    return;
  const char *q = cx_http_req_query(req, "id");
  if (q == NULL || q[0] == '\0')
    id = who.user_id;
  else if (cx_parse_int64(q, 1, INT64_MAX, &id) != 0) {
    cx_http_reply_error(req, CX_HTTP_BAD_INPUT, "id",
                        "id: must be a positive integer");
    return;
  }
  if (id != who.user_id && who.role < CX_ROLE_ADMIN) {
    cx_http_reply_error(req, CX_HTTP_FORBIDDEN, NULL,
                        "role %s may only look up itself (needs admin)",
                        cx__admin_role_name(who.role));
    return;
  }
  if (find_user(a, req, id, &u) < 0)
    return;
  reply_user(req, &u);
  cx_user_clear(&u);
}

static void h_user_search(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page", "page_size", "username", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  const char *name = NULL;
  char err[CX_ERR_LEN] = "";
  int page, size;
  struct cx_user_list l;

  if (cx__admin_auth(a, req, CX_ROLE_ADMIN, NULL) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      cx__admin_paging(req, body, &page, &size) < 0 ||
      cx__admin_json_str(req, body, "username", 256, &name) < 0)
    return;
  int rc = cx_store_user_search(a->store, name, page, size, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "users", err);
    return;
  }
  reply_items(req, l.items, l.n, sizeof *l.items, user_item, 0, l.total, page,
              size);
  cx_user_list_free(&l);
}

/* ---- /user/token/search, /user/token/del ------------------------------- */

/* A token as listed: never its text or hash (only the hash is stored, and
 * the list must not help anyone guess). current = the caller's own. */
static json_t *token_item(const void *item, int64_t current_id)
{
  const struct cx_token *t = item;
  return json_pack("{s:I, s:I, s:s, s:I, s:I, s:b}", "id", (json_int_t)t->id,
                   "user_id", (json_int_t)t->user_id, "kind", t->kind,
                   "created", (json_int_t)t->created, "expires",
                   (json_int_t)t->expires, "current", t->id == current_id);
}

static void h_token_search(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"page", "page_size", "user_id", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  struct cx__admin_who who;
  struct cx_token me = {0};
  struct cx_token_list l;
  char err[CX_ERR_LEN] = "";
  int64_t user_id = 0;
  int page, size;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      cx__admin_paging(req, body, &page, &size) < 0 ||
      cx__admin_json_int(req, body, "user_id", 1, INT64_MAX, &user_id) < 0)
    return;
  if (who.role < CX_ROLE_ADMIN) {
    if (user_id != 0 && user_id != who.user_id) {
      cx_http_reply_error(req, CX_HTTP_FORBIDDEN, "user_id",
                          "role %s may only list its own tokens (needs admin)",
                          cx__admin_role_name(who.role));
      return;
    }
    user_id = who.user_id;
  }
  int64_t now = cx_wall_s();
  /* Which one is the caller's: best effort, the list works without it. */
  cx_store_token_lookup(a->store, who.token, now, &me, NULL);
  int rc = cx_store_token_search(a->store, user_id, now, page, size, &l, err);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, "tokens", err);
    return;
  }
  reply_items(req, l.items, l.n, sizeof *l.items, token_item, me.id, l.total,
              page, size);
  cx_token_list_free(&l);
}

static void h_token_del(struct cx_http_req *req, void *ctx)
{
  static const char *const allowed[] = {"id", NULL};
  struct cx_admin *a = ctx;
  json_t *body = cx_http_req_json(req);
  struct cx__admin_who who;
  struct cx_token t;
  char err[CX_ERR_LEN] = "", what[64];
  int64_t id = 0;

  if (cx__admin_auth(a, req, CX_ROLE_VIEWER, &who) < 0 ||
      cx__admin_json_only(req, body, allowed) < 0 ||
      need_id(req, body, &id) < 0)
    return;
  snprintf(what, sizeof what, "token %lld", (long long)id);
  int rc = cx_store_token_find(a->store, id, &t, err);
  if (rc == 0 && t.user_id != who.user_id && who.role < CX_ROLE_ADMIN) {
    cx_http_reply_error(req, CX_HTTP_FORBIDDEN, "id",
                        "role %s may only revoke its own tokens (needs admin)",
                        cx__admin_role_name(who.role));
    return;
  }
  if (rc == 0 && (rc = cx_store_tx_begin(a->store, err)) == 0) {
    struct cx__actor actor = cx__admin_actor(req, &who);
    json_t *before = json_pack("{s:I, s:s}", "user_id", (json_int_t)t.user_id,
                               "kind", t.kind);
    rc = cx_store_token_delete_id(a->store, id, err);
    rc = cx__admin_audit_commit(a, rc, &actor, "token.revoke", what, before,
                                NULL, err);
    json_decref(before);
  }
  /* After the delete, so no request can refill the cache with it. */
  cx__admin_auth_flush(a);
  if (rc != 0) {
    cx__admin_reply_backend_error(req, rc, what, err);
    return;
  }
  CX_LOG(CX_LOG_INFO, "admin",
         "token %lld (%s of user %lld) revoked by user "
         "%lld",
         (long long)id, t.kind, (long long)t.user_id, (long long)who.user_id);
  cx_http_reply_ok(req, json_pack("{s:I}", "deleted", (json_int_t)1));
}

int cx__admin_routes_users(struct cx_admin *a)
{
  static const struct cx__admin_route routes[] = {
      {"POST", "/login", h_login},
      {"POST", "/logout", h_logout},
      {"POST", "/user/add", h_user_add},
      {"POST", "/user/del", h_user_del},
      {"POST", "/user/update", h_user_update},
      {"POST", "/user/change_pw", h_user_change_pw},
      {"GET", "/user/find", h_user_find},
      {"POST", "/user/search", h_user_search},
      {"POST", "/user/token/search", h_token_search},
      {"POST", "/user/token/del", h_token_del},
  };
  pthread_once(&g_once, init_once);
  return cx__admin_register(a, routes, CX_ARRAY_LEN(routes));
}

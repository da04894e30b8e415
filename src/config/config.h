/*
 * config: every Cronix setting, where it comes from, and its documentation.
 *
 * Settings come from, in rising precedence: built-in defaults, a config file
 * (INI: `key = value` under `[section]`; `notify.email.smtp_url` is
 * `smtp_url = ...` under `[notify.email]`; comments are lines starting with
 * # or ;, and ` #` / ` ;` after a value; "..." or '...' quote a value
 * literally), environment variables
 * CRONIX_<SECTION>_<KEY> (dots become underscores, upper case:
 * CRONIX_NOTIFY_EMAIL_SMTP_URL), and command-line flags for the common ones
 * (the cli calls cx_config_set for those). One table in config.c lists
 * every setting with its type, default, bounds and one line of doc; the
 * sample file cronix.conf.sample is checked against it by a test.
 *
 * A struct cx_config is plain data: fill it once at start-up, then share it
 * read-only between threads.
 */
#ifndef CX_CONFIG_H
#define CX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

struct cx_config {
  /* [server] */
  char *listen;     /* admin HTTP address, "127.0.0.1:8089" */
  char *data_dir;   /* SQLite file, node id, spool, initial token */
  char *public_url; /* base URL for links in alerts; "" = none */
  int64_t http_threads;
  int64_t session_ttl;       /* seconds a login session lasts */
  int64_t auth_cache_ttl;    /* seconds a checked token is trusted; 0 = off */
  int64_t initial_token_ttl; /* seconds the first admin's token lasts */
  int metrics_public;        /* 1 = /metrics needs no token */
  char *tls_cert;            /* PEM file; "" = plain HTTP (both or neither) */
  char *tls_key;
  char *web_root; /* console assets directory; "" = the built-in copy */
  /* [store] */
  char *store_url; /* "" = sqlite://<data_dir>/cronix.db */
  /* [etcd] */
  char *etcd_endpoints; /* "" = in-process (standalone only) */
  char *etcd_prefix;
  char *etcd_username, *etcd_password;
  char *etcd_ca, *etcd_cert, *etcd_key;
  /* [node] */
  int64_t node_ttl; /* seconds */
  int64_t node_max_concurrent;
  char *node_shell;
  int64_t node_output_limit;   /* bytes */
  int64_t node_retry_base;     /* seconds */
  int64_t node_kill_grace;     /* seconds between SIGTERM and SIGKILL */
  int64_t node_shutdown_grace; /* seconds runs may take to finish on stop */
  char *node_workdir;          /* default workdir of cmd jobs; "" = "/" */
  char *node_run_as;           /* "" = cronix (root) / the node's user */
  char *node_run_as_allow;     /* comma list */
  char *node_cgroup;           /* auto | off | a cgroup directory */
  char *node_labels;           /* "zone=a, role=db" (cx_labels_parse) */
  char *node_listen;           /* live-output listener "host:port"; "" = none */
  /* [cluster] */
  char *cluster_secret; /* shared by admins and nodes (node.listen) */
  /* [system] */
  int cmd_auto_allocation;
  char *default_timezone; /* "" = the host's zone */
  int64_t log_retention_days;
  int64_t audit_retention_days;
  /* [log] */
  char *log_level;
  /* [notify.email] */
  char *email_smtp_url, *email_username, *email_password, *email_from;
  char *email_starttls; /* try | required | off */
  int email_tls_verify;
  char *email_ca_file;
  /* [notify.feishu] */
  char *feishu_webhook_url, *feishu_secret;
  /* [notify] */
  int64_t notify_timeout; /* seconds per attempt */
  int64_t notify_retries;
  int64_t notify_queue_size;
};

enum cx_config_type {
  CX_CONFIG_STRING,
  CX_CONFIG_INT,  /* plain integer, or with a unit when the setting has one */
  CX_CONFIG_BOOL, /* true/false, yes/no, on/off, 1/0 */
};

/* How `config show` (cx_config_write) prints a setting's value. */
enum cx_config_show {
  CX_CONFIG_PLAIN = 0,
  CX_CONFIG_HIDDEN,  /* a password or secret: "(set, hidden)" */
  CX_CONFIG_URL,     /* a URL: the password of the user info masked */
  CX_CONFIG_URLS,    /* a comma list of URLs, each masked so */
  CX_CONFIG_WEBHOOK, /* a URL whose path or query holds a token: masked */
};

/* One row of the settings table (read-only). */
struct cx_config_setting {
  const char *name; /* "notify.email.smtp_url" */
  enum cx_config_type type;
  size_t offset;    /* into struct cx_config */
  const char *def;  /* default, as text */
  int64_t min, max; /* for ints */
  const char
      *unit; /* "s" (accepts s/m/h suffixes), "bytes" (k/KiB/M/MiB), or NULL */
  const char *doc;
  enum cx_config_show show;
};

/* Sets every setting to its default. Returns 0 or -ENOMEM. */
int cx_config_init(struct cx_config *c);
/* Frees the strings; the struct may be init'ed again. Accepts NULL. */
void cx_config_free(struct cx_config *c);

/* Sets one setting by name from text, validating it. Returns 0,
 * CX_ENOTFOUND (unknown name) or CX_EPARSE, with a message naming the
 * setting in err. */
int cx_config_set(struct cx_config *c, const char *name, const char *value,
                  char *err);
/* Reads an INI file (≤ 1 MiB). Unknown sections or keys are errors (a typo
 * must not silently fall back to a default). Messages say "FILE:LINE: ...". */
int cx_config_load_file(struct cx_config *c, const char *path, char *err);
/* Applies every CRONIX_<SECTION>_<KEY> variable present in the
 * environment. */
int cx_config_load_env(struct cx_config *c, char *err);
/* Fills settings derived from others (store_url from data_dir) and checks
 * cross-setting rules. Call after all sources are applied. */
int cx_config_finish(struct cx_config *c, char *err);

/* The settings table, for docs and tests. */
const struct cx_config_setting *cx_config_settings(size_t *count);
/* The environment variable name of a setting: "CRONIX_NODE_TTL". */
void cx_config_env_name(const char *name, char *buf, size_t len);

/* Writes the documented sample file (every setting at its default). */
void cx_config_write_sample(FILE *f);
/* Writes the effective settings as INI that loads back to the same values
 * (strings quoted where needed), except secrets: passwords and signing
 * secrets show as "(set, hidden)", URLs with their password masked, and
 * webhook URLs with their token masked (the table's `show`). */
void cx_config_write(const struct cx_config *c, FILE *f);

#endif

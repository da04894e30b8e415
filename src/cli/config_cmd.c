/*
 * Loading the configuration for a command (defaults < --config FILE <
 * CRONIX_* environment < flags), and `cronix config sample|show`.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "util/util.h"

/* Flags every command that loads the configuration takes, and the setting
 * each one sets. `http` flags mean something only to a command that serves
 * the API (or shows the settings); the others refuse them rather than
 * accept and ignore them. */
static const struct {
  const char *flag, *setting, *help;
  int http;
} flags[] = {
    {"--listen", "server.listen",
     "  --listen HOST:PORT  server.listen (admin HTTP address)\n", 1},
    {"--web-root", "server.web_root",
     "  --web-root DIR      server.web_root (console assets, for "
     "development)\n",
     1},
    {"--data-dir", "server.data_dir", "  --data-dir DIR      server.data_dir\n",
     0},
    {"--store", "store.url",
     "  --store URL         store.url (sqlite://PATH or mysql://...)\n", 0},
    {"--etcd", "etcd.endpoints",
     "  --etcd URLS         etcd.endpoints (comma list)\n", 0},
    {"--log-level", "log.level",
     "  --log-level LEVEL   log.level (debug, info, warn, error)\n", 0},
};

/* Commands that serve no HTTP: `cronix node` and `cronix user add`. */
static int serves_no_http(const char *cmd)
{
  return strcmp(cmd, "node") == 0 || strcmp(cmd, "user add") == 0;
}

void cx_cli_config_flags_print(FILE *f, const char *cmd)
{
  fputs("  --config FILE       read settings from an INI file\n", f);
  for (size_t k = 0; k < CX_ARRAY_LEN(flags); k++)
    if (!flags[k].http || !serves_no_http(cmd))
      fputs(flags[k].help, f);
  if (strcmp(cmd, "node") == 0)
    fputs("  --listen HOST:PORT  node.listen (live output for the admins)\n",
          f);
  fputs("  --set NAME=VALUE    any setting, e.g. --set node.ttl=10s\n", f);
}

int cx_cli_load_config(int argc, char **argv, struct cx_config *cfg)
{
  char err[CX_ERR_LEN];
  const char *file = NULL;

  if (cx_config_init(cfg) != 0) {
    fprintf(stderr, "cronix: out of memory\n");
    return 1;
  }
  /* The file first, wherever --config stands, so flags win over it. */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "cronix %s: --config needs a value\n", argv[0]);
        goto fail;
      }
      file = argv[++i];
    }
  }
  if (file != NULL && cx_config_load_file(cfg, file, err) != 0) {
    fprintf(stderr, "cronix %s: %s\n", argv[0], err);
    goto fail;
  }
  if (cx_config_load_env(cfg, err) != 0) {
    fprintf(stderr, "cronix %s: %s\n", argv[0], err);
    goto fail;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *setting = NULL;
    if (strcmp(a, "--config") == 0) {
      i++;
      continue;
    }
    for (size_t k = 0; k < CX_ARRAY_LEN(flags); k++) {
      if (strcmp(a, flags[k].flag) != 0)
        continue;
      if (flags[k].http && strcmp(argv[0], "node") == 0 &&
          strcmp(a, "--listen") == 0) {
        setting = "node.listen"; /* the node's own listener (live output) */
        break;
      }
      if (flags[k].http && serves_no_http(argv[0])) {
        fprintf(stderr,
                "cronix %s: %s: this command serves no HTTP (%s is the "
                "admin's address)\n",
                argv[0], a, flags[k].setting);
        goto fail;
      }
      setting = flags[k].setting;
    }
    if (setting == NULL && strcmp(a, "--set") != 0) {
      fprintf(stderr, "cronix %s: unknown option '%s' (see --help)\n", argv[0],
              a);
      goto fail;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "cronix %s: %s needs a value\n", argv[0], a);
      goto fail;
    }
    const char *value = argv[++i];
    char name[128];
    if (setting == NULL) {
      const char *eq = strchr(value, '=');
      if (eq == NULL || (size_t)(eq - value) >= sizeof name) {
        fprintf(stderr, "cronix %s: --set takes NAME=VALUE, got '%s'\n",
                argv[0], value);
        goto fail;
      }
      snprintf(name, sizeof name, "%.*s", (int)(eq - value), value);
      setting = name;
      value = eq + 1;
    }
    if (cx_config_set(cfg, setting, value, err) != 0) {
      fprintf(stderr, "cronix %s: %s: %s\n", argv[0], a, err);
      goto fail;
    }
  }
  if (cx_config_finish(cfg, err) != 0) {
    fprintf(stderr, "cronix %s: %s\n", argv[0], err);
    goto fail;
  }
  return 0;
fail:
  cx_config_free(cfg);
  return 2;
}

#define MAX_SHOW_ARGS 64

static void config_usage(FILE *f)
{
  fputs("usage: cronix config sample     print every setting, documented\n"
        "       cronix config show [OPTIONS]\n"
        "                           print the effective settings (from the\n"
        "                           defaults, --config FILE, CRONIX_*\n"
        "                           variables and the flags), secrets hidden\n"
        "\noptions of show:\n",
        f);
  cx_cli_config_flags_print(f, "config show");
}

int cx_cli_config(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  struct cx_config cfg;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      config_usage(stdout);
      return 0;
    }
  }
  if (strcmp(sub, "sample") == 0 && argc == 2) {
    cx_config_write_sample(stdout);
    return 0;
  }
  if (strcmp(sub, "show") == 0 && argc - 1 <= MAX_SHOW_ARGS) {
    /* argv[0] names the command in cx_cli_load_config's messages. */
    char *args[MAX_SHOW_ARGS + 1];
    args[0] = "config show";
    for (int i = 2; i < argc; i++)
      args[i - 1] = argv[i];
    args[argc - 1] = NULL;
    int rc = cx_cli_load_config(argc - 1, args, &cfg);
    if (rc != 0)
      return rc;
    cx_config_write(&cfg, stdout);
    cx_config_free(&cfg);
    return 0;
  }
  if (strcmp(sub, "show") == 0)
    fprintf(stderr, "cronix config show: more than %d arguments\n",
            MAX_SHOW_ARGS);
  else if (strcmp(sub, "sample") == 0)
    fprintf(stderr, "cronix config sample: takes no arguments\n");
  else if (sub[0] != '\0')
    fprintf(stderr, "cronix config: unknown subcommand '%s'\n", sub);
  config_usage(stderr);
  return 2;
}

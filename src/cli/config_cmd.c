/*
 * Loading the configuration for a command (defaults < --config FILE <
 * CRONIX_* environment < flags), and `cronix config sample|show`.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "util/util.h"

/* Flags every daemon command takes, and the setting each one sets. */
static const struct {
  const char *flag, *setting;
} flags[] = {
    {"--listen", "server.listen"}, {"--data-dir", "server.data_dir"},
    {"--store", "store.url"},      {"--etcd", "etcd.endpoints"},
    {"--log-level", "log.level"},
};

const char cx_cli_config_flags_help[] =
    "  --config FILE       read settings from an INI file\n"
    "  --listen HOST:PORT  server.listen (admin HTTP address)\n"
    "  --data-dir DIR      server.data_dir\n"
    "  --store URL         store.url (sqlite://PATH or mysql://...)\n"
    "  --etcd URLS         etcd.endpoints (comma list)\n"
    "  --log-level LEVEL   log.level (debug, info, warn, error)\n"
    "  --set NAME=VALUE    any setting, e.g. --set node.ttl=10s\n";

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
    for (size_t k = 0; k < CX_ARRAY_LEN(flags); k++)
      if (strcmp(a, flags[k].flag) == 0)
        setting = flags[k].setting;
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

int cx_cli_config(int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  struct cx_config cfg;

  if (strcmp(sub, "sample") == 0 && argc == 2) {
    cx_config_write_sample(stdout);
    return 0;
  }
  if (strcmp(sub, "show") == 0) {
    int rc = cx_cli_load_config(argc - 1, argv + 1, &cfg);
    if (rc != 0)
      return rc;
    cx_config_write(&cfg, stdout);
    cx_config_free(&cfg);
    return 0;
  }
  printf("usage: cronix config sample     print every setting, documented\n"
         "       cronix config show [OPTIONS]\n"
         "                           print the effective settings\n\n%s",
         cx_cli_config_flags_help);
  return strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ? 0 : 2;
}

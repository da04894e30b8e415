/*
 * `cronix node ls`, `cronix node rm UUID...` and `cronix node drain|undrain
 * UUID...`: the nodes through the API
 * (`cronix node` alone still runs a node: src/cli/node_cmd.c).
 */
#include <string.h>

#include "cli/remote-int.h"
#include "util/util.h"

static const char node_usage[] =
    "usage: cronix node ls [--state alive|dead] [-o wide|json]\n"
    "       cronix node rm UUID...     forget dead nodes\n"
    "       cronix node drain UUID...  no new fires or jobs (rolling "
    "upgrades)\n"
    "       cronix node undrain UUID...\n"
    "       cronix node [OPTIONS]      run a node (cronix node --help)\n";

static int node_ls(struct rc_ctx *c, int argc, char **argv)
{
  const char *state = NULL;
  const struct rc_opt opts[] = {{"--state", NULL, RC_VALUE, &state},
                                {NULL, NULL, 0, NULL}};
  json_t *list = NULL;
  int rc = rc_parse(c, argc, argv, 1, opts, NULL, node_usage);
  if (rc != 0)
    return rc;
  int status = 0;
  if (state != NULL) {
    status = strcmp(state, "alive") == 0  ? 1
             : strcmp(state, "dead") == 0 ? 2
                                          : -1;
    if (status < 0)
      return rc_fail(c, 2, "--state must be alive or dead");
  }
  json_t *q = json_pack("{s:i}", "status", status);
  rc = rc_list_all(c, "/node/search", q, &list);
  json_decref(q);
  if (rc != 0)
    return rc;
  if (rc_json_out(c, list))
    return 0;
  int wide = c->output == RC_OUT_WIDE;
  struct rc_table tb = {
      .ncol = wide ? 9 : 7,
      .head = {"UUID", "HOSTNAME", "IP", "STATE", "JOBS", "RUNNING", "SINCE",
               "VERSION", "PID"},
      .shrink = {0, 1, 0, 0, 0, 0, 0, 0, 0},
  };
  int64_t now = cx_wall_s();
  size_t i;
  json_t *n;
  json_array_foreach(list, i, n)
  {
    char jobs[24], running[24], since[48], pid[24];
    enum rc_color colors[9] = {0};
    int alive = json_is_true(json_object_get(n, "alive"));
    int64_t t = rc_int(n, alive ? "up" : "down");
    snprintf(jobs, sizeof jobs, "%lld", (long long)rc_int(n, "job_count"));
    snprintf(running, sizeof running, "%lld", (long long)rc_int(n, "running"));
    snprintf(pid, sizeof pid, "%lld", (long long)rc_int(n, "pid"));
    if (t > 0)
      rc_age(t, now, since, sizeof since);
    else
      snprintf(since, sizeof since, "-");
    colors[3] = alive ? RC_GREEN : RC_RED;
    const char *cells[9] = {rc_str(n, "uuid"),
                            rc_str(n, "hostname"),
                            rc_str(n, "ip"),
                            alive ? "alive" : "dead",
                            jobs,
                            running,
                            since,
                            rc_str(n, "version"),
                            pid};
    rc_table_row(&tb, cells, colors);
  }
  rc_table_print(&tb, c);
  json_decref(list);
  return 0;
}

/* rm, drain, undrain: route for each UUID, printing "<done> node UUID". */
static int node_each(struct rc_ctx *c, int argc, char **argv, const char *route,
                     const char *done)
{
  struct rc_list pos = {0};
  int rc = rc_parse(c, argc, argv, 1, NULL, &pos, node_usage);
  if (rc != 0)
    return rc;
  if (pos.n == 0)
    return rc_fail(c, 2, "which nodes? give their UUIDs");
  for (int i = 0; i < pos.n && rc == 0; i++) {
    rc = rc_post(c, route, json_pack("{s:s}", "uuid", pos.v[i]), NULL);
    if (rc == 0)
      printf("%s node %s\n", done, pos.v[i]);
  }
  return rc;
}

int rc_node_remote(int argc, char **argv)
{
  char cmd[64];
  snprintf(cmd, sizeof cmd, "node %.40s", argv[1]);
  struct rc_ctx c = {.cmd = cmd};
  int rc = strcmp(argv[1], "ls") == 0 ? node_ls(&c, argc - 1, argv + 1)
           : strcmp(argv[1], "drain") == 0
               ? node_each(&c, argc - 1, argv + 1, "/node/drain", "drained")
           : strcmp(argv[1], "undrain") == 0
               ? node_each(&c, argc - 1, argv + 1, "/node/undrain", "undrained")
               : node_each(&c, argc - 1, argv + 1, "/node/del", "removed");
  rc_close(&c);
  return rc == RC_HELP ? 0 : rc;
}

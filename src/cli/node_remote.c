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
    "                                  STATE: alive, alive/draining (runs\n"
    "                                  still going), alive/drained, dead\n"
    "       cronix node rm UUID...     forget dead nodes\n"
    "       cronix node drain UUID...  no new fires or jobs (rolling "
    "upgrades)\n"
    "       cronix node undrain UUID...\n"
    "       cronix node [OPTIONS]      run a node (cronix node --help)\n";

/* "k=v,k2=v2" of a node's labels ("-" when none). */
static void labels_of(const json_t *n, char *buf, size_t cap)
{
  size_t len = 0;
  const char *k;
  json_t *v;
  buf[0] = '\0';
  json_object_foreach(json_object_get(n, "labels"), k, v)
  {
    int w = snprintf(buf + len, cap - len, "%s%s=%s", len ? "," : "", k,
                     json_string_value(v) ? json_string_value(v) : "");
    if (w < 0 || (size_t)w >= cap - len) {
      buf[len] = '\0';
      break;
    }
    len += (size_t)w;
  }
  if (len == 0)
    snprintf(buf, cap, "-");
}

static void node_row(struct rc_table *tb, const json_t *n, void *arg)
{
  const int64_t *now = arg;
  char jobs[24], running[24], since[48], pid[24], state[48], labels[1024];
  enum rc_color colors[10] = {0};
  int alive = json_is_true(json_object_get(n, "alive"));
  const char *drain = rc_str(n, "drain");
  int64_t t = rc_int(n, alive ? "up" : "down");
  snprintf(jobs, sizeof jobs, "%lld", (long long)rc_int(n, "job_count"));
  snprintf(running, sizeof running, "%lld", (long long)rc_int(n, "running"));
  snprintf(pid, sizeof pid, "%lld", (long long)rc_int(n, "pid"));
  if (t > 0)
    rc_age(t, *now, since, sizeof since);
  else
    snprintf(since, sizeof since, "-");
  /* alive, alive/draining (runs still going), alive/drained, dead */
  snprintf(state, sizeof state, "%s%s%s", alive ? "alive" : "dead",
           drain[0] ? "/" : "", drain);
  colors[3] = !alive ? RC_RED : drain[0] ? RC_YELLOW : RC_GREEN;
  labels_of(n, labels, sizeof labels);
  const char *cells[10] = {rc_str(n, "uuid"),
                           rc_str(n, "hostname"),
                           rc_str(n, "ip"),
                           state,
                           jobs,
                           running,
                           since,
                           labels,
                           rc_str(n, "version"),
                           pid};
  rc_table_row(tb, cells, colors);
}

static int node_ls(struct rc_ctx *c, int argc, char **argv)
{
  const char *state = NULL;
  const struct rc_opt opts[] = {{"--state", NULL, RC_VALUE, &state},
                                {NULL, NULL, 0, NULL}};
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
  struct rc_table tb = {
      .ncol = c->output == RC_OUT_WIDE ? 10 : 8,
      .head = {"UUID", "HOSTNAME", "IP", "STATE", "JOBS", "RUNNING", "SINCE",
               "LABELS", "VERSION", "PID"},
      .shrink = {0, 1, 0, 0, 0, 0, 0, 1, 0, 0},
  };
  int64_t now = cx_wall_s();
  json_t *q = json_pack("{s:i}", "status", status);
  rc = rc_list_print(c, "/node/search", q, &tb, node_row, &now);
  json_decref(q);
  return rc;
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

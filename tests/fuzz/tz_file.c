/*
 * libFuzzer target: TZif files. The input bytes are written as a zone file
 * under a private TZDIR and loaded with cx_tz_get. A load must either fail
 * with CX_EPARSE and a message, or give a zone whose periods are
 * consistent at instants derived from the input: each contains its
 * instant, carries the offset cx_tz_offset reports, is bounded by real
 * offset changes, and RFC 3339 text for the instant parses back to it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cron/cron.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[128];

static void remove_dir(void)
{
  unlink(path);
  snprintf(path, sizeof path, "%s/Fuzz", dir);
  rmdir(path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  snprintf(dir, sizeof dir, "/tmp/cx-fuzz-tz-XXXXXX");
  if (mkdtemp(dir) == NULL)
    abort();
  snprintf(path, sizeof path, "%s/Fuzz", dir);
  if (mkdir(path, 0700) != 0)
    abort();
  snprintf(path, sizeof path, "%s/Fuzz/Zone", dir);
  setenv("TZDIR", dir, 1);
  atexit(remove_dir);
  return 0;
}

static void check_at(const struct cx_tz *z, int64_t t)
{
  struct cx_tz_period p;
  cx_tz_period_at(z, t, &p);
  if (!(p.start <= t && t < p.end) || p.offset != cx_tz_offset(z, t) ||
      p.offset <= -86400 || p.offset >= 86400 ||
      memchr(p.abbr, '\0', sizeof p.abbr) == NULL)
    abort();
  if (p.end != INT64_MAX && cx_tz_offset(z, p.end) == p.offset)
    abort();
  if (p.start != INT64_MIN && cx_tz_offset(z, p.start - 1) == p.offset)
    abort();
  char buf[32];
  int64_t back;
  if (cx_time_format(t, z, buf, sizeof buf) > 0 &&
      (cx_time_parse(buf, &back) != 0 || back != t))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  const struct cx_tz *z = NULL;
  char err[CX_ERR_LEN] = "";
  int rc = cx_tz_get("Fuzz/Zone", &z, err);
  if (rc != 0) {
    if (rc != CX_EPARSE || z != NULL || err[0] == '\0')
      abort();
    return 0;
  }
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 1099511628211ULL;
  static const int64_t fixed[] = {
      INT64_MIN,  -1000000000000, -1,           0, 1800000000,
      4102444800, 10000000000000, INT64_MAX - 1};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    check_at(z, fixed[i]);
  for (int i = 0; i < 8; i++) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    check_at(z, (int64_t)(h >> 24) - (1LL << 39)); /* about +-17000 years */
  }
  cx_tz_cleanup();
  return 0;
}

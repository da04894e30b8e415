/*
 * libFuzzer target: cron expressions. The input bytes are an expression
 * (cut at the first NUL); it is parsed in a couple of zones and, when it
 * parses, cx_cron_next is called repeatedly from a start instant derived
 * from the input: results must be strictly increasing and only CX_ENEVER
 * may end the chain. Parse failures must come with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const zones[] = {"UTC", "America/New_York",
                                    "Australia/Lord_Howe"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char buf[2048];
  if (size >= sizeof buf)
    size = sizeof buf - 1;
  memcpy(buf, data, size);
  buf[size] = '\0';
  /* A start instant from the input: 1970..~2106 plus a second offset. */
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 1099511628211ULL;
  int64_t start = (int64_t)(h % 4300000000ULL);
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    struct cx_cron_opts o = {zones[z], (int64_t)(h >> 20) - (1LL << 42)};
    struct cx_cron *c = NULL;
    char err[CX_ERR_LEN] = "";
    int rc = cx_cron_parse(buf, &o, &c, err);
    if (rc != 0) {
      if (c != NULL || err[0] == '\0')
        abort();
      continue;
    }
    int64_t t = start;
    for (int i = 0; i < 6; i++) {
      int64_t n = 0;
      rc = cx_cron_next(c, t, &n);
      if (rc == CX_ENEVER)
        break;
      if (rc != 0 || n <= t)
        abort();
      t = n;
    }
    cx_cron_free(c);
  }
  return 0;
}

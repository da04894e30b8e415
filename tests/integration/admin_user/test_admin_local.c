/* admin routes (cases.inc) on SQLite + the in-process coordination
 * backend: what `cronix standalone` runs. */
#include <stdio.h>

#include "support/test.h"

#define CASE(name) TEST_TIMEOUT(admin_local_##name, 60)

static void backend_start(char *store_url, size_t n1, char *endpoints,
                          size_t n2);

#include "cases.inc"

static void backend_start(char *store_url, size_t n1, char *endpoints,
                          size_t n2)
{
  snprintf(store_url, n1, "sqlite://%s/cronix.db", cx_test_tmpdir());
  snprintf(endpoints, n2, "%s", "");
}

/* What the cli suite's files share. */
#ifndef CX_TEST_CLI_H
#define CX_TEST_CLI_H

#include "support/run.h"

/* The argv of `cronix ARGS...`, for cx_test_run. */
#define CRONIX(...)                                                            \
  (char *const[])                                                              \
  {                                                                            \
    (char *)cx_test_cronix_bin(), __VA_ARGS__, NULL                            \
  }

/* Runs argv and checks its exit status and that stdout and stderr contain
 * out_has and err_has (NULL: anything). */
void cli_expect(char *const argv[], int status, const char *out_has,
                const char *err_has);

#endif

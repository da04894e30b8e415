/*
 * Running a program from a test and capturing what it printed.
 */
#ifndef CX_TEST_RUN_H
#define CX_TEST_RUN_H

#include <stddef.h>

struct cx_test_output {
  int status; /* exit code, or 128 + signal, or -1 if it could not run */
  char *out;  /* stdout, NUL-terminated (free with cx_test_output_free) */
  char *err;  /* stderr, NUL-terminated */
  size_t out_len, err_len;
};

/* Runs argv[0] (a path) with argv, stdin from /dev/null, waiting at most
 * timeout_s seconds (then SIGKILL, status 128+9). Fails the test if the
 * program cannot be started. */
void cx_test_run(char *const argv[], int timeout_s, struct cx_test_output *o);
void cx_test_output_free(struct cx_test_output *o);
/* Path of the cronix binary under test: $CX_CRONIX_BIN, else the one next
 * to the suite binaries' directory (BUILD/cronix). */
const char *cx_test_cronix_bin(void);

#endif

/*
 * The e2e cases (cases.inc) on one real `cronix standalone` process.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "util/util.h"

#define E2E_ENV E2E_STANDALONE
#define E2E_NAME standalone
#include "cases.inc"

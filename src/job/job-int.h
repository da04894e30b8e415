/*
 * job internals: the field table record.c keeps and job.c reads. Not for
 * use outside src/job.
 */
#ifndef CX_JOB_INT_H
#define CX_JOB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "job/job.h"

enum cx__job_kind {
  CX__K_INT,     /* int field within [min, max] */
  CX__K_STR,     /* string of at most text_max bytes (characters: chars) */
  CX__K_ENUM,    /* string from a fixed list (choices) */
  CX__K_BOOL,    /* true/false (or 0/1) into an int */
  CX__K_IDS,     /* array of at most max ids in [min, ...], kept as JSON */
  CX__K_MAP,     /* object of at most max string -> string, kept as JSON */
  CX__K_ID64,    /* int64: id, created, updated */
  CX__K_IGNORED, /* read-only reply fields accepted and dropped */
};

/* One field of struct cx_job: its JSON (= column) name, kind, bounds and
 * where it lives, so decoding, encoding, copying, freeing and the length
 * limits cannot drift apart. */
struct cx__job_field {
  const char *name;
  enum cx__job_kind kind;
  size_t offset;
  int64_t min, max;           /* K_INT, K_ID64: range; K_IDS, K_MAP: entries */
  size_t text_max;            /* text kinds: longest value (see chars) */
  int chars;                  /* text_max counts UTF-8 characters */
  const char *const *choices; /* K_ENUM; the first is the default */
};

extern const struct cx__job_field cx__job_fields[];
extern const size_t cx__job_nfields;

/* 1 for the kinds held as a char * (text). */
int cx__job_is_text(const struct cx__job_field *f);
/* 1 when v (len bytes) is within f's text limit. */
int cx__job_fits(const struct cx__job_field *f, const char *v, size_t len);
/* Writes "<name>: longer than N bytes|characters" into err (may be NULL)
 * and the name into field (may be NULL). */
void cx__job_too_long(const struct cx__job_field *f, char *field, char *err);

#endif

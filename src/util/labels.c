/*
 * Node labels ("zone=a, role=db") and job node selectors ("zone=a,
 * role!=db, zone in (a,b)"): one grammar for the node's setting, the
 * job's field and the admin's placement, so what a node advertises and
 * what a job asks for are read the same way everywhere.
 *
 * A selector is checked and evaluated by one walk over its text, so a
 * selector that is stored is matched exactly as it was validated.
 * `key!=v` also matches a node without the key (as in Kubernetes): "not
 * on a db node" includes the nodes with no role at all.
 */
#include "util.h"

#include <ctype.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

static int name_char(char c)
{
  return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* After an item: past its ',' (and spaces), at the end, or NULL. */
static const char *next_item(const char *p, const char *what, char *err)
{
  p = skip_ws(p);
  if (*p == ',')
    return skip_ws(p + 1);
  if (*p != '\0') {
    cx_err_set(err, "expected ',' between %s at '%.16s'", what, p);
    return NULL;
  }
  return p;
}

/* A key or value at p into out (CX_LABEL_MAX + 1): the end, or NULL. */
static const char *read_name(const char *p, char *out, const char *what,
                             char *err)
{
  size_t n = 0;
  while (name_char(p[n]))
    n++;
  if (n == 0 || n > CX_LABEL_MAX) {
    cx_err_set(err,
               "%s: 1..%d of letters, digits, '.', '_', '-' expected at "
               "'%.16s'",
               what, CX_LABEL_MAX, p);
    return NULL;
  }
  memcpy(out, p, n);
  out[n] = '\0';
  return p + n;
}

int cx_labels_parse(const char *text, struct cx_labels *out, char *err)
{
  out->n = 0;
  if (strlen(text) > CX_LABELS_TEXT) {
    cx_err_set(err, "longer than %d bytes", CX_LABELS_TEXT);
    return CX_EPARSE;
  }
  const char *p = skip_ws(text);
  while (*p != '\0') {
    if (out->n == CX_LABELS_MAX) {
      cx_err_set(err, "more than %d labels", CX_LABELS_MAX);
      return CX_EPARSE;
    }
    struct cx_label *l = &out->v[out->n];
    if ((p = read_name(p, l->key, "label key", err)) == NULL)
      return CX_EPARSE;
    p = skip_ws(p);
    if (*p != '=') {
      cx_err_set(err, "label '%s': expected key=value", l->key);
      return CX_EPARSE;
    }
    if ((p = read_name(skip_ws(p + 1), l->value, "label value", err)) == NULL)
      return CX_EPARSE;
    if (cx_labels_get(out, l->key) != NULL) {
      cx_err_set(err, "label '%s' given twice", l->key);
      return CX_EPARSE;
    }
    out->n++;
    if ((p = next_item(p, "labels", err)) == NULL)
      return CX_EPARSE;
  }
  return 0;
}

const char *cx_labels_get(const struct cx_labels *l, const char *key)
{
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->v[i].key, key) == 0)
      return l->v[i].value;
  return NULL;
}

/* One term's operator and values: `= v`, `!= v` or `in (v, ...)`. With
 * have = the node's value of the key (NULL: the node has none), *ok says
 * whether it matches. The end of the term, or NULL. */
static const char *read_op(const char *p, const char *have, int *ok, char *err)
{
  char v[CX_LABEL_MAX + 1];
  int ne = p[0] == '!' && p[1] == '=';
  if (ne || p[0] == '=') {
    if ((p = read_name(skip_ws(p + (ne ? 2 : 1)), v, "value", err)) == NULL)
      return NULL;
    int eq = have != NULL && strcmp(have, v) == 0;
    *ok = ne ? !eq : eq;
    return p;
  }
  if (!(p[0] == 'i' && p[1] == 'n' && !name_char(p[2])) ||
      *(p = skip_ws(p + 2)) != '(') {
    cx_err_set(err, "expected '=', '!=' or 'in (...)' at '%.16s'", p);
    return NULL;
  }
  *ok = 0;
  for (int n = 0;; n++) {
    if (n == CX_LABELS_MAX) {
      cx_err_set(err, "more than %d values in 'in (...)'", CX_LABELS_MAX);
      return NULL;
    }
    if ((p = read_name(skip_ws(p + 1), v, "value", err)) == NULL)
      return NULL;
    *ok |= have != NULL && strcmp(have, v) == 0;
    p = skip_ws(p);
    if (*p == ')')
      return p + 1;
    if (*p != ',') {
      cx_err_set(err, "expected ',' or ')' at '%.16s'", p);
      return NULL;
    }
  }
}

/* Checks sel and, when l is given, evaluates it: 0 (with *match) or
 * CX_EPARSE. */
static int selector_walk(const char *sel, const struct cx_labels *l, int *match,
                         char *err)
{
  char key[CX_LABEL_MAX + 1];
  static const struct cx_labels none = {0};
  *match = 1;
  if (strlen(sel) > CX_LABELS_TEXT) {
    cx_err_set(err, "longer than %d bytes", CX_LABELS_TEXT);
    return CX_EPARSE;
  }
  const char *p = skip_ws(sel);
  for (int n = 0; *p != '\0'; n++) {
    int ok = 0;
    if (n == CX_LABELS_MAX) {
      cx_err_set(err, "more than %d terms", CX_LABELS_MAX);
      return CX_EPARSE;
    }
    if ((p = read_name(p, key, "key", err)) == NULL ||
        (p = read_op(skip_ws(p), cx_labels_get(l ? l : &none, key), &ok,
                     err)) == NULL)
      return CX_EPARSE;
    *match &= ok;
    if ((p = next_item(p, "terms", err)) == NULL)
      return CX_EPARSE;
  }
  return 0;
}

int cx_selector_check(const char *sel, char *err)
{
  int match;
  return selector_walk(sel, NULL, &match, err);
}

int cx_selector_match(const char *sel, const struct cx_labels *l)
{
  int match = 0;
  if (sel == NULL)
    return 1;
  return selector_walk(sel, l, &match, NULL) == 0 && match;
}

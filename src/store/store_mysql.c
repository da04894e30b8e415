#include "store/store-int.h"
static int my_open(struct cx_store *s, const struct cx__url *u, char *err)
{
  (void)s;
  (void)u;
  cx_err_set(err, "mysql: not yet");
  return CX_ENOTIMPL;
}
const struct cx_store_ops cx__store_mysql_ops = {
    .name = "mysql", .dialect = CX__MYSQL, .open = my_open};

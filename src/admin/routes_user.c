/* Placeholder: the user routes arrive in their own change. */
#include "admin/admin-int.h"

int cx__admin_routes_users(struct cx_admin *a)
{
  (void)a;
  return 0;
}

/* task_types.c — every task type boxd knows, registered in one place: the
 * daemon and the worker (main.c) and the lock-matrix test
 * (tests/unit/test-lock-matrix.c) see the same list. */
#include "apps/app_tasks.h"
#include "backups/backups.h"
#include "cli_common.h"
#include "services/proxy.h"
#include "services/service.h"
#include "tasks/task_type.h"
#include "update/update.h"

void boxd_register_task_types(void)
{
	task_types_register_builtin();
	services_register_task_types();
	apps_register_task_types();
	/* App tasks tell the proxy when its routes change (app_tasks.h). */
	app_tasks_set_routes_sync(proxy_routes_sync);
	backups_register_task_types();
	update_register_task_types();
}

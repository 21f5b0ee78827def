/* routes_hosts.c — GET /api/v1/hosts: the hosts sharing this store, alive
 * or gone by their heartbeat (sched/hosts.h). */
#include "api-internal.h"
#include "sched/hosts.h"

static void get_hosts(struct api_req *req)
{
	json_t *list;
	int r = hosts_list_json(req->store, api_host(req), &list);
	if (r < 0) {
		api_reply_store_error(req, r);
		return;
	}
	api_reply_json(req, 200,
		       json_pack("{s:o, s:s, s:I}", "hosts", list, "self", api_host(req), "leaseMs",
				 (json_int_t)HOST_LEASE_MS));
}

const struct api_route api_routes_hosts[] = {
	{ "GET", "/api/v1/hosts", get_hosts },
	{ NULL, NULL, NULL },
};

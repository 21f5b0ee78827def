/* engine_net.c — a container's address, read from its inspect reply
 * (engine.h, engine_container_address). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int copy(const char *ip, char *buf, size_t len)
{
	if (!ip || !*ip)
		return -ENOENT;
	if (strlen(ip) >= len)
		return -ENOSPC;
	snprintf(buf, len, "%s", ip);
	return 0;
}

int engine_container_address(const struct engine_container *c, char *buf, size_t len)
{
	json_t *ns = json_object_get(c ? c->priv_ : NULL, "NetworkSettings");
	int r = copy(json_string_value(json_object_get(ns, "IPAddress")), buf, len);
	if (r != -ENOENT)
		return r;
	/* The first network by name, so that the answer does not depend on
	 * the reply's key order. */
	json_t *nets = json_object_get(ns, "Networks");
	const char *key, *best = NULL, *ip = NULL;
	json_t *v;
	json_object_foreach(nets, key, v) {
		const char *a = json_string_value(json_object_get(v, "IPAddress"));
		if (a && *a && (!best || strcmp(key, best) < 0)) {
			best = key;
			ip = a;
		}
	}
	return copy(ip, buf, len);
}

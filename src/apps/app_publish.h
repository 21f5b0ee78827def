/* app_publish.h — what an app publishes: host ports and domains.
 *
 *	"ports":    [{"container": 8080, "host": 18080, "protocol": "tcp"}]
 *	"domains":  ["wiki.example.com"]
 *	"httpPort": 8080    the container port the domains are routed to (80)
 *
 * Ports are published by the engine on every host address (0.0.0.0 and
 * [::]): publishing a port is how an operator makes a non-HTTP service
 * (a game server, an MQTT broker) reachable from outside; a web app is
 * reached through its domains and the proxy service instead, which needs
 * no published port at all. Domains are served by the proxy service
 * (services/proxy.h) over HTTPS with certificates from ACME.
 *
 * Both are box-wide resources: a host port or a domain belongs to one app.
 * So they are checked against every other app, and stored in the app's row,
 * in the one write transaction that accepts the request
 * (app_publish_reserve), so that two requests cannot both take one; the
 * task that follows applies them (container ports, proxy routes). A
 * conflict is refused before anything changes, naming who holds it: another
 * app, or one of boxd's own services (the sftp port, the proxy's HTTP and
 * HTTPS ports, the API's TCP listener).
 *
 * Parsing is pure; reserve and conflicts read the store through the
 * caller's connection. Functions return 0 or a negative errno with a
 * message for the operator in err.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "common/config.h"
#include "engine/engine.h"
#include "store/store.h"

#define APP_PORTS_MAX 64
#define APP_DOMAINS_MAX 32

struct app_port {
	uint16_t container;
	uint16_t host;
	char protocol[4];     /* "tcp" or "udp" */
};

/* A "ports" value: an array of at most APP_PORTS_MAX objects with
 * "container" and "host" (1-65535) and an optional "protocol" ("tcp", the
 * default, or "udp"); no host port/protocol twice. *ret (malloc'ed, may be
 * NULL when *ret_n is 0) on success; -EINVAL with a message, -ENOMEM. */
int app_ports_parse(json_t *v, struct app_port **ret, size_t *ret_n, char *err, size_t errlen);

/* The canonical JSON text of ports (sorted keys, protocol filled in), as
 * stored in apps.ports; malloc'ed, NULL on ENOMEM. */
char *app_ports_format(const struct app_port *p, size_t n);

/* A host name the proxy may serve: 2..253 characters of lowercase letters,
 * digits, '-' and '.', at least two labels of 1..63 characters, none
 * starting or ending with '-', the last one not all digits (an IP address
 * is not a domain). No wildcard. */
bool app_domain_valid(const char *d);

/* A "domains" value: an array of at most APP_DOMAINS_MAX valid domains
 * (upper case is folded to lower case), none twice. *ret is the canonical
 * array (new reference); -EINVAL with a message, -ENOMEM. */
int app_domains_parse(json_t *v, json_t **ret, char *err, size_t errlen);

/* An "httpPort" value: 1..65535. */
int app_http_port_parse(json_t *v, int *ret, char *err, size_t errlen);

/* Check the publishing fields of `args` (an install's or a configure's:
 * "ports", "domains", "httpPort"; absent fields are left as they are)
 * against every other app and boxd's own ports, then store them in app
 * `id`'s row. Called inside the caller's write transaction, after the row
 * exists. 0 (also when args names none of them), -EEXIST with a message
 * naming the holder, -EINVAL (bad value; the API checks before), -EPERM
 * (domains while [proxy] enabled is off), or a store error. */
int app_publish_reserve(const struct boxd_config *cfg, struct store *s, const char *id, json_t *args, char *err,
			size_t errlen);

/* Which of boxd's own services holds `port`/`protocol` on this host, as a
 * phrase ("the sftp service ([sftp] port)"), or NULL. */
const char *app_port_reserved_by(const struct boxd_config *cfg, uint16_t port, const char *protocol);

/* The engine's port bindings for the row's ports (every host address).
 * *ret malloc'ed (NULL when none); strings point into static storage.
 * 0, -EINVAL (a row that does not parse: the store is not trusted),
 * -ENOMEM. */
int app_port_bindings(const struct app *a, struct engine_port_binding **ret, size_t *ret_n);

/* The app's URLs for people: "https://DOMAIN" (with ":PORT" when the
 * proxy's HTTPS port is not 443) for each domain. The published ports are
 * in "ports" (a port is not an URL: boxd does not know its scheme).
 * New reference. */
json_t *app_urls_json(const struct boxd_config *cfg, const struct app *a);

/* Fill "urls" into an app's JSON object (GET /apps/:id and the list). */
void app_publish_fill_json(const struct boxd_config *cfg, const struct app *a, json_t *obj);

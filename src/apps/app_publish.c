/* app_publish.c — see app_publish.h. */
#include "app_publish.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ports ----------------------------------------------------------------- */

static int port_number(json_t *v, uint16_t *ret)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
		return -EINVAL;
	*ret = (uint16_t)json_integer_value(v);
	return 0;
}

int app_ports_parse(json_t *v, struct app_port **ret, size_t *ret_n, char *err, size_t errlen)
{
	if (!json_is_array(v) || json_array_size(v) > APP_PORTS_MAX) {
		snprintf(err, errlen, "\"ports\" must be an array of at most %d {\"container\",\"host\",\"protocol\"}",
			 APP_PORTS_MAX);
		return -EINVAL;
	}
	size_t n = json_array_size(v);
	struct app_port *p = n ? calloc(n, sizeof(*p)) : NULL;
	if (n && !p)
		return -ENOMEM;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		const char *key;
		json_t *f;
		if (!json_is_object(e))
			goto bad;
		json_object_foreach(e, key, f) {
			if (strcmp(key, "container") != 0 && strcmp(key, "host") != 0 && strcmp(key, "protocol") != 0) {
				snprintf(err, errlen, "ports[%zu]: unknown field \"%s\" (expected container, host, protocol)",
					 i, key);
				free(p);
				return -EINVAL;
			}
		}
		json_t *proto = json_object_get(e, "protocol");
		const char *pr = proto ? json_string_value(proto) : "tcp";
		if (port_number(json_object_get(e, "container"), &p[i].container) < 0 ||
		    port_number(json_object_get(e, "host"), &p[i].host) < 0) {
			snprintf(err, errlen, "ports[%zu]: \"container\" and \"host\" must be port numbers from 1 to 65535", i);
			free(p);
			return -EINVAL;
		}
		if (!pr || (strcmp(pr, "tcp") != 0 && strcmp(pr, "udp") != 0)) {
			snprintf(err, errlen, "ports[%zu]: \"protocol\" must be \"tcp\" or \"udp\"", i);
			free(p);
			return -EINVAL;
		}
		snprintf(p[i].protocol, sizeof(p[i].protocol), "%s", pr);
		for (size_t k = 0; k < i; k++) {
			if (p[k].host == p[i].host && strcmp(p[k].protocol, p[i].protocol) == 0) {
				snprintf(err, errlen, "ports: host port %u/%s is given twice", p[i].host, p[i].protocol);
				free(p);
				return -EINVAL;
			}
		}
	}
	*ret = p;
	*ret_n = n;
	return 0;
bad:
	snprintf(err, errlen, "ports[%zu] must be an object {\"container\",\"host\",\"protocol\"}", i);
	free(p);
	return -EINVAL;
}

char *app_ports_format(const struct app_port *p, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:i, s:s}", "container", p[i].container, "host", p[i].host,
						   "protocol", p[i].protocol));
	char *text = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(a);
	return text;
}

/* The row's ports; the store is not trusted: parsed and checked again. */
static int row_ports(const struct app *a, struct app_port **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	if (!a->ports)
		return 0;
	json_t *v = json_loads(a->ports, 0, NULL);
	char err[256];
	int r = v ? app_ports_parse(v, ret, ret_n, err, sizeof(err)) : -EINVAL;
	json_decref(v);
	return r;
}

const char *app_port_reserved_by(const struct boxd_config *cfg, uint16_t port, const char *protocol)
{
	if (strcmp(protocol, "tcp") != 0)
		return NULL; /* boxd's own services are all TCP */
	if (port == cfg->sftp_port)
		return "the sftp service ([sftp] port)";
	if (cfg->proxy.enabled && port == cfg->proxy.http_port)
		return "the proxy service's HTTP port ([proxy] http_port)";
	if (cfg->proxy.enabled && port == cfg->proxy.https_port)
		return "the proxy service's HTTPS port ([proxy] https_port)";
	if (cfg->listen) {
		const char *colon = strrchr(cfg->listen, ':');
		if (colon && atoi(colon + 1) == port)
			return "boxd's API listener ([api] listen)";
	}
	return NULL;
}

int app_port_bindings(const struct app *a, struct engine_port_binding **ret, size_t *ret_n)
{
	struct app_port *p;
	size_t n;
	int r = row_ports(a, &p, &n);
	if (r < 0)
		return r;
	struct engine_port_binding *b = n ? calloc(n, sizeof(*b)) : NULL;
	if (n && !b) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		b[i] = (struct engine_port_binding){ .container_port = p[i].container,
						     .protocol = strcmp(p[i].protocol, "udp") == 0 ? "udp" : "tcp",
						     .host_port = p[i].host };
	free(p);
	*ret = b;
	*ret_n = n;
	return 0;
}

/* ---- domains --------------------------------------------------------------- */

bool app_domain_valid(const char *d)
{
	size_t n = strlen(d), labels = 0, len = 0;
	bool all_digits = true;
	if (n < 3 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			if (len == 0 || len > 63 || d[i - 1] == '-')
				return false;
			labels++;
			if (c == '\0')
				break;
			len = 0;
			all_digits = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (c == '-' && len == 0)
			return false;
		if (!(c >= '0' && c <= '9'))
			all_digits = false;
		len++;
	}
	return labels >= 2 && !all_digits;
}

int app_domains_parse(json_t *v, json_t **ret, char *err, size_t errlen)
{
	if (!json_is_array(v) || json_array_size(v) > APP_DOMAINS_MAX) {
		snprintf(err, errlen, "\"domains\" must be an array of at most %d host names", APP_DOMAINS_MAX);
		return -EINVAL;
	}
	json_t *out = json_array();
	if (!out)
		return -ENOMEM;
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e) {
		const char *s = json_string_value(e);
		char low[256];
		size_t n = s ? strlen(s) : 0;
		if (!s || n >= sizeof(low))
			goto bad;
		for (size_t k = 0; k <= n; k++)
			low[k] = (char)tolower((unsigned char)s[k]);
		if (!app_domain_valid(low))
			goto bad;
		for (size_t k = 0; k < json_array_size(out); k++) {
			if (strcmp(json_string_value(json_array_get(out, k)), low) == 0) {
				snprintf(err, errlen, "domains: %s is given twice", low);
				json_decref(out);
				return -EINVAL;
			}
		}
		if (json_array_append_new(out, json_string(low)) < 0) {
			json_decref(out);
			return -ENOMEM;
		}
	}
	*ret = out;
	return 0;
bad:
	snprintf(err, errlen, "domains[%zu] is not a valid domain name (like wiki.example.com: letters, digits, '-', "
		 "at least two labels, no wildcard, not an IP address)", i);
	json_decref(out);
	return -EINVAL;
}

int app_http_port_parse(json_t *v, int *ret, char *err, size_t errlen)
{
	uint16_t p;
	if (port_number(v, &p) < 0) {
		snprintf(err, errlen, "\"httpPort\" must be a port number from 1 to 65535");
		return -EINVAL;
	}
	*ret = p;
	return 0;
}

/* ---- reserving ------------------------------------------------------------- */

static int check_ports(const struct boxd_config *cfg, const struct app *apps, size_t n_apps, const char *id,
		       const struct app_port *p, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const char *own = app_port_reserved_by(cfg, p[i].host, p[i].protocol);
		if (own) {
			snprintf(err, errlen, "host port %u/%s is taken by %s", p[i].host, p[i].protocol, own);
			return -EEXIST;
		}
	}
	for (size_t k = 0; k < n_apps; k++) {
		if (strcmp(apps[k].id, id) == 0)
			continue;
		struct app_port *q;
		size_t m;
		if (row_ports(&apps[k], &q, &m) < 0)
			continue; /* a row that does not parse publishes nothing */
		for (size_t i = 0; i < n; i++) {
			for (size_t j = 0; j < m; j++) {
				if (p[i].host == q[j].host && strcmp(p[i].protocol, q[j].protocol) == 0) {
					snprintf(err, errlen, "host port %u/%s is taken by app %s", p[i].host, p[i].protocol,
						 apps[k].id);
					free(q);
					return -EEXIST;
				}
			}
		}
		free(q);
	}
	return 0;
}

static int check_domains(const struct app *apps, size_t n_apps, const char *id, json_t *domains, char *err,
			 size_t errlen)
{
	for (size_t k = 0; k < n_apps; k++) {
		if (strcmp(apps[k].id, id) == 0 || !apps[k].domains)
			continue;
		json_t *theirs = json_loads(apps[k].domains, 0, NULL);
		size_t i, j;
		json_t *a, *b;
		json_array_foreach(domains, i, a) {
			json_array_foreach(theirs, j, b) {
				if (json_is_string(b) && strcmp(json_string_value(a), json_string_value(b)) == 0) {
					snprintf(err, errlen, "domain %s is already routed to app %s", json_string_value(a),
						 apps[k].id);
					json_decref(theirs);
					return -EEXIST;
				}
			}
		}
		json_decref(theirs);
	}
	return 0;
}

int app_publish_reserve(const struct boxd_config *cfg, struct store *s, const char *id, json_t *args, char *err,
			size_t errlen)
{
	json_t *jp = json_object_get(args, "ports"), *jd = json_object_get(args, "domains"),
	       *jh = json_object_get(args, "httpPort");
	if (!jp && !jd && !jh)
		return 0;
	struct app_port *ports = NULL;
	size_t n_ports = 0;
	json_t *domains = NULL;
	int http_port = 0;
	struct app *apps = NULL;
	size_t n_apps = 0;
	char *text = NULL;
	int r = 0;
	if (jp && (r = app_ports_parse(jp, &ports, &n_ports, err, errlen)) < 0)
		goto out;
	if (jd && (r = app_domains_parse(jd, &domains, err, errlen)) < 0)
		goto out;
	if (jh && (r = app_http_port_parse(jh, &http_port, err, errlen)) < 0)
		goto out;
	if (domains && json_array_size(domains) > 0 && !cfg->proxy.enabled) {
		snprintf(err, errlen, "domains need the proxy service: set [proxy] enabled = true in the config");
		r = -EPERM;
		goto out;
	}
	if ((r = app_list(s, &apps, &n_apps)) < 0)
		goto out;
	if (jp && (r = check_ports(cfg, apps, n_apps, id, ports, n_ports, err, errlen)) < 0)
		goto out;
	if (domains && (r = check_domains(apps, n_apps, id, domains, err, errlen)) < 0)
		goto out;
	if (jp) {
		text = n_ports ? app_ports_format(ports, n_ports) : NULL;
		if (n_ports && !text) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = app_set(s, id, "ports", text)) < 0)
			goto out;
		free(text);
		text = NULL;
	}
	if (domains) {
		text = json_array_size(domains) ? json_dumps(domains, JSON_COMPACT) : NULL;
		if (json_array_size(domains) && !text) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = app_set(s, id, "domains", text)) < 0)
			goto out;
	}
	if (jh)
		r = app_set_http_port(s, id, http_port);
out:
	free(text);
	free(ports);
	json_decref(domains);
	app_list_free(apps, n_apps);
	return r;
}

/* ---- for people ------------------------------------------------------------ */

json_t *app_urls_json(const struct boxd_config *cfg, const struct app *a)
{
	json_t *urls = json_array();
	json_t *domains = a->domains ? json_loads(a->domains, 0, NULL) : NULL;
	size_t i;
	json_t *d;
	json_array_foreach(domains, i, d) {
		if (!json_is_string(d) || !app_domain_valid(json_string_value(d)))
			continue;
		char url[300];
		if (cfg->proxy.https_port == 443)
			snprintf(url, sizeof(url), "https://%s", json_string_value(d));
		else
			snprintf(url, sizeof(url), "https://%s:%d", json_string_value(d), cfg->proxy.https_port);
		json_array_append_new(urls, json_string(url));
	}
	json_decref(domains);
	return urls;
}

void app_publish_fill_json(const struct boxd_config *cfg, const struct app *a, json_t *obj)
{
	if (obj)
		json_object_set_new(obj, "urls", app_urls_json(cfg, a));
}

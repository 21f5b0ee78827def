/* config_proxy.c — [proxy]: the reverse-proxy service (see config.h and
 * services/proxy.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_proxy_defaults(struct boxd_config *cfg)
{
	cfg->proxy.enabled = false;
	cfg->proxy.http_port = 80;
	cfg->proxy.https_port = 443;
	config_set(&cfg->proxy.image, "localhost/boxd/proxy:latest");
}

static int port(const char *value, int *dst)
{
	char *end;
	long v = strtol(value, &end, 10);
	if (!*value || *end || v < 1 || v > 65535)
		return -EINVAL;
	*dst = (int)v;
	return 0;
}

int config_proxy_handle(struct boxd_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	int r = 0;
	if (strcmp(name, "enabled") == 0) {
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
			cfg->proxy.enabled = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
			cfg->proxy.enabled = false;
		else
			r = -EINVAL;
	} else if (strcmp(name, "image") == 0) {
		r = *value ? (config_set(&cfg->proxy.image, value), 0) : -EINVAL;
	} else if (strcmp(name, "http_port") == 0) {
		r = port(value, &cfg->proxy.http_port);
	} else if (strcmp(name, "https_port") == 0) {
		r = port(value, &cfg->proxy.https_port);
	} else if (strcmp(name, "acme_ca") == 0) {
		/* An ACME directory is an https URL (pebble's too). */
		r = !*value || strncmp(value, "https://", 8) == 0 ? (config_set(&cfg->proxy.acme_ca, *value ? value : NULL), 0)
								    : -EINVAL;
	} else if (strcmp(name, "acme_email") == 0) {
		r = !*value || (strchr(value, '@') && !strpbrk(value, " \t\"")) ? (config_set(&cfg->proxy.acme_email, *value ? value : NULL), 0)
									    : -EINVAL;
	} else if (strcmp(name, "acme_ca_root") == 0) {
		r = !*value || value[0] == '/' ? (config_set(&cfg->proxy.acme_ca_root, *value ? value : NULL), 0) : -EINVAL;
	} else {
		snprintf(err, errlen, "unknown key [proxy] %s", name);
		return -EINVAL;
	}
	if (r < 0)
		snprintf(err, errlen, "bad value for [proxy] %s: '%s'", name, value);
	return r;
}

void config_proxy_release(struct boxd_config *cfg)
{
	free(cfg->proxy.image);
	free(cfg->proxy.acme_ca);
	free(cfg->proxy.acme_email);
	free(cfg->proxy.acme_ca_root);
	cfg->proxy.image = cfg->proxy.acme_ca = cfg->proxy.acme_email = cfg->proxy.acme_ca_root = NULL;
}

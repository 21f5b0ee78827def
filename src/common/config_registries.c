/* config_registries.c — [registries]: credentials per registry host (see
 * config.h). The passwords are secrets: they are kept in memory only, never
 * printed (errors name the key or the file, never a value), and wiped when
 * the config is released. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASSWORD_FILE_MAX 4096

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* The first line of a password file, without its newline. */
static int config_registry_read_password_file(const char *path, char **ret)
{
	char buf[PASSWORD_FILE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, PASSWORD_FILE_MAX + 1);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	if (n > PASSWORD_FILE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return -EFBIG;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *p = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

int config_registries_handle(struct boxd_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	struct config_registry *cur = cfg->n_registries ? &cfg->registries[cfg->n_registries - 1] : NULL;
	if (strcmp(name, "host") == 0) {
		if (!*value || strchr(value, '/') || strchr(value, ' ')) {
			snprintf(err, errlen, "bad value for [registries] host: '%s'", value);
			return -EINVAL;
		}
		struct config_registry *v = realloc(cfg->registries, (cfg->n_registries + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		cfg->registries = v;
		v[cfg->n_registries] = (struct config_registry){ .host = strdup(value) };
		if (!v[cfg->n_registries].host)
			return -ENOMEM;
		cfg->n_registries++;
		return 0;
	}
	if (!cur) {
		snprintf(err, errlen, "[registries] %s before the first host = line", name);
		return -EINVAL;
	}
	if (strcmp(name, "username") == 0) {
		free(cur->username);
		cur->username = strdup(value);
		return cur->username ? 0 : -ENOMEM;
	}
	if (strcmp(name, "password") == 0) {
		char *pw = strdup(value);
		if (!pw)
			return -ENOMEM;
		wipe_free(cur->password);
		cur->password = pw;
		return 0;
	}
	if (strcmp(name, "password_file") == 0) {
		/* Read when a pull needs it (config_registry_password), not
		 * now: a spare worker loads the config long before its task,
		 * and a changed file must count from the next pull on. Only
		 * checked here, so that a typo fails at start. */
		if (value[0] != '/' || access(value, R_OK) < 0) {
			snprintf(err, errlen, "[registries] password_file %s of %s: %s", value, cur->host,
				 value[0] != '/' ? "not an absolute path" : strerror(errno));
			return -EINVAL;
		}
		free(cur->password_file);
		cur->password_file = strdup(value);
		return cur->password_file ? 0 : -ENOMEM;
	}
	snprintf(err, errlen, "unknown key [registries] %s", name);
	return -EINVAL;
}

int config_registries_check(const struct boxd_config *cfg, char *err, size_t errlen)
{
	for (int i = 0; i < cfg->n_registries; i++) {
		const struct config_registry *g = &cfg->registries[i];
		if (!g->username || (!g->password && !g->password_file)) {
			snprintf(err, errlen, "[registries] host %s needs a username and a password (or password_file)",
				 g->host);
			return -EINVAL;
		}
		for (int j = 0; j < i; j++)
			if (strcmp(cfg->registries[j].host, g->host) == 0) {
				snprintf(err, errlen, "[registries] host %s is given twice", g->host);
				return -EINVAL;
			}
	}
	return 0;
}

void config_registries_release(struct boxd_config *cfg)
{
	for (int i = 0; i < cfg->n_registries; i++) {
		free(cfg->registries[i].host);
		free(cfg->registries[i].username);
		free(cfg->registries[i].password_file);
		wipe_free(cfg->registries[i].password);
	}
	free(cfg->registries);
	cfg->registries = NULL;
	cfg->n_registries = 0;
}

/* Docker Hub goes by several names. */
static bool is_docker_hub(const char *h)
{
	return strcmp(h, "docker.io") == 0 || strcmp(h, "index.docker.io") == 0 ||
	       strcmp(h, "registry-1.docker.io") == 0;
}

const struct config_registry *config_registry_for(const struct boxd_config *cfg, const char *host)
{
	for (int i = 0; i < cfg->n_registries; i++) {
		const char *h = cfg->registries[i].host;
		if (strcmp(h, host) == 0 || (is_docker_hub(h) && is_docker_hub(host)))
			return &cfg->registries[i];
	}
	return NULL;
}

int config_registry_password(const struct config_registry *reg, char **ret)
{
	if (reg->password_file)
		return config_registry_read_password_file(reg->password_file, ret);
	char *p = strdup(reg->password ? reg->password : "");
	if (!p)
		return -ENOMEM;
	*ret = p;
	return 0;
}

/* app_record.c — see app_record.h. */
#include "app_record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

char *app_record_make(const struct boxd_config *cfg, const struct app *a)
{
	/* The API's form of the app, less what describes its current run
	 * (states, container, tasks): whatever the app gains there (ports,
	 * domains) is recorded without a change here. */
	json_t *o = app_to_json(cfg, a);
	if (!o)
		return NULL;
	static const char *const runtime[] = { "installationState", "runState", "health", "taskId", "containerId",
					       "updatedAt", "state", "urls", NULL };
	for (const char *const *k = runtime; *k; k++)
		json_object_del(o, *k);
	char created[40];
	format_rfc3339_ms(now_wall_ms(), created, sizeof(created));
	json_object_set_new(o, "boxdAppRecord", json_integer(1));
	json_object_set_new(o, "volumes", json_array());
	json_object_set_new(o, "recordedAt", json_string(created));
	json_object_set_new(o, "boxdVersion", json_string(BOXD_VERSION));
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

void app_record_release(struct app_record *r)
{
	free(r->id);
	free(r->image);
	free(r->env_json);
	free(r->data_dir);
	json_decref(r->ports);
	json_decref(r->domains);
	*r = (struct app_record){ 0 };
}

static int bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "the archive's app record is not usable: %s", what);
	return -EBADMSG;
}

int app_record_parse(const char *text, const char *want_id, struct app_record *ret, char *err, size_t errlen)
{
	*ret = (struct app_record){ 0 };
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	int r = 0;
	if (!json_is_object(o)) {
		r = bad(err, errlen, "not a JSON object");
		goto out;
	}
	json_t *ver = json_object_get(o, "boxdAppRecord");
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *image = json_string_value(json_object_get(o, "image"));
	json_t *env = json_object_get(o, "env");
	json_t *custom = json_object_get(o, "customDataDir");
	const char *dir = json_string_value(json_object_get(o, "dataDir"));
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		r = bad(err, errlen, "not a version 1 record");
		goto out;
	}
	if (!id || !app_id_valid(id) || (want_id && strcmp(id, want_id) != 0)) {
		snprintf(err, errlen, "the archive's app record is of app %s, not %s", id ? id : "?",
			 want_id ? want_id : "?");
		r = -EBADMSG;
		goto out;
	}
	if (!image || !*image) {
		r = bad(err, errlen, "no image");
		goto out;
	}
	if (env && !json_is_object(env)) {
		r = bad(err, errlen, "env is not an object");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(env, key, v) {
		if (!json_is_string(v)) {
			r = bad(err, errlen, "an env value is not a string");
			goto out;
		}
	}
	if (json_is_true(custom) && (!dir || dir[0] != '/')) {
		r = bad(err, errlen, "a custom data dir that is not an absolute path");
		goto out;
	}
	ret->id = strdup(id);
	ret->image = strdup(image);
	ret->env_json = env ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
	ret->data_dir = json_is_true(custom) ? strdup(dir) : NULL;
	ret->ports = json_incref(json_object_get(o, "ports"));
	ret->domains = json_incref(json_object_get(o, "domains"));
	json_t *hp = json_object_get(o, "httpPort");
	ret->http_port = json_is_integer(hp) && json_integer_value(hp) > 0 && json_integer_value(hp) < 65536
				 ? (int)json_integer_value(hp)
				 : 0;
	if (!ret->id || !ret->image || !ret->env_json || (json_is_true(custom) && !ret->data_dir)) {
		app_record_release(ret);
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
out:
	json_decref(o);
	return r;
}

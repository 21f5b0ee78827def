/* api.c — boxctl's side of the REST API: send JSON, read JSON, and turn
 * failures into one clear line and an exit code. See boxctl.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"

#define REQUEST_TIMEOUT_MS 60000L

void api_answer_release(struct api_answer *a)
{
	if (!a)
		return;
	free(a->raw);
	json_decref(a->json);
	memset(a, 0, sizeof(*a));
}

int api_request(struct cli *cli, const char *method, const char *path, json_t *body, struct api_answer *ret,
		char *err, size_t errlen)
{
	char *text = NULL;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			snprintf(err, errlen, "cannot encode the request");
			return -ENOMEM;
		}
	}
	struct http_request req = { .method = method, .path = path, .body = text, .timeout_ms = REQUEST_TIMEOUT_MS };
	struct http_response resp;
	int r = http_request(cli->http, &req, &resp, err, errlen);
	free(text);
	if (r < 0)
		return r;
	ret->status = resp.status;
	ret->raw = resp.body;
	ret->len = resp.len;
	ret->json = resp.len ? json_loadb(resp.body, resp.len, JSON_DECODE_ANY, NULL) : NULL;
	return 0;
}

int api_report_transport(const struct cli *cli, int err, const char *why)
{
	switch (err) {
	case -ECONNREFUSED:
		fprintf(stderr, "boxctl: cannot reach boxd at %s: %s — is the daemon running? (make run)\n", cli->target,
			why);
		if (cli->via_socket)
			fprintf(stderr, "boxctl: (point boxctl at another daemon with --socket PATH or $BOXD_SOCKET)\n");
		break;
	case -ETIMEDOUT:
		fprintf(stderr, "boxctl: boxd at %s did not answer: %s\n", cli->target, why);
		break;
	case -ECONNRESET:
		fprintf(stderr, "boxctl: lost the connection to boxd at %s: %s\n", cli->target, why);
		break;
	default:
		fprintf(stderr, "boxctl: talking to boxd at %s failed: %s\n", cli->target, why);
		break;
	}
	return CLI_EXIT_CONNECT;
}

int api_report(const struct cli *cli, const struct api_answer *a)
{
	json_t *e = json_object_get(a->json, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (msg) {
		fprintf(stderr, "boxctl: %s\n", msg);
	} else {
		/* Not boxd's error shape (a proxy in between?): show the start
		 * of whatever came back. */
		int n = (int)strcspn(a->raw ? a->raw : "", "\r\n");
		fprintf(stderr, "boxctl: boxd answered HTTP %ld%s%.*s\n", a->status, n ? ": " : "", n > 200 ? 200 : n,
			a->raw ? a->raw : "");
	}
	if (a->status == 401 && cli->have_token)
		fprintf(stderr, "boxctl: the token was refused (mistyped, or not in this boxd's tokens file)\n");
	else if (a->status == 401)
		fprintf(stderr, "boxctl: pass an API token with --token TOKEN or $BOXD_TOKEN (boxd token create NAME)\n");
	return CLI_EXIT_API;
}

int api_call(struct cli *cli, const char *method, const char *path, json_t *body, struct api_answer *ret)
{
	char err[512];
	struct api_answer a = { 0 };
	int r = api_request(cli, method, path, body, &a, err, sizeof(err));
	if (r < 0)
		return api_report_transport(cli, r, err);
	if (a.status < 200 || a.status >= 300) {
		r = api_report(cli, &a);
		api_answer_release(&a);
		return r;
	}
	*ret = a;
	return 0;
}

void api_print_raw(const struct api_answer *a)
{
	fwrite(a->raw, 1, a->len, stdout);
	if (a->len == 0 || a->raw[a->len - 1] != '\n')
		fputc('\n', stdout);
}

bool api_get_to_show(struct cli *cli, const char *path, struct api_answer *ret, int *ret_code)
{
	*ret_code = api_call(cli, "GET", path, NULL, ret);
	if (*ret_code)
		return false;
	if (!cli->json)
		return true;
	api_print_raw(ret);
	api_answer_release(ret);
	return false;
}

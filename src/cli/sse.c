/* sse.c — see sse.h. */
#include "sse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"
#include "common/array.h"

void sse_init(struct sse_parser *p, sse_data_fn on_data, void *userdata)
{
	memset(p, 0, sizeof(*p));
	p->on_data = on_data;
	p->userdata = userdata;
}

void sse_release(struct sse_parser *p)
{
	if (!p)
		return;
	free(p->line);
	p->line = NULL;
	p->len = p->cap = 0;
}

/* One complete line, without its line ending. */
static int handle_line(struct sse_parser *p, char *line, size_t n)
{
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0) {
		p->event[0] = '\0'; /* the event ends */
		return 0;
	}
	if (line[0] == ':')
		return 0;
	char *colon = memchr(line, ':', n);
	const char *value = "";
	if (colon) {
		*colon = '\0';
		value = colon + 1;
		if (*value == ' ')
			value++; /* one space after the colon is not part of the value */
	}
	if (strcmp(line, "event") == 0) {
		snprintf(p->event, sizeof(p->event), "%s", value);
		return 0;
	}
	if (strcmp(line, "data") == 0)
		return p->on_data(p->event, value, p->userdata);
	return 0;
}

int sse_feed(struct sse_parser *p, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ARRAY_GROW(p->line, p->len + 2, p->cap) < 0)
			return -ENOMEM;
		if (data[i] != '\n') {
			p->line[p->len++] = data[i];
			continue;
		}
		p->line[p->len] = '\0';
		size_t len = p->len;
		p->len = 0;
		int r = handle_line(p, p->line, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- following a stream of boxd ----------------------------------------------------- */

struct sse_get {
	struct sse_parser sse;
	bool streaming; /* a piece of the stream came */
};

static int get_chunk(const char *data, size_t len, void *userdata)
{
	struct sse_get *g = userdata;
	g->streaming = true;
	int r = sse_feed(&g->sse, data, len);
	if (fflush(stdout) == EOF && r == 0)
		r = -EPIPE;
	return r;
}

int cli_sse_get(struct cli *cli, const char *path, sse_data_fn on_data, void *userdata, const char *cut)
{
	struct sse_get g = { 0 };
	sse_init(&g.sse, on_data, userdata);
	struct http_request req = { .method = "GET", .path = path, .on_chunk = get_chunk, .userdata = &g };
	struct http_response resp = { 0 };
	char err[512];
	int code = CLI_EXIT_OK;
	int r = http_request(cli->http, &req, &resp, err, sizeof(err));
	if (r == -EPIPE) {
		code = CLI_EXIT_API; /* stdout went away: nobody to tell */
	} else if (r < 0 && cut && g.streaming) {
		fprintf(stderr, "boxctl: %s: %s\n", cut, err);
		code = CLI_EXIT_CONNECT;
	} else if (r < 0) {
		code = api_report_transport(cli, r, err);
	} else if (resp.status < 200 || resp.status >= 300) {
		struct api_answer a = { .status = resp.status, .raw = resp.body, .len = resp.len };
		a.json = json_loadb(resp.body, resp.len, 0, NULL);
		code = api_report(cli, &a);
		json_decref(a.json);
	}
	http_response_release(&resp);
	sse_release(&g.sse);
	return code;
}

static int log_data(const char *event, const char *data, void *userdata)
{
	json_t **end = userdata;
	if (strcmp(event, "end") == 0) {
		json_decref(*end);
		*end = json_loads(data, 0, NULL);
		if (!*end && !(*end = json_object()))
			return -ENOMEM;
		return 0;
	}
	if (*event)
		return 0; /* an event this boxctl does not know */
	if (fputs(data, stdout) == EOF || fputc('\n', stdout) == EOF)
		return -EPIPE;
	return 0;
}

int cli_follow_log(struct cli *cli, const char *path, json_t **ret_end)
{
	json_t *end = NULL;
	int code = cli_sse_get(cli, path, log_data, &end, NULL);
	if (code != CLI_EXIT_OK) {
		json_decref(end);
		return code;
	}
	*ret_end = end;
	return CLI_EXIT_OK;
}

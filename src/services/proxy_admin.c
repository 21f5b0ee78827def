/* proxy_admin.c — requests to Caddy's admin API on its unix socket
 * (proxy.h), with libcurl's CURLOPT_UNIX_SOCKET_PATH. */
#include "proxy.h"

#include "engine/curl_lib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX (8 * 1024 * 1024)

struct reply {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
	struct reply *r = userdata;
	size_t add = size * n;
	if (r->len + add > REPLY_MAX) {
		r->too_big = true;
		return 0;
	}
	char *grown = realloc(r->buf, r->len + add + 1);
	if (!grown)
		return 0;
	memcpy(grown + r->len, p, add);
	r->len += add;
	grown[r->len] = '\0';
	r->buf = grown;
	return add;
}

int proxy_admin_request(const char *socket_path, const char *method, const char *path, const char *body,
			int timeout_ms, long *ret_status, char **ret_body, char *err, size_t errlen)
{
	CURL *c = curl_lib_easy_init();
	if (!c) {
		snprintf(err, errlen, "%s", *curl_lib_error() ? curl_lib_error() : "out of memory");
		return -ENOMEM;
	}
	struct reply rep = { 0 };
	char url[512];
	snprintf(url, sizeof(url), "http://localhost%s", path);
	struct curl_slist *h = NULL;
	/* Caddy checks the Host of an admin request against the listener's
	 * address; for a unix socket that is the empty host. "Host;" makes
	 * libcurl send the header with no value. */
	h = curl_lib_slist_append(h, "Host;");
	if (body)
		h = curl_lib_slist_append(h, "Content-Type: application/json");
	sym_curl_easy_setopt(c, CURLOPT_URL, url);
	sym_curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	sym_curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	sym_curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	sym_curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	sym_curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 2000 ? timeout_ms : 2000));
	sym_curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	sym_curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep);
	if (body) {
		sym_curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		sym_curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	CURLcode cr = sym_curl_easy_perform(c);
	int r = 0;
	if (cr != CURLE_OK) {
		r = cr == CURLE_COULDNT_CONNECT ? -ECONNREFUSED
		    : cr == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
		    : -EIO;
		snprintf(err, errlen, "the proxy's admin API on %s: %s%s", socket_path, sym_curl_easy_strerror(cr),
			 rep.too_big ? " (reply over 8 MiB)" : "");
		free(rep.buf);
	} else {
		long status = 0;
		sym_curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		*ret_status = status;
		*ret_body = rep.buf;
	}
	sym_curl_slist_free_all(h);
	sym_curl_easy_cleanup(c);
	return r;
}

/* http.c — see http.h. One curl easy handle per client, reused so that a
 * poll loop keeps its connection. Cleanup style: one forward `goto out`. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 5000L

struct http_client {
	CURL *curl;
	char *socket_path;
	char *base_url;
	char *auth_header; /* "Authorization: Bearer ..." or NULL */
	char *ca_file;     /* or NULL */
};

int http_client_new(const struct http_target *t, struct http_client **ret)
{
	if (!t->socket_path == !t->base_url)
		return -EINVAL;
	struct http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->curl = curl_easy_init();
	if (t->socket_path)
		c->socket_path = strdup(t->socket_path);
	if (t->base_url) {
		/* Keep the base without a trailing slash: paths start with one. */
		size_t n = strlen(t->base_url);
		while (n > 0 && t->base_url[n - 1] == '/')
			n--;
		c->base_url = strndup(t->base_url, n);
	}
	if (t->token && *t->token && asprintf(&c->auth_header, "Authorization: Bearer %s", t->token) < 0)
		c->auth_header = NULL;
	if (t->ca_file)
		c->ca_file = strdup(t->ca_file);
	if (!c->curl || (t->socket_path && !c->socket_path) || (t->base_url && !c->base_url) ||
	    (t->token && *t->token && !c->auth_header) || (t->ca_file && !c->ca_file)) {
		http_client_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->socket_path);
	free(c->base_url);
	free(c->auth_header);
	free(c->ca_file);
	free(c);
}

void http_response_release(struct http_response *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

char *http_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	if (!e)
		return NULL;
	char *copy = strdup(e); /* callers free() it, not curl_free() */
	curl_free(e);
	return copy;
}

/* ---- one transfer ------------------------------------------------------- */

struct transfer {
	CURL *curl;
	const struct http_request *req;
	char *body;
	size_t len, cap;
	bool oom;
	int chunk_err; /* what on_chunk returned when it stopped the transfer */
};

static bool append(struct transfer *t, const char *data, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *grown = realloc(t->body, cap);
		if (!grown)
			return false;
		t->body = grown;
		t->cap = cap;
	}
	memcpy(t->body + t->len, data, n);
	t->len += n;
	t->body[t->len] = '\0';
	return true;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (t->req->on_chunk && status >= 200 && status < 300) {
		int r = t->req->on_chunk(data, n, t->req->userdata);
		if (r < 0) {
			t->chunk_err = r;
			return 0; /* makes curl stop with CURLE_WRITE_ERROR */
		}
		return n;
	}
	if (!append(t, data, n)) {
		t->oom = true;
		return 0;
	}
	return n;
}

static int translate(CURLcode rc, long os_errno, const char *curl_msg, char *err, size_t errlen)
{
	/* The system's reason ("No such file or directory", "Connection
	 * refused") says more to an operator than curl's wording. */
	const char *why = os_errno ? strerror((int)os_errno) : (*curl_msg ? curl_msg : curl_easy_strerror(rc));
	snprintf(err, errlen, "%s", why);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, errlen, "no answer in time (%s)", *curl_msg ? curl_msg : curl_easy_strerror(rc));
		return -ETIMEDOUT;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		snprintf(err, errlen, "the connection broke: %s", *curl_msg ? curl_msg : curl_easy_strerror(rc));
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

int http_request(struct http_client *c, const struct http_request *req, struct http_response *ret, char *err,
		 size_t errlen)
{
	struct transfer t = { .curl = c->curl, .req = req };
	struct curl_slist *headers = NULL, *h;
	char *url = NULL;
	char curl_msg[CURL_ERROR_SIZE] = "";
	int r = -ENOMEM;

	if (asprintf(&url, "%s%s", c->base_url ? c->base_url : "http://localhost", req->path) < 0) {
		url = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* "Expect:" turns off curl's 100-continue dance for bodies. */
	const char *wanted[] = { "Expect:", req->body ? "Content-Type: application/json" : NULL, c->auth_header };
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		if (!wanted[i])
			continue;
		h = curl_slist_append(headers, wanted[i]);
		if (!h) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		headers = h;
	}

	CURL *cu = c->curl;
	curl_easy_reset(cu); /* keeps the connection cache */
	curl_easy_setopt(cu, CURLOPT_URL, url);
	if (c->socket_path)
		curl_easy_setopt(cu, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, req->method);
	/* CURLOPT_POST sends the body; CUSTOMREQUEST above keeps the method
	 * (PATCH /apps/:id/env has a body too). */
	if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0) {
		curl_easy_setopt(cu, CURLOPT_POST, 1L);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, curl_msg);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "boxctl/" BOXD_VERSION);
	if (c->ca_file)
		curl_easy_setopt(cu, CURLOPT_CAINFO, c->ca_file);
	/* Never pick up a proxy from the environment for the unix socket. */
	if (c->socket_path)
		curl_easy_setopt(cu, CURLOPT_NOPROXY, "*");

	CURLcode rc = curl_easy_perform(cu);
	if (rc != CURLE_OK) {
		if (t.chunk_err) {
			r = t.chunk_err;
			snprintf(err, errlen, "stopped by the reader");
		} else if (t.oom) {
			r = -ENOMEM;
			snprintf(err, errlen, "out of memory");
		} else {
			long os_errno = 0;
			curl_easy_getinfo(cu, CURLINFO_OS_ERRNO, &os_errno);
			r = translate(rc, os_errno, curl_msg, err, errlen);
		}
		goto out;
	}
	if (!t.body && !append(&t, "", 0)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ret->status = 0;
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &ret->status);
	ret->body = t.body;
	ret->len = t.len;
	t.body = NULL;
	r = 0;
out:
	/* The handle must not keep pointers into this call's stack. */
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(url);
	free(t.body);
	return r;
}

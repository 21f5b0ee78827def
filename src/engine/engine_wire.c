/* engine_wire.c — the engine client's wire helpers: what may go into a
 * URL path, how an HTTP error and its body map to an errno and a message,
 * which refusals are transient, and the demultiplexer of a log stream.
 *
 * Pure: no I/O; everything here reads bytes the engine sent.
 */
#include "engine/engine-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- references in URL paths ----------------------------------------------- */

#define REF_MAX 512

bool engine_container_ref_valid(const char *s)
{
	static const char more[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > REF_MAX || s[0] == '.' || s[0] == '_' || s[0] == '-')
		return false;
	return strspn(s, more) == n;
}

bool engine_image_ref_valid(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/:@";
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > REF_MAX || strspn(s, ok) != n || s[0] == '/')
		return false;
	/* No "." or ".." segment, and no empty one ("a//b"). */
	for (const char *seg = s;;) {
		size_t len = strcspn(seg, "/");
		if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (seg[len] == '\0')
			return true;
		seg += len + 1;
	}
}

/* ---- errors ----------------------------------------------------------------- */

bool engine_error_transient(int r, const char *msg)
{
	static const char *const texts[] = {
		"container state improper",         /* Podman, any conflicting state */
		"timed out waiting for file",       /* Podman: conmon's exit file */
		"refusing to clean up",             /* Podman: cleanup raced a start */
		"is already in progress",           /* Docker: "removal ... is already in progress" */
		"is restarting",                    /* Docker: "Container ... is restarting, wait until ..." */
		NULL,
	};
	if (r == -EBUSY)
		return true;
	if (r != -EIO || !msg)
		return false;
	for (size_t i = 0; texts[i]; i++)
		if (strstr(msg, texts[i]))
			return true;
	return false;
}

int engine_http_error(long status, const char *cause, const char *message)
{
	cause = cause ? cause : "";
	message = message ? message : "";

	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		/* Docker: "Conflict. The container name "/x" is already in use". */
		return strstr(message, "already in use") ? -EEXIST : -EBUSY;
	}
	/* Podman's compatible API answers several conflicts with 500 and says
	 * what it was in "cause" (libpod's define.Err* texts). */
	if (strcmp(cause, "that name is already in use") == 0)
		return -EEXIST;
	if (strcmp(cause, "container already exists") == 0)
		return -EEXIST;
	if (strcmp(cause, "container state improper") == 0)
		return -EBUSY;
	if (strcmp(cause, "no such container") == 0 || strcmp(cause, "no such image") == 0 ||
	    strcmp(cause, "image not known") == 0)
		return -ENOENT;
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

static void copy_sanitized(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < srclen && n + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '\n' || c == '\r')
			break;
		dst[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

void engine_error_text(long status, const char *body, size_t len, char *buf, size_t buflen, char *cause,
		       size_t causelen)
{
	json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(root, "message"));
	const char *c = json_string_value(json_object_get(root, "cause"));

	if (cause && causelen)
		copy_sanitized(cause, causelen, c ? c : "", c ? strlen(c) : 0);
	if (msg && msg[0])
		copy_sanitized(buf, buflen, msg, strlen(msg));
	else if (!root && len > 0)
		copy_sanitized(buf, buflen, body, len);
	else if (buflen)
		buf[0] = '\0';
	if (buflen && !buf[0])
		snprintf(buf, buflen, "HTTP %ld from the container engine", status);
	json_decref(root);
}

/* ---- logs ------------------------------------------------------------------- */

int engine_demux_logs(const void *buf, size_t len, unsigned streams, char **ret, size_t *ret_len)
{
	const unsigned char *p = buf, *end = p + len;
	char *out = malloc(len + 1);
	size_t n = 0;

	if (!out)
		return -ENOMEM;
	if ((streams & (ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR)) == 0)
		streams |= ENGINE_LOGS_STDOUT | ENGINE_LOGS_STDERR;
	while ((size_t)(end - p) >= 8) {
		unsigned type = p[0];
		size_t size = (size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7];

		if (type > 3 || p[1] || p[2] || p[3]) {
			free(out);
			return -EBADMSG;
		}
		p += 8;
		if (size > (size_t)(end - p))
			size = (size_t)(end - p);
		bool keep = (type == 1 && (streams & ENGINE_LOGS_STDOUT)) ||
			    (type >= 2 && (streams & ENGINE_LOGS_STDERR));
		if (keep) {
			memcpy(out + n, p, size);
			n += size;
		}
		p += size;
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return 0;
}

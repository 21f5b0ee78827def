/* web_assets.h — the dashboard's files, compiled into the binary.
 *
 * web/ is turned into this table at build time by scripts/web-embed.py (a
 * meson custom target, web/meson.build): each file with its URL path
 * ("/index.html", "/js/main.js"), content type, ETag (16 hex digits of its
 * SHA-256) and a gzip variant. routes_web.c serves them.
 */
#pragma once

#include <stddef.h>

struct web_asset {
	const char *path;
	const char *content_type;
	const char *etag;
	const unsigned char *data;
	size_t len;
	const unsigned char *gz;
	size_t gz_len;
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_n;

/* curl_lib.h — libcurl for the daemon's and the workers' HTTP over unix
 * sockets (the engine, Caddy's admin API), loaded when first needed
 * (common/dlib.h).
 *
 * libcurl brings its TLS, SSH, LDAP, Kerberos and RTMP libraries into a
 * process; an idle daemon and a worker that never calls the engine need
 * none of them. boxctl links libcurl the usual way.
 *
 * The constructors below load and initialise the library first (NULL when
 * it cannot be, as for no memory; curl_lib_error() says why). Every other
 * sym_ function takes a handle or list only a constructor makes. */
#pragma once

#include <curl/curl.h>

#include "common/dlib.h"

/* clang-format off */
#define CURL_SYMBOLS(X) \
	X(curl_easy_cleanup) \
	X(curl_easy_escape) \
	X(curl_easy_getinfo) \
	X(curl_easy_pause) \
	X(curl_easy_perform) \
	X(curl_easy_reset) \
	X(curl_easy_setopt) \
	X(curl_easy_strerror) \
	X(curl_free) \
	X(curl_global_init) \
	X(curl_multi_add_handle) \
	X(curl_multi_cleanup) \
	X(curl_multi_info_read) \
	X(curl_multi_perform) \
	X(curl_multi_poll) \
	X(curl_multi_remove_handle) \
	X(curl_multi_strerror) \
	X(curl_slist_free_all)
/* clang-format on */
CURL_SYMBOLS(DLIB_DECLARE)

CURL *curl_lib_easy_init(void);
CURLM *curl_lib_multi_init(void);
struct curl_slist *curl_lib_slist_append(struct curl_slist *list, const char *s);

/* Load and initialise libcurl (curl_global_init(), once per process).
 * 0, -ELIBACC or -ENOMEM (curl_lib_error() says why). */
int curl_lib_load(void);
const char *curl_lib_error(void);

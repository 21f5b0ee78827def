/* curl_lib.c — see curl_lib.h. */
#include "curl_lib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

CURL_SYMBOLS(DLIB_DEFINE)

/* The constructors' own pointers: reached only through the wrappers. */
static typeof(curl_easy_init) *real_easy_init;
static typeof(curl_multi_init) *real_multi_init;
static typeof(curl_slist_append) *real_slist_append;

static const struct dlib_symbol symbols[] = {
	CURL_SYMBOLS(DLIB_SYMBOL)
	{ "curl_easy_init", (void **)&real_easy_init },
	{ "curl_multi_init", (void **)&real_multi_init },
	{ "curl_slist_append", (void **)&real_slist_append },
};
static struct dlib lib = DLIB_INIT("libcurl.so.4", symbols);

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;
static char global_error[128];

/* Once, before any handle (curl_easy_init() would do it otherwise). It
 * initialises OpenSSL too, whatever the flags (libcurl 7.88): a process
 * that talks to engines from threads loads the library first in the
 * thread that starts them (engine_library_preload()). */
static void global_init(void)
{
	global_result = sym_curl_global_init(CURL_GLOBAL_DEFAULT);
	if (global_result != CURLE_OK)
		snprintf(global_error, sizeof(global_error), "curl_global_init: %s",
			 sym_curl_easy_strerror(global_result));
}

int curl_lib_load(void)
{
	int r = dlib_load(&lib);
	if (r < 0)
		return r;
	pthread_once(&global_once, global_init);
	return global_result == CURLE_OK ? 0 : -ENOMEM;
}

const char *curl_lib_error(void) { return *dlib_error(&lib) ? dlib_error(&lib) : global_error; }

CURL *curl_lib_easy_init(void) { return curl_lib_load() < 0 ? NULL : real_easy_init(); }
CURLM *curl_lib_multi_init(void) { return curl_lib_load() < 0 ? NULL : real_multi_init(); }
struct curl_slist *curl_lib_slist_append(struct curl_slist *list, const char *s)
{
	return curl_lib_load() < 0 ? NULL : real_slist_append(list, s);
}

/* curl_lib.c — see curl_lib.h. */
#include "curl_lib.h"

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

int curl_lib_load(void) { return dlib_load(&lib); }
const char *curl_lib_error(void) { return dlib_error(&lib); }

CURL *curl_lib_easy_init(void) { return dlib_load(&lib) < 0 ? NULL : real_easy_init(); }
CURLM *curl_lib_multi_init(void) { return dlib_load(&lib) < 0 ? NULL : real_multi_init(); }
struct curl_slist *curl_lib_slist_append(struct curl_slist *list, const char *s)
{
	return dlib_load(&lib) < 0 ? NULL : real_slist_append(list, s);
}

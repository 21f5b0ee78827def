/* archive_lib.c — see archive_lib.h. */
#include "archive_lib.h"

#include <stdio.h>

ARCHIVE_SYMBOLS(DLIB_DEFINE)

/* The constructors' own pointers: reached only through the wrappers. */
static typeof(archive_read_new) *real_read_new;
static typeof(archive_write_new) *real_write_new;
static typeof(archive_write_disk_new) *real_write_disk_new;
static typeof(archive_entry_new) *real_entry_new;
static typeof(archive_entry_linkresolver_new) *real_entry_linkresolver_new;

static const struct dlib_symbol symbols[] = {
	ARCHIVE_SYMBOLS(DLIB_SYMBOL)
	{ "archive_read_new", (void **)&real_read_new },
	{ "archive_write_new", (void **)&real_write_new },
	{ "archive_write_disk_new", (void **)&real_write_disk_new },
	{ "archive_entry_new", (void **)&real_entry_new },
	{ "archive_entry_linkresolver_new", (void **)&real_entry_linkresolver_new },
};
static struct dlib lib = DLIB_INIT("libarchive.so.13", symbols);

struct archive *archive_lib_read_new(void) { return dlib_load(&lib) < 0 ? NULL : real_read_new(); }
struct archive *archive_lib_write_new(void) { return dlib_load(&lib) < 0 ? NULL : real_write_new(); }
struct archive *archive_lib_write_disk_new(void) { return dlib_load(&lib) < 0 ? NULL : real_write_disk_new(); }
struct archive_entry *archive_lib_entry_new(void) { return dlib_load(&lib) < 0 ? NULL : real_entry_new(); }
struct archive_entry_linkresolver *archive_lib_entry_linkresolver_new(void)
{
	return dlib_load(&lib) < 0 ? NULL : real_entry_linkresolver_new();
}

const char *archive_lib_failure(void)
{
	static __thread char why[300];
	if (!*dlib_error(&lib))
		return "out of memory";
	snprintf(why, sizeof(why), "cannot load libarchive: %s", dlib_error(&lib));
	return why;
}

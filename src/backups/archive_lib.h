/* archive_lib.h — libarchive, loaded when first needed (common/dlib.h).
 *
 * libarchive brings libxml2, ICU and libstdc++ into a process: 2 MiB of
 * pages in a daemon that reads no archive while idle, and in every worker
 * of a task that makes none. Only tarball.c and the update's package.c
 * use it; both call it through these pointers.
 *
 * Every use starts with a constructor, and the constructors below are
 * functions that load the library first (NULL when it cannot be loaded,
 * as when memory runs out; archive_lib_failure() says which). Every other
 * sym_ function takes an object only a constructor makes, so none can be
 * called before the load. */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "common/dlib.h"

/* clang-format off */
#define ARCHIVE_SYMBOLS(X) \
	X(archive_entry_atime) \
	X(archive_entry_atime_is_set) \
	X(archive_entry_atime_nsec) \
	X(archive_entry_clone) \
	X(archive_entry_copy_stat) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_gid) \
	X(archive_entry_hardlink) \
	X(archive_entry_linkify) \
	X(archive_entry_linkresolver_free) \
	X(archive_entry_linkresolver_set_strategy) \
	X(archive_entry_mtime) \
	X(archive_entry_mtime_nsec) \
	X(archive_entry_pathname) \
	X(archive_entry_perm) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_gname) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_entry_set_symlink) \
	X(archive_entry_set_uname) \
	X(archive_entry_size) \
	X(archive_entry_sparse_add_entry) \
	X(archive_entry_sparse_next) \
	X(archive_entry_sparse_reset) \
	X(archive_entry_uid) \
	X(archive_entry_unset_atime) \
	X(archive_entry_unset_birthtime) \
	X(archive_entry_unset_ctime) \
	X(archive_errno) \
	X(archive_error_string) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_next_header) \
	X(archive_read_open) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \
	X(archive_set_error) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_data_block) \
	X(archive_write_disk_set_options) \
	X(archive_write_finish_entry) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_open) \
	X(archive_write_set_bytes_in_last_block) \
	X(archive_write_set_bytes_per_block) \
	X(archive_write_set_format_pax)
/* clang-format on */
ARCHIVE_SYMBOLS(DLIB_DECLARE)

struct archive *archive_lib_read_new(void);
struct archive *archive_lib_write_new(void);
struct archive *archive_lib_write_disk_new(void);
struct archive_entry *archive_lib_entry_new(void);
struct archive_entry_linkresolver *archive_lib_entry_linkresolver_new(void);

/* What to tell when a constructor returned NULL: why the library could
 * not be loaded, or "out of memory". */
const char *archive_lib_failure(void);

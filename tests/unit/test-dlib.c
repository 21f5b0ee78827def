/* test-dlib.c — common/dlib.h and the libraries boxd loads when first
 * needed: each of them loads by its soname with every symbol boxd uses (a
 * soname or a symbol gone from the system fails here, not on a box); a
 * missing library or symbol is an error that sets no pointer; loading is
 * once per process, also from many threads at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "backups/archive_lib.h"
#include "backups/ssh_lib.h"
#include "common/dlib.h"
#include "common/systemd_lib.h"
#include "engine/curl_lib.h"
#include "store/mysql_lib.h"
#include "store/pq_lib.h"

static void test_every_library_loads(void **state)
{
	(void)state;
	assert_int_equal(systemd_lib_load(), 0);
	assert_non_null(sym_sd_notify);
	assert_non_null(sym_sd_journal_sendv);
	assert_int_equal(pq_lib_load(), 0);
	assert_non_null(sym_PQexec);
	assert_int_equal(mysql_lib_load(), 0);
	assert_non_null(sym_mysql_stmt_prepare);
	assert_int_equal(ssh_lib_load(), 0);
	assert_non_null(sym_sftp_open);
	assert_int_equal(curl_lib_load(), 0);
	assert_non_null(sym_curl_easy_perform);
	/* libarchive loads through its constructors. */
	struct archive *a = archive_lib_read_new();
	assert_non_null(a);
	assert_non_null(sym_archive_read_free);
	assert_int_equal(sym_archive_read_free(a), ARCHIVE_OK);
	struct archive_entry *e = archive_lib_entry_new();
	assert_non_null(e);
	sym_archive_entry_free(e);
	/* A second load is a no-op that succeeds. */
	assert_int_equal(pq_lib_load(), 0);
	assert_string_equal(pq_lib_error(), "");
}

static void test_missing_library_is_an_error(void **state)
{
	(void)state;
	static void *fn;
	static const struct dlib_symbol syms[] = { { "f", &fn } };
	static struct dlib lib = DLIB_INIT("libboxd-test-no-such-library.so.0", syms);
	assert_false(dlib_loaded(&lib));
	assert_string_equal(dlib_error(&lib), "");
	assert_int_equal(dlib_load(&lib), -ELIBACC);
	assert_non_null(strstr(dlib_error(&lib), "libboxd-test-no-such-library.so.0"));
	assert_null(fn);
	/* The failure is remembered: no second dlopen, the same error. */
	assert_int_equal(dlib_load(&lib), -ELIBACC);
	assert_false(dlib_loaded(&lib));
}

static void test_missing_symbol_sets_no_pointer(void **state)
{
	(void)state;
	/* A real library, one real symbol and one that is not there: all or
	 * none, so the real one stays NULL too. */
	static void *version, *nothing;
	static const struct dlib_symbol syms[] = { { "sqlite3_libversion", &version },
						   { "boxd_test_no_such_symbol", &nothing } };
	static struct dlib lib = DLIB_INIT("libsqlite3.so.0", syms);
	assert_int_equal(dlib_load(&lib), -ELIBACC);
	assert_non_null(strstr(dlib_error(&lib), "boxd_test_no_such_symbol"));
	assert_null(version);
	assert_null(nothing);
}

static void *version_seen[8];
static void *version_slot;
static const struct dlib_symbol race_syms[] = { { "sqlite3_libversion", &version_slot } };
static struct dlib race_lib = DLIB_INIT("libsqlite3.so.0", race_syms);
static pthread_barrier_t race_start;

static void *load_in_thread(void *arg)
{
	size_t i = (size_t)arg;
	pthread_barrier_wait(&race_start);
	if (dlib_load(&race_lib) == 0)
		version_seen[i] = __atomic_load_n(&version_slot, __ATOMIC_RELAXED);
	return NULL;
}

static void test_threads_load_once(void **state)
{
	(void)state;
	pthread_t t[8];
	pthread_barrier_init(&race_start, NULL, 8);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, load_in_thread, (void *)i), 0);
	for (size_t i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&race_start);
	assert_true(dlib_loaded(&race_lib));
	/* Every thread that returned saw the pointer set. */
	for (size_t i = 0; i < 8; i++) {
		assert_non_null(version_seen[i]);
		assert_ptr_equal(version_seen[i], version_slot);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_library_loads),
		cmocka_unit_test(test_missing_library_is_an_error),
		cmocka_unit_test(test_missing_symbol_sets_no_pointer),
		cmocka_unit_test(test_threads_load_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

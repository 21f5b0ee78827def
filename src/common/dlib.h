/* dlib.h — a shared library loaded when first needed (dlopen(3)), not at
 * the start of every process.
 *
 * Why: a library linked the usual way is mapped, relocated and
 * initialised in every boxd process, used or not. libarchive alone brings
 * libxml2, ICU and libstdc++ (2 MiB of an idle daemon); libpq, libmariadb,
 * libssh, libcurl and libsystemd bring Kerberos, LDAP, SASL and more. The
 * daemon at rest uses none of them, and most workers use one or two
 * (issue 18: daemon RSS <= 10 MiB idle). systemd loads its optional
 * libraries the same way (src/shared/dlfcn-util.h).
 *
 * A library is described once, in <name>_lib.c, by its soname and its
 * symbols; each symbol becomes a pointer sym_<function> of the function's
 * own type (typeof), declared in <name>_lib.h:
 *
 *	#define PQ_SYMBOLS(X) X(PQconnectdbParams) X(PQexec) ...
 *	PQ_SYMBOLS(DLIB_DECLARE)                      // in the .h
 *	PQ_SYMBOLS(DLIB_DEFINE)                       // in the .c
 *	static const struct dlib_symbol symbols[] = { PQ_SYMBOLS(DLIB_SYMBOL) };
 *	static struct dlib lib = DLIB_INIT("libpq.so.5", symbols);
 *	int pq_lib_load(void) { return dlib_load(&lib); }
 *
 * Callers call <name>_lib_load() before the first sym_ call (it is cheap
 * after the first time). The pointers are NULL until then, so a path that
 * forgot it crashes at once in the tests rather than misbehaving. The
 * usual way to make forgetting impossible: the library's constructors
 * (archive_lib_read_new(), curl_lib_easy_init(), ...) are wrappers that
 * load first, and every other function needs an object only a
 * constructor makes.
 *
 * The soname is the ABI the headers describe (the package's Depends pins
 * it, debian/control); test-dlib loads every library of boxd, so a
 * rename breaks the build's tests, not a box. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct dlib_symbol {
	const char *name;
	void **slot;
};

struct dlib {
	const char *soname;
	const struct dlib_symbol *symbols;
	size_t n_symbols;
	/* 0 not tried, 1 loaded, or the load's negative errno. Written once,
	 * under dlib.c's mutex (message first); read-only afterwards. */
	int state;
	char message[256];
};

#define DLIB_DECLARE(f) extern typeof(f) *sym_##f;
#define DLIB_DEFINE(f) typeof(f) *sym_##f;
#define DLIB_SYMBOL(f) { #f, (void **)&sym_##f },
#define DLIB_INIT(so, syms) { .soname = (so), .symbols = (syms), .n_symbols = sizeof(syms) / sizeof((syms)[0]) }

/* Load lib and resolve all its symbols, once per process; thread-safe.
 * 0, or -ELIBACC when the library or one of its symbols is missing (no
 * pointer is then set, and every later call returns the same error);
 * dlib_error() says which. */
int dlib_load(struct dlib *lib);

/* The reason of lib's last failed load ("libarchive.so.13: cannot open
 * shared object file: ..."), or "" if it loaded or was not tried. */
const char *dlib_error(struct dlib *lib);

/* Whether lib is loaded (no load is attempted). */
bool dlib_loaded(struct dlib *lib);

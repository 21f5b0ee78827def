/* dlib.c — see dlib.h. */
#include "dlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* One mutex for every library: loads are rare (once per library and
 * process) and the lock keeps two threads from loading one library twice. */
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;

/* Under load_mu, with lib->state 0. */
static int load_locked(struct dlib *lib)
{
	/* RTLD_NOW: a missing symbol is found here, not at some later call;
	 * RTLD_LOCAL: the symbols are reached only through the pointers. The
	 * handle is never closed: the pointers live as long as the process. */
	void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(lib->message, sizeof(lib->message), "%s", dlerror());
		return -ELIBACC;
	}
	void *found[lib->n_symbols];
	for (size_t i = 0; i < lib->n_symbols; i++) {
		dlerror();
		found[i] = dlsym(h, lib->symbols[i].name);
		if (!found[i]) {
			const char *e = dlerror();
			snprintf(lib->message, sizeof(lib->message), "%s: no symbol %s%s%s", lib->soname,
				 lib->symbols[i].name, e ? ": " : "", e ? e : "");
			dlclose(h);
			return -ELIBACC;
		}
	}
	/* All or none: a caller either has every pointer or an error. */
	for (size_t i = 0; i < lib->n_symbols; i++)
		*lib->symbols[i].slot = found[i];
	return 1;
}

int dlib_load(struct dlib *lib)
{
	/* The fast path after the first load: the release store below
	 * publishes the pointers with the state. */
	if (__atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1)
		return 0;
	pthread_mutex_lock(&load_mu);
	int st = lib->state;
	if (st == 0) {
		st = load_locked(lib);
		__atomic_store_n(&lib->state, st, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&load_mu);
	return st == 1 ? 0 : st;
}

const char *dlib_error(struct dlib *lib)
{
	return __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) < 0 ? lib->message : "";
}

bool dlib_loaded(struct dlib *lib) { return __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1; }

/* wal-sync-vfs.c — see wal-sync-vfs.h. A shim over the default VFS: each
 * file it opens is the real one behind our methods, which forward every
 * call and watch two: xSync on a WAL file, and xShmLock on the write lock
 * (the lock index 0 of the WAL-index, WAL_WRITE_LOCK in SQLite). */
#include "wal-sync-vfs.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* right after this struct, in SQLite's allocation */
	bool wal;
	bool synced;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static struct wal_sync_counts counts;
static bool write_locked;

#define REAL(f) (((struct shim_file *)(f))->real)

static int x_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int x_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int x_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int x_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int x_sync(sqlite3_file *f, int flags)
{
	struct shim_file *s = (struct shim_file *)f;
	if (s->wal && !s->synced) {
		s->synced = true;
		if (write_locked)
			counts.first_syncs_locked++;
		else
			counts.first_syncs_unlocked++;
	}
	return s->real->pMethods->xSync(s->real, flags);
}
static int x_file_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int x_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int x_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int x_check_reserved(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int x_file_control(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int x_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int x_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int x_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}
static int x_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	int rc = REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
	if (rc == SQLITE_OK && offset == 0 && (flags & SQLITE_SHM_EXCLUSIVE)) {
		bool lock = flags & SQLITE_SHM_LOCK;
		if (lock && !write_locked)
			counts.write_locks++;
		write_locked = lock;
	}
	return rc;
}
static void x_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int x_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int x_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int x_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods shim_methods = {
	.iVersion = 3,
	.xClose = x_close,
	.xRead = x_read,
	.xWrite = x_write,
	.xTruncate = x_truncate,
	.xSync = x_sync,
	.xFileSize = x_file_size,
	.xLock = x_lock,
	.xUnlock = x_unlock,
	.xCheckReservedLock = x_check_reserved,
	.xFileControl = x_file_control,
	.xSectorSize = x_sector_size,
	.xDeviceCharacteristics = x_device,
	.xShmMap = x_shm_map,
	.xShmLock = x_shm_lock,
	.xShmBarrier = x_shm_barrier,
	.xShmUnmap = x_shm_unmap,
	.xFetch = x_fetch,
	.xUnfetch = x_unfetch,
};

static int x_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out_flags)
{
	(void)vfs;
	struct shim_file *s = (struct shim_file *)f;
	memset(s, 0, sizeof(*s));
	s->real = (sqlite3_file *)(s + 1);
	s->wal = flags & SQLITE_OPEN_WAL;
	int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set: set it only when
	 * the real file was opened. */
	s->base.pMethods = s->real->pMethods ? &shim_methods : NULL;
	return rc;
}

#define PASS(name, ...) real_vfs->name(real_vfs, __VA_ARGS__)
static int x_delete(sqlite3_vfs *v, const char *n, int d) { (void)v; return PASS(xDelete, n, d); }
static int x_access(sqlite3_vfs *v, const char *n, int fl, int *r) { (void)v; return PASS(xAccess, n, fl, r); }
static int x_full_path(sqlite3_vfs *v, const char *n, int len, char *out) { (void)v; return PASS(xFullPathname, n, len, out); }
static void *x_dl_open(sqlite3_vfs *v, const char *n) { (void)v; return PASS(xDlOpen, n); }
static void x_dl_error(sqlite3_vfs *v, int n, char *m) { (void)v; PASS(xDlError, n, m); }
static void (*x_dl_sym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return PASS(xDlSym, h, s); }
static void x_dl_close(sqlite3_vfs *v, void *h) { (void)v; PASS(xDlClose, h); }
static int x_randomness(sqlite3_vfs *v, int n, char *out) { (void)v; return PASS(xRandomness, n, out); }
static int x_sleep(sqlite3_vfs *v, int us) { (void)v; return PASS(xSleep, us); }
static int x_current_time(sqlite3_vfs *v, double *t) { (void)v; return PASS(xCurrentTime, t); }
static int x_last_error(sqlite3_vfs *v, int n, char *m) { (void)v; return PASS(xGetLastError, n, m); }
static int x_current_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return PASS(xCurrentTimeInt64, t); }

void wal_sync_vfs_install(void)
{
	counts = (struct wal_sync_counts){ 0 };
	write_locked = false;
	if (real_vfs)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "wal-sync-watch",
		.xOpen = x_open,
		.xDelete = x_delete,
		.xAccess = x_access,
		.xFullPathname = x_full_path,
		.xDlOpen = x_dl_open,
		.xDlError = x_dl_error,
		.xDlSym = x_dl_sym,
		.xDlClose = x_dl_close,
		.xRandomness = x_randomness,
		.xSleep = x_sleep,
		.xCurrentTime = x_current_time,
		.xGetLastError = x_last_error,
		.xCurrentTimeInt64 = x_current_time64,
	};
	sqlite3_vfs_register(&shim_vfs, 1);
}

struct wal_sync_counts wal_sync_vfs_counts(void)
{
	return counts;
}

/* wal-sync-vfs.h — a SQLite VFS, for tests, that passes everything to the
 * default one and records when each WAL file is first synced: while this
 * process held the database's write lock, or not. SQLite fsyncs the WAL's
 * directory at that first sync (store_sqlite.c, sync_wal_now()), so where
 * it falls decides whether other writers wait for it. Not thread-safe:
 * one connection at a time. */
#pragma once

struct wal_sync_counts {
	int first_syncs_unlocked; /* a WAL's first sync, write lock not held */
	int first_syncs_locked;   /* ... inside the write lock */
	int write_locks;          /* times the write lock was taken */
};

/* Install as the default VFS (once per process), and zero the counts. */
void wal_sync_vfs_install(void);
struct wal_sync_counts wal_sync_vfs_counts(void);

/* state_dir.h — keep local users out of the state dir.
 *
 * The state dir holds the database (with every app's env, secrets
 * included), the task logs and the tokens file. boxd runs with umask 077
 * (main.c), so whatever it creates is its own; this checks what was there
 * before it started: a state dir made by hand (or by an older version) may
 * be world-readable, and a database file may be 0644.
 */
#pragma once

#include <stddef.h>

#include "common/config.h"

/* Create the state dir (0700) if missing; refuse it (-EPERM, message in
 * err) when another user owns it (that user could replace the database) —
 * other than the [tasks] user, whose workers write it anyway;
 * take write from its group and everything from others; make the SQLite
 * database (and its -wal, -shm, -journal), the tokens file and every task
 * log 0600 and the log dirs 0700 — whatever of that this process owns.
 * What it changed is logged (warn). */
int state_dir_secure(const struct boxd_config *cfg, char *err, size_t errlen);

/* proc.h — identifying processes and this host.
 *
 * A process is identified by pid *plus* its start time (field 22 of
 * /proc/PID/stat, in clock ticks since boot), never by pid alone: pids are
 * reused, and a lock owner whose pid now belongs to another process is dead.
 * A host is identified by its boot id, which changes on every boot, so every
 * owner recorded before a reboot is recognisably dead after it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Start time of `pid` in clock ticks since boot. Returns 0 and sets
 * *ret_start, -ESRCH when no such process exists or it is a zombie (it will
 * never run again), other negative errno on read/parse failure. */
int proc_start_time(pid_t pid, uint64_t *ret_start);

enum proc_liveness { PROC_ALIVE, PROC_GONE, PROC_REUSED };

/* Whether the process (pid, start_time) is still the same running process.
 * PROC_REUSED: the pid exists but belongs to a newer process. A zombie is
 * PROC_GONE. When /proc cannot be read for another reason the answer is
 * PROC_ALIVE: never declare an owner dead on doubt. */
enum proc_liveness proc_check(pid_t pid, uint64_t start_time);

/* This host's id: $BOXD_HOST_ID when set (tests run several "hosts" on one
 * machine), else /proc/sys/kernel/random/boot_id. Copies at most len-1 bytes.
 * Returns 0 or negative errno. */
int host_id_get(char *buf, size_t len);

/* Whether this process runs with no_new_privs set (prctl; systemd's
 * NoNewPrivileges=yes): setuid programs such as sudo cannot gain
 * privileges then. 1 yes, 0 no, negative errno. */
int proc_no_new_privs(void);

/* proc.h — identifying processes and this host.
 *
 * A process is identified by pid *plus* its start time (field 22 of
 * /proc/PID/stat, in clock ticks since boot), never by pid alone: pids are
 * reused, and a lock owner whose pid now belongs to another process is dead.
 * A host is identified by its host id, and a host's processes by its owner
 * id, which adds the boot (see "Hosts" below): every owner recorded before
 * a reboot is recognisably dead after it.
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

/* A process held by reference: pid, start time and, while open, a pidfd.
 * The pidfd pins the pid (it cannot name another process while the pidfd
 * is open) and can be polled for the exit; the start time tells whether a
 * pid recorded earlier (a task row) still names the same process. The
 * worker processes of the supervisor are kept this way. */
struct proc_ref {
	pid_t pid;           /* 0: none */
	int pidfd;           /* -1: not open */
	uint64_t start_time; /* clock ticks since boot; 0: unknown */
};
#define PROC_REF_NONE ((struct proc_ref){ .pid = 0, .pidfd = -1, .start_time = 0 })

/* pidfd_open(2): a pidfd (close-on-exec) for pid, or negative errno. */
int pidfd_open_pid(pid_t pid);

/* Open a reference to pid. With start_time != 0, only to that very
 * process: the start time is checked again once the pidfd is open (the pid
 * cannot be recycled then, so a match is conclusive), and a process that
 * is gone, a zombie, or another one with that pid now gives -ESRCH. With
 * start_time 0: whatever process has the pid (a zombie too: it still has
 * to be reaped); its start time is read when it can be. Other negative
 * errno from pidfd_open. When /proc cannot tell, the process counts as
 * the same (see proc_check). */
int proc_ref_open(pid_t pid, uint64_t start_time, struct proc_ref *ret);

/* A reference to a child just started (pid and pidfd from clone/fork +
 * pidfd_open; the pidfd is taken over): reads its start time (0 when it
 * already exited). */
struct proc_ref proc_ref_of_child(pid_t pid, int pidfd);

/* Whether the referenced process is still the same running process
 * (proc_check() of its pid and start time; a zombie is PROC_GONE, and so
 * is a reference without a start time: it had exited when made). */
enum proc_liveness proc_ref_check(const struct proc_ref *ref);

/* Close the pidfd; the reference is PROC_REF_NONE after. Accepts an empty
 * reference. */
void proc_ref_close(struct proc_ref *ref);

/* Hosts. A host has two ids:
 *
 *   - the host id, which names the machine for good (a reboot is the same
 *     host): `[host] id` in the config (exported to the workers as
 *     $BOXD_HOST_ID, which tests also set to run several "hosts" on one
 *     machine), else /etc/machine-id. Apps are placed on it, the hosts
 *     table and per-host lock names use it.
 *   - the owner id "<host id>/<boot tag>" (the boot tag: the first 12 hex
 *     digits of the kernel's boot id), which lock owners and task claims
 *     carry with pid + start time. Start times count from boot, so a pid
 *     and start time recorded before a reboot may name a new process after
 *     it; the owner id does not match then: an owner or claim of this host
 *     from an earlier boot is dead (host_owner_earlier_boot()).
 */
#define HOST_ID_MAX 48       /* characters of a host id */
#define HOST_BOOT_TAG_LEN 12 /* hex digits of the boot id in an owner id */

/* A host id: 1..HOST_ID_MAX of [A-Za-z0-9._-], starting alphanumeric (it
 * goes into lock names and owner ids, so never '/', ':' or a space). */
bool host_id_valid(const char *id);

/* This host's id: $BOXD_HOST_ID, else /etc/machine-id (or dbus's copy),
 * else — a container without a machine id — the boot id. *ret_source (may
 * be NULL) says which. 0, -EINVAL for an invalid id, or negative errno. */
int host_id_get_from(char *buf, size_t len, const char **ret_source);
int host_id_get(char *buf, size_t len);

/* The kernel's boot id, or $BOXD_FAKE_BOOT_ID (a named fake: only tests set
 * it, to be "another boot" of the same host). 0 or negative errno. */
int host_boot_id_get(char *buf, size_t len);

/* This process's owner id, "<host id>/<boot tag>". 0 or negative errno
 * (-ENAMETOOLONG when it does not fit). */
int host_owner_id_get(char *buf, size_t len);

/* The length of the host id part of an owner id (all of it when it has no
 * boot tag: an owner recorded by an older boxd). */
size_t host_owner_host_len(const char *owner);

/* Whether `owner` is an owner id of the same host as owner id `mine` but of
 * another (so an earlier) boot: all its processes are dead. */
bool host_owner_earlier_boot(const char *owner, const char *mine);

/* Whether this process runs with no_new_privs set (prctl; systemd's
 * NoNewPrivileges=yes): setuid programs such as sudo cannot gain
 * privileges then. 1 yes, 0 no, negative errno. */
int proc_no_new_privs(void);

/* bind_source.h — what boxd hands to the container engine as a bind source
 * is the directory boxd made, before and after the engine call.
 *
 * The engine resolves a bind source by name, following symlinks, when it
 * creates or starts a container — after boxd checked the path. Whoever can
 * rename entries on the way can swap the directory in between: an sftp
 * login works as root on the appsdata root (rename /appsdata/wiki away,
 * symlink /appsdata/wiki -> /etc, and the next restart of wiki mounted the
 * host's /etc into it); a local user owning a custom dir's parent can do
 * the same. So every bind source goes through this one check, right before
 * the engine call:
 *   - opened component by component with O_PATH|O_NOFOLLOW below its
 *     trusted root (fs.h): a symlink anywhere on the way fails;
 *   - a directory;
 *   - for a directory boxd created (an app's data dir, a volume of type
 *     dir): the same device and inode boxd recorded when it made it, so a
 *     directory renamed in from elsewhere (another app's data) fails too.
 *     Owners are not compared: an app may chown its own data dir, and a
 *     matching device/inode is the same directory whoever owns it.
 * and again after it, on what the container really got: the mount target
 * inside the running container (/proc/<pid>/root/<target>, resolved with
 * openat2(RESOLVE_IN_ROOT)) must have that device and inode. A caller that
 * finds otherwise stops the container and fails its task
 * (`bind_source_changed`).
 *
 * What this cannot cover: a start the engine does on its own (a restart
 * policy after a crash or a reboot) resolves the path again without boxd;
 * the directories on the way must therefore not be writable by others in
 * the first place (the sftp container's side, see docs/ARCHITECTURE.md
 * "Security").
 *
 * Functions return 0 or a negative errno with a message in err: -ELOOP a
 * symlink on the way, -ENOTDIR not a directory, -ENOENT missing, -EXDEV
 * another directory than the recorded one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fs.h"

struct bind_source {
	const char *path;   /* on the host */
	const char *what;   /* for messages: "the data dir of app wiki" */
	/* The identity boxd recorded; NULL: none to compare (a root from the
	 * config, a mount point volume, or a row from before they were
	 * recorded: the caller records *ret_id then). */
	const struct fs_id *expect;
};

/* Check `b` now (above). *ret_id (optional) gets its identity. */
int bind_source_check(const char *const *roots, const struct bind_source *b, struct fs_id *ret_id, char *err,
		      size_t errlen);

/* What the running process `pid` (a container's init) sees at `target`
 * (an absolute path in its mount namespace) must be `want`. -ESRCH when
 * the process is gone; -EXDEV with a message when it is another
 * directory; -EACCES when this process may not look into another's mount
 * namespace (a worker that is not root, [tasks] user): the caller then
 * checks the source path on the host again instead
 * (bind_source_check() with `want` expected), the weaker check. */
int bind_source_check_mounted(pid_t pid, const char *target, const struct fs_id *want, const char *what, char *err,
			      size_t errlen);

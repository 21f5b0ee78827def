/* state_dir.c — see state_dir.h. */
#include "state_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tempfile.h"

/* Take the bits in `drop` from what `path` names, if it is ours and not a
 * symlink (opened with O_NOFOLLOW: the chmod lands on what was checked). A
 * missing path is fine. */
static void tighten(const char *path, mode_t drop)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && st.st_uid == geteuid() &&
	    (st.st_mode & drop)) {
		mode_t to = st.st_mode & 07777 & ~drop;
		if (fchmod(fd, to) == 0)
			log_warn("%s was mode %04o, readable by other users: now %04o", path, st.st_mode & 07777, to);
		else
			log_warn("%s is mode %04o and cannot be made %04o: %s", path, st.st_mode & 07777, to,
				 strerror(errno));
	}
	close(fd);
}

static void tighten_logs(const char *state_dir)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/logs", state_dir);
	tighten(path, 077);
	snprintf(path, sizeof(path), "%s/logs/tasks", state_dir);
	tighten(path, 077);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char file[4500];
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		tighten(file, 077);
	}
	closedir(d);
}

int state_dir_secure(const struct boxd_config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->state_dir;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "cannot create the state dir %s: %s", dir, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(dir, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot stat the state dir %s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the state dir %s is not a directory", dir);
		return -ENOTDIR;
	}
	/* With [tasks] user the operator may have given the state dir to that
	 * user, whose workers write the database and the logs: allowed, and
	 * no privilege boundary (docs/ARCHITECTURE.md, "Security"). */
	struct passwd *pw = cfg->task_user ? getpwnam(cfg->task_user) : NULL;
	if (st.st_uid != geteuid() && !(pw && pw->pw_uid == st.st_uid)) {
		snprintf(err, errlen,
			 "the state dir %s is owned by uid %u, not by uid %u that runs boxd: that user could replace "
			 "the database; chown it to uid %u or choose another state dir",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid());
		return -EPERM;
	}
	/* The group may keep read and search (an operators' group reaching
	 * the 0660 socket inside); nobody else gets anything. */
	tighten(dir, 027);
	if (strcmp(cfg->store_backend, "sqlite") == 0) {
		static const char *const suffixes[] = { "", "-wal", "-shm", "-journal", "-lockwake" };
		for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
			char path[4200];
			snprintf(path, sizeof(path), "%s%s", cfg->sqlite_path, suffixes[i]);
			tighten(path, 077);
		}
	}
	tighten(cfg->tokens_file, 077);
	tighten_logs(dir);
	/* Temp files of writers that crashed before their rename (tasks'
	 * outcomes, the tokens file, the update's state files). */
	char logs[4200];
	snprintf(logs, sizeof(logs), "%s/logs/tasks", dir);
	tempfile_sweep(dir);
	tempfile_sweep(logs);
	return 0;
}

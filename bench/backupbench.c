/* backupbench — backup and restore throughput of one data dir, plain and
 * encrypted (backups/tarball.h, backups/backup_crypt.h), through the same
 * calls the backup and restore tasks make: tarball_create_ex() (archive,
 * fsync, rename) and tarball_open_verified() + tarball_extract_fd()
 * (verify the whole file, SHA-256 and for an encrypted one every record,
 * then extract).
 *
 *   backupbench [-m MB] [-f zstd|gzip] [-k] [DIR]
 *
 * Without DIR it makes a data dir of MB (default 200) MiB in a temp dir:
 * half random bytes (incompressible, like media), half text-like bytes
 * (compressible, like databases and logs), in files of 1-16 MiB plus 2000
 * small files. -k keeps the temp dir. Prints, per run, MB/s of data
 * (10^6 bytes of file data per second) for backup and for restore — by the
 * wall clock and by this process's CPU time (user + system; the wall clock
 * on a shared machine measures the neighbours too) — and the archive's
 * size. The passphrase's scrypt (N=2^15, r=8) is included in
 * the encrypted times, as in a task.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backups/backup_crypt.h"
#include "backups/tarball.h"
#include "common/fs.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process (user + system): on a shared, loaded
 * machine the wall clock measures the neighbours too. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "backupbench: %s: %s\n", what, err);
	exit(1);
}

static void write_file(const char *path, size_t size, bool random)
{
	static char buf[1 << 20];
	FILE *f = fopen(path, "wb");
	if (!f)
		die(path, strerror(errno));
	static const char words[] = "the quick brown fox jumps over the lazy dog 0123456789 lorem ipsum dolor\n";
	while (size > 0) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);
		if (random) {
			for (size_t off = 0; off < n;) {
				ssize_t got = getrandom(buf + off, n - off, 0);
				if (got > 0)
					off += (size_t)got;
			}
		} else {
			for (size_t i = 0; i < n; i++)
				buf[i] = words[(i * 7 + (i >> 11)) % (sizeof(words) - 1)];
		}
		fwrite(buf, 1, n, f);
		size -= n;
	}
	fclose(f);
}

static void make_data(const char *dir, int mb)
{
	char p[8192];
	int64_t left = (int64_t)mb * 1024 * 1024;
	for (int i = 0; left > 0; i++) {
		size_t size = (size_t)(1 + i % 16) * 1024 * 1024;
		if ((int64_t)size > left)
			size = (size_t)left;
		snprintf(p, sizeof(p), "%s/file%03d.bin", dir, i);
		write_file(p, size, i % 2 == 0);
		left -= (int64_t)size;
	}
	snprintf(p, sizeof(p), "%s/small", dir);
	mkdir(p, 0755);
	for (int i = 0; i < 2000; i++) {
		snprintf(p, sizeof(p), "%s/small/f%04d.txt", dir, i);
		write_file(p, 100 + (size_t)i, false);
	}
}

static void run(const char *src, const char *work, enum tarball_format fmt, struct backup_secret *s, int64_t bytes)
{
	char arc[8192], dst[8192], err[1024];
	snprintf(arc, sizeof(arc), "%s/bench%s%s", work, tarball_format_ext(fmt), s ? BACKUP_CRYPT_EXT : "");
	snprintf(dst, sizeof(dst), "%s/restored", work);
	struct tarball_create_opts o = { .fmt = fmt, .secret = s };
	struct tarball_info info;
	double t0 = now_s(), c0 = cpu_s();
	if (tarball_create_ex(src, arc, &o, NULL, &info, err, sizeof(err)) < 0)
		die("backup", err);
	double t_backup = now_s() - t0, c_backup = cpu_s() - c0;

	if (mkdir(dst, 0700) < 0)
		die(dst, strerror(errno));
	struct tarball_extract_opts xo = { .sha256 = info.sha256, .size = info.size, .owners = true, .secret = s };
	t0 = now_s();
	c0 = cpu_s();
	int fd, dfd = open(dst, O_RDONLY | O_DIRECTORY);
	if (tarball_open_verified(arc, &xo, &fd, err, sizeof(err)) < 0)
		die("verify", err);
	if (tarball_extract_fd(fd, arc, dfd, &xo, NULL, NULL, err, sizeof(err)) < 0)
		die("restore", err);
	if (fsync(dfd) < 0) /* as a restore does before the swap */
		die("fsync", strerror(errno));
	double t_restore = now_s() - t0, c_restore = cpu_s() - c0;
	close(fd);
	close(dfd);
	printf("%-5s %-9s  backup %6.1f MB/s (%5.2f s; CPU %5.2f s = %6.1f MB/s)  restore %6.1f MB/s (%5.2f s; CPU "
	       "%5.2f s = %6.1f MB/s)  archive %.1f MB\n",
	       tarball_format_name(fmt), s ? "encrypted" : "plain", (double)bytes / 1e6 / t_backup, t_backup, c_backup,
	       (double)bytes / 1e6 / c_backup, (double)bytes / 1e6 / t_restore, t_restore, c_restore,
	       (double)bytes / 1e6 / c_restore, (double)info.size / 1e6);
	fflush(stdout);
	unlink(arc);
	const char *roots[] = { work, NULL };
	if (fs_remove_tree(roots, dst, err, sizeof(err)) < 0)
		die("cleanup", err);
}

int main(int argc, char **argv)
{
	int mb = 200, c;
	bool keep = false;
	const char *format = NULL;
	while ((c = getopt(argc, argv, "m:f:k")) != -1) {
		if (c == 'm')
			mb = atoi(optarg);
		else if (c == 'f')
			format = optarg;
		else if (c == 'k')
			keep = true;
		else
			return 2;
	}
	char work[] = "/var/tmp/boxd-backupbench-XXXXXX", src[4096], err[1024];
	if (!mkdtemp(work))
		die("mkdtemp", strerror(errno));
	if (optind < argc) {
		snprintf(src, sizeof(src), "%s", argv[optind]);
	} else {
		snprintf(src, sizeof(src), "%s/data", work);
		mkdir(src, 0755);
		make_data(src, mb);
	}
	int64_t bytes;
	if (tarball_tree_size(src, &bytes, NULL, err, sizeof(err)) < 0)
		die(src, err);
	sync();
	printf("data dir %s: %.1f MB of file data\n", src, (double)bytes / 1e6);
	struct backup_secret s;
	if (backup_secret_set(BACKUP_KEY_PASSPHRASE, "correct horse battery staple", 28, &s, err, sizeof(err)) < 0)
		die("secret", err);
	enum tarball_format fmts[] = { TARBALL_ZSTD, TARBALL_GZIP };
	for (int i = 0; i < 2; i++) {
		if (format && strcmp(format, tarball_format_name(fmts[i])) != 0)
			continue;
		run(src, work, fmts[i], NULL, bytes);
		run(src, work, fmts[i], &s, bytes);
	}
	backup_secret_release(&s);
	if (!keep) {
		const char *roots[] = { "/var/tmp", NULL };
		fs_remove_tree(roots, work, err, sizeof(err));
	} else {
		printf("kept %s\n", work);
	}
	return 0;
}

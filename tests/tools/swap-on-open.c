/* swap-on-open — the attacker of issue 10, finding 3: the moment a file
 * is opened, rename another file over it.
 *
 *	swap-on-open FILE REPLACEMENT READY
 *
 * Watches FILE with inotify (IN_OPEN), creates READY once the watch is in
 * place (the test waits for it), then, at the first open of FILE by anyone,
 * renames REPLACEMENT over FILE and exits 0. A reader that opened FILE
 * once and keeps reading that descriptor is not affected; one that opens
 * it again by name gets REPLACEMENT. Exits 1 on error, 2 if FILE was not
 * opened within 120 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: swap-on-open FILE REPLACEMENT READY\n");
		return 1;
	}
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, argv[1], IN_OPEN) < 0) {
		fprintf(stderr, "swap-on-open: cannot watch %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "swap-on-open: cannot create %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	close(fd);
	struct pollfd p = { .fd = in, .events = POLLIN };
	if (poll(&p, 1, 120 * 1000) != 1) {
		fprintf(stderr, "swap-on-open: %s was not opened\n", argv[1]);
		return 2;
	}
	if (rename(argv[2], argv[1]) < 0) {
		fprintf(stderr, "swap-on-open: cannot rename %s over %s: %s\n", argv[2], argv[1], strerror(errno));
		return 1;
	}
	printf("swapped\n");
	return 0;
}

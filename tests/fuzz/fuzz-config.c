/* fuzz-config.c — the config file parser (inih + our handler): any file is
 * either loaded or refused with a message, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64], err[512];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct boxd_config cfg;
	if (config_load(&cfg, path, "/tmp/boxd-fuzz-state", err, sizeof(err)) == 0)
		config_release(&cfg);
	close(fd);
	return 0;
}

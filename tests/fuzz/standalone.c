/* standalone.c — run a fuzz target over files without libFuzzer, so that
 * `make check` replays the seed corpus (and every crash once found) with
 * the normal compiler under the sanitizers. `make fuzz` builds the same
 * targets with clang's -fsanitize=fuzzer for real fuzzing. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *grown = realloc(buf, cap);
			if (!grown)
				abort();
			buf = grown;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			while (d && (de = readdir(d))) {
				if (de->d_name[0] == '.')
					continue;
				char path[4096];
				snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
				if (run_file(path))
					return 1;
				files++;
			}
			if (d)
				closedir(d);
		} else {
			if (run_file(argv[i]))
				return 1;
			files++;
		}
	}
	/* Also a few inputs no corpus should lack. */
	LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
	printf("1..1\nok 1 - %d corpus file(s) replayed without a crash\n", files);
	return 0;
}

/* lock_spec.c — see lock_spec.h. */
#include "lock_spec.h"

#include <errno.h>
#include <string.h>

bool lock_spec_name_valid(const char *name)
{
	size_t len = 0;
	for (const char *p = name; *p; p++, len++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  strchr(":._-@/", c) != NULL;
		if (!ok)
			return false;
	}
	return len > 0 && len < LOCK_SPEC_NAME_MAX;
}

int lock_spec_parse(const char *spec, char name[LOCK_SPEC_NAME_MAX], bool *ret_shared)
{
	char buf[LOCK_SPEC_NAME_MAX];
	bool shared = false;
	size_t len = strlen(spec);
	static const struct { const char *suffix; bool shared; } suffixes[] = {
		{ ":shared", true },
		{ ":exclusive", false },
	};
	for (size_t i = 0; i < 2; i++) {
		size_t sl = strlen(suffixes[i].suffix);
		if (len > sl && strcmp(spec + len - sl, suffixes[i].suffix) == 0) {
			len -= sl;
			shared = suffixes[i].shared;
			break;
		}
	}
	if (len == 0 || len >= LOCK_SPEC_NAME_MAX)
		return -EINVAL;
	memcpy(buf, spec, len);
	buf[len] = '\0';
	if (!lock_spec_name_valid(buf))
		return -EINVAL;
	memcpy(name, buf, len + 1);
	*ret_shared = shared;
	return 0;
}

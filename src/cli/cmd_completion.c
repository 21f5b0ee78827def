/* cmd_completion.c — `boxctl completion bash|zsh`: a shell completion
 * script made from the command table (boxctl.c), so that a command or an
 * option added there is completed without anyone editing a script. The
 * build runs it to make the files `make install` and the Debian package
 * install (dist/completion/meson.build).
 *
 * What is completed: the command words (the groups, then a group's
 * subcommands), and after `-` the long options of the command typed so far
 * — every `--word` that appears in the entry's synopsis or help text — and
 * the global options. Both scripts find "the command typed so far" the same
 * way: the words before the cursor that are not options (and not the value
 * of a global option that takes one), matched against the command names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boxctl.h"

#define GLOBAL_OPTIONS "--socket --url --token --json --help"
#define GLOBAL_VALUED "--socket|--url|--token"

/* Append the distinct long options found in `text` to `out` (space
 * separated). */
static void add_options(const char *text, char *out, size_t len)
{
	for (const char *p = text ? strstr(text, "--") : NULL; p; p = strstr(p + 2, "--")) {
		if (p > text && (p[-1] == '-' || p[-1] == '\'' || (p[-1] >= 'a' && p[-1] <= 'z')))
			continue;
		size_t n = 2;
		while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '-')
			n++;
		if (n == 2)
			continue;
		char opt[64];
		if (n >= sizeof(opt))
			continue;
		memcpy(opt, p, n);
		opt[n] = '\0';
		/* Already there? Compare whole words. */
		bool dup = false;
		for (const char *q = strstr(out, opt); q && !dup; q = strstr(q + 1, opt))
			dup = (q == out || q[-1] == ' ') && (q[n] == ' ' || q[n] == '\0');
		if (dup)
			continue;
		size_t o = strlen(out);
		snprintf(out + o, len - o, "%s%s", o ? " " : "", opt);
	}
}

/* A synopsis word of literal alternatives ("bash|zsh") is completed as
 * words. */
static void literal_choices(const char *args, char *out, size_t len)
{
	out[0] = '\0';
	for (const char *p = args; p && *p;) {
		size_t n = strcspn(p, " ");
		bool literal = n > 0 && memchr(p, '|', n) != NULL;
		for (size_t k = 0; k < n && literal; k++)
			literal = (p[k] >= 'a' && p[k] <= 'z') || p[k] == '|';
		if (literal && strlen(out) + n + 2 < len) {
			size_t o = strlen(out);
			snprintf(out + o, len - o, "%s%.*s", o ? " " : "", (int)n, p);
			for (char *c = out + o; *c; c++)
				if (*c == '|')
					*c = ' ';
		}
		p += n;
		p += *p == ' ';
	}
}

/* The distinct first words of the command names, or the second words of
 * the commands in group `group` (space separated). */
static void words_of(const struct cli_command *cmds, size_t n, const char *group, char *out, size_t len)
{
	out[0] = '\0';
	size_t gl = group ? strlen(group) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = cmds[i].name, *w = name;
		if (group) {
			if (strncmp(name, group, gl) != 0 || name[gl] != ' ')
				continue;
			w = name + gl + 1;
		}
		size_t wl = strcspn(w, " ");
		bool dup = false;
		for (const char *q = out; *q && !dup; q += strcspn(q, " "), q += *q == ' ')
			dup = strncmp(q, w, wl) == 0 && (q[wl] == ' ' || q[wl] == '\0');
		if (dup)
			continue;
		size_t o = strlen(out);
		snprintf(out + o, len - o, "%s%.*s", o ? " " : "", (int)wl, w);
	}
}

/* The case arms shared by both shells: the commands (longest names first,
 * so "task list" wins over the group "task"), then the groups, then the
 * top level. Each sets `cands` (words) and `opts` (options). */
static void print_case(FILE *f, const struct cli_command *cmds, size_t n, const char *indent)
{
	char buf[2048];
	fprintf(f, "%scase $key in\n", indent);
	for (size_t i = 0; i < n; i++) {
		buf[0] = '\0';
		add_options(cmds[i].args, buf, sizeof(buf));
		add_options(cmds[i].help, buf, sizeof(buf));
		char choices[256] = "";
		literal_choices(cmds[i].args, choices, sizeof(choices));
		fprintf(f, "%s'%s' | '%s '*) cands='%s'; opts='%s' ;;\n", indent, cmds[i].name, cmds[i].name, choices,
			buf);
	}
	for (size_t i = 0; i < n; i++) {
		size_t wl = strcspn(cmds[i].name, " ");
		if (!cmds[i].name[wl])
			continue; /* a one-word command: handled above */
		char group[64];
		snprintf(group, sizeof(group), "%.*s", (int)wl, cmds[i].name);
		bool first = true;
		for (size_t k = 0; k < i && first; k++)
			first = strncmp(cmds[k].name, group, wl) != 0 || cmds[k].name[wl] != ' ';
		if (!first)
			continue;
		words_of(cmds, n, group, buf, sizeof(buf));
		fprintf(f, "%s'%s') cands='%s'; opts='' ;;\n", indent, group, buf);
	}
	words_of(cmds, n, NULL, buf, sizeof(buf));
	fprintf(f, "%s'') cands='%s'; opts='' ;;\n", indent, buf);
	fprintf(f, "%s*) cands=''; opts='' ;;\n", indent);
	fprintf(f, "%sesac\n", indent);
}

static void print_bash(FILE *f, const struct cli_command *cmds, size_t n)
{
	fprintf(f, "# bash completion for boxctl %s, made by `boxctl completion bash` from its\n"
		   "# command table. Load it with: source <(boxctl completion bash)\n"
		   "_boxctl() {\n"
		   "\tlocal cur=${COMP_WORDS[COMP_CWORD]} i w key cands opts\n"
		   "\tlocal -a typed=()\n"
		   "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
		   "\t\tw=${COMP_WORDS[i]}\n"
		   "\t\tcase $w in\n"
		   "\t\t" GLOBAL_VALUED ") ((i++)); continue ;;\n"
		   "\t\t-*) continue ;;\n"
		   "\t\tesac\n"
		   "\t\ttyped+=(\"$w\")\n"
		   "\tdone\n"
		   "\tkey=\"${typed[*]}\"\n",
		BOXD_VERSION);
	print_case(f, cmds, n, "\t");
	fprintf(f, "\tif [[ $cur == -* ]]; then\n"
		   "\t\tmapfile -t COMPREPLY < <(compgen -W \"$opts " GLOBAL_OPTIONS "\" -- \"$cur\")\n"
		   "\telse\n"
		   "\t\tmapfile -t COMPREPLY < <(compgen -W \"$cands\" -- \"$cur\")\n"
		   "\tfi\n"
		   "}\n"
		   "complete -F _boxctl boxctl\n");
}

static void print_zsh(FILE *f, const struct cli_command *cmds, size_t n)
{
	fprintf(f, "#compdef boxctl\n"
		   "# zsh completion for boxctl %s, made by `boxctl completion zsh` from its\n"
		   "# command table. Install it as _boxctl in a directory of $fpath.\n"
		   "_boxctl() {\n"
		   "\tlocal i w key cands opts\n"
		   "\tlocal -a typed\n"
		   "\tfor ((i = 2; i < CURRENT; i++)); do\n"
		   "\t\tw=${words[i]}\n"
		   "\t\tcase $w in\n"
		   "\t\t" GLOBAL_VALUED ") ((i++)); continue ;;\n"
		   "\t\t-*) continue ;;\n"
		   "\t\tesac\n"
		   "\t\ttyped+=(\"$w\")\n"
		   "\tdone\n"
		   "\tkey=\"${typed[*]}\"\n",
		BOXD_VERSION);
	print_case(f, cmds, n, "\t");
	fprintf(f, "\tif [[ ${words[CURRENT]} == -* ]]; then\n"
		   "\t\tcompadd -- ${=opts} " GLOBAL_OPTIONS "\n"
		   "\telse\n"
		   "\t\tcompadd -- ${=cands}\n"
		   "\tfi\n"
		   "}\n"
		   "_boxctl \"$@\"\n");
}

int cmd_completion(struct cli *cli, int argc, char **argv)
{
	int r = cli_no_options(cli, argc, argv, 1, 1);
	if (r)
		return r;
	size_t n;
	const struct cli_command *cmds = cli_command_table(&n);
	const char *shell = argv[optind];
	if (strcmp(shell, "bash") == 0)
		print_bash(stdout, cmds, n);
	else if (strcmp(shell, "zsh") == 0)
		print_zsh(stdout, cmds, n);
	else
		return cli_usage_error(cli, "completion for bash or zsh, not '%s'", shell);
	return CLI_EXIT_OK;
}

/* argv_secrets.h — keep secrets off the command line.
 *
 * /proc/PID/cmdline is readable by every local user (that is what ps
 * shows), while /proc/PID/environ is readable only by the process's own
 * user. A program that accepts a secret as a flag (boxd serve --dsn with a
 * password in it, boxctl --token) calls argv_hide_secrets() first thing in
 * main(): the value moves into the environment, where the program (and its
 * children, and a re-exec of itself) reads it as if the flag had been
 * given, and the argument memory is rewritten in place so that the
 * command line no longer holds it.
 */
#pragma once

struct argv_secret {
	const char *flag; /* "--dsn": takes "--dsn VALUE" and "--dsn=VALUE" */
	const char *env;  /* the environment variable the value goes to */
};

/* For every `flag VALUE` or `flag=VALUE` in argv[1..] before "--" of a flag
 * in `secrets` (terminated by a { NULL } entry): set the variable (the last
 * one given wins, as a repeated flag would) and drop the words from argv;
 * then rewrite the argument strings in place so that /proc/self/cmdline
 * shows only what is left. *argc and argv are updated (argv[*argc] is
 * NULL). A flag without a value stays, for the program's own parsing to
 * refuse. Call it before anything keeps pointers into argv. Returns how
 * many secrets were moved, or a negative errno when setenv() failed (argv
 * is then unchanged). */
int argv_hide_secrets(int *argc, char **argv, const struct argv_secret *secrets);

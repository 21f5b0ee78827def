/* cmd_restore.c — `boxd restore --from TARGET ...`: the whole box from a
 * full backup onto this (fresh) machine (backups/box_restore.h). Runs
 * without the daemon (it refuses while one answers on the socket); start
 * boxd afterwards: its platformstart recreates the app containers and the
 * sftp service. Exit 0 restored, 1 failed or refused (the message says
 * which; a refusal changed nothing), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backups/box_restore.h"
#include "backups/box_restore_status.h"
#include "cli_common.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void say_line(void *userdata, const char *line)
{
	(void)userdata;
	printf("%s\n", line);
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: boxd [--state-dir DIR] [--config FILE] restore --from sftp://USER@HOST[:PORT]/PATH|DIR\n"
		   "            [--backup ID] [--key FILE | --passphrase-file FILE] [--ssh-key FILE] [--known-hosts FILE]\n"
		   "            [--appsdata-root DIR] [--volumes-root DIR] [--force]\n");
}

int cmd_restore(const struct boxd_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },	   { "backup", required_argument, NULL, 'b' },
		{ "ssh-key", required_argument, NULL, 'k' },	   { "known-hosts", required_argument, NULL, 'h' },
		{ "appsdata-root", required_argument, NULL, 'a' }, { "volumes-root", required_argument, NULL, 'v' },
		{ "key", required_argument, NULL, 'K' },	   { "passphrase-file", required_argument, NULL, 'P' },
		{ "force", no_argument, NULL, 'F' },		   { "help", no_argument, NULL, 'H' },
		{ 0, 0, 0, 0 },
	};
	struct box_restore_opts o = { .cancel = &stop_requested, .say = say_line };
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.from = optarg; break;
		case 'b': {
			char *end;
			o.backup_id = strtoll(optarg, &end, 10);
			if (*end || o.backup_id <= 0) {
				fprintf(stderr, "boxd restore: --backup takes a full backup's id, not \"%s\"\n", optarg);
				return 2;
			}
			break;
		}
		case 'k': o.ssh_key_file = optarg; break;
		case 'h': o.known_hosts = optarg; break;
		case 'a': o.appsdata_root = optarg; break;
		case 'v': o.volumes_root = optarg; break;
		case 'K': o.key_file = optarg; break;
		case 'P': o.passphrase_file = optarg; break;
		case 'F': o.force = true; break;
		case 'H': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.from || optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Started by the daemon for POST /api/v1/box/restore (its token in
	 * the environment): that daemon waits for us; the answer also goes
	 * to its status dir. */
	o.under_daemon = box_restore_token_ok(cfg, getenv(BOX_RESTORE_TOKEN_ENV));
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	char err[2048];
	struct box_restore_result res = { 0 };
	int r = box_restore_run(cfg, &o, &res, err, sizeof(err));
	if (o.under_daemon && box_restore_result_save(cfg, r, err, &res) < 0)
		fprintf(stderr, "boxd restore: cannot record the result for the daemon\n");
	if (r < 0) {
		fprintf(stderr, "boxd restore: %s\n", err);
		return 1;
	}
	double fetch_s = (double)res.fetch_ms / 1000.0;
	printf("Restored full backup %lld%s: %d apps, %d volumes; fetched %.1f MB in %.1f s (%.1f MB/s), "
	       "%.1f MB of archives, %.1f MB of data written; %.1f s in all.\n",
	       (long long)res.backup_id, res.resumed ? " (resumed)" : "", res.apps, res.volumes,
	       (double)res.fetch_bytes / 1e6, fetch_s, fetch_s > 0 ? (double)res.fetch_bytes / 1e6 / fetch_s : 0.0,
	       (double)res.archive_bytes / 1e6, (double)res.data_bytes / 1e6, (double)res.total_ms / 1000.0);
	printf("%s: its platformstart recreates the app containers and the sftp service.\n",
	       o.under_daemon ? "boxd re-executes now" : "Start boxd now");
	return 0;
}

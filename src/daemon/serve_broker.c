/* serve_broker.c — see serve_broker.h. */
#include "serve_broker.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cli_common.h"
#include "common/log.h"
#include "locks/broker.h"
#include "store/store.h"

struct serve_broker {
	struct store *store;
	struct store *listen_store; /* PostgreSQL: the broker's LISTEN connection */
	struct lock_broker *broker;
};

void serve_broker_start(const struct boxd_config *cfg, const char *host, struct serve_broker **ret)
{
	*ret = NULL;
	if (!cfg->lock_broker) {
		log_info("lock broker off ([locks] broker): workers take their locks directly");
		return;
	}
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)], err[600];
	if (lock_broker_socket_path(cfg->state_dir, path, sizeof(path)) < 0) {
		log_warn("lock broker not started: the state dir's path is too long for a unix socket; workers take "
			 "their locks directly");
		return;
	}
	struct serve_broker *sb = calloc(1, sizeof(*sb));
	if (!sb || boxd_open_store(cfg, true, &sb->store) < 0) {
		log_warn("lock broker not started: no store connection for it; workers take their locks directly");
		free(sb);
		return;
	}
	/* Workers of the [tasks] user connect too. */
	uid_t extra = (uid_t)-1;
	struct passwd *pw = cfg->task_user ? getpwnam(cfg->task_user) : NULL;
	if (pw)
		extra = pw->pw_uid;
	/* PostgreSQL: other hosts' changes reach the broker as notices, on a
	 * connection of their own (without it the broker polls for them). */
	if (cfg->store_backend && strcmp(cfg->store_backend, "postgres") == 0 &&
	    boxd_open_store(cfg, true, &sb->listen_store) < 0)
		sb->listen_store = NULL;
	struct lock_broker_opts o = { .socket_path = path, .store = sb->store, .host = host, .extra_uid = extra,
				      .listen_store = sb->listen_store };
	int r = lock_broker_start(&o, &sb->broker, err, sizeof(err));
	if (r < 0) {
		log_warn("%s; workers take their locks directly", err);
		store_close(sb->listen_store);
		store_close(sb->store);
		free(sb);
		return;
	}
	log_info("lock broker on %s", path);
	*ret = sb;
}

void serve_broker_stop(struct serve_broker *sb)
{
	if (!sb)
		return;
	lock_broker_stop(sb->broker);
	store_close(sb->listen_store);
	store_close(sb->store);
	free(sb);
}

/* service.h — boxd's infrastructure services (sftp first) and their
 * containers.
 *
 * A service is one container that boxd keeps in a wanted shape. The shape is
 * a `struct service_spec` (image, bind mounts with their propagation, env,
 * network mode and ports, memory limit, labels), built fresh from the config
 * and the database by the service's build_spec() each time it is needed. The
 * spec is hashed (SHA-256 over a canonical JSON text, see
 * service_spec_canonical()) and the hash is stored on the container as the
 * label `boxd.spec-hash`; a rebuild compares it with the running
 * container's label and recreates the container only when they differ (or
 * when forced). A restart is an engine restart of the same container, never a
 * rebuild.
 *
 *	container name   boxd-<name>              (service_container_name)
 *	labels           boxd.service=<name>, boxd.spec-hash=<64 hex digits>
 *
 * Bind sources are never created on the host: Podman's Docker-compatible API
 * creates a missing source even for `Mounts` of type bind, so
 * service_rebuild() checks every source itself right before it creates the
 * container and fails, naming the path, when one is missing. The caller holds
 * the lock `service:<name>` exclusively while it rebuilds (the service.rebuild
 * task does); app tasks that create, move or delete data dirs hold it shared,
 * which is what makes the check race-free.
 *
 * Errors: functions return 0 or a negative errno. The operations fill a
 * `struct service_error` with a stable code for the API (below) and a
 * message for the operator. Nothing here logs.
 *
 * Threads: the registry is constant; everything else works on the caller's
 * own engine handle and store connection.
 */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/fs.h"
#include "engine/engine.h"
#include "store/store.h"

#define SERVICE_LABEL_NAME "boxd.service"
#define SERVICE_LABEL_HASH "boxd.spec-hash"
/* 64 hex digits of SHA-256 and a NUL. */
#define SERVICE_HASH_MAX 65
#define SERVICE_NAME_MAX 32

/* Error codes (service_error.code, and a failed task's error code). */
#define SERVICE_ERR_ENGINE_UNAVAILABLE "engine_unavailable" /* no engine answers */
#define SERVICE_ERR_ENGINE "engine_error"           /* the engine refused an operation */
#define SERVICE_ERR_SPEC "spec_error"               /* the spec cannot be built (config, database) */
#define SERVICE_ERR_MISSING_SOURCE "missing_source" /* a bind source does not exist */
#define SERVICE_ERR_BIND_CHANGED "bind_source_changed" /* a bind source is a symlink, or replaced */
#define SERVICE_ERR_IMAGE_MISSING "image_missing"   /* the engine does not have the image */
#define SERVICE_ERR_NOT_CREATED "not_created"       /* restart: there is no container yet */
#define SERVICE_ERR_UNHEALTHY "unhealthy"           /* started, but it does not answer / exited */
#define SERVICE_ERR_REBUILD_PENDING "rebuild_pending" /* restart: the container binds a source that is gone */
#define SERVICE_ERR_CONFIGURE "configure_failed"    /* it answers, but after_start failed */

struct service_error {
	char code[32];
	char message[1024];
};

/* ---- the spec ------------------------------------------------------------- */

/* How the source is prepared before a container binds it (mounts.h). */
enum service_share {
	SERVICE_SHARE_NONE,      /* as it is (the roots: prepared at daemon start) */
	SERVICE_SHARE_RW,        /* a shared mount point of its own */
	SERVICE_SHARE_RO,        /* the same, read-only until something is mounted on it */
};

struct service_mount {
	char *source;                         /* absolute host path */
	char *target;                         /* absolute path in the container */
	bool read_only;                       /* the top mount only (engine.h) */
	bool recursive;                       /* rbind: mounts below the source too */
	enum engine_propagation propagation;
	enum service_share share;
	/* Who wants it, for messages: "the appsdata root", "app wiki". */
	char *origin;
	/* The identity boxd recorded for the source (an app's data dir, a
	 * volume of type dir): what it must still be when it goes to the
	 * engine (common/bind_source.h). Not part of the spec hash. */
	bool has_expect;
	struct fs_id expect;
	/* Which directory this is beyond its path, hashed with the spec: the
	 * row it belongs to ("app wiki created 1712345678901"). A directory
	 * deleted and made again at the same path (uninstall + reinstall) is
	 * another directory — a container still binds the deleted one — so
	 * the spec changes and the container is rebuilt. NULL: none. */
	char *identity;
};

struct service_kv {
	char *key;
	char *value;
};

struct service_port {
	uint16_t container_port;
	char protocol[8];                     /* "tcp", "udp" */
	char *host_ip;                        /* NULL: all addresses */
	uint16_t host_port;
};

/* Every string is owned by the spec (copied in by the add functions). */
struct service_spec {
	char *name;                           /* the service, "sftp" */
	char *image;
	struct service_mount *mounts;         /* in the order added */
	size_t n_mounts;
	struct service_kv *env;
	size_t n_env;
	struct service_kv *labels;            /* without the two boxd.* labels */
	size_t n_labels;
	char *network_mode;                   /* NULL: the engine's default */
	struct service_port *ports;
	size_t n_ports;
	int64_t memory_bytes;                 /* 0: no limit */
	enum engine_restart_policy restart;
};

/* Start an empty spec (restart policy unless-stopped). 0 or -ENOMEM; on
 * failure *s is left empty (release is still safe). */
int service_spec_init(struct service_spec *s, const char *name, const char *image);
/* Release everything; accepts a zeroed or released spec. */
void service_spec_release(struct service_spec *s);

/* Append to the spec; strings are copied. 0 or -ENOMEM (the spec is then
 * unchanged). `origin` and `host_ip` may be NULL. add_mount() adds a plain
 * (non-recursive, unshared) bind; add_bind() takes every field of `m`. */
int service_spec_add_mount(struct service_spec *s, const char *source, const char *target,
			   enum engine_propagation propagation, bool read_only, const char *origin);
int service_spec_add_bind(struct service_spec *s, const struct service_mount *m);
int service_spec_add_env(struct service_spec *s, const char *key, const char *value);
int service_spec_add_label(struct service_spec *s, const char *key, const char *value);
int service_spec_add_port(struct service_spec *s, uint16_t container_port, const char *protocol,
			  const char *host_ip, uint16_t host_port);

/* The canonical JSON text that is hashed: an object with sorted keys whose
 * mounts are sorted by target, env by key and labels by key, so that the
 * order in which a builder added things does not matter; only what the
 * container would look like does. malloc'ed, or NULL on ENOMEM. */
char *service_spec_canonical(const struct service_spec *s);

/* SHA-256 of the canonical text as 64 lowercase hex digits. 0, -ENOMEM or
 * -EIO (OpenSSL failed). */
int service_spec_hash(const struct service_spec *s, char ret[SERVICE_HASH_MAX]);

/* The spec for people and the API: image, network mode, ports, memory and
 * mounts ({source, target, propagation, readOnly, origin}), but not the env
 * (it may carry secrets). New reference. */
json_t *service_spec_to_json(const struct service_spec *s);

/* ---- the registry ------------------------------------------------------- */

struct service_def {
	const char *name;                     /* "sftp" */
	const char *summary;                  /* one line for listings */
	/* Build the spec the container should have now, from the config and
	 * the database (`store`, the caller's connection). On failure a
	 * negative errno and a message in err. */
	int (*build_spec)(const struct boxd_config *cfg, struct store *store, struct service_spec *ret, char *err,
			  size_t errlen);
	/* Optional: does the running service answer? 1 yes; 0 no, nothing
	 * listens (refused: cheap to ask again soon); -1 no, something
	 * accepted the connection but did not answer in time (a busy server:
	 * ask again later, and wait longer); why says which. Within about
	 * timeout_ms. NULL: running is enough. */
	int (*probe)(const struct boxd_config *cfg, int timeout_ms, char *why, size_t whylen);
	/* Optional: once a rebuilt, restarted or started container answers,
	 * give it what is not in its spec (the proxy: its routes, through
	 * its admin API). A failure fails the operation; the container
	 * stays. NULL: nothing. */
	int (*after_start)(const struct boxd_config *cfg, struct store *store, char *err, size_t errlen);
	/* Optional: does the config want this service at all? NULL: always.
	 * A service that is not wanted is not listed and has no routes. */
	bool (*enabled)(const struct boxd_config *cfg);
};

static inline bool service_enabled(const struct service_def *def, const struct boxd_config *cfg)
{
	return !def->enabled || def->enabled(cfg);
}

/* The service called `name`, or NULL. */
const struct service_def *service_find(const char *name);
/* All services, in listing order: *ret_n entries. */
const struct service_def *const *service_list(size_t *ret_n);

/* The service's container: "boxd-<name>", or "boxd-<name>-<host id>" when
 * cfg says the engine is shared with other hosts ([engine] shared), so each
 * host keeps its own (cfg may be NULL: not shared). */
#define SERVICE_CONTAINER_NAME_MAX 96
void service_container_name(const struct boxd_config *cfg, const char *name, char *buf, size_t len);

/* ---- the engine ----------------------------------------------------------- */

/* Open the engine of the config ([engine] socket; NULL autodetects) and
 * check that it answers (engine_ping). `timeout_ms` > 0 bounds every request
 * on the handle (for status pages); 0 keeps the engine client's defaults.
 * On failure (-ECONNREFUSED, -ENOENT, -ETIMEDOUT, ...) *ret is untouched and
 * err says which socket did not answer and why. */
int service_engine_open(const struct boxd_config *cfg, int timeout_ms, struct engine **ret, char *err,
			size_t errlen);

/* ---- operations (the service.* tasks run these) ------------------------- */

struct service_op {
	/* Set on SIGTERM; the operation then stops at the next step with
	 * -ECANCELED. NULL: not cancellable. */
	const volatile sig_atomic_t *cancel;
	/* Progress for the operator (percent 0..100). NULL: none. */
	void (*progress)(void *userdata, int percent, const char *message);
	void *userdata;
	/* How long to wait for the service to answer after a start; 0: 30 s. */
	int health_timeout_ms;
};

struct service_rebuild_result {
	bool rebuilt;                         /* a new container was created */
	char container_id[ENGINE_ID_MAX];     /* the container now */
	char previous_id[ENGINE_ID_MAX];      /* the one replaced; "" if none */
	char spec_hash[SERVICE_HASH_MAX];
	/* Why: "created" (there was none), "spec changed", "forced",
	 * "unchanged", "unchanged; started the stopped container". */
	const char *reason;
	/* From the old container's stop to the new one answering; -1 when no
	 * running container was replaced. */
	int64_t downtime_ms;
	/* A problem that did not fail the rebuild (a source that could not be
	 * made a shared mount point: no propagation for it); "" if none. */
	char warning[512];
};

/* Bring the service's container in line with its spec: build the spec,
 * check every bind source, and recreate the container only when there is
 * none, its `boxd.spec-hash` differs, or `force`. A stopped container with
 * the right hash is started. The caller holds `service:<name>`
 * exclusively.
 *
 * The old container stays until the new one answers: it is renamed to
 * "boxd-<name>-old", the new one is created under the service's name while
 * the old one still runs, then the old one is stopped, the new one started
 * and waited for (the health probe), and only then the old one removed. If
 * anything from the create on fails, the new container is removed, the old
 * one gets its name back and is started again, and the call fails with
 * the reason (and says that the old container runs again). An "-old"
 * container left by a rebuild that died midway is put back (or removed, if
 * its successor exists) by the next rebuild.
 *
 * Before the create or start, every source whose mount asks for it is made
 * a shared mount point (services_prepare_spec_sources); a failure there is
 * only a warning in the result.
 *
 * A missing bind source fails with SERVICE_ERR_MISSING_SOURCE (naming every
 * missing path) before anything is changed: the old container keeps running
 * and nothing is created on the host. Every source is checked as
 * common/bind_source.h says right before the engine call (no symlink on
 * the way, a directory, the recorded identity) and what the started
 * container got is compared after it: a failure is
 * SERVICE_ERR_BIND_CHANGED (after the start: the new container is
 * stopped). Returns 0 with *ret filled, or a negative errno with *err
 * filled. */
int service_rebuild(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
		    struct store *store, bool force, const struct service_op *op, struct service_rebuild_result *ret,
		    struct service_error *err);

/* Restart the service's container through the engine (the container id
 * stays the same) and wait until it answers. Never rebuilds: without a
 * container it fails with SERVICE_ERR_NOT_CREATED. Its bind sources are
 * checked before and after like a rebuild's (without recorded identities:
 * the same directories before and after). On success the container's id
 * is written to ret_id.
 *
 * A restart re-binds the container's sources by path: one that no longer
 * exists (the data dir of an app uninstalled since; the rebuild that drops
 * it has not run yet) would make the engine fail the start and leave the
 * service down. So the sources are checked first; a missing one fails with
 * SERVICE_ERR_REBUILD_PENDING (-ENOENT) naming it, and the container is
 * not touched. If the engine's restart fails anyway, the container is
 * started again before the call fails: a restart never leaves the service
 * stopped. `store` is used to build the spec whose sources are prepared
 * (mounts.h). */
int service_restart(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
		    struct store *store, const struct service_op *op, char ret_id[ENGINE_ID_MAX],
		    struct service_error *err);

/* The bind sources of the service's container (as the engine reports its
 * mounts) that do not exist now, as "PATH (→ TARGET)" joined by "; " into
 * `missing`. Returns how many (0: none), -ENOENT when there is no
 * container, or another negative errno with the engine's message in
 * `missing`. */
int service_missing_sources(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
			    char *missing, size_t len);

/* Does the service's container differ from its spec now? *ret_changed is
 * true when there is no container or its boxd.spec-hash label is not the
 * hash of the spec built now (what a rebuild without force would act on);
 * bind sources are not checked. For the scheduler's "rebuild sftp after app
 * work, only if its spec changed". `e` may be NULL: a handle is opened (and
 * closed) with a 5 s timeout. Returns 0, or a negative errno with a message
 * in err (engine unreachable, spec not buildable). */
int service_spec_changed(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
			 struct store *store, bool *ret_changed, char *err, size_t errlen);

/* ---- status ----------------------------------------------------------------- */

/* The service's status as JSON (new reference, never NULL unless out of
 * memory):
 *	{"name", "summary", "containerName", "exists", "running", "state",
 *	 "containerId", "image", "startedAt", "specHash" (the container's
 *	 label), "currentSpecHash" (of the spec now), "upToDate",
 *	 "health" ("healthy", "unhealthy", "starting", "stopped", "missing",
 *	 "unknown"), "mounts" (as the engine reports them), "spec" (what the
 *	 container should look like, see service_spec_to_json), "error"}
 * `e` may be NULL when the engine is unreachable; `engine_error` then says
 * why, and the answer carries running:false and that error. Fields that
 * cannot be known are null. */
json_t *service_status(struct engine *e, const char *engine_error, const struct service_def *def,
		       const struct boxd_config *cfg, struct store *store);

/* ---- queueing a rebuild -------------------------------------------------- */

/* Queue a `service.rebuild` of `name`, or join one: in one write
 * transaction, a rebuild of that service that is still queued or waiting
 * for its lock (it has not built its spec yet) and is at least as strong
 * (forced, or this one is not) is the answer — *ret_coalesced true and its
 * id. Otherwise a new task is created. A burst of requests (operators,
 * the scheduler) thus costs at most one rebuild running and one waiting.
 * A new task carries `idem` (the API request's Idempotency-Key; may be
 * NULL). Returns 0 or a negative errno from the store. */
struct task_idempotency;
int service_rebuild_queue(struct store *s, const struct boxd_config *cfg, const char *name, bool force,
			  const struct task_idempotency *idem, int64_t *ret_id, bool *ret_coalesced);

/* Register the task types service.rebuild and service.restart
 * (args {"name": "sftp", "force": false}; both lock `service:<name>`
 * exclusively). Called from boxd_register_task_types(). */
void services_register_task_types(void);

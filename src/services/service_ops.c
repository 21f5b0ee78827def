/* service_ops.c — see service.h. The operations on a service's
 * container: rebuild (with its health wait and roll-back), restart, and
 * the checks of its mount sources. One forward `goto out` per function for
 * cleanup. */
#include "service.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/bind_source.h"
#include "common/paths.h"
#include "common/timeutil.h"
#include "mounts.h"
#include "service-internal.h"

#define STOP_TIMEOUT_S 10
#define DEFAULT_HEALTH_TIMEOUT_MS 30000
#define PROBE_TIMEOUT_MAX_MS 8000
#define PROBE_PAUSE_MS 50
#define PROBE_PAUSE_MAX_MS 1000
/* After a failed rebuild, how long the old container must keep running. */
#define ROLLBACK_SETTLE_MS 1000

/* ---- the engine ----------------------------------------------------------- */

int service_engine_open(const struct boxd_config *cfg, int timeout_ms, struct engine **ret, char *err,
			size_t errlen)
{
	struct engine_options o = { .socket_path = cfg->engine_socket };
	if (timeout_ms > 0) {
		o.connect_timeout_ms = timeout_ms < 2000 ? timeout_ms : 2000;
		o.timeout_ms = timeout_ms;
		o.long_timeout_ms = timeout_ms;
	}
	struct engine *e;
	char msg[512] = "";
	int r = engine_open_opts(&o, &e, msg, sizeof(msg));
	if (r < 0) {
		snprintf(err, errlen, "%s", *msg ? msg : strerror(-r));
		return r;
	}
	r = engine_ping(e);
	if (r < 0) {
		snprintf(err, errlen, "%s", engine_errmsg(e));
		engine_close(e);
		return r;
	}
	*ret = e;
	return 0;
}

/* ---- operations ------------------------------------------------------------- */

static int fail(struct service_error *err, int r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct service_error *err, int r, const char *code, const char *fmt, ...)
{
	snprintf(err->code, sizeof(err->code), "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r < 0 ? r : -EIO;
}

static void progress(const struct service_op *op, int percent, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void progress(const struct service_op *op, int percent, const char *fmt, ...)
{
	if (!op || !op->progress)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	op->progress(op->userdata, percent, msg);
}

static bool cancelled(const struct service_op *op)
{
	return op && op->cancel && *op->cancel;
}

/* Every bind source must exist right now, as a directory boxd may hand to
 * the engine (common/bind_source.h): no symlink on the way, and the
 * directory boxd recorded where there is one. The engine would create a
 * missing one (Podman does) as an empty directory, which would hide that
 * an app's data or a volume is gone. ids[i] (optional) gets each source's
 * identity, for the check after the engine call. */
static int check_sources(const struct boxd_config *cfg, const struct service_spec *s, struct fs_id *ids,
			 struct service_error *err)
{
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(cfg, roots);
	char missing[800] = "", why[1024];
	size_t used = 0;
	int n = 0, first = 0;
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct service_mount *m = &s->mounts[i];
		struct bind_source b = { .path = m->source, .what = m->origin ? m->origin : m->target,
					 .expect = m->has_expect ? &m->expect : NULL };
		struct fs_id id;
		int r = bind_source_check(roots, &b, &id, why, sizeof(why));
		if (r == 0) {
			if (ids)
				ids[i] = id;
			continue;
		}
		if (r != -ENOENT)
			return fail(err, r, SERVICE_ERR_BIND_CHANGED, "cannot create the %s container: %s", s->name, why);
		if (!first)
			first = -r;
		n++;
		if (used < sizeof(missing))
			used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%s (%s) does not exist",
						 n > 1 ? "; " : "", m->source, m->origin ? m->origin : m->target);
	}
	if (n == 0)
		return 0;
	return fail(err, -first, SERVICE_ERR_MISSING_SOURCE,
		    "cannot create the %s container: bind source%s missing: %s. boxd does not create missing sources; "
		    "restore %s, or change or remove the app or volume that names %s",
		    s->name, n > 1 ? "s" : "", missing, n > 1 ? "them" : "it", n > 1 ? "them" : "it");
}

/* After the engine started container `id`: each of its binds (source
 * sources[i] at target targets[i]) is the directory ids[i]. Else the
 * container is stopped. */
static int check_started(const struct boxd_config *cfg, struct engine *e, const char *name, const char *id,
			 const char *const *sources, const char *const *targets, const char *const *whats,
			 const struct fs_id *ids, size_t n, struct service_error *err)
{
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(cfg, roots);
	struct engine_container c = { 0 };
	int r = engine_container_inspect(e, id, &c);
	if (r < 0)
		return fail(err, r, SERVICE_ERR_ENGINE, "cannot inspect the %s container: %s", name, engine_errmsg(e));
	int pid = c.running ? c.pid : 0;
	engine_container_release(&c);
	char why[1024];
	for (size_t i = 0; i < n && pid > 0; i++) {
		r = bind_source_check_mounted(pid, targets[i], &ids[i], whats[i], why, sizeof(why));
		if (r == -ESRCH)
			break; /* exited: nothing is bound any more */
		if (r == -EACCES) { /* may not look inside: the host path again */
			struct bind_source b = { .path = sources[i], .what = whats[i], .expect = &ids[i] };
			r = bind_source_check(roots, &b, NULL, why, sizeof(why));
		}
		if (r < 0) {
			engine_container_stop(e, id, 0);
			return fail(err, r, SERVICE_ERR_BIND_CHANGED, "the %s container: %s; it was stopped", name, why);
		}
	}
	return 0;
}

/* check_started() for the mounts of a spec. */
static int check_started_spec(const struct boxd_config *cfg, struct engine *e, const struct service_spec *s,
			      const char *id, const struct fs_id *ids, struct service_error *err)
{
	const char **sources = calloc(s->n_mounts + 1, sizeof(*sources));
	const char **targets = calloc(s->n_mounts + 1, sizeof(*targets));
	const char **whats = calloc(s->n_mounts + 1, sizeof(*whats));
	int r = -ENOMEM;
	if (sources && targets && whats) {
		for (size_t i = 0; i < s->n_mounts; i++) {
			sources[i] = s->mounts[i].source;
			targets[i] = s->mounts[i].target;
			whats[i] = s->mounts[i].origin ? s->mounts[i].origin : s->mounts[i].source;
		}
		r = check_started(cfg, e, s->name, id, sources, targets, whats, ids, s->n_mounts, err);
	} else {
		fail(err, r, SERVICE_ERR_ENGINE, "out of memory");
	}
	free(sources);
	free(targets);
	free(whats);
	return r;
}

/* The last lines of a container's log on one line, for an error message. */
static void logs_tail(struct engine *e, const char *id, char *buf, size_t len)
{
	struct engine_logs_opts lo = { .tail = 8 };
	char *text = NULL;
	size_t n = 0;
	buf[0] = '\0';
	if (engine_container_logs(e, id, &lo, &text, &n) < 0)
		return;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 4 < len; i++) {
		char c = text[i];
		if (c == '\n') {
			if (i + 1 < n) {
				memcpy(buf + o, " | ", 3);
				o += 3;
			}
		} else if ((unsigned char)c >= 0x20) {
			buf[o++] = c;
		}
	}
	buf[o] = '\0';
	free(text);
}

/* Wait until the started container answers (or exits, or time is up).
 *
 * The probe opens one connection at a time. Under load a server is slow to
 * answer and slow to forget a connection that gave up: a probe every 50 ms
 * with a short timeout piles up half-open connections until sshd's
 * MaxStartups refuses real ones too (and the probe's own). So after an
 * attempt that connected but got no answer, the next one waits longer
 * (SERVICE_PROBE_TIMEOUT_MS doubling up to PROBE_TIMEOUT_MAX_MS) and comes later
 * (PROBE_PAUSE_MS doubling up to PROBE_PAUSE_MAX_MS), all within the
 * overall deadline. A refused connection (sshd not listening yet) is
 * retried every PROBE_PAUSE_MS: it costs the server nothing, and the
 * service's downtime is measured up to the first answer. */
static int wait_healthy(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
			const char *id, const struct service_op *op, struct service_error *err)
{
	int timeout = op && op->health_timeout_ms > 0 ? op->health_timeout_ms : DEFAULT_HEALTH_TIMEOUT_MS;
	int64_t deadline = now_mono_ms() + timeout;
	int attempt_ms = SERVICE_PROBE_TIMEOUT_MS, pause_ms = PROBE_PAUSE_MS;
	char why[256] = "";
	for (;;) {
		if (cancelled(op))
			return -ECANCELED;
		struct engine_container c = { 0 };
		int r = engine_container_inspect(e, id, &c);
		if (r < 0)
			return fail(err, r, SERVICE_ERR_ENGINE, "cannot inspect the %s container: %s", def->name,
				    engine_errmsg(e));
		bool running = c.running;
		int code = c.exit_code;
		engine_container_release(&c);
		if (!running) {
			char logs[600];
			logs_tail(e, id, logs, sizeof(logs));
			return fail(err, -EIO, SERVICE_ERR_UNHEALTHY, "the %s container exited (code %d) right after it started%s%s",
				    def->name, code, *logs ? "; its log: " : "", logs);
		}
		int64_t left = deadline - now_mono_ms();
		int this_ms = left < attempt_ms ? (int)(left > 0 ? left : 1) : attempt_ms;
		int answer = def->probe ? def->probe(cfg, this_ms, why, sizeof(why)) : 1;
		if (answer == 1)
			return 0;
		if (now_mono_ms() >= deadline) {
			char logs[600];
			logs_tail(e, id, logs, sizeof(logs));
			return fail(err, -ETIMEDOUT, SERVICE_ERR_UNHEALTHY, "the %s container runs but does not answer after %d s: %s%s%s",
				    def->name, timeout / 1000, why, *logs ? "; its log: " : "", logs);
		}
		/* Refused: nothing listens yet, asking again costs the server
		 * nothing. Accepted but silent: it is busy; each later attempt
		 * waits longer and comes later. */
		if (answer < 0) {
			attempt_ms = attempt_ms * 2 < PROBE_TIMEOUT_MAX_MS ? attempt_ms * 2 : PROBE_TIMEOUT_MAX_MS;
			pause_ms = pause_ms * 2 < PROBE_PAUSE_MAX_MS ? pause_ms * 2 : PROBE_PAUSE_MAX_MS;
		}
		left = deadline - now_mono_ms();
		sleep_us((uint64_t)(left < pause_ms ? (left > 0 ? left : 0) : pause_ms) * 1000);
	}
}

/* Create (not start) the container of `s` named `cname` carrying `hash`. */
static int create_container(struct engine *e, const struct service_spec *s, const char *cname, const char *hash,
			    char id[ENGINE_ID_MAX], struct service_error *err)
{
	int r = -ENOMEM;
	char **env = calloc(s->n_env + 1, sizeof(*env));
	struct engine_kv *labels = calloc(s->n_labels + 2, sizeof(*labels));
	struct engine_mount *mounts = calloc(s->n_mounts + 1, sizeof(*mounts));
	struct engine_port_binding *ports = calloc(s->n_ports + 1, sizeof(*ports));
	if (!env || !labels || !mounts || !ports)
		goto out;
	for (size_t i = 0; i < s->n_env; i++)
		if (asprintf(&env[i], "%s=%s", s->env[i].key, s->env[i].value) < 0) {
			env[i] = NULL;
			goto out;
		}
	for (size_t i = 0; i < s->n_labels; i++)
		labels[i] = (struct engine_kv){ s->labels[i].key, s->labels[i].value };
	labels[s->n_labels] = (struct engine_kv){ SERVICE_LABEL_NAME, s->name };
	labels[s->n_labels + 1] = (struct engine_kv){ SERVICE_LABEL_HASH, hash };
	for (size_t i = 0; i < s->n_mounts; i++)
		mounts[i] = (struct engine_mount){ .type = ENGINE_MOUNT_BIND, .source = s->mounts[i].source,
						   .target = s->mounts[i].target, .read_only = s->mounts[i].read_only,
						   .propagation = s->mounts[i].propagation,
						   .recursive = s->mounts[i].recursive };
	for (size_t i = 0; i < s->n_ports; i++)
		ports[i] = (struct engine_port_binding){ .container_port = s->ports[i].container_port,
							 .protocol = s->ports[i].protocol, .host_ip = s->ports[i].host_ip,
							 .host_port = s->ports[i].host_port };
	struct engine_container_spec cs = {
		.name = cname, .image = s->image, .env = (const char *const *)env, .labels = labels,
		.n_labels = s->n_labels + 2, .mounts = mounts, .n_mounts = s->n_mounts, .restart = s->restart,
		.network_mode = s->network_mode, .ports = ports, .n_ports = s->n_ports, .memory_bytes = s->memory_bytes,
		.stop_timeout_s = STOP_TIMEOUT_S,
	};
	r = engine_container_create(e, &cs, id);
	if (r < 0)
		fail(err, r, SERVICE_ERR_ENGINE, "cannot create the %s container: %s", s->name, engine_errmsg(e));
out:
	if (r == -ENOMEM && !err->code[0])
		fail(err, r, SERVICE_ERR_ENGINE, "out of memory");
	for (size_t i = 0; env && i < s->n_env; i++)
		free(env[i]);
	free(env);
	free(labels);
	free(mounts);
	free(ports);
	return r;
}

/* Look up the service's container. 1 found (*c filled), 0 none, < 0 error
 * (err filled). A container of that name that boxd did not make (no
 * boxd.service label naming this service) is an error: it is never
 * removed. */
static int find_container(struct engine *e, const char *service, const char *cname, struct engine_container *c,
			  struct service_error *err)
{
	int r = engine_container_inspect(e, cname, c);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return fail(err, r, SERVICE_ERR_ENGINE, "cannot inspect the container %s: %s", cname, engine_errmsg(e));
	const char *label = engine_container_label(c, SERVICE_LABEL_NAME);
	if (!label || strcmp(label, service) != 0) {
		engine_container_release(c);
		return fail(err, -EEXIST, SERVICE_ERR_ENGINE,
			    "a container named %s exists that boxd did not create (no label %s=%s); remove or rename it",
			    cname, SERVICE_LABEL_NAME, service);
	}
	return 1;
}

/* Sources are made shared mount points before a container binds them; a
 * failure costs only propagation, so it becomes a warning. */
static void prepare_sources(const struct service_spec *spec, const struct service_op *op, char *warning,
			    size_t len)
{
	char msg[400];
	if (services_prepare_spec_sources(spec, msg, sizeof(msg)) < 0) {
		snprintf(warning, len, "mounts made later below a source will not show in the container: %s", msg);
		progress(op, 35, "Warning: %s", warning);
	}
}

/* A container "<cname>-old" left by a rebuild that died between renaming
 * the old container and removing it: remove it when a container of the
 * service's name exists (the new one got that far), else give it its name
 * back. 0, or a negative errno with err filled. */
static int recover_leftover(struct engine *e, const char *service, const char *cname, const char *oldname,
			    bool have_current, struct service_error *err)
{
	struct engine_container c = { 0 };
	int r = find_container(e, service, oldname, &c, err);
	if (r <= 0)
		return r;
	char id[ENGINE_ID_MAX];
	snprintf(id, sizeof(id), "%s", c.id);
	engine_container_release(&c);
	if (have_current) {
		r = engine_container_remove(e, id, ENGINE_REMOVE_FORCE);
		if (r < 0 && r != -ENOENT)
			return fail(err, r, SERVICE_ERR_ENGINE, "cannot remove %s, left by an earlier rebuild: %s",
				    oldname, engine_errmsg(e));
		return 0;
	}
	r = engine_container_rename(e, id, cname);
	if (r < 0)
		return fail(err, r, SERVICE_ERR_ENGINE, "cannot rename %s (left by an earlier rebuild) back to %s: %s",
			    oldname, cname, engine_errmsg(e));
	return 0;
}

/* Is the container still running `ms` after it was started? (The old
 * container of a failed rebuild: it answered before; the health probe
 * follows the config, which may be what made the new one fail.) */
static bool stays_up(struct engine *e, const char *id, int ms)
{
	int64_t until = now_mono_ms() + ms;
	for (;;) {
		struct engine_container c = { 0 };
		if (engine_container_inspect(e, id, &c) < 0)
			return false;
		bool running = c.running;
		engine_container_release(&c);
		if (!running)
			return false;
		if (now_mono_ms() >= until)
			return true;
		sleep_us(100 * 1000);
	}
}

/* A rebuild failed after the old container was renamed (and perhaps
 * stopped): remove the new one, give the old one its name back and start
 * it if it ran. Appends what happened to err's message. */
static void roll_back(struct engine *e, const struct service_def *def, const char *cname, const char *new_id,
		      const struct engine_container *old, bool restart_old, const struct service_op *op,
		      struct service_error *err)
{
	char note[400] = "";
	if (new_id[0])
		engine_container_remove(e, new_id, ENGINE_REMOVE_FORCE);
	int r = engine_container_rename(e, old->id, cname);
	if (r < 0) {
		snprintf(note, sizeof(note), "; the old container could not get its name back (%.300s)", engine_errmsg(e));
	} else if (restart_old) {
		progress(op, 90, "Starting the old %s container again", def->name);
		r = engine_container_start(e, old->id);
		if (r >= 0 && stays_up(e, old->id, ROLLBACK_SETTLE_MS))
			snprintf(note, sizeof(note), "; the old container runs again");
		else
			snprintf(note, sizeof(note), "; the old container was started again but %.300s",
				 r < 0 ? engine_errmsg(e) : "it exited");
	} else {
		snprintf(note, sizeof(note), "; the old container is back (it was not running)");
	}
	size_t n = strlen(err->message);
	snprintf(err->message + n, sizeof(err->message) - n, "%s", note);
}

/* The service answers: give it what its spec does not carry
 * (service_def.after_start). */
static int after_start(const struct service_def *def, const struct boxd_config *cfg, struct store *store,
		       const struct service_op *op, struct service_error *err)
{
	if (!def->after_start || !store)
		return 0;
	char msg[600] = "";
	progress(op, 97, "Configuring %s", def->name);
	int r = def->after_start(cfg, store, msg, sizeof(msg));
	if (r < 0)
		return fail(err, r, SERVICE_ERR_CONFIGURE, "%s runs, but could not be configured: %s", def->name, msg);
	return 0;
}

int service_rebuild(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
		    struct store *store, bool force, const struct service_op *op, struct service_rebuild_result *ret,
		    struct service_error *err)
{
	struct service_spec spec = { 0 };
	struct engine_container old = { 0 };
	struct service_rebuild_result res = { .reason = "created", .downtime_ms = -1 };
	struct fs_id *ids = NULL;
	char cname[SERVICE_CONTAINER_NAME_MAX], oldname[SERVICE_CONTAINER_NAME_MAX + 4], msg[512] = "";
	bool have_old = false, renamed = false, stopped_old = false;
	int64_t t_stop = 0;
	*err = (struct service_error){ 0 };
	service_container_name(cfg, def->name, cname, sizeof(cname));
	snprintf(oldname, sizeof(oldname), "%s-old", cname);

	progress(op, 5, "Computing the %s spec", def->name);
	int r = def->build_spec(cfg, store, &spec, msg, sizeof(msg));
	if (r < 0) {
		r = fail(err, r, SERVICE_ERR_SPEC, "cannot build the %s spec: %s", def->name, msg);
		goto out;
	}
	r = service_spec_hash(&spec, res.spec_hash);
	if (r < 0) {
		r = fail(err, r, SERVICE_ERR_SPEC, "cannot hash the %s spec", def->name);
		goto out;
	}
	r = find_container(e, def->name, cname, &old, err);
	if (r < 0)
		goto out;
	have_old = r == 1;
	r = recover_leftover(e, def->name, cname, oldname, have_old, err);
	if (r < 0)
		goto out;
	if (!have_old) {
		r = find_container(e, def->name, cname, &old, err); /* perhaps it was the leftover */
		if (r < 0)
			goto out;
		have_old = r == 1;
	}
	ids = calloc(spec.n_mounts + 1, sizeof(*ids));
	if (!ids) {
		r = fail(err, -ENOMEM, SERVICE_ERR_SPEC, "out of memory");
		goto out;
	}
	/* Check before anything changes: a missing source leaves the old
	 * container as it is. */
	r = check_sources(cfg, &spec, ids, err);
	if (r < 0)
		goto out;

	if (have_old) {
		snprintf(res.previous_id, sizeof(res.previous_id), "%s", old.id);
		const char *label = engine_container_label(&old, SERVICE_LABEL_HASH);
		bool same = label && strcmp(label, res.spec_hash) == 0;
		if (same && !force) {
			snprintf(res.container_id, sizeof(res.container_id), "%s", old.id);
			res.reason = "unchanged";
			if (!old.running) {
				prepare_sources(&spec, op, res.warning, sizeof(res.warning));
				progress(op, 50, "Starting the stopped %s container", def->name);
				r = engine_container_start(e, old.id);
				if (r < 0) {
					r = fail(err, r, SERVICE_ERR_ENGINE, "cannot start %s: %s", cname, engine_errmsg(e));
					goto out;
				}
				if ((r = check_started_spec(cfg, e, &spec, old.id, ids, err)) < 0)
					goto out;
				res.reason = "unchanged; started the stopped container";
				r = wait_healthy(e, def, cfg, old.id, op, err);
				if (r < 0)
					goto out;
			}
			r = 0;
			goto done;
		}
		res.reason = force ? "forced" : "spec changed";
	}

	r = engine_image_exists(e, spec.image);
	if (r <= 0) {
		r = r < 0 ? fail(err, r, SERVICE_ERR_ENGINE, "cannot check the image %s: %s", spec.image, engine_errmsg(e))
			  : fail(err, -ENOENT, SERVICE_ERR_IMAGE_MISSING,
				 "the engine has no image %s (for sftp: scripts/images/build-sftp-image.sh builds it)",
				 spec.image);
		goto out;
	}
	if (cancelled(op)) {
		r = -ECANCELED;
		goto out;
	}
	prepare_sources(&spec, op, res.warning, sizeof(res.warning));
	if (have_old) {
		/* The old container stays, under another name, until the new
		 * one answers. */
		progress(op, 20, "Keeping the old %s container aside as %s (%s)", def->name, oldname, res.reason);
		r = engine_container_rename(e, old.id, oldname);
		if (r < 0) {
			r = fail(err, r, SERVICE_ERR_ENGINE, "cannot rename %s to %s: %s", cname, oldname, engine_errmsg(e));
			goto out;
		}
		renamed = true;
	}
	/* Again right before the create: this is the check that counts. */
	r = check_sources(cfg, &spec, ids, err);
	if (r < 0)
		goto failed;
	progress(op, 40, "Creating the %s container", def->name);
	r = create_container(e, &spec, cname, res.spec_hash, res.container_id, err);
	if (r < 0)
		goto failed;
	res.rebuilt = true;
	if (have_old && old.running) {
		progress(op, 50, "Stopping the old %s container", def->name);
		t_stop = now_mono_ms();
		r = engine_container_stop(e, old.id, STOP_TIMEOUT_S);
		if (r < 0 && r != -ENOENT) {
			r = fail(err, r, SERVICE_ERR_ENGINE, "cannot stop the old %s container: %s", def->name,
				 engine_errmsg(e));
			goto failed;
		}
		stopped_old = true;
	}
	progress(op, 60, "Starting the %s container", def->name);
	r = engine_container_start(e, res.container_id);
	if (r < 0) {
		r = fail(err, r, SERVICE_ERR_ENGINE, "cannot start %s: %s", cname, engine_errmsg(e));
		goto failed;
	}
	/* And what the engine really bound. */
	if ((r = check_started_spec(cfg, e, &spec, res.container_id, ids, err)) < 0)
		goto failed;
	progress(op, 80, "Waiting for %s to answer", def->name);
	r = wait_healthy(e, def, cfg, res.container_id, op, err);
	if (r < 0)
		goto failed;
	if (stopped_old)
		res.downtime_ms = now_mono_ms() - t_stop;
	if (have_old) {
		progress(op, 95, "Removing the old %s container", def->name);
		r = engine_container_remove(e, old.id, ENGINE_REMOVE_FORCE);
		if (r < 0 && r != -ENOENT)
			snprintf(res.warning, sizeof(res.warning), "the old container %s could not be removed: %s "
				 "(the next rebuild removes it)", oldname, engine_errmsg(e));
		r = 0;
	}
done:
	if ((r = after_start(def, cfg, store, op, err)) < 0)
		goto out;
	progress(op, 100, "%s: %s", def->name, res.reason);
	*ret = res;
	goto out;
failed:
	if (r == -ECANCELED && !err->code[0])
		fail(err, r, "stopped", "the rebuild was stopped");
	if (renamed)
		roll_back(e, def, cname, res.rebuilt ? res.container_id : "", &old, stopped_old || old.running, op, err);
	else if (res.rebuilt)
		engine_container_remove(e, res.container_id, ENGINE_REMOVE_FORCE);
out:
	if (have_old)
		engine_container_release(&old);
	free(ids);
	service_spec_release(&spec);
	return r;
}

int service_missing_sources(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
			    char *missing, size_t len)
{
	struct engine_container c = { 0 };
	struct service_error err = { 0 };
	char cname[SERVICE_CONTAINER_NAME_MAX];
	service_container_name(cfg, def->name, cname, sizeof(cname));
	missing[0] = '\0';
	int r = find_container(e, def->name, cname, &c, &err);
	if (r < 0) {
		snprintf(missing, len, "%s", err.message);
		return r;
	}
	if (r == 0)
		return -ENOENT;
	int n = 0;
	size_t used = 0;
	for (size_t i = 0; i < c.n_mounts; i++) {
		const struct engine_mount_info *m = &c.mounts[i];
		struct stat st;
		if (strcmp(m->type, "bind") != 0 || !m->source[0] || stat(m->source, &st) == 0)
			continue;
		n++;
		if (used < len)
			used += (size_t)snprintf(missing + used, len - used, "%s%s (→ %s)", n > 1 ? "; " : "", m->source,
						 m->destination);
	}
	engine_container_release(&c);
	return n;
}

int service_restart(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
		    struct store *store, const struct service_op *op, char ret_id[ENGINE_ID_MAX],
		    struct service_error *err)
{
	struct engine_container c = { 0 };
	char cname[SERVICE_CONTAINER_NAME_MAX], id[ENGINE_ID_MAX], missing[800];
	*err = (struct service_error){ 0 };
	service_container_name(cfg, def->name, cname, sizeof(cname));
	int r = find_container(e, def->name, cname, &c, err);
	if (r < 0)
		return r;
	if (r == 0)
		return fail(err, -ENOENT, SERVICE_ERR_NOT_CREATED,
			    "the %s container does not exist yet; a rebuild creates it (a restart never does)", def->name);
	snprintf(id, sizeof(id), "%s", c.id);
	engine_container_release(&c);
	r = service_missing_sources(e, def, cfg, missing, sizeof(missing));
	if (r < 0 && r != -ENOENT)
		return fail(err, r, SERVICE_ERR_ENGINE, "cannot inspect %s: %s", cname, missing);
	if (r > 0)
		return fail(err, -ENOENT, SERVICE_ERR_REBUILD_PENDING,
			    "not restarted: the %s container binds %s, which no longer exist%s; a restart would fail "
			    "and leave the service down. A rebuild drops it (queued after app work, or now with "
			    "POST /api/v1/services/%s/rebuild)",
			    def->name, missing, r > 1 ? "" : "s", def->name);
	/* The spec's sources, made shared mount points again (a restart
	 * binds them anew). */
	struct service_spec spec = { 0 };
	char msg[512];
	if (store && def->build_spec(cfg, store, &spec, msg, sizeof(msg)) == 0) {
		char warning[512];
		prepare_sources(&spec, op, warning, sizeof(warning));
	}
	service_spec_release(&spec);
	/* The container's binds, checked as a rebuild checks them: right
	 * before the engine resolves them again, and on what it got. */
	r = find_container(e, def->name, cname, &c, err);
	if (r <= 0)
		return r < 0 ? r : fail(err, -ENOENT, SERVICE_ERR_NOT_CREATED, "the %s container is gone", def->name);
	const char *roots[PATHS_TRUSTED_MAX + 1];
	paths_trusted_roots(cfg, roots);
	size_t nb = 0;
	const char **targets = calloc(c.n_mounts + 1, sizeof(*targets));
	const char **sources = calloc(c.n_mounts + 1, sizeof(*sources));
	struct fs_id *ids = calloc(c.n_mounts + 1, sizeof(*ids));
	char why[1024];
	r = targets && sources && ids ? 0 : fail(err, -ENOMEM, SERVICE_ERR_ENGINE, "out of memory");
	for (size_t i = 0; r == 0 && i < c.n_mounts; i++) {
		const struct engine_mount_info *m = &c.mounts[i];
		if (!m->type || strcmp(m->type, "bind") != 0 || !m->source || !m->destination)
			continue;
		struct bind_source b = { .path = m->source, .what = m->destination };
		r = bind_source_check(roots, &b, &ids[nb], why, sizeof(why));
		if (r < 0)
			r = fail(err, r, r == -ENOENT ? SERVICE_ERR_MISSING_SOURCE : SERVICE_ERR_BIND_CHANGED,
				 "not restarting %s: bind source %s", cname, why);
		else {
			sources[nb] = m->source;
			targets[nb++] = m->destination;
		}
	}
	if (r == 0) {
		progress(op, 20, "Restarting the %s container", def->name);
		r = engine_container_restart(e, id, STOP_TIMEOUT_S);
		if (r < 0) {
			r = fail(err, r, SERVICE_ERR_ENGINE, "cannot restart %s: %s", cname, engine_errmsg(e));
			/* Never leave it stopped. */
			if (engine_container_start(e, id) >= 0) {
				size_t n = strlen(err->message);
				snprintf(err->message + n, sizeof(err->message) - n, "; it was started again");
			}
		} else {
			r = check_started(cfg, e, def->name, id, sources, targets, targets, ids, nb, err);
		}
	}
	free(sources);
	free(targets);
	free(ids);
	engine_container_release(&c);
	if (r < 0)
		return r;
	progress(op, 60, "Waiting for %s to answer", def->name);
	r = wait_healthy(e, def, cfg, id, op, err);
	if (r < 0)
		return r;
	if ((r = after_start(def, cfg, store, op, err)) < 0)
		return r;
	progress(op, 100, "%s restarted", def->name);
	memcpy(ret_id, id, ENGINE_ID_MAX);
	return 0;
}

int service_spec_changed(struct engine *e, const struct service_def *def, const struct boxd_config *cfg,
			 struct store *store, bool *ret_changed, char *err, size_t errlen)
{
	struct engine *own = NULL;
	struct service_spec spec = { 0 };
	char hash[SERVICE_HASH_MAX], cname[64], msg[512] = "";
	service_container_name(cfg, def->name, cname, sizeof(cname));
	int r = def->build_spec(cfg, store, &spec, msg, sizeof(msg));
	if (r < 0) {
		snprintf(err, errlen, "cannot build the %s spec: %s", def->name, msg);
		return r;
	}
	r = service_spec_hash(&spec, hash);
	service_spec_release(&spec);
	if (r < 0) {
		snprintf(err, errlen, "cannot hash the %s spec", def->name);
		return r;
	}
	if (!e) {
		r = service_engine_open(cfg, 5000, &own, err, errlen);
		if (r < 0)
			return r;
		e = own;
	}
	struct engine_container c = { 0 };
	r = engine_container_inspect(e, cname, &c);
	if (r == -ENOENT) {
		*ret_changed = true;
		r = 0;
	} else if (r < 0) {
		snprintf(err, errlen, "cannot inspect %s: %s", cname, engine_errmsg(e));
	} else {
		const char *label = engine_container_label(&c, SERVICE_LABEL_HASH);
		*ret_changed = !label || strcmp(label, hash) != 0;
		engine_container_release(&c);
	}
	engine_close(own);
	return r;
}

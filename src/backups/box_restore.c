/* box_restore.c — see box_restore.h.
 *
 * The dumped SQLite database is read with libsqlite3 directly (read-only,
 * immutable: nothing is written beside it), as box_state.c writes it; the
 * restored store is then opened through the store API like any tool's. */
#include "box_restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apps/app.h"
#include "backup_crypt.h"
#include "box_state.h"
#include "common/fs.h"
#include "common/paths.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "locks/locks.h"
#include "sftp_target.h"
#include "store/store.h"
#include "tarball.h"
#include "tasks/store_open.h"
#include "tasks/task.h"

#define MANIFEST_MAX (4 * 1024 * 1024)
#define SQLITE_NAME "boxd.db"
#define JSONL_NAME "boxd-state.jsonl"

struct run {
	const struct boxd_config *cfg;
	const struct box_restore_opts *o;
	struct box_restore_result *res;
	char *err;
	size_t errlen;
	char staging[PATH_MAX];
	char journal_path[PATH_MAX];
	json_t *journal;
	struct backup_secret secret;
	/* the source */
	struct sftp_target *t;
	const char *dir; /* local source dir */
	/* the chosen full backup */
	json_t *manifest;
	char manifest_name[NAME_MAX + 1];
	/* the plan */
	struct plan_app {
		char id[APP_ID_MAX + 1];
		char *old_dir, *new_dir;
		char *new_custom; /* the data_dir value to store (NULL: default) */
		char archive[NAME_MAX + 1];
		char sha256[TARBALL_SHA256_HEX];
		int64_t size;
	} *apps;
	size_t n_apps;
	struct plan_vol {
		char id[APP_ID_MAX + 1];
		char *type, *old_path, *new_path;
	} *vols;
	size_t n_vols;
	int64_t t0;
};

static void say(struct run *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct run *u, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (u->o->say)
		u->o->say(u->o->userdata, line);
}

static int fail(struct run *u, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *u, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(u->err, u->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool cancelled(struct run *u) { return u->o->cancel && *u->o->cancel; }

/* "a/b" into buf; false when it does not fit (then buf is cut). */
__attribute__((noinline)) static bool pjoin(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);
	return n >= 0 && (size_t)n < len;
}

/* ---- journal ----------------------------------------------------------------------- */

static int journal_save(struct run *u)
{
	char *text = json_dumps(u->journal, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return fail(u, -ENOMEM, "out of memory");
	char err[512];
	int r = tarball_write_file(u->journal_path, text, strlen(text), err, sizeof(err));
	free(text);
	return r < 0 ? fail(u, r, "cannot write the restore journal: %s", err) : 0;
}

static const char *journal_str(struct run *u, const char *key)
{
	return json_string_value(json_object_get(u->journal, key));
}

static json_t *journal_app(struct run *u, const char *id)
{
	json_t *apps = json_object_get(u->journal, "apps");
	return json_object_get(apps, id);
}

static int journal_set_app(struct run *u, const char *id, json_t *state)
{
	json_t *apps = json_object_get(u->journal, "apps");
	if (!apps) {
		apps = json_object();
		json_object_set_new(u->journal, "apps", apps);
	}
	json_object_set_new(apps, id, state);
	return journal_save(u);
}

/* ---- the source ---------------------------------------------------------------------- */

/* Copy a local file into the staging dir, hashing; verified like a get. */
static int local_get(struct run *u, const char *name, const char *sha256, int64_t size, int64_t max_size)
{
	char src[PATH_MAX], part[PATH_MAX], dst[PATH_MAX];
	snprintf(src, sizeof(src), "%s/%s", u->dir, name);
	char pname[NAME_MAX + 8];
	snprintf(pname, sizeof(pname), ".%.240s.part", name);
	if (!pjoin(part, sizeof(part), u->staging, pname) || !pjoin(dst, sizeof(dst), u->staging, name))
		return fail(u, -ENAMETOOLONG, "%s: name too long", name);
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (in < 0)
		return fail(u, -errno, "%s: %s", src, strerror(errno));
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return fail(u, -EINVAL, "%s is not a regular file", src);
	}
	if (max_size > 0 && st.st_size > max_size) {
		close(in);
		return fail(u, -EFBIG, "%s is larger than %lld bytes", src, (long long)max_size);
	}
	int out = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return fail(u, -e, "cannot create %s: %s", part, strerror(e));
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	static char buf[1 << 16];
	int64_t total = 0;
	int r = 0;
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			r = fail(u, -errno, "cannot write %s: %s", part, strerror(errno));
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		total += n;
		u->res->fetch_bytes += n;
	}
	if (n < 0 && r == 0)
		r = fail(u, -errno, "cannot read %s: %s", src, strerror(errno));
	unsigned char d[32];
	char got[65];
	EVP_DigestFinal_ex(md, d, NULL);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		snprintf(got + 2 * i, 3, "%02x", d[i]);
	if (r == 0 && sha256 && (total != size || strcasecmp(got, sha256) != 0))
		r = fail(u, -EBADMSG, "%s is damaged (%lld bytes, SHA-256 %s; the manifest says %lld bytes, %s)", src,
			 (long long)total, got, (long long)size, sha256);
	if (r == 0 && (fsync(out) < 0 || rename(part, dst) < 0))
		r = fail(u, -errno, "cannot keep %s: %s", dst, strerror(errno));
	close(in);
	close(out);
	if (r < 0)
		unlink(part);
	return r;
}

/* Fetch `name` into the staging dir, verified (sha256 NULL: any content up
 * to max_size). A copy already staged that verifies is kept (resume). */
static int fetch(struct run *u, const char *name, const char *sha256, int64_t size, int64_t max_size)
{
	char staged[PATH_MAX], err[1024];
	if (!pjoin(staged, sizeof(staged), u->staging, name))
		return fail(u, -ENAMETOOLONG, "%s: name too long", name);
	if (sha256 && access(staged, F_OK) == 0) {
		if (tarball_verify(staged, sha256, size, err, sizeof(err)) == 0)
			return 0;
		unlink(staged);
	}
	if (!sha256)
		unlink(staged);
	int64_t t0 = now_mono_ms();
	int r;
	if (u->t) {
		struct sftp_transfer_info info = { 0 };
		r = sftp_target_get(u->t, name, u->staging, sha256, size, max_size, NULL, NULL, &info, err, sizeof(err));
		for (int tries = 0; r == -ECONNRESET && tries < 3 && !cancelled(u); tries++) {
			say(u, "%s; reconnecting to resume", err);
			if ((r = sftp_target_reopen(u->t, err, sizeof(err))) == 0)
				r = sftp_target_get(u->t, name, u->staging, sha256, size, max_size, NULL, NULL, &info, err,
						    sizeof(err));
		}
		u->res->fetch_bytes += info.sent;
		if (r < 0)
			r = fail(u, r, "%s", err);
	} else {
		r = local_get(u, name, sha256, size, max_size);
	}
	u->res->fetch_ms += now_mono_ms() - t0;
	return r;
}

static int list_source(struct run *u, char ***ret, size_t *ret_n)
{
	char err[1024];
	if (u->t) {
		int r = sftp_target_list(u->t, ret, ret_n, err, sizeof(err));
		return r < 0 ? fail(u, r, "%s", err) : 0;
	}
	DIR *d = opendir(u->dir);
	if (!d)
		return fail(u, -errno, "cannot list %s: %s", u->dir, strerror(errno));
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char **nn = realloc(names, (n + 1) * sizeof(*nn));
		if (!nn || !(nn[n] = strdup(e->d_name))) {
			free(nn ? nn : names);
			closedir(d);
			return fail(u, -ENOMEM, "out of memory");
		}
		names = nn;
		n++;
	}
	closedir(d);
	*ret = names;
	*ret_n = n;
	return 0;
}

/* ---- 1. the full backup and its archives --------------------------------------------- */

static bool manifest_name(const char *n)
{
	size_t len = strlen(n);
	return strncmp(n, "full-", 5) == 0 && len > 10 && strcmp(n + len - 5, ".json") == 0;
}

static int choose_manifest(struct run *u)
{
	char **names;
	size_t n;
	int r = list_source(u, &names, &n);
	if (r < 0)
		return r;
	const char *want = journal_str(u, "manifest");
	json_t *best = NULL;
	const char *best_name = NULL, *best_created = NULL;
	int64_t best_id = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!manifest_name(names[i]) || (want && strcmp(want, names[i]) != 0))
			continue;
		if ((r = fetch(u, names[i], NULL, -1, MANIFEST_MAX)) < 0)
			break;
		char path[PATH_MAX];
		if (!pjoin(path, sizeof(path), u->staging, names[i]))
			continue;
		json_t *m = json_load_file(path, 0, NULL);
		unlink(path);
		int64_t id = json_integer_value(json_object_get(m, "id"));
		const char *created = json_string_value(json_object_get(m, "createdAt"));
		bool complete = json_array_size(json_object_get(m, "failedApps")) == 0 && json_object_get(m, "boxState");
		bool pick = m && created && complete &&
			    (u->o->backup_id ? id == u->o->backup_id
					     : !best || strcmp(created, best_created) > 0 ||
						       (strcmp(created, best_created) == 0 && id > best_id));
		if (pick) {
			json_decref(best);
			best = m;
			best_name = names[i];
			best_created = created;
			best_id = id;
		} else {
			json_decref(m);
		}
	}
	if (r == 0 && !best)
		r = want ? fail(u, -ENOENT, "the journal's full backup %s is no longer at %s", want, u->o->from)
		    : u->o->backup_id
			? fail(u, -ENOENT, "no complete full backup %lld at %s", (long long)u->o->backup_id, u->o->from)
			: fail(u, -ENOENT, "no complete full backup at %s", u->o->from);
	if (r == 0) {
		u->manifest = best;
		snprintf(u->manifest_name, sizeof(u->manifest_name), "%s", best_name);
		u->res->backup_id = best_id;
	} else {
		json_decref(best);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static bool archive_name_ok(const char *s)
{
	return s && *s && s[0] != '.' && !strchr(s, '/') && strlen(s) < NAME_MAX - 16;
}

/* Every archive the manifest lists: present, and exactly the bytes it says. */
static int fetch_archives(struct run *u)
{
	json_t *apps = json_object_get(u->manifest, "apps");
	for (size_t i = 0; i <= json_array_size(apps); i++) {
		json_t *a = i == 0 ? json_object_get(u->manifest, "boxState") : json_array_get(apps, i - 1);
		const char *file = json_string_value(json_object_get(a, "file"));
		const char *sha = json_string_value(json_object_get(a, "sha256"));
		int64_t size = json_integer_value(json_object_get(a, "size"));
		if (!archive_name_ok(file) || !sha || strlen(sha) != 64 || size <= 0)
			return fail(u, -EBADMSG, "the manifest %s lists a bad archive (entry %zu)", u->manifest_name, i);
		if (cancelled(u))
			return fail(u, -ECANCELED, "stopped");
		say(u, "Fetching and verifying %s (%.1f MB)", file, (double)size / 1e6);
		int r = fetch(u, file, sha, size, u->cfg->backups_max_archive_size);
		if (r < 0) {
			char inner[1024];
			snprintf(inner, sizeof(inner), "%s", u->err);
			return fail(u, r, "full backup %lld cannot be restored: %s%s; nothing was changed",
				    (long long)u->res->backup_id, r == -ENOENT ? "an archive is missing: " : "", inner);
		}
		/* Every record of an encrypted archive, under the key given:
		 * a wrong key or a damaged record is refused here, before the
		 * box changes. (A plain archive: its SHA-256 was checked.) */
		char staged[PATH_MAX], err[1024];
		pjoin(staged, sizeof(staged), u->staging, file);
		struct tarball_extract_opts xo = { .sha256 = sha, .size = size, .require_own = true,
						   .secret = &u->secret };
		int fd;
		if ((r = tarball_open_verified(staged, &xo, &fd, err, sizeof(err))) < 0) {
			if (r == -EBADMSG)
				unlink(staged);
			return fail(u, r, "full backup %lld cannot be restored: %s: %s; nothing was changed",
				    (long long)u->res->backup_id, file,
				    r == -ENOKEY	   ? "it is encrypted and no key was given (--key or --passphrase-file)"
				    : r == -EKEYREJECTED ? "the key does not open it (wrong key or passphrase)"
							 : err);
		}
		close(fd);
		u->res->archive_bytes += size;
	}
	return 0;
}

/* ---- 2. the plan ------------------------------------------------------------------------- */

static char *join2(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* `path` below `old_root` moved below `new_root`; NULL if not below. */
static char *rebase(const char *path, const char *old_root, const char *new_root)
{
	if (!old_root || !path_is_under(path, old_root) || strcmp(path, old_root) == 0)
		return NULL;
	return join2(new_root, path + strlen(old_root) + 1);
}

static int add_app(struct run *u, const char *id, const char *data_dir)
{
	if (!app_id_valid(id))
		return fail(u, -EBADMSG, "the dumped store has an app with a bad id");
	struct plan_app *n = realloc(u->apps, (u->n_apps + 1) * sizeof(*n));
	if (!n)
		return fail(u, -ENOMEM, "out of memory");
	u->apps = n;
	struct plan_app *p = &u->apps[u->n_apps++];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	const char *a_root = json_string_value(json_object_get(json_object_get(u->manifest, "roots"), "appsdata"));
	if (!data_dir) {
		p->old_dir = a_root ? join2(a_root, id) : NULL;
		p->new_dir = join2(u->cfg->appsdata_root, id);
	} else {
		p->old_dir = strdup(data_dir);
		p->new_dir = u->o->appsdata_root ? join2(u->o->appsdata_root, id) : strdup(data_dir);
		p->new_custom = strdup(p->new_dir);
	}
	return p->new_dir ? 0 : fail(u, -ENOMEM, "out of memory");
}

static int add_vol(struct run *u, const char *id, const char *type, const char *host_path)
{
	if (!app_id_valid(id) || !type || !host_path)
		return fail(u, -EBADMSG, "the dumped store has a bad volume");
	struct plan_vol *n = realloc(u->vols, (u->n_vols + 1) * sizeof(*n));
	if (!n)
		return fail(u, -ENOMEM, "out of memory");
	u->vols = n;
	struct plan_vol *v = &u->vols[u->n_vols++];
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->type = strdup(type);
	v->old_path = strdup(host_path);
	const char *a_root = json_string_value(json_object_get(json_object_get(u->manifest, "roots"), "volumes"));
	v->new_path = rebase(host_path, a_root, u->cfg->volumes_root);
	if (!v->new_path)
		v->new_path = u->o->volumes_root ? join2(u->o->volumes_root, id) : strdup(host_path);
	return v->type && v->old_path && v->new_path ? 0 : fail(u, -ENOMEM, "out of memory");
}

static int read_dump_sqlite(struct run *u, const char *db)
{
	char uri[PATH_MAX + 32];
	snprintf(uri, sizeof(uri), "file:%s?immutable=1", db);
	sqlite3 *h = NULL;
	int r = 0;
	if (sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
		r = fail(u, -EBADMSG, "cannot open the dumped database: %s", h ? sqlite3_errmsg(h) : "out of memory");
		goto out;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(h, "SELECT id, data_dir FROM apps ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		r = fail(u, -EBADMSG, "the dumped database has no apps table: %s", sqlite3_errmsg(h));
		goto out;
	}
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW)
		r = add_app(u, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	if (r < 0)
		goto out;
	if (sqlite3_prepare_v2(h, "SELECT id, mount_type, host_path FROM volumes ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		r = fail(u, -EBADMSG, "the dumped database has no volumes table: %s", sqlite3_errmsg(h));
		goto out;
	}
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW)
		r = add_vol(u, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
			    (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
out:
	sqlite3_close(h);
	return r;
}

static int read_dump_jsonl(struct run *u, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return fail(u, -errno, "cannot read %s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	int r = 0;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *table = json_string_value(json_object_get(j, "table"));
		json_t *row = json_object_get(j, "row");
		if (table && row && strcmp(table, "apps") == 0)
			r = add_app(u, json_string_value(json_object_get(row, "id")),
				    json_string_value(json_object_get(row, "data_dir")));
		else if (table && row && strcmp(table, "volumes") == 0)
			r = add_vol(u, json_string_value(json_object_get(row, "id")),
				    json_string_value(json_object_get(row, "mount_type")),
				    json_string_value(json_object_get(row, "host_path")));
		json_decref(j);
	}
	free(line);
	fclose(f);
	return r;
}

/* Extract the box state archive into staging/box (once). */
static int unpack_box_state(struct run *u, char *ret_dir, size_t len)
{
	json_t *b = json_object_get(u->manifest, "boxState");
	char archive[PATH_MAX], err[1024];
	if (!pjoin(archive, sizeof(archive), u->staging, json_string_value(json_object_get(b, "file"))) ||
	    !pjoin(ret_dir, len, u->staging, "box"))
		return fail(u, -ENAMETOOLONG, "the staging dir's name is too long");
	const char *roots[] = { u->staging, NULL };
	fs_remove_tree(roots, ret_dir, err, sizeof(err));
	if (mkdir(ret_dir, 0700) < 0)
		return fail(u, -errno, "cannot create %s: %s", ret_dir, strerror(errno));
	int dfd = open(ret_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(u, -errno, "%s: %s", ret_dir, strerror(errno));
	struct tarball_extract_opts xo = { .sha256 = json_string_value(json_object_get(b, "sha256")),
					   .size = json_integer_value(json_object_get(b, "size")),
					   .require_own = true, .secret = &u->secret };
	int r = tarball_extract(archive, dfd, &xo, u->o->cancel, NULL, err, sizeof(err));
	close(dfd);
	return r < 0 ? fail(u, r, "cannot unpack the box state: %s", err) : 0;
}

static bool dir_has_entries(const char *path, bool *ret_exists)
{
	DIR *d = opendir(path);
	*ret_exists = d != NULL || errno != ENOENT;
	if (!d)
		return *ret_exists; /* not a dir, or unreadable: counts as taken */
	struct dirent *e;
	bool any = false;
	while (!any && (e = readdir(d)))
		any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return any;
}

/* Apps or volumes in this box's store. Opening it must not create it. */
static int store_in_use(struct run *u, bool *ret)
{
	*ret = false;
	if (u->cfg->store_backend == NULL || strcmp(u->cfg->store_backend, "sqlite") == 0) {
		if (access(u->cfg->sqlite_path, F_OK) != 0)
			return 0;
	}
	struct store *s;
	char err[512];
	int r = store_open_config(u->cfg, STORE_OPEN_NO_MIGRATE, &s, err, sizeof(err));
	if (r < 0)
		return fail(u, r, "cannot open this box's store: %s", err);
	int64_t n = 0, m = 0;
	/* A store without the tables is empty. */
	if (store_query_int64(s, &n, "SELECT COUNT(*) FROM apps", NULL) < 0)
		n = 0;
	if (store_query_int64(s, &m, "SELECT COUNT(*) FROM volumes", NULL) < 0)
		m = 0;
	store_close(s);
	*ret = n + m > 0;
	return 0;
}

static bool daemon_running(const char *socket_path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (!socket_path || strlen(socket_path) >= sizeof(a.sun_path))
		return false;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool up = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return up;
}

static int plan(struct run *u, const char *box_dir, bool store_done)
{
	char path[PATH_MAX], err[1024];
	pjoin(path, sizeof(path), box_dir, SQLITE_NAME);
	bool sqlite_dump = access(path, F_OK) == 0;
	if (!sqlite_dump)
		pjoin(path, sizeof(path), box_dir, JSONL_NAME);
	int r = sqlite_dump ? read_dump_sqlite(u, path) : read_dump_jsonl(u, path);
	if (r < 0)
		return r;
	bool sqlite_here = !u->cfg->store_backend || strcmp(u->cfg->store_backend, "sqlite") == 0;
	if (sqlite_dump != sqlite_here)
		return fail(u, -EINVAL,
			    "the backup's store is %s and this box's is %s: restore onto the same kind of store "
			    "(set [store] backend)", sqlite_dump ? "SQLite" : "a server database (MariaDB/PostgreSQL)",
			    sqlite_here ? "SQLite" : u->cfg->store_backend);

	/* Each app's archive, and every path checked as on this box. */
	json_t *apps = json_object_get(u->manifest, "apps");
	for (size_t i = 0; i < u->n_apps; i++) {
		struct plan_app *p = &u->apps[i];
		/* An encrypted archive names its app by an HMAC of the id
		 * (backup_crypt.h), a plain one by the id. */
		char name_id[BACKUP_CRYPT_NAME_HEX] = "";
		if (u->secret.kind != BACKUP_KEY_NONE &&
		    (r = backup_crypt_name(&u->secret, p->id, name_id, err, sizeof(err))) < 0)
			return fail(u, r, "%s", err);
		json_t *a = NULL;
		for (size_t j = 0; j < json_array_size(apps) && !a; j++) {
			json_t *e = json_array_get(apps, j);
			const char *aid = json_string_value(json_object_get(e, "appId"));
			const char *nid = json_string_value(json_object_get(e, "nameId"));
			if ((aid && strcmp(aid, p->id) == 0) || (nid && name_id[0] && strcmp(nid, name_id) == 0))
				a = e;
		}
		if (!a)
			return fail(u, -EBADMSG, "app %s is in the store but has no archive in full backup %lld", p->id,
				    (long long)u->res->backup_id);
		snprintf(p->archive, sizeof(p->archive), "%s", json_string_value(json_object_get(a, "file")));
		snprintf(p->sha256, sizeof(p->sha256), "%s", json_string_value(json_object_get(a, "sha256")));
		p->size = json_integer_value(json_object_get(a, "size"));
		if (p->new_custom ? path_check_app_data(u->cfg, p->new_dir, err, sizeof(err)) < 0
				  : path_check(p->new_dir, u->cfg->state_dir, true, err, sizeof(err)) < 0)
			return fail(u, -EINVAL, "app %s cannot have its data dir at %s here: %s", p->id, p->new_dir, err);
	}
	for (size_t i = 0; i < u->n_vols; i++) {
		struct plan_vol *v = &u->vols[i];
		if (path_check_volume(u->cfg, v->new_path, err, sizeof(err)) < 0)
			return fail(u, -EINVAL, "volume %s cannot be at %s here: %s", v->id, v->new_path, err);
	}
	if (store_done)
		return 0; /* our own half-restored box */

	/* An empty box, or --force. */
	if (!u->o->under_daemon && daemon_running(u->cfg->socket_path))
		return fail(u, -EBUSY, "a boxd daemon answers on %s: stop it before restoring the box",
			    u->cfg->socket_path);
	bool used;
	if ((r = store_in_use(u, &used)) < 0)
		return r;
	char why[2048] = "";
	size_t w = 0;
	if (used)
		w += (size_t)snprintf(why + w, sizeof(why) - w, "its store has apps or volumes; ");
	for (size_t i = 0; i < u->n_apps && w < sizeof(why) - 200; i++) {
		bool exists;
		if (dir_has_entries(u->apps[i].new_dir, &exists))
			w += (size_t)snprintf(why + w, sizeof(why) - w, "%s is not empty; ", u->apps[i].new_dir);
	}
	struct engine *e = NULL;
	struct engine_options eo = { .socket_path = u->cfg->engine_socket };
	if (engine_open_opts(&eo, &e, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < u->n_apps && w < sizeof(why) - 200; i++) {
			char name[APP_ID_MAX + 8];
			snprintf(name, sizeof(name), "app-%s", u->apps[i].id);
			struct engine_container c = { 0 };
			if (engine_container_inspect(e, name, &c) == 0) {
				engine_container_release(&c);
				if (u->o->force) {
					engine_container_remove(e, name, ENGINE_REMOVE_FORCE);
					say(u, "removed the container %s (--force)", name);
				} else {
					w += (size_t)snprintf(why + w, sizeof(why) - w, "a container %s exists; ", name);
				}
			}
		}
		engine_close(e);
	} else {
		say(u, "the container engine does not answer (%s): boxd's platformstart will create the containers", err);
	}
	if (w && !u->o->force) {
		why[w - 2] = '\0';
		return fail(u, -ENOTEMPTY, "this box is not empty (%s): refusing to restore over it without --force; "
					   "nothing was changed", why);
	}
	if (w)
		say(u, "restoring over a box that is not empty (--force): %s", why);
	return 0;
}

/* ---- 3. the store --------------------------------------------------------------------------- */

static int copy_sqlite(struct run *u, const char *src)
{
	const char *dst = u->cfg->sqlite_path;
	char tmp[PATH_MAX], err[1024];
	snprintf(tmp, sizeof(tmp), "%s.restore-tmp", dst);
	FILE *in = fopen(src, "re");
	if (!in)
		return fail(u, -errno, "cannot read %s: %s", src, strerror(errno));
	char *slash = strrchr(tmp, '/');
	if (slash) {
		*slash = '\0';
		int r = fs_mkdir_p(tmp, 0700, err, sizeof(err));
		*slash = '/';
		if (r < 0) {
			fclose(in);
			return fail(u, r, "%s", err);
		}
	}
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		fclose(in);
		return fail(u, -errno, "cannot create %s: %s", tmp, strerror(errno));
	}
	char buf[1 << 16];
	size_t n;
	int r = 0;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (write(out, buf, n) != (ssize_t)n) {
			r = fail(u, -errno, "cannot write %s: %s", tmp, strerror(errno));
			break;
		}
	fclose(in);
	if (r == 0 && fsync(out) < 0)
		r = fail(u, -errno, "cannot fsync %s: %s", tmp, strerror(errno));
	close(out);
	/* The old database's WAL must not be applied to the new file. */
	char side[PATH_MAX + 8];
	const char *sfx[] = { "-wal", "-shm", "-journal" };
	for (size_t i = 0; r == 0 && i < 3; i++) {
		snprintf(side, sizeof(side), "%s%s", dst, sfx[i]);
		if (unlink(side) < 0 && errno != ENOENT)
			r = fail(u, -errno, "cannot remove %s: %s", side, strerror(errno));
	}
	if (r == 0 && rename(tmp, dst) < 0)
		r = fail(u, -errno, "cannot replace %s: %s", dst, strerror(errno));
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	*strrchr(tmp, '/') = '\0';
	fs_fsync_dir(tmp);
	return 0;
}

/* Under a running daemon (box_restore_status.h) the database file is open
 * in the daemon, its WAL beside it: replacing the file would leave the
 * daemon's connections on the old inode and its WAL applied to the new
 * one. The dumped database is copied into the live one through SQLite's
 * backup API instead: one write transaction, which every connection
 * then sees (the daemon re-executes right after the restore anyway). */
static int copy_sqlite_live(struct run *u, const char *src)
{
	sqlite3 *from = NULL, *to = NULL;
	int rc = sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open_v2(u->cfg->sqlite_path, &to, SQLITE_OPEN_READWRITE, NULL);
	int r = 0;
	if (rc != SQLITE_OK) {
		r = fail(u, -EIO, "cannot open the dumped store or %s: %s", u->cfg->sqlite_path,
			 sqlite3_errmsg(to ? to : from));
		goto out;
	}
	sqlite3_busy_timeout(to, 10000);
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	if (!b) {
		r = fail(u, -EIO, "cannot copy the dumped store into %s: %s", u->cfg->sqlite_path, sqlite3_errmsg(to));
		goto out;
	}
	for (int tries = 0; tries < 100; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		sqlite3_sleep(100);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		r = fail(u, -EIO, "cannot copy the dumped store into %s: %s", u->cfg->sqlite_path, sqlite3_errstr(rc));
out:
	sqlite3_close(from);
	sqlite3_close(to);
	return r;
}

/* The JSON-lines export into this store's tables, in one transaction. */
static int import_jsonl(struct run *u, struct store *s, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return fail(u, -errno, "cannot read %s: %s", path, strerror(errno));
	bool pg = store_get_backend(s) == STORE_BACKEND_POSTGRES;
	char *line = NULL, sql[8192];
	size_t cap = 0;
	int r = store_begin(s, true);
	json_t *cols = NULL;
	char table[64] = "";
	bool skip = false;
	int64_t rows = 0;
	json_t *tables = json_array();
	if (r < 0)
		goto store_fail;
	for (int lineno = 1; getline(&line, &cap, f) > 0; lineno++) {
		json_t *j = json_loads(line, 0, NULL);
		if (!j) {
			r = fail(u, -EBADMSG, "the store export, line %d, is not JSON", lineno);
			goto out;
		}
		if (lineno == 1) {
			if (json_integer_value(json_object_get(j, "boxdStateExport")) != 1)
				r = fail(u, -EBADMSG, "the store export has no known header");
			json_decref(j);
			if (r < 0)
				goto out;
			continue;
		}
		const char *t = json_string_value(json_object_get(j, "table"));
		json_t *c = json_object_get(j, "columns"), *row = json_object_get(j, "row");
		if (!box_state_ident_ok(t)) {
			json_decref(j);
			r = fail(u, -EBADMSG, "the store export, line %d, names a bad table", lineno);
			goto out;
		}
		if (c) {
			/* A new table: this store keeps its own lock document and
			 * schema version; every other table is replaced. */
			json_decref(cols);
			cols = json_incref(c);
			snprintf(table, sizeof(table), "%s", t);
			skip = strcmp(t, "locks") == 0 || strcmp(t, "schema_version") == 0;
			if (!skip) {
				snprintf(sql, sizeof(sql), "DELETE FROM \"%s\"", t);
				if ((r = (int)store_run(s, sql, NULL)) < 0)
					goto store_fail;
				json_array_append_new(tables, json_string(t));
			}
		} else if (row && !skip) {
			if (strcmp(t, table) != 0 || !cols) {
				json_decref(j);
				r = fail(u, -EBADMSG, "the store export, line %d: a row before its table's columns", lineno);
				goto out;
			}
			size_t used = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO \"%s\" (", t);
			size_t nc = json_array_size(cols);
			for (size_t i = 0; i < nc; i++) {
				const char *cn = json_string_value(json_array_get(cols, i));
				if (!box_state_ident_ok(cn)) {
					json_decref(j);
					r = fail(u, -EBADMSG, "the store export names a bad column of %s", t);
					goto out;
				}
				used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s\"%s\"", i ? ", " : "", cn);
			}
			used += (size_t)snprintf(sql + used, sizeof(sql) - used, ") VALUES (");
			for (size_t i = 0; i < nc; i++)
				used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s?", i ? ", " : "");
			snprintf(sql + used, sizeof(sql) - used, ")");
			struct store_stmt *st;
			if ((r = store_prepare(s, sql, &st)) < 0) {
				json_decref(j);
				goto store_fail;
			}
			for (size_t i = 0; i < nc; i++) {
				json_t *v = json_object_get(row, json_string_value(json_array_get(cols, i)));
				if (json_is_integer(v))
					store_bind_int64(st, (int)i + 1, json_integer_value(v));
				else if (json_is_string(v))
					store_bind_text(st, (int)i + 1, json_string_value(v));
				else
					store_bind_null(st, (int)i + 1);
			}
			r = store_step(st);
			store_finalize(st);
			if (r < 0) {
				json_decref(j);
				goto store_fail;
			}
			rows++;
		}
		json_decref(j);
	}
	if (pg) {
		/* Explicit ids do not move a sequence: new rows must not
		 * collide with the restored ones. */
		size_t i;
		json_t *tv;
		json_array_foreach(tables, i, tv) {
			const char *t = json_string_value(tv);
			struct store_stmt *st;
			char quoted[80];
			snprintf(quoted, sizeof(quoted), "\"%s\"", t);
			if ((r = store_query(s, &st, "SELECT pg_get_serial_sequence(?, 'id')", "s", quoted)) < 0)
				goto store_fail;
			char seq[256] = "";
			if (store_step(st) == 1 && !store_col_is_null(st, 0))
				snprintf(seq, sizeof(seq), "%s", store_col_text(st, 0));
			store_finalize(st);
			if (!seq[0])
				continue;
			snprintf(sql, sizeof(sql), "SELECT setval(?, COALESCE((SELECT MAX(id) FROM \"%s\"), 0) + 1, false)", t);
			int64_t ignored;
			if ((r = store_query_int64(s, &ignored, sql, "s", seq)) < 0)
				goto store_fail;
		}
	}
	if ((r = store_commit(s)) < 0)
		goto store_fail;
	say(u, "imported %lld rows into %zu tables", (long long)rows, json_array_size(tables));
	goto out;
store_fail:
	r = fail(u, r, "cannot import the store export: %s", store_errmsg(s));
	store_rollback(s);
out:
	store_rollback(s);
	json_decref(cols);
	json_decref(tables);
	free(line);
	fclose(f);
	return r;
}

/* The restored rows, made true for this box. Idempotent. */
static int adapt_rows(struct run *u, struct store *s)
{
	int r = store_begin(s, true);
	for (size_t i = 0; r >= 0 && i < u->n_apps; i++) {
		struct plan_app *p = &u->apps[i];
		r = app_set(s, p->id, "container_id", NULL);
		if (r >= 0)
			r = app_set_data_id(s, p->id, NULL);
		if (r >= 0 && p->new_custom)
			r = app_set(s, p->id, "data_dir", p->new_custom);
	}
	for (size_t i = 0; r >= 0 && i < u->n_vols; i++) {
		struct plan_vol *v = &u->vols[i];
		int64_t n = store_run(s, "UPDATE volumes SET host_path = ? WHERE id = ?", "ss", v->new_path, v->id);
		r = n < 0 ? (int)n : volume_set_host_id(s, v->id, NULL);
	}
	/* The box lives here now: apps the dump placed on another host (the
	 * machine it was made on, after a disaster) are placed on this one.
	 * Left alone, the scheduler would leave their tasks to that host,
	 * waiting for it forever (host_gone). */
	char host[HOST_ID_MAX + 1];
	if (r >= 0 && host_id_get(host, sizeof(host)) == 0) {
		int64_t n = store_run(s, "UPDATE apps SET host = ? WHERE host IS NOT NULL AND host <> ?", "ss", host,
				      host);
		if (n < 0)
			r = (int)n;
		else if (n > 0)
			say(u, "changed: %lld app%s placed on this host (%s)", (long long)n, n == 1 ? "" : "s", host);
	}
	/* The store was dumped while the full backup ran: its task is still
	 * running there. The manifest on the target is the proof that it
	 * finished. */
	int64_t task_id = json_integer_value(json_object_get(u->manifest, "taskId"));
	if (r >= 0 && task_id > 0) {
		json_t *res = json_pack("{s:I, s:s}", "backupId", (json_int_t)u->res->backup_id, "note",
					"finished on the box it was made on; its manifest is on the target (recorded by "
					"boxd restore)");
		char *result = res ? json_dumps(res, JSON_COMPACT) : NULL;
		json_decref(res);
		int f = task_finish(s, task_id, TASK_SUCCEEDED, NULL, NULL, result);
		free(result);
		if (f < 0 && f != -ENOENT)
			r = f;
	}
	if (r >= 0)
		r = store_commit(s);
	if (r < 0) {
		store_rollback(s);
		return fail(u, r, "cannot adapt the restored store: %s", store_errmsg(s));
	}
	return 0;
}

/* SQLite's file is copied whole, lock document included. That document
 * names the workers of the box the dump was made on (the full backup's
 * holds at least), and none of them runs here. On another machine they are
 * another host's owners without a lease, which nothing ever reaps: the
 * platformstart would wait behind the full backup's `platform` for ever.
 * (A server store keeps its own document: import_jsonl() skips it.) */
static int forget_dumped_locks(struct run *u, struct store *s)
{
	struct lock_doc doc;
	int64_t version;
	int r = locks_read(s, &doc, &version, NULL);
	if (r < 0)
		return fail(u, r, "cannot read the restored lock document: %s", store_errmsg(s));
	int freed = 0;
	for (size_t i = 0; r >= 0 && i < doc.n_holders; i++, freed++) {
		const struct lock_owner *o = &doc.holders[i].owner;
		r = o->task_id > 0 ? locks_unlock_task(s, o->task_id, NULL) : locks_unlock(s, o, NULL, 0, NULL);
	}
	for (size_t i = 0; r >= 0 && i < doc.n_waiters; i++, freed++)
		if (doc.waiters[i].owner.task_id > 0)
			r = locks_unlock_task(s, doc.waiters[i].owner.task_id, NULL);
	lock_doc_release(&doc);
	if (r < 0)
		return fail(u, r, "cannot release the locks of the box's old workers: %s", store_errmsg(s));
	if (freed > 0)
		say(u, "Released %d lock entr%s of the box's old workers", freed, freed == 1 ? "y" : "ies");
	return 0;
}

static int restore_store(struct run *u, const char *box_dir)
{
	char path[PATH_MAX], err[1024];
	struct store *s = NULL;
	int r;
	pjoin(path, sizeof(path), box_dir, SQLITE_NAME);
	if (access(path, F_OK) == 0) {
		say(u, "Restoring the store: %s", u->cfg->sqlite_path);
		if ((r = u->o->under_daemon ? copy_sqlite_live(u, path) : copy_sqlite(u, path)) < 0)
			return r;
		if ((r = store_open_config(u->cfg, 0, &s, err, sizeof(err))) < 0)
			return fail(u, r, "cannot open the restored store: %s", err);
		if ((r = forget_dumped_locks(u, s)) < 0) {
			store_close(s);
			return r;
		}
	} else {
		say(u, "Restoring the store: importing into the %s database", u->cfg->store_backend);
		if ((r = store_open_config(u->cfg, 0, &s, err, sizeof(err))) < 0)
			return fail(u, r, "cannot open this box's store: %s", err);
		pjoin(path, sizeof(path), box_dir, JSONL_NAME);
		if ((r = import_jsonl(u, s, path)) < 0) {
			store_close(s);
			return r;
		}
	}
	r = adapt_rows(u, s);
	store_close(s);
	return r;
}

/* ---- 4. data dirs ---------------------------------------------------------------------------- */

/* Leftovers of a killed run: ".<name>.restore-*" beside the data dir. */
static void remove_leftovers(int pfd, const char *name)
{
	char prefix[NAME_MAX + 16];
	snprintf(prefix, sizeof(prefix), ".%s.restore-", name);
	int fd = dup(pfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	char err[256];
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			fs_remove_tree_at(pfd, e->d_name, err, sizeof(err));
	closedir(d);
}

static int restore_app(struct run *u, struct store *s, struct plan_app *p)
{
	char err[1024], parent[PATH_MAX], tmp[NAME_MAX + 1];
	json_t *j = journal_app(u, p->id);
	if (json_is_string(j) && strcmp(json_string_value(j), "done") == 0)
		return 0;
	snprintf(parent, sizeof(parent), "%s", p->new_dir);
	char *slash = strrchr(parent, '/');
	*slash = '\0';
	const char *name = slash + 1;
	int r = fs_mkdir_p(parent[0] ? parent : "/", 0755, err, sizeof(err));
	if (r < 0)
		return fail(u, r, "app %s: %s", p->id, err);
	int pfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return fail(u, -errno, "app %s: cannot open %s: %s", p->id, parent, strerror(errno));
	remove_leftovers(pfd, name);
	struct stat st;
	bool exists = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	const char *state = json_string_value(json_object_get(j, "state"));
	if (!(state && strcmp(state, "renaming") == 0 && exists)) {
		/* Not yet in place. A dir there: empty (made by hand, or by a
		 * daemon) or, with --force, moved aside. */
		if (exists && unlinkat(pfd, name, AT_REMOVEDIR) < 0) {
			if (!u->o->force) {
				close(pfd);
				return fail(u, -ENOTEMPTY, "app %s: %s is not empty (use --force)", p->id, p->new_dir);
			}
			char aside[NAME_MAX + 1];
			snprintf(aside, sizeof(aside), ".%.180s.before-restore-%lld", name, (long long)time(NULL));
			if (renameat(pfd, name, pfd, aside) < 0) {
				close(pfd);
				return fail(u, -errno, "app %s: cannot move %s aside: %s", p->id, p->new_dir, strerror(errno));
			}
			say(u, "app %s: the old contents of %s are in %s/%s (--force)", p->id, p->new_dir, parent, aside);
		}
		snprintf(tmp, sizeof(tmp), ".%.200s.restore-XXXXXX", name);
		char tpath[PATH_MAX + NAME_MAX + 2];
		snprintf(tpath, sizeof(tpath), "%s/%s", parent, tmp);
		if (!mkdtemp(tpath)) {
			close(pfd);
			return fail(u, -errno, "app %s: cannot create a temp dir in %s: %s", p->id, parent, strerror(errno));
		}
		snprintf(tmp, sizeof(tmp), "%s", strrchr(tpath, '/') + 1);
		int tfd = openat(pfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char archive[PATH_MAX];
		pjoin(archive, sizeof(archive), u->staging, p->archive);
		struct tarball_extract_opts xo = { .sha256 = p->sha256, .size = p->size, .require_own = true,
						   .owners = true, .special = u->cfg->backups_restore_special,
						   .secret = &u->secret };
		struct tarball_extract_info xi = { 0 };
		say(u, "Restoring app %s into %s", p->id, p->new_dir);
		r = tfd < 0 ? -errno : tarball_extract(archive, tfd, &xo, u->o->cancel, &xi, err, sizeof(err));
		if (tfd >= 0)
			close(tfd);
		if (r < 0) {
			fs_remove_tree_at(pfd, tmp, err + 512, 512);
			close(pfd);
			return fail(u, r, "app %s: cannot extract %s: %s", p->id, p->archive, err);
		}
		u->res->data_bytes += xi.data_bytes;
		/* Before the rename: a rerun that finds the data dir knows it
		 * is this run's (the box had none). */
		if ((r = journal_set_app(u, p->id, json_pack("{s:s}", "state", "renaming"))) < 0) {
			close(pfd);
			return r;
		}
		if (renameat(pfd, tmp, pfd, name) < 0) {
			r = -errno;
			fs_remove_tree_at(pfd, tmp, err, sizeof(err));
			close(pfd);
			return fail(u, r, "app %s: cannot move the data into %s: %s", p->id, p->new_dir, strerror(-r));
		}
		fsync(pfd);
	}
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		close(pfd);
		return fail(u, -errno, "app %s: %s: %s", p->id, p->new_dir, strerror(errno));
	}
	close(pfd);
	struct fs_id id = { .dev = st.st_dev, .ino = st.st_ino };
	if ((r = app_set_data_id(s, p->id, &id)) < 0)
		return fail(u, r, "app %s: cannot record its data dir: %s", p->id, store_errmsg(s));
	u->res->apps++;
	return journal_set_app(u, p->id, json_string("done"));
}

static int restore_volumes(struct run *u, struct store *s)
{
	char err[1024];
	for (size_t i = 0; i < u->n_vols; i++) {
		struct plan_vol *v = &u->vols[i];
		if (strcmp(v->type, "dir") != 0) {
			say(u, "volume %s (%s) at %s: %s", v->id, v->type, v->new_path,
			    volume_type_managed(v->type) ? "boxd mounts it when it starts" : "the host must mount it there");
			u->res->volumes++;
			continue;
		}
		int r = fs_mkdir_p(v->new_path, 0755, err, sizeof(err));
		if (r < 0)
			return fail(u, r, "volume %s: %s", v->id, err);
		struct stat st;
		if (lstat(v->new_path, &st) < 0 || !S_ISDIR(st.st_mode))
			return fail(u, -ENOTDIR, "volume %s: %s is not a directory", v->id, v->new_path);
		struct fs_id id = { .dev = st.st_dev, .ino = st.st_ino };
		if ((r = volume_set_host_id(s, v->id, &id)) < 0)
			return fail(u, r, "volume %s: %s", v->id, store_errmsg(s));
		u->res->volumes++;
	}
	return 0;
}

/* ---- the whole ----------------------------------------------------------------------------------- */

static void report_changes(struct run *u)
{
	for (size_t i = 0; i < u->n_apps; i++) {
		struct plan_app *p = &u->apps[i];
		if (!p->old_dir || strcmp(p->old_dir, p->new_dir) != 0)
			say(u, "changed: app %s data dir %s -> %s", p->id, p->old_dir ? p->old_dir : "(default)", p->new_dir);
	}
	for (size_t i = 0; i < u->n_vols; i++) {
		struct plan_vol *v = &u->vols[i];
		if (strcmp(v->old_path, v->new_path) != 0)
			say(u, "changed: volume %s %s -> %s", v->id, v->old_path, v->new_path);
	}
}

static void release_plan(struct run *u)
{
	for (size_t i = 0; i < u->n_apps; i++) {
		free(u->apps[i].old_dir);
		free(u->apps[i].new_dir);
		free(u->apps[i].new_custom);
	}
	free(u->apps);
	for (size_t i = 0; i < u->n_vols; i++) {
		free(u->vols[i].type);
		free(u->vols[i].old_path);
		free(u->vols[i].new_path);
	}
	free(u->vols);
}

static int open_source(struct run *u)
{
	char err[1024];
	if (sftp_target_is_url(u->o->from)) {
		struct sftp_target_opts so = {
			.url = u->o->from,
			.key_file = u->o->ssh_key_file ? u->o->ssh_key_file : u->cfg->backups_ssh_key_file,
			.known_hosts = u->o->known_hosts ? u->o->known_hosts : u->cfg->backups_known_hosts,
			.cancel = u->o->cancel,
		};
		int r = sftp_target_open(&so, &u->t, err, sizeof(err));
		return r < 0 ? fail(u, r, "%s", err) : 0;
	}
	struct stat st;
	if (!u->o->from || u->o->from[0] != '/' || stat(u->o->from, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(u, -EINVAL, "--from is sftp://user@host[:port]/path or an absolute directory, not \"%s\"",
			    u->o->from ? u->o->from : "");
	u->dir = u->o->from;
	return 0;
}

int box_restore_run(const struct boxd_config *cfg, const struct box_restore_opts *o, struct box_restore_result *ret,
		    char *err, size_t errlen)
{
	struct box_restore_result res = { 0 };
	struct run u = { .cfg = cfg, .o = o, .res = &res, .err = err, .errlen = errlen, .t0 = now_mono_ms() };
	struct store *s = NULL;
	char box_dir[PATH_MAX], e2[512];
	if (!pjoin(u.staging, sizeof(u.staging), cfg->state_dir, "restore") ||
	    !pjoin(u.journal_path, sizeof(u.journal_path), u.staging, "journal.json"))
		return fail(&u, -ENAMETOOLONG, "the state dir's name is too long");
	int r = fs_mkdir_p(u.staging, 0700, e2, sizeof(e2));
	if (r < 0)
		return fail(&u, r, "%s", e2);
	u.journal = json_load_file(u.journal_path, 0, NULL);
	if (u.journal) {
		const char *from = journal_str(&u, "from");
		if (!from || strcmp(from, o->from) != 0) {
			r = fail(&u, -EEXIST,
				 "an unfinished restore from %s is recorded in %s: finish it (same --from), or remove %s "
				 "to start over", from ? from : "?", u.journal_path, u.staging);
			goto out;
		}
		res.resumed = true;
		if (json_is_true(json_object_get(u.journal, "done"))) {
			/* Killed while it cleaned up: only that is left. */
			const char *roots[] = { cfg->state_dir, NULL };
			res.backup_id = json_integer_value(json_object_get(u.journal, "backupId"));
			say(&u, "The restore recorded in %s is complete; removing its staging dir", u.journal_path);
			if ((r = fs_remove_tree(roots, u.staging, e2, sizeof(e2))) < 0)
				r = fail(&u, r, "%s", e2);
			else if (ret)
				*ret = res;
			goto out;
		}
		say(&u, "Resuming the restore recorded in %s", u.journal_path);
	} else {
		u.journal = json_pack("{s:s}", "from", o->from);
	}
	if (o->key_file || o->passphrase_file)
		r = backup_secret_load_file(o->key_file ? BACKUP_KEY_FILE : BACKUP_KEY_PASSPHRASE,
					    o->key_file ? o->key_file : o->passphrase_file, &u.secret, e2, sizeof(e2));
	else
		r = backup_secret_load(cfg, &u.secret, e2, sizeof(e2));
	if (r < 0) {
		r = fail(&u, r, "%s", e2);
		goto out;
	}
	if ((r = open_source(&u)) < 0)
		goto out;
	if ((r = choose_manifest(&u)) < 0)
		goto out;
	say(&u, "Full backup %lld (%s, made %s): %zu archives", (long long)res.backup_id, u.manifest_name,
	    json_string_value(json_object_get(u.manifest, "createdAt")) ?: "?",
	    json_array_size(json_object_get(u.manifest, "apps")) + 1);
	if ((r = fetch_archives(&u)) < 0)
		goto out;
	sftp_target_close(u.t);
	u.t = NULL;
	if ((r = unpack_box_state(&u, box_dir, sizeof(box_dir))) < 0)
		goto out;
	bool store_done = journal_str(&u, "store") && strcmp(journal_str(&u, "store"), "done") == 0;
	if ((r = plan(&u, box_dir, store_done || json_object_get(u.journal, "manifest"))) < 0)
		goto out;
	/* From here on the box changes: the journal says so first. */
	if (!json_object_get(u.journal, "manifest")) {
		json_object_set_new(u.journal, "manifest", json_string(u.manifest_name));
		json_object_set_new(u.journal, "backupId", json_integer(res.backup_id));
		if ((r = journal_save(&u)) < 0)
			goto out;
	}
	report_changes(&u);
	if (!store_done) {
		if ((r = restore_store(&u, box_dir)) < 0)
			goto out;
		json_object_set_new(u.journal, "store", json_string("done"));
		if ((r = journal_save(&u)) < 0)
			goto out;
	}
	if ((r = store_open_config(cfg, STORE_OPEN_NO_MIGRATE, &s, e2, sizeof(e2))) < 0) {
		r = fail(&u, r, "cannot open the restored store: %s", e2);
		goto out;
	}
	for (size_t i = 0; i < u.n_apps; i++) {
		if (cancelled(&u)) {
			r = fail(&u, -ECANCELED, "stopped");
			goto out;
		}
		if ((r = restore_app(&u, s, &u.apps[i])) < 0)
			goto out;
	}
	if ((r = restore_volumes(&u, s)) < 0)
		goto out;
	/* Done: the staging dir (and journal) goes. */
	const char *roots[] = { cfg->state_dir, NULL };
	json_object_set_new(u.journal, "done", json_true());
	journal_save(&u);
	if (fs_remove_tree(roots, u.staging, e2, sizeof(e2)) < 0)
		say(&u, "warning: %s", e2);
	res.total_ms = now_mono_ms() - u.t0;
	if (ret)
		*ret = res;
out:
	store_close(s);
	sftp_target_close(u.t);
	json_decref(u.manifest);
	json_decref(u.journal);
	release_plan(&u);
	backup_secret_release(&u.secret);
	return r;
}

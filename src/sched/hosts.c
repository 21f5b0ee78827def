/* hosts.c — the hosts table: heartbeat, state, list (see hosts.h). */
#include "hosts.h"

#include <stdio.h>
#include <string.h>

int hosts_heartbeat(struct store *s, const struct host_beat *b)
{
	int64_t now;
	int r = store_now_ms(s, &now);
	if (r < 0)
		return r;
	/* An UPDATE first: the row exists after the first beat. Two daemons
	 * with one host id would fight over one row; the INSERT of the first
	 * beat fails for the second then, which its next beat retries as an
	 * UPDATE. */
	int64_t n = store_run(s,
			      "UPDATE hosts SET name = ?, owner_id = ?, api_url = ?, version = ?, started_at = ?, "
			      "heartbeat_at = ? WHERE id = ?",
			      "ssssiis", b->name, b->owner_id, b->api_url, b->version, b->started_at_ms, now, b->id);
	if (n == 0)
		n = store_run(s,
			      "INSERT INTO hosts (id, name, owner_id, api_url, version, started_at, heartbeat_at) "
			      "VALUES (?, ?, ?, ?, ?, ?, ?)",
			      "sssssii", b->id, b->name, b->owner_id, b->api_url, b->version, b->started_at_ms, now);
	return n < 0 ? (int)n : 0;
}

int hosts_other_owner(struct store *s, const char *id, const char *owner_id, char *other, size_t len,
		      int64_t *ret_age_ms)
{
	int64_t now;
	int r = store_now_ms(s, &now);
	if (r < 0)
		return r;
	struct store_stmt *st;
	r = store_query(s, &st, "SELECT owner_id, heartbeat_at FROM hosts WHERE id = ?", "s", id);
	if (r < 0)
		return r;
	r = store_step(st);
	if (r == 1) {
		const char *owner = store_col_text(st, 0);
		int64_t age = now - store_col_int64(st, 1);
		if (owner && strcmp(owner, owner_id) != 0 && host_age_alive(age)) {
			snprintf(other, len, "%s", owner);
			*ret_age_ms = age;
		} else {
			r = 0;
		}
	}
	store_finalize(st);
	return r;
}

int hosts_adopt_unplaced_apps(struct store *s, const char *id, int64_t *ret_n)
{
	int64_t n = store_run(s,
			      "UPDATE apps SET host = ? WHERE host IS NULL AND NOT EXISTS "
			      "(SELECT 1 FROM hosts WHERE hosts.id <> ?)",
			      "ss", id, id);
	if (n < 0)
		return (int)n;
	if (ret_n)
		*ret_n = n;
	return 0;
}

int hosts_state(struct store *s, const char *id, enum host_state *ret)
{
	return host_liveness(s, id, ret, NULL);
}

static json_t *text_or_null(struct store_stmt *st, int col)
{
	return store_col_is_null(st, col) ? json_null() : json_string(store_col_text(st, col));
}

int hosts_list_json(struct store *s, const char *self_id, json_t **ret)
{
	int64_t now;
	int r = store_now_ms(s, &now);
	if (r < 0)
		return r;
	struct store_stmt *st;
	r = store_query(s, &st,
			"SELECT id, name, owner_id, api_url, version, started_at, heartbeat_at FROM hosts ORDER BY id",
			NULL);
	if (r < 0)
		return r;
	json_t *list = json_array();
	while ((r = store_step(st)) == 1) {
		const char *id = store_col_text(st, 0);
		int64_t beat = store_col_int64(st, 6);
		json_array_append_new(
			list, json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:b, s:b}", "id", id ? id : "", "name",
					text_or_null(st, 1), "ownerId", text_or_null(st, 2), "apiUrl",
					text_or_null(st, 3), "version", text_or_null(st, 4), "startedAt",
					(json_int_t)store_col_int64(st, 5), "lastHeartbeat", (json_int_t)beat,
					"heartbeatAgeMs", (json_int_t)(now - beat), "alive", host_age_alive(now - beat),
					"self", id && self_id && strcmp(id, self_id) == 0));
	}
	store_finalize(st);
	if (r < 0) {
		json_decref(list);
		return r;
	}
	*ret = list;
	return 0;
}

#!/usr/bin/env bash
# t0207-api-limits — hostile TCP clients cannot take the API down (issue 10,
# finding 5). With 2,000 idle TCP connections held open (each a request
# head that never ends) the unix socket still answers; boxd accepts at
# most [api] max_connections of them and closes idle ones after
# [api] idle_timeout; 300 unauthenticated POSTs announcing 1 MiB bodies
# get 401 before their bodies are read, and the daemon's memory does not
# grow with them. The daemon runs with a soft limit of 1,024 descriptors,
# systemd's default for a service (the audit's 1,100 connections took every
# descriptor and so the unix socket too).
set -u
. "$(dirname "$0")/lib.sh"
: "${CONN_FLOOD:?CONN_FLOOD must point at tests/tools/conn-flood}"

plan 9

ulimit -Sn 1024
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$STATE"
token=$("$BOXD" --state-dir "$STATE" token create limits 2>/dev/null)
printf '[api]\nidle_timeout = 3s\n' >"$E2E_TMP/boxd.conf"
daemon_start --config "$E2E_TMP/boxd.conf" --listen "127.0.0.1:$port"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# ---- 2,000 hostile connections ---------------------------------------------

# conn-flood reads stdin to know when to stop: keep a pipe open to it.
mkfifo "$E2E_TMP/flood.in"
"$CONN_FLOOD" 127.0.0.1 "$port" 2000 <"$E2E_TMP/flood.in" >"$E2E_TMP/flood.out" 2>&1 &
flood=$!
exec 7>"$E2E_TMP/flood.in"
on_exit "kill $flood"
wait_for 20 grep -q '^ready' "$E2E_TMP/flood.out" || bail "conn-flood did not get going: $(cat "$E2E_TMP/flood.out")"
diag "conn-flood: $(head -n1 "$E2E_TMP/flood.out") (connected, as the client sees it)"

# Twenty GETs on the unix socket, each with a 10 s deadline.
ok_n=0
times=()
for _ in $(seq 20); do
	out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 --unix-socket "$SOCK" \
		http://boxd/api/v1/status)
	[ "${out%% *}" = 200 ] && ok_n=$((ok_n + 1))
	times+=("${out#* }")
done
equal "under 2,000 hostile TCP connections the unix socket answers 20 of 20 GET /status" "$ok_n" 20
diag "unix-socket GET /status latency (s), sorted: $(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')"
held=$(ss -Htnp state established "( sport = :$port )" | grep -c "pid=$DAEMON_PID,")
diag "TCP connections the daemon holds: $held"
check "the daemon holds at most max_connections (64) of them" test "$held" -le 64
check "and at most max_connections_per_ip (16) from this address" test "$held" -le 16

exec 7>&-
wait "$flood"
diag "conn-flood: $(tail -n1 "$E2E_TMP/flood.out")"
tcp_ok() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$port/api/v1/status")" = 200 ]
}
check "once the flood stops, an authenticated TCP client is served again" wait_for 20 tcp_ok

# ---- idle connections --------------------------------------------------------

closed_within() {
	python3 - "$port" "$1" <<-'PY'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
		s.settimeout(float(sys.argv[2]))
		t = time.monotonic()
		try:
		    closed = s.recv(1) == b""
		except OSError as e:
		    closed = not isinstance(e, socket.timeout)
		print("%.1f" % (time.monotonic() - t))
		sys.exit(0 if closed else 1)
	PY
}
secs=$(closed_within 15)
check "an idle connection is closed by the server (idle_timeout = 3s)" test $? = 0
diag "closed after ${secs} s"

# ---- 300 unauthenticated 1 MiB bodies ------------------------------------------

rss0=$(rss_kb)
# Four at a time (under the per-IP limit): head + the first 64 KiB of a
# 1 MiB body, then wait for the answer with the rest unsent.
python3 - "$port" >"$E2E_TMP/bodies.out" <<-'PY'
	import socket, sys, json
	from concurrent.futures import ThreadPoolExecutor
	port = int(sys.argv[1])
	def one(_):
	    s = socket.create_connection(("127.0.0.1", port), timeout=5)
	    head = ("POST /api/v1/tasks HTTP/1.1\r\nHost: boxd\r\nContent-Type: application/json\r\n"
	            "Content-Length: %d\r\n\r\n" % (1024 * 1024)).encode()
	    try:
	        s.sendall(head + b"x" * 65536)
	        got = b""
	        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}}"):
	            c = s.recv(65536)
	            if not c:
	                break
	            got += c
	    except OSError:
	        return "error"
	    finally:
	        s.close()
	    head, _, body = got.partition(b"\r\n\r\n")
	    try:
	        code = json.loads(body)["error"]["code"]
	    except Exception:
	        code = "?"
	    return "%s %s" % (head.split(b" ")[1].decode() if head else "000", code)
	with ThreadPoolExecutor(4) as ex:
	    for r in ex.map(one, range(300)):
	        print(r)
PY
rss1=$(rss_kb)
equal "300 POSTs of 1 MiB without a token: 300 answered 401 unauthorized with the body unsent" \
	"$(grep -c '^401 unauthorized$' "$E2E_TMP/bodies.out")" 300
grep -v '^401 unauthorized$' "$E2E_TMP/bodies.out" | sort | uniq -c | diag
diag "daemon RSS: ${rss0} kB before, ${rss1} kB after"
check "the daemon's memory grew by less than 16 MiB" test $((rss1 - rss0)) -lt 16384
check "the unix socket still answers" daemon_answers
check "and TCP with the token" tcp_ok

done_testing

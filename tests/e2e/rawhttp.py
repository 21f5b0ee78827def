#!/usr/bin/env python3
"""rawhttp.py — send raw bytes to boxd's API and print what comes back.

    rawhttp.py TARGET [--timeout S] < request

TARGET is a unix socket path or HOST:PORT. The request is sent as it is
(no fixing up), the write side stays open (a client that has not finished
its body), and the answer is read until the server closes the connection,
one whole response (by its Content-Length) has arrived, or the timeout
(default 5 s). Prints the status code on the first line ("000" when no
answer came) and the body after it. Exit status 0 when an answer came.
"""
import socket
import sys
import time


def main():
    args = sys.argv[1:]
    timeout = 5.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    target = args[0]
    if ":" in target and not target.startswith("/"):
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(target)
    data = sys.stdin.buffer.read()
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer and close before taking it all
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not chunk:
            break
        got += chunk
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(body) >= int(value):
                    deadline = 0
    s.close()
    head, sep, body = got.partition(b"\r\n\r\n")
    parts = head.split(b" ")
    status = parts[1].decode() if sep and len(parts) > 1 else "000"
    sys.stdout.write(status + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(body)
    return 0 if status != "000" else 1


sys.exit(main())

/* fd_pass.h — one message of a fixed size over a unix socket, with a file
 * descriptor beside it (SCM_RIGHTS) or not: how the supervisor hands a
 * task and its log to the standby worker, and how the standby answers
 * with the pid and pidfd of the task's worker (tasks/worker.h). */
#pragma once

#include <stddef.h>

/* Send `len` bytes of buf in one message, with `fd` when fd >= 0. EINTR
 * is retried; no SIGPIPE. 0 when it all went; -EPIPE on a short send, or
 * -errno. */
int fd_pass_send(int sock, const void *buf, size_t len, int fd);

/* Receive one message of exactly `len` bytes into buf, and the descriptor
 * sent with it (close-on-exec) into *ret_fd, -1 when none came. `flags`
 * are added to recvmsg()'s (MSG_DONTWAIT). EINTR is retried. 0; -EPIPE on
 * end of file or a message of another size (a descriptor that came with
 * it is closed); or -errno. */
int fd_pass_recv(int sock, void *buf, size_t len, int *ret_fd, int flags);

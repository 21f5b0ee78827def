/* broker_proto.h — the messages between a worker and its host's lock
 * broker (broker.h, broker_client.h). Internal to those two.
 *
 * A unix SOCK_SEQPACKET socket: one message per send, whole or not at all,
 * so neither side frames a stream. A client has at most one acquire
 * outstanding and sends an unlock only when none is; the broker answers
 * each request with exactly one final reply (WAITING replies before an
 * acquire's final one are progress reports). Both ends run the same
 * binary (the daemon and its workers; re-exec replaces both), so the
 * layout is the in-memory one, with a version word to refuse a stranger.
 * The broker still serves version 1 (a worker of the build before, still
 * running while the new daemon starts), in version 1 and without PREPARE.
 * A PREPARE is a hint and never a reply: it may come before any final
 * reply, and the client goes on waiting for that. */
#pragma once

#include <stdint.h>

#include "lock_doc.h"

/* 2: the broker may send PREPARE. A broker answers a client in the
 * version the client spoke (1 or 2) and sends PREPARE only in 2. */
#define BROKER_PROTO_VERSION 2
#define BROKER_PROTO_MIN 1
/* A request for more locks than this goes the direct way. */
#define BROKER_MAX_LOCKS 16

enum broker_msg_type {
	/* client → broker */
	BROKER_ACQUIRE = 1,   /* reqs[0..n): wait (timeout_ms != 0) or try */
	BROKER_UNLOCK,        /* names in reqs[0..n).name; n 0: all of the owner's */
	BROKER_CANCEL,        /* give up the outstanding acquire */
	/* broker → client */
	BROKER_GRANTED = 0x101, /* version: the fencing token */
	BROKER_REFUSED,       /* a try was refused: blocker */
	BROKER_WAITING,       /* queued (ticket), waiting for blocker */
	BROKER_UNLOCKED,      /* err: the holdings removed (>= 0) */
	BROKER_CANCELLED,     /* the acquire is gone (its ticket cancelled) */
	BROKER_FALLBACK,      /* the broker stops serving this request: go on
			       * directly (ticket: the one to resume, 0 none) */
	BROKER_ERROR,         /* err: negative errno (-EPERM: not the owner) */
	BROKER_PREPARE,       /* a hint, not an answer: a round that may grant
			       * the request is committing; timeout_ms carries
			       * its expected length in microseconds. The
			       * client polls for the answer for about that
			       * long instead of sleeping (version 2) */
};

struct broker_msg {
	uint32_t version;
	uint32_t type;
	uint32_t n;
	int32_t err;
	int64_t timeout_ms;   /* ACQUIRE: 0 try, else wait (the client keeps the deadline) */
	int64_t ttl_ms, lease_ms, defer_ms;
	int64_t fence;        /* GRANTED: the version that recorded the grant */
	int64_t ticket;
	struct lock_owner owner;
	struct lock_blocker blocker;
	struct lock_req reqs[BROKER_MAX_LOCKS];
};

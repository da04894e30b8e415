/*
 * A TCP proxy for the admin_job tests: it sits between the admin and etcd,
 * passes every byte through, and can be armed to pause a server process
 * (SIGSTOP) at the exact moment a given HTTP request (by path, e.g.
 * "/v3/kv/put") arrives -- before forwarding it -- so a test can fail the
 * coordination write that follows a store write, deterministically.
 * Requests must carry Content-Length (the etcd client's do).
 */
#ifndef CX_TEST_PROXY_H
#define CX_TEST_PROXY_H

#include "support/services.h"

struct cx_proxy;

/* Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:port. */
int cx_proxy_start(int port, struct cx_proxy **out, char *err);
int cx_proxy_port(const struct cx_proxy *p);
/* Arms the trap: the next request whose path starts with path makes the
 * proxy SIGSTOP proc, then forwards the request. One shot. */
void cx_proxy_trap(struct cx_proxy *p, const char *path,
                   struct cx_svc_proc *proc);
/* 1 once the trap has fired. */
int cx_proxy_trapped(struct cx_proxy *p);
/* Closes everything and joins the threads. Accepts NULL. */
void cx_proxy_stop(struct cx_proxy *p);

#endif

/*
 * Raw HTTP/1.1 over loopback TCP, for tests that must control every byte
 * and its timing (slow clients, ambiguous framing, bodies never sent) --
 * what libcurl will not do. Every call is bounded by a timeout.
 */
#ifndef CX_TEST_RAWHTTP_H
#define CX_TEST_RAWHTTP_H

#include <stddef.h>
#include <sys/types.h>

/* A TCP connection to 127.0.0.1:port from source address src ("127.0.1.7";
 * NULL = the kernel's choice). Returns the fd, or -errno. */
int cx_raw_connect(const char *src, unsigned port);

/* Writes all of s (MSG_NOSIGNAL). 0, or -errno (e.g. -EPIPE once the
 * server closed). */
int cx_raw_send(int fd, const char *s, size_t len);

/* Reads one reply: until its head and Content-Length bytes of body are in,
 * the peer closes, or timeout_ms passes. Returns the bytes read (buf is
 * NUL-terminated), 0 when nothing came (closed or timed out). */
size_t cx_raw_read_reply(int fd, char *buf, size_t cap, int timeout_ms);

/* The status code of a reply ("HTTP/1.1 401 ..."), 0 if it is not one. */
int cx_raw_status(const char *reply);

/* Waits up to timeout_ms for the peer to close, reading and dropping what
 * it sends. 1 = closed (EOF or reset), 0 = still open. */
int cx_raw_closed_within(int fd, int timeout_ms);

/* Raises this process's soft open-file limit to its hard limit; returns
 * the new soft limit. */
long cx_raw_raise_nofile(void);

#endif

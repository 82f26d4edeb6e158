#ifndef NOVA_NET_H
#define NOVA_NET_H

#include <stdint.h>
#include <stddef.h>

/// Creates a non-blocking TCP listening socket bound to host:port ("*" or "0.0.0.0" for all IPv4,
/// "::" or "::*" for all IPv6). Returns the descriptor, or -errno. *bound_port receives the port bound
/// (useful with port 0).
int nova_listen(const char *host, int port, int backlog, int *bound_port);

/// Creates a non-blocking listening Unix domain socket at path with the given permissions (0 keeps the
/// default). Returns the descriptor or -errno.
int nova_listen_unix(const char *path, unsigned int permissions, int backlog);

/// Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY, keepalive when keepalive_seconds > 0)
/// and formats the peer and local addresses as "ip:port" ("[ip6]:port" for IPv6, "path:0" for Unix
/// sockets). Returns the descriptor, or -errno (-EAGAIN when none is waiting).
int nova_accept(int listener, int keepalive_seconds, char *peer, size_t peer_len, char *local, size_t local_len);

/// epoll_create1(EPOLL_CLOEXEC), or -errno.
int nova_epoll_create(void);

/// Adds, modifies or removes interest in fd: readable and/or writable (level-triggered);
/// exclusive adds EPOLLEXCLUSIVE (for a listener shared by several loops). Returns 0 or -errno.
int nova_epoll_add(int epfd, int fd, int readable, int writable, int exclusive);
int nova_epoll_modify(int epfd, int fd, int readable, int writable);
int nova_epoll_remove(int epfd, int fd);

/// Waits for events; fills fds[i] and flags[i] (bit 0: readable or hang-up/error, bit 1: writable).
/// Returns the number of events, 0 on timeout or EINTR, or -errno.
int nova_epoll_wait(int epfd, int32_t *fds, uint32_t *flags, int max, int timeout_ms);

/// A non-blocking eventfd for waking a loop, or -errno.
int nova_eventfd(void);
void nova_eventfd_signal(int fd);
void nova_eventfd_drain(int fd);

/// Connects to host:port (resolved with getaddrinfo) within timeout_ms, for MIGRATE: a non-blocking,
/// close-on-exec socket with TCP_NODELAY, or -errno (-ETIMEDOUT when the time ran out).
int nova_connect(const char *host, int port, int timeout_ms);

/// Writes all of data to a non-blocking socket, waiting at most timeout_ms for each chance to write.
/// Returns length, or -errno (-ETIMEDOUT).
long nova_write_all(int fd, const void *data, size_t length, int timeout_ms);

/// Reads one line (up to size - 1 bytes) from a non-blocking socket, waiting at most timeout_ms for each
/// byte, as Redis's syncReadLine: the line without its CRLF, NUL-terminated. Returns its length, or
/// -errno (-ETIMEDOUT, -ECONNRESET at end of stream).
long nova_read_line(int fd, char *buffer, size_t size, int timeout_ms);

/// read/write that report -errno instead of -1 (EINTR retried).
long nova_read(int fd, void *buffer, size_t count);
long nova_write(int fd, const void *buffer, size_t count);

#include <sys/uio.h>
/// writev that reports -errno instead of -1 (EINTR retried).
long nova_writev(int fd, const struct iovec *pieces, int count);

#endif

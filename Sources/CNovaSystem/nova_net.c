#define _GNU_SOURCE
#include "nova_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

int nova_listen(const char *host, int port, int backlog, int *bound_port) {
    struct addrinfo hints, *results = NULL, *ai;
    char service[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (strcmp(host, "*") == 0) host = "0.0.0.0";
    if (strcmp(host, "::*") == 0) host = "::";
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &results);
    if (rc != 0) return rc == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
    int last_error = -EADDRNOTAVAIL;
    for (ai = results; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) { last_error = -errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
            last_error = -errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage bound;
        socklen_t length = sizeof bound;
        if (getsockname(fd, (struct sockaddr *)&bound, &length) == 0) {
            if (bound.ss_family == AF_INET) *bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
            else if (bound.ss_family == AF_INET6) *bound_port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        }
        freeaddrinfo(results);
        return fd;
    }
    freeaddrinfo(results);
    return last_error;
}

int nova_listen_unix(const char *path, unsigned int permissions, int backlog) {
    struct sockaddr_un address;
    if (strlen(path) >= sizeof address.sun_path) return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, backlog) != 0) {
        int error = -errno;
        close(fd);
        return error;
    }
    if (permissions) chmod(path, permissions);
    return fd;
}

static void format_address(const struct sockaddr_storage *address, char *out, size_t length) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
        snprintf(out, length, "%s:%d", ip, ntohs(v4->sin_port));
    } else if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
        snprintf(out, length, "[%s]:%d", ip, ntohs(v6->sin6_port));
    } else if (address->ss_family == AF_UNIX) {
        const struct sockaddr_un *unix_address = (const struct sockaddr_un *)address;
        snprintf(out, length, "%s:0", unix_address->sun_path);
    } else {
        snprintf(out, length, "?:0");
    }
}

int nova_accept(int listener, int keepalive_seconds, char *peer, size_t peer_len, char *local, size_t local_len) {
    struct sockaddr_storage remote;
    socklen_t length = sizeof remote;
    int fd;
    do {
        fd = accept4(listener, (struct sockaddr *)&remote, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    if (remote.ss_family == AF_INET || remote.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (keepalive_seconds > 0) {
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_KEEPIDLE
            int idle = keepalive_seconds, interval = keepalive_seconds / 3 > 0 ? keepalive_seconds / 3 : 1, count = 3;
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
#endif
        }
    }
    format_address(&remote, peer, peer_len);
    struct sockaddr_storage mine;
    length = sizeof mine;
    if (getsockname(fd, (struct sockaddr *)&mine, &length) == 0) format_address(&mine, local, local_len);
    else snprintf(local, local_len, "?:0");
    return fd;
}

#if defined(__linux__)
int nova_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static uint32_t interest(int readable, int writable) {
    uint32_t events = 0;
    if (readable) events |= EPOLLIN | EPOLLRDHUP;
    if (writable) events |= EPOLLOUT;
    return events;
}

int nova_epoll_add(int epfd, int fd, int readable, int writable, int exclusive) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    /* EPOLLEXCLUSIVE accepts only EPOLLIN/EPOLLOUT alongside it (no EPOLLRDHUP). */
    event.events = exclusive ? (EPOLLIN | EPOLLEXCLUSIVE) : interest(readable, writable);
    event.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : -errno;
}

int nova_epoll_modify(int epfd, int fd, int readable, int writable) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = interest(readable, writable);
    event.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event) == 0 ? 0 : -errno;
}

int nova_epoll_remove(int epfd, int fd) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event) == 0 ? 0 : -errno;
}

int nova_epoll_wait(int epfd, int32_t *fds, uint32_t *flags, int max, int timeout_ms) {
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int count = epoll_wait(epfd, events, max, timeout_ms);
    if (count < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < count; i++) {
        fds[i] = events[i].data.fd;
        uint32_t e = events[i].events, f = 0;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) f |= 1;
        if (e & EPOLLOUT) f |= 2;
        flags[i] = f;
    }
    return count;
}

int nova_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void nova_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t ignored = write(fd, &one, sizeof one);
    (void)ignored;
}

void nova_eventfd_drain(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) > 0) {}
}
#else
int nova_epoll_create(void) { return -ENOSYS; }
int nova_epoll_add(int epfd, int fd, int readable, int writable, int exclusive) { return -ENOSYS; }
int nova_epoll_modify(int epfd, int fd, int readable, int writable) { return -ENOSYS; }
int nova_epoll_remove(int epfd, int fd) { return -ENOSYS; }
int nova_epoll_wait(int epfd, int32_t *fds, uint32_t *flags, int max, int timeout_ms) { return -ENOSYS; }
int nova_eventfd(void) { return -ENOSYS; }
void nova_eventfd_signal(int fd) {}
void nova_eventfd_drain(int fd) {}
#endif

long nova_read(int fd, void *buffer, size_t count) {
    ssize_t n;
    do { n = read(fd, buffer, count); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long nova_write(int fd, const void *buffer, size_t count) {
    ssize_t n;
    do { n = write(fd, buffer, count); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long nova_writev(int fd, const struct iovec *pieces, int count) {
    ssize_t n;
    do { n = writev(fd, pieces, count); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int nova_connect(const char *host, int port, int timeout_ms) {
    struct addrinfo hints, *result = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &result) != 0) return -EHOSTUNREACH;
    int fd = -1, error = ECONNREFUSED;
    for (struct addrinfo *address = result; address != NULL; address = address->ai_next) {
        fd = socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, address->ai_protocol);
        if (fd < 0) { error = errno; continue; }
        if (connect(fd, address->ai_addr, address->ai_addrlen) == 0) break;
        if (errno == EINPROGRESS) {
            struct pollfd waiting = { fd, POLLOUT, 0 };
            int ready = poll(&waiting, 1, timeout_ms);
            if (ready == 1) {
                int socket_error = 0;
                socklen_t length = sizeof socket_error;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &socket_error, &length);
                if (socket_error == 0) break;
                error = socket_error;
            } else {
                error = ready == 0 ? ETIMEDOUT : errno;
            }
        } else {
            error = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(result);
    if (fd < 0) return -error;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/// Waits until fd is ready for events; 0, or -errno (-ETIMEDOUT).
static int wait_for(int fd, short events, int timeout_ms) {
    struct pollfd waiting = { fd, events, 0 };
    int ready = poll(&waiting, 1, timeout_ms);
    if (ready == 0) return -ETIMEDOUT;
    if (ready < 0 && errno != EINTR) return -errno;
    return 0;
}

long nova_write_all(int fd, const void *data, size_t length, int timeout_ms) {
    size_t done = 0;
    while (done < length) {
        ssize_t written = send(fd, (const char *)data + done, length - done, MSG_NOSIGNAL);
        if (written > 0) { done += (size_t)written; continue; }
        if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -errno;
        int waited = wait_for(fd, POLLOUT, timeout_ms);
        if (waited < 0) return waited;
    }
    return (long)done;
}

long nova_read_line(int fd, char *buffer, size_t size, int timeout_ms) {
    size_t used = 0;
    while (used + 1 < size) {
        char byte;
        ssize_t got = recv(fd, &byte, 1, 0);
        if (got == 1) {
            if (byte == '\n') {
                if (used > 0 && buffer[used - 1] == '\r') used--;
                buffer[used] = 0;
                return (long)used;
            }
            buffer[used++] = byte;
            continue;
        }
        if (got == 0) return -ECONNRESET;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -errno;
        int waited = wait_for(fd, POLLIN, timeout_ms);
        if (waited < 0) return waited;
    }
    buffer[used] = 0;
    return (long)used;
}

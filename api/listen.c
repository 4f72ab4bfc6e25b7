/* listen.c - micronotifier-api's listening sockets: "host:port" over TCP or
 * a Unix socket file with the configured mode, and accepting with a way out
 * (the stop eventfd) so that request threads never block past shutdown.
 * Owns the socket files it creates. Does not read requests (fcgi.c, scgi.c). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "api.h"
#include "log.h"
#include "mn.h"

#define BACKLOG 128

/* A socket file at path nobody listens on is removed; a live one, or a file
 * of another kind, is refused. */
static int
clear_stale(const char *path, struct mn_err *err)
{
    struct sockaddr_un sa = {0};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : mn_err_set(err, 0, "%s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return mn_err_set(err, 0, "%s exists and is not a socket", path);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mn_err_set(err, 0, "socket: %s", strerror(errno));
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0)
        return mn_err_set(err, 0, "%s is in use by another process", path);
    if (errno != ECONNREFUSED)
        return mn_err_set(err, 0, "%s: %s", path, strerror(errno));
    log_info("api: removing stale socket %s", path);
    if (unlink(path) < 0)
        return mn_err_set(err, 0, "cannot remove stale %s: %s", path, strerror(errno));
    return 0;
}

static int
open_unix(const char *path, unsigned mode, struct mn_err *err)
{
    struct sockaddr_un sa = {0};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return mn_err_set(err, 0, "%s: path too long for a socket", path);
    if (clear_stale(path, err) < 0)
        return -1;
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mn_err_set(err, 0, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        mn_err_set(err, 0, "cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    /* The mode is right before listen(): nobody connects before that. */
    if (chmod(path, mode) < 0 || listen(fd, BACKLOG) < 0) {
        mn_err_set(err, 0, "cannot listen on %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return -1;
    }
    return fd;
}

static int
open_tcp(const char *addr, struct mn_err *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    const char *colon = strrchr(addr, ':');
    char host[256];
    size_t hlen = (size_t)(colon - addr);
    int fd, one = 1, rc;

    /* config.c checked the shape: a host (IPv6 in brackets), ':', a port. */
    if (addr[0] == '[') {
        addr++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return mn_err_set(err, 0, "%s: host name too long", addr);
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, colon + 1, &hints, &res);
    if (rc != 0)
        return mn_err_set(err, 0, "cannot resolve %s: %s", host, gai_strerror(rc));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
        mn_err_set(err, 0, "cannot listen on %s:%s: %s", host, colon + 1,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int
listen_open(const char *addr, unsigned mode, struct mn_err *err)
{
    return config_is_host_port(addr) ? open_tcp(addr, err) : open_unix(addr, mode, err);
}

void
listen_close(int fd, const char *addr)
{
    if (fd < 0)
        return;
    /* No successor can have taken the name while we listened: listen_open
     * refuses a socket file another process listens on. */
    if (!config_is_host_port(addr))
        unlink(addr);
    close(fd);
}

int
listen_accept(int fd, int stop_fd)
{
    for (;;) {
        struct pollfd p[2] = {{stop_fd, POLLIN, 0}, {fd, POLLIN, 0}};
        int c;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_errno("api: poll");
            return -1;
        }
        if (p[0].revents)
            return -1;
        if (!p[1].revents)
            continue;
        /* Every idle thread wakes; one gets the connection, the others EAGAIN. */
        c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno == EMFILE || errno == ENFILE) {
            log_warn("api: accept: out of file descriptors");
            poll(p, 1, 100); /* the stop fd, or a breather before trying again */
        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            log_errno("api: accept");
        }
    }
}

void
listen_timeouts(int fd, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Appends what arrives (at most max bytes) before the deadline. Returns the
 * byte count, 0 at EOF, -1 on error or at the deadline. */
ssize_t
listen_read_some(int fd, struct buf *in, size_t max, uint64_t deadline)
{
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t n;

    for (;;) {
        uint64_t now = mn_now_ms();

        if (now >= deadline)
            return -1;
        n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return -1;
    }
    buf_reserve(in, max);
    n = recv(fd, buf_data(in) + in->len, max, 0);
    if (n > 0) {
        in->len += (size_t)n;
        buf_data(in)[in->len] = '\0';
    }
    return n;
}

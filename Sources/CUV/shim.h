#ifndef RTP_CUV_SHIM_H
#define RTP_CUV_SHIM_H
#include <uv.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* libuv handle "subclassing" is C struct-prefix casting; Swift cannot express it, so the casts
 * live here as real functions. */
static inline uv_handle_t *rtp_uv_handle(void *h) { return (uv_handle_t *)h; }
static inline uv_stream_t *rtp_uv_stream(void *h) { return (uv_stream_t *)h; }

/* uv_loop_configure is variadic and cannot be called from Swift. */
static inline int rtp_uv_loop_enable_idle_metrics(uv_loop_t *loop) {
    return uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
}

/* Binds a TCP handle to a textual address (IPv4 or IPv6 literal). */
static inline int rtp_uv_tcp_bind(uv_tcp_t *h, const char *host, int port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        return UV_EINVAL;
    }
    return uv_tcp_bind(h, (const struct sockaddr *)&ss, 0);
}

/* Starts a non-blocking connect to a textual address. */
static inline int rtp_uv_tcp_connect(uv_connect_t *req, uv_tcp_t *h, const char *host, int port,
                                     uv_connect_cb cb) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        return UV_EINVAL;
    }
    return uv_tcp_connect(req, h, (const struct sockaddr *)&ss, cb);
}

/* Port of a bound TCP handle (IPv4 or IPv6), -1 on error. */
static inline int rtp_uv_tcp_local_port(uv_tcp_t *h) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Peer address as text ("1.2.3.4:5678"); returns 0 on success. */
static inline int rtp_uv_tcp_peer(uv_tcp_t *h, char *out, size_t outlen) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[64];
    int port;
    if (uv_tcp_getpeername(h, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        return -1;
    }
    snprintf(out, outlen, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    return 0;
}
#endif

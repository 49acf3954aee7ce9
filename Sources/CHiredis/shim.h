#ifndef RTP_CHIREDIS_SHIM_H
#define RTP_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>

/* hiredis 0.14.1 (Debian 12): no command timeouts, no RESP3. Only the Coordination module
 * imports this shim. */

/* 0.14's libuv adapter returns from its poll callback when libuv reports an error status,
 * which is how libuv reports POLLERR (a refused connect, a reset connection). hiredis then
 * never learns that the socket failed: the context hangs until a command deadline. This poll
 * callback hands an error on as the events hiredis waits for, so its read, write or connect
 * check runs and fails with the socket's error (what later hiredis versions do). */
static void rtp_redis_libuv_poll(uv_poll_t *handle, int status, int events) {
    redisLibuvEvents *p = (redisLibuvEvents *)handle->data;
    int ev = status != 0 ? p->events : events;
    if (p->context != NULL && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
    if (p->context != NULL && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void rtp_redis_libuv_update(redisLibuvEvents *p) {
    if (p->events) {
        uv_poll_start(&p->handle, p->events, rtp_redis_libuv_poll);
    } else {
        uv_poll_stop(&p->handle);
    }
}

static void rtp_redis_libuv_add_read(void *privdata) {
    redisLibuvEvents *p = (redisLibuvEvents *)privdata;
    p->events |= UV_READABLE;
    rtp_redis_libuv_update(p);
}

static void rtp_redis_libuv_del_read(void *privdata) {
    redisLibuvEvents *p = (redisLibuvEvents *)privdata;
    p->events &= ~UV_READABLE;
    rtp_redis_libuv_update(p);
}

static void rtp_redis_libuv_add_write(void *privdata) {
    redisLibuvEvents *p = (redisLibuvEvents *)privdata;
    p->events |= UV_WRITABLE;
    rtp_redis_libuv_update(p);
}

static void rtp_redis_libuv_del_write(void *privdata) {
    redisLibuvEvents *p = (redisLibuvEvents *)privdata;
    p->events &= ~UV_WRITABLE;
    rtp_redis_libuv_update(p);
}

/* redisLibuvAttach, then the event hooks above in place of the adapter's (its cleanup, which
 * frees the poll handle in a close callback, stays). Call before setting the connect callback
 * (which asks for the first write event). The loop is passed as void* so that the uv types of
 * this shim and of CUV (both include <uv.h>) need not unify in Swift. */
static inline int rtp_redis_libuv_attach(redisAsyncContext *ac, void *loop) {
    if (redisLibuvAttach(ac, (uv_loop_t *)loop) != REDIS_OK) return REDIS_ERR;
    ac->ev.addRead = rtp_redis_libuv_add_read;
    ac->ev.delRead = rtp_redis_libuv_del_read;
    ac->ev.addWrite = rtp_redis_libuv_add_write;
    ac->ev.delWrite = rtp_redis_libuv_del_write;
    return REDIS_OK;
}
#endif

#ifndef RTP_CHIREDIS_SHIM_H
#define RTP_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#endif

#ifndef RTP_CUV_SHIM_H
#define RTP_CUV_SHIM_H
#include <uv.h>
#endif

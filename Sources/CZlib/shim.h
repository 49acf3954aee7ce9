#ifndef RTP_CZLIB_SHIM_H
#define RTP_CZLIB_SHIM_H
#include <zlib.h>
/* deflateInit2/inflateInit2 are macros: expose them as real functions. */
static inline int rtp_inflate_init_gzip(z_streamp strm) {
    return inflateInit2(strm, 16 + MAX_WBITS);
}
static inline int rtp_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
}
#endif

#ifndef RTP_CLOGSTORE_SHIM_H
#define RTP_CLOGSTORE_SHIM_H
/*
 * Helpers for the LogStore module (header-only).
 *
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for the LogStore frame checksums.
 * Header-only: the hardware instruction where the CPU has it (x86-64 SSE4.2, checked at run
 * time; AArch64 CRC extension, checked at compile time), a bitwise fallback otherwise.
 * `crc` is the running value: start with 0, feed the previous result to continue.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rtp_crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

#if defined(__x86_64__)
/* Compiler builtins rather than <nmmintrin.h> intrinsics: the Swift importer does not always
   emit the intrinsics' inline bodies. */
__attribute__((target("sse4.2")))
static inline uint32_t rtp_crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
    unsigned long long c = (uint32_t)~crc;
    while (n >= 8) { unsigned long long w; memcpy(&w, p, 8); c = __builtin_ia32_crc32di(c, w); p += 8; n -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
static inline uint32_t rtp_crc32c_armv8(uint32_t crc, const uint8_t *p, size_t n) {
    uint32_t c = ~crc;
    while (n >= 8) { uint64_t w; memcpy(&w, p, 8); c = __crc32cd(c, w); p += 8; n -= 8; }
    while (n--) c = __crc32cb(c, *p++);
    return ~c;
}
#endif

/* 1 when rtp_crc32c uses a hardware instruction on this CPU. */
static inline int rtp_crc32c_hardware(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
    return 1;
#else
    return 0;
#endif
}

static inline uint32_t rtp_crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return rtp_crc32c_sse42(crc, p, n);
    return rtp_crc32c_bitwise(crc, p, n);
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
    return rtp_crc32c_armv8(crc, p, n);
#else
    return rtp_crc32c_bitwise(crc, p, n);
#endif
}

/* Hint that *address will be written soon (hides cache misses of hash-table inserts). */
static inline void rtp_prefetch_write(const void *address) {
    __builtin_prefetch(address, 1, 1);
}

#endif

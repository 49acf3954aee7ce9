#ifndef RTP_COPENSSL_SHIM_H
#define RTP_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>

/* OpenSSL macros turned into functions for Swift (imported only by the TLS module). */

/* ---- SSL_CTX settings (SSL_CTX_ctrl macros) ---- */
static inline int rtp_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int rtp_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline void rtp_SSL_CTX_set_mode_accept_moving_write_buffer(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}
/* Idle connections give OpenSSL's record buffers back (one malloc per burst instead). */
static inline void rtp_SSL_CTX_set_mode_release_buffers(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}
/* Read-ahead: one BIO read takes every buffered byte instead of a record header, then its body. */
static inline void rtp_SSL_CTX_set_read_ahead(SSL_CTX *ctx) {
    SSL_CTX_set_read_ahead(ctx, 1);
}
/* Server hardening: no renegotiation, server cipher preference, no compression. */
static inline void rtp_SSL_CTX_set_server_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                                 | SSL_OP_NO_COMPRESSION);
}
static inline void rtp_SSL_CTX_set_client_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
static inline void rtp_SSL_CTX_set_no_ticket(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
}
static inline void rtp_SSL_CTX_set_session_cache_server(SSL_CTX *ctx, long entriesMax) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, entriesMax);
}
static inline void rtp_SSL_CTX_set_session_cache_off(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

/* ---- SSL ---- */
static inline int rtp_SSL_get_ex_new_index(void) {
    return SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}
static inline int rtp_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* ---- BIO ---- */
static inline void rtp_BIO_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void rtp_BIO_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }

/* ---- ERR ---- */
static inline int rtp_ERR_GET_LIB(unsigned long code) { return ERR_GET_LIB(code); }
static inline int rtp_ERR_GET_REASON(unsigned long code) { return ERR_GET_REASON(code); }

/* ---- memory, keys, strings ---- */
static inline void rtp_OPENSSL_free(void *ptr) { OPENSSL_free(ptr); }
static inline EVP_PKEY *rtp_EVP_RSA_gen(unsigned int bits) { return EVP_RSA_gen(bits); }
static inline int rtp_MBSTRING_UTF8(void) { return MBSTRING_UTF8; }
/* RFC 2253 distinguished names with UTF-8 kept as is (for logs). */
static inline unsigned long rtp_name_print_flags(void) {
    return XN_FLAG_RFC2253 & ~(unsigned long)ASN1_STRFLGS_ESC_MSB;
}
static inline int rtp_sk_X509_NAME_num(const STACK_OF(X509_NAME) *names) {
    return sk_X509_NAME_num(names);
}

#endif

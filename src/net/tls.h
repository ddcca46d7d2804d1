/*
 * TLS server contexts (OpenSSL 3): TLS 1.2 or newer, buffers released while
 * idle, and a self-signed certificate made on first start when none exists.
 */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * Makes a server context from PEM files. Returns NULL with the reason in err.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_path, const char *key_path,
    char *err, size_t errlen);

/*
 * When cert_path does not exist, writes a new ECDSA P-256 key (mode 0600)
 * and a self-signed certificate for hostname valid ten years. Returns 1 when
 * it made them, 0 when they existed, -1 with err on failure.
 */
int tls_selfsigned_ensure(const char *cert_path, const char *key_path,
    const char *hostname, char *err, size_t errlen);

#endif

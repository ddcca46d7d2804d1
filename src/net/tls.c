/*
 * TLS server contexts and the self-signed certificate made on first start
 * (OpenSSL 3 EVP and X509 interfaces).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

static void
tls_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

SSL_CTX *
tls_server_ctx_new(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* An idle connection should not hold 34 KiB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	        SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_cipher_list(ctx,
	    "ECDHE+AESGCM:ECDHE+CHACHA20:"
	    "DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		tls_error(err, errlen, cert_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, key_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static X509 *
tls_make_cert(EVP_PKEY *key, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char san[300];

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
tls_write_pem(const char *path, int mode, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) :
	           PEM_write_X509(f, cert);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		ok = 0;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int
tls_selfsigned_ensure(const char *cert_path, const char *key_path,
    const char *hostname, char *err, size_t errlen)
{
	EVP_PKEY *key;
	X509 *cert;
	int r = -1;

	if (access(cert_path, F_OK) == 0)
		return 0;
	key = EVP_EC_gen("P-256");
	if (key == NULL) {
		tls_error(err, errlen, "EC key generation");
		return -1;
	}
	cert = tls_make_cert(key, hostname);
	if (cert == NULL) {
		tls_error(err, errlen, "certificate signing");
	} else if (tls_write_pem(key_path, 0600, key, NULL) < 0) {
		snprintf(err, errlen, "%s: %s", key_path, strerror(errno));
	} else if (tls_write_pem(cert_path, 0644, NULL, cert) < 0) {
		snprintf(err, errlen, "%s: %s", cert_path, strerror(errno));
	} else {
		r = 1;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

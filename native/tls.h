// What the TLS files share: whether this build has OpenSSL's headers, the list of every OpenSSL
// function the addon calls (each a weak reference, checked for a null address at load, and compared
// with the built addon's undefined symbols by a test), and the error handling. tls.cc: contexts and engines; tls_cert.cc:
// self-signed certificates.
#pragma once
#if !defined(_WIN32) && defined(__has_include)
#if __has_include(<openssl/ssl.h>)
#define IOMUX_TLS 1
#endif
#endif

#include "bindings.h"

#ifdef IOMUX_TLS
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

namespace iomux {

// Every OpenSSL function the addon calls (macros such as SSL_CTX_set_mode are SSL_CTX_ctrl). A test
// compares this list with the addon's undefined symbols (nm), so it cannot fall behind.
#define IOMUX_OPENSSL_FUNCTIONS(X)                                                                    \
  X(BIO_ctrl) X(BIO_ctrl_pending) X(BIO_free) X(BIO_new) X(BIO_new_mem_buf) X(BIO_read) X(BIO_s_mem) \
  X(BIO_write) X(ERR_clear_error) X(ERR_error_string_n) X(ERR_get_error) X(ERR_lib_error_string)     \
  X(ERR_reason_error_string) X(EVP_PKEY_free) X(OpenSSL_version) X(OpenSSL_version_num)              \
  X(PEM_read_bio_PrivateKey) X(PEM_read_bio_X509) X(SSL_CIPHER_get_name) X(SSL_CTX_check_private_key) \
  X(SSL_CTX_ctrl) X(SSL_CTX_free) X(SSL_CTX_get_cert_store) X(SSL_CTX_new) X(SSL_CTX_set_options)    \
  X(SSL_CTX_set_session_id_context) X(SSL_CTX_set_timeout) X(SSL_CTX_set_verify)                     \
  X(SSL_CTX_use_PrivateKey) X(SSL_CTX_use_certificate) X(SSL_SESSION_free) X(SSL_ctrl)               \
  X(SSL_do_handshake) X(SSL_free) X(SSL_get0_param) X(SSL_get1_peer_certificate) X(SSL_get1_session) \
  X(SSL_get_current_cipher) X(SSL_get_error) X(SSL_get_shutdown) X(SSL_get_verify_result)            \
  X(SSL_get_version) X(SSL_is_init_finished) X(SSL_new) X(SSL_read) X(SSL_session_reused)            \
  X(SSL_set1_host) X(SSL_set_accept_state) X(SSL_set_bio) X(SSL_set_connect_state) X(SSL_set_num_tickets) \
  X(SSL_set_session) X(SSL_set_session_id_context) X(SSL_shutdown) X(SSL_write) X(TLS_method)        \
  X(X509_STORE_add_cert) X(X509_VERIFY_PARAM_set1_ip_asc) X(X509_free)                               \
  X(X509_verify_cert_error_string) X(d2i_SSL_SESSION) X(i2d_SSL_SESSION) X(i2d_X509)                 \
  /* tls_cert.cc */                                                                                   \
  X(ASN1_INTEGER_set_uint64) X(EVP_PKEY_Q_keygen) X(EVP_sha256) X(PEM_write_bio_PrivateKey)          \
  X(PEM_write_bio_X509) X(RAND_bytes) X(X509V3_EXT_conf_nid) X(X509V3_set_ctx) X(X509_EXTENSION_free) \
  X(X509_NAME_add_entry_by_txt) X(X509_add_ext) X(X509_check_ca) X(X509_check_private_key)          \
  X(X509_get_serialNumber) X(X509_get_subject_name) X(X509_getm_notAfter) X(X509_getm_notBefore)   \
  X(X509_new) X(X509_set_issuer_name) X(X509_set_pubkey) X(X509_set_version) X(X509_sign)            \
  X(X509_time_adj_ex)

#ifdef __ELF__
// On ELF every one is a weak reference, in every file that calls it (one strong reference would make
// the addon's symbol strong): one the process lacks is a null address after loading, not a failed
// lazy bind at the first call. No dlsym, whose glibc symbol version (2.34, when libdl moved into
// libc) is above the prebuild's glibc floor (native/glibc_floor.h).
#define IOMUX_PRAGMA(text) _Pragma(#text)
#define IOMUX_WEAK(fn) IOMUX_PRAGMA(weak fn)
IOMUX_OPENSSL_FUNCTIONS(IOMUX_WEAK)
#undef IOMUX_WEAK
#endif

// OpenSSL's error queue is per thread and Node's crypto uses it too: ours is emptied before each
// call into OpenSSL and whatever a call left is taken (or dropped) before returning to JavaScript.
class ClearErrors {
 public:
  ClearErrors() { ERR_clear_error(); }
  ~ClearErrors() { ERR_clear_error(); }
  ClearErrors(const ClearErrors&) = delete;
  ClearErrors& operator=(const ClearErrors&) = delete;
};

// The error OpenSSL queued for a failed call, shaped like Node's TLS errors (tls.cc).
Napi::Error TlsError(Napi::Env env, const char* what, SSL* ssl = nullptr);

// PEM text from a Buffer or string inside an options object (empty: absent); a TypeError names
// it as `owner.name`.
std::string PemOption(Napi::Object options, const char* name, const char* owner = "options");

// The private key in `pem` (the caller frees it), or a thrown error naming it `name`. A
// passphrase-protected key is refused with code ERR_IOMUX_TLS_KEY_ENCRYPTED: OpenSSL's default would
// ask for the passphrase on the terminal, blocking the thread.
EVP_PKEY* ReadPrivateKey(Napi::Env env, const std::string& pem, const std::string& name);

// A boolean option (`fallback` when undefined), else a TypeError naming options.name.
bool BoolOption(Napi::Object options, const char* name, bool fallback);

// makeCertificate(options) -> { cert, key }: a new key and a certificate for it (tls_cert.cc).
Napi::Value MakeCertificate(const Napi::CallbackInfo& info);

}  // namespace iomux
#endif

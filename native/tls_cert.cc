// Certificates for trying TLS out (`iomux ftp cert`, `iomux files cert`, the tests): a new key (EC
// P-256 or RSA 2048) and an X.509 v3 certificate for it — subjectAltName with the DNS names and
// addresses a client checks, the key usages a server certificate (or a small authority) needs,
// signed with SHA-256 by its own key or by an authority's — as PEM. Every cryptographic step is
// OpenSSL's, Node's own, as for the rest of the TLS code (tls.h lists the functions): this file only
// says what goes into the certificate, once every argument has been checked.
#include "tls.h"

#ifdef IOMUX_TLS
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "errors.h"

namespace iomux {
namespace {

constexpr uint32_t kMaxNames = 100;
constexpr int64_t kMaxDays = 36500;
constexpr size_t kMaxDnsName = 253;
constexpr size_t kMaxLabel = 63;
// X.509's bound on a common name (RFC 5280, ub-common-name), in bytes of UTF-8 here.
constexpr size_t kMaxCommonName = 64;

struct FreeKey {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct FreeCert {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct FreeBio {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, FreeKey>;
using Cert = std::unique_ptr<X509, FreeCert>;
using Bio = std::unique_ptr<BIO, FreeBio>;

bool IsLetterOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// A DNS name a certificate may carry: labels of letters, digits and inner hyphens, 1 to 63 bytes
// each, 253 in all, no trailing dot; a wildcard only as the whole first label ("*.example.com").
bool IsDnsName(const std::string& name) {
  if (name.empty() || name.size() > kMaxDnsName) return false;
  size_t i = name.compare(0, 2, "*.") == 0 ? 2 : 0;
  size_t label = 0;
  char previous = '.';
  for (; i < name.size(); i++) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || previous == '-') return false;
      label = 0;
    } else if (IsLetterOrDigit(c) || (c == '-' && label > 0)) {
      if (++label > kMaxLabel) return false;
    } else {
      return false;
    }
    previous = c;
  }
  return label > 0 && previous != '-';
}

// One subjectAltName entry in OpenSSL's configuration syntax ("DNS:example.com", "IP:::1"), or ""
// when `name` is neither a numeric address nor a DNS name. So no comma, colon or other syntax of
// that string can come from a caller.
std::string AltName(const std::string& name) {
  if (name.find('\0') != std::string::npos) return "";  // inet_pton would read up to it only.
  unsigned char address[16];
  char text[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, name.c_str(), address) == 1 && inet_ntop(family, address, text, sizeof text) != nullptr) {
      return std::string("IP:") + text;
    }
  }
  return IsDnsName(name) ? "DNS:" + name : "";
}

std::string StringOption(Napi::Object options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return "";
  if (!value.IsString()) ThrowTypeError(options.Env(), std::string("options.") + name, "a string");
  return value.As<Napi::String>().Utf8Value();
}

Cert ReadCertificate(Napi::Env env, const std::string& pem, const char* name) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) throw TlsError(env, (std::string(name) + " holds no PEM certificate").c_str());
  return cert;
}

void AddExtension(Napi::Env env, X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (extension == nullptr) throw TlsError(env, "makeCertificate: an extension could not be made");
  int added = X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) throw TlsError(env, "makeCertificate: an extension could not be added");
}

std::string MemoryText(BIO* bio) {
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : "";
}

}  // namespace

// makeCertificate({ names?, commonName?, days = 365, key = 'ec', ca = false, issuer? }) -> { cert, key }
//   names: DNS names and numeric addresses (subjectAltName), 1 to 100; an authority (ca) may have none.
//   commonName: the subject's CN (default: the first name). key: 'ec' (P-256) or 'rsa' (2048 bits).
//   ca: an authority (CA:TRUE, pathlen 0, keyCertSign) instead of a server certificate (CA:FALSE,
//   digitalSignature, serverAuth). issuer: { cert, key } (PEM) of the authority that signs it;
//   without it the certificate signs itself. Valid from a minute ago for `days` days.
Napi::Value MakeCertificate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowTypeError(env, "options", "an object");
  Napi::Object options = info[0].As<Napi::Object>();

  bool rsa = false;
  if (!options.Get("key").IsUndefined()) {
    std::string type = StringOption(options, "key");
    rsa = type == "rsa";
    if (!rsa && type != "ec") throw Napi::RangeError::New(env, "options.key must be 'ec' (P-256) or 'rsa' (2048 bits)");
  }
  int64_t days = options.Get("days").IsUndefined() ? 365 : CheckInteger(env, options.Get("days"), "options.days", 1, kMaxDays);
  bool ca = BoolOption(options, "ca", false);

  std::string altNames;
  std::string firstName;
  Napi::Value namesValue = options.Get("names");
  if (!namesValue.IsUndefined()) {
    if (!namesValue.IsArray()) ThrowTypeError(env, "options.names", "an array of strings");
    Napi::Array names = namesValue.As<Napi::Array>();
    if (names.Length() > kMaxNames) {
      throw Napi::RangeError::New(env, "options.names holds " + std::to_string(names.Length()) + " names; at most " +
                                           std::to_string(kMaxNames));
    }
    for (uint32_t i = 0; i < names.Length(); i++) {
      Napi::Value value = names.Get(i);
      std::string label = "options.names[" + std::to_string(i) + "]";
      if (!value.IsString()) ThrowTypeError(env, label, "a string");
      std::string name = value.As<Napi::String>().Utf8Value();
      std::string entry = AltName(name);
      if (entry.empty()) {
        throw Napi::RangeError::New(env, label + " (\"" + name.substr(0, 80) + "\") is neither a DNS name nor a numeric address");
      }
      altNames += (altNames.empty() ? "" : ",") + entry;
      if (i == 0) firstName = name;
    }
  }
  if (altNames.empty() && !ca) {
    throw Napi::RangeError::New(env, "options.names must hold at least one name: a server certificate is checked against them");
  }
  std::string commonName = StringOption(options, "commonName");
  if (options.Get("commonName").IsUndefined()) commonName = firstName;
  if (commonName.empty() || commonName.size() > kMaxCommonName) {
    throw Napi::RangeError::New(env, "options.commonName must be 1 to 64 bytes (default: the first of options.names)");
  }
  for (char c : commonName) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) throw Napi::RangeError::New(env, "options.commonName holds a control character");
  }

  ClearErrors clear;
  Cert issuerCert;
  Key issuerKey;
  Napi::Value issuerValue = options.Get("issuer");
  if (!issuerValue.IsUndefined()) {
    if (!issuerValue.IsObject()) ThrowTypeError(env, "options.issuer", "an object { cert, key } of PEM text");
    Napi::Object issuer = issuerValue.As<Napi::Object>();
    std::string certPem = PemOption(issuer, "cert", "options.issuer");
    std::string keyPem = PemOption(issuer, "key", "options.issuer");
    if (certPem.empty() || keyPem.empty()) throw Napi::TypeError::New(env, "options.issuer needs cert and key (PEM text)");
    issuerCert = ReadCertificate(env, certPem, "options.issuer.cert");
    issuerKey.reset(ReadPrivateKey(env, keyPem, "options.issuer.key"));
    if (X509_check_private_key(issuerCert.get(), issuerKey.get()) != 1) {
      throw TlsError(env, "options.issuer.key does not belong to options.issuer.cert");
    }
    if (X509_check_ca(issuerCert.get()) != 1) {
      throw Napi::RangeError::New(env, "options.issuer.cert is not a certificate authority (basicConstraints CA:TRUE)");
    }
  }

  Key key(rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
              : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) throw TlsError(env, "makeCertificate: the key could not be made");
  Cert cert(X509_new());
  if (!cert) throw TlsError(env, "makeCertificate: X509_new");
  X509* x = cert.get();
  // A random positive serial: a client may refuse two certificates of one issuer with the same one.
  uint64_t serial = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1) throw TlsError(env, "makeCertificate: RAND_bytes");
  serial = (serial >> 1) | 1;
  X509_NAME* subject = X509_get_subject_name(x);
  // A minute back, so that a client whose clock is a little behind accepts it at once. Days and
  // seconds apart: days * 86400 in a long overflows where long is 32 bits (above ~24,800 days).
  bool ok = X509_set_version(x, X509_VERSION_3) == 1 && ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) == 1 &&
            X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, nullptr) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(x), static_cast<int>(days), -60, nullptr) != nullptr &&
            X509_set_pubkey(x, key.get()) == 1 &&
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(commonName.data()),
                                       static_cast<int>(commonName.size()), -1, 0) == 1 &&
            X509_set_issuer_name(x, issuerCert ? X509_get_subject_name(issuerCert.get()) : subject) == 1;
  if (!ok) throw TlsError(env, "makeCertificate: the certificate's fields could not be set");

  X509V3_CTX ctx;
  std::memset(&ctx, 0, sizeof ctx);
  X509V3_set_ctx(&ctx, issuerCert ? issuerCert.get() : x, x, nullptr, nullptr, 0);
  AddExtension(env, x, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE");
  AddExtension(env, x, &ctx, NID_key_usage,
               ca ? "critical,keyCertSign,cRLSign" : rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
  if (!ca) AddExtension(env, x, &ctx, NID_ext_key_usage, "serverAuth");
  AddExtension(env, x, &ctx, NID_subject_key_identifier, "hash");
  AddExtension(env, x, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!altNames.empty()) AddExtension(env, x, &ctx, NID_subject_alt_name, altNames);
  if (X509_sign(x, issuerKey ? issuerKey.get() : key.get(), EVP_sha256()) <= 0) throw TlsError(env, "makeCertificate: X509_sign");

  Bio certOut(BIO_new(BIO_s_mem()));
  Bio keyOut(BIO_new(BIO_s_mem()));
  if (!certOut || !keyOut || PEM_write_bio_X509(certOut.get(), x) != 1 ||
      PEM_write_bio_PrivateKey(keyOut.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw TlsError(env, "makeCertificate: PEM could not be written");
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("cert", Napi::String::New(env, MemoryText(certOut.get())));
  result.Set("key", Napi::String::New(env, MemoryText(keyOut.get())));
  return result;
}

}  // namespace iomux
#endif

// TLS by Node's own OpenSSL, on memory BIOs: the engine never touches a descriptor. Ciphertext
// comes in through feed() (what a connection received) and goes out through pull() (what it is to
// send); read() and write() are the plaintext side. So TLS rides on the stream layer's Connection
// unchanged (its queue, backpressure, half-close, timeouts), in a blocking run() as well as
// attached, on every mechanism.
//
// The OpenSSL functions are the ones the node binary exports (it carries its own OpenSSL, and a
// distribution's node links a shared libssl whose symbols are just as global). They are called
// directly, but only after Init has found every one of them (tls.h lists them, as weak references):
// an addon loaded into a process without them (a BoringSSL build, say) exports no TlsContext and says
// why, rather than dying at the first lazily bound call. Builds without OpenSSL's headers (cmake-js's
// Node-API-only headers, the mingw cross build) compile none of this: JavaScript sees `tlsUnavailable`.
#include "tls.h"

#ifdef IOMUX_TLS
#ifndef __ELF__
#include <dlfcn.h>
#endif
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

namespace iomux {
namespace {

#ifdef __ELF__
#define IOMUX_ADDRESS_OF(fn) {#fn, reinterpret_cast<const void*>(&fn)},
#else
#define IOMUX_ADDRESS_OF(fn) {#fn, dlsym(RTLD_DEFAULT, #fn)},
#endif

struct OpenSslFunction {
  const char* name;
  const void* address;  // null: this process does not have it
};

const OpenSslFunction kOpenSslFunctions[] = {IOMUX_OPENSSL_FUNCTIONS(IOMUX_ADDRESS_OF)};
#undef IOMUX_ADDRESS_OF

// Why TLS cannot work in this process, or "" when it can: a missing function, or an OpenSSL whose
// major version is not the 3 these headers describe.
std::string WhyUnavailable() {
  for (const OpenSslFunction& function : kOpenSslFunctions) {
    if (function.address == nullptr) {
      return std::string("this Node.js does not export OpenSSL's ") + function.name +
             " (a build without OpenSSL, or with BoringSSL): iomux's TLS needs Node's own OpenSSL 3";
    }
  }
  unsigned long runtime = OpenSSL_version_num();
  if ((runtime >> 28) != (OPENSSL_VERSION_NUMBER >> 28)) {
    return std::string("this Node.js runs ") + OpenSSL_version(OPENSSL_VERSION) +
           ", but the addon was built against OpenSSL " + OPENSSL_VERSION_TEXT;
  }
  return "";
}

// "wrong version number" -> "ERR_SSL_WRONG_VERSION_NUMBER", as Node names OpenSSL's reasons.
std::string CodeOf(const char* reason) {
  std::string code = "ERR_SSL_";
  for (const char* p = reason; *p != '\0'; p++) {
    code += (*p == ' ' || *p == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
  }
  return code;
}

// A certificate check's failure, with the name Node gives it (tls.connect's err.code).
const char* VerifyCodeOf(long result) {
  switch (result) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: return "DEPTH_ZERO_SELF_SIGNED_CERT";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return "SELF_SIGNED_CERT_IN_CHAIN";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY";
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return "UNABLE_TO_VERIFY_LEAF_SIGNATURE";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT: return "UNABLE_TO_GET_ISSUER_CERT";
    case X509_V_ERR_CERT_HAS_EXPIRED: return "CERT_HAS_EXPIRED";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "CERT_NOT_YET_VALID";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: return "CERT_SIGNATURE_FAILURE";
    case X509_V_ERR_INVALID_CA: return "INVALID_CA";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return "ERR_TLS_CERT_ALTNAME_INVALID";
    default: return "ERR_TLS_CERT_INVALID";
  }
}

}  // namespace

// The error OpenSSL queued for a failed call, shaped like Node's TLS errors: message
// "error:0A00010B:SSL routines::wrong version number", code 'ERR_SSL_WRONG_VERSION_NUMBER',
// library, reason; a failed certificate check says which check (and its code, as Node's does).
Napi::Error TlsError(Napi::Env env, const char* what, SSL* ssl) {
  unsigned long first = ERR_get_error();
  std::string message = what;
  std::string code = "ERR_TLS_INTERNAL";
  Napi::Error error = Napi::Error::New(env, "");
  if (first != 0) {
    char text[256];
    ERR_error_string_n(first, text, sizeof text);
    message += std::string(": ") + text;
    const char* reason = ERR_reason_error_string(first);
    const char* library = ERR_lib_error_string(first);
    if (reason != nullptr) {
      code = CodeOf(reason);
      error.Set("reason", Napi::String::New(env, reason));
    }
    if (library != nullptr) error.Set("library", Napi::String::New(env, library));
  }
  long verify = ssl == nullptr ? X509_V_OK : SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    message += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    code = VerifyCodeOf(verify);
  }
  error.Set("message", Napi::String::New(env, message));
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// PEM text from a Buffer or string argument inside an options object (empty: absent).
std::string PemOption(Napi::Object options, const char* name, const char* owner) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return "";
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  if (value.IsBuffer()) {
    Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
    return std::string(buffer.Data(), buffer.Length());
  }
  ThrowTypeError(options.Env(), std::string(owner) + "." + name, "a string or Buffer of PEM text");
}

namespace {
// PEM's passphrase callback: there is none to give (returning -1 fails the read), and `asked` records
// that the key wanted one.
int NoPassphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}
}  // namespace

EVP_PKEY* ReadPrivateKey(Napi::Env env, const std::string& pem, const std::string& name) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  bool asked = false;
  EVP_PKEY* key = bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, &asked);
  if (bio != nullptr) BIO_free(bio);
  if (key != nullptr) return key;
  if (asked) {
    Napi::Error error = Napi::Error::New(env, name + " is passphrase-protected: give the key unencrypted " +
                                                  "(openssl pkey -in key.pem -out plain-key.pem, then mode 0600)");
    error.Set("code", Napi::String::New(env, "ERR_IOMUX_TLS_KEY_ENCRYPTED"));
    throw error;
  }
  throw TlsError(env, (name + " holds no PEM private key").c_str());
}

bool BoolOption(Napi::Object options, const char* name, bool fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsBoolean()) ThrowTypeError(options.Env(), std::string("options.") + name, "a boolean");
  return value.As<Napi::Boolean>().Value();
}

namespace {

// Frees what a constructor made when it throws: C++ runs no destructor for an object whose
// constructor did not return, so a TlsContext or TlsEngine refused half-way would keep its SSL_CTX or SSL.
template <typename T>
class FreeOnThrow {
 public:
  FreeOnThrow(T*& owned, void (*free)(T*)) : owned_(owned), free_(free) {}
  ~FreeOnThrow() {
    if (armed_ && owned_ != nullptr) free_(owned_);
    if (armed_) owned_ = nullptr;
  }
  FreeOnThrow(const FreeOnThrow&) = delete;
  FreeOnThrow& operator=(const FreeOnThrow&) = delete;
  void Keep() { armed_ = false; }

 private:
  T*& owned_;
  void (*free_)(T*);
  bool armed_ = true;
};

// A name OpenSSL takes as a C string: one with a NUL inside would be cut there, and a shorter
// name than the caller's checked without a word. Refused instead.
std::string NameWithoutNul(Napi::Env env, Napi::Value value, const char* what) {
  std::string name = value.As<Napi::String>().Utf8Value();
  if (name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, std::string(what) + " must not contain a NUL character");
  }
  return name;
}

// Every certificate in `pem`, in order (none: an empty vector; the caller owns them).
std::vector<X509*> ReadCertificates(const std::string& pem) {
  std::vector<X509*> certs;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return certs;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) certs.push_back(cert);
  BIO_free(bio);
  ERR_clear_error();  // The loop ends on "no start line": not an error.
  return certs;
}

// Marks TlsContext objects, so that a TlsEngine can check its argument without per-process state.
const napi_type_tag kContextTag = {0x696f6d75785f746cULL, 0x73636f6e74657874ULL};

// new TlsContext({ server, cert?, key?, ca?, verifyPeer = !server, sessionTimeout? (s), minVersion? })
// One SSL_CTX: certificates, trust, and (for a server) the session cache and ticket keys that let
// a client resume a session on another connection.
class TlsContext : public Napi::ObjectWrap<TlsContext> {
 public:
  static Napi::Function Define(Napi::Env env) { return DefineClass(env, "TlsContext", {}); }

  explicit TlsContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsContext>(info) {
    Napi::Env env = info.Env();
    info.This().As<Napi::Object>().TypeTag(&kContextTag);
    if (!info[0].IsObject()) ThrowTypeError(env, "options", "an object");
    Napi::Object options = info[0].As<Napi::Object>();
    server_ = BoolOption(options, "server", false);
    bool verifyPeer = BoolOption(options, "verifyPeer", !server_);
    std::string cert = PemOption(options, "cert");
    std::string key = PemOption(options, "key");
    std::string ca = PemOption(options, "ca");
    int64_t minVersion = 0;
    if (!options.Get("minVersion").IsUndefined()) {
      minVersion = CheckInteger(env, options.Get("minVersion"), "options.minVersion", TLS1_2_VERSION, TLS1_3_VERSION);
    }
    int64_t timeout = options.Get("sessionTimeout").IsUndefined()
                          ? 0 : CheckInteger(env, options.Get("sessionTimeout"), "options.sessionTimeout", 1, 1 << 30);
    if (server_ && (cert.empty() || key.empty())) {
      throw Napi::TypeError::New(env, "A server TlsContext needs options.cert and options.key (PEM)");
    }

    ClearErrors clear;
    ctx_ = SSL_CTX_new(TLS_method());
    if (ctx_ == nullptr) throw TlsError(env, "SSL_CTX_new");
    FreeOnThrow<SSL_CTX> unlessConfigured(ctx_, SSL_CTX_free);
    SSL_CTX_set_min_proto_version(ctx_, minVersion != 0 ? static_cast<int>(minVersion) : TLS1_2_VERSION);
    // No renegotiation (a CPU sink for a peer, and TLS 1.3 has none); buffers are released while a
    // connection is idle, so a thousand idle sessions do not hold 34 KiB each.
    SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx_, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (timeout != 0) SSL_CTX_set_timeout(ctx_, static_cast<long>(timeout));
    static const unsigned char kContext[] = "iomux";
    SSL_CTX_set_session_id_context(ctx_, kContext, sizeof kContext - 1);

    if (!cert.empty()) {
      std::vector<X509*> chain = ReadCertificates(cert);
      if (chain.empty()) throw Napi::Error::New(env, "options.cert holds no PEM certificate");
      bool ok = SSL_CTX_use_certificate(ctx_, chain[0]) == 1;
      X509_free(chain[0]);
      for (size_t i = 1; i < chain.size(); i++) {
        // The context takes these over when it accepts them.
        if (ok && SSL_CTX_add_extra_chain_cert(ctx_, chain[i]) == 1) continue;
        ok = false;
        X509_free(chain[i]);
      }
      if (!ok) throw TlsError(env, "options.cert could not be used");
    }
    if (!key.empty()) {
      EVP_PKEY* pkey = ReadPrivateKey(env, key, "options.key");
      bool ok = SSL_CTX_use_PrivateKey(ctx_, pkey) == 1;
      EVP_PKEY_free(pkey);
      if (!ok) throw TlsError(env, "options.key could not be used");
      if (!cert.empty() && SSL_CTX_check_private_key(ctx_) != 1) {
        throw TlsError(env, "options.key does not belong to options.cert");
      }
    }
    if (!ca.empty()) {
      std::vector<X509*> authorities = ReadCertificates(ca);
      if (authorities.empty()) throw Napi::Error::New(env, "options.ca holds no PEM certificate");
      X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
      bool ok = true;
      for (X509* authority : authorities) {
        ok = ok && X509_STORE_add_cert(store, authority) == 1;
        X509_free(authority);  // The store keeps its own reference.
      }
      if (!ok) throw TlsError(env, "options.ca could not be used");
    }
    unlessConfigured.Keep();
  }

  ~TlsContext() override {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  SSL_CTX* ctx() const { return ctx_; }
  bool server() const { return server_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  bool server_ = false;
};

// A plaintext chunk of a file read for encryption (writeFile): per thread, reused.
thread_local std::vector<uint8_t> fileChunk;
constexpr size_t kFileChunk = 256 * 1024;

// new TlsEngine(context, { sessionIdContext?, tickets?, servername?, host?, ip?, session? })
// One TLS connection's state machine. `sessionIdContext` (server): only sessions made under the
// same bytes may be resumed here — FTPS gives each control connection its own, so that a data
// connection can resume that control connection's session and no other. `tickets` (server): how
// many TLS 1.3 session tickets to send after the handshake (OpenSSL's default is 2; an FTPS data
// connection sends none: a client that only uploads never reads them, and closing with them
// unread in its buffer makes its kernel reset the connection). `servername` (client):
// SNI; `host` / `ip`: the name the server's certificate must carry; `session`: resume this one.
class TlsEngine : public Napi::ObjectWrap<TlsEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "TlsEngine",
        {InstanceMethod<&TlsEngine::Handshake>("handshake"), InstanceMethod<&TlsEngine::Feed>("feed"),
         InstanceMethod<&TlsEngine::Read>("read"), InstanceMethod<&TlsEngine::Write>("write"),
         InstanceMethod<&TlsEngine::WriteFile>("writeFile"), InstanceMethod<&TlsEngine::Pull>("pull"),
         InstanceMethod<&TlsEngine::Shutdown>("shutdown"), InstanceMethod<&TlsEngine::Free>("free"),
         InstanceAccessor<&TlsEngine::Pending>("pending"),
         InstanceAccessor<&TlsEngine::HandshakeDone>("handshakeDone"),
         InstanceAccessor<&TlsEngine::Protocol>("protocol"), InstanceAccessor<&TlsEngine::Cipher>("cipher"),
         InstanceAccessor<&TlsEngine::SessionReused>("sessionReused"),
         InstanceAccessor<&TlsEngine::PeerCertificate>("peerCertificate"),
         InstanceAccessor<&TlsEngine::Session>("session"),
         InstanceAccessor<&TlsEngine::CloseNotifyReceived>("closeNotifyReceived")});
  }

  explicit TlsEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsEngine>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().CheckTypeTag(&kContextTag)) {
      ThrowTypeError(env, "context", "a TlsContext");
    }
    TlsContext* context = TlsContext::Unwrap(info[0].As<Napi::Object>());
    context_ = Napi::Persistent(info[0].As<Napi::Object>());  // The SSL_CTX outlives every SSL made from it.
    Napi::Object options = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    ClearErrors clear;
    ssl_ = SSL_new(context->ctx());
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (ssl_ == nullptr || in == nullptr || out == nullptr) {
      if (ssl_ != nullptr) SSL_free(ssl_);
      ssl_ = nullptr;
      if (in != nullptr) BIO_free(in);
      if (out != nullptr) BIO_free(out);
      throw TlsError(env, "SSL_new");
    }
    // An empty memory BIO means "nothing yet" (retry), not the end of the stream.
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl_, in, out);  // The SSL owns both from here on.
    FreeOnThrow<SSL> unlessConfigured(ssl_, SSL_free);
    in_ = in;
    out_ = out;

    Napi::Value sidContext = options.Get("sessionIdContext");
    if (!sidContext.IsUndefined()) {
      ByteRange bytes = CheckView(env, sidContext, "options.sessionIdContext");
      if (bytes.length == 0 || bytes.length > SSL_MAX_SID_CTX_LENGTH) {
        throw Napi::RangeError::New(env, "options.sessionIdContext must be 1 to 32 bytes");
      }
      SSL_set_session_id_context(ssl_, bytes.data, static_cast<unsigned>(bytes.length));
    }
    Napi::Value tickets = options.Get("tickets");
    if (!tickets.IsUndefined()) {
      SSL_set_num_tickets(ssl_, static_cast<size_t>(CheckInteger(env, tickets, "options.tickets", 0, 16)));
    }
    if (context->server()) {
      SSL_set_accept_state(ssl_);
      unlessConfigured.Keep();
      return;
    }
    SSL_set_connect_state(ssl_);
    Napi::Value servername = options.Get("servername");
    if (servername.IsString()) {
      std::string name = NameWithoutNul(env, servername, "options.servername");
      if (SSL_set_tlsext_host_name(ssl_, name.c_str()) != 1) throw TlsError(env, "options.servername");
    }
    Napi::Value host = options.Get("host");
    if (host.IsString() && SSL_set1_host(ssl_, NameWithoutNul(env, host, "options.host").c_str()) != 1) {
      throw TlsError(env, "options.host");
    }
    Napi::Value ip = options.Get("ip");
    if (ip.IsString() && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), NameWithoutNul(env, ip, "options.ip").c_str()) != 1) {
      throw Napi::TypeError::New(env, "options.ip is not a numeric IPv4 or IPv6 address");
    }
    Napi::Value session = options.Get("session");
    if (!session.IsUndefined()) {
      ByteRange der = CheckView(env, session, "options.session");
      const unsigned char* p = der.data;
      SSL_SESSION* resumed = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.length));
      if (resumed == nullptr) throw TlsError(env, "options.session is not a DER-encoded TLS session");
      int ok = SSL_set_session(ssl_, resumed);
      SSL_SESSION_free(resumed);
      if (ok != 1) throw TlsError(env, "options.session");
    }
    unlessConfigured.Keep();
  }

  ~TlsEngine() override { Release(); }

 private:
  // handshake() -> true once the handshake is complete, false while it waits for the peer.
  Napi::Value Handshake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ClearErrors clear;
    int result = SSL_do_handshake(ssl_);
    if (result == 1) return Napi::Boolean::New(env, true);
    int err = SSL_get_error(ssl_, result);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Napi::Boolean::New(env, false);
    throw TlsError(env, "TLS handshake failed", ssl_);
  }

  // feed(buffer, offset?, length?): ciphertext from the peer. It is copied: the buffer is free again.
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ByteRange bytes = ArgByteRange(info, 0, "buffer");
    size_t done = 0;
    while (done < bytes.length) {
      int chunk = static_cast<int>(std::min<size_t>(bytes.length - done, 1 << 30));
      int n = BIO_write(in_, bytes.data + done, chunk);
      if (n <= 0) throw Napi::Error::New(env, "TLS: out of memory buffering received bytes");
      done += static_cast<size_t>(n);
    }
    return env.Undefined();
  }

  // read(buffer, offset?, length?) -> plaintext bytes decrypted into the buffer (0: nothing more
  // until more is fed), or -1 once the peer's close_notify has arrived (and nothing precedes it).
  // Drives the handshake while it is not complete.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ByteRange bytes = ArgByteRange(info, 0, "buffer");
    ClearErrors clear;
    size_t total = 0;
    while (total < bytes.length) {
      int want = static_cast<int>(std::min<size_t>(bytes.length - total, 1 << 30));
      int n = SSL_read(ssl_, bytes.data + total, want);
      if (n > 0) {
        total += static_cast<size_t>(n);
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (err == SSL_ERROR_ZERO_RETURN) return Napi::Number::New(env, total > 0 ? static_cast<double>(total) : -1);
      throw TlsError(env, SSL_is_init_finished(ssl_) ? "TLS error" : "TLS handshake failed", ssl_);
    }
    return Napi::Number::New(env, static_cast<double>(total));
  }

  // write(buffer, offset?, length?) -> plaintext bytes taken (all of them once the handshake is
  // complete; 0 before). Their records wait in the engine for pull().
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ByteRange bytes = ArgByteRange(info, 0, "buffer");
    return Napi::Number::New(env, static_cast<double>(Encrypt(env, bytes.data, bytes.length)));
  }

  // writeFile(fd, position, length) -> bytes read from the file at `position` (pread: the file's
  // own offset is not used) and encrypted, at most 256 KiB per call; 0 at the end of the file (or
  // before the handshake is complete).
  Napi::Value WriteFile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    int fd = static_cast<int>(ArgDescriptor(info, 0, "fd"));
    int64_t position = ArgInteger(info, 1, "position", 0, (int64_t(1) << 53) - 1);
    int64_t length = ArgInteger(info, 2, "length", 0, (int64_t(1) << 53) - 1);
    if (!SSL_is_init_finished(ssl_)) return Napi::Number::New(env, 0);  // As write(): nothing before the handshake.
    if (fileChunk.size() < kFileChunk) fileChunk.resize(kFileChunk);
    size_t want = static_cast<size_t>(std::min<int64_t>(length, static_cast<int64_t>(kFileChunk)));
    if (want == 0) return Napi::Number::New(env, 0);
    ssize_t n;
    do {
      n = pread(fd, fileChunk.data(), want, static_cast<off_t>(position));
    } while (n < 0 && errno == EINTR);
    if (n < 0) ThrowSystemError(env, errno, "pread");
    if (n == 0) return Napi::Number::New(env, 0);
    Encrypt(env, fileChunk.data(), static_cast<size_t>(n));
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // pull(buffer, offset?, length?) -> ciphertext bytes copied out for sending (0: none waiting).
  Napi::Value Pull(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ByteRange bytes = ArgByteRange(info, 0, "buffer");
    int want = static_cast<int>(std::min<size_t>(bytes.length, 1 << 30));
    int n = want == 0 ? 0 : BIO_read(out_, bytes.data, want);
    return Napi::Number::New(env, n > 0 ? n : 0);
  }

  // shutdown() -> queues our close_notify; true if the peer's had arrived already.
  Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckLive(env);
    ClearErrors clear;
    int result = SSL_shutdown(ssl_);
    if (result < 0) throw TlsError(env, "TLS shutdown failed", ssl_);
    return Napi::Boolean::New(env, result == 1);
  }

  // free(): releases the connection's TLS state now instead of at garbage collection. Idempotent.
  Napi::Value Free(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  Napi::Value Pending(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ssl_ == nullptr ? 0 : static_cast<double>(BIO_ctrl_pending(out_)));
  }

  Napi::Value HandshakeDone(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ssl_ != nullptr && SSL_is_init_finished(ssl_));
  }

  Napi::Value Protocol(const Napi::CallbackInfo& info) {
    if (!Established()) return info.Env().Null();
    return Napi::String::New(info.Env(), SSL_get_version(ssl_));
  }

  Napi::Value Cipher(const Napi::CallbackInfo& info) {
    if (!Established()) return info.Env().Null();
    return Napi::String::New(info.Env(), SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_)));
  }

  Napi::Value SessionReused(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), Established() && SSL_session_reused(ssl_) == 1);
  }

  // The peer's certificate, DER-encoded (new crypto.X509Certificate(der) reads it), or null.
  Napi::Value PeerCertificate(const Napi::CallbackInfo& info) {
    if (!Established()) return info.Env().Null();
    return Der(info.Env(), SSL_get1_peer_certificate(ssl_), i2d_X509, X509_free);
  }

  // The session, DER-encoded, for options.session of a later engine (a client's resumption), or null.
  Napi::Value Session(const Napi::CallbackInfo& info) {
    if (!Established()) return info.Env().Null();
    return Der(info.Env(), SSL_get1_session(ssl_), i2d_SSL_SESSION, SSL_SESSION_free);
  }

  // An OpenSSL object (owned: freed here) as a Buffer of its DER encoding; null for none.
  template <typename T>
  static Napi::Value Der(Napi::Env env, T* object, int (*encode)(const T*, unsigned char**), void (*release)(T*)) {
    if (object == nullptr) return env.Null();
    int length = encode(object, nullptr);
    Napi::Value result = env.Null();
    if (length > 0) {
      Napi::Buffer<unsigned char> der = Napi::Buffer<unsigned char>::New(env, static_cast<size_t>(length));
      unsigned char* p = der.Data();
      encode(object, &p);
      result = der;
    }
    release(object);
    return result;
  }

  Napi::Value CloseNotifyReceived(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0);
  }

  size_t Encrypt(Napi::Env env, const uint8_t* data, size_t length) {
    if (length == 0 || !SSL_is_init_finished(ssl_)) return 0;
    ClearErrors clear;
    size_t done = 0;
    while (done < length) {
      // Into a memory BIO SSL_write never waits: it takes everything, a record at a time.
      int chunk = static_cast<int>(std::min<size_t>(length - done, 1 << 30));
      int n = SSL_write(ssl_, data + done, chunk);
      if (n <= 0) throw TlsError(env, "TLS error", ssl_);
      done += static_cast<size_t>(n);
    }
    return done;
  }

  bool Established() const { return ssl_ != nullptr && SSL_is_init_finished(ssl_); }

  void CheckLive(Napi::Env env) const {
    if (ssl_ == nullptr) throw Napi::Error::New(env, "This TlsEngine is freed");
  }

  void Release() {
    if (ssl_ == nullptr) return;
    SSL_free(ssl_);  // And both BIOs with it.
    ssl_ = nullptr;
    in_ = out_ = nullptr;
  }

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  Napi::ObjectReference context_;
};

}  // namespace

void InitTls(Napi::Env env, Napi::Object exports) {
  std::string why = WhyUnavailable();
  if (!why.empty()) {
    exports.Set("tlsUnavailable", Napi::String::New(env, why));
    return;
  }
  exports.Set("TlsContext", TlsContext::Define(env));
  exports.Set("TlsEngine", TlsEngine::Define(env));
  exports.Set("makeCertificate", Napi::Function::New<MakeCertificate>(env, "makeCertificate"));
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  for (const OpenSslFunction& function : kOpenSslFunctions) names.Set(i++, Napi::String::New(env, function.name));
  exports.Set("tlsFunctions", names);
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
}

}  // namespace iomux

#else  // no OpenSSL headers in this build

namespace iomux {
void InitTls(Napi::Env env, Napi::Object exports) {
  exports.Set("tlsUnavailable", Napi::String::New(env, "this build of the addon has no TLS (it was compiled without OpenSSL's headers)"));
}
}  // namespace iomux

#endif

#include "docker_worker/gpg_home.h"

#include <gpgme.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

namespace docker_worker {
namespace {

std::string ErrorText(gpgme_error_t err) {
  char buf[256];
  gpgme_strerror_r(err, buf, sizeof buf);
  buf[sizeof buf - 1] = '\0';
  return std::string(buf) + " (" + gpgme_strsource(err) + ")";
}

Status GpgError(const std::string& what, gpgme_error_t err) {
  return Status(Code::kInternal, what + ": " + ErrorText(err));
}

// gpgme_check_version must run once before any context is created. It also sets SIGPIPE to
// SIG_IGN for the process, as GPGME needs.
Status InitGpgme() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    gpgme_error_t err = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (err) error = "GnuPG (gpg) is not available to GPGME: " + ErrorText(err);
  });
  if (!error.empty()) return Status(Code::kUnavailable, error);
  return Status::Ok();
}

// Never supplies a passphrase: protected keys fail instead of prompting.
gpgme_error_t RefusePassphrase(void*, const char*, const char*, int, int) {
  return gpg_error(GPG_ERR_CANCELED);
}

struct Ctx {
  gpgme_ctx_t ctx = nullptr;
  Ctx() = default;
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  ~Ctx() {
    if (ctx) gpgme_release(ctx);
  }
};

struct Data {
  gpgme_data_t data = nullptr;
  Data() = default;
  Data(const Data&) = delete;
  Data& operator=(const Data&) = delete;
  ~Data() {
    if (data) gpgme_data_release(data);
  }
  // Takes the buffer out (wiping GPGME's copy) and releases the data object.
  std::string Take() {
    size_t len = 0;
    char* mem = gpgme_data_release_and_get_mem(data, &len);
    data = nullptr;
    std::string out;
    if (mem) {
      out.assign(mem, len);
      sodium_memzero(mem, len);
      gpgme_free(mem);
    }
    return out;
  }
};

struct KeyList {
  std::vector<gpgme_key_t> keys;
  KeyList() = default;
  KeyList(const KeyList&) = delete;
  KeyList& operator=(const KeyList&) = delete;
  ~KeyList() {
    for (gpgme_key_t k : keys) {
      if (k) gpgme_key_unref(k);
    }
  }
};

// A context for `protocol` whose engine uses `home` (and `file_name`, when not null).
Status NewContext(Ctx& c, gpgme_protocol_t protocol, const std::string& home,
                  const char* file_name = nullptr) {
  if (gpgme_error_t err = gpgme_new(&c.ctx)) return GpgError("cannot create a GPGME context", err);
  if (gpgme_error_t err = gpgme_set_protocol(c.ctx, protocol)) {
    return GpgError("cannot select the GPGME protocol", err);
  }
  if (gpgme_error_t err = gpgme_ctx_set_engine_info(c.ctx, protocol, file_name, home.c_str())) {
    return GpgError("cannot set the GnuPG home", err);
  }
  if (protocol == GPGME_PROTOCOL_OpenPGP) {
    gpgme_set_armor(c.ctx, 0);
    gpgme_set_offline(c.ctx, 1);
    gpgme_set_passphrase_cb(c.ctx, RefusePassphrase, nullptr);
    if (gpgme_error_t err = gpgme_set_pinentry_mode(c.ctx, GPGME_PINENTRY_MODE_LOOPBACK)) {
      return GpgError("cannot set the pinentry mode", err);
    }
  }
  return Status::Ok();
}

Status NewMemData(Data& d, const std::string& bytes) {
  if (gpgme_error_t err = gpgme_data_new_from_mem(&d.data, bytes.data(), bytes.size(), 0)) {
    return GpgError("cannot create a GPGME data buffer", err);
  }
  return Status::Ok();
}

Status NewEmptyData(Data& d) {
  if (gpgme_error_t err = gpgme_data_new(&d.data)) {
    return GpgError("cannot create a GPGME data buffer", err);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<GpgHome>> GpgHome::Create() {
  if (Status s = InitGpgme(); !s.ok()) return s;
  // /tmp, not $TMPDIR: the agent's socket path must stay short.
  std::string tmpl = "/tmp/dw-gpg-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return Status(Code::kInternal,
                  "cannot create a GnuPG home under /tmp: " + std::string(std::strerror(errno)));
  }
  ::chmod(tmpl.c_str(), 0700);  // mkdtemp already uses 0700; be explicit
  return std::unique_ptr<GpgHome>(new GpgHome(tmpl));
}

GpgHome::~GpgHome() {
  StopAgent();
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<GpgHome::Imported> GpgHome::Import(const std::string& key_data) {
  std::lock_guard<std::mutex> lock(mu_);
  Ctx c;
  if (Status s = NewContext(c, GPGME_PROTOCOL_OpenPGP, path_); !s.ok()) return s;
  Data in;
  if (Status s = NewMemData(in, key_data); !s.ok()) return s;
  if (gpgme_error_t err = gpgme_op_import(c.ctx, in.data)) {
    return GpgError("cannot import the OpenPGP key", err);
  }
  gpgme_import_result_t r = gpgme_op_import_result(c.ctx);
  Imported out;
  if (!r) return Status(Code::kInternal, "cannot import the OpenPGP key: no import result");
  for (gpgme_import_status_t st = r->imports; st; st = st->next) {
    if (st->result || !st->fpr) continue;
    std::string fpr = st->fpr;
    if (std::find(out.fingerprints.begin(), out.fingerprints.end(), fpr) ==
        out.fingerprints.end()) {
      out.fingerprints.push_back(fpr);
    }
  }
  out.secret_keys = r->secret_imported + r->secret_unchanged;
  if (out.fingerprints.empty()) {
    return Status(Code::kInvalidArgument, "no usable OpenPGP key found (" +
                                              std::to_string(r->considered) + " considered, " +
                                              std::to_string(r->not_imported) + " not imported)");
  }
  return out;
}

Result<std::string> GpgHome::Encrypt(const std::string& plaintext,
                                     const std::vector<std::string>& fingerprints) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fingerprints.empty()) return Status(Code::kInvalidArgument, "no recipient key");
  Ctx c;
  if (Status s = NewContext(c, GPGME_PROTOCOL_OpenPGP, path_); !s.ok()) return s;
  KeyList keys;
  for (const std::string& fpr : fingerprints) {
    gpgme_key_t key = nullptr;
    if (gpgme_error_t err = gpgme_get_key(c.ctx, fpr.c_str(), &key, 0)) {
      return GpgError("cannot find key " + fpr, err);
    }
    keys.keys.push_back(key);
  }
  keys.keys.push_back(nullptr);
  Data in, out;
  if (Status s = NewMemData(in, plaintext); !s.ok()) return s;
  if (Status s = NewEmptyData(out); !s.ok()) return s;
  gpgme_error_t err = gpgme_op_encrypt(
      c.ctx, keys.keys.data(),
      static_cast<gpgme_encrypt_flags_t>(GPGME_ENCRYPT_ALWAYS_TRUST | GPGME_ENCRYPT_NO_ENCRYPT_TO),
      in.data, out.data);
  if (err) {
    gpgme_encrypt_result_t r = gpgme_op_encrypt_result(c.ctx);
    if (r && r->invalid_recipients) {
      return GpgError(std::string("cannot encrypt to key ") +
                          (r->invalid_recipients->fpr ? r->invalid_recipients->fpr : "?"),
                      r->invalid_recipients->reason ? r->invalid_recipients->reason : err);
    }
    return GpgError("cannot encrypt", err);
  }
  return out.Take();
}

Result<std::string> GpgHome::Decrypt(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  Ctx c;
  if (Status s = NewContext(c, GPGME_PROTOCOL_OpenPGP, path_); !s.ok()) return s;
  Data in, out;
  if (Status s = NewMemData(in, message); !s.ok()) return s;
  if (Status s = NewEmptyData(out); !s.ok()) return s;
  gpgme_error_t err = gpgme_op_decrypt(c.ctx, in.data, out.data);
  std::string plaintext = out.Take();
  auto fail = [&plaintext](Status s) -> Result<std::string> {
    sodium_memzero(plaintext.data(), plaintext.size());
    return s;
  };
  if (err) return fail(GpgError("decryption failed", err));
  gpgme_decrypt_result_t r = gpgme_op_decrypt_result(c.ctx);
  if (!r) return fail(Status(Code::kInternal, "decryption failed: no result"));
  if (r->unsupported_algorithm) {
    return fail(Status(
        Code::kInvalidArgument,
        std::string("decryption failed: unsupported algorithm ") + r->unsupported_algorithm));
  }
  if (r->legacy_cipher_nomdc) {
    return fail(Status(Code::kInvalidArgument, "decryption failed: no integrity protection"));
  }
  if (!r->recipients) {
    return fail(Status(Code::kInvalidArgument,
                       "decryption failed: the message is not encrypted to a public key"));
  }
  return plaintext;
}

void GpgHome::StopAgent() {
  std::lock_guard<std::mutex> lock(mu_);
  // Where this home's agent listens: /run/user/UID/gnupg/d.*/ when that exists, else the home.
  Ctx conf;
  if (!NewContext(conf, GPGME_PROTOCOL_GPGCONF, path_).ok()) return;
  char* socket_c = nullptr;
  if (gpgme_op_conf_dir(conf.ctx, "agent-socket", &socket_c) || !socket_c) return;
  std::string socket = socket_c;
  gpgme_free(socket_c);

  std::error_code ec;
  if (std::filesystem::exists(socket, ec)) {
    {
      Ctx assuan;
      if (NewContext(assuan, GPGME_PROTOCOL_ASSUAN, path_, socket.c_str()).ok()) {
        gpgme_error_t op_err = 0;
        gpgme_op_assuan_transact_ext(assuan.ctx, "KILLAGENT", nullptr, nullptr, nullptr, nullptr,
                                     nullptr, nullptr, &op_err);
      }
    }  // the connection closes here; the agent then removes its sockets and exits
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::filesystem::exists(socket, ec) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // gpg and gpgconf create a per-home socket directory /run/user/UID/gnupg/d.<hash> when
  // /run/user/UID exists, agent or not (`gpgconf --remove-socketdir` removes it); rmdir only
  // succeeds once it is empty (the exiting agent removes its other sockets a moment later).
  std::filesystem::path dir = std::filesystem::path(socket).parent_path();
  if (dir != std::filesystem::path(path_) && dir.filename().string().rfind("d.", 0) == 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (::rmdir(dir.c_str()) != 0 && errno == ENOTEMPTY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace docker_worker

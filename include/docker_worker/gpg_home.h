// A private GnuPG home directory, driven only through GPGME (never hand-written OpenPGP).
//
// Create() makes a fresh directory /tmp/dw-gpg-XXXXXX (mode 0700; short, so gpg-agent's socket
// path stays under the unix socket limit when the sockets live in the home). Every operation
// runs gpg with --homedir set to it, offline, with loopback pinentry and a passphrase callback
// that always refuses: a passphrase-protected key fails at once instead of waiting for a prompt.
// gpg starts one gpg-agent per home on first need (secret key import, decryption).
//
// The destructor stops that agent through GPGME (gpgconf engine for the socket path, then the
// Assuan engine sends KILLAGENT; nothing happens when no agent runs), waits (bounded, 2 s) for
// the agent to remove its socket, removes the per-home socket directory gpg makes under
// /run/user/UID/gnupg/ when that exists, and removes the directory.
// gpg-agent also exits by itself once its home is deleted (inotify), so a crash before the
// destructor leaves no agent behind for long.
//
// Thread safety: every method may be called from several threads at once; operations are
// serialised by a mutex. Error messages carry GPGME's reason and never any key or plaintext.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "docker_worker/status.h"

namespace docker_worker {

class GpgHome {
 public:
  static Result<std::unique_ptr<GpgHome>> Create();
  ~GpgHome();
  GpgHome(const GpgHome&) = delete;
  GpgHome& operator=(const GpgHome&) = delete;

  const std::string& path() const { return path_; }

  struct Imported {
    std::vector<std::string> fingerprints;  // primary keys found in the data, imported or unchanged
    int secret_keys = 0;                    // secret keys imported or already present
  };
  // Imports armored or binary OpenPGP keys (public or secret).
  Result<Imported> Import(const std::string& key_data);

  // A binary (unarmored) OpenPGP message with `plaintext` encrypted to the given imported keys,
  // trusting them without a web of trust (always-trust).
  Result<std::string> Encrypt(const std::string& plaintext,
                              const std::vector<std::string>& fingerprints);

  // The plaintext of an armored or binary OpenPGP message encrypted to a secret key in this
  // home. Unencrypted, symmetric-only or integrity-unprotected messages are errors.
  Result<std::string> Decrypt(const std::string& message);

  // Stops this home's gpg-agent if one runs. Called by the destructor; idempotent.
  void StopAgent();

 private:
  explicit GpgHome(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::mutex mu_;
};

}  // namespace docker_worker

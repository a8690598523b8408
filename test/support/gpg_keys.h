// Throw-away OpenPGP keys made by the gpg command line, for tests of OpenPGP features.
//
// GpgKeyPair generates an ed25519/cv25519 key pair without passphrase (`gpg --quick-gen-key ...
// future-default`, instant) in its own GNUPGHOME (/tmp/dw-gk-XXXXXX, short for the agent
// socket), and exports armored public and private key files into that directory. ok() is false
// (with error()) when any gpg step failed. The destructor stops the home's gpg-agent with
// `gpgconf --homedir H --kill all` (tests only; the product stops agents through GPGME) and
// removes the directory. Not thread-safe; one pair per test is cheap.
#pragma once

#include <string>
#include <vector>

namespace docker_worker::testing {

class GpgKeyPair {
 public:
  explicit GpgKeyPair(const std::string& user_id = "docker-worker test <test@example.invalid>");
  ~GpgKeyPair();
  GpgKeyPair(const GpgKeyPair&) = delete;
  GpgKeyPair& operator=(const GpgKeyPair&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  const std::string& home() const { return home_; }
  const std::string& fingerprint() const { return fingerprint_; }
  std::string public_key_path() const { return home_ + "/public.asc"; }    // armored
  std::string private_key_path() const { return home_ + "/private.asc"; }  // armored
  std::string PublicKey() const;   // contents of public_key_path()
  std::string PrivateKey() const;  // contents of private_key_path()

  // Runs `gpg --homedir HOME --batch <args>`; stdout goes to `stdout_path`. Returns the exit
  // code; gpg's stderr is kept in last_stderr().
  int Gpg(const std::vector<std::string>& args, const std::string& stdout_path = "/dev/null");
  const std::string& last_stderr() const { return last_stderr_; }

 private:
  std::string home_;
  std::string fingerprint_;
  std::string error_;
  std::string last_stderr_;
};

// True while some process has `dir` in its command line (e.g. a gpg-agent started for the
// GNUPGHOME `dir`).
bool ProcessMentions(const std::string& dir);

// Polls ProcessMentions(dir) until it is false or `timeout_ms` passed; returns true when no
// process mentions `dir` any more.
bool WaitNoProcessMentions(const std::string& dir, int timeout_ms = 5000);

}  // namespace docker_worker::testing

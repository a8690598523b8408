#include "support/gpg_keys.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "fakes/temp_dir.h"
#include "support/subprocess.h"

namespace docker_worker::testing {

GpgKeyPair::GpgKeyPair(const std::string& user_id) {
  std::string tmpl = "/tmp/dw-gk-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    error_ = "mkdtemp failed";
    return;
  }
  home_ = tmpl;
  if (FindProgram("gpg").empty()) {
    error_ = "gpg not found on PATH";
    return;
  }
  if (Gpg({"--passphrase", "", "--quick-gen-key", user_id, "future-default", "default", "never"}) !=
      0) {
    error_ = "gpg --quick-gen-key failed: " + last_stderr_;
    return;
  }
  if (Gpg({"--with-colons", "--list-keys", user_id}, home_ + "/list.txt") != 0) {
    error_ = "gpg --list-keys failed: " + last_stderr_;
    return;
  }
  std::stringstream lines(ReadFile(home_ + "/list.txt"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("fpr:", 0) == 0) {
      // fpr:::::::::FINGERPRINT:
      std::stringstream fields(line);
      std::string field;
      for (int i = 0; i < 10 && std::getline(fields, field, ':'); ++i) {
      }
      fingerprint_ = field;
      break;
    }
  }
  if (fingerprint_.empty()) {
    error_ = "no fingerprint in gpg --list-keys output";
    return;
  }
  if (Gpg({"--armor", "--export", fingerprint_}, public_key_path()) != 0 || PublicKey().empty()) {
    error_ = "gpg --export failed: " + last_stderr_;
    return;
  }
  if (Gpg({"--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys",
           fingerprint_},
          private_key_path()) != 0 ||
      PrivateKey().empty()) {
    error_ = "gpg --export-secret-keys failed: " + last_stderr_;
    return;
  }
}

GpgKeyPair::~GpgKeyPair() {
  if (home_.empty()) return;
  std::string gpgconf = FindProgram("gpgconf");
  if (!gpgconf.empty()) {
    RunProcess({gpgconf, "--homedir", home_, "--kill", "all"}, {}, "/dev/null", "/dev/null");
    // Sockets live in /run/user/UID/gnupg/d.*/ when that exists; remove that directory too.
    RunProcess({gpgconf, "--homedir", home_, "--remove-socketdir"}, {}, "/dev/null", "/dev/null");
  }
  std::error_code ec;
  std::filesystem::remove_all(home_, ec);
}

std::string GpgKeyPair::PublicKey() const { return ReadFile(public_key_path()); }
std::string GpgKeyPair::PrivateKey() const { return ReadFile(private_key_path()); }

int GpgKeyPair::Gpg(const std::vector<std::string>& args, const std::string& stdout_path) {
  std::vector<std::string> argv = {FindProgram("gpg"), "--homedir", home_, "--batch"};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string stderr_path = home_ + "/gpg-stderr.txt";
  // GNUPGHOME is unset so nothing falls back to the caller's keyring.
  ProcessResult r = RunProcess(argv, {{"GNUPGHOME", ""}}, stdout_path, stderr_path);
  last_stderr_ = ReadFile(stderr_path);
  return r.exit_code;
}

bool ProcessMentions(const std::string& dir) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return false;
  bool found = false;
  while (dirent* e = ::readdir(proc)) {
    std::string pid = e->d_name;
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile("/proc/" + pid + "/cmdline");
    if (cmdline.find(dir) != std::string::npos) {
      found = true;
      break;
    }
  }
  ::closedir(proc);
  return found;
}

bool WaitNoProcessMentions(const std::string& dir, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (ProcessMentions(dir)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace docker_worker::testing

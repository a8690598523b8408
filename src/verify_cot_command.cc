#include "docker_worker/verify_cot_command.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

#include "docker_worker/read_file.h"
#include "docker_worker/chain_of_trust.h"
#include "docker_worker/exit_codes.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: docker-worker verify-cot DIR --public-key KEY   (DIR: downloaded artifacts by name, "
    "as `run --output` or `submit --output` write them; KEY: base64 ed25519 public key file)";

// The folder the artifact names are relative to: DIR or DIR/artifacts.
std::optional<fs::path> ArtifactRoot(const fs::path& dir) {
  std::error_code ec;
  for (const fs::path& root : {dir, dir / "artifacts"}) {
    if (fs::is_regular_file(root / cot::kDocumentName, ec)) return root;
  }
  return std::nullopt;
}

}  // namespace

int VerifyCotCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string dir, key_path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      out << kUsage << "\n";
      return 0;
    }
    if (a == "--public-key" || a == "-k") {
      if (i + 1 >= args.size()) {
        err << "docker-worker verify-cot: " << a << " needs a value\n" << kUsage << "\n";
        return kExitUsage;
      }
      key_path = args[++i];
    } else if (a.rfind("--public-key=", 0) == 0) {
      key_path = a.substr(std::string("--public-key=").size());
    } else if (a.size() > 1 && a[0] == '-') {
      err << "docker-worker verify-cot: unknown option " << a << "\n" << kUsage << "\n";
      return kExitUsage;
    } else if (dir.empty()) {
      dir = a;
    } else {
      err << "docker-worker verify-cot: only one DIR may be given\n" << kUsage << "\n";
      return kExitUsage;
    }
  }
  if (dir.empty() || key_path.empty()) {
    err << "docker-worker verify-cot: " << (dir.empty() ? "DIR" : "--public-key KEY")
        << " is missing\n"
        << kUsage << "\n";
    return kExitUsage;
  }
  auto key = cot::PublicKey::ReadFile(key_path);
  if (!key.ok()) {
    err << "docker-worker verify-cot: " << key.status().message() << "\n";
    return kExitUsage;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    err << "docker-worker verify-cot: " << dir << " is not a directory\n";
    return kExitUsage;
  }
  auto root = ArtifactRoot(dir);
  if (!root) {
    err << "docker-worker verify-cot: no " << cot::kDocumentName << " in " << dir << " or "
        << (fs::path(dir) / "artifacts").string() << "\n";
    return 1;
  }
  auto document = ReadWholeFile(*root / cot::kDocumentName);
  if (!document.ok()) {
    err << "docker-worker verify-cot: " << document.status().message() << "\n";
    return 1;
  }

  const char* signature_state = "missing";
  if (auto sig = ReadWholeFile(*root / cot::kSignatureName); sig.ok()) {
    signature_state = key->Verify(*document, *sig) ? "ok" : "BAD";
  }
  out << "signature " << signature_state << "  " << cot::kSignatureName << "\n";

  auto hashes = cot::ArtifactHashes(*document);
  if (!hashes.ok()) {
    err << "docker-worker verify-cot: " << (*root / cot::kDocumentName).string() << ": "
        << hashes.status().message() << "\n";
    return 1;
  }
  int ok = 0, mismatched = 0, missing = 0, bad_names = 0;
  for (const auto& c : cot::CheckArtifactFiles(*hashes, root->string())) {
    switch (c.state) {
      case cot::ArtifactCheck::State::kOk:
        ++ok;
        out << "ok        " << c.name << "\n";
        break;
      case cot::ArtifactCheck::State::kMismatch:
        ++mismatched;
        out << "MISMATCH  " << c.name << " (expected " << c.expected << ", got " << c.actual
            << ")\n";
        break;
      case cot::ArtifactCheck::State::kMissing:
        ++missing;
        out << "missing   " << c.name << "\n";
        break;
      case cot::ArtifactCheck::State::kBadName:
        ++bad_names;
        out << "BAD NAME  " << c.name << " (not a relative artifact path; not opened)\n";
        break;
    }
  }
  bool verified =
      std::string(signature_state) == "ok" && mismatched == 0 && missing == 0 && bad_names == 0;
  out << "verify-cot: " << hashes->size() << " artifacts: " << ok << " ok, " << mismatched
      << " mismatched, " << missing << " missing"
      << (bad_names ? ", " + std::to_string(bad_names) + " bad names" : "") << "; signature "
      << signature_state << "; chain of trust " << (verified ? "verified" : "NOT verified") << "\n";
  return verified ? 0 : 1;
}

}  // namespace docker_worker

// `docker-worker verify-cot DIR --public-key KEY`: check a run's chain of trust offline.
//
// DIR holds the run's artifacts laid out by artifact name: either DIR/<name> (as `submit
// --output DIR` downloads them) or DIR/artifacts/<name> (as `run --output DIR` writes them);
// the layout is found by where public/chain-of-trust.json is. KEY is a file with the base64
// ed25519 public key (32 bytes), or the worker's 64-byte secret key file (its public half is
// used). The command checks the signature public/chain-of-trust.json.sig over the exact bytes
// of public/chain-of-trust.json, then every artifact the document lists against the file in DIR.
// On `out`, one line per check:
//   "signature ok  public/chain-of-trust.json.sig"   (ok, BAD or missing)
//   "ok        <name>"
//   "MISMATCH  <name> (expected <hex>, got <hex>)"
//   "missing   <name>"
//   "BAD NAME  <name> (not a relative artifact path; not opened)"
// then a summary line: "verify-cot: <n> artifacts: <a> ok, <b> mismatched, <c> missing[,
// <d> bad names]; signature <ok|BAD|missing>; chain of trust <verified|NOT verified>".
// Exit 0 when the signature and every artifact are good; 1 on any failure (including a
// missing or unparseable document, reported on `err`); 64 (EX_USAGE) for wrong arguments or
// an unreadable or malformed key file (on `err`). `-h`/`--help` prints usage on `out`, exit 0.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace docker_worker {

// `args` are the words after `docker-worker verify-cot`.
int VerifyCotCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace docker_worker

#include "docker_worker/run_queue.h"

namespace docker_worker {

const char* StorageTypeName(Artifact::Kind kind) {
  switch (kind) {
    case Artifact::Kind::kFile:
      return "s3";
    case Artifact::Kind::kError:
      return "error";
    case Artifact::Kind::kReference:
      return "reference";
    case Artifact::Kind::kLink:
      return "link";
  }
  return "error";
}

Status ValidateArtifactName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status(Code::kInvalidArgument, "invalid artifact name \"" + name + "\": " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.front() == '/') return bad("must not start with /");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return bad("contains a control character");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string_view seg(name.data() + start, end - start);
    if (seg.empty()) return bad("contains an empty path segment");
    if (seg == "." || seg == "..") return bad("contains a \".\" or \"..\" segment");
    start = end + 1;
  }
  return Status::Ok();
}

}  // namespace docker_worker

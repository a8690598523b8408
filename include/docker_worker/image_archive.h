// Rewrites a `docker save` archive so that `docker load` tags its image with a name of ours,
// streaming: one entry at a time, never the whole archive in memory or on disk.
//
// The input is recognised by content, not by name: a tar archive, plain or compressed with gzip,
// lz4 or zstd (libarchive). The output is an uncompressed tar (pax) with the same entries, except:
//   manifest.json (docker save >= 1.10): must list exactly one image; its RepoTags become
//       [repo_tag]. The legacy `repositories` file is then dropped.
//   repositories only (v1.0 format): its single repository is renamed to repo_tag's name and its
//       single tag to repo_tag's tag; the rewritten file is written last.
//   index.json (OCI layout, docker save >= 25): image-name annotations of its manifests are set
//       to repo_tag, so engines that read the OCI index tag the same name.
//   neither manifest.json nor repositories: "Unknown docker archive format".
// Refused (kInvalidArgument, archive not loaded), since Docker's loader cleans paths and follows
// symlinks inside the archive and would read metadata we did not rewrite: entries whose names are
// not canonical (absolute, an empty segment other than a trailing '/', a "." or ".." segment;
// one leading "./" sequence is allowed), symlinks or hardlinks named manifest.json, index.json or
// repositories, and entries under a path an earlier entry made a symlink (symlinked files stay
// allowed: old docker save output uses them). manifest.json and index.json nesting deeper than
// json::kMaxDocumentDepth are refused too.
// So two archives that claim the same repository tag never overwrite each other once loaded
// under different names. Errors of `in` and `out` are returned unchanged (a download failure
// stays a download failure); malformed input is kInvalidArgument with upstream's wording where
// it has one. `repo_tag` is "name:tag".
#pragma once

#include <string>

#include "docker_worker/docker_engine.h"  // ByteSource, ByteSink
#include "docker_worker/status.h"

namespace docker_worker {

Status RetagImageArchive(const ByteSource& in, const ByteSink& out, const std::string& repo_tag);

}  // namespace docker_worker

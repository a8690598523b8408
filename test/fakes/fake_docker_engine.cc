#include "fakes/fake_docker_engine.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>

#include "docker_worker/json.h"
#include "docker_worker/sha256.h"
#include "docker_worker/tar_builder.h"
#include "fakes/bounded_wait.h"
#include "support/image_tars.h"

namespace docker_worker::testing {
namespace {

// Whether `labels` carry every filter ("key" or "key=value"), as the engine's label filter.
bool MatchesLabels(const std::map<std::string, std::string>& labels,
                   const std::vector<std::string>& filters) {
  for (const auto& f : filters) {
    size_t eq = f.find('=');
    auto it = labels.find(f.substr(0, eq));
    if (it == labels.end() || (eq != std::string::npos && it->second != f.substr(eq + 1))) {
      return false;
    }
  }
  return true;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void FakeDockerEngine::AddImage(const std::string& name, const std::string& id,
                                std::vector<std::string> entrypoint, std::vector<std::string> cmd) {
  std::lock_guard lock(mu_);
  images_[name] = Image{id, std::move(entrypoint), std::move(cmd)};
}

void FakeDockerEngine::AddPullable(const std::string& repository_tag) {
  std::lock_guard lock(mu_);
  pullable_.insert(repository_tag);
}

void FakeDockerEngine::AddFile(const std::string& path, const std::string& content) {
  std::lock_guard lock(mu_);
  files_[path] = {Node::Type::kFile, content};
}

void FakeDockerEngine::AddDir(const std::string& path) {
  std::lock_guard lock(mu_);
  files_[path] = {Node::Type::kDir, ""};
}

void FakeDockerEngine::AddSymlink(const std::string& path, const std::string& target) {
  std::lock_guard lock(mu_);
  files_[path] = {Node::Type::kSymlink, target};
}

std::vector<ContainerSpec> FakeDockerEngine::created() const {
  std::lock_guard lock(mu_);
  return created_;
}

std::vector<FakeDockerEngine::PutArchiveCall> FakeDockerEngine::put_archives() const {
  std::lock_guard lock(mu_);
  return put_archives_;
}

Status FakeDockerEngine::PutArchive(const std::string& id, const std::string& dir,
                                    std::string_view tar) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return Status(Code::kNotFound, "No such container: " + id);
  if (!put_archive_error.ok()) return put_archive_error;
  put_archives_.push_back({id, dir, std::string(tar), it->second.state == State::kCreated});
  return Status::Ok();
}

std::set<std::string> FakeDockerEngine::live_containers() const {
  std::lock_guard lock(mu_);
  std::set<std::string> ids;
  for (const auto& [id, c] : containers_) ids.insert(id);
  return ids;
}

int FakeDockerEngine::kills() const {
  std::lock_guard lock(mu_);
  return kills_;
}

int FakeDockerEngine::pulls() const {
  std::lock_guard lock(mu_);
  return pulls_;
}

std::vector<std::string> FakeDockerEngine::pull_auths() const {
  std::lock_guard lock(mu_);
  return pull_auths_;
}

void FakeDockerEngine::WaitUntilRunning() {
  std::unique_lock lock(mu_);
  BoundedWait(
      cv_, lock,
      [&] {
        for (const auto& [id, c] : containers_) {
          if (c.state == State::kRunning) return true;
        }
        return false;
      },
      "a running container");
}

Result<ImageInfo> FakeDockerEngine::InspectImage(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = images_.find(name);
  if (it == images_.end() && name.find(':') == std::string::npos) {
    it = images_.find(name + ":latest");
  }
  if (it == images_.end()) {
    it = std::find_if(images_.begin(), images_.end(),
                      [&](const auto& entry) { return entry.second.id == name; });
  }
  if (it == images_.end()) return Status(Code::kNotFound, "No such image: " + name);
  return ImageInfo{it->second.id, {it->first}, 1, it->second.entrypoint, it->second.cmd};
}

Status FakeDockerEngine::PullImage(const std::string& image, const std::string& tag,
                                   const std::string& registry_auth,
                                   const std::function<void(const PullEvent&)>& progress,
                                   std::stop_token) {
  std::string ref = image + ":" + tag;
  {
    std::lock_guard lock(mu_);
    ++pulls_;
    pull_auths_.push_back(registry_auth);
    if (!pullable_.count(ref)) return pull_error;
  }
  progress({tag, "Pulling from " + image, "", 0, 0});
  progress({"abc123", "Pull complete", "", 0, 0});
  AddImage(ref, "sha256:pulled");
  if (tag == "latest") AddImage(image, "sha256:pulled");
  return Status::Ok();
}

Status FakeDockerEngine::LoadImage(const ByteSource& tar, std::stop_token) {
  std::string bytes;
  char buf[65536];
  while (true) {
    auto n = tar(buf, sizeof buf);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    bytes.append(buf, *n);
  }
  if (!load_error.ok()) return load_error;
  const auto files = TarFiles(bytes);
  const auto manifest = files.find("manifest.json");
  auto doc = json::Parse(manifest == files.end() ? "" : manifest->second);
  if (!doc.ok() || !doc->IsArray()) return Status(Code::kInternal, "fake engine: no manifest.json");
  for (const auto& image : doc->GetArray()) {
    std::string config = json::GetString(image, "Config").value_or("");
    Sha256 hash;
    hash.Update(config);
    const std::string id = "sha256:" + hash.HexDigest();
    if (const json::Value* tags = json::FindArray(image, "RepoTags")) {
      for (const auto& t : tags->GetArray()) {
        if (t.IsString()) AddImage(t.GetString(), id);
      }
    }
  }
  std::lock_guard lock(mu_);
  ++loads_;
  return Status::Ok();
}

int FakeDockerEngine::loads() const {
  std::lock_guard lock(mu_);
  return loads_;
}

Status FakeDockerEngine::RemoveImage(const std::string& name) {
  std::lock_guard lock(mu_);
  // By name, or by id (every name of that id), refused while a container uses it.
  std::string id = images_.count(name) ? images_[name].id : name;
  for (const auto& [cid, c] : containers_) {
    if (c.spec.image == id || c.spec.image == name) {
      return Status(Code::kConflict, "image is being used by container " + cid);
    }
  }
  size_t before = images_.size();
  std::erase_if(images_, [&](const auto& entry) {
    return entry.first == name || entry.second.id == name;
  });
  if (images_.size() == before) return Status(Code::kNotFound, "No such image: " + name);
  removed_images_.push_back(name);
  return Status::Ok();
}

std::vector<std::string> FakeDockerEngine::removed_images() const {
  std::lock_guard lock(mu_);
  return removed_images_;
}

std::vector<std::string> FakeDockerEngine::image_names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, image] : images_) out.push_back(name);
  return out;
}

Result<std::string> FakeDockerEngine::CreateContainer(const ContainerSpec& spec) {
  if (!create_error.ok()) return create_error;
  Behaviour b = behaviour(spec);
  std::lock_guard lock(mu_);
  bool found = false;
  for (const auto& [name, image] : images_) {
    found = found || image.id == spec.image || name == spec.image;
  }
  if (!found) return Status(Code::kNotFound, "No such image: " + spec.image);
  std::string id = "container" + std::to_string(++next_id_);
  containers_[id] = Container{spec, b};
  created_.push_back(spec);
  return id;
}

Status FakeDockerEngine::AttachContainer(const std::string& id,
                                         const std::function<void()>& attached,
                                         const ByteSink& sink, std::stop_token stop) {
  {
    std::lock_guard lock(mu_);
    if (!containers_.count(id)) return Status(Code::kNotFound, "No such container: " + id);
  }
  attached();
  std::string output;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [&] {
      return !containers_.count(id) || containers_[id].state != State::kCreated;
    });
    if (stop.stop_requested()) return Status(Code::kCancelled, "attach cancelled");
    if (!containers_.count(id)) return Status::Ok();
    output = containers_[id].behaviour.output;
  }
  if (!output.empty()) {
    if (Status s = sink(output); !s.ok()) return s;
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, stop,
           [&] { return !containers_.count(id) || containers_[id].state == State::kExited; });
  return Status::Ok();
}

Status FakeDockerEngine::StartContainer(const std::string& id) {
  if (!start_error.ok()) return start_error;
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return Status(Code::kNotFound, "No such container: " + id);
  Container& c = it->second;
  c.state = State::kRunning;
  if (!c.behaviour.run_until_killed) {
    c.state = State::kExited;
    c.exit_code = c.behaviour.exit_code;
  }
  cv_.notify_all();
  return Status::Ok();
}

Result<int64_t> FakeDockerEngine::WaitContainer(const std::string& id, std::stop_token stop) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, stop,
           [&] { return !containers_.count(id) || containers_[id].state == State::kExited; });
  if (stop.stop_requested()) return Status(Code::kCancelled, "wait cancelled");
  if (!containers_.count(id)) return Status(Code::kNotFound, "No such container: " + id);
  return containers_[id].exit_code;
}

Status FakeDockerEngine::KillContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  ++kills_;
  auto it = containers_.find(id);
  if (it == containers_.end()) return Status(Code::kNotFound, "No such container: " + id);
  if (it->second.state == State::kRunning) {
    it->second.state = State::kExited;
    it->second.exit_code = 137;
  }
  cv_.notify_all();
  return Status::Ok();
}

Status FakeDockerEngine::RemoveContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  if (!remove_container_error.ok()) return remove_container_error;
  containers_.erase(id);
  cv_.notify_all();
  return Status::Ok();
}

Result<std::vector<ContainerInfo>> FakeDockerEngine::ListContainers(
    const std::vector<std::string>& labels) {
  std::lock_guard lock(mu_);
  std::vector<ContainerInfo> out;
  for (const auto& [id, c] : containers_) {
    const char* state = c.state == State::kCreated   ? "created"
                        : c.state == State::kRunning ? "running"
                                                     : "exited";
    if (MatchesLabels(c.spec.labels, labels)) out.push_back({id, c.spec.image, state, c.spec.labels, 0});
  }
  return out;
}

Result<PathStat> FakeDockerEngine::GetArchive(const std::string& id, const std::string& path,
                                              const ByteSink& sink) {
  std::map<std::string, Node> entries;  // tar name -> node
  PathStat stat;
  {
    std::lock_guard lock(mu_);
    if (!containers_.count(id)) return Status(Code::kNotFound, "No such container: " + id);
    auto root = files_.find(path);
    if (root == files_.end()) {
      return Status(Code::kNotFound,
                    "Could not find the file " + path + " in container " + id);
    }
    std::string base = Basename(path);
    stat.name = base;
    if (root->second.type == Node::Type::kDir) stat.mode = 1u << 31;
    if (root->second.type == Node::Type::kSymlink) stat.mode = 1u << 27;
    entries[base] = root->second;
    if (root->second.type == Node::Type::kDir) {
      for (const auto& [p, node] : files_) {
        if (p.rfind(path + "/", 0) == 0) entries[base + p.substr(path.size())] = node;
      }
    }
  }
  TarBuilder tar;
  for (const auto& [name, node] : entries) {  // std::map order: parents before children
    if (node.type == Node::Type::kDir) tar.AddDir(name);
    else if (node.type == Node::Type::kSymlink) tar.AddSymlink(name, node.content);
    else tar.AddFile(name, node.content);
  }
  auto bytes = tar.Finish();
  if (!bytes.ok()) return bytes.status();
  if (Status s = sink(*bytes); !s.ok()) return s;
  return stat;
}

Result<std::string> FakeDockerEngine::CreateNetwork(
    const std::string& name, const std::map<std::string, std::string>& labels) {
  std::lock_guard lock(mu_);
  std::string id = "network" + std::to_string(++next_id_);
  networks_[id] = {id, name, labels, "127.0.0.1", "127.0.0.0/8"};
  return id;
}

Result<NetworkInfo> FakeDockerEngine::InspectNetwork(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = networks_.find(id);
  if (it == networks_.end()) return Status(Code::kNotFound, "no such network " + id);
  return it->second;
}

Status FakeDockerEngine::RemoveNetwork(const std::string& id) {
  std::lock_guard lock(mu_);
  networks_.erase(id);
  return Status::Ok();
}

Result<std::vector<NetworkInfo>> FakeDockerEngine::ListNetworks(
    const std::vector<std::string>& labels) {
  std::lock_guard lock(mu_);
  std::vector<NetworkInfo> out;
  for (const auto& [id, n] : networks_) {
    if (MatchesLabels(n.labels, labels)) out.push_back(n);
  }
  return out;
}

Result<VolumeInfo> FakeDockerEngine::CreateVolume(
    const std::string& name, const std::map<std::string, std::string>& labels) {
  std::lock_guard lock(mu_);
  volumes_[name] = {name, "/fake/volumes/" + name, labels};
  return volumes_[name];
}

Status FakeDockerEngine::RemoveVolume(const std::string& name) {
  std::lock_guard lock(mu_);
  volumes_.erase(name);
  return Status::Ok();
}

Result<std::vector<VolumeInfo>> FakeDockerEngine::ListVolumes(
    const std::vector<std::string>& labels) {
  std::lock_guard lock(mu_);
  std::vector<VolumeInfo> out;
  for (const auto& [name, v] : volumes_) {
    if (MatchesLabels(v.labels, labels)) out.push_back(v);
  }
  return out;
}

}  // namespace docker_worker::testing

// An in-memory DockerEngine for unit tests of logic (never instead of the real engine).
//
// Images: AddImage(name) makes a name inspectable; PullImage succeeds for names registered with
// AddPullable and fails with `pull_error` otherwise (and records the registry auth it got). Containers: CreateContainer records the
// spec and asks `behaviour` what the container will do. A started container writes its output
// to attached readers and exits at once with its exit code, or (run_until_killed) waits for
// KillContainer, which makes it exit with 137. Files: AddFile/AddDir/AddSymlink describe one
// filesystem shared by every container, served as tar by GetArchive. Label filters of the List
// calls work as the engine's; RemoveImage takes a name or an id and, like the engine, refuses
// an image a container (any state) uses. LoadImage reads the whole archive and makes every
// RepoTags entry of its manifest.json inspectable (id: "sha256:" + the SHA-256 of the manifest's
// Config name), or fails with `load_error`. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "docker_worker/docker_engine.h"

namespace docker_worker::testing {

class FakeDockerEngine final : public DockerEngine {
 public:
  struct Behaviour {
    std::string output;
    int64_t exit_code = 0;
    bool run_until_killed = false;
  };

  std::function<Behaviour(const ContainerSpec&)> behaviour = [](const ContainerSpec&) {
    return Behaviour{};
  };
  Status ping_status;
  Status pull_error = Status(Code::kNotFound, "manifest unknown");
  Status create_error;
  Status start_error;
  Status remove_container_error;  // RemoveContainer fails with it (the container stays)
  Status load_error;

  // The image's own Entrypoint and Cmd are reported by InspectImage (by name or by id).
  void AddImage(const std::string& name, const std::string& id = "sha256:fake",
                std::vector<std::string> entrypoint = {}, std::vector<std::string> cmd = {});
  void AddPullable(const std::string& repository_tag);
  void AddFile(const std::string& path, const std::string& content);
  void AddDir(const std::string& path);
  void AddSymlink(const std::string& path, const std::string& target);

  // Observations.
  std::vector<ContainerSpec> created() const;
  struct PutArchiveCall {
    std::string container_id, dir, tar;
    bool before_start = false;  // the container had not been started yet
  };
  std::vector<PutArchiveCall> put_archives() const;
  Status put_archive_error;
  std::set<std::string> live_containers() const;  // created and not removed
  int kills() const;
  int pulls() const;
  std::vector<std::string> pull_auths() const;  // the registry_auth of every PullImage call
  std::vector<std::string> removed_images() const;  // as RemoveImage was asked, in order
  std::vector<std::string> image_names() const;     // names InspectImage knows
  int loads() const;  // LoadImage calls that read their archive to the end
  // Blocks until some container is running.
  void WaitUntilRunning();

  std::string Endpoint() const override { return "fake://engine"; }
  Status Ping() override { return ping_status; }
  Result<ImageInfo> InspectImage(const std::string& name) override;
  Status PullImage(const std::string& image, const std::string& tag,
                   const std::string& registry_auth,
                   const std::function<void(const PullEvent&)>& progress,
                   std::stop_token stop) override;
  Status RemoveImage(const std::string& name) override;
  Status LoadImage(const ByteSource& tar, std::stop_token stop) override;
  Result<std::string> CreateContainer(const ContainerSpec& spec) override;
  Status AttachContainer(const std::string& id, const std::function<void()>& attached,
                         const ByteSink& sink, std::stop_token stop) override;
  Status StartContainer(const std::string& id) override;
  Result<int64_t> WaitContainer(const std::string& id, std::stop_token stop) override;
  Status KillContainer(const std::string& id) override;
  Status RemoveContainer(const std::string& id) override;
  Result<std::vector<ContainerInfo>> ListContainers(
      const std::vector<std::string>& labels) override;
  Result<PathStat> GetArchive(const std::string& id, const std::string& path,
                              const ByteSink& sink) override;
  Status PutArchive(const std::string& id, const std::string& dir, std::string_view tar) override;
  Result<std::string> CreateNetwork(const std::string& name,
                                    const std::map<std::string, std::string>& labels) override;
  Status RemoveNetwork(const std::string& id) override;
  Result<NetworkInfo> InspectNetwork(const std::string& id) override;

  Result<std::vector<NetworkInfo>> ListNetworks(const std::vector<std::string>& labels) override;
  Result<VolumeInfo> CreateVolume(const std::string& name,
                                  const std::map<std::string, std::string>& labels) override;
  Status RemoveVolume(const std::string& name) override;
  Result<std::vector<VolumeInfo>> ListVolumes(const std::vector<std::string>& labels) override;

 private:
  enum class State { kCreated, kRunning, kExited };
  struct Container {
    ContainerSpec spec;
    Behaviour behaviour;
    State state = State::kCreated;
    int64_t exit_code = 0;
  };
  struct Node {
    enum class Type { kFile, kDir, kSymlink } type;
    std::string content;  // file content or symlink target
  };

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  struct Image {
    std::string id;
    std::vector<std::string> entrypoint, cmd;
  };
  std::map<std::string, Image> images_;  // by name
  std::vector<PutArchiveCall> put_archives_;
  std::set<std::string> pullable_;
  std::map<std::string, Container> containers_;
  std::vector<ContainerSpec> created_;
  std::map<std::string, Node> files_;
  std::map<std::string, NetworkInfo> networks_;
  std::map<std::string, VolumeInfo> volumes_;
  std::vector<std::string> removed_images_;
  int next_id_ = 0;
  int kills_ = 0;
  int pulls_ = 0;
  std::vector<std::string> pull_auths_;
  int loads_ = 0;
};

}  // namespace docker_worker::testing

// The real DockerEngine: the Docker Engine API (pinned to v1.41) over the engine's unix socket.
#pragma once

#include <chrono>
#include <string>

#include "docker_worker/docker_engine.h"
#include "docker_worker/http_client.h"

namespace docker_worker {

// DockerEngine over HTTP on a unix socket, one libcurl connection per concurrent call (reused
// between sequential calls). Every verb is one Engine API request (AttachContainer adds an
// inspect to learn whether the stream is multiplexed) and follows the error mapping of
// DockerEngine; the engine's JSON {"message": ...} becomes the Status message, and an unreachable
// socket is kUnavailable "cannot reach the Docker engine at unix://PATH: <curl error>".
// Thread-safe; never throws; nothing is logged. Image references and object ids that could not
// be a valid Docker name (control characters, "..", ...) are rejected as kInvalidArgument before
// any request, since they may come from task payloads. Output of non-TTY containers is
// demultiplexed (stdout and stderr frames merged, in order) before it reaches the sink.
// WaitContainer uses the engine's "not-running" condition: call it after StartContainer returned,
// since a container that was created but never started counts as not running.
// PullImage gives up on a pull whose progress stream stays silent for `pull_idle_timeout`
// (rounded up to whole seconds; the engine sends nothing while a registry stalls) with
// kDeadlineExceeded "no pull progress from the Docker engine for N s"; closing the request
// makes the engine abandon the pull.
class EngineApi final : public DockerEngine {
 public:
  explicit EngineApi(std::string socket_path,
                     std::chrono::milliseconds pull_idle_timeout = std::chrono::seconds(60));

  // The socket named by DOCKER_HOST=unix:///path; /var/run/docker.sock when DOCKER_HOST is unset
  // or not a unix:// address.
  static std::string SocketFromEnvironment();

  std::string Endpoint() const override;
  Status Ping() override;

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
  // A request to `path_and_query` (under /v1.41) with an optional JSON body.
  HttpRequest MakeRequest(const std::string& method, const std::string& path_and_query,
                          std::string json_body = "") const;
  // Sends `request`; a non-2xx response becomes an error Status unless its code is in `ok_codes`.
  Result<HttpResponse> Call(const HttpRequest& request, std::initializer_list<long> ok_codes = {});

  std::string socket_path_;
  std::chrono::milliseconds pull_idle_timeout_;
  HttpClient http_;
};

}  // namespace docker_worker

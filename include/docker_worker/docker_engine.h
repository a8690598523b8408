// The Docker engine, behind one interface (a seam): the Engine API over the unix socket in
// production (EngineApi), an in-memory engine in unit tests (test/fakes/fake_docker_engine.h).
//
// Verbs are grouped by resource (image, container, network, volume). Every call is synchronous
// and safe to call concurrently from several threads; the blocking ones (PullImage,
// AttachContainer, WaitContainer, GetArchive) may run at the same time as any other call on
// the same container (e.g. KillContainer while WaitContainer blocks). Errors:
//   kNotFound     the image/container/path does not exist (engine said 404)
//   kUnavailable  the engine could not be reached (message names the socket)
//   kCancelled    `stop` was requested during a streaming call
//   kConflict     the engine refused because of the object's state (409)
//   kPermissionDenied  a registry refused a pull (no or wrong credentials, access denied; the
//                 engine answers 500 or an error line, EngineApi classifies the message)
//   kDeadlineExceeded  a pull made no progress for the engine's pull idle timeout
//   other codes   any other engine error, with the engine's own message
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/status.h"

namespace docker_worker {

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  int64_t size = 0;
  std::vector<std::string> entrypoint;  // Config.Entrypoint (empty: none)
  std::vector<std::string> cmd;         // Config.Cmd (empty: none)
};

// One decoded line of the engine's pull progress stream.
struct PullEvent {
  std::string id;        // layer id or tag, may be empty
  std::string status;    // "Pulling fs layer", "Downloading", "Pull complete", ...
  std::string progress;  // the engine's progress bar text, may be empty
  int64_t current = 0;   // bytes, when the engine reports them
  int64_t total = 0;
};

struct DeviceMapping {
  std::string path_on_host;
  std::string path_in_container;
  std::string cgroup_permissions = "rwm";
};

// What to create. Empty fields are left out of the request (engine defaults apply).
struct ContainerSpec {
  std::string image;                    // id or name; never pulled implicitly
  std::vector<std::string> cmd;         // empty: the image's CMD
  std::optional<std::vector<std::string>> entrypoint;
  std::vector<std::string> env;         // "NAME=value", in order
  std::map<std::string, std::string> labels;
  bool tty = true;                      // merged stdout/stderr, CRLF line ends
  bool privileged = false;
  int64_t shm_size = 0;
  std::vector<std::string> binds;       // "src:dst[:ro]"
  std::vector<std::string> links;       // "container:alias"
  std::vector<std::string> extra_hosts; // "name:ip"
  std::vector<std::string> cap_add;
  std::vector<DeviceMapping> devices;
  std::string network_mode;             // "" = engine default (bridge)
  std::string log_driver;               // "" = engine default; "none" keeps no copy of output
  std::string name;                     // "" = engine-chosen name
};

struct ContainerInfo {
  std::string id;
  std::string image_id;
  std::string state;  // "created", "running", "exited", ...
  std::map<std::string, std::string> labels;
  int64_t created = 0;  // epoch seconds
};

// What the archive API says about the requested path (the X-Docker-Container-Path-Stat header).
struct PathStat {
  std::string name;
  int64_t size = 0;
  uint32_t mode = 0;  // Go os.FileMode bits: 1<<31 directory, 1<<27 symlink
  std::string link_target;
  bool is_dir() const { return mode & (1u << 31); }
  bool is_symlink() const { return mode & (1u << 27); }
};

struct NetworkInfo {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
  std::string gateway;  // IPv4 gateway (the host's address on the network); InspectNetwork only
  std::string subnet;   // e.g. "172.19.0.0/16"; InspectNetwork only
};

struct VolumeInfo {
  std::string name;
  std::string mountpoint;
  std::map<std::string, std::string> labels;
};

// Receives bytes in order; a non-ok Status stops the transfer and is returned by the call.
using ByteSink = std::function<Status(std::string_view)>;
// Supplies bytes in order: copies at most `max` bytes into `buf` and returns how many; 0 means
// the stream is complete. An error status aborts the transfer and is returned by the call.
using ByteSource = std::function<Result<size_t>(char* buf, size_t max)>;

class DockerEngine {
 public:
  virtual ~DockerEngine() = default;

  // A short human name for error messages, e.g. "unix:///var/run/docker.sock".
  virtual std::string Endpoint() const = 0;
  virtual Status Ping() = 0;

  // --- images
  virtual Result<ImageInfo> InspectImage(const std::string& name) = 0;
  // Pulls `image:tag`. `registry_auth` is the X-Registry-Auth header value ("" for none). Each
  // progress line goes to `progress`. An error line in the stream fails the call.
  virtual Status PullImage(const std::string& image, const std::string& tag,
                           const std::string& registry_auth,
                           const std::function<void(const PullEvent&)>& progress,
                           std::stop_token stop) = 0;
  virtual Status RemoveImage(const std::string& name) = 0;
  // Loads the images of a `docker save` tar archive read from `tar` (POST /images/load) under
  // the repository tags its manifest names. The archive is streamed, never held whole. An error
  // of `tar` aborts the upload and is returned; an error line of the engine fails the call.
  virtual Status LoadImage(const ByteSource& tar, std::stop_token stop) = 0;

  // --- containers
  virtual Result<std::string> CreateContainer(const ContainerSpec& spec) = 0;
  // Streams the container's output to `sink` until the stream ends (the container exited) or
  // `stop` is requested. `attached` runs once the stream is established and before any output,
  // so the caller may then start the container without losing its first bytes.
  virtual Status AttachContainer(const std::string& id, const std::function<void()>& attached,
                                 const ByteSink& sink, std::stop_token stop) = 0;
  virtual Status StartContainer(const std::string& id) = 0;
  // Blocks until the container exits; returns its exit code.
  virtual Result<int64_t> WaitContainer(const std::string& id, std::stop_token stop) = 0;
  virtual Status KillContainer(const std::string& id) = 0;
  // Force-removes the container and its anonymous volumes. A missing container is ok.
  virtual Status RemoveContainer(const std::string& id) = 0;
  // Containers (any state) carrying every label in `labels` ("key" or "key=value").
  virtual Result<std::vector<ContainerInfo>> ListContainers(
      const std::vector<std::string>& labels) = 0;
  // Streams a tar archive of `path` inside the (possibly stopped) container to `sink`.
  virtual Result<PathStat> GetArchive(const std::string& id, const std::string& path,
                                      const ByteSink& sink) = 0;
  // Extracts the tar archive `tar` into the existing directory `dir` of the (created, possibly
  // not yet started) container, keeping the entries' modes. The bytes go only to the engine.
  virtual Status PutArchive(const std::string& id, const std::string& dir,
                            std::string_view tar) = 0;

  // --- networks
  virtual Result<std::string> CreateNetwork(const std::string& name,
                                            const std::map<std::string, std::string>& labels) = 0;
  virtual Status RemoveNetwork(const std::string& id) = 0;  // a missing network is ok
  virtual Result<NetworkInfo> InspectNetwork(const std::string& id) = 0;
  virtual Result<std::vector<NetworkInfo>> ListNetworks(const std::vector<std::string>& labels) = 0;

  // --- volumes
  virtual Result<VolumeInfo> CreateVolume(const std::string& name,
                                          const std::map<std::string, std::string>& labels) = 0;
  virtual Status RemoveVolume(const std::string& name) = 0;  // a missing volume is ok
  virtual Result<std::vector<VolumeInfo>> ListVolumes(const std::vector<std::string>& labels) = 0;
};

}  // namespace docker_worker

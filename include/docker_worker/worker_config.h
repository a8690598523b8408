// Worker configuration: upstream's keys and defaults, layered defaults < file.
//
// Load() merges a JSON file over the built-in defaults (objects merge key by key, anything else
// replaces), validates the result against schemas/config.schema.json (every bad key is named in
// the error, one per line) and reads the typed fields below. The merged document stays
// available (raw()) for features that read their own keys. Immutable after loading; share it
// freely between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "docker_worker/backoff.h"
#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker {

struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string email;
};

struct WorkerConfig {
  // identity
  std::string provisioner_id;
  std::string worker_type;
  std::string worker_group;
  std::string worker_id;
  std::string worker_node_type;
  std::string instance_id;
  std::string instance_type;
  std::string region;
  std::string public_ip;
  std::string private_ip;
  std::string host;
  std::string hostname;  // this machine's OS host name (log header; default workerId)
  std::string worker_location;  // JSON text from worker-runner; "" if unset
  std::string root_url;
  std::string client_id;
  std::string access_token;
  std::string certificate;

  // capacity and timing
  int capacity = 1;
  int reclaim_divisor = 2;
  int64_t poll_interval_ms = 5000;

  // docker
  std::string docker_socket;  // "" = DOCKER_HOST or /var/run/docker.sock

  // live log server (daemon)
  std::string live_log_listen_address = "0.0.0.0";
  int live_log_port = 0;               // 0: any free port
  std::string live_log_public_hostname;  // "" = `host`
  bool allow_privileged = false;
  std::string default_registry = "registry.hub.docker.com";
  int pull_max_attempts = 5;
  int64_t pull_delay_factor_ms = 15000;
  double pull_randomization_factor = 0.25;
  // A pull whose progress stream is silent this long is abandoned (and retried as transient).
  int64_t pull_idle_timeout_ms = 60000;
  // An artifact image download that receives nothing for this long fails (then is retried).
  int64_t image_download_idle_timeout_ms = 60000;
  std::map<std::string, RegistryCredentials> registries;

  // features: name -> enabled on this worker
  std::map<std::string, bool> features;
  // deviceManagement: device name -> tasks may ask for it (cpu off, the others on by default)
  std::map<std::string, bool> devices;
  bool caches_enabled = true;  // cache.enabled
  std::string cache_volume_path = "/mnt/var/cache/docker-worker";  // cache.volumeCachePath

  // garbage collection and disk (daemon)
  int64_t image_expiration_ms = 7200000;  // garbageCollection.imageExpiration
  int64_t gc_interval_ms = 60000;         // garbageCollection.interval
  int64_t diskspace_threshold = 30000000000;  // capacityManagement.diskspaceThreshold, bytes
  std::string docker_volume = "/mnt";     // dockerVolume: the mount whose free space counts
  // Port of each task's taskcluster proxy on its network's gateway. Not a config key: tasks
  // expect http://taskcluster/ (port 80); tests set 0 (any free port).
  int taskcluster_proxy_port = 80;

  // artifacts and keys
  std::vector<std::string> skip_compression_extensions;
  std::string ed25519_signing_key_location;
  std::string docker_worker_private_key;

  // The merged configuration document.
  std::shared_ptr<const json::Document> raw;

  bool FeatureEnabled(const std::string& name) const;
  bool DeviceEnabled(const std::string& name) const;
  std::string WorkerPool() const { return provisioner_id + "/" + worker_type; }
  // Delay before image pull / artifact image download retries: delayFactor·2ⁿ ± randomization.
  Backoff PullBackoff() const {
    return Backoff{.base_ms = static_cast<double>(pull_delay_factor_ms),
                   .factor = 2,
                   .jitter = pull_randomization_factor};
  }

  // Defaults only.
  static WorkerConfig Defaults();
  // Defaults < `path` (JSON). Errors name the file and every bad key.
  static Result<WorkerConfig> Load(const std::string& path);
  // Defaults < `overrides` (already parsed).
  static Result<WorkerConfig> FromJson(const json::Value& overrides);
};

}  // namespace docker_worker

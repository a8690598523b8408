#include "docker_worker/worker_config.h"

#include <unistd.h>

#include "docker_worker/schema_validator.h"

namespace docker_worker {
namespace {

// Upstream's defaults (monorepo config.yml `defaults`), for the keys this worker reads.
constexpr const char* kDefaults = R"({
  "provisionerId": "local-provisioner",
  "workerType": "docker-worker",
  "workerGroup": "local",
  "workerNodeType": "standalone",
  "instanceId": "standalone",
  "region": "none",
  "host": "localhost",
  "capacity": 1,
  "task": {"reclaimDivisor": 2},
  "taskQueue": {"pollInterval": 5000},
  "dockerConfig": {
    "allowPrivileged": false,
    "defaultRegistry": "registry.hub.docker.com",
    "maxAttempts": 5,
    "delayFactor": 15000,
    "randomizationFactor": 0.25,
    "pullIdleTimeout": 60000,
    "imageDownloadIdleTimeout": 60000
  },
  "registries": {},
  "features": {
    "localLiveLog": {"enabled": true},
    "artifacts": {"enabled": true},
    "chainOfTrust": {"enabled": true},
    "bulkLog": {"enabled": false},
    "taskclusterProxy": {"enabled": true},
    "dind": {"enabled": true},
    "dockerSave": {"enabled": true},
    "interactive": {"enabled": true},
    "allowPtrace": {"enabled": true}
  },
  "deviceManagement": {
    "cpu": {"enabled": false},
    "loopbackAudio": {"enabled": true},
    "loopbackVideo": {"enabled": true},
    "hostSharedMemory": {"enabled": true},
    "kvm": {"enabled": true}
  },
  "cache": {"enabled": true, "volumeCachePath": "/mnt/var/cache/docker-worker"},
  "garbageCollection": {"imageExpiration": 7200000, "containerExpiration": 1800000,
                        "interval": 60000},
  "capacityManagement": {"diskspaceThreshold": 30000000000},
  "dockerVolume": "/mnt",
  "artifacts": {
    "skipCompressionExtensions": [".7z", ".bz2", ".deb", ".dmg", ".flv", ".gif", ".gz",
      ".jpeg", ".jpg", ".png", ".swf", ".tbz", ".tgz", ".webp", ".whl", ".woff", ".woff2",
      ".xz", ".zip", ".zst", "lz4"]
  },
  "ed25519SigningKeyLocation": "/etc/docker-worker-ed25519-cot-signing-key.key"
})";

void Merge(json::Value& base, const json::Value& over, json::Allocator& alloc) {
  if (!base.IsObject() || !over.IsObject()) {
    base.CopyFrom(over, alloc);
    return;
  }
  for (const auto& m : over.GetObject()) {
    auto it = base.FindMember(m.name);
    if (it != base.MemberEnd() && it->value.IsObject() && m.value.IsObject()) {
      Merge(it->value, m.value, alloc);
    } else if (it != base.MemberEnd()) {
      it->value.CopyFrom(m.value, alloc);
    } else {
      base.AddMember(json::Value(m.name, alloc), json::Value(m.value, alloc), alloc);
    }
  }
}

std::string Str(const json::Value& doc, std::string_view key) {
  return json::GetString(doc, key).value_or("");
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

WorkerConfig Extract(std::shared_ptr<json::Document> doc) {
  const json::Value& d = *doc;
  WorkerConfig c;
  c.provisioner_id = Str(d, "provisionerId");
  c.worker_type = Str(d, "workerType");
  c.worker_group = Str(d, "workerGroup");
  c.hostname = Hostname();
  c.worker_id = json::GetString(d, "workerId").value_or(c.hostname);
  c.worker_node_type = Str(d, "workerNodeType");
  c.instance_id = Str(d, "instanceId");
  c.instance_type = Str(d, "instanceType");
  c.region = Str(d, "region");
  c.public_ip = Str(d, "publicIp");
  c.private_ip = Str(d, "privateIp");
  c.host = Str(d, "host");
  c.worker_location = Str(d, "workerLocation");
  c.root_url = Str(d, "rootUrl");
  if (const auto* tc = json::FindObject(d, "taskcluster")) {
    c.client_id = Str(*tc, "clientId");
    c.access_token = Str(*tc, "accessToken");
    c.certificate = Str(*tc, "certificate");
  }
  c.capacity = static_cast<int>(json::GetInt(d, "capacity").value_or(1));
  if (const auto* t = json::FindObject(d, "task")) {
    c.reclaim_divisor = static_cast<int>(json::GetInt(*t, "reclaimDivisor").value_or(2));
  }
  if (const auto* t = json::FindObject(d, "taskQueue")) {
    c.poll_interval_ms = json::GetInt(*t, "pollInterval").value_or(5000);
  }
  c.docker_socket = Str(d, "dockerSocket");
  if (const auto* ll = json::FindObject(d, "liveLog")) {
    c.live_log_listen_address =
        json::GetString(*ll, "listenAddress").value_or(c.live_log_listen_address);
    c.live_log_port = static_cast<int>(json::GetInt(*ll, "port").value_or(0));
    c.live_log_public_hostname = Str(*ll, "publicHostname");
  }
  if (c.live_log_public_hostname.empty()) c.live_log_public_hostname = c.host;
  if (const auto* dc = json::FindObject(d, "dockerConfig")) {
    c.allow_privileged = json::GetBool(*dc, "allowPrivileged").value_or(false);
    c.default_registry = json::GetString(*dc, "defaultRegistry").value_or(c.default_registry);
    c.pull_max_attempts = static_cast<int>(json::GetInt(*dc, "maxAttempts").value_or(5));
    c.pull_delay_factor_ms = json::GetInt(*dc, "delayFactor").value_or(15000);
    if (const auto* r = json::Find(*dc, "randomizationFactor"); r && r->IsNumber()) {
      c.pull_randomization_factor = r->GetDouble();
    }
    c.pull_idle_timeout_ms = json::GetInt(*dc, "pullIdleTimeout").value_or(c.pull_idle_timeout_ms);
    c.image_download_idle_timeout_ms =
        json::GetInt(*dc, "imageDownloadIdleTimeout").value_or(c.image_download_idle_timeout_ms);
  }
  if (const auto* regs = json::FindObject(d, "registries")) {
    for (const auto& m : regs->GetObject()) {
      if (!m.value.IsObject()) continue;
      c.registries[m.name.GetString()] = {Str(m.value, "username"), Str(m.value, "password"),
                                          Str(m.value, "email")};
    }
  }
  if (const auto* fs = json::FindObject(d, "features")) {
    for (const auto& m : fs->GetObject()) {
      c.features[m.name.GetString()] =
          m.value.IsObject() && json::GetBool(m.value, "enabled").value_or(false);
    }
  }
  if (const auto* dm = json::FindObject(d, "deviceManagement")) {
    for (const auto& m : dm->GetObject()) {
      c.devices[m.name.GetString()] =
          m.value.IsObject() && json::GetBool(m.value, "enabled").value_or(false);
    }
  }
  if (const auto* cache = json::FindObject(d, "cache")) {
    c.caches_enabled = json::GetBool(*cache, "enabled").value_or(true);
    c.cache_volume_path = json::GetString(*cache, "volumeCachePath").value_or(c.cache_volume_path);
  }
  if (const auto* gc = json::FindObject(d, "garbageCollection")) {
    c.image_expiration_ms = json::GetInt(*gc, "imageExpiration").value_or(c.image_expiration_ms);
    c.gc_interval_ms = json::GetInt(*gc, "interval").value_or(c.gc_interval_ms);
  }
  if (const auto* cm = json::FindObject(d, "capacityManagement")) {
    c.diskspace_threshold =
        json::GetInt(*cm, "diskspaceThreshold").value_or(c.diskspace_threshold);
  }
  c.docker_volume = json::GetString(d, "dockerVolume").value_or(c.docker_volume);
  if (const auto* a = json::FindObject(d, "artifacts")) {
    if (const auto* exts = json::FindArray(*a, "skipCompressionExtensions")) {
      for (const auto& e : exts->GetArray()) {
        if (e.IsString()) c.skip_compression_extensions.push_back(e.GetString());
      }
    }
  }
  c.ed25519_signing_key_location = Str(d, "ed25519SigningKeyLocation");
  c.docker_worker_private_key = Str(d, "dockerWorkerPrivateKey");
  c.raw = std::move(doc);
  return c;
}

}  // namespace

bool WorkerConfig::DeviceEnabled(const std::string& name) const {
  auto it = devices.find(name);
  return it != devices.end() && it->second;
}

bool WorkerConfig::FeatureEnabled(const std::string& name) const {
  auto it = features.find(name);
  return it != features.end() && it->second;
}

WorkerConfig WorkerConfig::Defaults() {
  auto doc = std::make_shared<json::Document>();
  doc->Parse(kDefaults);
  return Extract(std::move(doc));
}

Result<WorkerConfig> WorkerConfig::FromJson(const json::Value& overrides) {
  if (!overrides.IsObject()) {
    return Status(Code::kInvalidArgument, "the configuration must be a JSON object");
  }
  auto doc = std::make_shared<json::Document>();
  doc->Parse(kDefaults);
  Merge(*doc, overrides, doc->GetAllocator());
  static const Result<SchemaValidator> validator = SchemaValidator::FromEmbedded("config");
  if (!validator.ok()) return validator.status();
  auto errors = validator->Validate(*doc);
  if (!errors.empty()) {
    std::string message = "invalid configuration:";
    for (const auto& e : errors) message += "\n  " + FormatValidationError(e);
    return Status(Code::kInvalidArgument, message);
  }
  return Extract(std::move(doc));
}

Result<WorkerConfig> WorkerConfig::Load(const std::string& path) {
  auto doc = json::ParseFile(path);
  if (!doc.ok()) return doc.status();
  auto config = FromJson(*doc);
  if (!config.ok()) return config.status().Prefixed(path + ": ");
  return config;
}

}  // namespace docker_worker

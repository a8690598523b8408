#include "docker_worker/engine_api.h"

#include <array>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <utility>

#include "docker_worker/base64.h"
#include "docker_worker/json.h"

namespace docker_worker {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;

constexpr char kBaseUrl[] = "http://docker/v1.41";
constexpr char kDefaultSocket[] = "/var/run/docker.sock";
// A safety net against a wedged engine for calls that should take milliseconds.
constexpr milliseconds kControlTimeout = minutes(5);
// Streaming calls that make no progress for this long are abandoned.
constexpr milliseconds kArchiveIdleTimeout = minutes(5);
// An image load that moves no byte for this long (upload, or the engine's answer) is abandoned.
constexpr milliseconds kLoadIdleTimeout = minutes(10);
// Longest pull progress line kept; longer lines are dropped (the engine never sends them).
constexpr size_t kMaxPullLine = 1 << 20;

// Case-insensitive: registries and engine versions differ in capitalisation.
bool Contains(const std::string& haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

// The code for an engine error message with HTTP `status`.
Code ClassifyEngineError(long status, const std::string& message) {
  switch (status) {
    case 400:
      return Code::kInvalidArgument;
    case 401:
    case 403:
      return Code::kPermissionDenied;
    case 404:
      return Code::kNotFound;
    case 409:
      return Code::kConflict;
    default:
      break;
  }
  // Registry failures come back as 500 (or inside a 200 pull stream).
  if (Contains(message, "no basic auth credentials") || Contains(message, "unauthorized") ||
      Contains(message, "authentication required") || Contains(message, "denied")) {
    return Code::kPermissionDenied;
  }
  if (Contains(message, "invalid reference")) return Code::kInvalidArgument;
  return Code::kInternal;
}

// Pull errors: a missing repository or tag is kNotFound whatever the transport said.
Status PullError(Status status) {
  if (status.code() != Code::kInternal) return status;
  const std::string& m = status.message();
  if (Contains(m, "manifest unknown") || Contains(m, "not found") ||
      Contains(m, "does not exist")) {
    return Status(Code::kNotFound, m);
  }
  return status;
}

// The engine's error for a non-2xx response: its {"message": ...}, else the body text.
Status EngineError(const HttpResponse& response) {
  std::string message;
  if (auto doc = json::Parse(response.body); doc.ok()) {
    message = json::GetString(*doc, "message").value_or("");
  }
  if (message.empty()) {
    message = response.body;
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
      message.pop_back();
    }
  }
  if (message.empty()) message = "Docker engine answered HTTP " + std::to_string(response.status);
  Code code = ClassifyEngineError(response.status, message);
  return Status(code, std::move(message));
}

// Image references reach us from task payloads: accept only Docker's reference alphabet and no
// dot-segments, so a reference can never walk to another endpoint of the API.
Status CheckImageRef(const std::string& ref) {
  if (ref.empty() || ref.size() > 1024) {
    return Status(Code::kInvalidArgument, "invalid image reference \"" + ref + "\"");
  }
  for (char c : ref) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/' || c == ':' || c == '@')) {
      return Status(Code::kInvalidArgument, "invalid image reference \"" + ref + "\"");
    }
  }
  size_t start = 0;
  while (start <= ref.size()) {
    size_t end = ref.find('/', start);
    if (end == std::string::npos) end = ref.size();
    std::string_view segment(ref.data() + start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return Status(Code::kInvalidArgument, "invalid image reference \"" + ref + "\"");
    }
    start = end + 1;
  }
  return Status::Ok();
}

// Container ids/names, network ids/names and volume names: [A-Za-z0-9_.-], not a dot-segment.
Status CheckObjectId(const std::string& id, const char* what) {
  bool ok = !id.empty() && id.size() <= 256 && id != "." && id != "..";
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      ok = false;
    }
  }
  return ok ? Status::Ok()
            : Status(Code::kInvalidArgument, std::string("invalid ") + what + " \"" + id + "\"");
}

// "?filters={"label":[...]}" (URL-encoded), or "" when there is no label.
std::string LabelFilterQuery(const std::vector<std::string>& labels, char separator) {
  if (labels.empty()) return "";
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  json::Value list(rapidjson::kArrayType);
  for (const auto& label : labels) list.PushBack(json::Str(label, a), a);
  doc.AddMember("label", list, a);
  return std::string(1, separator) + "filters=" + UrlEscape(json::Serialize(doc));
}

json::Value StringArray(const std::vector<std::string>& items, json::Allocator& a) {
  json::Value list(rapidjson::kArrayType);
  for (const auto& item : items) list.PushBack(json::Str(item, a), a);
  return list;
}

json::Value StringMap(const std::map<std::string, std::string>& items, json::Allocator& a) {
  json::Value object(rapidjson::kObjectType);
  for (const auto& [k, v] : items) object.AddMember(json::Str(k, a), json::Str(v, a), a);
  return object;
}

std::map<std::string, std::string> ReadLabels(const json::Value& object, std::string_view key) {
  std::map<std::string, std::string> labels;
  if (const json::Value* l = json::FindObject(object, key)) {
    for (const auto& m : l->GetObject()) {
      if (m.name.IsString() && m.value.IsString()) {
        labels.emplace(std::string(m.name.GetString(), m.name.GetStringLength()),
                       std::string(m.value.GetString(), m.value.GetStringLength()));
      }
    }
  }
  return labels;
}

Result<json::Document> ParseBody(const HttpResponse& response, const char* what) {
  auto doc = json::Parse(response.body);
  if (!doc.ok()) return doc.status().Prefixed(std::string("Docker engine ") + what + ": ");
  return doc;
}

// Splits the pull progress stream into lines across arbitrary chunk boundaries and turns each
// into a PullEvent; an "error" line becomes the call's error.
class PullStream {
 public:
  explicit PullStream(const std::function<void(const PullEvent&)>& progress)
      : progress_(progress) {}

  Status Feed(std::string_view chunk) {
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view piece = chunk.substr(0, nl);
      if (!overlong_) {
        if (line_.size() + piece.size() > kMaxPullLine) {
          overlong_ = true;
          line_.clear();
        } else {
          line_.append(piece);
        }
      }
      if (nl == std::string_view::npos) break;
      chunk.remove_prefix(nl + 1);
      Status s = overlong_ ? Status::Ok() : Line(line_);
      line_.clear();
      overlong_ = false;
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status Finish() {
    Status s = overlong_ ? Status::Ok() : Line(line_);
    line_.clear();
    return s;
  }

 private:
  Status Line(const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return Status::Ok();
    auto doc = json::Parse(line);
    if (!doc.ok() || !doc->IsObject()) return Status::Ok();  // not ours to judge
    std::string error = json::GetString(*doc, "error").value_or("");
    if (error.empty()) {
      if (const json::Value* detail = json::FindObject(*doc, "errorDetail")) {
        error = json::GetString(*detail, "message").value_or("");
      }
    }
    if (!error.empty()) return PullError(Status(ClassifyEngineError(200, error), error));
    if (!progress_) return Status::Ok();
    PullEvent event;
    event.id = json::GetString(*doc, "id").value_or("");
    event.status = json::GetString(*doc, "status").value_or("");
    event.progress = json::GetString(*doc, "progress").value_or("");
    if (const json::Value* detail = json::FindObject(*doc, "progressDetail")) {
      event.current = json::GetInt(*detail, "current").value_or(0);
      event.total = json::GetInt(*detail, "total").value_or(0);
    }
    progress_(event);
    return Status::Ok();
  }

  const std::function<void(const PullEvent&)>& progress_;
  std::string line_;
  bool overlong_ = false;
};

// Demultiplexes the attach stream of a non-TTY container: frames of an 8-byte header
// (stream, 0, 0, 0, big-endian size) and a payload. Payloads go to the sink in order.
class Demultiplexer {
 public:
  explicit Demultiplexer(const ByteSink& sink) : sink_(sink) {}

  Status Feed(std::string_view chunk) {
    while (!chunk.empty()) {
      if (remaining_ == 0) {
        size_t take = std::min(chunk.size(), header_.size() - header_len_);
        std::copy_n(chunk.data(), take, header_.data() + header_len_);
        header_len_ += take;
        chunk.remove_prefix(take);
        if (header_len_ < header_.size()) break;
        header_len_ = 0;
        remaining_ = (static_cast<uint32_t>(static_cast<unsigned char>(header_[4])) << 24) |
                     (static_cast<uint32_t>(static_cast<unsigned char>(header_[5])) << 16) |
                     (static_cast<uint32_t>(static_cast<unsigned char>(header_[6])) << 8) |
                     static_cast<uint32_t>(static_cast<unsigned char>(header_[7]));
        continue;
      }
      size_t take = std::min<size_t>(chunk.size(), remaining_);
      Status s = sink_(chunk.substr(0, take));
      if (!s.ok()) return s;
      remaining_ -= take;
      chunk.remove_prefix(take);
    }
    return Status::Ok();
  }

 private:
  const ByteSink& sink_;
  std::array<char, 8> header_{};
  size_t header_len_ = 0;
  size_t remaining_ = 0;
};

}  // namespace

namespace {
HttpClientOptions EngineHttpOptions(const std::string& socket_path) {
  HttpClientOptions options;
  options.unix_socket_path = socket_path;
  options.peer_name = "the Docker engine";
  return options;
}
}  // namespace

EngineApi::EngineApi(std::string socket_path, milliseconds pull_idle_timeout)
    : socket_path_(std::move(socket_path)),
      pull_idle_timeout_(pull_idle_timeout),
      http_(EngineHttpOptions(socket_path_)) {}

std::string EngineApi::SocketFromEnvironment() {
  const char* host = std::getenv("DOCKER_HOST");
  constexpr std::string_view kScheme = "unix://";
  if (host && std::string_view(host).substr(0, kScheme.size()) == kScheme &&
      std::string_view(host).size() > kScheme.size()) {
    return std::string(host + kScheme.size());
  }
  return kDefaultSocket;
}

std::string EngineApi::Endpoint() const { return "unix://" + socket_path_; }

HttpRequest EngineApi::MakeRequest(const std::string& method, const std::string& path_and_query,
                                   std::string json_body) const {
  HttpRequest request;
  request.method = method;
  request.url = kBaseUrl + path_and_query;
  request.connect_timeout = std::chrono::seconds(30);
  request.total_timeout = kControlTimeout;
  if (!json_body.empty()) {
    request.headers.Set("Content-Type", "application/json");
    request.body = std::move(json_body);
  }
  return request;
}

Result<HttpResponse> EngineApi::Call(const HttpRequest& request,
                                     std::initializer_list<long> ok_codes) {
  Result<HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status();
  if (response->ok()) return response;
  for (long code : ok_codes) {
    if (response->status == code) return response;
  }
  return EngineError(*response);
}

Status EngineApi::Ping() {
  auto response = Call(MakeRequest("GET", "/_ping"));
  return response.ok() ? Status::Ok() : response.status();
}

// ---------------------------------------------------------------------------------- images

Result<ImageInfo> EngineApi::InspectImage(const std::string& name) {
  if (Status s = CheckImageRef(name); !s.ok()) return s;
  auto response = Call(MakeRequest("GET", "/images/" + name + "/json"));
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "image inspect");
  if (!doc.ok()) return doc.status();
  ImageInfo info;
  info.id = json::GetString(*doc, "Id").value_or("");
  info.size = json::GetInt(*doc, "Size").value_or(0);
  auto strings = [](const json::Value& object, std::string_view key) {
    std::vector<std::string> out;
    if (const json::Value* array = json::FindArray(object, key)) {
      for (const auto& t : array->GetArray()) {
        if (t.IsString()) out.emplace_back(t.GetString(), t.GetStringLength());
      }
    }
    return out;
  };
  info.repo_tags = strings(*doc, "RepoTags");
  if (const json::Value* config = json::FindObject(*doc, "Config")) {
    info.entrypoint = strings(*config, "Entrypoint");
    info.cmd = strings(*config, "Cmd");
  }
  return info;
}

Status EngineApi::PullImage(const std::string& image, const std::string& tag,
                            const std::string& registry_auth,
                            const std::function<void(const PullEvent&)>& progress,
                            std::stop_token stop) {
  if (Status s = CheckImageRef(tag.empty() ? image : image + ":" + tag); !s.ok()) return s;
  std::string query = "/images/create?fromImage=" + UrlEscape(image);
  if (!tag.empty()) query += "&tag=" + UrlEscape(tag);
  HttpRequest request = MakeRequest("POST", query);
  request.total_timeout = milliseconds(0);
  request.idle_timeout = pull_idle_timeout_;
  request.stop = stop;
  if (!registry_auth.empty()) request.headers.Set("X-Registry-Auth", registry_auth);
  PullStream stream(progress);
  request.body_sink = [&stream](std::string_view chunk) { return stream.Feed(chunk); };
  auto response = Call(request);
  if (!response.ok() && response.status().code() == Code::kDeadlineExceeded) {
    auto seconds = (pull_idle_timeout_.count() + 999) / 1000;
    return Status(Code::kDeadlineExceeded, "no pull progress from the Docker engine for " +
                                               std::to_string(seconds) +
                                               " s (the registry stalled?)");
  }
  if (!response.ok()) return PullError(response.status());
  return stream.Finish();
}

Status EngineApi::LoadImage(const ByteSource& tar, std::stop_token stop) {
  // quiet=0: the engine reports each layer as it registers it, so a large load is never silent
  // for the idle timeout (the progress lines are parsed for errors and otherwise ignored).
  HttpRequest request = MakeRequest("POST", "/images/load?quiet=0");
  request.headers.Set("Content-Type", "application/x-tar");
  request.body_reader = tar;
  request.body_size = -1;  // chunked: the archive's size is not known in advance
  request.total_timeout = milliseconds(0);
  request.idle_timeout = kLoadIdleTimeout;
  request.stop = stop;
  // The answer is a progress stream like a pull's; an error line is the load's error.
  const std::function<void(const PullEvent&)> no_progress;
  PullStream stream(no_progress);
  request.body_sink = [&stream](std::string_view chunk) { return stream.Feed(chunk); };
  auto response = Call(request);
  if (!response.ok()) return response.status();
  return stream.Finish();
}

Status EngineApi::RemoveImage(const std::string& name) {
  if (Status s = CheckImageRef(name); !s.ok()) return s;
  auto response = Call(MakeRequest("DELETE", "/images/" + name));
  return response.ok() ? Status::Ok() : response.status();
}

// ------------------------------------------------------------------------------ containers

Result<std::string> EngineApi::CreateContainer(const ContainerSpec& spec) {
  if (Status s = CheckImageRef(spec.image); !s.ok()) return s;
  if (!spec.name.empty()) {
    if (Status s = CheckObjectId(spec.name, "container name"); !s.ok()) return s;
  }
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("Image", json::Str(spec.image, a), a);
  if (!spec.cmd.empty()) doc.AddMember("Cmd", StringArray(spec.cmd, a), a);
  if (spec.entrypoint) doc.AddMember("Entrypoint", StringArray(*spec.entrypoint, a), a);
  doc.AddMember("Env", StringArray(spec.env, a), a);
  doc.AddMember("Labels", StringMap(spec.labels, a), a);
  doc.AddMember("Tty", spec.tty, a);
  doc.AddMember("AttachStdin", false, a);
  doc.AddMember("AttachStdout", true, a);
  doc.AddMember("AttachStderr", true, a);
  doc.AddMember("OpenStdin", false, a);

  json::Value host(rapidjson::kObjectType);
  host.AddMember("Privileged", spec.privileged, a);
  if (spec.shm_size > 0) host.AddMember("ShmSize", spec.shm_size, a);
  host.AddMember("Binds", StringArray(spec.binds, a), a);
  host.AddMember("Links", StringArray(spec.links, a), a);
  host.AddMember("ExtraHosts", StringArray(spec.extra_hosts, a), a);
  host.AddMember("CapAdd", StringArray(spec.cap_add, a), a);
  json::Value devices(rapidjson::kArrayType);
  for (const DeviceMapping& d : spec.devices) {
    json::Value device(rapidjson::kObjectType);
    device.AddMember("PathOnHost", json::Str(d.path_on_host, a), a);
    device.AddMember("PathInContainer", json::Str(d.path_in_container, a), a);
    device.AddMember("CgroupPermissions", json::Str(d.cgroup_permissions, a), a);
    devices.PushBack(device, a);
  }
  host.AddMember("Devices", devices, a);
  if (!spec.network_mode.empty()) {
    host.AddMember("NetworkMode", json::Str(spec.network_mode, a), a);
  }
  if (!spec.log_driver.empty()) {
    json::Value log(rapidjson::kObjectType);
    log.AddMember("Type", json::Str(spec.log_driver, a), a);
    log.AddMember("Config", json::Value(rapidjson::kObjectType), a);
    host.AddMember("LogConfig", log, a);
  }
  doc.AddMember("HostConfig", host, a);

  std::string path = "/containers/create";
  if (!spec.name.empty()) path += "?name=" + UrlEscape(spec.name);
  auto response = Call(MakeRequest("POST", path, json::Serialize(doc)));
  if (!response.ok()) return response.status();
  auto body = ParseBody(*response, "container create");
  if (!body.ok()) return body.status();
  std::string id = json::GetString(*body, "Id").value_or("");
  if (id.empty()) return Status(Code::kInternal, "Docker engine returned no container id");
  return id;
}

Status EngineApi::AttachContainer(const std::string& id, const std::function<void()>& attached,
                                  const ByteSink& sink, std::stop_token stop) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  // Engine API 1.41 sends application/vnd.docker.raw-stream for both kinds of container; only
  // the container's Tty setting says whether the stream is multiplexed.
  HttpRequest inspect = MakeRequest("GET", "/containers/" + id + "/json");
  inspect.stop = stop;
  auto info = Call(inspect);
  if (!info.ok()) return info.status();
  auto doc = ParseBody(*info, "container inspect");
  if (!doc.ok()) return doc.status();
  bool tty = true;
  if (const json::Value* config = json::FindObject(*doc, "Config")) {
    tty = json::GetBool(*config, "Tty").value_or(true);
  }

  HttpRequest request =
      MakeRequest("POST", "/containers/" + id + "/attach?stream=1&stdout=1&stderr=1");
  request.total_timeout = milliseconds(0);
  request.stop = stop;
  request.on_headers = [&attached](const HttpResponse& head) {
    if (head.ok() && attached) attached();
    return Status::Ok();
  };
  Demultiplexer demux(sink);
  if (tty) {
    request.body_sink = sink;
  } else {
    request.body_sink = [&demux](std::string_view chunk) { return demux.Feed(chunk); };
  }
  auto response = Call(request);
  return response.ok() ? Status::Ok() : response.status();
}

Status EngineApi::StartContainer(const std::string& id) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  auto response = Call(MakeRequest("POST", "/containers/" + id + "/start"), {304});
  return response.ok() ? Status::Ok() : response.status();
}

Result<int64_t> EngineApi::WaitContainer(const std::string& id, std::stop_token stop) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  HttpRequest request = MakeRequest("POST", "/containers/" + id + "/wait");
  request.total_timeout = milliseconds(0);
  request.stop = stop;
  auto response = Call(request);
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "container wait");
  if (!doc.ok()) return doc.status();
  if (const json::Value* error = json::FindObject(*doc, "Error")) {
    std::string message = json::GetString(*error, "Message").value_or("");
    if (!message.empty()) return Status(Code::kInternal, message);
  }
  auto code = json::GetInt(*doc, "StatusCode");
  if (!code) return Status(Code::kInternal, "Docker engine wait response has no StatusCode");
  return *code;
}

Status EngineApi::KillContainer(const std::string& id) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  auto response = Call(MakeRequest("POST", "/containers/" + id + "/kill"), {409});
  return response.ok() ? Status::Ok() : response.status();
}

Status EngineApi::RemoveContainer(const std::string& id) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  auto response = Call(MakeRequest("DELETE", "/containers/" + id + "?force=1&v=1"), {404});
  if (response.ok()) return Status::Ok();
  // Another caller is already removing it: the outcome is the same.
  if (response.status().code() == Code::kConflict &&
      Contains(response.status().message(), "already in progress")) {
    return Status::Ok();
  }
  return response.status();
}

Result<std::vector<ContainerInfo>> EngineApi::ListContainers(
    const std::vector<std::string>& labels) {
  auto response =
      Call(MakeRequest("GET", "/containers/json?all=1" + LabelFilterQuery(labels, '&')));
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "container list");
  if (!doc.ok()) return doc.status();
  std::vector<ContainerInfo> out;
  if (!doc->IsArray()) return out;
  for (const auto& c : doc->GetArray()) {
    ContainerInfo info;
    info.id = json::GetString(c, "Id").value_or("");
    info.image_id = json::GetString(c, "ImageID").value_or("");
    info.state = json::GetString(c, "State").value_or("");
    info.created = json::GetInt(c, "Created").value_or(0);
    info.labels = ReadLabels(c, "Labels");
    out.push_back(std::move(info));
  }
  return out;
}

Result<PathStat> EngineApi::GetArchive(const std::string& id, const std::string& path,
                                       const ByteSink& sink) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  HttpRequest request =
      MakeRequest("GET", "/containers/" + id + "/archive?path=" + UrlEscape(path));
  request.total_timeout = milliseconds(0);
  request.idle_timeout = kArchiveIdleTimeout;
  request.body_sink = sink;
  auto response = Call(request);
  if (!response.ok()) return response.status();
  PathStat stat;
  std::optional<std::string> header = response->headers.Get("X-Docker-Container-Path-Stat");
  if (!header) return Status(Code::kInternal, "Docker engine sent no path stat for " + path);
  // Docker sends standard base64; accept the URL-safe alphabet and missing padding too.
  auto decoded = Base64Decode(*header, {Base64::kStandard, Base64::kStandardUnpadded,
                                        Base64::kUrlSafe, Base64::kUrlSafeUnpadded});
  if (!decoded) return Status(Code::kInternal, "Docker engine path stat is not base64");
  auto doc = json::Parse(*decoded);
  if (!doc.ok()) return doc.status().Prefixed("Docker engine path stat: ");
  stat.name = json::GetString(*doc, "name").value_or("");
  stat.size = json::GetInt(*doc, "size").value_or(0);
  stat.mode = static_cast<uint32_t>(json::GetInt(*doc, "mode").value_or(0));
  stat.link_target = json::GetString(*doc, "linkTarget").value_or("");
  return stat;
}

Status EngineApi::PutArchive(const std::string& id, const std::string& dir, std::string_view tar) {
  if (Status s = CheckObjectId(id, "container id"); !s.ok()) return s;
  HttpRequest request =
      MakeRequest("PUT", "/containers/" + id + "/archive?path=" + UrlEscape(dir));
  request.headers.Set("Content-Type", "application/x-tar");
  request.body = std::string(tar);
  auto response = Call(request);
  return response.ok() ? Status::Ok() : response.status();
}

// -------------------------------------------------------------------------------- networks

Result<std::string> EngineApi::CreateNetwork(const std::string& name,
                                             const std::map<std::string, std::string>& labels) {
  if (Status s = CheckObjectId(name, "network name"); !s.ok()) return s;
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("Name", json::Str(name, a), a);
  doc.AddMember("CheckDuplicate", true, a);
  doc.AddMember("Labels", StringMap(labels, a), a);
  auto response = Call(MakeRequest("POST", "/networks/create", json::Serialize(doc)));
  if (!response.ok()) return response.status();
  auto body = ParseBody(*response, "network create");
  if (!body.ok()) return body.status();
  std::string id = json::GetString(*body, "Id").value_or("");
  if (id.empty()) return Status(Code::kInternal, "Docker engine returned no network id");
  return id;
}

Status EngineApi::RemoveNetwork(const std::string& id) {
  if (Status s = CheckObjectId(id, "network id"); !s.ok()) return s;
  auto response = Call(MakeRequest("DELETE", "/networks/" + id), {404});
  return response.ok() ? Status::Ok() : response.status();
}

Result<NetworkInfo> EngineApi::InspectNetwork(const std::string& id) {
  if (Status s = CheckObjectId(id, "network id"); !s.ok()) return s;
  auto response = Call(MakeRequest("GET", "/networks/" + id));
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "network inspect");
  if (!doc.ok()) return doc.status();
  NetworkInfo info;
  info.id = json::GetString(*doc, "Id").value_or("");
  info.name = json::GetString(*doc, "Name").value_or("");
  info.labels = ReadLabels(*doc, "Labels");
  if (const json::Value* ipam = json::FindObject(*doc, "IPAM")) {
    if (const json::Value* configs = json::FindArray(*ipam, "Config")) {
      for (const auto& cfg : configs->GetArray()) {
        std::string subnet = json::GetString(cfg, "Subnet").value_or("");
        if (subnet.empty() || subnet.find(':') != std::string::npos) continue;  // IPv4 only
        info.subnet = subnet;
        info.gateway = json::GetString(cfg, "Gateway").value_or("");
        break;
      }
    }
  }
  return info;
}

Result<std::vector<NetworkInfo>> EngineApi::ListNetworks(const std::vector<std::string>& labels) {
  auto response = Call(MakeRequest("GET", "/networks" + LabelFilterQuery(labels, '?')));
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "network list");
  if (!doc.ok()) return doc.status();
  std::vector<NetworkInfo> out;
  if (!doc->IsArray()) return out;
  for (const auto& n : doc->GetArray()) {
    NetworkInfo info;
    info.id = json::GetString(n, "Id").value_or("");
    info.name = json::GetString(n, "Name").value_or("");
    info.labels = ReadLabels(n, "Labels");
    out.push_back(std::move(info));
  }
  return out;
}

// --------------------------------------------------------------------------------- volumes

namespace {
VolumeInfo ReadVolume(const json::Value& v) {
  VolumeInfo info;
  info.name = json::GetString(v, "Name").value_or("");
  info.mountpoint = json::GetString(v, "Mountpoint").value_or("");
  info.labels = ReadLabels(v, "Labels");
  return info;
}
}  // namespace

Result<VolumeInfo> EngineApi::CreateVolume(const std::string& name,
                                           const std::map<std::string, std::string>& labels) {
  if (!name.empty()) {
    if (Status s = CheckObjectId(name, "volume name"); !s.ok()) return s;
  }
  json::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  if (!name.empty()) doc.AddMember("Name", json::Str(name, a), a);
  doc.AddMember("Labels", StringMap(labels, a), a);
  auto response = Call(MakeRequest("POST", "/volumes/create", json::Serialize(doc)));
  if (!response.ok()) return response.status();
  auto body = ParseBody(*response, "volume create");
  if (!body.ok()) return body.status();
  return ReadVolume(*body);
}

Status EngineApi::RemoveVolume(const std::string& name) {
  if (Status s = CheckObjectId(name, "volume name"); !s.ok()) return s;
  auto response = Call(MakeRequest("DELETE", "/volumes/" + name), {404});
  return response.ok() ? Status::Ok() : response.status();
}

Result<std::vector<VolumeInfo>> EngineApi::ListVolumes(const std::vector<std::string>& labels) {
  auto response = Call(MakeRequest("GET", "/volumes" + LabelFilterQuery(labels, '?')));
  if (!response.ok()) return response.status();
  auto doc = ParseBody(*response, "volume list");
  if (!doc.ok()) return doc.status();
  std::vector<VolumeInfo> out;
  if (const json::Value* volumes = json::FindArray(*doc, "Volumes")) {
    for (const auto& v : volumes->GetArray()) out.push_back(ReadVolume(v));
  }
  return out;
}

}  // namespace docker_worker

#include "docker_worker/local_queue_api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <system_error>

#include "docker_worker/sha256.h"
#include "docker_worker/http_client.h"
#include "docker_worker/json.h"
#include "docker_worker/scopes.h"
#include "docker_worker/slugid.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kDayMs = 24 * 60 * kMinuteMs;
constexpr int kMaxJsonDepth = 64;
constexpr int kMaxRuns = 1000;
constexpr int kMaxLinkHops = 10;
constexpr int kMaxListLimit = 1000;
constexpr size_t kMaxArtifactName = 1024;

const char* const kPriorities[] = {"highest", "very-high", "high",  "medium",
                                   "low",     "very-low",  "lowest"};

// --- small validators ------------------------------------------------------------------------

bool InSet(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

bool IsSlugChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// The official slugid pattern:
// ^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$
bool IsTaskId(std::string_view s) {
  if (s.size() != 22) return false;
  for (char c : s) {
    if (!IsSlugChar(c)) return false;
  }
  return s[8] >= 'Q' && s[8] <= 'T' && InSet(s[10], "CGKOSWaeimquy26-") && InSet(s[21], "AQgw");
}

// ^[a-zA-Z0-9-_]{1,max}$
bool IsIdentifier(std::string_view s, size_t max = 38) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), IsSlugChar);
}

// ^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$
bool IsWorkerType(std::string_view s) {
  if (s.empty() || s.size() > 38) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!(s[0] >= 'a' && s[0] <= 'z')) return false;
  if (!lower_digit(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return lower_digit(c) || c == '-'; });
}

bool IsTaskQueueId(std::string_view s) {
  size_t slash = s.find('/');
  return slash != std::string_view::npos && IsIdentifier(s.substr(0, slash)) &&
         IsWorkerType(s.substr(slash + 1));
}

// ^([a-zA-Z0-9._/-]*)$, 1..500
bool IsProjectId(std::string_view s) {
  if (s.empty() || s.size() > 500) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsSlugChar(c) || c == '.' || c == '/'; });
}

bool IsPrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= ' ' && c <= '~'; });
}

// Blob ids and upload tokens: two slugids.
bool IsBlobId(std::string_view s) {
  return s.size() == 44 && std::all_of(s.begin(), s.end(), IsSlugChar);
}
std::string NewBlobId() { return NewSlugId() + NewSlugId(); }

// Well-formed UTF-8 (lead bytes and continuation counts; overlong 3/4-byte forms not checked).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
      extra = 1;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
      extra = 3;
    } else {
      return false;
    }
    if (extra > s.size() - i - 1) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Artifact names are free text upstream; here they must be printable (no control bytes) and
// must not pretend to be a path that climbs ("." or ".." segments, leading "/").
std::optional<std::string> CheckArtifactName(std::string_view name) {
  if (name.empty()) return "artifact name is empty";
  if (name.size() > kMaxArtifactName) return "artifact name is longer than 1024 characters";
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return "artifact name contains a control character";
  }
  if (!IsValidUtf8(name)) return "artifact name is not valid UTF-8";
  if (name.front() == '/') return "artifact name starts with \"/\"";
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view seg = name.substr(start, end - start);
    if (seg == "." || seg == "..") return "artifact name contains a \".\" or \"..\" segment";
    start = end + 1;
  }
  return std::nullopt;
}

// A retry of `task`: one retry consumed and run `run_id` added as pending (inside the caller's
// transaction). Returns the new run.
Result<RunRow> ScheduleRetry(LocalQueueStore& store, const TaskRow& task, int run_id,
                             const std::string& reason_created, int64_t now_ms) {
  Status s = store.SetRetriesLeft(task.task_id, task.retries_left - 1);
  if (!s.ok()) return s;
  RunRow next;
  next.task_id = task.task_id;
  next.run_id = run_id;
  next.state = "pending";
  next.reason_created = reason_created;
  next.scheduled_ms = now_ms;
  s = store.InsertRun(next);
  if (!s.ok()) return s;
  return next;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s` (and "+" as a space when `plus_is_space`); nullopt on a malformed escape or
// a decoded NUL byte.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space = false) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = Hex(s[i + 1]);
      int lo = Hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = Hex(s[i]);
    int lo = Hex(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  for (std::string_view part : Split(query, '&')) {
    size_t eq = part.find('=');
    auto key = PercentDecode(part.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (key && value) out.emplace(*key, *value);
  }
  return out;
}

std::string Iso(int64_t ms) { return FormatIso(FromEpochMillis(ms)); }

// deadline plus one calendar year, as JavaScript's setFullYear(+1) (Feb 29 rolls to Mar 1).
int64_t PlusOneYear(int64_t ms) {
  using namespace std::chrono;
  auto tp = FromEpochMillis(ms);
  auto day = floor<days>(tp);
  auto rest = tp - day;
  year_month_day ymd(day);
  year_month_day next = ymd + years(1);
  sys_days next_day =
      next.ok()
          ? sys_days(next)
          : sys_days(year_month_day_last(next.year(), month_day_last(next.month()))) + days(1);
  return ToEpochMillis(time_point_cast<system_clock::duration>(next_day + rest));
}

// --- JSON output -------------------------------------------------------------------------------

// A thin streaming writer: values are written in call order; Raw() embeds stored JSON text.
class JsonOut {
 public:
  JsonOut& BeginObject() {
    w_.StartObject();
    return *this;
  }
  JsonOut& EndObject() {
    w_.EndObject();
    return *this;
  }
  JsonOut& BeginArray() {
    w_.StartArray();
    return *this;
  }
  JsonOut& EndArray() {
    w_.EndArray();
    return *this;
  }
  JsonOut& Key(std::string_view k) {
    w_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    return *this;
  }
  JsonOut& Str(std::string_view v) {
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  JsonOut& Int(int64_t v) {
    w_.Int64(v);
    return *this;
  }
  JsonOut& Number(double v) {
    if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 9.0e15) {
      w_.Int64(static_cast<int64_t>(v));
    } else {
      w_.Double(v);
    }
    return *this;
  }
  // `json` must be a serialised object or array (as stored by this module).
  JsonOut& Raw(std::string_view json) {
    rapidjson::Type type =
        !json.empty() && json.front() == '[' ? rapidjson::kArrayType : rapidjson::kObjectType;
    w_.RawValue(json.data(), json.size(), type);
    return *this;
  }
  JsonOut& Value(const json::Value& v) {
    v.Accept(w_);
    return *this;
  }
  JsonOut& KeyStr(std::string_view k, std::string_view v) { return Key(k).Str(v); }
  std::string Take() { return std::string(buf_.GetString(), buf_.GetSize()); }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

// --- scope expressions -------------------------------------------------------------------------

// A scope expression as the API references write them: a scope, {AllOf: [...]} or {AnyOf: [...]}.
struct ScopeExpr {
  enum Kind { kScope, kAllOf, kAnyOf } kind = kScope;
  std::string scope;
  std::vector<ScopeExpr> items;
};

ScopeExpr One(std::string scope) { return {ScopeExpr::kScope, std::move(scope), {}}; }
ScopeExpr AllOf(std::vector<ScopeExpr> items) { return {ScopeExpr::kAllOf, "", std::move(items)}; }
ScopeExpr AnyOf(std::vector<ScopeExpr> items) { return {ScopeExpr::kAnyOf, "", std::move(items)}; }

bool Satisfied(const ScopeExpr& e, const std::vector<std::string>& held) {
  switch (e.kind) {
    case ScopeExpr::kScope:
      return ScopeSatisfied(held, e.scope);
    case ScopeExpr::kAllOf:
      return std::all_of(e.items.begin(), e.items.end(),
                         [&](const ScopeExpr& i) { return Satisfied(i, held); });
    case ScopeExpr::kAnyOf:
      return std::any_of(e.items.begin(), e.items.end(),
                         [&](const ScopeExpr& i) { return Satisfied(i, held); });
  }
  return false;
}

void WriteExpr(JsonOut& out, const ScopeExpr& e) {
  if (e.kind == ScopeExpr::kScope) {
    out.Str(e.scope);
    return;
  }
  out.BeginObject().Key(e.kind == ScopeExpr::kAllOf ? "AllOf" : "AnyOf").BeginArray();
  for (const auto& i : e.items) WriteExpr(out, i);
  out.EndArray().EndObject();
}

std::string ExprJson(const ScopeExpr& e) {
  JsonOut out;
  WriteExpr(out, e);
  return out.Take();
}

// The parts of `e` that `held` does not satisfy, for error messages.
void Missing(const ScopeExpr& e, const std::vector<std::string>& held,
             std::vector<std::string>& out) {
  if (Satisfied(e, held)) return;
  if (e.kind == ScopeExpr::kAllOf) {
    for (const auto& i : e.items) Missing(i, held, out);
  } else if (e.kind == ScopeExpr::kScope) {
    out.push_back(e.scope);
  } else {
    out.push_back("one of " + ExprJson(e));
  }
}

// --- parsed task definitions ------------------------------------------------------------------

// The fields of a stored definition the queue reads back.
struct TaskInfo {
  std::string provisioner_id, worker_type, task_queue_id, scheduler_id, project_id, task_group_id,
      priority, deadline, expires;
  std::vector<std::string> scopes;
};

TaskInfo ReadInfo(const TaskRow& row) {
  TaskInfo info;
  auto doc = json::Parse(row.definition);
  if (!doc.ok()) return info;  // stored by us; cannot happen short of disk corruption
  auto get = [&](const char* key) { return json::GetString(*doc, key).value_or(""); };
  info.provisioner_id = get("provisionerId");
  info.worker_type = get("workerType");
  info.task_queue_id = get("taskQueueId");
  info.scheduler_id = get("schedulerId");
  info.project_id = get("projectId");
  info.task_group_id = get("taskGroupId");
  info.priority = get("priority");
  info.deadline = get("deadline");
  info.expires = get("expires");
  if (const json::Value* scopes = json::FindArray(*doc, "scopes")) {
    for (const auto& s : scopes->GetArray()) {
      if (s.IsString()) info.scopes.push_back(s.GetString());
    }
  }
  return info;
}

void WriteRun(JsonOut& out, const RunRow& r) {
  out.BeginObject();
  out.Key("runId").Int(r.run_id);
  out.KeyStr("state", r.state);
  out.KeyStr("reasonCreated", r.reason_created);
  if (!r.reason_resolved.empty()) out.KeyStr("reasonResolved", r.reason_resolved);
  if (!r.worker_group.empty()) out.KeyStr("workerGroup", r.worker_group);
  if (!r.worker_id.empty()) out.KeyStr("workerId", r.worker_id);
  if (r.taken_until_ms) out.KeyStr("takenUntil", Iso(r.taken_until_ms));
  out.KeyStr("scheduled", Iso(r.scheduled_ms));
  if (r.started_ms) out.KeyStr("started", Iso(r.started_ms));
  if (r.resolved_ms) out.KeyStr("resolved", Iso(r.resolved_ms));
  out.EndObject();
}

// The task-status structure.
void WriteStatus(JsonOut& out, const TaskRow& task, const std::vector<RunRow>& runs) {
  TaskInfo info = ReadInfo(task);
  out.BeginObject();
  out.KeyStr("taskId", task.task_id);
  out.KeyStr("provisionerId", info.provisioner_id);
  out.KeyStr("workerType", info.worker_type);
  out.KeyStr("taskQueueId", info.task_queue_id);
  out.KeyStr("schedulerId", info.scheduler_id);
  out.KeyStr("projectId", info.project_id);
  out.KeyStr("taskGroupId", info.task_group_id);
  out.KeyStr("priority", info.priority);
  out.KeyStr("deadline", info.deadline);
  out.KeyStr("expires", info.expires);
  out.Key("retriesLeft").Int(task.retries_left);
  out.KeyStr("state", runs.empty() ? "unscheduled" : runs.back().state);
  out.Key("runs").BeginArray();
  for (const auto& r : runs) WriteRun(out, r);
  out.EndArray();
  out.EndObject();
}

std::string StatusBody(const TaskRow& task, const std::vector<RunRow>& runs) {
  JsonOut out;
  out.BeginObject().Key("status");
  WriteStatus(out, task, runs);
  out.EndObject();
  return out.Take();
}

void WriteArtifactEntry(JsonOut& out, const ArtifactRow& a) {
  out.BeginObject();
  out.KeyStr("storageType", a.storage_type);
  out.KeyStr("name", a.name);
  out.KeyStr("expires", Iso(a.expires_ms));
  out.KeyStr("contentType", a.content_type);
  if (a.storage_type == "s3" && a.uploaded && a.content_length >= 0) {
    out.Key("contentLength").Int(a.content_length);
  }
  out.EndObject();
}

// --- task definitions in -----------------------------------------------------------------------

// A createTask body checked and completed with the queue's defaults, in upstream's field order.
struct NewTask {
  std::string definition;  // serialised
  json::Document doc;      // the same, for idempotency comparison
  TaskRow row;
  TaskInfo info;
  std::vector<std::string> routes;
};

// A check failure names the field; the string is the message.
using Problem = std::optional<std::string>;

// The first member of object `obj` not in `allowed`: `unknown property "<key>" <where>`.
Problem CheckKnownKeys(const json::Value& obj, const std::vector<std::string_view>& allowed,
                       const std::string& where) {
  for (const auto& m : obj.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return "unknown property \"" + std::string(key) + "\" " + where;
    }
  }
  return std::nullopt;
}

Problem CheckString(const json::Value& v, const std::string& field, size_t min, size_t max) {
  if (!v.IsString()) return field + " must be a string, not " + json::TypeName(v);
  size_t n = v.GetStringLength();
  if (n < min || n > max) {
    return field + " must be " + std::to_string(min) + ".." + std::to_string(max) +
           " characters long";
  }
  return std::nullopt;
}

Problem CheckTime(const json::Value* v, const std::string& field, int64_t* ms) {
  if (!v || !v->IsString()) return field + " must be a date-time string";
  auto t = ParseIso(v->GetString());
  if (!t.ok()) return field + ": " + t.status().message();
  *ms = ToEpochMillis(*t);
  return std::nullopt;
}

Problem CheckStringArray(const json::Value* v, const std::string& field, size_t max_items,
                         size_t min_len, size_t max_len, bool unique,
                         std::vector<std::string>* out) {
  if (!v) return std::nullopt;
  if (!v->IsArray()) return field + " must be an array";
  if (v->Size() > max_items)
    return field + " has more than " + std::to_string(max_items) + " items";
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    std::string item = field + "[" + std::to_string(i) + "]";
    if (Problem p = CheckString((*v)[i], item, min_len, max_len)) return p;
    std::string s = (*v)[i].GetString();
    if (unique && !seen.insert(s).second) return field + " has the duplicate item \"" + s + "\"";
    if (out) out->push_back(std::move(s));
  }
  return std::nullopt;
}

Problem BuildTask(const json::Value& in, const std::string& task_id, int64_t now_ms, NewTask* out) {
  if (!in.IsObject()) return std::string("the task definition must be a JSON object");
  if (Problem p = CheckKnownKeys(
          in,
          {"provisionerId", "workerType", "taskQueueId", "schedulerId", "projectId", "taskGroupId",
           "dependencies", "requires", "routes", "priority", "retries", "created", "deadline",
           "expires", "scopes", "payload", "metadata", "tags", "extra"},
          "in the task definition")) {
    return p;
  }
  TaskInfo& info = out->info;

  // Where the task runs.
  const json::Value* tq = json::Find(in, "taskQueueId");
  const json::Value* prov = json::Find(in, "provisionerId");
  const json::Value* wt = json::Find(in, "workerType");
  if (tq) {
    if (!tq->IsString() || !IsTaskQueueId(tq->GetString())) {
      return std::string("taskQueueId must look like <provisionerId>/<workerType>");
    }
    info.task_queue_id = tq->GetString();
    size_t slash = info.task_queue_id.find('/');
    info.provisioner_id = info.task_queue_id.substr(0, slash);
    info.worker_type = info.task_queue_id.substr(slash + 1);
    if ((prov && (!prov->IsString() || info.provisioner_id != prov->GetString())) ||
        (wt && (!wt->IsString() || info.worker_type != wt->GetString()))) {
      return std::string("taskQueueId disagrees with provisionerId/workerType");
    }
  } else {
    if (!prov || !wt) {
      return std::string("give taskQueueId, or both provisionerId and workerType");
    }
    if (!prov->IsString() || !IsIdentifier(prov->GetString())) {
      return std::string("provisionerId must match ^[a-zA-Z0-9-_]{1,38}$");
    }
    if (!wt->IsString() || !IsWorkerType(wt->GetString())) {
      return std::string("workerType must match ^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$");
    }
    info.provisioner_id = prov->GetString();
    info.worker_type = wt->GetString();
    info.task_queue_id = info.provisioner_id + "/" + info.worker_type;
  }

  auto string_or = [&](const char* key, const char* fallback, std::string* value) -> Problem {
    const json::Value* v = json::Find(in, key);
    if (!v) {
      *value = fallback;
      return std::nullopt;
    }
    if (!v->IsString()) return std::string(key) + " must be a string";
    *value = v->GetString();
    return std::nullopt;
  };
  if (Problem p = string_or("schedulerId", "-", &info.scheduler_id)) return p;
  if (!IsIdentifier(info.scheduler_id))
    return std::string("schedulerId must match ^[a-zA-Z0-9-_]{1,38}$");
  if (Problem p = string_or("projectId", "none", &info.project_id)) return p;
  if (!IsProjectId(info.project_id))
    return std::string("projectId must match ^[a-zA-Z0-9._/-]{1,500}$");
  if (Problem p = string_or("taskGroupId", task_id.c_str(), &info.task_group_id)) return p;
  if (!IsTaskId(info.task_group_id)) return std::string("taskGroupId is not a slugid");
  std::string requires_;
  if (Problem p = string_or("requires", "all-completed", &requires_)) return p;
  if (requires_ != "all-completed" && requires_ != "all-resolved") {
    return std::string("requires must be all-completed or all-resolved");
  }
  if (Problem p = string_or("priority", "lowest", &info.priority)) return p;
  if (std::find(std::begin(kPriorities), std::end(kPriorities), info.priority) ==
      std::end(kPriorities)) {
    return "priority \"" + info.priority +
           "\" is not one of highest, very-high, high, medium, "
           "low, very-low, lowest";
  }

  int64_t retries = 5;
  if (const json::Value* v = json::Find(in, "retries")) {
    if (!v->IsInt64() || v->GetInt64() < 0 || v->GetInt64() > 49) {
      return std::string("retries must be an integer in 0..49");
    }
    retries = v->GetInt64();
  }

  std::vector<std::string> dependencies;
  if (Problem p = CheckStringArray(json::Find(in, "dependencies"), "dependencies", 10000, 22, 22,
                                   true, &dependencies)) {
    return p;
  }
  for (const auto& d : dependencies) {
    if (!IsTaskId(d)) return "dependency \"" + d + "\" is not a slugid";
  }
  if (Problem p =
          CheckStringArray(json::Find(in, "routes"), "routes", 64, 1, 249, true, &out->routes)) {
    return p;
  }
  if (Problem p = CheckStringArray(json::Find(in, "scopes"), "scopes", 100000, 0, 10000, false,
                                   &info.scopes)) {
    return p;
  }
  for (const auto& s : info.scopes) {
    if (!IsPrintableAscii(s)) return "scope \"" + s + "\" has characters outside printable ASCII";
  }

  int64_t created = 0, deadline = 0, expires = 0;
  if (Problem p = CheckTime(json::Find(in, "created"), "created", &created)) return p;
  if (Problem p = CheckTime(json::Find(in, "deadline"), "deadline", &deadline)) return p;
  if (json::Find(in, "expires")) {
    if (Problem p = CheckTime(json::Find(in, "expires"), "expires", &expires)) return p;
  } else {
    expires = PlusOneYear(deadline);
  }
  if (created > now_ms + 15 * kMinuteMs)
    return std::string("created is more than 15 minutes in the future");
  if (deadline > now_ms + 5 * kDayMs + 15 * kMinuteMs) {
    return std::string("deadline is more than 5 days in the future");
  }
  if (deadline < created) return std::string("deadline is before created");
  if (expires < deadline) return std::string("expires is before deadline");

  const json::Value* payload = json::Find(in, "payload");
  if (!payload || !payload->IsObject()) return std::string("payload must be an object");
  const json::Value* metadata = json::Find(in, "metadata");
  if (!metadata || !metadata->IsObject()) return std::string("metadata must be an object");
  struct MetaField {
    const char* key;
    size_t max;
  };
  for (MetaField f : {MetaField{"name", 255}, MetaField{"description", 32768},
                      MetaField{"owner", 255}, MetaField{"source", 4096}}) {
    const json::Value* v = json::Find(*metadata, f.key);
    if (!v) return std::string("metadata.") + f.key + " is required";
    if (Problem p = CheckString(*v, std::string("metadata.") + f.key, 0, f.max)) return p;
  }
  if (Problem p = CheckKnownKeys(*metadata, {"name", "description", "owner", "source"},
                                 "in metadata")) {
    return p;
  }
  std::string_view source = json::Find(*metadata, "source")->GetString();
  if (source.rfind("http://", 0) != 0 && source.rfind("https://", 0) != 0 &&
      source.rfind("ssh://", 0) != 0 && source.rfind("git@", 0) != 0) {
    return std::string("metadata.source must start with http://, https://, ssh:// or git@");
  }
  const json::Value* tags = json::Find(in, "tags");
  if (tags) {
    if (!tags->IsObject()) return std::string("tags must be an object");
    for (const auto& m : tags->GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      if (Problem p = CheckString(m.value, "tags." + key, 0, 4096)) return p;
    }
  }
  const json::Value* extra = json::Find(in, "extra");
  if (extra && !extra->IsObject()) return std::string("extra must be an object");

  info.deadline = Iso(deadline);
  info.expires = Iso(expires);
  JsonOut def;
  def.BeginObject();
  def.KeyStr("provisionerId", info.provisioner_id);
  def.KeyStr("workerType", info.worker_type);
  def.KeyStr("taskQueueId", info.task_queue_id);
  def.KeyStr("schedulerId", info.scheduler_id);
  def.KeyStr("projectId", info.project_id);
  def.KeyStr("taskGroupId", info.task_group_id);
  def.Key("dependencies").BeginArray();
  for (const auto& d : dependencies) def.Str(d);
  def.EndArray();
  def.KeyStr("requires", requires_);
  def.Key("routes").BeginArray();
  for (const auto& r : out->routes) def.Str(r);
  def.EndArray();
  def.KeyStr("priority", info.priority);
  def.Key("retries").Int(retries);
  def.KeyStr("created", Iso(created));
  def.KeyStr("deadline", info.deadline);
  def.KeyStr("expires", info.expires);
  def.Key("scopes").BeginArray();
  for (const auto& s : info.scopes) def.Str(s);
  def.EndArray();
  def.Key("payload").Value(*payload);
  def.Key("metadata").Value(*metadata);
  def.Key("tags");
  if (tags) {
    def.Value(*tags);
  } else {
    def.BeginObject().EndObject();
  }
  def.Key("extra");
  if (extra) {
    def.Value(*extra);
  } else {
    def.BeginObject().EndObject();
  }
  def.EndObject();
  out->definition = def.Take();
  auto doc = json::Parse(out->definition);
  if (!doc.ok()) return doc.status().message();
  out->doc = std::move(*doc);
  out->row.task_id = task_id;
  out->row.definition = out->definition;
  out->row.task_queue_id = info.task_queue_id;
  out->row.deadline_ms = deadline;
  out->row.expires_ms = expires;
  out->row.retries_left = static_cast<int>(retries);
  return std::nullopt;
}

}  // namespace

// --- routing -------------------------------------------------------------------------------------

struct LocalQueueApi::Context {
  const ApiCall& call;
  std::string api_method;
  std::map<std::string, std::string> params;
  int64_t now_ms = 0;

  const std::string& Param(const std::string& key) { return params[key]; }

  ApiReply Error(int status, const std::string& code, const std::string& message) const {
    JsonOut out;
    out.BeginObject();
    out.KeyStr("code", code);
    out.KeyStr("message", message);
    out.Key("requestInfo").BeginObject();
    out.KeyStr("method", api_method);
    out.Key("params").BeginObject();
    for (const auto& [k, v] : params) out.KeyStr(k, v);
    out.EndObject();
    out.Key("payload").BeginObject().EndObject();
    out.KeyStr("time", Iso(now_ms));
    out.EndObject();
    out.EndObject();
    ApiReply reply;
    reply.status = status;
    reply.body = out.Take();
    reply.api_method = api_method;
    if (status == 401) reply.headers.emplace_back("WWW-Authenticate", "hawk");
    return reply;
  }
  ApiReply Internal(const Status& st) const {
    return Error(500, "InternalServerError",
                 "Internal server error (incidentId " + NewSlugId() + "): " + st.message());
  }
  ApiReply NotFound(const std::string& message) const {
    return Error(404, "ResourceNotFound", message);
  }
  ApiReply Conflict(const std::string& message) const {
    return Error(409, "RequestConflict", message);
  }
  ApiReply BadInput(const std::string& message) const {
    return Error(400, "InputValidationError", message);
  }
  static ApiReply Ok(std::string body, int status = 200) {
    ApiReply reply;
    reply.status = status;
    reply.body = std::move(body);
    return reply;
  }

  // nullopt when the caller satisfies `expr`, else the 403 reply.
  std::optional<ApiReply> Require(const ScopeExpr& expr) const {
    if (Satisfied(expr, call.scopes)) return std::nullopt;
    std::vector<std::string> missing;
    Missing(expr, call.scopes, missing);
    std::string who = call.client_id.empty()
                          ? std::string("An anonymous caller (no Hawk credentials)")
                          : "Client \"" + call.client_id + "\"";
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Error(403, "InsufficientScopes",
                 who + " may not call " + api_method + ": missing scope " + list +
                     ".\nRequired scope expression: " + ExprJson(expr));
  }

  // The JSON body as an object; nullopt with `*error` set otherwise.
  std::optional<json::Document> Body(ApiReply* error) const {
    if (!json::NestingWithin(call.body, kMaxJsonDepth)) {
      *error = Error(400, "MalformedPayload", "the request body nests deeper than 64 levels");
      return std::nullopt;
    }
    auto doc = json::Parse(call.body);
    if (!doc.ok()) {
      *error =
          Error(400, "MalformedPayload", "the request body is not JSON: " + doc.status().message());
      return std::nullopt;
    }
    if (!doc->IsObject()) {
      *error = BadInput("the request body must be a JSON object");
      return std::nullopt;
    }
    return std::move(*doc);
  }
};

struct LocalQueueApi::Route {
  const char* service;
  const char* method;
  const char* pattern;  // "<x>" one segment, "<x*>" the rest (at least one segment)
  const char* api_method;
  ApiReply (LocalQueueApi::*handler)(Context&);
};

const std::vector<LocalQueueApi::Route>& LocalQueueApi::Routes() {
  using Api = LocalQueueApi;
  static const std::vector<Route> kRoutes = {
      {"queue", "GET", "ping", "ping", &Api::Ping},
      {"queue", "PUT", "task/<taskId>", "createTask", &Api::CreateTask},
      {"queue", "GET", "task/<taskId>", "task", &Api::GetTask},
      {"queue", "GET", "task/<taskId>/status", "status", &Api::TaskStatus},
      {"queue", "POST", "task/<taskId>/cancel", "cancelTask", &Api::CancelTask},
      {"queue", "POST", "claim-work/<taskQueueId*>", "claimWork", &Api::ClaimWork},
      {"queue", "POST", "task/<taskId>/runs/<runId>/reclaim", "reclaimTask", &Api::ReclaimTask},
      {"queue", "POST", "task/<taskId>/runs/<runId>/completed", "reportCompleted",
       &Api::ReportCompleted},
      {"queue", "POST", "task/<taskId>/runs/<runId>/failed", "reportFailed", &Api::ReportFailed},
      {"queue", "POST", "task/<taskId>/runs/<runId>/exception", "reportException",
       &Api::ReportException},
      {"queue", "POST", "task/<taskId>/runs/<runId>/artifacts/<name*>", "createArtifact",
       &Api::CreateArtifact},
      {"queue", "PUT", "task/<taskId>/runs/<runId>/artifacts/<name*>", "finishArtifact",
       &Api::FinishArtifact},
      {"queue", "GET", "task/<taskId>/runs/<runId>/artifacts/<name*>", "getArtifact",
       &Api::GetArtifact},
      {"queue", "GET", "task/<taskId>/artifacts/<name*>", "getLatestArtifact", &Api::GetArtifact},
      {"queue", "GET", "task/<taskId>/runs/<runId>/artifact-content/<name*>", "artifact",
       &Api::ArtifactContent},
      {"queue", "GET", "task/<taskId>/artifact-content/<name*>", "latestArtifact",
       &Api::ArtifactContent},
      {"queue", "GET", "task/<taskId>/runs/<runId>/artifact-info/<name*>", "artifactInfo",
       &Api::ArtifactInfo},
      {"queue", "GET", "task/<taskId>/artifact-info/<name*>", "latestArtifactInfo",
       &Api::ArtifactInfo},
      {"queue", "GET", "task/<taskId>/runs/<runId>/artifacts", "listArtifacts",
       &Api::ListArtifacts},
      {"queue", "GET", "task/<taskId>/artifacts", "listLatestArtifacts", &Api::ListArtifacts},
      {"auth", "GET", "ping", "ping", &Api::Ping},
      {"auth", "POST", "scopes/expand", "expandScopes", &Api::ExpandScopes},
      {"auth", "GET", "scopes/current", "currentScopes", &Api::CurrentScopes},
      {"index", "GET", "ping", "ping", &Api::Ping},
      {"index", "PUT", "task/<namespace>", "insertTask", &Api::InsertIndex},
      {"index", "GET", "task/<indexPath>", "findTask", &Api::FindIndex},
      {"index", "GET", "task/<indexPath>/artifacts/<name*>", "findArtifactFromTask",
       &Api::FindArtifactFromTask},
  };
  return kRoutes;
}

namespace {

enum class MatchResult { kNo, kYes, kBadEncoding };

MatchResult MatchRoute(std::string_view pattern, const std::vector<std::string_view>& segs,
                       std::map<std::string, std::string>* params) {
  std::vector<std::string_view> pat = Split(pattern, '/');
  params->clear();
  for (size_t i = 0; i < pat.size(); ++i) {
    std::string_view p = pat[i];
    bool is_param = p.size() > 2 && p.front() == '<' && p.back() == '>';
    if (is_param && p[p.size() - 2] == '*') {
      if (i >= segs.size()) return MatchResult::kNo;
      std::string raw;
      for (size_t j = i; j < segs.size(); ++j) {
        if (j > i) raw += '/';
        raw += segs[j];
      }
      if (raw.empty()) return MatchResult::kNo;
      auto decoded = PercentDecode(raw);
      if (!decoded) return MatchResult::kBadEncoding;
      (*params)[std::string(p.substr(1, p.size() - 3))] = *decoded;
      return MatchResult::kYes;
    }
    if (i >= segs.size()) return MatchResult::kNo;
    if (is_param) {
      if (segs[i].empty()) return MatchResult::kNo;
      auto decoded = PercentDecode(segs[i]);
      if (!decoded) return MatchResult::kBadEncoding;
      (*params)[std::string(p.substr(1, p.size() - 2))] = *decoded;
    } else if (segs[i] != p) {
      return MatchResult::kNo;
    }
  }
  return pat.size() == segs.size() ? MatchResult::kYes : MatchResult::kNo;
}

std::optional<int> ParseRunId(const std::string& s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > kMaxRuns) return std::nullopt;
  return v;
}

}  // namespace

LocalQueueApi::LocalQueueApi(LocalQueueStore& store, Clock& clock, LocalQueueApiOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

int64_t LocalQueueApi::NowMs() const { return ToEpochMillis(clock_.Now()); }

std::string LocalQueueApi::BlobUrl(const std::string& blob_id) const {
  return options_.root_url + "/_blob/" + blob_id;
}

ApiReply LocalQueueApi::ErrorReply(int status, const std::string& code, const std::string& message,
                                   const std::string& api_method) {
  ApiCall none;
  Context ctx{none, api_method, {}, ToEpochMillis(std::chrono::system_clock::now())};
  return ctx.Error(status, code, message);
}

ApiReply LocalQueueApi::Handle(const ApiCall& call) {
  Context ctx{call, "", {}, NowMs()};
  std::vector<std::string_view> segs = Split(call.path, '/');
  for (const Route& route : Routes()) {
    if (call.service != route.service || call.method != route.method) continue;
    MatchResult m = MatchRoute(route.pattern, segs, &ctx.params);
    if (m == MatchResult::kNo) continue;
    ctx.api_method = route.api_method;
    if (m == MatchResult::kBadEncoding) {
      ctx.params.clear();
      return ctx.Error(400, "InvalidRequestArguments", "malformed percent-encoding in the path");
    }
    if (ctx.params.count("taskId") && !IsTaskId(ctx.params["taskId"])) {
      return ctx.Error(400, "InvalidRequestArguments",
                       "taskId \"" + ctx.params["taskId"] + "\" is not a slugid");
    }
    if (ctx.params.count("runId") && !ParseRunId(ctx.params["runId"])) {
      return ctx.Error(400, "InvalidRequestArguments", "runId must be an integer in 0..1000");
    }
    if (ctx.params.count("name")) {
      if (auto problem = CheckArtifactName(ctx.params["name"])) {
        return ctx.Error(400, "InvalidRequestArguments", *problem);
      }
    }
    ApiReply reply = (this->*route.handler)(ctx);
    reply.api_method = route.api_method;
    return reply;
  }
  return ctx.NotFound("no such API endpoint: " + call.method + " /api/" + call.service + "/v1/" +
                      call.path);
}

// --- sweeping: claim expiry and deadlines -------------------------------------------------------

Result<bool> LocalQueueApi::SweepLocked(int64_t now_ms) {
  auto past = store_.RunsPastDeadline(now_ms);
  if (!past.ok()) return past.status();
  auto expired = store_.ExpiredClaims(now_ms);
  if (!expired.ok()) return expired.status();
  if (past->empty() && expired->empty()) return false;
  bool new_pending = false;
  Status st = store_.Transaction([&]() -> Status {
    std::set<std::string> finished;
    for (RunRow run : *past) {
      run.state = "exception";
      run.reason_resolved = "deadline-exceeded";
      run.resolved_ms = now_ms;
      Status s = store_.UpdateRun(run);
      if (!s.ok()) return s;
      finished.insert(run.task_id);
    }
    for (RunRow run : *expired) {
      if (finished.count(run.task_id)) continue;
      run.state = "exception";
      run.reason_resolved = "claim-expired";
      run.resolved_ms = now_ms;
      Status s = store_.UpdateRun(run);
      if (!s.ok()) return s;
      auto task = store_.GetTask(run.task_id);
      if (!task.ok()) return task.status();
      if (!*task || (*task)->retries_left <= 0 || (*task)->deadline_ms <= now_ms ||
          run.run_id + 1 > kMaxRuns) {
        continue;
      }
      auto next = ScheduleRetry(store_, **task, run.run_id + 1, "retry", now_ms);
      if (!next.ok()) return next.status();
      new_pending = true;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return new_pending;
}

void LocalQueueApi::Sweep() {
  std::lock_guard lock(mu_);
  auto r = SweepLocked(NowMs());
  if (r.ok() && *r) work_cv_.notify_all();
}

void LocalQueueApi::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  work_cv_.notify_all();
}

// --- tasks ---------------------------------------------------------------------------------------

ApiReply LocalQueueApi::Ping(Context&) { return Context::Ok(R"({"alive":true})"); }

ApiReply LocalQueueApi::CreateTask(Context& ctx) {
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;
  const std::string& task_id = ctx.Param("taskId");
  NewTask task;
  if (Problem p = BuildTask(*body, task_id, ctx.now_ms, &task)) return ctx.BadInput(*p);

  // The scopes of the createTask reference: the task's scopes, its routes, its project and
  // scheduler, and create-task at the task's priority or any higher one.
  std::vector<ScopeExpr> all;
  for (const auto& s : task.info.scopes) all.push_back(One(s));
  for (const auto& r : task.routes) all.push_back(One("queue:route:" + r));
  all.push_back(One("queue:create-task:project:" + task.info.project_id));
  all.push_back(One("queue:scheduler-id:" + task.info.scheduler_id));
  std::vector<ScopeExpr> priorities;
  for (const char* p : kPriorities) {
    priorities.push_back(
        One(std::string("queue:create-task:") + p + ":" + task.info.task_queue_id));
    if (task.info.priority == p) break;
  }
  all.push_back(AnyOf(std::move(priorities)));
  if (auto denied = ctx.Require(AllOf(std::move(all)))) return *denied;

  std::lock_guard lock(mu_);
  auto swept = SweepLocked(ctx.now_ms);
  if (!swept.ok()) return ctx.Internal(swept.status());
  if (*swept) work_cv_.notify_all();
  auto existing = store_.GetTask(task_id);
  if (!existing.ok()) return ctx.Internal(existing.status());
  if (*existing) {
    auto stored = json::Parse((*existing)->definition);
    if (!stored.ok() || !(*stored == task.doc)) {
      return ctx.Conflict("task " + task_id + " already exists with a different definition");
    }
    auto runs = store_.GetRuns(task_id);
    if (!runs.ok()) return ctx.Internal(runs.status());
    return Context::Ok(StatusBody(**existing, *runs));
  }
  RunRow run;
  run.task_id = task_id;
  run.run_id = 0;
  run.state = "pending";
  run.reason_created = "scheduled";
  run.scheduled_ms = ctx.now_ms;
  Status st = store_.Transaction([&]() -> Status {
    Status s = store_.InsertTask(task.row);
    if (!s.ok()) return s;
    return store_.InsertRun(run);
  });
  if (!st.ok()) return ctx.Internal(st);
  work_cv_.notify_all();
  // A deadline already past resolves the new run at once.
  swept = SweepLocked(ctx.now_ms);
  if (!swept.ok()) return ctx.Internal(swept.status());
  auto runs = store_.GetRuns(task_id);
  if (!runs.ok()) return ctx.Internal(runs.status());
  return Context::Ok(StatusBody(task.row, *runs));
}

ApiReply LocalQueueApi::GetTask(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  if (auto denied = ctx.Require(One("queue:get-task:" + task_id))) return *denied;
  auto task = store_.GetTask(task_id);
  if (!task.ok()) return ctx.Internal(task.status());
  if (!*task) return ctx.NotFound("task " + task_id + " not found");
  return Context::Ok((*task)->definition);
}

ApiReply LocalQueueApi::TaskStatus(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  if (auto denied = ctx.Require(One("queue:status:" + task_id))) return *denied;
  std::lock_guard lock(mu_);
  auto swept = SweepLocked(ctx.now_ms);
  if (!swept.ok()) return ctx.Internal(swept.status());
  if (*swept) work_cv_.notify_all();
  auto task = store_.GetTask(task_id);
  if (!task.ok()) return ctx.Internal(task.status());
  if (!*task) return ctx.NotFound("task " + task_id + " not found");
  auto runs = store_.GetRuns(task_id);
  if (!runs.ok()) return ctx.Internal(runs.status());
  return Context::Ok(StatusBody(**task, *runs));
}

ApiReply LocalQueueApi::CancelTask(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  std::lock_guard lock(mu_);
  auto swept = SweepLocked(ctx.now_ms);
  if (!swept.ok()) return ctx.Internal(swept.status());
  if (*swept) work_cv_.notify_all();
  auto task = store_.GetTask(task_id);
  if (!task.ok()) return ctx.Internal(task.status());
  if (!*task) return ctx.NotFound("task " + task_id + " not found");
  TaskInfo info = ReadInfo(**task);
  if (auto denied = ctx.Require(AnyOf(
          {One("queue:cancel-task:" + info.scheduler_id + "/" + info.task_group_id + "/" + task_id),
           One("queue:cancel-task-in-project:" + info.project_id),
           AllOf({One("queue:cancel-task"),
                  One("assume:scheduler-id:" + info.scheduler_id + "/" + info.task_group_id)})}))) {
    return *denied;
  }
  if ((*task)->deadline_ms <= ctx.now_ms) {
    return ctx.Conflict("task " + task_id + " cannot be cancelled after its deadline");
  }
  auto runs = store_.GetRuns(task_id);
  if (!runs.ok()) return ctx.Internal(runs.status());
  Status st;
  if (runs->empty()) {
    RunRow run;
    run.task_id = task_id;
    run.state = "exception";
    run.reason_created = "exception";
    run.reason_resolved = "canceled";
    run.scheduled_ms = run.resolved_ms = ctx.now_ms;
    st = store_.InsertRun(run);
  } else if (runs->back().state == "pending" || runs->back().state == "running") {
    RunRow run = runs->back();
    run.state = "exception";
    run.reason_resolved = "canceled";
    run.resolved_ms = ctx.now_ms;
    st = store_.UpdateRun(run);
  }
  if (!st.ok()) return ctx.Internal(st);
  runs = store_.GetRuns(task_id);
  if (!runs.ok()) return ctx.Internal(runs.status());
  return Context::Ok(StatusBody(**task, *runs));
}

// --- claims --------------------------------------------------------------------------------------

Result<Credentials> LocalQueueApi::IssueCredentials(const std::string& task_id, int run_id,
                                                    const std::string& worker_group,
                                                    const std::string& worker_id,
                                                    int64_t taken_until_ms,
                                                    const std::vector<std::string>& task_scopes) {
  std::string run = task_id + "/" + std::to_string(run_id);
  std::vector<std::string> scopes = {"queue:reclaim-task:" + run, "queue:resolve-task:" + run,
                                     "queue:create-artifact:" + run};
  scopes.insert(scopes.end(), task_scopes.begin(), task_scopes.end());
  std::string name = "task-client/" + run + "/on/" + worker_group + "/" + worker_id + "/until/" +
                     std::to_string(taken_until_ms / 1000);
  return CreateTemporaryCredentials(options_.issuer, name, scopes, NowMs(), taken_until_ms,
                                    NewSlugId() + NewSlugId());
}

namespace {

void WriteCredentials(JsonOut& out, const Credentials& c) {
  out.BeginObject();
  out.KeyStr("clientId", c.client_id);
  out.KeyStr("accessToken", c.access_token);
  out.KeyStr("certificate", c.certificate);
  out.EndObject();
}

}  // namespace

Status LocalQueueApi::ClaimLocked(const std::string& task_queue_id, const std::string& worker_group,
                                  const std::string& worker_id, int count, std::string* tasks_json,
                                  int* claimed) {
  int64_t now = NowMs();
  auto pending = store_.PendingRuns(task_queue_id, now, count);
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return Status::Ok();
  int64_t taken_until = now + std::chrono::duration_cast<Millis>(options_.claim_timeout).count();
  Status st = store_.Transaction([&]() -> Status {
    for (RunRow& run : *pending) {
      run.state = "running";
      run.worker_group = worker_group;
      run.worker_id = worker_id;
      run.started_ms = now;
      run.taken_until_ms = taken_until;
      Status s = store_.UpdateRun(run);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  for (const RunRow& run : *pending) {
    auto task = store_.GetTask(run.task_id);
    if (!task.ok()) return task.status();
    if (!*task) return Status(Code::kInternal, "claimed run of a missing task " + run.task_id);
    auto runs = store_.GetRuns(run.task_id);
    if (!runs.ok()) return runs.status();
    auto creds = IssueCredentials(run.task_id, run.run_id, worker_group, worker_id, taken_until,
                                  ReadInfo(**task).scopes);
    if (!creds.ok()) return creds.status();
    JsonOut out;
    out.BeginObject();
    out.Key("status");
    WriteStatus(out, **task, *runs);
    out.Key("runId").Int(run.run_id);
    out.KeyStr("workerGroup", worker_group);
    out.KeyStr("workerId", worker_id);
    out.KeyStr("takenUntil", Iso(taken_until));
    out.Key("task").Raw((*task)->definition);
    out.Key("credentials");
    WriteCredentials(out, *creds);
    out.EndObject();
    if (*claimed > 0) tasks_json->push_back(',');
    *tasks_json += out.Take();
    ++*claimed;
  }
  return Status::Ok();
}

ApiReply LocalQueueApi::ClaimWork(Context& ctx) {
  const std::string& task_queue_id = ctx.Param("taskQueueId");
  if (!IsTaskQueueId(task_queue_id)) {
    return ctx.Error(400, "InvalidRequestArguments",
                     "taskQueueId \"" + task_queue_id + "\" is not <provisionerId>/<workerType>");
  }
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;
  if (Problem p = CheckKnownKeys(*body, {"workerGroup", "workerId", "tasks"},
                                 "in the claimWork request")) {
    return ctx.BadInput(*p);
  }
  auto worker_group = json::GetString(*body, "workerGroup");
  auto worker_id = json::GetString(*body, "workerId");
  if (!worker_group || !IsIdentifier(*worker_group)) {
    return ctx.BadInput("workerGroup must match ^[a-zA-Z0-9-_]{1,38}$");
  }
  if (!worker_id || !IsIdentifier(*worker_id)) {
    return ctx.BadInput("workerId must match ^[a-zA-Z0-9-_]{1,38}$");
  }
  int64_t count = 1;
  if (const json::Value* tasks = json::Find(*body, "tasks")) {
    if (!tasks->IsInt64() || tasks->GetInt64() < 1 || tasks->GetInt64() > 32) {
      return ctx.BadInput("tasks must be an integer in 1..32");
    }
    count = tasks->GetInt64();
  }
  if (auto denied =
          ctx.Require(AllOf({One("queue:claim-work:" + task_queue_id),
                             One("queue:worker-id:" + *worker_group + "/" + *worker_id)}))) {
    return *denied;
  }

  auto give_up = std::chrono::steady_clock::now() + options_.claim_poll_timeout;
  std::string tasks_json;
  int claimed = 0;
  std::unique_lock lock(mu_);
  while (true) {
    auto swept = SweepLocked(NowMs());
    if (!swept.ok()) return ctx.Internal(swept.status());
    if (*swept) work_cv_.notify_all();
    Status st = ClaimLocked(task_queue_id, *worker_group, *worker_id, static_cast<int>(count),
                            &tasks_json, &claimed);
    if (!st.ok()) return ctx.Internal(st);
    if (claimed > 0 || shutting_down_ || std::chrono::steady_clock::now() >= give_up) break;
    ++waiting_claims_;
    work_cv_.wait_until(lock, give_up);
    --waiting_claims_;
  }
  return Context::Ok("{\"tasks\":[" + tasks_json + "]}");
}

std::optional<ApiReply> LocalQueueApi::LoadTaskLocked(Context& ctx, const std::string& task_id,
                                                      int run_id, TaskRow* task,
                                                      std::vector<RunRow>* runs) {
  auto swept = SweepLocked(ctx.now_ms);
  if (!swept.ok()) return ctx.Internal(swept.status());
  if (*swept) work_cv_.notify_all();
  auto found = store_.GetTask(task_id);
  if (!found.ok()) return ctx.Internal(found.status());
  if (!*found) return ctx.NotFound("task " + task_id + " not found");
  auto all = store_.GetRuns(task_id);
  if (!all.ok()) return ctx.Internal(all.status());
  if (run_id >= static_cast<int>(all->size())) {
    return ctx.NotFound("task " + task_id + " has no run " + std::to_string(run_id));
  }
  *task = std::move(**found);
  *runs = std::move(*all);
  return std::nullopt;
}

ApiReply LocalQueueApi::ReclaimTask(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  int run_id = *ParseRunId(ctx.Param("runId"));
  if (auto denied = ctx.Require(One("queue:reclaim-task:" + task_id + "/" + ctx.Param("runId")))) {
    return *denied;
  }
  std::lock_guard lock(mu_);
  TaskRow task_row;
  std::vector<RunRow> run_rows;
  if (auto reply = LoadTaskLocked(ctx, task_id, run_id, &task_row, &run_rows)) return *reply;
  if (task_row.deadline_ms <= ctx.now_ms) {
    return ctx.Conflict("task " + task_id + " is past its deadline");
  }
  RunRow run = run_rows[run_id];
  if (run_id + 1 != static_cast<int>(run_rows.size()) || run.state != "running") {
    return ctx.Conflict("run " + std::to_string(run_id) + " of task " + task_id + " is " +
                        run.state +
                        (run.reason_resolved.empty() ? "" : " (" + run.reason_resolved + ")") +
                        ", not running: it cannot be reclaimed");
  }
  run.taken_until_ms =
      ctx.now_ms + std::chrono::duration_cast<Millis>(options_.claim_timeout).count();
  Status st = store_.UpdateRun(run);
  if (!st.ok()) return ctx.Internal(st);
  run_rows[run_id] = run;
  auto creds = IssueCredentials(task_id, run_id, run.worker_group, run.worker_id,
                                run.taken_until_ms, ReadInfo(task_row).scopes);
  if (!creds.ok()) return ctx.Internal(creds.status());
  JsonOut out;
  out.BeginObject();
  out.Key("status");
  WriteStatus(out, task_row, run_rows);
  out.Key("runId").Int(run_id);
  out.KeyStr("workerGroup", run.worker_group);
  out.KeyStr("workerId", run.worker_id);
  out.KeyStr("takenUntil", Iso(run.taken_until_ms));
  out.Key("credentials");
  WriteCredentials(out, *creds);
  out.EndObject();
  return Context::Ok(out.Take());
}

ApiReply LocalQueueApi::ReportCompleted(Context& ctx) {
  return Resolve(ctx, "completed", "completed");
}

ApiReply LocalQueueApi::ReportFailed(Context& ctx) { return Resolve(ctx, "failed", "failed"); }

ApiReply LocalQueueApi::ReportException(Context& ctx) {
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;
  auto reason = json::GetString(*body, "reason");
  static const std::set<std::string> kReasons = {"worker-shutdown", "malformed-payload",
                                                 "resource-unavailable", "internal-error",
                                                 "intermittent-task"};
  if (!reason || !kReasons.count(*reason)) {
    return ctx.BadInput(
        "reason must be one of worker-shutdown, malformed-payload, resource-unavailable, "
        "internal-error, intermittent-task");
  }
  if (body->MemberCount() != 1) return ctx.BadInput("only \"reason\" may be given");
  return Resolve(ctx, "exception", *reason);
}

ApiReply LocalQueueApi::Resolve(Context& ctx, const std::string& state, const std::string& reason) {
  const std::string& task_id = ctx.Param("taskId");
  int run_id = *ParseRunId(ctx.Param("runId"));
  if (auto denied = ctx.Require(One("queue:resolve-task:" + task_id + "/" + ctx.Param("runId")))) {
    return *denied;
  }
  std::lock_guard lock(mu_);
  TaskRow task_row;
  std::vector<RunRow> run_rows;
  if (auto reply = LoadTaskLocked(ctx, task_id, run_id, &task_row, &run_rows)) return *reply;
  RunRow& run = run_rows[run_id];
  if (run.state != "running") {
    if (run.state == state && run.reason_resolved == reason) {
      return Context::Ok(StatusBody(task_row, run_rows));  // idempotent
    }
    return ctx.Conflict("run " + std::to_string(run_id) + " of task " + task_id + " is " +
                        run.state +
                        (run.reason_resolved.empty() ? "" : " (" + run.reason_resolved + ")") +
                        ", not running: it cannot be resolved " + state);
  }
  bool retry = state == "exception" &&
               (reason == "worker-shutdown" || reason == "intermittent-task") &&
               task_row.retries_left > 0 && run_id + 1 <= kMaxRuns;
  RunRow resolved = run;
  resolved.state = state;
  resolved.reason_resolved = reason;
  resolved.resolved_ms = ctx.now_ms;
  std::optional<RunRow> next;
  Status st = store_.Transaction([&]() -> Status {
    Status s = store_.UpdateRun(resolved);
    if (!s.ok() || !retry) return s;
    auto added = ScheduleRetry(store_, task_row, run_id + 1,
                               reason == "worker-shutdown" ? "retry" : "task-retry", ctx.now_ms);
    if (!added.ok()) return added.status();
    next = std::move(*added);
    return Status::Ok();
  });
  if (!st.ok()) return ctx.Internal(st);
  // The rows as now stored, without reading them back.
  run = std::move(resolved);
  if (next) {
    --task_row.retries_left;
    run_rows.push_back(std::move(*next));
    work_cv_.notify_all();
  }
  return Context::Ok(StatusBody(task_row, run_rows));
}

// --- artifacts -----------------------------------------------------------------------------------

ApiReply LocalQueueApi::CreateArtifact(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  const std::string& name = ctx.Param("name");
  int run_id = *ParseRunId(ctx.Param("runId"));
  if (auto denied =
          ctx.Require(One("queue:create-artifact:" + task_id + "/" + ctx.Param("runId")))) {
    return *denied;
  }
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;

  ArtifactRow a;
  a.task_id = task_id;
  a.run_id = run_id;
  a.name = name;
  auto storage = json::GetString(*body, "storageType");
  if (!storage) return ctx.BadInput("storageType is required");
  a.storage_type = *storage;
  std::vector<std::string_view> allowed = {"storageType", "expires"};
  // s3 and reference artifacts: a required contentType.
  auto required_content_type = [&]() -> Problem {
    auto ct = json::GetString(*body, "contentType");
    if (!ct || ct->size() > 255) return "contentType is required (at most 255 characters)";
    a.content_type = *ct;
    return std::nullopt;
  };
  if (a.storage_type == "s3") {
    allowed.insert(allowed.end(), {"contentType", "contentLength"});
    if (Problem p = required_content_type()) return ctx.BadInput(*p);
    if (const json::Value* len = json::Find(*body, "contentLength")) {
      if (!len->IsInt64() || len->GetInt64() < 0) {
        return ctx.BadInput("contentLength must be a non-negative integer");
      }
    }
  } else if (a.storage_type == "reference") {
    allowed.insert(allowed.end(), {"contentType", "url"});
    if (Problem p = required_content_type()) return ctx.BadInput(*p);
    auto url = json::GetString(*body, "url");
    if (!url || (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) ||
        !IsPrintableAscii(*url) || url->find(' ') != std::string::npos) {
      return ctx.BadInput("url must be an http:// or https:// URL");
    }
    a.url = *url;
  } else if (a.storage_type == "link") {
    allowed.insert(allowed.end(), {"contentType", "artifact"});
    auto target = json::GetString(*body, "artifact");
    if (!target) return ctx.BadInput("artifact (the name of the linked artifact) is required");
    if (auto problem = CheckArtifactName(*target)) return ctx.BadInput("artifact: " + *problem);
    a.link_target = *target;
    a.content_type = "application/binary";
    if (const json::Value* ct = json::Find(*body, "contentType")) {
      if (!ct->IsString() || ct->GetStringLength() > 255) {
        return ctx.BadInput("contentType must be a string of at most 255 characters");
      }
      a.content_type = ct->GetString();
    }
  } else if (a.storage_type == "error") {
    allowed.insert(allowed.end(), {"reason", "message"});
    auto reason = json::GetString(*body, "reason");
    static const std::set<std::string> kReasons = {
        "file-missing-on-worker", "invalid-resource-on-worker", "too-large-file-on-worker",
        "file-not-readable-on-worker"};
    if (!reason || !kReasons.count(*reason)) {
      return ctx.BadInput(
          "reason must be one of file-missing-on-worker, invalid-resource-on-worker, "
          "too-large-file-on-worker, file-not-readable-on-worker");
    }
    auto message = json::GetString(*body, "message");
    if (!message || message->size() > 4096) {
      return ctx.BadInput("message is required (at most 4096 characters)");
    }
    a.error_reason = *reason;
    a.error_message = *message;
    a.content_type = "application/binary";
  } else if (a.storage_type == "object") {
    return ctx.Error(400, "InputError",
                     "storageType \"object\" needs the object service, which local-queue does not "
                     "run; use \"s3\"");
  } else {
    return ctx.BadInput("storageType must be one of s3, reference, link, error");
  }
  if (Problem p = CheckKnownKeys(*body, allowed, "for a " + a.storage_type + " artifact")) {
    return ctx.BadInput(*p);
  }
  int64_t expires = 0;
  if (Problem p = CheckTime(json::Find(*body, "expires"), "expires", &expires)) {
    return ctx.BadInput(*p);
  }
  a.expires_ms = expires;

  std::lock_guard lock(mu_);
  TaskRow task_row;
  std::vector<RunRow> run_rows;
  if (auto reply = LoadTaskLocked(ctx, task_id, run_id, &task_row, &run_rows)) return *reply;
  const RunRow& run = run_rows[run_id];
  if (run.state == "pending") {
    return ctx.Error(
        400, "InputError",
        "run " + std::to_string(run_id) + " of task " + task_id + " has not been claimed");
  }
  bool recent_exception =
      run.state == "exception" && run.resolved_ms + 25 * kMinuteMs >= ctx.now_ms;
  if (run.state != "running" && !recent_exception) {
    return ctx.Conflict("run " + std::to_string(run_id) + " of task " + task_id + " is " +
                        run.state + ": artifacts can no longer be created");
  }
  if (a.expires_ms > task_row.expires_ms) {
    return ctx.BadInput("expires is after the task's expires (" + Iso(task_row.expires_ms) + ")");
  }
  if (a.expires_ms < ctx.now_ms) return ctx.BadInput("expires is in the past");

  auto existing = store_.GetArtifact(task_id, run_id, name);
  if (!existing.ok()) return ctx.Internal(existing.status());
  if (*existing) {
    const ArtifactRow& old = **existing;
    bool same = old.storage_type == a.storage_type && old.content_type == a.content_type &&
                old.url == a.url && old.link_target == a.link_target &&
                old.error_reason == a.error_reason && old.error_message == a.error_message &&
                a.expires_ms >= old.expires_ms;
    bool replace_reference = old.storage_type == "reference" && run.state == "running" &&
                             (a.storage_type == "reference" || a.storage_type == "link");
    if (!same && !replace_reference) {
      return ctx.Conflict("artifact " + name + " already exists with different properties");
    }
    if (same && a.storage_type == "s3") {
      a.blob_id = old.blob_id;
      a.uploaded = old.uploaded;
      a.content_encoding = old.content_encoding;
      a.content_length = old.content_length;
    }
  }
  std::string token;
  int64_t put_expires =
      ctx.now_ms + std::chrono::duration_cast<Millis>(options_.put_url_validity).count();
  if (a.storage_type == "s3") {
    if (a.blob_id.empty()) a.blob_id = NewBlobId();
    token = NewBlobId();
  }
  Status st = store_.Transaction([&]() -> Status {
    Status s = store_.PutArtifact(a);
    if (!s.ok() || token.empty()) return s;
    return store_.InsertUpload(UploadRow{token, task_id, run_id, name, put_expires});
  });
  if (!st.ok()) return ctx.Internal(st);

  JsonOut out;
  out.BeginObject();
  out.KeyStr("storageType", a.storage_type);
  if (a.storage_type == "s3") {
    out.KeyStr("putUrl", BlobUrl(token));
    out.KeyStr("expires", Iso(put_expires));
    out.KeyStr("contentType", a.content_type);
  }
  out.EndObject();
  return Context::Ok(out.Take());
}

ApiReply LocalQueueApi::FinishArtifact(Context& ctx) {
  if (auto denied = ctx.Require(
          One("queue:create-artifact:" + ctx.Param("taskId") + "/" + ctx.Param("runId")))) {
    return *denied;
  }
  return ctx.Error(400, "InputError",
                   "finishArtifact applies to object artifacts only, which local-queue does not "
                   "support");
}

std::optional<ApiReply> LocalQueueApi::ChooseRunLocked(Context& ctx, const std::string& task_id,
                                                       int* run_id) {
  auto task = store_.GetTask(task_id);
  if (!task.ok()) return ctx.Internal(task.status());
  if (!*task) return ctx.NotFound("task " + task_id + " not found");
  auto runs = store_.GetRuns(task_id);
  if (!runs.ok()) return ctx.Internal(runs.status());
  if (ctx.params.count("runId")) {
    *run_id = *ParseRunId(ctx.Param("runId"));
    if (*run_id >= static_cast<int>(runs->size())) {
      return ctx.NotFound("task " + task_id + " has no run " + std::to_string(*run_id));
    }
  } else {
    if (runs->empty()) return ctx.NotFound("task " + task_id + " has no runs");
    *run_id = static_cast<int>(runs->size()) - 1;
  }
  return std::nullopt;
}

std::optional<ApiReply> LocalQueueApi::LookupArtifact(Context& ctx, ArtifactRow* out) {
  const std::string& task_id = ctx.Param("taskId");
  std::string name = ctx.Param("name");
  if (auto denied = ctx.Require(One("queue:get-artifact:" + name))) return *denied;
  std::lock_guard lock(mu_);
  int run_id = 0;
  if (auto reply = ChooseRunLocked(ctx, task_id, &run_id)) return reply;
  std::set<std::string> seen;
  for (int hop = 0; hop <= kMaxLinkHops; ++hop) {
    if (!seen.insert(name).second) break;
    auto a = store_.GetArtifact(task_id, run_id, name);
    if (!a.ok()) return ctx.Internal(a.status());
    if (!*a) {
      return ctx.NotFound("artifact " + name + " not found on run " + std::to_string(run_id) +
                          " of task " + task_id);
    }
    if ((*a)->expires_ms < ctx.now_ms) {
      return ctx.Error(410, "ResourceExpired", "artifact " + name + " has expired");
    }
    if ((*a)->storage_type != "link") {
      *out = std::move(**a);
      return std::nullopt;
    }
    name = (*a)->link_target;
    if (auto denied = ctx.Require(One("queue:get-artifact:" + name))) return *denied;
  }
  return ctx.Error(
      400, "InputError",
      "artifact links form a cycle (or a chain longer than " + std::to_string(kMaxLinkHops) + ")");
}

ApiReply LocalQueueApi::GetArtifact(Context& ctx) {
  ArtifactRow a;
  if (auto error = LookupArtifact(ctx, &a)) return *error;
  ApiReply reply;
  reply.headers.emplace_back("x-taskcluster-artifact-storage-type", a.storage_type);
  JsonOut out;
  if (a.storage_type == "error") {
    out.BeginObject().KeyStr("reason", a.error_reason).KeyStr("message", a.error_message);
    out.EndObject();
    reply.status = 424;
    reply.body = out.Take();
    return reply;
  }
  std::string url = a.storage_type == "s3" ? BlobUrl(a.blob_id) : a.url;
  out.BeginObject().KeyStr("storageType", a.storage_type).KeyStr("url", url).EndObject();
  reply.status = 303;
  reply.body = out.Take();
  reply.headers.emplace_back("Location", url);
  return reply;
}

ApiReply LocalQueueApi::ArtifactContent(Context& ctx) {
  ArtifactRow a;
  if (auto error = LookupArtifact(ctx, &a)) return *error;
  JsonOut out;
  out.BeginObject().KeyStr("storageType", a.storage_type);
  if (a.storage_type == "error") {
    out.KeyStr("reason", a.error_reason).KeyStr("message", a.error_message);
  } else {
    out.KeyStr("url", a.storage_type == "s3" ? BlobUrl(a.blob_id) : a.url);
  }
  out.EndObject();
  return Context::Ok(out.Take());
}

ApiReply LocalQueueApi::ArtifactInfo(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  const std::string& name = ctx.Param("name");
  bool latest = !ctx.params.count("runId");
  if (auto denied = ctx.Require(
          One("queue:list-artifacts:" + task_id + (latest ? "" : ":" + ctx.Param("runId"))))) {
    return *denied;
  }
  std::lock_guard lock(mu_);
  int run_id = 0;
  if (auto reply = ChooseRunLocked(ctx, task_id, &run_id)) return *reply;
  auto a = store_.GetArtifact(task_id, run_id, name);
  if (!a.ok()) return ctx.Internal(a.status());
  if (!*a) {
    return ctx.NotFound("artifact " + name + " not found on run " + std::to_string(run_id) +
                        " of task " + task_id);
  }
  JsonOut out;
  WriteArtifactEntry(out, **a);
  return Context::Ok(out.Take());
}

ApiReply LocalQueueApi::ListArtifacts(Context& ctx) {
  const std::string& task_id = ctx.Param("taskId");
  bool latest = !ctx.params.count("runId");
  if (auto denied = ctx.Require(
          One("queue:list-artifacts:" + task_id + (latest ? "" : ":" + ctx.Param("runId"))))) {
    return *denied;
  }
  auto query = ParseQuery(ctx.call.query);
  int limit = kMaxListLimit;
  if (query.count("limit")) {
    const std::string& l = query["limit"];
    if (l.empty() || l.size() > 4 ||
        !std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(l) < 1) {
      return ctx.Error(400, "InvalidRequestArguments", "limit must be an integer in 1..1000");
    }
    limit = std::min(std::stoi(l), kMaxListLimit);
  }
  std::string after;
  if (query.count("continuationToken")) {
    auto decoded = FromHex(query["continuationToken"]);
    if (!decoded) return ctx.Error(400, "InvalidRequestArguments", "bad continuationToken");
    after = *decoded;
  }
  std::lock_guard lock(mu_);
  int run_id = 0;
  if (auto reply = ChooseRunLocked(ctx, task_id, &run_id)) return *reply;
  auto rows = store_.ListArtifacts(task_id, run_id, after, limit + 1);
  if (!rows.ok()) return ctx.Internal(rows.status());
  bool more = static_cast<int>(rows->size()) > limit;
  if (more) rows->resize(limit);
  JsonOut out;
  out.BeginObject().Key("artifacts").BeginArray();
  for (const auto& a : *rows) WriteArtifactEntry(out, a);
  out.EndArray();
  if (more) out.KeyStr("continuationToken", ToHex(rows->back().name));
  out.EndObject();
  return Context::Ok(out.Take());
}

// --- blobs ---------------------------------------------------------------------------------------

ApiReply LocalQueueApi::PutBlob(const std::string& token, const std::string& content_type,
                                const std::string& content_encoding, const BlobWriter& write,
                                std::string* artifact) {
  ApiCall none;
  Context ctx{none, "putBlob", {}, NowMs()};
  if (!IsBlobId(token)) return ctx.NotFound("no such upload URL");
  std::string blob_id;
  {
    std::lock_guard lock(mu_);
    auto upload = store_.GetUpload(token);
    if (!upload.ok()) return ctx.Internal(upload.status());
    if (!*upload) return ctx.NotFound("no such upload URL");
    const UploadRow& u = **upload;
    *artifact = u.task_id + "/" + std::to_string(u.run_id) + "/" + u.name;
    if (u.expires_ms < ctx.now_ms) {
      return ctx.Error(403, "RequestExpired", "this upload URL expired at " + Iso(u.expires_ms));
    }
    auto a = store_.GetArtifact(u.task_id, u.run_id, u.name);
    if (!a.ok()) return ctx.Internal(a.status());
    if (!*a || (*a)->storage_type != "s3") return ctx.NotFound("the artifact is gone");
    if ((*a)->content_type != content_type) {
      return ctx.Error(
          400, "InputError",
          "Content-Type must be \"" + (*a)->content_type + "\", as declared by createArtifact");
    }
    blob_id = (*a)->blob_id;
  }
  if (!IsBlobId(blob_id)) return ctx.Internal(Status(Code::kInternal, "bad blob id"));
  std::string final_path = options_.blob_dir + "/" + blob_id;
  std::string tmp_path = final_path + ".part-" + NewSlugId();
  int64_t length = 0;
  if (auto failed = write(tmp_path, &length)) {
    std::error_code ec;
    fs::remove(tmp_path, ec);
    return *failed;
  }
  std::error_code ec;
  fs::rename(tmp_path, final_path, ec);
  if (ec) {
    fs::remove(tmp_path, ec);
    return ctx.Internal(Status(Code::kInternal, "cannot store the blob: " + ec.message()));
  }
  std::lock_guard lock(mu_);
  auto upload = store_.GetUpload(token);
  if (!upload.ok() || !*upload) return ctx.Internal(Status(Code::kInternal, "upload vanished"));
  auto a = store_.GetArtifact((*upload)->task_id, (*upload)->run_id, (*upload)->name);
  if (!a.ok()) return ctx.Internal(a.status());
  if (!*a || (*a)->blob_id != blob_id) return ctx.NotFound("the artifact is gone");
  ArtifactRow row = **a;
  row.uploaded = true;
  row.content_encoding = content_encoding;
  row.content_length = length;
  Status st = store_.PutArtifact(row);
  if (!st.ok()) return ctx.Internal(st);
  return Context::Ok("");
}

std::optional<ApiReply> LocalQueueApi::GetBlob(const std::string& blob_id, BlobFile* out) {
  ApiCall none;
  Context ctx{none, "getBlob", {}, NowMs()};
  if (!IsBlobId(blob_id)) return ctx.NotFound("no such blob");
  std::lock_guard lock(mu_);
  auto a = store_.ArtifactByBlob(blob_id);
  if (!a.ok()) return ctx.Internal(a.status());
  if (!*a || !(*a)->uploaded) return ctx.NotFound("no such blob (or not uploaded yet)");
  out->path = options_.blob_dir + "/" + blob_id;
  std::error_code ec;
  auto size = fs::file_size(out->path, ec);
  if (ec) return ctx.NotFound("the blob's file is missing");
  out->length = static_cast<int64_t>(size);
  out->content_type = (*a)->content_type;
  out->content_encoding = (*a)->content_encoding;
  out->artifact = (*a)->task_id + "/" + std::to_string((*a)->run_id) + "/" + (*a)->name;
  return std::nullopt;
}

// --- auth ----------------------------------------------------------------------------------------

ApiReply LocalQueueApi::ExpandScopes(Context& ctx) {
  if (auto denied = ctx.Require(One("auth:expand-scopes"))) return *denied;
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;
  std::vector<std::string> scopes;
  if (Problem p = CheckStringArray(json::Find(*body, "scopes"), "scopes", 100000, 0, 10000, false,
                                   &scopes)) {
    return ctx.BadInput(*p);
  }
  if (!json::Find(*body, "scopes")) return ctx.BadInput("scopes is required");
  // No roles here: expansion is the identity, normalised (sorted, without duplicates).
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  JsonOut out;
  out.BeginObject().Key("scopes").BeginArray();
  for (const auto& s : scopes) out.Str(s);
  out.EndArray().EndObject();
  return Context::Ok(out.Take());
}

ApiReply LocalQueueApi::CurrentScopes(Context& ctx) {
  if (auto denied = ctx.Require(One("auth:current-scopes"))) return *denied;
  JsonOut out;
  out.BeginObject().KeyStr("clientId", ctx.call.client_id).Key("scopes").BeginArray();
  for (const auto& s : ctx.call.scopes) out.Str(s);
  out.EndArray().EndObject();
  return Context::Ok(out.Take());
}

// --- index ---------------------------------------------------------------------------------------

namespace {

bool IsNamespace(std::string_view ns) {
  return !ns.empty() && ns.size() <= 255 && IsPrintableAscii(ns) &&
         ns.find('/') == std::string_view::npos;
}

std::string IndexBody(const IndexRow& r) {
  JsonOut out;
  out.BeginObject();
  out.KeyStr("namespace", r.index_namespace);
  out.KeyStr("taskId", r.task_id);
  out.Key("rank").Number(r.rank);
  out.Key("data").Raw(r.data);
  out.KeyStr("expires", Iso(r.expires_ms));
  out.EndObject();
  return out.Take();
}

}  // namespace

ApiReply LocalQueueApi::InsertIndex(Context& ctx) {
  const std::string& ns = ctx.Param("namespace");
  if (!IsNamespace(ns)) {
    return ctx.Error(400, "InvalidRequestArguments",
                     "namespace must be 1..255 printable characters");
  }
  if (auto denied = ctx.Require(One("index:insert-task:" + ns))) return *denied;
  ApiReply error;
  auto body = ctx.Body(&error);
  if (!body) return error;
  if (Problem p = CheckKnownKeys(*body, {"taskId", "rank", "data", "expires"},
                                 "in the insertTask request")) {
    return ctx.BadInput(*p);
  }
  IndexRow row;
  row.index_namespace = ns;
  auto task_id = json::GetString(*body, "taskId");
  if (!task_id || !IsTaskId(*task_id)) return ctx.BadInput("taskId must be a slugid");
  row.task_id = *task_id;
  const json::Value* rank = json::Find(*body, "rank");
  if (!rank || !rank->IsNumber()) return ctx.BadInput("rank must be a number");
  row.rank = rank->GetDouble();
  const json::Value* data = json::FindObject(*body, "data");
  if (!data) return ctx.BadInput("data must be an object");
  row.data = json::Serialize(*data);
  if (Problem p = CheckTime(json::Find(*body, "expires"), "expires", &row.expires_ms)) {
    return ctx.BadInput(*p);
  }
  std::lock_guard lock(mu_);
  auto existing = store_.GetIndex(ns);
  if (!existing.ok()) return ctx.Internal(existing.status());
  if (*existing && (*existing)->expires_ms >= ctx.now_ms && (*existing)->rank > row.rank) {
    return Context::Ok(IndexBody(**existing));
  }
  Status st = store_.PutIndex(row);
  if (!st.ok()) return ctx.Internal(st);
  return Context::Ok(IndexBody(row));
}

ApiReply LocalQueueApi::FindIndex(Context& ctx) {
  const std::string& ns = ctx.Param("indexPath");
  if (auto denied = ctx.Require(One("index:find-task:" + ns))) return *denied;
  auto row = store_.GetIndex(ns);
  if (!row.ok()) return ctx.Internal(row.status());
  if (!*row || (*row)->expires_ms < ctx.now_ms) {
    return ctx.NotFound("no task is indexed at " + ns);
  }
  return Context::Ok(IndexBody(**row));
}

ApiReply LocalQueueApi::FindArtifactFromTask(Context& ctx) {
  const std::string& ns = ctx.Param("indexPath");
  const std::string& name = ctx.Param("name");
  if (auto denied = ctx.Require(One("queue:get-artifact:" + name))) return *denied;
  auto row = store_.GetIndex(ns);
  if (!row.ok()) return ctx.Internal(row.status());
  if (!*row || (*row)->expires_ms < ctx.now_ms) {
    return ctx.NotFound("no task is indexed at " + ns);
  }
  std::string url =
      options_.root_url + "/api/queue/v1/task/" + (*row)->task_id + "/artifacts/" + UrlEscape(name);
  ApiReply reply;
  reply.status = 303;
  reply.headers.emplace_back("Location", url);
  JsonOut out;
  out.BeginObject().KeyStr("url", url).EndObject();
  reply.body = out.Take();
  return reply;
}

}  // namespace docker_worker

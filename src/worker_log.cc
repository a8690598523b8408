#include "docker_worker/worker_log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>

#include "docker_worker/time_format.h"

namespace docker_worker {

void WorkerLog::Event(std::string_view type, Fields fields) {
  if (!out_) return;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("time");
  std::string now = FormatIso(std::chrono::system_clock::now());
  w.String(now.data(), static_cast<rapidjson::SizeType>(now.size()));
  w.Key("type");
  w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
  for (const auto& [k, v] : fields) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  std::lock_guard lock(mu_);
  std::fwrite(buf.GetString(), 1, buf.GetSize(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace docker_worker

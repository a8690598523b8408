#include "docker_worker/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <vector>
#include <fstream>
#include <sstream>

#include "docker_worker/read_file.h"

namespace docker_worker::json {
namespace {

// Visits `root` and every value inside it, depth first, without recursion (hostile input may
// nest hundreds of thousands of levels). `visit(value, depth)` returns false to stop early.
template <typename V, typename F>
bool Walk(V& root, F&& visit) {
  std::vector<std::pair<V*, int>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!visit(*v, depth)) return false;
    if (v->IsObject()) {
      for (auto& m : v->GetObject()) stack.emplace_back(&m.value, depth + 1);
    } else if (v->IsArray()) {
      for (auto& e : v->GetArray()) stack.emplace_back(&e, depth + 1);
    }
  }
  return true;
}

void NormalizeIntegers(Value& root) {
  Walk(root, [](Value& v, int) {
    if (v.IsDouble()) {
      double d = v.GetDouble();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) {
        v.SetInt64(static_cast<int64_t>(d));
      }
    }
    return true;
  });
}

}  // namespace

Result<Document> Parse(std::string_view text) {
  Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag>(text.data(),
                                                                                 text.size());
  if (doc.HasParseError()) {
    return Status(Code::kInvalidArgument,
                  std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) +
                      ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  NormalizeIntegers(doc);
  return doc;
}

Result<Document> ParseFile(const std::string& path) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  auto doc = Parse(*text);
  if (!doc.ok()) return doc.status().Prefixed(path + ": ");
  return doc;
}

bool DepthWithin(const Value& value, int max_depth) {
  return Walk(value, [max_depth](const Value& v, int depth) {
    // A container at depth d holds values at depth d + 1: count its own level.
    return depth + ((v.IsObject() || v.IsArray()) ? 1 : 0) <= max_depth;
  });
}

bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::string Serialize(const Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Quote(std::string_view s) {
  Value v(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return Serialize(v);
}

std::string SerializePretty(const Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buf);
  writer.SetIndent(' ', 2);
  writer.SetFormatOptions(rapidjson::kFormatDefault);
  value.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

const char* TypeName(const Value& value) {
  if (value.IsObject()) return "object";
  if (value.IsArray()) return "array";
  if (value.IsString()) return "string";
  if (value.IsBool()) return "boolean";
  if (value.IsNull()) return "null";
  if (value.IsInt64() || value.IsUint64()) return "integer";
  return "number";
}

const Value* Find(const Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(Value(key.data(), static_cast<rapidjson::SizeType>(key.size())));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

const Value* FindObject(const Value& object, std::string_view key) {
  const Value* v = Find(object, key);
  return v && v->IsObject() ? v : nullptr;
}

const Value* FindArray(const Value& object, std::string_view key) {
  const Value* v = Find(object, key);
  return v && v->IsArray() ? v : nullptr;
}

std::optional<std::string> GetString(const Value& object, std::string_view key) {
  const Value* v = Find(object, key);
  if (!v || !v->IsString()) return std::nullopt;
  return std::string(v->GetString(), v->GetStringLength());
}

std::optional<int64_t> GetInt(const Value& object, std::string_view key) {
  const Value* v = Find(object, key);
  if (!v || !v->IsInt64()) return std::nullopt;
  return v->GetInt64();
}

std::optional<bool> GetBool(const Value& object, std::string_view key) {
  const Value* v = Find(object, key);
  if (!v || !v->IsBool()) return std::nullopt;
  return v->GetBool();
}

Value Str(std::string_view s, Allocator& alloc) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

}  // namespace docker_worker::json

#include "docker_worker/schema_validator.h"

#include <rapidjson/pointer.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <regex>
#include <stdexcept>

// valijson reports schema problems by throwing only when VALIJSON_USE_EXCEPTIONS is set, and
// aborts otherwise. Its RapidJSON adapter, seeing that macro, would also try to redefine
// RAPIDJSON_ASSERT (impossible here, RapidJSON is already included, so it emits a #warning;
// and it must not: every TU has to agree on RAPIDJSON_ASSERT). So: the throwing exceptions.hpp
// first (it is #pragma once), the adapter without the macro, then the rest with it. Only this
// file includes valijson.
#define VALIJSON_USE_EXCEPTIONS 1
#include <valijson/exceptions.hpp>
#undef VALIJSON_USE_EXCEPTIONS
#include <valijson/adapters/rapidjson_adapter.hpp>
#define VALIJSON_USE_EXCEPTIONS 1
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "docker_worker/embedded_schemas.h"

namespace docker_worker {

// The compiled form shared by copies of a SchemaValidator. `schema` is the schema as written
// (walked to phrase messages); `root` is valijson's compiled form of a prepared copy, and
// `branches` holds one compiled schema per alternative of every `oneOf`, keyed by the address
// of the oneOf array inside `schema`. Immutable once built.
struct SchemaValidator::Compiled {
  json::Document schema;
  std::unique_ptr<valijson::Schema> root;
  std::map<const json::Value*, std::vector<std::unique_ptr<valijson::Schema>>> branches;
};

namespace {

using Compiled = SchemaValidator::Compiled;

constexpr int kMaxOneOfDepth = 8;
constexpr int kMaxRefHops = 32;

// ---------------------------------------------------------------------------------------------
// Small helpers.

using json::Quote;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Levenshtein distance.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// True when `abbrev` reads as an abbreviation of `word`: same first letter and its letters occur
// in `word` in order ("cmd" -> "command").
bool IsAbbreviation(const std::string& abbrev, const std::string& word) {
  if (abbrev.size() < 2 || abbrev.size() >= word.size() || abbrev[0] != word[0]) return false;
  size_t j = 0;
  for (char c : word) {
    if (j < abbrev.size() && abbrev[j] == c) ++j;
  }
  return j == abbrev.size();
}

// Length of the common prefix of `a` and `b`.
size_t CommonPrefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// The allowed key closest to `key` (ignoring case): within edit distance 2; or else one that
// `key` abbreviates ("cmd" -> "command"); or else one sharing a prefix of at least 4 characters
// and half the longer name ("retries" -> "retry"). Empty when nothing is close.
std::string Suggest(std::string_view key, const std::vector<std::string>& allowed) {
  const std::string k = Lower(key);
  std::string best;
  size_t best_score = SIZE_MAX;
  for (const std::string& cand : allowed) {
    const std::string c = Lower(cand);
    size_t score = SIZE_MAX;
    size_t d = EditDistance(k, c);
    if (d <= 2 && d < k.size()) {
      score = d;
    } else if (IsAbbreviation(k, c)) {
      score = 3;
    } else if (size_t p = CommonPrefix(k, c); p >= 4 && 2 * p >= std::max(k.size(), c.size())) {
      score = 4;
    }
    if (score < best_score || (score == best_score && score != SIZE_MAX && cand < best)) {
      best_score = score;
      best = cand;
    }
  }
  return best;
}

std::string JoinAlternatives(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? " or " : ", ";
    out += items[i];
  }
  return out;
}

// The integer that follows `prefix` in `text`, or "" (for valijson texts such as
// "String should be no fewer than 3 characters").
std::string NumberAfter(std::string_view text, std::string_view prefix) {
  size_t pos = text.find(prefix);
  if (pos == std::string_view::npos) return "";
  pos += prefix.size();
  size_t end = pos;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) ||
                               text[end] == '.' || text[end] == '-')) {
    ++end;
  }
  std::string n(text.substr(pos, end - pos));
  if (n.find('.') != std::string::npos) {
    while (!n.empty() && n.back() == '0') n.pop_back();
    if (!n.empty() && n.back() == '.') n.pop_back();
  }
  return n;
}

// Text between the first pair of single quotes, for valijson texts like "Missing ... 'x'.".
std::string QuotedName(const std::string& text) {
  size_t open = text.find('\'');
  size_t close = text.rfind('\'');
  if (open == std::string::npos || close <= open) return "";
  return text.substr(open + 1, close - open - 1);
}

// ---------------------------------------------------------------------------------------------
// Walking the schema as written.

const json::Value* ResolveRef(const json::Document& root, const json::Value* node) {
  for (int hops = 0; node && node->IsObject() && hops < kMaxRefHops; ++hops) {
    auto ref = json::GetString(*node, "$ref");
    if (!ref) return node;
    if (ref->empty() || (*ref)[0] != '#') return nullptr;
    if (*ref == "#") {
      node = &root;
      continue;
    }
    rapidjson::Pointer pointer(ref->c_str(), ref->size());
    if (!pointer.IsValid()) return nullptr;
    node = pointer.Get(root);
  }
  return node && node->IsObject() ? node : nullptr;
}

// The subschema that applies to member `key` (or item `index` when `is_index`) of a value
// described by `node`; nullptr when the schema does not say (e.g. behind a oneOf).
const json::Value* ChildSchema(const json::Document& root, const json::Value* node,
                               const std::string& key, bool is_index, size_t index) {
  node = ResolveRef(root, node);
  if (!node) return nullptr;
  if (is_index) {
    if (const json::Value* items = json::Find(*node, "items")) {
      if (items->IsObject()) return ResolveRef(root, items);
      if (items->IsArray()) {
        if (index < items->Size()) return ResolveRef(root, &(*items)[index]);
        const json::Value* extra = json::FindObject(*node, "additionalItems");
        return extra ? ResolveRef(root, extra) : nullptr;
      }
    }
  } else {
    if (const json::Value* props = json::FindObject(*node, "properties")) {
      if (const json::Value* p = json::Find(*props, key)) return ResolveRef(root, p);
    }
    if (const json::Value* patterns = json::FindObject(*node, "patternProperties")) {
      for (const auto& m : patterns->GetObject()) {
        try {
          if (std::regex_search(key, std::regex(m.name.GetString()))) {
            return ResolveRef(root, &m.value);
          }
        } catch (const std::regex_error&) {
          // A pattern std::regex cannot compile applies to nothing here.
        }
      }
    }
    if (const json::Value* extra = json::FindObject(*node, "additionalProperties")) {
      return ResolveRef(root, extra);
    }
  }
  if (const json::Value* all = json::FindArray(*node, "allOf")) {
    for (const auto& branch : all->GetArray()) {
      if (const json::Value* found = ChildSchema(root, &branch, key, is_index, index)) {
        return found;
      }
    }
  }
  return nullptr;
}

// Property names that `node` declares (for "did you mean").
std::vector<std::string> DeclaredProperties(const json::Document& root, const json::Value* node) {
  std::vector<std::string> names;
  node = ResolveRef(root, node);
  if (!node) return names;
  if (const json::Value* props = json::FindObject(*node, "properties")) {
    for (const auto& m : props->GetObject()) names.emplace_back(m.name.GetString());
  }
  if (const json::Value* all = json::FindArray(*node, "allOf")) {
    for (const auto& branch : all->GetArray()) {
      for (auto& n : DeclaredProperties(root, &branch)) names.push_back(std::move(n));
    }
  }
  return names;
}

// True when `node` admits `key` through properties or patternProperties.
bool Declares(const json::Document& root, const json::Value* node, const std::string& key) {
  node = ResolveRef(root, node);
  if (!node) return false;
  if (const json::Value* props = json::FindObject(*node, "properties")) {
    if (json::Find(*props, key)) return true;
  }
  if (const json::Value* patterns = json::FindObject(*node, "patternProperties")) {
    for (const auto& m : patterns->GetObject()) {
      try {
        if (std::regex_search(key, std::regex(m.name.GetString()))) return true;
      } catch (const std::regex_error&) {
      }
    }
  }
  if (const json::Value* all = json::FindArray(*node, "allOf")) {
    for (const auto& branch : all->GetArray()) {
      if (Declares(root, &branch, key)) return true;
    }
  }
  return false;
}

bool TypeAdmits(const std::string& type, const json::Value& v) {
  if (type == "integer") return v.IsInt64() || v.IsUint64();
  if (type == "number") return v.IsNumber();
  return type == json::TypeName(v);
}

// The JSON types `node` allows: its "type", or else the union over its anyOf alternatives
// (whose type errors valijson reports at the same path). Empty when the schema does not say.
std::vector<std::string> DeclaredTypes(const json::Document& root, const json::Value* node,
                                       int depth = 0) {
  std::vector<std::string> types;
  node = ResolveRef(root, node);
  if (!node || depth > kMaxRefHops) return types;
  auto add = [&](const std::string& t) {
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
  };
  if (const json::Value* type = json::Find(*node, "type")) {
    if (type->IsString()) add(type->GetString());
    if (type->IsArray()) {
      for (const auto& t : type->GetArray()) {
        if (t.IsString()) add(t.GetString());
      }
    }
  } else if (const json::Value* any = json::FindArray(*node, "anyOf")) {
    for (const auto& branch : any->GetArray()) {
      auto branch_types = DeclaredTypes(root, &branch, depth + 1);
      if (branch_types.empty()) return {};  // some alternative takes any type
      for (const auto& t : branch_types) add(t);
    }
  }
  return types;
}

// True when the schema's "type" (if any) admits `v`.
bool SchemaTypeAdmits(const json::Document& root, const json::Value* node, const json::Value& v) {
  auto types = DeclaredTypes(root, node);
  if (types.empty()) return true;
  return std::any_of(types.begin(), types.end(),
                     [&](const std::string& t) { return TypeAdmits(t, v); });
}

// The single value a schema pins: its "const", or a one-element "enum".
const json::Value* PinnedValue(const json::Value* node) {
  if (!node) return nullptr;
  if (const json::Value* c = json::Find(*node, "const")) return c;
  if (const json::Value* e = json::FindArray(*node, "enum"); e && e->Size() == 1) return &(*e)[0];
  return nullptr;
}

// True when object `v` names `branch` through a required member pinned by const/enum.
bool Discriminates(const json::Document& root, const json::Value* branch, const json::Value& v) {
  if (!v.IsObject() || !branch) return false;
  const json::Value* required = json::FindArray(*branch, "required");
  const json::Value* props = json::FindObject(*branch, "properties");
  if (!required || !props) return false;
  for (const auto& name : required->GetArray()) {
    if (!name.IsString()) continue;
    const json::Value* pinned = PinnedValue(ResolveRef(root, json::Find(*props, name.GetString())));
    const json::Value* actual = json::Find(v, name.GetString());
    if (pinned && actual && *pinned == *actual) return true;
  }
  return false;
}

std::string NumberText(const json::Value* v) {
  if (!v || !v->IsNumber()) return "";
  return json::Serialize(*v);
}

// ---------------------------------------------------------------------------------------------
// Preparing the schema for valijson.

// valijson checks "format" even on values of another type (and throws on non-empty objects),
// so every "format" is rewritten to apply to strings only: {"if": {"type": "string"},
// "then": {"format": F}} appended to the node's allOf. Paths of existing keywords do not change.
void PrepareForValijson(json::Value& node, json::Allocator& alloc);

void PrepareMap(json::Value* map, json::Allocator& alloc) {
  if (!map || !map->IsObject()) return;
  for (auto& m : map->GetObject()) PrepareForValijson(m.value, alloc);
}

void PrepareForValijson(json::Value& node, json::Allocator& alloc) {
  if (!node.IsObject()) return;
  for (const char* key :
       {"properties", "patternProperties", "definitions", "$defs", "dependencies"}) {
    auto it = node.FindMember(key);
    if (it != node.MemberEnd()) PrepareMap(&it->value, alloc);
  }
  for (const char* key : {"additionalProperties", "additionalItems", "not", "if", "then", "else",
                          "contains", "propertyNames", "items"}) {
    auto it = node.FindMember(key);
    if (it == node.MemberEnd()) continue;
    if (it->value.IsObject()) PrepareForValijson(it->value, alloc);
    if (it->value.IsArray()) {
      for (auto& e : it->value.GetArray()) PrepareForValijson(e, alloc);
    }
  }
  for (const char* key : {"allOf", "anyOf", "oneOf"}) {
    auto it = node.FindMember(key);
    if (it != node.MemberEnd() && it->value.IsArray()) {
      for (auto& e : it->value.GetArray()) PrepareForValijson(e, alloc);
    }
  }
  auto format = node.FindMember("format");
  if (format == node.MemberEnd()) return;
  json::Value then(rapidjson::kObjectType);
  then.AddMember("format", json::Value(format->value, alloc), alloc);
  json::Value cond(rapidjson::kObjectType);
  json::Value if_string(rapidjson::kObjectType);
  if_string.AddMember("type", "string", alloc);
  cond.AddMember("if", if_string, alloc);
  cond.AddMember("then", then, alloc);
  node.RemoveMember("format");
  auto all = node.FindMember("allOf");
  if (all == node.MemberEnd() || !all->value.IsArray()) {
    node.RemoveMember("allOf");
    json::Value list(rapidjson::kArrayType);
    list.PushBack(cond, alloc);
    node.AddMember("allOf", list, alloc);
  } else {
    all->value.PushBack(cond, alloc);
  }
}

// Calls visit(pointer, oneOf array) for every oneOf in the schema, in schema positions only.
template <typename Visit>
void ForEachOneOf(const json::Value& node, const std::string& pointer, const Visit& visit) {
  if (!node.IsObject()) return;
  for (const char* key :
       {"properties", "patternProperties", "definitions", "$defs", "dependencies"}) {
    if (const json::Value* map = json::FindObject(node, key)) {
      std::string base = JsonPointerAppend(pointer, key);
      for (const auto& m : map->GetObject()) {
        ForEachOneOf(m.value, JsonPointerAppend(base, m.name.GetString()), visit);
      }
    }
  }
  for (const char* key : {"additionalProperties", "additionalItems", "not", "if", "then", "else",
                          "contains", "propertyNames", "items", "allOf", "anyOf", "oneOf"}) {
    const json::Value* child = json::Find(node, key);
    if (!child) continue;
    std::string base = JsonPointerAppend(pointer, key);
    if (child->IsObject()) ForEachOneOf(*child, base, visit);
    if (child->IsArray()) {
      for (rapidjson::SizeType i = 0; i < child->Size(); ++i) {
        ForEachOneOf((*child)[i], JsonPointerAppend(base, std::to_string(i)), visit);
      }
    }
  }
  if (const json::Value* one_of = json::FindArray(node, "oneOf")) visit(pointer, *one_of);
}

std::unique_ptr<valijson::Schema> CompileValijson(const json::Value& prepared) {
  auto schema = std::make_unique<valijson::Schema>();
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::RapidJsonAdapter adapter(prepared);
  parser.populateSchema(adapter, *schema);
  return schema;
}

// ---------------------------------------------------------------------------------------------
// Turning valijson results into ValidationErrors.

// One valijson error, located in the document and in the schema as written.
struct RawError {
  std::string pointer;        // relative to the validated value
  const json::Value* value;   // the offending value, or nullptr if it could not be found
  const json::Value* schema;  // the schema node that applies there, or nullptr
  std::string description;    // valijson's text
};

RawError Locate(const json::Document& schema_root, const json::Value* schema_start,
                const json::Value& doc, const valijson::ValidationResults::Error& e) {
  RawError raw{"", &doc, ResolveRef(schema_root, schema_start), e.description};
  for (size_t i = 1; i < e.context.size(); ++i) {  // context[0] is "<root>"
    const std::string& part = e.context[i];
    std::string token = (part.size() >= 2 && part.front() == '[' && part.back() == ']')
                            ? part.substr(1, part.size() - 2)
                            : part;
    bool is_index = raw.value && raw.value->IsArray();
    size_t index = 0;
    if (is_index) {
      is_index = !token.empty() && std::all_of(token.begin(), token.end(), [](char ch) {
        return std::isdigit(static_cast<unsigned char>(ch));
      });
      if (is_index) index = std::stoul(token);
    }
    raw.pointer = JsonPointerAppend(raw.pointer, token);
    if (raw.value && is_index) {
      raw.value = index < raw.value->Size() ? &(*raw.value)[static_cast<rapidjson::SizeType>(index)]
                                            : nullptr;
    } else if (raw.value) {
      raw.value = json::Find(*raw.value, token);
    }
    raw.schema =
        raw.schema ? ChildSchema(schema_root, raw.schema, token, is_index, index) : nullptr;
  }
  return raw;
}

bool IsWrapper(const std::string& d) {
  return StartsWith(d, "Failed to validate against schema associated with") ||
         StartsWith(d, "Failed to validate against additional properties schema") ||
         StartsWith(d, "Failed to validate item #") ||
         StartsWith(d, "Failed to validate against a conditional schema") ||
         StartsWith(d, "Failed to validate against any schemas allowed by anyOf") ||
         StartsWith(d, "Failed to validate against dependent schema") ||
         StartsWith(d, "Failed to validate against child schema #") ||
         StartsWith(d, "Target value and comparison value are not equal");
}

constexpr std::string_view kOneOfNone =
    "Failed to validate against any child schemas allowed by oneOf";
constexpr std::string_view kOneOfMany = "Failed to validate against exactly one child schema";

bool Within(const std::string& pointer, const std::string& region) {
  return pointer == region || StartsWith(pointer, region + "/");
}

// Rewrites one leaf error; appends zero or more errors (unknown properties may yield several).
void Phrase(const json::Document& schema_root, const RawError& raw, const std::string& prefix,
            std::vector<ValidationError>* out) {
  const std::string path = prefix + raw.pointer;
  const std::string& d = raw.description;
  const json::Value* s = raw.schema;
  auto add = [&](std::string message) { out->push_back({path, std::move(message)}); };

  if (StartsWith(d, "Value type not permitted")) {
    auto types = DeclaredTypes(schema_root, s);
    std::string got = raw.value ? json::TypeName(*raw.value) : "another type";
    if (types.empty()) {
      add("has the wrong type (" + got + ")");
    } else {
      add("expected " + JoinAlternatives(types) + ", got " + got);
    }
  } else if (StartsWith(d, "Missing required property")) {
    add("missing required property " + Quote(QuotedName(d)));
  } else if (StartsWith(d, "Missing dependency")) {
    add("missing property " + Quote(QuotedName(d)) + ", required by another property here");
  } else if (StartsWith(d, "Object contains a property that could not be validated")) {
    std::vector<std::string> unknown;
    if (s && raw.value && raw.value->IsObject()) {
      for (const auto& m : raw.value->GetObject()) {
        std::string key(m.name.GetString(), m.name.GetStringLength());
        if (!Declares(schema_root, s, key)) unknown.push_back(std::move(key));
      }
    }
    if (unknown.empty()) unknown.push_back(QuotedName(d));
    auto allowed = DeclaredProperties(schema_root, s);
    for (const std::string& key : unknown) {
      std::string message = "unknown property " + Quote(key);
      std::string hint = Suggest(key, allowed);
      if (!hint.empty()) message += "; did you mean " + Quote(hint) + "?";
      out->push_back({JsonPointerAppend(path, key), std::move(message)});
    }
  } else if (StartsWith(d, "Failed to match against any enum values")) {
    const json::Value* values = s ? json::FindArray(*s, "enum") : nullptr;
    if (!values) {
      add("is not one of the allowed values");
    } else if (values->Size() == 1) {
      add("must be " + json::Serialize((*values)[0]));
    } else {
      std::string list;
      for (const auto& v : values->GetArray()) {
        if (!list.empty()) list += ", ";
        list += json::Serialize(v);
      }
      add("must be one of " + list);
    }
  } else if (StartsWith(d, "Failed to match expected value set by 'const'")) {
    const json::Value* c = s ? json::Find(*s, "const") : nullptr;
    add(c ? "must be " + json::Serialize(*c) : "is not the required value");
  } else if (StartsWith(d, "Expected number") && raw.value && raw.value->IsUint64() &&
             !raw.value->IsInt64()) {
    // valijson compares such integers after wrapping them to negative int64 values.
    add("is too large (at most 9223372036854775807)");
  } else if (StartsWith(d, "Expected number greater than or equal to")) {
    std::string n = NumberText(s ? json::Find(*s, "minimum") : nullptr);
    add("must be >= " + (n.empty() ? NumberAfter(d, "to ") : n));
  } else if (StartsWith(d, "Expected number greater than")) {
    std::string n = NumberText(s ? json::Find(*s, "exclusiveMinimum") : nullptr);
    if (n.empty()) n = NumberText(s ? json::Find(*s, "minimum") : nullptr);
    add("must be > " + (n.empty() ? NumberAfter(d, "than ") : n));
  } else if (StartsWith(d, "Expected number less than or equal to")) {
    std::string n = NumberText(s ? json::Find(*s, "maximum") : nullptr);
    add("must be <= " + (n.empty() ? NumberAfter(d, "to ") : n));
  } else if (StartsWith(d, "Expected number less than")) {
    std::string n = NumberText(s ? json::Find(*s, "exclusiveMaximum") : nullptr);
    if (n.empty()) n = NumberText(s ? json::Find(*s, "maximum") : nullptr);
    add("must be < " + (n.empty() ? NumberAfter(d, "than ") : n));
  } else if (StartsWith(d, "String should be a valid ")) {
    std::string format = d.substr(std::string_view("String should be a valid ").size());
    std::string text = raw.value && raw.value->IsString()
                           ? Quote({raw.value->GetString(), raw.value->GetStringLength()})
                           : "value";
    if (format == "date-time") {
      add(text + " is not an RFC 3339 date-time");
    } else if (format == "date") {
      add(text + " is not an RFC 3339 full-date (YYYY-MM-DD)");
    } else if (format == "time") {
      add(text + " is not an RFC 3339 full-time");
    } else {
      add(text + " is not a valid " + format);
    }
  } else if (StartsWith(d, "Failed to match regex specified by 'pattern'")) {
    std::string text = raw.value && raw.value->IsString()
                           ? Quote({raw.value->GetString(), raw.value->GetStringLength()})
                           : "value";
    auto pattern = s ? json::GetString(*s, "pattern") : std::nullopt;
    add(text + " does not match the pattern " + (pattern ? Quote(*pattern) : "of the schema"));
  } else if (StartsWith(d, "String should be no fewer than")) {
    add("must be at least " + NumberAfter(d, "than ") + " characters long");
  } else if (StartsWith(d, "String should be no more than")) {
    add("must be at most " + NumberAfter(d, "than ") + " characters long");
  } else if (StartsWith(d, "Array should contain no fewer than")) {
    add("must have at least " + NumberAfter(d, "than ") + " items");
  } else if (StartsWith(d, "Array should contain no more than")) {
    add("must have at most " + NumberAfter(d, "than ") + " items");
  } else if (StartsWith(d, "Array contains more items than allowed") ||
             StartsWith(d, "Cannot validate item #")) {
    add("has more items than allowed");
  } else if (StartsWith(d, "Object should have no fewer than")) {
    add("must have at least " + NumberAfter(d, "than ") + " properties");
  } else if (StartsWith(d, "Object should have no more than")) {
    add("must have at most " + NumberAfter(d, "than ") + " properties");
  } else if (StartsWith(d, "Elements at indexes #")) {
    add("must not contain duplicate items (items " + NumberAfter(d, "indexes #") + " and " +
        NumberAfter(d, "and #") + " are equal)");
  } else if (StartsWith(d, "Value should be a multiple of")) {
    std::string n = NumberText(s ? json::Find(*s, "multipleOf") : nullptr);
    add("must be a multiple of " + (n.empty() ? NumberAfter(d, "of ") : n));
  } else if (StartsWith(d, "Target should not validate against schema specified in 'not'")) {
    add("matches a form that is not allowed here");
  } else if (StartsWith(d, "Failed to any values against subschema in 'contains'")) {
    add("must contain at least one matching item");
  } else {
    add(d);  // a text we have no better words for
  }
}

void Collect(const Compiled& c, const valijson::Schema& schema, const json::Value* schema_start,
             const json::Value& doc, const std::string& prefix, int depth,
             std::vector<ValidationError>* out);

// Reports a failed oneOf at `raw.pointer`: the one alternative the value evidently means, or
// else the node's errorMessage.
void PhraseOneOf(const Compiled& c, const RawError& raw, const std::string& prefix, int depth,
                 std::vector<ValidationError>* out) {
  const std::string path = prefix + raw.pointer;
  const json::Value* node = ResolveRef(c.schema, raw.schema);
  const json::Value* one_of = node ? json::FindArray(*node, "oneOf") : nullptr;
  auto message = node ? json::GetString(*node, "errorMessage") : std::nullopt;
  auto generic = [&] {
    out->push_back({path, message.value_or("does not match any of the allowed forms")});
  };
  auto compiled = one_of ? c.branches.find(one_of) : c.branches.end();
  if (!raw.value || compiled == c.branches.end() || depth >= kMaxOneOfDepth) return generic();

  std::vector<size_t> candidates;
  for (rapidjson::SizeType i = 0; i < one_of->Size(); ++i) {
    if (SchemaTypeAdmits(c.schema, &(*one_of)[i], *raw.value)) candidates.push_back(i);
  }
  if (candidates.size() > 1) {
    std::vector<size_t> named;
    for (size_t i : candidates) {
      if (Discriminates(c.schema,
                        ResolveRef(c.schema, &(*one_of)[static_cast<rapidjson::SizeType>(i)]),
                        *raw.value)) {
        named.push_back(i);
      }
    }
    candidates = named;
  }
  if (candidates.size() != 1 || candidates[0] >= compiled->second.size()) return generic();
  size_t chosen = candidates[0];
  size_t before = out->size();
  Collect(c, *compiled->second[chosen], &(*one_of)[static_cast<rapidjson::SizeType>(chosen)],
          *raw.value, path, depth + 1, out);
  if (out->size() == before) generic();
}

// Validates `doc` against `schema` (whose source is `schema_start` inside c.schema) and appends
// the phrased errors, with paths prefixed by `prefix`.
void Collect(const Compiled& c, const valijson::Schema& schema, const json::Value* schema_start,
             const json::Value& doc, const std::string& prefix, int depth,
             std::vector<ValidationError>* out) {
  valijson::Validator validator;  // per call: it caches regexes and is not thread-safe
  valijson::ValidationResults results;
  valijson::adapters::RapidJsonAdapter adapter(doc);
  if (validator.validate(schema, adapter, &results)) return;

  std::vector<RawError> raws;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) raws.push_back(Locate(c.schema, schema_start, doc, e));

  // oneOf failures own every error at or below their path; only the outermost ones are
  // reported, each by PhraseOneOf.
  std::vector<std::string> regions;
  for (const RawError& raw : raws) {
    if (StartsWith(raw.description, kOneOfNone)) regions.push_back(raw.pointer);
  }
  auto in_outer_region = [&](const RawError& raw, bool is_one_of) {
    for (const std::string& region : regions) {
      if (is_one_of ? (raw.pointer != region && Within(raw.pointer, region))
                    : Within(raw.pointer, region)) {
        return true;
      }
    }
    return false;
  };

  size_t before = out->size();
  std::vector<std::string> done;
  for (const RawError& raw : raws) {
    bool is_one_of = StartsWith(raw.description, kOneOfNone);
    if (in_outer_region(raw, is_one_of)) continue;
    if (is_one_of) {
      if (std::find(done.begin(), done.end(), raw.pointer) != done.end()) continue;
      done.push_back(raw.pointer);
      PhraseOneOf(c, raw, prefix, depth, out);
    } else if (StartsWith(raw.description, kOneOfMany)) {
      out->push_back({prefix + raw.pointer, "matches more than one of the allowed forms"});
    } else if (!IsWrapper(raw.description)) {
      Phrase(c.schema, raw, prefix, out);
    }
  }
  if (out->size() == before) out->push_back({prefix, "does not match the schema"});
}

}  // namespace

std::string FormatValidationError(const ValidationError& error) {
  return (error.path.empty() ? std::string("/") : error.path) + ": " + error.message;
}

void SortAndDeduplicate(std::vector<ValidationError>& errors) {
  std::sort(errors.begin(), errors.end(), [](const ValidationError& a, const ValidationError& b) {
    return a.path != b.path ? a.path < b.path : a.message < b.message;
  });
  errors.erase(std::unique(errors.begin(), errors.end()), errors.end());
}

std::string JsonPointerAppend(const std::string& path, std::string_view key) {
  std::string out = path + "/";
  for (char ch : key) {
    if (ch == '~') {
      out += "~0";
    } else if (ch == '/') {
      out += "~1";
    } else {
      out += ch;
    }
  }
  return out;
}

Result<SchemaValidator> SchemaValidator::FromEmbedded(std::string_view name) {
  std::string_view text = EmbeddedSchema(name);
  if (text.empty()) {
    return Status(Code::kNotFound, "no embedded schema named \"" + std::string(name) + "\"");
  }
  auto v = FromText(text);
  if (!v.ok()) return v.status().Prefixed("schema \"" + std::string(name) + "\": ");
  return v;
}

Result<SchemaValidator> SchemaValidator::FromText(std::string_view schema_text) {
  auto compiled = std::make_shared<Compiled>();
  auto parsed = json::Parse(schema_text);
  if (!parsed.ok()) return Status(Code::kInternal, parsed.status().message());
  compiled->schema = std::move(parsed).value();
  if (!compiled->schema.IsObject()) return Status(Code::kInternal, "a schema must be an object");

  json::Document prepared;
  prepared.CopyFrom(compiled->schema, prepared.GetAllocator());
  PrepareForValijson(prepared, prepared.GetAllocator());
  try {
    compiled->root = CompileValijson(prepared);
    ForEachOneOf(compiled->schema, "", [&](const std::string& pointer, const json::Value& one_of) {
      auto& list = compiled->branches[&one_of];
      for (rapidjson::SizeType i = 0; i < one_of.Size(); ++i) {
        // The alternative, compiled in the context of the whole schema so its $refs resolve.
        json::Document wrapper;
        wrapper.CopyFrom(prepared, wrapper.GetAllocator());
        wrapper.RemoveMember("$ref");
        std::string ref = "#" + pointer + "/oneOf/" + std::to_string(i);
        wrapper.AddMember("$ref", json::Str(ref, wrapper.GetAllocator()), wrapper.GetAllocator());
        list.push_back(CompileValijson(wrapper));
      }
    });
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("cannot compile schema: ") + e.what());
  }
  return SchemaValidator(std::move(compiled));
}

std::vector<ValidationError> SchemaValidator::Validate(const json::Value& doc) const {
  std::vector<ValidationError> errors;
  if (!json::DepthWithin(doc, json::kMaxDocumentDepth)) {
    return {{"", "the document nests deeper than " + std::to_string(json::kMaxDocumentDepth) +
                     " levels"}};
  }
  try {
    Collect(*compiled_, *compiled_->root, &compiled_->schema, doc, "", 0, &errors);
  } catch (const std::exception& e) {
    errors.push_back({"", std::string("the schema validator failed: ") + e.what()});
  }
  SortAndDeduplicate(errors);
  return errors;
}

}  // namespace docker_worker

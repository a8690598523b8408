// JSON helpers over RapidJSON: parsing with a clear error, serialising, typed lookups.
//
// Parsing never throws; a parse error names the byte offset. Numbers that are integral doubles
// (e.g. 3600.0) are normalised to integers after parsing, matching JavaScript, where upstream
// docker-worker read payloads. Lookups return nullptr/nullopt when a member is absent or of
// another type; they never assert on hostile documents.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "docker_worker/status.h"

namespace docker_worker::json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;
using Allocator = rapidjson::Document::AllocatorType;

// Parses `text`; on error the message says what and at which offset.
Result<Document> Parse(std::string_view text);
// Reads and parses a file; errors name the path.
Result<Document> ParseFile(const std::string& path);

// True when `text` nests arrays/objects at most `max_depth` deep (strings skipped). A cheap
// policy check before parsing hostile input (Parse itself does not recurse).
bool NestingWithin(std::string_view text, int max_depth);
// The same for a parsed value (iterative). Checked by consumers that recurse (schema validation,
// copying and serialising task definitions) before they touch a document from outside.
bool DepthWithin(const Value& value, int max_depth);
// The deepest task definition, payload or config the worker accepts (real ones nest < 10).
inline constexpr int kMaxDocumentDepth = 100;

// Compact and pretty (2-space indent, like JSON.stringify(x, null, 2)) serialisation.
std::string Serialize(const Value& value);
std::string SerializePretty(const Value& value);
// `s` as a JSON string literal, quotes and escapes included.
std::string Quote(std::string_view s);

// "object", "array", "string", "integer", "number", "boolean" or "null".
const char* TypeName(const Value& value);

// Member lookups: nullptr / nullopt when absent or of another type.
const Value* Find(const Value& object, std::string_view key);
const Value* FindObject(const Value& object, std::string_view key);
const Value* FindArray(const Value& object, std::string_view key);
std::optional<std::string> GetString(const Value& object, std::string_view key);
std::optional<int64_t> GetInt(const Value& object, std::string_view key);
std::optional<bool> GetBool(const Value& object, std::string_view key);

// A string value that copies `s` into `alloc`.
Value Str(std::string_view s, Allocator& alloc);

}  // namespace docker_worker::json

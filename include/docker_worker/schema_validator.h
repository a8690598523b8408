// JSON Schema validation with messages a task author can act on.
//
// A SchemaValidator compiles one of the embedded schemas (schemas/<name>.schema.json, see
// embedded_schemas.h) once and validates documents against it. Validation is done by valijson
// (draft-07); its generic error texts are rewritten into short messages that name the problem,
// each attached to the JSON pointer of the offending value:
//
//   /maxRunTime: expected integer, got string
//   /: missing required property "image"
//   /cmd: unknown property "cmd"; did you mean "command"?
//   /artifacts/a/type: must be one of "file", "directory", "volume"
//   /maxRunTime: must be >= 1
//   /artifacts/a/expires: "soon" is not an RFC 3339 date-time
//   /image: must be an image name string or an object with type "docker-image", ...
//
// For a `oneOf`, when the value clearly means one of the alternatives (only one alternative
// allows its JSON type, or an object names one alternative through a required `const` member
// such as `"type": "indexed-image"`), that alternative's own errors are reported; otherwise the
// schema node's custom `errorMessage` keyword (or a generic text) is reported at the oneOf's path.
// valijson's wrapper errors ("Failed to validate against schema associated with property ...")
// are dropped in favour of the leaf errors. Results are sorted by path, without duplicates.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/json.h"
#include "docker_worker/status.h"

namespace docker_worker {

// One problem in a document. `path` is a JSON pointer (RFC 6901: "/artifacts/public~1x/type";
// the document root is ""); `message` says what is wrong there, without the path.
struct ValidationError {
  std::string path;
  std::string message;

  bool operator==(const ValidationError&) const = default;
};

// "<path>: <message>", with "/" standing for the root path "".
std::string FormatValidationError(const ValidationError& error);

// Sorts `errors` by path, then message, and removes exact duplicates.
void SortAndDeduplicate(std::vector<ValidationError>& errors);

// Appends `key` to JSON pointer `path`, escaping "~" and "/" (RFC 6901).
std::string JsonPointerAppend(const std::string& path, std::string_view key);

// A compiled schema. Copies share the compiled form (immutable after FromEmbedded); Validate may
// be called concurrently from any number of threads.
class SchemaValidator {
 public:
  // Compiles EmbeddedSchema(name) ("payload", "config"). kNotFound when there is no such
  // embedded schema; kInternal when its text is not JSON or not a schema valijson accepts.
  static Result<SchemaValidator> FromEmbedded(std::string_view name);
  // Compiles schema text directly (tests, or schemas read from elsewhere); errors as above.
  static Result<SchemaValidator> FromText(std::string_view schema_text);

  // Every problem of `doc` against the schema; empty when `doc` is valid. Never throws: should
  // the validation library fail unexpectedly, that is reported as a single error at "". A
  // document nesting deeper than json::kMaxDocumentDepth is one error at "" (validation
  // recurses, so it is never attempted).
  std::vector<ValidationError> Validate(const json::Value& doc) const;

  struct Compiled;  // implementation detail, defined in schema_validator.cc

 private:
  explicit SchemaValidator(std::shared_ptr<const Compiled> compiled)
      : compiled_(std::move(compiled)) {}

  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace docker_worker

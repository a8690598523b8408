// JSON text exactly as JavaScript's `JSON.stringify(JSON.parse(text), null, indent)` would
// print a document, for bytes that other tools (upstream's consumers, signatures) compare.
//
// JsStringify reproduces, for a parsed RapidJSON value:
//   - layout: `indent` spaces per level, one member/element per line, `"key": value`, and `{}`
//     / `[]` for empty containers (indent 0: compact, no spaces);
//   - member order: integer-like keys ("0".."4294967294", no leading zeros) first in numeric
//     order, then the other keys in document order; a repeated key keeps its first position and
//     its last value (what JSON.parse does);
//   - strings: only `"`, `\`, and control characters are escaped (`\b \t \n \f \r`, others as
//     `\u00xx` in lower-case hex); everything else, including non-ASCII and "/", is written as is.
//     Encoded lone surrogates (ED A0..BF xx) are written as `\udxxx`; other invalid UTF-8 bytes
//     become U+FFFD, as JavaScript's UTF-8 decoder would have made them;
//   - numbers: the shortest text that reads back as the same double, in Number#toString form
//     ("1", "0.5", "1e+21", "1.5e-7"; -0 is "0"; integers beyond 2^53 print as their double).
// Pure function; safe from any thread.
#pragma once

#include <string>

#include "docker_worker/json.h"

namespace docker_worker {

std::string JsStringify(const json::Value& value, int indent = 2);

// Number#toString of `x` (NaN -> "NaN", infinities -> "Infinity"/"-Infinity").
std::string JsNumberToString(double x);

}  // namespace docker_worker

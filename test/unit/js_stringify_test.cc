// JsStringify: byte-for-byte what node's JSON.stringify(JSON.parse(text), null, 2) prints.
// Expected texts below were produced by node (v20) from the same input.
#include "docker_worker/js_stringify.h"

#include <catch2/catch.hpp>

namespace docker_worker {
namespace {

// Parsed the way the worker parses a claimed task (json::Parse: full precision, integral
// doubles as integers), so the test covers what BuildDocument actually sees.
std::string Stringify(const std::string& text, int indent = 2) {
  auto doc = json::Parse(text);
  REQUIRE(doc.ok());
  return JsStringify(*doc, indent);
}

TEST_CASE("JsStringify matches node: layout, key order, escapes, numbers", "[unit]") {
  const char* input = R"JSON({"b": 1, "a": [], "o": {}, "10": "x", "2": "y", "02": "z", "-1": 0,
 "4294967295": 1, "4294967294": 2,
 "s": "q\"\\/\b\f\n\r\t\u0001\u001f\u007f \u00e9 \u2028 \ud83d\ude00",
 "n": [0, -0, 1.5, 1e21, 1e-7, 123456789012345678901, 0.000001, 1.0, 100, 5e-324,
       1.7976931348623157e308, 0.1, 123e-20, -2.5e+25],
 "dup": 1, "nested": {"x": [1, {"y": []}], "dup": 3}, "dup": 2, "t": true, "f": false,
 "z": null})JSON";
  const char* expected =
      "{\n"
      "  \"2\": \"y\",\n"
      "  \"10\": \"x\",\n"
      "  \"4294967294\": 2,\n"
      "  \"b\": 1,\n"
      "  \"a\": [],\n"
      "  \"o\": {},\n"
      "  \"02\": \"z\",\n"
      "  \"-1\": 0,\n"
      "  \"4294967295\": 1,\n"
      "  \"s\": \"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7F \xC3\xA9 \xE2\x80\xA8 "
      "\xF0\x9F\x98\x80\",\n"
      "  \"n\": [\n"
      "    0,\n"
      "    0,\n"
      "    1.5,\n"
      "    1e+21,\n"
      "    1e-7,\n"
      "    123456789012345680000,\n"
      "    0.000001,\n"
      "    1,\n"
      "    100,\n"
      "    5e-324,\n"
      "    1.7976931348623157e+308,\n"
      "    0.1,\n"
      "    1.23e-18,\n"
      "    -2.5e+25\n"
      "  ],\n"
      "  \"dup\": 2,\n"
      "  \"nested\": {\n"
      "    \"x\": [\n"
      "      1,\n"
      "      {\n"
      "        \"y\": []\n"
      "      }\n"
      "    ],\n"
      "    \"dup\": 3\n"
      "  },\n"
      "  \"t\": true,\n"
      "  \"f\": false,\n"
      "  \"z\": null\n"
      "}";
  CHECK(Stringify(input) == expected);
}

TEST_CASE("JsStringify: empty containers, scalars and compact form", "[unit]") {
  CHECK(Stringify("{}") == "{}");
  CHECK(Stringify("[]") == "[]");
  CHECK(Stringify("\"x\"") == "\"x\"");
  CHECK(Stringify("[[], {}]") == "[\n  [],\n  {}\n]");
  CHECK(Stringify(R"({"a": {"b": [1, 2]}})", 0) == R"({"a":{"b":[1,2]}})");
}

TEST_CASE("JsStringify: lone surrogates are escaped, invalid UTF-8 becomes U+FFFD", "[unit]") {
  // node: JSON.stringify(JSON.parse('["a\\udc00b"]')) === '["a\\udc00b"]'
  json::Value lone(
      "a\xED\xB0\x80"
      "b");
  CHECK(JsStringify(lone) == "\"a\\udc00b\"");
  // node: Buffer.from([0x61,0xff,0x62,0xe2,0x82]).toString() === 'a\ufffdb\ufffd'
  json::Value bad(
      "a\xFF"
      "b\xE2\x82");
  CHECK(JsStringify(bad) ==
        "\"a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD\"");
  json::Value overlong("\xC0\xAF");
  CHECK(JsStringify(overlong) == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  std::string nul("a\0b", 3);
  json::Value with_nul(nul.data(), static_cast<rapidjson::SizeType>(nul.size()));
  CHECK(JsStringify(with_nul) == "\"a\\u0000b\"");
}

TEST_CASE("JsNumberToString follows Number#toString", "[unit]") {
  CHECK(JsNumberToString(0.0) == "0");
  CHECK(JsNumberToString(-0.0) == "0");
  CHECK(JsNumberToString(42) == "42");
  CHECK(JsNumberToString(-1.25) == "-1.25");
  CHECK(JsNumberToString(1e20) == "100000000000000000000");
  CHECK(JsNumberToString(1e21) == "1e+21");
  CHECK(JsNumberToString(123456.789) == "123456.789");
  CHECK(JsNumberToString(0.000001) == "0.000001");
  CHECK(JsNumberToString(0.0000001) == "1e-7");
  CHECK(JsNumberToString(1.5e-10) == "1.5e-10");
  CHECK(JsNumberToString(9007199254740993.0) == "9007199254740992");
  CHECK(JsNumberToString(0.1 + 0.2) == "0.30000000000000004");
}

}  // namespace
}  // namespace docker_worker

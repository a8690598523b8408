#include "docker_worker/js_stringify.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace docker_worker {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendU16Escape(std::string& out, unsigned cp) {
  out += "\\u";
  out.push_back(kHex[(cp >> 12) & 15]);
  out.push_back(kHex[(cp >> 8) & 15]);
  out.push_back(kHex[(cp >> 4) & 15]);
  out.push_back(kHex[cp & 15]);
}

bool IsCont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Appends the UTF-8 sequence starting at s[i] (lead byte >= 0x80) and returns its length;
// invalid bytes become U+FFFD per WHATWG "maximal subpart" rules, encoded lone surrogates
// become \udxxx escapes.
size_t AppendMultiByte(std::string& out, std::string_view s, size_t i) {
  const auto at = [&](size_t k) -> int {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1;
  };
  unsigned char lead = static_cast<unsigned char>(s[i]);
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    // ED A0..BF: a surrogate, which JSON.stringify writes as an escape (handled below).
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    out += "\xEF\xBF\xBD";
    return 1;
  }
  size_t got = 0;
  for (size_t k = 1; k <= need; ++k) {
    int c = at(k);
    if (c < 0) break;
    bool ok = k == 1 ? (c >= lo && c <= hi) : IsCont(static_cast<unsigned char>(c));
    if (!ok) break;
    ++got;
  }
  if (got < need) {
    out += "\xEF\xBF\xBD";
    return 1 + got;
  }
  if (lead == 0xED && static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
    unsigned cp = ((lead & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                  (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    AppendU16Escape(out, cp);
    return 3;
  }
  out.append(s.substr(i, need + 1));
  return need + 1;
}

void AppendString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      i += AppendMultiByte(out, s, i);
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          AppendU16Escape(out, c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

std::string_view Name(const json::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// An array index as JavaScript orders property keys: canonical decimal below 2^32 - 1.
std::optional<uint32_t> ArrayIndex(std::string_view key) {
  if (key.empty() || key.size() > 10) return std::nullopt;
  if (key.size() > 1 && key[0] == '0') return std::nullopt;
  uint64_t n = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n >= 0xFFFFFFFFull) return std::nullopt;
  return static_cast<uint32_t>(n);
}

// Members in JavaScript property order, with JSON.parse's handling of repeated keys.
std::vector<std::pair<std::string_view, const json::Value*>> OrderedMembers(
    const json::Value& obj) {
  std::vector<std::pair<std::string_view, const json::Value*>> members;
  std::unordered_map<std::string_view, size_t> seen;
  for (const auto& m : obj.GetObject()) {
    std::string_view key = Name(m.name);
    auto [it, fresh] = seen.emplace(key, members.size());
    if (fresh) {
      members.emplace_back(key, &m.value);
    } else {
      members[it->second].second = &m.value;
    }
  }
  auto first_named = std::stable_partition(
      members.begin(), members.end(), [](const auto& m) { return ArrayIndex(m.first).has_value(); });
  std::sort(members.begin(), first_named, [](const auto& a, const auto& b) {
    return *ArrayIndex(a.first) < *ArrayIndex(b.first);
  });
  return members;
}

void Newline(std::string& out, int indent, int depth) {
  if (indent <= 0) return;
  out.push_back('\n');
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

void Append(std::string& out, const json::Value& v, int indent, int depth) {
  if (v.IsNull()) {
    out += "null";
  } else if (v.IsBool()) {
    out += v.GetBool() ? "true" : "false";
  } else if (v.IsNumber()) {
    double d = v.GetDouble();
    out += std::isfinite(d) ? JsNumberToString(d) : "null";
  } else if (v.IsString()) {
    AppendString(out, Name(v));
  } else if (v.IsArray()) {
    if (v.Empty()) {
      out += "[]";
      return;
    }
    out.push_back('[');
    bool first = true;
    for (const auto& e : v.GetArray()) {
      if (!first) out.push_back(',');
      first = false;
      Newline(out, indent, depth + 1);
      Append(out, e, indent, depth + 1);
    }
    Newline(out, indent, depth);
    out.push_back(']');
  } else if (v.IsObject()) {
    if (v.ObjectEmpty()) {
      out += "{}";
      return;
    }
    out.push_back('{');
    bool first = true;
    for (const auto& [key, value] : OrderedMembers(v)) {
      if (!first) out.push_back(',');
      first = false;
      Newline(out, indent, depth + 1);
      AppendString(out, key);
      out += indent > 0 ? ": " : ":";
      Append(out, *value, indent, depth + 1);
    }
    Newline(out, indent, depth);
    out.push_back('}');
  }
}

}  // namespace

std::string JsNumberToString(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";  // also -0
  std::string sign = x < 0 ? "-" : "";
  x = std::fabs(x);
  // Shortest round-trip digits: "d[.ddd]e[+-]XX".
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int exp10 = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(),
                  exp10);
  // ECMA-262 Number::toString: digits s (k of them), value = s * 10^(n - k).
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;
  std::string out = sign;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out += '.';
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    int e = n - 1;
    out += e < 0 ? "e-" : "e+";
    out += std::to_string(e < 0 ? -e : e);
  }
  return out;
}

std::string JsStringify(const json::Value& value, int indent) {
  std::string out;
  Append(out, value, indent, 0);
  return out;
}

}  // namespace docker_worker

// Output helpers shared by the CLI's commands: human sizes and a minimal
// JSON writer (--json), so machine output never depends on column layout.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ringfs::cli {

inline std::string Human(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, u++;
  char buf[32];
  snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

inline std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Builds one JSON object: Field() calls in order, then str().
class JsonObject {
 public:
  JsonObject& Raw(const std::string& key, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + JsonString(key) + ":" + json;
    return *this;
  }
  JsonObject& Field(const std::string& key, const std::string& v) { return Raw(key, JsonString(v)); }
  JsonObject& Field(const std::string& key, const char* v) { return Raw(key, JsonString(v)); }
  JsonObject& Field(const std::string& key, bool v) { return Raw(key, v ? "true" : "false"); }
  JsonObject& Field(const std::string& key, uint64_t v) { return Raw(key, std::to_string(v)); }
  JsonObject& Field(const std::string& key, uint32_t v) { return Raw(key, std::to_string(v)); }
  JsonObject& Field(const std::string& key, double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", v);
    return Raw(key, buf);
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

}  // namespace ringfs::cli

// Bounded cereal encoding. Every count read off the wire (string length,
// vector size) is checked against the bytes that remain in the message before
// anything is allocated, so a hostile count cannot make us resize() to 4 GiB.
// Only the serializers below are used for std::string and std::vector; the
// cereal/types/ headers are never included.
#pragma once

#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>
#include <cstdint>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace ringfs::codec {

// Bytes left in the message being decoded on this thread.
size_t Remaining();

// A read-only streambuf over a span of memory.
class SpanBuf : public std::streambuf {
 public:
  SpanBuf(const char* p, size_t n) {
    char* b = const_cast<char*>(p);
    setg(b, b, b + n);
  }
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

class RemainingScope {
 public:
  explicit RemainingScope(const SpanBuf* buf);
  ~RemainingScope();

 private:
  const SpanBuf* prev_;
};

template <class... T>
std::string Encode(const T&... values) {
  std::ostringstream os;
  {
    cereal::BinaryOutputArchive ar(os);
    ar(values...);
  }
  return std::move(os).str();
}

// Decodes values in order from `bytes`; any malformed input becomes EPROTO.
template <class... T>
Status Decode(std::string_view bytes, T&... values) {
  SpanBuf buf(bytes.data(), bytes.size());
  RemainingScope scope(&buf);
  std::istream is(&buf);
  try {
    cereal::BinaryInputArchive ar(is);
    ar(values...);
  } catch (const std::exception& e) {
    return Status::Error(EPROTO, std::string("malformed message: ") + e.what());
  }
  return Status::OK();
}

}  // namespace ringfs::codec

namespace cereal {

template <class Archive>
void save(Archive& ar, const std::string& s) {
  ar(static_cast<uint32_t>(s.size()));
  ar(binary_data(s.data(), s.size()));
}

inline void load(BinaryInputArchive& ar, std::string& s) {
  uint32_t n = 0;
  ar(n);
  if (n > ringfs::codec::Remaining()) throw Exception("string length exceeds message");
  s.resize(n);
  ar(binary_data(s.data(), n));
}

template <class Archive, class T>
void save(Archive& ar, const std::vector<T>& v) {
  ar(static_cast<uint32_t>(v.size()));
  if constexpr (std::is_arithmetic_v<T>) {
    ar(binary_data(v.data(), v.size() * sizeof(T)));
  } else {
    for (const auto& x : v) ar(x);
  }
}

template <class T>
void load(BinaryInputArchive& ar, std::vector<T>& v) {
  uint32_t n = 0;
  ar(n);
  // Every element takes at least one byte on the wire (sizeof(T) for numbers).
  const size_t min_size = std::is_arithmetic_v<T> ? sizeof(T) : 1;
  if (n > ringfs::codec::Remaining() / min_size) throw Exception("vector count exceeds message");
  v.resize(n);
  if constexpr (std::is_arithmetic_v<T>) {
    ar(binary_data(v.data(), n * sizeof(T)));
  } else {
    for (auto& x : v) ar(x);
  }
}

}  // namespace cereal

// Minimal leveled logging to stderr; daemons run under a supervisor or
// `ringfs up`, which sends stderr to a per-daemon log file.
#pragma once

#include <cstdio>

namespace ringfs {
enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
extern LogLevel g_log_level;
void LogLine(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
}  // namespace ringfs

#define LOG_DEBUG(...) \
  do { if (::ringfs::g_log_level <= ::ringfs::LogLevel::kDebug) ::ringfs::LogLine(::ringfs::LogLevel::kDebug, __VA_ARGS__); } while (0)
#define LOG_INFO(...) ::ringfs::LogLine(::ringfs::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) ::ringfs::LogLine(::ringfs::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) ::ringfs::LogLine(::ringfs::LogLevel::kError, __VA_ARGS__)

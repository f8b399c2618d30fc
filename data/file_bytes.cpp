// Whole-file reads through zlib's gzread, which passes raw files through
// unchanged, so every reader accepts .gz and uncompressed files alike.
#include "data/file_bytes.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace deja::data {

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  if (!file_exists(path)) throw std::runtime_error("data: '" + path + "': cannot open (missing or unreadable)");
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("data: '" + path + "': cannot open (missing or unreadable)");
  gzbuffer(file, 1 << 18);
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    size_t old = bytes.size();
    bytes.resize(old + kChunk);
    int got = gzread(file, bytes.data() + old, static_cast<unsigned>(kChunk));
    if (got < 0) {
      int code = 0;
      std::string reason = gzerror(file, &code);
      gzclose(file);
      throw std::runtime_error("data: '" + path + "': gzip error after " + std::to_string(old) +
                               " bytes: " + reason);
    }
    bytes.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
  }
  // A gzip stream cut short reads as a clean end on some zlib versions but
  // leaves an error set: check it so a truncated .gz is not taken as complete.
  int code = 0;
  const char* reason = gzerror(file, &code);
  std::string message = reason ? reason : "";
  gzclose(file);
  if (code != Z_OK && code != Z_STREAM_END)
    throw std::runtime_error("data: '" + path + "': gzip error after " + std::to_string(bytes.size()) +
                             " bytes: " + message);
  bytes.shrink_to_fit();
  return bytes;
}

uint32_t read_be32(const std::vector<uint8_t>& bytes, size_t offset) {
  return (uint32_t{bytes[offset]} << 24) | (uint32_t{bytes[offset + 1]} << 16) |
         (uint32_t{bytes[offset + 2]} << 8) | uint32_t{bytes[offset + 3]};
}

}  // namespace deja::data

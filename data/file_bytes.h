// Whole-file reads for the dataset readers: gzip-compressed or raw (zlib reads
// both transparently), with errors that name the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace deja::data {

// The decompressed contents of `path`. Throws std::runtime_error
// "data: '<path>': cannot open (missing or unreadable)" or
// "data: '<path>': gzip error after N bytes: reason".
std::vector<uint8_t> read_file_bytes(const std::string& path);

bool file_exists(const std::string& path);

// Big-endian 32-bit integer at `offset` (the IDX header format).
uint32_t read_be32(const std::vector<uint8_t>& bytes, size_t offset);

}  // namespace deja::data

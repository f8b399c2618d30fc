// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32),
// table driven, slicing-by-8: checkpoints of a hundred MB are checksummed on
// every save and load. Little-endian hosts only (as the checkpoints).
#pragma once

#include <cstddef>
#include <cstdint>

namespace deja::core {

// Continues `crc` (0 to start) over `size` bytes: crc32(b, crc32(a)) == crc32(a + b).
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace deja::core

// Checkpoint files in the safetensors layout: an 8-byte little-endian header
// length, a JSON header {"name": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}} padded
// with spaces to a multiple of 8 bytes, then the raw little-endian data,
// contiguous from offset 0 in the order the tensors were given. Standard tools
// (the safetensors package, PyTorch) read the weights.
// deja adds metadata "deja_format" = "1" and "deja_checksum": a CRC-32 (8 hex
// digits) over the header JSON without the checksum entry (in nlohmann's
// canonical compact form, keys sorted) followed by all data bytes, so a flipped
// byte anywhere is refused on load. Limits: F32 only; the reader loads the
// whole file into memory; little-endian hosts only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace deja::core {

struct TensorRef {
  std::string name;
  Shape shape;
  const float* data;
};

// Atomic: writes path + ".tmp", fsync, rename, fsync of the directory. Throws
// std::runtime_error naming the path on any failure
// ("cannot write checkpoint 'out/x.safetensors': No such file or directory"),
// std::invalid_argument for an empty, duplicate or reserved tensor name or a
// reserved metadata key (deja_format, deja_checksum).
void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata);

class SafetensorsFile {
 public:
  // Verifies everything; std::runtime_error naming the path and what is wrong:
  //  "checkpoint 'p': file is 5 bytes, too short for a header",
  //  "... header length 999999 exceeds file size 1234", "... malformed header JSON at byte 17"
  //  (offset in the file), "... tensor 'conv1.weight' data_offsets [0, 96] do not match shape
  //  [2, 3] (F32)", "... data ends at byte 1000 but file has 1200 bytes",
  //  "... checksum mismatch (file damaged)", "... tensor 'x' has unsupported dtype 'F16'".
  static SafetensorsFile read(const std::string& path);

  // Without deja_format and deja_checksum.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<std::string> names() const;  // in data order (the writer's order)
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  // Throws std::runtime_error "checkpoint 'p': no tensor 'x'".
  const Shape& shape(const std::string& name) const;
  // Copies into dst; throws "checkpoint 'p': tensor 'x' has shape [2, 3], expected [3, 2]".
  void copy_to(const std::string& name, const Shape& expected, float* dst) const;
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    Shape shape;
    uint64_t begin = 0, end = 0;  // into the data section
  };
  const Entry& entry(const std::string& name) const;

  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, Entry> entries_;
  std::vector<char> bytes_;  // the whole file
  uint64_t data_start_ = 0;
};

}  // namespace deja::core

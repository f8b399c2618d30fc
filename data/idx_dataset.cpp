// IDX reader: header big-endian (magic, counts, rows, cols), then one byte per
// pixel / label. Everything is validated before the dataset is built.
#include "data/idx_dataset.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "data/file_bytes.h"

namespace deja::data {

namespace {

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("data: '" + path + "': " + what);
}

void check_size(const std::string& path, const std::vector<uint8_t>& bytes, uint64_t expected,
                const std::string& layout) {
  if (bytes.size() < expected)
    fail(path, "ends at byte " + std::to_string(bytes.size()) + ", expected " + std::to_string(expected) +
                   " bytes (" + layout + ")");
  if (bytes.size() > expected)
    fail(path, "has " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected) +
                   " bytes (" + layout + ")");
}

void check_magic(const std::string& path, const std::vector<uint8_t>& bytes, uint32_t expected,
                 size_t header, const char* kind) {
  // The magic first: a file of the wrong kind is reported as such even when
  // it is also too short for this kind's header.
  if (bytes.size() >= 4) {
    uint32_t magic = read_be32(bytes, 0);
    if (magic != expected)
      fail(path, "bad magic " + hex32(magic) + " at offset 0, expected " + hex32(expected) + " (" + kind + ")");
  }
  if (bytes.size() < header)
    fail(path, "ends at byte " + std::to_string(bytes.size()) + ", expected a " + std::to_string(header) +
                   "-byte " + kind + " header");
}

}  // namespace

std::shared_ptr<MemoryDataset> open_idx_dataset(const IdxFiles& files, int64_t num_classes,
                                                std::vector<std::string> class_names,
                                                const std::string& title) {
  std::vector<uint8_t> image_bytes = read_file_bytes(files.images);
  check_magic(files.images, image_bytes, 0x00000803u, 16, "idx3 images");
  const uint64_t count = read_be32(image_bytes, 4);
  const uint64_t rows = read_be32(image_bytes, 8);
  const uint64_t cols = read_be32(image_bytes, 12);
  if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536)
    fail(files.images, "image size " + std::to_string(rows) + "x" + std::to_string(cols) +
                           " at offset 8 is not a plausible image size");
  check_size(files.images, image_bytes, 16 + count * rows * cols,
             "16-byte header + " + std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                 std::to_string(cols));

  std::vector<uint8_t> label_bytes = read_file_bytes(files.labels);
  check_magic(files.labels, label_bytes, 0x00000801u, 8, "idx1 labels");
  const uint64_t label_count = read_be32(label_bytes, 4);
  check_size(files.labels, label_bytes, 8 + label_count,
             "8-byte header + " + std::to_string(label_count) + " labels");
  if (label_count != count)
    fail(files.labels, "holds " + std::to_string(label_count) + " labels but '" + files.images + "' holds " +
                           std::to_string(count) + " images");

  std::vector<int32_t> labels(count);
  int64_t classes = num_classes;
  if (classes <= 0) {
    for (uint64_t i = 0; i < count; ++i) classes = std::max<int64_t>(classes, label_bytes[8 + i] + 1);
  }
  for (uint64_t i = 0; i < count; ++i) {
    int32_t label = label_bytes[8 + i];
    if (label >= classes)
      fail(files.labels, "label " + std::to_string(label) + " at index " + std::to_string(i) + " (offset " +
                             std::to_string(8 + i) + ") outside [0, " + std::to_string(classes) + ")");
    labels[i] = label;
  }
  // Drop the header in place instead of copying 47 MB.
  image_bytes.erase(image_bytes.begin(), image_bytes.begin() + 16);
  core::Shape shape{1, static_cast<int64_t>(rows), static_cast<int64_t>(cols)};
  std::string description = title + " (" + std::to_string(count) + " images, " + item_shape_text(shape) + ", " +
                            std::to_string(classes) + " classes) from " + files.images;
  return std::make_shared<MemoryDataset>(std::move(image_bytes), std::move(labels), shape, classes,
                                         std::move(class_names), description);
}

IdxFiles standard_idx_files(const std::string& dir, bool train) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto pick = [](const std::string& raw) { return file_exists(raw + ".gz") || !file_exists(raw) ? raw + ".gz" : raw; };
  return {pick(prefix + "-images-idx3-ubyte"), pick(prefix + "-labels-idx1-ubyte")};
}

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

}  // namespace deja::data

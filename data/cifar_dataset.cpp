// CIFAR binary batches: fixed-size records, validated (whole records, label
// range) with errors naming the file, record and byte offset.
#include "data/cifar_dataset.h"

#include <fstream>
#include <stdexcept>

#include "data/file_bytes.h"

namespace deja::data {

namespace {

constexpr int64_t kPixels = 3 * 32 * 32;

std::vector<std::string> read_names(const std::string& path, int64_t count) {
  std::vector<std::string> names;
  std::ifstream in(path);
  if (!in) return names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int64_t>(names.size()) != count) names.clear();  // not a names file we understand
  return names;
}

std::shared_ptr<MemoryDataset> open_cifar(const std::string& dir, const std::vector<std::string>& files,
                                          int64_t label_bytes, int64_t classes,
                                          std::vector<std::string> names, const std::string& title) {
  if (dir.empty()) throw std::invalid_argument("data: " + title + " needs a 'path' (the folder of the binary batches)");
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  const int64_t record = label_bytes + kPixels;
  for (const auto& name : files) {
    const std::string path = dir + "/" + name;
    std::vector<uint8_t> bytes = read_file_bytes(path);
    const int64_t size = static_cast<int64_t>(bytes.size());
    if (size == 0 || size % record != 0)
      throw std::runtime_error("data: '" + path + "': ends at byte " + std::to_string(size) + ", expected a multiple of " +
                               std::to_string(record) + " bytes (records of " + std::to_string(label_bytes) +
                               " label byte(s) + 3x32x32 pixels)");
    const int64_t n = size / record;
    pixels.reserve(pixels.size() + static_cast<size_t>(n * kPixels));
    for (int64_t r = 0; r < n; ++r) {
      const int64_t offset = r * record + label_bytes - 1;  // the fine label for CIFAR-100
      const int32_t label = bytes[static_cast<size_t>(offset)];
      if (label >= classes)
        throw std::runtime_error("data: '" + path + "': label " + std::to_string(label) + " at record " +
                                 std::to_string(r) + " (offset " + std::to_string(offset) + ") outside [0, " +
                                 std::to_string(classes) + ")");
      labels.push_back(label);
      const uint8_t* src = bytes.data() + r * record + label_bytes;
      pixels.insert(pixels.end(), src, src + kPixels);
    }
  }
  const int64_t count = static_cast<int64_t>(labels.size());
  std::string description = title + " (" + std::to_string(count) + " images, 3x32x32, " +
                            std::to_string(classes) + " classes) from " + dir;
  return std::make_shared<MemoryDataset>(std::move(pixels), std::move(labels), core::Shape{3, 32, 32}, classes,
                                         std::move(names), description);
}

}  // namespace

std::shared_ptr<MemoryDataset> open_cifar10(const std::string& dir, bool train) {
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back("test_batch.bin");
  }
  return open_cifar(dir, files, 1, 10, read_names(dir + "/batches.meta.txt", 10),
                    train ? "CIFAR-10 train" : "CIFAR-10 test");
}

std::shared_ptr<MemoryDataset> open_cifar100(const std::string& dir, bool train) {
  return open_cifar(dir, {train ? "train.bin" : "test.bin"}, 2, 100,
                    read_names(dir + "/fine_label_names.txt", 100),
                    train ? "CIFAR-100 train" : "CIFAR-100 test");
}

}  // namespace deja::data

// IDX reader (MNIST, Fashion-MNIST and any idx3 images + idx1 labels pair),
// gzip-compressed or raw. The files are checked completely at open: magic
// numbers (0x00000803 images, 0x00000801 labels), exact sizes, matching
// counts, labels inside [0, classes). Errors name the file and the offset.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/memory_dataset.h"

namespace deja::data {

struct IdxFiles {
  std::string images, labels;
};

// num_classes 0: taken as (largest label + 1). `title` starts the description,
// e.g. "Fashion-MNIST train".
std::shared_ptr<MemoryDataset> open_idx_dataset(const IdxFiles& files, int64_t num_classes,
                                                std::vector<std::string> class_names,
                                                const std::string& title);

// The train or test split of MNIST / Fashion-MNIST in folder `dir`, by their
// standard file names (train-images-idx3-ubyte[.gz] ...); the .gz name is
// preferred, the raw one used when only it exists.
IdxFiles standard_idx_files(const std::string& dir, bool train);

std::vector<std::string> fashion_mnist_class_names();

}  // namespace deja::data

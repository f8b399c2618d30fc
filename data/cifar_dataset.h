// CIFAR-10 and CIFAR-100 binary versions. CIFAR-10: data_batch_1..5.bin
// (train) and test_batch.bin, each record 1 label byte + 3072 pixel bytes
// (3x32x32, CHW). CIFAR-100: train.bin and test.bin, records of coarse label,
// fine label, 3072 pixels; the fine label (100 classes) is used. Class names
// come from batches.meta.txt / fine_label_names.txt when present.
#pragma once

#include <memory>
#include <string>

#include "data/memory_dataset.h"

namespace deja::data {

std::shared_ptr<MemoryDataset> open_cifar10(const std::string& dir, bool train);
std::shared_ptr<MemoryDataset> open_cifar100(const std::string& dir, bool train);

}  // namespace deja::data

// Image folders: one sub-folder per class (class list sorted by name), any
// format stb_image reads (png, jpg/jpeg, bmp, gif, tga, psd, hdr, pic, pnm,
// ppm, pgm; other files are ignored and counted). Every image is decoded at
// open, converted to grey or RGB and resized (bilinear) to height x width, and
// kept in memory as 8-bit pixels. An image that cannot be decoded is an error
// naming the file, unless skip_bad is set (then it is counted and listed in
// the report).
// Layout: either <root>/train/<class>/... and <root>/test/<class>/..., or
// <root>/<class>/... split per class: the last test_fraction of each class's
// sorted files are the test split.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/memory_dataset.h"

namespace deja::data {

struct ImageFolderOptions {
  int64_t height = 0, width = 0;  // 0: the size of the first image
  bool grey = false;
  bool skip_bad_images = false;
  double test_fraction = 0.1;  // only without train/ and test/ sub-folders
};

struct ImageFolderSplits {
  std::shared_ptr<MemoryDataset> train, test;
  std::vector<std::string> classes;
  int64_t skipped_bad = 0, ignored_files = 0;
  std::vector<std::string> skipped_files;  // the undecodable ones when skipping
};

ImageFolderSplits open_image_folders(const std::string& root, const ImageFolderOptions& options);

}  // namespace deja::data

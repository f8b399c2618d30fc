// Image folders decoded with stb_image (this file holds the one
// STB_IMAGE_IMPLEMENTATION) and resized with our bilinear resize.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

#include "data/image_folder_dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "data/transforms.h"

namespace fs = std::filesystem;

namespace deja::data {

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* kExt[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".psd",
                               ".hdr", ".pic", ".pnm", ".ppm", ".pgm"};
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

std::vector<std::string> sorted_subdirs(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct ClassFiles {
  std::vector<std::vector<fs::path>> files;  // per class, sorted
  int64_t ignored = 0;
};

ClassFiles list_class_files(const fs::path& dir, const std::vector<std::string>& classes) {
  ClassFiles out;
  for (const auto& cls : classes) {
    std::vector<fs::path> files;
    const fs::path class_dir = dir / cls;
    if (fs::is_directory(class_dir)) {
      for (const auto& entry : fs::directory_iterator(class_dir)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || name.empty() || name[0] == '.') continue;
        if (is_image_name(entry.path())) {
          files.push_back(entry.path());
        } else {
          ++out.ignored;
        }
      }
    }
    if (files.empty())
      throw std::runtime_error("data: '" + class_dir.string() + "': class folder '" + cls + "' has no image files");
    std::sort(files.begin(), files.end());
    out.files.push_back(std::move(files));
  }
  return out;
}

struct Decoder {
  const ImageFolderOptions& options;
  int64_t height, width;
  ImageFolderSplits& report;

  // Appends the decoded, resized image; false when skipped as undecodable.
  bool decode(const fs::path& path, std::vector<uint8_t>& pixels) {
    const int channels = options.grey ? 1 : 3;
    int w = 0, h = 0, source_channels = 0;
    unsigned char* data = stbi_load(path.string().c_str(), &w, &h, &source_channels, channels);
    if (!data) {
      const char* reason = stbi_failure_reason();
      if (options.skip_bad_images) {
        ++report.skipped_bad;
        report.skipped_files.push_back(path.string());
        return false;
      }
      throw std::runtime_error("data: '" + path.string() + "': cannot decode image (" +
                               (reason ? reason : "unknown format") + ")");
    }
    if (height == 0) {
      height = h;
      width = w;
    }
    const size_t offset = pixels.size();
    pixels.resize(offset + static_cast<size_t>(channels * height * width));
    uint8_t* dst = pixels.data() + offset;
    if (h == height && w == width) {
      // Interleaved HWC -> planar CHW.
      for (int c = 0; c < channels; ++c)
        for (int64_t i = 0; i < height * width; ++i) dst[c * height * width + i] = data[i * channels + c];
    } else {
      std::vector<float> plane(static_cast<size_t>(h) * w), resized(static_cast<size_t>(height * width));
      for (int c = 0; c < channels; ++c) {
        for (int64_t i = 0; i < static_cast<int64_t>(h) * w; ++i) plane[i] = data[i * channels + c];
        resize_bilinear_plane(plane.data(), h, w, resized.data(), height, width);
        for (int64_t i = 0; i < height * width; ++i)
          dst[c * height * width + i] = static_cast<uint8_t>(std::clamp(std::lround(resized[i]), 0L, 255L));
      }
    }
    stbi_image_free(data);
    return true;
  }
};

std::shared_ptr<MemoryDataset> build(Decoder& decoder, const std::vector<std::vector<fs::path>>& per_class,
                                     const std::vector<std::string>& classes, const std::string& title,
                                     const std::string& root) {
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  for (size_t c = 0; c < per_class.size(); ++c)
    for (const auto& path : per_class[c])
      if (decoder.decode(path, pixels)) labels.push_back(static_cast<int32_t>(c));
  const int64_t channels = decoder.options.grey ? 1 : 3;
  core::Shape shape{channels, decoder.height, decoder.width};
  const int64_t n = static_cast<int64_t>(labels.size());
  if (n == 0) throw std::runtime_error("data: '" + root + "': no decodable images in the " + title + " split");
  std::string description = "image folder " + title + " (" + std::to_string(n) + " images, " + item_shape_text(shape) +
                            ", " + std::to_string(classes.size()) + " classes) from " + root;
  return std::make_shared<MemoryDataset>(std::move(pixels), std::move(labels), shape,
                                         static_cast<int64_t>(classes.size()), classes, description);
}

}  // namespace

ImageFolderSplits open_image_folders(const std::string& root, const ImageFolderOptions& options) {
  if (root.empty()) throw std::invalid_argument("data: dataset 'image_folder' needs a 'path'");
  if (!fs::is_directory(root)) throw std::runtime_error("data: '" + root + "': cannot open (missing or not a folder)");
  if (!(options.test_fraction >= 0.0 && options.test_fraction < 1.0))
    throw std::invalid_argument("data: test_fraction must be in [0, 1), got " + std::to_string(options.test_fraction));
  ImageFolderSplits splits;
  Decoder decoder{options, options.height, options.width, splits};
  const fs::path base(root);
  const bool split_folders = fs::is_directory(base / "train") && fs::is_directory(base / "test");
  const fs::path class_root = split_folders ? base / "train" : base;
  splits.classes = sorted_subdirs(class_root);
  if (splits.classes.empty())
    throw std::runtime_error("data: '" + class_root.string() + "': no class sub-folders (expected one folder per class)");

  ClassFiles train_files = list_class_files(class_root, splits.classes);
  std::vector<std::vector<fs::path>> test_files(splits.classes.size());
  if (split_folders) {
    ClassFiles t = list_class_files(base / "test", splits.classes);
    test_files = std::move(t.files);
    splits.ignored_files += t.ignored;
  } else {
    for (size_t c = 0; c < splits.classes.size(); ++c) {
      auto& files = train_files.files[c];
      const size_t n_test = static_cast<size_t>(std::floor(options.test_fraction * static_cast<double>(files.size())));
      test_files[c].assign(files.end() - static_cast<std::ptrdiff_t>(n_test), files.end());
      files.resize(files.size() - n_test);
    }
  }
  splits.ignored_files += train_files.ignored;
  splits.train = build(decoder, train_files.files, splits.classes, "train", root);
  bool any_test = std::any_of(test_files.begin(), test_files.end(), [](const auto& v) { return !v.empty(); });
  if (any_test) splits.test = build(decoder, test_files, splits.classes, "test", root);
  return splits;
}

}  // namespace deja::data

// make_data_pipeline: the config's "data" section turned into datasets,
// transforms and loader options. Keys (defaults):
//   dataset ("fashion-mnist") | path (dataset default) | train_images, train_labels,
//   test_images, test_labels (idx only) | pad_to (0: none) | resize ([h, w]) |
//   grey (false, image_folder) | batch_size (128) | test_batch_size (batch_size) |
//   normalize ("auto": per-channel mean/std of the train split before padding |
//   "none" | {"mean": [...], "std": [...]}) | augment ({"random_crop": pad,
//   "hflip": bool}) | shuffle (true) | drop_last (false) | subset (0: all) |
//   test_subset (0) | skip_bad_images (false, image_folder) | test_fraction (0.1,
//   image_folder without test/) | synthetic ({classes, train, test, channels,
//   size, noise}) | prefetch (2).
#include "data/pipeline.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/parallel.h"
#include "data/cifar_dataset.h"
#include "data/file_bytes.h"
#include "data/idx_dataset.h"
#include "data/image_folder_dataset.h"
#include "data/synthetic_dataset.h"

namespace deja::data {

namespace {

const std::vector<std::string> kDatasets = {"fashion-mnist", "mnist", "idx", "cifar10",
                                            "cifar100", "image_folder", "synthetic"};

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += names[i];
  }
  return s;
}

std::string floats_text(const std::vector<float>& v) {
  std::ostringstream out;
  out.precision(4);
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
  out << "]";
  return out.str();
}

std::vector<float> read_float_list(const core::Json& v, const std::string& where, size_t channels) {
  if (!v.is_array() || v.size() != channels)
    throw std::invalid_argument(where + " must be a list of " + std::to_string(channels) + " numbers (one per channel), got " +
                                v.dump());
  std::vector<float> out;
  for (const auto& x : v) {
    if (!x.is_number()) throw std::invalid_argument(where + " must hold numbers, got " + v.dump());
    out.push_back(x.get<float>());
  }
  return out;
}

struct Opened {
  std::shared_ptr<const Dataset> train, test;
  std::string path;
  std::vector<std::string> notes;
};

std::string join_path(const std::string& dir, const std::string& file) {
  if (file.empty() || file[0] == '/' || dir.empty()) return file;
  return dir + "/" + file;
}

Opened open_datasets(const core::Json& cfg, const std::string& kind, uint64_t seed, const std::string& where) {
  Opened o;
  o.path = core::read_string(cfg, "path", "", where);
  if (kind == "fashion-mnist" || kind == "mnist") {
    const bool fashion = kind == "fashion-mnist";
    if (o.path.empty()) {
      if (!fashion)
        throw std::invalid_argument(where + ": dataset 'mnist' needs a 'path' (the folder holding train-images-idx3-ubyte.gz ...)");
      o.path = kFashionMnistDefaultPath;
      IdxFiles probe = standard_idx_files(o.path, true);
      if (!file_exists(probe.images))
        throw std::runtime_error("data: '" + probe.images +
                                 "': cannot open (missing or unreadable); install Debian's dataset-fashion-mnist package or set " +
                                 where + ".path");
    }
    const std::string name = fashion ? "Fashion-MNIST" : "MNIST";
    auto names = fashion ? fashion_mnist_class_names() : std::vector<std::string>{};
    o.train = open_idx_dataset(standard_idx_files(o.path, true), 10, names, name + " train");
    o.test = open_idx_dataset(standard_idx_files(o.path, false), 10, names, name + " test");
  } else if (kind == "idx") {
    IdxFiles train, test;
    auto need = [&](const char* key) {
      if (!cfg.contains(key)) throw std::invalid_argument(where + ": dataset 'idx' needs '" + key + "'");
      return join_path(o.path, core::read_string(cfg, key, "", where));
    };
    train = {need("train_images"), need("train_labels")};
    test = {need("test_images"), need("test_labels")};
    auto tr = open_idx_dataset(train, 0, {}, "IDX train");
    o.train = tr;
    o.test = open_idx_dataset(test, tr->num_classes(), {}, "IDX test");
  } else if (kind == "cifar10" || kind == "cifar100") {
    if (o.path.empty()) throw std::invalid_argument(where + ": dataset '" + kind + "' needs a 'path' (the folder of the binary batches)");
    o.train = kind == "cifar10" ? open_cifar10(o.path, true) : open_cifar100(o.path, true);
    o.test = kind == "cifar10" ? open_cifar10(o.path, false) : open_cifar100(o.path, false);
  } else if (kind == "image_folder") {
    if (o.path.empty()) throw std::invalid_argument(where + ": dataset 'image_folder' needs a 'path'");
    ImageFolderOptions options;
    if (cfg.contains("resize")) {
      auto [h, w] = core::read_pair(cfg, "resize", {0, 0}, where);
      options.height = h;
      options.width = w;
    }
    options.grey = core::read_bool(cfg, "grey", false, where);
    options.skip_bad_images = core::read_bool(cfg, "skip_bad_images", false, where);
    options.test_fraction = core::read_number(cfg, "test_fraction", 0.1, where);
    ImageFolderSplits s = open_image_folders(o.path, options);
    if (!s.test)
      throw std::invalid_argument(where + ": image folder '" + o.path +
                                  "' has no test split: add train/ and test/ folders or set test_fraction > 0");
    o.train = s.train;
    o.test = s.test;
    o.notes.push_back("classes (" + std::to_string(s.classes.size()) + "): " + join_names(s.classes));
    if (s.skipped_bad > 0) {
      std::string list;
      for (size_t i = 0; i < s.skipped_files.size() && i < 5; ++i) list += (i ? ", " : "") + s.skipped_files[i];
      o.notes.push_back("skipped " + std::to_string(s.skipped_bad) + " undecodable images: " + list +
                        (s.skipped_files.size() > 5 ? ", ..." : ""));
    }
    if (s.ignored_files > 0)
      o.notes.push_back("ignored " + std::to_string(s.ignored_files) + " files without an image extension");
  } else {  // synthetic
    SyntheticOptions so;
    if (cfg.contains("synthetic")) {
      const core::Json& s = cfg.at("synthetic");
      const std::string w = where + ".synthetic";
      core::reject_unknown_keys(s, {"classes", "train", "test", "channels", "size", "noise"}, w);
      so.classes = core::read_int(s, "classes", so.classes, w);
      so.train = core::read_int(s, "train", so.train, w);
      so.test = core::read_int(s, "test", so.test, w);
      so.channels = core::read_int(s, "channels", so.channels, w);
      so.size = core::read_int(s, "size", so.size, w);
      so.noise = core::read_number(s, "noise", so.noise, w);
    }
    o.train = std::make_shared<SyntheticDataset>(so, seed, true);
    o.test = std::make_shared<SyntheticDataset>(so, seed, false);
  }
  return o;
}

}  // namespace

void compute_channel_stats(const Dataset& dataset, std::vector<float>& mean, std::vector<float>& std) {
  const core::Shape shape = dataset.item_shape();
  const int64_t channels = shape[0], plane = shape[1] * shape[2], n = dataset.size();
  if (n == 0) throw std::invalid_argument("data: cannot compute mean/std of an empty dataset");
  // Per-image sums (in parallel), then added in image order: the same result
  // for any thread count.
  std::vector<double> sums(static_cast<size_t>(n * channels * 2));
  core::parallel_for(n, [&](int64_t begin, int64_t end) {
    std::vector<float> image(static_cast<size_t>(channels * plane));
    for (int64_t i = begin; i < end; ++i) {
      dataset.read_image(i, image.data());
      for (int64_t c = 0; c < channels; ++c) {
        double s = 0, s2 = 0;
        const float* p = image.data() + c * plane;
        for (int64_t k = 0; k < plane; ++k) {
          s += p[k];
          s2 += static_cast<double>(p[k]) * p[k];
        }
        sums[static_cast<size_t>((i * channels + c) * 2)] = s;
        sums[static_cast<size_t>((i * channels + c) * 2 + 1)] = s2;
      }
    }
  }, 64);
  mean.assign(static_cast<size_t>(channels), 0.0f);
  std.assign(static_cast<size_t>(channels), 0.0f);
  const double count = static_cast<double>(n) * plane;
  for (int64_t c = 0; c < channels; ++c) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += sums[static_cast<size_t>((i * channels + c) * 2)];
      s2 += sums[static_cast<size_t>((i * channels + c) * 2 + 1)];
    }
    const double m = s / count;
    const double var = std::max(0.0, s2 / count - m * m);
    mean[c] = static_cast<float>(m);
    std[c] = static_cast<float>(std::max(std::sqrt(var), 1e-6));  // a constant channel must not divide by 0
  }
}

DataPipeline make_data_pipeline(const core::Json& cfg, uint64_t seed, const std::string& where) {
  core::reject_unknown_keys(cfg,
                            {"dataset", "path", "train_images", "train_labels", "test_images", "test_labels", "pad_to",
                             "resize", "grey", "batch_size", "test_batch_size", "normalize", "augment", "shuffle",
                             "drop_last", "subset", "test_subset", "skip_bad_images", "test_fraction", "synthetic",
                             "prefetch"},
                            where);
  const std::string kind = core::read_string(cfg, "dataset", "fashion-mnist", where);
  if (std::find(kDatasets.begin(), kDatasets.end(), kind) == kDatasets.end())
    throw std::invalid_argument(where + ": key 'dataset' must be one of " + join_names(kDatasets) + ", got \"" + kind +
                                "\"");
  // Keys that only one kind of dataset understands are errors elsewhere, not ignored.
  auto only_for = [&](const char* key, const std::vector<std::string>& kinds) {
    if (cfg.contains(key) && std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
      throw std::invalid_argument(where + ": key '" + key + "' applies only to dataset " + join_names(kinds) +
                                  ", not '" + kind + "'");
  };
  for (const char* key : {"train_images", "train_labels", "test_images", "test_labels"}) only_for(key, {"idx"});
  for (const char* key : {"grey", "skip_bad_images", "test_fraction"}) only_for(key, {"image_folder"});
  only_for("synthetic", {"synthetic"});
  only_for("path", {"fashion-mnist", "mnist", "idx", "cifar10", "cifar100", "image_folder"});

  DataPipeline p;
  p.resolved = cfg;
  p.resolved["dataset"] = kind;

  Opened o = open_datasets(cfg, kind, seed, where);
  if (kind != "synthetic") p.resolved["path"] = o.path;
  std::shared_ptr<const Dataset> train = o.train, test = o.test;

  const int64_t subset = core::read_int(cfg, "subset", 0, where);
  const int64_t test_subset = core::read_int(cfg, "test_subset", 0, where);
  if (subset < 0 || test_subset < 0) throw std::invalid_argument(where + ": 'subset' and 'test_subset' must be >= 0");
  if (subset > 0 && subset < train->size()) train = std::make_shared<SubsetDataset>(train, subset);
  if (test_subset > 0 && test_subset < test->size()) test = std::make_shared<SubsetDataset>(test, test_subset);
  p.resolved["subset"] = subset;
  p.resolved["test_subset"] = test_subset;

  if (cfg.contains("resize") && kind != "image_folder") {
    auto [h, w] = core::read_pair(cfg, "resize", {0, 0}, where);
    auto resize = std::make_shared<Resize>(h, w);
    train = std::make_shared<TransformedDataset>(train, resize);
    test = std::make_shared<TransformedDataset>(test, resize);
  }
  if (train->item_shape() != test->item_shape())
    throw std::invalid_argument(where + ": train images are " + item_shape_text(train->item_shape()) +
                                " but test images are " + item_shape_text(test->item_shape()) + "; set 'resize'");
  const core::Shape unpadded = train->item_shape();
  std::shared_ptr<const Dataset> stats_source = train;  // statistics are taken before zero padding

  const int64_t pad_to = core::read_int(cfg, "pad_to", 0, where);
  if (pad_to < 0) throw std::invalid_argument(where + ": 'pad_to' must be >= 0, got " + std::to_string(pad_to));
  if (pad_to > 0 && (pad_to != unpadded[1] || pad_to != unpadded[2])) {
    auto pad = Pad::to_square(unpadded, pad_to);
    train = std::make_shared<TransformedDataset>(train, pad);
    test = std::make_shared<TransformedDataset>(test, pad);
  }
  p.resolved["pad_to"] = pad_to;

  // Normalisation.
  std::shared_ptr<const Transform> normalize;
  const size_t channels = static_cast<size_t>(unpadded[0]);
  const core::Json norm = cfg.contains("normalize") ? cfg.at("normalize") : core::Json("auto");
  if (norm.is_string() && norm.get<std::string>() == "auto") {
    std::vector<float> mean, std;
    compute_channel_stats(*stats_source, mean, std);
    normalize = std::make_shared<Normalize>(mean, std);
    p.resolved["normalize"] = {{"mean", mean}, {"std", std}};
    p.notes.push_back("normalize auto: mean " + floats_text(mean) + " std " + floats_text(std) + " over " +
                      std::to_string(stats_source->size()) + " train images (before padding)");
  } else if (norm.is_string() && norm.get<std::string>() == "none") {
    p.resolved["normalize"] = "none";
  } else if (norm.is_object()) {
    const std::string w = where + ".normalize";
    core::reject_unknown_keys(norm, {"mean", "std"}, w);
    if (!norm.contains("mean") || !norm.contains("std"))
      throw std::invalid_argument(w + ": needs both 'mean' and 'std'");
    auto mean = read_float_list(norm.at("mean"), w + ".mean", channels);
    auto std = read_float_list(norm.at("std"), w + ".std", channels);
    for (float s : std)
      if (!(s > 0)) throw std::invalid_argument(w + ".std must be positive, got " + norm.at("std").dump());
    normalize = std::make_shared<Normalize>(mean, std);
  } else {
    throw std::invalid_argument(where + ": key 'normalize' must be \"auto\", \"none\" or {\"mean\": [...], \"std\": [...]}, got " +
                                norm.dump());
  }

  // Augmentation (train only), then normalisation.
  std::vector<std::shared_ptr<const Transform>> train_parts, test_parts;
  int64_t crop = 0;
  bool hflip = false;
  if (cfg.contains("augment")) {
    const std::string w = where + ".augment";
    const core::Json& a = cfg.at("augment");
    core::reject_unknown_keys(a, {"random_crop", "hflip"}, w);
    crop = core::read_int(a, "random_crop", 0, w);
    if (crop < 0) throw std::invalid_argument(w + ": 'random_crop' must be >= 0, got " + std::to_string(crop));
    hflip = core::read_bool(a, "hflip", false, w);
  }
  if (crop > 0) train_parts.push_back(std::make_shared<RandomCrop>(crop));
  if (hflip) train_parts.push_back(std::make_shared<HorizontalFlip>(0.5));
  p.resolved["augment"] = {{"random_crop", crop}, {"hflip", hflip}};
  if (normalize) {
    train_parts.push_back(normalize);
    test_parts.push_back(normalize);
  }
  p.train_transform = std::make_shared<Compose>(train_parts);
  p.test_transform = std::make_shared<Compose>(test_parts);

  // Loader options.
  LoaderOptions& tr = p.train_options;
  tr.batch_size = core::read_int(cfg, "batch_size", 128, where);
  if (tr.batch_size <= 0) throw std::invalid_argument(where + ": 'batch_size' must be positive, got " + std::to_string(tr.batch_size));
  tr.shuffle = core::read_bool(cfg, "shuffle", true, where);
  tr.drop_last = core::read_bool(cfg, "drop_last", false, where);
  tr.augment = crop > 0 || hflip;
  tr.seed = seed;
  const int64_t prefetch = core::read_int(cfg, "prefetch", 2, where);
  if (prefetch < 0 || prefetch > 64) throw std::invalid_argument(where + ": 'prefetch' must be in [0, 64], got " + std::to_string(prefetch));
  tr.prefetch = static_cast<int>(prefetch);
  LoaderOptions& te = p.test_options;
  te = tr;
  te.batch_size = core::read_int(cfg, "test_batch_size", tr.batch_size, where);
  if (te.batch_size <= 0)
    throw std::invalid_argument(where + ": 'test_batch_size' must be positive, got " + std::to_string(te.batch_size));
  te.shuffle = false;
  te.drop_last = false;
  te.augment = false;
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, core::Json>>{
           {"batch_size", tr.batch_size}, {"test_batch_size", te.batch_size}, {"shuffle", tr.shuffle},
           {"drop_last", tr.drop_last}, {"prefetch", prefetch}})
    p.resolved[key] = value;

  p.train = train;
  p.test = test;
  p.num_classes = train->num_classes();
  p.input_shape = p.train_transform->output_shape(train->item_shape());
  p.notes.insert(p.notes.begin(), {"train: " + train->describe(), "test: " + test->describe()});
  p.notes.insert(p.notes.end(), o.notes.begin(), o.notes.end());
  if (kind != "image_folder") p.notes.push_back("classes (" + std::to_string(p.num_classes) + "): " + join_names(train->class_names()));
  p.notes.push_back("train transform: " + p.train_transform->describe());
  p.notes.push_back("test transform: " + p.test_transform->describe());
  return p;
}

}  // namespace deja::data

// loader_bench: data loader throughput (images/s) on Fashion-MNIST padded to
// 32x32 with random crop (pad 4), horizontal flip and normalisation, batch 128,
// one prefetch worker: the configuration the CifarNet experiments train with.
// The consumer only touches each batch, so the figure is the loader's ceiling.
// Usage: loader_bench [--batches N] [--batch-size B] [--prefetch P] [--path DIR]
#include <cxxopts.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

#include "data/loader.h"
#include "data/pipeline.h"
#include "core/blas_idle.h"
#include "core/malloc_tuning.h"

int main(int argc, char** argv) {
  deja::core::reexec_with_short_blas_spin(argv);  // before any GEMM: core/blas_idle.h
  deja::core::keep_freed_memory();  // core/malloc_tuning.h
  cxxopts::Options cli("loader_bench", "Data loader throughput on Fashion-MNIST with augmentation");
  cli.add_options()("batches", "batches to time", cxxopts::value<int64_t>()->default_value("2000"))(
      "batch-size", "batch size", cxxopts::value<int64_t>()->default_value("128"))(
      "prefetch", "batches built ahead (0 = no worker thread)", cxxopts::value<int>()->default_value("2"))(
      "path", "Fashion-MNIST folder (default: the Debian package's)", cxxopts::value<std::string>())(
      "h,help", "help");
  try {
    auto args = cli.parse(argc, argv);
    if (args.count("help")) {
      std::printf("%s\n", cli.help().c_str());
      return 0;
    }
    deja::core::Json cfg = {{"dataset", "fashion-mnist"},
                            {"pad_to", 32},
                            {"normalize", "auto"},
                            {"augment", {{"random_crop", 4}, {"hflip", true}}},
                            {"batch_size", args["batch-size"].as<int64_t>()},
                            {"prefetch", args["prefetch"].as<int>()}};
    if (args.count("path")) cfg["path"] = args["path"].as<std::string>();
    auto t_open = std::chrono::steady_clock::now();
    deja::data::DataPipeline p = deja::data::make_data_pipeline(cfg, 1);
    const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_open).count();
    for (const auto& note : p.notes) std::printf("  %s\n", note.c_str());
    std::printf("open + statistics: %.3f s\n", open_s);

    deja::data::Loader loader(p.train, p.train_transform, p.train_options);
    const int64_t want = args["batches"].as<int64_t>();
    int64_t images = 0, batches = 0, epoch = 0;
    double checksum = 0;
    deja::data::Batch batch;
    loader.start_epoch(epoch);
    auto t0 = std::chrono::steady_clock::now();
    while (batches < want) {
      if (!loader.next(batch)) {
        loader.start_epoch(++epoch);
        continue;
      }
      checksum += batch.images[0];
      images += batch.images.size(0);
      ++batches;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%lld batches, %lld images in %.3f s: %.0f images/s (%.1f us/image), checksum %.3f\n",
                static_cast<long long>(batches), static_cast<long long>(images), s, images / s, 1e6 * s / images,
                checksum);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loader_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

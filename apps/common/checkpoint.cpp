#include "apps/common/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace deja::apps {
namespace fs = std::filesystem;

namespace {
const char* kOptimizerPrefix = "deja.optimizer.";
const char* kFilePrefix = "checkpoint-epoch-";
const char* kFileSuffix = ".safetensors";

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kFilePrefix, 0) != 0 || name.size() <= std::string(kFileSuffix).size() ||
        name.substr(name.size() - std::string(kFileSuffix).size()) != kFileSuffix)
      continue;
    std::string digits = name.substr(std::string(kFilePrefix).size(),
                                     name.size() - std::string(kFilePrefix).size() -
                                         std::string(kFileSuffix).size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    found.push_back({std::stoll(digits), entry.path()});
  }
  std::sort(found.begin(), found.end());
  return found;
}
}  // namespace

std::string checkpoint_file_name(int64_t epoch) {
  return fmt::format("{}{:04d}{}", kFilePrefix, epoch, kFileSuffix);
}

core::Json save_random_streams(layers::Model& model) {
  core::Json j = core::Json::object();
  for (auto& [name, rng] : model.random_streams()) {
    auto s = rng->state();
    j[name] = {s.state, s.inc};
  }
  return j;
}

void load_random_streams(const Checkpoint& ckpt, layers::Model& model) {
  const auto& saved = ckpt.state.rngs;
  for (auto& [name, rng] : model.random_streams()) {
    if (!saved.contains(name))
      throw std::runtime_error("checkpoint '" + ckpt.file.path() + "': no state for random stream '" +
                               name + "'");
    core::Rng::State s;
    s.state = saved[name][0].get<uint64_t>();
    s.inc = saved[name][1].get<uint64_t>();
    rng->set_state(s);
  }
}

std::string save_checkpoint(const std::string& dir, layers::Model& model, core::Optimizer* optimizer,
                            const TrainingState& state, const core::Json& config, int64_t keep_last) {
  std::vector<core::TensorRef> refs;
  for (auto& p : model.root().named_parameters()) refs.push_back({p.name, p.tensor->shape(), p.tensor->data()});
  for (auto& b : model.buffers()) refs.push_back({b.name, b.tensor->shape(), b.tensor->data()});
  if (optimizer)
    for (auto& [name, t] : optimizer->state_tensors())
      refs.push_back({kOptimizerPrefix + name, t->shape(), t->data()});
  core::Json st = {{"epochs_done", state.epochs_done}, {"step", state.step},
                   {"wall_s", state.wall_s},           {"optimizer", state.optimizer},
                   {"lr_schedule", state.lr_schedule}, {"reuse_schedule", state.reuse_schedule},
                   {"rngs", state.rngs},               {"extra", state.extra}};
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"deja_state", st.dump()}, {"deja_config", config.dump()}};
  fs::path path = fs::path(dir) / checkpoint_file_name(state.epochs_done);
  core::write_safetensors(path.string(), refs, meta);
  auto all = list_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
  }
  return path.string();
}

Checkpoint open_checkpoint(const std::string& path) {
  fs::path file = path;
  std::error_code ec;
  if (fs::is_directory(file, ec)) {
    auto all = list_checkpoints(file);
    if (all.empty())
      throw std::runtime_error("resume: no checkpoint-epoch-*.safetensors in folder '" + path + "'");
    file = all.back().second;
  } else if (!fs::exists(file, ec)) {
    throw std::runtime_error("checkpoint '" + path + "': no such file or folder");
  }
  Checkpoint c{core::SafetensorsFile::read(file.string()), {}, {}};
  const auto& meta = c.file.metadata();
  auto need = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end())
      throw std::runtime_error("checkpoint '" + c.file.path() + "': not a deja checkpoint (no '" + key +
                               "' in __metadata__)");
    return it->second;
  };
  try {
    c.config = core::Json::parse(need("deja_config"));
    core::Json st = core::Json::parse(need("deja_state"));
    c.state.epochs_done = st.at("epochs_done").get<int64_t>();
    c.state.step = st.at("step").get<int64_t>();
    c.state.wall_s = st.at("wall_s").get<double>();
    c.state.optimizer = st.at("optimizer");
    c.state.lr_schedule = st.at("lr_schedule");
    c.state.reuse_schedule = st.at("reuse_schedule");
    c.state.rngs = st.at("rngs");
    c.state.extra = st.at("extra");
  } catch (const core::Json::exception& e) {
    throw std::runtime_error("checkpoint '" + c.file.path() + "': bad training state: " + e.what());
  }
  return c;
}

void load_model_weights(const Checkpoint& ckpt, layers::Model& model) {
  auto load = [&](const std::vector<core::NamedParameter>& list) {
    for (const auto& p : list) {
      if (!ckpt.file.has(p.name))
        throw std::runtime_error("checkpoint '" + ckpt.file.path() + "': missing tensor '" + p.name +
                                 "' the model needs (does the config match?)");
      ckpt.file.copy_to(p.name, p.tensor->shape(), p.tensor->data());
    }
  };
  load(model.root().named_parameters());
  load(model.buffers());
}

void load_optimizer_state(const Checkpoint& ckpt, core::Optimizer& optimizer) {
  for (auto& [name, t] : optimizer.state_tensors()) {
    std::string key = kOptimizerPrefix + name;
    if (!ckpt.file.has(key))
      throw std::runtime_error("checkpoint '" + ckpt.file.path() + "': missing optimizer state '" + key +
                               "' (saved with another optimizer?)");
    ckpt.file.copy_to(key, t->shape(), t->data());
  }
  optimizer.load_state_json(ckpt.state.optimizer);
}

}  // namespace deja::apps

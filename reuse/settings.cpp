// Reading, validating and describing per-layer reuse settings.
#include "reuse/settings.h"

#include <sstream>
#include <stdexcept>

#include "reuse/lowrank_product.h"
#include "reuse/reuse_product.h"

namespace deja::reuse {

namespace {

std::string quoted(const std::string& s) { return core::Json(s).dump(); }

void check_choice(const std::string& where, const std::string& key, const std::string& value,
                  const std::vector<std::string>& choices) {
  for (const auto& c : choices)
    if (value == c) return;
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i)
    list += (i ? (i + 1 == choices.size() ? " or " : ", ") : "") + quoted(choices[i]);
  throw std::invalid_argument(where + ": key '" + key + "' must be " + list + ", got " +
                              quoted(value));
}

}  // namespace

void ReuseSettings::validate(const std::string& where) const {
  check_choice(where, "hash", hash, {"sign", "qproj", "signnorm", "pca"});
  if (L < 1) throw std::invalid_argument(where + ": key 'L' must be >= 1, got " + std::to_string(L));
  if (H < 1 || H > 32)
    throw std::invalid_argument(where + ": key 'H' must be in 1..32, got " + std::to_string(H));
  if (!(width >= 0.0)) {
    std::ostringstream os;
    os << width;
    throw std::invalid_argument(where + ": key 'width' must be >= 0 (0 = automatic), got " + os.str());
  }
  check_choice(where, "dx", dx, {"cluster", "exact"});
  check_choice(where, "forward", forward, {"cluster", "exact"});
  check_choice(where, "scope", scope, {"batch", "cross_batch"});
  if (keep_projection && hash != "pca")
    throw std::invalid_argument(where + ": key 'keep_projection' needs hash \"pca\" (orthonormal directions), got " +
                                quoted(hash));
  if (lowrank && hash != "pca")
    throw std::invalid_argument(where + ": key 'lowrank' needs hash \"pca\" (its directions), got " + quoted(hash));
  if (lowrank && keep_projection)
    throw std::invalid_argument(where + ": keys 'lowrank' and 'keep_projection' exclude each other");
  if (refit < 1) throw std::invalid_argument(where + ": key 'refit' must be >= 1, got " + std::to_string(refit));
  if (refit != 1 && !lowrank)
    throw std::invalid_argument(where +
                                ": key 'refit' applies to 'lowrank' only (the clustered product fits every batch)");
  if (!(dw_sample >= 0.0 && dw_sample <= 1.0)) {
    std::ostringstream os;
    os << dw_sample;
    throw std::invalid_argument(where + ": key 'dw_sample' must be in 0..1, got " + os.str());
  }
  if (dw_sample != 0.0 && !lowrank)
    throw std::invalid_argument(where + ": key 'dw_sample' applies to 'lowrank' only");
  if (bf16 && !lowrank) throw std::invalid_argument(where + ": key 'bf16' applies to 'lowrank' only");
  if (bf16 && dw_sample != 0.0)  // the residual needs the float P, which bf16 does not keep
    throw std::invalid_argument(where + ": keys 'bf16' and 'dw_sample' exclude each other");
  if (lowrank && forward != "cluster")
    throw std::invalid_argument(where + ": key 'lowrank' computes Y itself (leave 'forward' unset)");
  if (keep_projection && forward != "cluster")
    throw std::invalid_argument(where + ": key 'keep_projection' needs forward \"cluster\", got " + quoted(forward));
}

ReuseSettings settings_from_json(const core::Json& j, const ReuseSettings& defaults,
                                 const std::string& where) {
  core::reject_unknown_keys(
      j, {"enabled", "hash", "L", "H", "width", "dx", "forward", "keep_projection", "lowrank", "refit", "dw_sample", "bf16",
       "scope"},
      where);
  ReuseSettings s = defaults;
  s.enabled = core::read_bool(j, "enabled", s.enabled, where);
  s.hash = core::read_string(j, "hash", s.hash, where);
  s.L = core::read_int(j, "L", s.L, where);
  s.H = core::read_int(j, "H", s.H, where);
  s.width = core::read_number(j, "width", s.width, where);
  s.dx = core::read_string(j, "dx", s.dx, where);
  s.forward = core::read_string(j, "forward", s.forward, where);
  s.keep_projection = core::read_bool(j, "keep_projection", s.keep_projection, where);
  s.lowrank = core::read_bool(j, "lowrank", s.lowrank, where);
  s.refit = core::read_int(j, "refit", s.refit, where);
  s.dw_sample = core::read_number(j, "dw_sample", s.dw_sample, where);
  s.bf16 = core::read_bool(j, "bf16", s.bf16, where);
  s.scope = core::read_string(j, "scope", s.scope, where);
  s.validate(where);
  return s;
}

core::Json settings_to_json(const ReuseSettings& s) {
  return core::Json{{"enabled", s.enabled}, {"hash", s.hash}, {"L", s.L},         {"H", s.H},
                    {"width", s.width},     {"dx", s.dx},     {"forward", s.forward},
                    {"keep_projection", s.keep_projection}, {"lowrank", s.lowrank}, {"refit", s.refit},
                    {"dw_sample", s.dw_sample}, {"bf16", s.bf16}, {"scope", s.scope}};
}

std::string describe(const ReuseSettings& s) {
  if (!s.enabled) return "dense";
  std::ostringstream os;
  os << "reuse(hash=" << s.hash << ", L=" << s.L << ", H=" << s.H;
  if (s.width > 0.0) os << ", width=" << s.width;
  os << ", dx=" << s.dx;
  if (s.forward != "cluster") os << ", forward=" << s.forward;
  if (s.keep_projection) os << ", keep_projection";
  if (s.lowrank) os << ", lowrank";
  if (s.refit != 1) os << ", refit=" << s.refit;
  if (s.dw_sample != 0.0) os << ", dw_sample=" << s.dw_sample;
  if (s.bf16) os << ", bf16";
  if (s.scope != "batch") os << ", scope=" << s.scope;
  os << ")";
  return os.str();
}

std::shared_ptr<core::Product> make_product(const ReuseSettings& s) {
  if (!s.enabled) return core::make_dense_product();
  if (s.lowrank) return std::make_shared<LowRankProduct>(s);
  return std::make_shared<ReuseProduct>(s);
}

}  // namespace deja::reuse

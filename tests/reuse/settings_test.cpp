#include <doctest/doctest.h>

#include "reuse/reuse_product.h"
#include "reuse/settings.h"

using namespace deja;
using reuse::ReuseSettings;

TEST_CASE("reuse settings are read over the defaults") {
  ReuseSettings defaults;
  defaults.L = 20;
  auto s = reuse::settings_from_json(core::Json{{"enabled", true}, {"H", 12}, {"dx", "exact"}},
                                     defaults, "model.layers[3].reuse");
  CHECK(s.enabled);
  CHECK(s.L == 20);
  CHECK(s.H == 12);
  CHECK(s.dx == "exact");
  CHECK(s.hash == "qproj");
  auto back = reuse::settings_from_json(reuse::settings_to_json(s), ReuseSettings(), "x");
  CHECK(reuse::settings_to_json(back) == reuse::settings_to_json(s));
  CHECK(reuse::describe(ReuseSettings()) == "dense");
  CHECK(reuse::describe(s) == "reuse(hash=qproj, L=20, H=12, dx=exact)");
  CHECK(s.forward == "cluster");
  auto f = reuse::settings_from_json(core::Json{{"enabled", true}, {"forward", "exact"}}, defaults, "x");
  CHECK(f.forward == "exact");
  CHECK(reuse::describe(f) == "reuse(hash=qproj, L=20, H=8, dx=cluster, forward=exact)");
  CHECK(reuse::settings_from_json(reuse::settings_to_json(f), ReuseSettings(), "x").forward == "exact");
}

TEST_CASE("bad reuse settings name the layer and the key") {
  const std::string w = "model.layers[3].reuse";
  ReuseSettings d;
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"L", 0}}, d, w),
                    "model.layers[3].reuse: key 'L' must be >= 1, got 0");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"H", 40}}, d, w),
                    "model.layers[3].reuse: key 'H' must be in 1..32, got 40");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"H", 0}}, d, w),
                    "model.layers[3].reuse: key 'H' must be in 1..32, got 0");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"hash", "simhash"}}, d, w),
                    "model.layers[3].reuse: key 'hash' must be \"sign\", \"qproj\", \"signnorm\" or \"pca\", "
                    "got \"simhash\"");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"dx", "approx"}}, d, w),
                    "model.layers[3].reuse: key 'dx' must be \"cluster\" or \"exact\", got \"approx\"");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"forward", "dense"}}, d, w),
                    "model.layers[3].reuse: key 'forward' must be \"cluster\" or \"exact\", got \"dense\"");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"scope", "epoch"}}, d, w),
                    "model.layers[3].reuse: key 'scope' must be \"batch\" or \"cross_batch\", got \"epoch\"");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"width", -1.0}}, d, w),
                    "model.layers[3].reuse: key 'width' must be >= 0 (0 = automatic), got -1");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"Hh", 4}}, d, w),
                    "model.layers[3].reuse: unknown key 'Hh' (did you mean 'H'?)");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"L", "ten"}}, d, w),
                    "model.layers[3].reuse: key 'L' must be an integer, got \"ten\"");
  CHECK_THROWS_WITH(reuse::settings_from_json(core::Json{{"enabled", 1}}, d, w),
                    "model.layers[3].reuse: key 'enabled' must be true or false, got 1");
}

TEST_CASE("make_product gives dense when disabled and reuse when enabled") {
  ReuseSettings s;
  auto dense = reuse::make_product(s);
  CHECK_FALSE(dense->is_reuse());
  CHECK(dense->describe() == "dense");
  s.enabled = true;
  s.hash = "sign";
  auto r = reuse::make_product(s);
  CHECK(r->is_reuse());
  CHECK(r->describe() == "reuse(hash=sign, L=10, H=8, dx=cluster)");
  auto* rp = dynamic_cast<reuse::ReuseProduct*>(r.get());
  REQUIRE(rp);
  s.L = 0;
  CHECK_THROWS_WITH(rp->set_settings(s), "reuse product: key 'L' must be >= 1, got 0");
  s.L = 5;
  rp->set_settings(s);
  CHECK(rp->settings().L == 5);
}

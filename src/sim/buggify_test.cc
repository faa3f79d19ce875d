// FTVM_BUGGIFY in a build that turns it on (as the simulator's copies of the
// protocol libraries are built): off until a world installs a source, then
// asked of that source with the site's name.
#define FTVM_SIM_BUGGIFY 1
#include "util/buggify.h"

#include <gtest/gtest.h>

#include <string>

#include "sim/guest_image.h"
#include "sim/world.h"

namespace ftvm::sim {
namespace {

std::string last_site;

bool always(void*, const char* site, double p) {
  last_site = site;
  return p > 0;
}

TEST(Buggify, FiresOnlyWhenASourceIsInstalled) {
  buggify::set_source(nullptr, nullptr);
  EXPECT_FALSE(FTVM_BUGGIFY(1.0));
  buggify::set_source(&always, nullptr);
  EXPECT_TRUE(FTVM_BUGGIFY(0.5));
  EXPECT_NE(last_site.find("buggify_test.cc:"), std::string::npos) << last_site;
  EXPECT_FALSE(FTVM_BUGGIFY(0.0));
  buggify::set_source(nullptr, nullptr);
}

TEST(Buggify, AWorldInstallsASeededSourceAndRemovesIt) {
  auto image = GuestImage::boot();
  ASSERT_TRUE(image);
  WorldOptions o;
  o.seed = 1;
  std::string first, second;
  {
    World w(**image, o);
    for (int i = 0; i < 64; ++i) first += FTVM_BUGGIFY(0.5) ? '1' : '0';
  }
  EXPECT_FALSE(FTVM_BUGGIFY(1.0));  // the world is gone
  {
    World w(**image, o);
    for (int i = 0; i < 64; ++i) second += FTVM_BUGGIFY(0.5) ? '1' : '0';
  }
  EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace ftvm::sim

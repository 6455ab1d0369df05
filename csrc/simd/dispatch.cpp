// Which float kernel table runs: chosen once (first use) by the rule of core/cpu_features.hpp
// (BITGRAPH_SIMD=generic|avx2|avx512 caps the level for tests).
#include <string>

#include "core/cpu_features.hpp"
#include "simd/kernels.hpp"

namespace bitgraph {

namespace {

bool parse(const char* name, SimdLevel* level) { return parse_level(name, level); }

const KernelTable& table_for(SimdLevel level) {
#if BITGRAPH_HAVE_X86_SIMD
  if (level == SimdLevel::kAvx512) return simd_avx512::table();
  if (level == SimdLevel::kAvx2) return simd_avx2::table();
#endif
  (void)level;
  return simd_generic::table();
}

const KernelTable& choose() { return table_for(choose_level(kFloatAvx2Needs, kFloatAvx512Needs)); }

}  // namespace

bool simd_level_supported(const char* name) {
  SimdLevel level;
  return parse(name, &level) && level_runs(level, kFloatAvx2Needs, kFloatAvx512Needs);
}

const KernelTable& kernels_for_level(const char* name) {
  if (!simd_level_supported(name))
    throw ValueError(std::string("SIMD level '") + name + "' is not available here");
  SimdLevel level;
  parse(name, &level);
  return table_for(level);
}

const KernelTable& active_kernels() {
  static const KernelTable& t = choose();
  return t;
}

const DistanceKernels& kernels_for(StorageKind storage, Metric metric) {
  return active_kernels().kernels[int(storage)][int(metric)];
}

}  // namespace bitgraph

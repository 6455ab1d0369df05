// Chooses the code kernels once (VPOPCNTDQ, else POPCNT, else portable) by the rule of
// core/cpu_features.hpp: under BITGRAPH_SIMD=avx512 on a CPU without VPOPCNTDQ they run avx2.
#include <string>

#include "core/cpu_features.hpp"
#include "binary/binary_kernels.hpp"
#include "core/types.hpp"

namespace bitgraph {

namespace {

// The code kernels' levels: POPCNT at avx2, VPOPCNTDQ at avx512.
constexpr uint32_t kAvx2Needs = kAvx2 | kPopcnt;
constexpr uint32_t kAvx512Needs = kAvx512f | kAvx512dq | kAvx512Vpopcntdq | kPopcnt;

const CodeKernelTable& table_for(SimdLevel level) {
#if BITGRAPH_HAVE_X86_SIMD
  if (level == SimdLevel::kAvx512) return codes_avx512::table();
  if (level == SimdLevel::kAvx2) return codes_avx2::table();
#endif
  (void)level;
  return codes_generic::table();
}

const CodeKernelTable& choose() { return table_for(choose_level(kAvx2Needs, kAvx512Needs)); }

}  // namespace

bool code_level_supported(const char* name) {
  SimdLevel level;
  return parse_level(name, &level) && level_runs(level, kAvx2Needs, kAvx512Needs);
}

const CodeKernelTable& code_kernels_for_level(const char* name) {
  if (!code_level_supported(name))
    throw ValueError(std::string("code kernel level '") + name + "' is not available here");
  SimdLevel level;
  parse_level(name, &level);
  return table_for(level);
}

const CodeKernelTable& active_code_kernels() {
  static const CodeKernelTable& t = choose();
  return t;
}

CodeKernels code_kernels_for(CodeDistance distance, const CodeLayout& layout) {
  return active_code_kernels().select(distance, layout);
}

}  // namespace bitgraph

// Chooses the code kernels once: VPOPCNTDQ, else POPCNT, else portable. BITGRAPH_SIMD forces a
// level as for the float kernels (simd/dispatch.cpp).
#include <cstdlib>
#include <cstring>
#include <string>

#include "binary/binary_kernels.hpp"
#include "core/types.hpp"

namespace bitgraph {

namespace {

bool cpu_has(const char* level) {
#if BITGRAPH_HAVE_X86_SIMD
  __builtin_cpu_init();
  if (std::strcmp(level, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vpopcntdq");
  if (std::strcmp(level, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#endif
  return std::strcmp(level, "generic") == 0;
}

const CodeKernelTable& choose() {
  const char* forced = std::getenv("BITGRAPH_SIMD");
  if (forced && *forced) {
    // A float level this CPU has but the code kernels lack (AVX-512 without VPOPCNTDQ)
    // falls back to the next code level rather than failing.
    if (std::strcmp(forced, "avx512") == 0 && !cpu_has("avx512")) forced = "avx2";
    if (cpu_has(forced)) return code_kernels_for_level(forced);
  }
  if (cpu_has("avx512")) return code_kernels_for_level("avx512");
  if (cpu_has("avx2")) return code_kernels_for_level("avx2");
  return codes_generic::table();
}

}  // namespace

bool code_level_supported(const char* level) { return cpu_has(level); }

const CodeKernelTable& code_kernels_for_level(const char* level) {
  if (!cpu_has(level))
    throw ValueError(std::string("code kernel level '") + level + "' is not available here");
#if BITGRAPH_HAVE_X86_SIMD
  if (std::strcmp(level, "avx512") == 0) return codes_avx512::table();
  if (std::strcmp(level, "avx2") == 0) return codes_avx2::table();
#endif
  return codes_generic::table();
}

const CodeKernelTable& active_code_kernels() {
  static const CodeKernelTable& t = choose();
  return t;
}

CodeKernels code_kernels_for(CodeDistance distance, const CodeLayout& layout) {
  return active_code_kernels().select(distance, layout);
}

}  // namespace bitgraph

// The one place that decides which instruction set runs. Chosen once (first use); the
// environment variable BITGRAPH_SIMD=generic|avx2|avx512 may force a lower level for tests.
#include <cstdlib>
#include <cstring>
#include <string>

#include "simd/kernels.hpp"

namespace bitgraph {

namespace {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc's check includes the OS (XCR0) enabling the ZMM state.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         cpu_has_avx2();
#else
  return false;
#endif
}

const KernelTable& choose() {
  const char* forced = std::getenv("BITGRAPH_SIMD");
  if (forced && *forced) {
    if (!simd_level_supported(forced))
      throw ValueError(std::string("BITGRAPH_SIMD=") + forced +
                       " is not supported by this CPU/build (use generic, avx2 or avx512)");
    return kernels_for_level(forced);
  }
  if (cpu_has_avx512()) return simd_avx512::table();
  if (cpu_has_avx2()) return simd_avx2::table();
  return simd_generic::table();
}

}  // namespace

bool simd_level_supported(const char* level) {
#if BITGRAPH_HAVE_X86_SIMD
  if (std::strcmp(level, "avx512") == 0) return cpu_has_avx512();
  if (std::strcmp(level, "avx2") == 0) return cpu_has_avx2();
#endif
  return std::strcmp(level, "generic") == 0;
}

const KernelTable& kernels_for_level(const char* level) {
  if (!simd_level_supported(level))
    throw ValueError(std::string("SIMD level '") + level + "' is not available here");
#if BITGRAPH_HAVE_X86_SIMD
  if (std::strcmp(level, "avx512") == 0) return simd_avx512::table();
  if (std::strcmp(level, "avx2") == 0) return simd_avx2::table();
#endif
  return simd_generic::table();
}

const KernelTable& active_kernels() {
  static const KernelTable& t = choose();
  return t;
}

const DistanceKernels& kernels_for(StorageKind storage, Metric metric) {
  return active_kernels().kernels[int(storage)][int(metric)];
}

}  // namespace bitgraph

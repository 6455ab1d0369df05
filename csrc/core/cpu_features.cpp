#include "core/cpu_features.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/types.hpp"

namespace bitgraph {

namespace {

uint32_t probe() {
  uint32_t f = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc's checks include the OS (XCR0) enabling the YMM / ZMM state.
  if (__builtin_cpu_supports("popcnt")) f |= kPopcnt;
  if (__builtin_cpu_supports("avx2")) f |= kAvx2;
  if (__builtin_cpu_supports("fma")) f |= kFma;
  if (__builtin_cpu_supports("f16c")) f |= kF16c;
  if (__builtin_cpu_supports("avx512f")) f |= kAvx512f;
  if (__builtin_cpu_supports("avx512bw")) f |= kAvx512bw;
  if (__builtin_cpu_supports("avx512vl")) f |= kAvx512vl;
  if (__builtin_cpu_supports("avx512dq")) f |= kAvx512dq;
  if (__builtin_cpu_supports("avx512vpopcntdq")) f |= kAvx512Vpopcntdq;
#endif
  return f;
}

bool compiled_in(SimdLevel level) {
#if BITGRAPH_HAVE_X86_SIMD
  (void)level;
  return true;
#else
  return level == SimdLevel::kGeneric;
#endif
}

SimdLevel read_cap() {
  const char* forced = std::getenv("BITGRAPH_SIMD");
  if (!forced || !*forced) return SimdLevel::kAvx512;
  SimdLevel level;
  if (!parse_level(forced, &level) || !level_runs(level, kFloatAvx2Needs, kFloatAvx512Needs))
    throw ValueError(std::string("BITGRAPH_SIMD=") + forced +
                     " is not supported by this CPU/build (use generic, avx2 or avx512)");
  return level;
}

}  // namespace

bool cpu_has(uint32_t features) {
  static const uint32_t present = probe();
  return (present & features) == features;
}

bool level_runs(SimdLevel level, uint32_t avx2_needs, uint32_t avx512_needs) {
  if (!compiled_in(level)) return false;
  switch (level) {
    case SimdLevel::kAvx512: return cpu_has(avx512_needs);
    case SimdLevel::kAvx2: return cpu_has(avx2_needs);
    default: return true;
  }
}

SimdLevel simd_cap() {
  static const SimdLevel cap = read_cap();
  return cap;
}

SimdLevel choose_level(uint32_t avx2_needs, uint32_t avx512_needs) {
  for (int l = int(simd_cap()); l > 0; --l)
    if (level_runs(SimdLevel(l), avx2_needs, avx512_needs)) return SimdLevel(l);
  return SimdLevel::kGeneric;
}

const char* level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "generic";
  }
}

bool parse_level(const char* name, SimdLevel* out) {
  for (SimdLevel l : {SimdLevel::kGeneric, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (std::strcmp(name, level_name(l)) == 0) {
      *out = l;
      return true;
    }
  }
  return false;
}

}  // namespace bitgraph

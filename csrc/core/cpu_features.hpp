// The one place the CPU is probed and the one rule for which instruction-set level a kernel
// family runs.
//
// Levels are generic < avx2 < avx512. BITGRAPH_SIMD=generic|avx2|avx512 caps the level for
// every family (tests compare levels with it); a named level the CPU cannot run (the float
// kernels' features of that level are missing) is an error, never a silent downgrade, so a
// test never believes it compared levels that did not run. Each family then runs the highest
// level at or below the cap whose features this CPU has: e.g. the code kernels' avx512 level
// also needs VPOPCNTDQ, and without it they run avx2 under an avx512 cap.
#pragma once
#include <cstdint>

namespace bitgraph {

enum class SimdLevel : int { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

// CPU features (bits), probed once; the x86 ones also require the OS to enable their state.
enum CpuFeature : uint32_t {
  kPopcnt = 1u << 0,
  kAvx2 = 1u << 1,
  kFma = 1u << 2,
  kF16c = 1u << 3,
  kAvx512f = 1u << 4,
  kAvx512bw = 1u << 5,
  kAvx512vl = 1u << 6,
  kAvx512dq = 1u << 7,
  kAvx512Vpopcntdq = 1u << 8,
};

// What the float kernels (simd/) need per level: the features that define a level.
constexpr uint32_t kFloatAvx2Needs = kAvx2 | kFma | kF16c;
constexpr uint32_t kFloatAvx512Needs = kFloatAvx2Needs | kAvx512f | kAvx512bw | kAvx512vl | kAvx512dq;

// Whether this CPU (and build) has every feature in `features`.
bool cpu_has(uint32_t features);
// The cap: BITGRAPH_SIMD if set (ValueError if unknown or beyond this CPU), else avx512.
SimdLevel simd_cap();
// The level a family runs: the highest level <= simd_cap() whose needs the CPU has.
SimdLevel choose_level(uint32_t avx2_needs, uint32_t avx512_needs);
// Whether a family's `level` can run here (its needs, and compiled in), ignoring the cap.
bool level_runs(SimdLevel level, uint32_t avx2_needs, uint32_t avx512_needs);

const char* level_name(SimdLevel level);
// Parses "generic" / "avx2" / "avx512"; false for anything else.
bool parse_level(const char* name, SimdLevel* out);

}  // namespace bitgraph

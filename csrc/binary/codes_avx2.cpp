// Code kernels for AVX2-class CPUs: built with -mpopcnt, so each word costs one POPCNT.
#include <cstdint>
#include <cstring>

#include "binary/binary_kernels.hpp"

namespace bitgraph::codes_avx2 {
constexpr const char* kLevelName = "avx2";
#include "binary/popcount_scalar.inc"
}  // namespace bitgraph::codes_avx2

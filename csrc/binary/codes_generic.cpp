// Portable code kernels (no instruction-set flags: the compiler's generic popcount).
#include <cstdint>
#include <cstring>

#include "binary/binary_kernels.hpp"

namespace bitgraph::codes_generic {
constexpr const char* kLevelName = "generic";
#include "binary/popcount_scalar.inc"
}  // namespace bitgraph::codes_generic

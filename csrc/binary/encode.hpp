// Recurrent binarization, encode side (docs/backend-contract.md, "Encoding"): u+1 loops of
// binarize -> reconstruct -> residual with linear maps, then bit packing. Pure function over
// the model's arrays, so the Numba and numpy versions can be checked against it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitgraph {

struct EncodeModel {
  size_t dim = 0;        // d: input values per vector
  size_t rdim = 0;       // r: residual dimensions after the input projection
  size_t code_dim = 0;   // m: bits per plane
  size_t planes = 1;     // P = u + 1 loops
  bool normalize = false;
  const float* mean = nullptr;       // (d)
  const float* proj = nullptr;       // (d, r)
  const float* phi = nullptr;        // (P, r, m), or nullptr: identity (r == m)
  const float* phi_bias = nullptr;   // (P, m)
  const float* psi = nullptr;        // (P, m, r), or nullptr: psi_scale[t] * identity (r == m)
  const float* psi_scale = nullptr;  // (P)
  const float* psi_bias = nullptr;   // (P, r)
  size_t words() const { return (code_dim + 63) / 64; }
  size_t code_bytes() const { return planes * words() * 8; }
};

// Encodes n vectors (n x dim float32) into n code rows of model.code_bytes() bytes.
void binary_encode(const EncodeModel& model, const float* x, size_t n, size_t threads,
                   uint8_t* out);

}  // namespace bitgraph

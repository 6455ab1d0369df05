// The one pass over a search's queries that the Python layer's checks would otherwise make
// (they cost more than a small query's walk): finiteness and the magnitude limit of l2 / ip,
// or L2 normalisation for cosine. Each returns false for anything unusual (NaN, infinity, a
// value beyond the limit, a zero row, a norm that float32 cannot square), and the caller then
// takes the careful path that explains or handles it.
#pragma once
#include <cmath>
#include <cstddef>

namespace bitgraph {

// Whether every one of the n values is finite and |x| <= limit (NaN fails the comparison).
inline bool values_within(const float* x, size_t n, float limit) {
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= std::fabs(x[i]) <= limit;
  return ok;
}

// Writes each of the nq rows divided by its L2 norm to `out`. False when a row's squared norm
// lies outside [1e-30, 1e30] or is not finite (the Python layer rescales those rows first).
inline bool normalize_rows(const float* x, size_t nq, size_t dim, float* out) {
  for (size_t r = 0; r < nq; ++r) {
    const float* row = x + r * dim;
    float sq = 0.f;
    for (size_t j = 0; j < dim; ++j) sq += row[j] * row[j];
    if (!(sq >= 1e-30f && sq <= 1e30f)) return false;
    const float norm = std::sqrt(sq);
    float* o = out + r * dim;
    for (size_t j = 0; j < dim; ++j) o[j] = row[j] / norm;
  }
  return true;
}

// The largest |value| an l2 / ip row may hold: any two such rows keep |<a, b>| and
// |a - b|^2 below float32's maximum (python/bitgraph/_validation.py: magnitude_limit).
inline float magnitude_limit(size_t dim) {
  return float(std::sqrt(3.4028234663852886e38 / (4.0 * double(dim))));
}

}  // namespace bitgraph

#include "storage/vector_store.hpp"
#include "storage/code_store.hpp"

#include <cmath>
#include <cstring>
#include <string>

#include "core/half.hpp"

namespace bitgraph {

namespace {

void encode_int8_row(size_t dim, const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (size_t i = 0; i < dim; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
  int8_t* codes = reinterpret_cast<int8_t*>(out);
  float sqnorm = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    float c = std::nearbyint(x[i] / scale);  // round half to even, like numpy.rint
    c = std::fmin(127.0f, std::fmax(-127.0f, c));
    codes[i] = int8_t(c);
    float v = c * scale;
    sqnorm += v * v;
  }
  std::memcpy(out + dim, &scale, 4);
  std::memcpy(out + dim + 4, &sqnorm, 4);
}

}  // namespace

void encode_rows(StorageKind kind, size_t dim, const float* vectors, size_t n, uint8_t* out) {
  const size_t rb = row_bytes_for(kind, dim);
  for (size_t r = 0; r < n; ++r) {
    const float* x = vectors + r * dim;
    uint8_t* o = out + r * rb;
    switch (kind) {
      case StorageKind::kFloat32:
        std::memcpy(o, x, 4 * dim);
        break;
      case StorageKind::kBinary:
        throw ValueError("binary codes are not encoded from floats here (CodeStore)");
      case StorageKind::kFloat16:
        for (size_t i = 0; i < dim; ++i) {
          uint16_t h = float_to_half(x[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      case StorageKind::kInt8:
        encode_int8_row(dim, x, o);
        break;
    }
  }
}

void decode_rows(StorageKind kind, size_t dim, const uint8_t* rows, size_t n, float* out) {
  const size_t rb = row_bytes_for(kind, dim);
  for (size_t r = 0; r < n; ++r) {
    const uint8_t* row = rows + r * rb;
    float* o = out + r * dim;
    switch (kind) {
      case StorageKind::kFloat32:
        std::memcpy(o, row, 4 * dim);
        break;
      case StorageKind::kBinary:
        throw ValueError("binary codes are not float rows (CodeStore)");
      case StorageKind::kFloat16:
        for (size_t i = 0; i < dim; ++i) {
          uint16_t h;
          std::memcpy(&h, row + 2 * i, 2);
          o[i] = half_to_float(h);
        }
        break;
      case StorageKind::kInt8: {
        float scale;
        std::memcpy(&scale, row + dim, 4);
        const int8_t* c = reinterpret_cast<const int8_t*>(row);
        for (size_t i = 0; i < dim; ++i) o[i] = float(c[i]) * scale;
        break;
      }
    }
  }
}

namespace {

// The row width of a float store, after refusing a code metric or binary storage.
size_t float_row_bytes(size_t dim, Metric metric, StorageKind kind) {
  if (kind == StorageKind::kBinary || metric == Metric::kSdc || metric == Metric::kHamming ||
      metric == Metric::kAsymmetric)
    throw ValueError(std::string("metric '") + metric_name(metric) +
                     "' does not apply to storage '" + storage_name(kind) +
                     "' (binary storage takes 'sdc', 'hamming' or 'asymmetric', float storage "
                     "'l2' or 'ip')");
  return row_bytes_for(kind, dim);
}

}  // namespace

RowStore::RowStore(size_t dim, Metric metric, StorageKind kind)
    : StoreRows(float_row_bytes(dim, metric, kind)), dim_(dim), metric_(metric), kind_(kind) {
  kernels_ = kernels_for(kind, metric);
}

const float* RowStore::as_query(size_t slot, std::vector<float>& scratch) const {
  if (kind_ == StorageKind::kFloat32) return reinterpret_cast<const float*>(row(slot));
  scratch.resize(dim_);
  decode_rows(kind_, dim_, row(slot), 1, scratch.data());
  return scratch.data();
}

namespace {

CodeLayout layout_for(CodeLayout layout, Metric metric) {
  layout.query_bits = metric == Metric::kAsymmetric ? kAsymmetricQueryBits : 0;
  return layout;
}

CodeDistance code_distance_of(Metric metric) {
  if (metric == Metric::kSdc) return CodeDistance::kSdc;
  if (metric == Metric::kHamming) return CodeDistance::kHamming;
  return CodeDistance::kAsymmetric;
}

}  // namespace

CodeStore::CodeStore(const CodeLayout& layout, Metric metric)
    : StoreRows(layout.row_bytes()), metric_(metric), layout_(layout_for(layout, metric)) {
  if (metric != Metric::kSdc && metric != Metric::kHamming && metric != Metric::kAsymmetric)
    throw ValueError(std::string("metric '") + metric_name(metric) +
                     "' does not apply to storage 'binary' (binary storage takes 'sdc', "
                     "'hamming' or 'asymmetric', float storage 'l2' or 'ip')");
  if (layout.planes < 1 || layout.planes > 8 || layout.words < 1)
    throw ValueError("binary storage needs 1 to 8 planes of at least one uint64 word (planes " +
                     std::to_string(layout.planes) + ", words " + std::to_string(layout.words) +
                     ")");
  if (!layout.exact_in_float())
    throw ValueError("binary code too long for exact distances: " +
                     std::to_string(layout.planes) + " planes of " +
                     std::to_string(64 * layout.words) + " bits");
  codes_ = code_kernels_for(code_distance_of(metric), layout_);
}

}  // namespace bitgraph

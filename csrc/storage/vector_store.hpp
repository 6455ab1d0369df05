// Encoded vector rows, one per slot (float32, float16 or int8; docs/backend-contract.md).
// The graph never looks inside a row: it asks the store for distances, so the same graph code
// runs over every encoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/buffer.hpp"
#include "core/types.hpp"
#include "binary/binary_kernels.hpp"
#include "simd/kernels.hpp"

namespace bitgraph {

// Encodes `n` float32 vectors of `dim` values into rows of the given storage.
void encode_rows(StorageKind kind, size_t dim, const float* vectors, size_t n, uint8_t* out);
// Decodes `n` rows back to float32.
void decode_rows(StorageKind kind, size_t dim, const uint8_t* rows, size_t n, float* out);

class VectorStore {
 public:
  // Binary storage (kind kBinary, metric kSdc or kHamming) needs the code's plane count. Its
  // rows are dim 32-bit units: 2 * planes * words of code, plus one offset unit when dim is odd.
  VectorStore(size_t dim, Metric metric, StorageKind kind, size_t planes = 1);

  size_t dim() const { return dim_; }
  size_t row_bytes() const { return row_bytes_; }
  StorageKind kind() const { return kind_; }
  Metric metric() const { return metric_; }
  size_t size() const { return rows_.size() / row_bytes_; }

  // Makes room for `count` rows in total (may move memory: callers hold the write lock).
  void resize(size_t count) { rows_.resize(count * row_bytes_); }
  void reserve(size_t count) { rows_.reserve_exact(count * row_bytes_); }
  void shrink_to_fit() { rows_.shrink_to_fit(); }
  void set(size_t slot, const float* vector) { encode_rows(kind_, dim_, vector, 1, row(slot)); }
  void borrow(const uint8_t* rows, size_t count) { rows_.borrow(rows, count * row_bytes_); }
  void make_owned() { rows_.make_owned(); }

  uint8_t* row(size_t slot) { return rows_.data() + slot * row_bytes_; }
  const uint8_t* row(size_t slot) const { return rows_.data() + slot * row_bytes_; }
  const uint8_t* data() const { return rows_.data(); }
  size_t nbytes() const { return rows_.owned_bytes(); }
  size_t borrowed_nbytes() const { return rows_.borrowed_bytes(); }

  const CodeLayout& code_layout() const { return layout_; }

  // Binary rows take the query's code bytes behind the float pointer (see StorageKind).
  float distance(const float* query, size_t slot) const {
    if (codes_.one) {
      const float d = codes_.one(as_code(query), row(slot), layout_);
      if (!layout_.offsets) return d;
      return float(uint32_t(d) + code_offset(as_code(query), layout_) +
                   code_offset(row(slot), layout_));
    }
    return kernels_.one(query, row(slot), dim_);
  }
  void distances(const float* query, const uint32_t* slots, size_t n, float* out) const {
    if (codes_.one) {
      codes_.gather(as_code(query), rows_.data(), layout_, slots, n, out);
      if (layout_.offsets) {
        const uint32_t oq = code_offset(as_code(query), layout_);
        for (size_t i = 0; i < n; ++i)
          out[i] = float(uint32_t(out[i]) + oq + code_offset(row(slots[i]), layout_));
      }
      return;
    }
    kernels_.gather(query, rows_.data(), row_bytes_, dim_, slots, n, out);
  }
  void distances_range(const float* query, size_t first, size_t n, float* out) const {
    if (codes_.one) {
      codes_.range(as_code(query), row(first), layout_, n, out);
      if (layout_.offsets) {
        const uint32_t oq = code_offset(as_code(query), layout_);
        for (size_t i = 0; i < n; ++i)
          out[i] = float(uint32_t(out[i]) + oq + code_offset(row(first + i), layout_));
      }
      return;
    }
    kernels_.range(query, row(first), row_bytes_, dim_, n, out);
  }
  // Float32 view of a stored row for use as a query (graph pruning compares stored rows).
  // Returns a pointer into the row for float32 storage, else decodes into `scratch`.
  const float* as_query(size_t slot, std::vector<float>& scratch) const;

 private:
  size_t dim_;
  size_t row_bytes_;
  Metric metric_;
  StorageKind kind_;
  static const uint8_t* as_code(const float* q) { return reinterpret_cast<const uint8_t*>(q); }

  DistanceKernels kernels_{};
  CodeKernels codes_{};  // binary storage only (codes_.one != nullptr)
  CodeLayout layout_;
  Buffer<uint8_t> rows_;
};

}  // namespace bitgraph

// Encoded float vector rows, one per slot (float32, float16 or int8; docs/backend-contract.md).
// The graph never looks inside a row: it asks the store for distances, so the same graph code
// runs over every encoding (and, as a template, over the binary CodeStore).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/types.hpp"
#include "simd/kernels.hpp"
#include "storage/store_rows.hpp"

namespace bitgraph {

// Encodes `n` float32 vectors of `dim` values into rows of the given float storage.
void encode_rows(StorageKind kind, size_t dim, const float* vectors, size_t n, uint8_t* out);
// Decodes `n` rows back to float32.
void decode_rows(StorageKind kind, size_t dim, const uint8_t* rows, size_t n, float* out);

class RowStore : public StoreRows {
 public:
  using Query = float;  // queries and added vectors: float32 values
  static constexpr bool kCodes = false;

  RowStore(size_t dim, Metric metric, StorageKind kind);
  explicit RowStore(const StoreSpec& s) : RowStore(s.dim, s.metric, s.kind) {}

  size_t dim() const { return dim_; }
  // Query values per row (the stride of a batch of queries).
  size_t query_width() const { return dim_; }
  size_t add_width() const { return dim_; }  // values per added vector
  StorageKind kind() const { return kind_; }
  Metric metric() const { return metric_; }

  void set(size_t slot, const float* vector) { encode_rows(kind_, dim_, vector, 1, row(slot)); }

  float distance(const float* query, size_t slot) const {
    return kernels_.one(query, row(slot), dim_);
  }
  void distances(const float* query, const uint32_t* slots, size_t n, float* out) const {
    kernels_.gather(query, rows_.data(), row_bytes_, dim_, slots, n, out);
  }
  void distances_range(const float* query, size_t first, size_t n, float* out) const {
    kernels_.range(query, row(first), row_bytes_, dim_, n, out);
  }
  // A stored row as a query (graph pruning compares stored rows): a pointer into the row for
  // float32 storage, else the row decoded into `scratch`.
  const float* as_query(size_t slot, std::vector<float>& scratch) const;

 private:
  size_t dim_;
  Metric metric_;
  StorageKind kind_;
  DistanceKernels kernels_{};
};

}  // namespace bitgraph

// The rows of a store: one fixed-width row per slot in one buffer (which may be borrowed from
// a file). RowStore (float rows) and CodeStore (binary codes) add what a row means.
#pragma once
#include <cstddef>
#include <cstdint>

#include "binary/binary_kernels.hpp"
#include "core/buffer.hpp"
#include "core/types.hpp"

namespace bitgraph {

// What a store is made from: float rows (dim, metric, kind) or codes (layout, metric).
struct StoreSpec {
  size_t dim = 0;
  Metric metric = Metric::kL2;
  StorageKind kind = StorageKind::kFloat32;
  CodeLayout layout{};
};

class StoreRows {
 public:
  size_t row_bytes() const { return row_bytes_; }
  size_t size() const { return rows_.size() / row_bytes_; }

  // Makes room for `count` rows in total (may move memory: callers hold the write lock).
  void resize(size_t count) { rows_.resize(count * row_bytes_); }
  void reserve(size_t count) { rows_.reserve_exact(count * row_bytes_); }
  void shrink_to_fit() { rows_.shrink_to_fit(); }
  void borrow(const uint8_t* rows, size_t count) { rows_.borrow(rows, count * row_bytes_); }
  void make_owned() { rows_.make_owned(); }

  uint8_t* row(size_t slot) { return rows_.data() + slot * row_bytes_; }
  const uint8_t* row(size_t slot) const { return rows_.data() + slot * row_bytes_; }
  const uint8_t* data() const { return rows_.data(); }
  size_t nbytes() const { return rows_.owned_bytes(); }
  size_t borrowed_nbytes() const { return rows_.borrowed_bytes(); }

 protected:
  explicit StoreRows(size_t row_bytes) : row_bytes_(row_bytes) {}
  size_t row_bytes_;
  Buffer<uint8_t> rows_;
};

}  // namespace bitgraph

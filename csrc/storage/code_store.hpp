// Binary code rows, one per slot (docs/backend-contract.md, "Binary codes"): `planes` bit
// planes of `words` uint64 words, then optionally the row's uint32 offset. Queries are code
// rows of the same layout (uint8), or, for the asymmetric distance, rows of B-bit query planes
// (CodeLayout); distances are exact integers carried as float32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "binary/binary_kernels.hpp"
#include "core/types.hpp"
#include "storage/store_rows.hpp"

namespace bitgraph {

class CodeStore : public StoreRows {
 public:
  using Query = uint8_t;  // queries and added rows: code bytes of this layout
  static constexpr bool kCodes = true;

  // metric kSdc, kHamming or kAsymmetric (which sets the layout's query_bits); throws
  // ValueError for a layout whose distances are not exact.
  CodeStore(const CodeLayout& layout, Metric metric);
  explicit CodeStore(const StoreSpec& s) : CodeStore(s.layout, s.metric) {}

  size_t query_width() const { return layout_.query_bytes(); }
  size_t add_width() const { return row_bytes_; }  // added rows are code rows
  Metric metric() const { return metric_; }
  const CodeLayout& code_layout() const { return layout_; }

  void set(size_t slot, const uint8_t* code) { std::memcpy(row(slot), code, row_bytes_); }

  float distance(const uint8_t* query, size_t slot) const {
    const float d = codes_.one(query, row(slot), layout_);
    if (!layout_.offsets) return d;
    return float(uint32_t(d) + query_offset(query, layout_) + code_offset(row(slot), layout_));
  }
  void distances(const uint8_t* query, const uint32_t* slots, size_t n, float* out) const {
    codes_.gather(query, rows_.data(), layout_, slots, n, out);
    if (!layout_.offsets) return;
    const uint32_t oq = query_offset(query, layout_);
    for (size_t i = 0; i < n; ++i)
      out[i] = float(uint32_t(out[i]) + oq + code_offset(row(slots[i]), layout_));
  }
  void distances_range(const uint8_t* query, size_t first, size_t n, float* out) const {
    codes_.range(query, row(first), layout_, n, out);
    if (!layout_.offsets) return;
    const uint32_t oq = query_offset(query, layout_);
    for (size_t i = 0; i < n; ++i)
      out[i] = float(uint32_t(out[i]) + oq + code_offset(row(first + i), layout_));
  }
  // A stored row as a query (graph building compares stored rows): the row itself; for the
  // asymmetric distance the row as the sharpest B-bit query, u = 2^B - 1 where a bit is set
  // and 0 elsewhere (every query plane is the code plane), whose distance to a row is
  // (2^B - 1) x the plane-wise Hamming distance, plus the offsets.
  const uint8_t* as_query(size_t slot, std::vector<uint8_t>& scratch) const {
    if (!layout_.query_bits) return row(slot);
    const size_t pb = 8 * layout_.words, B = layout_.query_bits;
    scratch.resize(layout_.query_bytes());
    const uint8_t* r = row(slot);
    for (size_t t = 0; t < layout_.planes; ++t)
      for (size_t i = 0; i < B; ++i) std::memcpy(scratch.data() + (t * B + i) * pb, r + t * pb, pb);
    if (layout_.offsets)
      std::memcpy(scratch.data() + layout_.query_code_bytes(), r + layout_.code_bytes(), 4);
    return scratch.data();
  }

 private:
  Metric metric_;
  CodeLayout layout_;
  CodeKernels codes_{};
};

}  // namespace bitgraph

#include "binary/rerank.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "core/parallel.hpp"
#include "simd/kernels.hpp"

namespace bitgraph {

void rerank(const float* queries, size_t nq, size_t dim, Metric metric, const float* vectors,
            size_t n_vectors, const int64_t* slots, const int64_t* labels, size_t n_cand,
            size_t k, size_t threads, int64_t* out_labels, float* out_dists) {
  if (metric != Metric::kL2 && metric != Metric::kInnerProduct)
    throw ValueError("re-ranking takes metric 'l2' or 'ip'");
  const DistanceKernels& kernels = kernels_for(StorageKind::kFloat32, metric);
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(vectors);
  const size_t row_bytes = 4 * dim;
  parallel_for(nq, std::max<size_t>(threads, 1), 4, [&](size_t i, size_t) {
    thread_local std::vector<std::pair<uint32_t, int64_t>> cands;
    thread_local std::vector<uint32_t> ids;
    thread_local std::vector<float> dists;
    thread_local std::vector<std::pair<float, size_t>> order;
    cands.clear();
    for (size_t j = 0; j < n_cand; ++j) {
      const int64_t s = slots[i * n_cand + j];
      if (s >= 0 && size_t(s) < n_vectors) cands.emplace_back(uint32_t(s), labels[i * n_cand + j]);
    }
    std::sort(cands.begin(), cands.end());
    cands.erase(std::unique(cands.begin(), cands.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                cands.end());
    const size_t n = cands.size();
    ids.resize(n);
    dists.resize(n);
    for (size_t j = 0; j < n; ++j) ids[j] = cands[j].first;
    kernels.gather(queries + i * dim, rows, row_bytes, dim, ids.data(), n, dists.data());
    order.resize(n);
    for (size_t j = 0; j < n; ++j) order[j] = {dists[j], j};
    const size_t kept = std::min(k, n);
    // Ties break by slot order, like the exact scans.
    std::partial_sort(order.begin(), order.begin() + kept, order.end());
    for (size_t j = 0; j < k; ++j) {
      out_labels[i * k + j] = j < kept ? cands[order[j].second].second : -1;
      out_dists[i * k + j] =
          j < kept ? order[j].first : std::numeric_limits<float>::infinity();
    }
  });
}

}  // namespace bitgraph

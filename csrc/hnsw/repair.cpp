// Reachability repair of the level-0 graph.
//
// The neighbour heuristic keeps a link only if no kept neighbour is closer, and back-links
// re-prune full lists, so a node can lose every in-link from the part of the graph that the
// entry point reaches: no walk, however wide, returns it (on 2,500 random vectors with
// ef_construction 40, ~8 such nodes for l2 and ~90 for ip, whose small-norm vectors are
// nobody's neighbour). hnswlib has the same gap. This pass finds those nodes with one
// traversal from the entry point and links each one in from its closest reachable node:
// into a free link slot when one of its nearest reachable nodes has one, otherwise in place
// of the link whose target has the most in-links (so that target keeps others). Tombstones
// count as waypoints, as in every walk. A few rounds settle the rare case where a replaced
// link was someone's last.
#include <algorithm>
#include <vector>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"

namespace bitgraph {

namespace {

constexpr int kRounds = 3;

// Marks everything reachable from `from` through level-0 links (iterative DFS).
template <class LinksOf>
void spread(uint32_t from, const LinksOf& links_of, size_t max_links, std::vector<uint8_t>& reached,
            std::vector<uint32_t>& stack) {
  if (reached[from]) return;
  reached[from] = 1;
  stack.push_back(from);
  while (!stack.empty()) {
    const uint32_t u = stack.back();
    stack.pop_back();
    const int32_t* ll = links_of(u);
    const size_t cnt = std::min<size_t>(size_t(ll[0]), max_links);
    for (size_t j = 0; j < cnt; ++j) {
      const uint32_t v = uint32_t(ll[1 + j]);
      if (!reached[v]) {
        reached[v] = 1;
        stack.push_back(v);
      }
    }
  }
}

}  // namespace

template <class Store>
size_t HnswIndexT<Store>::repair_reachability(Scratch& s) {
  const size_t n = n_slots_;
  const int64_t ep = entry_point_.load();
  if (ep < 0 || n < 2) return 0;
  const size_t M0 = graph_.M0();
  auto links_of = [&](uint32_t u) { return graph_.links(u, 0); };
  std::vector<uint8_t> reached;
  std::vector<uint32_t> stack, lost;
  std::vector<uint32_t> in_degree;
  const size_t ef = std::max(std::min(params_.ef_construction, n), M0);
  size_t repaired = 0;
  for (int round = 0; round < kRounds; ++round) {
    reached.assign(n, 0);
    spread(uint32_t(ep), links_of, M0, reached, stack);
    lost.clear();
    for (size_t i = 0; i < n; ++i)
      if (!reached[i] && !deleted_[i]) lost.push_back(uint32_t(i));
    if (lost.empty()) break;
    in_degree.assign(n, 0);
    for (size_t u = 0; u < n; ++u) {
      const int32_t* ll = links_of(uint32_t(u));
      const size_t cnt = std::min<size_t>(size_t(ll[0]), M0);
      for (size_t j = 0; j < cnt; ++j) ++in_degree[size_t(ll[1 + j])];
    }
    for (const uint32_t u : lost) {
      if (reached[u]) continue;  // reached through a node repaired before it
      // The walk from the entry point only ever meets reached nodes: its pool is the
      // candidates, closest first.
      search_layer(store_.as_query(u, s.query_buf), uint32_t(ep), ef, 0, s);
      bool linked = false;
      for (size_t i = 0; i < s.pool.size() && !linked; ++i) {
        const uint32_t v = s.pool.id_at(i);
        std::lock_guard<std::mutex> g(stripe(v));
        int32_t* ll = graph_.links(v, 0);
        const size_t cnt = size_t(ll[0]);
        if (cnt < M0) {
          ll[1 + cnt] = int32_t(u);  // the id first, then the count that publishes it
          ll[0] = int32_t(cnt + 1);
          linked = true;
        }
      }
      for (size_t i = 0; i < s.pool.size() && !linked; ++i) {
        const uint32_t v = s.pool.id_at(i);
        std::lock_guard<std::mutex> g(stripe(v));
        int32_t* ll = graph_.links(v, 0);
        const size_t cnt = std::min<size_t>(size_t(ll[0]), M0);
        size_t best = cnt;
        for (size_t j = 0; j < cnt; ++j) {
          const size_t w = size_t(ll[1 + j]);
          if (in_degree[w] >= 2 && (best == cnt || in_degree[w] > in_degree[size_t(ll[1 + best])]))
            best = j;
        }
        if (best < cnt) {
          --in_degree[size_t(ll[1 + best])];
          ll[1 + best] = int32_t(u);
          linked = true;
        }
      }
      if (!linked) continue;  // left to the exact fallback of search
      ++in_degree[u];
      ++repaired;
      spread(u, links_of, M0, reached, stack);
    }
  }
  return repaired;
}

template class HnswIndexT<RowStore>;
template class HnswIndexT<CodeStore>;

}  // namespace bitgraph

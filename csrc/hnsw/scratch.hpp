// Per-thread working memory of graph walks (private to hnsw/).
#pragma once
#include <memory>
#include <vector>

#include "core/topk.hpp"
#include "core/visited.hpp"
#include "hnsw/hnsw_index.hpp"

namespace bitgraph {

struct HnswIndex::Scratch {
  std::unique_ptr<VisitedSet> visited;
  LinearPool pool;
  std::vector<uint32_t> ids;        // neighbours gathered for one batched distance call
  std::vector<float> dists;
  std::vector<Scored> candidates;   // walk output / pruning input
  std::vector<Scored> selected;     // heuristic output
  std::vector<Scored> relink;       // candidates when a neighbour list overflows
  std::vector<std::vector<Scored>> chosen;  // per level: the new node's links, to link back
  std::vector<float> query_buf;     // decoded vector of the node being inserted
  std::vector<float> cand_buf;      // decoded vector of a pruning candidate
  std::vector<float> owner_buf;     // decoded vector of a neighbour being re-pruned
};

}  // namespace bitgraph

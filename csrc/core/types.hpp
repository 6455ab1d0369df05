// Basic enums and typed errors shared by every part of the native core.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace bitgraph {

// Metrics the core computes. "cosine" never reaches the core: the Python layer normalises
// vectors once at add time and searches with kInnerProduct.
// kSdc / kHamming / kAsymmetric compare binary codes (storage kBinary only;
// binary/binary_kernels.hpp): kAsymmetric scores a finer (multi-bit) query against the codes.
enum class Metric : int { kL2 = 0, kInnerProduct = 1, kSdc = 2, kHamming = 3, kAsymmetric = 4 };

// Row encodings of the vector storage (see docs/backend-contract.md for the byte layout).
// kBinary rows are packed binary codes (storage/code_store.hpp: CodeStore with its CodeLayout);
// the float kinds are RowStore rows (storage/vector_store.hpp).
enum class StorageKind : int { kFloat32 = 0, kFloat16 = 1, kInt8 = 2, kBinary = 3 };

// Typed errors; bindings/ maps each to one Python exception class.
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct KeyError : std::out_of_range {
  using std::out_of_range::out_of_range;
};
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

Metric parse_metric(const std::string& name);
StorageKind parse_storage(const std::string& name);
const char* metric_name(Metric m);
const char* storage_name(StorageKind s);

// Bytes one encoded row of `dim` values takes in the given storage.
size_t row_bytes_for(StorageKind kind, size_t dim);

}  // namespace bitgraph

#include "core/types.hpp"

namespace bitgraph {

Metric parse_metric(const std::string& name) {
  if (name == "l2") return Metric::kL2;
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "sdc") return Metric::kSdc;
  if (name == "hamming") return Metric::kHamming;
  if (name == "asymmetric") return Metric::kAsymmetric;
  throw ValueError("metric must be 'l2', 'ip', 'sdc', 'hamming' or 'asymmetric' in the core, "
                   "got '" + name + "'");
}

StorageKind parse_storage(const std::string& name) {
  if (name == "float32") return StorageKind::kFloat32;
  if (name == "float16") return StorageKind::kFloat16;
  if (name == "int8") return StorageKind::kInt8;
  if (name == "binary") return StorageKind::kBinary;
  throw ValueError("storage must be 'float32', 'float16', 'int8' or 'binary', got '" + name +
                   "'");
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kL2: return "l2";
    case Metric::kInnerProduct: return "ip";
    case Metric::kSdc: return "sdc";
    case Metric::kAsymmetric: return "asymmetric";
    default: return "hamming";
  }
}

const char* storage_name(StorageKind s) {
  switch (s) {
    case StorageKind::kFloat32: return "float32";
    case StorageKind::kFloat16: return "float16";
    case StorageKind::kBinary: return "binary";
    default: return "int8";
  }
}

size_t row_bytes_for(StorageKind kind, size_t dim) {
  switch (kind) {
    case StorageKind::kFloat32: return 4 * dim;
    case StorageKind::kBinary:
      throw ValueError("binary rows have a code layout (storage/code_store.hpp), not a width per "
                       "value");
    case StorageKind::kFloat16: return 2 * dim;
    default: return dim + 8;  // int8 codes, float32 scale, float32 squared norm
  }
}

}  // namespace bitgraph

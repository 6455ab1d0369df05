#include "core/types.hpp"

namespace bitgraph {

Metric parse_metric(const std::string& name) {
  if (name == "l2") return Metric::kL2;
  if (name == "ip") return Metric::kInnerProduct;
  throw ValueError("metric must be 'l2' or 'ip' in the core, got '" + name + "'");
}

StorageKind parse_storage(const std::string& name) {
  if (name == "float32") return StorageKind::kFloat32;
  if (name == "float16") return StorageKind::kFloat16;
  if (name == "int8") return StorageKind::kInt8;
  throw ValueError("storage must be 'float32', 'float16' or 'int8', got '" + name + "'");
}

const char* metric_name(Metric m) { return m == Metric::kL2 ? "l2" : "ip"; }

const char* storage_name(StorageKind s) {
  switch (s) {
    case StorageKind::kFloat32: return "float32";
    case StorageKind::kFloat16: return "float16";
    default: return "int8";
  }
}

size_t row_bytes_for(StorageKind kind, size_t dim) {
  switch (kind) {
    case StorageKind::kFloat32: return 4 * dim;
    case StorageKind::kFloat16: return 2 * dim;
    default: return dim + 8;  // int8 codes, float32 scale, float32 squared norm
  }
}

}  // namespace bitgraph

//===- DeviceHeaders.cpp - Lookup in the embedded headers -----------------===//
//
// embeddedHeaders() and headerHash() are generated (EmbedHeaders.cmake); this file adds the
// lookup by include name.
//
//===----------------------------------------------------------------------===//
#include "runtime/device/DeviceHeaders.h"

namespace xlc::device {

const EmbeddedHeader *findEmbeddedHeader(std::string_view includeName) {
  for (const EmbeddedHeader &header : embeddedHeaders())
    if (header.name == includeName)
      return &header;
  return nullptr;
}

} // namespace xlc::device

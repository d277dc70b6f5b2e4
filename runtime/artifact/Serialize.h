//===- Serialize.h - Writing and reading .xlca artifacts --------*- C++ -*-===//
//
// The container (docs/artifact.md):
//
//   bytes 0-7    magic "XLCARTF\0"
//   bytes 8-11   schema version, u32 LE (1)
//   bytes 12-15  flags, u32 LE, 0
//   bytes 16-23  payload length N, u64 LE
//   bytes 24-31  FNV-1a-64 of the N payload bytes, u64 LE
//   bytes 32-    the payload: one UTF-8 JSON object; nothing follows it
//
// Writing is deterministic: the same Artifact gives the same bytes (keys sorted, numbers printed
// in their shortest round-tripping form, expressions in one canonical spelling), so
// serialize(parse(serialize(a))) == serialize(a) and artifacts can be compared and cached by hash.
//
// Reading never trusts the file: every failure is an xlc::Error whose message starts with the
// source name and names the item at fault. parseArtifact checks the container, parses the JSON
// strictly (duplicate keys, unknown fields, nesting depth) and runs validateStructure
// (Validate.h); the checks that depend on the batch and sequence limits are validate()'s.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_ARTIFACT_SERIALIZE_H
#define XLC_RUNTIME_ARTIFACT_SERIALIZE_H

#include "runtime/artifact/Artifact.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xlc::artifact {

inline constexpr char kMagic[8] = {'X', 'L', 'C', 'A', 'R', 'T', 'F', '\0'};
inline constexpr std::size_t kHeaderBytes = 32;

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes);

/// Wraps |payload| in the container header (version kSchemaVersion, flags 0, length, checksum).
std::vector<std::uint8_t> wrapContainer(std::string_view payload);

/// Checks the container (size, magic, version, flags, length, no trailing bytes, checksum) and
/// returns the payload, a view into |bytes|. Errors start with "<sourceName>: ".
std::string_view unwrapContainer(std::span<const std::uint8_t> bytes, std::string_view sourceName);

/// The payload document. Does not validate; serialize() does.
nlohmann::json toJson(const Artifact &artifact);

/// Validates the structure (validateStructure) and returns the container bytes. Throws xlc::Error
/// when the artifact is invalid, so a compiler cannot write what the runtime would reject.
std::vector<std::uint8_t> serialize(const Artifact &artifact);

/// serialize() written atomically to |path| (temporary file, fsync, rename).
void writeArtifact(const std::string &path, const Artifact &artifact);

/// Reads an artifact from container bytes and validates its structure. sourceName is used in
/// messages and stored in Artifact::sourceName.
Artifact parseArtifact(std::span<const std::uint8_t> bytes, const std::string &sourceName);

/// parseArtifact on the file at |path| (named by |path| in messages).
Artifact loadArtifact(const std::string &path);

} // namespace xlc::artifact

#endif // XLC_RUNTIME_ARTIFACT_SERIALIZE_H

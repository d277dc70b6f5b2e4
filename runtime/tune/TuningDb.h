//===- TuningDb.h - The tuning database ------------------------*- C++ -*-===//
//
// What xlc-tune measured, for xlc-compile --tuning-db to pick from (docs/auto-tuning.md).
// JSON lines, human-readable and diffable:
//
//   line 1   the header: {"xlc_tuning_db": 1, "environment": {...}}: the GPU (name, SM count,
//            architecture), the driver, NVRTC and cuBLASLt versions, the device-header hash and
//            the xlc version the records were measured with. A record applies only where every
//            field matches (`xlc-tune --check` names the ones that differ): a new driver, compiler
//            or header library can change which variant wins, so records never outlive them.
//   line 2+  one record per (function, family, problem, batch, seq): the function the kernel was
//            timed in (one kernel may serve a 2048-token prefill and a one-token decode step),
//            the kernel family, its problem (the configuration without the tuning knobs:
//            runtime/kernels/Tuning.h), the shape, the default and the chosen variant (by their
//            tiles) and *every* measured candidate with its timings or why it was refused (a
//            wrong result, a compile error).
//
// A database is read whole and checked line by line: a malformed line, an unknown version, a
// record without candidates or whose choice is not among its measured, correct candidates is an
// error naming the file and the line. Writes are atomic (a temporary file renamed over the old
// one); merging re-reads the file under an exclusive lock, so two tuning runs that write one
// database lose nothing.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_TUNE_TUNINGDB_H
#define XLC_RUNTIME_TUNE_TUNINGDB_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xlc::tune {

/// What a database's timings depend on besides the kernels themselves.
struct Environment {
  std::string gpu;      ///< the device name, e.g. "NVIDIA H100 80GB HBM3"
  std::int64_t sms = 0; ///< streaming multiprocessors
  std::string arch;     ///< the NVRTC target, e.g. "sm_90a"
  std::int64_t driver = 0;   ///< cuDriverGetVersion, e.g. 13000
  std::string nvrtc;         ///< "major.minor"
  std::int64_t cublaslt = 0; ///< cublasLtGetVersion (0: not loaded)
  std::string headers;       ///< the embedded device headers' hash (DeviceHeaders.h)
  std::string xlc;           ///< the xlc version
  friend bool operator==(const Environment &, const Environment &) = default;
};

/// "field: database X, here Y" for every field of |here| that differs from |db| (empty: all
/// match).
std::vector<std::string> differences(const Environment &db, const Environment &here);

/// One measured variant.
struct Candidate {
  enum class Status : std::uint8_t {
    Ok,           ///< correct and timed
    Wrong,        ///< its output differs from the reference beyond the tolerance
    CompileError, ///< NVRTC or the loader refused it
    LaunchError,  ///< the launch failed
  };
  std::string tile;      ///< the variant's identity (kernels::variantTile)
  nlohmann::json knobs;  ///< the knob fields' values
  Status status = Status::Ok;
  double medianUs = 0, p20Us = 0, p80Us = 0; ///< per launch, over the repeats
  std::int64_t repeats = 0;
  double error = 0;      ///< relative L2 error against the reference
  std::string message;   ///< why it was refused
};

/// One (function, family, problem, shape): every candidate measured there and the choice.
struct Record {
  std::string function; ///< the artifact function it was timed in: prefill, decode_step, ...
  std::string family;
  nlohmann::json problem; ///< the configuration without the knobs (kernels::problemKey)
  std::int64_t batch = 0, seq = 0; ///< the shape the candidates were timed at
  std::string defaultTile;         ///< the compiler's default variant
  std::string chosenTile;          ///< the pick: the default unless a variant beat it by the margin
  std::vector<Candidate> candidates;
  std::string measured; ///< when (ISO 8601, UTC)

  /// The chosen candidate (always present in a record that passed readDatabase).
  const Candidate &chosen() const;
  /// "function family problem B=.. S=..": the record's key, one per key in a database.
  std::string key() const;
};

struct Database {
  Environment environment;
  std::vector<Record> records;

  /// Records of |family| and |problemKey| (kernels::problemKey), ordered by batch, then seq.
  std::vector<const Record *> find(const std::string &family, const std::string &problemKey) const;
};

/// Parses a database; |source| names it in errors ("<source>:<line>: ...").
Database parseDatabase(const std::string &text, const std::string &source);
/// Reads and parses the file at |path|; throws xlc::Error naming it.
Database readDatabase(const std::string &path);
/// The JSON-lines text: the header, then the records sorted by key (deterministic).
std::string formatDatabase(const Database &db);
/// Writes |db| to |path| atomically.
void writeDatabase(const std::string &path, const Database &db);

/// Adds |records| to the database at |path| (created when missing) under an exclusive lock on
/// "<path>.lock": the file is re-read, a record with the same key is replaced, then written
/// atomically. Throws, leaving the file as it was, when the file's environment is not
/// |environment| (a database holds one environment's measurements).
void mergeIntoDatabase(const std::string &path, const Environment &environment,
                       const std::vector<Record> &records);

const char *statusName(Candidate::Status status);

} // namespace xlc::tune

#endif // XLC_RUNTIME_TUNE_TUNINGDB_H

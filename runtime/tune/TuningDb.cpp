//===- TuningDb.cpp - The tuning database ----------------------------------===//

#include "runtime/tune/TuningDb.h"

#include "runtime/support/Error.h"
#include "runtime/support/Json.h"
#include "runtime/support/MappedFile.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace xlc::tune {
namespace {

using json::Json;
using json::Loc;
using json::ObjectReader;

constexpr std::int64_t kFormatVersion = 1;
/// Deepest nesting a line may have: a record's candidates' knobs sit at depth 3.
constexpr int kMaxDepth = 8;

std::int64_t i64(ObjectReader &r, const char *key) { return json::asI64(r.get(key), r.field(key)); }
double number(ObjectReader &r, const char *key) { return json::asNumber(r.get(key), r.field(key)); }
const Json &object(ObjectReader &r, const char *key) {
  const Json &value = r.get(key);
  check(value.is_object(), "{} must be an object", r.field(key).str());
  return value;
}

Environment readEnvironment(const Json &value, const Loc &loc) {
  ObjectReader r(value, loc);
  Environment e;
  e.gpu = r.string("gpu");
  e.sms = i64(r, "sms");
  e.arch = r.string("arch");
  e.driver = i64(r, "driver");
  e.nvrtc = r.string("nvrtc");
  e.cublaslt = i64(r, "cublaslt");
  e.headers = r.string("headers");
  e.xlc = r.string("xlc");
  r.finish();
  return e;
}

Json environmentJson(const Environment &e) {
  return {{"gpu", e.gpu},           {"sms", e.sms},     {"arch", e.arch},
          {"driver", e.driver},     {"nvrtc", e.nvrtc}, {"cublaslt", e.cublaslt},
          {"headers", e.headers},   {"xlc", e.xlc}};
}

Candidate::Status statusOf(const std::string &name, const Loc &loc) {
  for (Candidate::Status s : {Candidate::Status::Ok, Candidate::Status::Wrong,
                              Candidate::Status::CompileError, Candidate::Status::LaunchError})
    if (name == statusName(s))
      return s;
  fail("{} must be \"ok\", \"wrong\", \"compile-error\" or \"launch-error\", got {}", loc.str(),
       json::quoteText(name));
}

Candidate readCandidate(const Json &value, const Loc &loc) {
  ObjectReader r(value, loc);
  Candidate c;
  c.tile = r.string("tile");
  c.knobs = object(r, "knobs");
  for (const auto &[k, v] : c.knobs.items())
    check(v.is_number_integer(), "{}: knob '{}' must be an integer", r.field("knobs").str(), k);
  c.status = statusOf(r.string("status"), r.field("status"));
  if (c.status == Candidate::Status::Ok) {
    c.medianUs = number(r, "median_us");
    c.p20Us = number(r, "p20_us");
    c.p80Us = number(r, "p80_us");
    c.repeats = i64(r, "repeats");
    check(c.medianUs > 0 && c.p20Us <= c.medianUs && c.medianUs <= c.p80Us && c.repeats > 0,
          "{}: timings must satisfy 0 < p20 <= median <= p80 over at least one repeat",
          loc.str());
  }
  if (const Json *error = r.find("error"))
    c.error = json::asNumber(*error, r.field("error"));
  if (const Json *message = r.find("message"))
    c.message = json::asString(*message, r.field("message"));
  r.finish();
  return c;
}

Json candidateJson(const Candidate &c) {
  Json j = {{"tile", c.tile}, {"knobs", c.knobs}, {"status", statusName(c.status)}};
  if (c.status == Candidate::Status::Ok) {
    j["median_us"] = c.medianUs;
    j["p20_us"] = c.p20Us;
    j["p80_us"] = c.p80Us;
    j["repeats"] = c.repeats;
  }
  // JSON has no infinity: a non-finite error (NaN outputs) is left out; the message says it.
  if ((c.status == Candidate::Status::Ok || c.status == Candidate::Status::Wrong) &&
      std::isfinite(c.error))
    j["error"] = c.error;
  if (!c.message.empty())
    j["message"] = c.message;
  return j;
}

Record readRecord(const Json &value, const Loc &loc) {
  ObjectReader r(value, loc);
  Record rec;
  rec.function = r.string("function");
  rec.family = r.string("family");
  rec.problem = object(r, "problem");
  rec.batch = i64(r, "batch");
  rec.seq = i64(r, "seq");
  check(rec.batch >= 1 && rec.seq >= 1, "{}: batch and seq must be at least 1", loc.str());
  rec.defaultTile = r.string("default");
  rec.chosenTile = r.string("chosen");
  const Json::array_t &candidates = r.array("candidates");
  check(!candidates.empty(), "{} must not be empty", r.field("candidates").str());
  for (std::size_t i = 0; i < candidates.size(); ++i)
    rec.candidates.push_back(readCandidate(candidates[i], r.field("candidates").index(i)));
  rec.measured = r.string("measured");
  r.finish();
  auto byTile = [&](const std::string &tile) {
    return std::find_if(rec.candidates.begin(), rec.candidates.end(),
                        [&](const Candidate &c) { return c.tile == tile; });
  };
  for (const Candidate &c : rec.candidates)
    check(std::count_if(rec.candidates.begin(), rec.candidates.end(),
                        [&](const Candidate &o) { return o.tile == c.tile; }) == 1,
          "{}: candidate {} appears twice", loc.str(), c.tile);
  check(byTile(rec.defaultTile) != rec.candidates.end(),
        "{}: the default {} is not among the candidates", loc.str(), rec.defaultTile);
  auto chosen = byTile(rec.chosenTile);
  check(chosen != rec.candidates.end() && chosen->status == Candidate::Status::Ok,
        "{}: the choice {} is not a correct, measured candidate", loc.str(), rec.chosenTile);
  return rec;
}

Json recordJson(const Record &rec) {
  Json candidates = Json::array();
  for (const Candidate &c : rec.candidates)
    candidates.push_back(candidateJson(c));
  return {{"function", rec.function},   {"family", rec.family},       {"problem", rec.problem},
          {"batch", rec.batch},         {"seq", rec.seq},
          {"default", rec.defaultTile}, {"chosen", rec.chosenTile},
          {"candidates", candidates},   {"measured", rec.measured}};
}

/// An exclusive advisory lock on a file beside the database, held for the object's lifetime.
class FileLock {
public:
  explicit FileLock(const std::string &path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    check(fd_ >= 0, "cannot open the lock file {}: {}", path, std::strerror(errno));
    if (::flock(fd_, LOCK_EX) != 0) {
      const int err = errno;
      ::close(fd_);
      fail("cannot lock {}: {}", path, std::strerror(err));
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock &) = delete;
  FileLock &operator=(const FileLock &) = delete;

private:
  int fd_ = -1;
};

} // namespace

const char *statusName(Candidate::Status status) {
  switch (status) {
  case Candidate::Status::Ok:
    return "ok";
  case Candidate::Status::Wrong:
    return "wrong";
  case Candidate::Status::CompileError:
    return "compile-error";
  case Candidate::Status::LaunchError:
    return "launch-error";
  }
  return "?";
}

std::vector<std::string> differences(const Environment &db, const Environment &here) {
  std::vector<std::string> out;
  auto compare = [&](const char *field, const auto &a, const auto &b) {
    if (a != b)
      out.push_back(fmt::format("{}: database {}, here {}", field, a, b));
  };
  compare("gpu", db.gpu, here.gpu);
  compare("sms", db.sms, here.sms);
  compare("arch", db.arch, here.arch);
  compare("driver", db.driver, here.driver);
  compare("nvrtc", db.nvrtc, here.nvrtc);
  compare("cublaslt", db.cublaslt, here.cublaslt);
  compare("headers", db.headers, here.headers);
  compare("xlc", db.xlc, here.xlc);
  return out;
}

const Candidate &Record::chosen() const {
  for (const Candidate &c : candidates)
    if (c.tile == chosenTile)
      return c;
  fail("tuning record {}: the choice {} is not among its candidates", key(), chosenTile);
}

std::string Record::key() const {
  return fmt::format("{} {} {} B={} S={}", function, family, problem.dump(), batch, seq);
}

std::vector<const Record *> Database::find(const std::string &family,
                                           const std::string &problemKey) const {
  std::vector<const Record *> out;
  for (const Record &r : records)
    if (r.family == family && r.problem.dump() == problemKey)
      out.push_back(&r);
  std::sort(out.begin(), out.end(), [](const Record *a, const Record *b) {
    return std::tie(a->batch, a->seq) < std::tie(b->batch, b->seq);
  });
  return out;
}

Database parseDatabase(const std::string &text, const std::string &source) {
  Database db;
  std::istringstream lines(text);
  std::string line;
  std::size_t number = 0;
  bool haveHeader = false;
  std::map<std::string, std::size_t> keys;
  while (std::getline(lines, line)) {
    ++number;
    if (line.empty())
      continue;
    const std::string where = fmt::format("{}:{}", source, number);
    const Json value = json::parseStrictJson(line, where, kMaxDepth);
    if (!haveHeader) {
      ObjectReader r(value, {where, ""});
      const std::int64_t version = i64(r, "xlc_tuning_db");
      check(version == kFormatVersion,
            "{}: tuning database format {} is not the one this xlc reads ({})", where, version,
            kFormatVersion);
      db.environment = readEnvironment(r.get("environment"), r.field("environment"));
      r.finish();
      haveHeader = true;
      continue;
    }
    Record rec = readRecord(value, {where, ""});
    auto [it, inserted] = keys.emplace(rec.key(), number);
    check(inserted, "{}: a second record for {} (the first is on line {})", where, rec.key(),
          it->second);
    db.records.push_back(std::move(rec));
  }
  check(haveHeader, "{}: empty file: a tuning database starts with its header line", source);
  return db;
}

Database readDatabase(const std::string &path) { return parseDatabase(readFile(path), path); }

std::string formatDatabase(const Database &db) {
  std::string out =
      Json{{"xlc_tuning_db", kFormatVersion}, {"environment", environmentJson(db.environment)}}
          .dump() +
      "\n";
  std::vector<const Record *> sorted;
  for (const Record &r : db.records)
    sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const Record *a, const Record *b) { return a->key() < b->key(); });
  for (const Record *r : sorted)
    out += recordJson(*r).dump() + "\n";
  return out;
}

void writeDatabase(const std::string &path, const Database &db) {
  const std::string text = formatDatabase(db);
  writeFileAtomically(path, std::span(reinterpret_cast<const std::uint8_t *>(text.data()),
                                      text.size()));
}

void mergeIntoDatabase(const std::string &path, const Environment &environment,
                       const std::vector<Record> &records) {
  FileLock lock(path + ".lock");
  Database db;
  if (std::filesystem::exists(path)) {
    db = readDatabase(path);
    const std::vector<std::string> diff = differences(db.environment, environment);
    check(diff.empty(),
          "{} holds measurements of another environment ({}); write these to a new database",
          path, fmt::join(diff, "; "));
  } else {
    db.environment = environment;
  }
  for (const Record &rec : records) {
    const std::string key = rec.key();
    auto it = std::find_if(db.records.begin(), db.records.end(),
                           [&](const Record &r) { return r.key() == key; });
    if (it != db.records.end())
      *it = rec;
    else
      db.records.push_back(rec);
  }
  // What is written must read back: a record that would not parse never reaches the file.
  const std::string text = formatDatabase(db);
  parseDatabase(text, path);
  writeFileAtomically(path, std::span(reinterpret_cast<const std::uint8_t *>(text.data()),
                                      text.size()));
}

} // namespace xlc::tune

//===- TuningDbTest.cpp - The tuning database's reader, writer and merge ---===//
//
// Round trips, every kind of corrupt or inconsistent file refused with its line, stale
// environments named field by field, and merges that replace records by key, refuse another
// environment without touching the file, and lose nothing when two writers race.
//
//===----------------------------------------------------------------------===//
#include "runtime/support/Error.h"
#include "runtime/support/MappedFile.h"
#include "runtime/tune/TuningDb.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace xlc::tune {
namespace {

Environment h100() {
  return {"NVIDIA H100 80GB HBM3", 132, "sm_90a", 13000, "13.0", 130100, "0123abcd", "0.1.0"};
}

Candidate candidate(std::int64_t threads, double us) {
  Candidate c;
  c.tile = "#xk.tile<threads = " + std::to_string(threads) + ">";
  c.knobs = {{"threads", threads}};
  c.medianUs = us;
  c.p20Us = us * 0.98;
  c.p80Us = us * 1.03;
  c.repeats = 50;
  c.error = 1e-3;
  return c;
}

Record record(std::int64_t batch, std::int64_t dim = 4096) {
  Record r;
  r.function = "prefill";
  r.family = "rms_norm";
  r.problem = {{"dtype", "bf16"}, {"dim", dim}, {"has_weight", true}};
  r.batch = batch;
  r.seq = 2048;
  r.defaultTile = "#xk.tile<threads = 256>";
  r.chosenTile = "#xk.tile<threads = 512>";
  r.candidates = {candidate(256, 10.0), candidate(512, 8.5), candidate(1024, 9.0)};
  Candidate wrong = candidate(32, 3.0);
  wrong.status = Candidate::Status::Wrong;
  wrong.error = 0.4;
  wrong.message = "relative error 0.4 > 0.02";
  r.candidates.push_back(wrong);
  r.measured = "2026-12-08T02:00:00Z";
  return r;
}

std::string tempPath(const std::string &name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("xlc-tuning-db-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / name);
  return (dir / name).string();
}

std::string header() { return formatDatabase(Database{h100(), {}}); }
std::string recordLine(const Record &r) {
  const std::string text = formatDatabase(Database{h100(), {r}});
  return text.substr(text.find('\n') + 1);
}

void expectRefused(const std::string &text, const std::string &needle) {
  try {
    parseDatabase(text, "db.jsonl");
    ADD_FAILURE() << "accepted:\n" << text;
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TuningDb, RoundTripsEveryField) {
  const Database db{h100(), {record(8), record(1)}};
  const std::string text = formatDatabase(db);
  const Database back = parseDatabase(text, "db.jsonl");
  EXPECT_EQ(back.environment, db.environment);
  ASSERT_EQ(back.records.size(), 2u);
  EXPECT_EQ(formatDatabase(back), text); // deterministic, sorted by key
  const std::vector<const Record *> found =
      back.find("rms_norm", record(1).problem.dump());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]->batch, 1);
  EXPECT_EQ(found[1]->batch, 8);
  EXPECT_EQ(found[0]->chosen().tile, "#xk.tile<threads = 512>");
  EXPECT_EQ(found[0]->candidates[3].status, Candidate::Status::Wrong);
  EXPECT_EQ(found[0]->candidates[3].message, "relative error 0.4 > 0.02");
  EXPECT_TRUE(back.find("rms_norm", record(1, 2048).problem.dump()).empty());
}

TEST(TuningDb, RefusesCorruptFilesNamingTheLine) {
  expectRefused("", "empty file");
  expectRefused("{\"xlc_tuning_db\": 2, \"environment\": {}}\n", "format 2");
  expectRefused(header() + "{not json\n", "db.jsonl:2");
  std::string line = recordLine(record(1));
  expectRefused(header() + line + line, "a second record");
  auto edited = [&](auto edit) {
    nlohmann::json j = nlohmann::json::parse(recordLine(record(1)));
    edit(j);
    return header() + j.dump() + "\n";
  };
  expectRefused(edited([](nlohmann::json &j) { j.erase("chosen"); }), "chosen");
  expectRefused(edited([](nlohmann::json &j) { j["extra"] = 1; }), "extra");
  expectRefused(edited([](nlohmann::json &j) { j["chosen"] = "#xk.tile<threads = 64>"; }),
                "not a correct, measured candidate");
  expectRefused(edited([](nlohmann::json &j) { j["chosen"] = "#xk.tile<threads = 32>"; }),
                "not a correct, measured candidate"); // the wrong one
  expectRefused(edited([](nlohmann::json &j) { j["default"] = "#xk.tile<threads = 64>"; }),
                "default");
  expectRefused(edited([](nlohmann::json &j) { j["candidates"] = nlohmann::json::array(); }),
                "must not be empty");
  expectRefused(edited([](nlohmann::json &j) { j["candidates"][0]["status"] = "fast"; }),
                "status");
  expectRefused(edited([](nlohmann::json &j) { j["candidates"][1]["p20_us"] = 99.0; }),
                "p20 <= median");
  expectRefused(edited([](nlohmann::json &j) { j["candidates"][1] = j["candidates"][0]; }),
                "appears twice");
  expectRefused(edited([](nlohmann::json &j) { j["batch"] = 0; }), "at least 1");
  expectRefused(edited([](nlohmann::json &j) { j["candidates"][0]["knobs"]["threads"] = "x"; }),
                "must be an integer");
}

TEST(TuningDb, NamesEveryEnvironmentFieldThatDiffers) {
  EXPECT_TRUE(differences(h100(), h100()).empty());
  Environment here = h100();
  here.driver = 13010;
  here.headers = "ffff0000";
  const std::vector<std::string> diff = differences(h100(), here);
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[0], "driver: database 13000, here 13010");
  EXPECT_EQ(diff[1], "headers: database 0123abcd, here ffff0000");
}

TEST(TuningDb, MergeReplacesByKeyAndRefusesAnotherEnvironment) {
  const std::string path = tempPath("merge.jsonl");
  mergeIntoDatabase(path, h100(), {record(1)});
  mergeIntoDatabase(path, h100(), {record(8)});
  Record faster = record(1);
  faster.chosenTile = "#xk.tile<threads = 1024>";
  mergeIntoDatabase(path, h100(), {faster});
  Database db = readDatabase(path);
  ASSERT_EQ(db.records.size(), 2u);
  EXPECT_EQ(db.find("rms_norm", record(1).problem.dump())[0]->chosenTile,
            "#xk.tile<threads = 1024>");

  const std::string before = readFile(path);
  Environment other = h100();
  other.gpu = "NVIDIA H200";
  try {
    mergeIntoDatabase(path, other, {record(64)});
    ADD_FAILURE() << "merged another environment";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("gpu: database NVIDIA H100 80GB HBM3, here NVIDIA H200"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(readFile(path), before);

  // A record that would not read back (its choice is not measured) never reaches the file.
  Record broken = record(2);
  broken.chosenTile = "#xk.tile<threads = 64>";
  EXPECT_THROW(mergeIntoDatabase(path, h100(), {broken}), Error);
  EXPECT_EQ(readFile(path), before);
}

TEST(TuningDb, ConcurrentMergesLoseNothing) {
  const std::string path = tempPath("race.jsonl");
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < 8; ++i)
        mergeIntoDatabase(path, h100(), {record(1 + w * 8 + i)});
    });
  for (std::thread &t : writers)
    t.join();
  EXPECT_EQ(readDatabase(path).records.size(), 32u);
}

} // namespace
} // namespace xlc::tune

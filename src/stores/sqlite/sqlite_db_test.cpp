// SPDX-License-Identifier: Apache-2.0
#include "stores/sqlite/sqlite_db.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace fieldhub::sqlite {
namespace {

using namespace std::string_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fieldhub-sqlite-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class SqliteDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Database::open(dir_.path() / "t.db", OpenMode::read_write_create);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_.emplace(std::move(db.value()));
    ASSERT_TRUE(db_->exec("CREATE TABLE t(a INTEGER, b TEXT, c BLOB, d REAL)").ok());
  }
  TempDir dir_;
  std::optional<Database> db_;
};

TEST_F(SqliteDbTest, OpenFailsAsAValueNamingTheFile) {
  auto db = Database::open(dir_.path() / "missing-dir" / "x.db", OpenMode::read_write_create);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().code(), 0);
  EXPECT_NE(db.status().message().find("missing-dir"), std::string::npos) << db.status().message();
}

TEST_F(SqliteDbTest, TextAndBlobKeepEmbeddedNulsAndArbitraryBytes) {
  const std::string text = "a\0b\xc3\xa9"s;
  const std::string blob = "\0\xff\xfe raw"s;
  auto ins = db_->prepare("INSERT INTO t(a, b, c, d) VALUES(?1, ?2, ?3, ?4)");
  ASSERT_TRUE(ins.ok());
  ins.value().bind(1, std::int64_t{-7}).bind_text(2, text).bind_blob(3, blob).bind(4, 2.5);
  ASSERT_TRUE(ins.value().run().ok());
  EXPECT_EQ(db_->changes(), 1);
  ins.value().bind(1, std::int64_t{8}).bind_text(2, "").bind_blob(3, "").bind_null(4);
  ASSERT_TRUE(ins.value().run().ok());

  auto q = db_->prepare("SELECT a, b, c, d FROM t ORDER BY rowid");
  ASSERT_TRUE(q.ok());
  Statement& s = q.value();
  ASSERT_EQ(s.step(), StepResult::row);
  EXPECT_EQ(s.column_int64(0), -7);
  EXPECT_EQ(s.column_text(1), text);
  EXPECT_EQ(s.column_blob(2), blob);
  EXPECT_DOUBLE_EQ(s.column_double(3), 2.5);
  ASSERT_EQ(s.step(), StepResult::row);
  EXPECT_FALSE(s.column_is_null(1)) << "an empty string is '' not NULL";
  EXPECT_EQ(s.column_text(1), "");
  EXPECT_FALSE(s.column_is_null(2));
  EXPECT_EQ(s.column_blob(2), "");
  EXPECT_TRUE(s.column_is_null(3));
  EXPECT_EQ(s.step(), StepResult::done);
}

TEST_F(SqliteDbTest, BadSqlAndBadBindAreErrorValues) {
  auto bad = db_->prepare("SELECT nonsense FROM nowhere");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nowhere"), std::string::npos);

  auto ins = db_->prepare("INSERT INTO t(a) VALUES(?1)");
  ASSERT_TRUE(ins.ok());
  ins.value().bind(5, std::int64_t{1});  // no parameter 5
  const Status s = ins.value().run();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bind"), std::string::npos) << s.message();
  EXPECT_EQ(db_->query_int64("SELECT count(*) FROM t").value(), 0);
  // Usable again after the failure.
  ins.value().bind(1, std::int64_t{1});
  EXPECT_TRUE(ins.value().run().ok());
  EXPECT_EQ(db_->query_int64("SELECT count(*) FROM t").value(), 1);
}

TEST_F(SqliteDbTest, TransactionRollsBackUnlessCommitted) {
  {
    auto tx = Transaction::begin(*db_, TransactionKind::immediate);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db_->exec("INSERT INTO t(a) VALUES(1)").ok());
    EXPECT_TRUE(db_->in_transaction());
  }
  EXPECT_FALSE(db_->in_transaction());
  EXPECT_EQ(db_->query_int64("SELECT count(*) FROM t").value(), 0);
  {
    auto tx = Transaction::begin(*db_, TransactionKind::deferred);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db_->exec("INSERT INTO t(a) VALUES(1)").ok());
    ASSERT_TRUE(tx.value().commit().ok());
  }
  EXPECT_EQ(db_->query_int64("SELECT count(*) FROM t").value(), 1);
}

TEST_F(SqliteDbTest, ReadOnlyConnectionRefusesWrites) {
  auto ro = Database::open(dir_.path() / "t.db", OpenMode::read_only);
  ASSERT_TRUE(ro.ok());
  const Status s = ro.value().exec("INSERT INTO t(a) VALUES(1)");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("readonly"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fieldhub::sqlite

// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "stores/redis/redis_connection.h"

namespace fieldhub::redis {
namespace {

TEST(RedisUrl, HostPortAndDatabase) {
  const auto ep = parse_url("redis://127.0.0.1:6380/3");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->db, 3);
}

TEST(RedisUrl, DefaultsArePort6379AndDatabase0) {
  const auto ep = parse_url("redis://cache");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "cache");
  EXPECT_EQ(ep->port, 6379);
  EXPECT_EQ(ep->db, 0);
  EXPECT_EQ(parse_url("redis://cache/")->db, 0);
}

TEST(RedisUrl, RejectsWhatItCannotHonour) {
  EXPECT_FALSE(parse_url("http://cache:6379"));
  EXPECT_FALSE(parse_url("rediss://cache:6379"));        // TLS is not supported
  EXPECT_FALSE(parse_url("redis://user:secret@cache"));  // nor credentials
  EXPECT_FALSE(parse_url("redis://:6379"));
  EXPECT_FALSE(parse_url("redis://cache:0"));
  EXPECT_FALSE(parse_url("redis://cache:70000"));
  EXPECT_FALSE(parse_url("redis://cache:63x9"));
  EXPECT_FALSE(parse_url("redis://cache/-1"));
  EXPECT_FALSE(parse_url("redis://cache/one"));
}

}  // namespace
}  // namespace fieldhub::redis

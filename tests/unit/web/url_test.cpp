// Issue 12 item 10: one URL decoder, strict flight numbers.

#include <gtest/gtest.h>

#include <pushgate/ids.hpp>
#include <pushgate/web.hpp>

namespace pushgate {
namespace {

TEST(UrlDecode, EscapesAndPlus) {
  EXPECT_EQ(web::url_decode("a%20b+c").value(), "a b c");
  EXPECT_EQ(web::url_decode("a+b", false).value(), "a+b") << "'+' is a space only in queries";
  EXPECT_EQ(web::url_decode("guest-localmigrate%2Fx10").value(), "guest-localmigrate/x10");
  EXPECT_EQ(web::url_decode("%e2%9C%93").value(), "\xe2\x9c\x93");
  EXPECT_EQ(web::url_decode("").value(), "");
}

TEST(UrlDecode, BadEscapesAreErrors) {
  for (const char* bad : {"%zz", "%4", "x%", "%g1", "%1g", "1%00"}) {
    auto d = web::url_decode(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().code(), StatusCode::invalid_argument) << bad;
  }
}

TEST(FlightNumber, OnlyPlainPositiveDecimals) {
  EXPECT_EQ(FlightId::parse("1"), FlightId{1});
  EXPECT_EQ(FlightId::parse("123456"), FlightId{123456});
  for (const char* bad : {"", "0", "01", " 1", "1 ", "+1", "-1", "1x", "x", "0x10", "1234567890123456789"}) {
    EXPECT_FALSE(FlightId::parse(bad).has_value()) << "\"" << bad << "\"";
  }
  EXPECT_FALSE(FlightId::parse(std::string("1\0", 2)).has_value());
}

}  // namespace
}  // namespace pushgate

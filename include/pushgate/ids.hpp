#pragma once
/// Strong types for identifiers that are easy to mix up as raw ints/strings.

#include <compare>
#include <cstdint>
#include <string>

namespace pushgate {

/// A flight number (osstest's "flight"): positive, increasing.
struct FlightId {
  std::int64_t value = 0;
  auto operator<=>(const FlightId&) const = default;
  std::string str() const { return std::to_string(value); }
};

}  // namespace pushgate

#pragma once
/// Strong types for identifiers that are easy to mix up as raw ints/strings.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

namespace pushgate {

/// A flight number (osstest's "flight"): positive, increasing.
struct FlightId {
  std::int64_t value = 0;
  auto operator<=>(const FlightId&) const = default;
  std::string str() const { return std::to_string(value); }
  /// "12" -> 12; nullopt for anything else: signs, spaces, NULs, leading
  /// zeros, trailing text, 0, or more digits than a flight number has.
  static std::optional<FlightId> parse(const std::string& text) {
    if (text.empty() || text.size() > 18 || text[0] == '0') return std::nullopt;
    std::int64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return FlightId{v};
  }
};

}  // namespace pushgate

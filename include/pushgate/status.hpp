#pragma once
/// Errors as values across module boundaries: Status (code, message, hint)
/// and Result<T>, which holds a T or a Status with std::expected's names.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pushgate {

enum class StatusCode { ok, not_found, invalid_argument, conflict, unavailable, corruption, internal };

/// Printable name of a code ("not_found").
const char* to_string(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string hint = {})
      : code_(code), message_(std::move(message)), hint_(std::move(hint)) {}

  static Status not_found(std::string m, std::string h = {}) { return {StatusCode::not_found, std::move(m), std::move(h)}; }
  static Status invalid_argument(std::string m, std::string h = {}) { return {StatusCode::invalid_argument, std::move(m), std::move(h)}; }
  static Status conflict(std::string m, std::string h = {}) { return {StatusCode::conflict, std::move(m), std::move(h)}; }
  static Status unavailable(std::string m, std::string h = {}) { return {StatusCode::unavailable, std::move(m), std::move(h)}; }
  static Status corruption(std::string m, std::string h = {}) { return {StatusCode::corruption, std::move(m), std::move(h)}; }
  static Status internal(std::string m, std::string h = {}) { return {StatusCode::internal, std::move(m), std::move(h)}; }

  bool ok() const { return code_ == StatusCode::ok; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }

  /// Same status with "context: " put in front of the message.
  Status with_context(const std::string& context) const {
    return {code_, context + ": " + message_, hint_};
  }
  /// "message (hint)" for humans.
  std::string to_string() const { return hint_.empty() ? message_ : message_ + " (" + hint_ + ")"; }

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
  std::string hint_;
};

/// A T or an error Status; member names follow std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status error) : v_(std::move(error)) { assert(!std::get<Status>(v_).ok()); }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  /// By value, so `for (auto& x : f().value())` does not dangle.
  T value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Status& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

/// Result<void>: success or a Status.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Status error) : s_(std::move(error)) {}
  bool has_value() const { return s_.ok(); }
  explicit operator bool() const { return has_value(); }
  const Status& error() const { return s_; }

 private:
  Status s_;
};

inline const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::not_found: return "not_found";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::conflict: return "conflict";
    case StatusCode::unavailable: return "unavailable";
    case StatusCode::corruption: return "corruption";
    case StatusCode::internal: return "internal";
  }
  return "unknown";
}

}  // namespace pushgate

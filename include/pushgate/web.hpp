#pragma once
/// Server-rendered web pages, no build step: branch board, flight page,
/// job history, host history, frozen refs. Served by the daemon next to the API.

#include <string>

#include <pushgate/config.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::web {

struct Page {
  int status = 200;
  std::string html;  ///< the body (HTML unless content_type says otherwise)
  std::string content_type = "text/html; charset=utf-8";
};

/// The one URL decoder (paths and queries of the API and the pages): %XX
/// escapes and '+' as a space (in queries). invalid_argument for a bad or
/// cut escape ("%zz", a trailing "%4") and for an escaped NUL.
Result<std::string> url_decode(const std::string& text, bool plus_is_space = true);

/// Render the page for `target` ("/", "/flights/12", "/history/job?branch=B&job=J",
/// "/hosts/H", "/frozen", "/flights/12/JOB/STEP" a step's log, followed live
/// while it runs, "/flights/12/JOB/STEP/log" the log as text/plain:
/// ?tail=N lines, ?offset=K bytes on, ?format=json for a follower, ?attempt=K
/// an interrupted attempt's); docs/web.md lists them. 404 page for anything else.
/// `mirrors`: the caller's open mirrors (an API worker's); null: opened for this page.
Page render(const config::Config& config, const store::Store& store, const std::string& target,
            revisions::Mirrors* mirrors = nullptr);

}  // namespace pushgate::web

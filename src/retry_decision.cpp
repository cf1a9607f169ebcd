#include "fcgi/detail/retry_decision.hpp"

#include "fcgi/error.hpp"

namespace fcgi::detail {

namespace {

// A non-idempotent request on a `which` connection that closed `after` sending it with nothing
// back: both readings, with the time that tells them apart, since the caller must decide
// whether to send it again.
std::string both_readings(std::chrono::milliseconds after, const char* which,
                          const char* did_not_run, const char* ran) {
    return std::string("; the ") + which + " closed " + std::to_string(after.count()) +
           " ms after the request was sent: " + did_not_run +
           ", and then the request did not run; " + ran +
           " closes it too, and then it ran. It is not idempotent, so it was not sent again";
}

// Why a close on a reused connection was not taken for a stale one: it came after the window,
// or the caller set none.
std::string beyond_window(std::chrono::milliseconds window) {
    if (window.count() <= 0)
        return " (client_options::stale_close_window is 0: none is sent again once written)";
    return ", later than client_options::stale_close_window (" + std::to_string(window.count()) +
           " ms)";
}

}  // namespace

// A connection lost before any response byte: at once after sending, the script did not run
// (decide_retry); later, it ran, silent under output buffering, and its worker died
// (request_terminate_timeout, a kill), so it must not run twice.
bool lost_unanswered(std::error_code ec, std::size_t bytes_received) noexcept {
    return ec == error::connection_lost && bytes_received == 0;
}

retry_decision decide_retry(const retry_input& in) {
    retry_decision d;
    const std::error_code ec = in.ec;
    // Failover: an endpoint that accepts connections and then closes them, or never answers on
    // them, without a byte back (a proxy with no backend, workers crashing at start, all stuck)
    // is down as much as one that refuses them, and the other endpoints take its share. Not with
    // one endpoint: a script that crashed or ran long would then stop the pool for nothing.
    d.failing_endpoint = (ec == error::connection_lost || ec == error::request_timeout) &&
                         in.endpoints > 1 && !in.reused && in.bytes_received == 0 &&
                         in.silent_connection;
    const bool lost = lost_unanswered(ec, in.bytes_received);
    // A zero window is "never at once" (client_options: never sent again once written), also
    // for a close timed at 0 ms.
    const bool at_once = in.stale_close_window.count() > 0 && in.after <= in.stale_close_window;
    // A new connection closed at once with nothing back: a stopping php-fpm (SIGQUIT, the first
    // half of a restart), whose master still accepts connections into its listen backlog and
    // resets them once its workers are gone. Under wait_when_down the endpoint is down as if it
    // refused, and an idempotent request waits for it like one that found it refusing; with one
    // endpoint there is nowhere else to go.
    const bool stopping_endpoint =
        in.wait_when_down && lost && !in.reused && at_once && in.silent_connection;
    d.back_off = d.failing_endpoint || stopping_endpoint;
    // Only once (except for a stopping endpoint, above, which the deadline bounds), and only
    // what the connection handed back. A request that was never written may go again whatever
    // its method; any other only when it is idempotent.
    const bool may_retry = ec && in.sendable && !in.stopped && !in.cancelled;
    if (may_retry && stopping_endpoint && in.idempotent) {
        d.retry = true;
        d.counted = false;
    } else if (may_retry && in.attempts == 0) {
        // A reused connection lost before any response byte at once after sending: a kept-alive
        // connection the server had closed (pm.max_requests, a reload).
        const bool unanswered = lost && in.reused;
        const bool stale = unanswered && at_once;
        // CANT_MPX_CONN and OVERLOADED reject a new request (FastCGI 5.5): the script did not
        // run. Not once output came: a server that wrote a response has not refused it, and a
        // sink would get a second one.
        const bool refused =
            (ec == server_error::cant_mpx_conn || ec == server_error::overloaded) &&
            in.bytes_received == 0;
        if (ec == error::not_connected || refused) {
            d.retry = in.restartable;  // never written or run: any method
            if (!d.retry)
                d.diagnostics =
                    "; not sent again: its body source cannot be read a second time "
                    "(a producer, or a source of your own whose restartable() is "
                    "false)";
        } else if (in.idempotent) {
            if (stale) {
                d.retry = true;
                d.fresh_only = true;
            } else if (unanswered) {
                d.said_when = true;
                d.diagnostics =
                    "; not sent again: the connection closed " + std::to_string(in.after.count()) +
                    " ms after the request was sent" + beyond_window(in.stale_close_window) +
                    ", so its script may have run (a killed worker: "
                    "request_terminate_timeout?)";
            } else {
                // An idempotent request goes once to another endpoint when its own is failing.
                d.retry = d.failing_endpoint && ec == error::connection_lost;
            }
        } else if (stale) {
            d.said_when = true;
            d.diagnostics = both_readings(in.after, "connection",
                                          "php-fpm closes a kept-alive connection when its worker "
                                          "exits (pm.max_requests, a reload), within a few ms",
                                          "a worker that died mid-script (killed, crashed)");
            if (!in.recycling)
                d.diagnostics +=
                    "; with pm.max_requests, client_options::max_requests_per_connection_lifetime "
                    "set to it closes most connections before php-fpm does";
        } else if (stopping_endpoint) {
            d.said_when = true;
            d.diagnostics =
                both_readings(in.after, "new connection",
                              "a stopping php-fpm resets the connections in its listen backlog",
                              "a worker that crashed at once");
        }
    }
    if (!d.retry && lost && !d.said_when)
        // The clue to what closed it: at once, a server that fails new connections (or a script
        // that crashed); after about request_terminate_timeout, php-fpm killing the script.
        d.diagnostics +=
            "; the connection closed " + std::to_string(in.after.count()) +
            " ms after the request was sent" +
            (in.reused && !at_once ? beyond_window(in.stale_close_window) +
                                         ", so its script may have run (a killed worker: "
                                         "request_terminate_timeout?)"
                                   : "");
    return d;
}

}  // namespace fcgi::detail

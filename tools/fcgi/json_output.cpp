#include "json_output.hpp"

#include "base64.hpp"
#include "error_names.hpp"
#include "output.hpp"

namespace fcgi_cli {
namespace {

// Text or base64 under `key` / `key`_base64, whichever carries the bytes unchanged.
void put_bytes(ordered_json& j, const char* key, std::string_view bytes) {
    if (is_valid_utf8(bytes))
        j[key] = bytes;
    else
        j[std::string(key) + "_base64"] = base64_encode(bytes);
}

ordered_json error_object(std::string_view code, std::string message) {
    ordered_json e = ordered_json::object();
    e["code"] = code;
    e["message"] = std::move(message);
    return e;
}

std::string dump(const ordered_json& j) {
    // replace: a header value with invalid UTF-8 must not abort the whole run.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte (RFC 3629 table)
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;  // overlong
            else if (c == 0xED)
                hi = 0x9F;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;  // overlong
            else if (c == 0xF4)
                hi = 0x8F;  // past U+10FFFF
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        auto c1 = static_cast<unsigned char>(s[i + 1]);
        if (c1 < lo || c1 > hi)
            return false;
        for (std::size_t k = 2; k < len; ++k) {
            auto ck = static_cast<unsigned char>(s[i + k]);
            if (ck < 0x80 || ck > 0xBF)
                return false;
        }
        i += len;
    }
    return true;
}

std::string result_line(const ordered_json& id, const fcgi::fanout_result& r) {
    ordered_json j = ordered_json::object();
    j["id"] = id;
    ordered_json headers = ordered_json::object();
    if (r.ec) {
        j["status"] = nullptr;
        j["headers"] = std::move(headers);
        j["body"] = "";
        // What the script had logged before the failure: often the line that says why.
        put_bytes(j, "stderr", r.resp.stderr_text);
        j["stderr_dropped"] = r.resp.stderr_dropped;
    } else {
        j["status"] = r.resp.status;
        for (const auto& h : r.resp.headers) {
            auto& values = headers[h.name];
            if (values.is_null())
                values = ordered_json::array();
            values.push_back(h.value);
        }
        j["headers"] = std::move(headers);
        put_bytes(j, "body", r.resp.body);
        put_bytes(j, "stderr", r.resp.stderr_text);
        j["stderr_dropped"] = r.resp.stderr_dropped;  // bytes past --max-stderr
    }
    j["duration_ms"] = static_cast<double>(r.duration.count()) / 1000.0;
    // 2: sent again after its kept-alive connection closed, so its script may have run twice.
    j["times_sent"] = r.resp.times_sent;
    if (r.ec) {
        j["error"] =
            error_object(error_name(r.ec),
                         error_text(r.ec, in_request_terms(in_flag_terms(r.resp.diagnostics, true),
                                                           request_terms::job_keys)));
    } else {
        j["error"] = nullptr;
    }
    return dump(j);
}

std::string invalid_job_line(const ordered_json& id, std::string_view message) {
    ordered_json j = ordered_json::object();
    j["id"] = id;
    j["status"] = nullptr;
    j["headers"] = ordered_json::object();
    j["body"] = "";
    j["stderr"] = "";
    j["stderr_dropped"] = 0;
    j["duration_ms"] = 0;
    j["times_sent"] = 0;
    j["error"] = error_object(invalid_job_name, std::string(message));
    return dump(j);
}

}  // namespace fcgi_cli

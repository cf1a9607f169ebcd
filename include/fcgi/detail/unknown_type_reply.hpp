// What an UNKNOWN_TYPE record from the server means: the server lacks a record type we sent it,
// or the record is stray. One reading for the connection and the GET_VALUES probe, which send
// different types; sans-io, so it is tested with byte vectors.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "fcgi/protocol/types.hpp"

namespace fcgi::detail {

/// The error an UNKNOWN_TYPE record closes the connection with, and the text that says why.
struct unknown_type_reading {
    /// error::unknown_type_reply when it names a type in `sent`; error::unexpected_record when it
    /// names any other; the parse error (error::bad_record_length) for a body not of 8 bytes.
    std::error_code ec;
    /// For the user: the server (`peer`), the type it named, and what that means.
    std::string message;
};

/// Reads the content of an UNKNOWN_TYPE record from `peer` (endpoint::to_string()), given the
/// record types the connection sends (`sent`). Only a type we send can be one the server does
/// not understand; any other is a stray record, as a record for an ID never issued is.
unknown_type_reading read_unknown_type(std::string_view content,
                                       std::span<const protocol::record_type> sent,
                                       std::string_view peer);

}  // namespace fcgi::detail

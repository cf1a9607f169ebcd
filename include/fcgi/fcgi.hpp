// Umbrella header of asio-fcgi.
#pragma once

#include "fcgi/body_sink.hpp"
#include "fcgi/body_source.hpp"
#include "fcgi/client.hpp"
#include "fcgi/client_options.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/connection_options.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/encoded_params.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "fcgi/protocol/request_encoder.hpp"
#include "fcgi/protocol/types.hpp"
#include "fcgi/request.hpp"
#include "fcgi/response.hpp"
#include "fcgi/version.hpp"

/// \namespace fcgi
/// asio-fcgi: a FastCGI client for C++20 on standalone Asio — fcgi::connection,
/// the pooled fcgi::client, fan-out, errors and options.

/// \namespace fcgi::protocol
/// The sans-io FastCGI 1.0 codec: values and pure functions, no Asio and no sockets.

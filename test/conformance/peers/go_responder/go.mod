module asio-fcgi/conformance/go_responder

go 1.19

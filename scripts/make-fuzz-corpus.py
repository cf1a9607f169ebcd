#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) as binary files.

The seeds are real captures and published vectors (PROTOCOL.md: the PHP 7.3 reply, Go's
net/http/fcgi vectors, php-fpm 8.2 replies seen here) plus hand-made edge cases. Rerunning it
rewrites the same bytes; files it does not name (regressions found by fuzzing) are left alone.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus"

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA, GV, GVR, UNKNOWN = range(1, 12)


def record(rtype, rid, content=b"", pad=None, version=1):
    if pad is None:
        pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", version, rtype, rid, len(content), pad, 0) + content + b"\0" * pad


def end_request(rid, app_status=0, protocol_status=0):
    return record(END, rid, struct.pack(">IB3x", app_status, protocol_status))


def length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def pair(name, value):
    return length(len(name)) + length(len(value)) + name + value


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# --- record_decoder: whole server replies --------------------------------------------------
php73 = (
    b"Status: 404 Not Found\r\nX-Powered-By: PHP/7.3.16\r\n\r\ntest!"
)
decoder = {
    # PROTOCOL.md: a real PHP 7.3 reply, no padding and no empty STDOUT.
    "php73_404": record(STDOUT, 1, php73, pad=0) + end_request(1),
    # php-fpm 8.2 hello.php: STDOUT then END_REQUEST directly (PROTOCOL.md item 3).
    "php_fpm_hello": record(
        STDOUT, 1, b"Content-type: text/html; charset=UTF-8\r\n\r\nHello, world!\n"
    ) + end_request(1),
    # STDERR before STDOUT, as Debian's output_buffering makes it (item 12).
    "php_fpm_stderr_first": record(STDERR, 1, b"PHP message: warning one; PHP message: two")
    + record(STDOUT, 1, b"Status: 500 Internal Server Error\r\n\r\noops")
    + end_request(1),
    # Go's GET_VALUES reply with its extra empty GET_VALUES_RESULT.
    "go_get_values_reply": bytes.fromhex("010a000000120600")
    + b"\x0f\x01FCGI_MPXS_CONNS1"
    + b"\0" * 6
    + bytes.fromhex("010a000000000000"),
    # php-fpm's GET_VALUES reply: FCGI_MPXS_CONNS=0 only.
    "php_fpm_get_values_reply": record(GVR, 0, pair(b"FCGI_MPXS_CONNS", b"0")),
    # Go: empty STDOUT, id 1.
    "go_empty_stdout": bytes.fromhex("0106000100000000"),
    # Go: 66000 bytes of STDIN split 65535 + 465 (a reader must accept 65535 with padding).
    "go_stdin_66000": bytes.fromhex("0105012cffff0100")
    + b"\0" * 65536
    + bytes.fromhex("0105012c01d10700")
    + b"\0" * (465 + 7)
    + bytes.fromhex("0105012c00000000"),
    # Go: PARAMS claiming 50+50 bytes of pair in 10 bytes of content.
    "go_bad_params": bytes.fromhex("01040001000a0000323203040506070809" "0a"),
    # Multiplexed replies, interleaved, with an UNKNOWN_TYPE answer and odd padding.
    "interleaved": record(STDOUT, 1, b"Status: 200 OK\r\n\r\n", pad=3)
    + record(STDOUT, 2, b"X-A: b\n\nbody")
    + record(STDERR, 2, b"")
    + record(UNKNOWN, 0, bytes([42]) + b"\0" * 7)
    + record(STDOUT, 1, b"")
    + end_request(2, 7, 0)
    + end_request(1, 0, 1),
    "overloaded": end_request(3, 0, 2) + end_request(4, 0, 3),
    "bad_version": record(STDOUT, 1, b"x", version=2),
    "bad_end_length": record(END, 1, b"\0" * 9),
    "unknown_type_99": record(99, 1, b"abcdefghij") + end_request(1),
    # What an HTTP server answers: version byte 'H'.
    "http_reply": b"HTTP/1.1 400 Bad Request\r\n\r\n",
    "abort_echo": record(ABORT, 1) + record(BEGIN, 1, struct.pack(">HB5x", 1, 1)),
    "max_padding": record(STDOUT, 1, b"x" * 17, pad=255) + end_request(1),
    "truncated": (record(STDOUT, 1, b"x" * 40) + end_request(1))[:-3],
}
for name, data in decoder.items():
    write("record_decoder", name, data)

# --- name_value: PARAMS / GET_VALUES_RESULT contents ------------------------------------------
name_value = {
    "get_values_go": pair(b"FCGI_MPXS_CONNS", b"1"),
    "get_values_all": pair(b"FCGI_MAX_CONNS", b"10")
    + pair(b"FCGI_MAX_REQS", b"100")
    + pair(b"FCGI_MPXS_CONNS", b"1"),
    "get_values_ask": pair(b"FCGI_MAX_CONNS", b"") + pair(b"FCGI_MPXS_CONNS", b""),
    "get_values_bad_number": pair(b"FCGI_MAX_REQS", b"lots") + pair(b"FCGI_MAX_CONNS", b"99999999999"),
    "cgi_params": pair(b"SCRIPT_FILENAME", b"/srv/www/index.php")
    + pair(b"REQUEST_METHOD", b"GET")
    + pair(b"QUERY_STRING", b"a=1&b=2")
    + pair(b"HTTP_HOST", b"example.org"),
    "long_value": pair(b"HTTP_COOKIE", b"c" * 1000),
    "long_name": pair(b"N" * 200, b"v"),
    # Go's length vectors, including the largest 31-bit length, which must not fit.
    "len_127": pair(b"a" * 127, b""),
    "len_128": pair(b"a" * 128, b""),
    "len_max_claimed": bytes.fromhex("81ffffff") + b"\x00",
    "non_canonical_length": struct.pack(">I", 0x80000003) + b"\x01abcd",
    "go_bad_params_content": bytes.fromhex("3232030405060708090a"),
    "truncated_length": b"\x05\x80\x00",
    "empty_pairs": b"\x00\x00" * 4,
    "multibyte": pair("NAME".encode(), "caf\u00e9 \u2603".encode()),
}
for name, data in name_value.items():
    write("name_value", name, data)

# --- cgi_head: STDOUT streams ------------------------------------------------------------------
cgi_head = {
    "php73_404": php73,
    "hello_crlf": b"Content-type: text/html; charset=UTF-8\r\n\r\nHello, world!\n",
    "lf_only": b"Content-Type: text/plain\nX-A: 1\n\nbody\n",
    "mixed_line_ends": b"X-A: 1\r\nX-B: 2\n\r\nbody",
    "repeated_headers": b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
    "status_reason": b"Status: 418 I'm a teapot\r\n\r\n",
    "status_no_reason": b"Status: 204\r\n\r\n",
    "status_unknown_code": b"Status: 599\r\n\r\n",
    "status_bad": b"Status: 20x OK\r\n\r\n",
    "status_low": b"Status: 099 Low\r\n\r\n",
    "status_twice": b"Status: 200 OK\r\nStatus: 404 Not Found\r\n\r\n",
    "location_302": b"Location: /elsewhere\r\n\r\n",
    "location_with_status": b"Location: /x\r\nStatus: 301 Moved Permanently\r\n\r\n",
    "file_not_found": b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n",
    "no_colon": b"Not a header\r\n\r\n",
    "empty_name": b": value\r\n\r\n",
    "space_in_name": b"Bad Name: v\r\n\r\n",
    "no_blank_line": b"X-A: 1\r\nX-B: 2\r\n",
    "empty": b"",
    "blank_only": b"\r\n",
    "tabs_and_spaces": b"X-A:\t  spaced value \t\r\n\r\n",
    "big_head": b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200)) + b"\r\n",
}
for name, data in cgi_head.items():
    write("cgi_head", name, data)

print(f"wrote {len(decoder)} + {len(name_value)} + {len(cgi_head)} seeds under {ROOT}")

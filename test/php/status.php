<?php
// A non-200 status and repeated headers.
$code = isset($_GET['code']) ? (int)$_GET['code'] : 404;
http_response_code($code);
header('X-Multi: one');
header('X-Multi: two', false);
header('Set-Cookie: a=1', false);
header('Set-Cookie: b=2', false);
echo "status $code\n";

<?php
// php-fpm's side of the conformance contract (test/conformance/README.md): CONF_ACTION selects
// echo (default), status, stderr or role.
header('Content-Type: text/plain');
$action = $_SERVER['CONF_ACTION'] ?? '';
if ($action === 'status') {
    http_response_code((int) $_SERVER['CONF_STATUS']);
    header('X-Conf-Multi: a');
    header('X-Conf-Multi: b', false);
    echo 'status';
} elseif ($action === 'stderr') {
    error_log('conformance stderr');
    echo 'stderr';
} elseif ($action === 'role') {
    echo 'role=' . ($_SERVER['FCGI_ROLE'] ?? '');
} else {
    $count = 0;
    $total = 0;
    $sum = 0;
    foreach ($_SERVER as $name => $value) {
        if (is_string($value) && str_starts_with($name, 'CONF_BIG_')) {
            $count++;
            $total += strlen($value);
            $sum = ($sum + array_sum(unpack('C*', $value))) & 0xffffffff;
        }
    }
    header('X-Conf-Peer: php-fpm');
    printf("method=%s\nquery=%s\nvalue=%s\nheader=%s\nbig=%d:%d:%d\nbody=",
           $_SERVER['REQUEST_METHOD'] ?? '', $_SERVER['QUERY_STRING'] ?? '',
           $_SERVER['CONF_VALUE'] ?? '', $_SERVER['HTTP_X_CONF'] ?? '', $count, $total, $sum);
    $in = fopen('php://input', 'rb');
    $out = fopen('php://output', 'wb');
    stream_copy_to_stream($in, $out);
}

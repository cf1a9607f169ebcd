<?php
// Reads the request body in 1 MiB chunks and prints its length and MD5 (benchmark/macro/bodies.sh).
$in = fopen('php://input', 'rb');
$h = hash_init('md5');
$n = 0;
while (!feof($in)) {
    $chunk = fread($in, 1 << 20);
    if ($chunk === false) {
        break;
    }
    $n += strlen($chunk);
    hash_update($h, $chunk);
}
header('Content-Type: text/plain');
echo $n, ' ', hash_final($h), "\n";

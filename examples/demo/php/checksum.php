<?php
// Reads the request body as it streams in and answers "<bytes> <crc32>".
$ctx = hash_init('crc32b');
$in = fopen('php://input', 'rb');
$n = 0;
while (!feof($in)) {
    $chunk = fread($in, 1 << 16);
    if ($chunk === false) break;
    $n += strlen($chunk);
    hash_update($ctx, $chunk);
}
echo $n, ' ', hash_final($ctx), "\n";

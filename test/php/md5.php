<?php
// Hashes the request body as it streams in, so large uploads do not need memory.
$ctx = hash_init('md5');
$in = fopen('php://input', 'rb');
$n = 0;
while (!feof($in)) {
    $chunk = fread($in, 1 << 16);
    if ($chunk === false) break;
    $n += strlen($chunk);
    hash_update($ctx, $chunk);
}
echo $n, ' ', hash_final($ctx), "\n";

<?php
// Writes ?size=N bytes of a repeating pattern (default 10 MB); X-Md5 carries their md5.
$size = isset($_GET['size']) ? (int)$_GET['size'] : 10 * 1024 * 1024;
$block = str_repeat('0123456789abcdef', 4096);
$ctx = hash_init('md5');
$left = $size;
$out = '';
while ($left > 0) {
    $piece = substr($block, 0, min($left, strlen($block)));
    hash_update($ctx, $piece);
    $left -= strlen($piece);
}
header('X-Md5: ' . hash_final($ctx));
$left = $size;
while ($left > 0) {
    $piece = substr($block, 0, min($left, strlen($block)));
    echo $piece;
    $left -= strlen($piece);
}

<?php
// Prints ?mb=N MiB of "0123456789abcde\n" lines (benchmark/macro/bodies.sh), which the script
// reproduces locally with `yes 0123456789abcde | head -c` to check the checksum.
$mb = isset($_GET['mb']) ? (int) $_GET['mb'] : 1;
$block = str_repeat("0123456789abcde\n", 65536);
header('Content-Type: application/octet-stream');
header('Content-Length: ' . ($mb << 20));
for ($i = 0; $i < $mb; $i++) {
    echo $block;
}
